"""Is the kernel prior alive? Fuse tiles with each tile's own generated kernels, with the kernels replaced
by their mean over all tiles, and with no kernel update at all (the backbone's static weights).

If the mean kernels do as well as the tile's own, KSDiff is its backbone plus a fixed branch (issue 12).
"""
from __future__ import annotations

import numpy as np
import torch

from ksdiff_qgis.engine import metrics

from .nets.modconv import Modulation


def _tiles(pan: np.ndarray, lms: np.ndarray, size: int):
    h, w = pan.shape
    for r in range(0, h - size + 1, size):
        for c in range(0, w - size + 1, size):
            yield r, c


@torch.no_grad()
def kernel_ablation(model, cases: list[tuple[str, np.ndarray, np.ndarray, np.ndarray, int]], tile: int = 64) -> dict:
    """ERGAS per case for live / mean / no kernel updates. ``cases``: (name, pan, lms, gt, ratio), any scale."""
    model.eval()
    kgen = model.kgen
    original = kgen.forward
    recorded: list[tuple[list[Modulation], torch.Tensor | None]] = []

    def record(z, struct):
        out = original(z, struct)
        recorded.append(out)
        return out

    def fuse_all(forward) -> dict[str, np.ndarray]:
        kgen.forward = forward
        out = {}
        try:
            for name, pan, lms, _gt, _ in cases:
                f = np.array(lms, dtype=np.float32, copy=True)
                for r, c in _tiles(pan, lms, tile):
                    p = torch.from_numpy(np.ascontiguousarray(pan[None, None, r : r + tile, c : c + tile],
                                                              dtype=np.float32))
                    m = torch.from_numpy(np.ascontiguousarray(lms[None, :, r : r + tile, c : c + tile],
                                                              dtype=np.float32))
                    f[:, r : r + tile, c : c + tile] = model(p, m)[0].numpy()
                out[name] = f
        finally:
            kgen.forward = original
        return out

    live = fuse_all(record)
    n = len(recorded)
    layers = len(recorded[0][0])
    mean_mods = [Modulation(*(torch.stack([getattr(recorded[i][0][l], k) for i in range(n)]).mean(0)
                              for k in ("core", "r_out", "r_in", "r_sp"))) for l in range(layers)]
    gains = [g for _, g in recorded if g is not None]
    mean_gain = torch.stack(gains).mean(0) if gains else None

    def fixed(z, struct, mods=mean_mods, gain=mean_gain):
        return mods, gain

    def none(z, struct):
        zero = [Modulation(torch.zeros_like(m.core), m.r_out, m.r_in, m.r_sp) for m in mean_mods]
        return zero, None if mean_gain is None else torch.zeros_like(mean_gain)

    mean = fuse_all(fixed)
    static = fuse_all(none)
    res = {}
    for name, pan, _lms, gt, ratio in cases:
        # the same pixels for all three: the tiled part of the case
        hh, ww = pan.shape[0] // tile * tile, pan.shape[1] // tile * tile
        ref = gt[:, :hh, :ww].astype(np.float64)
        res[name] = {k: round(metrics.ergas(v[name][:, :hh, :ww].astype(np.float64), ref, ratio), 4)
                     for k, v in (("live", live), ("mean_kernels", mean), ("no_update", static))}
    core = torch.stack([torch.stack([m.core for m in mods]) for mods, _ in recorded])   # (tiles, L, N=1, ...)
    spread = float(core.std(0).norm() / (core.mean(0).norm() + core.std(0).norm() + 1e-12))
    return {"tiles": n, "per_case": res, "core_tile_variation_share": round(spread, 4),
            "mean_ERGAS": {k: round(float(np.mean([r[k] for r in res.values()])), 4)
                           for k in ("live", "mean_kernels", "no_update")}}
