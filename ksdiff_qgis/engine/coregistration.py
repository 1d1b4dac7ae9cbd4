"""How far apart the PAN and the MS lie: a global sub-pixel misregistration, measured on the scene statistics' sample.

Pansharpening assumes both see the same ground in the same pixel. A product whose PAN and MS are a pixel or more apart
(DATA.md: WorldView-2 pair 3, 0.5-1.25 PAN pixels) gets colour fringes along edges from every method, and the
self-check of METHOD auto, which degrades the scene by the ratio, sees only a ratio-th of the offset. The offset is a
diagnostic for the log unless the user asks to co-register (``COREGISTER``: the MS's place on the PAN grid moved by
it, ``moved_plan``; the output keeps the PAN's grid). Measured by Lucas-Kanade (Gauss-Newton) between the PAN averaged
onto the MS grid and the MS intensity that best predicts it (the scene's GSA regression), pooled over the windows.

What the MS's bands leave out of the PAN (an RGB-only MS under a PAN that sees near-infrared, one band) is no shift, but
it lies differently along edges (vegetation bright in near-infrared, shadows) and moves the measurement: on registered
Sentinel-2 bands, by 0.15 MS pixels (0.6 PAN pixels at ratio 4) for RGB, NIR or one band alone, whatever is matched
(intensities, gradients, high-passes, local fits, a quadratic spectral model: tried, none removes it). So the
measurement reports its error on the pair (``Offset.error``, from how much of the PAN the MS leaves unexplained) and an
offset within twice it is neither advised nor moved by (``trusted``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import InputError
from .feedback import Checkpoint, never_cancelled
from .filters import convolve_axis, grow_mask, upsample
from .grid import EDGE_TOLERANCE, GridPlan, min_overlap_px, with_region
from .labels import param

WARN_PAN_PIXELS = 0.5   # an offset at least this long (PAN pixels) is worth a warning
ITERATIONS = 20
BORDER = 3              # MS pixels at each window edge left out (gradients and the shifted samples' edge repeats)
COREG = param("COREGISTER")   # the option as the dialog names it
ADVICE = f"tick {COREG}, under Advanced Parameters"   # how a dialog user turns it on
UNTICK = "untick it"
MIN_TEXTURE = 1e-6      # relative determinant of the normal equations below which the sample says nothing
SMOOTH = np.array([1, 4, 6, 4, 1], dtype=np.float32) / 16   # the misfit's smoothing (``misfit``)
# how far an offset was off per unit of misfit (``misfit``), at most, on registered Sentinel-2 10 m bands (QA's crop
# and four more, RGB, one or two bands) and WorldView-2 pairs 1-2 (band subsets against all four): 0.21, one crop's
# single bands up to 1.6 times it, hence ``trusted``'s factor of 2
ERROR_PER_MISFIT = 0.2


def estimate_offset(pans: list[np.ndarray], mss: list[np.ndarray], alpha: np.ndarray,
                    read_offsets: list[tuple[float, float]],
                    valid: list[np.ndarray | None] | None = None) -> tuple[float, float] | None:
    """(rows, cols) in MS pixels by which the PAN's content lies shifted against the MS's (the PAN pixel that sees
    what MS pixel x sees is at x + offset), from windows of the PAN averaged onto the MS grid (h, w) and of the MS
    (C, h, w), all data; ``alpha``: the GSA regression of that PAN on the MS bands (last: intercept);
    ``read_offsets``: per window, where its PAN was read against the MS footprint (MS pixels; whole PAN pixels are
    read, the grid may sit between them); ``valid``: per window, its data pixels (None: all), the pixels within the
    interpolator's and the gradient's reach of nodata left out. None when the windows hold too little texture to
    tell."""
    measured = measure_offset(pans, mss, alpha, read_offsets, valid)
    return None if measured is None else measured.offset


@dataclass(frozen=True)
class Offset:
    """A measured PAN/MS offset, MS pixels: ``offset`` (rows, cols) as ``estimate_offset``'s, and ``error``: how far
    the measurement may be off on this pair because the MS's bands do not explain all of the PAN (``ERROR_PER_MISFIT``
    times the misfit: the unexplained PAN detail over the detail's gradient, ``misfit``)."""

    offset: tuple[float, float]
    error: float


