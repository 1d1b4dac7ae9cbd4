"""A bundled KSDiff model's int8 CPU path (``model_core/tile_int8.py``) against float32: quality and speed.

    python scripts/quantize_model.py --sensor wv2 [--out report.json]
    python scripts/quantize_model.py --sensor wv3 --config wv3_validation.yaml     # a config's test case, arrays
    python scripts/quantize_model.py --sensor wv3 --config wv3_validation.yaml --model cand/wv3.onnx   # a candidate

Quality: reduced-resolution (Wald) ERGAS of the whole pipeline, ``PRECISION=int8`` against
``PRECISION=fp32``, on validation cases only: the WorldView-2 fixture scenes and WorldView-2 pairs 1 and 2
(``make data``), and the robustness suite's five Sentinel-2 kinds rebuilt on five windows of the training
area (``robustness.VALIDATION_WINDOWS``: two of them the smoothest of that area, fields and water, where 8-bit
activations lose most), each with its sensor's bundled model. Pair 3 and the robustness suite's own areas are
scored by ``make bench`` and ``scripts/robustness.py``. The variant is acceptable only within 1 % ERGAS of
float32 on every case; the report also gives the RMS of int8 - float32 as a share of float32's error, and each
band's injected detail (``detail_ratio``: the standard deviation of the fusion's high-pass, image minus its
MTF low-pass at the ratio, over the reference's) in both precisions, to see where the two differ.
With ``--config`` the quality part is instead the config's ``test.reduced`` case (e.g. a validation window, for
sensors without GeoTIFF validation pairs here: WorldView-3), fused as one tile by the CPU tile path in both
precisions (no pipeline, no step: the network's int8 against its float32).
Speed: CPU seconds of one thread per 564² tile (the pipeline's KSDiff tile with its margin),
each path as the pipeline runs it (prior graph, kernels written in, a new session, one run).

History: an earlier int8 variant of the *full* graph (static PTQ of every constant-weight convolution,
MinMax ranges) cost +10...+21 % ERGAS on the fixtures and was rejected; the per-tile kernels make every
convolution plain, so the kernels can be quantized per tile and the activation ranges taken as
percentiles (``tile_int8.py``).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from ksdiff_qgis.engine import metrics, model_card, runtime  # noqa: E402
from ksdiff_qgis.engine.filters import lowpass, upsample  # noqa: E402
from ksdiff_qgis.engine.learned import TileKernels  # noqa: E402
from ksdiff_qgis.engine.pipeline import pansharpen  # noqa: E402
from model_core.datacache import data_dir  # noqa: E402
from model_core.rasters import read  # noqa: E402
from model_core.wald import make_reduced_case  # noqa: E402

TILE = 564


def cases() -> dict[str, tuple[str, str]]:
    data, wv2 = ROOT / "tests" / "data", data_dir() / "wv2"
    out = {"fixture": (data / "wv2_pan.tif", data / "wv2_ms.tif"),
           "fixture_test": (data / "wv2_test_pan.tif", data / "wv2_test_ms.tif")}
    for pair in ("pair1", "pair2"):
        if (wv2 / f"{pair}_pan.tif").is_file():
            out[f"wv2_{pair}"] = (wv2 / f"{pair}_pan.tif", wv2 / f"{pair}_ms.tif")
    return {k: (str(p), str(m)) for k, (p, m) in out.items()}


def detail_ratio(fused: np.ndarray, ref: np.ndarray, ratio: int) -> list[float]:
    """Per band: standard deviation of the fusion's high-pass (image minus its MTF low-pass at the ratio, gain
    0.3) over the reference's: below 1 the fusion injects less detail than the scene holds."""
    def high(x):
        return x - lowpass(x, 0.3, ratio)
    return [round(float(a), 3) for a in high(fused).std(axis=(1, 2)) / high(ref).std(axis=(1, 2))]


def _row(fused: dict[str, np.ndarray], ref: np.ndarray, score, ratio: int) -> dict[str, float]:
    row = {p: float(score(f)) for p, f in fused.items()}
    row["change_percent"] = 100 * (row["int8"] - row["fp32"]) / row["fp32"]
    row["rms_share_percent"] = 100 * float(np.sqrt(np.mean((fused["int8"] - fused["fp32"]) ** 2)
                                                   / np.mean((fused["fp32"] - ref) ** 2)))
    row["detail_ratio"] = {p: detail_ratio(f, ref, ratio) for p, f in fused.items()}
    return row


def _both(pan: str, ms: str, tmp: str, name: str, sensor: str) -> dict[str, np.ndarray]:
    """KSDiff's output in float32 and in int8, each read once."""
    fused = {}
    for precision in ("fp32", "int8"):
        out = str(Path(tmp) / f"{name}_{precision}.tif")
        pansharpen(pan, ms, out, sensor, "ksdiff", device="cpu", precision=precision)
        fused[precision] = read(out).data.astype(np.float64)
    return fused


