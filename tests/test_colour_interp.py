"""Band kinds from a GeoTIFF's colour interpretation (Red, Green, Blue tags on unnamed bands), the "order assumed"
line wherever unnamed bands are taken in an assumed order, and the advice for inputs that cannot be fused as they are
(a paletted PAN, an MS with fewer bands than its sensor's). Real WorldView-2 pair 1 from `make data`'s cache."""
from __future__ import annotations

import re
import shlex
import shutil
import subprocess

import numpy as np
import pytest
from osgeo import gdal

from ksdiff_qgis.engine.bands import band_names
from ksdiff_qgis.engine.errors import InputError
from ksdiff_qgis.engine.feedback import RecordingFeedback
from ksdiff_qgis.engine.pipeline import pansharpen
from ksdiff_qgis.engine.sensors import SENSORS

TAGS = {"R": gdal.GCI_RedBand, "G": gdal.GCI_GreenBand, "B": gdal.GCI_BlueBand, "U": gdal.GCI_Undefined}
NAMES = {1: "Blue", 2: "Green", 3: "Red", 4: "NIR"}   # pair 1's bands


def _ms(cached, path, bands: list[int], named: bool, tags: str | None = None, fmt: str = "GTiff") -> str:
    """Pair 1's MS with its ``bands`` (1-based, B, G, R, NIR) in that order, named as they are or unnamed, with the
    colour interpretation ``tags`` ('RGBU': Red, Green, Blue, Undefined) or GDAL's default (Gray, Undefined ...)."""
    src = gdal.Open(str(cached("wv2/pair1_ms.tif")))
    if fmt == "VRT":   # a VRT of the file's bands: it holds any colour interpretation
        # of an unnamed copy: a VRT band without a name takes its source band's (delivery.source_band_statements)
        bare = gdal.Translate(str(path) + ".src.tif", src, format="GTiff")
        for b in range(1, bare.RasterCount + 1):
            bare.GetRasterBand(b).SetDescription("")
        bare = None
        ds = gdal.Translate(str(path), str(path) + ".src.tif", format="VRT", bandList=bands)
    else:   # written band by band: a translated GeoTIFF keeps the source's names
        options = ["NBITS=11"] + (["PHOTOMETRIC=RGB", "ALPHA=NO"] if tags and tags.startswith("RGB") else [])
        ds = gdal.GetDriverByName("GTiff").Create(str(path), src.RasterXSize, src.RasterYSize, len(bands),
                                                  gdal.GDT_UInt16, options)
        ds.SetGeoTransform(src.GetGeoTransform())
        ds.SetProjection(src.GetProjection())
    for i, b in enumerate(bands, 1):
        band = ds.GetRasterBand(i)
        if fmt != "VRT":
            band.WriteArray(src.GetRasterBand(b).ReadAsArray())
        band.SetDescription(NAMES[b] if named else "")
        if tags:
            band.SetColorInterpretation(TAGS[tags[i - 1]])
    ds = None
    got = gdal.Open(str(path))
    if tags:   # the file says what the test means
        assert [got.GetRasterBand(i).GetColorInterpretation() for i in range(1, len(bands) + 1)] == [
            TAGS[t] for t in tags]
    assert [got.GetRasterBand(i).GetDescription() for i in range(1, len(bands) + 1)] == [
        NAMES[b] if named else "" for b in bands]
    return str(path)


def _fuse(cached, ms: str, out, sensor: str, method: str = "ksdiff") -> tuple[np.ndarray, list[str], list[str]]:
    log = RecordingFeedback()
    res = pansharpen(str(cached("wv2/pair1_pan.tif")), ms, str(out), sensor, method, feedback=log)
    ds = gdal.Open(res.output_path)
    return ds.ReadAsArray(), [ds.GetRasterBand(i).GetDescription() for i in range(1, ds.RasterCount + 1)], log.lines


