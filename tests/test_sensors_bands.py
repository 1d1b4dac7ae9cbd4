"""Issue 14 in the engine: the sensor table, SENSOR=auto, band selection (MS_BANDS) and the area of interest."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from osgeo import gdal

from ksdiff_qgis.engine.bands import band_kind, plan_bands
from ksdiff_qgis.engine.errors import InputError
from ksdiff_qgis.engine.feedback import RecordingFeedback
from ksdiff_qgis.engine.grid import coord_text
from ksdiff_qgis.engine.model_card import bundled_cards
from ksdiff_qgis.engine.pipeline import pansharpen
from ksdiff_qgis.engine.raster_io import describe
from ksdiff_qgis.engine.sensor_detect import detect_sensor
from ksdiff_qgis.engine.sensors import SENSORS, get_sensor, model_for
from model_core.data.scenes import mix_bands

WV8 = ["Coastal", "Blue", "Green", "Yellow", "Red", "Red Edge", "NIR1", "NIR2"]


Log = RecordingFeedback


def _info(path):
    return describe(gdal.Open(str(path)), str(path))


def make_wv2_8band(src, dst):
    """An 8-band WorldView-2 layout from the real 4-band fixture (B, G, R, NIR) plus derived bands."""
    ds = gdal.Open(str(src))
    bands = mix_bands(ds.ReadAsArray().astype(np.float32), "bgrn_to_wv3")   # B, G, R, NIR spread over eight
    out = gdal.GetDriverByName("GTiff").Create(str(dst), ds.RasterXSize, ds.RasterYSize, 8, gdal.GDT_UInt16,
                                              ["NBITS=11"])
    out.SetGeoTransform(ds.GetGeoTransform())
    out.SetProjection(ds.GetProjection())
    for i, (arr, name) in enumerate(zip(bands, WV8), start=1):
        band = out.GetRasterBand(i)
        band.WriteArray(np.rint(arr).astype(np.uint16))
        band.SetDescription(name)
        band.SetNoDataValue(0)
    out = None
    return dst


def test_sensor_table():
    wv2_8 = get_sensor("wv2_8")
    assert wv2_8.mtf_ms == (0.35,) * 7 + (0.27,) and wv2_8.mtf_pan == 0.11 and wv2_8.n_bands == 8
    assert get_sensor("ikonos").mtf_ms == (0.26, 0.28, 0.29, 0.28) and get_sensor("ikonos").mtf_pan == 0.17
    assert get_sensor("ge1").mtf_ms == (0.23,) * 4 and get_sensor("ge1").mtf_pan == 0.16
    for key in ("wv2", "wv3", "qb", "gf2", "landsat8"):       # existing keys keep their own models
        assert model_for(key) == (key, False)
    for key, spec in SENSORS.items():
        assert len(spec.mtf_ms) == spec.n_bands, key
        model, _ = model_for(key)
        assert model is None or model in bundled_cards(), key
    assert model_for("pleiades") == ("qb", True) and model_for("generic") == (None, False)
    # a generic product gets the network of its shape (MS bands, ratio) when one is bundled, else none
    assert model_for("generic", 4, 4) == ("wv2", True) and model_for("generic", 4, 2) == ("landsat8", True)
    assert model_for("generic", 8, 4) == ("wv3", True)
    assert model_for("generic", 3, 4) == (None, False) and model_for("generic", 4, 3) == (None, False)
    # METHOD auto: a product of another ratio than its sensor's gets its shape's network (the sensor's could not run)
    assert model_for("ge1", 4, 2, by_shape=True) == ("landsat8", True) and model_for("ge1", 4, 2) == ("qb", True)
    assert model_for("wv2", 4, 2, by_shape=True) == ("landsat8", True)
    assert model_for("wv2", 4, 4, by_shape=True) == ("wv2", False)
    assert model_for("wv2", 4, 3, by_shape=True) == ("wv2", False)
    with pytest.raises(KeyError, match="known sensors: auto"):
        get_sensor("nope")


@pytest.mark.parametrize("name,kind", [("NIR1", "nir"), ("B5 NIR", "nir"), ("Red Edge", "rededge"), ("B4 Red", "red"),
                                       ("Coastal", "coastal"), ("Deep Blue", "coastal"), ("NIR2", "nir2"), ("", None),
                                       # Sentinel-2's codes (Landsat's unpadded B5 is not Sentinel-2's red edge)
                                       ("B02", "blue"), ("B8A", "nir"), ("B05", "rededge"), ("B5", None),
                                       ("Infrared", "nir"), ("SWIR 1", "swir"),
                                       ("B5, central wavelength 705 nm", "rededge"),
                                       # hyphens, underscores, no spaces (QA: "Red-Edge" read as red, "NIR-2" as nir)
                                       ("Red-Edge", "rededge"), ("Red_Edge", "rededge"), ("RedEdge", "rededge"),
                                       ("NIR-1", "nir"), ("NIR_2", "nir2"), ("NIR-2", "nir2"), ("Near-IR2", "nir2"),
                                       ("Near IR 1", "nir"), ("Near-IR1", "nir"), ("CoastalBlue", "coastal"),
                                       ("Coastal-Blue", "coastal"), ("Deep-Blue", "coastal"),
                                       # localised names, short ones as whole words (QA: Blau, Grün, Rot gave no
                                       # natural colour); 'Rotation' and 'Vertical' are no colours
                                       ("Blau", "blue"), ("Grün", "green"), ("Gru\u0308n", "green"), ("Rot", "red"),
                                       ("Nahes Infrarot", "nir"), ("Rote Kante", "rededge"), ("Bleu", "blue"),
                                       ("Vert", "green"), ("Rouge", "red"), ("Proche infrarouge", "nir"),
                                       ("Bleu côtier", "coastal"), ("Rojo", "red"), ("Infrarrojo cercano", "nir"),
                                       ("Rosso", "red"), ("Vermelho", "red"), ("蓝", "blue"), ("绿", "green"),
                                       ("红", "red"), ("近红外", "nir"), ("红边", "rededge"), ("短波红外", "swir"),
                                       ("Rot 红", "red"), ("Nahes Infrarot 2", "nir2"), ("Rotation", None),
                                       ("Vertical", None), ("Rotes Band", "red"),
                                       # thermal names hold an infrared word (QA: read as NIR), and the middle
                                       # infrared (SWIR) in both word orders (QA: 'Mittleres Infrarot' and
                                       # 'Medio infrarrojo' read as NIR)
                                       ("Thermal infrared", "thermal"), ("Thermisches Infrarot", "thermal"),
                                       ("Infrarouge thermique", "thermal"), ("热红外", "thermal"),
                                       ("远红外", "thermal"), ("Infrarrojo térmico", "thermal"),
                                       ("infrarosso termico", "thermal"), ("Infravermelho termal", "thermal"),
                                       ("TIRS1", "thermal"), ("TIRS", "thermal"), ("LWIR", "thermal"),
                                       ("Mittleres Infrarot", "swir"), ("Mittleres Infrarot 1", "swir"),
                                       ("Medio infrarrojo", "swir"), ("infrarrojo medio", "swir"),
                                       ("Mid infrared", "swir"), ("MIR", "swir"), ("Kurzwelliges Infrarot", "swir"),
                                       ("Infrarot", "nir"), ("Infrarouge", "nir"), ("红外", "nir")])
def test_band_kind(name, kind):
    assert band_kind(name) == kind


def test_auto_detects_fixtures_by_geometry(data_dir):
    wv2 = detect_sensor(_info(data_dir / "wv2_pan.tif"), _info(data_dir / "wv2_ms.tif"), 4)
    assert wv2.key == "wv2" and "0.50 m" in wv2.message()
    l8 = detect_sensor(_info(data_dir / "l8_pan.tif"), _info(data_dir / "l8_ms.tif"), 2)
    assert l8.key == "landsat8"


def test_auto_reads_imagery_metadata(data_dir, tmp_path):
    """A copy carrying GDAL's IMAGERY domain (as GDAL's DigitalGlobe reader fills it) says WorldView-3."""
    ms8 = make_wv2_8band(data_dir / "wv2_ms.tif", tmp_path / "ms8.tif")
    pan = _info(data_dir / "wv2_pan.tif")
    assert detect_sensor(pan, _info(ms8), 4).key == "wv2_8"      # 0.5 m PAN, 8 bands, no metadata
    ds = gdal.Open(str(ms8), gdal.GA_Update)
    ds.SetMetadata({"SATELLITEID": "WV03"}, "IMAGERY")
    ds = None
    found = detect_sensor(pan, _info(ms8), 4)
    assert found.key == "wv3" and found.source == "metadata" and "SATELLITEID=WV03" in found.message()


def test_auto_reads_maxar_imd_and_landsat_mtl(data_dir, tmp_path):
    pan, ms = tmp_path / "scene_P.tif", tmp_path / "scene_M.tif"
    shutil.copy(data_dir / "wv2_pan.tif", pan)
    shutil.copy(data_dir / "wv2_ms.tif", ms)
    (tmp_path / "scene_M.IMD").write_text(
        'version = "28.3";\nBEGIN_GROUP = IMAGE_1\n\tsatId = "QB02";\nEND_GROUP = IMAGE_1\nEND;\n')
    assert detect_sensor(_info(pan), _info(ms), 4).key == "qb"
    # Landsat: the real MTL of the fixture's scene beside copies whose band descriptions are gone, named after the
    # scene (a metadata file counts when it names the input: its product ID or its files)
    l8 = tmp_path / "l8"
    l8.mkdir()
    shutil.copy(data_dir / "l8_mtl" / "LC80200392015216LGN00_MTL.txt", l8)
    for role, name in (("pan", "LC80200392015216LGN00_B8.TIF"), ("ms", "LC80200392015216LGN00_stack.tif")):
        gdal.Translate(str(l8 / name), str(data_dir / f"l8_{role}.tif"))
        ds = gdal.Open(str(l8 / name), gdal.GA_Update)
        for i in range(ds.RasterCount):
            ds.GetRasterBand(i + 1).SetDescription("")
        ds = None
    found = detect_sensor(_info(l8 / "LC80200392015216LGN00_B8.TIF"), _info(l8 / "LC80200392015216LGN00_stack.tif"),
                          2)
    assert found.key == "landsat8" and found.source == "metadata" and "MTL" in found.message()


def test_auto_falls_back_to_generic_with_a_warning(data_dir, tmp_path):
    """Three MS bands at ratio 4 match no sensor: generic, with a warning, and the classical method runs."""
    ms3 = tmp_path / "ms3.tif"
    gdal.Translate(str(ms3), str(data_dir / "wv2_ms.tif"), bandList=[1, 2, 3])
    log = Log()
    res = pansharpen(str(data_dir / "wv2_pan.tif"), str(ms3), str(tmp_path / "out.tif"), "auto", "mtf_glp_hpm",
                     feedback=log)
    assert any(line.startswith("WARNING Sensor not recognised (3 MS bands, ratio 4") for line in log.lines)
    assert gdal.Open(res.output_path).RasterCount == 3
    # forcing the network names what is missing: no model for this shape (it said "none for sensor 'generic'",
    # while generic products of other shapes do get one)
    with pytest.raises(InputError, match="no bundled KSDiff model fits 3 MS bands at ratio 4 .*4 bands at ratio 4"
                                         ".*give an ONNX model"):
        pansharpen(str(data_dir / "wv2_pan.tif"), str(ms3), str(tmp_path / "k.tif"), "generic", "ksdiff")


@pytest.mark.skipif("wv2" not in bundled_cards(), reason="no bundled wv2 model")
def test_a_generic_four_band_product_gets_the_four_band_network(data_dir, tmp_path):
    """SENSOR=generic with 4 MS bands at ratio 4: the 4-band network, with a warning (it was an error before
    2026-12-05), and METHOD=auto checks it on the scene; the same pixels as SENSOR=wv2 gives with the generic
    MTF gains."""
    pan, ms = str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif")
    log = Log()
    res = pansharpen(pan, ms, str(tmp_path / "g.tif"), "generic", "ksdiff", feedback=log)
    assert res.method == "ksdiff"
    assert any(line.startswith("WARNING generic sensor: KSDiff uses the WorldView-2 network (wv2.onnx)")
               for line in log.lines), log.lines
    same = pansharpen(pan, ms, str(tmp_path / "w.tif"), "wv2", "ksdiff", mtf_gains=[0.3])
    assert np.array_equal(gdal.Open(res.output_path).ReadAsArray(), gdal.Open(same.output_path).ReadAsArray())
    auto = pansharpen(pan, ms, str(tmp_path / "a.tif"), "generic", "auto")
    assert auto.selfcheck.learned is not None and auto.selfcheck.pixels > 0


@pytest.mark.skipif("landsat8" not in bundled_cards(), reason="no bundled Landsat model")
def test_landsat_pair_with_default_sensor_runs_ksdiff(data_dir, tmp_path):
    """It used to fail: 'the model wv2.onnx was trained for ratio 4; the data has ratio 2'."""
    log = Log()
    res = pansharpen(str(data_dir / "l8_pan.tif"), str(data_dir / "l8_ms.tif"), str(tmp_path / "l8.tif"),
                     method="ksdiff", feedback=log)
    assert res.ratio == 2 and any("[landsat8]" in line for line in log.lines)
    ds = gdal.Open(res.output_path)
    assert [ds.GetRasterBand(i).GetDescription() for i in (1, 2, 3, 4)] == ["B2 Blue", "B3 Green", "B4 Red", "B5 NIR"]


def _sentinel2_like(data_dir, tmp_path, names: list[str]) -> tuple[str, str]:
    """The Landsat fixture on a 10 m / 20 m grid with Sentinel-2 band names (ratio 2, as a 10 m band + 20 m bands)."""
    out = []
    for role, size in (("pan", 10.0), ("ms", 20.0)):
        path = str(tmp_path / f"s2_{role}.tif")
        gdal.Translate(path, str(data_dir / f"l8_{role}.tif"))
        ds = gdal.Open(path, gdal.GA_Update)
        gt = ds.GetGeoTransform()
        ds.SetGeoTransform((gt[0], size, 0.0, gt[3], 0.0, -size))
        for i in range(ds.RasterCount):
            ds.GetRasterBand(i + 1).SetDescription(names[i] if role == "ms" else "B08")
        ds = None
        out.append(path)
    return out[0], out[1]


def test_a_sentinel2_pair_is_not_called_landsat_and_red_edge_bands_are_warned(data_dir, tmp_path):
    """A 10 m PAN at ratio 2 was taken for Landsat 8/9 (15 m) without a word, and red-edge bands went into the
    Blue/Green/Red/NIR network silently."""
    pan, ms = _sentinel2_like(data_dir, tmp_path, ["B05", "B06", "B07", "B8A"])
    assert detect_sensor(_info(pan), _info(ms), 2).key == "generic"
    log = Log()
    res = pansharpen(pan, ms, str(tmp_path / "re.tif"), "auto", "ksdiff", feedback=log)
    assert res.sensor == "generic"   # what SENSOR=auto took (the batch report's sensor_used)
    assert any(line.startswith("WARNING") and "B05 (rededge)" in line and "by position" in line
               for line in log.lines), log.lines
    # visible bands named by their Sentinel-2 codes: natural colour in QGIS, and no warning
    pan, ms = _sentinel2_like(data_dir, tmp_path, ["B02", "B03", "B04", "B08"])
    log = Log()
    res = pansharpen(pan, ms, str(tmp_path / "vis.tif"), "auto", "ksdiff", feedback=log)
    assert not any("by position" in line for line in log.lines)
    ds = gdal.Open(res.output_path)
    assert [ds.GetRasterBand(i).GetColorInterpretation() for i in (1, 2, 3)] == [
        gdal.GCI_BlueBand, gdal.GCI_GreenBand, gdal.GCI_RedBand]


def test_padded_landsat_band_codes_are_landsat_s(data_dir, tmp_path):
    """A Landsat 8 product whose bands are named B02 ... B05 (as some distributors pad them): with SENSOR=landsat8
    B05 is its NIR, not Sentinel-2's red edge (the red-edge warning fired)."""
    assert band_kind("B05", landsat=True) == "nir" and band_kind("B05") == "rededge"
    ms = str(tmp_path / "l8_padded.tif")
    gdal.Translate(ms, str(data_dir / "l8_ms.tif"))
    ds = gdal.Open(ms, gdal.GA_Update)
    for i, code in enumerate(("B02", "B03", "B04", "B05")):
        ds.GetRasterBand(i + 1).SetDescription(code)
    ds = None
    log = Log()
    pansharpen(str(data_dir / "l8_pan.tif"), ms, str(tmp_path / "o.tif"), "landsat8", "ksdiff", feedback=log)
    assert not any("by position" in line for line in log.lines), log.lines


