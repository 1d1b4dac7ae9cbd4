"""Gross outliers in the scene-statistics sample: values far outside an input's own data (an undeclared fill such as
-9999 or 1e20, a sensor spike), left out of every scene statistic.

Forty pixels at -1e4 in a 0..0.6 reflectance band set its 0.1th percentile (``SceneStats.ms_low``): the learned
method lifted the whole band by 1e4; one such pixel moved its mean and the MTF-GLP-FS and GSA regressions, which
then wrecked every output pixel (QA). A value is screened only beyond an EMPTY gap of ``GAP`` times the data's
p5-p95 spread, outward of the quartiles: real data thin out without such a gap (the widest on every real scene we
have, any 64 x 64 MS window of it and its 8-bit and float views: 13 times, 1.2 on whole scenes), so a clean scene's
statistics stay bit-identical.

The gap must also exceed ``MAGNITUDE`` times the data's own size (the larger of |p5|, |p95|): a real bright target
leaves an empty gap of many spreads too (QA: 40 saturated sun glints, 211-1191 DN, on calm water at ~90 DN with a
spread of 4 were screened, the glints' fused RMSE 19 -> 858, white glints fused blue). A value the band's data
cannot reach is screened; one its dtype can hold over a band of any use is not (``MAGNITUDE``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .feedback import Checkpoint, never_cancelled

GAP = 50.0   # the empty gap, in p5-p95 spreads, between an input's data and a value screened from its statistics
# ... and in the data's magnitude, max(|p5|, |p95|). Real bright targets reach gaps of at most ~4100 of it: a
# 12-bit sensor saturating at 4095 over a band whose p95 is 1 DN, a 16-bit one at 65535 over >= 16 DN (8-bit: 255).
# The fills screened reach >= 1e4: -1e4 (-9999) below reflectance of p95 <= 1 (QA: 0..0.6); 1e20, -FLT_MAX: 1e19+.
# 5000 lies between, a factor ~2 from each.
MAGNITUDE = 5000.0


@dataclass(frozen=True)
class Screened:
    """What the screen left out of a sample: per input (the PAN, then each MS band) the values kept (lo, hi), how
    many sampled values lay beyond them and the range of those."""

    bounds: tuple[tuple[float, float], ...]   # (C+1,) (lowest, highest) value kept: PAN first, then the MS bands
    counts: tuple[int, ...]                   # (C+1,) sampled values screened
    seen: tuple[tuple[float, float], ...]     # (C+1,) (lowest, highest) screened value, NaN when none
    data: tuple[tuple[float, float], ...]     # (C+1,) (lowest, highest) value kept in the sample


def bounds(x: np.ndarray, more: np.ndarray | None = None) -> tuple[float, float]:
    """(lowest, highest) data value of ``x`` (N,): the sample cut at the first gap wider than ``GAP`` x its p5-p95
    spread and ``MAGNITUDE`` x max(|p5|, |p95|) outward of its quartiles; (-inf, inf) when there is no such gap (or
    no spread to measure one by). ``more``: values beyond the sample judged by its rule (its percentiles; the gaps
    among both): a spike the sample never saw is cut there as it would be in it (QA128: one 1e20 just outside an
    EXTENT, in BDSD-PC's pad, wrecked every output pixel)."""
    if x.size == 0:
        return -math.inf, math.inf
    q5, q25, q75, q95 = np.percentile(x, [5, 25, 75, 95])
    if not q95 > q5:   # 90 % of the values alike: nothing to judge a gap by
        return -math.inf, math.inf
    gap = max(GAP * (q95 - q5), MAGNITUDE * max(abs(q5), abs(q95)))
    if more is not None:
        x = np.concatenate([x, more])
    up, down = np.sort(x[x >= q75]), np.sort(x[x <= q25])
    cut_up, cut_down = np.flatnonzero(np.diff(up) > gap), np.flatnonzero(np.diff(down) > gap)
    return (float(down[cut_down[-1] + 1]) if cut_down.size else -math.inf,
            float(up[cut_up[0]]) if cut_up.size else math.inf)


def outside(x: np.ndarray, lo_hi: tuple[float, float]) -> np.ndarray:
    """Where ``x`` lies beyond the ``bounds``."""
    return (x < lo_hi[0]) | (x > lo_hi[1])


def beyond(arrays, bounds) -> np.ndarray:
    """Where any of ``arrays`` (bands of one shape) lies beyond its own ``bounds`` (``Screened.bounds``' entries, one
    per array): the pixels a screened value makes no data."""
    return np.logical_or.reduce([outside(a, b) for a, b in zip(arrays, bounds)])


def _checked_bounds(arrays, checkpoint: Checkpoint) -> list[tuple[float, float]]:
    """``bounds`` of each of ``arrays``, ``checkpoint()`` before each (a cancel stops the screen)."""
    found = []
    for x in arrays:
        checkpoint()
        found.append(bounds(x))
    return found


def screen(pan: np.ndarray, ms: np.ndarray, pan_low: np.ndarray | None = None,
           checkpoint: Checkpoint = never_cancelled) -> tuple[np.ndarray | None, Screened | None]:
    """(the sampled pixels to keep (N,), what was screened), or (None, None) when nothing is: ``pan`` (N,) the PAN
    on the MS grid, ``ms`` (C, N), ``pan_low`` (C, N) the PAN's low-pass per band, screened as the PAN (a PAN spike
    reaches its neighbours' low-pass). ``checkpoint()`` before each input's bounds."""
    parts = [pan, *ms]
    lims = _checked_bounds(parts, checkpoint)
    out = [outside(v, b) for v, b in zip(parts, lims)]
    low_out = ([outside(v, b) for v, b in zip(pan_low, _checked_bounds(pan_low, checkpoint))]
               if pan_low is not None else [])
    if not any(o.any() for o in out + low_out):
        return None, None
    drop = np.logical_or.reduce(out + low_out)
    nan = (math.nan, math.nan)
    return ~drop, Screened(
        bounds=tuple(lims), counts=tuple(int(o.sum()) for o in out),
        seen=tuple((float(v[o].min()), float(v[o].max())) if o.any() else nan for v, o in zip(parts, out)),
        data=tuple((float(v[~o].min()), float(v[~o].max())) for v, o in zip(parts, out)))


def clamp(pan: np.ndarray, ms: np.ndarray, screened: Screened | None, bands: list[int] | None = None
          ) -> tuple[np.ndarray, np.ndarray]:
    """``pan`` (H, W) and ``ms`` (C, H, W; the scene's bands ``bands``, None: all) for a learned model's input: each
    input with screened values clipped to its sampled data's range. The network normalises each tile by its mean,
    which one value at 1e20, a cluster at -1e4 or the upsampling's ringing around them (+625 beside one -1e4 in
    0..0.3 data) wrecked for the whole tile. The arrays themselves when nothing was screened."""
    if screened is None:
        return pan, ms
    if screened.counts[0]:
        pan = np.clip(pan, *screened.data[0]).astype(pan.dtype, copy=False)
    picked = range(ms.shape[0]) if bands is None else bands
    if any(screened.counts[1 + b] for b in picked):
        ms = ms.copy()
        for i, b in enumerate(picked):
            if screened.counts[1 + b]:
                np.clip(ms[i], *screened.data[1 + b], out=ms[i])
    return pan, ms
