"""QA of a researcher training a model for an unbundled sensor: misplaced config keys, a generic sensor's own MTF gains,
the adapted card's base metrics and scene licence, the plugin's note on a model of an unfinished run, the int8 hint
and progress messages, the band-name warning for a model of unnamed bands, and the empty data root's message."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from model_core.__main__ import main

# a KSDiff small enough to train a few steps on the 64-px fixture in seconds (conftest.SMALL_KSDIFF)
SMALL = {"width": 16, "blocks": 2, "modulate": "all", "modulate_ends": True, "dim": 16, "tokens": 4,
         "struct_tokens": 4, "sample_steps": 2, "enc_widths": [8, 16, 32], "live": True, "tile_norm": True,
         "prefuse": True}
GAINS = {"mtf_ms": [0.28, 0.29, 0.27, 0.25], "mtf_pan": 0.12}


def _config(folder: Path, data_dir: Path, name: str = "mine.yaml", **top) -> Path:
    """A user's own config outside model_core/configs on the real WorldView-2 fixture: a tiny KSDiff, stages of two
    steps each, the run in ``folder/runs``."""
    cfg = {"base": ["base/ksdiff_adaptive.yaml"], "sensor": "generic", "model": dict(SMALL),
           "data": {"root": str(data_dir), "patch": 32, "batch": 4, "stride": 8,
                    # absolute, as a user's own: the int8 variant is calibrated on them too
                    "train": [{"kind": "pair", "pan": str(data_dir / "wv2_pan.tif"),
                               "ms": str(data_dir / "wv2_ms.tif"), "share": 1.0, "licence": "CC BY-SA 4.0 (Maxar)"}],
                    "val": [],
                    "fullres": {"patch": 32, "sources": [{"pan": "wv2_pan.tif", "ms": "wv2_ms.tif"}]}},
           "test": {"reduced": {"kind": "pair", "pan": "wv2_test_pan.tif", "ms": "wv2_test_ms.tif"},
                    "full": {"pan": "wv2_test_pan.tif", "ms": "wv2_test_ms.tif"}},
           "stages": [{"name": "stage1", "steps": 2, "warmup": 1, "lr": 1e-3},
                      {"name": "stage2", "steps": 2, "warmup": 1, "lr": 5e-4, "prior_weight": 1.0}],
           "train": {"val_every": 1000, "ckpt_every": 1000, "device": "cpu", "threads": 1,
                     "out_dir": str(folder / "runs" / Path(name).stem)}, **top}
    path = folder / name
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="module")
def unfinished(tmp_path_factory, data_dir):
    """A generic model with its own MTF gains, trained 2 of its 4 steps (`--max-steps 2`) and exported with --out:
    (config, checkpoint, model, export's stderr)."""
    import contextlib
    import io
    import logging

    folder = tmp_path_factory.mktemp("own_gains")
    path = _config(folder, data_dir, **GAINS)
    assert main(["train", "--config", str(path), "--max-steps", "2"]) == 0
    ck = folder / "runs" / "mine" / "stage1.pt"
    out = folder / "mine.onnx"
    err, logged = io.StringIO(), []

    class Kept(logging.Handler):   # what reaches the root logger's handlers (pytest's own capture included)
        def emit(self, record: logging.LogRecord) -> None:
            logged.append(record.getMessage())

    kept = Kept()
    logging.getLogger().addHandler(kept)
    try:
        with contextlib.redirect_stderr(err):
            assert main(["export", "--checkpoint", str(ck), "--out", str(out)]) == 0
    finally:
        logging.getLogger().removeHandler(kept)
    return path, ck, out, err.getvalue() + "\n".join(logged)


@pytest.mark.parametrize("section, key", [("train", "lr"), ("train", "steps"), ("data", "warmup")])
def test_a_known_key_in_the_wrong_section_is_refused(tmp_path, data_dir, section, key):
    """`train: {lr: 0.1}` or `train: {steps: 5}` (keys of a stage) were ignored silently and config.json kept them:
    the check only asked whether the name was used anywhere. Now each section takes its own keys."""
    from model_core.config import load_config

    path = _config(tmp_path, data_dir)
    cfg = yaml.safe_load(path.read_text())
    cfg[section][key] = 5
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ValueError, match=rf"'{key}' is not a key of '{section}'; it belongs in a stage"):
        load_config(path)
    assert main(["train", "--config", str(path)]) == 2
    assert not (tmp_path / "runs").exists()
    # every data source takes the same keys: a licence, rows or a name on a test case or a validation entry
    cfg[section].pop(key)
    cfg["test"]["reduced"].update(licence="CC BY-SA 4.0", name="held-apart crop")
    cfg["data"]["val"] = [{"kind": "pair", "pan": "wv2_pan.tif", "ms": "wv2_ms.tif", "rows": [0.8, 1.0],
                           "licence": "CC BY-SA 4.0"}]
    path.write_text(yaml.safe_dump(cfg))
    assert load_config(path)["test"]["reduced"]["licence"] == "CC BY-SA 4.0"


