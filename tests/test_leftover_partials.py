"""Killed runs' leftovers of OTHER outputs (QA115 defects 1-2) are swept only when that is safe (QA123 H1-H3, M2):
the writer's exact naming, this user's regular files, over an hour old, and an exclusive lock on the ``.partial``.
Each test pairs what must be kept with an old leftover that must go (``_OLD``): before the sweep, nothing went."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the sweep needs POSIX locks and ownership")

_OLD = ".gone.tif.0123abcd.partial"   # a killed run's leftover of another output: swept in every test


def _leftover(folder: Path, name: str | bytes, age: float = 7200.0, data: bytes = b"half a file") -> Path:
    """A file ``name`` in ``folder`` last changed ``age`` seconds ago (two hours: older than STALE_AGE)."""
    path = os.path.join(os.fsencode(folder), name) if isinstance(name, bytes) else str(folder / name)
    with open(path, "wb") as f:
        f.write(data)
    t = time.time() - age
    os.utime(path, (t, t))
    return Path(os.fsdecode(path))


def _fuse(data_dir, folder: Path, name: str = "fused.tif") -> list[str]:
    """Run the engine onto ``folder/name``; the log lines."""
    from ksdiff_qgis.engine.feedback import RecordingFeedback
    from ksdiff_qgis.engine.pipeline import pansharpen

    fb = RecordingFeedback()
    pansharpen(str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), str(folder / name), "wv2", "brovey",
               feedback=fb)
    return fb.lines


def test_old_leftover_of_another_output_is_removed_and_logged(data_dir, tmp_path):
    old = [_leftover(tmp_path, _OLD), _leftover(tmp_path, _OLD + ".cog"), _leftover(tmp_path, _OLD + ".aux.xml")]
    foreign = _leftover(tmp_path, ".gone.tif.0123abcd.partial.bak")   # not a suffix the writer makes
    lines = _fuse(data_dir, tmp_path)
    assert not any(p.exists() for p in old)
    assert foreign.exists()
    assert any(str(tmp_path / _OLD) in m and "removed" in m and "interrupted earlier run" in m for m in lines), lines


def test_young_leftover_of_another_output_is_kept(data_dir, tmp_path):
    young = _leftover(tmp_path, ".young.tif.89abcdef.partial", age=60)
    old = _leftover(tmp_path, _OLD)
    _fuse(data_dir, tmp_path)
    assert young.exists() and not old.exists()


def test_old_leftover_whose_partial_another_process_holds_is_kept(data_dir, tmp_path):
    held = _leftover(tmp_path, ".live.tif.89abcdef.partial")
    side = _leftover(tmp_path, ".live.tif.89abcdef.partial.aux.xml")
    old = _leftover(tmp_path, _OLD)
    script = textwrap.dedent(f"""
        import sys, time
        from ksdiff_qgis.engine.raster_io.partials import hold
        lock = hold({str(held)!r})   # the writer's own lock on its temporary file
        print("held", flush=True)
        time.sleep(300)
    """)
    holder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert holder.stdout.readline().strip() == "held"
        _fuse(data_dir, tmp_path)
    finally:
        holder.kill()
        holder.wait()
    assert held.exists() and side.exists() and not old.exists()


def test_output_named_dot_partial_keeps_its_live_file_and_loses_its_old_one(data_dir, tmp_path):
    """QA123 H1: the base of ``.scene.partial.tif.<hex>.partial`` is the whole name, not ``.scene.partial``."""
    from ksdiff_qgis.engine.raster_io import partials

    live = _leftover(tmp_path, ".scene.partial.tif.0ef459d4.partial", age=0)   # a run writing scene.partial.tif
    lock = partials.hold(str(live))
    stale = _leftover(tmp_path, ".scene.partial.tif.1234abcd.partial")
    stale_side = _leftover(tmp_path, ".scene.partial.tif.1234abcd.partial.aux.xml")
    try:
        lines = _fuse(data_dir, tmp_path, "other.tif")
    finally:
        lock.close()
    assert live.exists()
    assert not stale.exists() and not stale_side.exists()
    assert any(str(stale) in m for m in lines), lines


def test_a_fifo_with_a_leftover_name_is_skipped_without_hanging(data_dir, tmp_path):
    fifo = tmp_path / ".pipe.tif.89abcdef.partial"
    os.mkfifo(fifo)
    t = time.time() - 7200
    os.utime(fifo, (t, t))
    old = _leftover(tmp_path, _OLD)

    def hung(*_):
        raise TimeoutError("the run hung on a FIFO")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(120)
    try:
        _fuse(data_dir, tmp_path)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert fifo.exists() and not old.exists()


def test_a_symlink_with_a_leftover_name_is_skipped(data_dir, tmp_path):
    target = _leftover(tmp_path, "precious.dat")
    link = tmp_path / ".link.tif.89abcdef.partial"
    link.symlink_to(target)
    os.utime(link, (time.time() - 7200,) * 2, follow_symlinks=False)
    old = _leftover(tmp_path, _OLD)
    _fuse(data_dir, tmp_path)
    assert link.is_symlink() and target.exists() and not old.exists()


def test_a_non_utf8_leftover_name_in_a_batch_is_reported_without_crashing(data_dir, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    bad = _leftover(out, b".Bl\xff.tif.1234abcd.partial")
    (tmp_path / "scenes.csv").write_text(f"pan,ms,sensor,method,output\n{data_dir / 'wv2_pan.tif'},"
                                         f"{data_dir / 'wv2_ms.tif'},wv2,brovey,{out / 'b.tif'}\n", encoding="utf-8")
    report = tmp_path / "r.jsonl"
    r = subprocess.run([sys.executable, "-m", "ksdiff_qgis.batch", str(tmp_path / "scenes.csv"), "--workers", "1",
                        "--no-progress", "--report", str(report)], capture_output=True, text=True, cwd=ROOT,
                       env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert not os.path.lexists(bad)
    lines = [json.loads(line) for line in report.read_text(encoding="utf-8").splitlines()]
    assert lines[0]["status"] == "done"
    assert lines[0]["removed"] == [str(out / ".Bl\ufffd.tif.1234abcd.partial")], lines[0]
    assert lines[-1]["summary"]["removed"] == []
    assert "Bl\ufffd.tif.1234abcd.partial" in r.stderr and "interrupted earlier run" in r.stderr


def test_the_report_survives_a_name_that_is_not_utf8(tmp_path):
    """A lone surrogate that reaches the report is escaped, not a crash (QA123 H2)."""
    from ksdiff_qgis.batch import Report

    report = Report(str(tmp_path / "r.jsonl"))
    report.add({"removed": ["/x/.Bl\udcff.tif.1234abcd.partial"]})
    report.file.close()
    assert json.loads((tmp_path / "r.jsonl").read_text())["removed"] == ["/x/.Bl\udcff.tif.1234abcd.partial"]


def test_temporary_output_sweeps_old_leftovers_of_earlier_processing_folders(qgis_app, pair, tmp_path):
    import processing
    from qgis.core import QgsProcessingFeedback, QgsProcessingUtils

    base = Path(QgsProcessingUtils.tempFolder()).parent
    earlier = base / f"processing_ksdifftest{uuid.uuid4().hex[:6]}"
    (earlier / "abc123").mkdir(parents=True)
    try:
        old = _leftover(earlier / "abc123", ".OUTPUT.tif.0123abcd.partial")
        young = _leftover(earlier / "abc123", ".OUTPUT.tif.89abcdef.partial", age=60)
        infos = []

        class Fb(QgsProcessingFeedback):
            def pushInfo(self, msg):  # noqa: N802
                infos.append(msg)

        processing.run("ksdiff:pansharpen", {**pair, "METHOD": "brovey", "OUTPUT": "TEMPORARY_OUTPUT"},
                       feedback=Fb())
        assert not old.exists() and young.exists()
        assert any(str(old) in m and "removed" in m for m in infos), infos
    finally:
        for p in sorted(earlier.rglob("*"), reverse=True):
            p.rmdir() if p.is_dir() else p.unlink()
        earlier.rmdir()


@pytest.mark.parametrize("code", ["ENOLCK", "EBADF", "ENOSYS"])
def test_nothing_of_other_outputs_is_swept_without_working_locks(tmp_path, monkeypatch, code):
    """NFSv4 without read access, Lustre without flock (QA123 H3/M1): no lock tells a live file from a dead one."""
    import errno

    from ksdiff_qgis.engine.raster_io import partials

    old = _leftover(tmp_path, _OLD)
    orphan = _leftover(tmp_path, ".x.tif.89abcdef.partial.aux.xml")

    class NoLocks:
        LOCK_EX, LOCK_NB, LOCK_SH = 2, 4, 1

        @staticmethod
        def flock(*_):
            raise OSError(getattr(errno, code), "no locks")

    monkeypatch.setattr(partials, "fcntl", NoLocks)
    assert partials.sweep_folder(str(tmp_path)) == []
    assert old.exists() and orphan.exists()
    monkeypatch.setattr(partials, "fcntl", None)   # Windows
    assert partials.sweep_folder(str(tmp_path)) == [] and old.exists()


def test_an_old_orphan_sidecar_goes_and_a_young_one_stays(tmp_path):
    from ksdiff_qgis.engine.raster_io import partials

    old = _leftover(tmp_path, ".x.tif.89abcdef.partial.cog.aux.xml")
    young = _leftover(tmp_path, ".y.tif.89abcdef.partial.aux.xml", age=60)
    assert partials.sweep_folder(str(tmp_path)) == [str(old)]
    assert young.exists()


def test_the_same_name_cleanup_keeps_a_live_file_of_an_output_named_dot_partial(tmp_path):
    """QA124 M1: the same-name cleanup (the batch's end of run) took ``.scene.partial`` as the base of a live
    ``.scene.partial.tif.<hex>.partial``, found no lock on it and deleted the live run's file."""
    from ksdiff_qgis.engine.raster_io import partials

    live = _leftover(tmp_path, ".scene.partial.tif.0ef459d4.partial", age=0)
    side = _leftover(tmp_path, ".scene.partial.tif.0ef459d4.partial.aux.xml", age=0)
    stale = _leftover(tmp_path, ".scene.partial.tif.1234abcd.partial")
    lock = partials.hold(str(live))
    try:
        removed = partials.remove_stale_partials(str(tmp_path / "scene.partial.tif"))
    finally:
        lock.close()
    assert live.exists() and side.exists()
    assert removed == [str(stale)] and not stale.exists()


def test_a_fifo_named_like_this_outputs_leftover_does_not_hang_the_run(tmp_path):
    """QA124 M2: ``live_partials`` (every run's start, the batch's wait) opened a FIFO of that name and blocked."""
    from ksdiff_qgis.engine.raster_io import partials

    fifo = tmp_path / ".x.tif.12345678.partial"
    os.mkfifo(fifo)
    signal.signal(signal.SIGALRM, lambda *a: (_ for _ in ()).throw(TimeoutError("hung on the FIFO")))
    signal.alarm(30)
    try:
        assert partials.live_partials(str(tmp_path / "x.tif")) == []
        partials.remove_stale_partials(str(tmp_path / "x.tif"))
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)