def test_a_pan_pixel_far_from_square_on_the_ground_is_a_weak_clue(data_dir, tmp_path):
    """Square degrees at 65 N (0.89 x 0.37 m on the ground): the guess from the pixel size says it is a weak clue (it
    took QuickBird's 0.6 m without a word)."""
    from osgeo import osr

    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    out = {}
    for role, px in (("pan", 0.000008), ("ms", 0.000032)):
        out[role] = str(tmp_path / f"{role}.tif")
        gdal.Translate(out[role], str(data_dir / f"wv2_{role}.tif"), outputSRS=srs.ExportToWkt())
        ds = gdal.Open(out[role], gdal.GA_Update)
        ds.SetGeoTransform((10.0, px, 0.0, 65.0, 0.0, -px))
        ds = None
    found = detect_sensor(_info(out["pan"]), _info(out["ms"]), 4)
    assert "far from square" in found.message() and "set SENSOR" in found.message()
    assert "far from square" not in detect_sensor(_info(data_dir / "wv2_pan.tif"), _info(data_dir / "wv2_ms.tif"),
                                                  4).message()


def test_wrong_sensor_error_suggests_the_right_one(data_dir, tmp_path):
    with pytest.raises(InputError, match="ratio 2.*SENSOR=landsat8"):
        pansharpen(str(data_dir / "l8_pan.tif"), str(data_dir / "l8_ms.tif"), str(tmp_path / "x.tif"), "wv2", "ksdiff")