def measure_offset(pans: list[np.ndarray], mss: list[np.ndarray], alpha: np.ndarray,
                   read_offsets: list[tuple[float, float]],
                   valid: list[np.ndarray | None] | None = None,
                   checkpoint: Checkpoint = never_cancelled) -> Offset | None:
    """``estimate_offset``'s offset with its error on this pair (``Offset``); None when it cannot be measured.
    ``checkpoint()`` at each window of each iteration (a cancel stops the measurement)."""
    intensities = [np.tensordot(alpha[:-1], m, axes=1) + alpha[-1] for m in mss]
    keep = [None if v is None else ~grow_mask(~v, BORDER)[BORDER:-BORDER, BORDER:-BORDER] for v in valid or
            [None] * len(pans)]
    d = np.zeros(2)
    for _ in range(ITERATIONS):
        a, b = np.zeros((2, 2)), np.zeros(2)
        for p, i, (ey, ex), w in zip(pans, intensities, read_offsets, keep):
            checkpoint()
            if min(p.shape) <= 2 * BORDER + 2:
                continue
            # moved[x] = p[x + d - e]: the read window's own offset e taken out
            moved = upsample(p.astype(np.float32), 1, p.shape, (ey - d[0], ex - d[1]))
            gy, gx = np.gradient(moved.astype(np.float64))
            r = (i - moved)[BORDER:-BORDER, BORDER:-BORDER]
            gy, gx = gy[BORDER:-BORDER, BORDER:-BORDER], gx[BORDER:-BORDER, BORDER:-BORDER]
            if w is not None:   # nodata and what the interpolator reads from it weigh nothing
                gy, gx = gy * w, gx * w
            a += [[(gy * gy).sum(), (gy * gx).sum()], [(gy * gx).sum(), (gx * gx).sum()]]
            b += [(gy * r).sum(), (gx * r).sum()]
        if not a.trace() or np.linalg.det(a) < MIN_TEXTURE * a.trace() ** 2:
            return None
        step = np.linalg.solve(a, b)
        d += step
        if np.abs(step).max() < 1e-3:
            break
    if not np.isfinite(d).all():
        return None
    return Offset((float(d[0]), float(d[1])),
                  ERROR_PER_MISFIT * misfit(pans, intensities, read_offsets, valid, d, checkpoint))


def misfit(pans: list[np.ndarray], intensities: list[np.ndarray], read_offsets: list[tuple[float, float]],
           valid: list[np.ndarray | None] | None, d: np.ndarray, checkpoint: Checkpoint = never_cancelled) -> float:
    """The PAN detail the MS intensity leaves unexplained, over the detail's gradient, at the offset ``d`` (MS pixels:
    a residual that large is what a shift of that many pixels leaves). Both smoothed by about one MS pixel first: what
    the PAN and MS differ in at their finest scale (their blur, aliasing, noise) is symmetric about an edge and does
    not move the measurement; what they differ in over larger patches (the near-infrared of vegetation and shadow a
    PAN sees and an MS without that band does not) does (QA: an aligned RGB-only MS read 0.6 PAN pixels off).
    ``valid`` as ``measure_offset``'s: nodata left out with the smoothing's reach too; ``checkpoint()`` at each
    window."""
    reach = BORDER + len(SMOOTH) // 2
    keep = [None if v is None else ~grow_mask(~v, reach)[BORDER:-BORDER, BORDER:-BORDER] for v in valid or
            [None] * len(pans)]
    res2 = grad2 = 0.0
    for p, i, (ey, ex), w in zip(pans, intensities, read_offsets, keep):
        checkpoint()
        if min(p.shape) <= 2 * BORDER + 2:
            continue
        moved = upsample(p.astype(np.float32), 1, p.shape, (ey - d[0], ex - d[1]))
        si = _smooth(i.astype(np.float32))
        e = (si - _smooth(moved))[BORDER:-BORDER, BORDER:-BORDER].astype(np.float64)
        gy, gx = (g[BORDER:-BORDER, BORDER:-BORDER] for g in np.gradient(si.astype(np.float64)))
        wt = np.ones(e.shape) if w is None else w.astype(np.float64)
        res2 += (wt * (e - (wt * e).sum() / max(wt.sum(), 1.0)) ** 2).sum()
        grad2 += (wt * (gy * gy + gx * gx)).sum()
    return math.sqrt(res2 / grad2) if grad2 > 0 else math.inf


def _smooth(img: np.ndarray) -> np.ndarray:
    """``img`` (h, w) blurred by a 5-tap binomial (a Gaussian of about one pixel), edges mirrored."""
    return convolve_axis(convolve_axis(img, SMOOTH, 0), SMOOTH, 1)


def in_batch_terms(text: str) -> str:
    """``text`` with the options named as a scene list sets them: its ``coregister`` column instead of the dialog's
    checkbox (QA: the batch's warning said to tick it under Advanced Parameters, then "tick coregister=yes"), its
    ``pan_crs`` / ``ms_crs`` columns instead of a CRS "set in QGIS" (``grid.assign_crs``)."""
    for role in ("PAN", "MS"):
        text = text.replace(f"The {role} layer's CRS set in QGIS, ",
                            f"The {role}'s CRS set in the row's {role.lower()}_crs column, ")
    text = text.replace(", as QGIS shows the layer.", ".")
    return (text.replace(ADVICE, "set the row's coregister column to yes")
            .replace(UNTICK, "set the row's coregister column to no")
            .replace(f"tick {COREG}", "set coregister=yes").replace(COREG, "coregister=yes"))


