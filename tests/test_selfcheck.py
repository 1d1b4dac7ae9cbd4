"""METHOD auto: the per-scene self-check, its decision rule, its fallbacks, and clipping reports."""
from __future__ import annotations

import json
import math
import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
from fake_models import write_scaled_model
from osgeo import gdal

from ksdiff_qgis.engine import consistency, model_card, pipeline, selfcheck
from ksdiff_qgis.engine.clipping import ClipCounter
from ksdiff_qgis.engine.feedback import Feedback
from ksdiff_qgis.engine.pipeline import pansharpen
from ksdiff_qgis.engine.selfcheck import Scores, decide, pick_classical


class Recorder(Feedback):
    def __init__(self):
        self.infos, self.warnings, self.debugs = [], [], []

    def info(self, message: str) -> None:
        self.infos.append(message)

    def debug(self, message: str) -> None:
        self.debugs.append(message)

    def warning(self, message: str) -> None:
        self.warnings.append(message)


def _run(params):
    import processing

    return processing.run("ksdiff:pansharpen", params)


def _read(path) -> np.ndarray:
    return gdal.Open(str(path)).ReadAsArray().astype(np.float64)


@pytest.fixture(scope="module")
def scaled_model(tmp_path_factory):
    """A deliberately bad model with a valid card: it returns 1.5 x the upsampled MS (over-bright, no detail)."""
    pytest.importorskip("onnx")
    return write_scaled_model(tmp_path_factory.mktemp("badmodel"), "bad")


# ------------------------------------------------------------------------------- decision rule
def test_decide_keeps_a_model_that_wins_everywhere():
    keep, why = decide(Scores(3.0, 4.0, 1.0, 0.40), Scores(4.0, 4.5, 1.0, 0.38), pan_cb=0.42)
    assert keep and "3.000" in why


@pytest.mark.parametrize("learned, words", [
    (Scores(4.1, 4.0, 1.0, 0.40), "Wald ERGAS"),            # loses the Wald check
    (Scores(3.0, 4.0, 1.2, 0.40), "R-ERGAS"),               # 20 % worse spectral consistency at full resolution
    (Scores(3.0, 4.0, 1.0, 0.70), "checkerboard"),          # one-pixel artefacts (the bundled WV2 model today)
])
def test_decide_rejects_each_failure_and_says_why(learned, words):
    keep, why = decide(learned, Scores(4.0, 4.5, 1.0, 0.38), pan_cb=0.42)
    assert not keep and words in why


def test_decide_allows_the_margins():
    # 9 % worse R-ERGAS and 1.09 x the PAN's checkerboard response are tolerated
    assert decide(Scores(3.0, 4.0, 1.09, 0.4578), Scores(4.0, 4.5, 1.0, 0.38), pan_cb=0.42)[0]


def test_decide_measures_the_grid_against_the_classical_method_s_own_response():
    """QA's Sentinel-2 case (figures of its check): KSDiff wins the Wald and R-ERGAS tests, its checkerboard 0.452
    exceeds 1.1 x the PAN's 0.404 but not 1.1 x MTF-GLP-HPM's own 0.430, which draws no one-pixel grid by
    construction: the scene's response, not an artefact. A network's grid (0.70) is still refused."""
    hpm = Scores(1.760, 2.658, 0.423, 0.430)
    keep, why = decide(Scores(1.396, 1.921, 0.154, 0.452), hpm, pan_cb=0.404, ms_cb=0.396)
    assert keep and "1.1 x the classical method's 0.430" in why, why
    keep, why = decide(Scores(1.396, 1.921, 0.154, 0.70), hpm, pan_cb=0.404, ms_cb=0.396)
    assert not keep and "exceeds 1.1 x the classical method's 0.430" in why, why
    # below the PAN's or the MS's, the classical response changes nothing: the sharper of those is named
    keep, why = decide(Scores(3.0, 4.0, 1.0, 0.50), Scores(4.0, 4.5, 1.0, 0.38), pan_cb=0.42, ms_cb=0.44)
    assert not keep and "1.1 x the MS's 0.440" in why, why


def test_candidate_windows_cover_the_target_and_stay_inside():
    area = (10, 20, 400, 300)
    wins = selfcheck.candidate_windows(area, 128, 4)
    assert wins
    for c, r, w, h in wins:
        assert c >= 10 and r >= 20 and c + w <= 410 and r + h <= 320
        assert w % 4 == 0 and h % 4 == 0
    # the first windows of the order are spread out (not all in the first row)
    assert len({r for _, r, _, _ in wins[:4]}) > 1
    # a non-overlapping subset reaches the 64k-pixel target on a scene this size
    taken = []
    for win in wins:
        if not any(selfcheck._overlaps(win, t) for t in taken):
            taken.append(win)
    assert sum(w * h for _, _, w, h in taken) >= selfcheck.TARGET_PIXELS


def test_clip_counter():
    fb = Recorder()
    cc = ClipCounter(2047, ["a", "b"])
    strip = np.full((2, 10, 100), 500.0, np.float32)
    strip[0, 0, 0] = -3
    strip[:, 5, 5] = np.nan                     # nodata pixel: ignored
    cc.add(strip)
    assert cc.negative.tolist() == [1, 0] and cc.valid == 999
    cc.report(fb, "ksdiff")
    assert fb.infos and not fb.warnings         # 1 of 1998 values: below 0.1 %
    strip[1, :3] = 3000
    cc.add(strip)
    cc.report(fb, "ksdiff")
    assert fb.warnings and "3000" in fb.warnings[0]
    # a floating-point output keeps its negatives: the log must not say they were clipped
    fb = Recorder()
    cc = ClipCounter(float(np.finfo(np.float32).max), ["a", "b"], clipped=False)
    strip = np.full((2, 10, 100), 0.2, np.float32)
    strip[0, :2] = -0.01
    cc.add(strip)
    cc.report(fb, "mtf_glp_fs")
    assert fb.warnings and "keeps them" in fb.warnings[0] and "clipped" not in fb.warnings[0]
    assert "a: 200 below 0)" in fb.warnings[0] and "b:" not in fb.warnings[0]
    # a signed integer output holds its negatives: only values below its minimum are clipped
    fb = Recorder()
    cc = ClipCounter(32767, ["a", "b"], low=-32768)
    strip = np.full((2, 10, 100), -500.0, np.float32)
    strip[0, 0, :5] = -40000
    cc.add(strip)
    cc.report(fb, "gsa")
    clip = [w for w in fb.warnings if "out of range" in w]
    assert cc.negative.tolist() == [5, 0] and len(clip) == 1 and "below -32768" in clip[0] and "negative" not in clip[0]
    # the values kept in [-32768, 0) are counted in their own line, as a float output's negatives are
    kept = [w for w in fb.warnings if "keeps them" in w]
    assert len(kept) == 1 and "1995 of 2000" in kept[0]


