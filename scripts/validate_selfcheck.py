"""Validate METHOD auto's decision rule on real cases whose truth is known (not part of `make test`).

Every reduced-resolution case is a Wald pair with its reference (the original MS): ``auto`` runs on the
degraded pair (its self-check degrades it once more), and the truth is the ERGAS of forced KSDiff and of
MTF-GLP-HPM against the reference. Full-resolution cases run ``auto`` on the real pair and report the
whole-scene R-ERGAS and checkerboard response of both methods next to the pair's reduced-resolution truth.

WorldView-2 pair 3 (the test scene) is never used. Cases: WV2 pairs 1 and 2; Landsat 8 outside its
held-apart window; Sentinel-2 10 m outside its held-apart window with a simulated PAN (as ``make bench``,
blur sigma 0.8 px) plus a sharp (no blur) and a blurry (sigma 1.6 px) PAN; 8-bit rescaled versions of
WV2 pair 1 and Sentinel-2; WV2 pair 1 with a blurred PAN.

Usage: python scripts/validate_selfcheck.py [--out FILE.md] [--json FILE.json]
       python scripts/validate_selfcheck.py --small      # scenes below the check's minimum sample
       python scripts/validate_selfcheck.py --generic    # products of no known sensor, with the nearest network
       python scripts/validate_selfcheck.py --box        # MS sharper than its sensor's MTF: block-averaged pairs
       python scripts/validate_selfcheck.py --half-pixel # Landsat's half-pixel grid kept, beside aligned twins
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench.scenes import wv2_stats  # noqa: E402
from ksdiff_qgis.engine import metrics as M  # noqa: E402
from ksdiff_qgis.engine.assessment import assess_reduced  # noqa: E402
from ksdiff_qgis.engine.errors import InputError  # noqa: E402
from ksdiff_qgis.engine.filters import convolve_axis, wald_degrade  # noqa: E402
from ksdiff_qgis.engine.pipeline import pansharpen  # noqa: E402
from ksdiff_qgis.engine.selfcheck import CLASSICAL_CANDIDATES, decide  # noqa: E402
from ksdiff_qgis.engine.sensors import get_sensor  # noqa: E402
from model_core.datacache import data_dir  # noqa: E402
from model_core.rasters import read, write_geotiff  # noqa: E402
from model_core.wald import half_pixel_ms, make_half_pixel_case, make_reduced_case  # noqa: E402

DATA = data_dir()
S2_WEIGHTS, S2_OFFSET = (0.177, 0.194, 0.416, 0.182), -4.8     # as bench/scenes.py
S2_WINDOW = (0, 0, 1024, 1024)            # 10 m pixels; the held-apart window is (1421, 1435, 512, 512)
S2_WINDOW2 = (900, 0, 1024, 1024)         # a second area (overlaps the first by 124 columns)
NOISE = 0.2                               # ERGAS: smaller truth differences are a tie (METHOD.md)
L8_MS_WINDOW = (0, 0, 360, 340)           # MS pixels; the held-apart window is (370, 347, 257, 256)


def blur(img: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0:
        return img.astype(np.float32)
    x = np.arange(-4, 5, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    k /= k.sum()
    return convolve_axis(convolve_axis(img.astype(np.float32), k, -2), k, -1)


def to8(arr: np.ndarray, top: float) -> np.ndarray:
    return np.clip(np.round(arr.astype(np.float64) * 255.0 / top), 1, 255).astype(np.uint8)


def s2_case(tmp: Path, name: str, pan_blur: float, eight_bit: bool = False, window=S2_WINDOW) -> dict:
    """Sentinel-2 10 m bands mapped to WV2-like DN (1st percentile and mean of WV2 pairs 1-2) as the
    reference, a simulated PAN, the MS degraded with the WV2 MTF (ratio 4)."""
    sens = get_sensor("wv2")
    s2_r = read(DATA / "sentinel2" / "s2_10m.tif", window)
    s2, gt, srs = s2_r.data.astype(np.float64), s2_r.gt, s2_r.crs
    wlo, wmean = wv2_stats(DATA)
    slo = np.array([np.percentile(b, 1) for b in s2])
    smean = s2.reshape(4, -1).mean(axis=1)
    ref = np.clip(np.round((s2 - slo[:, None, None]) * ((wmean - wlo) / (smean - slo))[:, None, None]
                           + wlo[:, None, None]), 1, 2047)
    pan = blur(np.tensordot(np.asarray(S2_WEIGHTS), ref, axes=1) + S2_OFFSET, pan_blur)
    ms_lr = wald_degrade(ref.astype(np.float32), sens.mtf_ms, 4)
    pan, ms_lr = np.clip(np.round(pan), 1, 2047), np.clip(np.round(ms_lr), 1, 2047)
    if eight_bit:
        pan, ms_lr, ref = to8(pan, 2047), to8(ms_lr, 2047), to8(ref, 2047)
    dt = np.uint8 if eight_bit else np.uint16
    lr_gt = (gt[0], gt[1] * 4, 0.0, gt[3], 0.0, gt[5] * 4)
    p = write_geotiff(str(tmp / f"{name}_pan.tif"), pan.astype(dt)[None], gt, srs, 0, ["PAN"])
    m = write_geotiff(str(tmp / f"{name}_ms.tif"), ms_lr.astype(dt), lr_gt, srs, 0, ["B", "G", "R", "N"])
    r = write_geotiff(str(tmp / f"{name}_ref.tif"), ref.astype(dt), gt, srs, 0, ["B", "G", "R", "N"])
    return dict(name=name, sensor="wv2", pan=p, ms=m, ref=r, ratio=4)


def wald_case(tmp: Path, name: str, pan: str, ms: str, sensor: str, window=None, pan_blur: float = 0.0,
              eight_bit: bool = False) -> dict:
    """A Wald pair of a real scene; optionally with a blurred PAN or rescaled to 8 bits."""
    c = make_reduced_case(pan, ms, str(tmp), sensor, window=window, prefix=name)
    case = dict(name=name, sensor=sensor, pan=c.pan, ms=c.ms, ref=c.ref, ratio=c.ratio)
    if pan_blur or eight_bit:
        top = get_sensor(sensor).scale
        # 8 bits: one linear map for all three rasters, 255 at the reference's 99.9th percentile
        ref8 = float(np.percentile(read(case["ref"]).data, 99.9)) if eight_bit else top
        for key in ("pan", "ms", "ref"):
            r = read(case[key])
            arr, gt, srs = r.data, r.gt, r.crs
            valid = np.all(arr != 0, axis=0)
            if key == "pan" and pan_blur:
                arr = np.clip(np.round(blur(arr[0], pan_blur)), 1, top)[None]
            if eight_bit:
                arr = to8(arr, ref8)
            arr = arr.astype(np.uint8 if eight_bit else np.uint16)
            arr[:, ~valid] = 0
            out = str(tmp / f"{name}_{key}_v.tif")
            write_geotiff(out, arr, gt, srs, 0, None)
            case[key] = out
    return case


def truth_ergas(fused: str, case: dict) -> float:
    """ERGAS against the reference, as the bench scores (the engine's assessment; 0 is the fill). SENSOR generic has
    no ratio: scored as the sensor of its ratio (ERGAS uses no MTF)."""
    return assess_reduced(fused, case["ref"], scored_as(case), extra_nodata=0)["ERGAS"]


def scored_as(case: dict) -> str:
    """The sensor a case is scored as: its own, or for SENSOR generic the bundled one of its ratio."""
    if case["sensor"] != "generic":
        return case["sensor"]
    return "wv2" if case["ratio"] == 4 else "landsat8"


def full_scores(fused: str, case: dict) -> dict:
    """Whole-scene R-ERGAS and checkerboard response (aligned grids only; valid MS rows only)."""
    f, ms, pan = read(fused).data, read(case["ms"]).data, read(case["pan"]).data
    k = case["ratio"]
    valid = np.all(ms != 0, axis=0)
    rows = np.where(valid.all(axis=1))[0]
    r0, r1 = int(rows.min()), int(rows.max()) + 1
    fs = f[:, r0 * k:r1 * k].astype(np.float64)
    gains = get_sensor(case["sensor"]).mtf_ms
    rep = M.reprojection(fs, ms[:, r0:r1].astype(np.float64), gains, k)
    return {"R_ERGAS": rep["R_ERGAS"], "CB": float(np.nanmax(M.checkerboard_response(fs))),
            "CB_PAN": float(M.checkerboard_response(pan[:, r0 * k:r1 * k].astype(np.float64))[0])}


def run_case(case: dict, tmp: Path, full: bool = False) -> dict:
    out = {"name": case["name"]}
    t = time.perf_counter()
    auto = pansharpen(case["pan"], case["ms"], str(tmp / f"{case['name']}_auto.tif"), case["sensor"], "auto")
    out["auto_seconds"] = time.perf_counter() - t
    sc = auto.selfcheck
    out["choice"] = auto.method
    out["reason"] = sc.reason
    out["check"] = sc.outputs()
    if sc.learned is not None:   # the brief's original guard (PAN only), for comparison
        out["choice_pan_only"] = "ksdiff" if decide(sc.learned, sc.classical, sc.pan_checkerboard)[0] else "mtf_glp_hpm"
    else:
        out["choice_pan_only"] = auto.method
    for m in ("ksdiff", "mtf_glp_hpm"):
        path = str(tmp / f"{case['name']}_{m}.tif")
        pansharpen(case["pan"], case["ms"], path, case["sensor"], m)
        if full:
            out[m] = full_scores(path, case)
        else:
            out[m] = {"ERGAS": truth_ergas(path, case)}
    out["detail_gains"] = sc.detail_gains
    if not full and sc.detail_gains:   # would the check's injection-gain calibration have helped?
        exp = str(tmp / f"{case['name']}_exp.tif")
        pansharpen(case["pan"], case["ms"], exp, case["sensor"], "exp")
        ks_r = read(str(tmp / f"{case['name']}_ksdiff.tif"))
        ks, gt, srs = ks_r.data, ks_r.gt, ks_r.crs
        lms = read(exp).data.astype(np.float64)
        g = np.asarray(sc.detail_gains)[:, None, None]
        cal = np.where(ks == 0, 0, np.clip(np.round(lms + g * (ks - lms)), 1, np.iinfo(ks.dtype).max))
        path = write_geotiff(str(tmp / f"{case['name']}_cal.tif"), cal.astype(ks.dtype), gt, srs, 0, None)
        out["ksdiff_calibrated"] = {"ERGAS": truth_ergas(path, case)}
    if not full:
        best = "ksdiff" if out["ksdiff"]["ERGAS"] < out["mtf_glp_hpm"]["ERGAS"] else "mtf_glp_hpm"
        out["truth_best"] = best
        tie = abs(out["ksdiff"]["ERGAS"] - out["mtf_glp_hpm"]["ERGAS"]) < NOISE
        out["tie"] = tie
        out["correct"] = tie or best == out["choice"]
        out["correct_pan_only"] = tie or best == out["choice_pan_only"]
        # the default's own output: it may be any classical candidate, not only the two scored above
        out["auto_ERGAS"] = truth_ergas(str(tmp / f"{case['name']}_auto.tif"), case)
    return out


def cases(tmp: Path, test_scene: bool = False) -> tuple[list[dict], list[dict]]:
    wv2 = DATA / "wv2"
    l8 = DATA / "landsat8"
    rr = [
        wald_case(tmp, "wv2_pair1", str(wv2 / "pair1_pan.tif"), str(wv2 / "pair1_ms.tif"), "wv2"),
        wald_case(tmp, "wv2_pair2", str(wv2 / "pair2_pan.tif"), str(wv2 / "pair2_ms.tif"), "wv2",
                  window=(0, 52, 148, 96)),
        wald_case(tmp, "wv2_pair1_8bit", str(wv2 / "pair1_pan.tif"), str(wv2 / "pair1_ms.tif"), "wv2",
                  eight_bit=True),
        wald_case(tmp, "wv2_pair1_pan_blur1.2", str(wv2 / "pair1_pan.tif"), str(wv2 / "pair1_ms.tif"), "wv2",
                  pan_blur=1.2),
        wald_case(tmp, "landsat8", str(l8 / "pan.tif"), str(l8 / "ms.tif"), "landsat8", window=L8_MS_WINDOW),
        s2_case(tmp, "s2_simpan", 0.8),
        s2_case(tmp, "s2_simpan_sharp", 0.0),
        s2_case(tmp, "s2_simpan_blur1.6", 1.6),
        s2_case(tmp, "s2_simpan_8bit", 0.8, eight_bit=True),
        s2_case(tmp, "s2_simpan_area2", 0.8, window=S2_WINDOW2),
        wald_case(tmp, "landsat8_8bit", str(l8 / "pan.tif"), str(l8 / "ms.tif"), "landsat8", window=L8_MS_WINDOW,
                  eight_bit=True),
    ]
    if test_scene:   # WorldView-2 pair 3: scored once the rule was fixed, never used to choose it
        rr.append(wald_case(tmp, "TEST_wv2_pair3", str(wv2 / "pair3_pan.tif"), str(wv2 / "pair3_ms.tif"), "wv2",
                            window=(0, 60, 148, 88)))
    fr = [
        dict(name=f"wv2_pair{i}_full", sensor="wv2", pan=str(wv2 / f"pair{i}_pan.tif"),
             ms=str(wv2 / f"pair{i}_ms.tif"), ratio=4) for i in (1, 2)
    ]
    if test_scene:
        fr.append(dict(name="TEST_wv2_pair3_full", sensor="wv2", pan=str(wv2 / "pair3_pan.tif"),
                       ms=str(wv2 / "pair3_ms.tif"), ratio=4))
    return rr, fr


SMALL_THRESHOLD = 128   # the candidate minimum sample of the small-scene study (docs/SELFCHECK.md; 256 adopted)


def small_cases(tmp: Path) -> list[dict]:
    """Wald cases of 256-1000 MS pixels from validation sources only (windows in the source's MS pixels;
    Sentinel-2 windows in 10 m pixels, outside its held-apart window)."""
    wv2, l8 = DATA / "wv2", DATA / "landsat8"
    out = []
    for i, win in ((1, (0, 0, 100, 100)), (1, (50, 40, 96, 104)), (2, (0, 52, 100, 96)), (2, (48, 52, 100, 96))):
        out.append(wald_case(tmp, f"small_wv2_pair{i}_{win[0]}_{win[1]}", str(wv2 / f"pair{i}_pan.tif"),
                             str(wv2 / f"pair{i}_ms.tif"), "wv2", window=win))
    for c, r in ((0, 0), (300, 300), (600, 100), (900, 600), (200, 800)):
        out.append(s2_case(tmp, f"small_s2_{c}_{r}", 0.8, window=(c, r, 112, 112)))
    for win in ((0, 0, 60, 60), (100, 100, 50, 50), (200, 200, 60, 60), (280, 20, 56, 56)):
        out.append(wald_case(tmp, f"small_landsat8_{win[0]}_{win[1]}", str(l8 / "pan.tif"), str(l8 / "ms.tif"),
                             "landsat8", window=win))
    return out


def run_small(case: dict, tmp: Path) -> dict:
    """``auto`` at the current minimum sample and at ``SMALL_THRESHOLD``, against every method's truth."""
    from ksdiff_qgis.engine import selfcheck

    out = {"name": case["name"]}
    for m in ("ksdiff",) + CLASSICAL_CANDIDATES:
        path = str(tmp / f"{case['name']}_{m}.tif")
        pansharpen(case["pan"], case["ms"], path, case["sensor"], m)
        out[m] = truth_ergas(path, case)
    current = selfcheck.MIN_PIXELS
    for label, threshold in (("current", current), ("small", SMALL_THRESHOLD)):
        selfcheck.MIN_PIXELS = threshold
        try:
            path = str(tmp / f"{case['name']}_auto_{label}.tif")
            res = pansharpen(case["pan"], case["ms"], path, case["sensor"], "auto")
        finally:
            selfcheck.MIN_PIXELS = current
        out[f"auto_{label}"] = {"method": res.method, "ERGAS": truth_ergas(path, case),
                                "pixels": res.selfcheck.pixels}
    out["best_classical"] = min(CLASSICAL_CANDIDATES, key=lambda m: out[m])
    return out


def small_markdown(rows: list[dict]) -> str:
    lines = ["| case | MS px checked | KSDiff | best classical | auto now | auto with "
             f"{SMALL_THRESHOLD} | with {SMALL_THRESHOLD} / best classical |",
             "| --- | ---: | ---: | --- | --- | --- | ---: |"]
    for r in rows:
        b = r["best_classical"]
        cur, new = r["auto_current"], r["auto_small"]
        lines.append(f"| {r['name']} | {new['pixels']} | {r['ksdiff']:.3f} | {b} {r[b]:.3f} | "
                     f"{cur['method']} {cur['ERGAS']:.3f} | {new['method']} {new['ERGAS']:.3f} | "
                     f"{new['ERGAS'] / r[b]:.3f} |")
    rel = {k: float(np.mean([r[f"auto_{k}"]["ERGAS"] / r[r["best_classical"]] for r in rows]))
           for k in ("current", "small")}
    worst = max(r["auto_small"]["ERGAS"] - r[r["best_classical"]] for r in rows)
    lines += ["", f"Mean default ERGAS / best classical: now {rel['current']:.3f}, with {SMALL_THRESHOLD} "
              f"{rel['small']:.3f}; with {SMALL_THRESHOLD} the default is at most {worst:+.3f} ERGAS from the best "
              "classical method on every case."]
    return "\n".join(lines) + "\n"


EIGHT_BAND_PANS = (("flat", (0.125,) * 8, 0.8), ("visible", (0.1, 0.2, 0.2, 0.15, 0.2, 0.1, 0.05, 0.0), 0.0))


def eight_band_cases(tmp: Path) -> list:
    """8-band ratio-4 cases from the 8-band recipes' validation sources: WorldView-2 pair 2 spread over eight bands
    (real PAN) and Sentinel-2 20 m on the ``wv3_validation.yaml`` window (rows 85-100 %) cut in three, each with a
    flat and a visible-heavy simulated PAN."""
    import robustness
    from validate_models import wv3_proxy

    from model_core.rasters import read as read_raster

    out = []
    c = make_reduced_case(str(DATA / "wv2" / "pair2_pan.tif"), wv3_proxy(tmp), str(tmp), "wv2_8", prefix="p2x8")
    pan, ms, ref = read_raster(c.pan), read_raster(c.ms), read_raster(c.ref)
    out.append(robustness.Case("wv2_pair2_8band", "generic", "WorldView-2 pair 2 spread over eight bands, real PAN",
                               pan.data[0], ms.data, ref.data, ref.transform, ref.crs, str(ref.data.dtype), 4))
    for i, col in enumerate((0, 233, 466)):
        s20, tf, crs = robustness._read(DATA / "sentinel2" / "s2_20m.tif", (col, 828, 232, 144))
        for kind, weights, blur in EIGHT_BAND_PANS:
            out.append(robustness.simulated_pan_case(
                f"s2_20m_8band_{i}_{kind}_pan", "generic", f"Sentinel-2 20 m, eight bands, {kind} PAN", s20, tf, crs,
                weights, blur, (0.3,) * 8, "uint16", None))
    return out


def generic_cases(tmp: Path, windows: list[int] | None = None) -> list:
    """The Sentinel-2 validation cases (ratio 4), the Landsat-like ratio-2 cases and the 8-band cases, to be run as
    SENSOR=generic; with ``windows``, the ratio-4 Sentinel-2 cases on those validation windows only."""
    import robustness

    if windows is not None:
        return [c for _, c in robustness.validation_cases(windows)]
    return ([c for _, c in robustness.validation_cases()]
            + robustness.landsat_like_cases(range(len(robustness.VALIDATION_WINDOWS))) + eight_band_cases(tmp))


def run_generic(case, tmp: Path) -> dict:
    """``auto`` on a case as SENSOR=generic, without a network (as before ``sensors.GENERIC_NEAREST``) and with
    the nearest bundled one (the default since), against every method's truth (ERGAS against the reference)."""
    import robustness

    from ksdiff_qgis.engine import sensors

    pan, ms, _ = robustness.write_case(case, tmp / case.name)
    out = {"name": case.name, "ratio": case.ratio, "bands": int(case.ref.shape[0])}
    table = dict(sensors.GENERIC_NEAREST)
    for label, method, nearest in ([(m, m, table) for m in CLASSICAL_CANDIDATES]
                                   + [("ksdiff", "ksdiff", table), ("auto_now", "auto", {}),
                                      ("auto_network", "auto", table)]):
        path = str(tmp / case.name / f"{label}.tif")
        sensors.GENERIC_NEAREST.clear()
        sensors.GENERIC_NEAREST.update(nearest)
        try:
            res = pansharpen(pan, ms, path, "generic", method)
        finally:
            sensors.GENERIC_NEAREST.clear()
            sensors.GENERIC_NEAREST.update(table)
        out[label] = robustness.score(path, case)["ERGAS"]
        if method == "auto":
            out[f"{label}_method"] = res.method
    out["best_classical"] = min(CLASSICAL_CANDIDATES, key=lambda m: out[m])
    return out


def generic_markdown(rows: list[dict]) -> str:
    lines = ["| case | ratio | KSDiff (nearest network) | best classical | auto now | auto with the network | "
             "with / best classical |", "| --- | ---: | ---: | --- | --- | --- | ---: |"]
    for r in rows:
        b = r["best_classical"]
        lines.append(f"| {r['name']} | {r['ratio']} | {r['ksdiff']:.3f} | {b} {r[b]:.3f} | {r['auto_now_method']} "
                     f"{r['auto_now']:.3f} | {r['auto_network_method']} {r['auto_network']:.3f} | "
                     f"{r['auto_network'] / r[b]:.3f} |")
    lines.append("")
    for bands, ratio in sorted({(r["bands"], r["ratio"]) for r in rows}, key=lambda s: (s[0], -s[1])):
        group = [r for r in rows if (r["bands"], r["ratio"]) == (bands, ratio)]
        rel = {k: float(np.mean([r[k] / r[r["best_classical"]] for r in group])) for k in ("auto_now", "auto_network")}
        worst = max(r["auto_network"] - r[r["best_classical"]] for r in group)
        lines.append(f"{bands} bands, ratio {ratio} ({len(group)} cases): mean default ERGAS / best classical now "
                     f"{rel['auto_now']:.3f}, with the network {rel['auto_network']:.3f}; with it the default is at "
                     f"most {worst:+.3f} ERGAS from the best classical method on every case.")
    return "\n".join(lines) + "\n"


def markdown(rr: list[dict], fr: list[dict]) -> str:
    lines = ["| case | check: KSDiff / HPM Wald ERGAS | R-ERGAS | CB KSDiff (PAN, MS) | MS px | choice | "
             "truth ERGAS KSDiff / HPM | right? | PAN-only guard |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rr:
        c = r["check"]
        f = (lambda v: "—" if v is None else f"{v:.3f}")  # noqa: E731
        verdict = ("tie" if r["tie"] else "yes") if r["correct"] else "**no**"
        lines.append(f"| {r['name']} | {f(c['SELFCHECK_KSDIFF_ERGAS'])} / {f(c['SELFCHECK_CLASSICAL_ERGAS'])} | "
                     f"{f(c['SELFCHECK_KSDIFF_R_ERGAS'])} / {f(c['SELFCHECK_CLASSICAL_R_ERGAS'])} | "
                     f"{f(c['SELFCHECK_KSDIFF_CHECKERBOARD'])} ({f(c['SELFCHECK_PAN_CHECKERBOARD'])}, "
                     f"{f(c['SELFCHECK_MS_CHECKERBOARD'])}) | "
                     f"{c['SELFCHECK_PIXELS']} | {r['choice']} | {r['ksdiff']['ERGAS']:.3f} / "
                     f"{r['mtf_glp_hpm']['ERGAS']:.3f} | {verdict} | "
                     f"{r['choice_pan_only']} ({'right' if r['correct_pan_only'] else 'wrong'}) |")
    n_ok = sum(r["correct"] for r in rr)
    n_pan = sum(r["correct_pan_only"] for r in rr)
    never_worse = sum(r["auto_ERGAS"] <= r["mtf_glp_hpm"]["ERGAS"] + 1e-9 for r in rr)
    lines += ["", f"Right (or a tie within {NOISE} ERGAS) on {n_ok} of {len(rr)} cases with the guard against "
              f"max(PAN, MS); {n_pan} of {len(rr)} with the PAN-only guard. The default's ERGAS is at most "
              f"MTF-GLP-HPM's on {never_worse} of {len(rr)} cases."]
    lines += ["", "| case | injection gains fitted on the Wald sample | truth ERGAS KSDiff → calibrated |",
              "| --- | --- | --- |"]
    for r in rr:
        if "ksdiff_calibrated" in r:
            lines.append(f"| {r['name']} | {', '.join(f'{g:.2f}' for g in r['detail_gains'])} | "
                         f"{r['ksdiff']['ERGAS']:.3f} → {r['ksdiff_calibrated']['ERGAS']:.3f} |")
    lines += ["", "| full-resolution case | check: KSDiff / HPM Wald ERGAS | R-ERGAS | CB KSDiff (PAN, MS) | choice | "
              "whole scene R-ERGAS KSDiff / HPM | whole scene CB KSDiff / HPM (PAN) | PAN-only guard |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in fr:
        c = r["check"]
        f = (lambda v: "—" if v is None else f"{v:.3f}")  # noqa: E731
        lines.append(f"| {r['name']} | {f(c['SELFCHECK_KSDIFF_ERGAS'])} / {f(c['SELFCHECK_CLASSICAL_ERGAS'])} | "
                     f"{f(c['SELFCHECK_KSDIFF_R_ERGAS'])} / {f(c['SELFCHECK_CLASSICAL_R_ERGAS'])} | "
                     f"{f(c['SELFCHECK_KSDIFF_CHECKERBOARD'])} ({f(c['SELFCHECK_PAN_CHECKERBOARD'])}, "
                     f"{f(c['SELFCHECK_MS_CHECKERBOARD'])}) | {r['choice']} | "
                     f"{r['ksdiff']['R_ERGAS']:.3f} / {r['mtf_glp_hpm']['R_ERGAS']:.3f} | "
                     f"{r['ksdiff']['CB']:.3f} / {r['mtf_glp_hpm']['CB']:.3f} ({r['ksdiff']['CB_PAN']:.3f}) | "
                     f"{r['choice_pan_only']} |")
    return "\n".join(lines) + "\n"


def _box_pair(tmp: Path, name: str, pan: str, ms: str, k: int, ms_window, bands=None) -> dict:
    """PAN and MS box-averaged by ``k`` (GDAL's average, as ``gdal_translate -r average`` degrades): the reduced
    pair of ``ms_window`` (col, row, w, h, MS pixels; trimmed to multiples of ``k``) and the MS itself as reference."""
    from osgeo import gdal

    c, r, w, h = ms_window
    src = gdal.Open(ms)
    w, h = min(w, src.RasterXSize - c) // k * k, min(h, src.RasterYSize - r) // k * k
    ref = str(tmp / f"{name}_ref.tif")
    gdal.Translate(ref, ms, srcWin=[c, r, w, h], bandList=bands)
    gt = gdal.Open(ref).GetGeoTransform()
    bounds = [gt[0], gt[3] + h * gt[5], gt[0] + w * gt[1], gt[3]]
    ms_lr, pan_lr = str(tmp / f"{name}_ms.tif"), str(tmp / f"{name}_pan.tif")
    gdal.Translate(ms_lr, ref, width=w // k, height=h // k, resampleAlg="average")
    gdal.Warp(pan_lr, pan, outputBounds=bounds, xRes=gt[1], yRes=-gt[5], resampleAlg="average")
    return dict(name=name, pan=pan_lr, ms=ms_lr, ref=ref)


def box_cases(tmp: Path) -> list[dict]:
    """Cases whose MS is sharper than the MTF the sensor table assumes: Wald pairs made by block averaging (a common
    way to build reduced-resolution cases) of validation sources, and a real Sentinel-2 product whose 20 m bands are
    2 x 2 means of its 10 m bands, with the real 10 m bands as truth. ``box_gain``: a k x k block mean's gain at the
    MS Nyquist frequency, 1 / (k sin(pi / 2k)) (0.707 at ratio 2, 0.653 at ratio 4), what MTF_GAINS should say."""
    from osgeo import gdal

    wv2, l8, s2 = DATA / "wv2", DATA / "landsat8", DATA / "sentinel2"
    out = [dict(_box_pair(tmp, f"box_wv2_pair{i}", str(wv2 / f"pair{i}_pan.tif"), str(wv2 / f"pair{i}_ms.tif"), 4,
                          (0, 0, 10**6, 10**6) if i == 1 else (0, 52, 148, 96)), sensor="wv2", ratio=4)
           for i in (1, 2)]
    out.append(dict(_box_pair(tmp, "box_landsat8", str(l8 / "pan.tif"), str(l8 / "ms.tif"), 2, L8_MS_WINDOW),
                    sensor="landsat8", ratio=2))
    # Sentinel-2 (generic): the 10 m NIR band as PAN; outside its held-apart window (1421, 1435, 512, 512)
    pan10 = str(tmp / "s2_b08.tif")
    gdal.Translate(pan10, str(s2 / "s2_10m.tif"), bandList=[4], srcWin=[0, 0, 1024, 1024])
    out.append(dict(_box_pair(tmp, "box_s2_20m", pan10, str(s2 / "s2_20m.tif"), 2, (0, 0, 512, 512),
                              bands=[1, 2, 3, 7]), sensor="generic", ratio=2))
    ms20 = str(tmp / "s2_real_ms.tif")   # the product's own 20 m B02, B03, B04, B08; the truth: its 10 m bands
    gdal.Translate(ms20, str(s2 / "s2_20m.tif"), bandList=[1, 2, 3, 7], srcWin=[0, 0, 512, 512])
    truth = str(tmp / "s2_real_truth.tif")
    gdal.Translate(truth, str(s2 / "s2_10m.tif"), srcWin=[0, 0, 1024, 1024])
    out.append(dict(name="real_s2_20m_to_10m", sensor="generic", ratio=2, pan=pan10, ms=ms20, ref=truth))
    for c in out:
        c["box_gain"] = round(1.0 / (c["ratio"] * math.sin(math.pi / (2 * c["ratio"]))), 3)
    return out


def run_box(case: dict, tmp: Path) -> dict:
    """``auto`` (as it is, and told the MS's MTF gain with MTF_GAINS) and every candidate on a case, scored against
    its reference (ERGAS, the bench's assessment; as Landsat 8 at ratio 2, whose MTF ERGAS does not use)."""
    scorer = "wv2" if case["ratio"] == 4 else "landsat8"
    out = {"name": case["name"], "box_gain": case["box_gain"]}
    for label, gains in (("auto", None), ("auto_gains", [case["box_gain"]])):
        path = str(tmp / f"{case['name']}_{label}.tif")
        res = pansharpen(case["pan"], case["ms"], path, case["sensor"], "auto", mtf_gains=gains)
        out[f"{label}_choice"], out[f"{label}_ERGAS"] = res.method, assess_reduced(path, case["ref"], scorer)["ERGAS"]
    for m in ("ksdiff", *CLASSICAL_CANDIDATES):
        path = str(tmp / f"{case['name']}_{m}.tif")
        pansharpen(case["pan"], case["ms"], path, case["sensor"], m)
        out[m] = assess_reduced(path, case["ref"], scorer)["ERGAS"]
    out["best_classical"] = min(out[m] for m in CLASSICAL_CANDIDATES)
    return out


def box_markdown(rows: list[dict]) -> str:
    lines = ["| case | KSDiff | best classical | auto (choice) | auto, MTF_GAINS = the block mean's gain (choice) |",
             "| --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['name']} | {r['ksdiff']:.3f} | {r['best_classical']:.3f} | {r['auto_ERGAS']:.3f} "
                     f"({r['auto_choice']}) | {r['auto_gains_ERGAS']:.3f} ({r['auto_gains_choice']}, "
                     f"{r['box_gain']}) |")
    for label in ("auto", "auto_gains"):
        ratios = [r[f"{label}_ERGAS"] / r["best_classical"] for r in rows]
        lines.append(f"\n{label}: mean ERGAS / best classical {np.mean(ratios):.3f}; worse than the best classical "
                     f"method by more than {NOISE} ERGAS on "
                     f"{sum(r[f'{label}_ERGAS'] - r['best_classical'] > NOISE for r in rows)} of {len(rows)} cases.")
    return "\n".join(lines)


def half_pixel_cases(tmp: Path) -> list[dict]:
    """Set H (docs/VALIDATION.md, 2026-12-07, seventh session): half-pixel Wald cases (``make_half_pixel_case``:
    the reduced MS half a reduced PAN pixel off the reduced PAN, nothing resampled), each beside its aligned twin
    (``make_reduced_case``, the PAN resampled onto the MS grid), on the Landsat 8 validation rows, this script's
    Landsat 8 window, its four ``small_landsat8_*`` windows and the Landsat 7 cases (simulated PAN on the
    reference grid: the twin as ``robustness.landsat7_cases``, the half case its MS degraded half a pixel in)."""
    import robustness
    from validate_models import LANDSAT_VALIDATION

    l8 = DATA / "landsat8"
    pan, ms = str(l8 / "pan.tif"), str(l8 / "ms.tif")
    windows = [("l8val", LANDSAT_VALIDATION["ms"]), ("landsat8", L8_MS_WINDOW)]
    windows += [(f"small_landsat8_{w[0]}_{w[1]}", w)
                for w in ((0, 0, 60, 60), (100, 100, 50, 50), (200, 200, 60, 60), (280, 20, 56, 56))]
    out = []
    for name, win in windows:
        twin = wald_case(tmp, name, pan, ms, "landsat8", window=win)
        half = make_half_pixel_case(pan, ms, str(tmp), "landsat8", win, prefix=f"{name}_half")
        out += [dict(twin, kind="aligned", twin=f"{name}_half"),
                dict(name=f"{name}_half", kind="half", twin=name, sensor="landsat8", pan=half.pan, ms=half.ms,
                     ref=half.ref, ratio=half.ratio)]
    for c in robustness.landsat7_cases():
        out += _simulated_twins(c, tmp, get_sensor("landsat8").mtf_ms)   # as robustness.landsat7_cases degrades
    return out


def _simulated_twins(c, tmp: Path, mtf, sensor: str | None = None) -> list[dict]:
    """A simulated-PAN case (``robustness.Case``) as it is and as a half-pixel case: the same PAN and reference, its
    MS degraded with ``mtf`` onto a grid whose corner sits half a reduced PAN pixel inside (``half_pixel_ms``)."""
    import robustness

    p, m, r = robustness.write_case(c, tmp / c.name)
    ref = read(r)
    lr = half_pixel_ms(ref.data.astype(np.float32), mtf, c.ratio)
    x0, dx, _, y0, _, dy = ref.gt
    gt = (x0 + 0.5 * dx, dx * c.ratio, 0.0, y0 + 0.5 * dy, 0.0, dy * c.ratio)
    if c.dtype.startswith("float"):
        arr, nodata = lr.astype(c.dtype), None
    else:
        arr, nodata = np.clip(np.round(lr), 1, np.iinfo(c.dtype).max).astype(c.dtype), 0
    hm = write_geotiff(str(tmp / c.name / f"{c.name}_half_ms.tif"), arr, gt, ref.crs, nodata, None)
    base = dict(sensor=sensor or c.sensor, pan=p, ref=r, ratio=c.ratio)
    return [dict(base, name=c.name, kind="aligned", twin=f"{c.name}_half", ms=m),
            dict(base, name=f"{c.name}_half", kind="half", twin=c.name, ms=hm)]


def half_pixel_generic_cases(tmp: Path, windows: list[int] | None = None) -> list[dict]:
    """Set H2 (docs/VALIDATION.md, 2026-12-07 20:12): A's Sentinel-2 validation cases (ratio 4, SENSOR generic) and
    their half-pixel variants (``_simulated_twins``); each case gets a window-unique name."""
    import robustness

    out = []
    for win, c in robustness.validation_cases(windows):
        c.name = f"{c.name}_w{win[0][0]}_{win[0][1]}"
        out += _simulated_twins(c, tmp, c.ms_mtf, sensor="generic")
    return out


def run_half(case: dict, tmp: Path) -> dict:
    """Every classical candidate and ``auto`` on a case of set H, against the reference (truth ERGAS)."""
    out = {k: case[k] for k in ("name", "kind", "twin")}
    t = time.perf_counter()
    for m in CLASSICAL_CANDIDATES + ("auto",):
        path = str(tmp / f"{case['name']}_{m}.tif")
        try:
            res = pansharpen(case["pan"], case["ms"], path, case["sensor"], m)
        except InputError:
            if m != "bdsd_pc":
                raise
            out[m] = None   # BDSD-PC refuses a window too small for its fit: no figure
            continue
        out[m] = truth_ergas(path, case)
        if m == "auto":
            out["auto_method"] = res.method
    out["best_classical"] = min((m for m in CLASSICAL_CANDIDATES if out[m] is not None), key=lambda m: out[m])
    out["seconds"] = time.perf_counter() - t
    return out


def _cell(v: float | None) -> str:
    """A table cell: the figure, or a dash where the method refused the case."""
    return "–" if v is None else f"{v:.4f}"


def half_markdown(rows: list[dict]) -> str:
    """Each case's ERGAS per method and auto's, with a half-pixel case's ratio to its aligned twin per method."""
    names = CLASSICAL_CANDIDATES + ("auto",)
    lines = ["| case | kind | " + " | ".join(names) + " | auto's method |",
             "| --- | --- |" + " ---: |" * len(names) + " --- |"]
    by_name = {r["name"]: r for r in rows}
    for r in rows:
        lines.append(f"| {r['name']} | {r['kind']} | " + " | ".join(_cell(r[m]) for m in names)
                     + f" | {r['auto_method']} |")
        twin = by_name.get(r["twin"])
        if r["kind"] == "half" and twin is not None:
            lines.append(f"| / {twin['name']} | ratio | " + " | ".join(
                _cell(None if r[m] is None or twin[m] is None else r[m] / twin[m]) for m in names) + " | |")
    return "\n".join(lines) + "\n"


def selected(cases: list, only: str) -> list:
    """The cases named in ``only`` (comma-separated; all when empty); cases are dicts or ``robustness.Case``."""
    keep = set(filter(None, only.split(",")))
    return [c for c in cases if not keep or (c["name"] if isinstance(c, dict) else c.name) in keep]


def _study(make_cases, run, to_markdown, args) -> int:
    """Run one of the studies (``--small``, ``--generic``) case by case; print and write its table."""
    with tempfile.TemporaryDirectory(prefix="ksdiff_selfcheck_") as d:
        rows = []
        for c in selected(make_cases(Path(d)), args.only):
            rows.append(run(c, Path(d)))
            print(rows[-1], flush=True)
    md = to_markdown(rows)
    print(md)
    if args.out:
        args.out.write_text(md)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, default=float))
    return 0


def main(argv=None) -> int:
    import robustness

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--only", default="", help="comma-separated case names")
    ap.add_argument("--test-scene", action="store_true", help="also score WV2 pair 3 (report only, never tune on it)")
    ap.add_argument("--small", action="store_true",
                    help=f"the small-scene study instead: auto at the current minimum sample and at {SMALL_THRESHOLD}")
    ap.add_argument("--generic", action="store_true",
                    help="the generic-product study instead: auto without and with the nearest bundled network")
    ap.add_argument("--windows", type=robustness.window_indices, default=None,
                    help="with --generic: only the ratio-4 Sentinel-2 cases on these validation windows (e.g. 0,1,2)")
    ap.add_argument("--half-pixel", action="store_true",
                    help="set H instead: half-pixel Landsat Wald cases beside their aligned twins, every classical "
                         "method and auto; with "
                         "--windows, set H2: the Sentinel-2 validation cases on those windows and their half-pixel "
                         "variants")
    ap.add_argument("--box", action="store_true",
                    help="the sharp-MS study instead: block-averaged Wald pairs and a real Sentinel-2 product, auto "
                         "with and without MTF_GAINS")
    args = ap.parse_args(argv)
    if args.half_pixel:
        half = (half_pixel_cases if args.windows is None
                else lambda tmp: half_pixel_generic_cases(tmp, args.windows))
        return _study(half, run_half, half_markdown, args)
    if args.box:
        return _study(box_cases, run_box, box_markdown, args)
    if args.generic:
        return _study(lambda tmp: generic_cases(tmp, args.windows), run_generic, generic_markdown, args)
    if args.small:
        return _study(small_cases, run_small, small_markdown, args)
    with tempfile.TemporaryDirectory(prefix="ksdiff_selfcheck_") as d:
        tmp = Path(d)
        rr, fr = cases(tmp, args.test_scene)
        rr, fr = selected(rr, args.only), selected(fr, args.only)
        res_rr, res_fr = [], []
        for c in rr:
            res_rr.append(run_case(c, tmp))
            r = res_rr[-1]
            print(f"{r['name']}: choice {r['choice']} truth {r['truth_best']} "
                  f"(KSDiff {r['ksdiff']['ERGAS']:.3f}, HPM {r['mtf_glp_hpm']['ERGAS']:.3f}); check {r['check']}",
                  flush=True)
        for c in fr:
            res_fr.append(run_case(c, tmp, full=True))
            print(f"{res_fr[-1]['name']}: {res_fr[-1]}", flush=True)
    md = markdown(res_rr, res_fr)
    print(md)
    if args.out:
        args.out.write_text(md)
    if args.json:
        args.json.write_text(json.dumps({"reduced": res_rr, "full": res_fr}, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
