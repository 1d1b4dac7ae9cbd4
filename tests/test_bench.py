"""The bench (``python -m bench``) on a small real fixture: it scores, reports, and never touches the shipped models."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

from bench import common, external, learned, quality, report, speed
from ksdiff_qgis.engine.model_card import MODELS_DIR
from model_core.wald import make_reduced_case


def _hashes(folder) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def scenes(data_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench")
    case = make_reduced_case(str(data_dir / "wv2_test_pan.tif"), str(data_dir / "wv2_test_ms.tif"), str(tmp), "wv2",
                             prefix="fx")
    reduced = [dict(name="wv2_fixture", sensor="wv2", pan=case.pan, ms=case.ms, ref=case.ref, ratio=4,
                    desc="pair-3 fixture", notes=case.notes)]
    full = [dict(name="wv2_pair3", sensor="wv2", pan=str(data_dir / "wv2_test_pan.tif"),
                 ms=str(data_dir / "wv2_test_ms.tif"), desc="pair-3 fixture")]
    return tmp, [("reduced", reduced), ("full", full)]


def test_bench_scoring_leaves_the_shipped_models_byte_identical(scenes):
    before = _hashes(MODELS_DIR)
    tmp, cases = scenes
    models = [m for m in learned.onnx_models() if m[0] == "ksdiff[wv2]"]
    assert models, "the bundled wv2 model is found"
    methods = [("exp", None), ("mtf_glp_hpm", None)] + models + [(common.GDAL_METHOD, None)]
    results = {"environment": report.environment(), "methods": [m for m, _ in methods], "scenes": [],
               "quality": [], "speed": {}, "skipped": []}
    quick = {"tiles": {}}
    quality.run_quality(methods, cases, tmp, results, quick)
    assert not results["skipped"], results["skipped"]
    rows = {(r["mode"], r["method"]): r for r in results["quality"]}
    assert len(rows) == 2 * len(methods)
    # the learned model beats cubic upsampling on the held-apart fixture, and every index is finite
    assert rows["reduced", "ksdiff[wv2]"]["ERGAS"] < rows["reduced", "exp"]["ERGAS"]
    assert all(np.isfinite(r["HQNR"]) for (mode, _), r in rows.items() if mode == "full")
    assert set(quick["tiles"]) >= {"PAN", "exp", "ksdiff[wv2]"}

    scores = learned.model_scores(results, evaluate_missing=False)
    assert set(scores) == {"wv2.onnx"}
    ergas = round(rows["reduced", "ksdiff[wv2]"]["ERGAS"], 4)
    assert scores["wv2.onnx"]["scenes"]["reduced/wv2_fixture"]["ERGAS"] == ergas
    results["bundled_models"] = scores
    results["speed"] = {"scene": {"pan_size": 0, "desc": "none"}, "idle_peak_mb": 0.0, "runs": []}
    results["total_seconds"] = 0.0
    text = report.markdown(results, [])
    assert "## Bundled models" in text and "`wv2.onnx`" in text
    assert _hashes(MODELS_DIR) == before, "the bench changed a shipped model, card or README"


def test_bench_reduced_scores_are_the_whole_image_indices(scenes):
    """The bench scores through the engine's tiled assessment; that equals the whole-image indices it
    computed itself before (pixels that are 0 in any band of either raster left out), also for GDAL's
    pansharpening, whose output declares no nodata."""
    from ksdiff_qgis.engine import metrics as M
    from model_core.rasters import read

    tmp, cases = scenes
    scene = cases[0][1][0]
    for method in ("exp", common.GDAL_METHOD):
        out = str(tmp / f"equal_{method}.tif")
        common.run_method(method, scene["pan"], scene["ms"], out, scene["sensor"])
        ref, fused = read(scene["ref"]).data.astype(np.float64), read(out).data.astype(np.float64)
        assert fused.shape == ref.shape
        mask = np.all(ref != 0, axis=0) & np.all(fused != 0, axis=0)
        whole = M.reduced_resolution(fused, ref, scene["ratio"], 2047.0, mask)
        got = quality.score_reduced(out, scene)
        assert set(got) == {*M.REDUCED, "per_band"}
        for k in M.REDUCED:
            assert got[k] == pytest.approx(whole[k], rel=1e-9), (method, k)
        for k, v in whole["per_band"].items():
            assert got["per_band"][k] == pytest.approx(v, rel=1e-9), (method, k)


def test_bench_worker_subprocess(data_dir, tmp_path):
    """Speed runs go through ``python -m bench --worker``: one classical fusion, timed with its peak RSS."""
    out = tmp_path / "w.tif"
    r = speed.run_subprocess("exp", str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), str(out), "wv2")
    assert r["seconds"] > 0 and r["peak_mb"] > 0 and out.exists()


@pytest.mark.parametrize("method", ["ksdiff", "ksdiff@int8"])
def test_bench_times_the_session_the_run_uses(data_dir, tmp_path, method):
    """The one-off model loading timed apart is the pipeline's own: the run creates no second session (a session
    keyed by other thread counts was created, and counted, twice)."""
    from ksdiff_qgis.engine import runtime

    model = str(MODELS_DIR / "wv2.onnx")
    runtime.clear_cache()
    speed.load_model(model, method)
    loaded = dict(runtime._cache)
    assert len(loaded) == 1
    common.run_method(method, str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), str(tmp_path / "o.tif"),
                      "wv2", model)
    assert runtime._cache == loaded
    session = next(iter(loaded.values()))
    assert session.tile_kernels is not None and (session.tile_int8 is not None) == method.endswith("@int8")


def test_bench_uses_the_engine_method_list():
    from ksdiff_qgis.engine import classical

    assert common.CLASSICAL == list(classical.METHODS) and common.BEST_CLASSICAL == classical.BEST_CLASSICAL
    assert common.BUNDLED_MODELS_DIR == MODELS_DIR


def test_bench_needs_make_data(tmp_path, capsys):
    from bench.__main__ import main

    assert main(["--data", str(tmp_path)]) == 2
    assert "make data" in capsys.readouterr().err


OTB = external.TOOLS["otb_rcs"]
needs_otb = pytest.mark.skipif(not OTB.available(), reason="Orfeo ToolBox not installed (apt-get install otb-bin)")


@needs_otb
@pytest.mark.parametrize("method", ["otb_rcs", "otb_bayes"])
def test_bench_runs_orfeo_toolbox_as_a_user_would(scenes, method):
    """OTB's BundleToPerfectSensor from its command line: the fused raster lies on the PAN grid (MS superimposed
    from the georeferencing), 4 uint16 bands, and is scored like every method; RCS injects registered PAN detail
    (ERGAS well below the upsampled MS's), Bayes at least improves on it."""
    from model_core.rasters import read

    tmp, cases = scenes
    scene = cases[0][1][0]
    assert f"`{' '.join(external.TOOLS[method].command())}`" in "\n".join(report.peer_lines({"methods": [method]}))
    outs = {m: str(tmp / f"otb_test_{m}.tif") for m in ("exp", method)}
    for m, out in outs.items():
        assert common.run_method(m, scene["pan"], scene["ms"], out, scene["sensor"]) > 0
    pan, fused = read(scene["pan"]), read(outs[method])
    assert fused.data.shape == (4, *pan.data.shape[1:]) and fused.data.dtype == np.uint16
    assert fused.gt == pytest.approx(pan.gt)
    ergas = {m: quality.score_reduced(out, scene)["ERGAS"] for m, out in outs.items()}
    assert ergas[method] < (0.7 if method == "otb_rcs" else 0.9) * ergas["exp"], ergas


@needs_otb
def test_bench_orfeo_toolbox_failure_says_why(tmp_path, data_dir):
    """A failing OTB run raises with its command line and OTB's own reason, and writes no output."""
    out = tmp_path / "o.tif"
    with pytest.raises(RuntimeError, match=r"otbcli_BundleToPerfectSensor .* failed \(exit 1\).*missing_ms\.tif"):
        common.run_method("otb_rcs", str(data_dir / "wv2_test_pan.tif"), str(tmp_path / "missing_ms.tif"), str(out),
                          "wv2")
    assert not out.exists()


@needs_otb
def test_bench_times_orfeo_toolbox_in_its_own_process(data_dir, tmp_path):
    """The speed bench starts OTB from the stdlib-only launcher: seconds, and the tool's own peak RSS. Through the
    engine's Python worker the figure was that worker's own VmHWM (about the idle worker's, whatever OTB used);
    OTB on this small scene stays well below it."""
    out = tmp_path / "w.tif"
    r = speed.run_subprocess("otb_rcs", str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), str(out), "wv2")
    assert r["seconds"] > 0 and out.exists()
    idle = speed.run_subprocess("__idle__", "", "", "", "wv2")
    assert 10 < r["peak_mb"] < 0.9 * idle["peak_mb"], (r, idle)


