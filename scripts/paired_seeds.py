"""KSDiff against its bare backbone over paired seeds (issue 12): same data, normalisation and stages.

    python scripts/paired_seeds.py [--recipes adaptive,hpm] [--seeds 0,1,2] [--out bench/seeds.json]
                                   [--md docs/SEEDS.md]

The runs come from ``python -m model_core train --config rr4_ksdiff_<recipe>.yaml --seed N`` and the same
with ``rr4_fusionnet_<recipe>.yaml`` (seed 0 may be the run folder without a suffix; recipes: ``adaptive``,
``hpm`` = the same with the in-graph HPM prefusion, ``hpm_step1`` = that trained also on the output after the plugin's
consistency step, ``hpm_step1_prered`` = that with a fifth of its batches one Wald reduction further down,
``hpm_step1_prered_trval`` = that refitted on WorldView-2 pairs 1 and 2, ``hpm_step1_prered_trval_warm`` = that
started from the trained bare backbone of the same seed, against that backbone continued for the same steps: the
bundled 4-band recipe; earlier recipes stay in ``--out`` with their dates). For every seed with both runs finished,
both final checkpoints are exported as wv2/qb/gf2 models into a temporary folder and scored forced
(``METHOD=ksdiff`` with that model) by ``scripts/robustness.py`` on the suite's ratio-4 cases; the KSDiff checkpoint
also gets the kernel-prior ablation of ``scripts/ablation.py`` (own / mean / no kernels).
The verdict follows the issue: KSDiff wins only if its seed-mean is lower by more than the seed spread
(max - min over seeds, the larger of the two networks').
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

ROOT = Path(__file__).resolve().parent.parent
NETWORKS = ("ksdiff", "fusionnet")
SENSORS = ("wv2", "qb", "gf2")   # the sensors the ratio-4 cases are fused as
RATIO4_CASES = ("wv2_pair3", "wv2_pair3_8bit", "wv2_pair3_sharp_pan", "s2_fit_pan_11bit", "s2_visible_pan_refl16",
                "s2_nir_pan_float", "s2_flat_pan_8bit", "s2_20m_fit_pan_10bit")


def checkpoint(run: str, seed: int) -> Path:
    """The final checkpoint of a config's run for ``seed`` (``train --seed N`` adds a ``_seedN`` folder suffix;
    seed 0 may also be the config's own run folder, trained without ``--seed``)."""
    suffixed = ROOT / "runs" / f"{run}_seed{seed}" / "fullres.pt"
    own = ROOT / "runs" / run / "fullres.pt"
    return own if seed == 0 and own.exists() and not suffixed.exists() else suffixed


def _python(*args: str) -> None:
    subprocess.run([sys.executable, *args], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)


def suite_scores(ck: Path, folder: Path) -> dict[str, float]:
    """Forced-model ERGAS per ratio-4 case of the checkpoint, exported for every 4-band ratio-4 sensor."""
    for sensor in SENSORS:
        _python("-m", "model_core", "export", "--checkpoint", str(ck), "--out", str(folder / f"{sensor}.onnx"),
                "--as-sensor", sensor, "--no-evaluate")
    out = folder / "robustness.json"
    _python("scripts/robustness.py", "--methods", "ksdiff", "--models", str(folder), "--cases",
            ",".join(RATIO4_CASES), "--out", str(out), "--md", str(folder / "robustness.md"))
    results = json.loads(out.read_text())["results"]
    return {r["case"]: r["methods"]["ksdiff"].get("ERGAS", float("nan")) for r in results}


def ablation(ck: Path, folder: Path) -> dict[str, float]:
    out = folder / "ablation.json"
    _python("scripts/ablation.py", "--checkpoint", str(ck), "--out", str(out))
    return json.loads(out.read_text())["mean_ERGAS"]


def verdict(means: dict[str, list[float]]) -> dict:
    """Seed means, spreads and whether KSDiff wins by more than the seed spread."""
    ks, fu = np.asarray(means["ksdiff"]), np.asarray(means["fusionnet"])
    spread = float(max(np.ptp(ks), np.ptp(fu)))
    margin = float(fu.mean() - ks.mean())
    return {"ksdiff_mean": round(float(ks.mean()), 4), "fusionnet_mean": round(float(fu.mean()), 4),
            "ksdiff_spread": round(float(np.ptp(ks)), 4), "fusionnet_spread": round(float(np.ptp(fu)), 4),
            "margin": round(margin, 4), "seeds_ksdiff_ahead": int((ks < fu).sum()),
            "ksdiff_wins_beyond_spread": bool(margin > spread)}


def markdown(results: dict) -> str:
    lines = ["# KSDiff against its bare backbone, paired seeds", "",
             f"Written by `scripts/paired_seeds.py` (last run {results['date_utc']}; each recipe says when it was "
             "measured, and keeps its figures when its runs are gone). Forced model, ERGAS on the robustness "
             "suite's eight ratio-4 held-apart cases (`scripts/robustness.py`); per recipe, configs "
             "`rr4_ksdiff_<recipe>.yaml` and `rr4_fusionnet_<recipe>.yaml` (same data, per-tile normalisation, "
             "stages and budget). Ablation: the same KSDiff checkpoint with each tile's own kernels, with the "
             "kernels replaced by their mean over tiles (a fixed low-rank branch of the same size) and with no "
             "kernel update (`scripts/ablation.py`, mean ERGAS over 64² tiles of the same cases).", ""]
    for recipe, res in results["recipes"].items():
        lines += _recipe_markdown(recipe, res)
    return "\n".join(lines) + "\n"


