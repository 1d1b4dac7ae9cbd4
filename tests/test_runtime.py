"""ONNX inference plumbing: device choice and fallback, model cards, normalisation and tiling of a model."""
from __future__ import annotations

import json
import os
import types

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from osgeo import gdal

from ksdiff_qgis.engine import consistency, pipeline, runtime
from ksdiff_qgis.engine.errors import InputError
from ksdiff_qgis.engine.model_card import load_card, sha256_file
from ksdiff_qgis.engine.pipeline import pansharpen


def identity_model(path, bands=4, ratio=4, scale=2047.0, margin=0, multiple=8):
    """An ONNX graph hrms = lms + 0 * pan with a valid card: a learned method that must reproduce EXP."""
    dims = ["N", None, "H", "W"]
    pan = helper.make_tensor_value_info("pan", TensorProto.FLOAT, ["N", 1, "H", "W"])
    lms = helper.make_tensor_value_info("lms", TensorProto.FLOAT, ["N", bands, "H", "W"])
    out = helper.make_tensor_value_info("hrms", TensorProto.FLOAT, [d if d else bands for d in dims])
    zero = helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])
    nodes = [helper.make_node("Mul", ["pan", "zero"], ["z"]), helper.make_node("Add", ["lms", "z"], ["hrms"])]
    graph = helper.make_graph(nodes, "identity", [pan, lms], [out], initializer=[zero])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, str(path))
    card = {"format_version": 1, "sensor": "wv2", "sensor_name": "test", "bands": ["B", "G", "R", "N"][:bands]
            + [f"b{i}" for i in range(bands - 4)], "ratio": ratio, "scale": scale, "method": "ksdiff",
            "backbone": "identity", "inputs": {"pan": "pan", "lms": "lms"}, "output": "hrms", "layout": "NCHW",
            "normalisation": "value / scale", "margin": margin, "size_multiple": multiple,
            "onnx_sha256": sha256_file(path)}
    path.with_suffix(".json").write_text(json.dumps(card))
    return path


def test_choose_providers():
    cpu_only = ["CPUExecutionProvider"]
    both = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert runtime.choose_providers("cpu", both).providers == ("CPUExecutionProvider",)
    assert runtime.choose_providers("auto", both).providers[0] == "CUDAExecutionProvider"
    for gpu in (False, True):   # the GPU build advised only when the machine has an NVIDIA GPU
        auto = runtime.choose_providers("auto", cpu_only, gpu=gpu)
        assert auto.providers == ("CPUExecutionProvider",) and ("install the GPU build" in auto.reason) == gpu
        cuda = runtime.choose_providers("cuda", cpu_only, gpu=gpu)
        assert cuda.providers == ("CPUExecutionProvider",) and cuda.reason
    with pytest.raises(InputError):
        runtime.choose_providers("tpu", both)


def test_cuda_requested_on_this_machine_falls_back_to_cpu(tmp_path):
    model = identity_model(tmp_path / "m.onnx")
    runtime.clear_cache()
    s = runtime.get_session(str(model), "cuda")
    assert s.device == "cpu" and ("NVIDIA GPU" in s.reason), s.reason
    assert runtime.get_session(str(model), "cuda") is s   # created once, reused


def test_cuda_provider_present_but_session_not_on_gpu(tmp_path, monkeypatch):
    """The CUDA provider is listed but the session ends up on CPU (no driver): report CPU and why."""
    model = identity_model(tmp_path / "m.onnx")

    class FakeSession:
        def __init__(self, path, sess_options=None, providers=None):
            self.asked = providers

        def get_providers(self):
            return ["CPUExecutionProvider"]

    import onnxruntime

    fake = types.SimpleNamespace(get_available_providers=lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"],
                                 SessionOptions=onnxruntime.SessionOptions,
                                 GraphOptimizationLevel=onnxruntime.GraphOptimizationLevel,
                                 InferenceSession=FakeSession)
    monkeypatch.setattr(runtime, "import_onnxruntime", lambda: fake)
    runtime.clear_cache()
    s = runtime.get_session(str(model), "auto")
    assert s.session.asked[0] == "CUDAExecutionProvider"
    assert s.device == "cpu" and "could not create the session" in s.reason
    runtime.clear_cache()


