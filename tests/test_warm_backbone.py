"""KSDiff on a warm bare backbone: the same seed's backbone run (``backbone_from: {config, same_seed}``), a
tile-normalised backbone's weights into KSDiff, and the backbone's own convolutions at ``backbone_lr`` x the rate."""
from __future__ import annotations

from pathlib import Path

import torch
import yaml

from model_core.config import with_defaults
from model_core.nets import build_model
from model_core.train import load_checkpoint, param_groups, run, trainable_parameters

torch.set_num_threads(1)


def test_the_backbone_of_the_same_seed_loads_into_ksdiff(tmp_path, small_cfg):
    bare = small_cfg("bare", "fusionnet", fullres=False)
    bare["stages"] = [{"name": "main", "steps": 3, "warmup": 1}]
    (tmp_path / "bare.yaml").write_text(yaml.safe_dump(bare))
    warm = small_cfg("warm_seed1", fullres=False)
    warm["stages"] = [{"name": "stage1", "steps": 2, "warmup": 1, "backbone_lr": 0.1}]
    warm.update(seed=1, backbone_from={"config": str(tmp_path / "bare.yaml"), "same_seed": True})
    summary = run(with_defaults(warm), progress=False)
    assert Path(summary["backbone_from"]).parent.name == "bare_seed1"    # trained on demand, with seed 1
    bare = load_checkpoint(summary["backbone_from"])["ema"] or load_checkpoint(summary["backbone_from"])["model"]
    assert all(k.startswith("net.") for k in bare)                       # tile-normalised bare backbone
    # the KSDiff run started from those weights: after two small steps its convolutions are near them, not equal
    model = build_model("ksdiff", 4, "fusionnet", **warm["model"])
    model.load_state_dict(load_checkpoint(Path(warm["train"]["out_dir"]) / "stage1.pt")["model"])
    w = model.backbone.head.weight.detach()
    assert torch.allclose(w, bare["net.head.weight"], atol=5e-3) and not torch.equal(w, bare["net.head.weight"])


def test_backbone_lr_slows_the_backbone_convolutions_only(small_cfg):
    model = build_model("ksdiff", 4, "fusionnet", **small_cfg("unused")["model"])
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


def test_the_card_names_the_warm_backbone_config_and_seed():
    from model_core.export import training_record

    ck = {"step": 10, "config": {"config_path": "x/warm.yaml", "stages": [{"name": "stage1"}], "seed": 2,
                                 "backbone_from": {"config": "bare.yaml", "same_seed": True}}}
    assert training_record(ck, [], "abc")["backbone_from"].startswith("bare.yaml seed 2: ")
    ck["config"]["backbone_from"] = "bare.yaml"
    assert training_record(ck, [], "abc")["backbone_from"].startswith("bare.yaml: ")


def test_a_smoke_run_does_not_train_the_backbone_first(tmp_path, small_cfg):
    """--max-steps on a config whose backbone is untrained: refused (it trained the whole backbone first, into the
    backbone's own run folder, ignoring --max-steps and --out)."""
    import pytest

    bare = small_cfg("bare", "fusionnet", fullres=False)
    bare["stages"] = [{"name": "main", "steps": 3, "warmup": 1}]
    (tmp_path / "bare.yaml").write_text(yaml.safe_dump(bare))
    warm = small_cfg("warm", fullres=False)
    warm["stages"] = [{"name": "stage1", "steps": 2, "warmup": 1}]
    warm["backbone_from"] = {"config": str(tmp_path / "bare.yaml")}
    with pytest.raises(ValueError, match="has no trained backbone"):
        run(with_defaults(warm), max_steps=1, progress=False)
    assert not (tmp_path / "bare").exists()
