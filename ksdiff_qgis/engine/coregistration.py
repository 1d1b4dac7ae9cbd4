"""How far apart the PAN and the MS lie: a global sub-pixel misregistration, measured on the scene statistics' sample.

Pansharpening assumes both see the same ground in the same pixel. A product whose PAN and MS are a pixel or more apart
(DATA.md: WorldView-2 pair 3, 0.5-1.25 PAN pixels) gets colour fringes along edges from every method, and the
self-check of METHOD auto, which degrades the scene by the ratio, sees only a ratio-th of the offset. The offset is a
diagnostic for the log unless the user asks to co-register (``COREGISTER``: the MS's place on the PAN grid moved by
it, ``moved_plan``; the output keeps the PAN's grid). Measured by Lucas-Kanade (Gauss-Newton) between the PAN averaged
onto the MS grid and the MS intensity that best predicts it (the scene's GSA regression), pooled over the windows.
"""
from __future__ import annotations

import math

import numpy as np

from .errors import InputError
from .filters import grow_mask, upsample
from .grid import EDGE_TOLERANCE, GridPlan, with_region
from .labels import param

WARN_PAN_PIXELS = 0.5   # an offset at least this long (PAN pixels) is worth a warning
ITERATIONS = 20
BORDER = 3              # MS pixels at each window edge left out (gradients and the shifted samples' edge repeats)
COREG = param("COREGISTER")   # the option as the dialog names it
ADVICE = f"tick {COREG}, under Advanced Parameters"   # how a dialog user turns it on
UNTICK = "untick it"
MIN_TEXTURE = 1e-6      # relative determinant of the normal equations below which the sample says nothing


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
    intensities = [np.tensordot(alpha[:-1], m, axes=1) + alpha[-1] for m in mss]
    keep = [None if v is None else ~grow_mask(~v, BORDER)[BORDER:-BORDER, BORDER:-BORDER] for v in valid or
            [None] * len(pans)]
    d = np.zeros(2)
    for _ in range(ITERATIONS):
        a, b = np.zeros((2, 2)), np.zeros(2)
        for p, i, (ey, ex), w in zip(pans, intensities, read_offsets, keep):
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
    return float(d[0]), float(d[1])


def in_batch_terms(text: str) -> str:
    """``text`` with the option named as a scene list sets it, its ``coregister`` column, instead of the dialog's
    checkbox (QA: the batch's warning said to tick it under Advanced Parameters, then "tick coregister=yes")."""
    return (text.replace(ADVICE, "set the row's coregister column to yes")
            .replace(UNTICK, "set the row's coregister column to no")
            .replace(f"tick {COREG}", "set coregister=yes").replace(COREG, "coregister=yes"))


def offset_note(offset_ms: tuple[float, float] | None, ratio: int, where: str = "scene",
                pixel_m: float | None = None) -> str | None:
    """A warning when the PAN and MS lie at least WARN_PAN_PIXELS apart (``offset_ms``: ``estimate_offset``'s,
    measured on ``where``: "scene", or "area of interest" for an EXTENT; ``pixel_m``: the PAN pixel in metres, when
    known). The fact and the action only (QA: 500 characters on what the self-check sees of it)."""
    if offset_ms is None:
        return None
    dy, dx = (v * ratio for v in offset_ms)
    length = math.hypot(dy, dx)
    if length < WARN_PAN_PIXELS:
        return None
    east = f"{abs(dx):.1f} px {'east' if dx >= 0 else 'west'}"
    north = f"{abs(dy):.1f} px {'south' if dy >= 0 else 'north'}"
    metres = f"{length * pixel_m:.2g} m; " if pixel_m else ""
    on = "" if where == "scene" else f", measured on the {where}"
    return (f"The PAN and the MS are {length:.1f} PAN pixels apart ({metres}the PAN's content lies {east} and {north} "
            f"of the MS's{on}): expect colour fringes along edges. To move the MS onto the PAN, {ADVICE}.")


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
    if nr1 - nr0 < 4 * k or nc1 - nc0 < 4 * k:
        raise InputError(f"{COREG}: after moving the MS by the measured offset the PAN/MS overlap is "
                         f"{max(0, nc1 - nc0)} x {max(0, nr1 - nr0)} PAN pixels; at least {4 * k} x {4 * k} are "
                         f"needed: {UNTICK} to fuse where the georeferencing places the MS")
    return with_region(plan, nr0, nc0, nr1, nc1, ms_origin=origin)


def offset_text(offset_ms: tuple[float, float], ratio: int) -> str:
    """The offset the MS moved by, for the output's tags: 'east 1.23 south -0.45 (PAN pixels)'."""
    dy, dx = (v * ratio for v in offset_ms)
    return f"east {dx:.3f} south {dy:.3f} (PAN pixels)"


def moved_note(offset_ms: tuple[float, float], left_ms: tuple[float, float] | None, ratio: int,
               where: str = "scene") -> tuple[str, bool]:
    """(the log line of a co-registered run: how far the MS moved and the offset measured after the move, whether it
    is a warning: an offset of WARN_PAN_PIXELS or more still measured, or none measurable); ``where``: what the offset
    was measured on ("scene", or "area of interest")."""
    dy, dx = (v * ratio for v in offset_ms)
    left = None if left_ms is None else math.hypot(*left_ms) * ratio
    line = (f"{COREG}: the MS moved onto the PAN by the offset measured on the {where}, {abs(dx):.2f} px "
            f"{'east' if dx >= 0 else 'west'} and {abs(dy):.2f} px {'south' if dy >= 0 else 'north'} (PAN pixels; "
            f"{math.hypot(dy, dx):.2f} in all); left after the move: "
            f"{'not measurable' if left is None else f'{left:.2f} PAN pixels'}. The output keeps the PAN's grid and "
            "georeferencing, over the PAN/MS overlap after the move.")
    if left is None or left >= WARN_PAN_PIXELS:
        line += (" The measurement is not reliable on this scene (the offset may be beyond what it can reach, about "
                 "one MS pixel, or the scene's texture too poor): check the result along edges, or co-register the "
                 "MS with ground control points instead.")
        return line, True
    return line, False
