"""What target-adaptive fine-tuning buys (issue 12): ``python -m model_core adapt`` on each case's own input.

For every case the degraded PAN and MS — what a user has, never the reference — go to ``model_core.adapt``,
starting from the bundled model's weights (``model_core.weights``); the exported ONNX is fused through the plugin's
engine (METHOD=ksdiff, float32) and scored against the reference beside the bundled model forced and every classical
method. Rules and decisions: docs/VALIDATION.md (2026-12-05, 15:35 and 16:29 UTC). Reduced resolution only: look
at an adapted model at 1:1 too (``scripts/crops.py --model adapted=DIR``).

    python scripts/adapt_study.py --set validation|suite [--steps 200] [--lr 1e-4] [--jobs 2]
                                  [--out bench/adapt_validation.json] [--md docs/ADAPT.md]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from tqdm import tqdm

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import robustness  # noqa: E402

from model_core.weights import bundled_checkpoint  # noqa: E402

ADAPTED = "ksdiff_adapted"


def cases(which: str) -> list[robustness.Case]:
    if which == "validation":
        return robustness.wv2_cases("pair2") + robustness.sentinel2_cases(robustness.VALIDATION_WINDOWS[0])
    return robustness.build_cases()


def run_case(case: robustness.Case, folder: Path, steps: int, lr: float) -> dict:
    """Bundled model forced, every classical method, and the model adapted on the case's own PAN + MS."""
    from model_core.adapt import adapt

    folder.mkdir(parents=True, exist_ok=True)
    res = robustness.run_case(case, list(robustness.CLASSICAL) + ["ksdiff"], folder, None)
    pan, ms = (str(folder / f"{case.name}_{k}.tif") for k in ("pan", "ms"))
    models = folder / f"{case.name}_adapted"
    models.mkdir()
    t0 = time.perf_counter()
    adapt(bundled_checkpoint(case.sensor), pan, ms, models / f"{case.sensor}.onnx", sensor=case.sensor, steps=steps,
          lr=lr, progress=False, keep_worse=True)   # the study measures what adapt buys, a loss included
    seconds = round(time.perf_counter() - t0, 1)
    res["methods"][ADAPTED] = robustness.run_case(case, ["ksdiff"], folder, models)["methods"]["ksdiff"]
    res["methods"][ADAPTED]["adapt_seconds"] = seconds
    return res


def summary(results: list[dict]) -> dict:
    rows = []
    for r in results:
        m = r["methods"]
        best = min((m[k]["ERGAS"], k) for k in robustness.CLASSICAL if "ERGAS" in m.get(k, {}))
        rows.append({"case": r["case"], "best_classical": best[1], "best_classical_ERGAS": best[0],
                     "ksdiff_ERGAS": m["ksdiff"]["ERGAS"], "adapted_ERGAS": m[ADAPTED]["ERGAS"],
                     "ksdiff_SAM": m["ksdiff"]["SAM"], "adapted_SAM": m[ADAPTED]["SAM"],
                     "adapt_seconds": m[ADAPTED]["adapt_seconds"]})
    mean = lambda xs: round(sum(xs) / len(xs), 4)  # noqa: E731
    return {"rows": rows,
            "adapted_over_bundled": mean([r["adapted_ERGAS"] / r["ksdiff_ERGAS"] for r in rows]),
            "adapted_over_best_classical": mean([r["adapted_ERGAS"] / r["best_classical_ERGAS"] for r in rows]),
            "bundled_over_best_classical": mean([r["ksdiff_ERGAS"] / r["best_classical_ERGAS"] for r in rows]),
            "adapted_better_on": sum(r["adapted_ERGAS"] < r["ksdiff_ERGAS"] for r in rows), "cases": len(rows)}


def markdown(which: str, s: dict, note: str) -> list[str]:
    lines = [f"## {which.capitalize()} cases", "", note, "",
             "| case | best classical | KSDiff bundled (SAM) | KSDiff adapted (SAM) | adapted / bundled | adapt s |",
             "| --- | --- | ---: | ---: | ---: | ---: |"]
    for r in s["rows"]:
        lines.append(f"| {r['case']} | {r['best_classical']} {r['best_classical_ERGAS']:.3f} | "
                     f"{r['ksdiff_ERGAS']:.3f} ({r['ksdiff_SAM']:.2f}) | {r['adapted_ERGAS']:.3f} "
                     f"({r['adapted_SAM']:.2f}) | {r['adapted_ERGAS'] / r['ksdiff_ERGAS']:.3f} | "
                     f"{r['adapt_seconds']:.0f} |")
    lines += ["", f"Mean adapted / bundled **{s['adapted_over_bundled']:.3f}** (better on {s['adapted_better_on']} of "
              f"{s['cases']}); adapted / best classical {s['adapted_over_best_classical']:.3f}, bundled / best "
              f"classical {s['bundled_over_best_classical']:.3f}.", ""]
    return lines


def write_markdown(path: Path, sections: dict[str, list[str]]) -> None:
    head = ["# Target-adaptive fine-tuning (`python -m model_core adapt`)", "",
            "Written by `scripts/adapt_study.py`: each case's degraded PAN and MS (never its reference) go to `adapt`, "
            "starting from the bundled model's checkpoint; the exported model is fused through the plugin's engine "
            "(METHOD=ksdiff, float32) and scored by ERGAS (SAM in degrees) against the reference. Rule: "
            "docs/VALIDATION.md (2026-12-05, 15:35 and 16:29 UTC).", "",
            "Since 2026-12-06 `adapt` trains at the value scale the plugin divides the scene by and writes it on the "
            "card (`adapt.scene_scale`: the scene's NBITS, 8-bit data's 255, else the sensor's unless the scene's "
            "values exceed it; the 8-bit cases below were adapted at 2047), `--sensor` of a sensor without a bundled "
            "model starts from the one the plugin serves it with (Pléiades: QuickBird), and the card keeps the base "
            "model's metrics as `training.base.metrics`.", ""]
    body = [ln for key in ("validation", "suite") for ln in sections.get(key, [])]
    path.write_text("\n".join(head + body))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", choices=("validation", "suite"), default="validation")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--cases", help="comma-separated case names (default: all of the set)")
    ap.add_argument("--jobs", type=int, default=1, help="cases adapted at once (one core each)")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--md", type=Path, default=ROOT / "docs" / "ADAPT.md")
    a = ap.parse_args(argv)
    out = a.out or ROOT / "bench" / f"adapt_{a.set}.json"
    todo = [c for c in cases(a.set) if not a.cases or c.name in a.cases.split(",")]
    with tempfile.TemporaryDirectory(prefix="ksdiff_adapt_study_") as tmp, \
            ProcessPoolExecutor(max_workers=a.jobs) as pool:   # adapt trains on one core: one case per core
        jobs = [pool.submit(run_case, case, Path(tmp) / case.name, a.steps, a.lr) for case in todo]
        results = [job.result() for job in tqdm(jobs, desc=f"adapt {a.set}")]
    s = summary(results)
    note = (f"{len(results)} cases; adapt {a.steps} steps, lr {a.lr:g}; "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"note": note, "set": a.set, "steps": a.steps, "lr": a.lr, "summary": s,
                               "results": results}, indent=1) + "\n")
    sections = {}
    for which in ("validation", "suite"):
        f = out if which == a.set else out.with_name(f"adapt_{which}.json")
        if f.exists():
            d = json.loads(f.read_text())
            sections[which] = markdown(which, d["summary"], d["note"])
    write_markdown(a.md, sections)
    print(json.dumps({k: v for k, v in s.items() if k != "rows"}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
