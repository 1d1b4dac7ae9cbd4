"""``python -m model_core profile``: parameters, FLOPs per PAN pixel and ONNX Runtime CPU time per tile.

Networks: each backbone, KSDiff around each backbone, and SSDiff (10 DDIM steps); 4 bands, ratio 4
(WorldView-2 layout), untrained weights (cost does not depend on the weights). FLOPs are counted by
``torch.utils.flop_counter.FlopCounterMode`` (convolutions and matrix products, 2 per multiply-add)
on a full tile, so KSDiff's per-tile token work is included. Time: the fastest of ``repeats`` ONNX Runtime
runs (the least disturbed by other processes on a shared machine; the median is reported too) of the exported
graph on one tile, all in the same process and with the same thread count.
"""
from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

import onnxruntime as ort
import torch
from torch.utils.flop_counter import FlopCounterMode
from tqdm import tqdm

from .export import count_parameters, export_onnx
from .nets import build_model

NETS = [("fusionnet", "fusionnet"), ("pannet", "pannet"), ("ksdiff", "fusionnet"), ("ksdiff", "pannet"),
        ("ssdiff", None)]


def profile(tile: int = 512, bands: int = 4, threads: int = 1, repeats: int = 5, nets=NETS,
            progress: bool = True) -> dict:
    """Parameters, FLOPs per PAN pixel and ONNX Runtime seconds per ``tile``² tile of each of ``nets``; a tqdm bar
    on stderr names the network being measured (``progress``: QA, the command printed nothing for 5 minutes)."""
    torch.set_num_threads(threads)
    pan = torch.rand(1, 1, tile, tile)
    lms = torch.rand(1, bands, tile, tile)
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        bar = tqdm(nets, desc="profile", unit="network", disable=not progress)
        for method, bb in bar:
            name = method if method != "ksdiff" else f"ksdiff+{bb}"
            bar.set_postfix_str(f"{name}: FLOPs, ONNX export, {repeats} timed runs of a {tile}² tile")
            torch.manual_seed(0)
            model = build_model(method, bands, bb or "fusionnet").eval().requires_grad_(False)
            # (FlopCounterMode's module tracker trips over parameters requiring grad under no_grad)
            with torch.no_grad(), FlopCounterMode(display=False) as fc:
                model(pan, lms)
            flops = fc.get_total_flops()
            path = export_onnx(model, Path(tmp) / f"{name}.onnx", bands)
            so = ort.SessionOptions()
            so.intra_op_num_threads = threads
            so.inter_op_num_threads = 1
            sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
            feed = {"pan": pan.numpy(), "lms": lms.numpy()}
            sess.run(None, feed)  # warm-up
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                sess.run(None, feed)
                times.append(time.perf_counter() - t0)
            rows[name] = {"parameters": count_parameters(model), "flops_per_pan_pixel": round(flops / tile ** 2),
                          "seconds_per_tile": round(min(times), 4),
                          "seconds_per_tile_median": round(statistics.median(times), 4),
                          "onnx_bytes": path.stat().st_size}
    for bb in ("fusionnet", "pannet"):
        if f"ksdiff+{bb}" not in rows or bb not in rows:
            continue
        k = rows[f"ksdiff+{bb}"]
        if "ssdiff" in rows:
            k["time_vs_ssdiff"] = round(rows["ssdiff"]["seconds_per_tile"] / k["seconds_per_tile"], 2)  # x faster
        k["time_vs_backbone"] = round(k["seconds_per_tile"] / rows[bb]["seconds_per_tile"], 3)
        k["flops_vs_backbone"] = round(k["flops_per_pan_pixel"] / rows[bb]["flops_per_pan_pixel"], 3)
    return {"tile": tile, "bands": bands, "ratio": 4, "threads": threads,
            "runtime": f"onnxruntime {ort.__version__} CPU",
            "ssdiff_steps": 10, "ksdiff_sampler_steps": 4,
            "notes": "time_vs_ssdiff = SSDiff time / KSDiff time (target >= 5); time_vs_backbone = KSDiff time / "
                     "bare backbone time (target <= 1.5)", "networks": rows}


def main(out: str | Path, tile: int = 512, threads: int = 1) -> dict:
    res = profile(tile, threads=threads)
    Path(out).write_text(json.dumps(res, indent=1) + "\n")
    return res