def test_clip_counts_are_words_without_zero_counts():
    """The clipping line names its counts in words and leaves out the zeros (QA: 'Blue: 0 < 0, 45 > 2047, …')."""
    fb = Recorder()
    cc = ClipCounter(2047, ["Blue", "Green", "Red"])
    strip = np.full((3, 10, 100), 500.0, np.float32)
    strip[0, 0, :45] = 3000
    strip[2, 1, :12] = -7
    strip[2, 2, :3] = 2100
    cc.add(strip)
    cc.report(fb, "ksdiff")
    line = (fb.warnings + fb.infos)[0]
    assert "(fused min -7.0, max 3000.0; Blue: 45 above 2047, Red: 12 below 0, 3 above 2047)" in line, line
    assert "<" not in line and ">" not in line and "Green" not in line


# -------------------------------------------------------------------------- through Processing
def test_default_method_is_auto(qgis_app):
    from qgis.core import QgsApplication

    alg = QgsApplication.processingRegistry().algorithmById("ksdiff:pansharpen")
    method = alg.parameterDefinition("METHOD")
    assert method.key_of(method.defaultValue()) == "auto"
    assert method.keys[:7] == ["ksdiff", "exp", "brovey", "gsa", "mtf_glp_hpm", "auto", "mtf_glp_fs"]   # appended
    outs = {o.name() for o in alg.outputDefinitions()}
    assert {"SELFCHECK_METHOD", "SELFCHECK_KSDIFF_ERGAS", "SELFCHECK_CLASSICAL_ERGAS",
            "SELFCHECK_KSDIFF_R_ERGAS", "SELFCHECK_PAN_CHECKERBOARD"} <= outs


def test_auto_runs_the_check_and_fuses_with_its_choice(qgis_app, data_dir, tmp_path):
    pan, ms = str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif")
    res = _run({"PAN": pan, "MS": ms, "SENSOR": "wv2", "OUTPUT": str(tmp_path / "auto.tif")})   # default METHOD
    assert res["SELFCHECK_METHOD"] in ("ksdiff", "mtf_glp_hpm")
    for k in ("SELFCHECK_KSDIFF_ERGAS", "SELFCHECK_CLASSICAL_ERGAS", "SELFCHECK_KSDIFF_SAM",
              "SELFCHECK_KSDIFF_R_ERGAS", "SELFCHECK_CLASSICAL_R_ERGAS", "SELFCHECK_KSDIFF_CHECKERBOARD",
              "SELFCHECK_PAN_CHECKERBOARD"):
        assert res[k] is not None and 0 < res[k] < 50, k
    assert res["SELFCHECK_PIXELS"] >= 1024 and res["SELFCHECK_REASON"]
    # the output is exactly what the chosen method gives
    direct = _run({"PAN": pan, "MS": ms, "SENSOR": "wv2", "METHOD": res["SELFCHECK_METHOD"],
                   "OUTPUT": str(tmp_path / "direct.tif")})
    assert direct["SELFCHECK_METHOD"] is None          # no check when a method is forced
    np.testing.assert_array_equal(_read(res["OUTPUT"]), _read(direct["OUTPUT"]))


def test_a_worse_model_is_replaced_and_ksdiff_forces_it(qgis_app, data_dir, scaled_model, tmp_path, monkeypatch):
    pan, ms = str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif")
    base = {"PAN": pan, "MS": ms, "SENSOR": "wv2", "MODEL": scaled_model}
    auto = _run({**base, "METHOD": "auto", "OUTPUT": str(tmp_path / "auto.tif")})
    assert auto["SELFCHECK_METHOD"] == "mtf_glp_hpm"
    assert "Wald ERGAS" in auto["SELFCHECK_REASON"]
    # (the consistency step repairs the over-brightness at low frequencies, not the MS detail it scaled)
    assert auto["SELFCHECK_KSDIFF_ERGAS"] > 1.2 * auto["SELFCHECK_CLASSICAL_ERGAS"]
    hpm = _run({"PAN": pan, "MS": ms, "SENSOR": "wv2", "METHOD": "mtf_glp_hpm", "OUTPUT": str(tmp_path / "hpm.tif")})
    np.testing.assert_array_equal(_read(auto["OUTPUT"]), _read(hpm["OUTPUT"]))
    # METHOD=ksdiff runs the model whatever the check would say: 1.5 x the upsampled MS (seen without the
    # consistency step, which would pull it back towards the MS, and without the noise pull towards MTF-GLP-HPM)
    monkeypatch.setattr(consistency, "project", lambda f, *args, **kw: np.asarray(f, np.float32))
    monkeypatch.setattr(pipeline, "NOISE_PULL", False)
    forced = _run({**base, "METHOD": "ksdiff", "OUTPUT": str(tmp_path / "forced.tif")})
    exp = _run({"PAN": pan, "MS": ms, "SENSOR": "wv2", "METHOD": "exp", "OUTPUT": str(tmp_path / "exp.tif")})
    f, e = _read(forced["OUTPUT"]), _read(exp["OUTPUT"])
    ok = (e > 0) & (1.5 * e < 2000)
    np.testing.assert_allclose(f[ok], 1.5 * e[ok], atol=2.0)


