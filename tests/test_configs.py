"""Training configs: ``base:`` layering resolves to exactly the complete configs it replaced; plain YAMLs still load."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from model_core.config import CONFIG_DIR, DEFAULT_CONFIGS, default_config_path, load_config

# every config as it resolved before the configs were layered (one complete YAML per config), config_path left out
SNAPSHOT = json.loads((Path(__file__).parent / "data" / "configs_resolved.json").read_text())


@pytest.mark.parametrize("name", sorted(SNAPSHOT))
def test_layered_config_resolves_to_the_complete_one(name):
    cfg = load_config(name)
    assert cfg.pop("config_path") == str(CONFIG_DIR / name)
    assert cfg == SNAPSHOT[name]


def test_every_config_loads_and_none_is_lost():
    names = {p.name for p in CONFIG_DIR.glob("*.yaml")}
    assert set(SNAPSHOT) <= names
    for name in names:
        cfg = load_config(name)
        assert "base" not in cfg and cfg["stages"] and cfg["sensor"]


def test_default_configs_exist():
    for sensor in ("wv2", "wv3", "qb", "gf2", "landsat8"):
        assert default_config_path(sensor).is_file()
    assert default_config_path("landsat8").name == DEFAULT_CONFIGS["landsat8"]
    assert load_config(None, "wv2")["method"] == "ksdiff"


def test_plain_complete_yaml_loads_as_before(tmp_path):
    full = copy.deepcopy(SNAPSHOT["wv2_ksdiff_fusionnet.yaml"])
    del full["train"]["out_dir"]  # a plain YAML without out_dir keeps the old default
    p = tmp_path / "anything.yaml"
    p.write_text(yaml.safe_dump(full))
    cfg = load_config(p)
    assert cfg["train"]["out_dir"] == "runs/wv2_ksdiff_fusionnet"
    assert {k: v for k, v in cfg.items() if k != "config_path"} == SNAPSHOT["wv2_ksdiff_fusionnet.yaml"]


def test_base_merges_mappings_and_replaces_lists(tmp_path):
    (tmp_path / "under.yaml").write_text(yaml.safe_dump(
        {"sensor": "wv2", "method": "fusionnet", "model": {"width": 8, "blocks": 2},
         "stages": [{"name": "a", "steps": 1}, {"name": "b", "steps": 1}]}))
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(
        {"base": "under.yaml", "model": {"width": 16}, "stages": [{"name": "c", "steps": 3}]}))
    cfg = load_config(tmp_path / "mine.yaml")
    assert cfg["model"] == {"width": 16, "blocks": 2}
    assert [s["name"] for s in cfg["stages"]] == ["c"]
    assert cfg["train"]["out_dir"] == "runs/mine"


def test_circular_base_is_reported(tmp_path):
    (tmp_path / "a.yaml").write_text("base: b.yaml\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\n")
    with pytest.raises(ValueError, match="circular"):
        load_config(tmp_path / "a.yaml")


def test_a_key_given_twice_is_refused(tmp_path):
    # PyYAML keeps the last of two equal keys: a second `base:` would silently train another recipe
    (tmp_path / "under.yaml").write_text(yaml.safe_dump({"sensor": "wv2", "method": "fusionnet", "stages": [{}]}))
    p = tmp_path / "twice.yaml"
    p.write_text("base: under.yaml\nmodel: {width: 8}\nbase: under.yaml\n")
    with pytest.raises(yaml.constructor.ConstructorError, match="'base' given twice"):
        load_config(p)
    p.write_text("base: under.yaml\nmodel: {width: 8, blocks: 2}\n")
    assert load_config(p)["model"] == {"width": 8, "blocks": 2}


def test_a_typo_in_a_config_key_is_refused(tmp_path):
    """Misspelled keys were ignored and the run trained with the defaults (``warmpu``, ``bacth``, ``shar``)."""
    import pytest

    from model_core.config import load_config

    path = tmp_path / "typo.yaml"
    path.write_text("base: rr4_ksdiff_adaptive.yaml\ndata: {bacth: 4}\n"
                    "stages:\n- {name: stage1, steps: 2, warmpu: 1}\n")
    with pytest.raises(ValueError, match="unknown key.*'bacth', 'warmpu'"):
        load_config(path)
    path.write_text("base: rr4_ksdiff_adaptive.yaml\ndata: {batch: 4}\n"
                    "stages:\n- {name: stage1, steps: 2, warmup: 1}\n")
    assert load_config(path)["data"]["batch"] == 4


def test_a_typo_in_a_model_key_is_refused_like_other_typos(tmp_path, small_cfg, capsys):
    """`model: {widht: 16}` ended in a raw TypeError traceback after runs/<name>/config.json was written (a bare
    backbone ignored it silently); other typos got a one-line "unknown key(s)" with nothing written."""
    from model_core.__main__ import main

    cfg = small_cfg("typo")
    cfg["model"] = dict(cfg["model"], widht=16)
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["train", "--config", str(tmp_path / "mine.yaml")]) == 2
    err = capsys.readouterr().err
    assert "mine.yaml: unknown model key(s) 'widht'" in err and "width" in err and "Traceback" not in err
    assert not Path(cfg["train"]["out_dir"]).exists()
    bare = dict(cfg, method="fusionnet", model={"width": 8, "blocks": 2, "dim": 16})   # dim: KSDiff's, not FusionNet's
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(bare))
    assert main(["train", "--config", str(tmp_path / "mine.yaml")]) == 2
    assert "unknown model key(s) 'dim'" in capsys.readouterr().err
