"""The in-graph prefusions (model.prefuse: HPM, or a per-tile GSA or MTF-GLP-FS): a classical start for the network,
exported with it."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch
from osgeo import gdal

from ksdiff_qgis.engine import metrics as M
from ksdiff_qgis.engine.filters import upsample
from model_core.export import export_onnx
from model_core.nets import build_model
from model_core.nets.prefuse import GAIN, FSPrefuse, GSAPrefuse, HPMPrefuse, _conjugate_gradient, gaussian_taps
from model_core.nets.tilenorm import tile_normalise
from model_core.wald import make_reduced_case

ADAPTIVE = dict(width=32, blocks=4, modulate="all", modulate_ends=True, ranks=(6, 6, 3), live=True, tile_norm=True,
                context_tokens=2, ratio=4)


def test_gaussian_taps_match_the_mtf_gain():
    k = gaussian_taps(4).double()
    n = torch.arange(len(k), dtype=torch.float64) - len(k) // 2
    response = float((k * torch.cos(np.pi / 4 * n)).sum())   # at the coarse Nyquist frequency (1/8 cycle/px)
    assert abs(float(k.sum()) - 1) < 1e-6 and abs(response - GAIN) < 0.01


def test_untrained_prefused_network_starts_as_hpm_and_exports(tmp_path):
    torch.manual_seed(0)
    model = build_model("ksdiff", 4, "fusionnet", prefuse=True, **ADAPTIVE).eval()
    plain = build_model("ksdiff", 4, "fusionnet", **ADAPTIVE).eval()
    assert model.margin == plain.margin   # the low-pass reach (6 px) stays inside the convolutions' 10
    rng = np.random.default_rng(0)
    lms = rng.uniform(0.2, 0.4, (1, 4, 48, 48)).astype(np.float32)
    pan = (lms.mean(1, keepdims=True) + rng.normal(0, 0.03, (1, 1, 48, 48))).astype(np.float32)
    with torch.no_grad():
        out = model(torch.from_numpy(pan), torch.from_numpy(lms))
        p, m, s = model.normalise(torch.from_numpy(pan), torch.from_numpy(lms))
        hpm = HPMPrefuse(4)(p, m) * s
    # near HPM (the tail starts at a tenth of its init), far from the upsampled MS
    assert (out - hpm).abs().mean() < 0.2 * (hpm - torch.from_numpy(lms)).abs().mean()
    path = export_onnx(model, tmp_path / "m.onnx", 4)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert np.abs(sess.run(None, {"pan": pan, "lms": lms})[0] - out.numpy()).max() < 1e-4


def test_prefusion_alone_sharpens_a_real_reduced_resolution_case(data_dir, tmp_path):
    """On the WorldView-2 fixture (Wald protocol) the in-graph HPM is far better than no sharpening."""
    case = make_reduced_case(str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), str(tmp_path), "wv2")
    pan, ms, ref = (gdal.Open(p).ReadAsArray().astype(np.float32) for p in (case.pan, case.ms, case.ref))
    h, w = ref.shape[1:]
    lms = upsample(ms, 4, (h, w)).astype(np.float32)
    p, m, s = tile_normalise(torch.from_numpy(pan[:h, :w])[None, None], torch.from_numpy(lms)[None], 4)
    with torch.no_grad():
        hpm = (HPMPrefuse(4)(p, m) * s).numpy()[0]
    assert M.ergas(hpm, ref, 4) < 0.85 * M.ergas(lms, ref, 4)


def test_conjugate_gradient_solves_the_gsa_normal_equations():
    torch.manual_seed(0)
    x = torch.randn(3, 4, 500) + 3 * torch.randn(3, 1, 500)     # strongly correlated bands, as MS bands are
    a = x @ x.transpose(1, 2) / 500
    b = torch.randn(3, 4, 1)
    assert torch.allclose(_conjugate_gradient(a, b, 6), torch.linalg.solve(a, b), rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("prefuse", [GSAPrefuse, FSPrefuse])
def test_regression_prefusions_follow_a_pan_of_another_spectral_response(prefuse):
    """A PAN that is a NIR-heavy band mix: the per-tile regression finds the mix, so the detail goes into each
    band by its own covariance, and flat tiles get no detail (no 0/0)."""
    rng = np.random.default_rng(1)
    # bands share their texture with band-dependent contrast (vegetation: dark in the visible, bright in NIR)
    texture = rng.uniform(-0.5, 0.5, (1, 1, 64, 64))
    contrast = np.array([-0.3, -0.2, -0.4, 1.0]).reshape(1, 4, 1, 1)
    hr = torch.from_numpy((1 + contrast * texture + rng.normal(0, 0.02, (1, 4, 64, 64))).astype(np.float32))
    lms = HPMPrefuse(4).lowpass(hr.view(4, 1, 64, 64)).view(1, 4, 64, 64)   # a smooth "upsampled MS"
    w = torch.tensor([0.1, 0.2, 0.3, 0.4]).view(1, 4, 1, 1)
    pan = (hr * w).sum(1, keepdim=True)
    out = prefuse(4)(pan, lms)
    lms_err, out_err = (lms - hr).abs().mean(), (out - hr).abs().mean()
    assert out_err < 0.3 * lms_err
    hpm_err = (HPMPrefuse(4)(pan / pan.mean() * lms.mean(), lms) - hr).abs().mean()
    assert out_err < 0.5 * hpm_err   # HPM injects the same relative detail into every band: wrong sign here
    flat = prefuse(4)(torch.ones(1, 1, 32, 32), torch.ones(1, 4, 32, 32))
    assert torch.isfinite(flat).all() and torch.allclose(flat, torch.ones(1, 4, 32, 32))


@pytest.mark.parametrize("kind", ["gsa", "fs", "mix"])
def test_regression_prefused_network_exports(tmp_path, kind):
    torch.manual_seed(0)
    model = build_model("ksdiff", 4, "fusionnet", prefuse=kind, **ADAPTIVE).eval()
    rng = np.random.default_rng(0)
    lms = rng.uniform(0.2, 0.4, (1, 4, 40, 56)).astype(np.float32)
    pan = (lms.mean(1, keepdims=True) + rng.normal(0, 0.03, (1, 1, 40, 56))).astype(np.float32)
    with torch.no_grad():
        out = model(torch.from_numpy(pan), torch.from_numpy(lms)).numpy()
    sess = ort.InferenceSession(str(export_onnx(model, tmp_path / "m.onnx", 4)), providers=["CPUExecutionProvider"])
    assert np.abs(sess.run(None, {"pan": pan, "lms": lms})[0] - out).max() < 1e-4