def test_plan_bands_gains_and_model_pick(data_dir, tmp_path):
    ms8 = _info(make_wv2_8band(data_dir / "wv2_ms.tif", tmp_path / "ms8.tif"))
    spec = get_sensor("wv2_8")
    all8 = plan_bands(ms8, spec, None)
    assert all8.indices == list(range(1, 9)) and all8.gains == spec.mtf_ms
    sel = plan_bands(ms8, spec, [8, 5, 3])                       # any count, any order, gains follow the bands
    assert sel.names == ["NIR2", "Red", "Green"] and sel.gains == (0.27, 0.35, 0.35)
    pick = plan_bands(ms8, spec, None, ["Blue", "Green", "Red", "NIR"])   # every band kept, the model's found
    assert pick.indices == list(range(1, 9)) and pick.model == [1, 2, 4, 6]
    assert "Coastal" in pick.notes[0] and "NIR1 (band 7)" in pick.notes[0] and "mtf_glp_hpm" in pick.notes[0]
    # the model's own order among bands ordered otherwise (R, G, B, NIR): the output keeps the MS order
    order = plan_bands(ms8, spec, [5, 3, 2, 7], ["Blue", "Green", "Red", "NIR"])
    assert order.indices == [5, 3, 2, 7] and order.model == [2, 1, 0, 3] and "others" not in order.notes[0]
    assert plan_bands(ms8, spec, [2, 3, 5, 7], ["Blue", "Green", "Red", "NIR"]).model is None
    with pytest.raises(InputError, match="not all found"):
        plan_bands(ms8, spec, [1, 2, 3], ["Blue", "Green", "Red", "NIR"])
    with pytest.raises(InputError, match="does not exist"):
        plan_bands(ms8, spec, [9])
    with pytest.raises(InputError, match="expects 4"):
        plan_bands(ms8, get_sensor("wv2"), None)
    custom = plan_bands(ms8, get_sensor("generic"), [2, 3], custom_gains=[0.2])
    assert custom.gains == (0.2, 0.2)
    # one gain per fused band follows the fused bands' order, not the MS band numbers (until 2026-12-06 NIR1, band
    # 7, picked first took the last gain)
    ordered = plan_bands(ms8, get_sensor("generic"), [7, 5], custom_gains=[0.1, 0.5])
    assert ordered.names == ["NIR1", "Red"] and ordered.gains == (0.1, 0.5)
    with pytest.raises(InputError, match="one per fused band"):
        plan_bands(ms8, get_sensor("generic"), None, custom_gains=[0.1, 0.5])


