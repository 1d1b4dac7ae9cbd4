"""model_core networks: shapes for 4/8 bands and ratios 2/4, exact modulated convolution, determinism."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ksdiff_qgis.engine.filters import upsample
from model_core.diffusion import hash_noise
from model_core.evaluate import fuse, torch_runner
from model_core.nets import build_model
from model_core.nets.modconv import ModConv2d, Modulation

torch.set_num_threads(1)
NETS = [("fusionnet", "fusionnet"), ("pannet", "pannet"), ("ksdiff", "fusionnet"), ("ksdiff", "pannet"),
        ("ssdiff", "fusionnet")]


def _inputs(bands: int, ratio: int, ms_size: int, seed: int = 0, n: int = 1):
    rng = np.random.default_rng(seed)
    ms = rng.uniform(0.05, 0.4, (n, bands, ms_size, ms_size)).astype(np.float32)
    size = ms_size * ratio
    lms = np.stack([upsample(m, ratio, (size, size)) for m in ms])
    pan = lms.mean(1, keepdims=True) + rng.normal(0, 0.01, (n, 1, size, size)).astype(np.float32)
    return torch.from_numpy(pan), torch.from_numpy(lms)


@pytest.mark.parametrize("method,backbone", NETS)
@pytest.mark.parametrize("bands,ratio", [(4, 4), (8, 2), (4, 2), (8, 4)])
def test_shapes(method, backbone, bands, ratio):
    model = build_model(method, bands, backbone, **({"sample_steps": 2} if method == "ssdiff" else {}))
    run, mult = torch_runner(model)
    ms_size = 9 if ratio == 2 else 5  # 18 or 20 PAN pixels: not a multiple of SSDiff's 4 for ratio 2
    pan, lms = _inputs(bands, ratio, ms_size)
    out = fuse(run, mult, pan[0, 0].numpy(), lms[0].numpy())
    assert out.shape == (bands, ms_size * ratio, ms_size * ratio)
    assert np.isfinite(out).all()
    if mult == 1:
        with torch.no_grad():
            batch = model(pan.expand(2, -1, -1, -1), lms.expand(2, -1, -1, -1))
        assert batch.shape == (2, bands, ms_size * ratio, ms_size * ratio)


def test_modulated_conv_equals_dense_per_sample_kernels():
    torch.manual_seed(0)
    conv = ModConv2d(8, 6, ranks=(4, 3, 2))
    n = 3
    mod = Modulation(torch.randn(n, 4, 3, 2), torch.randn(n, 4, 4), torch.randn(n, 3, 3), torch.randn(n, 2, 2))
    x = torch.randn(n, 8, 11, 13)
    dense = conv.dense_update(mod)  # W' = W + dW per sample, as a grouped convolution with the batch folded into groups
    ref = F.conv2d(x.reshape(1, n * 8, 11, 13), (conv.weight + dense).reshape(n * 6, 8, 3, 3),
                   conv.bias.repeat(n), padding=1, groups=n).reshape(n, 6, 11, 13)
    out = conv(x, mod)
    assert torch.allclose(out, ref, atol=1e-5 * ref.abs().max().item())
    assert torch.equal(conv(x), F.conv2d(x, conv.weight, conv.bias, padding=1))


@pytest.mark.parametrize("method", ["ksdiff", "ssdiff"])
def test_same_input_same_output_and_batch_independent(method):
    torch.manual_seed(1)
    model = build_model(method, 4, "fusionnet", **({"sample_steps": 3} if method == "ssdiff" else {})).eval()
    if method == "ksdiff":  # make the kernel update non-zero
        torch.nn.init.normal_(model.kgen.core_gen[-1].weight, std=0.2)
    pan, lms = _inputs(4, 4, 6, n=2)
    with torch.no_grad():
        a, b = model(pan, lms), model(pan, lms)
        single = model(pan[1:], lms[1:])
    assert torch.equal(a, b)
    if method == "ksdiff":  # each sample's prior depends only on that sample
        assert torch.allclose(a[1:], single, atol=1e-5)


def test_ksdiff_prior_noise_is_fixed_size_and_modulation_acts():
    torch.manual_seed(2)
    model = build_model("ksdiff", 4, "pannet").eval()
    assert tuple(model.z_init.shape) == (model.tokens, model.dim)
    torch.nn.init.normal_(model.kgen.core_gen[-1].weight, std=0.2)
    pan, lms = _inputs(4, 4, 6)
    with torch.no_grad():
        z = model.sample_prior(model.cond_enc(pan, lms))
        mods, gain = model.kgen(z, model.struct_enc(pan))
        assert len(mods) == model.backbone.mod_layers and gain is None
        plain = model.backbone(pan, lms)
        modulated = model.backbone(pan, lms, mods)
    assert (plain - modulated).abs().max() > 1e-6


def test_ksdiff_tail_gain_scales_each_band_detail_and_starts_at_zero():
    torch.manual_seed(3)
    model = build_model("ksdiff", 4, "fusionnet", tail_gain=True).eval()
    pan, lms = _inputs(4, 4, 6, n=2)
    with torch.no_grad():
        z = model.sample_prior(model.cond_enc(pan, lms))
        mods, gain = model.kgen(z, model.struct_enc(pan))
        assert gain.shape == (2, 4) and torch.count_nonzero(gain) == 0  # starts at the unmodulated tail
        torch.nn.init.normal_(model.kgen.gain_gen.weight, std=0.5)
        mods, gain = model.kgen(z, model.struct_enc(pan))
        plain = model.backbone(pan, lms, mods)
        scaled = model.backbone(pan, lms, mods, gain)
    # the tail's residual (output - LMS) is multiplied by 1 + gain, band by band
    assert torch.allclose(scaled - lms, (plain - lms) * (1 + gain[:, :, None, None]), atol=1e-6)
    assert torch.allclose(model(pan, lms), scaled, atol=1e-6)


def test_hash_noise_deterministic_and_gaussian():
    a = hash_noise(2, 4, 64, 48)
    assert torch.equal(a, hash_noise(2, 4, 64, 48))
    assert abs(float(a.mean())) < 0.05 and abs(float(a.std()) - 1) < 0.05
    assert not torch.equal(a[0], a[1])


def _real_patches(data_dir, n: int = 4, size: int = 64):
    """``n`` PAN/LMS/MS-as-GT patches of the WorldView-2 fixture, in model units (values / sensor scale)."""
    from osgeo import gdal

    scale = 2047.0
    pan = gdal.Open(str(data_dir / "wv2_pan.tif")).ReadAsArray().astype(np.float32) / scale
    ms = gdal.Open(str(data_dir / "wv2_ms.tif")).ReadAsArray().astype(np.float32) / scale
    lms = upsample(ms, 4, pan.shape)
    out = [], [], []
    for i in range(n):
        y, x = (i * 37) % (pan.shape[0] - size), (i * 53) % (pan.shape[1] - size)
        for lst, arr in zip(out, (pan[None, y : y + size, x : x + size], lms[:, y : y + size, x : x + size])):
            lst.append(arr)
    pan_t, lms_t = (torch.from_numpy(np.stack(a)) for a in out[:2])
    return pan_t, lms_t, lms_t + 0.05 * (pan_t - pan_t.mean())  # a GT with detail the LMS lacks


def test_prior_tokens_depend_on_the_tile(data_dir):
    # the first encoder design (raw inputs) gave tokens that hardly changed across tiles; the tile
    # standardisation must make the prior tile-specific from the start of training
    spread = {}
    for norm in (False, True):
        torch.manual_seed(0)
        model = build_model("ksdiff", 4, "fusionnet", prior_norm=norm).eval()
        pan, lms, gt = _real_patches(data_dir)
        with torch.no_grad():
            spread[norm] = (float(model.prior_enc(pan, lms, gt).std(0).mean()),
                            float(model.cond_enc(pan, lms).std(0).mean()))
    # measured at this seed: prior 0.063 vs 0.010, condition 0.143 vs 0.004
    assert spread[True][0] > 4 * spread[False][0] and spread[True][0] > 0.03, spread
    assert spread[True][1] > 10 * spread[False][1], spread
