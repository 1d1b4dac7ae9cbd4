"""Classical pansharpening methods (numpy): EXP, weighted Brovey, GSA, MTF-GLP-HPM, MTF-GLP-FS, BDSD-PC.

They are the baselines a learned model must beat and the fallback without a model. Scene-wide
quantities (band means, regression weights, PAN equalisation) are estimated once per scene by
``scene_stats`` from a low-resolution read, so that every tile uses the same numbers and a tiled
run equals an untiled one.
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import memory, outliers
from .errors import InputError, shown_name
from .feedback import Checkpoint, never_cancelled
from .filters import MTF_TAPS, decimate, mtf_sigma, upsample
from .numbers import share
from .saturation import Top
from .units import same_units

METHODS = {
    "exp": "EXP (cubic upsampling of MS, no PAN detail)",
    "brovey": "Weighted Brovey (adaptive band weights)",
    "gsa": "Gram-Schmidt adaptive (GSA)",
    # injection P/P_L keeps spectral angles
    "mtf_glp_hpm": "MTF-GLP-HPM (MTF-matched details, multiplicative injection)",
    # Vivone, Restaino & Chanussot 2018: additive details, per-band gains regressed on the PAN at full scale
    "mtf_glp_fs": "MTF-GLP-FS (MTF-matched details, full-scale regression gains)",
    # Vivone 2019: band-dependent spatial detail, coefficients fitted at reduced scale under physical constraints
    "bdsd_pc": "BDSD-PC (band-dependent detail, constrained reduced-scale fit)",
}
BEST_CLASSICAL = "mtf_glp_hpm"
# methods added after METHOD auto existed: the Processing option list appends them after it
ADDED_AFTER_AUTO = ("mtf_glp_fs", "bdsd_pc")


@dataclass(frozen=True)
class SceneStats:
    """Scene-wide statistics at MS resolution (nodata excluded)."""

    ms_mean: np.ndarray        # (C,)
    pan_mean: float
    pan_std: float             # of PAN averaged to the MS grid
    gsa_alpha: np.ndarray      # (C+1,) regression of low-res PAN on MS (last = intercept)
    gsa_gain: np.ndarray       # (C,) cov(I, MS_b) / var(I)
    gsa_i_mean: float
    gsa_i_std: float
    brovey_w: np.ndarray       # (C+1,) non-negative band weights + intercept
    brovey_i_mean: float
    brovey_i_std: float
    fs_gain: np.ndarray        # (C,) cov(MS_b, P_L,b) / var(P_L,b) on the MS grid: MTF-GLP-FS's injection gains
    negative: float = 0.0      # share of the sampled pixels below 0 in the PAN or in an MS band
    # how many of the ``sampled`` pixels are below 0 in the PAN (first) and in each MS band: ``negative_note`` names
    # the inputs, not one share for the scene (QA: '68 %' was NIR's 67.5 % with the other bands at 1-4 %)
    below_zero: tuple[int, ...] = ()
    sampled: int = 0
    ms_low: np.ndarray | None = None   # (C,) each band's 0.1th percentile: where its data end (below 0 if signed)
    pan_low: float | None = None   # the PAN's 0.1th percentile on the MS grid: where its data end (as ``ms_low``)
    # (rows, cols) in MS pixels by which the PAN's content lies shifted against the MS's (engine/coregistration.py);
    # None: not measured (too little texture, or no all-data window in the sample)
    pan_offset: tuple[float, float] | None = None
    # how far ``pan_offset`` may be off (MS pixels) because the MS's bands do not explain all of the PAN (an MS
    # without the PAN's near-infrared, one band): ``coregistration.Offset.error``
    pan_offset_error: float = 0.0
    # the PAN's noise standard deviation over the sample at full resolution (``noise.pooled_sigma``); None: not read
    pan_noise: float | None = None
    # each input's highest sampled value at full resolution and the share of sampled values at it (a plateau there:
    # saturated, ``saturation.Top``); None: not read
    pan_top: Top | None = None
    ms_top: Top | None = None
    # the values left out of every statistic above, far outside their input's data (``outliers.screen``); None: none
    screened: outliers.Screened | None = None
    # the MS bands that hold one value wherever they have data in the sample, with it (``flatbands.flat_bands``)
    ms_flat: tuple[tuple[int, float], ...] = ()
    # the roles ("PAN", "MS") whose sampled zeros are a fill their file does not declare (``pipeline.undeclared_fills``)
    zero_fills: frozenset[str] = frozenset()
    # (C, C+1) BDSD-PC's coefficients, row b = (g_b, gamma_b,1..C) (``bdsd_pc_coef``); None: the sample had too few
    # pixels away from nodata and window edges to fit them (BDSD-PC is then refused, and left out of the self-check)
    bdsd_coef: np.ndarray | None = None
    # (C, C+1) row b = (f_P, F, ..., F): where BDSD-PC measures the PAN and the MS bands from (``bdsd_floor``: an
    # offset in how PAN and MS are stored then leaves its output unmoved); None: no coefficients
    bdsd_floor: np.ndarray | None = None
    # (usable, needed, room): the sample's pixels the fit used, the least it needs, and those beyond the filters'
    # reach of its windows' edges before nodata took its share (``bdsd_unfit`` says which was short)
    bdsd_sample: tuple[int, int, int] = (0, 0, 0)
    bdsd_pixels: int = 0   # all the sample windows' pixels the fit could use, edges and nodata aside (``bdsd_unfit``)


def scene_stats(pan_lr: np.ndarray, ms: np.ndarray, valid: np.ndarray,
                pan_low: np.ndarray | None = None, checkpoint: Checkpoint = never_cancelled,
                lms_lr: np.ndarray | Callable[[np.ndarray | None], np.ndarray] | None = None,
                lms_room: int = 0, lms_pixels: int = 0) -> SceneStats:
    """Estimate ``SceneStats`` from PAN averaged onto the MS grid (H, W), MS (C, H, W) and a validity mask.
    ``pan_low`` (C, H, W): each band's MTF-matched low-pass PAN on the MS grid (``lowpass_on_ms_grid``), what
    MTF-GLP-FS's gains are regressed on; None only for callers that use no MTF-GLP-FS gains (they then come from
    the averaged PAN, biased low). Values far outside an input's own data (an undeclared fill, a spike) are left out
    of every statistic (``outliers.screen``: said in ``SceneStats.screened``). ``checkpoint()`` between its steps
    (a cancel stops it). ``lms_lr`` (C, H, W): the MS Wald-degraded and upsampled back onto the MS grid, NaN where
    it is not to be used (near nodata or a window's edge), BDSD-PC's baseline; or a callable that builds it from the
    pixels kept by the screen ((H, W) mask; None: nothing screened), so that the screened values are as bad as nodata
    for it (the Wald degradation blurs them into their neighbours), called with that mask and the screen's ``Screened``
    (None: nothing screened); None: no BDSD-PC coefficients.
    ``lms_room``: how many of ``lms_lr``'s pixels the windows' edges alone leave, nodata aside; ``lms_pixels``: how
    many there are (``bdsd_unfit``)."""
    keep, screened = outliers.screen(pan_lr[valid], ms[:, valid], None if pan_low is None else pan_low[:, valid],
                                     checkpoint)
    checkpoint()
    if keep is not None:
        kept = np.zeros_like(valid)
        kept[valid] = keep
        valid = kept
    if callable(lms_lr):
        lms_lr = lms_lr(None if keep is None else valid, screened)
    p = pan_lr[valid].astype(np.float64, copy=False)   # boolean indexing already copied
    m = ms[:, valid].astype(np.float64, copy=False)
    if p.size < 16:
        raise ValueError("too few valid pixels to estimate scene statistics")
    design = np.vstack([m, np.ones_like(p)]).T
    alpha = memory.lstsq(design, p)   # checked: under ulimit -v NumPy's returned garbage (QA142)
    i_gsa = design @ alpha
    var_i = max(float(i_gsa.var()), 1e-12)
    gain = _band_slopes(i_gsa, m)
    # Brovey: non-negative weights (a negative weight makes the intensity meaningless); active-set refits
    active = np.ones(m.shape[0], dtype=bool)
    while True:
        cols = np.append(active, True)
        w = np.zeros_like(alpha)
        # with every band active this is the GSA regression, already solved
        w[cols] = alpha if active.all() else memory.lstsq(design[:, cols], p)
        if (w[:-1] >= 0).all() or active.sum() == 1:
            break
        active &= w[:-1] > 0
    if (w[:-1] < 0).any() or not (w[:-1] > 0).any():
        w = np.append(np.full(m.shape[0], 1.0 / m.shape[0]), 0.0)
    i_b = design @ w
    bdsd = floor = None
    bdsd_sample = (0, 0, 0)
    if lms_lr is not None and pan_low is not None:
        usable = valid & np.isfinite(lms_lr).all(axis=0)
        sample_lms, sample_p = lms_lr[:, usable], pan_low[:, usable]
        # the data's floor over the statistics sample stands for the scene's at full scale as well, where the fusion
        # measures P and LMS from it
        floor = bdsd_floor(m, p)
        bdsd = bdsd_pc_coef(ms[:, usable], sample_lms, sample_p, floor)
        bdsd_sample = (int(usable.sum()), 16 * (ms.shape[0] + 1), max(int(lms_room), int(usable.sum())))
    checkpoint()
    return SceneStats(
        ms_mean=m.mean(axis=1), pan_mean=float(p.mean()), pan_std=max(float(p.std()), 1e-6),
        gsa_alpha=alpha, gsa_gain=gain, gsa_i_mean=float(i_gsa.mean()), gsa_i_std=float(np.sqrt(var_i)),
        brovey_w=w, brovey_i_mean=float(i_b.mean()), brovey_i_std=max(float(i_b.std()), 1e-6),
        # MTF-GLP-FS's full-scale gains by their definition, cov(MS~_b, P_L) / var(P_L) with P_L the PAN's
        # MTF-matched low-pass (Vivone et al. 2018): the PAN merely averaged onto the MS grid keeps aliased detail
        # that inflates var(P), gains 0.86-0.97 of the definition's (docs/VALIDATION.md, 2026-12-07 01:35)
        fs_gain=_band_slopes(p, m) if pan_low is None else np.array(
            [_band_slopes(pan_low[b][valid].astype(np.float64), m[b:b + 1])[0] for b in range(m.shape[0])]),
        negative=float(((p < 0) | (m < 0).any(axis=0)).mean()),
        below_zero=(int(np.count_nonzero(p < 0)), *(int(n) for n in np.count_nonzero(m < 0, axis=1))), sampled=p.size,
        ms_low=np.percentile(m, 0.1, axis=1), pan_low=float(np.percentile(p, 0.1)), screened=screened,
        bdsd_coef=bdsd, bdsd_floor=None if bdsd is None else floor, bdsd_sample=bdsd_sample,
        bdsd_pixels=int(lms_pixels) if lms_lr is not None else 0,
    )


def bdsd_reach(gains, ratio: int) -> int:
    """MS pixels next to a window's edge or nodata whose Wald-degraded, re-upsampled value (BDSD-PC's LMS_LR) the
    filling or mirroring there moves: three standard deviations of the widest band's MTF Gaussian (beyond them its
    weights sum to 0.3 %) plus the decimation's block and the cubic interpolation's two coarse pixels. (The filter's
    41 taps, mostly zeros, would leave no pixel of a 64 x 64 MS window.)"""
    return math.ceil(3 * max(mtf_sigma(float(g), ratio) for g in gains)) + 3 * ratio


def bdsd_floor(m: np.ndarray, p: np.ndarray) -> np.ndarray:
    """(C, C+1) row b = (f_P, F, ..., F): where BDSD-PC measures the PAN and each MS band from (``bdsd_pc_coef``),
    over the statistics sample (``m``: (C, N) MS, ``p``: (N,) PAN on the MS grid). F is the lowest MS band's 0.1th
    percentile, f_P is F as well when, so measured, the PAN is in the MS's units (``units.same_units``: a product's
    storage offset moves PAN and MS alike), else the PAN's own 0.1th percentile. A storage offset then moves nothing;
    on data whose darkest band ends near 0 the fit is nearly the paper's, through the stored zero."""
    floor = float(np.percentile(m, 0.1, axis=1).min())
    same = same_units(float(m.mean()) - floor, float(p.mean()) - floor)
    pan_floor = floor if same else float(np.percentile(p, 0.1))
    c = m.shape[0]
    return np.column_stack([np.full(c, pan_floor), np.full((c, c), floor)])


