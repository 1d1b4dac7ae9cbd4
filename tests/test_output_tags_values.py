"""What the fused file says beside its values (QA round 48c): the MS file's TIFF DateTime and ImageDescription are
not carried, and a fused value equal to a float nodata 0 is written as a normal float, not a denormal. Real
WorldView-2 pair 1 from the data cache."""
from __future__ import annotations

import shutil

import numpy as np
from osgeo import gdal

from ksdiff_qgis.engine.pipeline import pansharpen
from ksdiff_qgis.engine.raster_io import to_dtype


def test_the_ms_files_datetime_and_description_are_not_carried(cached, tmp_path):
    ms = shutil.copy(cached("wv2/pair1_ms.tif"), tmp_path / "ms.tif")
    ds = gdal.Open(str(ms), gdal.GA_Update)
    ds.SetMetadataItem("TIFFTAG_DATETIME", "2016:08:31 10:59:00")
    ds.SetMetadataItem("TIFFTAG_IMAGEDESCRIPTION", "WV2 crop, radiance x100")
    ds.SetMetadataItem("CLOUDCOVER", "3")
    ds = None
    out = str(tmp_path / "o.tif")
    pansharpen(str(cached("wv2/pair1_pan.tif")), str(ms), out, "wv2", "mtf_glp_hpm")
    md = gdal.Open(out).GetMetadata()
    assert "TIFFTAG_DATETIME" not in md and "TIFFTAG_IMAGEDESCRIPTION" not in md, md
    assert md.get("CLOUDCOVER") == "3"   # the rest of the MS's metadata still is


def test_a_value_equal_to_a_float_nodata_0_becomes_a_normal_float(cached, tmp_path):
    """Float output, nodata 0: a valid fused 0 became 1.4e-45, a float32 denormal (read as 0, the hole, where
    denormals are flushed); it is the smallest normal float now, as an integer output moves it one DN."""
    pan = gdal.Open(str(cached("wv2/pair1_pan.tif"))).ReadAsArray(0, 0, 64, 64).astype(np.float64) / 1e4
    strip = np.stack([pan - pan[0, 0], pan])   # the first value exactly 0
    strip[1, 5, 5] = np.nan
    for dtype in (np.float32, np.float64):
        out = to_dtype(strip, dtype, 0.0)
        assert out[0, 0, 0] == np.finfo(np.float32).tiny and out[1, 5, 5] == 0.0
        tiny = np.abs(out[out != 0]).min()
        assert tiny >= np.finfo(np.float32).tiny
    assert to_dtype(np.array([-9999.0]), np.float32, -9999.0)[0] == np.nextafter(np.float32(-9999), np.float32(0))
