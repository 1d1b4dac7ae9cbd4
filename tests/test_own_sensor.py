"""Training a model for one's own sensor (model_core/README.md, "Train a model for your own sensor"): the data checked
against the sensor before anything is written, the generic sensor trained with the data's layout, the card's licences
and scores, and what `evaluate` and `adapt` say for a sensor without a bundled model or default config."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from fake_models import write_scaled_model

from model_core.__main__ import main

ROOT = Path(__file__).resolve().parent.parent
TINY = {"width": 8, "blocks": 1}   # a bare FusionNet of a few thousand parameters: seconds to train and export


def write_config(tmp_path: Path, data_dir: Path, name: str = "mine.yaml", sensor: str = "wv2",
                 pair: tuple[str, str] = ("wv2_pan.tif", "wv2_ms.tif"), **extra) -> Path:
    """A user's own config (absolute paths, outside model_core/configs): a tiny bare FusionNet, one 2-step stage."""
    pan, ms = (str(data_dir / p) for p in pair)
    cfg = {"base": ["base/fusionnet.yaml"], "sensor": sensor, "model": dict(TINY),
           "data": {"patch": 32, "stride": 8, "batch": 4, "train": [{"kind": "pair", "pan": pan, "ms": ms}],
                    "val": [{"kind": "pair", "pan": pan, "ms": ms}]},
           "test": {"reduced": {"kind": "pair", "pan": str(data_dir / "wv2_test_pan.tif"),
                                "ms": str(data_dir / "wv2_test_ms.tif")},
                    "full": {"pan": str(data_dir / "wv2_test_pan.tif"), "ms": str(data_dir / "wv2_test_ms.tif")}},
           "stages": [{"name": "main", "steps": 2, "lr": 1e-3, "warmup": 1}],
           "train": {"val_every": 1000, "ckpt_every": 1000, "threads": 1, "device": "cpu",
                     "out_dir": str(tmp_path / "runs" / Path(name).stem)}}
    for key, value in extra.items():
        cfg[key] = value
    path = tmp_path / name
    path.write_text(yaml.safe_dump(cfg))
    return path


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def test_train_refuses_data_of_another_ratio_or_band_count_and_a_missing_raster_in_one_line(tmp_path, data_dir,
                                                                                         capsys):
    """QA (a Pléiades-like ratio-4 product): `sensor: landsat8` (ratio 2) trained silently on misaligned crops
    (scenes.align_pan takes the sensor's ratio), `sensor: wv3` on 4 bands ended in a numpy broadcast error and a
    missing MS in a 55-line rasterio traceback. Now each is one line naming the source, exit 2, before any file."""
    cases = {"landsat8": (write_config(tmp_path, data_dir, "l8.yaml", "landsat8"),
                          r"data\.train\[0\]: the data's PAN/MS ratio is 4 .*sensor landsat8 has ratio 2: choose "
                          r"the sensor of your data, or `sensor: generic`"),
             "wv3": (write_config(tmp_path, data_dir, "wv3.yaml", "wv3"),
                     r"data\.train\[0\]: the MS wv2_ms\.tif has 4 bands; sensor wv3 has 8 \(Coastal"),
             "missing": (write_config(tmp_path, data_dir, "missing.yaml", pair=("wv2_pan.tif", "no_such_ms.tif")),
                         r"data\.train\[0\]: the MS raster .*no_such_ms\.tif does not exist")}
    for name, (path, words) in cases.items():
        assert main(["train", "--config", str(path)]) == 2, name
        assert re.search(words, _one_line(capsys)), name
    assert not (tmp_path / "runs").exists()   # nothing written


