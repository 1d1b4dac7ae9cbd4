"""KSDiff on a warm bare backbone: the same seed's backbone run (``backbone_from: {config, same_seed}``), a
tile-normalised backbone's weights into KSDiff, and the backbone's own convolutions at ``backbone_lr`` x the rate."""
from __future__ import annotations

from pathlib import Path

import torch
import yaml

from model_core.config import load_config, with_defaults
from model_core.nets import build_model
from model_core.train import load_checkpoint, param_groups, run, trainable_parameters

torch.set_num_threads(1)
SMALL = {"width": 16, "blocks": 2, "modulate": "all", "modulate_ends": True, "dim": 16, "tokens": 4,
         "struct_tokens": 4, "sample_steps": 2, "enc_widths": [8, 16, 32], "live": True, "tile_norm": True,
         "prefuse": True}


def _cfg(tmp_path: Path, data_dir, method: str, out: str) -> dict:
    cfg = load_config("rr4_ksdiff_adaptive.yaml")
    cfg["method"] = method
    cfg["model"] = dict(SMALL)
    cfg["data"].update(root=str(data_dir), patch=32, batch=4,
                       train=[{"kind": "pair", "pan": "wv2_pan.tif", "ms": "wv2_ms.tif", "share": 1.0}],
                       val=[], fullres=None)
    cfg["stages"] = ([{"name": "main", "steps": 3, "warmup": 1}] if method == "fusionnet" else
                     [{"name": "stage1", "steps": 2, "warmup": 1, "backbone_lr": 0.1}])
    cfg["train"].update(val_every=1000, ckpt_every=1000, device="cpu", out_dir=str(tmp_path / out))
    cfg.pop("config_path", None)
    return cfg


def test_the_backbone_of_the_same_seed_loads_into_ksdiff(tmp_path, data_dir):
    (tmp_path / "bare.yaml").write_text(yaml.safe_dump(_cfg(tmp_path, data_dir, "fusionnet", "bare")))
    warm = _cfg(tmp_path, data_dir, "ksdiff", "warm_seed1")
    warm.update(seed=1, backbone_from={"config": str(tmp_path / "bare.yaml"), "same_seed": True})
    summary = run(with_defaults(warm), progress=False)
    assert Path(summary["backbone_from"]).parent.name == "bare_seed1"    # trained on demand, with seed 1
    bare = load_checkpoint(summary["backbone_from"])["ema"] or load_checkpoint(summary["backbone_from"])["model"]
    assert all(k.startswith("net.") for k in bare)                       # tile-normalised bare backbone
    # the KSDiff run started from those weights: after two small steps its convolutions are near them, not equal
    model = build_model("ksdiff", 4, "fusionnet", **SMALL)
    model.load_state_dict(load_checkpoint(Path(warm["train"]["out_dir"]) / "stage1.pt")["model"])
    w = model.backbone.head.weight.detach()
    assert torch.allclose(w, bare["net.head.weight"], atol=5e-3) and not torch.equal(w, bare["net.head.weight"])


def test_backbone_lr_slows_the_backbone_convolutions_only():
    model = build_model("ksdiff", 4, "fusionnet", **SMALL)
    stage = {"name": "stage1", "lr": 1e-3, "backbone_lr": 0.1}
    params = trainable_parameters(model, "ksdiff", stage)
    fast, slow = param_groups(model, params, stage)
    assert slow["lr"] == 1e-4 and "lr" not in fast
    names = {id(p): n for n, p in model.named_parameters()}
    slow_names = {names[id(p)] for p in slow["params"]}
    assert "backbone.head.weight" in slow_names and "backbone.tail.bias" in slow_names
    assert not any(f in n for n in slow_names for f in (".b_in.", ".b_out.", ".b_sp"))
    assert any(".b_in." in names[id(p)] for p in fast["params"])
    assert len(fast["params"]) + len(slow["params"]) == len(params)
    assert param_groups(model, params, {"name": "stage1", "lr": 1e-3}) == [{"params": params}]
