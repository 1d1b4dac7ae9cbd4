"""model_core export: ONNX Runtime equals PyTorch for every network, model card contract, CLI end to end."""
from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import yaml

from model_core.__main__ import main as cli
from model_core.export import export, export_onnx, sha256_file, verify_card, write_card
from model_core.nets import build_model

torch.set_num_threads(1)
CARD_KEYS = {"format_version", "sensor", "sensor_name", "bands", "ratio", "scale", "method", "backbone", "inputs",
             "output", "layout", "normalisation", "margin", "size_multiple", "parameters", "training", "metrics"}


@pytest.mark.parametrize("method,backbone,bands", [("fusionnet", "fusionnet", 4), ("pannet", "pannet", 8),
                                                   ("ksdiff", "fusionnet", 4), ("ksdiff", "pannet", 8),
                                                   ("ssdiff", "fusionnet", 4)])
def test_onnx_matches_torch(tmp_path, method, backbone, bands):
    torch.manual_seed(0)
    model = build_model(method, bands, backbone).eval()
    if method == "ksdiff":  # non-zero kernel updates, so the modulated path is exercised
        torch.nn.init.normal_(model.kgen.core_gen[-1].weight, std=0.2)
    path = export_onnx(model, tmp_path / "m.onnx", bands)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["pan", "lms"] and sess.get_outputs()[0].name == "hrms"
    rng = np.random.default_rng(1)
    for n, h, w in [(1, 32, 48), (2, 40, 28)]:  # dynamic batch, height and width
        lms = rng.uniform(0.05, 0.4, (n, bands, h, w)).astype(np.float32)
        pan = (lms.mean(1, keepdims=True) + rng.normal(0, 0.02, (n, 1, h, w))).astype(np.float32)
        with torch.no_grad():
            ref = model(torch.from_numpy(pan), torch.from_numpy(lms)).numpy()
        out = sess.run(["hrms"], {"pan": pan, "lms": lms})[0]
        assert out.shape == (n, bands, h, w)
        assert np.abs(out - ref).max() < 1e-4


def test_card_written_beside_and_embedded(tmp_path):
    model = build_model("ksdiff", 4, "fusionnet")
    cfg = {"sensor": "wv2", "method": "ksdiff", "backbone": "fusionnet"}
    training = {"config": "x.yaml", "steps": 0, "seconds": 0.0, "seed": 0, "git_revision": "abc", "data": []}
    path = tmp_path / "wv2.onnx"
    card = export(model, cfg, path, training)
    assert CARD_KEYS <= set(card)
    assert card["onnx_sha256"] == sha256_file(path)
    assert card["bands"] == ["Blue", "Green", "Red", "NIR"] and card["ratio"] == 4 and card["scale"] == 2047.0
    assert card["margin"] == model.backbone.margin == 10 and card["size_multiple"] == 1
    assert json.loads(path.with_suffix(".json").read_text()) == card
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    embedded = json.loads(meta["model_card"])
    assert "onnx_sha256" not in embedded and embedded == {k: v for k, v in card.items() if k != "onnx_sha256"}
    assert verify_card(path) == card
    from ksdiff_qgis.engine.model_card import check_against_data, load_card  # the plugin's reader accepts it

    pc = load_card(path)
    check_against_data(pc, 4, 4)
    assert pc.input_names == ("pan", "lms") and pc.output_name == "hrms" and pc.margin == 10
    card2 = write_card(path, dict(card, metrics={"SAM": 1.0}))  # re-writing replaces the embedded card
    assert verify_card(path)["metrics"] == {"SAM": 1.0} and card2["onnx_sha256"] != card["onnx_sha256"]