def test_mtf_gains_are_a_generic_sensors_and_refused_for_a_named_one(tmp_path, data_dir):
    """`mtf_ms` / `mtf_pan` were refused as unknown keys: a generic model always trained with 0.3 / 0.15. They now
    set the generic sensor's Wald degradation; a named sensor's gains are known, so there they are refused."""
    from model_core.config import load_config, sensor_spec
    from model_core.datacheck import checked

    cfg = checked(load_config(_config(tmp_path, data_dir, **GAINS)))
    spec = sensor_spec(cfg)
    assert spec.mtf_ms == tuple(GAINS["mtf_ms"]) and spec.mtf_pan == 0.12
    assert "unless given" not in spec.name and "0.28, 0.29, 0.27, 0.25 for MS, 0.12 for PAN" in spec.name
    assert "(mtf_ms / mtf_pan)" in cfg["data_layout"]["how"]
    one = sensor_spec(checked(load_config(_config(tmp_path, data_dir, "one.yaml", mtf_ms=0.2))))
    assert one.mtf_ms == (0.2,) * 4 and one.mtf_pan == 0.15
    with pytest.raises(ValueError, match="sensor wv2's are known .*remove mtf_ms and mtf_pan"):
        load_config(_config(tmp_path, data_dir, "wv2.yaml", sensor="wv2", **GAINS))
    with pytest.raises(ValueError, match="3 MS MTF gains; the data have 4 bands"):
        checked(load_config(_config(tmp_path, data_dir, "three.yaml", mtf_ms=[0.3, 0.3, 0.3])))
    with pytest.raises(ValueError, match="between 0 and 1"):
        load_config(_config(tmp_path, data_dir, "big.yaml", mtf_pan=1.5))


def test_the_card_of_a_generic_model_states_its_own_gains_and_evaluate_uses_them(unfinished):
    from model_core.config import sensor_spec
    from model_core.datacheck import card_layout

    card = json.loads(unfinished[2].with_suffix(".json").read_text())
    assert card["mtf"] == {"ms": GAINS["mtf_ms"], "pan": 0.12}
    assert "unless given" not in card["sensor_name"] and "0.12 for PAN" in card["sensor_name"]
    spec = sensor_spec({"sensor": "generic", "data_layout": card_layout(card)})   # evaluate --onnx of the card
    assert spec.mtf_ms == tuple(GAINS["mtf_ms"]) and spec.mtf_pan == 0.12


def test_export_says_its_stages_without_onnxruntimes_preprocessing_hint(unfinished):
    """export printed onnxruntime's "Please consider to run pre-processing before quantization" twice and nothing
    else for a minute or more; now one line per long step, and not that hint."""
    err = unfinished[3]
    assert "pre-processing before quantization" not in err
    for words in ("tracing the network into ONNX", "calibrating the int8 variant", "scoring the reduced-resolution"):
        assert f"model_core: {words}" in err, err


def test_the_plugin_warns_of_a_model_from_an_unfinished_run(unfinished):
    """The card said `training.unfinished`; the plugin used such a model without a word."""
    from ksdiff_qgis.engine.feedback import RecordingFeedback
    from ksdiff_qgis.engine.pipeline import resolve_model

    fb = RecordingFeedback()
    resolve_model("generic", str(unfinished[2]), fb)
    said = " ".join(line for line in fb.lines if line.startswith("WARNING"))
    assert "unfinished training run: it stopped at step 2 of 4" in said
    assert "not those of the finished recipe" in said