def _renamed(path, names: list[str], order: list[int] | None = None):
    """``path``'s bands in ``order`` (0-based; None: as they are), described as ``names`` (in the file's order)."""
    src = gdal.Open(str(path))
    order = order or list(range(src.RasterCount))
    dst = str(path).replace(".tif", "_renamed.tif")
    gdal.Translate(dst, src, bandList=[i + 1 for i in order])
    ds = gdal.Open(dst, gdal.GA_Update)
    for i, name in enumerate(names, start=1):
        ds.GetRasterBand(i).SetDescription(name)
    ds = None
    return _info(dst)


def test_hyphenated_band_names_are_matched_and_ambiguity_is_said(data_dir, tmp_path):
    """QA: Coastal, Blue, Green, Yellow, Red, Red-Edge, NIR-1, NIR-2 read Red-Edge as red and NIR-2 as nir: the 8-band
    model was dropped for the 4-band one, and in reversed order Red-Edge was fed to the network as Red, silently."""
    ms8 = make_wv2_8band(data_dir / "wv2_ms.tif", tmp_path / "ms8.tif")
    hyph = ["Coastal", "Blue", "Green", "Yellow", "Red", "Red-Edge", "NIR-1", "NIR-2"]
    spec, model8 = get_sensor("wv2_8"), list(get_sensor("wv3").band_names)
    plan = plan_bands(_renamed(ms8, hyph), spec, None, model8)
    assert plan.model is None and not plan.warnings and not plan.notes   # the 8-band model on all, in order
    rev = plan_bands(_renamed(ms8, hyph[::-1], list(range(7, -1, -1))), spec, None, model8)
    assert rev.model == list(range(7, -1, -1)) and not rev.warnings       # each band where it is, by name
    assert [rev.names[i] for i in rev.model] == hyph
    # two bands that both read as red: the match takes the first, and says so in one line
    twice = plan_bands(_renamed(ms8, ["Coastal", "Blue", "Green", "Yellow", "Red", "Red 2", "NIR1", "NIR2"]), spec,
                       None, ["Blue", "Green", "Red", "NIR"])
    assert len(twice.warnings) == 1 and "Red (band 5) and Red 2 (band 6) both read as red" in twice.warnings[0]
    # the refusal says the order does not matter (it said "select them in that order")
    with pytest.raises(InputError, match="in any order"):
        plan_bands(_info(ms8), spec, [1, 2, 3], ["Blue", "Green", "Red", "NIR"])


LOCALISED_8 = {
    "de": ["Küstenblau", "Blau", "Grün", "Gelb", "Rot", "Rote Kante", "Nahes Infrarot 1", "Nahes Infrarot 2"],
    "fr": ["Bleu côtier", "Bleu", "Vert", "Jaune", "Rouge", "Bord rouge", "Proche infrarouge 1", "Proche infrarouge 2"],
    "es": ["Costero", "Azul", "Verde", "Amarillo", "Rojo", "Borde rojo", "Infrarrojo cercano 1",
           "Infrarrojo cercano 2"],
    "it": ["Costiero", "Blu", "Verde", "Giallo", "Rosso", "Bordo rosso", "Infrarosso vicino 1", "Infrarosso vicino 2"],
    "pt": ["Azul costeiro", "Azul", "Verde", "Amarelo", "Vermelho", "Borda do vermelho", "Infravermelho próximo 1",
           "Infravermelho próximo 2"],
    "zh": ["海岸", "蓝", "绿", "黄", "红", "红边", "近红外1", "近红外2"],
}


@pytest.mark.parametrize("lang", sorted(LOCALISED_8))
def test_localised_band_names_work_as_the_english_ones(data_dir, tmp_path, lang):
    """QA: an MS whose bands are named Blau, Grün, Rot, Nahes Infrarot (or Bleu, Vert, Rouge, Proche infrarouge)
    got no natural colour and opened in false colour. Localised names pick the same model bands in the same order,
    the same MTF gains and the same sensor fit as the English ones, and give the natural-colour bands."""
    from ksdiff_qgis.engine.bandcolour import rgb_bands
    from ksdiff_qgis.engine.bands import holds_sensor_bands

    def copy(src, name):   # _renamed writes beside its input: one file per name set
        return shutil.copy(src, tmp_path / name)

    ms8 = make_wv2_8band(data_dir / "wv2_ms.tif", tmp_path / "ms8.tif")
    rev = list(range(7, -1, -1))   # reversed: each band must be found by its name, not its position
    english = _renamed(copy(ms8, "en8.tif"), WV8[::-1], rev)
    local = _renamed(copy(ms8, "local8.tif"), LOCALISED_8[lang][::-1], rev)
    assert rgb_bands(local.descriptions) == rgb_bands(english.descriptions) == (4, 6, 7)
    for key, model in (("wv2_8", list(get_sensor("wv3").band_names)), ("wv2_8", ["Blue", "Green", "Red", "NIR"]),
                       ("generic", ["Blue", "Green", "Red", "NIR"])):
        want, got = plan_bands(english, get_sensor(key), None, model), plan_bands(local, get_sensor(key), None, model)
        assert (got.model, got.gains, got.warnings) == (want.model, want.gains, want.warnings), (key, model)
    four = [_renamed(copy(data_dir / "wv2_ms.tif", f"{tag}4.tif"), [names[i] for i in (4, 2, 1, 6)], [2, 1, 0, 3])
            for tag, names in (("en", WV8), ("local", LOCALISED_8[lang]))]   # R, G, B, NIR
    assert [holds_sensor_bands(m, get_sensor(k)) for m in (english, local) for k in ("wv2", "wv2_8")] == [False] * 4
    plans = [plan_bands(m, get_sensor("qb"), None, ["Blue", "Green", "Red", "NIR"]) for m in four]
    assert plans[1].model == plans[0].model == [2, 1, 0, 3] and plans[1].gains == plans[0].gains
    assert rgb_bands(four[1].descriptions) == (1, 2, 3)


