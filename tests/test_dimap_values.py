"""What an Airbus DIMAP declares of its product's values (``engine/dimap_values.py``), applied however the delivery
is opened, and the nodata fix the log gives for a file GDAL cannot update (``engine/nodatacmd.py``).

QA48b (a Pléiades user with DIMAP V2 deliveries): the DIMAP's NODATA special value was ignored (the ortho collar
fused as data) and the advice, ``gdal_edit.py -a_nodata 0 DIM_….XML``, fails on a DIMAP; NBITS=12 held only when the
DIM_*.XML was opened (its VRT mosaic or a JP2 tile scaled by 2047, values above 4095 not clipped: max diff 9701).
Deliveries rebuilt in tmp_path from the real WorldView-2 fixture crops as QA's generator made them: 12-bit
values in UInt16 JPEG2000 tiles that declare neither NBITS nor nodata, a collar of zeros in one corner.
"""
from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal
from test_sensors_bands import Log

from ksdiff_qgis.engine import dimap_values
from ksdiff_qgis.engine.assessment import assess_full, assess_reduced
from ksdiff_qgis.engine.model_card import bundled_cards
from ksdiff_qgis.engine.nodatacmd import nodata_command, updatable
from ksdiff_qgis.engine.pipeline import pansharpen

SPECIAL = ("<Special_Value><SPECIAL_VALUE_COUNT>0</SPECIAL_VALUE_COUNT><SPECIAL_VALUE_TEXT>NODATA</SPECIAL_VALUE_TEXT>"
           "</Special_Value><Special_Value><SPECIAL_VALUE_COUNT>4095</SPECIAL_VALUE_COUNT>"
           "<SPECIAL_VALUE_TEXT>SATURATED</SPECIAL_VALUE_TEXT></Special_Value>")
# DIMAP V2 as Pléiades 1A/1B and SPOT 6/7 products carry it (Raster_Data/Raster_Display/Special_Value: the ESA SNAP
# Pléiades reader's paths); bands in display order R, G, B, NIR
XML = """<?xml version="1.0" encoding="UTF-8"?>
<Dimap_Document name="DIM_{pid}.XML">
 <Metadata_Identification><METADATA_FORMAT version="2.0">DIMAP</METADATA_FORMAT>
  <METADATA_PROFILE>PHR_ORTHO</METADATA_PROFILE></Metadata_Identification>
 <Dataset_Sources><Source_Identification><Strip_Source><MISSION>PHR</MISSION><MISSION_INDEX>1A</MISSION_INDEX>
  <INSTRUMENT>PHR</INSTRUMENT><INSTRUMENT_INDEX>1A</INSTRUMENT_INDEX></Strip_Source></Source_Identification>
 </Dataset_Sources>
 <Processing_Information><Product_Settings><SPECTRAL_PROCESSING>{spectral}</SPECTRAL_PROCESSING></Product_Settings>
 </Processing_Information>
 <Raster_Data>
  <Data_Access><DATA_FILE_ORGANISATION>BAND_COMPOSITE</DATA_FILE_ORGANISATION>
   <DATA_FILE_FORMAT version="JPEG2000">image/jp2</DATA_FILE_FORMAT><DATA_FILE_TILES>true</DATA_FILE_TILES>
   <Data_Files>{files}</Data_Files></Data_Access>
  <Raster_Dimensions><NROWS>{rows}</NROWS><NCOLS>{cols}</NCOLS><NBANDS>{bands}</NBANDS>
   <Tile_Set><NTILES>4</NTILES><Regular_Tiling><NTILES_SIZE nrows="{th}" ncols="{tw}"/>
   <NTILES_COUNT ntiles_R="2" ntiles_C="2"/><OVERLAP_ROW>0</OVERLAP_ROW><OVERLAP_COL>0</OVERLAP_COL>
   </Regular_Tiling></Tile_Set></Raster_Dimensions>
  <Raster_Encoding><DATA_TYPE>INTEGER</DATA_TYPE><NBITS>12</NBITS><SIGN>UNSIGNED</SIGN>
   <COMPRESSION_NAME>JPEG 2000</COMPRESSION_NAME></Raster_Encoding>
  <Raster_Display><Band_Display_Order>{display}</Band_Display_Order>{special}</Raster_Display>
 </Raster_Data>
 <Radiometric_Data><Radiometric_Calibration><Instrument_Calibration><Band_Measurement_List>{radiance}
 </Band_Measurement_List></Instrument_Calibration></Radiometric_Calibration></Radiometric_Data>
</Dimap_Document>
"""
DISPLAY = ("<RED_CHANNEL>B2</RED_CHANNEL><GREEN_CHANNEL>B1</GREEN_CHANNEL><BLUE_CHANNEL>B0</BLUE_CHANNEL>"
           "<ALPHA_CHANNEL>B3</ALPHA_CHANNEL>")
