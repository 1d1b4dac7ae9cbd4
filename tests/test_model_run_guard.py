"""A shared model's runaway output or slow graph: refused before anything is written, stopped by a cancel.

- finite but absurd values (3e38 on dark pixels, -1e30 x MS) are refused as the NaN case is, the old output kept
  (QA: rc 0 and a GeoTIFF of 2047s "out of range (max inf)");
- values NaN or infinite once scaled back to the data's units are refused too;
- the place of a bad tile is said inside the scene (QA: "PAN row -33, column -33");
- the self-check says an unusable output in words (QA: "Wald ERGAS 1424018876991692536149320925184.000", "SAM nan°");
- a cancel stops a slow network midway (QA: a ~45 s graph, cancel at 3 s, returned after 22.8 s).
"""
from __future__ import annotations

import json
import re
import time
import types

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from ksdiff_qgis.engine import runtime
from ksdiff_qgis.engine.errors import Cancelled, InputError
from ksdiff_qgis.engine.feedback import RecordingFeedback
from ksdiff_qgis.engine.model_card import sha256_file

BANDS = ["Blue", "Green", "Red", "NIR"]


def _save(folder, name: str, nodes, inits) -> str:
    """(pan, lms) -> hrms from ``nodes`` with its card (sha256 matching) in ``folder``."""
    pan = helper.make_tensor_value_info("pan", TensorProto.FLOAT, [1, 1, "H", "W"])
    lms = helper.make_tensor_value_info("lms", TensorProto.FLOAT, [1, 4, "H", "W"])
    out = helper.make_tensor_value_info("hrms", TensorProto.FLOAT, [1, 4, "H", "W"])
    graph = helper.make_graph(nodes, name, [pan, lms], [out], initializer=inits)
    path = folder / f"{name}.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    card = {"format_version": 1, "sensor": "wv2", "bands": BANDS, "ratio": 4, "scale": 2047.0, "method": "ksdiff",
            "inputs": {"pan": "pan", "lms": "lms"}, "output": "hrms", "layout": "NCHW", "margin": 2,
            "size_multiple": 4, "onnx_sha256": sha256_file(path)}
    path.with_suffix(".json").write_text(json.dumps(card))
    return str(path)


def _const(name: str, value) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value, dtype=np.float32).reshape(1), name)


def _where_dark(folder, name: str, value: float) -> str:
    """``value`` where pan < 0.19 (the probe ramp starts at 0.2: it passes the probe), the LMS elsewhere."""
    nodes = [helper.make_node("Less", ["pan", "thr"], ["dark"]),
             helper.make_node("Where", ["dark", "v", "lms"], ["hrms"])]
    return _save(folder, name, nodes, [_const("thr", 0.19), _const("v", value)])


def _times(folder, name: str, gain: float) -> str:
    """lms x ``gain`` (+ 0 x pan)."""
    nodes = [helper.make_node("Mul", ["pan", "zero"], ["z"]), helper.make_node("Mul", ["lms", "g"], ["x"]),
             helper.make_node("Add", ["x", "z"], ["hrms"])]
    return _save(folder, name, nodes, [_const("zero", 0.0), _const("g", gain)])


def _run_qgis(data_dir, out, model, method="ksdiff"):
    import processing

    return processing.run("ksdiff:pansharpen", {
        "PAN": str(data_dir / "wv2_pan.tif"), "MS": str(data_dir / "wv2_ms.tif"), "SENSOR": "wv2",
        "METHOD": method, "MODEL": model, "TILE_SIZE": 128, "OVERLAP": 16, "THREADS": 1, "OUTPUT": str(out)})


