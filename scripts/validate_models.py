"""Candidate 4-band models on the validation scene (WorldView-2 pair 2), where model choices are made.

    python scripts/validate_models.py NAME=DIR [NAME=DIR ...] [--out bench/validation.json] [--md docs/VALIDATION.md]

``DIR`` holds a ``wv2.onnx`` with its card (``python -m model_core export --checkpoint ... --out DIR/wv2.onnx
--no-evaluate``); ``bundled`` names the plugin's own. Pair 2 is neither trained on (the configs use it for
validation only) nor held apart for testing (WV2 pair 3 and the robustness suite are): choosing a model here
leaves the tests independent. Every candidate and the classical methods are fused through the plugin's engine
(``pipeline.pansharpen``, METHOD=ksdiff forced for models) and scored by its assessment:

* Wald's protocol with the sensor's MTF (``model_core.wald``): ERGAS, SAM;
* the same with a sharp PAN (block average, no MTF blur: what a real PAN looks like to the network);
* full resolution on the real pair: R-ERGAS, Dλ (Khan), HQNR, Dρ and the worst band's checkerboard
  response against the PAN's.

``--sentinel2`` adds the robustness suite's five Sentinel-2 kinds of case (other PAN responses, sharpness, MTFs,
radiometry) built on ``robustness.VALIDATION_WINDOWS`` instead of the held-apart corner: ``s2val_ERGAS`` is
the mean over the 25 cases (the 10 m windows lie in the area the 4-band recipe trains on, with its own PAN
kinds), ``s2val_20m_ERGAS`` the mean over the five 20 m cases (a product no 4-band recipe trains on), each
with the model exported for the case's sensor (``DIR/{wv2,qb,gf2}.onnx``); ``s2val_D_rho`` the mean Dρ of the
fused cases against their PAN (reference-free, on ground no full-resolution stage trains on).

``--real-pan`` adds full resolution on a real PAN no 4-band recipe trains on (``l8r4_D_rho``, ``l8r4_R_ERGAS``,
``l8r4_HQNR``): the Landsat 8 validation rows as a ratio-4 pair, the 15 m PAN as it is and the MS Wald-degraded by
2 more to 60 m (``landsat_ratio4_pair``). Pair 2, the other full-resolution scene, is one the recipes' full-resolution
stage trains on.

``--landsat8`` scores Landsat 8 models (``DIR/landsat8.onnx``) on the Landsat scene's validation rows instead
(``LANDSAT_VALIDATION``: below the 80 % of rows the Landsat configs train on, left of the held-apart corner):
Wald's protocol and full resolution, no sharp-PAN case; and on other ground (``landsat_other_scores``:
Landsat-like ratio-2 cases from Sentinel-2 20 m and WorldView-2 pair 2, each model's ERGAS over the best
classical method's); and on a second real Landsat scene (``l7_ratio``: Landsat 7 ETM+, simulated PANs,
``robustness.landsat7_cases``).

``--wv3`` scores WorldView-3 models (``DIR/wv3.onnx``) on an 8-band pair with a real PAN: pair 2 with its B, G, R,
NIR spread over WorldView-3's eight bands (``BAND_MIXES["bgrn_to_wv3"]``, the WorldView-3 recipes' real-PAN sources;
no real WorldView-3 imagery is reachable); same three scenes as the 4-band columns.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from ksdiff_qgis.engine.assessment import assess_full, assess_reduced  # noqa: E402
from ksdiff_qgis.engine.errors import InputError  # noqa: E402
from ksdiff_qgis.engine.learned import DEFAULT_PRECISION  # noqa: E402
from ksdiff_qgis.engine.pipeline import pansharpen  # noqa: E402
from ksdiff_qgis.engine.selfcheck import CLASSICAL_CANDIDATES  # noqa: E402
from model_core.datacache import data_dir  # noqa: E402
from model_core.rasters import read, write_geotiff  # noqa: E402
from model_core.wald import make_reduced_case  # noqa: E402

CLASSICAL = ("mtf_glp_hpm", "gsa", "mtf_glp_fs", "bdsd_pc")
SENSOR, RATIO = "wv2", 4


def _landsat_validation() -> dict[str, tuple[int, int, int, int]]:
    """The Landsat 8 validation rows: the MS window (col, row, w, h) of ``landsat8_validation.yaml`` (the one place
    it is written) and the PAN window over the same ground (the PAN grid is half a PAN pixel off the MS grid: MS
    (c, r) starts near PAN (2c + 2, 2r + 1), as in ``datacache.HELD_APART``; two PAN pixels fewer each way)."""
    from model_core.config import load_config

    c, r, w, h = load_config("landsat8_validation.yaml")["test"]["reduced"]["window"]
    return {"ms": (c, r, w, h), "pan": (2 * c + 2, 2 * r + 1, 2 * w - 4, 2 * h - 4)}


LANDSAT_VALIDATION = _landsat_validation()


def sharp_pan_case(case, pan_path: str, folder: Path) -> str:
    """The Wald case's PAN replaced by the real PAN block-averaged by the ratio (no MTF blur)."""
    ref = read(case.pan)
    x0, dx, _, y0, _, dy = ref.gt
    full = read(pan_path)
    fx0, fdx, _, fy0, _, fdy = full.gt
    c, r = round((x0 - fx0) / fdx), round((y0 - fy0) / fdy)
    h, w = ref.height * RATIO, ref.width * RATIO
    block = full.data[0, r:r + h, c:c + w].astype(np.float64)
    block = block.reshape(ref.height, RATIO, ref.width, RATIO).mean(axis=(1, 3))
    out = folder / "sharp_pan.tif"
    return write_geotiff(str(out), np.round(block).astype(ref.dtype), ref.transform, ref.crs, ref.nodata,
                         nbits=ref.nbits)


