"""Inputs read through GDAL's virtual file systems (/vsizip/, /vsimem/) and outputs refused there."""
from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from osgeo import gdal
from test_deliveries import SCENE, _landsat_delivery, _stack
from test_sensors_bands import Log

from ksdiff_qgis.engine.delivery import vrt_sources
from ksdiff_qgis.engine.errors import InputError
from ksdiff_qgis.engine.pipeline import pansharpen
from ksdiff_qgis.engine.scenes import SceneListError, read_scenes


def _zipped_landsat_vrt(data_dir: Path, tmp_path: Path) -> tuple[str, str]:
    """The Landsat fixture as USGS delivers it (band files beside the MTL) with a gdalbuildvrt -separate stack in the
    order B4, B3, B2, B5 (relative sources), all zipped: (PAN, VRT) as /vsizip/ paths."""
    folder = tmp_path / "delivery"
    files = _landsat_delivery(data_dir, folder)
    _stack(folder / "ms_4325.vrt", [files[c] for c in ("B4", "B3", "B2", "B5")])
    archive = tmp_path / "l8.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in sorted(folder.iterdir()):
            z.write(f, f.name)
    return f"/vsizip/{archive}/{SCENE}_B8.TIF", f"/vsizip/{archive}/ms_4325.vrt"


def test_a_band_vrt_inside_a_zip_is_fused_with_its_bands_named_by_their_files(data_dir, tmp_path):
    """A B4,B3,B2,B5 VRT read from /vsizip/ came out named B2 Blue, B3 Green, B4 Red, B5 NIR while band 1 held red:
    its XML was read with Python's own file calls, which cannot open a /vsi path, so its sources were never looked
    at. Now it is read through GDAL's VSI layer, its relative sources resolved inside the zip, the MTL found there."""
    pan, vrt = _zipped_landsat_vrt(data_dir, tmp_path)
    sources = vrt_sources(vrt)
    assert sources is not None and [s[0][0] for s in sources] == [
        f"/vsizip/{tmp_path}/l8.zip/{SCENE}_{c}.TIF" for c in ("B4", "B3", "B2", "B5")]
    log = Log()
    res = pansharpen(pan, vrt, str(tmp_path / "o.tif"), "auto", "mtf_glp_hpm", feedback=log)
    assert any("band names from the VRT's source files: band 1 B4 Red, band 2 B3 Green, band 3 B2 Blue, band 4 B5 NIR "
               f"(Landsat 8/9 OLI band codes: {SCENE}_MTL.txt says LANDSAT_8)" in line for line in log.lines), log.lines
    out = gdal.Open(res.output_path)
    assert [out.GetRasterBand(i).GetDescription() for i in (1, 2, 3, 4)] == ["B4 Red", "B3 Green", "B2 Blue", "B5 NIR"]


VIRTUAL_OUTPUT = "outputs cannot be written into an archive or a GDAL virtual file system"


def _virtual_outputs(tmp_path: Path) -> list[tuple[str, str]]:
    """(output inside a zip, /vsimem/ output) and the plain path each message suggests."""
    archive = tmp_path / "l8.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("readme.txt", "an archive the output was asked to go into")
    return [(f"/vsizip/{archive}/fused.tif", f"(/vsizip/…): give a plain file path such as {tmp_path}/fused.tif"),
            ("/vsimem/fused.tif", "(/vsimem/…): give a plain file path such as /path/to/fused.tif")]


def test_an_output_inside_an_archive_or_vsimem_is_refused_before_anything_runs(data_dir, tmp_path):
    """It said "the output folder '/vsizip/tmp/x/l8.zip' does not exist" (its path mangled, the wrong cause)."""
    for out, hint in _virtual_outputs(tmp_path):
        log = Log()
        with pytest.raises(InputError) as raised:
            pansharpen(str(data_dir / "l8_pan.tif"), str(data_dir / "l8_ms.tif"), out, "landsat8", "mtf_glp_hpm",
                       feedback=log)
        assert VIRTUAL_OUTPUT in str(raised.value) and hint in str(raised.value), raised.value
        assert gdal.VSIStatL(out) is None and not log.lines, log.lines
    assert sorted(p.name for p in tmp_path.iterdir()) == ["l8.zip"]


def test_a_batch_list_with_an_output_inside_an_archive_stops_before_any_scene(data_dir, tmp_path):
    """The batch ran the scene, failed at the writer and retried it three times."""
    (out, hint), _ = _virtual_outputs(tmp_path)
    listing = tmp_path / "scenes.csv"
    listing.write_text(f"pan,ms,sensor,method,output\n{data_dir}/l8_pan.tif,{data_dir}/l8_ms.tif,landsat8,,ok.tif\n"
                       f"{data_dir}/l8_pan.tif,{data_dir}/l8_ms.tif,landsat8,,{out}\n", encoding="utf-8")
    with pytest.raises(SceneListError) as raised:
        read_scenes(str(listing))
    assert str(raised.value).startswith(f'line 3: the output "{out}" cannot be written: {VIRTUAL_OUTPUT}')
    assert hint in str(raised.value), raised.value


def test_processing_refuses_an_output_inside_an_archive(qgis_app, data_dir, tmp_path):
    import processing
    from qgis.core import QgsProcessingException

    for out, hint in _virtual_outputs(tmp_path):
        with pytest.raises(QgsProcessingException) as raised:
            processing.run("ksdiff:pansharpen", {"PAN": str(data_dir / "l8_pan.tif"), "MS": str(data_dir / "l8_ms.tif"),
                                                 "SENSOR": "landsat8", "METHOD": "mtf_glp_hpm", "OUTPUT": out})
        assert VIRTUAL_OUTPUT in str(raised.value) and hint in str(raised.value), raised.value
        assert "does not exist" not in str(raised.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["l8.zip"]
