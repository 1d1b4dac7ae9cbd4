"""Vendor metadata beside the images (QA round 78): GaoFen's <ProductMetaData><SatelliteID> XML, metadata of the MS
and the PAN that name different satellites, and metadata naming a satellite KSDiff has no entry for. The deliveries
are the real WorldView-2 fixture crops renamed as the vendor names its files, with the metadata written here."""
from __future__ import annotations

import shutil
from pathlib import Path

from osgeo import gdal
from test_deliveries import DIMAP, DISPLAY_V2
from test_sensors_bands import Log, _info

from ksdiff_qgis.engine.pipeline import pansharpen
from ksdiff_qgis.engine.sensor_detect import detect_sensor, metadata_detection

GF2 = "GF2_PMS1_E113.6_N23.1_20160101_L1A0001234567"
SV1 = "SV1-01_20170101_L2A0000123456_1012345678_01"
# the head of a real GaoFen-1/2 product XML (CRESDA's layout: the fields GF products carry, in their order)
PRODUCT_XML = """<?xml version="1.0" encoding="UTF-8" ?>
<ProductMetaData>
    <SatelliteID>{sat}</SatelliteID>
    <SensorID>{sensor}</SensorID>
    <ReceiveTime>2016-01-01 03:00:00</ReceiveTime>
    <ProductLevel>LEVEL1A</ProductLevel>
    <ProductFormat>GEOTIFF</ProductFormat>
    <Bands>{bands}</Bands>
</ProductMetaData>
"""