def test_localised_band_names_give_a_natural_colour_output(data_dir, tmp_path):
    """The QA's German names (with the odd characters it used): the output's bands are tagged red, green and blue
    (it said 'no band named Red; no band named Green; no band named Blue')."""
    from ksdiff_qgis.engine.bandcolour import missing_colours

    names = ["Blau ü", "Grün «g»", "Rot 红", "Nahes Infrarot — NIR"]
    ms = _renamed(shutil.copy(data_dir / "wv2_ms.tif", tmp_path / "ms.tif"), names)
    assert missing_colours(names) == []
    res = pansharpen(str(data_dir / "wv2_pan.tif"), ms.path, str(tmp_path / "o.tif"), "wv2", "gsa")
    ds = gdal.Open(res.output_path)
    assert [gdal.GetColorInterpretationName(ds.GetRasterBand(i).GetColorInterpretation()) for i in range(1, 5)] == \
        ["Blue", "Green", "Red", "Undefined"]


def test_learned_output_keeps_the_ms_band_order_and_every_band(data_dir, tmp_path):
    """KSDiff on a product whose bands are not the model's, in the model's order: the model's bands come out where
    they are in the MS, pixel for pixel the model's output on them, and a band it does not know is fused by
    MTF-GLP-HPM (until 2026-12-06 the output held the model's bands in the model's order: a R, G, B, NIR product
    came out B, G, R, NIR from KSDiff and R, G, B, NIR from the classical method ``auto`` may fall back to, and a
    Pléiades Neo product lost its Deep Blue and Red Edge)."""
    if "wv2" not in bundled_cards():
        pytest.skip("no bundled wv2 model")
    pan, ms4 = str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif")
    ms8 = make_wv2_8band(data_dir / "wv2_ms.tif", tmp_path / "ms8.tif")
    rgbn = str(tmp_path / "rgbn.tif")
    gdal.Translate(rgbn, ms4, bandList=[3, 2, 1, 4])
    ref = gdal.Open(pansharpen(pan, ms4, str(tmp_path / "ref.tif"), "wv2", "ksdiff").output_path).ReadAsArray()
    log = Log()
    res = pansharpen(pan, rgbn, str(tmp_path / "rgbn_out.tif"), "wv2", "ksdiff", feedback=log)
    assert res.band_names == ["Red", "Green", "Blue", "NIR"]
    assert np.array_equal(gdal.Open(res.output_path).ReadAsArray(), ref[[2, 1, 0, 3]])
    assert any("the output keeps the MS band order" in line for line in log.lines), log.lines
    # five bands of an 8-band product, Yellow among them: the 4-band network on four, MTF-GLP-HPM on Yellow
    sel = [7, 5, 3, 2, 4]
    five = pansharpen(pan, str(ms8), str(tmp_path / "five.tif"), "wv2_8", "ksdiff", ms_bands=sel)
    hpm = pansharpen(pan, str(ms8), str(tmp_path / "hpm.tif"), "wv2_8", "mtf_glp_hpm", ms_bands=sel)
    a, h = gdal.Open(five.output_path).ReadAsArray(), gdal.Open(hpm.output_path).ReadAsArray()
    assert five.band_names == ["NIR1", "Red", "Green", "Blue", "Yellow"] and a.shape[0] == 5
    assert np.array_equal(a[4], h[4])
    assert np.abs(a[:4].astype(float) - h[:4]).mean() > 1   # the model's bands are not MTF-GLP-HPM's


@pytest.mark.parametrize("method", ["mtf_glp_hpm", "ksdiff"])
def test_eight_band_product(data_dir, tmp_path, method):
    if method == "ksdiff" and not {"wv2", "wv3"} <= set(bundled_cards()):
        pytest.skip("no bundled wv2 and wv3 models")
    ms8 = make_wv2_8band(data_dir / "wv2_ms.tif", tmp_path / "ms8.tif")
    log = Log()
    res = pansharpen(str(data_dir / "wv2_pan.tif"), str(ms8), str(tmp_path / f"{method}.tif"), "wv2_8", method,
                     feedback=log)
    ds = gdal.Open(res.output_path)
    names = [ds.GetRasterBand(i + 1).GetDescription() for i in range(ds.RasterCount)]
    colours = [ds.GetRasterBand(i + 1).GetColorInterpretation() for i in range(ds.RasterCount)]
    assert names == WV8   # every band, by the 8-band network too (it was the 4-band one's four until 2026-12-05)
    assert [colours[i] for i in (1, 2, 4)] == [gdal.GCI_BlueBand, gdal.GCI_GreenBand, gdal.GCI_RedBand]
    assert ds.ReadAsArray().max() <= 2047   # 11-bit values, stored unpacked by default (engine outputs)
    if method == "ksdiff":
        assert not any("KSDiff fuses the bands its model knows" in line for line in log.lines), log.lines
        # B, G, R, NIR1 picked out: the 4-band network fuses them, the same pixels as the 4-band product the
        # derived bands came from
        log = Log()
        sub = pansharpen(str(data_dir / "wv2_pan.tif"), str(ms8), str(tmp_path / "sub.tif"), "wv2_8", method,
                         ms_bands=[2, 3, 5, 7], feedback=log)
        assert sub.band_names == ["Blue", "Green", "Red", "NIR1"]
        assert any("using wv2.onnx, which fuses Blue, Green, Red, NIR" in line for line in log.lines), log.lines
        ref = pansharpen(str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), str(tmp_path / "r.tif"),
                         "wv2", "ksdiff")
        assert np.array_equal(gdal.Open(sub.output_path).ReadAsArray(), gdal.Open(ref.output_path).ReadAsArray())


def test_extent_snaps_outward_and_matches_the_full_run(data_dir, tmp_path):
    pan, ms = str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif")
    gt = gdal.Open(pan).GetGeoTransform()
    # 100.3 .. 180.6 PAN pixels in x, 40.2 .. 120.9 in y: snapped outward to 100..181 and 40..121
    x0, x1 = gt[0] + 100.3 * gt[1], gt[0] + 180.6 * gt[1]
    y1, y0 = gt[3] + 40.2 * gt[5], gt[3] + 120.9 * gt[5]
    res = pansharpen(pan, ms, str(tmp_path / "aoi.tif"), "wv2", "exp", extent=(x0, y0, x1, y1))
    ds = gdal.Open(res.output_path)
    assert (ds.RasterXSize, ds.RasterYSize) == (81, 81)
    assert ds.GetGeoTransform() == pytest.approx((gt[0] + 100 * gt[1], gt[1], 0, gt[3] + 40 * gt[5], 0, gt[5]))
    full = pansharpen(pan, ms, str(tmp_path / "full.tif"), "wv2", "exp")
    # EXP is local: the window equals the same window of a full run
    assert np.array_equal(ds.ReadAsArray(), gdal.Open(full.output_path).ReadAsArray()[:, 40:121, 100:181])