def test_identity_model_reproduces_exp_tiled(data_dir, tmp_path, monkeypatch):
    model = identity_model(tmp_path / "m.onnx", multiple=16)
    pan, ms = str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif")
    exp = pansharpen(pan, ms, str(tmp_path / "exp.tif"), "wv2", "exp")
    # the tiles with the consistency step and the noise pull (its noise is the scene's, not a tile's): one tile or
    # nine blended ones give the same image
    whole = pansharpen(pan, ms, str(tmp_path / "m1.tif"), "wv2", "ksdiff", tile_size=512, model_path=str(model))
    tiled = pansharpen(pan, ms, str(tmp_path / "m9.tif"), "wv2", "ksdiff", tile_size=100, overlap=20,
                       model_path=str(model), device="auto")
    assert tiled.device == "cpu" and tiled.tiles == 9 and whole.tiles == 1
    b, c = (gdal.Open(r.output_path).ReadAsArray().astype(int) for r in (tiled, whole))
    assert np.abs(c - b).max() <= 1 and (c == b).mean() > 0.999
    # the step changed the identity's output (EXP is not consistent with its MS) ...
    a = gdal.Open(exp.output_path).ReadAsArray().astype(int)
    assert np.abs(a - b).mean() > 1
    # ... and without it (and without the pull towards MTF-GLP-HPM) the tiled identity model is EXP
    monkeypatch.setattr(consistency, "project", lambda f, *args, **kw: np.asarray(f, np.float32))
    monkeypatch.setattr(pipeline, "NOISE_PULL", False)
    plain = pansharpen(pan, ms, str(tmp_path / "m.tif"), "wv2", "ksdiff", tile_size=100, overlap=20,
                       model_path=str(model), device="auto")
    b = gdal.Open(plain.output_path).ReadAsArray().astype(int)
    assert np.abs(a - b).max() <= 1 and (a == b).mean() > 0.999


def test_model_sha_mismatch_is_refused(tmp_path, data_dir):
    model = identity_model(tmp_path / "m.onnx")
    with open(model, "ab") as f:
        f.write(b"\0")
    with pytest.raises(InputError, match="does not match its card"):
        load_card(model)
    with pytest.raises(InputError, match="does not match its card"):
        pansharpen(str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), str(tmp_path / "o.tif"), "wv2",
                   "ksdiff", model_path=str(model))
    assert not (tmp_path / "o.tif").exists()


def test_corrupt_model_is_refused(tmp_path, data_dir):
    model = tmp_path / "bad.onnx"
    model.write_bytes(b"not a protobuf" * 50)
    card = {"format_version": 1, "sensor": "wv2", "bands": ["B", "G", "R", "N"], "ratio": 4, "scale": 2047.0,
            "method": "ksdiff", "inputs": {"pan": "pan", "lms": "lms"}, "output": "hrms", "margin": 0,
            "onnx_sha256": sha256_file(model)}
    model.with_suffix(".json").write_text(json.dumps(card))
    runtime.clear_cache()
    with pytest.raises(InputError, match="ONNX Runtime cannot load"):
        pansharpen(str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), str(tmp_path / "o.tif"), "wv2",
                   "ksdiff", model_path=str(model))
    assert not (tmp_path / "o.tif").exists()


def test_model_that_does_not_fit_the_data(tmp_path, data_dir):
    model = identity_model(tmp_path / "m8.onnx", bands=8)
    with pytest.raises(InputError, match="expects 8 MS bands"):
        pansharpen(str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), str(tmp_path / "o.tif"), "wv2",
                   "ksdiff", model_path=str(model))
    model = identity_model(tmp_path / "m2.onnx", ratio=2)
    with pytest.raises(InputError, match="ratio 2"):
        pansharpen(str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), str(tmp_path / "o.tif"), "wv2",
                   "ksdiff", model_path=str(model))


