"""Inputs read through GDAL's virtual file systems (/vsizip/, /vsimem/) and outputs refused there."""
from __future__ import annotations

import zipfile
from pathlib import Path

from osgeo import gdal
from test_deliveries import SCENE, _landsat_delivery, _stack
from test_sensors_bands import Log

from ksdiff_qgis.engine.delivery import vrt_sources
from ksdiff_qgis.engine.pipeline import pansharpen


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