def test_auto_picks_a_classical_method_without_a_model_for_the_sensor(qgis_app, data_dir, tmp_path, monkeypatch):
    empty = tmp_path / "models"
    empty.mkdir()
    monkeypatch.setattr(model_card, "MODELS_DIR", empty)
    monkeypatch.setattr(model_card.bundled_cards, "__defaults__", (empty,))
    fb = Recorder()
    res = pansharpen(str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), str(tmp_path / "o.tif"),
                     sensor="wv2", method="auto", feedback=fb)
    check = res.selfcheck
    assert check.learned is None and set(check.candidates) == set(selfcheck.CLASSICAL_CANDIDATES)
    # the check still ran on the scene: the fused method is the best classical one by the pick rule
    assert res.method == check.classical_method == selfcheck.pick_classical(check.candidates)[0]
    assert check.pixels >= selfcheck.MIN_PIXELS and all(math.isfinite(s.ergas) for s in check.candidates.values())
    assert any("no bundled KSDiff model" in m for m in fb.infos)
    assert any("best classical method on this scene" in m for m in fb.infos)
    # QA: auto said "give an ONNX model…, or choose a classical method; choosing among the classical methods": it
    # advised what it was doing. It says what it does; the advice stays METHOD ksdiff's
    said = [m for m in fb.infos if m.startswith("Method auto: ")]
    assert len(said) == 1 and said[0].endswith(", so the best classical method on this scene is used."), said
    assert "give an ONNX model" not in said[0] and "give an ONNX model" not in check.reason, (said, check.reason)
    assert not fb.warnings or all("bundled" not in w for w in fb.warnings)   # an info, not an error


def test_auto_falls_back_without_onnx_runtime(qgis_app, data_dir, tmp_path, monkeypatch):
    from ksdiff_qgis.engine import runtime
    from ksdiff_qgis.engine.errors import InputError

    def missing():
        raise InputError(runtime.INSTALL_HINT)

    monkeypatch.setattr(runtime, "import_onnxruntime", missing)
    res = _run({"PAN": str(data_dir / "wv2_pan.tif"), "MS": str(data_dir / "wv2_ms.tif"), "SENSOR": "wv2",
                "OUTPUT": str(tmp_path / "o.tif")})
    assert res["SELFCHECK_METHOD"] in selfcheck.CLASSICAL_CANDIDATES and "ONNX Runtime" in res["SELFCHECK_REASON"]
    assert res["SELFCHECK_METHOD"] == res["SELFCHECK_CLASSICAL_METHOD"]
    assert res["SELFCHECK_KSDIFF_ERGAS"] is None and res["SELFCHECK_CLASSICAL_ERGAS"] > 0


def test_auto_warns_when_onnx_runtime_is_missing(data_dir, tmp_path, monkeypatch):
    """QA D7: METHOD auto falling back because ONNX Runtime is missing was one info line among many; it is the
    user's to fix (install it), so a warning that says how."""
    from ksdiff_qgis.engine import runtime
    from ksdiff_qgis.engine.errors import InputError

    def missing():
        raise InputError(runtime.INSTALL_HINT)

    monkeypatch.setattr(runtime, "import_onnxruntime", missing)
    fb = Recorder()
    res = pansharpen(str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), str(tmp_path / "o.tif"),
                     sensor="wv2", method="auto", feedback=fb)
    assert res.method in selfcheck.CLASSICAL_CANDIDATES
    assert any("Install ONNX Runtime" in w and "classical" in w for w in fb.warnings), fb.warnings
    # the hint's full stop does not end inside the brackets or before the reason's semicolon (QA: "…').);")
    assert not any(".)" in w for w in fb.warnings) and ".;" not in res.selfcheck.reason, res.selfcheck.reason


def test_auto_falls_back_when_the_ratio_does_not_fit(qgis_app, data_dir, tmp_path):
    # Landsat data (ratio 2) declared as WorldView-2: the wv2 model (ratio 4) cannot run; auto checks the network of
    # the data's shape (4 bands, ratio 2) instead, with a warning that names the ratios (it fell back to a classical
    # method until 2026-12-06)
    fb = Recorder()
    res = pansharpen(str(data_dir / "l8_pan.tif"), str(data_dir / "l8_ms.tif"), str(tmp_path / "o.tif"),
                     sensor="wv2", method="auto", feedback=fb)
    assert res.selfcheck.learned is not None
    assert any("ratio is 2, WorldView-2's is 4" in w and "landsat8.onnx" in w for w in fb.warnings), fb.warnings
    # a ratio no bundled network fits (3): the classical candidates only
    ms3 = str(tmp_path / "ms3.tif")
    ds = gdal.Open(str(data_dir / "wv2_ms.tif"))
    gt = list(ds.GetGeoTransform())
    gdal.Translate(ms3, ds, xRes=gt[1] * 3 / 4, yRes=-gt[5] * 3 / 4, resampleAlg="cubic")
    ds = None
    res = pansharpen(str(data_dir / "wv2_pan.tif"), ms3, str(tmp_path / "o3.tif"), sensor="wv2", method="auto")
    assert "ratio" in res.selfcheck.reason and res.selfcheck.learned is None
    assert res.method == res.selfcheck.classical_method in selfcheck.CLASSICAL_CANDIDATES


