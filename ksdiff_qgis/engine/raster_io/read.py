"""Window reads: padded float32 tiles for fusion, GDAL-averaged windows for scene statistics, and masked
float64 windows for the quality assessment."""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
from osgeo import gdal, gdal_array

from ..blockcache import decoded_block
from ..errors import InputError, quoted
from ..gdalutil import dataset_name, gdal_call
from .geotransform import is_rotated
from .info import band_label, declared_scaling, open_dataset

MAX_WINDOW_BYTES = 64 << 20   # read_nearest's window (one block, all bands); a bigger block is read a row at a time


def read_failure(ds: gdal.Dataset, what: str, msg: str) -> OSError:
    """A failed read that names the input file (a damaged block shows only when a tile reaches it)."""
    return OSError(f"reading {what} of the input {quoted(dataset_name(ds))} failed — the file may be "
                   f"damaged or truncated (check it with gdalinfo -checksum): {msg}")


def _read(ds: gdal.Dataset, bands: int, col: int, row: int, w: int, h: int) -> np.ndarray:
    arr, msg = gdal_call(ds.ReadAsArray, col, row, w, h, band_list=list(range(1, bands + 1)))
    if arr is None:
        raise read_failure(ds, f"{w}x{h} pixels at ({col}, {row})", msg)
    arr = arr.reshape(bands, h, w)
    return arr


Clamp = Callable[[np.ndarray, int, int, tuple[int, int]], None]


def read_padded(ds: gdal.Dataset, row0: int, col0: int, rows: int, cols: int, mode: str,
                clamp: Clamp | None = None) -> np.ndarray:
    """Read (bands, rows, cols) as float32 from a window that may extend beyond the raster.

    Outside the raster, ``mode='symmetric'`` mirrors the edge pixels (the pipeline pads PAN and MS so: on
    aligned grids the two mirrors are the same scene) and ``mode='edge'`` repeats them. Padding depends only on
    the raster edge, so every tile of a scene sees the same values.
    ``clamp(arr, row, col, (raster rows, cols))``: applied in place to the pixels read, before any padding copies
    them (``inrange.RangeGuard.clamp``: values above a declared bit depth).
    """
    h, w = ds.RasterYSize, ds.RasterXSize
    r_a, r_b = max(row0, 0), min(row0 + rows, h)
    c_a, c_b = max(col0, 0), min(col0 + cols, w)
    if r_b <= r_a or c_b <= c_a:
        raise ValueError("window lies entirely outside the raster")
    arr = _read(ds, ds.RasterCount, c_a, r_a, c_b - c_a, r_b - r_a).astype(np.float32, copy=False)
    if clamp is not None:
        clamp(arr, r_a, c_a, (h, w))
    pad = ((0, 0), (r_a - row0, row0 + rows - r_b), (c_a - col0, col0 + cols - c_b))
    if any(p for ax in pad for p in ax):
        arr = np.pad(arr, pad, mode=mode)
    return arr


def _nearest_index(size: int, out: int) -> np.ndarray:
    """The ``out`` source indices GDAL's nearest-neighbour decimation of ``size`` pixels picks (pixel centres)."""
    return np.minimum(((np.arange(out) + 0.5) * (size / out) + 1e-10).astype(np.int64), size - 1)


def read_nearest(ds: gdal.Dataset, out_w: int, out_h: int, band_list: list[int] | None = None
                 ) -> tuple[np.ndarray | None, str]:
    """(``band_list``'s bands (1-based; all by default) decimated to (bands, out_h, out_w) by nearest neighbour, in
    the file's data type; None and GDAL's message when a read fails). The pixels GDAL's decimated read picks, but
    read at full resolution: GDAL answers a decimated read from the raster's overviews when it has some, and averaged
    ones (an external .ovr, a COG's own) blend a fill's edge into values the raster does not hold (QA: an undeclared
    65535 collar went unseen and was fused as data). Read one block (all bands) at a time, each block once: a row at
    a time decoded a row of blocks again per sampled row when GDAL's cache could not hold it (QA121: 41 s)."""
    bands = band_list or list(range(1, ds.RasterCount + 1))
    w, h = ds.RasterXSize, ds.RasterYSize
    rows, cols = _nearest_index(h, min(h, out_h)), _nearest_index(w, min(w, out_w))
    bw, bh = decoded_block(ds)
    item = gdal.GetDataTypeSize(ds.GetRasterBand(bands[0]).DataType) // 8
    out = None
    for row_at, picked_rows in _runs(rows, bh):
        for col_at, picked_cols in _runs(cols, bw):
            y0, x0 = int(picked_rows[0]), int(picked_cols[0])
            win_w, win_h = int(picked_cols[-1]) - x0 + 1, int(picked_rows[-1]) - y0 + 1
            # a huge single-strip block: its picked rows one by one rather than the whole strip in memory
            spans = ([(y0, win_h, picked_rows - y0)] if win_w * win_h * len(bands) * item <= MAX_WINDOW_BYTES
                     else [(int(y), 1, np.zeros(1, np.int64)) for y in picked_rows])
            for k, (y, span, picks) in enumerate(spans):
                arr, msg = gdal_call(ds.ReadAsArray, x0, y, win_w, span, band_list=bands)
                if arr is None:
                    return None, msg
                arr = arr.reshape(len(bands), span, win_w)
                if out is None:
                    out = np.empty((len(bands), rows.size, cols.size), dtype=arr.dtype)
                at = row_at + (k if len(spans) > 1 else 0)
                out[:, at:at + picks.size, col_at:col_at + picked_cols.size] = arr[:, picks][:, :, picked_cols - x0]
    return out, ""


