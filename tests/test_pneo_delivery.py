"""A Pléiades Neo 6-band (MS-FS) delivery as Airbus ships it: each tile in two files, IMG_..._RGB_R1C1.TIF (R, G, B)
and IMG_..._NED_R1C1.TIF (NIR, Red Edge, Deep Blue), beside a DIM_*.XML whose every Data_Files group lists its
file's bands (as GDAL's own sample, autotest/gdrivers/data/dimap2/vhr2020_ms_fs). Rebuilt in tmp_path from a crop of
the cached WorldView-2 pair 1 (QA round 58: the user's VRT of the two tiles was named in the sensor table's order,
Deep Blue, Blue, Green, Red, ..., and the network got Green, Blue, NIR and Deep Blue as Blue, Green, Red, NIR)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal
from test_sensors_bands import Log, _info

from ksdiff_qgis.engine.bands import plan_bands, with_delivery_names
from ksdiff_qgis.engine.model_card import bundled_cards
from ksdiff_qgis.engine.pipeline import pansharpen
from ksdiff_qgis.engine.sensors import get_sensor

GDAL_ORDER = ["Red", "Green", "Blue", "NIR", "Red Edge", "Deep Blue"]   # GDAL's test_dimap_2_vhr2020_ms_fs
STEM = "PNEO3_202201011011123_PMS-FS_ORT_PWOI_000123456_1_1_F_1"
DIM = """<?xml version="1.0" encoding="UTF-8"?>
<Dimap_Document>
 <Metadata_Identification><METADATA_FORMAT version="2.0">DIMAP</METADATA_FORMAT>
  <METADATA_PROFILE>PNEO_ORTHO</METADATA_PROFILE></Metadata_Identification>
 <Processing_Information><Product_Settings><SPECTRAL_PROCESSING>{spectral}</SPECTRAL_PROCESSING></Product_Settings>
 </Processing_Information>
 <Raster_Data>
  <Raster_Dimensions><NROWS>{rows}</NROWS><NCOLS>{cols}</NCOLS><NBANDS>{bands}</NBANDS></Raster_Dimensions>
  <Raster_Encoding><DATA_TYPE>INTEGER</DATA_TYPE><NBITS>12</NBITS><SIGN>UNSIGNED</SIGN></Raster_Encoding>
  <Data_Access><DATA_FILE_ORGANISATION>BAND_COMPOSITE</DATA_FILE_ORGANISATION>
   <DATA_FILE_FORMAT>image/tiff</DATA_FILE_FORMAT>{groups}</Data_Access>
 </Raster_Data>
 <Dataset_Sources><Source_Identification><Strip_Source><MISSION>PNEO</MISSION><MISSION_INDEX>3</MISSION_INDEX>
 </Strip_Source></Source_Identification></Dataset_Sources>
