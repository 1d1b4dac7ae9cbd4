"""The learned models under test: the bundled ones (read only) and the comparison backbones in bench/models/.

``model_scores`` gathers what the bench measured for each bundled model; it goes to bench/results.json and
docs/BENCHMARKS.md. A model's card is never rewritten here (it is written once, by ``model_core export``).
"""
from __future__ import annotations

import json
from pathlib import Path

from ksdiff_qgis.engine import metrics as M
from ksdiff_qgis.engine.model_card import load_card

from .common import BASELINE_MODELS_DIR, BUNDLED_MODELS_DIR, CLASSICAL, INT8, PEER_METHODS


def _card(model: str) -> dict:
    """The JSON card beside an ONNX model ({} when unreadable)."""
    try:
        return json.loads(Path(model).with_suffix(".json").read_text())
    except (OSError, ValueError):
        return {}


def model_method(model: str) -> str:
    """The card's method (ksdiff, fusionnet, pannet, ssdiff) of an ONNX model; 'model' if unreadable."""
    return _card(model).get("method", "model")


def onnx_models(models_dir: Path = BUNDLED_MODELS_DIR,
                baselines_dir: Path = BASELINE_MODELS_DIR) -> list[tuple[str, str]]:
    """(label, path) of every bundled model and every comparison backbone, e.g. ``ksdiff[wv2]``; a model whose
    card carries an int8 variant is listed twice, the second time as ``ksdiff[wv2]@int8`` (PRECISION=int8)."""
    models = sorted(Path(models_dir).glob("*.onnx")) + sorted(Path(baselines_dir).glob("*.onnx"))
    out = []
    for p in models:
        card = _card(str(p))
        label = f"{card.get('method', 'model')}[{p.stem}]"
        out.append((label, str(p)))
        if "int8" in card.get("tile_kernels", {}):
            out.append((label + INT8, str(p)))
    return out


def model_sensor(model: str | None) -> str | None:
    """The sensor key of an ONNX model's card (None when unreadable: the pipeline then reports why)."""
    if model is None:
        return None
    try:
        return load_card(model).sensor
    except Exception:  # noqa: BLE001  (a broken card is reported by the pipeline run itself)
        return None


def ssdiff_timing_model(tmp: Path) -> str | None:
    """SSDiff exported with untrained weights, for timing only (its cost does not depend on the weights)."""
    try:
        import torch

        from model_core.export import export_onnx, make_card, write_card
        from model_core.nets import build_model
    except ImportError as e:
        print(f"bench: SSDiff timing skipped ({e})")
        return None
    torch.manual_seed(0)
    model = build_model("ssdiff", 4).eval()
    path = export_onnx(model, tmp / "ssdiff_timing.onnx", 4)
    write_card(path, make_card(model, {"sensor": "wv2", "method": "ssdiff", "backbone": "ssdiff"},
                               {"note": "untrained weights: timing only"}))
    return str(path)


def model_scores(results: dict, models_dir: Path = BUNDLED_MODELS_DIR, evaluate_missing: bool = True) -> dict:
    """Each bundled model's measured indices on the bench scenes (and the best classical method's, for
    reference), keyed by ONNX file name. A model with no bench scene of its sensor (qb, gf2, wv3) is scored
    on its sensor config's held-apart test case instead (``evaluate_missing``)."""
    scores = {}
    for label, path in onnx_models(models_dir):
        if Path(path).parent != Path(models_dir) or label.endswith(INT8):
            continue
        rows = [r for r in results["quality"] if r["method"] == label]
        sensor = model_sensor(path) or Path(path).stem
        if not rows:
            if evaluate_missing:
                scores[Path(path).name] = {"sensor": sensor, **evaluate_card_model(path, sensor)}
            continue
        metrics = {}
        for r in rows:
            keys = M.REDUCED if r["mode"] == "reduced" else M.FULL
            best = [q for q in results["quality"] if q["mode"] == r["mode"] and q["scene"] == r["scene"]
                    and q["method"] in CLASSICAL + PEER_METHODS]
            metrics[f"{r['mode']}/{r['scene']}"] = {
                **{k: round(float(r[k]), 4) for k in keys if r.get(k) is not None},
                "best_classical_ERGAS" if r["mode"] == "reduced" else "best_classical_HQNR": round(float(
                    min(q["ERGAS"] for q in best) if r["mode"] == "reduced" else max(q["HQNR"] for q in best)), 4)
                if best else None,
            }
        scores[Path(path).name] = {"sensor": sensor, "measured_by": "make bench (python -m bench)",
                                   "date_utc": results["environment"]["date_utc"], "scenes": metrics}
    return scores


def evaluate_card_model(path: str, sensor: str) -> dict:
    """Indices of a model on its sensor config's held-apart test case (``python -m model_core evaluate``), with the
    sensor's own MTF gains and value scale, as its card was scored (gf2 and qb share the WorldView-2 network)."""
    from model_core.config import sensor_test_config
    from model_core.evaluate import card_metrics, evaluate, onnx_runner

    run, mult, _ = onnx_runner(path)
    res = evaluate(run, mult, sensor_test_config(sensor))
    return card_metrics(res, sensor, "make bench via model_core evaluate (the sensor config's held-apart test case; "
                                     "no real image of this sensor exists here, see the card's training data)")
