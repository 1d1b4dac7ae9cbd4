"""Where a tile's PAN detail is noise, a learned model's output is taken back towards MTF-GLP-HPM's.

Networks trained at reduced resolution learn to amplify a blurred PAN's detail; the real PAN's finest detail is
partly sensor noise, which they then amplify too: on WorldView-2 pair 2's water KSDiff's band standard deviation was
16-19 DN where MTF-GLP-HPM's was 9-13 and the MS's 4-6 (QA, 2026-12-06). Per pixel, the network's departure from
MTF-GLP-HPM is kept in proportion to how much of the PAN's local detail is signal rather than noise (a Wiener
factor, 1 - noise variance / local detail variance): textured areas keep the network's output, flat noisy areas
(water, shadow, clear sky) get MTF-GLP-HPM's. The PAN's noise is estimated from its finest diagonal detail (Donoho's
median estimator), which flat and textured areas alike carry, once per scene on the scene statistics' sample.

Only delivered tiles are pulled: the self-check decides on the network alone (at reduced resolution the degraded
PAN's noise is filtered away with its detail, so the pull could only add its estimator's scatter to that decision;
docs/VALIDATION.md, 2026-12-06).
"""
from __future__ import annotations

import numpy as np

from . import classical
from .filters import convolve_axis

WINDOW = 7   # PAN pixels per side of the local detail variance
MAD_TO_SIGMA = 0.6745   # median absolute deviation of a unit normal


def diagonal_detail(pan: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """|HH|: the absolute 2 x 2 diagonal differences / 2 (the finest wavelet detail, mostly noise in any scene) of the
    2 x 2 blocks of ``valid`` pixels (a filled hole has no noise), flat."""
    h, w = (pan.shape[0] // 2) * 2, (pan.shape[1] // 2) * 2
    p = pan[:h, :w].astype(np.float32, copy=False)
    hh = np.abs(p[0::2, 0::2] - p[0::2, 1::2] - p[1::2, 0::2] + p[1::2, 1::2]) * np.float32(0.5)
    if valid is None:
        return hh.ravel()
    v = valid[:h, :w]
    return hh[v[0::2, 0::2] & v[0::2, 1::2] & v[1::2, 0::2] & v[1::2, 1::2]]


def noise_sigma(pan: np.ndarray, valid: np.ndarray | None = None) -> float:
    """The PAN's noise standard deviation on one array: median |HH| / 0.6745 (Donoho's estimator); 0 without data."""
    return pooled_sigma([diagonal_detail(pan, valid)]) or 0.0


def window_detail(arr: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """|HH| of a full-resolution sample window for ``pooled_sigma`` (zeros left out: a fill the file does not
    declare has no noise)."""
    return diagonal_detail(arr, valid & (arr != 0))


def pooled_sigma(parts: list[np.ndarray]) -> float | None:
    """The scene's PAN noise from its statistics sample (``window_detail`` of each window, pooled): one figure for
    the scene, so a pixel's pull does not depend on the tile it falls in. None: no 2 x 2 block of data in the sample."""
    hh = np.concatenate(parts) if parts else np.empty(0, np.float32)
    return float(np.median(hh)) / MAD_TO_SIGMA if hh.size else None


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
    share = signal_share(pan - low, noise_sigma(pan, ctx.valid) if sigma is None else sigma)
    base = lms * classical.hpm_ratio(pan, low, ctx)[None]   # MTF-GLP-HPM on the bands' mean MTF gain
    pulled = out - base   # base + share * (out - base), in place
    pulled *= share[None]
    pulled += base
    return pulled
