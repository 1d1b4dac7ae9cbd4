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
from dataclasses import replace

import numpy as np

from .filters import upsample
from .grid import GridPlan

WARN_PAN_PIXELS = 0.5   # an offset at least this long (PAN pixels) is worth a warning
ITERATIONS = 20
BORDER = 3              # MS pixels at each window edge left out (gradients and the shifted samples' edge repeats)
MIN_TEXTURE = 1e-6      # relative determinant of the normal equations below which the sample says nothing


def estimate_offset(pans: list[np.ndarray], mss: list[np.ndarray], alpha: np.ndarray,
                    read_offsets: list[tuple[float, float]]) -> tuple[float, float] | None:
    """(rows, cols) in MS pixels by which the PAN's content lies shifted against the MS's (the PAN pixel that sees
    what MS pixel x sees is at x + offset), from windows of the PAN averaged onto the MS grid (h, w) and of the MS
    (C, h, w), all data; ``alpha``: the GSA regression of that PAN on the MS bands (last: intercept);
    ``read_offsets``: per window, where its PAN was read against the MS footprint (MS pixels; whole PAN pixels are
    read, the grid may sit between them). None when the windows hold too little texture to tell."""
    intensities = [np.tensordot(alpha[:-1], m, axes=1) + alpha[-1] for m in mss]
    d = np.zeros(2)
    for _ in range(ITERATIONS):
        a, b = np.zeros((2, 2)), np.zeros(2)
        for p, i, (ey, ex) in zip(pans, intensities, read_offsets):
            if min(p.shape) <= 2 * BORDER + 2:
                continue
            # moved[x] = p[x + d - e]: the read window's own offset e taken out
            moved = upsample(p.astype(np.float32), 1, p.shape, (ey - d[0], ex - d[1]))
            gy, gx = np.gradient(moved.astype(np.float64))
            r = (i - moved)[BORDER:-BORDER, BORDER:-BORDER]
            gy, gx = gy[BORDER:-BORDER, BORDER:-BORDER], gx[BORDER:-BORDER, BORDER:-BORDER]
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


def offset_note(offset_ms: tuple[float, float] | None, ratio: int) -> str | None:
    """A warning when the PAN and MS lie at least WARN_PAN_PIXELS apart (``offset_ms``: ``estimate_offset``'s)."""
    if offset_ms is None:
        return None
    dy, dx = (v * ratio for v in offset_ms)
    length = math.hypot(dy, dx)
    if length < WARN_PAN_PIXELS:
        return None
    east = f"{abs(dx):.1f} px {'east' if dx >= 0 else 'west'}"
    north = f"{abs(dy):.1f} px {'south' if dy >= 0 else 'north'}"
    return (f"The PAN and the MS look {length:.1f} PAN pixels apart (the PAN's content lies {east} and {north} of the "
            "MS's, measured on the scene): fused edges will show colour fringes, and the self-check, "
            "which degrades the scene, sees only part of the offset. Co-register the MS to the PAN for the best "
            "result: the option to move the MS onto the PAN by the measured offset (COREGISTER), or the "
            "Georeferencer / gdalwarp with ground control points.")


UNMEASURED = ("COREGISTER: the PAN/MS offset could not be measured (the scene's sample holds too little texture, or "
              "no window without nodata): nothing was moved.")


def moved_plan(plan: GridPlan, offset_ms: tuple[float, float]) -> GridPlan:
    """``plan`` with the MS moved onto the PAN by ``offset_ms`` (``estimate_offset``'s): MS pixel x then sits where
    the PAN sees what it sees. The output grid (the PAN's) stays; the MS is resampled there as for any grid offset."""
    k = plan.ratio
    return replace(plan, ms_origin=(plan.ms_origin[0] + offset_ms[0] * k, plan.ms_origin[1] + offset_ms[1] * k))


def moved_note(offset_ms: tuple[float, float], left_ms: tuple[float, float] | None, ratio: int) -> str:
    """The log line of a co-registered run: how far the MS moved, and the offset measured after the move."""
    dy, dx = (v * ratio for v in offset_ms)
    left = "not measurable" if left_ms is None else f"{math.hypot(*left_ms) * ratio:.2f} PAN pixels"
    return (f"COREGISTER: the MS moved onto the PAN by the offset measured on the scene, {abs(dx):.2f} px "
            f"{'east' if dx >= 0 else 'west'} and {abs(dy):.2f} px {'south' if dy >= 0 else 'north'} (PAN pixels; "
            f"{math.hypot(dy, dx):.2f} in all); left after the move: {left}. The output keeps the PAN's grid and "
            "georeferencing.")