@pytest.mark.parametrize("method", ["ksdiff", "auto"])
def test_huge_finite_values_on_dark_pixels_refused_old_output_kept(qgis_app, data_dir, tmp_path, method):
    """3e38 on dark pixels passed the NaN check, became inf scaled back and was written as 2047 with rc 0."""
    from qgis.core import QgsProcessingException

    runtime.clear_cache()
    out = tmp_path / "o.tif"
    out.write_bytes(b"the user's earlier result")
    with pytest.raises(QgsProcessingException, match="absurdly far outside the data's range") as e:
        _run_qgis(data_dir, out, _where_dark(tmp_path, "huge_dark", 3e38), method)
    assert "it is broken" in str(e.value) and not re.search(r"(row|column) -", str(e.value)), e.value
    assert out.read_bytes() == b"the user's earlier result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["huge_dark.json", "huge_dark.onnx", "o.tif"]


def test_huge_values_everywhere_refused_at_the_probe(qgis_app, data_dir, tmp_path):
    """-1e30 x MS: refused on the probe tile, before the scene is read."""
    from qgis.core import QgsProcessingException

    runtime.clear_cache()
    out = tmp_path / "o.tif"
    with pytest.raises(QgsProcessingException, match=r"absurdly far outside .* test tile: it is broken"):
        _run_qgis(data_dir, out, _times(tmp_path, "neg_huge", -1e30))
    assert not out.exists()


def _fuser(tmp_path, model: str, scale: float):
    from ksdiff_qgis.engine import learned
    from ksdiff_qgis.engine.model_card import load_card

    runtime.clear_cache()
    card = load_card(model)
    return learned.OnnxFuser(card, learned.checked_session(card, "cpu", 1), scale, "fp32", consistency=False)


def _ctx(origin=(-18, -18), h=40):
    from ksdiff_qgis.engine.classical import TileContext

    return TileContext(stats=types.SimpleNamespace(), ratio=4, gains=(0.3,) * 4, origin=origin)


def test_values_infinite_once_scaled_back_are_refused(tmp_path):
    """Sane in model units (x 30 the LMS) but beyond float32 once multiplied by the value scale (1e38)."""
    fuser = _fuser(tmp_path, _times(tmp_path, "thirty", 30.0), 1e38)
    pan = np.full((40, 40), 5e37, np.float32)
    lms = np.full((4, 40, 40), 5e37, np.float32)
    with pytest.raises(InputError, match="NaN or infinite once scaled back.*PAN row 0, column 0.*it is broken"):
        fuser(pan, lms, _ctx())


def test_bad_tile_said_inside_the_scene(tmp_path):
    """A tile's array starts at its margin, beyond the scene's first row and column: its place is said inside."""
    fuser = _fuser(tmp_path, _where_dark(tmp_path, "nan_dark", np.nan), 2047.0)
    pan = np.full((40, 40), 1500.0, np.float32)
    pan[25, 30] = 10.0   # one dark pixel, at scene row -18 + 25 = 7, column 12
    lms = np.full((4, 40, 40), 1000.0, np.float32)
    with pytest.raises(InputError, match=r"NaN or infinite values on the tile at PAN row 7, column 12"):
        fuser(pan, lms, _ctx())
    pan[25, 30], pan[0, 0] = 1500.0, 10.0   # in the margin, beyond the scene: clamped to its edge
    with pytest.raises(InputError, match=r"PAN row 0, column 0 "):
        fuser(pan, lms, _ctx())


def test_self_check_says_an_unusable_output_in_words():
    from ksdiff_qgis.engine import selfcheck
    from ksdiff_qgis.engine.selfcheck import Scores, SelfCheck

    broken = Scores(ergas=1.424e30, sam=float("nan"), r_ergas=float("inf"), checkerboard=0.27)
    classic = Scores(9.3, 7.3, 3.3, 0.48)
    keep, why = selfcheck.decide(broken, classic, 0.53, 0.56)
    assert not keep and "unusable" in why and not re.search(r"\d{7}|nan|inf\b", why), why
    res = SelfCheck(method="mtf_glp_hpm", reason=why, learned=broken, classical=classic,
                    candidates={"learned": broken, "mtf_glp_hpm": classic}, pan_checkerboard=0.53,
                    ms_checkerboard=0.56, pixels=4096, windows=1)
    fb = RecordingFeedback()
    selfcheck.log_check(res, fb, "KSDiff (model.onnx)")
    text = "\n".join(fb.lines)
    assert "KSDiff (model.onnx): its output is unusable" in text and not re.search(r"\d{7}|nan°|ERGAS inf", text), text
    assert res.outputs()["SELFCHECK_KSDIFF_ERGAS"] is None


