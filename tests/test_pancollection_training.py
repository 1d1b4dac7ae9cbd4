"""PanCollection HDF5 training data (QA round 90): model_core/README.md lists the reader and ``train`` reads
``data.pancollection: {train, val}``, but `train --config h5.yaml` stopped with "unknown key(s) 'pancollection'",
exit 2 (the key check knew only the keys of configs/). Now the key is known, the files are checked against the sensor
before anything is written, and a run trains on them, validates on them and exports."""
from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

SIDE = 32   # sample side (PAN pixels); the MS sample is SIDE / 4


def _pancollection_file(cached, pair: str, path: Path, count: int) -> Path:
    """A PanCollection-style file (gt, ms, lms, pan; raw values) from a real WorldView-2 pair of `make data` (the
    tests/data crop of pair 2 has too few rows without nodata for 32² samples; the test skips without the cache): the
    Wald triple training cuts from it (``pair_triple``: PAN and MS degraded by the ratio with the sensor's MTF, the
    MS the reference), cut into ``count`` nodata-free samples as PanCollection stores them."""
    from ksdiff_qgis.engine.filters import wald_degrade
    from ksdiff_qgis.engine.sensors import SENSORS
    from model_core.data import pair_triple

    pan_file = cached(f"wv2/{pair}_pan.tif")
    sensor = SENSORS["wv2"]
    t = pair_triple(pan_file.parent, pan_file.name, f"{pair}_ms.tif", sensor)
    s, q = sensor.scale, sensor.ratio
    rows = {k: [] for k in ("gt", "ms", "lms", "pan")}
    for r in range(0, t.gt.shape[1] - SIDE + 1, SIDE):
        for c in range(0, t.gt.shape[2] - SIDE + 1, SIDE):
            if t.invalid[r : r + SIDE, c : c + SIDE].any() or len(rows["gt"]) == count:
                continue
            gt = t.gt[:, r : r + SIDE, c : c + SIDE] * s
            rows["gt"].append(gt)
            rows["ms"].append(wald_degrade(gt, sensor.mtf_ms, q))
            rows["lms"].append(t.lms[:, r : r + SIDE, c : c + SIDE] * s)
            rows["pan"].append(t.pan[None, r : r + SIDE, c : c + SIDE] * s)
    assert len(rows["gt"]) == count
    with h5py.File(path, "w") as f:
        for k, v in rows.items():
            f[k] = np.asarray(v, dtype=np.float64)
    return path


@pytest.fixture()
def h5_config(cached, data_dir, tmp_path):
    """A user's config training on PanCollection files of pair 1 (train) and pair 2 (val), a tiny KSDiff, two steps
    per stage; its test case the WorldView-2 test fixture."""
    train = _pancollection_file(cached, "pair1", tmp_path / "train.h5", 8)
    val = _pancollection_file(cached, "pair2", tmp_path / "val.h5", 4)
    cfg = {"base": ["base/ksdiff_fusionnet.yaml"], "sensor": "wv2",
           "model": {"width": 8, "blocks": 2, "dim": 16, "tokens": 4, "struct_tokens": 4, "sample_steps": 2,
                     "enc_widths": [8, 16, 32]},
           "data": {"batch": 4, "pancollection": {"train": str(train), "val": str(val), "name": "WV2 pairs 1 / 2",
                                                  "licence": "CC BY-SA 4.0 (Maxar / SpaceNet 6)"}},
           "test": {"reduced": {"kind": "pair", "pan": str(data_dir / "wv2_test_pan.tif"),
                                "ms": str(data_dir / "wv2_test_ms.tif")}},
           "stages": [{"name": "stage1", "steps": 2, "lr": 0.001, "warmup": 1, "ema": 0.9},
                      {"name": "stage2", "steps": 2, "lr": 0.0005, "warmup": 1, "ema": 0.9}],
           "train": {"val_every": 2, "val_batches": 1, "ckpt_every": 2, "threads": 1, "device": "cpu",
                     "out_dir": str(tmp_path / "run")}}
    path = tmp_path / "h5.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_a_run_trains_on_pancollection_files_and_exports(h5_config, tmp_path, capsys):
    from model_core.__main__ import main
    from model_core.train import load_checkpoint

    assert main(["train", "--config", str(h5_config)]) == 0, capsys.readouterr().err
    run = tmp_path / "run"
    assert load_checkpoint(run / "stage2.pt")["step"] == 2
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["stage"] for r in log if "val_l1" in r] == ["stage1", "stage2"]   # validated on val.h5
    out = tmp_path / "h5.onnx"
    capsys.readouterr()
    assert main(["export", "--checkpoint", str(run / "stage2.pt"), "--out", str(out), "--no-evaluate"]) == 0
    assert "no int8 variant" in capsys.readouterr().err   # 32² samples: smaller than a calibration patch
    data = json.loads(out.with_suffix(".json").read_text())["training"]["data"]
    assert [d["name"] for d in data] == ["WV2 pairs 1 / 2 (train)", "WV2 pairs 1 / 2 (val)"]
    assert {d["licence"] for d in data} == {"CC BY-SA 4.0 (Maxar / SpaceNet 6)"}


def test_pancollection_files_of_another_sensor_are_refused_before_anything_is_written(h5_config, tmp_path):
    """An 8-band file for sensor wv2, a missing file and rasters beside the files: one line each, no run folder."""
    from model_core.config import load_config
    from model_core.train import run

    eight = tmp_path / "eight.h5"
    with h5py.File(tmp_path / "train.h5") as f, h5py.File(eight, "w") as g:
        for k in ("gt", "ms", "lms"):
            g[k] = np.concatenate([f[k][:], f[k][:]], axis=1)
        g["pan"] = f["pan"][:]
    cfg = load_config(h5_config)
    for change, words in (({"train": str(eight)}, "eight.h5 has 8 MS bands; sensor wv2 has 4"),
                          ({"val": str(tmp_path / "none.h5")}, "none.h5 does not exist")):
        bad = dict(cfg, data=dict(cfg["data"], pancollection={**cfg["data"]["pancollection"], **change}))
        with pytest.raises((ValueError, FileNotFoundError), match=words):
            run(bad, progress=False)
    both = dict(cfg, data=dict(cfg["data"], train=[{"kind": "pair", "pan": "p.tif", "ms": "m.tif"}]))
    with pytest.raises(ValueError, match="both give the training data"):
        run(both, progress=False)
    assert not (tmp_path / "run").exists()


def test_the_readmes_pancollection_config_form_loads(h5_config, tmp_path):
    """model_core/README.md shows the config form; with the test's files for its paths it passes the key and data
    checks."""
    import re

    from model_core.config import load_config
    from model_core.datacheck import checked

    text = (Path(__file__).resolve().parent.parent / "model_core" / "README.md").read_text()
    block = next(b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if "pancollection" in b)
    block = re.sub(r"^  ", "", block, flags=re.M)
    block = block.replace("/data/pc/train_wv3.h5", str(tmp_path / "train.h5"))
    block = block.replace("/data/pc/valid_wv3.h5", str(tmp_path / "val.h5"))
    mine = tmp_path / "readme.yaml"
    mine.write_text("base: [base/ksdiff_fusionnet.yaml]\nsensor: wv2\n" + block)
    cfg = checked(load_config(mine), parts=("data.",))
    assert cfg["data"]["pancollection"]["name"] == "PanCollection WV3"