def score(method: str, model: str | None, scenes: dict, folder: Path, consistency: bool = True,
          sensor: str = SENSOR) -> dict:
    """Every figure of one method on the validation scene (``consistency``: the plugin's CONSISTENCY switch)."""
    row: dict = {}
    for key, (pan, ms, ref) in scenes.items():
        out = str(folder / f"{key}_{method}_{Path(model).parent.name if model else ''}.tif")
        try:
            pansharpen(pan, ms, out, sensor=sensor, method=method, model_path=model, consistency=consistency)
        except InputError as e:   # BDSD-PC on a scene its fit cannot use (pair 2's Wald case: 43 % nodata): "—"
            if method not in CLASSICAL:
                raise
            print(f"{method} on {key}: {e}", file=sys.stderr)
            continue
        if ref:
            r = assess_reduced(out, ref, sensor)
            row[f"{key}_ERGAS"], row[f"{key}_SAM"] = round(r["ERGAS"], 3), round(r["SAM"], 3)
        else:
            f = assess_full(out, pan, ms, sensor)
            row.update({"R_ERGAS": round(f["R_ERGAS"], 3), "D_lambda_khan": round(f["D_lambda"], 4),
                        "HQNR": round(f["HQNR"], 4), "D_rho": round(f["D_rho"], 4),
                        "checkerboard_worst": round(f["CB"], 3), "checkerboard_pan": round(f["CB_PAN"], 3)})
    return row