def test_the_lock_probe_works_where_an_exclusive_flock_needs_a_writable_descriptor(tmp_path, monkeypatch):
    """QA124 M3: NFSv4 maps an exclusive flock to a write lock, refused (EBADF) on a read-only descriptor: the probe
    read every killed run's leftover as held, so each later run onto that output was told another run was writing
    it. Simulated here: flock refuses LOCK_EX on a read-only descriptor, as the NFSv4 client does."""
    import errno
    import fcntl as real_fcntl

    from ksdiff_qgis.engine.raster_io import partials

    class Nfs4:
        LOCK_EX, LOCK_SH, LOCK_NB, LOCK_UN = (real_fcntl.LOCK_EX, real_fcntl.LOCK_SH, real_fcntl.LOCK_NB,
                                              real_fcntl.LOCK_UN)

        @staticmethod
        def flock(fd, op):
            fd = fd if isinstance(fd, int) else fd.fileno()
            if op & real_fcntl.LOCK_EX and real_fcntl.fcntl(fd, real_fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDONLY:
                raise OSError(errno.EBADF, "Bad file descriptor")
            return real_fcntl.flock(fd, op)

    monkeypatch.setattr(partials, "fcntl", Nfs4)
    dead = _leftover(tmp_path, ".x.tif.0123abcd.partial")
    live = _leftover(tmp_path, ".x.tif.89abcdef.partial", age=0)
    lock = partials.hold(str(live))
    try:
        assert partials.live_partials(str(tmp_path / "x.tif")) == [str(live)]
        assert partials.remove_stale_partials(str(tmp_path / "x.tif")) == [str(dead)]
    finally:
        lock.close()
    assert live.exists() and not dead.exists()
