"""Where a tile's PAN detail is noise, a learned model's output is taken back towards MTF-GLP-HPM's.

Networks trained at reduced resolution learn to amplify a blurred PAN's detail; the real PAN's finest detail is
partly sensor noise, which they then amplify too: on WorldView-2 pair 2's water KSDiff's band standard deviation was
16-19 DN where MTF-GLP-HPM's was 9-13 and the MS's 4-6 (QA, 2026-12-06). Per pixel, the network's departure from
MTF-GLP-HPM is kept in proportion to how much of the PAN's local detail is signal rather than noise (a Wiener
factor, 1 - (WIENER_THRESHOLD x noise)^2 / local detail variance): textured areas keep the network's output, flat
noisy areas (water, shadow, clear sky) get MTF-GLP-HPM's.

The PAN's noise is read where the scene is flattest, once per scene on the scene statistics' sample: the median
absolute 3 x 3 Laplacian (Immerkaer's mask, which cancels planes and gradients; / 6, its gain on white noise) over the
16 x 16 blocks whose mean gradient is in the sample's lowest quartile (water, shadow, fields), / 0.6745. On white
noise alone that quartile is the quieter blocks, read ~8 % low; nothing is calibrated but the share's threshold.
Donoho's median |HH| over every pixel, used before, reads a sharp PAN's texture as noise too (13.3 DN on WorldView-2
pair 1's sample, 8.2 on pair 2's, where their flattest blocks read 8.4 and 4.9) and reads 0 on a clean 8-bit PAN
whose noise is under its step (a median of integer halves; docs/VALIDATION.md, 2026-12-06, seventh session).

Only delivered tiles are pulled: the self-check decides on the network alone (at reduced resolution the degraded
PAN's noise is filtered away with its detail, so the pull could only add its estimator's scatter to that decision;
docs/VALIDATION.md, 2026-12-06).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import classical
from .filters import convolve_axis

WINDOW = 7   # PAN pixels per side of the local detail variance
MAD_TO_SIGMA = 0.6745   # median absolute deviation of a unit normal
BLOCK = 16   # PAN pixels per side of a block ranked by its gradient
FLAT_PERCENT = 25   # the noise is read on the blocks whose mean gradient is in this lowest share of the sample's
# The share's noise threshold: detail up to 1.5 x the noise's standard deviation still counts as noise (the flattest
# blocks read less noise than Donoho's estimate did, which also counted texture; 1.5 was fixed before any figure to
# keep pair 2's water near where that pull put it; docs/VALIDATION.md, 2026-12-06, seventh session).
WIENER_THRESHOLD = 1.5


class Detail(NamedTuple):
    """A PAN window's Laplacian detail for ``pooled_sigma``."""
    blocks: np.ndarray   # (n, 1 + BLOCK^2) float32: each fully valid block's mean gradient, then its |L| / 6
    loose: np.ndarray   # |L| / 6 of the valid pixels outside those blocks (flat)


def laplacian_detail(pan: np.ndarray, valid: np.ndarray | None = None) -> Detail:
    """|L| / 6, L the 3 x 3 Laplacian with Immerkaer's mask [[1, -2, 1], [-2, 4, -2], [1, -2, 1]] (its response to
    white noise of sigma has standard deviation 6 sigma; planes and gradients give 0), at the pixels whose 3 x 3
    neighbourhood is ``valid`` (a filled hole has no noise), grouped by BLOCK x BLOCK blocks."""
    p = pan.astype(np.float32, copy=False)
    h, w = p.shape[0] - 2, p.shape[1] - 2
    if h < 1 or w < 1:
        return Detail(np.empty((0, 1 + BLOCK * BLOCK), np.float32), np.empty(0, np.float32))
    c = p[1:-1, 1:-1]
    lap = p[:-2, :-2] + p[:-2, 2:] + p[2:, :-2] + p[2:, 2:]
    lap -= 2 * (p[:-2, 1:-1] + p[1:-1, :-2] + p[1:-1, 2:] + p[2:, 1:-1])
    lap += 4 * c
    lap = np.abs(lap, out=lap)
    lap /= np.float32(6)
    grad = np.abs(p[1:-1, 2:] - c) + np.abs(p[2:, 1:-1] - c)   # |dx| + |dy| inside the neighbourhood
    ok = np.ones((h, w), dtype=bool)
    if valid is not None:
        for dy in range(3):
            for dx in range(3):
                ok &= valid[dy:dy + h, dx:dx + w]
    bh, bw = h // BLOCK, w // BLOCK

    def blocks(a: np.ndarray) -> np.ndarray:
        return a[:bh * BLOCK, :bw * BLOCK].reshape(bh, BLOCK, bw, BLOCK).swapaxes(1, 2).reshape(bh * bw, BLOCK * BLOCK)

    full = blocks(ok).all(axis=1)
    gmean = blocks(grad)[full].mean(axis=1, keepdims=True) / 2   # the mean of |dx| and |dy|
    in_block = np.zeros((h, w), dtype=bool)
    in_block[:bh * BLOCK, :bw * BLOCK] = np.repeat(np.repeat(full.reshape(bh, bw), BLOCK, 0), BLOCK, 1)
    return Detail(np.concatenate([gmean, blocks(lap)[full]], axis=1), lap[ok & ~in_block])


