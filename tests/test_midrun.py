"""The machine misbehaves mid-run (QA): a worker that vanishes, a full disk, a folder made read-only, moved or
deleted while a scene is fused. Each is simulated (a task that closes its worker, OSError with the errno the OS
gives), so no tmpfs or root is needed."""
from __future__ import annotations

import errno
import json
import os
import signal
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"


def scene_kwargs(out: Path, method: str = "mtf_glp_hpm", **extra) -> dict:
    return {"pan_path": str(DATA / "wv2_pan.tif"), "ms_path": str(DATA / "wv2_ms.tif"), "sensor": "wv2",
            "method": method, "output_path": str(out), **extra}


# ------------------------------------------------------------------------- batch: a worker that is gone
def test_batch_ends_when_its_only_worker_shuts_down_for_good(tmp_path, monkeypatch):
    """QA: a worker met a MemoryError sending its heartbeat, shut down with its nanny ("Scheduler was unaware of
    this worker") and the batch stayed at "running: 1/1" for 5+ minutes. Now the scene fails and the run ends."""
    pytest.importorskip("distributed")
    from ksdiff_qgis import batch
    from ksdiff_qgis.batch_stop import Stop
    from ksdiff_qgis.engine.scenes import Scene

    def vanishing_task(scene, *args):   # pickled by value: the worker closes itself and its nanny, then hangs
        import time

        from dask.distributed import get_worker

        worker = get_worker()
        worker.loop.add_callback(worker.close)
        time.sleep(300)

    monkeypatch.setattr(batch, "scene_task", vanishing_task)
    monkeypatch.setattr(batch, "NO_WORKER_SECONDS", 3)
    stop = Stop()
    watchdog = threading.Timer(90, lambda: setattr(stop, "signum", signal.SIGTERM))   # without the fix: a hang
    watchdog.start()
    try:
        with batch.connect(None, 1, allowed_failures=3) as client:
            records, summary = batch.run([Scene(2, scene_kwargs(tmp_path / "o.tif"))], client, threads=1,
                                         retries=0, progress=False, stop=stop, watch_workers=True)
    finally:
        watchdog.cancel()
    assert summary["stopped_by"] is None, "the batch hung until the watchdog stopped it"
    assert summary["failed"] == 1 and records[0]["status"] == "failed"
    assert "worker process running this scene died" in records[0]["error"]


def test_killed_worker_is_reported_as_a_died_worker_with_advice():
    from ksdiff_qgis.batch import died_message

    assert "KSDIFF_MAX_MEMORY_MB" in died_message(RuntimeError()) and "--tile-size" in died_message()


# ------------------------------------------------------------------------- batch: one scene's failures
@pytest.fixture
def low_space(monkeypatch):
    """The output folder has 1 KB free: the engine's pre-check warns (the write itself still fits here)."""
    from ksdiff_qgis.engine.raster_io import space

    monkeypatch.setattr(space, "free_space", lambda folder: 1024)
    monkeypatch.setattr(space, "REFUSE_MARGIN", float("inf"))   # warned of, not refused: these follow the warning


def test_batch_record_keeps_the_free_space_warning_and_prints_it(tmp_path, low_space, capsys):
    """QA: the batch's QuietFeedback dropped fb.warning lines, so "The output may need about …" never showed."""
    from ksdiff_qgis.batch import Progress
    from ksdiff_qgis.engine.scenes import Scene, run_scene

    record = run_scene(Scene(2, scene_kwargs(tmp_path / "o.tif")), cores=1)
    assert record["status"] == "done"
    assert any(w.startswith("The output may need about") for w in record["warnings"]), record["warnings"]
    Progress(1, enabled=False).update(record)
    assert "warning: The output may need about" in capsys.readouterr().err


@pytest.mark.parametrize("error, words", [
    (MemoryError("Unable to allocate 1.2 GiB"), ("Not enough memory", "--tile-size", "KSDIFF_MAX_MEMORY_MB")),
    (OSError(errno.ENOSPC, "No space left on device"), ("No space left on device",)),
    # QA: a thread that cannot start under a virtual-memory cap is memory running out too
    (RuntimeError("can't start new thread"), ("Not enough memory", "--tile-size", "KSDIFF_MAX_MEMORY_MB")),
])
def test_batch_memory_and_disk_full_fail_at_once_with_the_warnings_said_before(tmp_path, low_space, monkeypatch,
                                                                              error, words):
    """Out of memory or a full disk: a failed record in one line (not an exception Dask retries and logs with its
    traceback), with the memory advice QGIS gives, and the warnings said before the failure."""
    from ksdiff_qgis.engine import pipeline
    from ksdiff_qgis.engine.scenes import Scene, run_scene

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(pipeline, "_measured_on", fail)   # after the statistics and the free-space warning
    record = run_scene(Scene(2, scene_kwargs(tmp_path / "o.tif")), cores=1)
    assert record["status"] == "failed"
    assert all(w in record["error"] for w in words), record["error"]
    assert any(w.startswith("The output may need about") for w in record["warnings"])
    assert "threads" not in record["error"], record["error"]   # a classical method (mtf_glp_hpm) ignores them