@pytest.mark.parametrize("sensor", ["generic", "wv2", "auto"])
def test_unnamed_bands_tagged_red_green_blue_are_fused_as_tagged(cached, tmp_path, sensor):
    """An R, G, B, NIR product without band names, tagged Red, Green, Blue, Undefined: the network gets its Blue,
    Green, Red, NIR as if the bands were named, for every sensor (QA: generic and auto fused it as B, G, R, NIR
    silently, truth ERGAS 1.478 against 1.314 named; SENSOR wv2 warned and fused it swapped all the same). The
    untagged band is the NIR by elimination, and the log says that is assumed."""
    tagged = _ms(cached, tmp_path / "rgbn_tags.tif", [3, 2, 1, 4], named=False, tags="RGBU")
    named = _ms(cached, tmp_path / "rgbn_named.tif", [3, 2, 1, 4], named=True, tags="RGBU")
    got, names, log = _fuse(cached, tagged, tmp_path / "tags_out.tif", sensor)
    want, want_names, _ = _fuse(cached, named, tmp_path / "named_out.tif", sensor)
    assert np.array_equal(got, want)
    assert names == want_names == ["Red", "Green", "Blue", "NIR"]
    said = [line for line in log if line.startswith("MS band names from the file's colour interpretation")]
    assert said == ["MS band names from the file's colour interpretation (the bands have no descriptions): band 1 "
                    "Red, band 2 Green, band 3 Blue"], log
    assumed = [line for line in log if line.startswith("MS band order assumed")]
    assert len(assumed) == 1 and "band 4 has no name" in assumed[0] and "(band 4 NIR)" in assumed[0], log
    assert not [line for line in log if line.startswith("WARNING") and "colour interpretation" in line], log


def test_an_unnamed_band_beside_tagged_ones_is_the_remaining_band_wherever_it_stands(cached, tmp_path):
    """N, R, G, B with tags Undefined, Red, Green, Blue (a VRT: GeoTIFF's photometric cannot hold them): band 1 is
    the sensor's NIR, the one band the tags leave, not its Blue by position (which gave two Blues)."""
    assert band_names(["", "Red", "Green", "Blue"], SENSORS["wv2"]) == ["NIR", "Red", "Green", "Blue"]
    assert band_names(["", "", "", ""], SENSORS["wv2"]) == ["Blue", "Green", "Red", "NIR"]   # by position
    tagged = _ms(cached, tmp_path / "nrgb_tags.vrt", [4, 3, 2, 1], named=False, tags="URGB", fmt="VRT")
    named = _ms(cached, tmp_path / "nrgb_named.vrt", [4, 3, 2, 1], named=True, fmt="VRT")
    for sensor in ("wv2", "generic"):
        got, names, log = _fuse(cached, tagged, tmp_path / f"tags_{sensor}.tif", sensor)
        want, _, _ = _fuse(cached, named, tmp_path / f"named_{sensor}.tif", sensor)
        assert np.array_equal(got, want), sensor
        assert names == ["NIR", "Red", "Green", "Blue"], (sensor, names)
        assert any(line.startswith("MS band order assumed: band 1 has no name") for line in log), log


def test_unnamed_untagged_bands_under_a_network_of_named_bands_say_their_order_is_assumed(cached, tmp_path):
    """A bare 4-band MS under the generic sensor goes to the network of its shape (wv2.onnx, Blue, Green, Red, NIR)
    in its band order: the log says that order is assumed (QA: nothing said it; real pair 1 held R, G, B, NIR: truth
    ERGAS 8.11 against 7.43 named). The output keeps generic names: no name says what the bands are."""
    bare = _ms(cached, tmp_path / "bare.tif", [3, 2, 1, 4], named=False)
    _, names, log = _fuse(cached, bare, tmp_path / "o.tif", "generic")
    assert names == ["Band 1", "Band 2", "Band 3", "Band 4"]
    assert ("MS band order assumed: the bands have no names, so the network takes them in its order (band 1 Blue, "
            "band 2 Green, band 3 Red, band 4 NIR)") in "\n".join(log), log


