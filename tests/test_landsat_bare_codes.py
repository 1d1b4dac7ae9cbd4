"""Landsat stacks whose bands are named only by bare band codes ('B1' ... 'B4') and whose file names carry no product
ID (a renamed clip), SENSOR auto (QA round 48): the mission is told from the data where it can be (an 8-bit MS is
Landsat 7 ETM+, Landsat 8/9 products being 16-bit), and no natural colour is claimed from codes whose colour depends
on a mission guessed from the geometry alone. Real Landsat 8 pixels (the fixture) stand in for the bands."""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from osgeo import gdal

L7 = "LE07_L1TP_016035_20000417_20200918_02_T1"


def _stack(data_dir: Path, folder: Path, stem: str, byte: bool, codes: tuple[str, ...]) -> dict[str, str]:
    """The Landsat fixture as ``stem``_pan.tif / ``stem``_ms.tif in ``folder``: 8-bit (``byte``, scaled as a user's
    export) or the product's 16-bit values, MS bands described by ``codes`` only, the PAN as B8."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for role, src in (("PAN", "l8_pan.tif"), ("MS", "l8_ms.tif")):
        out[role] = str(folder / f"{stem}_{role.lower()}.tif")
        opts = {"outputType": gdal.GDT_Byte, "scaleParams": [[5000, 25000, 1, 255]]} if byte else {}
        gdal.Translate(out[role], str(data_dir / src), **opts)
        ds = gdal.Open(out[role], gdal.GA_Update)
        for i, code in enumerate(codes if role == "MS" else ("B8",), start=1):
            ds.GetRasterBand(i).SetDescription(code)
        ds = None
    return out


def _run(pan: str, ms: str, out: str) -> list[str]:
    """ksdiff:pansharpen through QGIS Processing, SENSOR auto; the log's info and warning lines."""
    import processing
    from qgis.core import QgsProcessingFeedback

    lines: list[str] = []

    class Fb(QgsProcessingFeedback):
        def pushInfo(self, msg):  # noqa: N802
            lines.append(msg)
            super().pushInfo(msg)

        def pushWarning(self, msg):  # noqa: N802
            lines.append("WARNING " + msg)
            super().pushWarning(msg)

    processing.run("ksdiff:pansharpen", {"PAN": pan, "MS": ms, "SENSOR": "auto", "METHOD": "mtf_glp_hpm",
                                         "OUTPUT": out}, feedback=Fb())
    return lines


def _described(path: str) -> list[tuple[str, int]]:
    ds = gdal.Open(path)
    return [(ds.GetRasterBand(i).GetDescription(), ds.GetRasterBand(i).GetColorInterpretation())
            for i in range(1, ds.RasterCount + 1)]


def _style_bands(output: str) -> list[str] | None:
    """The red/green/blue bands of the output's .qml default style, sorted; None without one."""
    qml = os.path.splitext(output)[0] + ".qml"
    if not os.path.exists(qml):
        return None
    with open(qml, encoding="utf-8") as fh:
        return sorted(re.findall(r'(?:red|green|blue)Band="\d"', fh.read()))


def test_an_8bit_landsat_stack_of_bare_codes_is_etm_as_with_its_product_id(qgis_app, data_dir, tmp_path):
    """8-bit, 15/30 m, bands 'B1'..'B4', no LE07_ in the names: it was taken for Landsat 8/9 from the geometry and
    named B1, B2 Blue, B3 Green, B4 Red (ETM+'s NIR called and drawn as Red). Now Landsat 7 ETM+ (8 bits: Landsat 8/9
    products are 16-bit), said so, and everything as the same stack named with an LE07_ product ID gets."""
    clip = _stack(data_dir, tmp_path / "clip", "clip", True, ("B1", "B2", "B3", "B4"))
    lines = _run(clip["PAN"], clip["MS"], str(tmp_path / "clip.tif"))
    line = next(x for x in lines if "SENSOR=auto" in x)
    assert "[generic]" in line and "4 MS bands of 8 bits (Landsat 8/9 products are 16-bit: Landsat 7 ETM+)" in line \
        and "Landsat 4-7 TM/ETM+" in line and not line.startswith("WARNING"), line
    named = _stack(data_dir, tmp_path / "named", L7, True, ("B1", "B2", "B3", "B4"))
    _run(named["PAN"], named["MS"], str(tmp_path / "named.tif"))
    assert _described(str(tmp_path / "clip.tif")) == _described(str(tmp_path / "named.tif")) == [
        ("B1 Blue", gdal.GCI_BlueBand), ("B2 Green", gdal.GCI_GreenBand), ("B3 Red", gdal.GCI_RedBand),
        ("B4 NIR", gdal.GCI_Undefined)]
    assert _style_bands(str(tmp_path / "clip.tif")) == _style_bands(str(tmp_path / "named.tif")) == [
        'blueBand="1"', 'greenBand="2"', 'redBand="3"']


