"""GDAL window reads with edge handling, and a streamed GeoTIFF writer that never leaves half a file."""
from __future__ import annotations

import os
import uuid

import numpy as np
from osgeo import gdal

from .errors import InputError
from .gdalutil import gdal_call
from .grid import RasterInfo, describe

SUPPORTED_TYPES = {"Byte", "UInt16", "Int16", "UInt32", "Int32", "Float32", "Float64", "Int8"}


def open_raster(path: str, role: str) -> tuple[gdal.Dataset, RasterInfo]:
    """Open a raster for reading and prove it is readable (first and last block of every band)."""
    ds, msg = gdal_call(gdal.OpenEx, path, gdal.OF_RASTER | gdal.OF_READONLY) if path else (None, "")
    if ds is None:
        msg = msg or "not a raster GDAL can read"
        raise InputError(f"cannot open the {role} raster {path!r}: {msg}")
    if ds.RasterCount < 1:
        raise InputError(f"the {role} raster {path!r} has no bands")
    tname = gdal.GetDataTypeName(ds.GetRasterBand(1).DataType)
    if tname not in SUPPORTED_TYPES:
        raise InputError(f"the {role} raster has data type {tname}, which pansharpening does not support")
    for i in range(1, ds.RasterCount + 1):
        band = ds.GetRasterBand(i)
        for x, y in ((0, 0), (ds.RasterXSize - 1, ds.RasterYSize - 1)):
            data, msg = gdal_call(band.ReadRaster, x, y, 1, 1)
            if data is None:
                raise InputError(f"the {role} raster {path!r} is unreadable or truncated (band {i}): {msg}")
    return ds, describe(ds, path)


def _read(ds: gdal.Dataset, bands: int, col: int, row: int, w: int, h: int) -> np.ndarray:
    arr, msg = gdal_call(ds.ReadAsArray, col, row, w, h, band_list=list(range(1, bands + 1)))
    if arr is None:
        raise OSError(f"reading {w}x{h} pixels at ({col}, {row}) failed: {msg}")
    arr = arr.reshape(bands, h, w)
    return arr


def read_padded(ds: gdal.Dataset, row0: int, col0: int, rows: int, cols: int, mode: str) -> np.ndarray:
    """Read (bands, rows, cols) as float32 from a window that may extend beyond the raster.

    Outside the raster, ``mode='symmetric'`` mirrors the edge pixels (PAN, for filters) and
    ``mode='edge'`` repeats them (MS, equivalent to clamping the interpolation indices). Padding depends
    only on the raster edge, so every tile of a scene sees the same values.
    """
    h, w = ds.RasterYSize, ds.RasterXSize
    r_a, r_b = max(row0, 0), min(row0 + rows, h)
    c_a, c_b = max(col0, 0), min(col0 + cols, w)
    if r_b <= r_a or c_b <= c_a:
        raise ValueError("window lies entirely outside the raster")
    arr = _read(ds, ds.RasterCount, c_a, r_a, c_b - c_a, r_b - r_a).astype(np.float32, copy=False)
    pad = ((0, 0), (r_a - row0, row0 + rows - r_b), (c_a - col0, col0 + cols - c_b))
    if any(p for ax in pad for p in ax):
        arr = np.pad(arr, pad, mode=mode)
    return arr


def read_decimated(ds: gdal.Dataset, col: int, row: int, w: int, h: int, out_w: int, out_h: int) -> np.ndarray:
    """Read a window averaged down to (out_h, out_w) by GDAL, as float64 (bands, out_h, out_w)."""
    arr, msg = gdal_call(ds.ReadAsArray, col, row, w, h, buf_xsize=out_w, buf_ysize=out_h,
                         buf_type=gdal.GDT_Float64, resample_alg=gdal.GRIORA_Average)
    if arr is None:
        raise OSError(f"reading the raster failed: {msg}")
    return arr.reshape(ds.RasterCount, out_h, out_w)


def check_writable(path: str) -> None:
    """Raise InputError unless a GeoTIFF can be created at ``path``."""
    if not path:
        raise InputError("no output file was given")
    if os.path.isdir(path):
        raise InputError(f"the output path {path!r} is a folder")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise InputError(f"the output folder {folder!r} does not exist")
    if not os.access(folder, os.W_OK):
        raise InputError(f"the output folder {folder!r} is not writable")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise InputError(f"the output file {path!r} exists and cannot be overwritten")


class GeoTiffWriter:
    """Tiled, compressed GeoTIFF written row-strip by row-strip into a temporary file.

    ``commit()`` renames it onto the destination (an existing file there is replaced only then);
    ``abort()`` deletes it, so a failed or cancelled run leaves nothing behind.
    """

    def __init__(self, path: str, width: int, height: int, ms: RasterInfo, gt, wkt: str,
                 band_names: list[str], nodata: float | None):
        check_writable(path)
        self.path = path
        folder, name = os.path.split(os.path.abspath(path))
        self.tmp_path = os.path.join(folder, f".{name}.{uuid.uuid4().hex[:8]}.partial")
        self.dtype = ms.dtype
        opts = ["TILED=YES", "BLOCKXSIZE=256", "BLOCKYSIZE=256", "COMPRESS=DEFLATE", "BIGTIFF=IF_SAFER"]
        if ms.nbits and ms.nbits < ms.dtype.itemsize * 8:
            opts.append(f"NBITS={ms.nbits}")
        else:
            opts.append("PREDICTOR=3" if ms.dtype.kind == "f" else "PREDICTOR=2")
        self.ds, msg = gdal_call(gdal.GetDriverByName("GTiff").Create, self.tmp_path, width, height, ms.bands,
                                 ms.gdal_type, opts)
        if self.ds is None:
            raise InputError(f"cannot create the output file {path!r}: {msg}")
        self.ds.SetGeoTransform(gt)
        self.ds.SetProjection(wkt)
        for i, name in enumerate(band_names, start=1):
            band = self.ds.GetRasterBand(i)
            band.SetDescription(name)
            if nodata is not None:
                band.SetNoDataValue(nodata)

    def write(self, arr: np.ndarray, row: int, col: int = 0) -> None:
        """Write (bands, h, w) already in the output data type at (row, col)."""
        for i in range(arr.shape[0]):
            err, msg = gdal_call(self.ds.GetRasterBand(i + 1).WriteArray, arr[i], col, row)
            if err != 0:
                raise OSError(f"writing the output failed: {msg}")

    def commit(self) -> None:
        self.ds.FlushCache()
        self.ds = None
        os.replace(self.tmp_path, self.path)

    def abort(self) -> None:
        self.ds = None
        for p in (self.tmp_path, self.tmp_path + ".aux.xml"):
            if os.path.exists(p):
                os.remove(p)
