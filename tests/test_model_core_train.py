"""model_core data and training on the real fixtures: loss goes down for every stage, exact resume,
stage 1 -> stage 2 hand-over, held-apart data refused, nodata patches skipped, PanCollection reader."""
from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import yaml

from ksdiff_qgis.engine.sensors import SENSORS
from model_core.config import with_defaults
from model_core.data import PanCollection, PatchSampler, pair_triple, valid_positions
from model_core.train import build_samplers, compute_loss, load_checkpoint, run, step_generator

torch.set_num_threads(1)


def fixture_cfg(data_dir, method: str, backbone: str = "fusionnet", steps=(2, 2), **train) -> dict:
    st = {"ksdiff": [{"name": "stage1", "steps": steps[0], "lr": 2e-3, "warmup": 1, "ema": 0.9},
                     {"name": "stage2", "steps": steps[1], "lr": 2e-3, "warmup": 1, "ema": 0.9}],
          "ssdiff": [{"name": "main", "steps": steps[0], "lr": 2e-3, "warmup": 1, "ema": 0.9},
                     {"name": "finetune", "steps": steps[1], "lr": 1e-3, "warmup": 1, "alternate_every": 1}]}
    model = {"sample_steps": 2} if method == "ssdiff" else {}
    if method == "ksdiff":
        model = {"dim": 32, "tokens": 4, "struct_tokens": 4, "sample_steps": 2, "enc_widths": [8, 16, 32]}
    cfg = {"sensor": "wv2", "method": method, "backbone": backbone, "seed": 3, "model": model,
           "data": {"root": str(data_dir), "patch": 32, "stride": 8, "batch": 4,
                    "train": [{"kind": "pair", "pan": "wv2_pan.tif", "ms": "wv2_ms.tif"}],
                    "val": [{"kind": "pair", "pan": "wv2_pan.tif", "ms": "wv2_ms.tif"}]},
           "stages": st.get(method, [{"name": "main", "steps": steps[0], "lr": 2e-3, "warmup": 1}]),
           "train": {"val_every": 1000, "val_batches": 1, "ckpt_every": 1000, "threads": 1, "device": "cpu", **train}}
    return with_defaults(cfg)


@pytest.fixture(scope="module")
def samplers(data_dir):
    return build_samplers(fixture_cfg(data_dir, "fusionnet"))


def _fixed_loss(model, cfg, stage, train) -> float:
    """Loss on fixed batches with fixed diffusion noise (comparable before/after training)."""
    model.eval()
    with torch.no_grad():
        vals = []
        for k in range(3):
            g = step_generator(99, 0, k)
            pan, lms, gt = train.batch(8, g)
            vals.append(float(compute_loss(model, cfg["method"], stage, pan, lms, gt, g)[0]))
    model.train()
    return sum(vals) / len(vals)


@pytest.mark.parametrize("method,stage_idx", [("fusionnet", 0), ("pannet", 0), ("ksdiff", 0), ("ksdiff", 1),
                                              ("ssdiff", 0), ("ssdiff", 1)])
def test_few_steps_lower_the_loss(tmp_path, data_dir, samplers, method, stage_idx):
    from model_core.nets import build_model
    from model_core.train import train_stage

    steps = 12
    cfg = fixture_cfg(data_dir, method, "pannet" if method == "pannet" else "fusionnet", steps=(steps, steps))
    torch.manual_seed(0)
    model = build_model(cfg["method"], 4, cfg["backbone"], **cfg["model"])
    stage = cfg["stages"][stage_idx]
    before = _fixed_loss(model, cfg, stage, samplers[0])
    train_stage(model, cfg, stage_idx, samplers[0], None, tmp_path, progress=False)
    after = _fixed_loss(model, cfg, stage, samplers[0])
    assert after < before, (method, stage["name"], before, after)


@pytest.mark.parametrize("method", ["fusionnet", "ksdiff"])
def test_resume_gives_identical_weights(tmp_path, data_dir, samplers, method):
    cfg = fixture_cfg(data_dir, method, steps=(4, 4), ckpt_every=2)
    run(cfg, tmp_path / "straight", progress=False, samplers=samplers)
    run(cfg, tmp_path / "resumed", max_steps=2, progress=False, samplers=samplers)  # interrupted after 2 steps
    first = cfg["stages"][0]["name"]
    assert load_checkpoint(tmp_path / "resumed" / f"{first}_last.pt")["step"] == 2
    run(cfg, tmp_path / "resumed", progress=False, samplers=samplers)
    last = cfg["stages"][-1]["name"]
    a = load_checkpoint(tmp_path / "straight" / f"{last}.pt")
    b = load_checkpoint(tmp_path / "resumed" / f"{last}.pt")
    for key in ("model", "ema"):
        if a[key] is None:
            continue
        for k in a[key]:
            assert torch.equal(a[key][k], b[key][k]), (key, k)