def test_sample_reaches_64k_ms_pixels_on_a_large_scene(tmp_path):
    """A 1280^2 PAN / 320^2 MS scene (the real WV2 fixture mirrored): >= 64k MS pixels in spread windows,
    and a 'model' that only upsamples (EXP) loses the Wald check to MTF-GLP-HPM."""
    from ksdiff_qgis.engine import classical
    from ksdiff_qgis.engine.grid import plan_grid
    from ksdiff_qgis.engine.pipeline import _ms_stats_window, estimate_scene_stats
    from ksdiff_qgis.engine.raster_io import open_raster
    from ksdiff_qgis.engine.sensors import get_sensor
    from model_core.rasters import write_geotiff

    data = Path(__file__).resolve().parent / "data"
    paths = {}
    for name in ("pan", "ms"):
        ds = gdal.Open(str(data / f"wv2_{name}.tif"))
        a = ds.ReadAsArray()
        a = a[None] if a.ndim == 2 else a
        a = np.concatenate([a, a[:, ::-1]], axis=1)
        a = np.concatenate([a, a[:, :, ::-1]], axis=2)
        a = np.tile(a, (1, 3, 3))[:, : a.shape[1] * 5 // 2, : a.shape[2] * 5 // 2]
        paths[name] = write_geotiff(str(tmp_path / f"{name}.tif"), a, ds.GetGeoTransform(), ds.GetProjection(), 0)
    pan_ds, pan = open_raster(paths["pan"], "PAN")
    ms_ds, ms = open_raster(paths["ms"], "MS")
    plan = plan_grid(pan, ms, ms_ds)
    stats = estimate_scene_stats(pan_ds, ms_ds, pan, ms, plan, gains=get_sensor("wv2").mtf_ms)
    area = _ms_stats_window(plan, ms.width, ms.height)
    res = selfcheck.run_check(pan_ds, ms_ds, pan, ms, plan, get_sensor("wv2"), classical.fuse_exp, stats, area)
    assert ms.width == 320 and res.pixels >= selfcheck.TARGET_PIXELS and res.windows >= 4
    assert res.method == "mtf_glp_hpm" and "Wald ERGAS" in res.reason
    assert res.learned.checkerboard < res.classical.checkerboard     # upsampling draws no one-pixel detail


def test_the_check_scores_landsat_grids_against_the_ms_as_read(data_dir, tmp_path, monkeypatch):
    """Landsat 8's MS grid sits half a PAN pixel off the PAN's. A 'model' that returns the known truth
    (tests/landsat_layout.py) has no full-resolution error: R-ERGAS 0 (it was 0.16: the check compared with the MS
    cubic-shifted by a quarter of an MS pixel, as ksdiff:assess did), and the MS's checkerboard response is that of
    the MS as read (the shifted MS's understated it: 0.293 for 0.310)."""
    from landsat_layout import PAD, landsat_truth_scene

    from ksdiff_qgis.engine import classical
    from ksdiff_qgis.engine import metrics as M
    from ksdiff_qgis.engine.grid import plan_grid
    from ksdiff_qgis.engine.pipeline import _ms_stats_window, estimate_scene_stats
    from ksdiff_qgis.engine.raster_io import open_raster
    from ksdiff_qgis.engine.sensors import get_sensor

    scene = landsat_truth_scene(data_dir, tmp_path)
    truth = scene["truth_padded"]

    def truth_fuser(pan, lms, ctx: classical.TileContext) -> np.ndarray:
        r, c = ctx.origin[0] + PAD, ctx.origin[1] + PAD
        assert r >= 0 and c >= 0 and r + pan.shape[0] <= truth.shape[1] and c + pan.shape[1] <= truth.shape[2]
        return truth[:, r:r + pan.shape[0], c:c + pan.shape[1]]

    windows = []
    score = selfcheck._score_window

    def recorded(s, *args):
        windows.append(s.win)
        return score(s, *args)

    monkeypatch.setattr(selfcheck, "_score_window", recorded)
    pan_ds, pan = open_raster(scene["pan"], "PAN")
    ms_ds, ms = open_raster(scene["ms"], "MS")
    plan = plan_grid(pan, ms, ms_ds)
    assert plan.ms_origin == (-3.5, -3.5)
    stats = estimate_scene_stats(pan_ds, ms_ds, pan, ms, plan, gains=get_sensor("landsat8").mtf_ms)
    res = selfcheck.run_check(pan_ds, ms_ds, pan, ms, plan, get_sensor("landsat8"), truth_fuser, stats,
                              _ms_stats_window(plan, ms.width, ms.height))
    assert res.pixels >= selfcheck.MIN_PIXELS and windows
    assert res.learned.r_ergas < 1e-4, res.learned
    ms_arr = ms_ds.ReadAsArray().astype(np.float64)
    sums = np.zeros((2, ms.bands))
    for c, r, w, h in windows:
        cb, grad, _ = M._checker_parts(ms_arr[:, r:r + h, c:c + w])
        sums += [cb.sum(axis=(1, 2)), grad.sum(axis=(1, 2))]
    assert res.ms_checkerboard == pytest.approx(float(np.max(sums[0] / sums[1])), rel=1e-9)


def test_out_of_range_network_outputs_are_counted(data_dir, scaled_model, tmp_path, monkeypatch):
    # the network's own values: the consistency step would pull this model's brightness back into range
    monkeypatch.setattr(consistency, "project", lambda f, *args, **kw: np.asarray(f, np.float32))
    fb = Recorder()
    pansharpen(str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), str(tmp_path / "o.tif"), sensor="wv2",
               method="ksdiff", model_path=scaled_model, feedback=fb)
    # counted and logged (a warning above 0.1 % of the values, else an info line), never silent
    said = [m for m in fb.warnings + fb.infos if "above 2047" in m]
    assert said and re.search(r"NIR: [1-9]\d* above 2047", said[0]) and " 0 below" not in said[0], said


