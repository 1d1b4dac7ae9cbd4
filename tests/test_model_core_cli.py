"""``python -m model_core export`` / ``adapt`` never replace a model silently (QA 2026-12-06): export without --out
replaced the bundled model with any checkpoint, --out replaced an existing model and made a missing folder; export
labelled a test case the model trained on "held apart"; two options had no help."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture()
def tiny_run(small_cfg):
    """A finished tiny run (KSDiff, SMALL_KSDIFF, 2 steps per stage) on the test fixture: its final checkpoint."""
    from model_core.train import run

    cfg = small_cfg("tiny")
    run(cfg, progress=False)
    return Path(cfg["train"]["out_dir"]) / "fullres.pt"


@pytest.fixture()
def models_copy(tmp_path, monkeypatch):
    """The bundled models folder as export sees it, a copy (export never touches the real one in these tests)."""
    from ksdiff_qgis.engine import model_card

    folder = tmp_path / "models"
    folder.mkdir()
    for name in ("wv2.onnx", "wv2.json", "README.md"):
        shutil.copy(model_card.MODELS_DIR / name, folder / name)
    monkeypatch.setattr(model_card, "MODELS_DIR", folder)
    return folder


def test_export_without_out_refuses_a_checkpoint_of_another_recipe(tiny_run, models_copy, capsys):
    """`export --checkpoint runs/smoke/stage2.pt` (no --out) replaced the bundled wv2.onnx, its card and the folder's
    README with a smoke run, silently. Now refused, nothing written; --replace-bundled replaces it and says so."""
    from model_core.__main__ import main

    before = {p.name: _sha(p) for p in models_copy.iterdir()}
    assert main(["export", "--checkpoint", str(tiny_run), "--no-evaluate"]) == 2
    err = capsys.readouterr().err
    assert "not trained by the bundled wv2 model's recipe" in err and "--replace-bundled" in err
    assert {p.name: _sha(p) for p in models_copy.iterdir()} == before
    assert main(["export", "--checkpoint", str(tiny_run), "--no-evaluate", "--replace-bundled"]) == 0
    assert "replacing the bundled wv2 model" in capsys.readouterr().err
    assert _sha(models_copy / "wv2.onnx") != before["wv2.onnx"]
    assert json.loads((models_copy / "wv2.json").read_text())["training"]["steps"] == 6   # the tiny run's card
    assert sorted(p.name for p in models_copy.iterdir()) == sorted(before)   # no temporary file left beside them


def test_the_bundled_recipe_is_recognised_by_its_config():
    """What `make train SENSOR=…` trains may replace the bundled model without --out: the shipped weights of the wv2
    and landsat8 models are their sensors' recipes (qb shares wv2's); a smoke config is none."""
    from model_core.config import is_bundled_recipe, load_config
    from model_core.weights import WEIGHTS_DIR

    wv2 = torch.load(WEIGHTS_DIR / "rr4_ksdiff_hpm_step1_prered_trval_warm_seed0.pt", weights_only=True)["config"]
    l8 = torch.load(WEIGHTS_DIR / "landsat8_ksdiff_hpm_step1_prered_trval_seed2.pt", weights_only=True)["config"]
    assert is_bundled_recipe(wv2, "elsewhere.pt", "wv2") and is_bundled_recipe(wv2, "elsewhere.pt", "qb")
    assert is_bundled_recipe(l8, "elsewhere.pt", "landsat8") and not is_bundled_recipe(l8, "elsewhere.pt", "wv2")
    other = json.loads(json.dumps(wv2))
    other["stages"][-1]["steps"] = 50
    assert not is_bundled_recipe(other, "elsewhere.pt", "wv2")
    assert not is_bundled_recipe(load_config("wv2_ssdiff.yaml"), "x.pt", "wv2")


def _leaky(cfg: dict, data_dir: Path) -> dict:
    """``cfg`` whose test case is its training pair (by absolute path; training names it under data.root)."""
    pair = {"pan": str(data_dir / "wv2_pan.tif"), "ms": str(data_dir / "wv2_ms.tif")}
    return dict(cfg, test={"reduced": {"kind": "pair", **pair}, "full": dict(pair)})


def test_export_refuses_to_score_a_test_case_the_model_trained_on(tiny_run, tmp_path, data_dir, capsys):
    """export's card metrics are "the config's held-apart test case": a checkpoint whose config trained on it is
    refused (--no-evaluate, which writes no such claim, still exports)."""
    from model_core.__main__ import main

    ck = torch.load(tiny_run, weights_only=True)
    ck["config"] = _leaky(ck["config"], data_dir)
    leaky = tmp_path / "leaky.pt"
    torch.save(ck, leaky)
    out = tmp_path / "m.onnx"
    assert main(["export", "--checkpoint", str(leaky), "--out", str(out)]) == 2
    assert "test case is not held apart" in capsys.readouterr().err and not out.exists()
    assert main(["export", "--checkpoint", str(leaky), "--out", str(out), "--no-evaluate"]) == 0


def test_export_refuses_an_existing_out_and_a_missing_folder(tiny_run, tmp_path, capsys):
    """`export --out` replaced an existing model and its card silently and made a missing folder. Now: refused
    (nothing written, the folder not made) unless --overwrite; a missing folder is named."""
    from model_core.__main__ import main

    missing = tmp_path / "no_such_folder" / "m.onnx"
    assert main(["export", "--checkpoint", str(tiny_run), "--out", str(missing), "--no-evaluate"]) == 2
    assert f"the folder {missing.parent} does not exist" in capsys.readouterr().err
    assert not missing.parent.exists()
    out = tmp_path / "m.onnx"
    out.write_bytes(b"someone's model")
    out.with_suffix(".json").write_text("{}")
    assert main(["export", "--checkpoint", str(tiny_run), "--out", str(out), "--no-evaluate"]) == 2
    assert "m.onnx and its card m.json already exist" in capsys.readouterr().err
    assert out.read_bytes() == b"someone's model" and out.with_suffix(".json").read_text() == "{}"
    assert main(["export", "--checkpoint", str(tiny_run), "--out", str(out), "--no-evaluate", "--overwrite"]) == 0
    assert json.loads(out.with_suffix(".json").read_text())["sensor"] == "wv2"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("m.", ".m."))) == ["m.json", "m.onnx"]


def test_help_names_every_option(capsys):
    """`export --help` showed --checkpoint without a word; `profile --help` --out without its default, which replaces
    model_core/PROFILE.json."""
    from model_core.__main__ import main

    for cmd, words in (("export", "a training checkpoint (runs/<config>/<stage>.pt)"),
                       ("profile", "model_core/PROFILE.json")):
        with pytest.raises(SystemExit):
            main([cmd, "--help"])
        assert words in " ".join(capsys.readouterr().out.split())


def test_model_files_are_refused_up_front_in_words(tmp_path, capsys):
    """QA round 90: `export --out new.json` traced for a minute, then "'utf-8' codec can't decode byte"; an existing
    card as --out read "mine30.json and its card mine30.json already exist"; `int8 --model` of a model without its
    card gave a raw "[Errno 2]"; `evaluate --onnx stage1.pt` asked for a stage1.json. Each is refused before any work,
    in the words the plugin uses for a model without its card."""
    from ksdiff_qgis.engine.model_card import MODELS_DIR
    from model_core.__main__ import main
    from model_core.weights import WEIGHTS_DIR

    ck = str(sorted(WEIGHTS_DIR.glob("*.pt"))[0])
    card = tmp_path / "mine30.json"
    card.write_text("{}")
    for out in (card, tmp_path / "new.json"):
        assert main(["export", "--checkpoint", ck, "--out", str(out), "--no-evaluate"]) == 2
        assert f"--out {out}: give the model's file name, ending in .onnx" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["mine30.json"] and card.read_text() == "{}"
    nocard = tmp_path / "nocard.onnx"
    shutil.copy(MODELS_DIR / "wv2.onnx", nocard)
    assert main(["int8", "--model", str(nocard)]) == 2
    assert ("int8: the model nocard.onnx has no model card (nocard.json beside it): copy the nocard.json exported "
            "with it into the same folder") in capsys.readouterr().err
    stage1 = tmp_path / "stage1.pt"
    shutil.copy(ck, stage1)
    assert main(["evaluate", "--onnx", str(stage1)]) == 2
    assert (f"{stage1} is not an ONNX file: give the model's .onnx file, its card <name>.json beside it (stage1.pt is "
            "a training checkpoint: score it with --checkpoint)") in capsys.readouterr().err


def test_evaluate_refuses_a_model_of_other_bands_in_one_line(tmp_path, data_dir, capsys):
    """QA round 90: an 8-band model scored on a 4-band config printed ONNX Runtime's traceback ("Got invalid dimensions
    for input: lms … Got: 4 Expected: 8"); now one line naming both band counts, exit 2, as the plugin and as the ratio
    check beside it."""
    import yaml

    from ksdiff_qgis.engine.model_card import bundled_cards
    from model_core.__main__ import main

    pair = {"pan": str(data_dir / "wv2_test_pan.tif"), "ms": str(data_dir / "wv2_test_ms.tif")}
    config = tmp_path / "my_sensor.yaml"
    config.write_text(yaml.safe_dump({"base": ["base/ksdiff_fusionnet.yaml"], "sensor": "wv2",
                                      "test": {"reduced": {"kind": "pair", **pair}, "full": pair}}))
    assert main(["evaluate", "--onnx", str(bundled_cards()["wv3"]), "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert ("evaluate: the model wv3.onnx expects 8 MS bands (Coastal, Blue, Green, Yellow, Red, Red Edge, NIR1, "
            "NIR2); my_sensor.yaml's test case (sensor wv2) has 4") in err and len(err.strip().splitlines()) == 1, err


def test_export_prints_a_summary_not_the_card(tiny_run, tmp_path, capsys):
    """QA round 90: export printed the whole card, its int8 scale tables thousands of lines long; now a summary with
    the card's path."""
    from model_core.__main__ import main

    out = tmp_path / "m.onnx"
    assert main(["export", "--checkpoint", str(tiny_run), "--out", str(out), "--no-evaluate"]) == 0
    printed = capsys.readouterr().out
    summary, card = json.loads(printed), json.loads(out.with_suffix(".json").read_text())
    assert summary["model"] == str(out) and summary["card"] == str(out.with_suffix(".json"))
    assert summary["onnx_sha256"] == card["onnx_sha256"] and summary["training"]["steps"] == 6
    assert summary["int8_calibration"] == card["tile_kernels"]["int8"]["calibration"]
    whole = len(json.dumps(card, indent=1).splitlines())
    assert len(printed.splitlines()) < 50 < whole and "activations" not in printed, (len(printed.splitlines()), whole)
