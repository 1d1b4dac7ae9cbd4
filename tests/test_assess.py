"""ksdiff:assess in real QGIS: a Wald test case from the real WorldView-2 fixture, fused, then assessed."""
from __future__ import annotations

import math

import numpy as np
import pytest
from osgeo import gdal

from ksdiff_qgis.engine import metrics as M
from ksdiff_qgis.engine.pipeline import pansharpen
from ksdiff_qgis.engine.wald import make_reduced_case

OUTPUTS = ("SAM", "ERGAS", "Q2N", "Q", "SCC", "PSNR", "SSIM", "D_LAMBDA", "D_S", "HQNR")


@pytest.fixture(scope="module")
def wald_case(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("assess")
    case = make_reduced_case(data_dir / "wv2_pan.tif", data_dir / "wv2_ms.tif", str(out), "wv2")
    fused = {}
    for method in ("exp", "mtf_glp_hpm"):
        fused[method] = pansharpen(case.pan, case.ms, str(out / f"fused_{method}.tif"), sensor="wv2",
                                   method=method).output_path
    return case, fused, out


def _run(params):
    import processing

    return processing.run("ksdiff:assess", params)


def test_assess_reduced_resolution(qgis_app, wald_case):
    case, fused, out = wald_case
    html = str(out / "report_rr.html")
    res = _run({"FUSED": fused["mtf_glp_hpm"], "REFERENCE": case.ref, "SENSOR": "wv2", "OUTPUT_HTML": html})
    assert 0 < res["SAM"] < 20 and 0 < res["ERGAS"] < 30
    for k in ("Q2N", "Q", "SCC", "SSIM"):
        assert 0.3 < res[k] < 1.0, k
    assert 15 < res["PSNR"] < 60
    assert res["D_LAMBDA"] is None and res["HQNR"] is None
    with open(res["OUTPUT_HTML"], encoding="utf-8") as fh:
        text = fh.read()
    assert "<svg" in text and "ERGAS" in text and "Blue" in text
    # the algorithm equals the whole-image engine computation
    f = gdal.Open(fused["mtf_glp_hpm"]).ReadAsArray().astype(float)
    r = gdal.Open(case.ref).ReadAsArray().astype(float)
    direct = M.reduced_resolution(f, r, 4, 2047)
    for key, out_name in (("SAM", "SAM"), ("ERGAS", "ERGAS"), ("Q2n", "Q2N"), ("SCC", "SCC")):
        assert res[out_name] == pytest.approx(direct[key], rel=1e-6), key
    # fusion beats plain upsampling on the reference-based indices
    exp = _run({"FUSED": fused["exp"], "REFERENCE": case.ref, "SENSOR": "wv2", "OUTPUT_HTML": str(out / "exp.html")})
    assert res["ERGAS"] < exp["ERGAS"] and res["Q2N"] > exp["Q2N"] and res["SCC"] > exp["SCC"]


def test_assess_full_resolution(qgis_app, wald_case, data_dir, tmp_path):
    case, _, out = wald_case
    fused = pansharpen(str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), str(tmp_path / "full.tif"),
                       sensor="wv2", method="mtf_glp_hpm").output_path
    res = _run({"FUSED": fused, "PAN": str(data_dir / "wv2_pan.tif"), "MS": str(data_dir / "wv2_ms.tif"),
                "SENSOR": "wv2", "OUTPUT_HTML": str(tmp_path / "full.html")})
    assert 0 <= res["D_LAMBDA"] < 0.3 and 0 <= res["D_S"] < 0.3
    assert res["HQNR"] == pytest.approx((1 - res["D_LAMBDA"]) * (1 - res["D_S"]))
    assert res["SAM"] is None
    with open(res["OUTPUT_HTML"], encoding="utf-8") as fh:
        assert "Ds" in fh.read()


def test_assess_needs_a_reference_or_pan_and_ms(qgis_app, wald_case, tmp_path):
    from qgis.core import QgsProcessingException

    _, fused, _ = wald_case
    with pytest.raises(QgsProcessingException):
        _run({"FUSED": fused["exp"], "SENSOR": "wv2", "OUTPUT_HTML": str(tmp_path / "x.html")})


def test_assess_is_registered_with_help(qgis_app):
    from qgis.core import QgsApplication

    alg = QgsApplication.processingRegistry().algorithmById("ksdiff:assess")
    assert alg is not None
    for p in alg.parameterDefinitions():
        assert p.help(), p.name()
    assert {o.name() for o in alg.outputDefinitions()} >= set(OUTPUTS)
