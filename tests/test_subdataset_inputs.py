"""Files holding several rasters (GDAL subdatasets: a GeoPackage of two raster tables, a NetCDF of one variable per
band) given whole, and the names a raster inside a file or an archive is recorded under (QA: refused as "has no
bands"; KSDIFF_PAN_FILE 'scene.nc":pan', 'pan', or 'pan.tif' without the archive)."""
from __future__ import annotations

import os
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from ksdiff_qgis.engine.errors import InputError
from ksdiff_qgis.engine.pipeline import pansharpen
from ksdiff_qgis.engine.provenance import input_file


@pytest.fixture()
def cut(cached, tmp_path) -> tuple[str, str]:
    """(PAN, MS) GeoTIFFs cut from WorldView-2 pair 1: a 96 x 96 MS window and its PAN."""
    pan, ms = str(tmp_path / "pan.tif"), str(tmp_path / "ms.tif")
    gdal.Translate(pan, str(cached("wv2/pair1_pan.tif")), srcWin=[0, 0, 384, 384])
    gdal.Translate(ms, str(cached("wv2/pair1_ms.tif")), srcWin=[0, 0, 96, 96])
    return pan, ms


def _two_table_gpkg(pan: str, path: Path) -> str:
    """A GeoPackage holding the PAN twice, as raster tables 'pan' and 'pan2'."""
    gdal.Translate(str(path), pan, format="GPKG", creationOptions=["RASTER_TABLE=pan"])
    gdal.Translate(str(path), pan, format="GPKG", creationOptions=["RASTER_TABLE=pan2", "APPEND_SUBDATASET=YES"])
    return str(path)


def _fuse(pan: str, ms: str, out: Path) -> gdal.Dataset:
    return gdal.Open(pansharpen(pan, ms, str(out), sensor="wv2", method="mtf_glp_hpm").output_path)


def _refusal(pan: str, ms: str, out: Path) -> str:
    with pytest.raises(InputError) as e:
        pansharpen(pan, ms, str(out), sensor="wv2", method="mtf_glp_hpm")
    assert not out.exists() and not list(out.parent.glob(out.stem + "*.tmp*"))   # nothing written
    return str(e.value)


def test_a_geopackage_of_two_rasters_names_them_and_the_command_that_extracts_one(cut, tmp_path):
    """A GeoPackage with two raster tables given as PAN: "the PAN raster ... has no bands". Now it says the file
    holds 2 rasters, names them, and how to give one; the gdal_translate command it prints makes a PAN that fuses."""
    pan, ms = cut
    gpkg = _two_table_gpkg(pan, tmp_path / "both.gpkg")
    msg = _refusal(gpkg, ms, tmp_path / "o.tif")
    assert "has no bands" not in msg
    assert f'the PAN raster "{gpkg}" is a file holding 2 rasters (subdatasets)' in msg
    assert f"GPKG:{gpkg}:pan, GPKG:{gpkg}:pan2." in msg
    assert "add it as a layer" in msg and f"QgsRasterLayer('GPKG:{gpkg}:pan')" in msg
    command = msg.split("extract it to a file first: ", 1)[1]
    assert command == f"gdal_translate GPKG:{gpkg}:pan {tmp_path}/both_pan.tif"
    subprocess.run(command, shell=True, check=True, capture_output=True)
    direct = _fuse(pan, ms, tmp_path / "direct.tif")
    assert np.array_equal(_fuse(str(tmp_path / "both_pan.tif"), ms, tmp_path / "o.tif").ReadAsArray(),
                          direct.ReadAsArray())


def test_a_netcdf_ms_of_one_variable_per_band_gets_the_command_that_stacks_it(cut, tmp_path):
    """gdal_translate -of netCDF writes each MS band as a variable (Band1 ... Band4): refused as "has no bands".
    Now the message gives the gdalbuildvrt -separate command (quoted for the shell) that stacks them back; the VRT it
    makes fuses as the GeoTIFF does, its bands named by the variables' own band names."""
    pan, ms = cut
    nc = str(tmp_path / "ms.nc")
    gdal.Translate(nc, ms, format="netCDF")
    msg = _refusal(pan, nc, tmp_path / "o.tif")
    assert f'the MS raster "{nc}" is a file holding 4 rasters (subdatasets)' in msg
    assert f'NETCDF:"{nc}":Band1, NETCDF:"{nc}":Band2, NETCDF:"{nc}":Band3, NETCDF:"{nc}":Band4.' in msg
    assert f"""gdal_translate 'NETCDF:"{nc}":Band1' {tmp_path}/ms_Band1.tif""" in msg
    command = msg.split("stack them back into one raster with ", 1)[1].split(" and give ", 1)[0]
    vrt = tmp_path / "ms_bands.vrt"
    assert command == f"gdalbuildvrt -separate {vrt} " + " ".join(f"""'NETCDF:"{nc}":Band{b}'""" for b in range(1, 5))
    subprocess.run(command, shell=True, check=True, capture_output=True)
    assert np.array_equal(gdal.Open(str(vrt)).ReadAsArray(), gdal.Open(ms).ReadAsArray())   # bands in order
    fused, direct = _fuse(pan, str(vrt), tmp_path / "o.tif"), _fuse(pan, ms, tmp_path / "direct.tif")
    # NetCDF keeps no NBITS: the GeoTIFF's fusion is clipped at its 11-bit top, the stack's is not
    assert np.array_equal(np.minimum(fused.ReadAsArray(), 2047), direct.ReadAsArray())
    assert [fused.GetRasterBand(b).GetDescription() for b in range(1, 5)] == ["Blue", "Green", "Red", "NIR"]


