"""KSDiff's int8 CPU variant (model_core/tile_int8.py, engine/learned.TileKernels(int8=True)): each tile's kernels
quantized by the plugin into a QDQ backbone calibrated at export, with activation scales per contrast class;
chosen by PRECISION=int8 (the default on CPU), the float32 per-tile path when it is missing or broken; and the
allocator / arena behaviour it relies on."""
from __future__ import annotations

import base64
import json
import shutil

import numpy as np
import onnx
import pytest
import torch
from osgeo import gdal

from ksdiff_qgis.engine import memory, runtime
from ksdiff_qgis.engine.errors import InputError
from ksdiff_qgis.engine.feedback import RecordingFeedback
from ksdiff_qgis.engine.filters import upsample
from ksdiff_qgis.engine.learned import (
    CONTRAST_BLOCK,
    TileKernels,
    _tile_kernels,
    checked_session,
    int8_path,
    tile_contrast,
)
from ksdiff_qgis.engine.model_card import load_card
from ksdiff_qgis.engine.pipeline import pansharpen
from ksdiff_qgis.engine.runtime import Session
from model_core import tile_int8
from model_core.export import export, write_card
from model_core.nets import build_model

torch.set_num_threads(1)
TRAINING = {"config": "x.yaml", "steps": 0, "seconds": 0.0, "seed": 0, "git_revision": "abc", "data": []}
CFG = {"sensor": "wv2", "method": "ksdiff", "backbone": "fusionnet"}


def _model():
    torch.manual_seed(0)
    model = build_model("ksdiff", 4, "fusionnet", width=8, blocks=2, modulate="all", modulate_ends=True,
                        ranks=(3, 3, 2), live=True, tile_norm=True, context_tokens=2, ratio=4, prefuse=True).eval()
    with torch.no_grad():   # tile-dependent kernels, so the per-tile quantization really varies
        torch.nn.init.normal_(model.kgen.core_gen[-1].weight, std=0.2)
    return model


@pytest.fixture(scope="module")
def int8_model(tmp_path_factory):
    """A small KSDiff exported with its int8 variant, calibrated on the WorldView-2 fixture pair."""
    from pathlib import Path

    data = Path(__file__).parent / "data"
    path = tmp_path_factory.mktemp("int8") / "wv2.onnx"
    export(_model(), CFG, path, TRAINING, calibration=(str(data / "wv2_pan.tif"), str(data / "wv2_ms.tif")))
    return path