def test_auto_with_a_users_model_that_does_not_fit_fuses_classically_and_says_why(data_dir, scaled_model, tmp_path):
    """README: METHOD auto uses the best classical method when the model does not fit the data. A user's MODEL of
    another ratio, or with a band the selected MS bands lack, stopped the run under auto too until 2026-12-06 (QA:
    a ratio-4 MODEL on ratio-2 data, a 4-band MODEL on 3 bands); auto now warns, naming the reason, and fuses with
    the best classical method on the scene; METHOD ksdiff keeps the error and writes nothing. A MODEL that cannot
    run at all (a broken file) stays an error under auto too."""
    import shutil

    from ksdiff_qgis.engine.errors import InputError

    bad = tmp_path / "ratio2.onnx"
    shutil.copy(scaled_model, bad)
    card = json.loads(Path(scaled_model).with_suffix(".json").read_text())
    card["ratio"] = 2
    bad.with_suffix(".json").write_text(json.dumps(card))
    pan, ms = str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif")
    for model, bands, why in ((bad, None, "trained for ratio 2; the data has ratio 4"),
                              (scaled_model, [1, 2, 3], "expects 4 MS bands")):
        log, out = Recorder(), tmp_path / f"auto_{Path(model).stem}.tif"
        res = pansharpen(pan, ms, str(out), sensor="wv2", method="auto", model_path=str(model), ms_bands=bands,
                         feedback=log)
        assert res.method in ("mtf_glp_hpm", "gsa", "brovey", "mtf_glp_fs") and out.exists()
        said = [w for w in log.warnings if "does not fit this scene" in w]
        assert len(said) == 1 and why in said[0] and "best classical method" in said[0], log.warnings
        assert res.selfcheck is not None and why in res.selfcheck.reason
        forced = tmp_path / f"forced_{Path(model).stem}.tif"
        with pytest.raises(InputError, match="ratio 2|expects 4 MS bands"):
            pansharpen(pan, ms, str(forced), sensor="wv2", method="ksdiff", model_path=str(model), ms_bands=bands)
        assert not forced.exists()
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    shutil.copy(Path(scaled_model).with_suffix(".json"), broken.with_suffix(".json"))
    with pytest.raises(InputError):
        pansharpen(pan, ms, str(tmp_path / "b.tif"), sensor="wv2", method="auto", model_path=str(broken))


def test_a_users_model_of_another_sensor_is_warned_as_a_bundled_one_is(tmp_path):
    """MODEL with a card for another sensor than SENSOR (QA: a Pléiades model run as SENSOR wv2) ran without a word,
    where a bundled model serving another sensor warns; now it warns too. Same sensor, or a generic card: silent."""
    import shutil

    from ksdiff_qgis.engine.pipeline import resolve_model
    from model_core.export import write_card

    qb = model_card.bundled_cards()["qb"]
    log = Recorder()
    assert resolve_model("wv2", str(qb), log).sensor == "qb"
    assert len(log.warnings) == 1 and "trained for QuickBird (its card's sensor qb), not for WorldView-2 (SENSOR " \
        "wv2)" in log.warnings[0], log.warnings
    log = Recorder()
    resolve_model("qb", str(qb), log)
    generic = tmp_path / "generic.onnx"
    shutil.copy(qb, generic)
    card = json.loads(qb.with_suffix(".json").read_text())
    card["sensor"] = "generic"
    write_card(generic, card)   # as model_core exports it: the copy inside the ONNX agrees with the JSON
    resolve_model("wv2", str(generic), log)
    assert log.warnings == []


def test_the_best_classical_method_is_the_yardstick():
    hpm, gsa = Scores(4.0, 4.5, 1.00, 0.38), Scores(3.5, 4.4, 1.05, 0.38)
    assert pick_classical({"mtf_glp_hpm": hpm, "gsa": gsa})[0] == "gsa"          # lower Wald ERGAS, consistent
    gsa_inconsistent = Scores(3.5, 4.4, 1.25, 0.38)                                 # 25 % worse R-ERGAS
    assert pick_classical({"mtf_glp_hpm": hpm, "gsa": gsa_inconsistent})[0] == "mtf_glp_hpm"
    assert pick_classical({"gsa": Scores(4.0, 4.5, 1.0, 0.38), "mtf_glp_hpm": hpm})[0] == "mtf_glp_hpm"   # ties


def test_a_near_tie_is_said_with_the_decimals_that_tell_it_and_no_false_tie_note():
    """QA (held-out Landsat 7 case): 'MTF-GLP-FS 2.004, BDSD-PC 2.004, MTF-GLP-HPM 2.732 (MTF-GLP-HPM wins ties)' for
    scores 2.00380 and 2.00424, with MTF-GLP-HPM third and no tie at all."""
    fs, bdsd, hpm = Scores(1.0038, 1.0, 1.0, 0.4), Scores(1.0, 1.0, 1.00424, 0.4), Scores(1.3, 1.0, 1.4, 0.4)
    name, why = pick_classical({"mtf_glp_hpm": hpm, "mtf_glp_fs": fs, "bdsd_pc": bdsd})
    assert name == "mtf_glp_fs"
    assert "ties" not in why and "tie;" not in why
    assert "MTF-GLP-FS 2.0038, BDSD-PC 2.0042, MTF-GLP-HPM 2.7000" in why, why
    # a real tie names the tied methods and the rule that broke it
    fs = Scores(1.0, 1.0, 1.0, 0.4)
    name, why = pick_classical({"mtf_glp_fs": fs, "bdsd_pc": Scores(1.0, 1.0, 1.0, 0.4), "mtf_glp_hpm": hpm})
    assert name == "mtf_glp_fs" and "(MTF-GLP-FS, BDSD-PC tie; MTF-GLP-FS comes first)" in why, why
    name, why = pick_classical({"gsa": fs, "mtf_glp_hpm": Scores(1.0, 1.0, 1.0, 0.4)})
    assert name == "mtf_glp_hpm" and "MTF-GLP-HPM wins ties)" in why, why


