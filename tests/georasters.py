"""A test helper: arrays written as GeoTIFFs on another raster's georeference."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from osgeo import gdal


def write_like(path: Path, arr: np.ndarray, src: gdal.Dataset, dtype: int = gdal.GDT_Float32) -> str:
    """``arr`` (bands, rows, cols) written to ``path`` with ``src``'s geotransform and CRS; the path as a str."""
    ds = gdal.GetDriverByName("GTiff").Create(str(path), arr.shape[2], arr.shape[1], arr.shape[0], dtype)
    ds.SetGeoTransform(src.GetGeoTransform())
    ds.SetProjection(src.GetProjection())
    for b in range(arr.shape[0]):
        ds.GetRasterBand(b + 1).WriteArray(arr[b])
    ds = None
    return str(path)