def ergas(sensor: str, tmp: str) -> dict[str, dict[str, float]]:
    import robustness

    res = {}
    for name, (pan, ms) in cases().items():
        case = make_reduced_case(pan, ms, tmp, sensor, prefix=name)
        ref = read(case.ref).data.astype(np.float64)
        res[name] = _row(_both(case.pan, case.ms, tmp, name, sensor), ref,
                         lambda f, ref=ref, r=case.ratio: metrics.ergas(f, ref, r), case.ratio)
    if (data_dir() / "sentinel2" / "s2_10m.tif").is_file():
        for windows, case in robustness.validation_cases():
            name = f"{case.name}@{windows[0][0]},{windows[0][1]}"
            pan, ms, _ = robustness.write_case(case, Path(tmp) / name)
            ref = case.ref.astype(np.float64)
            res[name] = _row(_both(pan, ms, tmp, name, case.sensor), ref,
                             lambda f, c=case: robustness.score_array(f, c)["ERGAS"], case.ratio)
    for name, row in res.items():
        print(f"{name:34s} fp32 {row['fp32']:.4f}  int8 {row['int8']:.4f}  {row['change_percent']:+.2f} %  "
              f"rms {row['rms_share_percent']:.1f} %  detail fp32 {row['detail_ratio']['fp32']} "
              f"int8 {row['detail_ratio']['int8']}", flush=True)
    return res


def config_case_ergas(sensor: str, config: str, model: str | None = None) -> dict[str, dict[str, float]]:
    """int8 against float32 on a config's ``test.reduced`` case, through the CPU tile path as one tile;
    ``model``: a candidate ONNX file with its card instead of the sensor's bundled model."""
    from ksdiff_qgis.engine.sensors import get_sensor
    from model_core.config import load_config
    from model_core.evaluate import reduced_case

    card = model_card.load_card(model or model_card.bundled_cards()[sensor])   # a bad model fails before any read
    cfg, sens = load_config(config), get_sensor(sensor)
    t = reduced_case(cfg, sens)
    session = runtime.get_session(str(card.path), "cpu", 1, sha256=card.sha256)
    scale = card.scale / sens.scale   # the case is in units of the sensor scale, the model wants its own
    pan = np.ascontiguousarray(t.pan[None, None] / scale, dtype=np.float32)
    lms = np.ascontiguousarray(t.lms[None] / scale, dtype=np.float32)
    ref = t.gt.astype(np.float64) * sens.scale
    fused = {p: TileKernels(card, session, p == "int8")(pan, lms)[0].astype(np.float64) * card.scale
             for p in ("fp32", "int8")}
    name = f"{Path(config).stem}:{t.name}"
    row = _row(fused, ref, lambda f: metrics.ergas(f, ref, sens.ratio), sens.ratio)
    print(f"{name}: fp32 {row['fp32']:.4f}  int8 {row['int8']:.4f}  {row['change_percent']:+.2f} %", flush=True)
    return {name: row}


def tile_seconds(sensor: str, repeat: int = 3) -> dict[str, float]:
    card = model_card.load_card(model_card.bundled_cards()[sensor])
    session = runtime.get_session(str(card.path), "cpu", 1, sha256=card.sha256)
    pan_path, ms_path = cases()["fixture_test"]
    p = read(pan_path).data[0].astype(np.float32) / card.scale
    m = read(ms_path).data.astype(np.float32) / card.scale
    lms = upsample(m, card.ratio, p.shape)
    reps = -(-TILE // p.shape[0])
    pan = np.ascontiguousarray(np.tile(p, (reps, reps))[None, None, :TILE, :TILE])
    lms = np.ascontiguousarray(np.tile(lms, (1, reps, reps))[None, :, :TILE, :TILE])
    out = {}
    for name, int8 in (("fp32", False), ("int8", True)):
        fast = TileKernels(card, session, int8)
        fast(pan, lms)
        best = float("inf")
        for _ in range(repeat):   # CPU time of this thread: robust to other jobs on a shared machine
            t = time.thread_time()
            fast(pan, lms)
            best = min(best, time.thread_time() - t)
        out[name] = best
    out["speedup"] = out["fp32"] / out["int8"]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sensor", default="wv2")
    ap.add_argument("--out", help="JSON report (default: stdout only)")
    ap.add_argument("--config", help="score the config's test.reduced case instead of the 4-band validation cases")
    ap.add_argument("--model", help="with --config: a candidate ONNX file (card beside it), not the bundled one")
    a = ap.parse_args(argv)
    if a.model and not a.config:
        ap.error("--model needs --config")
    if a.config:
        quality = config_case_ergas(a.sensor, a.config, a.model)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            quality = ergas(a.sensor, tmp)
    speed = None if a.config else tile_seconds(a.sensor)   # the speed probe is the 4-band fixture
    changes = [r["change_percent"] for r in quality.values()]
    report = {"sensor": a.sensor, "ergas": quality,
              "within_1_percent": all(abs(c) <= 1 for c in changes), "largest_change_percent": max(changes, key=abs),
              "mean_rms_share_percent": float(np.mean([r["rms_share_percent"] for r in quality.values()])),
              "tile_cpu_seconds": speed, "tile": TILE}
    print(json.dumps(report, indent=1))
    if a.out:
        Path(a.out).write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
