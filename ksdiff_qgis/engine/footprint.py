"""The PAN averaged over each MS pixel's exact footprint where the MS grid sits a fraction of a PAN pixel off the
PAN's (Landsat 8/7: half a PAN pixel), for the scene statistics (``pipeline._scene_stats``). Read at the nearest
PAN pixel, the PAN sat half a PAN pixel before the MS pixels it is regressed against: BDSD-PC's gains 30-70 % low on
Landsat 8, MTF-GLP-FS's 1-2 % (QA125; taken on validation, docs/VALIDATION.md 2026-12-07 20:12)."""
from __future__ import annotations

import math

import numpy as np

from .filters import split_corner
from .grid import EDGE_TOLERANCE
from .raster_io.read import read_full_band


def exact_window(y: float, x: float, w: int, h: int, k: int, pan_w: int, pan_h: int
                 ) -> tuple[int, int, tuple[float, float]] | None:
    """(row, col, phase) of a stats window whose MS corner sits at PAN position (``y``, ``x``) off the PAN's pixel
    lattice (``filters.split_corner``): the PAN pixel its footprint starts in and the fraction into it. None (the
    PAN read at the nearest pixel) on a lattice within EDGE_TOLERANCE (WV2's georeference noise: integer-aligned
    inputs keep exactly their reads) or for a footprint not wholly in the PAN."""
    if all(abs(v - round(v)) <= EDGE_TOLERANCE for v in (y, x)):
        return None
    (row, col), phase = split_corner((y, x))
    # an axis on the lattice (within the tolerance) reads whole pixels there: its phase is 0
    snapped = [(o + round(f), 0.0) if abs(f - round(f)) <= EDGE_TOLERANCE else (o, f)
               for o, f in ((row, phase[0]), (col, phase[1]))]
    (row, fy), (col, fx) = snapped
    if row < 0 or col < 0 or row + h * k + math.ceil(fy) > pan_h or col + w * k + math.ceil(fx) > pan_w:
        return None
    return row, col, (fy, fx)


def _weights(n: int, k: int, f: float) -> np.ndarray:
    """(n, n*k + 1 if f else n*k) weights of n coarse pixels of ``k`` fine ones starting ``f`` into the first:
    (1 - f), 1, ..., 1, f."""
    extra = int(f > 0)
    out = np.zeros((n, n * k + extra))
    for i in range(n):
        out[i, i * k:i * k + k] = 1.0
        if extra:
            out[i, i * k] = 1.0 - f
            out[i, i * k + k] = f
    return out


def read_footprint(ds, row: int, col: int, phase: tuple[float, float], w: int, h: int, k: int,
                   sample=None, full: list | None = None) -> np.ndarray:
    """(h, w) band 1 of ``ds`` averaged over each of the MS pixels whose footprint starts ``phase`` into PAN pixel
    (``row``, ``col``): each pixel weighted by the share of it the footprint covers, over its valid pixels (GDAL's
    mask), the nodata value (else NaN) where none is; as ``read_decimated`` (``sample``, ``full``) otherwise."""
    ey, ex = (int(f > 0) for f in phase)
    arr, ok = read_full_band(ds, 0, col, row, w * k + ex, h * k + ey)
    if sample is not None:
        arr = sample(arr, ok)
    if full is not None:
        full.append((arr, ok))
    wy, wx = _weights(h, k, phase[0]), _weights(w, k, phase[1])
    total = wy @ np.where(ok, arr, 0.0) @ wx.T
    count = wy @ ok.astype(np.float64) @ wx.T
    nodata = ds.GetRasterBand(1).GetNoDataValue()
    return np.where(count > 0, total / np.maximum(count, 1e-300), nodata if nodata is not None else np.nan)
