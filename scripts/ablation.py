"""Kernel-prior ablation of a KSDiff checkpoint on the robustness suite's cases (see model_core/ablation.py).

    python scripts/ablation.py [--checkpoint runs/rr4_ksdiff_adaptive/fullres.pt] [--out bench/ablation.json]

Without ``--checkpoint``: the run of the bundled WorldView-2 model's config (what ``make train SENSOR=wv2`` trains);
skipped with a message when that run is not on this machine.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from robustness import build_cases  # noqa: E402

from ksdiff_qgis.engine.filters import upsample  # noqa: E402
from model_core.ablation import kernel_ablation  # noqa: E402
from model_core.config import final_checkpoint, load_config  # noqa: E402
from model_core.train import model_from_checkpoint  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--checkpoint", default=None, help="default: the bundled wv2 model's run")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "ablation.json")
    ap.add_argument("--tile", type=int, default=64)
    a = ap.parse_args(argv)
    if a.checkpoint is None:
        a.checkpoint = str(final_checkpoint(load_config(sensor="wv2")))
        if not Path(a.checkpoint).exists():
            print(f"ablation: no {a.checkpoint} (make train SENSOR=wv2): kernel ablation skipped")
            return 0
    torch.set_num_threads(1)
    model, ck = model_from_checkpoint(a.checkpoint)
    cases = []
    for c in build_cases():
        if c.ratio != model.ratio or c.ms.shape[0] != model.bands:
            continue
        ms = c.ms.astype(np.float32)
        top = float(np.percentile(c.ref, 99.5)) or 1.0   # the tile normalisation makes the scale irrelevant
        lms = upsample(ms, c.ratio, c.ref.shape[-2:]) / top
        cases.append((c.name, c.pan.astype(np.float32) / top, lms, c.ref.astype(np.float32) / top, c.ratio))
    res = kernel_ablation(model, cases, a.tile)
    res["checkpoint"] = a.checkpoint
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps(res["mean_ERGAS"]), res["core_tile_variation_share"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