def test_extent_in_another_crs_and_one_that_misses(data_dir, tmp_path):
    from fixture_helpers import lonlat_window
    from osgeo import osr

    pan, ms = str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif")
    gt = gdal.Open(pan).GetGeoTransform()
    wgs84 = osr.SpatialReference()
    wgs84.ImportFromEPSG(4326)
    res = pansharpen(pan, ms, str(tmp_path / "ll.tif"), "wv2", "exp", extent=lonlat_window(pan),
                     extent_wkt=wgs84.ExportToWkt())
    out = gdal.Open(res.output_path)
    assert 128 <= out.RasterXSize <= 136 and 128 <= out.RasterYSize <= 136
    with pytest.raises(InputError, match="misses the PAN/MS overlap"):
        pansharpen(pan, ms, str(tmp_path / "miss.tif"), "wv2", "exp",
                   extent=(gt[0] - 1000, gt[3] + 500, gt[0] - 900, gt[3] + 600))
    assert not (tmp_path / "miss.tif").exists()


def test_extent_messages_write_plain_coordinates(data_dir, tmp_path):
    """'EXTENT (681107, 5.07384e+06, ...) misses the PAN/MS overlap (593270, 5.74736e+06, ...)': the northings were
    in scientific notation, rounded to 10 m. They are written out in full now (nine digits: millimetres to
    centimetres), as the other messages that name an extent write them (``grid.extent_text``)."""
    pan, ms = str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif")
    gt = gdal.Open(pan).GetGeoTransform()    # origin 593370.2906, 5747557.4172
    with pytest.raises(InputError, match="misses the PAN/MS overlap") as err:
        pansharpen(pan, ms, str(tmp_path / "miss.tif"), "wv2", "exp",
                   extent=(gt[0] - 1000, gt[3] + 500, gt[0] - 900, gt[3] + 600))
    msg = str(err.value)
    assert "e+0" not in msg, msg
    assert "EXTENT (x 592370.291 to 592470.291, y 5748057.42 to 5748157.42 in the PAN CRS)" in msg, msg
    assert "overlap (x 593370.291 to 593498.289, y 5747429.42 to 5747557.42)" in msg, msg
    assert [coord_text(v) for v in (5747557.417181, 12.3456789012, 1e-5, -0.0, 99.99999999)] == \
        ["5747557.42", "12.3456789", "0.00001", "0", "100"]


def test_auto_reads_a_dimap_xml(data_dir, tmp_path):
    """Airbus DIMAP: <MISSION>PHR</MISSION><MISSION_INDEX>1A</MISSION_INDEX> -> Pléiades."""
    for role, kind in (("pan", "P"), ("ms", "MS")):
        shutil.copy(data_dir / f"wv2_{role}.tif", tmp_path / f"IMG_PHR1A_{kind}_001_R1C1.TIF")
        (tmp_path / f"DIM_PHR1A_{kind}_001.XML").write_text(
            "<Dimap_Document><Dataset_Sources><Source_Identification><Strip_Source>\n"
            "  <MISSION>PHR</MISSION>\n  <MISSION_INDEX>1A</MISSION_INDEX>\n"
            "</Strip_Source></Source_Identification></Dataset_Sources></Dimap_Document>\n")
    found = detect_sensor(_info(tmp_path / "IMG_PHR1A_P_001_R1C1.TIF"), _info(tmp_path / "IMG_PHR1A_MS_001_R1C1.TIF"),
                          4)
    assert found.key == "pleiades" and "PHR1A" in found.message()


def test_band_selection_on_a_reprojected_ms(data_dir, tmp_path):
    """MS in another CRS (warped on the fly) and MS_BANDS together."""
    ms_ll = tmp_path / "ms_ll.tif"
    gdal.Warp(str(ms_ll), str(data_dir / "wv2_ms.tif"), dstSRS="EPSG:4326")
    log = Log()
    res = pansharpen(str(data_dir / "wv2_pan.tif"), str(ms_ll), str(tmp_path / "o.tif"), "wv2", "gsa",
                     ms_bands=[4, 1], feedback=log)
    ds = gdal.Open(res.output_path)
    assert ds.RasterCount == 2 and [ds.GetRasterBand(i).GetDescription() for i in (1, 2)] == ["NIR", "Blue"]
    assert any("reprojected" in line for line in log.lines)


def test_gains_follow_band_names_in_a_reordered_product(data_dir, tmp_path):
    """A QuickBird product delivered as R, G, B, NIR gets each band's own gain."""
    rgbn = tmp_path / "rgbn.tif"
    gdal.Translate(str(rgbn), str(data_dir / "wv2_ms.tif"), bandList=[3, 2, 1, 4])
    ds = gdal.Open(str(rgbn), gdal.GA_Update)
    for i, n in enumerate(["Red", "Green", "Blue", "NIR"], start=1):
        ds.GetRasterBand(i).SetDescription(n)
    ds = None
    plan = plan_bands(_info(rgbn), get_sensor("qb"), None)
    assert plan.gains == (0.30, 0.32, 0.34, 0.22)


def test_auto_reads_a_collection2_mtl_json(data_dir, tmp_path):
    """Landsat Collection 2 ships MTL.json; SPACECRAFT_ID sits under IMAGE_ATTRIBUTES (Landsat 9 -> landsat8)."""
    import json

    scene = "LC09_L1TP_020039_20220101_20220101_02_T1"
    for role in ("pan", "ms"):
        shutil.copy(data_dir / f"l8_{role}.tif", tmp_path / f"{scene}_{role}.tif")
    (tmp_path / f"{scene}_MTL.json").write_text(json.dumps(
        {"LANDSAT_METADATA_FILE": {"IMAGE_ATTRIBUTES": {"SPACECRAFT_ID": "LANDSAT_9", "SENSOR_ID": "OLI_TIRS"}}}))
    found = detect_sensor(_info(tmp_path / f"{scene}_pan.tif"), _info(tmp_path / f"{scene}_ms.tif"), 2)
    assert found.key == "landsat8" and found.source == "metadata" and "LANDSAT_9" in found.message()


BYTE = gdal.TranslateOptions(outputType=gdal.GDT_Byte, scaleParams=[[0, 2047, 0, 255]])   # 11-bit -> 8-bit


def _pan8(data_dir, tmp_path) -> str:
    gdal.Translate(str(tmp_path / "pan8.tif"), str(data_dir / "wv2_pan.tif"), options=BYTE)
    return str(tmp_path / "pan8.tif")