def test_small_scene_study_runs_auto_at_both_thresholds(load_script, data_dir, tmp_path, monkeypatch):
    """``validate_selfcheck.py --small``: a Wald case of the real fixture below the check's minimum sample is fused
    by ``auto`` at the current threshold (no check: MTF-GLP-HPM) and at the study's (checked), every method is scored
    against the reference, and the module's threshold is left as it was."""
    from ksdiff_qgis.engine import selfcheck

    vs = load_script("validate_selfcheck")
    monkeypatch.setattr(selfcheck, "MIN_PIXELS", 4096)   # the fixture's sample is below it, above SMALL_THRESHOLD
    before = selfcheck.MIN_PIXELS
    case = vs.wald_case(tmp_path, "fixture", str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), "wv2")
    row = vs.run_small(case, tmp_path)
    assert selfcheck.MIN_PIXELS == before
    assert row["auto_current"]["method"] == "mtf_glp_hpm" and row["auto_current"]["pixels"] < before
    assert row["auto_small"]["pixels"] >= vs.SMALL_THRESHOLD
    methods = ("ksdiff",) + vs.CLASSICAL_CANDIDATES
    assert row["auto_small"]["method"] in methods
    assert row["best_classical"] in vs.CLASSICAL_CANDIDATES and all(row[m] > 0 for m in methods)
    assert "| fixture |" in vs.small_markdown([row])


def test_generic_study_runs_auto_without_and_with_the_nearest_network(load_script, data_dir):
    """``validate_selfcheck.py --generic``: a real fixture's Wald case run as SENSOR=generic, ``auto`` once with the
    generic routing emptied (only classical methods to check) and once as the plugin runs it (the 4-band network
    of the product's shape checked too), every method scored against the reference; the routing is left as it
    was."""
    from ksdiff_qgis.engine import sensors
    from model_core.rasters import read
    from model_core.wald import make_reduced_case

    vs, rb = load_script("validate_selfcheck"), load_script("robustness")
    before = dict(sensors.GENERIC_NEAREST)
    with tempfile.TemporaryDirectory() as d:
        c = make_reduced_case(str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), d, "wv2")
        pan, ms, ref = read(c.pan), read(c.ms), read(c.ref)
        case = rb.Case("fixture", "generic", "the WV2 fixture", pan.data[0], ms.data, ref.data, ref.transform,
                       ref.crs, str(ref.data.dtype), 4)
        row = vs.run_generic(case, Path(d))
    assert sensors.GENERIC_NEAREST == before
    assert row["auto_now_method"] in vs.CLASSICAL_CANDIDATES
    assert row["auto_network_method"] in ("ksdiff",) + vs.CLASSICAL_CANDIDATES
    assert row["best_classical"] in vs.CLASSICAL_CANDIDATES and row["ksdiff"] > 0
    assert "| fixture | 4 |" in vs.generic_markdown([row])


def test_a_scene_of_a_few_hundred_check_pixels_is_checked(load_script, data_dir, tmp_path):
    """Since the 4-band network trains at the check's scale too, samples of 256 MS pixels are trusted
    (docs/SELFCHECK.md, small-scene study): a Wald case of the real fixture (a 16x16-pixel MS window with its
    context) gets the check, both methods scored, instead of an unchecked MTF-GLP-HPM."""
    from ksdiff_qgis.engine import selfcheck
    from ksdiff_qgis.engine.pipeline import pansharpen

    vs = load_script("validate_selfcheck")
    case = vs.wald_case(tmp_path, "fixture", str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), "wv2")
    res = pansharpen(case["pan"], case["ms"], str(tmp_path / "auto.tif"), "wv2", "auto")
    check = res.selfcheck
    assert selfcheck.MIN_PIXELS <= check.pixels < 1024
    assert check.learned is not None and math.isfinite(check.learned.ergas) and math.isfinite(check.classical.ergas)
    assert res.method == check.method and "valid MS pixels" not in check.reason


def _with_top_strip(src: Path, dst: Path, rows: int) -> str:
    ds = gdal.Translate(str(dst), str(src), options=gdal.TranslateOptions(noData=0))
    for b in range(1, ds.RasterCount + 1):
        band = ds.GetRasterBand(b)
        arr = band.ReadAsArray()
        arr[:rows] = 0
        band.WriteArray(arr)
        band = None
    ds = None
    return str(dst)


def test_a_small_scene_with_a_nodata_strip_is_still_checked(data_dir, tmp_path):
    """Real WorldView-2 pixels, the top 30 of 64 MS rows nodata: every window's context reaches into the strip, so a
    check that wanted 99 % valid context found nothing and fell back; windows that are data themselves, with at
    least half of their context data, are scored now (the learned fuser's kernels from the data part)."""
    pan = _with_top_strip(data_dir / "wv2_pan.tif", tmp_path / "pan.tif", 120)
    ms = _with_top_strip(data_dir / "wv2_ms.tif", tmp_path / "ms.tif", 30)
    res = pansharpen(pan, ms, str(tmp_path / "out.tif"), "wv2", "auto", workers=1)
    check = res.selfcheck
    assert check.pixels >= selfcheck.MIN_PIXELS and check.windows >= 1, check.reason
    assert check.learned is not None and math.isfinite(check.learned.ergas)
    assert "valid MS pixels" not in check.reason


def test_the_check_scores_an_undeclared_fill_as_the_learned_tiles_see_it(data_dir, tmp_path):
    """The same scene with its top strip declared nodata and with it only zeroed (no nodata value): the check takes
    the same windows and scores them alike, instead of scoring fusions of the zeros as data."""
    figures = {}
    for name, nodata in (("declared", 0), ("undeclared", None)):
        pan = _with_top_strip(data_dir / "wv2_pan.tif", tmp_path / f"pan_{name}.tif", 120)
        ms = _with_top_strip(data_dir / "wv2_ms.tif", tmp_path / f"ms_{name}.tif", 30)
        if nodata is None:
            for path in (pan, ms):
                gdal.Translate(path + ".tmp.tif", path, options=gdal.TranslateOptions(noData="none"))
                Path(path + ".tmp.tif").replace(path)
        check = pansharpen(pan, ms, str(tmp_path / f"out_{name}.tif"), "wv2", "auto", workers=1).selfcheck
        figures[name] = (check.pixels, check.learned.ergas, check.classical.ergas)
    assert figures["undeclared"][0] == figures["declared"][0]
    assert np.allclose(figures["undeclared"][1:], figures["declared"][1:], rtol=0.05), figures