def _slow(folder, per_row: int) -> str:
    """The LMS (+ 0 x a Loop of 256² MatMuls run ``per_row`` times per PAN row): slow on a tile, quick on the
    8-pixel probe."""
    body = helper.make_graph(
        [helper.make_node("Identity", ["c_in"], ["c_out"]), helper.make_node("MatMul", ["w", "w"], ["w2"]),
         helper.make_node("Mul", ["w2", "tiny"], ["w_out"])], "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("c_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("w", TensorProto.FLOAT, [256, 256])],
        [helper.make_tensor_value_info("c_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("w_out", TensorProto.FLOAT, [256, 256])],
        initializer=[_const("tiny", 1e-3)])
    nodes = [helper.make_node("Shape", ["pan"], ["shape"], start=2, end=3),
             helper.make_node("Mul", ["shape", "per_row"], ["trips1"]),
             helper.make_node("Squeeze", ["trips1"], ["trips"]),
             helper.make_node("Loop", ["trips", "cond", "w0"], ["wf"], body=body),
             helper.make_node("ReduceMean", ["wf"], ["wm"], keepdims=0),
             helper.make_node("Mul", ["wm", "zero"], ["wz"]), helper.make_node("Mul", ["pan", "zero"], ["pz"]),
             helper.make_node("Add", ["lms", "pz"], ["x"]), helper.make_node("Add", ["x", "wz"], ["hrms"])]
    inits = [_const("zero", 0.0), numpy_helper.from_array(np.array([per_row], np.int64), "per_row"),
             numpy_helper.from_array(np.array(True), "cond"),
             numpy_helper.from_array(np.random.default_rng(0).random((256, 256), np.float32), "w0")]
    return _save(folder, "slow", nodes, inits)


class _CancelAfter(RecordingFeedback):
    """Cancelled ``after`` seconds from its creation."""

    def __init__(self, after: float):
        super().__init__()
        self.t0, self.after = time.perf_counter(), after

    def is_cancelled(self) -> bool:
        return time.perf_counter() - self.t0 > self.after


@pytest.mark.parametrize("method", ["ksdiff", "auto"])
def test_cancel_stops_a_slow_network_midway(data_dir, tmp_path, method):
    """A tile's network run takes seconds; a cancel during it returns within a fraction of that, nothing written."""
    import onnxruntime as ort

    from ksdiff_qgis.engine import pipeline

    feed = {"pan": np.zeros((1, 1, 260, 260), np.float32), "lms": np.zeros((1, 4, 260, 260), np.float32)}
    # the graph is made slow enough on this machine, whatever its load: 0.3 s on a quiet one, 2.4 s on a busy one
    for per_row in (6, 24, 96, 384):
        model = _slow(tmp_path, per_row)
        t = time.perf_counter()
        ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, feed)
        one_tile = time.perf_counter() - t   # one 256² output tile with its margins, uncancelled
        if one_tile > 1.5:
            break
    assert one_tile > 1.0, f"the slow graph is too quick on this machine ({one_tile:.2f} s) to show anything"
    runtime.clear_cache()
    out = tmp_path / "o.tif"
    fb = _CancelAfter(0.8)
    t = time.perf_counter()
    with pytest.raises(Cancelled):
        pipeline.pansharpen(str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), str(out), sensor="wv2",
                            method=method, model_path=model, threads=1, feedback=fb)
    took = time.perf_counter() - t
    assert took < 0.8 + 0.5 * one_tile, (took, one_tile)
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["slow.json", "slow.onnx"]
    assert not any("failed" in line for line in fb.lines), fb.lines
