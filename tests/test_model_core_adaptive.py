"""The adaptive KSDiff design (issue 12): a live kernel path, per-tile normalisation, context descriptors,
domain-randomised data, the full-resolution stage and its losses, the EMA warm-up."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ksdiff_qgis.engine.filters import decimate, upsample
from ksdiff_qgis.engine.sensors import SENSORS
from model_core.config import load_config, with_defaults
from model_core.data import pair_triple
from model_core.data.fullres import FullResSampler
from model_core.data.patches import PatchSampler
from model_core.losses import degrade, mtf_kernels, spectral_loss
from model_core.nets import build_model
from model_core.nets.context import descriptors
from model_core.nets.tilenorm import tile_normalise
from model_core.train import EMA, run

torch.set_num_threads(1)
WV2 = SENSORS["wv2"]
SMALL = {"width": 16, "blocks": 2, "modulate": "all", "modulate_ends": True, "dim": 32, "tokens": 4,
         "struct_tokens": 4, "ranks": [4, 4, 3], "sample_steps": 2, "enc_widths": [8, 16, 32], "live": True,
         "tile_norm": True, "context_tokens": 2, "ratio": 4}


def _inputs(n=4, size=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    ramp = torch.linspace(0, 0.1, size).view(1, 1, 1, size)   # structure at the MS scale, like real scenes
    lms = 0.1 + ramp + 0.05 * torch.rand(n, 4, size, size, generator=g)
    pan = lms.mean(1, keepdim=True) + 0.02 * torch.rand(n, 1, size, size, generator=g)
    gt = lms + 0.01 * torch.randn(lms.shape, generator=g)
    return pan, lms, gt


def test_gradient_reaches_every_module_at_initialisation():
    torch.manual_seed(0)
    model = build_model("ksdiff", 4, "fusionnet", **SMALL).train()
    pan, lms, gt = _inputs()
    (model.forward_stage1(pan, lms, gt) - gt).abs().mean().backward()
    stage1 = ("prior_enc.", "struct_enc.", "kgen.", "context.", "backbone.")
    dead = [n for n, p in model.named_parameters()
            if n.startswith(stage1) and not (p.grad is not None and p.grad.abs().sum() > 0)]
    assert dead == []
    model.zero_grad()
    hrms, prior_loss, _ = model.stage2_losses(pan, lms, gt, sampling_t=True)
    ((hrms - gt).abs().mean() + prior_loss).backward()
    dead = [n for n, p in model.named_parameters()
            if n.startswith(("cond_enc.", "denoiser.")) and not (p.grad is not None and p.grad.abs().sum() > 0)]
    assert dead == []


def test_the_first_design_starves_the_kernel_path():
    """What issue 12 found: the zero-initialised core with a bias gives upstream modules no gradient."""
    torch.manual_seed(0)
    model = build_model("ksdiff", 4, "fusionnet", **{**SMALL, "live": False}).train()
    pan, lms, gt = _inputs()
    (model.forward_stage1(pan, lms, gt) - gt).abs().mean().backward()
    assert all(p.grad is None or p.grad.abs().sum() == 0
               for n, p in model.named_parameters() if n.startswith("prior_enc."))


def test_live_core_is_centred_over_the_batch_and_uses_the_running_mean_at_inference():
    torch.manual_seed(0)
    model = build_model("ksdiff", 4, "fusionnet", **SMALL).train()
    pan, lms, gt = _inputs()
    p, m, s = model.normalise(pan, lms)
    z = model.prior_enc(p, m, gt / s)
    mods, gain = model.kgen(z, torch.cat([model.struct_enc(p), model.context(p, m)], dim=1))
    assert torch.allclose(mods[0].core.mean(0), torch.zeros_like(mods[0].core[0]), atol=1e-7)
    assert model.kgen.core_mean.abs().sum() > 0          # the running mean moved
    model.eval()
    mods_eval, _ = model.kgen(z[:1], torch.cat([model.struct_enc(p[:1]), model.context(p[:1], m[:1])], dim=1))
    assert mods_eval[0].core.shape[0] == 1               # a batch of one works at inference


def test_tile_normalisation_makes_the_output_follow_the_data_gain_and_the_pan_gain():
    torch.manual_seed(0)
    model = build_model("ksdiff", 4, "fusionnet", **SMALL).eval()
    pan, lms, _ = _inputs(1)
    with torch.no_grad():
        y = model(pan, lms)
        assert torch.allclose(model(7.0 * pan, 7.0 * lms), 7.0 * y, rtol=1e-4, atol=1e-6)
        # another PAN gain and offset (another spectral response): matched away per tile
        assert torch.allclose(model(2.5 * pan + 0.3, lms), y, rtol=1e-4, atol=1e-5)


def test_tile_normalise_matches_pan_to_the_intensity_at_the_ms_scale():
    pan, lms, _ = _inputs(2, 64)
    p, m, s = tile_normalise(3 * pan + 1, lms, 4)
    inten = m.mean(1, keepdim=True)
    lp = torch.nn.functional.avg_pool2d
    assert torch.allclose(lp(p, 4).mean((2, 3)), lp(inten, 4).mean((2, 3)), atol=1e-5)
    assert torch.allclose(lp(p, 4).std((2, 3)), lp(inten, 4).std((2, 3)), rtol=1e-2)


def test_sharpness_descriptors_tell_a_sharp_pan_from_a_blurred_one():
    g = torch.Generator().manual_seed(1)
    sharp = torch.rand(1, 1, 64, 64, generator=g)
    blurred = torch.nn.functional.avg_pool2d(torch.nn.functional.pad(sharp, (1, 1, 1, 1), mode="replicate"), 3, 1)
    lms = torch.rand(1, 4, 64, 64, generator=g)
    ds, db = descriptors(sharp, lms, 4), descriptors(blurred, lms, 4)
    assert ds[0, 0] > db[0, 0] + 0.3 and ds[0, 2] > db[0, 2]


def test_torch_degradation_equals_the_engines_wald_decimation(data_dir):
    import rasterio

    with rasterio.open(data_dir / "wv2_ms.tif") as src:
        ms = src.read().astype(np.float32)[:, :32, :32]
    fine = upsample(ms, 4, (128, 128))
    ref, first = decimate(fine, WV2.mtf_ms, 4)
    got = degrade(torch.from_numpy(fine)[None], mtf_kernels(WV2.mtf_ms, 4), 4)[0].numpy()
    # the engine returns only samples whose whole 41-tap support lies inside; compare on those
    r0, c0 = first
    sub = got[:, r0 : r0 + ref.shape[1], c0 : c0 + ref.shape[2]]
    assert np.abs(sub - ref).max() < 1e-3 * ref.mean()


def test_fullres_patches_are_aligned_and_the_lms_itself_is_spectrally_close(data_dir):
    fr = FullResSampler(data_dir, [{"pan": "wv2_pan.tif", "ms": "wv2_ms.tif"}], WV2, patch=32, stride=16)
    pan, lms, ms = fr.batch(6, torch.Generator().manual_seed(0))
    assert pan.shape == (6, 1, 32, 32) and lms.shape == (6, 4, 32, 32) and ms.shape == (6, 4, 8, 8)
    # block means of the LMS reproduce the MS patch under it (same ground, same flips)
    blocks = torch.nn.functional.avg_pool2d(lms, 4)
    assert float(((blocks - ms).abs() / ms.mean()).mean()) < 0.1
    # and a patch shifted by one MS pixel does not
    shifted = float(((blocks[..., 1:, :] - ms[..., :-1, :]).abs() / ms.mean()).mean())
    assert shifted > float(((blocks - ms).abs() / ms.mean()).mean())
    k = mtf_kernels(WV2.mtf_ms, 4)
    assert float(spectral_loss(lms, ms, lms, k, 4, border=1)) < 0.2


def test_fullres_rows_keep_patches_inside_the_training_rows(data_dir):
    """``rows: [0, 0.5]`` draws only patches (with their one-MS-pixel filter border) from the top half."""
    spec = {"pan": "wv2_pan.tif", "ms": "wv2_ms.tif"}
    whole = FullResSampler(data_dir, [spec], WV2, patch=32, stride=16)
    top = FullResSampler(data_dir, [dict(spec, rows=[0.0, 0.5])], WV2, patch=32, stride=16)
    h = whole.scenes[0][2].shape[1]
    assert max(y for _, y, _ in whole.index) + 8 + 1 > h // 2
    assert max(y for _, y, _ in top.index) + 8 + 1 <= h // 2 and len(top) < len(whole)


def test_ms_mix_spreads_a_real_pair_over_another_sensors_bands(data_dir):
    """``ms_mix`` (the WorldView-3 recipe's real-PAN source): the Wald triple and the full-resolution patches of
    the real 4-band fixture come out with the sensor's eight bands, each the stated mix of the pair's, the PAN
    untouched; a matrix of the wrong shape or with a negative weight is refused."""
    wv3 = SENSORS["wv3"]
    from model_core.data.scenes import BAND_MIXES

    assert load_config("wv3_ksdiff_realpan.yaml")["data"]["val"][0]["ms_mix"] == "bgrn_to_wv3"   # by name
    mix = BAND_MIXES["bgrn_to_wv3"]
    four = pair_triple(data_dir, "wv2_pan.tif", "wv2_ms.tif", WV2)   # same scale: its reference is the pair's MS
    eight = pair_triple(data_dir, "wv2_pan.tif", "wv2_ms.tif", wv3, ms_mix="bgrn_to_wv3")
    assert four.gt.shape[0] == 4 and eight.gt.shape[0] == 8 and eight.gt.shape[1:] == four.gt.shape[1:]
    np.testing.assert_allclose(eight.gt[3], (four.gt[1] + four.gt[2]) / 2, rtol=1e-5, atol=1e-6)   # yellow
    np.testing.assert_allclose(eight.gt[7], 0.95 * four.gt[3], rtol=1e-5, atol=1e-6)               # NIR2
    other = pair_triple(data_dir, "wv2_pan.tif", "wv2_ms.tif", wv3, ms_mix=[[1, 0, 0, 0]] * 8)
    np.testing.assert_array_equal(eight.pan, other.pan)   # the PAN is the pair's own, whatever the mix
    fr = FullResSampler(data_dir, [{"pan": "wv2_pan.tif", "ms": "wv2_ms.tif", "ms_mix": mix}], wv3, patch=32)
    pan, lms, ms = fr.batch(2, torch.Generator().manual_seed(0))
    assert lms.shape == (2, 8, 32, 32) and ms.shape == (2, 8, 8, 8)
    torch.testing.assert_close(ms[:, 3], (ms[:, 2] + ms[:, 4]) / 2, rtol=1e-5, atol=1e-6)
    from model_core.tile_int8 import calibration_feeds  # int8 calibration of such a config mixes them too

    feeds = calibration_feeds(str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), "wv3", 2047.0, n=3,
                              reduced=False, ms_mix=mix)
    assert len(feeds) == 3 and all(f["lms"].shape[1] == 8 and f["pan"].shape[1] == 1 for f in feeds)
    for bad in ([[1, 0, 0]] * 8, [[1, 0, 0, -0.1]] + mix[1:]):
        with pytest.raises(ValueError, match="ms_mix"):
            pair_triple(data_dir, "wv2_pan.tif", "wv2_ms.tif", wv3, ms_mix=bad)


def test_model_card_names_the_full_resolution_and_mixed_sources():
    """The card's data statement lists the full-resolution stage's pairs and says when bands were mixed."""
    from model_core.train import data_sources

    rows = data_sources(load_config("wv3_ksdiff_realpan.yaml"))
    fr = [r for r in rows if r["how"].startswith("fullres:")]
    assert [r["name"] for r in fr] == ["wv2/pair1_pan.tif + wv2/pair1_ms.tif"] and "CC BY-SA" in fr[0]["licence"]
    assert all("matrix" in r["how"] for r in rows if r["name"].startswith("wv2/"))
    l8 = data_sources(load_config("rr4_ksdiff_hpm_step1_frl8.yaml"))
    assert any(r["how"].startswith("fullres:") and "ratio 2" in r["how"] and "public domain" in r["licence"]
               for r in l8)


def test_fullres_takes_a_ratio_2_pan_into_a_ratio_4_stage_with_shares(data_dir):
    """``pan_ratio: 2`` (Landsat 8's real PAN in the 4-band stage): the PAN is kept, the MS is Wald-degraded by 2
    more with the sensor's MTF, patches stay aligned; ``share`` splits the draws between sources."""
    l8 = {"pan": "l8_pan.tif", "ms": "l8_ms.tif", "pan_ratio": 2, "match": ["wv2_ms.tif"], "match_pan": ["wv2_pan.tif"]}
    fr = FullResSampler(data_dir, [{"pan": "wv2_pan.tif", "ms": "wv2_ms.tif", "share": 0.25}, dict(l8, share=0.75)],
                        WV2, patch=32, stride=16)
    pan, lms, ms = fr.scenes[1]
    assert ms.shape[0] == 4 and 60 <= ms.shape[1] <= 65 and pan.shape == (4 * ms.shape[1], 4 * ms.shape[2])
    # the LMS's 4x4 block means reproduce the degraded MS under them, and the PAN follows the MS's structure
    blocks = lms.reshape(4, ms.shape[1], 4, ms.shape[2], 4).mean(axis=(2, 4))
    assert np.abs(blocks - ms)[:, 2:-2, 2:-2].mean() < 0.05 * ms.mean()
    pan_c = pan.reshape(ms.shape[1], 4, ms.shape[2], 4).mean(axis=(1, 3))
    assert np.corrcoef(pan_c[2:-2, 2:-2].ravel(), ms[2, 2:-2, 2:-2].ravel())[0, 1] > 0.8
    assert abs(float(pan.mean()) - float(fr.scenes[0][0].mean())) < 0.5 * float(fr.scenes[0][0].mean())  # matched
    drawn = [fr.index[k][0] for k in fr.draw(2000, torch.Generator().manual_seed(0))]
    assert 0.70 < np.mean(drawn) < 0.80
    # without shares: uniform over positions, as before
    uniform = FullResSampler(data_dir, [{"pan": "wv2_pan.tif", "ms": "wv2_ms.tif"}, l8], WV2, patch=32, stride=16)
    counts = np.bincount([uniform.index[k][0] for k in uniform.draw(2000, torch.Generator().manual_seed(0))])
    expected = np.array([len(b) for b in uniform.by_scene]) / len(uniform)
    assert np.allclose(counts / 2000, expected, atol=0.04)
    with pytest.raises(ValueError, match="pan_ratio 3"):
        FullResSampler(data_dir, [dict(l8, pan_ratio=3)], WV2, patch=32)


def test_grow_marks_a_square_without_wrapping():
    from ksdiff_qgis.engine.filters import grow_mask

    m = np.zeros((9, 9), bool)
    m[0, 4] = True
    g = grow_mask(m, 2)
    assert g.sum() == 3 * 5 and g[:3, 2:7].all() and not g[-1].any()


def test_prereduce_makes_the_reference_a_wald_degraded_product(data_dir, tmp_path):
    """``prereduce`` (the self-check's scale): the reference is the source MS degraded once with the MS MTF, every PAN
    the full-resolution simulated PAN degraded once with the PAN MTF, and nodata spreads to every reduced pixel it
    touches."""
    from ksdiff_qgis.engine.filters import wald_degrade
    from model_core.data.scenes import build_triple

    spec = {"kind": "simulated", "ms": "wv2_ms.tif", "pan_weights": [0.2, 0.2, 0.4, 0.2], "pan_blur": 0.0,
            "pan_variants": [{"weights": [0.25, 0.25, 0.25, 0.25], "blur": 1.0}]}
    full = build_triple(data_dir, spec, WV2)
    red = build_triple(data_dir, dict(spec, prereduce=2), WV2)
    assert red.gt.shape == (4, 32, 32) and red.pan.shape == (32, 32) and len(red.pans) == 2
    assert red.info["prereduce"] == 2 and "reduced by 2" in red.name
    inner = (slice(None), slice(6, -6), slice(6, -6))
    assert np.allclose(red.gt[inner], wald_degrade(full.gt, WV2.mtf_ms, 2)[inner], rtol=1e-4, atol=1e-6)
    for p_red, p_full in zip(red.pans, full.pans):
        assert np.allclose(p_red[6:-6, 6:-6], wald_degrade(p_full, WV2.mtf_pan, 2)[6:-6, 6:-6], rtol=1e-4, atol=1e-6)
    # the reduced reference has less one-pixel detail than the source: it is a blurrier product, not a crop
    d = lambda a: float(np.abs(np.diff(a, axis=-1)).mean() / a.mean())  # noqa: E731
    assert d(red.gt) < d(full.gt)
    import rasterio

    with rasterio.open(data_dir / "wv2_ms.tif") as src:   # one nodata pixel near a corner
        profile, arr = src.profile, src.read()
    arr[:, 3, 5] = 0
    with rasterio.open(tmp_path / "holed.tif", "w", **profile) as dst:
        dst.write(arr)
    holed = build_triple(data_dir, dict(spec, ms="holed.tif", root=str(tmp_path), prereduce=2), WV2)
    assert holed.invalid[1, 2] and not holed.invalid[-1, -1] and 0 < holed.invalid.mean() < 0.5


def test_randomised_sampler_draws_variants_and_honours_shares(data_dir):
    t1 = pair_triple(data_dir, "wv2_pan.tif", "wv2_ms.tif", WV2, pan_gains=[0.3, "box"], ms_gains=[0.45])
    t2 = pair_triple(data_dir, "wv2_test_pan.tif", "wv2_test_ms.tif", WV2, allow_held=True)
    assert len(t1.pans) == 3 and len(t1.lmss) == 2
    # a sharper degradation keeps more fine detail than the sensor's MTF
    d = lambda a: float(np.abs(np.diff(a, axis=-1)).mean())  # noqa: E731
    assert d(t1.pans[2]) > d(t1.pans[1]) > d(t1.pans[0])
    t1.share, t2.share = 0.9, 0.1
    s = PatchSampler([t1, t2], 16, 8,
                     randomise={"band_gain": [0.7, 1.4], "offset": 0.05, "quantise": 0.5, "noise": 0.02})
    g = torch.Generator().manual_seed(0)
    idx = torch.multinomial(s.weights, 4000, replacement=True, generator=g)
    from_first = sum(1 for k in idx.tolist() if s.index[k][0] == 0) / 4000
    assert 0.85 < from_first < 0.95
    a = s.batch(4, torch.Generator().manual_seed(5))
    b = s.batch(4, torch.Generator().manual_seed(5))
    assert all(torch.equal(x, y) for x, y in zip(a, b))       # deterministic per generator (exact resume)


def test_ema_warms_up_from_the_current_weights():
    net = torch.nn.Linear(2, 2)
    ema = EMA(net, 0.999)
    with torch.no_grad():
        net.weight.fill_(1.0)
    for _ in range(50):
        ema.update(net)
    # a plain 0.999 EMA would still be 95 % the initial weights after 50 updates
    assert torch.allclose(ema.state["weight"], torch.ones(2, 2), atol=0.05)


def test_adaptive_recipe_trains_every_stage_on_the_fixture(tmp_path, data_dir):
    cfg = load_config("rr4_ksdiff_adaptive.yaml")
    cfg["model"] = dict(SMALL)
    cfg["data"].update(root=str(data_dir), patch=32, batch=4,
                       train=[{"kind": "pair", "pan": "wv2_pan.tif", "ms": "wv2_ms.tif", "pan_gains": [0.3],
                               "share": 1.0}],
                       val=[{"kind": "pair", "pan": "wv2_pan.tif", "ms": "wv2_ms.tif"}],
                       fullres={"patch": 32, "sources": [{"pan": "wv2_pan.tif", "ms": "wv2_ms.tif"}]})
    for st in cfg["stages"]:
        st.update(steps=2, warmup=1)
    cfg["train"].update(val_every=1000, ckpt_every=1000, device="cpu")
    cfg = with_defaults(cfg)
    summary = run(cfg, out_dir=tmp_path, progress=False)
    assert [s["stage"] for s in summary["stages"]] == ["stage1", "stage2", "fullres"]
    assert (tmp_path / "fullres.pt").exists()
    assert all(np.isfinite(s["losses"]).all() for s in summary["stages"])


@pytest.mark.parametrize("name", ["rr4_ksdiff_adaptive.yaml", "rr4_fusionnet_adaptive.yaml"])
def test_adaptive_configs_build(name):
    cfg = load_config(name)
    model = build_model(cfg["method"], 4, cfg["backbone"], **cfg["model"])
    assert model.margin > 0


def test_adapt_fine_tunes_on_one_scene_and_the_plugin_takes_the_model(tmp_path, data_dir, qgis_app):
    """python -m model_core adapt: a checkpoint + a user's scene -> ONNX + card that MODEL accepts."""
    import processing
    from osgeo import gdal

    from model_core.__main__ import main

    cfg = load_config("rr4_ksdiff_adaptive.yaml")
    cfg["model"] = dict(SMALL)
    cfg["data"].update(root=str(data_dir), patch=32, batch=4,
                       train=[{"kind": "pair", "pan": "wv2_pan.tif", "ms": "wv2_ms.tif"}], val=[],
                       fullres={"patch": 32, "sources": [{"pan": "wv2_pan.tif", "ms": "wv2_ms.tif"}]})
    for st in cfg["stages"]:
        st.update(steps=1, warmup=1)
    cfg["train"].update(val_every=1000, ckpt_every=1000, device="cpu")
    run(with_defaults(cfg), out_dir=tmp_path / "run", progress=False)
    onnx_path = tmp_path / "scene.onnx"
    # the user's own scene: the test pair (never a training scene of the checkpoint above)
    pan, ms = data_dir / "wv2_test_pan.tif", data_dir / "wv2_test_ms.tif"
    assert main(["adapt", "--checkpoint", str(tmp_path / "run" / "fullres.pt"), "--pan", str(pan), "--ms", str(ms),
                 "--out", str(onnx_path), "--steps", "2", "--patch", "32", "--keep-worse"]) == 0
    card = __import__("json").loads(onnx_path.with_suffix(".json").read_text())
    assert card["training"]["adapted_from"].endswith("fullres.pt") and card["sensor"] == "wv2"
    out = tmp_path / "fused.tif"
    res = processing.run("ksdiff:pansharpen", {"PAN": str(pan), "MS": str(ms), "SENSOR": "wv2", "METHOD": "ksdiff",
                                                "MODEL": str(onnx_path), "OUTPUT": str(out)})
    ds = gdal.Open(res["OUTPUT"])
    assert ds.RasterCount == 4 and ds.RasterXSize == gdal.Open(str(pan)).RasterXSize


def test_mirror_margin_makes_a_patch_look_like_a_raster_edge_tile(data_dir):
    """``randomise.mirror_margin``: some patches get the plugin's padding beyond a raster edge — the first ``w``
    rows (and sometimes columns) mirror the next ``w``, in PAN, LMS and reference alike, ``w`` a multiple of the
    ratio; the draws stay deterministic per generator, and without the option the batches are unchanged."""
    t = pair_triple(data_dir, "wv2_pan.tif", "wv2_ms.tif", WV2)
    base = {"band_gain": [1.0, 1.0], "offset": 0.0, "quantise": 0.0, "noise": 0.0}
    s = PatchSampler([t], 32, 8, augment=False, randomise={**base, "mirror_margin": 1.0}, align=4)
    pan, lms, gt = (x.numpy() for x in s.batch(6, torch.Generator().manual_seed(3)))
    for arrs in zip(pan, lms, gt):
        # the mirror's width: the first row equal to its mirror partner, for w = 4, 8
        widths = [w for w in (4, 8) if all(np.array_equal(a[:, :w], a[:, 2 * w - 1:w - 1:-1]) for a in arrs)]
        assert widths, "every patch holds a mirrored margin"
    plain = PatchSampler([t], 32, 8, augment=False, randomise=base, align=4)
    a = plain.batch(4, torch.Generator().manual_seed(3))
    b = PatchSampler([t], 32, 8, augment=False, randomise={**base, "mirror_margin": 0.0}, align=4).batch(
        4, torch.Generator().manual_seed(3))
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    c = s.batch(6, torch.Generator().manual_seed(3))
    assert all(np.array_equal(x.numpy(), y) for x, y in zip(c, (pan, lms, gt)))


def _crop_pair(data_dir, tmp_path, ms_side: int) -> tuple[Path, Path]:
    """The test pair cut to its first ``ms_side``² MS pixels (and the PAN under them): a user's small AOI."""
    from model_core.rasters import read, write_geotiff

    out = []
    for kind, side in (("pan", ms_side * 4), ("ms", ms_side)):
        r = read(str(data_dir / f"wv2_test_{kind}.tif"), (0, 0, side, side))
        out.append(Path(write_geotiff(str(tmp_path / f"aoi{ms_side}_{kind}.tif"), r.data, r.transform, r.crs, 0)))
    return out[0], out[1]


def test_adapt_takes_a_small_scene_on_smaller_patches_and_refuses_a_tiny_one(tmp_path, data_dir, monkeypatch):
    """A clipped AOI smaller than adapt's 64² patches still adapts, on the largest patches that fit (multiples of
    the ratio); a scene without one 16² patch gets a clear error before any training. Its int8 variant is then
    calibrated on the training sources (the scene holds no 128² calibration patch)."""
    from model_core import adapt, export, tile_int8

    pan, ms = _crop_pair(data_dir, tmp_path, 24)
    wald, full = adapt.samplers(pan, ms, "wv2", 64)
    assert wald.patch % 4 == 0 and adapt.MIN_PATCH <= wald.patch <= 24   # reference (MS) pixels of the scene
    assert full.patch == 64   # PAN pixels: 96 of them
    pan, ms = _crop_pair(data_dir, tmp_path, 8)
    with pytest.raises(ValueError, match="too small to adapt on"):
        adapt.samplers(pan, ms, "wv2", 64)
    monkeypatch.setattr(tile_int8, "training_feeds", lambda cfg: ["training patches"])
    assert export.int8_calibration({"sensor": "wv2"}, 2047.0, (str(pan), str(ms)))[0] == ["training patches"]


def test_adapt_starts_from_a_bundled_model_without_training(tmp_path, data_dir):
    """`adapt --sensor wv2` without a checkpoint fine-tunes the bundled wv2 network (its shipped weights)."""
    import json

    from model_core.__main__ import main
    from model_core.weights import WEIGHTS_DIR

    out = tmp_path / "mine.onnx"
    assert main(["adapt", "--sensor", "wv2", "--pan", str(data_dir / "wv2_test_pan.tif"), "--ms",
                 str(data_dir / "wv2_test_ms.tif"), "--out", str(out), "--steps", "1", "--patch", "32",
                 "--keep-worse"]) == 0
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["sensor"] == "wv2" and card["training"]["adapted_from"].startswith(str(WEIGHTS_DIR))
    with pytest.raises(SystemExit, match="--checkpoint, or --sensor"):
        main(["adapt", "--pan", "p.tif", "--ms", "m.tif", "--out", str(out)])


def test_adapt_trains_on_the_scene_with_the_checkpoints_pan_and_ms_variants(data_dir):
    """adapt's Wald patches of the scene get the PAN-sharpness / MS-MTF variants and the randomisation of the
    checkpoint's real-pair training source: on the scene's one Wald version alone, the network learned that version's
    PAN and drew a one-pixel grid on the real, sharper PAN (pair 2 at 1:1, docs/VALIDATION.md 16:29 UTC)."""
    from model_core import adapt

    cfg = load_config(None, "wv2")  # the bundled model's config
    variants = adapt.pair_variants(cfg)
    assert variants == {"pan_gains": [0.2, 0.3, 0.45, "box"], "ms_gains": [0.25, 0.45]}
    assert adapt.adapt_config(cfg, "wv2", 10, 1e-4, 64)["data"]["randomise"] == cfg["data"]["randomise"]
    wald, _ = adapt.samplers(data_dir / "wv2_test_pan.tif", data_dir / "wv2_test_ms.tif", "wv2", 32, variants,
                             cfg["data"]["randomise"])
    assert len(wald.triples[0].pans) == 1 + 4 and len(wald.triples[0].lmss) == 1 + 2
    assert wald.randomise == cfg["data"]["randomise"]
    assert adapt.pair_variants({"data": {"train": [{"kind": "simulated", "ms": "x.tif"}]}}) == {}


def _adapt_args(data_dir, out, *more) -> list[str]:
    """One step, written whatever the self-check says of it (what these tests check is not the adaptation)."""
    return ["adapt", "--pan", str(data_dir / "wv2_test_pan.tif"), "--ms", str(data_dir / "wv2_test_ms.tif"),
            "--out", str(out), "--steps", "1", "--patch", "32", "--keep-worse", *more]


def test_adapted_card_keeps_the_base_models_data_and_licences_and_records_both_runs(tmp_path, data_dir):
    """The card of a model adapted from the bundled wv2 network keeps that network's training data and licences
    (WorldView-2 CC BY-SA 4.0, Copernicus Sentinel-2) and adds the scene; its steps and seconds count both runs, its
    git_revision is the adapting one and ``base`` keeps the bundled model's. Before 2026-12-07 it listed the scene
    only, the adaptation's steps only and the base's revision."""
    import json

    from ksdiff_qgis.engine.model_card import bundled_cards, load_card
    from model_core.__main__ import main
    from model_core.train import git_revision

    out = tmp_path / "mine.onnx"
    assert main(_adapt_args(data_dir, out, "--sensor", "wv2")) == 0
    training = json.loads(out.with_suffix(".json").read_text())["training"]
    bundled = load_card(bundled_cards()["wv2"]).data["training"]
    assert training["data"][:-1] == bundled["data"] and "the user's own scene" == training["data"][-1]["licence"]
    licences = " ".join(d["licence"] for d in training["data"])
    assert "CC BY-SA 4.0" in licences and "Copernicus Sentinel" in licences
    base = {k: v for k, v in training["base"].items() if k not in ("model", "metrics")}
    assert base == {k: bundled[k] for k in ("stages", "steps", "seconds", "git_revision")}
    assert training["base"]["model"] == "wv2.onnx"
    assert training["steps"] == bundled["steps"] + 1 and training["adaptation"]["steps"] == 1
    assert training["seconds"] >= bundled["seconds"] and training["stages"] == [*bundled["stages"], "adapt"]
    assert training["git_revision"] == git_revision() and training["config"] == bundled["config"]


def test_adapt_from_an_unfinished_checkpoint_warns_and_its_card_says_so(tmp_path, data_dir, small_cfg, capsys):
    """As export does: a checkpoint before the end of its run (here stage1_last.pt after 1 step) gets a warning before
    any step and an ``unfinished`` note in the card, which describes those weights (stage 1, 1 step, the run's data);
    adapt said nothing before 2026-12-07."""
    import json

    from model_core.__main__ import main

    cfg = small_cfg("run")
    run(cfg, max_steps=1, progress=False)
    out, ck = tmp_path / "early.onnx", Path(cfg["train"]["out_dir"]) / "stage1_last.pt"
    assert main(_adapt_args(data_dir, out, "--checkpoint", str(ck))) == 0
    assert "adapt: warning: adapted from stage1_last.pt: stage stage1 at step 1" in capsys.readouterr().err
    training = json.loads(out.with_suffix(".json").read_text())["training"]
    assert "stage1_last.pt: stage stage1 at step 1, not the end of the run" in training["unfinished"]
    assert training["base"]["stages"] == ["stage1"] and training["steps"] == 1 + 1
    assert {d["name"] for d in training["data"][:-1]} == {"wv2_pan.tif + wv2_ms.tif"}   # its train and fullres data


def test_adapt_writes_only_onnx_files_and_takes_threads(tmp_path, data_dir, capsys):
    """--out fused.tif or a name without extension: refused before any step (an ONNX file was written under it, which
    the plugin's MODEL then refused); --threads sets torch's threads as train's does (adapt had none)."""
    from model_core.__main__ import main

    for name in ("fused.tif", "mymodel"):
        assert main(_adapt_args(data_dir, tmp_path / name, "--sensor", "wv2")) == 2
        assert "give the model's file name, ending in .onnx" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
    torch.set_num_threads(2)
    try:
        assert main(_adapt_args(data_dir, tmp_path / "mine.ONNX", "--sensor", "wv2", "--threads", "1")) == 0
        assert torch.get_num_threads() == 1 and (tmp_path / "mine.json").exists()
    finally:
        torch.set_num_threads(1)


def test_ctrl_c_during_adapt_says_nothing_was_kept_in_one_line(tmp_path, data_dir, monkeypatch, capsys):
    """QA 49a: Ctrl-C during adapt printed a traceback ending "model_core.train.Interrupted: interrupted in stage
    fullres at step 4", status 1 (train says it in one line, 130). Now one line of adapt's own (nothing kept, its
    temporary folder removed, the same command starts again from the first step), status 130, nothing left."""
    import tempfile

    from model_core import train
    from model_core.__main__ import main

    work = tmp_path / "tmp"
    work.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(work))

    def ctrl_c(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(train, "compute_loss", ctrl_c)
    out = tmp_path / "mine.onnx"
    try:
        assert main(_adapt_args(data_dir, out, "--sensor", "wv2")) == 130
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C ended adapt with a KeyboardInterrupt traceback")
    err = capsys.readouterr().err
    assert "adapt: interrupted; nothing was kept" in err and "temporary folder removed" in err
    assert "the same command starts again from the first step" in err and "the same command resumes" not in err
    assert not list(work.glob("ksdiff_adapt_*")) and not out.exists() and not out.with_suffix(".json").exists()