def test_generic_sensor_trains_with_the_datas_layout_and_the_plugin_takes_its_model(tmp_path, data_dir, capsys):
    """`sensor: generic` crashed (ZeroDivisionError in align_pan: its ratio is 0), with or without model.ratio. Now
    its bands, ratio and scale come from the data (model.ratio must agree), the card says sensor generic and how,
    `evaluate --onnx` without --config asks for one, and the plugin fuses with the model as MODEL."""
    from ksdiff_qgis.engine.pipeline import pansharpen
    from model_core.config import load_config
    from model_core.datacheck import checked

    bad = write_config(tmp_path, data_dir, "gen_r2.yaml", "generic", model={**TINY, "ratio": 2})
    assert main(["train", "--config", str(bad)]) == 2
    assert "sensor generic: model.ratio is 2, the data's PAN/MS ratio is 4" in _one_line(capsys)
    # the ratio measured from the geotransforms: 2 for the Landsat 8 pair
    l8 = checked(load_config(write_config(tmp_path, data_dir, "gen_l8.yaml", "generic", pair=("l8_pan.tif",
                                                                                              "l8_ms.tif"))),
                 parts=("data.",))
    assert (l8["data_layout"]["ratio"], l8["model"]["ratio"], l8["data_layout"]["bands"]) == (2, 2, 4)

    path = write_config(tmp_path, data_dir, "gen.yaml", "generic", model={**TINY, "ratio": 4})
    assert main(["train", "--config", str(path)]) == 0
    ck = tmp_path / "runs" / "gen" / "main.pt"
    onnx = tmp_path / "gen.onnx"
    assert main(["export", "--checkpoint", str(ck), "--out", str(onnx)]) == 0
    card = json.loads(onnx.with_suffix(".json").read_text())
    assert (card["sensor"], card["ratio"], card["scale"]) == ("generic", 4, 2047.0)   # the rasters' NBITS 11
    assert card["bands"] == ["Blue", "Green", "Red", "NIR"] and "NBITS 11" in card["sensor_layout"]
    capsys.readouterr()
    assert main(["evaluate", "--onnx", str(onnx)]) == 2
    assert "no default config for sensor generic: give --config" in _one_line(capsys)
    assert main(["evaluate", "--onnx", str(onnx), "--config", str(path), "--out", str(tmp_path / "e.json")]) == 0
    res = pansharpen(str(data_dir / "wv2_test_pan.tif"), str(data_dir / "wv2_test_ms.tif"), str(tmp_path / "f.tif"),
                     "generic", "ksdiff", model_path=str(onnx))
    assert res.method == "ksdiff" and (tmp_path / "f.tif").exists()


def test_a_source_declares_its_licence_and_an_undeclared_users_file_is_not_guessed(tmp_path, data_dir):
    """The card's licence was guessed from the first path component (`$KSDIFF_DATA/wv2/...`: Maxar CC BY-SA) and a
    `licence:` key was refused as a typo. Now a source's `licence` (and `name`) go into the card; a file outside
    `make data`'s folders without one is "unknown (declare `licence:` in the config)"."""
    from model_core.config import load_config
    from model_core.datacache import data_dir as cache
    from model_core.train import UNDECLARED, data_sources

    pan, ms = str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif")
    path = write_config(tmp_path, data_dir, "lic.yaml")
    cfg = yaml.safe_load(path.read_text())
    cfg["data"]["train"] = [{"kind": "pair", "pan": pan, "ms": ms, "licence": "CC0 (mine)", "name": "my scene"},
                            {"kind": "pair", "pan": pan, "ms": ms}]
    path.write_text(yaml.safe_dump(cfg))
    got = data_sources(load_config(path))   # `licence` is a known key now
    assert [(d["name"], d["licence"]) for d in got[:2]] == [("my scene", "CC0 (mine)"), (f"{pan} + {ms}", UNDECLARED)]
    project = {"data": {"train": [{"kind": "pair", "pan": "wv2/pair1_pan.tif", "ms": "wv2/pair1_ms.tif"},
                                  {"kind": "simulated", "ms": str(cache() / "sentinel2" / "s2_10m.tif")}]}}
    licences = [d["licence"] for d in data_sources(project)]
    assert licences[0].startswith("CC BY-SA 4.0 (Maxar") and licences[1].startswith("Copernicus Sentinel")


