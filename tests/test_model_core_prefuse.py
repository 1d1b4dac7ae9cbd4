"""The in-graph HPM prefusion (model.prefuse): a classical start for the network, exported with it."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import torch
from osgeo import gdal

from ksdiff_qgis.engine import metrics as M
from ksdiff_qgis.engine.filters import upsample
from model_core.export import export_onnx
from model_core.nets import build_model
from model_core.nets.prefuse import GAIN, HPMPrefuse, gaussian_taps
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