def test_16bit_bare_codes_guessed_from_geometry_get_no_natural_colour(qgis_app, data_dir, tmp_path):
    """16-bit 'B1'..'B4' at 15/30 m: Landsat 8/9 by the geometry, but the codes mean other colours on a Landsat 7
    Level-2 product of the same geometry: the output keeps the bare codes, no colour tags and no style, and one
    line each says why."""
    pair = _stack(data_dir, tmp_path, "l16", False, ("B1", "B2", "B3", "B4"))
    out = str(tmp_path / "o.tif")
    lines = _run(pair["PAN"], pair["MS"], out)
    assert any("[landsat8]" in x for x in lines if "SENSOR=auto" in x), lines
    doubt = [x for x in lines if "named only B1, B2, B3, B4" in x]
    assert len(doubt) == 1 and doubt[0].startswith("WARNING") and "B4 Red" in doubt[0] and "B4 NIR" in doubt[0] \
        and "SENSOR=landsat8" in doubt[0], lines
    assert _described(out)[1:] == [("B2", gdal.GCI_Undefined), ("B3", gdal.GCI_Undefined), ("B4", gdal.GCI_Undefined)]
    assert _described(out)[0][0] == "B1"
    assert _style_bands(out) is None
    assert any(x.startswith("no QGIS style written: the band codes B1, B2, B3, B4 mean other colours on Landsat 8/9")
               for x in lines), lines


@pytest.mark.parametrize("codes", [("B2", "B3", "B4", "B5"), ("B2 Blue", "B3 Green", "B4 Red", "B5 NIR")])
def test_a_16bit_landsat8_stack_of_b2_to_b5_keeps_its_natural_colour(qgis_app, data_dir, tmp_path, codes):
    """The Landsat 8/9 stack as before: OLI's codes B2..B5 say the sensor, named and drawn in natural colour."""
    pair = _stack(data_dir, tmp_path, "l8", False, codes)
    out = str(tmp_path / "o.tif")
    lines = _run(pair["PAN"], pair["MS"], out)
    assert any("[landsat8]" in x and "MS band descriptions" in x for x in lines), lines
    assert not any("named only" in x for x in lines), lines
    assert [d for d, _ in _described(out)] == ["B2 Blue", "B3 Green", "B4 Red", "B5 NIR"]
    assert _style_bands(out) == ['blueBand="1"', 'greenBand="2"', 'redBand="3"']


def test_an_unnamed_16bit_landsat_stack_is_still_landsat8(data_dir, tmp_path):
    """No band names, 16-bit: Landsat 8/9 from the geometry as before (no bare codes to doubt)."""
    from ksdiff_qgis.engine.pipeline import pansharpen

    ms = str(tmp_path / "ms.tif")
    shutil.copy(data_dir / "l8_ms.tif", ms)
    ds = gdal.Open(ms, gdal.GA_Update)
    for i in range(1, 5):
        ds.GetRasterBand(i).SetDescription("")
    ds = None
    res = pansharpen(str(data_dir / "l8_pan.tif"), ms, str(tmp_path / "o.tif"), "auto", "mtf_glp_hpm")
    assert res.sensor == "landsat8" and res.band_names == ["B2 Blue", "B3 Green", "B4 Red", "B5 NIR"]
    assert res.colour_doubt is None


def test_an_unnamed_8bit_landsat_stack_gets_etm_names_and_colours(qgis_app, data_dir, tmp_path):
    """8-bit, 15/30 m, no band names (Landsat 8 stretched to Byte, QA): ETM+ by its 8 bits, and it came out 'Band 1'..
    'Band 4' with Red, Green, Blue on bands 1-3 (band 1 is Blue on both missions' stacks of this kind). Now named
    and drawn as the LE07_-named B1..B4 stack: B1 Blue .. B4 NIR, blue=1, green=2, red=3."""
    clip = _stack(data_dir, tmp_path / "clip", "clip", True, ("", "", "", ""))
    lines = _run(clip["PAN"], clip["MS"], str(tmp_path / "clip.tif"))
    assert any("[generic]" in x and "Landsat 7 ETM+" in x for x in lines if "SENSOR=auto" in x), lines
    assert _described(str(tmp_path / "clip.tif")) == [
        ("B1 Blue", gdal.GCI_BlueBand), ("B2 Green", gdal.GCI_GreenBand), ("B3 Red", gdal.GCI_RedBand),
        ("B4 NIR", gdal.GCI_Undefined)]
    assert _style_bands(str(tmp_path / "clip.tif")) == ['blueBand="1"', 'greenBand="2"', 'redBand="3"']
