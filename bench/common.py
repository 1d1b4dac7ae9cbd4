"""What the bench modules share: paths, the methods under test and one fusion run.

Raster files are read and written with ``model_core.rasters``; fused rasters are scored with the engine's
assessment (``ksdiff_qgis.engine.assessment``).
"""
from __future__ import annotations

import time
from pathlib import Path

from ksdiff_qgis.engine import classical
from ksdiff_qgis.engine.learned import DEFAULT_PRECISION
from ksdiff_qgis.engine.model_card import MODELS_DIR
from ksdiff_qgis.engine.pipeline import pansharpen

from .external import TOOLS, run_tool

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results.json"
DOCS = ROOT / "docs" / "BENCHMARKS.md"
BUNDLED_MODELS_DIR = MODELS_DIR                      # the shipped models: read only
BASELINE_MODELS_DIR = ROOT / "bench" / "models"      # bare backbones trained the same way (not bundled)

CLASSICAL = list(classical.METHODS)
BEST_CLASSICAL = classical.BEST_CLASSICAL
GDAL_METHOD = "gdal_pansharp"
PEER_METHODS = list(TOOLS)       # the peer tools' methods (bench/external.py): GDAL, Orfeo ToolBox
SMALL_CACHE_MB = 64
LABELS = {"exp": "EXP (cubic upsampling)", "brovey": "Brovey", "gsa": "GSA", "mtf_glp_hpm": "MTF-GLP-HPM",
          "mtf_glp_fs": "MTF-GLP-FS", "bdsd_pc": "BDSD-PC", **{m: t.label for m, t in TOOLS.items()}}


INT8 = "@int8"   # label suffix: a bundled KSDiff model run with PRECISION=int8 (its int8 CPU variant)


def learned_method(label: str) -> str:
    """The ``run_method`` method of a learned model's label: ``ksdiff``, or ``ksdiff@int8`` for its int8 variant."""
    return "ksdiff" + (INT8 if label.endswith(INT8) else "")


def method_precision(method: str) -> tuple[str, str]:
    """(method, PRECISION) of a bench method name: ``ksdiff@int8`` the int8 variant (the plugin's default on
    CPU); a plain ``ksdiff`` float32 (the model itself); other methods (``auto``...) the plugin's default."""
    method, _, precision = method.partition("@")
    return method, precision or ("fp32" if method == "ksdiff" else DEFAULT_PRECISION)


def run_method(method: str, pan: str, ms: str, out: str, sensor: str, model: str | None = None) -> float:
    """Fuse in this process; returns seconds. ``method``: as ``method_precision`` reads it."""
    method, precision = method_precision(method)
    t0 = time.perf_counter()
    if method in TOOLS:
        run_tool(TOOLS[method], pan, ms, out)   # a peer tool, exactly its command line (bench/external.py)
    else:
        pansharpen(pan, ms, out, sensor=sensor, method=method, model_path=model, precision=precision)
    return time.perf_counter() - t0