def sentinel2_scores(methods: dict[str, str | None], folder: Path, windows: list[int] | None = None) -> dict[str, dict]:
    """Mean ERGAS of every method over the Sentinel-2 validation cases (on ``windows``, default all five: 25; the
    20 m ones apart)."""
    import robustness

    cases = [c for _, c in robustness.validation_cases(windows)]
    out: dict[str, dict] = {}
    for name, model in tqdm(methods.items(), desc="sentinel-2 validation"):
        models = None if model is None else Path(model).parent
        method = name if name in CLASSICAL else f"ksdiff@{DEFAULT_PRECISION}"   # as the pair-2 columns run it
        runs = {f"{c.name}@{i}": robustness.run_case(c, [method], folder / f"{name}_{i}", models)
                for i, c in enumerate(cases)}
        # a method that could not run on a case (``robustness.run_case`` reports it) is left out of its means
        ergs = {k: r["methods"][method]["ERGAS"] for k, r in runs.items() if "ERGAS" in r["methods"][method]}
        rhos = [r["methods"][method]["D_rho"] for r in runs.values() if "D_rho" in r["methods"][method]]
        out[name] = {"s2val_ERGAS": round(float(np.mean(list(ergs.values()))), 4),
                     "s2val_20m_ERGAS": round(float(np.mean([v for k, v in ergs.items() if "20m" in k])), 4),
                     "s2val_D_rho": round(float(np.mean(rhos)), 4), "s2val_cases": ergs}
    return out


LANDSAT_OTHER_WINDOWS = (2, 3)   # validation windows outside the Sentinel-2 rows Landsat recipes train on (0-45 %)


def landsat_other_scores(methods: dict[str, str | None], folder: Path) -> dict[str, dict]:
    """Landsat models on other ground than the Landsat scene: ERGAS / the best classical method's ERGAS per case,
    averaged (``other_ratio``: the Sentinel-2 20 m cases on ``LANDSAT_OTHER_WINDOWS`` with OLI- and ETM+-like PANs
    and WorldView-2 pair 2 as a ratio-2 product; ``seen_ratio``: the other windows, ground a recipe may have seen
    at 10 m, reported only; ``l7_ratio``: the Landsat 7 scene, real Landsat ground no recipe trains on)."""
    import robustness

    groups = {"other": robustness.landsat_like_cases(LANDSAT_OTHER_WINDOWS) + [robustness.wv2_ratio2_case()],
              "seen": robustness.landsat_like_cases([i for i in range(len(robustness.VALIDATION_WINDOWS))
                                                     if i not in LANDSAT_OTHER_WINDOWS]),
              "l7": robustness.landsat7_cases()}
    ratios: dict[str, dict[str, list[float]]] = {name: {g: [] for g in groups} for name in methods}
    cases: dict[str, dict] = {name: {} for name in methods}
    for group, group_cases in groups.items():
        for c in tqdm(group_cases, desc=f"landsat-like cases ({group})"):
            best = min(robustness.run_case(c, [m], folder / f"{c.name}_{m}", None)["methods"][m]["ERGAS"]
                       for m in CLASSICAL_CANDIDATES)
            for name, model in methods.items():
                if name in CLASSICAL:
                    continue
                models = None if model is None else Path(model).parent
                e = robustness.run_case(c, ["ksdiff"], folder / f"{c.name}_{name}", models)["methods"]["ksdiff"]
                cases[name][c.name] = e["ERGAS"]
                ratios[name][group].append(e["ERGAS"] / best)
    return {name: {"other_ratio": round(float(np.mean(r["other"])), 4),
                   "seen_ratio": round(float(np.mean(r["seen"])), 4),
                   "l7_ratio": round(float(np.mean(r["l7"])), 4), "other_cases": cases[name]}
            for name, r in ratios.items() if r["other"]}


def landsat_ratio4_pair(folder: Path) -> tuple[str, str]:
    """(PAN, MS) of a ratio-4 pair with a real PAN no 4-band recipe trains on: the Landsat 8 validation rows, the
    15 m PAN as it is and B2-B5 Wald-degraded by 2 more (Landsat's MS MTF) to 60 m."""
    from affine import Affine

    from ksdiff_qgis.engine.filters import wald_degrade
    from ksdiff_qgis.engine.sensors import get_sensor

    pan, ms = landsat_full_pair(folder)
    r = read(ms)
    coarse = wald_degrade(r.data.astype(np.float64), get_sensor("landsat8").mtf_ms, 2)
    return pan, write_geotiff(str(folder / "l8r4_ms.tif"), np.rint(coarse).astype(r.data.dtype),
                              r.transform * Affine.scale(2), r.crs)