def test_a_config_can_refuse_the_int8_copy(tmp_path, data_dir):
    """``export: {int8: false}`` (a model whose int8 copy failed the 1 % check): tile graphs, no int8 entry or graph."""
    path = tmp_path / "wv2.onnx"
    export(_model(), dict(CFG, export={"int8": False}), path, TRAINING,
           calibration=(str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif")))
    card = json.loads(path.with_suffix(".json").read_text())
    assert "prior" in card["tile_kernels"] and "int8" not in card["tile_kernels"]
    assert tile_int8.META_INT8 not in {p.key for p in onnx.load(str(path)).metadata_props}


def _real_tile(data_dir, side=96):
    pan = gdal.Open(str(data_dir / "wv2_test_pan.tif")).ReadAsArray().astype(np.float32) / 2047
    ms = gdal.Open(str(data_dir / "wv2_test_ms.tif")).ReadAsArray().astype(np.float32) / 2047
    lms = upsample(ms, 4, pan.shape)
    return (np.ascontiguousarray(pan[None, None, :side, :side]), np.ascontiguousarray(lms[None, :, :side, :side]))


def _ops(model_path) -> list[str]:
    meta = {p.key: p.value for p in onnx.load(str(model_path)).metadata_props}
    graph = onnx.load_from_string(base64.b64decode(meta[tile_int8.META_INT8]))
    return [n.op_type for n in graph.graph.node]


def test_export_adds_a_calibrated_int8_backbone(int8_model):
    card = json.loads(int8_model.with_suffix(".json").read_text())
    q = card["tile_kernels"]["int8"]
    assert q["graph"] == tile_int8.META_INT8 and q["calibration"]["patches"] > 0
    ops = _ops(int8_model)
    # the block convolutions are quantized (their kernels per tile); head, tail and the HPM filters stay float
    assert ops.count("DequantizeLinear") >= 3 * 4 and ops.count("QuantizeLinear") >= 4
    quantized = {c["weight"] for c in q["convs"]}
    assert all(".blocks." in w for w in quantized) and len(quantized) == 4
    assert set(q["floats"]) >= {"a", "b", "s", "net.head.weight", "net.tail.weight"}
    classes = len(q["contrast_edges"]) + 1
    assert all(len(c["x_scale"]) == classes and min(c["x_scale"]) > 0 for c in q["convs"])


def test_no_int8_variant_without_calibration_data(tmp_path):
    card = export(_model(), CFG, tmp_path / "wv2.onnx", TRAINING)   # no training pair in the config
    assert "int8" not in card["tile_kernels"]
    runtime.clear_cache()
    card = load_card(tmp_path / "wv2.onnx")
    session = checked_session(card, "cpu", 1)
    assert int8_path(card, session) is None and isinstance(session.tile_kernels, TileKernels)


def test_int8_tiles_stay_close_to_float32(int8_model, data_dir):
    runtime.clear_cache()
    card = load_card(int8_model)
    session = checked_session(card, "cpu", 1)
    assert session.tile_int8 is None   # not built unless asked for: float32 is the default
    assert isinstance(int8_path(card, session), TileKernels) and isinstance(session.tile_kernels, TileKernels)
    assert session.tile_int8.prior is session.tile_kernels.prior   # one prior session: the same kernels
    pan, lms = _real_tile(data_dir)
    full = session.session.run(["hrms"], {"pan": pan, "lms": lms})[0]
    fp32, int8 = session.tile_kernels(pan, lms), session.tile_int8(pan, lms)
    rms = float(np.sqrt(np.mean(full ** 2)))
    err8 = float(np.sqrt(np.mean((int8 - full) ** 2)))
    assert np.abs(fp32 - full).max() < 1e-5 * np.abs(full).max()
    assert 0 < err8 < 0.1 * rms   # really int8 (not the float graph); an untrained toy network is harsh on 8 bits


def test_bundled_int8_tiles_stay_within_one_percent(data_dir):
    """The shipped WorldView-2 model on a real tile: the int8 path's RMS difference to float32 (measured 0.6 %)."""
    from ksdiff_qgis.engine.model_card import bundled_cards

    card = load_card(bundled_cards()["wv2"])
    assert "int8" in card.data["tile_kernels"]
    runtime.clear_cache()
    session = checked_session(card, "cpu", 1)
    assert isinstance(int8_path(card, session), TileKernels)
    pan, lms = _real_tile(data_dir, 128)
    full = session.session.run([card.output_name], {"pan": pan, "lms": lms})[0]
    err = float(np.sqrt(np.mean((session.tile_int8(pan, lms) - full) ** 2)))
    assert 0 < err < 0.01 * float(np.sqrt(np.mean(full ** 2)))


def test_precision_chooses_the_path_and_the_pixels_agree(data_dir, tmp_path):
    """The bundled model on a real scene: int8 by default, float32 on request, the same picture within 1 %."""
    out = {}
    for precision, says in ((None, "tiles run in int8 (PRECISION int8)"), ("fp32", "tiles run in float32 (PRECISION "
                                                                                  "fp32)")):
        log = RecordingFeedback()
        res = pansharpen(str(data_dir / "wv2_test_pan.tif"), str(data_dir / "wv2_test_ms.tif"),
                         str(tmp_path / f"{precision}.tif"), "wv2", "ksdiff", device="cpu",
                         **({"precision": precision} if precision else {}), feedback=log)
        assert any(says in m for m in log.lines), log.lines
        out[precision] = gdal.Open(res.output_path).ReadAsArray().astype(np.float64)
    diff = np.abs(out[None] - out["fp32"])
    assert diff.max() > 0 and diff.mean() < 0.01 * out["fp32"].mean()


def test_unknown_precision_is_refused_before_writing(data_dir, tmp_path):
    out = tmp_path / "x.tif"
    with pytest.raises(InputError, match="precision"):
        pansharpen(str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), str(out), "wv2", "ksdiff",
                   precision="int4")
    assert not out.exists()


def test_broken_int8_falls_back_to_the_float32_tile_kernels(int8_model, data_dir, tmp_path):
    bad = tmp_path / "wv2.onnx"
    shutil.copy(int8_model, bad)
    card = json.loads(int8_model.with_suffix(".json").read_text())
    card["tile_kernels"]["int8"]["convs"][0]["w_scale"][0] += 3   # the scales land in the wrong bytes
    write_card(bad, card)   # consistent inside and beside the ONNX, and wrong
    runtime.clear_cache()
    card = load_card(bad)
    session = checked_session(card, "cpu", 1)
    assert int8_path(card, session) is None and isinstance(session.tile_kernels, TileKernels)
    log = RecordingFeedback()
    pansharpen(str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), str(tmp_path / "o.tif"), "wv2", "ksdiff",
               model_path=str(bad), device="cpu", workers=1, precision="int8", feedback=log)
    says = "tiles run in float32: this model has no checked int8 variant on this device"
    assert any(says in m for m in log.lines)


