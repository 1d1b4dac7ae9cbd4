"""QA of training on one's own data (2026-12-07): a pair in two CRSs trained to the end; wrong value types ended in
tracebacks, some after the run folder was written; `licence: 4` went into the card as a number; two runs of one
config and seed gave different ONNX sha256 with no way to tell the networks were the same. Real fixture rasters
(tests/data, WorldView-2 crops), tiny configs, nothing trained."""
from __future__ import annotations

import copy
import re
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
import yaml
from osgeo import gdal

from model_core.__main__ import main
from model_core.config import CONFIG_DIR, resolve_bases
from model_core.configtypes import check_types

torch.set_num_threads(1)


def _config(tmp_path: Path, data_dir: Path, ms: Path | None = None) -> dict:
    """A user's config (outside model_core/configs): a tiny bare FusionNet, one 2-step stage, on the fixture pair."""
    pan = str(data_dir / "wv2_pan.tif")
    return {"base": ["base/fusionnet.yaml"], "sensor": "wv2", "model": {"width": 8, "blocks": 1},
            "data": {"patch": 32, "stride": 8, "batch": 4, "val_patch": 32,
                     "train": [{"kind": "pair", "pan": pan, "ms": str(data_dir / "wv2_ms.tif"),
                                "licence": "CC BY-SA 4.0 (Maxar)"},
                               {"kind": "pair", "pan": pan, "ms": str(ms or data_dir / "wv2_ms.tif")}],
                     "val": [{"kind": "pair", "pan": pan, "ms": str(data_dir / "wv2_ms.tif")}]},
            "test": {"reduced": {"kind": "pair", "pan": str(data_dir / "wv2_test_pan.tif"),
                                 "ms": str(data_dir / "wv2_test_ms.tif")}},
            "stages": [{"name": "main", "steps": 2, "lr": 0.001, "warmup": 1}],
            "train": {"val_every": 1000, "ckpt_every": 1000, "threads": 1, "device": "cpu",
                      "out_dir": str(tmp_path / "runs" / "mine")}}


def _refused(tmp_path: Path, cfg, capsys) -> str:
    """Train ``cfg``: exit 2, one line without a traceback, no run folder; returns the line."""
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["train", "--config", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "runs").exists()   # nothing written
    return err


def _ms_variant(data_dir: Path, tmp_path: Path, how: str) -> Path:
    """The fixture MS in another CRS (as `gdal_translate -a_srs EPSG:32632`), placed far from its PAN, or without a
    geotransform."""
    src, out = str(data_dir / "wv2_ms.tif"), tmp_path / f"ms_{how}.tif"
    if how == "crs":
        gdal.Translate(str(out), src, outputSRS="EPSG:32632")
    elif how == "apart":
        gdal.Translate(str(out), src, outputBounds=[100000, 5000128, 100128, 5000000])   # 128 m square, elsewhere
    else:
        with rasterio.open(src) as r:
            data, profile = r.read(), r.profile
        profile.pop("transform"), profile.pop("crs")
        with rasterio.open(out, "w", **profile) as w:
            w.write(data)
    return out


@pytest.mark.parametrize("how,words", [
    ("crs", r"^python -m model_core train: data\.train\[1\]: the PAN wv2_pan\.tif is in EPSG:32631, the MS "
            r"ms_crs\.tif in EPSG:32632; .*reproject the MS onto the PAN's CRS \(gdalwarp -t_srs\)"),
    ("apart", r"data\.train\[1\]: the PAN wv2_pan\.tif and the MS ms_apart\.tif do not overlap"),
    ("unplaced", r"data\.train\[1\]: the MS ms_unplaced\.tif is not georeferenced")])
def test_train_refuses_a_pair_in_two_crs_apart_or_unplaced_before_any_file(tmp_path, data_dir, capsys, how, words):
    """QA: an MS assigned EPSG:32632 beside its EPSG:32631 PAN trained to the end, exit 0, on crops of two places.
    Now: one line naming the source and the fix, exit 2, no run folder; so for a pair that does not overlap or an
    MS without a geotransform."""
    import warnings

    with warnings.catch_warnings():   # rasterio's NotGeoreferencedWarning: the point of the "unplaced" case
        warnings.simplefilter("ignore")
        err = _refused(tmp_path, _config(tmp_path, data_dir, _ms_variant(data_dir, tmp_path, how)), capsys)
    assert re.search(words, err), err


def _set(cfg: dict, where: str, value) -> dict:
    cfg = copy.deepcopy(cfg)
    *parents, last = re.findall(r"[^.\[\]]+", where)
    node = cfg
    for key in parents:
        node = node[int(key)] if key.isdigit() else node[key]
    node[int(last) if last.isdigit() else last] = value
    return cfg