def _byte_ms(path, data_dir, bands: np.ndarray, options: list[str]) -> str:
    """``bands`` (C, H, W) uint8 on the MS fixture's grid as a new GTiff with creation ``options`` (none: GDAL's
    default, which flags the 4th of four Byte bands as alpha)."""
    src = gdal.Open(str(data_dir / "wv2_ms.tif"))
    ds = gdal.GetDriverByName("GTiff").Create(str(path), src.RasterXSize, src.RasterYSize, bands.shape[0],
                                              gdal.GDT_Byte, options)
    ds.SetGeoTransform(src.GetGeoTransform())
    ds.SetProjection(src.GetProjection())
    ds.WriteRaster(0, 0, src.RasterXSize, src.RasterYSize, bands.tobytes())
    return str(path)


def _ms_as_8bit(data_dir) -> np.ndarray:
    return np.clip(gdal.Open(str(data_dir / "wv2_ms.tif")).ReadAsArray() / 8, 1, 255).astype(np.uint8)


@pytest.mark.parametrize("cog", [False, True])
def test_byte_output_has_no_alpha_band(data_dir, tmp_path, cog):
    """Four 8-bit bands: GTiff (and COG) store them as RGB + alpha unless told otherwise, and QGIS then draws the
    fourth band (NIR) as transparency. Unnamed bands get no colour; named ones get theirs."""
    pan = _pan8(data_dir, tmp_path)
    ms = gdal.Translate(str(tmp_path / "ms8.tif"), str(data_dir / "wv2_ms.tif"), options=BYTE)
    for i in range(1, 5):
        ms.GetRasterBand(i).SetDescription("")
    ms = None   # closes the file
    for sensor in ("generic", "wv2"):
        res = pansharpen(pan, str(tmp_path / "ms8.tif"), str(tmp_path / f"{sensor}.tif"), sensor, "brovey", cog=cog)
        ds = gdal.Open(res.output_path)
        colours = [ds.GetRasterBand(i).GetColorInterpretation() for i in range(1, 5)]
        assert gdal.GCI_AlphaBand not in colours, (sensor, colours)
        if sensor == "wv2":
            assert colours[:3] == [gdal.GCI_BlueBand, gdal.GCI_GreenBand, gdal.GCI_RedBand]
        else:
            assert not {gdal.GCI_RedBand, gdal.GCI_GreenBand, gdal.GCI_BlueBand} & set(colours)


def test_ms_band_flagged_as_alpha_is_fused_with_a_warning(data_dir, tmp_path):
    """GDAL's default 4-band Byte GeoTIFF flags band 4 as alpha: the band is fused as data (it is the NIR of most
    such products) and the log says how to leave a real transparency band out."""
    pan, arr = _pan8(data_dir, tmp_path), _ms_as_8bit(data_dir)
    for name, options in (("rgba", []), ("plain", ["PHOTOMETRIC=MINISBLACK"])):
        ms = _byte_ms(tmp_path / f"{name}.tif", data_dir, arr, options)
        ds = gdal.Open(ms)   # held: a band outliving its dataset crashes GDAL's Python bindings
        flagged = ds.GetRasterBand(4).GetColorInterpretation() == gdal.GCI_AlphaBand
        ds = None
        assert flagged == (name == "rgba")
        log = Log()
        # generic: the bands keep no sensor's names, so nothing says band 4 is the NIR
        res = pansharpen(pan, ms, str(tmp_path / f"{name}_out.tif"), "generic", "brovey", feedback=log)
        warned = [line for line in log.lines if "flagged as alpha" in line]
        assert bool(warned) == (name == "rgba"), log.lines
        if warned:
            assert warned[0].startswith("WARNING MS band 4 ") and "MS bands 1,2,3" in warned[0]
        assert gdal.Open(res.output_path).RasterCount == 4


def _stretched_8bit(data_dir) -> np.ndarray:
    """The MS fixture stretched band by band from its 2nd to its 98th percentile to 8 bits, as QA129 did: the NIR
    holds 0 on about 2 % of the pixels, scattered."""
    arr = gdal.Open(str(data_dir / "wv2_ms.tif")).ReadAsArray().astype(np.float64)
    low, high = np.percentile(arr, [2, 98], axis=(1, 2))
    out = (arr - low[:, None, None]) * 255 / (high - low)[:, None, None]
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("method", ["bdsd_pc", "gsa", "brovey"])
def test_an_alpha_flagged_nir_is_no_mask_of_the_other_bands(data_dir, tmp_path, method):
    """QA129: numpy/rasterio/QGIS Save As (GDAL's Create()) flag the 4th of four Byte bands as alpha, and GDAL then
    takes it as the mask of bands 1-3. The band is fused as data, so it must hide nothing: the scene statistics
    dropped every pixel where the NIR is 0 (BDSD-PC refused, 'nodata took 100 %'; GSA and Brovey changed silently).
    Every method's output equals the same pixels written unflagged (PHOTOMETRIC=MINISBLACK)."""
    pan, arr = _pan8(data_dir, tmp_path), _stretched_8bit(data_dir)
    assert (arr[3] == 0).mean() > 0.01
    flagged = _byte_ms(tmp_path / "created.tif", data_dir, arr, [])
    control = _byte_ms(tmp_path / "control.tif", data_dir, arr, ["PHOTOMETRIC=MINISBLACK"])
    ds = gdal.Open(flagged)
    assert ds.GetRasterBand(4).GetColorInterpretation() == gdal.GCI_AlphaBand
    assert ds.GetRasterBand(1).GetMaskFlags() == gdal.GMF_PER_DATASET | gdal.GMF_ALPHA
    ds = None
    out = {}
    for name, ms in (("flagged", flagged), ("control", control)):
        log = Log()
        res = pansharpen(pan, ms, str(tmp_path / f"out_{name}.tif"), "wv2", method, feedback=log)
        assert any("flagged as alpha" in line for line in log.lines) == (name == "flagged")
        out[name] = gdal.Open(res.output_path).ReadAsArray()
    assert np.array_equal(out["flagged"], out["control"])


def test_an_unnamed_alpha_flagged_nir_gets_the_command_that_clears_the_flag(data_dir, tmp_path):
    """QA129: an unnamed 4th band flagged alpha that holds data, where the sensor's 4th band is the NIR, is fused as
    the NIR: the warning calls the flag wrong and gives the gdal_edit.py command, as for a band named NIR."""
    pan = _pan8(data_dir, tmp_path)
    ms = _byte_ms(tmp_path / "created.tif", data_dir, _stretched_8bit(data_dir), [])
    log = Log()
    pansharpen(pan, ms, str(tmp_path / "out.tif"), "wv2", "brovey", feedback=log)
    warned = [line for line in log.lines if "flagged as alpha" in line]
    assert len(warned) == 1 and warned[0].startswith("WARNING MS band 4 is flagged"), log.lines
    assert "band order assumed takes it as" in warned[0] and "numpy, rasterio, QGIS Save As" in warned[0]
    assert warned[0].endswith(f"gdal_edit.py -colorinterp_4 undefined {ms}"), warned[0]


