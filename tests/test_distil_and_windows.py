"""Seed distillation (``distil_from``: a student pulled towards its teachers' mean output) and Sentinel-2
validation windows a training source leaves out (``data.exclude_validation``), on the real fixtures."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from ksdiff_qgis.engine.sensors import SENSORS
from model_core.config import with_defaults
from model_core.data.scenes import simulated_triple
from model_core.datacache import VALIDATION_WINDOWS
from model_core.train import Teachers, build_fullres_sampler, build_samplers, model_from_checkpoint, run

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import robustness  # noqa: E402

torch.set_num_threads(1)
def test_robustness_cases_sit_on_the_windows_training_can_leave_out():
    assert robustness.VALIDATION_WINDOWS[1] == ((700, 300, 512, 512), (350, 150, 256, 256))
    assert len(robustness.VALIDATION_WINDOWS) == len(VALIDATION_WINDOWS["sentinel2/s2_10m.tif"]) == 5
    for w10, w20 in robustness.VALIDATION_WINDOWS:   # the 20 m window covers the 10 m one
        assert (w10[0], w10[1], w10[2]) == (2 * w20[0], 2 * w20[1], 2 * w20[2])


def test_a_left_out_window_is_nodata_for_training(tmp_path, data_dir):
    """A real 4-band raster cached under the Sentinel-2 name: its window 0 (0, 0, 512, 512, one pixel wider)
    covers the whole 64-px fixture, window 1 does not touch it."""
    (tmp_path / "sentinel2").mkdir()
    shutil.copy(data_dir / "wv2_ms.tif", tmp_path / "sentinel2" / "s2_10m.tif")
    wv2 = SENSORS["wv2"]
    kept = simulated_triple(tmp_path, "sentinel2/s2_10m.tif", wv2, [0.25] * 4, ratio=2)
    other = simulated_triple(tmp_path, "sentinel2/s2_10m.tif", wv2, [0.25] * 4, ratio=2, exclude_validation=[1])
    left = simulated_triple(tmp_path, "sentinel2/s2_10m.tif", wv2, [0.25] * 4, ratio=2, exclude_validation=[0])
    assert not kept.invalid.any() and not other.invalid.any()
    assert left.invalid.all() and left.info["exclude_validation"] == [0]


def test_exclude_validation_reaches_simulated_sources_only(tmp_path, data_dir):
    (tmp_path / "sentinel2").mkdir()
    shutil.copy(data_dir / "wv2_ms.tif", tmp_path / "sentinel2" / "s2_10m.tif")
    for f in ("wv2_pan.tif", "wv2_ms.tif"):
        shutil.copy(data_dir / f, tmp_path / f)
    cfg = with_defaults({"sensor": "wv2", "method": "fusionnet", "stages": [{"name": "main", "steps": 1}],
                         "data": {"root": str(tmp_path), "patch": 16, "stride": 8, "exclude_validation": [0],
                                  "train": [{"kind": "pair", "pan": "wv2_pan.tif", "ms": "wv2_ms.tif"},
                                            {"kind": "simulated", "ms": "sentinel2/s2_10m.tif",
                                             "pan_weights": [0.25] * 4}]}})
    pair, sim = build_samplers(cfg)[0].triples
    assert "exclude_validation" not in pair.info and sim.info["exclude_validation"] == [0]
    # a simulated source on a raster without validation windows is left as it is (no KeyError)
    cfg["data"]["train"][1]["ms"] = "wv2_ms.tif"
    assert "exclude_validation" not in build_samplers(cfg)[0].triples[1].info


def _distance(model, teachers: Teachers, batch) -> float:
    pan, lms, _ = batch
    with torch.no_grad():
        return float((model(pan, lms) - teachers(pan, lms)).abs().mean())


def test_the_student_starts_from_its_first_teacher_and_moves_towards_their_mean(tmp_path, small_cfg):
    (tmp_path / "teacher.yaml").write_text(yaml.safe_dump(small_cfg("teacher")))
    student = small_cfg("student")
    student["distil_from"] = {"config": str(tmp_path / "teacher.yaml"), "seeds": [1, 0]}
    # the full-resolution losses off; the reduced-resolution L1 alone does not bring it 20 % nearer (distil_weight 0)
    student["stages"] = [{"name": "fullres", "steps": 12, "lr": 3e-3, "warmup": 1, "ema": None, "fr_weight": 0.0,
                          "distil_weight": 1.0}]
    student["train"]["consistency_loss"] = None
    student["train"]["scaled_loss"] = True
    student = with_defaults(student)
    summary = run(student, progress=False)
    paths = [Path(p) for p in summary["distil_from"]]
    assert [p.parent.name for p in paths] == ["teacher_seed1", "teacher_seed0"]   # trained on demand
    teachers = Teachers(paths, "cpu")
    first, _ = model_from_checkpoint(paths[0])
    trained, _ = model_from_checkpoint(Path(student["train"]["out_dir"]) / "fullres.pt", use_ema=False)
    fr = build_fullres_sampler(student)
    batch = build_samplers(student)[0].batch(4, torch.Generator().manual_seed(7))
    # the mean of two different seeds is not either of them; the student ends nearer than where it started
    assert _distance(first, teachers, batch) > 0
    assert _distance(trained, teachers, batch) < 0.8 * _distance(first, teachers, batch)
    log = [yaml.safe_load(line) for line in (Path(student["train"]["out_dir"]) / "log.jsonl").read_text().splitlines()]
    assert {"distil", "fr_distil"} <= set(log[-1])
    assert fr is not None and np.isfinite([r["loss"] for r in log]).all()


def test_distillation_only_in_a_fullres_stage(tmp_path, small_cfg):
    (tmp_path / "teacher.yaml").write_text(yaml.safe_dump(small_cfg("teacher")))
    student = small_cfg("student")
    student["distil_from"] = {"config": str(tmp_path / "teacher.yaml"), "seeds": [0]}
    student["stages"] = [{"name": "stage2", "steps": 1, "warmup": 1}]
    with pytest.raises(ValueError, match="fullres stage"):
        run(with_defaults(student), progress=False)
