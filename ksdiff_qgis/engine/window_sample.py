"""Windows read at full resolution on a grid spread from edge to edge of a raster: the exact values a scan for
fill codes (``codefill``) or repeated blocks (``blockrepeat``) needs, where the scene statistics' averaged overview
would not do."""
from __future__ import annotations

import numpy as np
from osgeo import gdal

from .errors import InputError
from .feedback import Checkpoint, never_cancelled
from .gdalutil import dataset_name


def spread_windows(ds: gdal.Dataset, window: int, per_side: int,
                   checkpoint: Checkpoint = never_cancelled) -> list[tuple[int, int, np.ndarray]]:
    """Up to ``per_side`` x ``per_side`` windows (row, col, array (C, h, w) float64) of at most ``window`` pixels per
    side, corners included; ``checkpoint()`` before each read (a cancel stops the scan)."""
    w, h = min(window, ds.RasterXSize), min(window, ds.RasterYSize)
    xs = np.unique(np.linspace(0, ds.RasterXSize - w, per_side).round().astype(int))
    ys = np.unique(np.linspace(0, ds.RasterYSize - h, per_side).round().astype(int))
    out = []
    for y in ys:
        for x in xs:
            checkpoint()
            a = ds.ReadAsArray(int(x), int(y), w, h)
            if a is None:
                raise InputError(f"cannot read {dataset_name(ds)}: {gdal.GetLastErrorMsg()}")
            out.append((int(y), int(x), np.asarray(a, dtype=np.float64).reshape(ds.RasterCount, h, w)))
    return out
