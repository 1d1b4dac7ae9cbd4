"""DEVICE=auto or cuda: a CUDA session that fails to start or to run falls back to CPU, and says why."""
from __future__ import annotations

import types

import onnxruntime
import pytest
from osgeo import gdal

from ksdiff_qgis.engine import runtime
from ksdiff_qgis.engine.errors import InputError

MISSING_CUDNN = ("[ONNXRuntimeError] : 1 : FAIL : LoadLibrary failed with error 126 when trying to load "
                 "libonnxruntime_providers_cuda.so: libcudnn.so.8: cannot open shared object file")


class _FailsOnFirstRun:
    """A session that claims CUDA but fails on its first run, like ONNX Runtime without cuDNN."""

    def __init__(self, real):
        self.real = real

    def get_providers(self):
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]

    def get_inputs(self):
        return self.real.get_inputs()

    def get_outputs(self):
        return self.real.get_outputs()

    def get_modelmeta(self):
        return self.real.get_modelmeta()

    def run(self, *args, **kwargs):
        raise RuntimeError("[ONNXRuntimeError] : 1 : FAIL : CUDNN failure 1: CUDNN_STATUS_NOT_INITIALIZED")


def fake_ort(mode: str, asked: list):
    """onnxruntime that lists CUDA; a CUDA session ``mode`` = 'start' fails, 'run' fails later, CPU is real."""
    def session(path, sess_options=None, providers=None):
        asked.append(list(providers))
        if "CUDAExecutionProvider" in providers:
            if mode == "start":
                raise RuntimeError(MISSING_CUDNN)
            return _FailsOnFirstRun(onnxruntime.InferenceSession(path, sess_options=sess_options,
                                                                 providers=["CPUExecutionProvider"]))
        if mode == "broken":
            raise RuntimeError("[ONNXRuntimeError] : 7 : INVALID_PROTOBUF : Load model failed")
        return onnxruntime.InferenceSession(path, sess_options=sess_options, providers=providers)

    return types.SimpleNamespace(
        get_available_providers=lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"],
        SessionOptions=onnxruntime.SessionOptions, GraphOptimizationLevel=onnxruntime.GraphOptimizationLevel,
        RunOptions=onnxruntime.RunOptions, InferenceSession=session)


@pytest.fixture()
def model(tmp_path):
    from test_model_validation import make_model

    runtime.clear_cache()
    yield make_model(tmp_path)
    runtime.clear_cache()


@pytest.mark.parametrize("device", ["auto", "cuda"])
def test_cuda_failing_at_start_falls_back_to_cpu(model, monkeypatch, device):
    asked: list = []
    monkeypatch.setattr(runtime, "import_onnxruntime", lambda: fake_ort("start", asked))
    s = runtime.get_session(str(model), device, 1)
    assert asked == [["CUDAExecutionProvider", "CPUExecutionProvider"], ["CPUExecutionProvider"]]
    assert s.device == "cpu"
    assert "CUDA session failed to start" in s.reason and "libcudnn.so.8" in s.reason


def test_model_failing_on_cpu_too_is_a_model_error(model, monkeypatch):
    monkeypatch.setattr(runtime, "import_onnxruntime", lambda: fake_ort("broken", []))
    with pytest.raises(InputError, match="cannot load the model.*INVALID_PROTOBUF"):
        runtime.get_session(str(model), "cpu", 1)


def _run(data_dir, model, out, device="auto"):
    import processing
    from qgis.core import QgsProcessingFeedback

    feedback = QgsProcessingFeedback()
    processing.run("ksdiff:pansharpen", {"PAN": str(data_dir / "wv2_pan.tif"), "MS": str(data_dir / "wv2_ms.tif"),
                                         "SENSOR": "wv2", "METHOD": "ksdiff", "MODEL": str(model), "DEVICE": device,
                                         "THREADS": 1, "OUTPUT": out}, feedback=feedback)
    return feedback.textLog()


@pytest.mark.parametrize("mode,why", [("start", r"CUDA session failed to start \(.*libcudnn"),
                                      ("run", r"CUDA session failed on its first run \(.*CUDNN_STATUS")])
def test_processing_run_falls_back_and_logs_why(qgis_app, data_dir, tmp_path, model, monkeypatch, mode, why):
    import re

    monkeypatch.setattr(runtime, "import_onnxruntime", lambda: fake_ort(mode, []))
    out = str(tmp_path / "o.tif")
    log = _run(data_dir, model, out)
    assert re.search(r"running on the CPU; .*" + why, log), log
    assert "on cpu" in log
    arr = gdal.Open(out).ReadAsArray()
    assert arr.shape == (4, 256, 256) and (arr > 0).all()
    # the broken CUDA session is not handed to the next run, and the CPU one is reused
    log2 = _run(data_dir, model, str(tmp_path / "o2.tif"))
    assert "on cpu" in log2


def test_real_cpu_path(qgis_app, data_dir, tmp_path, model):
    """This machine's real ONNX Runtime (no CUDA provider): auto ends on the CPU, and advises the GPU build only
    when the machine has an NVIDIA GPU (QA: the advice came on every CPU run)."""
    log = _run(data_dir, model, str(tmp_path / "o.tif"))
    assert "Model identity.onnx: running on the CPU" in log
    assert ("install the GPU build" in log) == runtime.gpu_present(), log


@pytest.mark.parametrize("method", ["ksdiff", "auto"])
def test_cuda_asked_for_and_cpu_used_is_a_warning(qgis_app, data_dir, tmp_path, model, method):
    """This machine's ONNX Runtime has no CUDA provider: DEVICE cuda falls back to the CPU with a warning of its own,
    once also when METHOD auto's self-check loads the model first (QA: only inside the long model info line);
    DEVICE auto's CPU stays an info line."""
    import processing
    from test_issue14_processing import Log

    assert "CUDAExecutionProvider" not in onnxruntime.get_available_providers()
    logs = {}
    for device in ("cuda", "auto"):
        logs[device] = Log()
        processing.run("ksdiff:pansharpen", {"PAN": str(data_dir / "wv2_pan.tif"), "MS": str(data_dir / "wv2_ms.tif"),
                                             "SENSOR": "wv2", "METHOD": method, "MODEL": str(model), "DEVICE": device,
                                             "THREADS": 1, "OUTPUT": str(tmp_path / f"{device}.tif")},
                       feedback=logs[device])
    warned = [line for line in logs["cuda"].lines if line.startswith("WARNING DEVICE cuda")]
    why = runtime.choose_providers("cuda", [runtime.CPU]).reason   # no GPU: says so; a GPU: how to use it
    assert why in ("no NVIDIA GPU was found (nvidia-smi)", "an NVIDIA GPU is present, but this ONNX Runtime build has "
                   f"no CUDA provider: to use the GPU, install the GPU build with {runtime.GPU_INSTALL}"), why
    assert warned == [f"WARNING DEVICE cuda was asked for, but the model runs on the CPU (slower): {why}"], \
        logs["cuda"].lines
    assert not any("DEVICE cuda" in line for line in logs["auto"].lines)
    if method == "ksdiff":   # (auto's self-check kept the classical method here: no model line)
        assert any(line.startswith("Model identity.onnx: running on the CPU") for line in logs["auto"].lines)