def _vendor_pair(data_dir: Path, folder: Path, stem: str, pan_mark: str, ms_mark: str, sat: str) -> tuple[str, str]:
    """The fixture pair as ``stem``-PAN.tiff / ``stem``-MS.tiff (the vendor's marks), each with its product XML."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for role, mark, bands in (("pan", pan_mark, "5"), ("ms", ms_mark, "1,2,3,4")):
        image = folder / f"{stem}-{mark}.tiff"
        shutil.copy(data_dir / f"wv2_{role}.tif", image)
        (folder / f"{stem}-{mark}.xml").write_text(PRODUCT_XML.format(sat=sat, sensor=stem.split("_")[1], bands=bands))
        paths.append(str(image))
    return paths[0], paths[1]


def test_a_gaofen2_delivery_is_detected_from_its_product_xml(data_dir, tmp_path):
    """GF2_PMS1_...-PAN1.tiff / -MSS1.tiff, each beside its <SatelliteID>GF2</SatelliteID> XML: SENSOR=auto said
    'no product metadata' and took the sensor from the pixel size (IKONOS at 1 m, WorldView-2 at 0.5 m: another
    network, gains and value scale). Now GaoFen-2 from the XML, for ksdiff:pansharpen and ksdiff:assess."""
    pan, ms = _vendor_pair(data_dir, tmp_path, GF2, "PAN1", "MSS1", "GF2")
    found = detect_sensor(_info(pan), _info(ms), 4)
    assert found.key == "gf2" and found.source == "metadata", found.message()
    assert f"{GF2}-MSS1.xml says GF2" in found.message() and not found.warnings, found.warnings
    log = Log()
    res = pansharpen(pan, ms, str(tmp_path / "o.tif"), "auto", "mtf_glp_hpm", feedback=log)
    assert res.sensor == "gf2", log.lines
    # ksdiff:assess without the original PAN and MS: the reference's metadata
    assert metadata_detection([ms], 4).key == "gf2"


def test_ms_and_pan_metadata_naming_different_satellites_is_warned(data_dir, tmp_path):
    """The MS's .IMD says WV02, the PAN's GE01: the MS's won without a word. Now a warning names both files, what is
    used and why."""
    folder = tmp_path / "order"
    folder.mkdir()
    pan, ms = (str(folder / f"15JAN01103000-{c}-056123456010_01_P001.TIF") for c in ("P2AS", "M2AS"))
    shutil.copy(data_dir / "wv2_pan.tif", pan)
    shutil.copy(data_dir / "wv2_ms.tif", ms)
    for code, sat in (("P2AS", "GE01"), ("M2AS", "WV02")):
        (folder / f"15JAN01103000-{code}-056123456010_01_P001.IMD").write_text(
            f'version = "28.3";\nBEGIN_GROUP = IMAGE_1\n\tsatId = "{sat}";\nEND_GROUP = IMAGE_1\nEND;\n')
    log = Log()
    res = pansharpen(pan, ms, str(tmp_path / "o.tif"), "auto", "mtf_glp_hpm", feedback=log)
    assert res.sensor == "wv2"
    warned = [w for w in res.warnings if "different satellites" in w]
    assert len(warned) == 1, res.warnings
    assert ("the MS's: 15JAN01103000-M2AS-056123456010_01_P001.IMD says WV02; the PAN's: "
            "15JAN01103000-P2AS-056123456010_01_P001.IMD says GE01") in warned[0], warned[0]
    assert "WorldView-2 [wv2] is used" in warned[0] and "the MS's metadata decides" in warned[0], warned[0]
    assert any(line.startswith("WARNING") and "different satellites" in line for line in log.lines), log.lines


def test_metadata_naming_a_satellite_without_an_entry_is_said_to_be_ignored(data_dir, tmp_path):
    """SuperView-1's <SatelliteID>SV1-01</SatelliteID>: the log said 'no product metadata', where the README promises
    such metadata is said to be ignored. Now one warning names the satellite and the files, says KSDiff has no entry
    for it and what is used instead; the guess no longer claims there is no metadata."""
    pan, ms = _vendor_pair(data_dir, tmp_path, SV1, "PAN", "MUX", "SV1-01")
    found = detect_sensor(_info(pan), _info(ms), 4)
    assert found.key == "wv2" and "no product metadata:" not in found.message(), found.message()
    assert len(found.warnings) == 1, found.warnings
    assert (f"{SV1}-MUX.xml and {SV1}-PAN.xml say SV1-01, a satellite KSDiff has no entry for: ignored, and "
            "WorldView-2 [wv2] is guessed from the data") in found.warnings[0], found.warnings[0]
    log = Log()
    res = pansharpen(pan, ms, str(tmp_path / "o.tif"), "auto", "mtf_glp_hpm", feedback=log)
    assert any("SV1-01, a satellite KSDiff has no entry for" in w for w in res.warnings), res.warnings


PHR = "PHR1A_{kind}_201501011030000_SEN_1234567101-00{n}"


def _pleiades_pair(data_dir: Path, folder: Path, cut_ms_dimap: bool) -> tuple[str, str]:
    """A Pléiades 1A delivery as GDAL's and KSDiff's readers find it: IMG_<product>_R1C1.TIF (the fixture, MS as
    Airbus delivers it, R, G, B, NIR, unnamed) beside DIM_<product>.XML; ``cut_ms_dimap``: the MS's DIMAP cut off
    inside Raster_Dimensions, as an interrupted download leaves it."""
    paths = []
    for kind, n, src, order, display in (("P", 2, "pan", [1], ""), ("MS", 1, "ms", [3, 2, 1, 4], DISPLAY_V2)):
        pid = PHR.format(kind=kind, n=n)
        sub = folder / f"IMG_PHR1A_{kind}_00{n}"
        sub.mkdir(parents=True)
        image = sub / f"IMG_{pid}_R1C1.TIF"
        # unnamed bands, as Airbus delivers them (the fixture's names dropped in memory: a GeoTIFF keeps them)
        ds = gdal.Translate("", str(data_dir / f"wv2_{src}.tif"), format="MEM", bandList=order)
        for b in range(1, ds.RasterCount + 1):
            ds.GetRasterBand(b).SetDescription("")
            ds.GetRasterBand(b).SetColorInterpretation(gdal.GCI_Undefined)
        gdal.GetDriverByName("GTiff").CreateCopy(str(image), ds, options=["NBITS=12"])
        size = (ds.RasterYSize, ds.RasterXSize)
        ds = None
        ids = ["P"] if kind == "P" else ["B0", "B1", "B2", "B3"]
        text = DIMAP.format(pid=pid, spectral="P" if kind == "P" else "MS", rows=size[0], cols=size[1], th=size[0],
                            tw=size[1], bands=len(order), display=display,
                            files=f'<Data_File tile_R="1" tile_C="1"><DATA_FILE_PATH href="{image.name}"/></Data_File>',
                            radiance="".join(f"<Band_Radiance><BAND_ID>{i}</BAND_ID></Band_Radiance>" for i in ids))
        if kind == "MS" and cut_ms_dimap:
            text = text[:text.index("<NBANDS>") + len("<NBANDS>4")]
        (sub / f"DIM_{pid}.XML").write_text(text)
        paths.append(str(image))
    return paths[0], paths[1]


def test_a_truncated_dimap_is_said_malformed_once_and_gdal_kept_quiet(data_dir, tmp_path):
    """The MS's DIMAP cut off mid-file: GDAL printed 'ERROR 1: Parse error at EOF, not all elements have been
    closed' once per open, and KSDiff never said the DIMAP was malformed nor that its band layout went unread (it
    quietly took R, G, B, NIR). Now GDAL's complaint stays off the console and one warning names the file, what is
    wrong and the order taken instead; a whole DIMAP gives no such warning."""
    pan, ms = _pleiades_pair(data_dir, tmp_path / "cut", cut_ms_dimap=True)
    heard: list[str] = []
    gdal.PushErrorHandler(lambda _cls, _no, msg: heard.append(msg))   # what would reach the console
    try:
        log = Log()
        res = pansharpen(pan, ms, str(tmp_path / "o.tif"), "auto", "mtf_glp_hpm", feedback=log)
    finally:
        gdal.PopErrorHandler()
    assert res.sensor == "pleiades"
    assert not [m for m in heard if "Parse error" in m], heard
    warned = [w for w in res.warnings if "malformed" in w]
    assert len(warned) == 1, res.warnings
    assert warned[0].startswith(f"DIM_{PHR.format(kind='MS', n=1)}.XML, the MS's DIMAP, is malformed XML (")
    assert ("its band layout was not read, and the MS bands are taken in Pléiades 1A/1B's order (band 1 Red, band 2 "
            "Green, band 3 Blue, band 4 NIR)") in warned[0], warned[0]
    pan, ms = _pleiades_pair(data_dir, tmp_path / "whole", cut_ms_dimap=False)
    res = pansharpen(pan, ms, str(tmp_path / "w.tif"), "auto", "mtf_glp_hpm")
    assert not [w for w in res.warnings if "malformed" in w], res.warnings
