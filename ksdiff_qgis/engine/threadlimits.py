"""Limits on the threads this process may start, and a run's thread counts capped to them.

``ulimit -u`` (RLIMIT_NPROC) counts every process and thread of the user, and a container's pids cgroup every task
in it. Past either, ``pthread_create`` fails: ONNX Runtime then joins the pool threads it had started, which wait
for work forever (QA: ``ulimit -u 60`` on a many-core machine, and here ``ulimit -u 4`` with THREADS 8, hung in
``InferenceSession``), and Python's pool raises "can't start new thread". A sequential run (one tile at a time,
one ONNX Runtime and one GDAL thread) starts no thread at all (measured: every method runs under ``ulimit -u 1``),
so a run is capped, never refused. ``root`` prefixes every absolute path (tests give a folder of fake /proc and
/sys files).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from . import memlimits

RESERVE = 2          # threads left to the rest of the process (QGIS, a library starting one of its own)
CAP_SYS_ADMIN, CAP_SYS_RESOURCE = 21, 24   # either lets a process pass RLIMIT_NPROC (so does root)
# what Python and ONNX Runtime say when pthread_create fails
THREAD_FAILED = ("can't start new thread", "can't create new thread", "pthread_create failed")


def usable_cores() -> int:
    """CPU cores this process may run on: its affinity (taskset, a container's cpuset, a Slurm job), which
    ``os.cpu_count()`` ignores (QA: the machine's count under ``taskset``). The one count every default and cap uses."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):   # not on Windows or macOS
        return max(1, os.cpu_count() or 1)


def capped_threads(threads: int, option: str = "THREADS") -> tuple[int, str | None]:
    """``threads`` (0: choose) at most the usable cores, and the warning when lowered (the batch refuses such a
    count). QA: THREADS 64 on 2 cores ran 20 % slower, and its ONNX Runtime pool of 64 changed 1.08 million values
    of a 4000² scene by up to 20 DN, though the output must not depend on the thread count."""
    cores = usable_cores()
    if threads <= cores:
        return threads, None
    return cores, (f"{option} {threads} is more than the {cores} CPU core(s) this process may use: using {cores}. "
                   "More threads than cores only slow the run down; set it to 0 (one per core) or at most "
                   f"{cores}.")


def _status(path: str) -> dict[str, str]:
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
    except OSError:
        return {}


def _int(path: str) -> int | None:
    try:
        with open(path, encoding="ascii") as f:
            return int(f.read().strip())
    except (OSError, ValueError):   # "max": no limit
        return None


def _exempt(status: dict[str, str], root: str) -> bool:
    """True when the kernel does not apply RLIMIT_NPROC to this process: root, or CAP_SYS_RESOURCE/CAP_SYS_ADMIN,
    outside a user namespace (inside one, those count for nothing against the host's limit)."""
    try:
        with open(root + "/proc/self/uid_map", encoding="ascii") as f:
            identity = f.read().split() == ["0", "0", "4294967295"]
    except OSError:
        identity = True
    if not identity:
        return False
    real_uid = (status.get("Uid", "").split() or ["-1"])[0]
    try:
        caps = int(status.get("CapEff", "0"), 16)
    except ValueError:
        caps = 0
    return real_uid == "0" or bool(caps & (1 << CAP_SYS_ADMIN | 1 << CAP_SYS_RESOURCE))


def user_tasks(uid: str, root: str = "", own: int = 1) -> int:
    """Processes and threads of the user whose real uid is ``uid``, as RLIMIT_NPROC counts them (``own``, this
    process's threads, when /proc lists no process: hidden by hidepid, say)."""
    total = 0
    try:
        pids = [p for p in os.listdir(root + "/proc") if p.isdigit()]
    except OSError:
        pids = []
    for pid in pids:
        status = _status(f"{root}/proc/{pid}/status")   # gone meanwhile: {}
        if (status.get("Uid", "").split() or [""])[0] == uid:
            try:
                total += int(status.get("Threads", "1"))
            except ValueError:
                total += 1
    return max(total, own)


def nproc_room(root: str = "") -> tuple[int, str] | None:
    """(threads this user may still start under ``ulimit -u``, what that limit is), or None when none applies."""
    try:
        import resource  # not on Windows
        soft, _ = resource.getrlimit(resource.RLIMIT_NPROC)
    except (ImportError, AttributeError, ValueError, OSError):
        return None
    status = _status(root + "/proc/self/status")
    if soft == resource.RLIM_INFINITY or soft < 0 or not status or _exempt(status, root):
        return None
    uid = (status.get("Uid", "").split() or [""])[0]
    try:
        own = int(status.get("Threads", "1"))
    except ValueError:
        own = 1
    used = user_tasks(uid, root, own)
    return soft - used, (f"this user's limit of {soft} processes and threads (ulimit -u), {used} of them running")


def pids_room(root: str = "") -> tuple[int, str] | None:
    """(tasks this container may still start under its pids cgroup, what that limit is), or None."""
    best = None
    for version, folder, top in memlimits.cgroup_folders(root, "pids"):
        while True:
            limit, used = _int(os.path.join(folder, "pids.max")), _int(os.path.join(folder, "pids.current"))
            if limit is not None and used is not None and (best is None or limit - used < best[0]):
                where = folder[len(root):] or "/"
                best = (limit - used, f"this container's limit of {limit} processes and threads (cgroup {version} "
                                      f"pids {where}), {used} of them running")
            if folder.rstrip("/") == top.rstrip("/") or len(folder) <= len(top):
                break
            folder = os.path.dirname(folder)
    return best


_share: tuple[int, str] | None = None


def set_share(threads: int | None, description: str = "") -> None:
    """Let this process's runs start at most ``threads`` threads (None: no share), described in messages as
    ``description``: a batch's local workers run scenes at once, and each would otherwise take the whole room."""
    global _share
    _share = None if threads is None else (int(threads), description or f"this process's share: {threads} threads")


def thread_room(root: str = "") -> tuple[int, str] | None:
    """(threads this process may still start, the tightest limit's description), or None when nothing limits them
    (or on a system without /proc: Windows, macOS). A batch worker's share (``set_share``) counts as one."""
    return _tightest([nproc_room(root), pids_room(root), _share])


def _tightest(found: list[tuple[int, str] | None]) -> tuple[int, str] | None:
    found = [r for r in found if r is not None]
    return min(found, key=lambda r: r[0]) if found else None


@dataclass(frozen=True)
class ThreadPlan:
    """A run's thread counts: tile workers, ONNX Runtime intra-op threads and GDAL's encoding threads (None: as
    asked, ALL_CPUS); ``note``: the warning when they were lowered to fit a limit."""

    workers: int
    threads: int
    gdal: int | None = None
    note: str | None = None


def _ort_sessions(workers: int) -> int:
    """ONNX Runtime sessions alive at once in a learned run, each with its own pool: the model's, its prior graph's
    (``learned.TileKernels``) and each worker's per-tile session."""
    return workers + 2


def started(workers: int, threads: int, gdal: int, learned: bool) -> int:
    """Threads a run starts: the tile pool's (none for one worker), ONNX Runtime's (``threads`` - 1 per session: the
    calling thread is one, and one more of its own) and GDAL's encoding pool. Measured peaks beyond the process's
    threads before the run, WV2 fixture: KSDiff THREADS 12 one tile at a time 34, THREADS 2 four tiles 15, 1 and 3
    tiles 4; MTF-GLP-HPM three tiles 3."""
    pool = workers if workers > 1 else 0
    ort = _ort_sessions(workers) * (threads - 1) + 1 if learned else 0
    return pool + ort + (gdal if gdal > 1 else 0)


def fit(workers: int, threads: int, gdal: int, learned: bool, room: tuple[int, str] | None) -> ThreadPlan:
    """``workers``, ``threads`` and ``gdal`` (what the run would use) lowered, the largest share first, until the run
    starts no more threads than ``room`` (``thread_room``) leaves beyond RESERVE. Down to a sequential run, which
    starts none."""
    if room is None or started(workers, threads, gdal, learned) <= room[0] - RESERVE:
        return ThreadPlan(workers, threads)
    w, t, g = workers, threads, gdal
    while started(w, t, g, learned) > max(0, room[0] - RESERVE):
        shares = {"t": _ort_sessions(w) * (t - 1) if learned else 0, "g": g if g > 1 else 0, "w": w if w > 1 else 0}
        biggest = max(shares, key=lambda k: shares[k])
        if shares[biggest] == 0:   # sequential: what is left (ONNX Runtime's own thread) it does without
            break
        if biggest == "t":
            t -= 1
        elif biggest == "g":
            g -= 1
        else:
            w -= 1
    ort, asked = (f" with {t} ONNX Runtime thread(s) each", f" with {threads} each") if learned else ("", "")
    note = (f"Threads: {max(0, room[0])} more can start under {room[1]}, so this run fuses {w} tile(s) at a time{ort} "
            f"and encodes with {g} GDAL thread(s), not {workers}{asked} and {gdal}. Raise the limit or close other "
            "programs of this user for a faster run.")
    return ThreadPlan(w, t, g, note)


def thread_refused(text: str) -> bool:
    """True for an error's text that says a thread could not be started."""
    return any(t in text.lower() for t in THREAD_FAILED)


def advice(detail: str, output: str, root: str = "") -> str | None:
    """What to change when a thread could not start under a thread limit, and that no output was written; None when
    no limit is near: then it was memory (a thread's stack, under ``ulimit -v``), and ``memory.advice`` says so. The
    run's threads are gone by now: a limit is near when it leaves fewer than a run of this machine's cores starts."""
    room = _tightest([nproc_room(root), pids_room(root)])   # the kernel's limits, not a batch worker's share
    cores = usable_cores()
    workers = min(4, cores)   # parallel.default_workers, with runtime.balance_threads's threads
    if room is None or room[0] - RESERVE >= started(workers, max(1, cores // workers), cores, learned=True):
        return None
    first = (detail.strip().splitlines() or ["can't start new thread"])[0]
    # the run fits its threads to the room it finds as it starts (``fit``): this one lost threads to another program
    return (f"Could not start a thread ({first}): {room[1]}. Close other programs of this user or raise the limit "
            f"(ulimit -u, or the container's pids limit) and run it again: a run starts only as many threads as the "
            f"limit leaves then. No output was written (a file already at {output} is unchanged).")


def failure_message(error: BaseException, output: str, root: str = "") -> str | None:
    """``advice`` for an ``error`` that says a thread could not start (Python's RuntimeError, ONNX Runtime's
    pthread_create failure) under a thread limit; None for any other error (the memory advice or its own message)."""
    text = str(error)
    return advice(text, output, root) if thread_refused(text) else None
