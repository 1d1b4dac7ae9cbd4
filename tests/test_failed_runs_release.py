"""A failed or cancelled ksdiff:pansharpen run lets go of its inputs: QGIS keeps every exception a Python
algorithm raises, and with it whatever the exception's frames held (QA: 2-4 open input files per failed run, until
QGIS closed)."""
from __future__ import annotations

import os
import shutil

import pytest
from osgeo import gdal


def _open_files(folder) -> list[str]:
    """The files under ``folder`` this process has open (/proc/self/fd)."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(folder)):
            found.append(target)
    return found


@pytest.fixture()
def inputs(data_dir, tmp_path):
    """The real WV2 fixture pair, plus a copy of its MS moved 10 km east (no overlap with the PAN)."""
    folder = tmp_path / "in"
    folder.mkdir()
    pan, ms, far = str(folder / "pan.tif"), str(folder / "ms.tif"), str(folder / "ms_far.tif")
    shutil.copy(data_dir / "wv2_pan.tif", pan)
    shutil.copy(data_dir / "wv2_ms.tif", ms)
    src = gdal.Open(ms)
    x0, dx, _, y0, _, dy = src.GetGeoTransform()
    gdal.Translate(far, src, outputBounds=[x0 + 10000, y0, x0 + 10000 + dx * src.RasterXSize,
                                           y0 + dy * src.RasterYSize])
    src = None
    return folder, pan, ms, far


def test_failed_and_cancelled_runs_close_their_inputs(qgis_app, inputs, tmp_path):
    import processing
    from qgis.core import QgsProcessingException, QgsProcessingFeedback

    folder, pan, ms, far = inputs

    class CancelBeforeTiles(QgsProcessingFeedback):
        """Cancels when the run announces its tiles: the inputs are open, read and planned by then."""

        def pushInfo(self, info):  # noqa: N802
            super().pushInfo(info)
            if info.startswith("output nodata"):
                self.cancel()

    failing = {"PAN": pan, "MS": far, "SENSOR": "wv2", "METHOD": "mtf_glp_hpm"}
    for i in range(3):
        with pytest.raises(QgsProcessingException, match="do not overlap"):
            processing.run("ksdiff:pansharpen", {**failing, "OUTPUT": str(tmp_path / f"f{i}.tif")})
    for i in range(2):
        with pytest.raises(QgsProcessingException, match="Cancelled"):
            processing.run("ksdiff:pansharpen", {"PAN": pan, "MS": ms, "SENSOR": "wv2", "METHOD": "mtf_glp_hpm",
                                                 "OUTPUT": str(tmp_path / f"c{i}.tif")},
                           feedback=CancelBeforeTiles())
    # no gc.collect(): closed when the run ends, not whenever the collector happens to run
    assert _open_files(folder) == []
    assert not os.path.exists(tmp_path / "c0.tif")
