"""What the bench modules share: paths, the methods under test, raster helpers and one fusion run."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from osgeo import gdal

from ksdiff_qgis.engine import classical
from ksdiff_qgis.engine.model_card import MODELS_DIR
from ksdiff_qgis.engine.pipeline import pansharpen

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results.json"
DOCS = ROOT / "docs" / "BENCHMARKS.md"
BUNDLED_MODELS_DIR = MODELS_DIR                      # the shipped models: read only
BASELINE_MODELS_DIR = ROOT / "bench" / "models"      # bare backbones trained the same way (not bundled)

CLASSICAL = list(classical.METHODS)
BEST_CLASSICAL = classical.BEST_CLASSICAL
GDAL_METHOD = "gdal_pansharp"
SMALL_CACHE_MB = 64
LABELS = {"exp": "EXP (cubic upsampling)", "brovey": "Brovey", "gsa": "GSA", "mtf_glp_hpm": "MTF-GLP-HPM",
          GDAL_METHOD: "GDAL pansharpening (QGIS gdal:pansharp)"}


def run_method(method: str, pan: str, ms: str, out: str, sensor: str, model: str | None = None) -> float:
    """Fuse in this process; returns seconds."""
    t0 = time.perf_counter()
    if method == GDAL_METHOD:
        from osgeo_utils.gdal_pansharpen import main as gdal_pansharpen_main

        # exactly QGIS's processing/algs/gdal/pansharp.py defaults: -r cubic -of GTiff (no weights)
        rc = gdal_pansharpen_main(["gdal_pansharpen.py", pan, ms, out, "-r", "cubic", "-of", "GTiff", "-q"])
        if rc != 0:
            raise RuntimeError(f"gdal_pansharpen failed ({rc})")
    else:
        pansharpen(pan, ms, out, sensor=sensor, method=method, model_path=model)
    return time.perf_counter() - t0


# ---------------------------------------------------------------------------------- raster i/o
def read(path: str, window=None) -> tuple[np.ndarray, tuple, str]:
    """(C, H, W) array, geotransform (of the window) and projection of a raster or a window of it."""
    ds = gdal.Open(str(path))
    arr = ds.ReadAsArray(*(window or ()))
    arr = arr[None] if arr.ndim == 2 else arr
    gt = ds.GetGeoTransform()
    if window:
        gt = (gt[0] + window[0] * gt[1], gt[1], 0.0, gt[3] + window[1] * gt[5], 0.0, gt[5])
    return arr, gt, ds.GetProjection()


def crop(src: str, dst: str, window) -> str:
    ds = gdal.Open(str(src))
    gdal.Translate(dst, ds, srcWin=list(window), creationOptions=["TILED=YES", "COMPRESS=DEFLATE"])
    return dst


def on_grid(path: str, gt_ref: tuple, shape: tuple[int, int]) -> np.ndarray:
    """Read ``path`` over the pixels of the grid (gt_ref, shape); the grids must coincide."""
    ds = gdal.Open(str(path))
    gt = ds.GetGeoTransform()
    c = (gt_ref[0] - gt[0]) / gt[1]
    r = (gt_ref[3] - gt[3]) / gt[5]
    if abs(c - round(c)) > 0.05 or abs(r - round(r)) > 0.05 or abs(gt[1] - gt_ref[1]) > 1e-6 * abs(gt[1]):
        raise RuntimeError(f"{path} is not on the reference grid")
    c, r = int(round(c)), int(round(r))
    arr = ds.ReadAsArray(c, r, shape[1], shape[0])
    return arr[None] if arr.ndim == 2 else arr