def test_adapt_from_a_checkpoint_says_where_the_base_scores_are_and_uses_the_models_gains(unfinished, tmp_path,
                                                                                         data_dir, monkeypatch):
    """`adapt --checkpoint`: measured_by sent the reader to training.base.metrics, which held none; and the self-check
    degraded with the generic gains, not the model's own."""
    import model_core.adapt as adapt_module

    seen = []
    check = adapt_module.scene_check

    def recording(*args, **kwargs):
        seen.append(kwargs.get("gains", args[5] if len(args) > 5 else None))
        return check(*args, **kwargs)

    monkeypatch.setattr(adapt_module, "scene_check", recording)
    out = tmp_path / "adapted.onnx"
    assert main(["adapt", "--checkpoint", str(unfinished[1]), "--pan", str(data_dir / "wv2_test_pan.tif"), "--ms",
                 str(data_dir / "wv2_test_ms.tif"), "--out", str(out), "--steps", "1", "--patch", "32",
                 "--keep-worse"]) == 0
    card = json.loads(out.with_suffix(".json").read_text())
    words = card["metrics"]["measured_by"]
    assert "training.base.metrics" not in words and "metrics" not in card["training"]["base"]
    assert "has no metrics either" in words and "model_core evaluate --checkpoint" in words
    assert seen == [(tuple(GAINS["mtf_ms"]), 0.12)] * 2
    assert card["mtf"] == {"ms": GAINS["mtf_ms"], "pan": 0.12}


def test_an_adapted_scene_in_make_datas_folders_keeps_its_licence(tmp_path):
    """The card said "the user's own scene" for wv2/pair1 of `make data` (Maxar, CC BY-SA 4.0)."""
    from model_core.adapt import adapted_record, scene_licence
    from model_core.datacache import data_dir

    known = data_dir() / "wv2" / "pair1_ms.tif"
    assert scene_licence(known).startswith("CC BY-SA 4.0 (Maxar")
    assert scene_licence(tmp_path / "mine_ms.tif") == "the user's own scene"
    record = adapted_record({"data": []}, "x.pt", f"pan + {known}", 1, 1.0, "rev", scene_licence(known))
    assert record["data"][-1]["licence"].startswith("CC BY-SA 4.0 (Maxar")


def test_a_model_of_unnamed_bands_gets_no_band_name_warning(data_dir):
    """A generic model trained on rasters without band descriptions (its bands "Band 1"..."Band 4") warned "the MS
    bands are named Blue..NIR, but the model learned Band 1..." on every run on named data; a model with real names
    that differ still warns."""
    from osgeo import gdal

    from ksdiff_qgis.engine.bands import plan_bands
    from ksdiff_qgis.engine.raster_io import describe
    from ksdiff_qgis.engine.sensors import get_sensor

    ms = describe(gdal.Open(str(data_dir / "wv2_ms.tif")), str(data_dir / "wv2_ms.tif"))   # Blue, Green, Red, NIR
    generic = get_sensor("generic")
    assert not plan_bands(ms, generic, None, [f"Band {i}" for i in range(1, 5)]).warnings
    named = plan_bands(ms, generic, None, ["Coastal", "Yellow", "Red Edge", "NIR2"]).warnings
    assert any("fuses them by position" in w for w in named)


def test_a_relative_path_under_an_empty_data_root_names_it_and_suggests_make_data(tmp_path, data_dir, monkeypatch):
    from model_core.config import load_config
    from model_core.datacheck import checked

    empty = tmp_path / "emptydata"
    empty.mkdir()
    monkeypatch.setenv("KSDIFF_DATA", str(empty))
    path = _config(tmp_path, data_dir)
    cfg = yaml.safe_load(path.read_text())
    del cfg["data"]["root"]
    cfg["data"]["train"][0].update(pan="wv2/pair1_pan.tif", ms="wv2/pair1_ms.tif")
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(FileNotFoundError) as e:
        checked(load_config(path))
    assert f"under the data root {empty}:" in str(e.value) and "`make data`" in str(e.value)
    assert "KSDIFF_DATA" in str(e.value)