@pytest.fixture(scope="module")
def fixture_run(tmp_path_factory, data_dir):
    """A KSDiff run of 2 + 2 steps on the real fixture, trained by the CLI: (its folder, its config file)."""
    tmp_path = tmp_path_factory.mktemp("fixture_run")
    cfg = {"sensor": "wv2", "method": "ksdiff", "backbone": "fusionnet", "seed": 0,
           "model": {"dim": 32, "tokens": 4, "struct_tokens": 4, "sample_steps": 2, "enc_widths": [8, 16, 32]},
           "data": {"root": str(data_dir), "patch": 32, "stride": 8, "batch": 2,
                    "train": [{"kind": "pair", "pan": "wv2_pan.tif", "ms": "wv2_ms.tif"}],
                    "val": [{"kind": "pair", "pan": "wv2_pan.tif", "ms": "wv2_ms.tif"}]},
           "stages": [{"name": "stage1", "steps": 2, "ema": 0.9}, {"name": "stage2", "steps": 2}],
           "train": {"val_every": 2, "val_batches": 1, "threads": 1, "device": "cpu", "out_dir": str(tmp_path / "run")},
           # the test case held apart from train and val (train refuses one that is training data)
           "test": {"reduced": {"kind": "pair", "pan": "wv2_test_pan.tif", "ms": "wv2_test_ms.tif"},
                    "full": {"pan": "wv2_test_pan.tif", "ms": "wv2_test_ms.tif"}}}
    cfg_path = tmp_path / "fixture.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    assert cli(["train", "--config", str(cfg_path)]) == 0
    return tmp_path / "run", cfg_path


def test_cli_train_export_evaluate(tmp_path, fixture_run):
    run, cfg_path = fixture_run
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert any("val_sam" in r for r in log)
    onnx_path = tmp_path / "wv2.onnx"
    assert cli(["export", "--checkpoint", str(run / "stage2.pt"), "--out", str(onnx_path)]) == 0
    card = verify_card(onnx_path)
    assert "unfinished" not in card["training"]
    # a checkpoint before the run's end: its card says so (it listed every stage as if trained), never bundled
    early = tmp_path / "early.onnx"
    assert cli(["export", "--checkpoint", str(run / "stage1.pt"), "--out", str(early),
                "--no-evaluate"]) == 0
    assert "stage stage1" in verify_card(early)["training"]["unfinished"]
    assert cli(["export", "--checkpoint", str(run / "stage1.pt"), "--no-evaluate"]) == 2
    assert card["training"]["steps"] == 4 and card["training"]["data"]
    # the card's evaluation numbers are written once, at export (the config's test case)
    assert {"SAM", "ERGAS", "Q2n"} <= set(card["metrics"]["scenes"]["reduced/" + next(
        k.split("/", 1)[1] for k in card["metrics"]["scenes"] if k.startswith("reduced/"))])
    assert not (tmp_path / "README.md").exists()   # the models README is only written into the plugin's folder
    for src in (["--onnx", str(onnx_path)], ["--checkpoint", str(run / "stage2.pt")]):
        out = tmp_path / "eval.json"
        assert cli(["evaluate", *src, "--config", str(cfg_path), "--out", str(out), "--threads", "1"]) == 0
        res = json.loads(out.read_text())
        assert {"SAM", "ERGAS", "Q2n", "SCC"} <= set(res["reduced"]) and "HQNR" in res["full"]
        assert np.isfinite(res["reduced"]["SAM"])
        # the reprojection indices are measured (the MS was not passed: always NaN, written as a bare NaN token)
        assert all(res["full"][k] is not None and np.isfinite(res["full"][k]) for k in ("R_Q2n", "R_SAM", "R_ERGAS"))
        assert "NaN" not in out.read_text()


def test_a_card_from_an_intermediate_checkpoint_describes_those_weights(tmp_path, fixture_run):
    """Exported from stage1_last.pt (and stage1.pt), the card names stage 1 and its 2 steps: it named every stage of
    the run folder and summed the steps of every final checkpoint in it (4) before 2026-12-07."""
    run, _ = fixture_run
    for name in ("stage1_last.pt", "stage1.pt"):
        out = tmp_path / f"{name}.onnx"
        assert cli(["export", "--checkpoint", str(run / name), "--out", str(out), "--no-evaluate"]) == 0
        training = verify_card(out)["training"]
        assert (training["stages"], training["steps"]) == (["stage1"], 2)
        assert training["seconds"] == round(torch.load(run / name, weights_only=True)["seconds"], 1)
    whole = tmp_path / "stage2.onnx"
    assert cli(["export", "--checkpoint", str(run / "stage2.pt"), "--out", str(whole), "--no-evaluate"]) == 0
    assert (verify_card(whole)["training"]["stages"], verify_card(whole)["training"]["steps"]) == (["stage1",
                                                                                                     "stage2"], 4)


