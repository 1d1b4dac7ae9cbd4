"""What COREGISTER does on misregistered products whose truth is known.

The held-apart cases of the robustness suite (``scripts/robustness.py``: five Sentinel-2 kinds and the Landsat 8
corner) with their MS content moved by a known sub-pixel amount against the PAN and the reference (a product whose
MS is misregistered; the reference stays where the PAN is), fused by the plugin's engine with COREGISTER off and on
and scored against the reference. The unmoved case is the control: co-registering an aligned product must not hurt.

    python scripts/coregister_study.py [--methods mtf_glp_hpm,auto] [--out bench/coregister.json]
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import robustness  # noqa: E402

from ksdiff_qgis.engine.feedback import RecordingFeedback  # noqa: E402
from ksdiff_qgis.engine.filters import upsample  # noqa: E402
from ksdiff_qgis.engine.pipeline import pansharpen  # noqa: E402
from model_core.rasters import read  # noqa: E402

SHIFTS = ((0.0, 0.0), (1.0, 0.0), (0.6, -0.8), (-1.5, 1.0))   # (rows, cols) in PAN pixels: the MS content's move


def moved_ms(case: robustness.Case, shift: tuple[float, float]) -> robustness.Case:
    """``case`` with its MS content moved by ``shift`` PAN pixels (cubic), cast back to the case's type."""
    if shift == (0.0, 0.0):
        return case
    ms = upsample(case.ms.astype(np.float32), 1, case.ms.shape[1:], (shift[0] / case.ratio, shift[1] / case.ratio))
    if not case.dtype.startswith("float"):
        info = np.iinfo(case.dtype)
        ms = np.clip(np.round(ms), max(info.min, 1), info.max)   # 0 is the cases' nodata
    return replace(case, ms=ms.astype(case.dtype))


def moved_by(lines: list[str]) -> float | None:
    """How far the run moved the MS (PAN pixels), from its COREGISTER log line (``coregistration.moved_note``:
    "… (COREGISTER): … (PAN pixels; 1.23 in all[, measured to within about …]); …")."""
    for line in lines:
        m = re.search(r"PAN pixels; ([0-9.]+) in all\b", line) if "COREGISTER" in line else None
        if m:
            return float(m.group(1))
    return None


def common(fused: dict, case: robustness.Case) -> dict:
    """Per output: (its pixels, the case cut to them) over the rows and columns every output covers, in whole
    multiples of the ratio from the case's origin (the reference grid)."""
    k = case.ratio
    spans = {}
    for key, r in fused.items():
        r0 = round((r.transform.f - case.transform.f) / case.transform.e)
        c0 = round((r.transform.c - case.transform.c) / case.transform.a)
        spans[key] = (r0, c0, r0 + r.data.shape[1], c0 + r.data.shape[2])
    top = -(-max(s[0] for s in spans.values()) // k) * k
    left = -(-max(s[1] for s in spans.values()) // k) * k
    bottom = min(s[2] for s in spans.values()) // k * k
    right = min(s[3] for s in spans.values()) // k * k
    cut = replace(case, pan=case.pan[top:bottom, left:right], ref=case.ref[:, top:bottom, left:right])
    return {key: (r.data[:, top - spans[key][0]:bottom - spans[key][0], left - spans[key][1]:right - spans[key][1]]
                  .astype(np.float64), cut) for key, r in fused.items()}


def run(methods: list[str], folder: Path) -> list[dict]:
    rows = []
    cases = robustness.sentinel2_cases() + [robustness.landsat_case()]
    for case in tqdm(cases, desc="cases"):
        for shift in SHIFTS:
            c = moved_ms(case, shift)
            pan, ms, _ = robustness.write_case(c, folder / f"{case.name}_{shift[0]}_{shift[1]}")
            for method in methods:
                row = {"case": case.name, "shift": list(shift), "method": method}
                fused = {}
                for on in (False, True):
                    log = RecordingFeedback()
                    out = str(Path(pan).parent / f"{method}_{int(on)}.tif")
                    pansharpen(pan, ms, out, sensor=case.sensor, method=method, feedback=log, coregister=on)
                    fused["on" if on else "off"] = read(out)
                    if on:
                        row["moved_pan_px"] = moved_by(log.lines)
                # both scored on the pixels both cover (COREGISTER cuts its output to the overlap after the move)
                for key, (f, ref) in common(fused, c).items():
                    s = robustness.score_array(f, ref)
                    row[key] = {"ERGAS": s["ERGAS"], "SAM": s["SAM"]}
                rows.append(row)
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| shift (rows, cols PAN px) | method | cases | mean ERGAS off → on | mean SAM off → on | "
             "cases better on / worse by > 1 % | mean measured move (PAN px) |",
             "| --- | --- | ---: | --- | --- | --- | ---: |"]
    for shift in SHIFTS:
        for method in sorted({r["method"] for r in rows}):
            sel = [r for r in rows if tuple(r["shift"]) == shift and r["method"] == method]
            if not sel:
                continue
            e0, e1 = (np.mean([r[k]["ERGAS"] for r in sel]) for k in ("off", "on"))
            s0, s1 = (np.mean([r[k]["SAM"] for r in sel]) for k in ("off", "on"))
            better = sum(r["on"]["ERGAS"] < r["off"]["ERGAS"] for r in sel)
            worse = sum(r["on"]["ERGAS"] > 1.01 * r["off"]["ERGAS"] for r in sel)
            moves = [r["moved_pan_px"] for r in sel if r["moved_pan_px"] is not None]
            lines.append(f"| {shift} | {method} | {len(sel)} | {e0:.3f} → {e1:.3f} | {s0:.3f} → {s1:.3f} | "
                         f"{better} / {worse} | {np.mean(moves) if moves else float('nan'):.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--methods", default="mtf_glp_hpm,auto")
    ap.add_argument("--out", default=str(ROOT / "bench" / "coregister.json"))
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        rows = run(a.methods.split(","), Path(tmp))
    Path(a.out).write_text(json.dumps({"shifts": SHIFTS, "rows": rows}, indent=1))
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