def test_max_steps_run_again_trains_that_many_more_and_finishes_a_stage_only_on_its_last_step(tmp_path, data_dir,
                                                                                              samplers):
    """`train --max-steps N` twice: N more steps each time (the second run trained nothing and wrote the stage's
    final checkpoint one step short of it, marked done, before 2026-12-07)."""
    import json

    cfg = fixture_cfg(data_dir, "ksdiff", steps=(3, 2))
    run(cfg, tmp_path / "straight", progress=False, samplers=samplers)
    out = tmp_path / "smoke"
    assert [s["steps"] for s in run(cfg, out, max_steps=2, progress=False, samplers=samplers)["stages"]] == [2]
    assert not (out / "stage1.pt").exists()
    second = run(cfg, out, max_steps=2, progress=False, samplers=samplers)
    final, last = load_checkpoint(out / "stage1.pt"), load_checkpoint(out / "stage1_last.pt")
    assert final["step"] == last["step"] == 3 and final["done"]
    straight = load_checkpoint(tmp_path / "straight" / "stage1.pt")
    assert all(torch.equal(straight["ema"][k], final["ema"][k]) for k in final["ema"])   # its third step trained
    assert [s["steps"] for s in second["stages"]] == [3, 1]   # the last step of stage 1, then the first of stage 2
    assert not (out / "stage2.pt").exists()
    assert [s["steps"] for s in run(cfg, out, max_steps=2, progress=False, samplers=samplers)["stages"]] == [2]
    log = [json.loads(line)["stage"] for line in (out / "log.jsonl").read_text().splitlines()]
    assert log == ["stage1"] * 3 + ["stage2"] * 2 and load_checkpoint(out / "stage2.pt")["step"] == 2
    assert run(cfg, out, max_steps=2, progress=False, samplers=samplers)["stages"] == []   # finished: nothing more


def test_stage1_checkpoint_loads_into_stage2(tmp_path, data_dir, samplers):
    cfg = fixture_cfg(data_dir, "ksdiff", steps=(3, 3))
    run(cfg, tmp_path, progress=False, samplers=samplers)
    s1, s2 = load_checkpoint(tmp_path / "stage1.pt"), load_checkpoint(tmp_path / "stage2.pt")
    assert s1["stage"] == "stage1" and s2["stage"] == "stage2"
    start = s1["ema"]  # stage 2 starts from stage 1's EMA weights ...
    for k, v in s2["model"].items():
        if k.startswith("prior_enc."):  # ... keeps the stage-1 encoder frozen ...
            assert torch.equal(v, start[k]), k
    assert any(not torch.equal(v, start[k]) for k, v in s2["model"].items() if k.startswith("denoiser."))
    # and an explicit stage-1 checkpoint can seed a fresh stage-2-only run
    cfg2 = dict(cfg, stages=[cfg["stages"][1]], init_from=str(tmp_path / "stage1.pt"))
    run(cfg2, tmp_path / "s2only", progress=False, samplers=samplers)
    assert (tmp_path / "s2only" / "stage2.pt").exists()


def test_wald_triples_on_real_fixtures(data_dir):
    wv2 = pair_triple(data_dir, "wv2_pan.tif", "wv2_ms.tif", SENSORS["wv2"])
    assert wv2.pan.shape == wv2.gt.shape[1:] == (64, 64) and wv2.lms.shape == (4, 64, 64)
    # the reference is the real MS; LMS is a degraded-then-upsampled version of it: close, not equal
    err = np.abs(wv2.lms - wv2.gt).mean() / wv2.gt.mean()
    assert 0.005 < err < 0.3
    l8 = pair_triple(data_dir, "l8_pan.tif", "l8_ms.tif", SENSORS["landsat8"])  # grids half a PAN pixel apart
    assert l8.pan.shape == l8.gt.shape[1:] and not l8.invalid.any()
    corr = np.corrcoef(l8.pan.ravel(), l8.gt.mean(0).ravel())[0, 1]
    assert corr > 0.8



def test_landsat_pan_in_a_ratio4_triple_with_matched_radiometry(data_dir):
    """Landsat 8's real PAN (ratio 2) in a ratio-4 WorldView-2 triple: PAN degraded by 2 onto the MS grid,
    MS by 4; radiometry mapped to the WorldView-2 fixture (1st percentile and mean per band)."""
    wv2 = SENSORS["wv2"]
    t = pair_triple(data_dir, "l8_pan.tif", "l8_ms.tif", wv2, pan_ratio=2,
                    match=["wv2_ms.tif"], match_pan=["wv2_pan.tif"], pan_gains=["box"])
    h, w = t.gt.shape[1:]
    assert t.pan.shape == (h, w) and h % 4 == 0 and w % 4 == 0 and h >= 120 and not t.invalid.all()
    ok = ~t.invalid
    # the MS now has the WorldView-2 fixture's band means (not Landsat's ~9000 DN with its haze offset)
    ref = pair_triple(data_dir, "wv2_pan.tif", "wv2_ms.tif", wv2)
    means, ref_means = t.gt[:, ok].mean(1), (ref.gt[:, ~ref.invalid]).mean(1)
    assert np.allclose(means, ref_means, rtol=0.15)
    # the PAN is Landsat's own, on the GT grid: strongly correlated with the visible bands
    assert np.corrcoef(t.pan[ok], t.gt[:3, ok].mean(0))[0, 1] > 0.8
    # LMS is the MS degraded by 4: smoother than the GT, and the PAN variants keep the grid
    assert np.abs(np.diff(t.lms, axis=-1)).mean() < 0.7 * np.abs(np.diff(t.gt, axis=-1)).mean()
    assert all(p.shape == (h, w) for p in t.pans) and len(t.pans) == 2