@pytest.mark.parametrize("where,value,words", [
    ("stages.0.lr", "fast", r"stages\[0\]\.lr is 'fast'; it must be a number above 0"),
    ("data.patch", "32", r"data\.patch is '32'; it must be a whole number of at least 1 "
                          r"\(write it without quotes\) \(MODEL"),
    ("stages.0.steps", "1e3", r"stages\[0\]\.steps is '1e3'; it must be a whole number of at least 1 \(YAML reads 1e3 "
                              r"without a dot as text: write it out, 1000\) \(MODEL"),
    ("stages.0.steps", "twenty", r"stages\[0\]\.steps is 'twenty'; it must be a whole number of at least 1"),
    ("stages.0.steps", 0, r"stages\[0\]\.steps is 0; it must be a whole number of at least 1"),
    ("data.val_patch", [32], r"data\.val_patch is a list \[32\]; it must be a whole number of at least 1"),
    ("stages.0", "main", r"stages\[0\] is 'main'; it must be a stage \(a mapping"),
    ("stages", {"foo": 1}, r"stages is a mapping \{'foo': 1\}; it must be a list of stages"),
    ("stages.0.ema", 1.5, r"stages\[0\]\.ema is 1\.5; it must be a decay from 0"),
    ("train.threads", "two", r"train\.threads is 'two'; it must be a whole number"),
    ("data.train.0.licence", 4, r"data\.train\[0\]\.licence is 4; it must be text"),
    ("data.train.1.name", 2024, r"data\.train\[1\]\.name is 2024; it must be text")])
def test_a_value_of_the_wrong_type_is_refused_by_its_key_path_before_any_file(tmp_path, data_dir, capsys, where,
                                                                             value, words):
    """QA: `lr: fast`, `steps: "twenty"`, `val_patch: [32]`, a stage that is a string gave tracebacks (exit 1), some
    after config.json and log.jsonl were written; `licence: 4` was accepted and ended in the card as a number."""
    err = _refused(tmp_path, _set(_config(tmp_path, data_dir), where, value), capsys)
    assert re.search(words, err), err


def test_scientific_number_text_at_a_number_key_is_read_as_the_number(tmp_path, data_dir):
    """QA: `lr: 1e-3`, natural to write, was refused (YAML 1.1 reads it as the text '1e-3'), and `patch: '32'` got
    the irrelevant hint "YAML reads 1e-3 without a dot as text". Number text at a (float) number key is that number;
    whole-number keys stay strict (see the refusals above)."""
    from model_core.config import load_config

    text = yaml.safe_dump(_config(tmp_path, data_dir))
    assert "lr: 0.001" in text
    path = tmp_path / "mine.yaml"
    path.write_text(text.replace("lr: 0.001", "lr: 1e-3"))
    assert yaml.safe_load(path.read_text())["stages"][0]["lr"] == "1e-3"   # as YAML reads it
    cfg = load_config(path)
    assert cfg["stages"][0]["lr"] == 0.001 and isinstance(cfg["stages"][0]["lr"], float)


def test_a_config_whose_top_level_is_a_list_is_refused_in_one_line(tmp_path, capsys):
    """QA: a YAML list at the top level gave "AttributeError: 'list' object has no attribute 'get'"."""
    path = tmp_path / "list_top.yaml"
    path.write_text("- a\n- b\n")
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and "list_top.yaml: its top level is a list ['a', 'b']; it must be a mapping" in err
    assert not (tmp_path / "runs").exists()


def test_every_config_of_the_repository_passes_the_type_check():
    """The schema describes what the repository's own configs use (none refused)."""
    for path in sorted(CONFIG_DIR.glob("*.yaml")):
        check_types(resolve_bases(path), path)


def test_two_exports_of_one_network_differ_in_sha256_only_by_the_cards_training_time(tmp_path):
    """QA: one config and seed gave bit-identical checkpoints but ONNX files of different sha256, the embedded card
    carrying the training's wall-clock time. The file hash stays the card's (the plugin checks it);
    ``network_sha256`` tells the same network apart from another (model_core/README.md, Reproducibility)."""
    from model_core.export import export, network_sha256
    from model_core.nets import build_model

    torch.manual_seed(0)
    model = build_model("fusionnet", 4, "fusionnet", width=8, blocks=1)
    cfg = {"sensor": "wv2", "method": "fusionnet", "backbone": "fusionnet"}
    cards = [export(model, cfg, tmp_path / f"run{i}.onnx", {"config": "x.yaml", "steps": 2, "seconds": seconds,
                                                             "seed": 0, "git_revision": "abc", "data": []})
             for i, seconds in enumerate((12.3, 45.6))]
    assert cards[0]["onnx_sha256"] != cards[1]["onnx_sha256"]
    assert network_sha256(tmp_path / "run0.onnx") == network_sha256(tmp_path / "run1.onnx")
    with torch.no_grad():   # another network: another network_sha256
        next(model.parameters()).add_(torch.from_numpy(np.float32([1e-3])))
    export(model, cfg, tmp_path / "other.onnx", {"config": "x.yaml", "steps": 2, "seconds": 12.3, "seed": 0,
                                                 "git_revision": "abc", "data": []})
    assert network_sha256(tmp_path / "other.onnx") != network_sha256(tmp_path / "run0.onnx")