def test_a_gpu_session_gets_no_int8_path(int8_model, data_dir):
    runtime.clear_cache()
    card = load_card(int8_model)
    cpu = checked_session(card, "cpu", 1)
    pan, lms = _real_tile(data_dir, 48)
    ref = cpu.session.run(["hrms"], {"pan": pan, "lms": lms})[0]
    assert _tile_kernels(card, cpu, pan, lms, ref, int8=True) is not None
    assert _tile_kernels(card, Session(cpu.session, "cuda", "test", threads=1), pan, lms, ref, int8=True) is None


def test_per_tile_sessions_share_one_arena():
    opts = runtime.session_options(1, shared_arena=True)
    assert opts.get_session_config_entry("session.use_env_allocators") == "1"
    assert runtime._shared_arena == [True]   # registered once for the process


def test_free_memory_is_released_only_past_the_first_tiles_working_set(monkeypatch):
    rss, calls = [100.0], []
    monkeypatch.setattr(memory, "resident_mb", lambda: rss[0])
    monkeypatch.setattr(memory, "release_free_memory", lambda: calls.append(rss[0]))
    keeper = memory.FreeMemoryKeeper(step_mb=16)
    for value in (150, 140, 160, 170, 167, 120, 150):   # first tile 150 MB: the mark
        rss[0] = value
        keeper.after_tile()
    assert calls == [170, 167]
    monkeypatch.setattr(memory, "resident_mb", lambda: None)   # cannot watch memory: release every tile
    keeper.after_tile()
    assert len(calls) == 3


def test_activation_scales_follow_the_tiles_contrast(data_dir, monkeypatch):
    """Scales per contrast class: finer for low-contrast classes; a smooth tile gets the first class and is
    closer to float32 with it than with the scales of the most contrasted class (the single set of before)."""
    from ksdiff_qgis.engine.model_card import bundled_cards

    card = load_card(bundled_cards()["wv2"])
    q = card.data["tile_kernels"]["int8"]
    edges = q["contrast_edges"]
    n_classes = len(edges) + 1
    assert n_classes >= 3 and edges == sorted(edges)
    assert all(b / a == pytest.approx(tile_int8.CLASS_RATIO) for a, b in zip(edges, edges[1:]))
    assert q["activations"] and all(len(a["values"]) == n_classes for a in q["activations"])
    assert all(a["values"] == sorted(a["values"]) for a in q["activations"])
    assert any(a["values"][0] < a["values"][-1] for a in q["activations"])
    runtime.clear_cache()
    session = checked_session(card, "cpu", 1)
    fast = int8_path(card, session)
    pan, lms = _real_tile(data_dir, 128)
    def contrast(x, f):   # the same tile with its deviations from the mean scaled by f
        m = x.mean(axis=(2, 3), keepdims=True)
        return np.ascontiguousarray((m + f * (x - m)).astype(np.float32))

    # the statistic is the normalised PAN's spread, and the normalisation matches PAN to the MS intensity:
    # the tile's contrast is that of both
    classes = []
    for f in (0.05, 0.3, 1.0):
        p, x = contrast(pan, f), contrast(lms, f)
        classes.append(fast.contrast_class(p, dict(zip(fast.names, fast.prior.run(fast.names, {"pan": p, "lms": x})))))
    assert classes == sorted(classes) and classes[0] == 0 < classes[-1]
    smooth, lms = contrast(pan, 0.05), contrast(lms, 0.05)
    full = session.session.run([card.output_name], {"pan": smooth, "lms": lms})[0]
    own = float(np.sqrt(np.mean((fast(smooth, lms) - full) ** 2)))
    monkeypatch.setattr(TileKernels, "contrast_class", lambda self, p, v: n_classes - 1)
    top = float(np.sqrt(np.mean((fast(smooth, lms) - full) ** 2)))
    assert own < top