def _runs(picks: np.ndarray, block: int) -> list[tuple[int, np.ndarray]]:
    """``picks`` (sorted source indices) grouped by the block they fall in: (position of the group's first in
    ``picks``, the group)."""
    cuts = np.flatnonzero(np.diff(picks // block)) + 1
    starts = np.concatenate(([0], cuts))
    return [(int(s), g) for s, g in zip(starts, np.split(picks, cuts))]


Sample = Callable[[np.ndarray, np.ndarray], np.ndarray]


def read_full_band(ds: gdal.Dataset, b: int, col: int, row: int, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    """Band ``b`` (0-based) of a window at full resolution as float64, and its valid pixels (GDAL's mask; finite)."""
    band = ds.GetRasterBand(b + 1)
    arr, msg = gdal_call(band.ReadAsArray, col, row, w, h, buf_type=gdal.GDT_Float64)
    if arr is None:
        raise read_failure(ds, f"band {b + 1}, {w}x{h} pixels at ({col}, {row})", msg)
    ok = np.isfinite(arr)
    if band.GetMaskFlags() != gdal.GMF_ALL_VALID:
        mask, msg = gdal_call(band.GetMaskBand().ReadAsArray, col, row, w, h)
        if mask is None:
            raise read_failure(ds, f"the mask of band {b + 1}", msg)
        ok &= mask > 0
    return arr, ok


def _gdal_average(arr: np.ndarray, ok: np.ndarray, out_w: int, out_h: int) -> np.ndarray:
    """GDAL's averaging of a (h, w) array's ``ok`` pixels down to (out_h, out_w); NaN where none is."""
    mem = gdal.GetDriverByName("MEM").Create("", arr.shape[1], arr.shape[0], 1, gdal.GDT_Float64)
    band = mem.GetRasterBand(1)
    band.SetNoDataValue(float("nan"))
    band.WriteArray(np.where(ok, arr, np.nan))
    return band.ReadAsArray(buf_xsize=out_w, buf_ysize=out_h, resample_alg=gdal.GRIORA_Average)


def read_decimated(ds: gdal.Dataset, col: int, row: int, w: int, h: int, out_w: int, out_h: int,
                   sample: Sample | None = None, full: list | None = None) -> np.ndarray:
    """Read a window averaged down to (out_h, out_w), as float64 (bands, out_h, out_w): each output pixel the mean of
    the valid pixels under it (GDAL's mask: nodata, alpha, an internal mask; and finite), the nodata value (else NaN)
    where none is. Averaged here from the full-resolution pixels, not by GDAL: a downsampled GDAL read is answered
    from the raster's overviews when it has some — a nearest-neighbour or stale pyramid QGIS built — which moved the
    scene statistics and the PAN/MS registration. A factor that is not whole (a window cut by the raster's edge) is
    left to GDAL's averaging.
    ``sample(values, valid)``: each band's full-resolution values before they are averaged, returned clamped
    (``inrange.RangeGuard.sample``). ``full``: gets each band's full-resolution (values, valid) when the factor is
    whole (a caller that also needs the window's finest detail reads it once)."""
    if w % out_w or h % out_h:
        arr, msg = gdal_call(ds.ReadAsArray, col, row, w, h, buf_xsize=out_w, buf_ysize=out_h,
                             buf_type=gdal.GDT_Float64, resample_alg=gdal.GRIORA_Average)
        if arr is None:
            raise read_failure(ds, f"{w}x{h} pixels at ({col}, {row})", msg)
        arr = arr.reshape(ds.RasterCount, out_h, out_w)
        for b in range(ds.RasterCount if sample is not None else 0):
            full, ok = read_full_band(ds, b, col, row, w, h)
            kept = sample(full, ok)
            if kept is not full:   # values were clamped: average the clamped ones
                nodata = ds.GetRasterBand(b + 1).GetNoDataValue()
                avg = _gdal_average(kept, ok, out_w, out_h)
                if ds.GetRasterBand(b + 1).DataType not in (gdal.GDT_Float32, gdal.GDT_Float64):
                    avg = np.floor(avg + 0.5)   # as GDAL's average of integer data is (the windows beside it)
                arr[b] = np.where(np.isnan(avg), nodata if nodata is not None else np.nan, avg)
        return arr
    fy, fx = h // out_h, w // out_w
    out = np.empty((ds.RasterCount, out_h, out_w))
    for b in range(ds.RasterCount):
        band = ds.GetRasterBand(b + 1)
        arr, ok = read_full_band(ds, b, col, row, w, h)
        if sample is not None:
            arr = sample(arr, ok)
        if full is not None:
            full.append((arr, ok))
        total = np.where(ok, arr, 0.0).reshape(out_h, fy, out_w, fx).sum(axis=(1, 3))
        count = ok.reshape(out_h, fy, out_w, fx).sum(axis=(1, 3))
        nodata = band.GetNoDataValue()
        # no valid pixel: the nodata value, else NaN (a hole ``valid_pixels`` sees; 0 would read as data)
        out[b] = np.where(count > 0, total / np.maximum(count, 1), nodata if nodata is not None else np.nan)
    return out


_FLOAT_EPS = float(np.finfo(np.float32).eps)


def raster_dtype(ds: gdal.Dataset) -> np.dtype:
    """The numpy type of ``ds``'s first band (the type its nodata value is compared in)."""
    return np.dtype(gdal_array.GDALTypeCodeToNumericTypeCode(ds.GetRasterBand(1).DataType) or np.float64)


def is_nodata(arr: np.ndarray, nodata: float, dtype: np.dtype | None = None) -> np.ndarray:
    """Where ``arr`` holds ``nodata`` as GDAL's nodata mask finds it in a raster of type ``dtype`` (None:
    ``arr``'s): NaN for a NaN nodata; in integer data the value itself; in float data the value cast to the
    raster's type, equal within GDAL's tolerance (ARE_REAL_EQUAL: 2 float epsilons of the sum, computed in that
    type). So a fill written with 6 digits (-3.40282e+38, not the float32 -FLT_MAX the pixels hold) is nodata
    here as it is in GDAL's mask (QA: GDAL's mask hid those pixels, the tiles fused 14920 values at -3.4e38)."""
    if math.isnan(nodata):
        return np.isnan(arr)
    dtype = np.dtype(dtype if dtype is not None else arr.dtype)
    if dtype.kind != "f":
        return arr == nodata
    t = np.float32 if dtype.itemsize <= 4 else np.float64
    with np.errstate(over="ignore", invalid="ignore"):
        a, nd = arr.astype(t, copy=False), t(nodata)   # out of float32's range: inf, as GDAL's cast
        return (a == nd) | (np.abs(a - nd) < t(_FLOAT_EPS * 2) * np.abs(a + nd))


def valid_pixels(arr: np.ndarray, nodata: float | None, dtype: np.dtype | None = None) -> np.ndarray | None:
    """Per-pixel validity over all bands of (C, H, W): not the nodata value (``is_nodata`` in a raster of type
    ``dtype``; None: float32, the tiles' type), and finite (NaN and infinities in floating-point data are holes
    whether declared or not); None when no nodata is declared and all is finite."""
    finite = np.isfinite(arr).all(axis=0) if arr.dtype.kind == "f" else None
    if nodata is None:
        return None if finite is None or finite.all() else finite
    bad = is_nodata(arr, nodata, np.float32 if dtype is None else dtype)
    return ~bad.any(axis=0) if finite is None else ~bad.any(axis=0) & finite


def per_band_masks(ds: gdal.Dataset) -> bool:
    """Whether the bands carry masks of their own (a ``.msk`` with one mask per band: GDAL mask flags 0)."""
    return any(ds.GetRasterBand(b + 1).GetMaskFlags() == 0 for b in range(ds.RasterCount))


def own_mask(ds: gdal.Dataset) -> bool:
    """Whether the dataset carries a mask of its own for all bands (GDAL's GMF_PER_DATASET alone: an internal or
    ``.msk`` mask), not one derived from nodata or alpha, nor per-band masks."""
    band = ds.GetRasterBand(1)
    return band.GetMaskFlags() == gdal.GMF_PER_DATASET


class MaskedRaster:
    """A north-up raster read window by window as float64 with a validity mask (the assessment's reader).

    ``extra_nodata`` is one more value that marks a hole in every band, besides the declared nodata (the
    bench's test cases use 0 as fill whether or not a file declares it); ``outside_nodata`` a nodata value set
    outside the file (a QGIS layer's), used when no band declares one. A mask of the file's own (``own_mask``) hides
    what it hides. ``scaling``: each band's declared (scale, offset) (``declared_scaling``); with ``physical`` set
    (``assessment.use_declared_scaling``) :meth:`read` returns physical values, value x scale + offset.
    """

    def __init__(self, path: str, role: str, extra_nodata: float | None = None, outside_nodata: float | None = None,
                 dataset: gdal.Dataset | None = None):
        self.path, self.role = path, role
        self.ds = dataset if dataset is not None else open_dataset(path, role)   # a view of ``path`` when given
        gt = self.ds.GetGeoTransform()
        if is_rotated(gt, self.ds.RasterXSize, self.ds.RasterYSize):
            raise InputError(f"{role}: rotated rasters are not supported")
        self.gt = (gt[0], gt[1], 0.0, gt[3], 0.0, gt[5])   # rotation terms of float noise: read north-up
        self.w, self.h, self.bands = self.ds.RasterXSize, self.ds.RasterYSize, self.ds.RasterCount
        self.nodata = [self.ds.GetRasterBand(b + 1).GetNoDataValue() for b in range(self.bands)]
        if outside_nodata is not None and all(nd is None for nd in self.nodata):
            self.nodata = [float(outside_nodata)] * self.bands   # e.g. a QGIS layer's nodata value
        self.extra_nodata = extra_nodata
        self.names = [band_label(self.ds.GetRasterBand(b + 1)) for b in range(self.bands)]
        self.masked = own_mask(self.ds)
        self.band_list = list(range(1, self.bands + 1))
        self.dtype = raster_dtype(self.ds)   # nodata is compared in the raster's own type (``is_nodata``)
        self.scaling = declared_scaling(self.ds, self.band_list)
        self.physical = False

    def select(self, band_list: list[int]) -> None:
        """Read only these bands (1-based), in this order."""
        self.nodata = [self.nodata[b - 1] for b in band_list]
        self.names = [self.names[b - 1] for b in band_list]
        self.scaling = [self.scaling[b - 1] for b in band_list]
        self.band_list, self.bands = list(band_list), len(band_list)

    def read(self, col: int, row: int, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
        """(C, h, w) float64 and a validity mask (False where any band is nodata or NaN); invalid pixels read 0."""
        arr, msg = gdal_call(self.ds.ReadAsArray, int(col), int(row), int(w), int(h), band_list=self.band_list)
        if arr is None:
            raise InputError(f"{self.role}: reading {self.path} failed: {msg}")
        arr = (arr[None] if arr.ndim == 2 else arr).astype(np.float64)
        valid = np.ones(arr.shape[1:], bool)
        for b, nd in enumerate(self.nodata):
            if nd is not None:
                valid &= ~is_nodata(arr[b], nd, self.dtype)
        if self.extra_nodata is not None:
            valid &= ~is_nodata(arr, self.extra_nodata, self.dtype).any(axis=0)
        if self.masked:
            band = self.ds.GetRasterBand(1)
            mask, msg = gdal_call(band.GetMaskBand().ReadAsArray, int(col), int(row), int(w), int(h))
            if mask is None:
                raise InputError(f"{self.role}: reading the mask band of {self.path} failed: {msg}")
            valid &= mask != 0
        valid &= np.isfinite(arr).all(axis=0)
        if self.physical:   # nodata is a stored value: compared above, before the scale/offset
            arr = self.to_physical(arr)
        # a hole's value (NaN, -3.4e38, 60000) would run through the windowed indices' cumulative sums into windows
        # without it: holes read as 0, whatever fills them in the file
        arr[:, ~valid] = 0.0
        return arr, valid

    def to_physical(self, arr: np.ndarray) -> np.ndarray:
        """(C, ...) stored values of the selected bands as physical values: x scale + offset, per band."""
        sc = np.array([p[0] for p in self.scaling], np.float64).reshape((-1,) + (1,) * (arr.ndim - 1))
        off = np.array([p[1] for p in self.scaling], np.float64).reshape(sc.shape)
        return arr * sc + off

    def read_mirrored(self, col: int, row: int, w: int, h: int, bounds) -> tuple[np.ndarray, np.ndarray]:
        """Like :meth:`read`, for a window that may leave ``bounds`` = (col0, row0, col1, row1): the part
        outside is mirrored at those bounds (as ``np.pad(..., 'symmetric')`` of the bounded image)."""
        c0, r0, c1, r1 = bounds
        ca, cb, ra, rb = max(col, c0), min(col + w, c1), max(row, r0), min(row + h, r1)
        arr, valid = self.read(ca, ra, cb - ca, rb - ra)
        pad = ((ra - row, row + h - rb), (ca - col, col + w - cb))
        if any(p for ax in pad for p in ax):
            arr = np.pad(arr, ((0, 0),) + pad, mode="symmetric")
            valid = np.pad(valid, pad, mode="symmetric")
        return arr, valid