def bdsd_pc_coef(ms: np.ndarray, lms_lr: np.ndarray, p_lr: np.ndarray,
                 floor: np.ndarray | None = None) -> np.ndarray | None:
    """BDSD-PC's coefficients (Vivone 2019) from N reduced-scale samples, (C, C+1), row b = (g_b, gamma_b,1..C):
    the bounded least squares MS_b - LMS_LR_b ~ g_b P_LR_b + sum_i gamma_b,i LMS_LR_i with g_b >= 0 and every
    gamma_b,i <= 0 (the paper's physical constraint), no intercept. ``ms``, ``lms_lr``, ``p_lr``: (C, N).
    None when N < 16 (C+1): too few samples to trust the fit. (The alternative, falling back to another method's
    gains, would make 'BDSD-PC' mean something else on small scenes; refusing it says what happened.)
    ``floor`` (``bdsd_floor``): the regressors measured from it, as the plugin fits them (an offset in the stored
    numbers then moves nothing: the paper's fit moved Landsat 8 stored as Int16 - 8000 by up to 884 DN); the target,
    a difference of two values, needs none. None: the paper's fit on the data as stored. (Centred on the sample's
    means, target too, from 2026-12-07 17:51 to 23:01: a free intercept, which fitted the reduced scale better and
    carried worse to full scale, up to +13.9 % ERGAS on held-out cases; docs/VALIDATION.md, 22:41.)"""
    from scipy.optimize import lsq_linear  # here: scipy.optimize adds about 0.1 s to the plugin's load

    c, n = ms.shape
    if n < 16 * (c + 1):
        return None
    low = np.concatenate([np.zeros(1), np.full(c, -np.inf)])
    high = np.concatenate([np.full(1, np.inf), np.zeros(c)])
    lms = lms_lr.astype(np.float64).T
    target_all = ms.astype(np.float64) - lms.T
    if floor is not None:
        lms = lms - floor[0, 1:]
    gram_lms = lms.T @ lms
    coef = np.empty((c, c + 1))
    for b in range(c):
        p = p_lr[b].astype(np.float64) - (0.0 if floor is None else floor[b, 0])
        target = target_all[b]
        # the same problem on the design's Gram matrix G = R'R: |Ax - y|^2 = |Rx - R'^-1 A'y|^2 + const, C+1 rows
        # instead of N (the full design took 2.8 s on an 8-band sample of 262k pixels, every run's statistics)
        cross = lms.T @ p
        gram = np.block([[np.array([[p @ p]]), cross[None]], [cross[:, None], gram_lms]])
        rhs = np.concatenate([[p @ target], lms.T @ target])
        try:
            upper = np.linalg.cholesky(gram).T
            design, goal = upper, np.linalg.solve(upper.T, rhs)
        except np.linalg.LinAlgError:   # a rank-deficient design (a band of zeros): the full one, slower but exact
            design, goal = np.column_stack([p, lms]), target
            # bvls runs lstsq on column subsets of it: a copy and lstsq's own (garbage when they do not fit)
            memory.check_lstsq_room(design, goal, copies=2)
        # bvls: the exact active-set solution, no iteration tolerance in the coefficients
        coef[b] = lsq_linear(design, goal, bounds=(low, high), method="bvls").x
    return coef


