"""A config's test case must be held apart from its training data: its card calls it "the config's held-apart test
case" (QA 2026-12-06: a config testing on its own training pair trained and exported with that label)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest


def _leaky(cfg: dict, data_dir: Path) -> dict:
    """``cfg`` whose test case is its training pair, named by absolute path (the training source names it relative to
    data.root): the same rasters by resolved path."""
    pair = {"pan": str(data_dir / "wv2_pan.tif"), "ms": str(data_dir / "wv2_ms.tif")}
    return dict(cfg, test={"reduced": {"kind": "pair", **pair}, "full": dict(pair)})


def test_train_refuses_a_test_case_that_is_also_training_data(small_cfg, data_dir):
    """A config whose test raster was its training raster trained, and its card called the scene "the config's
    held-apart test case". Refused before anything is written."""
    from model_core.train import run

    cfg = _leaky(small_cfg("leak"), data_dir)
    with pytest.raises(ValueError, match=r"test case is not held apart: test.reduced's PAN .*wv2_pan.tif is also "
                                         r"data.train\[0\].pan, data.fullres.sources\[0\].pan"):
        run(cfg, progress=False)
    assert not Path(cfg["train"]["out_dir"]).exists()


def test_every_recipe_keeps_its_test_case_held_apart():
    """The repository's configs pass, the Landsat 8 and Sentinel-2 ones too (their test window lies in a training
    raster, blanked in training: datacache.HELD_APART); only the two evaluate-only validation configs, whose test
    case is their validation rows on purpose, do not."""
    from model_core.config import CONFIG_DIR, load_config
    from model_core.datacheck import test_overlaps

    leaky = {p.name for p in CONFIG_DIR.glob("*.yaml") if test_overlaps(load_config(p.name))}
    assert leaky == {"landsat8_validation.yaml", "wv3_validation.yaml"}
    l8 = load_config(None, "landsat8")
    assert l8["test"]["reduced"]["ms"] == l8["data"]["train"][0]["ms"] and not test_overlaps(l8)
    moved = json.loads(json.dumps(l8))
    moved["test"]["reduced"]["window"] = [300, 300, 257, 256]   # outside the held-apart corner: training sees it
    assert test_overlaps(moved)
