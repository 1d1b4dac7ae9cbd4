"""A 1:1 look at full-resolution output: PAN | MTF-GLP-HPM | KSDiff on a crop of a real pair, 3x nearest.

    python scripts/crops.py [--pair pair3] [--size 128] [--out docs/img/pair3_crop_pan_hpm_ksdiff_3x.png]
    python scripts/crops.py --pan ksdiff_qgis/resources/sample/demo_pan.tif \
                            --ms ksdiff_qgis/resources/sample/demo_ms.tif --size 160 --zoom 2 \
                            --out docs/img/demo_crop_hpm_vs_ksdiff.png       # the demo scene
    python scripts/crops.py --precision --out docs/img/int8_vs_fp32_crop.png     # KSDiff float32 | int8 | difference
    python scripts/crops.py --methods mtf_glp_hpm,mtf_glp_fs,ksdiff --out F.png      # any methods beside the PAN
    python scripts/crops.py --pair pair2 --methods ksdiff --model cand=DIR --out F.png  # + a candidate model's KSDiff
    python scripts/crops.py --sensor landsat8 --pan L8_PAN --ms L8_MS --zoom 4 --out F.png    # another sensor
    python scripts/crops.py --pair pair2 --at 320,140 --size 160 --noise-pull \
                            --out docs/img/pair2_noise_pull_1to1.png    # KSDiff without | with the noise pull

Reduced-resolution scores do not show what a user sees at 1:1 (one-pixel grids, halos, colour speckle).
The crop is the ``size`` x ``size`` PAN window with the most edge energy in the pair (roofs, roads): a
window of the pair with context around it is fused by the plugin's engine with both methods (KSDiff forced,
the bundled model), then the central crop is shown with the same per-band stretch for both fusions and
enlarged with nearest neighbour so single pixels stay visible. Writes the PNG and prints the crop's
checkerboard response per band (``engine.metrics``) against the PAN's. With ``--precision``: PAN | KSDiff in
float32 | KSDiff in int8 (the CPU default) | their largest band difference (0-20 DN), and the difference's figures.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ksdiff_qgis.engine import metrics as M  # noqa: E402
from ksdiff_qgis.engine import pipeline  # noqa: E402
from ksdiff_qgis.engine.learned import DEFAULT_PRECISION  # noqa: E402
from ksdiff_qgis.engine.pipeline import pansharpen  # noqa: E402
from ksdiff_qgis.engine.sensors import get_sensor  # noqa: E402
from model_core.datacache import data_dir  # noqa: E402
from model_core.rasters import crop, read  # noqa: E402

CONTEXT = 64   # PAN pixels fused around the crop (tiles and filters see real neighbours)


def context_for(shape: tuple[int, int], size: int, ratio: int = 4) -> int:
    """PAN pixels of context around a ``size`` crop: ``CONTEXT``, less on a scene too small for it (a multiple of the
    ratio, so the crop starts an MS pixel); a scene smaller than the crop is refused."""
    room = (min(shape) - size) // 2 // ratio * ratio
    if room < 0:
        raise SystemExit(f"crops: the PAN ({shape[1]} x {shape[0]}) is smaller than the {size}-pixel crop; "
                         "give a smaller --size")
    return min(CONTEXT, room)


def busiest_window(pan: np.ndarray, size: int, ratio: int = 4, context: int = CONTEXT) -> tuple[int, int]:
    """(row, col) of the ``size`` window (on the MS grid) with the largest mean PAN gradient, ``context`` pixels
    away from the borders."""
    g = np.abs(np.diff(pan, axis=0))[:, :-1] + np.abs(np.diff(pan, axis=1))[:-1]
    step = max(size // 2, 1)
    best, where = -1.0, (context, context)
    for r in range(context, g.shape[0] - size - context, step):
        for c in range(context, g.shape[1] - size - context, step):
            e = float(g[r:r + size, c:c + size].mean())
            if e > best:
                best, where = e, (r // ratio * ratio, c // ratio * ratio)
    return where


def stretch(img: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return np.clip((img - lo[:, None, None]) / (hi - lo)[:, None, None], 0, 1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pair", default="pair3", help="WorldView-2 pair of make data's cache")
    ap.add_argument("--pan", type=Path, help="another PAN (with --ms): e.g. the demo scene")
    ap.add_argument("--ms", type=Path)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--zoom", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "pair3_crop_pan_hpm_ksdiff_3x.png")
    ap.add_argument("--precision", action="store_true", help="KSDiff float32 against its int8 variant")
    ap.add_argument("--methods", default="mtf_glp_hpm,ksdiff", help="comma-separated methods shown beside the PAN")
    ap.add_argument("--model", action="append", default=[], metavar="NAME=DIR",
                    help="also KSDiff with the candidate model DIR/<sensor>.onnx (python -m model_core export); "
                         "repeatable")
    ap.add_argument("--at", help="ROW,COL: the crop's top-left PAN pixel instead of the busiest window")
    ap.add_argument("--noise-pull", action="store_true",
                    help="MTF-GLP-HPM | KSDiff without the noise pull | KSDiff (engine/noise.py)")
    ap.add_argument("--sensor", default="wv2", help="the pair's sensor (with --pan/--ms for another sensor's pair)")
    a = ap.parse_args(argv)
    ratio = get_sensor(a.sensor).ratio
    root = data_dir() / "wv2"
    pan_path, ms_path = (a.pan, a.ms) if a.pan else (root / f"{a.pair}_pan.tif", root / f"{a.pair}_ms.tif")
    full_pan = read(str(pan_path)).data[0].astype(np.float32)
    context = context_for(full_pan.shape, a.size, ratio)
    if a.at:
        r, c = (int(v) // ratio * ratio for v in a.at.split(","))
        rows, cols = (n - a.size - context for n in full_pan.shape)
        if not (context <= r <= rows and context <= c <= cols):
            raise SystemExit(f"crops: --at {a.at} leaves no {context}-pixel context inside the PAN")
    else:
        r, c = busiest_window(full_pan, a.size, ratio, context)
    side = a.size + 2 * context
    with tempfile.TemporaryDirectory(prefix="ksdiff_crop_") as tmp:
        t = Path(tmp)
        pan = crop(str(pan_path), str(t / "pan.tif"), (c - context, r - context, side, side))
        ms = crop(str(ms_path), str(t / "ms.tif"), ((c - context) // ratio, (r - context) // ratio,
                                                    side // ratio, side // ratio))
        fused = {}
        runs = ({"ksdiff@fp32": ("ksdiff", "fp32", None), "ksdiff@int8": ("ksdiff", "int8", None)} if a.precision
                else {m: (m, DEFAULT_PRECISION, None) for m in a.methods.split(",")})
        if a.noise_pull:
            runs = {"mtf_glp_hpm": ("mtf_glp_hpm", DEFAULT_PRECISION, None),
                    "ksdiff without the pull": ("ksdiff", DEFAULT_PRECISION, None),
                    "ksdiff": ("ksdiff", DEFAULT_PRECISION, None)}
        for spec in a.model:
            name, folder = spec.split("=", 1)
            runs[name] = ("ksdiff", DEFAULT_PRECISION, str(Path(folder) / f"{a.sensor}.onnx"))
        for i, (key, (method, precision, model)) in enumerate(runs.items()):
            out = str(t / f"{i}_{method}_{precision}.tif")
            pipeline.NOISE_PULL = key != "ksdiff without the pull"
            pansharpen(pan, ms, out, sensor=a.sensor, method=method, precision=precision, model_path=model)
            fused[key] = read(out).data.astype(np.float32)
        pipeline.NOISE_PULL = True
        p = read(pan).data[0].astype(np.float32)
    win = (slice(context, context + a.size), slice(context, context + a.size))
    p = p[win]
    rgb = {k: v[[2, 1, 0]][(slice(None), *win)] for k, v in fused.items()}   # B, G, R, NIR -> R, G, B
    first, second = list(fused)[:2]
    lo, hi = np.percentile(rgb[first], 1, axis=(1, 2)), np.percentile(rgb[first], 99, axis=(1, 2))
    pl, ph = np.percentile(p, [1, 99])
    panels = [np.repeat(np.clip((p - pl) / (ph - pl), 0, 1)[..., None], 3, axis=2)]
    panels += [stretch(rgb[k], lo, hi).transpose(1, 2, 0) for k in fused]
    if a.precision:
        diff = np.abs(fused[second] - fused[first])
        print(f"|int8 - float32| over the fused window: mean {diff.mean():.2f} DN (mean value "
              f"{fused[first].mean():.0f}), 99th percentile {np.percentile(diff, 99):.1f}, max {diff.max():.0f}")
        panels.append(plt.get_cmap("magma")(np.clip(diff[(slice(None), *win)].max(axis=0) / 20, 0, 1))[..., :3])
    gap = np.ones((a.size, 4, 3))
    strip = np.concatenate([x for panel in panels for x in (panel, gap)][:-1], axis=1)
    strip = np.repeat(np.repeat(strip, a.zoom, axis=0), a.zoom, axis=1)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    plt.imsave(a.out, strip)
    cb = {k: np.round(M.checkerboard_response(v[(slice(None), *win)]), 3).tolist() for k, v in fused.items()}
    print(f"{a.out}: PAN window row {r}, col {c}; checkerboard PAN {M.checkerboard_response(p[None])[0]:.3f}, "
          + ", ".join(f"{k} {v}" for k, v in cb.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
