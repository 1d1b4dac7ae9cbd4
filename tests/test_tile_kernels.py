"""KSDiff's per-tile kernel path (model_core/tile_graphs.py, engine/learned.TileKernels): the prior graph's merged
kernels written into the plain backbone graph reproduce the full graph; a broken path falls back to it."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from osgeo import gdal

from ksdiff_qgis.engine import runtime
from ksdiff_qgis.engine.feedback import RecordingFeedback
from ksdiff_qgis.engine.learned import TileKernels, checked_session
from ksdiff_qgis.engine.model_card import load_card
from ksdiff_qgis.engine.pipeline import pansharpen
from model_core.export import export, write_card
from model_core.nets import build_model

torch.set_num_threads(1)
TRAINING = {"config": "x.yaml", "steps": 0, "seconds": 0.0, "seed": 0, "git_revision": "abc", "data": []}


def _model(**kw):
    torch.manual_seed(0)
    opts = dict(width=8, blocks=2, modulate="all", modulate_ends=True, ranks=(3, 3, 2), live=True, tile_norm=True,
                context_tokens=2, ratio=4, prefuse=True)
    opts.update(kw)
    model = build_model("ksdiff", 4, "fusionnet", **opts).eval()
    with torch.no_grad():   # large, tile-dependent kernel updates and tail gains, so every part is exercised
        torch.nn.init.normal_(model.kgen.core_gen[-1].weight, std=0.2)
        if getattr(model.kgen, "gain_gen", None) is not None:
            torch.nn.init.normal_(model.kgen.gain_gen.weight, std=0.5)
    return model


def _tile(rng, h=48, w=40):
    lms = rng.uniform(0.05, 0.4, (1, 4, h, w)).astype(np.float32)
    pan = (lms.mean(1, keepdims=True) + rng.normal(0, 0.03, (1, 1, h, w))).astype(np.float32)
    return pan, lms


@pytest.mark.parametrize("kw", [{}, {"tail_gain": True}, {"tail_gain": True, "modulate_ends": False},
                                {"tile_norm": False, "prefuse": False}])
def test_tile_kernels_reproduce_the_full_graph(tmp_path, kw):
    model = _model(**kw)
    card = export(model, {"sensor": "wv2", "method": "ksdiff", "backbone": "fusionnet"}, tmp_path / "wv2.onnx",
                  TRAINING)
    assert set(card["tile_kernels"]) == {"prior", "backbone", "offsets"}
    runtime.clear_cache()
    session = checked_session(load_card(tmp_path / "wv2.onnx"), "cpu", 1)
    assert isinstance(session.tile_kernels, TileKernels)   # it passed the probe against the full graph
    rng = np.random.default_rng(2)
    for h, w in [(48, 40), (64, 64)]:
        pan, lms = _tile(rng, h, w)
        full = session.session.run(["hrms"], {"pan": pan, "lms": lms})[0]
        with torch.no_grad():
            ref = model(torch.from_numpy(pan), torch.from_numpy(lms)).numpy()
        fast = session.tile_kernels(pan, lms)
        assert fast.shape == full.shape
        tol = 1e-5 * np.abs(ref).max()
        assert np.abs(fast - full).max() < tol and np.abs(fast - ref).max() < tol
        # the kernels really differ between tiles: another tile's kernels would give another result
        assert np.abs(fast - model.backbone(torch.from_numpy(pan), torch.from_numpy(lms)).detach().numpy()).max() > 1e-3


def test_broken_tile_kernels_fall_back_to_the_full_graph(tmp_path, data_dir):
    """Offsets that point at the wrong bytes: the probe disagrees, the full graph runs, the pixels are right."""
    model = _model()
    good = tmp_path / "good" / "wv2.onnx"
    good.parent.mkdir()
    export(model, {"sensor": "wv2", "method": "ksdiff", "backbone": "fusionnet"}, good, TRAINING)
    bad = tmp_path / "bad" / "wv2.onnx"
    bad.parent.mkdir()
    shutil.copy(good, bad)
    card = json.loads(good.with_suffix(".json").read_text())
    first = next(iter(card["tile_kernels"]["offsets"]))
    card["tile_kernels"]["offsets"][first][0] += 4
    write_card(bad, card)   # a consistent card (inside and beside the ONNX) whose offsets are wrong
    runtime.clear_cache()
    good_session = checked_session(load_card(good), "cpu", 1)
    assert good_session.tile_kernels is not None and not good_session.optimised   # the graph is only a reference
    bad_session = checked_session(load_card(bad), "cpu", 1)
    # the full graph runs every tile: created again with ONNX Runtime's graph optimisations
    assert bad_session.tile_kernels is None and bad_session.optimised
    out = {}
    for name, path in (("good", good), ("bad", bad)):
        log = RecordingFeedback()
        res = pansharpen(str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), str(tmp_path / f"{name}.tif"),
                         "wv2", "ksdiff", model_path=str(path), workers=1, device="cpu", feedback=log)
        out[name] = gdal.Open(res.output_path).ReadAsArray().astype(np.float64)
        assert any("on the whole graph" in m for m in log.lines) == (name == "bad")
    assert np.abs(out["good"] - out["bad"]).max() <= 1


def test_a_gpu_session_runs_the_full_graph(tmp_path):
    """Per-tile session building would cost more than it saves on CUDA: only a CPU session gets the path."""
    from ksdiff_qgis.engine.learned import _tile_kernels
    from ksdiff_qgis.engine.runtime import Session

    export(_model(), {"sensor": "wv2", "method": "ksdiff", "backbone": "fusionnet"}, tmp_path / "wv2.onnx", TRAINING)
    runtime.clear_cache()
    card = load_card(tmp_path / "wv2.onnx")
    cpu = checked_session(card, "cpu", 1)
    pan, lms = _tile(np.random.default_rng(3))
    ref = cpu.session.run(["hrms"], {"pan": pan, "lms": lms})[0]
    assert _tile_kernels(card, cpu, pan, lms, ref) is not None
    assert _tile_kernels(card, Session(cpu.session, "cuda", "test", threads=1), pan, lms, ref) is None
