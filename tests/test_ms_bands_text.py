"""MS_BANDS given as text ("3,2,1", "4 3 2 1", "4;3;2;1") where QGIS writes or presets it: the command History and a
model exported to Python hold (asPythonCommand), and a dialog opened with preset values."""
from __future__ import annotations

from unittest import mock

import numpy as np
import pytest

TEXTS = {"3,2,1": [3, 2, 1], "4 3 2 1": [4, 3, 2, 1], "4;3;2;1": [4, 3, 2, 1], " 2, 4 ": [2, 4]}


def _params(data_dir, bands, output: str) -> dict:
    return {"PAN": str(data_dir / "wv2_pan.tif"), "MS": str(data_dir / "wv2_ms.tif"), "SENSOR": "wv2",
            "METHOD": "brovey", "MS_BANDS": bands, "OUTPUT": output}


def _logged_params(command: str) -> dict:
    """The parameters of a logged ``processing.run(...)`` line, as running it passes them."""
    from qgis.core import QgsProperty

    seen = {}
    runner = mock.MagicMock()
    runner.run.side_effect = lambda alg_id, params: seen.update(params)
    compile(command, "history", "eval")   # QGIS's History runs the line as it is
    eval(command, {"processing": runner, "QgsProperty": QgsProperty})   # noqa: S307 - the line QGIS wrote
    return seen


@pytest.mark.parametrize("text", list(TEXTS))
def test_logged_command_of_band_text_is_python_with_the_same_bands(qgis_app, data_dir, text):
    """QGIS wrote 'MS_BANDS':3,2,1 unquoted (a SyntaxError in History and in a model exported to Python)."""
    from qgis.core import QgsApplication, QgsProcessingContext

    alg = QgsApplication.processingRegistry().createAlgorithmById("ksdiff:pansharpen")
    command = alg.asPythonCommand(_params(data_dir, text, "/tmp/fused.tif"), QgsProcessingContext())
    assert _logged_params(command)["MS_BANDS"] == TEXTS[text], command


def test_logged_command_reruns_the_same_fusion(qgis_app, data_dir, tmp_path):
    """Running the logged line again writes the bands the text chose, pixel for pixel."""
    import processing
    from osgeo import gdal
    from qgis.core import QgsApplication, QgsProcessingContext

    first = str(tmp_path / "text.tif")
    processing.run("ksdiff:pansharpen", _params(data_dir, "3,2,1", first))
    alg = QgsApplication.processingRegistry().createAlgorithmById("ksdiff:pansharpen")
    logged = _logged_params(alg.asPythonCommand(_params(data_dir, "3,2,1", str(tmp_path / "again.tif")),
                                                QgsProcessingContext()))
    again = processing.run("ksdiff:pansharpen", logged)["OUTPUT"]
    a, b = gdal.Open(first), gdal.Open(again)
    assert b.RasterCount == 3 and b.GetMetadataItem("KSDIFF_MS_BANDS") == a.GetMetadataItem("KSDIFF_MS_BANDS")
    assert np.array_equal(a.ReadAsArray(), b.ReadAsArray())


def test_logged_expression_keeps_its_quotes(qgis_app, data_dir):
    """An expression giving the text ('3,2,1') was written fromExpression(''3,2,1''): no Python either."""
    from qgis.core import QgsApplication, QgsProcessingContext, QgsProperty

    alg = QgsApplication.processingRegistry().createAlgorithmById("ksdiff:pansharpen")
    for expression in ("'3,2,1'", "array(3,2,1)"):
        prop = QgsProperty.fromExpression(expression)
        logged = _logged_params(alg.asPythonCommand(_params(data_dir, prop, "/tmp/f.tif"), QgsProcessingContext()))
        assert logged["MS_BANDS"].expressionString() == expression


def test_text_that_is_no_band_list_is_logged_quoted(qgis_app, data_dir):
    """Text the run refuses is still written as Python (the run then refuses it with the accepted forms)."""
    from qgis.core import QgsApplication, QgsProcessingContext

    alg = QgsApplication.processingRegistry().createAlgorithmById("ksdiff:pansharpen")
    command = alg.asPythonCommand(_params(data_dir, "red,green", "/tmp/f.tif"), QgsProcessingContext())
    assert _logged_params(command)["MS_BANDS"] == "red,green"


@pytest.mark.parametrize("text", ["3,2,1", "4 3 2 1"])
def test_dialog_preset_band_text_shows_those_bands(qgis_app, data_dir, no_iface, text):
    """processing.createAlgorithmDialog(alg, {'MS_BANDS': '3,2,1', ...}) showed band 0 (the run then failed 'band 0
    does not exist')."""
    from qgis.core import QgsApplication

    # a fresh instance: the dialog owns its algorithm
    alg = QgsApplication.processingRegistry().createAlgorithmById("ksdiff:pansharpen")
    dialog = alg.createCustomParametersWidget(None)   # what processing.createAlgorithmDialog opens
    try:
        dialog.setParameters(_params(data_dir, text, "/tmp/fused.tif"))
        assert dialog.createProcessingParameters()["MS_BANDS"] == TEXTS[text]
    finally:
        dialog.deleteLater()


def test_model_exported_to_python_keeps_band_text_as_a_list(qgis_app, data_dir, tmp_path, pansharpen_model):
    """A model child given MS_BANDS "3,2,1" exported to Python: the script compiles and fuses those three bands (its
    line read 'MS_BANDS': 3,2,1)."""
    import processing
    from osgeo import gdal
    from qgis.core import QgsProcessing, QgsProcessingContext, QgsProcessingFeedback, QgsProcessingParameterRasterLayer

    raster = QgsProcessingParameterRasterLayer
    model = pansharpen_model("bands", {"PAN": ("pan", raster), "MS": ("ms", raster)},
                             {"SENSOR": "wv2", "METHOD": "brovey", "MS_BANDS": "3,2,1"})
    code = "\n".join(model.asPythonCode(QgsProcessing.PythonQgsProcessingAlgorithmSubclass, 4))
    namespace = {}
    exec(compile(code, "model.py", "exec"), namespace)   # noqa: S102 - the script QGIS wrote
    exported = namespace["Bands"]()
    exported.initAlgorithm()
    res = processing.run(exported, {"pan": str(data_dir / "wv2_pan.tif"), "ms": str(data_dir / "wv2_ms.tif"),
                                    "Fused": str(tmp_path / "exported.tif")},
                         context=QgsProcessingContext(), feedback=QgsProcessingFeedback())
    assert gdal.Open(res["Fused"]).GetMetadataItem("KSDIFF_MS_BANDS") == "3,2,1"