def test_nodata_patches_skipped(data_dir):
    t = pair_triple(data_dir, "wv2_nodata_pan.tif", "wv2_nodata_ms.tif", SENSORS["wv2"])
    assert t.invalid.any()
    for y, x in valid_positions(t, 8, 2):
        y0, x0 = max(0, y - t.margin), max(0, x - t.margin)
        assert not t.invalid[y0 : y + 8 + t.margin, x0 : x + 8 + t.margin].any()
    full = valid_positions(pair_triple(data_dir, "wv2_pan.tif", "wv2_ms.tif", SENSORS["wv2"]), 8, 2)
    assert len(valid_positions(t, 8, 2)) < len(full)


def test_test_scene_refused_by_construction(tmp_path, data_dir):
    (tmp_path / "wv2").mkdir()
    for kind in ("pan", "ms"):
        shutil.copy(data_dir / f"wv2_{kind}.tif", tmp_path / "wv2" / f"pair3_{kind}.tif")
    with pytest.raises(ValueError, match="held-apart"):
        pair_triple(tmp_path, "wv2/pair3_pan.tif", "wv2/pair3_ms.tif", SENSORS["wv2"])
    ok = pair_triple(tmp_path, "wv2/pair3_pan.tif", "wv2/pair3_ms.tif", SENSORS["wv2"], allow_held=True)
    assert ok.gt.shape == (4, 64, 64)


def test_augmented_batches_are_consistent(samplers):
    train = samplers[0]
    assert isinstance(train, PatchSampler)
    pan, lms, gt = train.batch(6, step_generator(0, 0, 5))
    pan2, lms2, gt2 = train.batch(6, step_generator(0, 0, 5))
    assert torch.equal(gt, gt2) and pan.shape == (6, 1, 32, 32) and gt.shape == (6, 4, 32, 32)
    # PAN and GT are transformed together: their correlation stays high
    c = np.corrcoef(pan.flatten().numpy(), gt.mean(1).flatten().numpy())[0, 1]
    assert c > 0.8