def test_bench_without_orfeo_toolbox_says_so_in_one_line(monkeypatch, tmp_path):
    """Without OTB on PATH (CI, `make test`): its methods are left out, one line says how to include them, the
    report carries that line and still describes GDAL's command."""
    monkeypatch.setenv("PATH", str(tmp_path))
    tools, missing = external.available_tools()
    assert [t.method for t in tools] == [common.GDAL_METHOD]
    assert len(missing) == 1 and "otbcli_BundleToPerfectSensor not on PATH" in missing[0]
    assert "apt-get install otb-bin" in missing[0]
    text = "\n".join(report.peer_lines({"methods": [common.GDAL_METHOD], "tools_missing": missing}))
    assert "gdal_pansharpen.py PAN MS OUT -r cubic -of GTiff" in text and "Not in this run: otbcli" in text


@pytest.mark.parametrize("sensor", ["gf2", "qb"])
def test_bench_scores_a_shared_network_on_its_own_cards_test_case(sensor, tmp_path):
    """gf2 and qb ship the 4-band network trained with the WorldView-2 config; the bench (and `model_core evaluate
    --onnx`) scored both with that config's setup (wv2's MTF, 11 bits), so both rows were WorldView-2's (EXP 13.3969,
    best classical 8.4429) against their cards' gf2 13.6196 / 8.0581 and qb 13.5949 / 8.3087. Now each is scored on
    the test case its card was: degraded with its own sensor's MTF gains, at its own value scale. EXP and the best
    classical method depend on the test case alone, so they match the card's to the digit."""
    import json

    from ksdiff_qgis.engine.sensors import get_sensor
    from model_core.__main__ import main as model_core_cli
    from model_core.config import sensor_spec, sensor_test_config
    from model_core.datacache import data_dir

    spec, own = sensor_spec(sensor_test_config(sensor)), get_sensor(sensor)
    assert (spec.key, spec.mtf_ms, spec.scale) == (sensor, own.mtf_ms, own.scale)
    if not (data_dir() / "wv2" / "pair3_pan.tif").exists():   # the scores below need the card's test pair
        pytest.skip("no WorldView-2 pair 3 in the data cache (make data)")
    path = MODELS_DIR / f"{sensor}.onnx"
    card = json.loads(path.with_suffix(".json").read_text())["metrics"]["scenes"]
    key = next(k for k in card if k.startswith("reduced/"))
    got = learned.evaluate_card_model(str(path), sensor)["scenes"][key]
    assert (got["EXP_ERGAS"], got["best_classical_ERGAS"]) == (card[key]["EXP_ERGAS"],
                                                              card[key]["best_classical_ERGAS"])
    assert abs(got["PSNR"] - card[key]["PSNR"]) < 0.5   # the card's value scale (wv2's 2047 gives about 27.5)
    # the command the bench's figure is said to come from scores it the same way
    out = tmp_path / "e.json"
    assert model_core_cli(["evaluate", "--onnx", str(path), "--out", str(out), "--threads", "1"]) == 0
    assert round(json.loads(out.read_text())["reduced"]["EXP"]["ERGAS"], 4) == card[key]["EXP_ERGAS"]
