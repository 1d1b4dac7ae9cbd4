"""The engine's one place for raster I/O (GDAL's own Python binding, ``osgeo.gdal``, as QGIS ships it).

* ``info``: open a raster (checked), :class:`RasterInfo` and :func:`describe`;
* ``read``: window reads (padded float32 tiles for fusion, GDAL-averaged windows for scene statistics,
  :class:`MaskedRaster` for the quality assessment);
* ``dtypes``: the output type policy (value range, output nodata, the cast of fused values);
* ``writer``: the streamed, checked GeoTIFF writer and the checks on an output path;
* ``partials``: temporary files of killed runs and the lock of a live one.

Import the public names from here (``from .raster_io import open_raster``); the submodules stay small.
"""
from __future__ import annotations

from .dtypes import data_scale, fits, output_nodata, to_dtype, value_range
from .info import DEFAULT_GT, SUPPORTED_TYPES, RasterInfo, describe, open_dataset, open_raster
from .partials import remove_stale_partials, stale_partials
from .read import MaskedRaster, read_decimated, read_padded
from .writer import (
    OUTPUT_EXTENSIONS,
    SIDECARS,
    GeoTiffWriter,
    check_not_input,
    check_writable,
    write_failure,
)

__all__ = [
    "DEFAULT_GT", "OUTPUT_EXTENSIONS", "SIDECARS", "SUPPORTED_TYPES", "GeoTiffWriter", "MaskedRaster",
    "RasterInfo", "check_not_input", "check_writable", "data_scale", "describe", "fits", "open_dataset",
    "open_raster", "output_nodata", "read_decimated", "read_padded", "remove_stale_partials", "stale_partials",
    "to_dtype", "value_range", "write_failure",
]