def test_pancollection_reader(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "train_wv3.h5"
    with h5py.File(path, "w") as f:
        f["gt"] = rng.uniform(0, 2047, (3, 8, 64, 64))
        f["ms"] = rng.uniform(0, 2047, (3, 8, 16, 16))
        f["lms"] = rng.uniform(0, 2047, (3, 8, 64, 64))
        f["pan"] = rng.uniform(0, 2047, (3, 1, 64, 64))
    pc = PanCollection(path, 2047.0)
    assert len(pc) == 3 and pc.has_gt and pc.bands == 8
    pan, lms, gt = pc.batch(2, torch.Generator().manual_seed(0))
    assert pan.shape[1:] == (1, 64, 64) and gt.shape[1:] == (8, 64, 64) and float(gt.max()) <= 1.0


def test_ssdiff_finetune_alternates_branches(tmp_path, data_dir, samplers):
    from model_core.nets import build_model
    from model_core.train import train_stage

    cfg = fixture_cfg(data_dir, "ssdiff", steps=(1, 1))
    torch.manual_seed(0)
    model = build_model("ssdiff", 4, **cfg["model"])
    spa = [p.detach().clone() for p in model.net.branch_parameters("spatial")]
    spe = [p.detach().clone() for p in model.net.branch_parameters("spectral")]
    other = {n: p.detach().clone() for n, p in model.named_parameters() if not n.startswith(("net.spa_", "net.spe_"))}
    train_stage(model, cfg, 1, samplers[0], None, tmp_path, progress=False)  # step 0 trains the spatial branch
    assert any(not torch.equal(a, b) for a, b in zip(spa, model.net.branch_parameters("spatial")))
    assert all(torch.equal(a, b) for a, b in zip(spe, model.net.branch_parameters("spectral")))
    assert all(torch.equal(other[n], p) for n, p in model.named_parameters() if n in other)


def test_ksdiff_starts_from_a_trained_bare_backbone(tmp_path, data_dir, samplers):
    """backbone_from: the bare backbone is trained first when missing, and KSDiff (zero kernel update at
    initialisation) then starts with exactly the backbone's output."""
    import yaml

    from model_core.nets import build_model
    from model_core.train import load_pretrained_backbone

    base = fixture_cfg(data_dir, "fusionnet", steps=(3, 0))
    base["train"]["out_dir"] = str(tmp_path / "bare")
    (tmp_path / "bare.yaml").write_text(yaml.safe_dump(base))
    ks = build_model("ksdiff", 4, "fusionnet", dim=32, tokens=4, struct_tokens=4, sample_steps=2,
                     enc_widths=[8, 16, 32])
    final = load_pretrained_backbone(ks, str(tmp_path / "bare.yaml"), "cpu", progress=False)
    assert final.endswith("main.pt") and (tmp_path / "bare" / "main.pt").exists()
    bare = build_model("fusionnet", 4)
    ck = load_checkpoint(final)
    bare.load_state_dict(ck["ema"] or ck["model"])
    pan, lms, _ = samplers[1].batch(2, step_generator(5, 0, 0))
    ks.eval(), bare.eval()
    with torch.no_grad():
        assert torch.allclose(ks(pan, lms), bare(pan, lms), atol=1e-6)
    with pytest.raises(ValueError, match="not a bare backbone"):
        (tmp_path / "ks.yaml").write_text(yaml.safe_dump(fixture_cfg(data_dir, "ksdiff")))
        load_pretrained_backbone(ks, str(tmp_path / "ks.yaml"), "cpu", progress=False)


def test_a_stage_freezes_what_it_names(tmp_path, data_dir, samplers):
    """stage2 with ``freeze``: only the prior (condition encoder, denoiser) moves; the kernel path and backbone keep
    their stage-1 weights exactly (the recipe's stage 2 otherwise trains them too)."""
    from model_core.nets import build_model
    from model_core.train import train_stage

    cfg = fixture_cfg(data_dir, "ksdiff", steps=(1, 2))
    cfg["stages"][1]["freeze"] = ["kgen.", "struct_enc.", "backbone."]
    torch.manual_seed(0)
    model = build_model("ksdiff", 4, **cfg["model"])
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    train_stage(model, cfg, 1, samplers[0], None, tmp_path, progress=False)
    moved = {n.split(".")[0] for n, p in model.named_parameters() if not torch.equal(before[n], p)}
    assert moved and moved <= {"cond_enc", "denoiser"}, moved


# ------------------------------------------------------------------ training on the output after the step
def test_torch_step_equals_the_plugins_step_inside_the_patch(wv2_triple_arrays):
    """``losses.consistency_step`` on a 64-px patch of a real fusion is the engine's step on the whole image
    (fused pixels beyond the 8-px border; the step itself moves them by ~100x more)."""
    from ksdiff_qgis.engine import consistency
    from ksdiff_qgis.engine.filters import upsample
    from model_core.losses import consistency_step, mtf_kernels

    ms, fused = wv2_triple_arrays
    wv2 = SENSORS["wv2"]
    whole = consistency.project(fused, ms, (0, 0), wv2.mtf_ms, 4)
    lms = upsample(ms, 4, fused.shape[1:])
    y, x, p = 64, 96, 64
    patch = consistency_step(torch.from_numpy(fused[None, :, y:y + p, x:x + p]),
                             torch.from_numpy(lms[None, :, y:y + p, x:x + p]), mtf_kernels(wv2.mtf_ms, 4), 4)[0]
    inner = np.s_[:, 8:-8, 8:-8]
    diff = np.abs(patch.numpy() - whole[:, y:y + p, x:x + p])[inner].mean()
    moved = np.abs(fused[:, y:y + p, x:x + p] - whole[:, y:y + p, x:x + p])[inner].mean()
    assert diff < 0.01 * moved


def colour_drift(rows: int) -> np.ndarray:
    """(4, rows, 1) factors of a slow per-band colour drift down the image: an MS-scale error the step repairs."""
    yy = np.linspace(0, 3, rows, dtype=np.float32)[:, None]
    return 1 + 0.05 * np.sin(yy + np.arange(4, dtype=np.float32)[:, None, None])


@pytest.fixture(scope="module")
def wv2_triple_arrays(wv2_arrays):
    """The real WorldView-2 fixture's MS and a fusion of it with a low-pass error the step should remove."""
    from ksdiff_qgis.engine.filters import upsample

    pan, ms = wv2_arrays
    lms = upsample(ms, 4, pan.shape)
    fused = lms + (pan - pan.mean()) * (lms.mean((1, 2), keepdims=True) / pan.mean())   # a crude injection
    return ms, (fused * colour_drift(pan.shape[0])).astype(np.float32)


def test_step_loss_ignores_what_the_step_repairs(data_dir):
    """With ``train.consistency_loss`` an output whose only error is a slow colour drift scores far better
    than without (the step repairs the drift), and patches start on the MS grid."""
    from model_core.train import StepLoss

    cfg = fixture_cfg(data_dir, "fusionnet", consistency_loss={"border": 8, "plain_weight": 0.0})
    cfg["data"]["stride"] = 4
    train, _ = build_samplers(cfg)
    assert all((p % 4 == 0).all() for p in train.positions)
    pan, lms, gt = train.batch(4, step_generator(0, 0, 0))
    drifted = gt * torch.from_numpy(colour_drift(gt.shape[-2]))
    step_loss = StepLoss(cfg["train"]["consistency_loss"], SENSORS["wv2"].mtf_ms, 4)
    plain = float(compute_loss(_Const(drifted), "fusionnet", cfg["stages"][0], pan, lms, gt, None, True)[0])
    stepped = float(compute_loss(_Const(drifted), "fusionnet", cfg["stages"][0], pan, lms, gt, None, True,
                                 step_loss)[0])
    assert stepped < 0.5 * plain
    cfg["data"]["patch"] = 30
    with pytest.raises(ValueError, match="multiple of the ratio"):
        build_samplers(cfg)


class _Const(torch.nn.Module):
    """A 'network' that returns a fixed output."""

    def __init__(self, out: torch.Tensor) -> None:
        super().__init__()
        self.out = out

    def forward(self, pan, lms):
        return self.out


def test_sam_loss_is_the_sam_index_and_joins_the_step_loss(wv2_triple_arrays, data_dir):
    """``losses.sam_loss`` is the engine's SAM index (in radians) on a real fusion; with ``sam_weight`` the step
    loss charges an output whose spectra are turned, not one that is only brighter."""
    from ksdiff_qgis.engine.metrics import sam
    from model_core.losses import sam_loss
    from model_core.train import StepLoss

    ms, fused = wv2_triple_arrays
    ref = (fused / colour_drift(fused.shape[1]) ** 6).astype(np.float32)   # most angles far above the 0.8 deg floor
    expected = np.radians(sam(fused, ref))
    assert expected > 0.05
    got = float(sam_loss(torch.from_numpy(fused[None]), torch.from_numpy(ref[None])))
    assert got == pytest.approx(expected, rel=0.02)

    cfg = fixture_cfg(data_dir, "fusionnet", consistency_loss={"border": 8, "plain_weight": 0.0})
    train, _ = build_samplers(cfg)
    pan, lms, gt = train.batch(4, step_generator(0, 0, 0))
    # fine-scale detail (the step keeps it): in every band alike, or with opposite signs in Blue and Red
    detail = torch.sign(pan - torch.nn.functional.avg_pool2d(pan, 5, 1, 2, count_include_pad=False)) * 0.2
    brighter = gt * (1 + detail)
    turned = gt * (1 + detail * torch.tensor([1.0, 0.0, -1.0, 0.0])[:, None, None])
    plain = StepLoss({"border": 8, "plain_weight": 0.0}, SENSORS["wv2"].mtf_ms, 4)
    with_sam = StepLoss({"border": 8, "plain_weight": 0.0, "sam_weight": 0.5}, SENSORS["wv2"].mtf_ms, 4)
    l1_turned = float(plain(turned, gt, lms, True))
    brighter = gt * (1 + detail * l1_turned / float(plain(brighter, gt, lms, True)))   # the same L1 error
    l1_brighter = float(plain(brighter, gt, lms, True))
    assert l1_brighter == pytest.approx(l1_turned, rel=0.1)
    extra_turned = float(with_sam(turned, gt, lms, True)) - l1_turned
    extra_brighter = float(with_sam(brighter, gt, lms, True)) - l1_brighter
    assert extra_turned > 2 * extra_brighter


def test_validation_patches_can_differ_from_the_training_patches(data_dir):
    """``data.val_patch``: larger training patches than the validation pair's valid area allows (a pair beside a
    nodata strip) keep validation on patches that fit."""
    cfg = fixture_cfg(data_dir, "fusionnet")
    cfg["data"]["val_patch"] = 16
    train, val = build_samplers(cfg)
    assert (train.patch, val.patch) == (32, 16)
    assert build_samplers(fixture_cfg(data_dir, "fusionnet"))[1].patch == 32


def test_a_run_folder_resumes_only_its_own_config(small_cfg):
    """Re-running another config (a new rate, another seed) into a folder that holds checkpoints is refused: it
    skipped the finished stages and rewrote config.json over checkpoints it had not trained. The same config resumes,
    and where it computes (device, threads) may change; the log holds exactly the checkpointed steps."""
    import json
    from pathlib import Path

    from model_core.train import run

    cfg = small_cfg("run")
    run(cfg, progress=False)
    out = Path(cfg["train"]["out_dir"])
    lines = (out / "log.jsonl").read_text().splitlines()
    assert len(lines) == sum(st["steps"] for st in cfg["stages"])
    assert run({**cfg, "train": {**cfg["train"], "threads": 2}}, progress=False)["stages"] == []   # resumed: done
    other = json.loads(json.dumps(cfg))
    other["stages"][0]["lr"] *= 10
    other["seed"] += 1
    with pytest.raises(ValueError, match=r"another config .*seed.*stages"):
        run(other, progress=False)
    assert json.loads((out / "config.json").read_text())["seed"] == cfg["seed"]


def test_cli_errors_are_one_line_messages(capsys):
    """A missing config, an unknown sensor and a step count below 1: a one-line message and exit 2 (tracebacks and,
    for --max-steps -1, a run that trained nothing and exited 0 before 2026-12-06)."""
    from model_core.__main__ import main

    assert main(["train", "--config", "no_such_config.yaml"]) == 2
    assert "No such file" in capsys.readouterr().err
    assert main(["export", "--sensor", "xyz"]) == 2
    assert "unknown sensor 'xyz'; known: wv2" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["train", "--sensor", "wv2", "--max-steps", "-1"])
    assert e.value.code == 2 and "at least 1" in capsys.readouterr().err
    # a ratio-4 model scored on a ratio-2 test case (it was, and labelled landsat8)
    from ksdiff_qgis.engine.model_card import bundled_cards

    assert main(["evaluate", "--onnx", str(bundled_cards()["wv2"]), "--sensor", "landsat8"]) == 2
    assert "trained for ratio 4" in capsys.readouterr().err


