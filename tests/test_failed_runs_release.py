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


def test_a_failed_run_leaves_the_callers_own_layer_alone(qgis_app, inputs, tmp_path):
    """A script's layer from mapLayerFromString sits in its context's temporary store; a failed run with that
    context and the same file as PAN must not delete it (QA: "wrapped C/C++ object … has been deleted")."""
    import processing
    from qgis.core import QgsProcessingContext, QgsProcessingException, QgsProcessingUtils, QgsProject

    folder, pan, ms, far = inputs
    context = QgsProcessingContext()
    context.setProject(QgsProject())
    held = QgsProcessingUtils.mapLayerFromString(pan, context)
    assert held.id() in context.temporaryLayerStore().mapLayers()
    with pytest.raises(QgsProcessingException, match="do not overlap"):
        processing.run("ksdiff:pansharpen", {"PAN": pan, "MS": far, "SENSOR": "wv2", "METHOD": "mtf_glp_hpm",
                                             "OUTPUT": str(tmp_path / "f.tif")}, context=context)
    assert held.isValid() and held.width() == 256
    assert held.id() in context.temporaryLayerStore().mapLayers()
    # the layer the run loaded for its MS is still let go of
    left = context.temporaryLayerStore().mapLayers().values()
    assert not any(os.path.samefile(layer.source(), far) for layer in left)


def test_a_bug_is_said_as_an_internal_error(qgis_app, inputs, tmp_path, monkeypatch):
    """An unexpected exception reads as a bug to report, not as a bare "'band_names'"; an expected refusal (the
    engine's InputError) keeps its plain message."""
    import processing
    from qgis.core import QgsProcessingException, QgsProcessingFeedback

    import ksdiff_qgis.algorithms.pansharpen as module
    from ksdiff_qgis.engine.errors import InputError

    folder, pan, ms, far = inputs
    params = {"PAN": pan, "MS": ms, "SENSOR": "wv2", "METHOD": "mtf_glp_hpm", "OUTPUT": str(tmp_path / "f.tif")}

    def bug(*args, **kwargs):
        raise KeyError("band_names")

    class Log(QgsProcessingFeedback):
        errors: list = []

        def reportError(self, error, fatal=False):  # noqa: N802
            self.errors.append(error)

    monkeypatch.setattr(module, "pansharpen", bug)
    feedback = Log()
    with pytest.raises(QgsProcessingException) as raised:
        processing.run("ksdiff:pansharpen", params, feedback=feedback)
    assert str(raised.value) == "Internal error (KeyError: 'band_names'); please report it with the log above"
    assert any("Traceback" in e and "KeyError: 'band_names'" in e for e in feedback.errors)

    def refused(*args):
        raise InputError("PAN is not a raster")

    monkeypatch.setattr(module, "raster_path", refused)   # in prepareAlgorithm: QGIS logs its message
    feedback = Log()
    feedback.errors = []
    with pytest.raises(QgsProcessingException):
        processing.run("ksdiff:pansharpen", params, feedback=feedback)
    assert "PAN is not a raster" in feedback.errors and not any("Internal" in e for e in feedback.errors)