def test_the_readmes_own_sensor_config_loads_and_its_data_pass_the_checks(tmp_path, data_dir):
    """model_core/README.md, "Train a model for your own sensor": its example config, with the fixture pair's paths
    for /data/mine/..., loads (its licence and name keys included) and passes the data checks; its smoke schedule
    replaces the base's; the section says how to run it and that export needs --out."""
    from model_core.config import load_config
    from model_core.datacheck import checked
    from model_core.train import data_sources

    text = (ROOT / "model_core" / "README.md").read_text()
    section = text.split("## Train a model for your own sensor", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```yaml\n(.*?)```", section, re.S)
    mine = {"train_pan": "wv2_pan", "train_ms": "wv2_ms", "val_pan": "wv2_pan", "val_ms": "wv2_ms",
            "test_pan": "wv2_test_pan", "test_ms": "wv2_test_ms"}
    example = re.sub(r"/data/mine/(\w+)\.tif", lambda m: str(data_dir / f"{mine[m.group(1)]}.tif"), blocks[0])
    smoke = yaml.safe_load(re.sub(r"^  ", "", blocks[1], flags=re.M))
    path = tmp_path / "my_sensor.yaml"
    path.write_text(example.replace("sensor: pleiades", "sensor: wv2"))   # the fixture is WorldView-2
    cfg = load_config(path)
    cfg = checked({**cfg, "stages": smoke["stages"]})
    assert [s["name"] for s in cfg["stages"]] == ["stage1", "stage2"] and cfg["method"] == "ksdiff"
    assert [d["licence"] for d in data_sources(cfg)] == ["CC BY 4.0 (my provider)"] * 2
    for words in ("python -m model_core train", "--out", "repository root", "sensor: generic", "--max-steps"):
        assert words in section, words


def test_evaluate_scores_the_network_as_the_plugin_delivers_it_against_mtf_glp_fs_too(tmp_path, data_dir):
    """The card compared the network alone (no consistency step, no mirrored edges) with Brovey, GSA and MTF-GLP-HPM
    only (QA: card 2.31 against 1.99; the plugin on the same Wald case 1.755 against MTF-GLP-FS's 1.571). Now
    evaluate's figure is the plugin's (fp32) within 0.5 %, the network alone beside it, and MTF-GLP-FS is a
    yardstick scored as the plugin fuses it (the scene statistics from the MS, not the blurred LMS)."""
    from ksdiff_qgis.engine import metrics
    from ksdiff_qgis.engine.pipeline import pansharpen
    from model_core.evaluate import card_metrics, evaluate, onnx_runner
    from model_core.rasters import read
    from model_core.wald import make_reduced_case

    model = write_scaled_model(tmp_path)
    cfg = {"sensor": "wv2", "data": {"root": str(data_dir)},
           "test": {"reduced": {"kind": "pair", "pan": "wv2_test_pan.tif", "ms": "wv2_test_ms.tif"}}}
    res = evaluate(*onnx_runner(model)[:2], cfg)["reduced"]
    rows, cols = (slice(*res["window"][k]) for k in ("rows", "cols"))
    case = make_reduced_case(str(data_dir / "wv2_test_pan.tif"), str(data_dir / "wv2_test_ms.tif"), str(tmp_path),
                             "wv2")
    ref = read(case.ref).data.astype(np.float64)[:, rows, cols]
    plugin = {}
    for method in ("ksdiff", "mtf_glp_fs"):
        out = pansharpen(case.pan, case.ms, str(tmp_path / f"{method}.tif"), "wv2", method,
                         model_path=model if method == "ksdiff" else None, precision="fp32").output_path
        plugin[method] = metrics.ergas(read(out).data.astype(np.float64)[:, rows, cols], ref, 4)
    assert res["ERGAS"] == pytest.approx(plugin["ksdiff"], rel=5e-3)
    assert res["network_alone"]["ERGAS"] > 1.3 * res["ERGAS"]   # 1.5 x the MS, before the step
    assert res["classical"]["mtf_glp_fs"]["ERGAS"] == pytest.approx(plugin["mtf_glp_fs"], rel=5e-3)
    scene = next(iter(card_metrics({"reduced": res}, "wv2", "test")["scenes"].values()))
    assert scene["best_classical_method"] in res["classical"] and "network_alone_ERGAS" in scene


def test_adapt_for_a_sensor_without_a_bundled_model_starts_from_the_nearest_and_states_its_scale(tmp_path, data_dir,
                                                                                                capsys):
    """`adapt --sensor pleiades` only listed the bundled models; it now starts from the one the plugin's sensor table
    serves Pléiades with (qb) and says so. The card keeps the base card's metrics as the base's (labelled; its own
    are empty: nothing measured them) and states the value scale: the scene's NBITS, else the sensor's unless the
    scene's values exceed it (12-bit data without NBITS adapted from an 11-bit model: 4095)."""
    from ksdiff_qgis.engine.model_card import bundled_cards, load_card
    from model_core.adapt import scene_scale
    from model_core.rasters import read, write_geotiff

    out = tmp_path / "pl.onnx"
    assert main(["adapt", "--sensor", "pleiades", "--pan", str(data_dir / "wv2_test_pan.tif"), "--ms",
                 str(data_dir / "wv2_test_ms.tif"), "--out", str(out), "--steps", "1", "--patch", "32",
                 "--keep-worse"]) == 0
    err = capsys.readouterr().err
    assert "no bundled model was trained for Pléiades 1A/1B" in err
    assert "adapting the one the plugin uses for it, qb" in err
    card = json.loads(out.with_suffix(".json").read_text())
    qb = load_card(bundled_cards()["qb"]).data
    assert card["sensor"] == "pleiades" and card["training"]["base"]["model"] == "qb.onnx"
    base = card["training"]["base"]["metrics"]
    assert base["scenes"] == qb["metrics"]["scenes"] and base["measured_by"].startswith("the base model qb.onnx")
    assert card["metrics"]["scenes"] == {} and "training.base.metrics" in card["metrics"]["measured_by"]
    assert card["scale"] == 2047.0 and "NBITS 11" in card["sensor_layout"]   # the fixture is 11-bit
    # 12-bit values without NBITS
    pans = []
    for kind in ("pan", "ms"):
        r = read(str(data_dir / f"wv2_test_{kind}.tif"))
        pans.append(write_geotiff(str(tmp_path / f"{kind}12.tif"), (r.data.astype(np.float32) * 1.9).astype(np.uint16),
                                  r.transform, r.crs))
    assert scene_scale(*pans, 2047.0)[0] == 4095.0 and scene_scale(*pans, 4095.0)[0] == 4095.0


def test_evaluate_of_a_model_for_a_sensor_without_a_default_config_asks_for_one(tmp_path, capsys):
    """`evaluate --onnx` of a user's Pléiades model without --config failed with Errno 2 on
    model_core/configs/pleiades_ksdiff_fusionnet.yaml (a file no one promised); now it asks for --config, and so do
    `train --sensor` and `export --sensor` for such a sensor."""
    import shutil

    from ksdiff_qgis.engine.model_card import bundled_cards
    from model_core.export import write_card

    qb = bundled_cards()["qb"]
    mine = tmp_path / "pleiades_mine.onnx"
    shutil.copy(qb, mine)
    card = json.loads(qb.with_suffix(".json").read_text())
    card.pop("onnx_sha256")
    write_card(mine, {**card, "sensor": "pleiades", "sensor_name": "Pléiades 1A/1B (4 bands: B, G, R, NIR)"})
    for argv in (["evaluate", "--onnx", str(mine)], ["train", "--sensor", "pleiades"],
                 ["export", "--sensor", "pleiades"]):
        assert main(argv) == 2, argv
        assert "no default config for sensor pleiades: give --config" in _one_line(capsys), argv


@pytest.fixture()
def generic_l8_run(tmp_path, data_dir) -> Path:
    """A finished `sensor: generic` run on the Landsat 8 crop (4 bands at ratio 2, measured from the data): its final
    checkpoint."""
    import shutil

    # a copy as the test case: what is tested here is not held apart, and the checks refuse the same file
    l8 = {k: str(shutil.copy(data_dir / f"l8_{k}.tif", tmp_path / f"test_{k}.tif")) for k in ("pan", "ms")}
    path = write_config(tmp_path, data_dir, "gen_l8.yaml", "generic", pair=("l8_pan.tif", "l8_ms.tif"),
                        test={"reduced": {"kind": "pair", **l8}, "full": l8})
    assert main(["train", "--config", str(path)]) == 0
    return tmp_path / "runs" / "gen_l8" / "main.pt"


def test_as_sensor_compares_a_generic_run_with_its_measured_layout(tmp_path, data_dir, generic_l8_run, capsys):
    """QA 49a: `export --as-sensor landsat8` of a `sensor: generic` run (4 bands at ratio 2) said "--as-sensor landsat8:
    4 bands at ratio 2, the model has 0 at ratio 0" (the generic table entry, not the run's measured layout), exit 1
    without the command's prefix. Now a fitting sensor is accepted (the plugin fuses with the model), another gets its
    true reason in one line, exit 2, nothing written."""
    from ksdiff_qgis.engine.pipeline import pansharpen

    capsys.readouterr()
    out = tmp_path / "l8.onnx"
    assert main(["export", "--checkpoint", str(generic_l8_run), "--out", str(out), "--as-sensor", "landsat8",
                 "--no-evaluate"]) == 0
    card = json.loads(out.with_suffix(".json").read_text())
    assert (card["sensor"], card["ratio"], len(card["bands"])) == ("landsat8", 2, 4)
    assert "trained with MTF gains 0.3 for MS, 0.15 for PAN" in card["training"]["serves_sensor"]
    res = pansharpen(str(data_dir / "l8_pan.tif"), str(data_dir / "l8_ms.tif"), str(tmp_path / "f.tif"), "landsat8",
                     "ksdiff", model_path=str(out))
    assert res.method == "ksdiff"
    capsys.readouterr()
    other = tmp_path / "wv2.onnx"
    assert main(["export", "--checkpoint", str(generic_l8_run), "--out", str(other), "--as-sensor", "wv2",
                 "--no-evaluate"]) == 2
    err = _one_line(capsys)
    assert err.startswith("python -m model_core export: --as-sensor wv2: WorldView-2") and "0 at ratio 0" not in err
    assert "4 MS bands at ratio 4; the network of main.pt takes 4 at ratio 2 (measured from its data)" in err
    assert not other.exists() and not other.with_suffix(".json").exists()


def test_export_without_out_of_a_sensor_with_no_bundled_model_asks_for_out(tmp_path, generic_l8_run, monkeypatch,
                                                                          capsys):
    """QA 49a: export of a generic run without --out said it "was not trained by the bundled generic model's recipe
    (make train SENSOR=generic)" (there is none), and --replace-bundled wrote generic.onnx into the bundled models and
    a models README naming the user's config outside the repository. Now both ask for --out, nothing written."""
    import hashlib
    import shutil

    from ksdiff_qgis.engine import model_card

    folder = tmp_path / "models"   # the bundled models folder as export sees it, a copy
    folder.mkdir()
    for name in ("wv2.onnx", "wv2.json", "README.md"):
        shutil.copy(model_card.MODELS_DIR / name, folder / name)
    monkeypatch.setattr(model_card, "MODELS_DIR", folder)
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}
    capsys.readouterr()
    for more, words in (([], "no bundled model: give --out"),
                        (["--replace-bundled"], "no bundled model to replace (--replace-bundled): give --out")):
        assert main(["export", "--checkpoint", str(generic_l8_run), "--no-evaluate", *more]) == 2
        err = _one_line(capsys)
        assert f"python -m model_core export: sensor generic has {words}" in err and "recipe" not in err
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()} == before


def test_the_card_of_a_users_run_says_whole_raster_and_has_one_slash_in_its_scene_keys(tmp_path, generic_l8_run):
    """QA 49a, the exported card of a user's config (absolute paths): training data "how" read "rows [0, 1]" for a
    whole raster, and the metrics' scene keys "reduced//tmp/…". Now "the whole raster" and "reduced/tmp/…"; a part
    of a raster is said in words."""
    out = tmp_path / "mine.onnx"
    assert main(["export", "--checkpoint", str(generic_l8_run), "--out", str(out)]) == 0
    card = json.loads(out.with_suffix(".json").read_text())
    hows = [d["how"] for d in card["training"]["data"]]
    assert hows and all(h.endswith("; the whole raster") for h in hows) and not any("rows [" in h for h in hows)
    keys = list(card["metrics"]["scenes"])
    assert sorted(k.split("/", 1)[0] for k in keys) == ["full", "reduced"] and not any("//" in k for k in keys), keys
    from model_core.train import rows_words

    assert rows_words([0.0, 0.85]) == "rows 0% to 85% of the raster's height"
