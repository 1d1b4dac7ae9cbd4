"""What the log says about the sensor before fusing (QA 27): a refused run prints only its refusal (no warning about
the model it was not going to use)."""
from __future__ import annotations

import pytest
from osgeo import gdal
from test_issue14_processing import Log as QgisLog
from test_issue14_processing import _run

from ksdiff_qgis.engine.errors import InputError
from ksdiff_qgis.engine.feedback import RecordingFeedback
from ksdiff_qgis.engine.pipeline import pansharpen


def _warnings(log: RecordingFeedback, text: str) -> list[str]:
    return [line for line in log.lines if line.startswith("WARNING") and text in line]


def test_a_refused_run_prints_only_its_refusal(data_dir, tmp_path):
    """SENSOR=pleiades on a 3-band MS warned 'no KSDiff model was trained on Pléiades ...; using qb.onnx' and then
    stopped on the band count; a ratio-2 pair run as Pléiades Neo warned 'using landsat8.onnx' and then stopped on
    the band count; METHOD ksdiff on a ratio-2 pair as Pléiades warned of qb.onnx and stopped on the ratio."""
    ms3 = str(tmp_path / "ms3.tif")
    gdal.Translate(ms3, str(data_dir / "wv2_ms.tif"), bandList=[1, 2, 3])
    cases = [(str(data_dir / "wv2_pan.tif"), ms3, "pleiades", "auto", "has 3 bands but sensor Pléiades"),
             (str(data_dir / "l8_pan.tif"), str(data_dir / "l8_ms.tif"), "pneo", "auto", "has 4 bands but sensor Pl"),
             (str(data_dir / "l8_pan.tif"), str(data_dir / "l8_ms.tif"), "pleiades", "ksdiff",
              "trained for ratio 4; the data has ratio 2 .*SENSOR=landsat8")]
    for i, (pan, ms, sensor, method, refusal) in enumerate(cases):
        log = RecordingFeedback()
        with pytest.raises(InputError, match=refusal):
            pansharpen(pan, ms, str(tmp_path / f"r{i}.tif"), sensor, method, feedback=log)
        assert not [line for line in log.lines if ".onnx" in line or "KSDiff model" in line], (sensor, log.lines)
        assert not (tmp_path / f"r{i}.tif").exists()
    # a run that goes ahead still says which model it borrows
    log = RecordingFeedback()
    pansharpen(str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), str(tmp_path / "ok.tif"), "pleiades",
               "ksdiff", feedback=log)
    assert _warnings(log, "no KSDiff model was trained on Pléiades") and _warnings(log, "qb.onnx")


def test_through_processing_a_refusal_comes_alone(qgis_app, data_dir, tmp_path):
    """Through QGIS Processing a run refused on its band count pushes no warning about the model first."""
    from qgis.core import QgsProcessingException

    log = QgisLog()
    with pytest.raises(QgsProcessingException, match="has 4 bands but sensor"):
        _run({"PAN": str(data_dir / "l8_pan.tif"), "MS": str(data_dir / "l8_ms.tif"), "SENSOR": "pneo",
              "METHOD": "auto", "OUTPUT": str(tmp_path / "pneo.tif")}, log)
    assert not [line for line in log.lines if line.startswith("WARNING")], log.lines
    assert not (tmp_path / "pneo.tif").exists()