def test_a_fullres_stage_without_its_data_is_refused_before_any_stage(small_cfg):
    """It failed after the stages before it had trained (hours, on a real config)."""
    from pathlib import Path

    from model_core.train import run

    cfg = small_cfg("nofr", fullres=False)
    assert any(st["name"] == "fullres" for st in cfg["stages"])
    with pytest.raises(ValueError, match="needs data.fullres"):
        run(cfg, progress=False)
    assert not list(Path(cfg["train"]["out_dir"]).glob("*.pt"))


def test_adapt_checks_the_scene_before_any_step(data_dir):
    """A scene of another ratio than the sensor's, and PAN and MS swapped: refused before any step (the first ran
    every step and failed in the int8 calibration, leaving an ONNX without its card; the second was a numpy error)."""
    from model_core.adapt import check_scene

    pan, ms = data_dir / "wv2_pan.tif", data_dir / "wv2_ms.tif"
    check_scene(pan, ms, "wv2")
    with pytest.raises(ValueError, match="ratio 4; the landsat8 network takes 4 at ratio 2"):
        check_scene(pan, ms, "landsat8")
    with pytest.raises(ValueError, match="swapped"):
        check_scene(ms, pan, "wv2")


def test_coregister_moves_the_ms_onto_the_pan(data_dir):
    """``coregister: true`` on a full-resolution source: the MS moved by the offset the plugin measures; a PAN moved
    by a known amount (here: the MS shifted by a whole MS pixel against it) is measured and undone."""
    from ksdiff_qgis.engine.filters import upsample
    from model_core.data.fullres import coregistered_ms
    from model_core.rasters import read

    pan = read(str(data_dir / "wv2_pan.tif")).data[0].astype(np.float32)
    ms = read(str(data_dir / "wv2_ms.tif")).data.astype(np.float32)
    bad = np.zeros(ms.shape[1:], bool)
    base, _ = coregistered_ms(pan, ms, bad, 4)
    shifted = upsample(ms, 1, ms.shape[1:], (0.0, 1.0))   # the MS content one MS pixel further east
    moved, grown = coregistered_ms(pan, shifted, bad, 4)
    inner = (slice(None), slice(6, -6), slice(6, -6))
    assert np.abs(moved - base)[inner].mean() < 0.1 * np.abs(shifted - base)[inner].mean()
    assert not grown.any()


