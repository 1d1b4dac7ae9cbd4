"""Satellite deliveries as they arrive (folders of band files, tiles and sidecar metadata), rebuilt in tmp_path from
the real fixture crops: SENSOR=auto and the band order must follow what the delivery says about the input, and only
that (QA round 8)."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal
from test_sensors_bands import Log, _info

from ksdiff_qgis.engine.bands import band_kind, landsat_band_name, plan_bands, with_delivery_names
from ksdiff_qgis.engine.delivery import band_code, dimap_band_names, landsat_id
from ksdiff_qgis.engine.errors import InputError
from ksdiff_qgis.engine.model_card import bundled_cards
from ksdiff_qgis.engine.pipeline import pansharpen
from ksdiff_qgis.engine.sensor_detect import detect_sensor, metadata_candidates
from ksdiff_qgis.engine.sensors import generic_like, get_sensor

SCENE = "LC80200392015216LGN00"   # the Landsat fixture's scene: tests/data/l8_mtl holds its real MTL


def _landsat_delivery(data_dir: Path, folder: Path) -> dict[str, str]:
    """The Landsat fixture as USGS delivers it: one GeoTIFF per band (no band names) beside the scene's MTL."""
    folder.mkdir(parents=True)
    shutil.copy(data_dir / "l8_mtl" / f"{SCENE}_MTL.txt", folder)
    return _band_files(data_dir, folder, SCENE, ("B2", "B3", "B4", "B5"))


def _band_files(data_dir: Path, folder: Path, product: str, ms_codes: tuple[str, ...]) -> dict[str, str]:
    """The Landsat fixture's MS bands as ``product``_<code>.TIF in ``folder`` (one unnamed GeoTIFF per band, in the
    fixture's order) and its PAN as ``product``_B8.TIF."""
    files = {}
    for code, src, band in [(c, "ms", i + 1) for i, c in enumerate(ms_codes)] + [("B8", "pan", 1)]:
        files[code] = str(folder / f"{product}_{code}.TIF")
        gdal.Translate(files[code], str(data_dir / f"l8_{src}.tif"), bandList=[band])
        ds = gdal.Open(files[code], gdal.GA_Update)
        ds.GetRasterBand(1).SetDescription("")
        ds = None
    return files


