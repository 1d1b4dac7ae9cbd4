"""model_core.rasters (rasterio, outside the plugin) agrees with what GDAL reads, and casts by the engine's policy."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from osgeo import gdal

from ksdiff_qgis.engine.raster_io import to_dtype
from model_core.rasters import cast, crop, describe, read, write_geotiff

ROOT = Path(__file__).resolve().parent.parent


def test_crop_keeps_pixels_georeferencing_and_bit_depth(data_dir, tmp_path):
    src = str(data_dir / "wv2_test_ms.tif")
    win = (5, 7, 40, 30)
    out = crop(src, str(tmp_path / "c.tif"), win)
    a, b = gdal.Open(src), gdal.Open(out)
    assert np.array_equal(a.ReadAsArray(*win), b.ReadAsArray())
    gt = a.GetGeoTransform()
    assert b.GetGeoTransform() == (gt[0] + win[0] * gt[1], gt[1], 0.0, gt[3] + win[1] * gt[5], 0.0, gt[5])
    assert b.GetProjection() == a.GetProjection()
    for i in range(1, a.RasterCount + 1):
        ba, bb = a.GetRasterBand(i), b.GetRasterBand(i)
        assert (bb.GetNoDataValue(), bb.GetDescription()) == (ba.GetNoDataValue(), ba.GetDescription())
        assert bb.GetMetadata("IMAGE_STRUCTURE") == ba.GetMetadata("IMAGE_STRUCTURE")
    assert b.GetMetadata() == a.GetMetadata()
    meta = describe(out)
    assert (meta.width, meta.height, meta.count, meta.gt) == (40, 30, 4, b.GetGeoTransform())


def test_write_and_read_back(tmp_path):
    arr = np.arange(2 * 5 * 6, dtype=np.uint16).reshape(2, 5, 6)
    gt = (100.0, 2.0, 0.0, 200.0, 0.0, -2.0)
    path = write_geotiff(tmp_path / "w.tif", arr, gt, "", 0, ["A", "B"], {"K": 1})
    r = read(path, (1, 2, 3, 3))
    assert np.array_equal(r.data, arr[:, 2:5, 1:4])
    assert r.gt == (102.0, 2.0, 0.0, 196.0, 0.0, -2.0)
    assert (r.nodata, r.descriptions, r.crs) == (0, ["A", "B"], "")
    assert gdal.Open(path).GetMetadataItem("K") == "1"
    assert not list(tmp_path.glob("*.partial*"))


def test_cast_is_the_engine_output_policy():
    """Wald test cases are cast like the plugin's output: rounded, clipped, holes -> nodata, and a valid
    value equal to nodata nudged (down at the top of the range)."""
    arr = np.array([[[0.4, 70000.0, -3.0], [65535.2, 12.5, 13.5]]])
    invalid = np.array([[False, False, False], [False, False, True]])
    out = cast(arr, np.uint16, 0, invalid)
    assert out.dtype == np.uint16
    assert out.tolist() == [[[1, 65535, 1], [65535, 12, 0]]]
    assert cast(arr, np.uint16, 65535).tolist() == [[[0, 65534, 0], [65534, 12, 14]]]
    expected = arr.copy()
    expected[:, invalid] = np.nan
    assert np.array_equal(cast(arr, np.uint16, 0, invalid), to_dtype(expected, np.uint16, 0))


def test_every_raster_io_name_resolves():
    """The engine's raster_io exports its names lazily; each one must exist in its submodule."""
    from ksdiff_qgis.engine import raster_io

    for name in raster_io.__all__:
        assert getattr(raster_io, name) is not None, name


def test_training_side_needs_no_osgeo():
    """model_core reads with rasterio and casts with the engine's numpy-only policy: no osgeo import."""
    import subprocess
    import sys

    code = ("import sys, model_core.rasters, model_core.wald, model_core.data.scenes; "
            "sys.exit('osgeo' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], cwd=str(ROOT)).returncode == 0