def test_tagged_unnamed_bands_get_the_natural_colour_style(qgis_app, cached, tmp_path):
    """The .qml follows the tags (QA: "no QGIS style written: ... no band named Red" for an output whose own
    colour interpretation said R, G, B)."""
    import processing
    from qgis.core import QgsRasterLayer

    tagged = _ms(cached, tmp_path / "rgbn.tif", [3, 2, 1, 4], named=False, tags="RGBU")
    out = str(tmp_path / "fused.tif")
    processing.run("ksdiff:pansharpen", {"PAN": str(cached("wv2/pair1_pan.tif")), "MS": tagged, "SENSOR": "generic",
                                         "METHOD": "mtf_glp_hpm", "OUTPUT": out})
    assert (tmp_path / "fused.qml").exists()
    renderer = QgsRasterLayer(out, "opened").renderer()
    assert (renderer.redBand(), renderer.greenBand(), renderer.blueBand()) == (1, 2, 3)


def _byte(src: str, dst: str, top: float) -> str:
    gdal.Translate(dst, src, outputType=gdal.GDT_Byte, scaleParams=[[0, top, 0, 255]])
    return dst


@pytest.mark.parametrize("grey", [True, False])
def test_a_paletted_pan_is_refused_with_commands_that_give_a_usable_pan(cached, tmp_path, grey):
    """A paletted PAN: the refusal's commands, run as given, give a one-band PAN the fusion takes (QA: the advice
    was `gdal_translate -expand rgb`, and its 3-band result was refused next). A grey palette expands to its grey
    values; a colour palette to RGB, then one grey band of it (GDAL's -expand gray takes only the red)."""
    if not (shutil.which("gdal_translate") and shutil.which("gdal_calc.py")):
        pytest.skip("no GDAL command-line tools on PATH")
    pan = _byte(str(cached("wv2/pair1_pan.tif")), str(tmp_path / "pan8.tif"), 2047)
    ms = _byte(str(cached("wv2/pair1_ms.tif")), str(tmp_path / "ms8.tif"), 2047)
    ds = gdal.Open(pan, gdal.GA_Update)
    table = gdal.ColorTable()
    for k in range(256):
        table.SetColorEntry(k, (k, k, k, 255) if grey else (k, 255 - k, (7 * k) % 256, 255))
    ds.GetRasterBand(1).SetRasterColorTable(table)
    ds.GetRasterBand(1).SetColorInterpretation(gdal.GCI_PaletteIndex)
    ds = None
    with pytest.raises(InputError, match="palette indices") as refused:
        pansharpen(pan, ms, str(tmp_path / "o.tif"), "wv2", "mtf_glp_hpm")
    message = str(refused.value)
    commands = re.findall(r"(gdal_translate -expand \w+ \S+ \S+?),? \(|(gdal_translate -expand \w+ \S+ \S+?), then|"
                          r"(gdal_calc\.py .*?) \(or", message)
    commands = [next(c for c in found if c) for found in commands]
    assert commands and ("-expand gray" in commands[0]) == grey, message
    assert len(commands) == (1 if grey else 2), message
    for cmd in commands:
        subprocess.run(shlex.split(cmd), check=True, capture_output=True)
    made = str(tmp_path / "pan8_gray.tif")
    assert gdal.Open(made).RasterCount == 1
    if grey:   # the grey values are the indices themselves
        assert np.array_equal(gdal.Open(made).ReadAsArray(), gdal.Open(pan).ReadAsArray())
    res = pansharpen(made, ms, str(tmp_path / "o.tif"), "wv2", "mtf_glp_hpm")
    assert gdal.Open(res.output_path).RasterCount == 4