COLLAR = 96   # PAN pixels: the collar is the corner where row + column < COLLAR (MS: / 4)


def _product(src: Path, folder: Path, kind: str, order: list[int], special: str) -> dict[str, str]:
    """A Pléiades 1A product of ``src``'s bands ``order`` x 2 (12-bit) with a collar of zeros, in 2 x 2 JP2 tiles
    that declare no NBITS nor nodata, its DIM_*.XML and a VRT mosaic of the tiles: {'dim', 'vrt', 'tile'}."""
    folder.mkdir(parents=True)
    ds = gdal.Open(str(src))
    arr = np.stack([ds.GetRasterBand(b).ReadAsArray().astype(np.uint16) * 2 for b in order])
    arr = np.maximum(arr, 1)   # the fixture's own zeros are no collar
    H, W = arr.shape[1:]
    r, c = np.indices((H, W))
    arr[:, r + c < COLLAR * W // 256] = 0
    mem = gdal.GetDriverByName("MEM").Create("", W, H, len(order), gdal.GDT_UInt16)
    mem.SetGeoTransform(ds.GetGeoTransform())
    mem.SetProjection(ds.GetProjection())
    for i in range(len(order)):
        mem.GetRasterBand(i + 1).WriteArray(arr[i])
    pid = f"PHR1A_{kind}_201206151030451_ORT_1234567101-00{1 if kind == 'P' else 2}"
    tw, th, hrefs, tiles = W // 2, H // 2, [], []
    for i in range(2):
        for j in range(2):
            name = f"IMG_{pid}_R{i + 1}C{j + 1}.JP2"
            gdal.Translate(str(folder / name), mem, srcWin=[j * tw, i * th, tw, th], format="JP2OpenJPEG",
                           creationOptions=["QUALITY=100", "REVERSIBLE=YES"])
            hrefs.append(f'<Data_File tile_R="{i + 1}" tile_C="{j + 1}"><DATA_FILE_PATH href="{name}"/></Data_File>')
            tiles.append(str(folder / name))
    ids = ["P"] if kind == "P" else ["B0", "B1", "B2", "B3"]
    radiance = "".join(f"<Band_Radiance><BAND_ID>{b}</BAND_ID><GAIN>9.1</GAIN><BIAS>0</BIAS></Band_Radiance>"
                       for b in ids)
    xml = folder / f"DIM_{pid}.XML"
    xml.write_text(XML.format(pid=pid, spectral=kind, files="".join(hrefs), rows=H, cols=W, th=th, tw=tw,
                              bands=len(order), display=DISPLAY if kind != "P" else "", special=special,
                              radiance=radiance))
    vrt = str(folder / f"mosaic_{kind}.vrt")
    gdal.BuildVRT(vrt, tiles)
    return {"dim": str(xml), "vrt": vrt, "tile": tiles[0]}


def _delivery(data_dir: Path, root: Path, special: str = SPECIAL) -> tuple[dict[str, str], dict[str, str]]:
    return (_product(data_dir / "wv2_pan.tif", root / "IMG_PHR1A_P_001", "P", [1], special),
            _product(data_dir / "wv2_ms.tif", root / "IMG_PHR1A_MS_001", "MS", [3, 2, 1, 4], special))


def test_special_values_of_dimap_v2_and_v1():
    """DIMAP V2's value under SPECIAL_VALUE_COUNT (Pléiades, SPOT 6/7), V1's under SPECIAL_VALUE_INDEX (SPOT 1-5)."""
    import xml.etree.ElementTree as ET
    v2 = ET.fromstring(f"<Dimap_Document><Raster_Data><Raster_Display>{SPECIAL}</Raster_Display></Raster_Data>"
                       "</Dimap_Document>")
    assert dimap_values.special_values(v2) == {"NODATA": 0.0, "SATURATED": 4095.0}
    v1 = ET.fromstring("<Dimap_Document><Image_Display><Special_Value><SPECIAL_VALUE_INDEX>0</SPECIAL_VALUE_INDEX>"
                       "<SPECIAL_VALUE_TEXT>NODATA</SPECIAL_VALUE_TEXT></Special_Value></Image_Display>"
                       "</Dimap_Document>")
    assert dimap_values.special_values(v1) == {"NODATA": 0.0}


@pytest.mark.parametrize("path", ["dim", "vrt", "tile"])
def test_the_dimaps_nodata_special_value_is_the_inputs_nodata_however_opened(data_dir, tmp_path, path):
    """The collar (NODATA 0 in the DIMAP, no nodata in the raster) was fused as data on every path; now it is nodata,
    said in the log with the DIMAP it came from, and recorded as its source."""
    pan, ms = _delivery(data_dir, tmp_path)
    log = Log()
    res = pansharpen(pan[path], ms[path], str(tmp_path / "o.tif"), "pleiades", "mtf_glp_hpm", feedback=log)
    for role, dim in (("PAN", pan["dim"]), ("MS", ms["dim"])):
        assert any(f"the {role} raster's nodata value is 0, the NODATA special value of {Path(dim).name}" in line
                   for line in log.lines), log.lines
    out = gdal.Open(res.output_path)
    assert out.GetMetadataItem("KSDIFF_PAN_NODATA_SOURCE") == "dimap"
    assert out.GetMetadataItem("KSDIFF_MS_NODATA_SOURCE") == "dimap"
    assert out.GetRasterBand(1).GetNoDataValue() == 0
    a = out.ReadAsArray()
    r, c = np.indices(a.shape[1:])
    collar = r + c < COLLAR - 16   # inside the collar, off its edge (the MS's 4-pixel steps)
    assert not a[:, collar].any(), "the collar was fused as data"
    assert a[:, r + c > COLLAR + 16].all(axis=0).mean() > 0.99
    assert not any("declares no nodata value" in line for line in log.lines), log.lines


@pytest.mark.skipif("qb" not in bundled_cards(), reason="no bundled QuickBird model")
def test_the_dimaps_nbits_holds_through_its_vrt_mosaic_and_its_tiles(data_dir, tmp_path):
    """Same delivery, same output: the VRT of its JP2 tiles was scaled by 2047 ('the MS declares no NBITS') and
    not clipped at 4095, against 4095 through the DIM_*.XML (QA: max diff 9701)."""
    pan, ms = _delivery(data_dir, tmp_path)
    outs = {}
    for path in ("dim", "vrt"):
        log = Log()
        outs[path] = pansharpen(pan[path], ms[path], str(tmp_path / f"{path}.tif"), "auto", "ksdiff", feedback=log)
        assert any("divided by 4095" in line for line in log.lines), log.lines
        if path == "vrt":
            assert any(f"the MS raster's bit depth is 12 bits (values 0-4095): the NBITS of {Path(ms['dim']).name}"
                       in line for line in log.lines), log.lines
    a, b = (gdal.Open(outs[p].output_path).ReadAsArray() for p in ("dim", "vrt"))
    assert np.array_equal(a, b), np.abs(a.astype(int) - b).max()
    assert a.max() <= 4095
    # one tile: the DIMAP that names it gives its NBITS too
    log = Log()
    pansharpen(pan["tile"], ms["tile"], str(tmp_path / "tile.tif"), "auto", "ksdiff", feedback=log)
    assert any("divided by 4095" in line for line in log.lines), log.lines


def test_nodata_commands_work_where_gdal_edit_cannot(data_dir, tmp_path):
    """``gdal_edit.py -a_nodata`` fails on a DIMAP ('does not support update access') and in a zip; the command given
    there is a VRT copy, which real GDAL makes and which declares the value. A GeoTIFF or JP2 keeps gdal_edit."""
    pan, _ = _delivery(data_dir, tmp_path, special="")
    tif = tmp_path / "plain.tif"
    gdal.Translate(str(tif), pan["tile"], format="GTiff")
    with zipfile.ZipFile(tmp_path / "a.zip", "w") as z:
        z.write(tif, "plain.tif")
    zipped = f"/vsizip/{tmp_path / 'a.zip'}/plain.tif"
    assert updatable(str(tif)) and updatable(pan["tile"])   # GTiff; JP2OpenJPEG writes a .aux.xml
    assert nodata_command(str(tif), 0).startswith("gdal_edit.py -a_nodata 0 ")
    for path, out in ((pan["dim"], str(Path(pan["dim"]).with_name(Path(pan["dim"]).stem + "_nodata.vrt"))),
                      (zipped, "plain_nodata.vrt")):
        assert not updatable(path)
        command = nodata_command(path, 0)
        assert command.startswith(f"gdal_translate -of VRT -a_nodata 0 {path} {out} "), command
        args = command.split(" (")[0].split()
        subprocess.run(args, cwd=tmp_path, check=True, capture_output=True)
        made = gdal.Open(str(tmp_path / out))
        assert made.GetRasterBand(1).GetNoDataValue() == 0
        # the real gdal_edit refuses the file, as QA saw
        assert subprocess.run(["gdal_edit.py", "-a_nodata", "0", path], capture_output=True).returncode != 0


def test_the_undeclared_fill_warning_of_a_dimap_gives_a_command_that_works(data_dir, tmp_path):
    """A DIMAP without a NODATA special value and a collar of zeros: the warning gave gdal_edit.py, which the DIMAP
    driver refuses; it now gives the VRT copy of the DIM_*.XML."""
    pan, ms = _delivery(data_dir, tmp_path, special="")
    log = Log()
    pansharpen(pan["dim"], ms["dim"], str(tmp_path / "o.tif"), "pleiades", "mtf_glp_hpm", feedback=log)
    fills = [line for line in log.lines if "declares no nodata value" in line]
    assert len(fills) == 2, log.lines
    for line, dim in zip(fills, (pan["dim"], ms["dim"])):
        assert f"gdal_translate -of VRT -a_nodata 0 {dim} " in line and "gdal_edit" not in line, line


def _figures(res: dict) -> dict[str, float]:
    return {k: v for k, v in res.items() if isinstance(v, float) and not np.isnan(v)}


def _plain(src: str, out: Path) -> str:
    """The same pixels as a GeoTIFF that declares nodata 0 and NBITS 12: what the DIMAP says of them."""
    gdal.Translate(str(out), src, format="GTiff", noData=0, creationOptions=["NBITS=12"])
    return str(out)


@pytest.mark.parametrize("path", ["dim", "vrt"])
def test_assess_reads_a_dimap_delivery_as_the_fusion_did(data_dir, tmp_path, path):
    """ksdiff:assess scored the delivery's collar as data (PAN and MS, full resolution; REFERENCE, reduced) and took
    the full scale of a VRT or tile of 12-bit data from its maximum: its figures now equal those over the same pixels
    in GeoTIFFs that declare nodata 0 and NBITS 12, with the fusion's lines."""
    pan, ms = _delivery(data_dir, tmp_path / "d")
    fused = pansharpen(pan["dim"], ms["dim"], str(tmp_path / "o.tif"), "pleiades", "mtf_glp_hpm").output_path
    plain_pan, plain_ms = _plain(pan["vrt"], tmp_path / "pan.tif"), _plain(ms["vrt"], tmp_path / "ms.tif")
    log = Log()
    got = assess_full(fused, pan[path], ms[path], "pleiades", log)
    want = assess_full(fused, plain_pan, plain_ms, "pleiades")
    assert _figures(got) == pytest.approx(_figures(want), rel=1e-12) and len(_figures(got)) >= 6, (got, want)
    for role, dim in (("PAN", pan["dim"]), ("MS", ms["dim"])):
        assert any(f"the {role} raster's nodata value is 0, the NODATA special value of {Path(dim).name}" in line
                   for line in log.lines), log.lines
    # reduced resolution, generic sensor (full scale from NBITS): a FUSED on the MS grid with data over the collar
    src = gdal.Open(plain_ms)
    arr = src.ReadAsArray().astype(np.float64)
    noisy = np.clip(arr * 1.02 + np.random.default_rng(0).normal(0, 20, arr.shape), 1, 4095)
    fu = gdal.GetDriverByName("GTiff").Create(str(tmp_path / "fu.tif"), src.RasterXSize, src.RasterYSize,
                                              src.RasterCount, gdal.GDT_UInt16)
    fu.SetGeoTransform(src.GetGeoTransform())
    fu.SetProjection(src.GetProjection())
    fu.WriteArray(noisy.astype(np.uint16))
    fu = None
    log = Log()
    got = assess_reduced(str(tmp_path / "fu.tif"), ms[path], "generic", log)
    want = assess_reduced(str(tmp_path / "fu.tif"), plain_ms, "generic")
    assert _figures(got) == pytest.approx(_figures(want), rel=1e-12) and "PSNR" in _figures(got), (got, want)
    assert got["max_value"] == 4095
    assert any(f"the REFERENCE raster's nodata value is 0, the NODATA special value of {Path(ms['dim']).name}"
               in line for line in log.lines), log.lines


def test_the_pan_holes_hint_gives_what_works_on_a_dimaps_nodata(data_dir, tmp_path):
    """A dead PAN column of 0 where the DIMAP's NODATA is 0: the warning said 'gdal_edit.py -unsetnodata', which the
    DIMAP driver refuses, and a VRT copy without nodata takes the DIMAP's value up again (GDAL checked below). It now
    names the DIMAP's NODATA and gives a value the 12-bit PAN never holds, on the layer or in a VRT copy: both fuse
    the column."""
    pan, ms = _delivery(data_dir, tmp_path)
    tile = gdal.Translate("", pan["tile"], format="MEM")
    arr = tile.GetRasterBand(1).ReadAsArray()
    arr[:, 100] = 0   # outside the collar (row + column >= 96) and the MS's
    tile.GetRasterBand(1).WriteArray(arr)
    Path(pan["tile"]).unlink()   # not the driver's Delete: it removes the DIMAP too, among the tile's files
    gdal.Translate(pan["tile"], tile, format="JP2OpenJPEG", creationOptions=["QUALITY=100", "REVERSIBLE=YES"])

    def run(p: str, name: str, **kw) -> tuple[np.ndarray, list[str]]:
        log = Log()
        res = pansharpen(p, ms["dim"], str(tmp_path / name), "pleiades", "mtf_glp_hpm", feedback=log, **kw)
        return (gdal.Open(res.output_path).ReadAsArray(),
                [line for line in log.lines if "only because of the PAN" in line])

    out, notes = run(pan["dim"], "o.tif")
    assert (out[:, :128, 100] == 0).all() and len(notes) == 1, notes
    note, dim = notes[0], Path(pan["dim"])
    assert "gdal_edit" not in note and f"the NODATA special value of {dim.name}" in note, note
    assert "e.g. 65535 (above its 12 bits)" in note and "Additional no data value" in note, note
    command = f"gdal_translate -of VRT -a_nodata 65535 {dim} {dim.with_name(dim.stem + '_nodata.vrt')}"
    assert command in note, note
    subprocess.run(command.split(), check=True, capture_output=True)
    for fused in (run(str(dim.with_name(dim.stem + "_nodata.vrt")), "vrt.tif"), run(pan["dim"], "layer.tif",
                                                                                        pan_nodata=65535)):
        assert (fused[0][:, :128, 100] > 0).all() and not fused[1]
    # what the hint said before does not work: a copy without nodata finds the DIMAP's NODATA again
    subprocess.run(["gdal_translate", "-of", "VRT", "-a_nodata", "none", str(dim), str(tmp_path / "none.vrt")],
                   check=True, capture_output=True)
    assert run(str(tmp_path / "none.vrt"), "none.tif")[1]
