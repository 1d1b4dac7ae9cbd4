"""A generic fusion records the ratio it ran at (KSDIFF_RATIO) and ksdiff:assess divides ERGAS by it (QA round 103:
a SuperView-like product fused with SENSOR generic, assessed against its reference alone, SENSOR auto or generic:
"ERGAS is n/a: the generic sensor has no resolution ratio"); and unnamed bands a generic run's network took in its
order get the natural-colour style by that order. Real WorldView-2 pair 1 crops (tests/data)."""
from __future__ import annotations

import pytest
from osgeo import gdal

from ksdiff_qgis.engine.pipeline import pansharpen


@pytest.fixture(scope="module")
def generic_runs(data_dir, tmp_path_factory):
    """A generic MTF-GLP-HPM fusion (FUSED) and, as its reference, an EXP fusion of the same pair with KSDiff's tags
    taken off (no KSDIFF_WALD either: no other clue to the ratio)."""
    out = tmp_path_factory.mktemp("generic_ratio")
    pan, ms = str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif")
    fused = pansharpen(pan, ms, str(out / "fused.tif"), sensor="generic", method="mtf_glp_hpm").output_path
    exp = pansharpen(pan, ms, str(out / "exp.tif"), sensor="generic", method="exp").output_path
    ref = str(out / "ref.tif")
    gdal.Translate(ref, exp)
    ds = gdal.Open(ref, gdal.GA_Update)
    ds.SetMetadata({k: v for k, v in (ds.GetMetadata() or {}).items() if not k.startswith("KSDIFF_")})
    ds = None
    return fused, ref, out


def test_the_output_records_the_ratio_it_was_fused_at(generic_runs):
    fused, _, _ = generic_runs
    md = gdal.Open(fused).GetMetadata()
    assert md["KSDIFF_SENSOR"] == "generic" and md["KSDIFF_RATIO"] == "4", md


@pytest.mark.parametrize("sensor", [None, "generic"])
def test_assess_gives_ergas_of_a_generic_fusion_against_a_reference_alone(qgis_app, generic_runs, sensor):
    """SENSOR auto (the default: FUSED's KSDIFF_SENSOR=generic) and SENSOR generic: ERGAS at the tagged ratio 4, the
    same figure as with WorldView-2's ratio 4; the log says where the ratio came from."""
    import processing
    from test_issue14_processing import Log

    fused, ref, out = generic_runs
    params = {"FUSED": fused, "REFERENCE": ref, "OUTPUT_HTML": str(out / f"{sensor}.html")}
    log = Log()
    res = processing.run("ksdiff:assess", params if sensor is None else {**params, "SENSOR": sensor}, feedback=log)
    wv2 = processing.run("ksdiff:assess", {**params, "SENSOR": "wv2", "OUTPUT_HTML": str(out / "wv2.html")})
    assert res["ERGAS"] is not None and res["ERGAS"] == pytest.approx(wv2["ERGAS"]) and res["ERGAS"] > 0, log.lines
    assert not any("ERGAS is n/a" in line for line in log.lines), log.lines
    if sensor is None:
        assert any(line.startswith("SENSOR=auto: Generic") and "fused at ratio 4 (its tag KSDIFF_RATIO)" in line
                   for line in log.lines), log.lines
    else:
        assert any("ERGAS uses ratio 4, FUSED's tag KSDIFF_RATIO" in line for line in log.lines), log.lines


def _unnamed_ms(src: str, dst: str) -> str:
    """A copy of the MS with no band descriptions (and no colour interpretation)."""
    gdal.Translate(dst, src)
    ds = gdal.Open(dst, gdal.GA_Update)
    for b in range(1, ds.RasterCount + 1):
        ds.GetRasterBand(b).SetDescription("")
        ds.GetRasterBand(b).SetColorInterpretation(gdal.GCI_Undefined)
    ds = None
    return dst


def test_unnamed_bands_the_network_took_in_its_order_are_drawn_by_that_order(qgis_app, data_dir, tmp_path):
    """QA round 103: an unnamed 4-band MS under SENSOR generic: the log said the network takes band 1 as Blue ... band
    4 as NIR, then 'no QGIS style written', so QGIS drew bands 1, 2, 3 as red, green, blue (Blue as red). Now the
    style draws bands 3, 2, 1 as the network's order has them, and the log says it is the assumed order; the bands
    keep their bare names 'Band i'."""
    import re

    import processing
    from test_issue14_processing import Log

    ms = _unnamed_ms(str(data_dir / "wv2_ms.tif"), str(tmp_path / "ms.tif"))
    out = str(tmp_path / "o.tif")
    log = Log()
    processing.run("ksdiff:pansharpen", {"PAN": str(data_dir / "wv2_pan.tif"), "MS": ms, "SENSOR": "generic",
                                         "METHOD": "ksdiff", "OUTPUT": out}, feedback=log)
    assert any("the network takes them in its order (band 1 Blue, band 2 Green, band 3 Red, band 4 NIR)" in line
               for line in log.lines), log.lines
    line = next((x for x in log.lines if x.startswith("wrote o.qml")), None)
    assert line is not None and "(bands 3, 2, 1 as red, green, blue: the order assumed for the unnamed MS bands, " \
        "Blue, Green, Red, NIR; name the bands if it is not theirs)" in line, log.lines
    with open(str(tmp_path / "o.qml"), encoding="utf-8") as fh:
        qml = fh.read()
    assert sorted(re.findall(r'(?:red|green|blue)Band="\d"', qml)) == ['blueBand="1"', 'greenBand="2"', 'redBand="3"']
    ds = gdal.Open(out)
    assert [ds.GetRasterBand(b).GetDescription() for b in range(1, 5)] == [f"Band {b}" for b in range(1, 5)]