def test_missing_card(tmp_path, data_dir):
    model = identity_model(tmp_path / "m.onnx")
    model.with_suffix(".json").unlink()
    with pytest.raises(InputError, match="no model card"):
        load_card(model)


def test_missing_onnxruntime_explains_install(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_ort(name, *a, **k):
        if name == "onnxruntime":
            raise ImportError("no onnxruntime")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_ort)
    with pytest.raises(InputError, match="Install ONNX Runtime"):
        runtime.import_onnxruntime()


def test_learned_model_through_processing(qgis_app, data_dir, tmp_path):
    import processing

    model = identity_model(tmp_path / "m.onnx")
    out = str(tmp_path / "o.tif")
    processing.run("ksdiff:pansharpen", {"PAN": str(data_dir / "wv2_pan.tif"), "MS": str(data_dir / "wv2_ms.tif"),
                                         "SENSOR": "wv2", "METHOD": "ksdiff", "MODEL": str(model),
                                         "DEVICE": "cuda", "THREADS": 1, "OUTPUT": out})
    assert gdal.Open(out).RasterCount == 4


def test_a_broken_onnxruntime_is_not_called_missing(monkeypatch, tmp_path):
    """QA D4: a runtime whose native library was deleted was reported as 'ONNX Runtime is not installed'."""
    import sys

    broken = tmp_path / "py311" / "onnxruntime"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text(
        "raise ImportError(\"cannot import name 'onnxruntime_pybind11_state' from 'onnxruntime.capi'\")\n")
    monkeypatch.setattr(sys, "path", [str(tmp_path / "py311"), *sys.path])
    monkeypatch.delitem(sys.modules, "onnxruntime", raising=False)
    with pytest.raises(InputError, match=r"ONNX Runtime at .*py311.onnxruntime does not load \((ImportError: )?"
                                         r"cannot import name 'onnxruntime_pybind11_state'.*\): reinstall it") as err:
        runtime.import_onnxruntime()
    assert "not installed" not in str(err.value)


def test_an_absent_onnxruntime_says_not_installed(monkeypatch):
    import sys

    monkeypatch.setattr(sys, "path", [p for p in sys.path if not os.path.isdir(os.path.join(p, "onnxruntime"))])
    monkeypatch.delitem(sys.modules, "onnxruntime", raising=False)
    with pytest.raises(InputError) as err:
        runtime.import_onnxruntime()
    assert str(err.value) == runtime.INSTALL_HINT and "make deploy" not in str(err.value)
    assert "for this QGIS profile" in str(err.value)


def test_a_model_replaced_with_same_size_and_time_is_reloaded(data_dir, tmp_path):
    """A custom MODEL replaced by a retrained file of the same size with the same time (cp -p, rsync -t, unzip) ran
    the old model for the rest of the session: sessions were cached by path, time and size."""
    import shutil

    from fake_models import write_scaled_model

    from ksdiff_qgis.engine.pipeline import pansharpen

    v1, v2 = write_scaled_model(tmp_path, "v1", 1.5), write_scaled_model(tmp_path, "v2", 1.25)
    assert os.path.getsize(v1) == os.path.getsize(v2)
    model = tmp_path / "custom.onnx"

    def install(src: str) -> None:
        shutil.copyfile(src, model)
        shutil.copyfile(src[:-5] + ".json", model.with_suffix(".json"))
        os.utime(model, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))   # the same time each install

    def fused(tag: str) -> np.ndarray:
        out = str(tmp_path / f"{tag}.tif")
        pansharpen(str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), out, sensor="wv2", method="ksdiff",
                   model_path=str(model), consistency=False, precision="fp32")
        return gdal.Open(out).ReadAsArray().astype(np.float64)

    install(v1)
    first = fused("v1")
    install(v2)
    assert os.stat(model).st_mtime_ns == 1_700_000_000_000_000_000
    second = fused("v2")
    runtime.clear_cache()
    fresh = fused("v2_fresh")   # what the new model gives in a new session
    assert not np.array_equal(second, first)
    np.testing.assert_array_equal(second, fresh)
