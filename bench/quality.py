"""Quality: fuse every scene with every method, score it with the engine's indices (``ksdiff_qgis.engine.metrics``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ksdiff_qgis.engine import metrics as M
from ksdiff_qgis.engine.assessment import assess_full, assess_reduced
from model_core.rasters import read

from .common import learned_method, run_method
from .learned import model_sensor


def score_reduced(fused_path: str, scene: dict) -> dict:
    """SAM, ERGAS, Q2n, Q, SCC, PSNR, SSIM (and per band) of a fused raster against the scene's reference,
    through the engine's own assessment (what ``ksdiff:assess`` reports); a pixel that is 0 in any band of
    either raster is left out (the fill of the bench's test cases, declared as nodata or not)."""
    res = assess_reduced(fused_path, scene["ref"], scene["sensor"], extra_nodata=0)
    return {k: res[k] for k in (*M.REDUCED, "per_band")}


def score_full(fused_path: str, scene: dict) -> dict:
    """No-reference indices through the engine's own assessment (what ``ksdiff:assess`` reports): Dλ, Ds,
    HQNR, Dρ, the reprojection indices R-Q2n / R-SAM / R-ERGAS and the checkerboard response (worst band)
    against the PAN's."""
    res = assess_full(fused_path, scene["pan"], scene["ms"], scene["sensor"])
    res["pixels"] = int(res["width"] * res["height"])
    return {k: v for k, v in res.items() if k not in ("band_names", "width", "height", "ratio")}


def score(fused_path: str, scene: dict, mode: str) -> dict:
    return score_reduced(fused_path, scene) if mode == "reduced" else score_full(fused_path, scene)


def run_quality(methods: list[tuple[str, str | None]], scenes: list[tuple[str, list[dict]]], tmp: Path,
                results: dict, quick: dict) -> None:
    """Fuse and score each (mode, scene) with each method; rows go to ``results['quality']``, failures to
    ``results['skipped']``; the WV2 full-resolution crops used by the quicklook to ``quick['tiles']``."""
    for mode, mode_scenes in scenes:
        for sc in mode_scenes:
            results["scenes"].append({"mode": mode, "name": sc["name"], "desc": sc["desc"],
                                      "notes": sc.get("notes", [])})
            for method, model in methods:
                ms_key = model_sensor(model)
                if model is not None and ms_key is not None and ms_key != sc["sensor"]:
                    continue  # a learned model runs on the scenes of its own sensor only
                out = str(tmp / f"{mode}_{sc['name']}_{method.replace('[', '_').replace(']', '')}.tif")
                try:
                    secs = run_method(method if model is None else learned_method(method), sc["pan"], sc["ms"], out,
                                      sc["sensor"],
                                      model)
                except Exception as e:  # a learned model may not fit a sensor: record and go on
                    results["skipped"].append({"method": method, "scene": sc["name"], "mode": mode,
                                               "error": str(e)[:300]})
                    print(f"bench: {method} on {mode}/{sc['name']} skipped: {e}")
                    continue
                sc_score = score(out, sc, mode)
                row = {"mode": mode, "scene": sc["name"], "method": method, "sensor": sc["sensor"], "seconds": secs}
                row.update({k: v for k, v in sc_score.items() if k != "per_band"})
                row["per_band"] = sc_score["per_band"]
                results["quality"].append(row)
                print(f"{mode:8s} {sc['name']:18s} {method:14s} " + " ".join(
                    f"{k}={row[k]:.4f}" for k in (M.REDUCED if mode == "reduced" else M.FULL)))
                if mode == "full" and sc["name"] == "wv2_pair3":
                    quick["tiles"][method] = read(out).data[:, 40:200, 200:360].astype(np.float64)
            if mode == "full" and sc["name"] == "wv2_pair3":
                pan = read(sc["pan"]).data[:, 40:200, 200:360].astype(np.float64)
                quick["tiles"] = {"PAN": pan, **quick["tiles"]}