def real_pan_scores(methods: dict[str, str | None], folder: Path, consistency: bool = True) -> dict[str, dict]:
    """Full-resolution figures of every method on ``landsat_ratio4_pair`` (fused and scored as WorldView-2, the
    4-band ratio-4 sensor), prefixed ``l8r4_``: how full-resolution choices carry to a PAN none of them saw."""
    pan, ms = landsat_ratio4_pair(folder)
    out = {}
    for name, model in methods.items():
        row = score(name if name in CLASSICAL else "ksdiff", model, {"full": (pan, ms, None)}, folder, consistency)
        out[name] = {f"l8r4_{k}": row[k] for k in ("D_rho", "R_ERGAS", "HQNR")}
    return out


def landsat_full_pair(folder: Path) -> tuple[str, str]:
    """(PAN, MS) of the Landsat 8 validation rows as they are, cropped."""
    from model_core.rasters import crop

    root = data_dir() / "landsat8"
    return (crop(str(root / "pan.tif"), str(folder / "l8val_full_pan.tif"), LANDSAT_VALIDATION["pan"]),
            crop(str(root / "ms.tif"), str(folder / "l8val_full_ms.tif"), LANDSAT_VALIDATION["ms"]))


def landsat_scenes(folder: Path) -> dict:
    """The Landsat 8 validation rows: a Wald case and the real pair, cropped."""
    root = data_dir() / "landsat8"
    case = make_reduced_case(str(root / "pan.tif"), str(root / "ms.tif"), str(folder), "landsat8",
                             window=LANDSAT_VALIDATION["ms"], prefix="l8val")
    return {"wald": (case.pan, case.ms, case.ref), "full": (*landsat_full_pair(folder), None)}


def wv3_proxy(folder: Path) -> str:
    """Pair 2's MS spread over WorldView-3's eight bands (the 8-band validation source of the WorldView-3 recipe)."""
    from model_core.data.scenes import mix_bands

    src = read(str(data_dir() / "wv2" / "pair2_ms.tif"))
    eight = mix_bands(src.data.astype(np.float32), "bgrn_to_wv3")
    return write_geotiff(str(folder / "pair2_ms8.tif"), np.round(eight).astype(src.dtype), src.transform, src.crs,
                         src.nodata, nbits=src.nbits)