@pytest.mark.parametrize("method", ["ksdiff", "auto"])
def test_the_shared_arena_is_shrunk_after_a_run(data_dir, tmp_path, monkeypatch, method):
    """The per-tile sessions' arena is process-wide: a run hands its free memory back at the end (QGIS kept
    ~290 MB after a 2048² run otherwise), also after the self-check of METHOD=auto."""
    calls = []
    original = TileKernels.release
    monkeypatch.setattr(TileKernels, "release", lambda self: (calls.append(self), original(self)))
    pansharpen(str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), str(tmp_path / "o.tif"), "wv2", method,
               device="cpu", workers=1)
    assert calls   # at least once: after the tiles, and (auto) after the self-check


def test_tile_contrast_is_the_most_contrasted_block():
    """A tile half flat, half textured is classed by its textured part (its activations span that part's
    ranges), not by the spread of the whole tile; a tile smaller than a block is one block."""
    rng = np.random.default_rng(0)
    n = CONTRAST_BLOCK
    flat = np.full((1, 1, 2 * n, 2 * n), 0.3, dtype=np.float32)
    mixed = flat.copy()
    mixed[..., n + 7:, :] += rng.normal(0, 0.1, (n - 7, 2 * n)).astype(np.float32)
    assert tile_contrast(flat, 1.0, 0.0) == 0.0
    textured_block = max(float(np.std(mixed[0, 0, n:, :n])), float(np.std(mixed[0, 0, n:, n:])))
    assert tile_contrast(mixed, 1.0, 0.0) == pytest.approx(textured_block, rel=1e-5)
    assert tile_contrast(mixed, 1.0, 0.0) > 1.3 * float(np.std(mixed))
    assert tile_contrast(mixed, 2.0, 5.0) == pytest.approx(2 * tile_contrast(mixed, 1.0, 0.0), rel=1e-5)
    small = mixed[..., -40:, :50]
    assert tile_contrast(small, 1.0, 0.0) == pytest.approx(float(np.std(small)), rel=1e-5)


def test_classes_span_a_fixed_contrast_ratio_and_each_gets_its_patches():
    """Edges from the smoothest candidates up by CLASS_RATIO; up to PER_CLASS patches per class, spread over
    the class (the smoothest and the most contrasted candidates included); classes without patches borrow
    the next class's ranges."""
    contrast = np.concatenate([np.linspace(0.02, 0.04, 50), np.linspace(0.04, 0.8, 400)])
    edges = tile_int8.class_edges(contrast)
    lo, hi = np.percentile(contrast, [2, 98])
    assert edges[0] == pytest.approx(lo * tile_int8.CLASS_RATIO) and edges[-1] < hi <= edges[-1] * tile_int8.CLASS_RATIO
    picked = tile_int8.select_patches(contrast, edges)
    cls = np.searchsorted(edges, contrast[picked], side="left")
    counts = np.bincount(cls, minlength=len(edges) + 1)
    members = np.bincount(np.searchsorted(edges, contrast, side="left"), minlength=len(edges) + 1)
    assert (counts == np.minimum(members, tile_int8.PER_CLASS)).all()
    assert 0 in picked and int(np.argmax(contrast)) in picked
    ranges = [{"x": (-c, 2 * c)} for c in contrast[picked]]
    classes = tile_int8.contrast_classes(contrast[picked], ranges, [0.001] + edges)
    assert classes[0] == classes[1] and classes[-1]["x"] == (-contrast.max(), 2 * contrast.max())
    assert [c["x"][1] for c in classes] == sorted(c["x"][1] for c in classes)
