"""QA: under a low process/thread limit (``ulimit -u``) a run hung inside ONNX Runtime's thread pool (pthread_create
failed; ONNX Runtime then joined pool threads that wait forever): ``ulimit -u 25`` with THREADS 8 under qgis_process,
``ulimit -u 4`` with THREADS 8 through the engine. Now the engine reads the limit (and a container's pids cgroup),
caps its tile workers, ONNX Runtime and GDAL threads to it with one warning naming it, and a thread that still cannot
start is said to be the limit, not memory. A batch's local cluster fits its workers to it, or is refused."""
from __future__ import annotations

import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from fixture_helpers import fake_files

from ksdiff_qgis.engine import threadlimits

ROOT = Path(__file__).resolve().parent.parent
NOBODY = 65534


def _status(uid: int, threads: int, caps: str = "0000000000000000") -> str:
    return f"Name:\tpython\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\nThreads:\t{threads}\nCapEff:\t{caps}\n"


def _user_proc(tmp_path, uid: int = 1000, caps: str = "0000000000000000", uid_map: str = "0 0 4294967295") -> str:
    """A fake /proc: this process (5 threads), another of the user's (40 threads), one of another user's (100)."""
    return fake_files(tmp_path, {
        "/proc/self/status": _status(uid, 5, caps), "/proc/self/uid_map": f"         {uid_map}\n",
        "/proc/11/status": _status(uid, 5, caps), "/proc/12/status": _status(uid, 40),
        "/proc/13/status": _status(uid + 1, 100),
    })


@pytest.fixture()
def nproc(monkeypatch):
    """Set the soft RLIMIT_NPROC the module reads."""
    def set_limit(soft):
        real = resource.getrlimit

        def fake(which):
            return (soft, soft) if which == resource.RLIMIT_NPROC else real(which)
        monkeypatch.setattr(resource, "getrlimit", fake)
    return set_limit


def test_the_limit_counts_every_thread_of_the_user(tmp_path, nproc):
    root = _user_proc(tmp_path)
    nproc(60)
    assert threadlimits.nproc_room(root) == (
        15, "this user's limit of 60 processes and threads (ulimit -u), 45 of them running")
    nproc(resource.RLIM_INFINITY)
    assert threadlimits.nproc_room(root) is None


def test_root_and_capabilities_pass_the_limit_but_not_inside_a_user_namespace(tmp_path, nproc):
    nproc(60)
    assert threadlimits.nproc_room(_user_proc(tmp_path / "a", uid=0)) is None
    assert threadlimits.nproc_room(_user_proc(tmp_path / "b", caps=f"{1 << 24:016x}")) is None   # CAP_SYS_RESOURCE
    # rootless containers: uid 0 there is an ordinary user of the host, whose limit applies
    assert threadlimits.nproc_room(_user_proc(tmp_path / "c", uid=0, uid_map="0 1000 65536"))[0] == 60 - 45


def test_a_pids_cgroup_is_a_limit_too(tmp_path):
    base = "/sys/fs/cgroup"
    root = fake_files(tmp_path, {
        "/proc/self/cgroup": "0::/ci/job\n",
        "/proc/self/mountinfo": "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
        f"{base}/ci/job/pids.max": "max\n", f"{base}/ci/job/pids.current": "12\n",
        f"{base}/ci/pids.max": "50\n", f"{base}/ci/pids.current": "30\n",
    })
    assert threadlimits.pids_room(root) == (
        20, "this container's limit of 50 processes and threads (cgroup v2 pids /sys/fs/cgroup/ci), 30 of them running")


