"""The engine's one place for raster I/O (GDAL's own Python binding, ``osgeo.gdal``, as QGIS ships it).

* ``info``: open a raster (checked), :class:`RasterInfo` and :func:`describe`;
* ``geotransform``: when a geotransform is rotated (the one tolerance for float noise in its rotation terms);
* ``bitdepth``: a product's NBITS where its container (a VRT, a NITF) does not report it;
* ``vrtxml``: a VRT's bands and the files behind them (also read by ``engine/delivery.py``);
* ``read``: window reads (padded float32 tiles for fusion, GDAL-averaged windows for scene statistics,
  :class:`MaskedRaster` for the quality assessment);
* ``dtypes``: the output type policy (value range, output nodata, the cast of fused values);
* ``writer``: the streamed, checked GeoTIFF writer and the checks on an output path;
* ``outputs``: the output encoding (compression, predictor, NBITS, creation options) and the COG writer;
* ``partials``: temporary files of killed runs and the lock of a live one;
* ``stretch``: the natural-colour style's 2–98 % cut, from a sample read over the whole extent;
* ``stylemark``: which ``<output>.qml`` styles KSDiff wrote (the only ones it removes or replaces).

Import the public names from here (``from .raster_io import open_raster``); the submodules stay small.
"""
from __future__ import annotations

import importlib

# public name -> submodule. Loaded on first use (PEP 562), so that ``model_core`` can use the numpy-only
# output type policy (``dtypes``) without importing osgeo: training runs where only rasterio is installed.
_EXPORTS = {
    **dict.fromkeys(("data_scale", "fits", "output_nodata", "to_dtype", "value_range"), "dtypes"),
    **dict.fromkeys(("DEFAULT_GT", "RATIO_OFFSET", "SUPPORTED_TYPES", "RasterInfo", "band_value_notes",
                     "declared_scaling", "describe", "encoding_words", "open_dataset", "open_raster",
                     "pair_scaling_note", "scaling_note"), "info"),
    **dict.fromkeys(("NORTH_UP_TOLERANCE", "is_rotated"), "geotransform"),
    **dict.fromkeys(("Signature", "remove_stale_partials", "signature", "stale_partials"), "partials"),
    **dict.fromkeys(("cumulative_cut", "overview_hint", "sample_windows"), "stretch"),
    **dict.fromkeys(("STYLE_FOR", "STYLE_MARK", "UNSEALED", "belongs_to", "is_ksdiff_style", "kept_style_note",
                    "namesakes", "owner_of", "removed_style_note", "seal_style", "shared_style_note", "style_owner"),
                    "stylemark"),
    **dict.fromkeys(("MaskedRaster", "is_nodata", "raster_dtype", "read_decimated", "read_full_band", "read_nearest",
                     "read_padded", "valid_pixels"), "read"),
    **dict.fromkeys(("OUTPUT_EXTENSIONS", "SIDECARS", "GeoTiffWriter", "check_extension", "check_not_input",
                     "check_writable", "free_space", "refuse_virtual", "style_sidecar", "write_failure"), "writer"),
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