def test_as_sensor_says_how_the_network_was_trained_and_where_it_was_written(tmp_path, fixture_run):
    """--as-sensor with --out: the card says what the config trained (here no MTF randomisation) and that the file was
    exported for the sensor; it said "PAN and MS MTF randomised) bundled for this sensor" of every export."""
    run, _ = fixture_run
    out = tmp_path / "qb.onnx"
    assert cli(["export", "--checkpoint", str(run / "stage2.pt"), "--out", str(out), "--as-sensor", "qb",
                "--no-evaluate"]) == 0
    card = verify_card(out)
    assert card["sensor"] == "qb"
    serves = card["training"]["serves_sensor"]
    assert "no MTF randomisation" in serves and serves.endswith("exported for this sensor"), serves
    assert "randomised)" not in serves and "bundled" not in serves
    # the bundled 4-band network's config varies both (pan_gains / pan_variants and ms_gains of its sources)
    from model_core.config import load_config
    from model_core.export import mtf_training

    assert mtf_training(load_config(None, "qb")) == "PAN and MS MTF randomised"


def test_an_unknown_as_sensor_is_named_in_one_line(tmp_path, fixture_run, capsys):
    """The sensor's own message, as is: it was printed as `missing "unknown sensor 'foo'; known sensors: …"`."""
    run, _ = fixture_run
    assert cli(["export", "--checkpoint", str(run / "stage2.pt"), "--out", str(tmp_path / "x.onnx"), "--as-sensor",
                "foo", "--no-evaluate"]) == 2
    err = capsys.readouterr().err
    assert "python -m model_core export: unknown sensor 'foo'; known sensors: " in err and "missing" not in err
    assert not list(tmp_path.iterdir())


def test_evaluate_onnx_takes_only_what_the_plugin_takes(tmp_path, capsys):
    """evaluate --onnx reads the card beside the file as the plugin does: a copy of the bundled model without its card,
    with invalid JSON beside it, or truncated (with its card's sha256 or one made to match) gets one line and exit 2
    (the first two were scored with the card inside the file, the truncated ones were tracebacks)."""
    import shutil

    from ksdiff_qgis.engine.model_card import bundled_cards

    src = bundled_cards()["wv2"]
    cases = {"nocard": "has no model card (nocard.json beside it)", "badjson": "badjson.json is not valid JSON",
             "truncated": "truncated.onnx does not match its card",
             "rehashed": "ONNX Runtime cannot load the model rehashed.onnx"}
    for name in cases:
        shutil.copy(src, tmp_path / f"{name}.onnx")
    shutil.copy(src.with_suffix(".json"), tmp_path / "truncated.json")
    (tmp_path / "badjson.json").write_text("{not json")
    data = (tmp_path / "truncated.onnx").read_bytes()
    (tmp_path / "truncated.onnx").write_bytes(data[: len(data) // 2])
    (tmp_path / "rehashed.onnx").write_bytes(data[: len(data) // 2])   # truncated, its card's sha256 made to match
    card = json.loads(src.with_suffix(".json").read_text())
    (tmp_path / "rehashed.json").write_text(json.dumps(dict(card, onnx_sha256=sha256_file(tmp_path / "rehashed.onnx"))))
    for name, words in cases.items():
        assert cli(["evaluate", "--onnx", str(tmp_path / f"{name}.onnx"), "--threads", "1"]) == 2, name
        err = capsys.readouterr().err
        assert words in err and len(err.strip().splitlines()) == 1, (name, err)


def test_a_weights_file_of_a_finished_run_is_a_finished_run(tmp_path, fixture_run):
    """``weights.save_weights`` dropped the ``done`` flag, so the shipped weights and every weights file export wrote
    read as 'stage fullres at step 200, not the end of the run (its last stage fullres, 200 steps)': export refused
    them without --out and put that sentence on the card (QA). The last stage's final step is the end."""
    from model_core.export import checkpoint_record
    from model_core.weights import WEIGHTS_DIR, save_weights

    run, _ = fixture_run
    saved = save_weights(torch.load(run / "stage2.pt", weights_only=False), tmp_path / "w.pt")
    assert "unfinished" not in checkpoint_record(saved, torch.load(saved, weights_only=False))
    for shipped in sorted(WEIGHTS_DIR.glob("*.pt")):   # written before the flag was kept
        assert "unfinished" not in checkpoint_record(shipped, torch.load(shipped, weights_only=False)), shipped.name
    mid = torch.load(run / "stage1.pt", weights_only=False)
    assert "unfinished" in checkpoint_record(run / "stage1.pt", mid)