def test_threads_are_capped_to_the_room_with_one_warning():
    started, reserve = threadlimits.started, threadlimits.RESERVE
    # no limit, or room enough: as asked
    assert threadlimits.fit(4, 2, 8, True, None) == threadlimits.ThreadPlan(4, 2)
    assert threadlimits.fit(4, 2, 8, True, (started(4, 2, 8, True) + reserve, "x")).note is None
    # the qgis_process case that hung: 19 threads left, THREADS 8, one tile at a time, GDAL on 2 cores
    plan = threadlimits.fit(1, 8, 2, True, (19, "this user's limit of 25 processes and threads (ulimit -u)"))
    assert started(plan.workers, plan.threads, plan.gdal, True) <= 19 - reserve
    assert (plan.workers, plan.threads, plan.gdal) == (1, 5, 2)
    assert plan.note == (
        "Threads: 19 more can start under this user's limit of 25 processes and threads (ulimit -u), so this run "
        "fuses 1 tile(s) at a time with 5 ONNX Runtime thread(s) each and encodes with 2 GDAL thread(s), not 1 with "
        "8 each and 2. Raise the limit or close other programs of this user for a faster run.")
    # a classical run has no ONNX Runtime threads to give up
    plan = threadlimits.fit(4, 1, 32, False, (12, "x"))
    assert started(plan.workers, 1, plan.gdal, False) <= 10 and "ONNX" not in plan.note
    # nothing left (even past the limit already): a sequential run, which starts no thread
    for room in (2, 0, -5):
        plan = threadlimits.fit(4, 8, 32, True, (room, "x"))
        assert (plan.workers, plan.threads, plan.gdal) == (1, 1, 1) and plan.note


def test_a_thread_that_cannot_start_under_the_limit_is_not_called_memory(monkeypatch):
    """The memory advice ("Not enough memory ... lower TILE_SIZE") was given for a thread limit: now the limit is named;
    far from any thread limit the words still mean memory (``ulimit -v``)."""
    error = RuntimeError("can't start new thread")
    monkeypatch.setattr(threadlimits, "pids_room", lambda root="": None)
    monkeypatch.setattr(threadlimits, "nproc_room", lambda root="": (3, "this user's limit of 60 processes and "
                                                                           "threads (ulimit -u), 57 of them running"))
    said = threadlimits.failure_message(error, "/o.tif")
    assert said == (
        "Could not start a thread (can't start new thread): this user's limit of 60 processes and threads (ulimit -u), "
        "57 of them running. Close other programs of this user or raise the limit (ulimit -u, or the container's pids "
        "limit) and run it again: a run starts only as many threads as the limit leaves then. No output was written "
        "(a file already at /o.tif is unchanged).")
    ort = ValueError("ONNX Runtime cannot load the model wv2.onnx: pthread_create failed, error code: 11 error msg: "
                     "Resource temporarily unavailable")
    assert threadlimits.failure_message(ort, "/o.tif").startswith("Could not start a thread (ONNX Runtime")
    assert threadlimits.failure_message(RuntimeError("something else"), "/o.tif") is None
    monkeypatch.setattr(threadlimits, "nproc_room", lambda root="": (60000, "a desktop's limit"))
    assert threadlimits.failure_message(error, "/o.tif") is None


def test_the_algorithm_names_the_thread_limit(qgis_app, pair, tmp_path, monkeypatch):
    import processing
    from qgis.core import QgsProcessingException

    from ksdiff_qgis.engine import classical

    monkeypatch.setattr(threadlimits, "pids_room", lambda root="": None)
    monkeypatch.setattr(threadlimits, "nproc_room", lambda root="": (4, "this user's limit of 60 processes and "
                                                                           "threads (ulimit -u), 56 of them running"))

    def no_thread(*args, **kwargs):
        raise RuntimeError("can't start new thread")

    monkeypatch.setitem(classical.FUSERS, "mtf_glp_hpm", no_thread)
    out = tmp_path / "o.tif"
    with pytest.raises(QgsProcessingException) as raised:
        processing.run("ksdiff:pansharpen", {**pair, "OUTPUT": str(out)})
    said = str(raised.value)
    assert said.startswith("Could not start a thread (can't start new thread): this user's limit of 60"), said
    assert "memory" not in said and not out.exists()


