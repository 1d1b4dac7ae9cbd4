"""Speed and memory: each fusion in its own subprocess (``python -m bench --worker ...``), timed, with its peak RSS."""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from .common import (
    BEST_CLASSICAL,
    GDAL_METHOD,
    INT8,
    ROOT,
    SMALL_CACHE_MB,
    learned_method,
    method_precision,
    run_method,
)
from .external import TOOLS
from .learned import model_method, model_sensor, ssdiff_timing_model
from .scenes import mirrored_scene


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
            t0 = time.perf_counter()
            load_model(model, method)
            session_secs = time.perf_counter() - t0
        secs = session_secs + run_method(method, pan, ms, out, sensor, model or None)
    print(json.dumps({"seconds": secs, "session_seconds": session_secs, "peak_mb": peak_rss_mb(),
                      "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}))
    return 0


def load_model(model: str, method: str) -> None:
    """The one-off model loading the plugin pays once per model and QGIS session, timed apart from the run: the
    session with the thread count and device the pipeline asks for (so the run reuses it; a session keyed
    otherwise was created twice and counted twice before), its probe check and, for int8, its int8 path."""
    from ksdiff_qgis.engine import learned, runtime
    from ksdiff_qgis.engine.model_card import load_card

    learned.loaded_session(load_card(model), "auto", runtime.balance_threads(0, 0)[1], method_precision(method)[1])


def run_subprocess(method, pan, ms, out, sensor, model=None, env: dict | None = None) -> dict:
    """One timed fusion in its own process: a Python worker, or for a command-line peer tool (Orfeo ToolBox)
    the stdlib-only launcher ``python -m bench.external``, so its peak RSS is the tool's process's own."""
    tool = TOOLS.get(method)
    if tool is not None and tool.python_main is None:
        cmd = [sys.executable, "-m", "bench.external", method, pan, ms, out]
    else:
        cmd = [sys.executable, "-m", "bench", "--worker", method, pan, ms, out, sensor, model or ""]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=str(ROOT),
                         env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})
    if res.returncode != 0:
        raise RuntimeError(res.stderr[-1500:])
    return json.loads(res.stdout.strip().splitlines()[-1])


def _remove(*paths: str) -> None:
    for f in paths:
        if os.path.exists(f):
            os.remove(f)


def run_speed(methods: list[tuple[str, str | None]], pan: str, ms: str, size: int, tmp: Path,
              results: dict) -> list[dict]:
    """Every method on the WorldView-2 speed scene (PAN ``size``²): seconds, Mpx/s, peak RSS, ratio to GDAL."""
    mpx = size * size / 1e6
    runs = []
    for method, model in methods:
        if model is not None and model_sensor(model) not in (None, "wv2"):
            continue  # the speed scene is WorldView-2
        out = str(tmp / "speed_out.tif")
        try:
            r = run_subprocess(method if model is None else learned_method(method), pan, ms, out, "wv2", model)
        except Exception as e:
            results["skipped"].append({"method": method, "scene": f"speed{size}", "error": str(e)[-300:]})
            continue
        finally:
            _remove(out)
        runs.append({"method": method, "seconds": r["seconds"], "mpx_per_s": mpx / r["seconds"],
                     "peak_mb": r["peak_mb"],
                     "ru_maxrss_mb": r["ru_maxrss_mb"]})
        print(f"speed {size}² {method:14s} {r['seconds']:.2f} s {mpx / r['seconds']:.2f} Mpx/s "
              f"peak {r['peak_mb']:.0f} MB")
    gd = next((r for r in runs if r["method"] == GDAL_METHOD), None)
    for r in runs:
        r["ratio_to_gdal"] = (r["mpx_per_s"] / gd["mpx_per_s"]) if gd else None
    return runs


def run_memory_scaling(dd: Path, tmp: Path, sizes: list[int], speed_scene: tuple[str, str],
                       speed_size: int) -> list[dict]:
    """Peak RSS of the best classical method against scene size, with GDAL's default cache and a small one."""
    pan, ms = speed_scene
    scaling = []
    for s in sizes:
        p2, m2 = (pan, ms) if s == speed_size else mirrored_scene(dd, tmp, s)
        out = str(tmp / "mem_out.tif")
        r = run_subprocess(BEST_CLASSICAL, p2, m2, out, "wv2")
        os.remove(out)
        r64 = run_subprocess(BEST_CLASSICAL, p2, m2, out, "wv2", env={"GDAL_CACHEMAX": str(SMALL_CACHE_MB)})
        scaling.append({"pan_size": s, "seconds": r["seconds"], "mpx_per_s": s * s / 1e6 / r["seconds"],
                        "peak_mb": r["peak_mb"], "peak_mb_gdal_cache_64mb": r64["peak_mb"],
                        "seconds_gdal_cache_64mb": r64["seconds"]})
        print(f"memory {s}² {BEST_CLASSICAL}: {r['seconds']:.2f} s, peak {r['peak_mb']:.0f} MB "
              f"(GDAL_CACHEMAX={SMALL_CACHE_MB}: {r64['peak_mb']:.0f} MB)")
        _remove(*((out, p2, m2) if s != speed_size else (out,)))
    scaling.sort(key=lambda r: r["pan_size"])
    return scaling


def run_learned(methods: list[tuple[str, str | None]], dd: Path, tmp: Path, msize: int, sizes: list[int],
                runs: list[dict], results: dict) -> dict:
    """KSDiff against its bare backbone and SSDiff on the same tiles (PAN ``msize``²), the ratios between them,
    and KSDiff's memory against scene size."""
    learned = []
    lpan, lms_ = mirrored_scene(dd, tmp, msize)
    candidates = [(m, p) for m, p in methods if p is not None and model_sensor(p) == "wv2"]
    ss = ssdiff_timing_model(tmp)
    if ss:
        candidates.append(("ssdiff[timing, untrained]", ss))
    for method, model in candidates:
        out = str(tmp / "learned_out.tif")
        try:
            r = run_subprocess(learned_method(method), lpan, lms_, out, "wv2", model)
        except Exception as e:
            results["skipped"].append({"method": method, "scene": f"speed{msize}", "error": str(e)[-300:]})
            continue
        finally:
            _remove(out)
        learned.append({"method": method, "network": model_method(model) + (INT8 if method.endswith(INT8) else ""),
                        "seconds": r["seconds"],
                        "session_seconds": r["session_seconds"],
                        "mpx_per_s": msize * msize / 1e6 / r["seconds"], "peak_mb": r["peak_mb"]})
        print(f"learned {msize}² {method:28s} {r['seconds']:.2f} s peak {r['peak_mb']:.0f} MB")
    by_net = {r["network"]: r for r in learned}
    # KSDiff against its (float32) backbone: float32 against float32, and the int8 variant beside it
    for net in ("ksdiff", "ksdiff" + INT8):
        if net not in by_net:
            continue
        k = by_net[net]
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
    big = {model_method(p) + (INT8 if m.endswith(INT8) else ""): ran[m] for m, p in methods if p and m in ran}
    bb = big.get("fusionnet") or big.get("pannet")
    for net, key in (("ksdiff", "ksdiff_over_backbone_speed_scene"),
                     ("ksdiff" + INT8, "ksdiff_int8_over_backbone_speed_scene")):
        if big.get(net) and bb:
            results[key] = big[net]["seconds"] / bb["seconds"]
    ks_mem = []
    ks_model = next((p for m, p in candidates if model_method(p) == "ksdiff"), None)   # float32
    for s_ in sizes if ks_model else []:
        p2, m2 = mirrored_scene(dd, tmp, s_)
        out = str(tmp / "mem_out.tif")
        r = run_subprocess("ksdiff", p2, m2, out, "wv2", ks_model)
        ks_mem.append({"pan_size": s_, "seconds": r["seconds"], "mpx_per_s": s_ * s_ / 1e6 / r["seconds"],
                       "peak_mb": r["peak_mb"]})
        print(f"memory {s_}² ksdiff: {r['seconds']:.2f} s, peak {r['peak_mb']:.0f} MB")
        _remove(out, p2, m2)
    return {"pan_size": msize, "runs": learned, "ksdiff_memory_scaling": ks_mem}