def _apart(offset_ms: tuple[float, float], ratio: int, where: str) -> str:
    """'0.6 PAN pixels apart (the PAN's content lies 0.5 px east and 0.4 px north of the MS's, measured on the
    scene)'."""
    dy, dx = (v * ratio for v in offset_ms)
    east = f"{abs(dx):.1f} px {'east' if dx >= 0 else 'west'}"
    north = f"{abs(dy):.1f} px {'south' if dy >= 0 else 'north'}"
    return (f"{math.hypot(dy, dx):.1f} PAN pixels apart (the PAN's content lies {east} and {north} of the MS's, "
            f"measured on the {where})")


def trusted(offset_ms: tuple[float, float], error_ms: float, ratio: int) -> bool:
    """Whether moving the MS by ``offset_ms`` is sure to bring it closer to the PAN, whatever the measurement's
    ``error_ms`` (``Offset.error``): the offset is at least twice its error (the move then leaves at most the error,
    less than the offset was), or the error is below half a warning's offset (a move errs by too little to matter)."""
    length, error = math.hypot(*offset_ms) * ratio, error_ms * ratio
    return length >= 2 * error or 2 * error < WARN_PAN_PIXELS


# why an offset's error can be large (QA: an aligned RGB-only MS read 0.6 PAN pixels off, NIR only 0.8; an MS 6 MS
# pixels off, beyond the measurement's reach, read 7.3)
WHY_ERROR = ("The measurement errs when the MS's bands explain the PAN only in part, as what they leave out lies "
             "differently along edges: when the PAN sees light the MS has no band for (such as near-infrared, bright "
             "in vegetation), when the MS has a single band, or when the two lie further apart than it reaches (about "
             "one MS pixel).")
GCP = "co-register the MS with ground control points (the Georeferencer, gdalwarp)"


def offset_note(offset_ms: tuple[float, float] | None, ratio: int, where: str = "scene",
                error_ms: float = 0.0, pixel_m: float | None = None) -> str | None:
    """A warning when the PAN and MS lie at least WARN_PAN_PIXELS apart (``offset_ms``: ``estimate_offset``'s,
    measured on ``where``: "scene", or "area of interest" for an EXTENT; ``pixel_m``: the PAN pixel in metres, when
    known): the fact and the action when the measurement is ``trusted`` with its ``error_ms`` (``Offset.error``; QA:
    500 characters on what the self-check sees of it), else a hedged one when even the offset less its error is that
    long; None otherwise (``offset_info`` then says what an untrusted offset means)."""
    if offset_ms is None:
        return None
    length, error = math.hypot(*offset_ms) * ratio, error_ms * ratio
    if length < WARN_PAN_PIXELS:
        return None
    if trusted(offset_ms, error_ms, ratio):
        dy, dx = (v * ratio for v in offset_ms)
        east = f"{abs(dx):.1f} px {'east' if dx >= 0 else 'west'}"
        north = f"{abs(dy):.1f} px {'south' if dy >= 0 else 'north'}"
        metres = f"{length * pixel_m:.2g} m; " if pixel_m else ""
        on = "" if where == "scene" else f", measured on the {where}"
        return (f"The PAN and the MS are {length:.1f} PAN pixels apart ({metres}the PAN's content lies {east} and "
                f"{north} of the MS's{on}): expect colour fringes along edges. To move the MS onto the PAN, {ADVICE}.")
    if length - error < WARN_PAN_PIXELS:
        return None
    return (f"The PAN and the MS look {_apart(offset_ms, ratio, where)}, but on this MS the measurement can be off by "
            f"about {error:.1f} PAN pixels. {WHY_ERROR} They are probably misregistered, by an amount too uncertain "
            f"for {COREG} to move the MS by: if fused edges show colour fringes, {GCP}.")


def offset_info(offset_ms: tuple[float, float] | None, ratio: int, where: str = "scene",
                error_ms: float = 0.0) -> str | None:
    """An info line for an offset of WARN_PAN_PIXELS or more that its ``error_ms`` can explain (neither trusted nor
    long enough for ``offset_note``'s hedged warning): what was measured, and why it tells no misregistration; None
    otherwise."""
    if offset_ms is None or offset_note(offset_ms, ratio, where, error_ms) is not None:
        return None
    length, error = math.hypot(*offset_ms) * ratio, error_ms * ratio
    if length < WARN_PAN_PIXELS:
        return None
    return (f"The PAN and the MS measure {_apart(offset_ms, ratio, where)}, but on this MS the measurement can be "
            f"off by about {error:.1f} PAN pixels, too much to tell a misregistration by. {WHY_ERROR} If fused edges "
            f"show colour fringes, {GCP}.")