def test_processing_refuses_a_multi_raster_file_and_fuses_its_layer(qgis_app, cut, tmp_path):
    """Through Processing, as QA met it: the file given whole is refused with the same message; one of its rasters
    as a layer (what the message says to do) fuses."""
    import processing
    from qgis.core import QgsProcessingException, QgsRasterLayer

    pan, ms = cut
    gpkg = _two_table_gpkg(pan, tmp_path / "both.gpkg")
    params = {"PAN": gpkg, "MS": ms, "SENSOR": "wv2", "METHOD": "mtf_glp_hpm", "OUTPUT": str(tmp_path / "o.tif")}
    with pytest.raises(QgsProcessingException, match=r"is a file holding 2 rasters \(subdatasets\)"):
        processing.run("ksdiff:pansharpen", params)
    layer = QgsRasterLayer(f"GPKG:{gpkg}:pan")
    assert layer.isValid()
    processing.run("ksdiff:pansharpen", {**params, "PAN": layer})
    assert gdal.Open(str(tmp_path / "o.tif")).GetMetadataItem("KSDIFF_PAN_FILE") == \
        f"both.gpkg, {os.path.getsize(gpkg)} bytes, table pan"


def test_an_input_inside_a_file_records_the_file_its_size_and_its_part(cut, tmp_path):
    """KSDIFF_PAN_FILE / KSDIFF_MS_FILE read 'scene.nc":pan' (NETCDF:"…"), 'pan' (HDF5), 'both.gpkg:pan' without a
    size, and 'pan.tif, 473978 bytes' for a zip's member (the archive not named). Now the container file, its size
    and the part: variable, table or member."""
    pan, ms = cut
    nc = str(tmp_path / "scene.nc")
    gdal.Translate(nc, ms, format="netCDF", creationOptions=["FORMAT=NC4"])
    gpkg = _two_table_gpkg(pan, tmp_path / "both.gpkg")
    archive = tmp_path / "delivery.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(pan, "pan.tif")
        z.write(ms, "inner/ms.tif")
    size = {p: os.path.getsize(p) for p in (nc, gpkg, archive)}
    assert input_file(f'NETCDF:"{nc}":Band1') == f"scene.nc, {size[nc]} bytes, variable Band1"
    assert input_file(f'HDF5:"{nc}"://Band1') == f"scene.nc, {size[nc]} bytes, variable Band1"
    assert input_file(f"GPKG:{gpkg}:pan2") == f"both.gpkg, {size[gpkg]} bytes, table pan2"
    assert input_file(f"/vsizip/{archive}/pan.tif") == f"delivery.zip, {size[archive]} bytes, member pan.tif"
    assert input_file(f"/vsizip/{{{archive}}}/inner/ms.tif") == \
        f"delivery.zip, {size[archive]} bytes, member inner/ms.tif"
    assert input_file(pan) == f"pan.tif, {os.path.getsize(pan)} bytes"   # a plain file as before
    res = pansharpen(f"GPKG:{gpkg}:pan2", f"/vsizip/{archive}/inner/ms.tif", str(tmp_path / "o.tif"), sensor="wv2",
                     method="mtf_glp_hpm")
    md = gdal.Open(res.output_path).GetMetadata()
    assert md["KSDIFF_PAN_FILE"] == f"both.gpkg, {size[gpkg]} bytes, table pan2"
    assert md["KSDIFF_MS_FILE"] == f"delivery.zip, {size[archive]} bytes, member inner/ms.tif"
    assert not [k for k, v in md.items() if str(tmp_path) in v]   # still no folders


def test_fix_commands_for_a_layer_inside_a_file_write_beside_the_file_and_run(cut, tmp_path):
    """The nodata and colour-flag commands for a GeoPackage table or a NetCDF variable printed 'GPKG:/x/a_nodata.vrt'
    as the file to write (QA137: "Failed to open GPKG:/x/wv2_8bit_bands.vrt to write"). Now the copy lies beside the
    container file, the source stays the subdataset name, and each printed command runs."""
    from ksdiff_qgis.engine.bandcolour import colour_clear_command
    from ksdiff_qgis.engine.nodatacmd import nodata_command

    pan, ms = cut
    gpkg = _two_table_gpkg(pan, tmp_path / "both.gpkg")
    nc = str(tmp_path / "scene.nc")
    gdal.Translate(nc, ms, format="netCDF")
    for layer, stem in ((f"GPKG:{gpkg}:pan2", "both"), (f'NETCDF:"{nc}":Band1', "scene")):
        for text, suffix in ((nodata_command(layer, 0), "_nodata.vrt"),
                             (colour_clear_command(layer, [1]), "_bands.vrt")):
            command = text.split(" (GDAL cannot update", 1)[0]
            out = tmp_path / f"{stem}{suffix}"
            assert command.endswith(f" {out}"), command
            subprocess.run(command, shell=True, check=True, capture_output=True)
            assert gdal.Open(str(out)).RasterCount == 1
