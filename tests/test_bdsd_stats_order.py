"""BDSD-PC's fit in the scene statistics: refused after every estimate, before any pixel is written (QA121: the
co-registered re-estimate was not checked); fitted only for BDSD-PC and auto; scipy.optimize loaded only then."""
from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import pytest

from ksdiff_qgis.engine import classical, pipeline
from ksdiff_qgis.engine.errors import InputError


def test_bdsd_refused_after_the_coregistered_estimate_before_the_writer(data_dir, tmp_path, monkeypatch):
    """The misregistered WV2 fixture moves under COREGISTER: its re-estimate (here made to fit no coefficients) was
    not checked, and BDSD-PC failed on the first tile, after the output was created."""
    real, calls, writers = pipeline.estimate_scene_stats, [], []

    def estimate(*args, **kwargs):
        stats = real(*args, **kwargs)
        calls.append(kwargs.get("bdsd"))
        return stats if len(calls) == 1 else replace(stats, bdsd_coef=None)

    monkeypatch.setattr(pipeline, "estimate_scene_stats", estimate)
    monkeypatch.setattr(pipeline, "_make_writer", lambda *a, **k: writers.append(a) or pytest.fail("writer made"))
    with pytest.raises(InputError, match=classical.BDSD_UNFIT):
        pipeline.pansharpen(str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), str(tmp_path / "o.tif"),
                            "wv2", "bdsd_pc", coregister=True)
    assert len(calls) == 2 and not writers


def test_the_bdsd_fit_runs_only_for_bdsd_pc_and_auto(data_dir, tmp_path, monkeypatch):
    """Other methods' statistics do not use it: the fit and its degraded MS (about 1 s a run) are skipped."""
    fits = []
    real = pipeline._lms_lr_window
    monkeypatch.setattr(pipeline, "_lms_lr_window", lambda *a, **k: fits.append(1) or real(*a, **k))
    pan, ms = str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif")
    pipeline.pansharpen(pan, ms, str(tmp_path / "a.tif"), "wv2", "mtf_glp_hpm")
    assert not fits
    pipeline.pansharpen(pan, ms, str(tmp_path / "b.tif"), "wv2", "bdsd_pc")
    assert fits


def test_the_plugin_loads_without_scipy_optimize():
    code = "import sys, ksdiff_qgis.engine.pipeline; print('scipy.optimize' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
