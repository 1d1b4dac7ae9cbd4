"""Landsat 4-7, Landsat 8/9 and Sentinel-2 band codes, as delivered files and band descriptions write them: one
definition reads them (``engine/bandcodes.py``; bands.py and delivery.py had three regexes of their own). The tables
hold what the functions answered before that refactor; they answer the same now."""
from __future__ import annotations

from pathlib import Path

import pytest
from osgeo import gdal
from test_deliveries import _stack
from test_sensors_bands import _info

from ksdiff_qgis.engine.bands import band_kind, band_names, landsat_band_name, with_delivery_names
from ksdiff_qgis.engine.delivery import band_code
from ksdiff_qgis.engine.sensors import generic_like, get_sensor
from model_core.datacache import data_dir as cache

L8 = "LC08_L1TP_021032_20200712_20200807_02_T1"
L8_SR = "LC08_L2SP_021032_20200712_20200807_02_T1"
L7 = "LE07_L1TP_021032_20200712_20200807_02_T1"
L5 = "LT05_L1TP_021032_20100712_20200807_02_T1"
S2 = "T32TQM_20240101T101010"
# a delivered file's name -> the band code it ends with (delivery.band_code)
FILE_CODES = [
    (f"{L8}_B4.TIF", "B4"), (f"/data/{L8}/{L8}_B8.TIF", "B8"), (f"{L8}_B10.TIF", "B10"), (f"{L8}_B11.TIF", "B11"),
    (f"{L8_SR}_SR_B5.TIF", "B5"), (f"{L8_SR}_ST_B10.TIF", "B10"), ("LC80200392015216LGN00_B2.TIF", "B2"),
    (f"{L8}_b4.tif", "B4"), (f"{L7}_B8.TIF", "B8"), (f"{L7}_B1.TIF", "B1"), (f"{L5}_B3.TIF", "B3"),
    ("LT05_L2SP_021032_20100712_20200807_02_T1_ST_B6.TIF", "B6"), ("LE70200392015216EDC00_B7.TIF", "B7"),
    (f"{S2}_B08_10m.jp2", "B08"), (f"{S2}_B04_10m.jp2", "B04"), (f"{S2}_B8A_20m.jp2", "B8A"),
    (f"{S2}_B12_20m.jp2", "B12"), (f"{S2}_B01_60m.jp2", "B01"), (f"{S2}_B09.jp2", "B09"), (f"{S2}_B8A.jp2", "B8A"),
    ("B4.TIF", "B4"), ("scene-B4.tif", "B4"), ("scene.B05.tif", "B05"),
    # no band code at the end of the name
    (f"{L7}_B6_VCID_1.TIF", None), (f"{L8}_QA_PIXEL.TIF", None), (f"{L8_SR}_SR_QA_AEROSOL.TIF", None),
    (f"{L8}_MTL.txt", None), (f"{L8}_ANG.txt", None), (f"{L8}_B13.TIF", None), (f"{L8}_B0.TIF", None),
    (f"{L8}_B00.TIF", None), (f"{L8}_B4_extra.TIF", None), ("sceneB4.tif", None), ("B4 Red.tif", None),
    (f"{S2}_TCI_10m.jp2", None), (f"{S2}_SCL_20m.jp2", None), (f"{S2}_AOT_10m.jp2", None),
    (f"{S2}_WVP_10m.jp2", None), (f"{S2}_B04_5m.jp2", None), ("pair1_ms.tif", None),
    ("12JUN15103045-M2AS_R1C1-052345678010_01_P001.TIF", None),
    ("IMG_PHR1A_MS_201206151030451_ORT_1234567101-002_R1C1.TIF", None),
]
# a band description -> (band_kind: no Landsat, Landsat 8/9, Landsat 4-7; landsat_band_name: OLI, TM)
DESCRIPTIONS = [
    ("B4", (None, "red", "nir", "B4 Red", "B4 NIR")),
    ("B04", ("red", "red", "nir", "B4 Red", "B4 NIR")),
    ("b5", (None, "nir", "swir", "B5 NIR", "B5 SWIR1")),
    (" B05 ", ("rededge", "nir", "swir", "B5 NIR", "B5 SWIR1")),
    ("B1", (None, "coastal", "blue", "B1 Coastal", "B1 Blue")),
    ("B01", ("coastal", "coastal", "blue", "B1 Coastal", "B1 Blue")),
    ("B2", (None, "blue", "green", "B2 Blue", "B2 Green")),
    ("B02", ("blue", "blue", "green", "B2 Blue", "B2 Green")),
    ("B03", ("green", "green", "red", "B3 Green", "B3 Red")),
    ("B06", ("rededge", "swir", "thermal", "B6 SWIR1", "B6 Thermal")),
    ("B07", ("rededge", "swir", "swir", "B7 SWIR2", "B7 SWIR2")),
    ("B8", (None, "pan", "pan", "B8 PAN", "B8 PAN")),
    ("B08", ("nir", "pan", "pan", "B8 PAN", "B8 PAN")),
    ("B8A", ("nir", None, None, None, None)),
    ("b8a", ("nir", None, None, None, None)),
    ("B9", (None, "cirrus", None, "B9 Cirrus", None)),
    ("B09", ("vapour", "cirrus", None, "B9 Cirrus", None)),
    ("B10", ("cirrus", "thermal", None, "B10 TIRS1", None)),
    ("B11", ("swir", "thermal", None, "B11 TIRS2", None)),
    ("B12", ("swir", None, None, None, None)),
    ("B0", (None, None, None, None, None)),
    ("B00", (None, None, None, None, None)),
    ("B13", (None, None, None, None, None)),
    ("B_4", (None, None, None, None, None)),
    ("Band 4", (None, None, None, None, None)),
    ("B4 Red", ("red", "red", "red", None, None)),
    ("B5 NIR", ("nir", "nir", "nir", None, None)),
    ("B1 Blue", ("blue", "blue", "blue", None, None)),
    # GDAL's SENTINEL2 driver's band descriptions
    ("B4, central wavelength 665 nm", ("red", "red", "red", None, None)),
    ("B8A, central wavelength 865 nm", ("nir", "nir", "nir", None, None)),
    ("NIR1", ("nir", "nir", "nir", None, None)),
    ("Red Edge", ("rededge", "rededge", "rededge", None, None)),
]


