"""``python -m model_core int8 --model M.onnx`` on a model trained from a config kept outside model_core/configs
(QA round 57): it looked the card's bare ``training.config`` up in the working folder and stopped with "[Errno 2] No
such file or directory: '<cwd>/my_sensor.yaml'", also with --pan/--ms given. Export now records where the config is
(``training.config_path``); int8 looks there, beside the model, in model_core/configs and in the working folder, does
without it when --pan/--ms calibrate, and otherwise names the places it looked and the flags to give."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture()
def own_model(small_cfg, tmp_path, monkeypatch):
    """A tiny KSDiff trained, as a user does, with ``train --config my_sensor.yaml`` from the config's own folder,
    and exported there: (the ONNX file, the config)."""
    from model_core.__main__ import main

    work = tmp_path / "mine"
    work.mkdir()
    config = work / "my_sensor.yaml"
    config.write_text(yaml.safe_dump(small_cfg("run")))
    monkeypatch.chdir(work)
    assert main(["train", "--config", "my_sensor.yaml"]) == 0
    (tmp_path / "models").mkdir()
    model = tmp_path / "models" / "my_sensor.onnx"
    assert main(["export", "--checkpoint", str(tmp_path / "run" / "fullres.pt"), "--out", str(model),
                 "--no-evaluate"]) == 0
    monkeypatch.chdir(ROOT)   # as model_core/README.md runs it: from the repository
    return model, config


def card(model: Path) -> dict:
    return json.loads(model.with_suffix(".json").read_text())


def test_int8_finds_the_config_the_trainer_recorded(own_model, capsys):
    from model_core.__main__ import main

    model, config = own_model
    training = card(model)["training"]
    assert training["config"] == "my_sensor.yaml" and training["config_path"] == str(config)
    # export calibrated on the config's data.root (it looked in the data cache alone and left int8 out)
    assert card(model)["tile_kernels"]["int8"]["calibration"]["patches"] > 0
    capsys.readouterr()
    assert main(["int8", "--model", str(model)]) == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out)["model"] == str(model)
    assert card(model)["tile_kernels"]["int8"]["calibration"]["patches"] > 0


def test_int8_with_a_pair_needs_no_config_and_without_one_says_where_it_looked(own_model, data_dir, capsys):
    from model_core.__main__ import main

    model, config = own_model
    config.unlink()
    capsys.readouterr()
    assert main(["int8", "--model", str(model), "--pan", str(data_dir / "wv2_pan.tif"),
                 "--ms", str(data_dir / "wv2_ms.tif")]) == 0, capsys.readouterr().err
    assert card(model)["tile_kernels"]["int8"]["calibration"]["patches"] > 0
    capsys.readouterr()
    assert main(["int8", "--model", str(model)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"python -m model_core int8: my_sensor.onnx was trained from my_sensor.yaml, which is not in "
                          f"{config}, {model.parent / 'my_sensor.yaml'}, {ROOT / 'model_core' / 'configs'}"), err
    assert "put the config beside the model, or give a calibration pair with --pan and --ms" in err
    assert "Errno" not in err
    assert main(["int8", "--model", str(model), "--pan", str(data_dir / "wv2_pan.tif")]) == 2
    assert "give --pan and --ms together" in capsys.readouterr().err


def test_an_older_card_finds_the_config_beside_the_model(own_model, capsys):
    """A card exported before config_path was recorded: the config copied beside the model is found."""
    from model_core.__main__ import main
    from model_core.export import write_card

    model, config = own_model
    old = card(model)
    del old["training"]["config_path"]
    old.pop("onnx_sha256")
    write_card(model, old)
    shutil.move(config, model.parent / config.name)
    capsys.readouterr()
    assert main(["int8", "--model", str(model)]) == 0, capsys.readouterr().err


def test_int8_on_a_small_pair_warns_with_the_count_and_the_card_records_the_pair(tmp_path, data_dir, capsys):
    """QA round 90: `int8 --pan/--ms` on a small scene calibrated on 5 patches (32 per contrast class from the training
    data) without a word, and the card did not say on what. Now a warning with the count, and the card's
    calibration names the pair beside the patch count."""
    from ksdiff_qgis.engine.model_card import MODELS_DIR
    from model_core.__main__ import main

    model = tmp_path / "wv2.onnx"
    for suffix in (".onnx", ".json"):
        shutil.copy(MODELS_DIR / f"wv2{suffix}", model.with_suffix(suffix))
    pan, ms = data_dir / "wv2_pan.tif", data_dir / "wv2_ms.tif"   # 256² PAN pixels: a few 128² patches
    assert main(["int8", "--model", str(model), "--pan", str(pan), "--ms", str(ms)]) == 0
    calibration = card(model)["tile_kernels"]["int8"]["calibration"]
    assert calibration["patches"] < 32 and calibration["data"] == f"the pair {pan} + {ms}"
    assert (f"warning: the int8 variant is calibrated on only {calibration['candidates']} patches of 128² pixels (the "
            f"pair {pan} + {ms};") in capsys.readouterr().err