def _stack(path: Path, files: list[str]) -> str:
    """What QGIS's Build Virtual Raster (gdalbuildvrt -separate) makes of band files, saved at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    gdal.BuildVRT(str(path), files, separate=True)
    return str(path)


def _bands(path: str) -> np.ndarray:
    return gdal.Open(path).ReadAsArray().astype(np.int64)


@pytest.mark.skipif("landsat8" not in bundled_cards(), reason="no bundled Landsat model")
def test_a_landsat_vrt_stacked_in_another_order_is_fused_by_band_name(data_dir, tmp_path):
    """gdalbuildvrt -separate *_B4.TIF *_B3.TIF *_B2.TIF *_B5.TIF (QGIS's Build Virtual Raster, saved elsewhere):
    the VRT's bands take their names from their files, and the landsat8 network gets them in its own order. They were
    named B2 Blue ... B5 NIR by position and fused swapped, silently."""
    files = _landsat_delivery(data_dir, tmp_path / "delivery")
    vrt = _stack(tmp_path / "work" / "ms_4325.vrt", [files[c] for c in ("B4", "B3", "B2", "B5")])
    log = Log()
    res = pansharpen(files["B8"], vrt, str(tmp_path / "o.tif"), "auto", "ksdiff", feedback=log)
    assert res.sensor == "landsat8" and res.method == "ksdiff"
    assert any("band names from the VRT's source files: band 1 B4 Red, band 2 B3 Green, band 3 B2 Blue, band 4 B5 NIR "
               f"(Landsat 8/9 OLI band codes: {SCENE}_MTL.txt says LANDSAT_8)" in line for line in log.lines), log.lines
    out = gdal.Open(res.output_path)
    assert [out.GetRasterBand(i).GetDescription() for i in (1, 2, 3, 4)] == ["B4 Red", "B3 Green", "B2 Blue", "B5 NIR"]
    # the same fusion as the delivery's own order (the fixture, B2 ... B5), each band in its place
    ref = pansharpen(files["B8"], str(data_dir / "l8_ms.tif"), str(tmp_path / "ref.tif"), "landsat8", "ksdiff")
    got, want = _bands(res.output_path), _bands(ref.output_path)[[2, 1, 0, 3]]
    assert np.abs(got - want).max() <= 1, np.abs(got - want).max()


L7 = "LE07_L1TP_021032_20200712_20200807_02_T1"   # a Landsat 7 ETM+ Collection 2 product ID
L7_MTL = """GROUP = LANDSAT_METADATA_FILE
  GROUP = PRODUCT_CONTENTS
    LANDSAT_PRODUCT_ID = "{pid}"
    PROCESSING_LEVEL = "L1TP"
{files}
  END_GROUP = PRODUCT_CONTENTS
  GROUP = IMAGE_ATTRIBUTES
    SPACECRAFT_ID = "{sat}"
    SENSOR_ID = "{sensor}"
  END_GROUP = IMAGE_ATTRIBUTES
END_GROUP = LANDSAT_METADATA_FILE
END
"""


def _landsat7_delivery(data_dir: Path, folder: Path, mtl: bool = True, pid: str = L7, sat: str = "LANDSAT_7",
                       sensor: str = "ETM") -> dict[str, str]:
    """The Landsat fixture's pixels as a Landsat 7 ETM+ delivery: B1 blue, B2 green, B3 red, B4 NIR (Landsat 8's B2 ...
    B5) and the PAN as B8, one GeoTIFF per band without names, beside an MTL (``mtl``) that names them."""
    folder.mkdir(parents=True)
    files = _band_files(data_dir, folder, pid, ("B1", "B2", "B3", "B4"))
    if mtl:
        listed = "\n".join(f'    FILE_NAME_BAND_{c[1:]} = "{pid}_{c}.TIF"'
                           for c in ("B1", "B2", "B3", "B4", "B5", "B7", "B8"))
        (folder / f"{pid}_MTL.txt").write_text(L7_MTL.format(pid=pid, files=listed, sat=sat, sensor=sensor))
    return files


@pytest.mark.skipif("landsat8" not in bundled_cards(), reason="no bundled Landsat model")
def test_a_landsat7_delivery_is_read_with_landsat7_band_codes(data_dir, tmp_path):
    """LE07_..._B4.TIF, _B3, _B2, _B1 stacked (QGIS's Build Virtual Raster) with the PAN B8, beside the MTL that says
    LANDSAT_7: SENSOR=auto said 'Landsat 8/9 OLI ... no product metadata' (LANDSAT_7 was dropped silently) and named
    the bands with Landsat 8's codes, B4 'Red' on Landsat 7's NIR and B1 'coastal' on its blue: false colour in
    QGIS, and the network fed NIR as red. Now: recognised as Landsat 7 and said so, fused as generic with Landsat
    4-7's band codes (ratio 2; the bundled ratio-2 network as the nearest, fed each band as what it is), and a forced
    SENSOR=landsat8 gets the same bands by name."""
    files = _landsat7_delivery(data_dir, tmp_path / "delivery")
    vrt = _stack(tmp_path / "work" / "l7_4321.vrt", [files[c] for c in ("B4", "B3", "B2", "B1")])
    log = Log()
    res = pansharpen(files["B8"], vrt, str(tmp_path / "o.tif"), "auto", "ksdiff", feedback=log)
    assert res.sensor == "generic"
    line = next(x for x in log.lines if "SENSOR=auto" in x)
    assert f"{L7}_MTL.txt says LANDSAT_7" in line and "Landsat 4-7 TM/ETM+" in line and "ratio 2" in line, line
    assert not line.startswith("WARNING") and "no product metadata" not in line, line
    assert any("band 1 B4 NIR, band 2 B3 Red, band 3 B2 Green, band 4 B1 Blue (Landsat 4-7 TM/ETM+ band codes: "
               f"{L7}_MTL.txt says LANDSAT_7)" in x for x in log.lines), log.lines
    assert any("fuses the bands its model knows: B1 Blue (band 4), B2 Green (band 3), B3 Red (band 2), B4 NIR "
               "(band 1)" in x for x in log.lines), log.lines
    out = gdal.Open(res.output_path)
    assert [out.GetRasterBand(i).GetDescription() for i in (1, 2, 3, 4)] == ["B4 NIR", "B3 Red", "B2 Green", "B1 Blue"]
    assert [out.GetRasterBand(i).GetColorInterpretation() for i in (2, 3, 4)] == \
        [gdal.GCI_RedBand, gdal.GCI_GreenBand, gdal.GCI_BlueBand]
    # the same fusion as the delivery stacked in its own order (B1 ... B4), each band in its place
    in_order = _stack(tmp_path / "work" / "l7_1234.vrt", [files[c] for c in ("B1", "B2", "B3", "B4")])
    ref = pansharpen(files["B8"], in_order, str(tmp_path / "ref.tif"), "auto", "ksdiff")
    got, want = _bands(res.output_path), _bands(ref.output_path)[[3, 2, 1, 0]]
    assert np.abs(got - want).max() <= 1, np.abs(got - want).max()
    # SENSOR=landsat8 forced: the names are the delivery's, not Landsat 8's codes, and the network gets them so
    log = Log()
    forced = pansharpen(files["B8"], vrt, str(tmp_path / "f.tif"), "landsat8", "ksdiff", feedback=log)
    assert forced.band_names == ["B4 NIR", "B3 Red", "B2 Green", "B1 Blue"]
    assert any("B1 Blue (band 4), B2 Green (band 3), B3 Red (band 2), B4 NIR (band 1)" in x for x in log.lines)


def test_landsat_missions_from_product_ids_and_mtls(data_dir, tmp_path):
    """Without an MTL the product ID the file names start with says the mission (and so the band codes); an MSS
    product (other band numbering) or an unknown satellite is said to be ignored, not dropped silently."""
    files = _landsat7_delivery(data_dir, tmp_path / "lt05", mtl=False, pid="LT05_L1TP_021032_20100712_20200807_02_T1")
    vrt = _stack(tmp_path / "work" / "lt05.vrt", [files[c] for c in ("B3", "B2", "B1", "B4")])
    named, notes = with_delivery_names(_info(vrt))
    assert named.descriptions == ["B3 Red", "B2 Green", "B1 Blue", "B4 NIR"]
    assert "the file name LT05_L1TP_021032_20100712_20200807_02_T1_B3.TIF carries a Landsat 5 product ID" in notes[0]
    found = detect_sensor(_info(files["B8"]), named, 2)
    assert found.key == "generic" and found.like == "landsat_tm" and found.source == "metadata", found.message()
    # the older scene IDs, and what is no TM/ETM+/OLI product
    assert landsat_id("LE70200392015216EDC00_B8.TIF") == ("tm", 7) and landsat_id(f"{SCENE}_B4.TIF") == ("oli", 8)
    assert landsat_id("LC09_L2SP_021032_20220712_20220807_02_T1_SR_B5.TIF") == ("oli", 9)
    assert landsat_id("LM05_L1TP_021032_19900712_20200807_02_T2_B1.TIF") is None and landsat_id("pair1_ms.tif") is None
    assert landsat_band_name("B4", "tm") == "B4 NIR" and landsat_band_name("B04", "oli") == "B4 Red"
    assert band_kind("B1", landsat="tm") == "blue" and band_kind("B5", landsat="tm") == "swir"
    mss = _landsat7_delivery(data_dir, tmp_path / "mss", pid="LM05_L1TP_021032_19900712_20200807_02_T2",
                             sat="LANDSAT_5", sensor="MSS")
    found, notes = metadata_candidates([mss["B8"]])
    assert not found and notes == ["LM05_L1TP_021032_19900712_20200807_02_T2_MTL.txt says LANDSAT_5 MSS, a satellite "
                                   "KSDiff has no entry for: ignored"], notes


def test_band_codes_of_file_names_and_landsat_codes():
    assert band_code(f"/x/{SCENE}_B4.TIF") == "B4" and band_code("LC08_L2SP_x_SR_B5.TIF") == "B5"
    assert band_code("T32ULE_20180220T105051_B04_10m.jp2") == "B04" and band_code("T32ULE_x_B8A.jp2") == "B8A"
    assert band_code(f"{SCENE}_B10.TIF") == "B10"
    for name in ("pair1_ms.tif", f"{SCENE}_QA_PIXEL.TIF", "12JUN15103045-M2AS_R1C1-052345678010_01_P001.TIF"):
        assert band_code(name) is None, name
    # an unpadded code is Landsat's when the sensor is Landsat, and says nothing otherwise (Sentinel-2 pads)
    assert band_kind("B5", landsat=True) == "nir" and band_kind("B4", landsat=True) == "red"
    assert band_kind("B5") is None


def test_bands_taken_by_position_are_said_to_be_assumed(data_dir, tmp_path):
    """Where nothing names the bands, the log says their order is the sensor's by assumption."""
    ms = str(tmp_path / "unnamed.tif")
    gdal.Translate(ms, str(data_dir / "l8_ms.tif"))
    ds = gdal.Open(ms, gdal.GA_Update)
    for i in range(1, 5):
        ds.GetRasterBand(i).SetDescription("")
    ds = None
    notes = plan_bands(_info(ms), get_sensor("landsat8"), None).notes
    assert any(n.startswith("MS band order assumed") and "band 1 B2 Blue" in n for n in notes), notes
    assert not [n for n in plan_bands(_info(data_dir / "l8_ms.tif"), get_sensor("landsat8"), None).notes
                if "assumed" in n]


DIMAP = """<?xml version="1.0" encoding="UTF-8"?>
<Dimap_Document name="DIM_{pid}.XML">
 <Metadata_Identification><METADATA_FORMAT version="2.0">DIMAP</METADATA_FORMAT>
  <METADATA_PROFILE>PHR_ORTHO</METADATA_PROFILE></Metadata_Identification>
 <Processing_Information><Product_Settings><SPECTRAL_PROCESSING>{spectral}</SPECTRAL_PROCESSING>
  </Product_Settings></Processing_Information>
 <Raster_Data>
  <Data_Access><DATA_FILE_ORGANISATION>BAND_COMPOSITE</DATA_FILE_ORGANISATION>
   <DATA_FILE_FORMAT>image/tiff</DATA_FILE_FORMAT><DATA_FILE_TILES>true</DATA_FILE_TILES>
   <Data_Files>{files}</Data_Files></Data_Access>
  <Raster_Dimensions><NROWS>{rows}</NROWS><NCOLS>{cols}</NCOLS><NBANDS>{bands}</NBANDS>
   <Tile_Set><NTILES>4</NTILES><Regular_Tiling><NTILES_SIZE nrows="{th}" ncols="{tw}"/>
   <NTILES_COUNT ntiles_R="2" ntiles_C="2"/><OVERLAP_ROW>0</OVERLAP_ROW><OVERLAP_COL>0</OVERLAP_COL>
   </Regular_Tiling></Tile_Set></Raster_Dimensions>
  <Raster_Encoding><DATA_TYPE>INTEGER</DATA_TYPE><NBITS>12</NBITS><SIGN>UNSIGNED</SIGN></Raster_Encoding>
  <Raster_Display><Band_Display_Order>{display}</Band_Display_Order></Raster_Display>
 </Raster_Data>
 <Radiometric_Data><Radiometric_Calibration><Instrument_Calibration><Band_Measurement_List>{radiance}
 </Band_Measurement_List></Instrument_Calibration></Radiometric_Calibration></Radiometric_Data>
 <Dataset_Sources><Source_Identification><Strip_Source><MISSION>PHR</MISSION><MISSION_INDEX>1A</MISSION_INDEX>
  <INSTRUMENT>PHR</INSTRUMENT><INSTRUMENT_INDEX>1A</INSTRUMENT_INDEX></Strip_Source></Source_Identification>
 </Dataset_Sources>
</Dimap_Document>
"""
# DIMAP v2 as Airbus writes it for Pléiades 1A/1B: band IDs in display order (the raster's: R, G, B, NIR); the
# calibration lists the IDs B0 ... B3 (as GDAL's own DIMAP v2 test product does), which is no raster order
DISPLAY_V2 = "<RED_CHANNEL>B2</RED_CHANNEL><GREEN_CHANNEL>B1</GREEN_CHANNEL><BLUE_CHANNEL>B0</BLUE_CHANNEL>" \
             "<ALPHA_CHANNEL>B3</ALPHA_CHANNEL>"


def _dimap_product(src: Path, folder: Path, kind: str, order: list[int], display: str,
                   ids: tuple[str, ...] = ("B0", "B1", "B2", "B3")) -> str:
    """An Airbus DIMAP product of ``src``'s bands ``order`` in 2 x 2 GeoTIFF tiles without band names."""
    folder.mkdir(parents=True)
    pid = f"PHR1A_{kind}_201206151030451_ORT_1234567101-00{1 if kind == 'P' else 2}"
    ds = gdal.Open(str(src))
    tw, th = ds.RasterXSize // 2, ds.RasterYSize // 2
    hrefs = []
    for r in range(2):
        for c in range(2):
            name = f"IMG_{pid}_R{r + 1}C{c + 1}.TIF"
            gdal.Translate(str(folder / name), ds, srcWin=[c * tw, r * th, tw, th], bandList=order,
                           creationOptions=["NBITS=12"])
            tile = gdal.Open(str(folder / name), gdal.GA_Update)
            for b in range(1, tile.RasterCount + 1):
                tile.GetRasterBand(b).SetDescription("")
                tile.GetRasterBand(b).SetColorInterpretation(gdal.GCI_Undefined)
            tile = None
            hrefs.append(f'<Data_File tile_R="{r + 1}" tile_C="{c + 1}"><DATA_FILE_PATH href="{name}"/></Data_File>')
    ids = ["P"] if kind == "P" else list(ids)
    radiance = "".join(f"<Band_Radiance><BAND_ID>{i}</BAND_ID><GAIN>9.1</GAIN><BIAS>0</BIAS></Band_Radiance>"
                       for i in ids)
    xml = folder / f"DIM_{pid}.XML"
    xml.write_text(DIMAP.format(pid=pid, spectral="P" if kind == "P" else "MS", files="".join(hrefs),
                                rows=2 * th, cols=2 * tw, th=th, tw=tw, bands=len(order), radiance=radiance,
                                display=display if kind != "P" else ""))
    return str(xml)


@pytest.mark.skipif("qb" not in bundled_cards(), reason="no bundled QuickBird model")
def test_a_pleiades_dimap_in_its_delivered_order_is_fused_by_its_band_layout(data_dir, tmp_path):
    """Pléiades MS as Airbus delivers it: R, G, B, NIR (B2, B1, B0, B3, the DIMAP's Band_Display_Order). The bands
    are named from the DIMAP and the nearest network (qb, B, G, R, NIR) gets them in its order; they were labelled
    Blue, Green, Red, NIR and fed swapped."""
    pan = _dimap_product(data_dir / "wv2_pan.tif", tmp_path / "IMG_PHR1A_P_001", "P", [1], "")
    ms = _dimap_product(data_dir / "wv2_ms.tif", tmp_path / "IMG_PHR1A_MS_001", "MS", [3, 2, 1, 4], DISPLAY_V2)
    assert gdal.Open(ms).GetDriver().ShortName == "DIMAP" and not gdal.Open(ms).GetRasterBand(1).GetDescription()
    log = Log()
    res = pansharpen(pan, ms, str(tmp_path / "o.tif"), "auto", "ksdiff", feedback=log)
    assert res.sensor == "pleiades"
    assert any("band names from DIM_PHR1A_MS" in line and "B2, B1, B0, B3" in line for line in log.lines), log.lines
    out = gdal.Open(res.output_path)
    assert [out.GetRasterBand(i).GetDescription() for i in (1, 2, 3, 4)] == ["Red", "Green", "Blue", "NIR"]
    assert out.GetRasterBand(1).GetColorInterpretation() == gdal.GCI_RedBand
    # the fusion of the same pixels stored as B, G, R, NIR and named so, each band in its place
    bgrn = str(tmp_path / "bgrn.tif")
    gdal.Translate(bgrn, ms, bandList=[3, 2, 1, 4], creationOptions=["NBITS=12"])
    ds = gdal.Open(bgrn, gdal.GA_Update)
    for i, name in enumerate(("Blue", "Green", "Red", "NIR"), 1):
        ds.GetRasterBand(i).SetDescription(name)
    ds = None
    ref = pansharpen(pan, bgrn, str(tmp_path / "ref.tif"), "pleiades", "ksdiff")
    got, want = _bands(res.output_path), _bands(ref.output_path)[[2, 1, 0, 3]]
    assert np.abs(got - want).max() <= 1, np.abs(got - want).max()


def test_a_dimap_whose_measurement_list_disagrees_says_the_order_is_assumed(data_dir, tmp_path):
    """A SPOT 6/7 or Pléiades DIMAP shows the band IDs in display order (B2, B1, B0: R, G, B) and lists them B0, B1, B2,
    B3 in its Band_Measurement_List: nothing says which the raster holds. The names follow the display order (how
    Airbus delivers them), and the log now says that order is assumed and how to fuse a raster in the list's order;
    it said nothing. A list in display order needs no note."""
    three = "<RED_CHANNEL>B2</RED_CHANNEL><GREEN_CHANNEL>B1</GREEN_CHANNEL><BLUE_CHANNEL>B0</BLUE_CHANNEL>"
    ms = _dimap_product(data_dir / "wv2_ms.tif", tmp_path / "IMG_SPOT6_MS_001", "MS", [1, 2, 3, 4], three)
    named, notes = with_delivery_names(_info(ms))
    assert named.descriptions == ["Red", "Green", "Blue", "NIR"]
    note = next(n for n in notes if n.startswith("MS band order assumed"))
    assert "makes the bands B2, B1, B0, B3 (Red, Green, Blue, NIR), its Band_Measurement_List lists B0, B1, B2, B3" in \
        note and "the list's order (Blue, Green, Red, NIR), reorder its bands to 3,2,1,4" in note, note
    agreeing = _dimap_product(data_dir / "wv2_ms.tif", tmp_path / "IMG_SPOT6_MS_002", "MS", [3, 2, 1, 4], three,
                              ids=("B2", "B1", "B0", "B3"))
    named, notes = with_delivery_names(_info(agreeing))
    assert named.descriptions == ["Red", "Green", "Blue", "NIR"] and not [n for n in notes if "assumed" in n], notes


def test_an_unnamed_pleiades_or_spot_product_is_taken_as_delivered():
    """Airbus's raster order (R, G, B, NIR) is the table's for Pléiades 1A/1B and SPOT 6/7 (it said B, G, R, NIR)."""
    for key in ("pleiades", "spot67"):
        assert get_sensor(key).band_names == ("Red", "Green", "Blue", "NIR"), key


def _xml(tmp_path: Path, display: str, radiance_ids: list[str], extra: str = "") -> str:
    path = tmp_path / "DIM_x.XML"
    radiance = "".join(f"<Band_Radiance><BAND_ID>{i}</BAND_ID></Band_Radiance>" for i in radiance_ids)
    path.write_text(f"<Dimap_Document><Raster_Data>{extra}<Raster_Display><Band_Display_Order>{display}"
                    "</Band_Display_Order></Raster_Display></Raster_Data><Radiometric_Data><Radiometric_Calibration>"
                    f"<Instrument_Calibration><Band_Measurement_List>{radiance}</Band_Measurement_List>"
                    "</Instrument_Calibration></Radiometric_Calibration></Radiometric_Data></Dimap_Document>")
    return str(path)


def test_dimap_band_layouts(tmp_path):
    rgbn = ["Red", "Green", "Blue", "NIR"]
    assert dimap_band_names(_xml(tmp_path, DISPLAY_V2, ["B0", "B1", "B2", "B3"]), 4)[0] == rgbn
    # three channels shown: the fourth band is the product's band none of them shows
    three = "<RED_CHANNEL>B2</RED_CHANNEL><GREEN_CHANNEL>B1</GREEN_CHANNEL><BLUE_CHANNEL>B0</BLUE_CHANNEL>"
    assert dimap_band_names(_xml(tmp_path, three, ["B0", "B1", "B2", "B3"]), 4)[0] == rgbn
    # band numbers (DIMAP v1): a B, G, R, NIR raster
    numbers = "<RED_CHANNEL>3</RED_CHANNEL><GREEN_CHANNEL>2</GREEN_CHANNEL><BLUE_CHANNEL>1</BLUE_CHANNEL>"
    assert dimap_band_names(_xml(tmp_path, numbers, ["B0", "B1", "B2", "B3"]), 4)[0] == ["Blue", "Green", "Red", "NIR"]
    # Pléiades Neo: each band ID's raster index
    index = "<Raster_Index_List>" + "".join(
        f"<Raster_Index><BAND_ID>{i}</BAND_ID><BAND_INDEX>{n}</BAND_INDEX></Raster_Index>"
        for n, i in enumerate(["R", "G", "B", "NIR", "RE", "DB"], 1)) + "</Raster_Index_List>"
    assert dimap_band_names(_xml(tmp_path, "", [], index), 6)[0] == [*rgbn, "Red Edge", "Deep Blue"]
    assert dimap_band_names(_xml(tmp_path, DISPLAY_V2, []), 3) is not None   # a 3-band product: its first three
    (tmp_path / "other.xml").write_text("<project/>")
    assert dimap_band_names(str(tmp_path / "other.xml"), 4) is None


def test_a_three_band_landsat_composite_beside_its_mtl_runs_as_generic_with_landsats_gains(data_dir, tmp_path):
    """B4, B3, B2 beside the scene's MTL: SENSOR=auto took Landsat 8/9 from the MTL and then refused the 3 bands
    ('pick the matching sensor (or auto)' to a user on auto). Now generic, with Landsat's ratio and gains where they
    apply and a warning; SENSOR=landsat8 chosen explicitly still refuses."""
    files = _landsat_delivery(data_dir, tmp_path / "delivery")
    vrt = _stack(tmp_path / "delivery" / "rgb.vrt", [files[c] for c in ("B4", "B3", "B2")])
    log = Log()
    res = pansharpen(files["B8"], vrt, str(tmp_path / "o.tif"), "auto", "mtf_glp_hpm", feedback=log)
    assert res.sensor == "generic"
    line = next(x for x in log.lines if "SENSOR=auto" in x)
    assert line.startswith("WARNING") and "Landsat 8/9" in line and "3 MS bands" in line and "MTL" in line, line
    out = gdal.Open(res.output_path)
    assert [out.GetRasterBand(i).GetDescription() for i in (1, 2, 3)] == ["B4 Red", "B3 Green", "B2 Blue"]
    assert not [w for w in res.warnings if "ratio" in w]   # Landsat's ratio 2 is the data's
    with pytest.raises(InputError, match="has 3 bands but sensor Landsat 8/9 OLI .* expects 4"):
        pansharpen(files["B8"], vrt, str(tmp_path / "x.tif"), "landsat8", "mtf_glp_hpm")
    # bands chosen with MS_BANDS need not be the sensor's count: the sensor stays (the band plan checks them)
    assert detect_sensor(_info(files["B8"]), _info(vrt), 2, [1, 2]).key == "landsat8"
    # the sensor's gains go to the bands whose names match (a QuickBird R, G, B composite), its PAN gain too
    qb = generic_like("qb")
    ms = str(tmp_path / "rgb.tif")
    gdal.Translate(ms, str(data_dir / "wv2_ms.tif"), bandList=[3, 2, 1])
    assert plan_bands(_info(ms), qb, None).gains == (0.30, 0.32, 0.34) and qb.mtf_pan == 0.15 and qb.ratio == 4


def test_an_unrelated_mtl_beside_a_worldview2_pair_is_ignored(data_dir, tmp_path):
    """A Landsat MTL in the folder of a WorldView-2 pair made it 'Landsat 8' (0.5 m PAN, ratio 4). It names none of
    the pair's files: ignored, and said so."""
    for role in ("pan", "ms"):
        shutil.copy(data_dir / f"wv2_{role}.tif", tmp_path / f"pair1_{role}.tif")
    shutil.copy(data_dir / "l8_mtl" / f"{SCENE}_MTL.txt", tmp_path)
    found = detect_sensor(_info(tmp_path / "pair1_pan.tif"), _info(tmp_path / "pair1_ms.tif"), 4)
    assert found.key == "wv2" and found.source == "geometry"
    assert f"{SCENE}_MTL.txt (LANDSAT_8) lies beside the input but names none of its files: ignored" in \
        found.message()


def test_metadata_whose_sensor_contradicts_the_ratio_and_pixel_size_is_dropped(data_dir, tmp_path):
    """Files that carry a Landsat scene's ID (renamed), with a 0.5 m PAN at ratio 4: the MTL names them, but Landsat
    8/9's ratio is 2 and its PAN pixel 15 m; the metadata is dropped with the reason, the geometry decides."""
    for role in ("pan", "ms"):
        shutil.copy(data_dir / f"wv2_{role}.tif", tmp_path / f"{SCENE}_{role}.tif")
    shutil.copy(data_dir / "l8_mtl" / f"{SCENE}_MTL.txt", tmp_path)
    found = detect_sensor(_info(tmp_path / f"{SCENE}_pan.tif"), _info(tmp_path / f"{SCENE}_ms.tif"), 4)
    assert found.key == "wv2", found.message()
    assert ("says LANDSAT_8, but Landsat 8/9 OLI has ratio 2 and a 15 m PAN pixel, the data ratio 4 and a 0.50 m PAN "
            "pixel: ignored") in found.message()


def _maxar_tiles(src: Path, folder: Path, code: str) -> None:
    """A Maxar (DigitalGlobe) GeoEye-1 product: 2 x 2 tiles and the .IMD of the image they make."""
    folder.mkdir(parents=True)
    ds = gdal.Open(str(src))
    tw, th = ds.RasterXSize // 2, ds.RasterYSize // 2
    for r in range(2):
        for c in range(2):
            gdal.Translate(str(folder / f"12JUN15103045-{code}_R{r + 1}C{c + 1}-052345678010_01_P001.TIF"), ds,
                           srcWin=[c * tw, r * th, tw, th])
    (folder / f"12JUN15103045-{code}-052345678010_01_P001.IMD").write_text(
        'version = "28.3";\nbandId = "Multi";\nBEGIN_GROUP = IMAGE_1\n\tsatId = "GE01";\nEND_GROUP = IMAGE_1\nEND;\n')


def test_a_vrt_saved_outside_the_delivery_finds_the_metadata_beside_its_sources(data_dir, tmp_path):
    """GeoEye-1 tiles mosaicked by QGIS's Build Virtual Raster into its temporary folder: the .IMD beside the tiles
    names them; it used to be looked for beside the VRT only, and the 0.5 m PAN went to WorldView-2."""
    order = tmp_path / "delivery" / "052345678010_01"
    _maxar_tiles(data_dir / "wv2_pan.tif", order / "052345678010_01_P001_PAN", "P2AS")
    _maxar_tiles(data_dir / "wv2_ms.tif", order / "052345678010_01_P001_MUL", "M2AS")
    (tmp_path / "tmp").mkdir()
    vrts = {}
    for role, sub in (("pan", "PAN"), ("ms", "MUL")):
        vrts[role] = str(tmp_path / "tmp" / f"{role}.vrt")
        gdal.BuildVRT(vrts[role], sorted(str(p) for p in (order / f"052345678010_01_P001_{sub}").glob("*.TIF")))
    found = detect_sensor(_info(vrts["pan"]), _info(vrts["ms"]), 4)
    assert found.key == "ge1" and found.source == "metadata", found.message()
    assert "12JUN15103045-M2AS-052345678010_01_P001.IMD says GE01" in found.message()


def _full_landsat_stack(data_dir: Path, folder: Path) -> tuple[str, str]:
    """(PAN B8, a B1-B7 VRT) of the Landsat fixture delivered as one file per band beside its MTL; B1, B6 and B7 are
    the fixture's own Blue, NIR and Red pixels scaled (it holds only B2-B5), named as USGS names them."""
    files = _landsat_delivery(data_dir, folder)
    ms = gdal.Open(str(data_dir / "l8_ms.tif"))
    for code, band, gain in (("B1", 1, 0.9), ("B6", 4, 0.7), ("B7", 3, 0.8)):
        files[code] = str(folder / f"{SCENE}_{code}.TIF")
        arr = (ms.GetRasterBand(band).ReadAsArray() * gain).astype(np.uint16)
        ds = gdal.GetDriverByName("GTiff").Create(files[code], ms.RasterXSize, ms.RasterYSize, 1, gdal.GDT_UInt16)
        ds.SetGeoTransform(ms.GetGeoTransform())
        ds.SetProjection(ms.GetProjection())
        ds.GetRasterBand(1).WriteArray(arr)
        ds = None
    return files["B8"], _stack(folder / "ms_B1to7.vrt", [files[f"B{i}"] for i in range(1, 8)])


@pytest.mark.skipif("landsat8" not in bundled_cards(), reason="no bundled Landsat model")
def test_a_full_landsat8_stack_fuses_by_default_as_with_every_band_listed(data_dir, tmp_path):
    """B1-B7 in one VRT beside the MTL, MS_BANDS empty: SENSOR=auto made it generic ('7 MS bands, where Landsat 8/9
    OLI has 4'), METHOD ksdiff and SENSOR=landsat8 were refused, while MS_BANDS 1..7 fused B2-B5 with KSDiff (QA). The
    default now takes that path; a 7-band product without Landsat metadata stays generic."""
    pan, vrt = _full_landsat_stack(data_dir, tmp_path / "delivery")
    log = Log()
    res = pansharpen(pan, vrt, str(tmp_path / "auto.tif"), "auto", "ksdiff", feedback=log)
    assert res.sensor == "landsat8" and res.method == "ksdiff", log.lines
    line = next(x for x in log.lines if "SENSOR=auto" in x)
    assert not line.startswith("WARNING") and "7 MS bands, 4 of them Landsat 8/9 OLI's by name" in line, line
    listed = pansharpen(pan, vrt, str(tmp_path / "listed.tif"), "auto", "ksdiff", ms_bands=list(range(1, 8)))
    chosen = pansharpen(pan, vrt, str(tmp_path / "chosen.tif"), "landsat8", "ksdiff")
    assert listed.sensor == "landsat8"
    assert np.array_equal(_bands(res.output_path), _bands(listed.output_path))
    assert np.array_equal(_bands(res.output_path), _bands(chosen.output_path))
    # without Landsat metadata, the same 7 bands (unnamed, or named by bare codes) are no Landsat product
    for names in ([""] * 7, [f"B{i}" for i in range(1, 8)]):
        other = tmp_path / "other"
        other.mkdir(exist_ok=True)
        ms = str(other / "stack.tif")
        gdal.Translate(ms, vrt)
        ds = gdal.Open(ms, gdal.GA_Update)
        for b, name in enumerate(names, 1):
            ds.GetRasterBand(b).SetDescription(name)
        ds = None
        own_pan = str(other / "pan.tif")
        gdal.Translate(own_pan, pan)
        assert detect_sensor(_info(own_pan), _info(ms), 2).key == "generic"
        assert pansharpen(own_pan, ms, str(other / "o.tif"), "auto", "mtf_glp_hpm").sensor == "generic"


@pytest.mark.parametrize("names, sensor", [
    (["Blue", "Green", "Red", "NIR", "Band 5"], "wv2"),   # an alpha-like extra band: no product band
    (["Coastal", "Blue", "Green", "Yellow", "Red", "Red Edge", "NIR1", "NIR2"], "wv2"),   # WorldView-2's 8 bands
    (["Deep Blue", "Blue", "Green", "Red", "Red Edge", "NIR"], "pleiades"),                 # Pléiades Neo's 6
])
def test_extra_bands_that_are_not_the_sensors_product_are_still_refused(data_dir, tmp_path, names, sensor):
    """The 'all bands as if listed' path is for a product holding its sensor's bands among other spectral bands (a
    Landsat 8 B1-B7 stack). QA: under it an alpha-like fifth band was fused as a band, an 8-band WorldView-2 under
    SENSOR wv2 took the 4-band sensor's MTF gains and a Pléiades Neo under 'pleiades' 1A/1B's: each refused before,
    naming the fit; refused again."""
    src = gdal.Open(str(data_dir / "wv2_ms.tif"))
    bands = src.ReadAsArray()
    ms = str(tmp_path / "ms.tif")
    out = gdal.GetDriverByName("GTiff").Create(ms, src.RasterXSize, src.RasterYSize, len(names), gdal.GDT_UInt16)
    out.SetGeoTransform(src.GetGeoTransform())
    out.SetProjection(src.GetProjection())
    for b, name in enumerate(names):
        band = out.GetRasterBand(b + 1)
        band.WriteArray(bands[min(b, 3)] if name != "Band 5" else np.full_like(bands[0], 255))
        band.SetDescription(name)
    out = None
    with pytest.raises(InputError, match=f"the MS raster has {len(names)} bands but sensor"):
        pansharpen(str(data_dir / "wv2_pan.tif"), ms, str(tmp_path / "o.tif"), sensor, "mtf_glp_hpm")
    assert not (tmp_path / "o.tif").exists()