@pytest.mark.parametrize(("name", "code"), FILE_CODES)
def test_band_codes_of_delivered_file_names(name, code):
    assert band_code(name) == code


@pytest.mark.parametrize(("name", "want"), DESCRIPTIONS)
def test_band_codes_in_band_descriptions(name, want):
    got = (band_kind(name), band_kind(name, "oli"), band_kind(name, "tm"), landsat_band_name(name, "oli"),
           landsat_band_name(name, "tm"))
    assert got == want
    assert band_kind(name, True) == want[1]   # True: Landsat 8/9's numbering


def test_band_codes_named_by_the_sensor_table():
    """A bare code the sensor's table names is written out as the table does; anything else is kept."""
    l8, tm, wv2 = get_sensor("landsat8"), generic_like("landsat_tm"), get_sensor("wv2")
    assert band_names(["B4", "B3", "B2", "B5"], l8) == ["B4 Red", "B3 Green", "B2 Blue", "B5 NIR"]
    assert band_names(["b4", "B04", "B0", "B13"], l8) == ["B4 Red", "B04", "B0", "B13"]
    assert band_names(["B4", "B1", "B2", "B8A"], tm) == ["B4 NIR", "B1 Blue", "B2 Green", "B8A"]
    assert band_names(["B4", "B3", "B2", ""], wv2) == ["B4", "B3", "B2", "NIR"]


def test_a_sentinel2_vrt_is_named_from_its_band_files(tmp_path):
    """Sentinel-2 L2A band files (T.._B08_10m.jp2 as GeoTIFFs of the real 10 m crop, unnamed) stacked by QGIS's Build
    Virtual Raster in another order: the VRT's bands take the codes of their files, Sentinel-2's kinds."""
    src = cache() / "sentinel2" / "s2_10m.tif"
    if not src.exists():
        pytest.skip("no Sentinel-2 crop in the data cache (make data)")
    ds = gdal.Open(str(src))
    delivered = [ds.GetRasterBand(b).GetDescription() for b in range(1, ds.RasterCount + 1)]
    assert delivered == ["B02", "B03", "B04", "B08"]
    files = {}
    for b, code in enumerate(delivered, 1):
        files[code] = str(tmp_path / "R10m" / f"{S2}_{code}_10m.tif")
        Path(files[code]).parent.mkdir(exist_ok=True)
        gdal.Translate(files[code], ds, bandList=[b])
        band = gdal.Open(files[code], gdal.GA_Update)
        band.GetRasterBand(1).SetDescription("")
        band = None
    vrt = _stack(tmp_path / "work" / "s2_8432.vrt", [files[c] for c in ("B08", "B04", "B03", "B02")])
    named, notes = with_delivery_names(_info(vrt))
    assert named.descriptions == ["B08", "B04", "B03", "B02"], named.descriptions
    assert [band_kind(n) for n in named.descriptions] == ["nir", "red", "green", "blue"]
    assert notes == ["MS band names from the VRT's source files: band 1 B08, band 2 B04, band 3 B03, band 4 B02"], notes


def test_one_definition_reads_the_codes():
    """``bandcodes``: what a code is, the Landsat band it can be, the Sentinel-2 band it can be."""
    from ksdiff_qgis.engine import bandcodes

    table = {"B4": (4, None), "b05": (5, "05"), " B05 ": (5, "05"), "B8A": (None, "8a"), "B10": (10, "10"),
             "B11": (11, "11"), "B12": (None, "12"), "B1": (1, None), "B09": (9, "09")}
    for text, (landsat, sentinel2) in table.items():
        code = bandcodes.parse(text)
        assert code is not None and (code.landsat, code.sentinel2) == (landsat, sentinel2), text
    for text in ("B0", "B00", "B13", "B_4", "Band 4", "B4 Red", "B4, central wavelength 665 nm", "", "NIR"):
        assert bandcodes.parse(text) is None, text
    for name, code in FILE_CODES:
        assert bandcodes.of_file(name) == code, name