def test_batch_sidecar_on_a_full_disk_says_the_output_is_complete(tmp_path, monkeypatch):
    """QA: the .ksdiff.json write failed (tmpfs full), Dask retried the scene twice and the report said "the partial
    file was removed and any earlier output there is unchanged" of a complete new o.tif."""
    from ksdiff_qgis.engine import scenes

    real_open = open

    def full_disk_open(path, mode="r", *args, **kwargs):
        if str(path).endswith(".partial") and "w" in mode:
            raise OSError(errno.ENOSPC, "No space left on device", path)
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr("builtins.open", full_disk_open)
    out = tmp_path / "o.tif"
    record = scenes.run_scene(scenes.Scene(2, scene_kwargs(out)), cores=1)   # returned: not retried
    assert record["status"] == "failed" and out.exists()
    assert "is complete, but its record o.tif.ksdiff.json could not be written" in record["error"]
    assert "partial file was removed" not in record["error"]
    assert not list(tmp_path.glob("*.partial")) and not list(tmp_path.glob(".*.partial"))
    json.dumps(record)


# ------------------------------------------------------------------------- the output folder changes mid-run
def test_output_folder_moved_mid_run_is_said_not_blamed_on_another_run(tmp_path, monkeypatch):
    """QA: `mv ro ro_moved` during a run said "another run wrote the output … while this one was fusing"."""
    from ksdiff_qgis.engine import pipeline
    from ksdiff_qgis.engine.errors import InputError
    from ksdiff_qgis.engine.raster_io import writer

    folder = tmp_path / "ro"
    folder.mkdir()
    (folder / "o.tif").write_bytes(b"an earlier output")
    close = writer.GeoTiffWriter.close_checked

    def close_then_move(self):
        close(self)
        os.rename(folder, tmp_path / "ro_moved")

    monkeypatch.setattr(writer.GeoTiffWriter, "close_checked", close_then_move)
    with pytest.raises(InputError, match="disappeared or was moved during the run"):
        pipeline.pansharpen(**scene_kwargs(folder / "o.tif"))


def test_output_folder_made_read_only_mid_run_says_so_and_where_the_temporary_file_is(tmp_path, monkeypatch):
    """QA (chattr +i mid-run): "keeping the result as 'ro/o_1.tif' failed too …, so it was removed" while a 15 MB
    .partial was left. On POSIX the folder's refusal is said, and a temporary file that could not go is named."""
    from ksdiff_qgis.engine import pipeline

    if os.name == "nt":
        pytest.skip("POSIX message")
    out = tmp_path / "o.tif"
    refused = OSError(errno.EPERM, "Operation not permitted")

    def immutable(*args, **kwargs):
        raise PermissionError(*refused.args)

    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, m, *a, **k: False if str(p) == str(tmp_path) and m == os.W_OK
                        and pipeline_started[0] else real_access(p, m, *a, **k))
    pipeline_started = [False]
    from ksdiff_qgis.engine.raster_io import writer

    close = writer.GeoTiffWriter.close_checked

    def close_then_lock(self):
        close(self)
        pipeline_started[0] = True
        monkeypatch.setattr(os, "replace", immutable)
        monkeypatch.setattr(os, "rename", immutable)
        monkeypatch.setattr(os, "remove", immutable)

    monkeypatch.setattr(writer.GeoTiffWriter, "close_checked", close_then_lock)
    with pytest.raises(OSError) as e:
        pipeline.pansharpen(**scene_kwargs(out))
    monkeypatch.undo()
    said = str(e.value)
    assert f"the output folder \"{tmp_path}\" is not writable" in said, said
    left = list(tmp_path.glob(".o.tif.*.partial"))
    assert left and "could not be removed" in said and left[0].name in said
    assert "so it was removed" not in said and "Windows" not in said