def test_a_local_cluster_fits_the_limit_or_is_refused(monkeypatch):
    pytest.importorskip("distributed")
    from ksdiff_qgis import batch

    monkeypatch.setattr(batch, "usable_cores", lambda: 8)
    monkeypatch.setattr(batch.memory, "available_mb", lambda: None)
    room = lambda n: lambda root="": (n, "this user's limit of 40 processes and threads (ulimit -u)")  # noqa: E731
    monkeypatch.setattr(threadlimits, "thread_room", room(10))
    with pytest.raises(batch.UsageError, match=r"a local cluster needs about 12 processes and threads for one worker, "
                                               r"and 10 more can start under this user's limit of 40"):
        batch.local_workers(1)
    monkeypatch.setattr(threadlimits, "thread_room", room(28))
    workers, said = batch.local_workers(0)
    assert workers == 3 and said.startswith("one worker per core (8) would start more processes and threads than the "
                                            "limit allows (this user's limit of 40"), said
    # what is left after the cluster's own is shared out between the scenes running at once
    assert batch.local_thread_share(3) == (28 - threadlimits.RESERVE - 6 - 3 * 6) // 3
    monkeypatch.setattr(threadlimits, "thread_room", lambda root="": None)
    assert batch.local_workers(2) == (2, None) and batch.local_thread_share(2) is None


RUN = """
import sys
sys.path.insert(0, {root!r})
from ksdiff_qgis.engine.feedback import Feedback
from ksdiff_qgis.engine.pipeline import pansharpen

class Said(Feedback):
    def warning(self, text):
        print("WARNING", text, flush=True)

r = pansharpen({pan!r}, {ms!r}, {out!r}, "wv2", "ksdiff", tile_size=128, threads=8, feedback=Said())
print("DONE", r.device, flush=True)
"""


def _limited_command(limit_beyond: int) -> tuple[list[str], dict]:
    """A shell that runs its command under ``ulimit -u`` set ``limit_beyond`` above the threads already running for
    its user: as nobody when this is root (the kernel does not apply the limit to root), else as this user."""
    if os.geteuid() == 0:
        if not shutil.which("setpriv") or threadlimits.user_tasks(str(NOBODY), own=0):
            pytest.skip("needs setpriv and no process of user nobody")
        used, prefix = 0, ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    else:
        used, prefix = threadlimits.user_tasks(str(os.getuid())), []
    return prefix + ["bash", "-c", f"ulimit -u {used + limit_beyond} && exec \"$0\" \"$@\""], {}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ulimit -u and /proc: Linux")
def test_a_run_under_ulimit_u_finishes_with_fewer_threads(data_dir):
    """The engine under ``ulimit -u`` with THREADS 8: it hung in InferenceSession before (killed here at 120 s)."""
    pytest.importorskip("onnxruntime")
    folder = tempfile.mkdtemp(prefix="ksdiff_ulimit_")   # world-readable: the run may be nobody's
    try:
        os.chmod(folder, 0o777)
        pan, ms = (shutil.copy(data_dir / f"wv2_{k}.tif", folder) for k in ("pan", "ms"))
        script = os.path.join(folder, "run.py")
        with open(script, "w") as f:
            f.write(RUN.format(root=str(ROOT), pan=pan, ms=ms, out=os.path.join(folder, "o.tif")))
        command, _ = _limited_command(limit_beyond=8)
        env = {**os.environ, "HOME": folder, "OPENBLAS_NUM_THREADS": "1"}
        try:
            res = subprocess.run(command + [sys.executable, script], capture_output=True, text=True, timeout=120,
                                 env=env, cwd=folder)
        except subprocess.TimeoutExpired:
            pytest.fail("the run under ulimit -u hung (killed after 120 s)")
        said = res.stdout + res.stderr
        assert res.returncode == 0 and "DONE cpu" in said, said
        asked = min(8, threadlimits.usable_cores())   # THREADS above the cores is capped to them first
        assert "WARNING Threads: " in said and "(ulimit -u)" in said and re.search(rf"not \d+ with {asked} each",
                                                                                    said), said
    finally:
        shutil.rmtree(folder, ignore_errors=True)