def test_too_few_bands_for_the_sensor_are_not_advised_to_be_picked_with_ms_bands(cached, tmp_path):
    """A 3-band MS under SENSOR wv2 (4 bands): no MS_BANDS can make up the fourth, so the refusal does not suggest
    it (QA: it did); an MS with more bands than the sensor's is still told to pick them with MS_BANDS."""
    pan = str(cached("wv2/pair1_pan.tif"))
    three = _ms(cached, tmp_path / "bgr.tif", [1, 2, 3], named=True)
    with pytest.raises(InputError, match="has 3 bands but sensor WorldView-2") as refused:
        pansharpen(pan, three, str(tmp_path / "o.tif"), "wv2", "mtf_glp_hpm")
    assert "MS_BANDS" not in str(refused.value) and "no choice of its 3 bands can make up 4: set" in str(refused.value)
    five = _ms(cached, tmp_path / "five.vrt", [1, 2, 3, 4, 4], named=False, fmt="VRT")
    with pytest.raises(InputError, match="has 5 bands but sensor WorldView-2") as refused:
        pansharpen(pan, five, str(tmp_path / "o.tif"), "wv2", "mtf_glp_hpm")
    assert "MS_BANDS" in str(refused.value)


def test_assess_pairs_a_reordered_fusion_with_the_tagged_bands_of_an_unnamed_ms(cached, tmp_path):
    """ksdiff:assess reads colour-tagged unnamed MS bands as ksdiff:pansharpen does: an R, G, B, NIR MS tagged Red,
    Green, Blue (no descriptions) fused with MS_BANDS 3,2,1,4 (Blue, Green, Red, NIR) is compared band by band with
    the MS's Blue, Green, Red and, by elimination, its untagged NIR (QA: by position, FUSED's Blue against the MS's
    Red: D_lambda 0.0996 where the named MS gives 0.0252)."""
    from ksdiff_qgis.engine.assessment import assess_full

    pan = str(cached("wv2/pair1_pan.tif"))
    got = {}
    for named in (False, True):
        ms = _ms(cached, tmp_path / f"rgbn_{named}.tif", [3, 2, 1, 4], named=named, tags="RGBU")
        out = pansharpen(pan, ms, str(tmp_path / f"o_{named}.tif"), "wv2", "mtf_glp_hpm", ms_bands=[3, 2, 1, 4])
        log = RecordingFeedback()
        got[named] = assess_full(out.output_path, pan, ms, "wv2", feedback=log), log.lines
    (tagged, log), (named, _) = got[False], got[True]
    for key in ("D_lambda", "D_s", "HQNR", "R_SAM", "R_ERGAS"):
        assert tagged[key] == pytest.approx(named[key]), key
    assert ("FUSED's 4 bands are compared with MS's bands of the same names: Blue = MS band 3, Green = MS band 2, "
            "Red = MS band 1, NIR = MS band 4 (unnamed: the band the names leave)") in log, log


def test_assess_reduced_pairs_by_the_reference_colour_interpretation(cached, tmp_path):
    """A REFERENCE of unnamed bands tagged Red, Green, Blue (R, G, B, NIR) against a FUSED named Blue, Green, Red,
    NIR holding the same pixels: paired by colour, a perfect score (QA: paired by position, Blue against Red)."""
    from ksdiff_qgis.engine.assessment import assess_reduced

    fused = _ms(cached, tmp_path / "bgrn.tif", [1, 2, 3, 4], named=True)
    ref = _ms(cached, tmp_path / "rgbn.tif", [3, 2, 1, 4], named=False, tags="RGBU")
    log = RecordingFeedback()
    res = assess_reduced(fused, ref, "wv2", feedback=log)
    assert res["ERGAS"] == pytest.approx(0.0, abs=1e-9) and res["SAM"] == pytest.approx(0.0, abs=1e-6), res
    assert ("REFERENCE band names from the file's colour interpretation (the bands have no descriptions): band 1 Red, "
            "band 2 Green, band 3 Blue") in log.lines, log.lines