def test_coregister_moves_a_wald_pairs_pan_onto_its_ms(data_dir):
    """``coregister: true`` on a Wald pair source: the PAN (not the reference MS) moved by the offset the plugin
    measures; a PAN shifted by a known amount comes back to where the unshifted one goes, its nodata kept nodata."""
    from ksdiff_qgis.engine.filters import upsample
    from model_core.data.scenes import coregistered_pan
    from model_core.rasters import read

    pan = read(str(data_dir / "wv2_pan.tif")).data[0].astype(np.float32)
    ms = read(str(data_dir / "wv2_ms.tif")).data.astype(np.float32)
    base = coregistered_pan(pan, ms, 4)
    shifted = upsample(pan, 1, pan.shape, (3.0, -2.0))   # the PAN content 3 PAN pixels south, 2 west
    moved = coregistered_pan(shifted, ms, 4)
    inner = (slice(24, -24), slice(24, -24))
    assert np.abs(moved - base)[inner].mean() < 0.15 * np.abs(shifted - base)[inner].mean()
    holed = pan.copy()
    holed[:40] = 0
    assert (coregistered_pan(holed, ms, 4)[:40] == 0).all()


def test_a_file_that_is_no_checkpoint_is_named_in_one_line(tmp_path, data_dir, capsys):
    """A truncated checkpoint, random bytes, a folder and a bare state_dict given to export, evaluate and adapt: one
    line naming the file and what is wrong, exit 2 (tracebacks — OSError, UnpicklingError, IsADirectoryError — and
    "missing 'config'" before 2026-12-07). A text file (a config given as --checkpoint) ended in torch's "IndexError:
    pop from empty list" until QA round 90."""
    from model_core.__main__ import main
    from model_core.weights import WEIGHTS_DIR

    real = sorted(WEIGHTS_DIR.glob("*.pt"))[0]
    bad = {"truncated.pt": real.read_bytes()[: real.stat().st_size // 2],
           "random.pt": np.random.default_rng(0).bytes(4096),
           "my_sensor.yaml": b"base: [base/ksdiff_fusionnet.yaml]\nsensor: pleiades\n"}   # README's own config
    for name, data in bad.items():
        (tmp_path / name).write_bytes(data)
    torch.save(load_checkpoint(real)["model"], tmp_path / "state_dict.pt")
    (tmp_path / "folder.pt").mkdir()
    expected = {"truncated.pt": "is not a readable checkpoint", "random.pt": "is not a readable checkpoint",
                "my_sensor.yaml": "is not a readable checkpoint",
                "state_dict.pt": "is not a model_core checkpoint", "folder.pt": "is a folder, not a checkpoint file"}
    scene = ["--pan", str(data_dir / "wv2_test_pan.tif"), "--ms", str(data_dir / "wv2_test_ms.tif")]
    for name, words in expected.items():
        ck = str(tmp_path / name)
        for args in (["export", "--checkpoint", ck, "--out", str(tmp_path / "x.onnx"), "--no-evaluate"],
                     ["evaluate", "--checkpoint", ck], ["adapt", "--checkpoint", ck, *scene, "--out",
                                                        str(tmp_path / "x.onnx"), "--steps", "1"]):
            assert main(args) == 2, (name, args[0])
            err = capsys.readouterr().err
            assert f"{ck} {words}" in err and len(err.strip().splitlines()) == 1, (name, args[0], err)
    assert not (tmp_path / "x.onnx").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_good_checkpoint_on_a_missing_device_is_not_called_unreadable(tmp_path):
    """Review: every exception of torch.load became "not a readable checkpoint ... delete it to restart the stage",
    also torch's on a whole checkpoint mapped to a device the machine lacks (or CUDA out of memory): advice to delete
    a good run. torch's own error stands; a damaged file is still named so."""
    from model_core.train import OWN_RUN
    from model_core.weights import WEIGHTS_DIR

    real = sorted(WEIGHTS_DIR.glob("*.pt"))[0]
    last = tmp_path / "stage1_last.pt"
    shutil.copy(real, last)
    with pytest.raises(RuntimeError, match="CUDA device"):
        load_checkpoint(last, "cuda", fix=OWN_RUN)
    zipped = tmp_path / "zipped.pt"   # a zip, but none of torch.save: its reader's RuntimeError is the file's
    shutil.make_archive(str(tmp_path / "zipped"), "zip", root_dir=str(tmp_path), base_dir="stage1_last.pt")
    (tmp_path / "zipped.zip").rename(zipped)
    for bad in (zipped, tmp_path / "empty.pt", tmp_path / "cut.pt"):
        if bad.name == "empty.pt":
            bad.write_bytes(b"")
        elif bad.name == "cut.pt":
            bad.write_bytes(real.read_bytes()[:-100])
        with pytest.raises(ValueError, match="is not a readable checkpoint"):
            load_checkpoint(bad, "cuda", fix=OWN_RUN)


def test_running_out_of_memory_while_loading_a_checkpoint_is_not_called_unreadable(tmp_path):
    """Review: an allocation that failed while loading a whole checkpoint (torch's 'DefaultCPUAllocator: can't
    allocate memory', a RuntimeError; Python's MemoryError) read "not a readable checkpoint ... delete it". A 200 MB
    checkpoint loaded under a 100 MB address-space margin raises the memory error, in a child process."""
    import subprocess
    import sys

    big = tmp_path / "stage1_last.pt"
    torch.save({"config": {}, "model": {"w": torch.zeros(50_000_000)}}, big)   # 200 MB of float32
    code = f"""
import re, resource
from model_core.train import OWN_RUN, load_checkpoint
size = int(re.search(r"VmSize:\\s+(\\d+)", open("/proc/self/status").read()).group(1)) * 1024
resource.setrlimit(resource.RLIMIT_AS, (size + 100_000_000, resource.RLIM_INFINITY))
try:
    load_checkpoint({str(big)!r}, fix=OWN_RUN)
except BaseException as e:
    print(type(e).__name__, e)
"""
    said = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=str(Path(__file__).parents[1])).stdout
    assert said.startswith("MemoryError") or said.startswith("RuntimeError") and "allocate" in said, said
    assert "not a readable checkpoint" not in said