def noise_sigma(pan: np.ndarray, valid: np.ndarray | None = None) -> float:
    """The PAN's noise standard deviation on one array (``pooled_sigma`` of its ``laplacian_detail``); 0 without
    data."""
    return pooled_sigma([laplacian_detail(pan, valid)]) or 0.0


def window_detail(arr: np.ndarray, valid: np.ndarray) -> Detail:
    """The Laplacian detail of a full-resolution sample window for ``pooled_sigma``. Zeros and the window's highest
    value are left out: an undeclared fill and a saturated area have no noise, and their constant blocks, the
    flattest of all, read it 0 (a cloud clipped at 2047 over 40 % of pair 2's land switched the pull off; QA,
    2026-12-06). In a window without saturation this costs the block holding its brightest pixel."""
    ok = valid & (arr != 0)
    if ok.any():
        ok &= arr < arr[ok].max()
    return laplacian_detail(arr, ok)


def pooled_sigma(parts: list[Detail]) -> float | None:
    """The scene's PAN noise from its statistics sample (``window_detail`` of each window, pooled): the median |L| / 6
    / 0.6745 over the blocks whose mean gradient is in the pooled blocks' lowest FLAT_PERCENT (one figure for the
    scene, so a pixel's pull does not depend on the tile it falls in). Without a fully valid block in the sample
    (windows under 18 pixels, or holes everywhere): the median over all the valid pixels' |L| / 6. None: no valid
    3 x 3 neighbourhood in the sample."""
    blocks = [d.blocks for d in parts if len(d.blocks)]
    if blocks:
        b = np.concatenate(blocks)
        flat = b[b[:, 0] <= np.percentile(b[:, 0], FLAT_PERCENT), 1:]
        return float(np.median(flat)) / MAD_TO_SIGMA
    loose = np.concatenate([d.loose for d in parts]) if parts else np.empty(0, np.float32)
    return float(np.median(loose)) / MAD_TO_SIGMA if loose.size else None


def pull_note(sigma: float | None, integer: bool = True) -> tuple[str, bool]:
    """(what a learned run says about its pull, whether that is a warning) for the scene's noise ``sigma``;
    ``integer``: the PAN stores integer DN (else its noise is in the PAN's own units). QA: "noise pull: the PAN's
    noise 8.40 (on the flattest quarter ...)" had no unit and hid what the pull does to the output."""
    if sigma is None:
        return ("In flat, noisy areas (water, shadow), KSDiff's detail is blended towards MTF-GLP-HPM's so sensor "
                "noise is not amplified; the scene sample held no PAN noise to read, so each tile reads its own",
                False)
    if sigma == 0:
        return ("The PAN's noise reads 0 on its flattest areas (constant there: filled or coarsely quantised), so "
                "KSDiff's detail in flat areas (water, shadow) is not blended towards MTF-GLP-HPM's and any sensor "
                "noise there is amplified as the network does", True)
    unit = "DN" if integer else "in the PAN's units"
    return (f"In flat, noisy areas (water, shadow), where the PAN's detail is within {WIENER_THRESHOLD:g} × its noise "
            f"({sigma:.3g} {unit}), KSDiff's detail is blended towards MTF-GLP-HPM's so sensor noise is not "
            "amplified", False)


def signal_share(detail: np.ndarray, sigma: float) -> np.ndarray:
    """(H, W) in [0, 1]: 1 - sigma^2 / the local variance of the PAN's ``detail`` (P - P_L) over WINDOW^2 pixels."""
    k = np.full(WINDOW, 1.0 / WINDOW, dtype=np.float32)
    var = convolve_axis(convolve_axis(detail * detail, k, 0), k, 1)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        share = 1.0 - np.float32(sigma * sigma) / var
    return np.clip(np.nan_to_num(share, nan=0.0), 0.0, 1.0)


def pull(out: np.ndarray, pan: np.ndarray, lms: np.ndarray, ctx: classical.TileContext) -> np.ndarray:
    """``out`` (C, H, W, the learned tile in ``lms``'s units) taken towards MTF-GLP-HPM where the PAN's detail is
    noise; ``pan`` in its own units (the anchor's ratio P / P_L has none)."""
    low = classical._pan_lowpass(pan, float(np.mean(ctx.gains)), ctx)
    sigma = ctx.stats.pan_noise   # the scene's; a tile's own only when the statistics did not read it
    sigma = noise_sigma(pan, ctx.valid) if sigma is None else sigma
    share = signal_share(pan - low, WIENER_THRESHOLD * sigma)
    base = lms * classical.hpm_ratio(pan, low, ctx)[None]   # MTF-GLP-HPM on the bands' mean MTF gain
    pulled = out - base   # base + share * (out - base), in place
    pulled *= share[None]
    pulled += base
    return pulled
