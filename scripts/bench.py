"""`make bench`: quality and speed of every available pansharpening method on the held-apart real scenes.

Methods: the classical ones through the engine pipeline (``exp``, ``brovey``, ``gsa``, ``mtf_glp_hpm``),
each learned ONNX model in ``resources/models/*.onnx`` (method ``ksdiff`` with that model; skipped when
there is none or it fails), and GDAL's own pansharpening exactly as QGIS's ``gdal:pansharp`` runs it
(``gdal_pansharpen.py PAN MS OUT -r cubic -of GTiff``: weighted Brovey, GDAL's default weights).

Scenes (held-apart areas from ``ksdiff_qgis.engine.heldout``; data from `make data` in ``$KSDIFF_DATA``):
* WorldView-2 pair 3, valid window only (PAN rows 240-599, MS rows 60-149): reduced resolution (Wald's
  protocol, ratio 4) and full resolution.
* Landsat 8 held-apart crop: reduced resolution (ratio 2) and full resolution.
* Sentinel-2 held-apart 10 m crop, reduced resolution with a *simulated* PAN: S2 bands matched to the
  WorldView-2 statistics (per band 1st percentile and mean of WV2 pairs 1-2), PAN = 0.177 B + 0.194 G +
  0.416 R + 0.182 NIR - 4.8 DN, Gaussian blur sigma 0.8 px (DATA.md), MS degraded with the WV2 gains.

Speed: PAN megapixels per second of the whole pipeline (read, fuse, write a GeoTIFF) on a 4096x4096
PAN scene made by mirroring real WorldView-2 pair 1 imagery, each method in its own subprocess (peak RSS
= the subprocess's VmHWM; its ``ru_maxrss`` is recorded too), GDAL in the same run; peak RSS of the best classical method at 2048^2 and 8192^2.

Writes bench/results.json, docs/BENCHMARKS.md and docs/img/*.png. Not part of `make test`.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from osgeo import gdal

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ksdiff_qgis.engine import metrics as M  # noqa: E402
from ksdiff_qgis.engine.filters import convolve_axis, upsample, wald_degrade  # noqa: E402
from ksdiff_qgis.engine.heldout import HELD_APART  # noqa: E402
from ksdiff_qgis.engine.sensors import get_sensor  # noqa: E402
from ksdiff_qgis.engine.wald import make_reduced_case, write_geotiff  # noqa: E402

gdal.UseExceptions()

CLASSICAL = ["exp", "brovey", "gsa", "mtf_glp_hpm"]
BEST_CLASSICAL = "mtf_glp_hpm"
GDAL_METHOD = "gdal_pansharp"
SMALL_CACHE_MB = 64
LABELS = {"exp": "EXP (cubic upsampling)", "brovey": "Brovey", "gsa": "GSA", "mtf_glp_hpm": "MTF-GLP-HPM",
          GDAL_METHOD: "GDAL pansharpening (QGIS gdal:pansharp)"}
S2_PAN_WEIGHTS = (0.177, 0.194, 0.416, 0.182)
S2_PAN_OFFSET = -4.8
S2_PAN_BLUR = 0.8


def data_dir() -> Path:
    return Path(os.environ.get("KSDIFF_DATA", Path.home() / ".cache" / "ksdiff" / "data"))


# ------------------------------------------------------------------------------------ running
def run_method(method: str, pan: str, ms: str, out: str, sensor: str, model: str | None = None) -> float:
    """Fuse in this process; returns seconds."""
    t0 = time.perf_counter()
    if method == GDAL_METHOD:
        from osgeo_utils.gdal_pansharpen import main as gdal_pansharpen_main

        # exactly QGIS's processing/algs/gdal/pansharp.py defaults: -r cubic -of GTiff (no weights)
        rc = gdal_pansharpen_main(["gdal_pansharpen.py", pan, ms, out, "-r", "cubic", "-of", "GTiff", "-q"])
        if rc != 0:
            raise RuntimeError(f"gdal_pansharpen failed ({rc})")
    else:
        from ksdiff_qgis.engine.pipeline import pansharpen

        pansharpen(pan, ms, out, sensor=sensor, method=method, model_path=model)
    return time.perf_counter() - t0


def peak_rss_mb() -> float:
    """Peak RSS of this process image: VmHWM. ``ru_maxrss`` is not used for the figure because Linux
    carries the forking parent's high-water mark over ``exec`` into it (it is reported beside it)."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def worker(argv: list[str]) -> int:
    """Subprocess entry: fuse once, print seconds and this process's peak RSS as JSON."""
    method, pan, ms, out, sensor, model = argv
    if method == "__idle__":
        import ksdiff_qgis.engine.pipeline  # noqa: F401  (imports only: the baseline)

        secs = 0.0
        session_secs = 0.0
    else:
        session_secs = 0.0
        if model:
            # the one-off ONNX Runtime session creation, timed apart; the run below reuses the cached session
            from ksdiff_qgis.engine import runtime

            t0 = time.perf_counter()
            runtime.get_session(model)
            session_secs = time.perf_counter() - t0
        secs = session_secs + run_method(method, pan, ms, out, sensor, model or None)
    print(json.dumps({"seconds": secs, "session_seconds": session_secs, "peak_mb": peak_rss_mb(),
                      "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}))
    return 0


def run_subprocess(method, pan, ms, out, sensor, model=None, env: dict | None = None) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", method, pan, ms, out, sensor, model or ""]
    res = subprocess.run(cmd, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})
    if res.returncode != 0:
        raise RuntimeError(res.stderr[-1500:])
    return json.loads(res.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------- raster i/o
def read(path: str, window=None) -> tuple[np.ndarray, tuple, str]:
    ds = gdal.Open(str(path))
    arr = ds.ReadAsArray(*(window or ()))
    arr = arr[None] if arr.ndim == 2 else arr
    gt = ds.GetGeoTransform()
    if window:
        gt = (gt[0] + window[0] * gt[1], gt[1], 0.0, gt[3] + window[1] * gt[5], 0.0, gt[5])
    return arr, gt, ds.GetProjection()


def crop(src: str, dst: str, window) -> str:
    ds = gdal.Open(str(src))
    gdal.Translate(dst, ds, srcWin=list(window), creationOptions=["TILED=YES", "COMPRESS=DEFLATE"])
    return dst


def on_grid(path: str, gt_ref: tuple, shape: tuple[int, int]) -> np.ndarray:
    """Read ``path`` over the pixels of the grid (gt_ref, shape); the grids must coincide."""
    ds = gdal.Open(str(path))
    gt = ds.GetGeoTransform()
    c = (gt_ref[0] - gt[0]) / gt[1]
    r = (gt_ref[3] - gt[3]) / gt[5]
    if abs(c - round(c)) > 0.05 or abs(r - round(r)) > 0.05 or abs(gt[1] - gt_ref[1]) > 1e-6 * abs(gt[1]):
        raise RuntimeError(f"{path} is not on the reference grid")
    c, r = int(round(c)), int(round(r))
    arr = ds.ReadAsArray(c, r, shape[1], shape[0])
    return arr[None] if arr.ndim == 2 else arr


# ------------------------------------------------------------------------------------- scenes
def wv2_valid_ms_window(ms_path: str, ratio: int) -> tuple[int, int, int, int]:
    """Largest block of MS rows without nodata (pair 3: rows 60-149), trimmed to the ratio."""
    ms, _, _ = read(ms_path)
    good_rows = np.where(np.all(ms != 0, axis=(0, 2)))[0]
    r0, r1 = int(good_rows.min()), int(good_rows.max()) + 1
    w, h = ms.shape[2] // ratio * ratio, (r1 - r0) // ratio * ratio
    return (0, r0, w, h)


def wv2_stats(dd: Path) -> tuple[np.ndarray, np.ndarray]:
    """Per-band 1st percentile and mean of the WV2 training pairs' MS (1 and 2)."""
    lo, mean = [], []
    for i in (1, 2):
        ms, _, _ = read(dd / "wv2" / f"pair{i}_ms.tif")
        valid = np.all(ms != 0, axis=0)
        lo.append([np.percentile(b[valid], 1) for b in ms])
        mean.append([b[valid].mean() for b in ms])
    return np.mean(lo, axis=0), np.mean(mean, axis=0)


def build_s2_case(dd: Path, tmp: Path) -> tuple[str, str, str, list[str]]:
    """Sentinel-2 held-apart 10 m crop -> (PAN, MS, REF) paths of a reduced-resolution case (WV2 sensor)."""
    sens = get_sensor("wv2")
    win = HELD_APART["sentinel2/s2_10m.tif"]
    whole, _, _ = read(dd / "sentinel2" / "s2_10m.tif")
    s2, gt, srs = read(dd / "sentinel2" / "s2_10m.tif", win)
    s2 = s2.astype(np.float64)
    wlo, wmean = wv2_stats(dd)
    # one linear map per band from whole-scene statistics (the crop itself is mostly water)
    slo = np.array([np.percentile(b, 1) for b in whole])
    smean = whole.reshape(4, -1).mean(axis=1)
    gains_b = (wmean - wlo) / (smean - slo)
    del whole
    ref = np.empty_like(s2)
    for b in range(4):
        ref[b] = (s2[b] - slo[b]) * gains_b[b] + wlo[b]
    ref = np.clip(np.round(ref), 1, 2047)
    pan = np.tensordot(np.asarray(S2_PAN_WEIGHTS), ref, axes=1) + S2_PAN_OFFSET
    x = np.arange(-3, 4, dtype=np.float64)
    k = np.exp(-0.5 * (x / S2_PAN_BLUR) ** 2)
    pan = convolve_axis(convolve_axis(pan.astype(np.float32), k / k.sum(), 0), k / k.sum(), 1)
    ms_lr = wald_degrade(ref.astype(np.float32), sens.mtf_ms, sens.ratio)
    lr_gt = (gt[0], gt[1] * 4, 0.0, gt[3], 0.0, gt[5] * 4)
    names = ["B02", "B03", "B04", "B08"]
    p = write_geotiff(str(tmp / "s2_pan.tif"), np.clip(np.round(pan), 1, 2047).astype(np.uint16)[None], gt, srs, 0, ["PAN (simulated)"])
    m = write_geotiff(str(tmp / "s2_ms.tif"), np.clip(np.round(ms_lr), 1, 2047).astype(np.uint16), lr_gt, srs, 0, names)
    r = write_geotiff(str(tmp / "s2_ref.tif"), ref.astype(np.uint16), gt, srs, 0, names)
    gains = ", ".join(f"{g:.2f}" for g in gains_b)
    notes = [f"S2 bands mapped linearly so that the whole S2 scene's 1st percentile and mean match WV2 pairs 1-2 "
             f"(gains {gains}); PAN simulated as "
             f"{' + '.join(f'{w} {n}' for w, n in zip(S2_PAN_WEIGHTS, 'BGRN'))} {S2_PAN_OFFSET} DN, "
             f"Gaussian blur sigma {S2_PAN_BLUR} px; MS degraded with the WV2 MTF gains, ratio 4"]
    return p, m, r, notes


def reduced_scenes(dd: Path, tmp: Path) -> list[dict]:
    out = []
    wv2_ms = dd / "wv2" / "pair3_ms.tif"
    win = wv2_valid_ms_window(str(wv2_ms), 4)
    case = make_reduced_case(str(dd / "wv2" / "pair3_pan.tif"), str(wv2_ms), str(tmp), "wv2", window=win, prefix="wv2p3")
    out.append(dict(name="wv2_pair3", sensor="wv2", pan=case.pan, ms=case.ms, ref=case.ref, ratio=4,
                    desc=f"WorldView-2 pair 3, valid MS window {case.ms_window} (col, row, w, h), ratio 4",
                    notes=case.notes))
    l8win = HELD_APART["landsat8/ms.tif"]
    case = make_reduced_case(str(dd / "landsat8" / "pan.tif"), str(dd / "landsat8" / "ms.tif"), str(tmp), "landsat8",
                             window=l8win, prefix="l8")
    out.append(dict(name="landsat8", sensor="landsat8", pan=case.pan, ms=case.ms, ref=case.ref, ratio=2,
                    desc=f"Landsat 8 held-apart crop, MS window {case.ms_window}, ratio 2", notes=case.notes))
    p, m, r, notes = build_s2_case(dd, tmp)
    out.append(dict(name="sentinel2_simpan", sensor="wv2", pan=p, ms=m, ref=r, ratio=4,
                    desc=f"Sentinel-2 held-apart 10 m crop {HELD_APART['sentinel2/s2_10m.tif']}, simulated PAN, ratio 4",
                    notes=notes))
    return out


def full_scenes(dd: Path, tmp: Path) -> list[dict]:
    out = []
    win = wv2_valid_ms_window(str(dd / "wv2" / "pair3_ms.tif"), 4)
    pan_win = (win[0] * 4, win[1] * 4, win[2] * 4, win[3] * 4)
    out.append(dict(name="wv2_pair3", sensor="wv2",
                    pan=crop(dd / "wv2" / "pair3_pan.tif", str(tmp / "wv2p3_fr_pan.tif"), pan_win),
                    ms=crop(dd / "wv2" / "pair3_ms.tif", str(tmp / "wv2p3_fr_ms.tif"), win),
                    desc=f"WorldView-2 pair 3, PAN window {pan_win}, MS window {win}"))
    out.append(dict(name="landsat8", sensor="landsat8",
                    pan=crop(dd / "landsat8" / "pan.tif", str(tmp / "l8_fr_pan.tif"), HELD_APART["landsat8/pan.tif"]),
                    ms=crop(dd / "landsat8" / "ms.tif", str(tmp / "l8_fr_ms.tif"), HELD_APART["landsat8/ms.tif"]),
                    desc=f"Landsat 8 held-apart crop, PAN window {HELD_APART['landsat8/pan.tif']}, "
                         f"MS window {HELD_APART['landsat8/ms.tif']}"))
    return out


# ----------------------------------------------------------------------------------- scoring
def score_reduced(fused_path: str, scene: dict) -> dict:
    ref, gt, _ = read(scene["ref"])
    f = on_grid(fused_path, gt, ref.shape[1:]).astype(np.float64)
    mask = np.all(ref != 0, axis=0) & np.all(f != 0, axis=0)
    res = M.reduced_resolution(f, ref.astype(np.float64), scene["ratio"], get_sensor(scene["sensor"]).scale, mask)
    return {k: v for k, v in res.items()}


def score_full(fused_path: str, scene: dict) -> dict:
    """Dλ, Ds, HQNR over the fused pixels covered by PAN and MS (LMS by the project's cubic upsampler)."""
    sens = get_sensor(scene["sensor"])
    pan, pgt, _ = read(scene["pan"])
    ms, mgt, _ = read(scene["ms"])
    ratio = int(round(mgt[1] / pgt[1]))
    # fused pixels over the PAN raster, inset so the MS covers them (grids may be offset, e.g. Landsat)
    u0, v0 = (mgt[0] - pgt[0]) / pgt[1], (mgt[3] - pgt[3]) / pgt[5]
    c0, r0 = max(0, int(np.ceil(u0))), max(0, int(np.ceil(v0)))
    c1 = min(pan.shape[2], int(np.floor(u0 + ms.shape[2] * ratio)))
    r1 = min(pan.shape[1], int(np.floor(v0 + ms.shape[1] * ratio)))
    gt = (pgt[0] + c0 * pgt[1], pgt[1], 0.0, pgt[3] + r0 * pgt[5], 0.0, pgt[5])
    shape = (r1 - r0, c1 - c0)
    f = on_grid(fused_path, gt, shape).astype(np.float64)
    p = pan[0, r0:r1, c0:c1].astype(np.float64)
    lms = upsample(ms.astype(np.float32), ratio, shape, origin=(v0 - r0, u0 - c0)).astype(np.float64)
    mask = (p != 0) & np.all(f != 0, axis=0)
    res = M.full_resolution(f, p, lms, sens.mtf_ms, sens.mtf_pan, ratio, mask)
    res["pixels"] = int(mask.sum())
    return res


# ------------------------------------------------------------------------------------- speed
def mirrored_scene(dd: Path, tmp: Path, size: int) -> tuple[str, str]:
    """A size x size PAN (+ MS) scene mirrored from real WorldView-2 pair 1 (training pair)."""
    pan, pgt, srs = read(dd / "wv2" / "pair1_pan.tif")
    ms, mgt, _ = read(dd / "wv2" / "pair1_ms.tif")
    ph, pw = pan.shape[1:]
    P = np.pad(pan[0], ((0, max(0, size - ph)), (0, max(0, size - pw))), mode="symmetric")[:size, :size]
    m = size // 4
    Ms = np.pad(ms, ((0, 0), (0, max(0, m - ms.shape[1])), (0, max(0, m - ms.shape[2]))), mode="symmetric")[:, :m, :m]
    p = write_geotiff(str(tmp / f"speed{size}_pan.tif"), P[None], pgt, srs, 0, ["PAN"])
    q = write_geotiff(str(tmp / f"speed{size}_ms.tif"), Ms, mgt, srs, 0, ["Blue", "Green", "Red", "NIR"])
    return p, q


def environment() -> dict:
    cpu = platform.processor()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = None
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {
        "cpu_model": cpu, "logical_cores": os.cpu_count(), "affinity_cores": len(os.sched_getaffinity(0)),
        "memory_gb": mem, "load_average_at_start": load, "platform": platform.platform(),
        "python": platform.python_version(), "numpy": np.__version__, "gdal": gdal.__version__,
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


MODELS_DIR = ROOT / "resources" / "models"
BASELINE_MODELS_DIR = ROOT / "bench" / "models"   # bare backbones trained the same way (not bundled)


def model_method(model: str) -> str:
    """The card's method (ksdiff, fusionnet, pannet, ssdiff) of an ONNX model; 'model' if unreadable."""
    try:
        return json.loads(Path(model).with_suffix(".json").read_text())["method"]
    except (OSError, ValueError, KeyError):
        return "model"


def onnx_models() -> list[tuple[str, str]]:
    """(label, path) of every bundled model and every comparison backbone, e.g. ``ksdiff[wv2]``."""
    models = sorted(Path(MODELS_DIR).glob("*.onnx")) + sorted(BASELINE_MODELS_DIR.glob("*.onnx"))
    return [(f"{model_method(str(p))}[{p.stem}]", str(p)) for p in models]


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


def model_sensor(model: str | None) -> str | None:
    """The sensor key of an ONNX model's card (None when unreadable: the pipeline then reports why)."""
    if model is None:
        return None
    try:
        from ksdiff_qgis.engine.model_card import load_card

        return load_card(model).sensor
    except Exception:  # noqa: BLE001  (a broken card is reported by the pipeline run itself)
        return None


def update_cards(results: dict) -> list[str]:
    """Write each bundled model's measured indices (and the best classical method's, for reference) into its card."""
    from model_core.export import write_card

    updated = []
    for label, path in onnx_models():
        if Path(path).parent != Path(MODELS_DIR):
            continue
        rows = [r for r in results["quality"] if r["method"] == label]
        card = json.loads(Path(path).with_suffix(".json").read_text())
        if not rows:
            # no bench scene of this sensor (qb, gf2, wv3): score its config's held-apart test case instead
            card["metrics"] = evaluate_card_model(path, card["sensor"])
            write_card(path, card)
            updated.append(Path(path).name)
            continue
        metrics = {}
        for r in rows:
            keys = M.REDUCED if r["mode"] == "reduced" else M.FULL
            best = [q for q in results["quality"] if q["mode"] == r["mode"] and q["scene"] == r["scene"]
                    and q["method"] in CLASSICAL + [GDAL_METHOD]]
            metrics[f"{r['mode']}/{r['scene']}"] = {
                **{k: round(float(r[k]), 4) for k in keys if r.get(k) is not None},
                "best_classical_ERGAS" if r["mode"] == "reduced" else "best_classical_HQNR": round(float(
                    min(q["ERGAS"] for q in best) if r["mode"] == "reduced" else max(q["HQNR"] for q in best)), 4)
                if best else None,
            }
        card["metrics"] = {"measured_by": "make bench (scripts/bench.py)", "date_utc": results["environment"]["date_utc"],
                           "scenes": metrics}
        write_card(path, card)
        updated.append(Path(path).name)
    write_models_readme()
    return updated


def evaluate_card_model(path: str, sensor: str) -> dict:
    """Indices of a model on its sensor config's held-apart test case (``python -m model_core evaluate``)."""
    from model_core.config import load_config
    from model_core.evaluate import evaluate, onnx_runner

    run, mult, _ = onnx_runner(path)
    res = evaluate(run, mult, load_config(None, sensor))
    scenes = {}
    for mode, keys in (("reduced", M.REDUCED), ("full", M.FULL)):
        if mode in res:
            r = res[mode]
            scenes[f"{mode}/{r.get('case', sensor)}"] = {k: round(float(r[k]), 4) for k in keys if r.get(k) is not None}
            if "EXP" in r:
                scenes[f"{mode}/{r.get('case', sensor)}"]["EXP_ERGAS"] = round(float(r["EXP"]["ERGAS"]), 4)
            if r.get("classical"):
                scenes[f"{mode}/{r.get('case', sensor)}"]["best_classical_ERGAS"] = round(
                    min(float(c["ERGAS"]) for c in r["classical"].values()), 4)
    return {"measured_by": "make bench via model_core evaluate (the sensor config's held-apart test case; no real "
                           "image of this sensor exists here, see the card's training data)", "scenes": scenes}


def write_models_readme() -> None:
    """resources/models/README.md: the bundled cards in words (the JSON cards are authoritative)."""
    lines = ["# Bundled models", "",
             "One KSDiff model per sensor, each `<sensor>.onnx` with its model card `<sensor>.json` (also embedded "
             "in the ONNX metadata as `model_card`; the plugin refuses a file whose sha256 differs from its card). "
             "Generated by `make bench` from the cards; figures from the held-apart scenes "
             "(`ksdiff_qgis/engine/heldout.py`). Reproduce a model with `make train SENSOR=<key>` then `make bench`.", ""]
    for p in sorted(Path(MODELS_DIR).glob("*.onnx")):
        card = json.loads(p.with_suffix(".json").read_text())
        tr = card.get("training", {})
        lines += [f"## `{card['sensor']}` — {card.get('sensor_name', '')}", "",
                  f"- Network: KSDiff around {card.get('backbone')}, {card.get('parameters', 0):,} parameters, "
                  f"{p.stat().st_size / 1e6:.1f} MB; bands {', '.join(card['bands'])}; ratio {card['ratio']}; "
                  f"values / {card['scale']:g}; receptive-field margin {card['margin']} px.",
                  f"- Training: config `model_core/configs/{tr.get('config')}`, stages {', '.join(tr.get('stages', []))}, "
                  f"{tr.get('steps')} steps, {tr.get('seconds', 0) / 60:.0f} min on a shared 2-core CPU, seed {tr.get('seed')}, "
                  f"git {str(tr.get('git_revision', ''))[:10]}."
                  + (f" Started from the trained bare backbone of `{tr['backbone_from'].split(':')[0]}` "
                     "(not counted in the steps and minutes)." if tr.get("backbone_from") else ""), "- Data:"]
        lines += [f"  - {d.get('name')}: {d.get('how')} (licence: {d.get('licence')})" for d in tr.get("data", [])]
        scenes = (card.get("metrics") or {}).get("scenes", {})
        if scenes:
            lines.append("- Measured by `make bench`:")
            for name, m in scenes.items():
                lines.append("  - " + name + ": " + ", ".join(f"{k} {v}" for k, v in m.items() if v is not None))
        else:
            lines.append("- No held-apart scene of this sensor in `make bench` (see the card's data notes).")
        lines.append("")
    (Path(MODELS_DIR) / "README.md").write_text("\n".join(lines))


# ------------------------------------------------------------------------------------ plots
def plots(results: dict, quick: dict, img_dir: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    img_dir.mkdir(parents=True, exist_ok=True)
    files = []
    rr = [r for r in results["quality"] if r["mode"] == "reduced"]
    fr = [r for r in results["quality"] if r["mode"] == "full"]
    scenes = list(dict.fromkeys(r["scene"] for r in rr))
    methods = list(dict.fromkeys(r["method"] for r in results["quality"]))
    panels = [("ERGAS", rr, "lower is better"), ("SAM", rr, "degrees, lower is better"),
              ("Q2n", rr, "Q4, higher is better"), ("SCC", rr, "higher is better"), ("HQNR", fr, "full resolution, higher is better")]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.8))
    for ax, (key, rows, sub) in zip(axes, panels):
        sc = list(dict.fromkeys(r["scene"] for r in rows)) or scenes
        w = 0.8 / max(len(methods), 1)
        for i, m in enumerate(methods):
            vals = [next((r[key] for r in rows if r["scene"] == s and r["method"] == m), np.nan) for s in sc]
            ax.bar(np.arange(len(sc)) + i * w, vals, w, label=m)
        ax.set_xticks(np.arange(len(sc)) + 0.4 - w / 2)
        ax.set_xticklabels([s.replace("_", "\n") for s in sc], fontsize=8)
        ax.set_title(f"{key}\n({sub})", fontsize=9)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(img_dir / "bench_quality.png", dpi=90)
    plt.close(fig)
    files.append("img/bench_quality.png")

    # quicklooks: WV2 pair 3 full resolution, a 160x160 PAN-pixel crop, true colour with one stretch
    tiles = quick.get("tiles", {})
    if tiles:
        names = list(tiles)
        fig, axes = plt.subplots(1, len(names), figsize=(2.6 * len(names), 2.9))
        ref = tiles.get("exp", next(iter(tiles.values())))
        lo, hi = np.percentile(ref, 1, axis=(1, 2)), np.percentile(ref, 99, axis=(1, 2))
        for ax, n in zip(np.atleast_1d(axes), names):
            t = tiles[n]
            if t.shape[0] == 1:
                g = (t[0] - np.percentile(t, 1)) / (np.percentile(t, 99) - np.percentile(t, 1))
                ax.imshow(np.clip(g, 0, 1), cmap="gray")
            else:
                rgb = np.stack([(t[b] - lo[b]) / (hi[b] - lo[b]) for b in (2, 1, 0)], axis=-1)
                ax.imshow(np.clip(rgb, 0, 1))
            ax.set_title(n, fontsize=8)
            ax.axis("off")
        fig.tight_layout()
        fig.savefig(img_dir / "bench_quicklook.png", dpi=90)
        plt.close(fig)
        files.append("img/bench_quicklook.png")
    return files


# ------------------------------------------------------------------------------------ report
def _f(v, nd=4):
    if v is None:
        return "—"
    if isinstance(v, float) and not np.isfinite(v):
        return "∞" if v > 0 else "n/a"
    return f"{v:.{nd}f}"


def quality_targets(rr: list[dict], fr: list[dict]) -> list[str]:
    """The issue's quality targets, per scene with a KSDiff model: against the best classical method
    (and GDAL), and against the bare backbone trained the same way."""
    lines = []
    for sc in dict.fromkeys(r["scene"] for r in rr):
        rows = {r["method"]: r for r in rr if r["scene"] == sc}
        ks = [m for m in rows if m.startswith("ksdiff[")]
        classical = [rows[m] for m in CLASSICAL + [GDAL_METHOD] if m in rows]
        if not ks or not classical:
            continue
        k = rows[ks[0]]
        best = min(classical, key=lambda r: r["ERGAS"])
        beats = all(k["SAM"] < c["SAM"] and k["ERGAS"] < c["ERGAS"] and k["Q2n"] > c["Q2n"] for c in classical)
        text = (f"- {sc}: `{ks[0]}` ERGAS is **{100 * (1 - k['ERGAS'] / best['ERGAS']):.1f}%** below the best classical "
                f"(`{best['method']}`, target ≥ 15%); it {'beats' if beats else 'does not beat'} every classical method "
                "and GDAL on SAM, ERGAS and Q4 together")
        bb = [m for m in rows if m.startswith(("fusionnet[", "pannet["))]
        if bb:
            b = rows[bb[0]]
            text += (f"; against its bare backbone `{bb[0]}`: ERGAS {k['ERGAS']:.3f} vs {b['ERGAS']:.3f} "
                     f"({100 * (k['ERGAS'] / b['ERGAS'] - 1):+.1f}%), SAM {k['SAM']:.3f} vs {b['SAM']:.3f}")
        f = {r["method"]: r for r in fr if r["scene"] == sc}
        if ks[0] in f and GDAL_METHOD in f:
            text += f"; full-resolution HQNR {f[ks[0]]['HQNR']:.4f} vs GDAL's {f[GDAL_METHOD]['HQNR']:.4f}"
        lines.append(text + ".")
    return lines


def markdown(results: dict, images: list[str]) -> str:
    env = results["environment"]
    lines = ["# Benchmarks", "",
             f"Measured by `make bench` (scripts/bench.py) on {env['date_utc']}. Hardware: **{env['cpu_model']}**, "
             f"{env['affinity_cores']} usable logical cores ({env['logical_cores']} on the machine), "
             f"{env['memory_gb']} GB RAM, {env['platform']}; Python {env['python']}, numpy {env['numpy']}, "
             f"GDAL {env['gdal']}; CPU only. Load average at start: {env['load_average_at_start']} "
             "(the machine is shared: speeds are indicative). Machine-readable results: `bench/results.json`.", "",
             "Methods: " + "; ".join(f"`{m}` = {LABELS.get(m, m)}" for m in results["methods"]) + ".",
             "GDAL's pansharpening is run as QGIS's `gdal:pansharp` runs it: `gdal_pansharpen.py PAN MS OUT -r cubic "
             "-of GTiff` (weighted Brovey with GDAL's default weights).", "",
             "## Quality on the held-apart scenes", "",
             "Reduced resolution = Wald's protocol: PAN and MS degraded by the ratio with the sensor's MTF-matched "
             "Gaussian filters, fused, compared with the original MS. Full resolution = no reference (QNR family). "
             "Index definitions: `ksdiff_qgis/engine/metrics.py` (METHOD.md).", ""]
    for sc in results["scenes"]:
        lines.append(f"- **{sc['mode']} / {sc['name']}**: {sc['desc']}." + (" " + " ".join(sc.get("notes", [])) if sc.get("notes") else ""))
    lines.append("")
    rr = [r for r in results["quality"] if r["mode"] == "reduced"]
    fr = [r for r in results["quality"] if r["mode"] == "full"]
    lines += ["### Reduced resolution", "", "| scene | method | SAM ° ↓ | ERGAS ↓ | Q4 ↑ | Q ↑ | SCC ↑ | PSNR dB ↑ | SSIM ↑ |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rr:
        lines.append(f"| {r['scene']} | {r['method']} | {_f(r['SAM'], 3)} | {_f(r['ERGAS'], 3)} | {_f(r['Q2n'])} | {_f(r['Q'])} | "
                     f"{_f(r['SCC'])} | {_f(r['PSNR'], 2)} | {_f(r['SSIM'])} |")
    lines += ["", "### Full resolution", "", "| scene | method | Dλ (Khan) ↓ | Ds ↓ | HQNR ↑ |", "| --- | --- | --- | --- | --- |"]
    for r in fr:
        lines.append(f"| {r['scene']} | {r['method']} | {_f(r['D_lambda'])} | {_f(r['D_s'])} | {_f(r['HQNR'])} |")
    lines += ["", "### Reading the tables", ""]
    for sc in dict.fromkeys(r["scene"] for r in rr):
        rows = [r for r in rr if r["scene"] == sc]
        best_e = min(rows, key=lambda r: r["ERGAS"])
        best_q = max(rows, key=lambda r: r["Q2n"])
        lines.append(f"- {sc} (reduced resolution): lowest ERGAS `{best_e['method']}` ({best_e['ERGAS']:.3f}), "
                     f"highest Q4 `{best_q['method']}` ({best_q['Q2n']:.4f}).")
    for sc in dict.fromkeys(r["scene"] for r in fr):
        rows = [r for r in fr if r["scene"] == sc]
        best = max(rows, key=lambda r: r["HQNR"])
        note = ""
        if best["method"] == "exp":
            note = (" EXP injects no PAN detail at all, yet scores best here: the QNR family rewards consistency "
                    "with the low-resolution data and is known to favour blurry results, the more so when PAN and "
                    "MS are misregistered"
                    + (" (DATA.md: pair 3's PAN and MS are 0.5-1.25 PAN pixels apart)" if sc.startswith("wv2") else "")
                    + "; read it together with the reduced-resolution indices.")
        lines.append(f"- {sc} (full resolution): highest HQNR `{best['method']}` ({best['HQNR']:.4f}).{note}")
    lines += quality_targets(rr, fr)
    lines.append("- Brovey and MTF-GLP-HPM modulate every band of a pixel by one common factor, so their SAM equals "
                 "EXP's (the spectral angle of the upsampled MS).")
    sp = results["speed"]
    lines += ["", "## Speed and memory", "",
              f"Whole pipeline (read, fuse, write a deflate GeoTIFF) on one {sp['scene']['pan_size']}² PAN scene "
              f"({sp['scene']['desc']}), each method in its own subprocess; peak RSS = VmHWM of that process "
              f"(an idle worker that only imports the engine peaks at {sp['idle_peak_mb']:.0f} MB).", "",
              "| method | seconds | PAN Mpx/s | speed vs GDAL | peak RSS MB |", "| --- | --- | --- | --- | --- |"]
    for r in sp["runs"]:
        lines.append(f"| {r['method']} | {r['seconds']:.2f} | {r['mpx_per_s']:.2f} | {_f(r.get('ratio_to_gdal'), 3)}× | {r['peak_mb']:.0f} |")
    if sp.get("memory_scaling"):
        lines += ["", f"Peak RSS of `{BEST_CLASSICAL}` against scene size. The pipeline streams rows of tiles, so its "
                  "own memory grows with the scene *width*, not its area; GDAL's block cache (default 5% of RAM, here "
                  f"{0.05 * (env['memory_gb'] or 0) * 1024:.0f} MB) also fills while the output is written, so the "
                  f"second column repeats the run with `GDAL_CACHEMAX={SMALL_CACHE_MB}` (MB).", "",
                  "| PAN size | seconds | PAN Mpx/s | peak RSS MB (GDAL default cache) | peak RSS MB "
                  f"(GDAL_CACHEMAX={SMALL_CACHE_MB}) |", "| --- | --- | --- | --- | --- |"]
        for r in sp["memory_scaling"]:
            lines.append(f"| {r['pan_size']}² | {r['seconds']:.2f} | {r['mpx_per_s']:.2f} | {r['peak_mb']:.0f} | "
                         f"{r['peak_mb_gdal_cache_64mb']:.0f} |")
    ln = sp.get("learned") or {}
    if ln.get("runs"):
        lines += ["", "### Learned networks on the same tiles", "",
                  f"The whole pipeline on a {ln['pan_size']}² PAN scene (same scene, tiles of 512 with 32 px overlap), "
                  "each network through ONNX Runtime on the CPU. SSDiff is exported with untrained weights: its "
                  "cost does not depend on them, and it is timed only.", "",
                  "| method | network | seconds | of which session creation | PAN Mpx/s | peak RSS MB |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for r in ln["runs"]:
            lines.append(f"| {r['method']} | {r['network']} | {r['seconds']:.2f} | {r.get('session_seconds', 0):.2f} | "
                         f"{r['mpx_per_s']:.3f} | {r['peak_mb']:.0f} |")
        k = next((r for r in ln["runs"] if r["network"] == "ksdiff"), None)
        if k:
            lines += [""]
            if "ssdiff_over_ksdiff" in k:
                lines.append(f"- KSDiff is **{k['ssdiff_over_ksdiff']:.1f}×** faster than SSDiff end to end (target ≥ 5×).")
            if "ksdiff_over_backbone" in k:
                lines.append(f"- KSDiff takes **{k['ksdiff_over_backbone']:.2f}×** the time of its bare backbone end to "
                             f"end on this scene (target ≤ 1.5×); **{k['ksdiff_over_backbone_warm']:.2f}×** without the "
                             "one-off ONNX Runtime session creation, which the plugin pays once per model and QGIS "
                             "session (it keeps the session for later tiles and runs).")
            if results.get("ksdiff_over_backbone_speed_scene"):
                lines.append(f"- On the {sp['scene']['pan_size']}² speed scene above, KSDiff takes "
                             f"**{results['ksdiff_over_backbone_speed_scene']:.2f}×** the time of its bare backbone.")
        if ln.get("ksdiff_memory_scaling"):
            lines += ["", "| KSDiff, PAN size | seconds | PAN Mpx/s | peak RSS MB |", "| --- | --- | --- | --- |"]
            for r in ln["ksdiff_memory_scaling"]:
                lines.append(f"| {r['pan_size']}² | {r['seconds']:.2f} | {r['mpx_per_s']:.3f} | {r['peak_mb']:.0f} |")
    lines += ["", "## Plots", ""] + [f"![{Path(i).stem}]({i})" for i in images]
    lines += ["", f"Total bench time: {results['total_seconds']:.0f} s.", ""]
    return "\n".join(lines)


# -------------------------------------------------------------------------------------- main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worker", nargs=6, help=argparse.SUPPRESS)
    ap.add_argument("--data", type=Path, default=None, help="data directory (default $KSDIFF_DATA)")
    ap.add_argument("--speed-size", type=int, default=4096, help="PAN side of the speed scene (default 4096)")
    ap.add_argument("--memory-sizes", default="2048,8192", help="PAN sides for the memory scaling runs ('' to skip)")
    ap.add_argument("--no-card-update", action="store_true", help="do not write the indices into the bundled cards")
    ap.add_argument("--model-speed-size", type=int, default=1024,
                    help="PAN side of the scene on which KSDiff, its backbone and SSDiff are timed (default 1024)")
    ap.add_argument("--results", type=Path, default=ROOT / "bench" / "results.json")
    ap.add_argument("--docs", type=Path, default=ROOT / "docs" / "BENCHMARKS.md")
    ap.add_argument("--models", type=Path, default=None, help="folder of ONNX models (default resources/models)")
    args = ap.parse_args(argv)
    if args.worker:
        return worker(args.worker)
    global MODELS_DIR
    if args.models:
        MODELS_DIR = args.models

    t_start = time.perf_counter()
    dd = args.data or data_dir()
    needed = [dd / "wv2" / "pair3_pan.tif", dd / "landsat8" / "pan.tif", dd / "sentinel2" / "s2_10m.tif"]
    missing = [str(p) for p in needed if not p.exists()]
    if missing:
        print(f"make bench: real data missing ({', '.join(missing)}); run `make data` first", file=sys.stderr)
        return 2
    methods = [(m, None) for m in CLASSICAL] + onnx_models() + [(GDAL_METHOD, None)]
    if not onnx_models():
        print("bench: no ONNX model in resources/models/: learned methods skipped")
    tmp = Path(tempfile.mkdtemp(prefix="ksdiff_bench_"))
    results = {"environment": environment(), "methods": [m for m, _ in methods], "scenes": [], "quality": [],
               "speed": {}, "skipped": []}
    quick = {"tiles": {}}
    try:
        # ---- quality
        for mode, scenes in (("reduced", reduced_scenes(dd, tmp)), ("full", full_scenes(dd, tmp))):
            for sc in scenes:
                results["scenes"].append({"mode": mode, "name": sc["name"], "desc": sc["desc"], "notes": sc.get("notes", [])})
                for method, model in methods:
                    ms_key = model_sensor(model)
                    if model is not None and ms_key is not None and ms_key != sc["sensor"]:
                        continue  # a learned model runs on the scenes of its own sensor only
                    out = str(tmp / f"{mode}_{sc['name']}_{method.replace('[', '_').replace(']', '')}.tif")
                    try:
                        secs = run_method(method if model is None else "ksdiff", sc["pan"], sc["ms"], out, sc["sensor"], model)
                    except Exception as e:  # a learned model may not fit a sensor: record and go on
                        results["skipped"].append({"method": method, "scene": sc["name"], "mode": mode, "error": str(e)[:300]})
                        print(f"bench: {method} on {mode}/{sc['name']} skipped: {e}")
                        continue
                    score = score_reduced(out, sc) if mode == "reduced" else score_full(out, sc)
                    row = {"mode": mode, "scene": sc["name"], "method": method, "sensor": sc["sensor"], "seconds": secs}
                    row.update({k: v for k, v in score.items() if k != "per_band"})
                    row["per_band"] = score["per_band"]
                    results["quality"].append(row)
                    print(f"{mode:8s} {sc['name']:18s} {method:14s} " + " ".join(
                        f"{k}={row[k]:.4f}" for k in (M.REDUCED if mode == "reduced" else M.FULL)))
                    if mode == "full" and sc["name"] == "wv2_pair3":
                        arr, _, _ = read(out)
                        quick["tiles"][method] = arr[:, 40:200, 200:360].astype(np.float64)
                if mode == "full" and sc["name"] == "wv2_pair3":
                    pan, _, _ = read(sc["pan"])
                    quick["tiles"] = {"PAN": pan[:, 40:200, 200:360].astype(np.float64), **quick["tiles"]}

        # ---- speed
        size = args.speed_size
        pan, ms = mirrored_scene(dd, tmp, size)
        mpx = size * size / 1e6
        idle = run_subprocess("__idle__", pan, ms, "", "wv2")
        runs = []
        for method, model in methods:
            if model is not None and model_sensor(model) not in (None, "wv2"):
                continue  # the speed scene is WorldView-2
            out = str(tmp / "speed_out.tif")
            try:
                r = run_subprocess(method if model is None else "ksdiff", pan, ms, out, "wv2", model)
            except Exception as e:
                results["skipped"].append({"method": method, "scene": f"speed{size}", "error": str(e)[-300:]})
                continue
            finally:
                if os.path.exists(out):
                    os.remove(out)
            runs.append({"method": method, "seconds": r["seconds"], "mpx_per_s": mpx / r["seconds"], "peak_mb": r["peak_mb"],
                         "ru_maxrss_mb": r["ru_maxrss_mb"]})
            print(f"speed {size}² {method:14s} {r['seconds']:.2f} s {mpx / r['seconds']:.2f} Mpx/s peak {r['peak_mb']:.0f} MB")
        gd = next((r for r in runs if r["method"] == GDAL_METHOD), None)
        for r in runs:
            r["ratio_to_gdal"] = (r["mpx_per_s"] / gd["mpx_per_s"]) if gd else None
        scaling = []
        for s in [int(x) for x in args.memory_sizes.split(",") if x.strip()]:
            p2, m2 = (pan, ms) if s == size else mirrored_scene(dd, tmp, s)
            out = str(tmp / "mem_out.tif")
            r = run_subprocess(BEST_CLASSICAL, p2, m2, out, "wv2")
            os.remove(out)
            r64 = run_subprocess(BEST_CLASSICAL, p2, m2, out, "wv2", env={"GDAL_CACHEMAX": str(SMALL_CACHE_MB)})
            scaling.append({"pan_size": s, "seconds": r["seconds"], "mpx_per_s": s * s / 1e6 / r["seconds"],
                            "peak_mb": r["peak_mb"], "peak_mb_gdal_cache_64mb": r64["peak_mb"],
                            "seconds_gdal_cache_64mb": r64["seconds"]})
            print(f"memory {s}² {BEST_CLASSICAL}: {r['seconds']:.2f} s, peak {r['peak_mb']:.0f} MB "
                  f"(GDAL_CACHEMAX={SMALL_CACHE_MB}: {r64['peak_mb']:.0f} MB)")
            for f in (out, p2, m2) if s != size else (out,):
                if os.path.exists(f):
                    os.remove(f)
        scaling.sort(key=lambda r: r["pan_size"])

        # ---- learned networks on the same tiles: KSDiff against its bare backbone and SSDiff
        learned = []
        msize = args.model_speed_size
        lpan, lms_ = mirrored_scene(dd, tmp, msize)
        candidates = [(m, p) for m, p in methods if p is not None and model_sensor(p) == "wv2"]
        ss = ssdiff_timing_model(tmp)
        if ss:
            candidates.append(("ssdiff[timing, untrained]", ss))
        for method, model in candidates:
            out = str(tmp / "learned_out.tif")
            try:
                r = run_subprocess("ksdiff", lpan, lms_, out, "wv2", model)
            except Exception as e:
                results["skipped"].append({"method": method, "scene": f"speed{msize}", "error": str(e)[-300:]})
                continue
            finally:
                if os.path.exists(out):
                    os.remove(out)
            learned.append({"method": method, "network": model_method(model), "seconds": r["seconds"],
                            "session_seconds": r["session_seconds"],
                            "mpx_per_s": msize * msize / 1e6 / r["seconds"], "peak_mb": r["peak_mb"]})
            print(f"learned {msize}² {method:28s} {r['seconds']:.2f} s peak {r['peak_mb']:.0f} MB")
        by_net = {r["network"]: r for r in learned}
        if "ksdiff" in by_net:
            k = by_net["ksdiff"]
            if "ssdiff" in by_net:
                k["ssdiff_over_ksdiff"] = by_net["ssdiff"]["seconds"] / k["seconds"]
            for bb in ("fusionnet", "pannet"):
                if bb in by_net:
                    b = by_net[bb]
                    k["ksdiff_over_backbone"] = k["seconds"] / b["seconds"]
                    k["ksdiff_over_backbone_warm"] = ((k["seconds"] - k["session_seconds"])
                                                      / (b["seconds"] - b["session_seconds"]))
        # the same ratio on the large speed scene, where the one-off session creation weighs little
        ran = {r["method"]: r for r in runs}
        big = {model_method(p): ran[m] for m, p in methods if p and m in ran}
        if big.get("ksdiff") and (big.get("fusionnet") or big.get("pannet")):
            bb = big.get("fusionnet") or big.get("pannet")
            results["ksdiff_over_backbone_speed_scene"] = big["ksdiff"]["seconds"] / bb["seconds"]
        ks_mem = []
        ks_model = next((p for m, p in candidates if model_method(p) == "ksdiff"), None)
        for s_ in [int(x) for x in args.memory_sizes.split(",") if x.strip()] if ks_model else []:
            p2, m2 = mirrored_scene(dd, tmp, s_)
            out = str(tmp / "mem_out.tif")
            r = run_subprocess("ksdiff", p2, m2, out, "wv2", ks_model)
            ks_mem.append({"pan_size": s_, "seconds": r["seconds"], "mpx_per_s": s_ * s_ / 1e6 / r["seconds"],
                           "peak_mb": r["peak_mb"]})
            print(f"memory {s_}² ksdiff: {r['seconds']:.2f} s, peak {r['peak_mb']:.0f} MB")
            for f in (out, p2, m2):
                if os.path.exists(f):
                    os.remove(f)
        results["speed"] = {"scene": {"pan_size": size, "ms_size": size // 4, "ratio": 4, "sensor": "wv2",
                                      "desc": "WorldView-2 pair 1 (a training pair) mirrored to size; uint16"},
                            "idle_peak_mb": idle["peak_mb"], "runs": runs, "memory_scaling": scaling,
                            "learned": {"pan_size": msize, "runs": learned, "ksdiff_memory_scaling": ks_mem}}
        results["total_seconds"] = time.perf_counter() - t_start
        images = plots(results, quick, args.docs.parent / "img")
        if not args.no_card_update:
            print(f"bench: measured indices written into the cards of {', '.join(update_cards(results)) or 'no model'}")
        args.results.parent.mkdir(parents=True, exist_ok=True)
        args.results.write_text(json.dumps(results, indent=1, default=float) + "\n")
        args.docs.parent.mkdir(parents=True, exist_ok=True)
        args.docs.write_text(markdown(results, images))
        print(f"bench: wrote {args.results} and {args.docs} in {results['total_seconds']:.0f} s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