def test_a_16bit_ms_with_a_255_alpha_band_keeps_its_opaque_pixels(data_dir, tmp_path):
    """A UInt16 MS whose fifth band is an alpha of 0 and 255 (gdalbuildvrt -addalpha beside 16-bit data, stored as one
    type): only the 0 pixels are nodata (the warper took 65535 as opaque, so 255 hid every pixel: 'everything is
    nodata')."""
    src = gdal.Open(str(data_dir / "wv2_ms.tif"))
    arr = src.ReadAsArray()
    alpha = np.full(arr.shape[1:], 255, np.uint16)
    alpha[:4] = 0
    ms = str(tmp_path / "ms_alpha.tif")
    ds = gdal.GetDriverByName("GTiff").Create(ms, src.RasterXSize, src.RasterYSize, 5, gdal.GDT_UInt16)
    ds.SetGeoTransform(src.GetGeoTransform())
    ds.SetProjection(src.GetProjection())
    for b, band in enumerate([*arr, alpha], start=1):
        ds.GetRasterBand(b).WriteArray(band)
    ds.GetRasterBand(5).SetColorInterpretation(gdal.GCI_AlphaBand)
    ds = None
    src = None
    res = pansharpen(str(data_dir / "wv2_pan.tif"), ms, str(tmp_path / "o.tif"), "wv2", "mtf_glp_hpm")
    out = gdal.Open(res.output_path).ReadAsArray()
    hidden = (out == 0).all(axis=0)
    assert hidden[:16].all() and hidden[16:].mean() < 0.01


def test_ms_transparency_mask_band_is_left_out(data_dir, tmp_path):
    """An RGBA MS whose alpha band really is a mask (only 0 and 255): the mask is not fused as a fourth band and the
    pixels it hides are nodata, whatever values they hold; with MS_BANDS chosen it still hides them."""
    pan, rgb = _pan8(data_dir, tmp_path), _ms_as_8bit(data_dir)[:3]
    alpha = np.full(rgb.shape[1:], 255, np.uint8)
    alpha[:3], alpha[:, :3] = 0, 0   # a transparent frame over real values
    ms = _byte_ms(tmp_path / "rgba.tif", data_dir, np.concatenate([rgb, alpha[None]]), ["PHOTOMETRIC=RGB", "ALPHA=YES"])
    for bands in (None, [3, 2, 1]):
        log = Log()
        res = pansharpen(pan, ms, str(tmp_path / f"out{bands is None}.tif"), "generic", "brovey", ms_bands=bands,
                         feedback=log)
        assert any(line.startswith("WARNING MS band 4 is a transparency mask") and "hides are nodata" in line
                   for line in log.lines), log.lines
        assert not any("flagged as alpha" in line for line in log.lines)
        out = gdal.Open(res.output_path)
        nodata, fused = out.GetRasterBand(1).GetNoDataValue(), out.ReadAsArray()
        assert out.RasterCount == 3 and out.GetRasterBand(1).DataType == gdal.GDT_Byte and nodata == 0
        # PAN rows and columns 0-11 lie in the hidden MS frame (ratio 4); everything from 16 on is data
        assert (fused[:, :12] == nodata).all() and (fused[:, :, :12] == nodata).all()
        assert (fused[:, 16:, 16:] != nodata).all()


def test_auto_falls_back_to_classical_when_the_model_cannot_fuse_the_chosen_bands(data_dir, tmp_path):
    """METHOD auto (the default) with MS bands the bundled network cannot fuse (here B, G, R of a 4-band product):
    a classical method fuses them, as when no model exists; METHOD ksdiff still stops with the reason."""
    pan, ms = str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif")
    log = Log()
    res = pansharpen(pan, ms, str(tmp_path / "auto.tif"), "wv2", "auto", ms_bands=[1, 2, 3], feedback=log)
    assert gdal.Open(res.output_path).RasterCount == 3
    assert any(line.startswith("Method auto: ") and "not all among the selected MS bands" in line
               and "so the best classical method" in line for line in log.lines), log.lines
    with pytest.raises(InputError, match="not all found"):
        pansharpen(pan, ms, str(tmp_path / "ks.tif"), "wv2", "ksdiff", ms_bands=[1, 2, 3])


def test_unnamed_bands_whose_colours_say_another_order_are_followed(data_dir, tmp_path):
    """An R, G, B, NIR product without band names but tagged Red/Green/Blue (Pleiades, SPOT), fused as
    WorldView-2: the tags name the bands, the untagged one is the sensor's NIR (it was silent, then warned: Red and
    Blue swapped in the fusion and the output's names; tests/test_colour_interp.py checks the pixels)."""
    from test_sensor_warnings import _pleiades_like

    rgbn = _pleiades_like(data_dir, tmp_path, photometric="RGB")   # R, G, B tags, no names
    log = Log()
    res = pansharpen(str(data_dir / "wv2_pan.tif"), rgbn, str(tmp_path / "o.tif"), "wv2", "mtf_glp_hpm", feedback=log)
    assert not [w for w in res.warnings if "colour interpretation" in w]
    assert any(line.startswith("MS band names from the file's colour interpretation") for line in log.lines)
    out = gdal.Open(res.output_path)
    assert [out.GetRasterBand(b).GetDescription() for b in range(1, 5)] == ["Red", "Green", "Blue", "NIR"]
    named = pansharpen(str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), str(tmp_path / "n.tif"), "wv2",
                       "mtf_glp_hpm")
    assert not [w for w in named.warnings if "colour interpretation" in w]


def test_gdal_default_rgb_tags_of_an_8bit_product_are_not_a_statement(data_dir, tmp_path):
    """An 8-bit B, G, R, NIR GeoTIFF written by GDAL with default options: GDAL tags bands 1-3 Red, Green, Blue
    whatever they hold — no colour-order warning (its advice would have swapped Blue and Red)."""
    src = gdal.Open(str(data_dir / "wv2_ms.tif"))
    ms = str(tmp_path / "bgrn8.tif")
    ds = gdal.GetDriverByName("GTiff").Create(ms, src.RasterXSize, src.RasterYSize, 4, gdal.GDT_Byte)
    ds.SetGeoTransform(src.GetGeoTransform())
    ds.SetProjection(src.GetProjection())
    for b in range(1, 5):
        ds.GetRasterBand(b).WriteArray((src.GetRasterBand(b).ReadAsArray() // 8).clip(1, 255).astype(np.uint8))
    ds = None
    assert gdal.Open(ms).GetRasterBand(1).GetColorInterpretation() == gdal.GCI_RedBand   # GDAL's default tags
    res = pansharpen(str(data_dir / "wv2_pan.tif"), ms, str(tmp_path / "o.tif"), "wv2", "mtf_glp_hpm")
    assert not [w for w in res.warnings if "colour interpretation" in w]
