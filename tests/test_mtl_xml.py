"""A Landsat Collection 2 delivery whose only metadata file is its MTL.xml (Collection 2 ships MTL.txt, MTL.json and
MTL.xml; a user may keep the XML alone): SENSOR=auto and the band codes' mission are read from its
<SPACECRAFT_ID>LANDSAT_9</SPACECRAFT_ID> (QA round 58: only `SPACECRAFT_ID = ` was read, so the MTL.xml said
nothing). Rebuilt in tmp_path from crops of the cached Landsat 8 scene, as QA's build.py did."""
from __future__ import annotations

from pathlib import Path

from osgeo import gdal
from test_sensors_bands import Log

from ksdiff_qgis.engine.delivery import landsat_mission
from ksdiff_qgis.engine.pipeline import pansharpen
from ksdiff_qgis.engine.sensor_detect import metadata_candidates

PID = "LC09_L1TP_044034_20220420_20220420_02_T1"


def _mtl_xml(spacecraft: str, sensor: str) -> str:
    files = "".join(f"    <FILE_NAME_BAND_{b}>{PID}_B{b}.TIF</FILE_NAME_BAND_{b}>\n" for b in range(1, 12))
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<LANDSAT_METADATA_FILE>\n  <PRODUCT_CONTENTS>\n'
            f"    <LANDSAT_PRODUCT_ID>{PID}</LANDSAT_PRODUCT_ID>\n{files}  </PRODUCT_CONTENTS>\n"
            f"  <IMAGE_ATTRIBUTES>\n    <SPACECRAFT_ID>{spacecraft}</SPACECRAFT_ID>\n"
            f"    <SENSOR_ID>{sensor}</SENSOR_ID>\n"
            "  </IMAGE_ATTRIBUTES>\n</LANDSAT_METADATA_FILE>\n")


def _delivery(cached, folder: Path, spacecraft: str = "LANDSAT_9", sensor: str = "OLI_TIRS") -> tuple[str, str]:
    """PAN B8 (512 px) and B2-B5 (256 px) as USGS names them, stacked by a VRT in the delivery, beside the MTL.xml
    only. Returns (PAN, MS VRT)."""
    folder.mkdir(parents=True)
    for code, src, side, band in [(f"B{b}", "ms", 256, i) for i, b in enumerate((2, 3, 4, 5), 1)] + [
            ("B8", "pan", 512, 1)]:
        path = str(folder / f"{PID}_{code}.TIF")
        gdal.Translate(path, str(cached(f"landsat8/{src}.tif")), srcWin=[0, 0, side, side], bandList=[band])
        ds = gdal.Open(path, gdal.GA_Update)
        ds.GetRasterBand(1).SetDescription("")
        ds = None
    (folder / f"{PID}_MTL.xml").write_text(_mtl_xml(spacecraft, sensor))
    vrt = str(folder / "ms_stack.vrt")
    gdal.BuildVRT(vrt, [str(folder / f"{PID}_B{b}.TIF") for b in (2, 3, 4, 5)], separate=True)
    return str(folder / f"{PID}_B8.TIF"), vrt


def test_an_mtl_xml_names_the_spacecraft(cached, tmp_path):
    pan, ms = _delivery(cached, tmp_path / PID)
    found, _ = metadata_candidates([ms])
    assert found[0] == ("landsat8", f"{PID}_MTL.xml says LANDSAT_9"), found   # not the file name's product ID
    assert landsat_mission(ms) == ("oli", 9, f"{PID}_MTL.xml says LANDSAT_9")
    log = Log()
    res = pansharpen(pan, ms, str(tmp_path / "o.tif"), "auto", "mtf_glp_hpm", feedback=log)
    assert res.sensor == "landsat8"
    assert any(x.startswith("SENSOR=auto: Landsat 8/9 OLI") and f"{PID}_MTL.xml says LANDSAT_9" in x
               for x in log.lines), log.lines
    assert any("band 1 B2 Blue" in x and f"band codes: {PID}_MTL.xml says LANDSAT_9" in x for x in log.lines), \
        log.lines


def test_an_mss_mtl_xml_is_no_tm_product(cached, tmp_path):
    """Landsat 5 MSS numbers its bands otherwise than TM: its MTL.xml names a satellite KSDiff has no entry for, as its
    MTL.txt does, and gives no band-code mission."""
    _, ms = _delivery(cached, tmp_path / "mss", spacecraft="LANDSAT_5", sensor="MSS")
    found, notes = metadata_candidates([ms])
    assert any("says LANDSAT_5 MSS, a satellite KSDiff has no entry for" in n for n in notes), (found, notes)
    assert landsat_mission(ms) is None or landsat_mission(ms)[2].startswith("the file name"), landsat_mission(ms)