def lowpass_margin(ratio: int) -> int:
    """PAN pixels of context each side that ``lowpass_on_ms_grid`` needs around the MS window."""
    return MTF_TAPS // 2 + ratio


def lowpass_on_ms_grid(pan: np.ndarray, gains, ratio: int, shape: tuple[int, int],
                       phase: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """Each band's P_L on the MS grid: ``pan`` (a PAN window with ``lowpass_margin(ratio)`` pixels of context each
    side of the ``shape`` (h, w) MS pixels) MTF-filtered with each band's gain and decimated as MTF-GLP-FS's own
    P_L (``_pan_lowpass``); ``phase``: the MS pixels start that far into the window's first PAN pixel (``decimate``).
    Returns (C, h, w), C = len(gains)."""
    m = lowpass_margin(ratio)
    made: dict[float, np.ndarray] = {}
    for g in gains:
        if float(g) not in made:
            lr, first = decimate(pan, float(g), ratio, origin=(-m, -m), phase=phase)
            made[float(g)] = lr[-first[0]:-first[0] + shape[0], -first[1]:-first[1] + shape[1]]
    return np.stack([made[float(g)] for g in gains])


def _band_slopes(x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """cov(x, m_b) / var(x) for every band b of m (C, N): each band's regression slope on x (N,)."""
    x0 = x - x.mean()
    return np.array([np.mean(x0 * (mb - mb.mean())) for mb in m]) / max(float(x0.var()), 1e-12)


@dataclass(frozen=True)
class TileContext:
    """What a method needs besides the pixels: scene statistics and where the tile sits."""

    stats: SceneStats
    ratio: int
    gains: tuple[float, ...]
    origin: tuple[int, int]    # global PAN (row, col) of the tile array's first pixel
    # global PAN (row, col) of a corner of the MS grid, to the nearest PAN pixel (``grid.ms_lattice``): the PAN's
    # low-pass is decimated on that lattice, so it lies where the MS pixels do wherever the PAN was cut
    lattice: tuple[int, int] = (0, 0)
    # the MS pixels behind the tile and where pixel [0, 0]'s corner sits in tile pixels (learned methods
    # project their output onto them: ``consistency``)
    ms: np.ndarray | None = None
    ms_origin: tuple[float, float] = (0.0, 0.0)
    # (h, w) bool: the pixels of ``ms`` that are data, not filled nodata (None: all of them); the projection
    # uses only those
    ms_real: np.ndarray | None = None
    # (H, W) bool on the tile array's grid: pixels holding data in PAN and MS (None: all of them); a learned
    # model takes its tile context from those (``learned.prior_window``)
    valid: np.ndarray | None = None
    # (H, W) bool on the tile array's grid: the output pixels a learned fuser's counts (its soft floor) stand for:
    # written, data, each once although tiles overlap (None: the whole array, as a self-check window)
    counted: np.ndarray | None = None
    # where the array lies, in a message's words, when ``origin`` is no place in the scene (the self-check's
    # reduced-resolution copies); None: said from ``origin``
    place: str | None = None


def margin(method: str, ratio: int) -> int:
    """PAN pixels of context each side of a tile so its interior is exact."""
    if method in ("mtf_glp_hpm", "mtf_glp_fs"):
        return MTF_TAPS // 2 + 3 * ratio + 1
    return 0


def _intensity(lms: np.ndarray, coef: np.ndarray) -> np.ndarray:
    # an explicit sum, not BLAS: the result must not depend on the BLAS build or its thread count
    out = np.full(lms.shape[1:], np.float32(coef[-1]), dtype=np.float32)
    for b in range(lms.shape[0]):
        out += np.float32(coef[b]) * lms[b]
    return out


def _equalise(pan: np.ndarray, stats: SceneStats, mean: float, std: float) -> np.ndarray:
    out = pan - np.float32(stats.pan_mean)   # one new array, then in place: no temporaries
    out *= np.float32(std / stats.pan_std)
    out += np.float32(mean)
    return out


FLOOR_SHARE = 1e-3   # of a signal's bright level (scene mean + 3 standard deviations): the smallest divisor


def _floor(mean: float, std: float) -> np.float32:
    """The smallest divisor of a ratio method, from the scene's own statistics of the divisor's signal: any unit
    (DN of any bit depth, float reflectance) gets the same relative floor. (A floor of a thousandth of the sensor's
    full scale was above every divisor of float reflectance, and of a 16-bit type's for 11-bit data declared generic:
    MTF-GLP-HPM and Brovey returned the upsampled MS.)"""
    return np.float32(FLOOR_SHARE * max(mean + 3.0 * std, 1e-30))


def _safe_ratio(num: np.ndarray, den: np.ndarray, floor: np.float32) -> np.ndarray:
    """``num / den`` where ``den > floor``, else 1 (as ``np.where`` would give, without its temporaries)."""
    out = np.maximum(den, floor)
    np.divide(num, out, out=out)
    np.copyto(out, np.float32(1.0), where=~(den > floor))
    return out


def fuse_exp(pan: np.ndarray, lms: np.ndarray, ctx: TileContext) -> np.ndarray:
    return lms


def fuse_brovey(pan: np.ndarray, lms: np.ndarray, ctx: TileContext) -> np.ndarray:
    st = ctx.stats
    intensity = _intensity(lms, st.brovey_w)
    p = _equalise(pan, st, st.brovey_i_mean, st.brovey_i_std)
    ratio = _safe_ratio(p, intensity, _floor(st.brovey_i_mean, st.brovey_i_std))
    return lms * ratio[None]


def fuse_gsa(pan: np.ndarray, lms: np.ndarray, ctx: TileContext) -> np.ndarray:
    st = ctx.stats
    i0 = _intensity(lms, st.gsa_alpha)
    i0 -= np.float32(st.gsa_i_mean)
    detail = _equalise(pan, st, 0.0, st.gsa_i_std)
    detail -= i0
    out = st.gsa_gain.astype(np.float32)[:, None, None] * detail[None]
    out += lms   # lms is left untouched: callers may reuse it
    return out


def _pan_lowpass(pan: np.ndarray, gain: float, ctx: TileContext) -> np.ndarray:
    """P_L: the PAN's MTF-matched low-pass (decimated on the MS lattice, ``ctx.lattice``, re-interpolated)."""
    at = (ctx.origin[0] - ctx.lattice[0], ctx.origin[1] - ctx.lattice[1])   # the tile on the MS lattice
    lr, first = decimate(pan, gain, ctx.ratio, origin=at)
    origin = (first[0] * ctx.ratio - at[0], first[1] * ctx.ratio - at[1])
    return upsample(lr, ctx.ratio, pan.shape, origin)


def hpm_ratio(pan: np.ndarray, low: np.ndarray, ctx: TileContext) -> np.ndarray:
    """P / P_L for a given low-pass ``low``, with the scene's divisor floor (MTF-GLP-HPM's injection)."""
    return _safe_ratio(pan, low, _floor(ctx.stats.pan_mean, ctx.stats.pan_std))


def _hpm_ratio(pan: np.ndarray, gain: float, ctx: TileContext) -> np.ndarray:
    """P / P_L."""
    return hpm_ratio(pan, _pan_lowpass(pan, gain, ctx), ctx)


def _per_band_gain(ctx: TileContext, bands: int, make) -> list[np.ndarray]:
    """``make(gain)`` for every band's MTF gain, once per distinct gain (bands sharing a gain share the array)."""
    made: dict[float, np.ndarray] = {}
    for b in range(bands):
        gain = float(ctx.gains[b])
        if gain not in made:
            made[gain] = make(gain)
    return [made[float(ctx.gains[b])] for b in range(bands)]


def fuse_mtf_glp_hpm(pan: np.ndarray, lms: np.ndarray, ctx: TileContext) -> np.ndarray:
    out = np.empty_like(lms)
    for b, ratio in enumerate(_per_band_gain(ctx, lms.shape[0], lambda g: _hpm_ratio(pan, g, ctx))):
        np.multiply(lms[b], ratio, out=out[b])
    return out


def fuse_mtf_glp_fs(pan: np.ndarray, lms: np.ndarray, ctx: TileContext) -> np.ndarray:
    """LMS_b + g_b (P - P_L): additive MTF-matched details with the scene's regression gains ``fs_gain``."""
    out = lms.copy()
    for b, detail in enumerate(_per_band_gain(ctx, lms.shape[0], lambda g: pan - _pan_lowpass(pan, g, ctx))):
        out[b] += np.float32(ctx.stats.fs_gain[b]) * detail
    return out


BDSD_UNFIT = "BDSD-PC's coefficients could not be fitted"
BDSD_OTHER = "Choose another method (MTF-GLP-FS is the nearest)"


def bdsd_unfit(stats: SceneStats, extent: bool = False) -> str:
    """Why BDSD-PC has no coefficients, in one line: the usable sample against the fit's need, and its cause (the
    scene, or the EXTENT, smaller than the fit's least sample, or too small for the filters' reach from its windows'
    edges; or nodata, with its share)."""
    usable, needed, room = stats.bdsd_sample
    head = f"{BDSD_UNFIT}: the scene statistics' sample has {usable} usable MS pixels and the fit needs {needed}"
    if room < needed:
        where = "the EXTENT" if extent else "the scene"
        if 0 < stats.bdsd_pixels < needed:   # QA128: an 8 x 8 EXTENT, all its pixels usable, blamed the filters
            return (f"{head}: {where} holds only {stats.bdsd_pixels} MS pixels, fewer than the fit's least sample. "
                    + ("Enlarge the EXTENT or c" + BDSD_OTHER[1:] if extent else BDSD_OTHER))
        # the pixels clear of the windows' edges, when nodata took some of them (else they are the count above)
        clear = f" ({room} pixels clear of the sample windows' edges)" if room != usable else ""
        return (f"{head}: {where} is too small for the fit's filters{clear}. "
                + ("Enlarge the EXTENT or c" + BDSD_OTHER[1:] if extent else BDSD_OTHER))
    return (f"{head}: nodata and the filters' reach around it took {room - usable} ({share(room - usable, room, 1)}) "
            f"of the {room} pixels away from the windows' edges. {BDSD_OTHER}")


def _four(v: float) -> float:
    """``v`` to 4 decimals, a tiny negative (a bound the fit reached) as 0.0, not -0.0."""
    return round(float(v), 4) + 0.0


def bdsd_coef_text(stats: SceneStats) -> str | None:
    """BDSD-PC's coefficients as compact JSON (4 decimals): per band g and the gammas, the sample size, and the
    floor the PAN and the MS are measured from; None without coefficients. The ``KSDIFF_BDSD_COEF`` tag."""
    if stats.bdsd_coef is None:
        return None
    made: dict = {"n": stats.bdsd_sample[0], "g": [_four(v) for v in stats.bdsd_coef[:, 0]],
                  "gamma": [[_four(v) for v in row] for row in stats.bdsd_coef[:, 1:]]}
    if stats.bdsd_floor is not None:
        made["floor"] = {"pan": round(float(stats.bdsd_floor[0, 0]), 4), "ms": round(float(stats.bdsd_floor[0, 1]), 4)}
    return json.dumps(made, separators=(",", ":"))


def bdsd_coef_line(stats: SceneStats, numbers: list[int] | None = None) -> str | None:
    """The log's line of BDSD-PC's coefficients: per band g and the gammas, and the sample size; the MS bands by their
    number in the file (``numbers``, as ``negative_note``; None: their positions). None without coefficients."""
    if stats.bdsd_coef is None:
        return None
    bands = "; ".join(f"band {numbers[b] if numbers else b + 1}: g {_four(row[0]):.4f}, gamma "
                      + " ".join(f"{_four(v):.4f}" for v in row[1:]) for b, row in enumerate(stats.bdsd_coef))
    fl = stats.bdsd_floor
    floor = "" if fl is None else f", the PAN measured from {fl[0, 0]:.6g} and the MS from {fl[0, 1]:.6g}"
    return (f"BDSD-PC's coefficients, fitted on {stats.bdsd_sample[0]} MS pixels{floor} (also in the output's "
            f"KSDIFF_BDSD_COEF tag): {bands}")


def fuse_bdsd_pc(pan: np.ndarray, lms: np.ndarray, ctx: TileContext) -> np.ndarray:
    """LMS_b + g_b P + sum_i gamma_b,i LMS_i with the scene's ``bdsd_coef`` (no filter at full scale); with
    ``bdsd_floor`` (as the plugin fits it), LMS_b + g_b (P - f_P) + sum_i gamma_b,i (LMS_i - F)."""
    coef, floor = ctx.stats.bdsd_coef, ctx.stats.bdsd_floor
    if coef is None:
        raise InputError(bdsd_unfit(ctx.stats))
    out = lms.copy()
    for b in range(lms.shape[0]):   # explicit sums, not BLAS (as ``_intensity``)
        out[b] += np.float32(coef[b, 0]) * pan
        for i in range(lms.shape[0]):
            out[b] += np.float32(coef[b, i + 1]) * lms[i]
        if floor is not None:   # the floor's part, one constant per band
            out[b] -= np.float32(coef[b] @ floor[b])
    return out


RATIO_METHODS = ("brovey", "mtf_glp_hpm")   # multiply the MS by a PAN ratio: meaningless on values below 0
NEGATIVE_WARN = 0.01                         # share of a scene's sampled pixels below 0 that earns a warning


def negative_note(method: str, stats: SceneStats, names: list[str] | None = None,
                  numbers: list[int] | None = None) -> str | None:
    """A warning when a ratio method is to fuse a scene with many values below 0 (an offset, signed data): each
    input's share of sampled pixels below 0, the MS bands by their number in the file (``numbers``: the file's
    number of each band fused, ``BandPlan.indices``; None: their positions) and ``names`` (None or '': none)."""
    if method not in RATIO_METHODS or stats.negative < NEGATIVE_WARN:
        return None
    name = METHODS[method].split(" (")[0]
    shares = below_zero_shares(stats, names, numbers)
    return (f"Values below 0 in the sampled pixels: {shares}. {name} multiplies the MS by a PAN ratio, "
            "which is meaningless on such values (extreme outputs where the divisor nears 0); GSA or MTF-GLP-FS "
            "inject additive detail and suit them")


def below_zero_shares(stats: SceneStats, names: list[str] | None = None, numbers: list[int] | None = None) -> str:
    """'MS band 4 (NIR) 67.5%, band 1 (Blue) 1.2%; PAN 3.0%': the share of sampled pixels below 0 of each input
    that has any, the MS bands with most first (``numbers``, ``names``: as ``negative_note``)."""
    ms = [(n, b) for b, n in enumerate(stats.below_zero[1:]) if n]
    # a band's name is the file's text (a description, a sensor's name): one line, as every band name said
    bands = [f"band {numbers[b] if numbers else b + 1}"
             + (f" ({shown_name(names[b])})" if names and b < len(names) and names[b] else "")
             + f" {share(n, stats.sampled, 1)}" for n, b in sorted(ms, key=lambda nb: -nb[0])]
    parts = ["MS " + ", ".join(bands)] if bands else []
    if stats.below_zero and stats.below_zero[0]:
        parts.append(f"PAN {share(stats.below_zero[0], stats.sampled, 1)}")
    return "; ".join(parts)


FUSERS = {"exp": fuse_exp, "brovey": fuse_brovey, "gsa": fuse_gsa, "mtf_glp_hpm": fuse_mtf_glp_hpm,
          "mtf_glp_fs": fuse_mtf_glp_fs, "bdsd_pc": fuse_bdsd_pc}