def test_each_window_size_gets_its_own_read_budget(tmp_path, monkeypatch):
    """The demo scene with a nodata cross through its middle (every window of 128 MS pixels holds some): with the
    read budget spent on the large windows the check tried no smaller one and said the scene offered 0 valid MS
    pixels (the QA's 40200-pixel mosaic, 68 % data); each size now has its own budget."""
    sample = Path(__file__).resolve().parent.parent / "ksdiff_qgis" / "resources" / "sample"
    ms = str(tmp_path / "ms.tif")
    ds = gdal.Translate(ms, str(sample / "demo_ms.tif"))
    for b in range(1, ds.RasterCount + 1):
        band = ds.GetRasterBand(b)
        data = band.ReadAsArray()
        data[64, :] = 0
        data[:, 64] = 0
        band.WriteArray(data)
    ds = None
    monkeypatch.setattr(selfcheck, "MAX_READS", 1)
    res = pansharpen(str(sample / "demo_pan.tif"), ms, str(tmp_path / "o.tif"), "wv2", "auto", workers=1)
    assert res.selfcheck.pixels >= selfcheck.MIN_PIXELS, res.selfcheck.reason


def test_a_users_model_is_named_and_an_adapted_one_is_flagged(data_dir, scaled_model, tmp_path, monkeypatch):
    """The check's lines name the user's MODEL ("KSDiff" alone read as the bundled network), and a model that
    `python -m model_core adapt` fine-tuned on a scene of its own is not called checked independently."""
    import shutil

    pan, ms = str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif")
    log = Recorder()
    pansharpen(pan, ms, str(tmp_path / "a.tif"), "wv2", "auto", model_path=scaled_model, feedback=log)
    assert any(w.startswith("Self-check: KSDiff (bad.onnx) is not used") for w in log.warnings), log.warnings
    assert any(i.startswith("KSDiff (bad.onnx): Wald ERGAS ") for i in log.infos), log.infos
    adapted = tmp_path / "adapted.onnx"
    shutil.copy(scaled_model, adapted)
    card = json.loads(Path(scaled_model).with_suffix(".json").read_text())
    card["training"] = {**card.get("training", {}), "adapted_from": "wv2 weights"}
    adapted.with_suffix(".json").write_text(json.dumps(card))
    real = selfcheck.run_check

    def kept(*args, **kwargs):   # as if the adapted model had won on its own scene
        res = real(*args, **kwargs)
        res.method = "ksdiff"
        return res

    monkeypatch.setattr(selfcheck, "run_check", kept)
    log = Recorder()
    pansharpen(pan, ms, str(tmp_path / "b.tif"), "wv2", "auto", model_path=str(adapted), feedback=log)
    assert any("fine-tuned on a scene of its own" in w for w in log.warnings), log.warnings



def _cut(src: Path, dst: Path, win: list[int]) -> str:
    gdal.Translate(str(dst), str(src), srcWin=win)
    return str(dst)


def test_a_check_that_cannot_fit_says_why_and_a_16_pixel_ms_fits(tmp_path, cached):
    """QA: a 15x150 MS strip said 'the scene offers only 0 valid MS pixels ... of the 0 windows' (it is narrower than
    the 16-pixel window); a 16x16 MS 0.012 PAN pixels off its 64x64 PAN counted 15 MS pixels and read no window either
    (17x17 did); SELFCHECK_CLASSICAL_METHOD named mtf_glp_hpm 'best on this scene' when nothing was measured."""
    pan, ms = cached("wv2/pair1_pan.tif"), cached("wv2/pair1_ms.tif")
    strip = pansharpen(str(pan), _cut(ms, tmp_path / "ms15.tif", [0, 0, 15, 150]), str(tmp_path / "s.tif"), "wv2",
                       "auto")
    out = strip.selfcheck.outputs(4)
    assert out["SELFCHECK_REASON"] == ("the area is 15 MS pixels wide (15 x 150), narrower than the 16-pixel check "
                                       "window at ratio 4"), out
    assert out["SELFCHECK_CLASSICAL_METHOD"] is None and out["SELFCHECK_KSDIFF_ERGAS"] is None
    assert strip.method == selfcheck.FALLBACK
    square = pansharpen(_cut(pan, tmp_path / "p64.tif", [200, 200, 64, 64]),
                        _cut(ms, tmp_path / "m16.tif", [50, 50, 16, 16]), str(tmp_path / "q.tif"), "wv2", "auto")
    assert square.selfcheck.pixels == 256 and square.selfcheck.windows == 1
    assert square.selfcheck.outputs()["SELFCHECK_CLASSICAL_METHOD"] in selfcheck.CLASSICAL_CANDIDATES


def test_a_small_extent_is_checked_on_the_scene_around_it(tmp_path, cached):
    """QA: a 41x41 PAN-pixel EXTENT inside a 150x150-MS scene fell back to MTF-GLP-HPM unchecked ('only 0 valid MS
    pixels'); the model's behaviour on the scene is the question, so the check samples the scene around the area."""
    said = Recorder()
    res = pansharpen(str(cached("wv2/pair1_pan.tif")), str(cached("wv2/pair1_ms.tif")),
                     str(tmp_path / "e.tif"), "wv2", "auto", extent=(593370.29, 5747537.42, 593390.29, 5747557.42),
                     feedback=said)
    assert res.selfcheck.pixels >= selfcheck.MIN_PIXELS and res.selfcheck.outputs()["SELFCHECK_KSDIFF_ERGAS"]
    assert any("the check samples the scene around it (150 x 150 MS pixels)" in m for m in said.infos), said.infos