def markdown(res: dict) -> str:
    cols = ["wald_ERGAS", "wald_SAM", "sharp_ERGAS", "R_ERGAS", "D_lambda_khan", "HQNR", "D_rho",
            "checkerboard_worst", "s2val_ERGAS", "s2val_20m_ERGAS", "s2val_D_rho", "l8r4_D_rho", "l8r4_R_ERGAS",
            "l8r4_HQNR"]
    if res.get("scene") == "landsat8/validation":   # no sharp-PAN or Sentinel-2 columns; other ground instead
        cols = [c for c in cols if not c.startswith(("sharp", "s2val", "l8r4"))] + ["other_ratio", "seen_ratio",
                                                                                     "l7_ratio"]
    title = {"landsat8/validation": "the Landsat 8 validation rows",
             "wv2/pair2@wv3": "the validation scene spread over eight bands (WorldView-2 pair 2 as WorldView-3)"}.get(
        res.get("scene"), "the validation scene (WorldView-2 pair 2)")
    lines = [f"# Candidate models on {title}", "",
             f"Written by `scripts/validate_models.py` on {res['date_utc']}. `wald` = Wald's protocol with the "
             "sensor MTF; `sharp` = the same with a block-averaged (sharp) PAN; the rest at full resolution on the "
             f"real pair (PAN checkerboard response {res.get('checkerboard_pan')}). Lower is better except HQNR."
             + ("" if res.get("consistency", True) else " Networks alone: the consistency step off (CONSISTENCY off)."),
             "",
             "| method | " + " | ".join(cols) + " |", "| --- | " + " | ".join("---:" for _ in cols) + " |"]
    for name, row in res["methods"].items():
        lines.append(f"| {name} | " + " | ".join(str(row.get(c, "—")) for c in cols) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    import robustness

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="*", help="NAME=DIR with DIR/wv2.onnx, or 'bundled'")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "validation.json")
    ap.add_argument("--md", type=Path, default=ROOT / "docs" / "VALIDATION.md")
    ap.add_argument("--sentinel2", action="store_true", help="also the Sentinel-2 validation cases (slower)")
    ap.add_argument("--windows", type=robustness.window_indices, default=None,
                    help="with --sentinel2: only these validation windows (comma-separated indices, e.g. 0,1,2)")
    ap.add_argument("--landsat8", action="store_true",
                    help="Landsat 8 models (DIR/landsat8.onnx) on the Landsat validation rows instead")
    ap.add_argument("--real-pan", action="store_true",
                    help="also full resolution on a real PAN no 4-band recipe trains on (Landsat 8 validation rows "
                         "as a ratio-4 pair)")
    ap.add_argument("--no-consistency", action="store_true",
                    help="the networks alone (CONSISTENCY off) on the pair-2 columns; not with --sentinel2")
    ap.add_argument("--wv3", action="store_true",
                    help="WorldView-3 models (DIR/wv3.onnx) on pair 2 spread over eight bands instead")
    a = ap.parse_args(argv)
    if a.no_consistency and a.sentinel2:
        ap.error("--no-consistency scores the pair-2 columns only")
    if (a.landsat8 or a.wv3) and (a.sentinel2 or a.real_pan):
        ap.error("--sentinel2 and --real-pan score 4-band models")
    if a.landsat8 and a.wv3:
        ap.error("--landsat8 or --wv3, not both")
    sensor = "landsat8" if a.landsat8 else "wv3" if a.wv3 else SENSOR
    methods: dict[str, str | None] = {m: None for m in CLASSICAL}
    for spec in a.models:
        name, _, folder = spec.partition("=")
        methods[name] = None if name == "bundled" else str(Path(folder) / f"{sensor}.onnx")
    res: dict = {"date_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                 "scene": "landsat8/validation" if a.landsat8 else "wv2/pair2@wv3" if a.wv3 else "wv2/pair2",
                 "consistency": not a.no_consistency, "methods": {}}
    with tempfile.TemporaryDirectory(prefix="ksdiff_validate_") as tmp:
        folder = Path(tmp)
        if a.landsat8:
            scenes = landsat_scenes(folder)
        else:
            root = data_dir() / "wv2"
            pan, ms = str(root / "pair2_pan.tif"), str(root / "pair2_ms.tif")
            ms = wv3_proxy(folder) if a.wv3 else ms
            case = make_reduced_case(pan, ms, str(folder), sensor)
            scenes = {"wald": (case.pan, case.ms, case.ref),
                      "sharp": (sharp_pan_case(case, pan, folder), case.ms, case.ref),
                      "full": (pan, ms, None)}
        for name, model in tqdm(methods.items(), desc="validation"):
            method = name if name in CLASSICAL else "ksdiff"
            res["methods"][name] = row = score(method, model, scenes, folder, not a.no_consistency, sensor)
            res["checkerboard_pan"] = row.pop("checkerboard_pan", None)
        if a.landsat8:
            for name, row in landsat_other_scores(methods, folder).items():
                res["methods"][name].update(row)
        if a.real_pan:
            for name, row in real_pan_scores(methods, folder, not a.no_consistency).items():
                res["methods"][name].update(row)
        if a.sentinel2:
            bundled = ROOT / "ksdiff_qgis" / "resources" / "models" / "wv2.onnx"
            res["sentinel2_windows"] = a.windows or "all"
            s2 = sentinel2_scores({k: (str(bundled) if k == "bundled" else v) for k, v in methods.items()}, folder,
                                  a.windows)
            for name, row in s2.items():
                res["methods"][name].update(row)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(res, indent=1) + "\n")
    a.md.parent.mkdir(parents=True, exist_ok=True)
    a.md.write_text(markdown(res))
    print(a.md.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
