"""Signals while the Cloud-Optimized GeoTIFF is written (QA139): Ctrl-C under qgis_process cancels, SIGTERM removes
GDAL's overview temporary file from CPL_TMPDIR."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal
from test_data_safety import OLD, _mosaic
from test_qgis_process import profile  # noqa: F401  (module fixture: deploy into a temp profile)

from ksdiff_qgis.engine.raster_io.outputs import cog_options, write_cog

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def _wait_for(folder: Path, suffixes: tuple[str, ...], proc: subprocess.Popen, seconds: float) -> list[str]:
    """The names in ``folder`` ending with one of ``suffixes``, once there are any (empty: the run ended first)."""
    deadline = time.monotonic() + seconds
    while proc.poll() is None and time.monotonic() < deadline:
        found = [f for f in os.listdir(folder) if f.endswith(suffixes)]
        if found:
            return found
        time.sleep(0.01)
    return []


def _stop(proc: subprocess.Popen) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_ctrl_c_under_qgis_process_while_the_cog_is_written_cancels(profile, data_dir, tmp_path):  # noqa: F811
    """QA139 D2: qgis_process turns Ctrl-C into a cancel through Qt's event loop, which nothing ran while GDAL wrote
    the COG: the run went on, exited 0 and replaced the older output. Now it says Cancelled and keeps the old file."""
    from deploy import QGIS_PROCESS

    pan = _mosaic(data_dir / "wv2_pan.tif", tmp_path / "pan.vrt", 8)   # 2048 x 2048: a COG pass of seconds
    ms = _mosaic(data_dir / "wv2_ms.tif", tmp_path / "ms.vrt", 8)
    folder = tmp_path / "out"
    folder.mkdir()
    out = folder / "fused.tif"
    out.write_bytes(OLD)
    proc = subprocess.Popen(
        [QGIS_PROCESS, "run", "ksdiff:pansharpen", "--", f"PAN={pan}", f"MS={ms}", "SENSOR=wv2", "METHOD=gsa",
         "COG=true", f"OUTPUT={out}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen", **profile}, cwd=ROOT)
    try:
        seen = _wait_for(folder, (".partial.cog", ".ovr.tmp"), proc, 240)
        assert seen, f"the COG pass never started (exit status {proc.poll()})"
        proc.send_signal(signal.SIGINT)
    finally:
        stdout, stderr = _stop(proc)
    said = stdout + stderr
    assert "Caught signal: Interrupt" in said and "Cancelled: no output was written" in said, said[-2000:]
    assert proc.returncode != 0
    assert out.read_bytes() == OLD
    assert os.listdir(folder) == ["fused.tif"]


SIGTERM_COG = textwrap.dedent("""
    import sys
    sys.path.insert(0, {root!r})
    from ksdiff_qgis.engine.pipeline import pansharpen
    pansharpen(sys.argv[1], sys.argv[2], sys.argv[3], sensor="wv2", method="gsa", cog=True)
    print("finished")
""")


def test_sigterm_during_the_cog_overviews_removes_gdals_file_in_cpl_tmpdir(data_dir, tmp_path):
    """QA139 D3: with CPL_TMPDIR set, GDAL's COG driver writes the overviews there as
    ``<partial>_<pid>_<n>.ovr.tmp``; a SIGTERM during them left that file (overview-sized) for good."""
    pan = _mosaic(data_dir / "wv2_pan.tif", tmp_path / "pan.vrt", 8)
    ms = _mosaic(data_dir / "wv2_ms.tif", tmp_path / "ms.vrt", 8)
    folder, temp = tmp_path / "out", tmp_path / "cpl_tmp"
    folder.mkdir()
    temp.mkdir()
    out = folder / "fused.tif"
    out.write_bytes(OLD)
    proc = subprocess.Popen([sys.executable, "-c", SIGTERM_COG.format(root=str(ROOT)), pan, ms, str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "CPL_TMPDIR": str(temp)})
    try:
        seen = _wait_for(temp, (".ovr.tmp",), proc, 240)
        assert seen, f"GDAL wrote no overview file into CPL_TMPDIR (exit status {proc.poll()})"
        proc.send_signal(signal.SIGTERM)
    finally:
        stdout, stderr = _stop(proc)
    assert "finished" not in stdout, "the run finished before the SIGTERM: make the scene larger"
    assert proc.returncode == -signal.SIGTERM, (proc.returncode, stderr[-2000:])
    assert os.listdir(temp) == [], seen
    assert os.listdir(folder) == ["fused.tif"] and out.read_bytes() == OLD


def test_gdal_temp_files_names_the_file_gdals_cog_driver_writes_into_cpl_tmpdir(tmp_path):
    """The name ``gdal_temp_files`` looks for is the one this GDAL really writes (seen during a real COG copy), and
    another partial's file, or another process's, is not this run's."""
    from ksdiff_qgis.engine.raster_io.partials import gdal_temp_files

    temp = tmp_path / "cpl_tmp"
    temp.mkdir()
    partial = tmp_path / ".fused.tif.0123abcd.partial"
    src = gdal.GetDriverByName("GTiff").Create(str(partial), 1024, 1024, 2, gdal.GDT_UInt16)
    src.WriteArray(np.random.default_rng(0).integers(0, 4000, (2, 1024, 1024), dtype=np.uint16))
    src = None
    other = [temp / f".fused.tif.0123abcd.partial_{os.getpid() + 1}_1.ovr.tmp",
             temp / f".fused.tif.99999999.partial_{os.getpid()}_1.ovr.tmp"]
    for p in other:
        p.write_bytes(b"x")
    found: list[list[str]] = []
    gdal.SetConfigOption("CPL_TMPDIR", str(temp))
    try:
        write_cog(str(partial), str(partial) + ".cog", cog_options("u"),
                  progress=lambda _f: found.append(sorted(os.path.basename(p) for p in gdal_temp_files(str(partial)))))
    finally:
        gdal.SetConfigOption("CPL_TMPDIR", None)
    names = {n for seen in found for n in seen}
    assert len(names) == 1, found
    assert names.pop().startswith(f".fused.tif.0123abcd.partial_{os.getpid()}_")
    assert sorted(os.listdir(temp)) == sorted(p.name for p in other)   # GDAL removed its own when done


def test_qt_events_are_handled_at_a_cancel_check_only_on_a_console_main_thread(qgis_app, monkeypatch):
    """The desktop (its clicks, the plugin's unloading) and worker threads never have Qt events handled from a cancel
    check: only the main thread of qgis_process or a script, where a Ctrl-C reaches the feedback only so."""
    import threading

    from qgis.core import QgsApplication
    from qgis.PyQt.QtCore import QCoreApplication

    from ksdiff_qgis.algorithms import console_signals

    calls = []
    monkeypatch.setattr(QCoreApplication, "processEvents", lambda *a: calls.append(threading.current_thread()))
    console_signals.deliver_pending_signals()
    assert calls == [threading.main_thread()]
    worker = threading.Thread(target=console_signals.deliver_pending_signals)
    worker.start()
    worker.join()
    monkeypatch.setattr(QgsApplication, "platform", staticmethod(lambda: "desktop"))
    console_signals.deliver_pending_signals()
    assert calls == [threading.main_thread()]