def _qa_sentinel2_case(src: Path, folder: Path) -> tuple[str, str]:
    """QA's Sentinel-2 case (2026-12-07): PAN = 0.1 B + 0.3 G + 0.35 R + 0.25 NIR of the real 10 m bands (1536^2),
    the MS blurred (Gaussian MTF 0.3 at Nyquist), averaged over 2 x 2 and decimated x 4, both UInt16."""
    from scipy.ndimage import gaussian_filter

    ds = gdal.Open(str(src))
    a = ds.ReadAsArray(0, 0, 1536, 1536).astype(np.float64)
    gt, wkt = list(ds.GetGeoTransform()), ds.GetProjection()
    pan = 0.1 * a[0] + 0.3 * a[1] + 0.35 * a[2] + 0.25 * a[3]
    sig = 4 * np.sqrt(-2 * np.log(0.3)) / np.pi
    ms = []
    for band in a:
        b = gaussian_filter(band, sig)
        c = (b + np.roll(b, 1, 0) + np.roll(b, 1, 1) + np.roll(np.roll(b, 1, 0), 1, 1)) / 4
        ms.append(c[2::4, 2::4])
    paths = []
    for name, arr, cell in (("pan", pan[None], 1), ("ms", np.array(ms), 4)):
        path = str(folder / f"s2_{name}.tif")
        out = gdal.GetDriverByName("GTiff").Create(path, arr.shape[2], arr.shape[1], arr.shape[0], gdal.GDT_UInt16)
        out.SetGeoTransform([gt[0], gt[1] * cell, 0, gt[3], 0, gt[5] * cell])
        out.SetProjection(wkt)
        for i, band in enumerate(arr, 1):
            out.GetRasterBand(i).WriteArray(band.astype(np.uint16))
        out = None
        paths.append(path)
    return paths[0], paths[1]


def test_auto_keeps_ksdiff_where_the_classical_method_scores_the_same_grid(tmp_path, cached):
    """QA: on a Sentinel-2 product whose PAN is a mix of the 10 m bands, auto fused with MTF-GLP-HPM (truth ERGAS
    1.58) instead of KSDiff (1.37), which passed the Wald and R-ERGAS tests: its checkerboard 0.452 exceeded
    1.1 x the PAN's 0.404 while MTF-GLP-HPM, which draws no one-pixel grid, itself scored 0.430. The guard's
    reference now includes the classical method's own response (docs/VALIDATION.md, 2026-12-07 06:25 UTC)."""
    pan, ms = _qa_sentinel2_case(cached("sentinel2/s2_10m.tif"), tmp_path)
    res = pansharpen(pan, ms, str(tmp_path / "auto.tif"), "auto", "auto", check_only=True)
    sc = res.selfcheck
    assert sc.classical_method == "mtf_glp_hpm", sc.reason
    # the case is the one QA saw: over the PAN's and the MS's reference, within the classical method's
    assert sc.learned.checkerboard > 1.1 * max(sc.pan_checkerboard, sc.ms_checkerboard), sc.outputs(4)
    assert sc.learned.checkerboard <= 1.1 * sc.classical.checkerboard, sc.outputs(4)
    assert res.method == "ksdiff" and "the classical method's" in sc.reason, sc.reason


def test_decide_says_why_a_flat_pan_s_undefined_response_refuses_the_network():
    """A flat PAN has no checkerboard response (NaN): the guard refuses, and says so instead of '1.1 x the MS's nan'."""
    learned = Scores(ergas=1.0, r_ergas=0.1, sam=1.0, checkerboard=0.3)
    classic = Scores(ergas=2.0, r_ergas=0.2, sam=1.0, checkerboard=0.2)
    keep, why = decide(learned, classic, pan_cb=float("nan"), ms_cb=0.4)
    assert not keep
    assert "nan" not in why and "PAN is flat" in why


def test_ksdiff_without_onnx_runtime_is_refused_before_any_scene_work(data_dir, tmp_path, monkeypatch):
    """First-run QA: METHOD ksdiff without ONNX Runtime measured the PAN/MS offset and logged its long warning before
    the install hint; the hint now comes first and alone."""
    from ksdiff_qgis.engine import pipeline, runtime
    from ksdiff_qgis.engine.errors import InputError

    def missing():
        raise InputError(runtime.INSTALL_HINT)

    def no_statistics(*args, **kwargs):
        raise AssertionError("the scene statistics were computed before the refusal")

    monkeypatch.setattr(runtime, "import_onnxruntime", missing)
    monkeypatch.setattr(pipeline, "estimate_scene_stats", no_statistics)
    fb = Recorder()
    with pytest.raises(InputError) as err:
        pansharpen(str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), str(tmp_path / "o.tif"),
                   sensor="wv2", method="ksdiff", feedback=fb)
    assert str(err.value) == runtime.INSTALL_HINT
    assert not fb.warnings, fb.warnings
    assert not (tmp_path / "o.tif").exists()


def test_a_check_that_could_not_run_names_the_method_by_its_label():
    """QA122: 'narrower than the 16-pixel check window at ratio 4; fusing with mtf_glp_hpm.' (the option's key)."""
    from ksdiff_qgis.engine.feedback import RecordingFeedback

    said = RecordingFeedback()
    selfcheck.log_check(selfcheck.SelfCheck(method="mtf_glp_hpm", reason="the area is 10 MS pixels wide"), said)
    assert said.lines == ["WARNING Self-check: the area is 10 MS pixels wide; fusing with MTF-GLP-HPM."], said.lines


def test_the_default_study_reaches_its_cases(load_script, monkeypatch):
    """``validate_selfcheck.py`` with no study flag (and ``--test-scene``) builds its cases with the module's
    ``cases()`` (QA133: a local of the same name in ``main`` hid it, UnboundLocalError before any work)."""
    vs = load_script("validate_selfcheck")

    class Reached(Exception):
        pass

    def fake(tmp, test_scene=False):
        raise Reached(test_scene)

    monkeypatch.setattr(vs, "cases", fake)
    for argv, scene in (([], False), (["--test-scene"], True)):
        with pytest.raises(Reached) as got:
            vs.main(argv)
        assert got.value.args == (scene,)
