"""Raster files for training, test cases, the bench and the scripts: one reader and one writer (rasterio).

The plugin reads and writes through ``ksdiff_qgis.engine.raster_io`` (QGIS's own ``osgeo.gdal``). Everything
outside the plugin -- ``model_core``, ``bench`` and ``scripts`` -- uses rasterio through this module: it is
a pip dependency that brings its own GDAL, so a training machine or a cluster needs no QGIS, and it speaks
numpy arrays and ``Affine`` transforms. What a written value may be (range, rounding, nodata) is the
engine's one output type policy (:func:`ksdiff_qgis.engine.raster_io.to_dtype`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.transform import Affine
from rasterio.windows import Window

from ksdiff_qgis.engine.raster_io import to_dtype

CREATE_OPTIONS = {"driver": "GTiff", "tiled": True, "compress": "deflate",
                  "photometric": "MINISBLACK"}   # 3-4 Byte bands would be RGB + alpha (the engine's outputs.BASE)


@dataclass
class RasterMeta:
    """What a raster file says about itself (of the window read, for a :class:`Raster`)."""

    width: int
    height: int
    count: int
    dtype: np.dtype
    transform: Affine
    crs: str                  # WKT; "" when the file has none
    nodata: float | None      # of band 1
    descriptions: list[str]   # band names ("" when unnamed)
    nbits: int | None         # bits per sample of a packed integer raster (an 11-bit product), else None

    @property
    def gt(self) -> tuple[float, ...]:
        """The transform in GDAL's geotransform order (x0, dx, rx, y0, ry, dy)."""
        return self.transform.to_gdal()


@dataclass
class Raster(RasterMeta):
    """A raster (or a window of it) read into memory."""

    data: np.ndarray          # (C, H, W) in the file's data type


def _meta(src, win: Window | None) -> dict:
    return dict(width=int(win.width) if win else src.width, height=int(win.height) if win else src.height,
                count=src.count, dtype=np.dtype(src.dtypes[0]),
                transform=src.window_transform(win) if win else src.transform,
                crs=src.crs.to_wkt() if src.crs else "", nodata=src.nodata,
                descriptions=[d or "" for d in src.descriptions],
                nbits=int(nbits) if (nbits := src.tags(1, "IMAGE_STRUCTURE").get("NBITS")) else None)


def describe(path) -> RasterMeta:
    """Size, type, georeferencing, nodata and band names of ``path`` (no pixels read)."""
    with rasterio.open(path) as src:
        return RasterMeta(**_meta(src, None))


def read(path, window: tuple[int, int, int, int] | None = None, out_shape: tuple[int, int] | None = None) -> Raster:
    """Read all bands of ``path``, or of the pixel ``window`` = (col, row, width, height); ``out_shape`` =
    (H, W) resamples to that size (nearest neighbour: for quicklooks)."""
    with rasterio.open(path) as src:
        win = Window(*window) if window else None
        shape = None if out_shape is None else (src.count, *out_shape)
        return Raster(data=src.read(window=win, out_shape=shape, resampling=Resampling.nearest), **_meta(src, win))


def _transform(transform) -> Affine:
    return transform if isinstance(transform, Affine) else Affine.from_gdal(*transform)


def write_geotiff(path, arr: np.ndarray, transform, crs: str | CRS | None, nodata: float | None = None,
                  descriptions: list[str] | None = None, metadata: dict | None = None, nbits: int | None = None,
                  options: dict | None = None) -> str:
    """Write a (C, H, W) or (H, W) array as a tiled, deflate-compressed GeoTIFF; returns ``path``.

    ``transform``: an ``Affine`` or a GDAL geotransform tuple; ``crs``: WKT or a rasterio CRS; ``nbits`` keeps
    an 11-bit product 11-bit; ``options`` override the creation options. The file appears under its name
    only when complete (written beside it, then renamed).
    """
    arr = arr[None] if arr.ndim == 2 else arr
    tmp = f"{path}.partial.tif"
    opts = {**CREATE_OPTIONS, **({"nbits": nbits} if nbits else {}), **(options or {})}
    with rasterio.open(tmp, "w", width=arr.shape[2], height=arr.shape[1], count=arr.shape[0], dtype=arr.dtype,
                       transform=_transform(transform), crs=CRS.from_user_input(crs) if crs else None, nodata=nodata,
                       **opts) as dst:
        dst.write(arr)
        for b, name in enumerate(descriptions or [], start=1):
            if name and b <= arr.shape[0]:
                dst.set_band_description(b, name)
        if metadata:
            dst.update_tags(**{k: str(v) for k, v in metadata.items()})
    os.replace(tmp, path)
    return str(path)


def cast(arr: np.ndarray, dtype, nodata: float | None, invalid: np.ndarray | None = None) -> np.ndarray:
    """Float values -> ``dtype`` by the engine's output type policy; pixels ``invalid`` (H, W) become nodata."""
    out = arr.astype(np.float64)
    if invalid is not None and nodata is not None:
        out[:, invalid] = np.nan
    return to_dtype(out, dtype, nodata)


def crop(src, dst, window: tuple[int, int, int, int], options: dict | None = None) -> str:
    """Copy the pixel ``window`` = (col, row, width, height) of ``src`` into a GeoTIFF ``dst`` with its
    georeferencing, nodata, band names, metadata, bit depth and interleave; returns ``dst``."""
    with rasterio.open(src) as s:
        tags, interleave = s.tags(), s.profile.get("interleave")
    r = read(src, window)
    keep = {"interleave": interleave} if interleave else {}   # a copy keeps the band layout of its source
    return write_geotiff(dst, r.data, r.transform, r.crs, r.nodata, r.descriptions, tags, r.nbits,
                         {**keep, **(options or {})})