def _recipe_markdown(recipe: str, res: dict) -> list[str]:
    lines = [f"## Recipe `{recipe}`", "", f"Measured {res.get('date_utc', '?')}.", "",
             "| seed | KSDiff suite mean | FusionNet suite mean | KSDiff − FusionNet "
             "| ablation: own / mean / no kernels |",
             "| --- | ---: | ---: | ---: | --- |"]
    for s in res["seeds"]:
        a = s.get("ablation") or {}
        abl = " / ".join(f"{a[k]:.3f}" for k in ("live", "mean_kernels", "no_update") if k in a) or "—"
        lines.append(f"| {s['seed']} | {s['ksdiff_mean']:.3f} | {s['fusionnet_mean']:.3f} | "
                     f"{s['ksdiff_mean'] - s['fusionnet_mean']:+.3f} | {abl} |")
    v = res["verdict"]
    lines += ["", f"Means over seeds: KSDiff {v['ksdiff_mean']:.3f} (spread {v['ksdiff_spread']:.3f}), FusionNet "
                  f"{v['fusionnet_mean']:.3f} (spread {v['fusionnet_spread']:.3f}); KSDiff ahead in "
                  f"{v['seeds_ksdiff_ahead']} of {len(res['seeds'])} seeds by {v['margin']:+.3f} on the mean. "
                  f"Wins by more than the seed spread: **{'yes' if v['ksdiff_wins_beyond_spread'] else 'no'}**.", "",
              "Per case (ERGAS, KSDiff / FusionNet):", "",
              "| case | " + " | ".join(f"seed {s['seed']}" for s in res["seeds"]) + " |",
              "| --- | " + " | ".join("---" for _ in res["seeds"]) + " |"]
    for case in RATIO4_CASES:
        nan = float("nan")
        cells = [f"{s['cases']['ksdiff'].get(case, nan):.3f} / {s['cases']['fusionnet'].get(case, nan):.3f}"
                 for s in res["seeds"]]
        lines.append(f"| {case} | " + " | ".join(cells) + " |")
    return lines + [""]


def run_recipe(recipe: str, seeds: list[int], with_ablation: bool) -> dict | None:
    """Every figure of one recipe over the seeds trained for both networks (None if there are none)."""
    runs = {net: f"rr4_{net}_{recipe}" for net in NETWORKS}
    ready = [s for s in seeds if all(checkpoint(run, s).exists() for run in runs.values())]
    missing = sorted(set(seeds) - set(ready))
    if missing:
        print(f"paired_seeds: {recipe} seeds {missing} not trained for both networks; skipped", file=sys.stderr)
    if not ready:
        return None
    rows = []
    for seed in tqdm(ready, desc=f"{recipe} seeds"):
        row: dict = {"seed": seed, "cases": {}}
        for net, run in runs.items():
            with tempfile.TemporaryDirectory(prefix=f"ksdiff_seed{seed}_{net}_") as tmp:
                ck = checkpoint(run, seed)
                row["cases"][net] = suite_scores(ck, Path(tmp))
                row[f"{net}_mean"] = round(float(np.mean(list(row["cases"][net].values()))), 4)
                if net == "ksdiff" and with_ablation:
                    row["ablation"] = ablation(ck, Path(tmp))
        rows.append(row)
    return {"seeds": rows, "verdict": verdict({net: [r[f"{net}_mean"] for r in rows] for net in NETWORKS})}


def earlier_recipes(path: Path) -> dict:
    """Recipes an earlier run of this script measured (its ``--out``): kept with their own date, so a recipe whose
    runs are gone (a new machine) keeps its figures beside the ones measured now."""
    if not path.exists():
        return {}
    old = json.loads(path.read_text())
    when = old.get("date_utc", "?")
    return {r: {**v, "date_utc": v.get("date_utc", when)} for r, v in old.get("recipes", {}).items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipes", default="adaptive,hpm")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "seeds.json")
    ap.add_argument("--md", type=Path, default=ROOT / "docs" / "SEEDS.md")
    ap.add_argument("--no-ablation", action="store_true")
    a = ap.parse_args(argv)
    seeds = [int(s) for s in a.seeds.split(",")]
    now = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    recipes = {r: run_recipe(r, seeds, not a.no_ablation) for r in a.recipes.split(",")}
    recipes = {r: {**v, "date_utc": now} for r, v in recipes.items() if v is not None}
    if not recipes:
        return 1
    res = {"date_utc": now, "cases": list(RATIO4_CASES), "recipes": {**earlier_recipes(a.out), **recipes}}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(res, indent=1) + "\n")
    a.md.parent.mkdir(parents=True, exist_ok=True)
    a.md.write_text(markdown(res))
    print(json.dumps({r: v["verdict"] for r, v in recipes.items()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