</Dimap_Document>
"""


def _group(file: str, ids: list[str] | None) -> str:
    """One Data_Files group: its tile and, with ``ids``, its own Raster_Index_List (the file's bands 1..n)."""
    index = "" if ids is None else "<Raster_Display><Raster_Index_List>" + "".join(
        f"<Raster_Index><BAND_ID>{i}</BAND_ID><BAND_INDEX>{n}</BAND_INDEX></Raster_Index>"
        for n, i in enumerate(ids, 1)) + "</Raster_Index_List></Raster_Display>"
    return f'<Data_Files><Data_File tile_R="1" tile_C="1"><DATA_FILE_PATH href="{file}"/></Data_File>{index}' \
           "</Data_Files>"


def _write(path: Path, bands: np.ndarray, like: gdal.Dataset) -> str:
    out = gdal.GetDriverByName("GTiff").Create(str(path), like.RasterXSize, like.RasterYSize, len(bands),
                                              gdal.GDT_UInt16)
    out.SetGeoTransform(like.GetGeoTransform())
    out.SetProjection(like.GetProjection())
    for i, arr in enumerate(bands, 1):
        out.GetRasterBand(i).WriteArray(np.clip(np.rint(arr), 0, 4095).astype(np.uint16))
    out = None
    return str(path)


def _stack(path: Path, sources: list[tuple[str, int]], like: gdal.Dataset) -> str:
    """A VRT of (file, band) sources, as a user stacks the RGB tile's three bands and the NED tile's three
    (gdalbuildvrt of GDAL < 3.8 takes only band 1 of each file with -separate: the VRT is written as it ends up)."""
    bands = "".join(
        f'<VRTRasterBand dataType="UInt16" band="{n}"><SimpleSource>'
        f'<SourceFilename relativeToVRT="1">{Path(file).name}</SourceFilename><SourceBand>{b}</SourceBand>'
        "</SimpleSource></VRTRasterBand>" for n, (file, b) in enumerate(sources, 1))
    gt = ",".join(repr(v) for v in like.GetGeoTransform())
    path.write_text(f'<VRTDataset rasterXSize="{like.RasterXSize}" rasterYSize="{like.RasterYSize}">'
                    f"<SRS>{like.GetProjection()}</SRS><GeoTransform>{gt}</GeoTransform>{bands}</VRTDataset>")
    return str(path)


def _delivery(cached, folder: Path, per_file_lists: bool = True, spectral: str = "MS-FS") -> dict[str, str]:
    """The PAN (0.3 m look: the crop's own grid) and the MS-FS tiles of a crop of WorldView-2 pair 1: RGB holds its
    Red, Green, Blue; NED its NIR, a Red Edge between Red and NIR, a Deep Blue below Blue (QA's build2.py)."""
    folder.mkdir(parents=True)
    pan_src = gdal.Translate("/vsimem/pneo_pan.tif", str(cached("wv2/pair1_pan.tif")), srcWin=[0, 0, 512, 512])
    ms_src = gdal.Translate("/vsimem/pneo_ms.tif", str(cached("wv2/pair1_ms.tif")), srcWin=[0, 0, 128, 128])
    b, g, r, n = ms_src.ReadAsArray().astype(np.float64) * 2.0
    pan = _write(folder / f"IMG_{STEM}_P_R1C1.TIF", pan_src.ReadAsArray()[None].astype(np.float64) * 2.0, pan_src)
    rgb = _write(folder / f"IMG_{STEM}_RGB_R1C1.TIF", np.stack([r, g, b]), ms_src)
    ned = _write(folder / f"IMG_{STEM}_NED_R1C1.TIF", np.stack([n, 0.5 * (r + n), 0.9 * b]), ms_src)
    groups = (_group(Path(rgb).name, ["R", "G", "B"] if per_file_lists else None)
              + _group(Path(ned).name, ["NIR", "RE", "DB"] if per_file_lists else None))
    dim = folder / f"DIM_{STEM}_MS-FS.XML"
    dim.write_text(DIM.format(spectral=spectral, rows=128, cols=128, bands=6, groups=groups))
    (folder / f"DIM_{STEM}_P.XML").write_text(DIM.format(spectral="PAN", rows=512, cols=512, bands=1,
                                                         groups=_group(Path(pan).name, ["P"])))
    for name in ("/vsimem/pneo_pan.tif", "/vsimem/pneo_ms.tif"):
        gdal.Unlink(name)
    return {"pan": pan, "rgb": rgb, "ned": ned, "dim": str(dim)}


def test_the_pneo_table_is_in_gdals_order():
    """GDAL's DIMAP driver gives an MS-FS product as Red, Green, Blue, NIR, Red Edge, Deep Blue: so does the table
    an unnamed stack is taken in (it said Deep Blue, Blue, Green, Red, Red Edge, NIR)."""
    assert list(get_sensor("pneo").band_names) == GDAL_ORDER


def test_gdal_reads_the_mock_delivery_in_that_order(cached, tmp_path):
    """The mock is the delivery GDAL knows: its DIMAP driver opens it as six bands named in GDAL_ORDER."""
    files = _delivery(cached, tmp_path / "IMG_01_PNEO3_PMS-FS")
    ds = gdal.Open(files["dim"])
    assert ds.RasterCount == 6
    assert [ds.GetRasterBand(i).GetDescription() for i in range(1, 7)] == GDAL_ORDER


@pytest.mark.parametrize("order", [[0, 1, 2, 3, 4, 5], [3, 4, 5, 0, 1, 2], [5, 2, 1, 0, 3, 4]])
def test_a_vrt_of_the_rgb_and_ned_tiles_is_named_by_the_dimaps_per_file_band_lists(cached, tmp_path, order):
    """Each VRT band named by the tile and band it reads, whatever the stacking order (NED first, or bands picked
    out one by one): the DIMAP was read only when VRT band i was its tile's band i, never for a two-tile stack."""
    files = _delivery(cached, tmp_path / "IMG_01_PNEO3_PMS-FS")
    like = gdal.Open(files["rgb"])
    tile_bands = [(files["rgb"], 1), (files["rgb"], 2), (files["rgb"], 3),
                  (files["ned"], 1), (files["ned"], 2), (files["ned"], 3)]
    vrt = _stack(tmp_path / "IMG_01_PNEO3_PMS-FS" / "ms_fs_stack.vrt", [tile_bands[i] for i in order], like)
    named, notes = with_delivery_names(_info(vrt))
    assert named.descriptions == [GDAL_ORDER[i] for i in order], notes
    assert any(n.startswith(f"MS band names from DIM_{STEM}_MS-FS.XML (the band list of each of its data files)")
               for n in notes), notes
    # one tile alone: the NED file's bands are NIR, Red Edge, Deep Blue (the display order named them R, G, B)
    assert with_delivery_names(_info(files["ned"]))[0].descriptions == ["NIR", "Red Edge", "Deep Blue"]


def test_without_per_file_lists_an_ms_fs_dimap_is_read_as_gdal_reads_it(cached, tmp_path):
    """A DIMAP whose Data_Files groups list no bands: GDAL's rule for MS-FS (first group R, G, B, second NIR, Red
    Edge, Deep Blue) names a NED-first stack; without SPECTRAL_PROCESSING nothing says which tile holds which bands
    and the stack is taken in the (fixed) table order, said as assumed."""
    files = _delivery(cached, tmp_path / "fs", per_file_lists=False)
    like = gdal.Open(files["rgb"])
    ned_first = [(files["ned"], 1), (files["ned"], 2), (files["ned"], 3),
                 (files["rgb"], 1), (files["rgb"], 2), (files["rgb"], 3)]
    vrt = _stack(tmp_path / "fs" / "stack.vrt", ned_first, like)
    assert with_delivery_names(_info(vrt))[0].descriptions == GDAL_ORDER[3:] + GDAL_ORDER[:3]
    files = _delivery(cached, tmp_path / "unsaid", per_file_lists=False, spectral="")
    rgb_first = [(files["rgb"], 1), (files["rgb"], 2), (files["rgb"], 3),
                 (files["ned"], 1), (files["ned"], 2), (files["ned"], 3)]
    vrt = _stack(tmp_path / "unsaid" / "stack.vrt", rgb_first, like)
    named, _ = with_delivery_names(_info(vrt))
    assert named.descriptions == [""] * 6
    plan = plan_bands(named, get_sensor("pneo"), None)
    assert plan.names == GDAL_ORDER
    # QA's mock: one Data_Files group with both files and a whole-product Raster_Index_List of six bands; each file
    # holds three, so none is read as the whole product (its NED bands were about to be named Red, Green, Blue)
    index = "<Raster_Display><Raster_Index_List>" + "".join(
        f"<Raster_Index><BAND_ID>{i}</BAND_ID><BAND_INDEX>{n}</BAND_INDEX></Raster_Index>"
        for n, i in enumerate(["R", "G", "B", "NIR", "RE", "DB"], 1)) + "</Raster_Index_List></Raster_Display>"
    one_group = f'<Data_Files><Data_File tile_R="1" tile_C="1"><DATA_FILE_PATH href="{Path(files["rgb"]).name}"/>' \
                f'</Data_File><Data_File tile_R="1" tile_C="1"><DATA_FILE_PATH href="{Path(files["ned"]).name}"/>' \
                f"</Data_File></Data_Files>{index}"
    Path(files["dim"]).write_text(DIM.format(spectral="", rows=128, cols=128, bands=6, groups=one_group))
    assert with_delivery_names(_info(vrt))[0].descriptions == [""] * 6
    assert with_delivery_names(_info(files["ned"]))[0].descriptions == [""] * 3
    assert any(n.startswith("MS band order assumed") and "band 1 Red" in n and "band 6 Deep Blue" in n
               for n in plan.notes), plan.notes


@pytest.mark.skipif("wv2" not in bundled_cards(), reason="no bundled WorldView-2 model")
def test_the_network_gets_the_stacks_blue_green_red_and_nir(cached, tmp_path):
    """SENSOR auto on the user's VRT (RGB then NED): Pléiades Neo from the DIMAP, the wv2 network on bands 3, 2, 1,
    4 (Blue, Green, Red, NIR), the output named in GDAL's order; the same fusion as the stack with its bands named."""
    files = _delivery(cached, tmp_path / "IMG_01_PNEO3_PMS-FS")
    like = gdal.Open(files["rgb"])
    rgb_first = [(files["rgb"], 1), (files["rgb"], 2), (files["rgb"], 3),
                 (files["ned"], 1), (files["ned"], 2), (files["ned"], 3)]
    vrt = _stack(tmp_path / "IMG_01_PNEO3_PMS-FS" / "ms_fs_stack.vrt", rgb_first, like)
    log = Log()
    res = pansharpen(files["pan"], vrt, str(tmp_path / "o.tif"), "auto", "ksdiff", feedback=log)
    assert res.sensor == "pneo"
    assert any("KSDiff fuses the bands its model knows: Blue (band 3), Green (band 2), Red (band 1), NIR (band 4)"
               in line for line in log.lines), log.lines
    out = gdal.Open(res.output_path)
    assert [out.GetRasterBand(i).GetDescription() for i in range(1, 7)] == GDAL_ORDER
    named = str(tmp_path / "named.tif")
    gdal.Translate(named, vrt, creationOptions=["NBITS=12"])   # as the DIMAP declares (12 bits)
    ds = gdal.Open(named, gdal.GA_Update)
    for i, name in enumerate(GDAL_ORDER, 1):
        ds.GetRasterBand(i).SetDescription(name)
    ds = None
    ref = pansharpen(files["pan"], named, str(tmp_path / "ref.tif"), "pneo", "ksdiff")
    got, want = (gdal.Open(p).ReadAsArray().astype(np.int64) for p in (res.output_path, ref.output_path))
    assert np.abs(got - want).max() <= 1, np.abs(got - want).max()