def unmoved_note(offset_ms: tuple[float, float], error_ms: float, ratio: int, where: str = "scene") -> str:
    """The warning of a COREGISTER run whose offset is not ``trusted``: the MS was left where its georeference puts
    it (QA: an aligned RGB-only MS moved by its 0.6-pixel error fused worse)."""
    length, error = math.hypot(*offset_ms) * ratio, error_ms * ratio
    return (f"{COREG}: the offset measured on the {where}, {length:.2f} PAN pixels, is less than twice what the "
            f"measurement can be off by on this MS, about {error:.2f} PAN pixels: moving the MS by it could leave it "
            f"further from the PAN, so it was not moved. {WHY_ERROR} If fused edges show colour fringes, {GCP}.")


UNMEASURED = (f"{COREG}: the PAN/MS offset could not be measured (the scene's sample holds too little texture, or "
              "no window without nodata): nothing was moved.")


def moved_plan(plan: GridPlan, offset_ms: tuple[float, float], ms_size: tuple[int, int]) -> GridPlan:
    """``plan`` with the MS moved onto the PAN by ``offset_ms`` (``estimate_offset``'s): MS pixel x then sits where
    the PAN sees what it sees. The output stays on the PAN's grid, its region cut to the PAN/MS overlap after the
    move (PAN pixels the moved MS no longer covers would be extrapolated); ``ms_size``: the MS raster's (rows,
    cols). Raises InputError when too little overlap is left."""
    k = plan.ratio
    origin = (plan.ms_origin[0] + offset_ms[0] * k, plan.ms_origin[1] + offset_ms[1] * k)
    r0, c0, rows, cols = plan.region
    nr0 = max(r0, math.ceil(origin[0] - EDGE_TOLERANCE))
    nc0 = max(c0, math.ceil(origin[1] - EDGE_TOLERANCE))
    nr1 = min(r0 + rows, math.floor(origin[0] + ms_size[0] * k + EDGE_TOLERANCE))
    nc1 = min(c0 + cols, math.floor(origin[1] + ms_size[1] * k + EDGE_TOLERANCE))
    least = min_overlap_px(k)   # a whole scene's minimum (an EXTENT's too)
    if nr1 - nr0 < least or nc1 - nc0 < least:
        raise InputError(f"{COREG}: after moving the MS by the measured offset the PAN/MS overlap is "
                         f"{max(0, nc1 - nc0)} x {max(0, nr1 - nr0)} PAN pixels; at least {least} x {least} are "
                         f"needed: {UNTICK} to fuse where the georeferencing places the MS")
    return with_region(plan, nr0, nc0, nr1, nc1, ms_origin=origin)


def offset_text(offset_ms: tuple[float, float], ratio: int) -> str:
    """The offset the MS moved by, for the output's tags: 'east 1.23 south -0.45 (PAN pixels)'."""
    dy, dx = (v * ratio for v in offset_ms)
    return f"east {dx:.3f} south {dy:.3f} (PAN pixels)"


def moved_note(offset_ms: tuple[float, float], left_ms: tuple[float, float] | None, ratio: int,
               where: str = "scene", error_ms: float = 0.0) -> tuple[str, bool]:
    """(the log line of a co-registered run: how far the MS moved and the offset measured after the move, whether it
    is a warning: an offset of WARN_PAN_PIXELS or more still measured, or none measurable); ``where``: what the offset
    was measured on ("scene", or "area of interest"); ``error_ms``: the measurement's error (``Offset.error``), said
    when it is large enough to matter (measured again after the move, the same error reads as nothing left)."""
    dy, dx = (v * ratio for v in offset_ms)
    left = None if left_ms is None else math.hypot(*left_ms) * ratio
    error = error_ms * ratio
    line = (f"{COREG}: the MS moved onto the PAN by the offset measured on the {where}, {abs(dx):.2f} px "
            f"{'east' if dx >= 0 else 'west'} and {abs(dy):.2f} px {'south' if dy >= 0 else 'north'} (PAN pixels; "
            f"{math.hypot(dy, dx):.2f} in all"
            + (f", measured to within about {error:.2f}" if 2 * error >= WARN_PAN_PIXELS else "")
            + f"); left after the move: {'not measurable' if left is None else f'{left:.2f} PAN pixels'}. The output "
            "keeps the PAN's grid and georeferencing, over the PAN/MS overlap after the move.")
    if left is None or left >= WARN_PAN_PIXELS:
        line += (" The measurement is not reliable on this scene (the offset may be beyond what it can reach, about "
                 "one MS pixel, or the scene's texture too poor): check the result along edges, or co-register the "
                 "MS with ground control points instead.")
        return line, True
    return line, False