def test_a_memory_error_while_loading_a_checkpoint_is_raised_as_it_is(tmp_path, monkeypatch):
    """Python's MemoryError (the unpickler's objects) is the machine's, not the file's: raised as it is."""
    from model_core import train
    from model_core.weights import WEIGHTS_DIR

    def no_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(train.torch, "load", no_memory)
    with pytest.raises(MemoryError):
        load_checkpoint(sorted(WEIGHTS_DIR.glob("*.pt"))[0], fix=train.OWN_RUN)


def _config_file(tmp_path: Path, cfg: dict, name: str = "mine.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_ctrl_c_during_train_says_where_to_resume_and_the_same_command_finishes(tmp_path, small_cfg, monkeypatch,
                                                                                  capsys):
    """Ctrl-C printed a KeyboardInterrupt traceback; now one line and status 130, and the same command resumes.
    Running a finished run again says it is finished (it printed an empty summary)."""
    from model_core import train
    from model_core.__main__ import main

    cfg = small_cfg("ctrlc")
    cfg["train"]["ckpt_every"] = 1
    args = ["train", "--config", str(_config_file(tmp_path, cfg))]
    real, calls = train.compute_loss, []

    def interrupted_at_step_2(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(train, "compute_loss", interrupted_at_step_2)
    try:
        assert main(args) == 130
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C ended train with a KeyboardInterrupt traceback")
    err = capsys.readouterr().err
    assert "train: interrupted in stage stage1 at step 1; the same command resumes" in err and "Traceback" not in err
    monkeypatch.setattr(train, "compute_loss", real)
    assert main(args) == 0
    assert Path(cfg["train"]["out_dir"], "fullres.pt").exists()
    assert "already finished" not in capsys.readouterr().err
    assert main(args) == 0
    assert "is already finished" in capsys.readouterr().err


def test_a_corrupt_checkpoint_of_the_run_says_delete_it(tmp_path, small_cfg, capsys):
    """A run's own unreadable <stage>_last.pt got the advice for a copied file ("Copy it again or give a
    runs/<config>/<stage>.pt"); what helps is deleting it, and the stage trains again."""
    from model_core.__main__ import main

    cfg = small_cfg("corrupt")
    args = ["train", "--config", str(_config_file(tmp_path, cfg)), "--max-steps", "1"]
    assert main(args) == 0
    last = Path(cfg["train"]["out_dir"]) / "stage1_last.pt"
    last.write_bytes(last.read_bytes()[:100])
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "stage1_last.pt is not a readable checkpoint" in err and "delete it to restart the stage stage1" in err
    last.unlink()
    assert main(args) == 0


def test_sensor_auto_is_refused_for_training_with_the_trainable_sensors(tmp_path, capsys):
    """QA round 90: `sensor: auto` in a training config read "unknown sensor 'auto'; known sensors: auto, wv2, …",
    offering what it refused. auto is the plugin's choice from a product's metadata; a model trains for one sensor."""
    from model_core.__main__ import main

    path = _config_file(tmp_path, {"base": ["base/ksdiff_fusionnet.yaml"], "sensor": "auto"}, "auto.yaml")
    assert main(["train", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert ("auto.yaml: sensor auto is the plugin's choice from a product's metadata, not a sensor a model is trained "
            "for: give one of wv2, wv2_8, wv3") in err and "auto, wv2" not in err, err
    assert not (tmp_path / "runs").exists()


def test_a_raster_too_small_for_one_patch_is_named_with_its_size_and_nothing_is_written(tmp_path, small_cfg, data_dir):
    """QA round 90: a small validation raster read "no valid 64x64 patch in [...]", and the run folder's config.json
    was written before (the README says nothing is written before the data checks). Now its size and the size needed,
    before the run folder is made."""
    from osgeo import gdal

    from model_core.data.scenes import NoPatchError

    pan, ms = tmp_path / "small_pan.tif", tmp_path / "small_ms.tif"   # a real pair-1 crop, 16 MS pixels a side
    gdal.Translate(str(ms), str(data_dir / "wv2_ms.tif"), srcWin=[0, 0, 16, 16])
    gdal.Translate(str(pan), str(data_dir / "wv2_pan.tif"), srcWin=[0, 0, 64, 64])
    cfg = small_cfg("small")
    cfg["data"]["val"] = [{"kind": "pair", "pan": str(pan), "ms": str(ms)}]
    side = int(cfg["data"].get("val_patch", cfg["data"]["patch"]))
    with pytest.raises(NoPatchError) as e:
        run(cfg, progress=False)
    assert str(e.value).startswith(f"data.val (data.val_patch, else data.patch): no {side}x{side} patch fits: "
                                   f"{pan}+{ms} is 16x16 MS pixels (width x height); a patch needs an MS of at least "
                                   f"{side}x{side} pixels"), str(e.value)
    assert not Path(cfg["train"]["out_dir"]).exists()


def test_the_progress_bar_counts_the_stages_steps(small_cfg, capsys):
    """QA round 90: with --max-steps 30 on a first run the bar read "100% 30/30" in a stage of 60 steps."""
    cfg = small_cfg("bar")
    run(cfg, max_steps=1)
    err = capsys.readouterr().err
    assert "| 1/2 [" in err and "1/1" not in err and "100%" not in err, err
