"""QA141, ``python -m model_core``: ``int8`` re-signed an edited card or a corrupt network (the plugin then accepted
them) and traced on a truncated file; ``train --device cuda`` without CUDA traced after writing the run folder,
``--device tpu`` too; ``adapt --sensor auto`` listed auto among the sensors it refused; a SIGTERM ended ``train``
without a word."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

ROOT = Path(__file__).resolve().parent.parent


def _digest(*paths: Path) -> list[str]:
    return [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]


def _damaged(tmp_path: Path, how: str) -> Path:
    """A copy of the bundled wv2 model and its card, damaged ``how``: its card edited, a byte of the network flipped,
    or the file truncated."""
    from ksdiff_qgis.engine.model_card import MODELS_DIR

    model = tmp_path / how / "wv2.onnx"
    model.parent.mkdir()
    for suffix in (".onnx", ".json"):
        shutil.copy(MODELS_DIR / f"wv2{suffix}", model.with_suffix(suffix))
    data = bytearray(model.read_bytes())
    if how == "edited":
        card = json.loads(model.with_suffix(".json").read_text())
        card["training"]["data"][0]["licence"] = "public domain (edited)"
        model.with_suffix(".json").write_text(json.dumps(card))
    elif how == "flipped":
        data[len(data) * 2 // 3] ^= 0x40   # inside the weights: the file still parses as ONNX
        model.write_bytes(bytes(data))
    else:
        model.write_bytes(bytes(data[:len(data) // 4]))
    return model


@pytest.mark.parametrize(("how", "words"), [
    ("edited", "int8: the model card wv2.json differs from the card inside wv2.onnx: it was edited"),
    ("flipped", "int8: the model file wv2.onnx does not match its card (sha256 "),
    ("truncated", "int8: the model file wv2.onnx does not match its card (sha256 "),
])
def test_int8_refuses_a_model_that_does_not_match_its_card(tmp_path, data_dir, capsys, how, words):
    """Checked as the plugin (and ``evaluate --onnx``) check MODEL before any work: exit 2, one line, both files
    left as they were (it wrote a new sha256 of whatever bytes were there, so the plugin accepted them)."""
    from model_core.__main__ import main

    model = _damaged(tmp_path, how)
    before = _digest(model, model.with_suffix(".json"))
    capsys.readouterr()
    assert main(["int8", "--model", str(model), "--pan", str(data_dir / "wv2_pan.tif"),
                 "--ms", str(data_dir / "wv2_ms.tif")]) == 2
    err = capsys.readouterr().err
    assert words in err and len(err.strip().splitlines()) == 1, err
    assert _digest(model, model.with_suffix(".json")) == before


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_train_refuses_a_device_it_cannot_run_on_before_the_run_folder(tmp_path, small_cfg, capsys):
    """``--device cuda`` without CUDA: "AssertionError: Torch not compiled with CUDA enabled" after config.json was
    written; ``--device tpu`` a RuntimeError. Now argparse's choices, and one line before the run folder is made
    (for a config's train.device too)."""
    from model_core.__main__ import main

    cfg = small_cfg("dev")
    config = tmp_path / "mine.yaml"
    config.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "dev"
    assert main(["train", "--config", str(config), "--max-steps", "1", "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert "train: device 'cuda': this PyTorch is built without CUDA; train with --device cpu (or auto)" in err, err
    assert len(err.strip().splitlines()) == 1 and not out.exists()
    with pytest.raises(SystemExit) as stop:
        main(["train", "--config", str(config), "--device", "tpu"])
    assert stop.value.code == 2 and "invalid choice: 'tpu'" in capsys.readouterr().err
    cfg["train"]["device"] = "tpu"
    config.write_text(yaml.safe_dump(cfg))
    assert main(["train", "--config", str(config), "--max-steps", "1"]) == 2
    assert "unknown device 'tpu' (train.device / --device): use auto, cpu or cuda" in capsys.readouterr().err
    assert not out.exists()


def test_adapt_sensor_auto_names_the_sensors_to_give(data_dir, tmp_path, capsys):
    """It said "unknown sensor 'auto'; known sensors: auto, wv2, …": the list offered what it refused."""
    from model_core.__main__ import main

    assert main(["adapt", "--sensor", "auto", "--pan", str(data_dir / "wv2_test_pan.tif"),
                 "--ms", str(data_dir / "wv2_test_ms.tif"), "--out", str(tmp_path / "x.onnx")]) == 2
    err = capsys.readouterr().err
    assert "sensor auto is the plugin's choice" in err and "give one of wv2, " in err, err
    assert "auto, wv2" not in err and not list(tmp_path.iterdir())


def test_adapt_help_describes_pan_and_ms(capsys):
    from model_core.__main__ import main

    with pytest.raises(SystemExit):
        main(["adapt", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--pan PAN the scene's PAN raster" in text and "--ms MS the scene's MS raster" in text


def test_sigterm_during_train_says_where_to_resume(tmp_path, small_cfg):
    """SIGTERM (timeout, a job scheduler) ended train silently where Ctrl-C says where it stopped and that the same
    command resumes; now the same line, and the process still ends by SIGTERM."""
    cfg = small_cfg("term")
    for st in cfg["stages"]:
        st["steps"] = 500
    cfg["train"].update(ckpt_every=1, threads=1)
    config = tmp_path / "mine.yaml"
    config.write_text(yaml.safe_dump(cfg))
    log = Path(cfg["train"]["out_dir"]) / "log.jsonl"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.Popen([sys.executable, "-m", "model_core", "train", "--config", str(config)], cwd=ROOT,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 240
        while not (log.exists() and log.stat().st_size):   # a checkpoint is written: training runs
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.time() < deadline, "train did not start"
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == -signal.SIGTERM
        err = proc.stderr.read().decode()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()
    assert "train: interrupted in stage stage1 at step " in err and "the same command resumes" in err, err[-2000:]
    assert "Traceback" not in err
