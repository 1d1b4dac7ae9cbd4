"""An MS stored upsampled by nearest neighbour: each of its values repeated in k x k pixel blocks.

Some deliveries store the MS at a finer pixel than it was measured at, each value copied into k x k pixels (the
solaris WorldView-2 tutorial pairs: the 2 m MS stored at 1 m, 2 x 2 blocks). The georeference then gives an MS/PAN
ratio k times too small: the fusion ran at ratio 2 instead of 4, the sensor was not recognised, and METHOD auto kept a
network that printed the block grid into the output (QA, a Wald case of WorldView-2 pair 1: ERGAS 13.05 against
Brovey's 10.92; 7.43 from the native MS, as now from the repeated one).

``find`` samples windows of the MS and looks, for each k that makes a plausible ratio, for blocks that are constant
in every band; ``native_view`` reads such an MS at its own pixel (one value per block, no resampling), so the ratio,
the sensor detection and the self-check see the true ratio. Flat areas (water, saturation, an 8-bit scene's dark
shadows) are constant blocks in any raster: only blocks that differ from a neighbouring block are evidence, and a
share of them (SHARE) must be constant.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
from osgeo import gdal

from .errors import InputError
from .feedback import Checkpoint, never_cancelled
from .gdalutil import gdal_call, named_view
from .raster_io import RasterInfo, is_nodata
from .shellcmd import beside, shell_arg
from .window_sample import spread_windows

WINDOW = 120       # pixels per side of a sampled window (36 windows: 0.1-0.5 s on a 2000 x 2000 MS)
WINDOWS = 6        # windows per side of the sampling grid
SHARE = 0.99       # share of the blocks that differ from a neighbour which must be constant in every band
MIN_BLOCKS = 100   # such blocks needed to decide at all (a nearly flat MS is left as it is)
TRUE_RATIOS = (2.0, 6.0)   # MS/PAN ratios a product plausibly has: a repeat is looked for only where k makes one
MAX_K = 6          # the largest block side looked for


@dataclass(frozen=True)
class Repeat:
    """An MS whose values repeat in ``k`` x ``k`` blocks, the first whole block at pixel (``row``, ``col``)."""

    k: int
    row: int
    col: int
    constant: int     # sampled blocks, differing from a neighbour, constant in every band
    informative: int  # sampled blocks differing from a neighbour


def sample(ds: gdal.Dataset, checkpoint: Checkpoint = never_cancelled) -> list[tuple[int, int, np.ndarray]]:
    """Up to WINDOWS x WINDOWS windows (row, col, array (C, h, w) float64) spread over ``ds``, at full resolution."""
    return spread_windows(ds, WINDOW, WINDOWS, checkpoint)


def _valid(win: np.ndarray, info: RasterInfo) -> np.ndarray:
    """(h, w): pixels that hold data in every band (finite, not nodata), as the pipeline reads them. Without a
    nodata value, 0 in every band is no evidence either: a scene-edge fill (``pipeline.undeclared_fills``) whose
    edge need not follow the blocks (solaris WorldView-2 pair 2: 64 blocks half 0, half data)."""
    ok = np.isfinite(win).all(axis=0)
    if info.nodata is not None:
        ok &= ~is_nodata(win, info.nodata, info.dtype).any(axis=0)
    else:
        ok &= (win != 0).any(axis=0)
    return ok


def _blocks(win: np.ndarray, ok: np.ndarray, k: int, r0: int, c0: int) -> tuple[int, int]:
    """(constant, informative) k x k blocks of one window whose first whole block starts at (r0, c0): informative
    when it has two valid pixels or more and its values differ from those of its right or lower neighbour block (or
    within it), constant when it is informative and holds one value per band."""
    c, h, w = win.shape
    nr, nc = (h - r0) // k, (w - c0) // k
    if nr < 2 or nc < 2:
        return 0, 0
    a = win[:, r0:r0 + nr * k, c0:c0 + nc * k].reshape(c, nr, k, nc, k)
    m = ok[r0:r0 + nr * k, c0:c0 + nc * k].reshape(nr, k, nc, k)
    hi = np.where(m, a, -np.inf).max(axis=(2, 4))   # (C, nr, nc)
    lo = np.where(m, a, np.inf).min(axis=(2, 4))
    count = m.sum(axis=(1, 3))
    inside = (hi > lo).any(axis=0)
    # the block's range widened by its right and lower neighbours' (blocks without data widen nothing)
    hi2, lo2 = hi.copy(), lo.copy()
    hi2[:, :, :-1] = np.maximum(hi2[:, :, :-1], hi[:, :, 1:])
    lo2[:, :, :-1] = np.minimum(lo2[:, :, :-1], lo[:, :, 1:])
    hi2[:, :-1] = np.maximum(hi2[:, :-1], hi[:, 1:])
    lo2[:, :-1] = np.minimum(lo2[:, :-1], lo[:, 1:])
    differs = (hi2 > lo2).any(axis=0)
    # the last row and column have no right / lower neighbour of their own in the window: left out
    evidence = (count >= 2) & differs
    evidence[-1, :] = False
    evidence[:, -1] = False
    return int((evidence & ~inside).sum()), int(evidence.sum())


def _edges(windows: list[tuple[int, int, np.ndarray]], valid: list[np.ndarray]) -> list[tuple[np.ndarray, ...]]:
    """Per window (rows, cols): the row index i (in the raster) of each pair of rows i - 1, i whose valid pixels differ
    somewhere, weighted by how many pixels do; likewise for columns. Computed once for every k tried."""
    out = []
    for (r, c, win), ok in zip(windows, valid):
        down = (win[:, 1:] != win[:, :-1]).any(axis=0) & ok[1:] & ok[:-1]            # rows i - 1, i differ
        across = (win[:, :, 1:] != win[:, :, :-1]).any(axis=0) & ok[:, 1:] & ok[:, :-1]
        out.append((r + 1 + np.arange(down.shape[0]), down.sum(axis=1),
                    c + 1 + np.arange(across.shape[1]), across.sum(axis=0)))
    return out


def _phase(edges: list[tuple[np.ndarray, ...]], k: int) -> tuple[int, int] | None:
    """The (row, col) residue modulo ``k`` at which block edges lie: along each axis, the residue where neighbouring
    valid pixels differ most often. None when they also differ at the other residues, inside the would-be blocks, in
    more than 1 - SHARE of the pairs (any raster that is not repeated: the block test is then not needed)."""
    found = []
    for at, counts in ((0, 1), (2, 3)):
        per = np.zeros(k)
        for e in edges:
            np.add.at(per, e[at] % k, e[counts])
        edge = int(np.argmax(per))
        if per.sum() == 0 or per.sum() - per[edge] > (1.0 - SHARE) * per[edge] * (k - 1):
            return None
        found.append(edge)
    return found[0], found[1]


def find(ds: gdal.Dataset, info: RasterInfo, ratio: float, checkpoint: Checkpoint = never_cancelled
         ) -> tuple[Repeat | None, dict[int, tuple[int, int]]]:
    """(the repeat found, else None; every k tried -> (constant, informative) blocks) for the MS ``ds`` whose pixel
    is ``ratio`` times the PAN's. A k is tried only where ``ratio`` x k lies in TRUE_RATIOS; the largest k whose
    informative blocks are SHARE constant wins (a 4 x 4 repeat is a 2 x 2 one too)."""
    ks = [k for k in range(2, MAX_K + 1) if TRUE_RATIOS[0] - 1e-3 <= ratio * k <= TRUE_RATIOS[1] + 1e-3
          and min(info.width, info.height) >= 8 * k]
    shares: dict[int, tuple[int, int]] = {}
    if not ks:
        return None, shares
    windows = sample(ds, checkpoint)
    valid = [_valid(win, info) for _, _, win in windows]
    edges = _edges(windows, valid)
    best = None
    for k in ks:
        checkpoint()
        phase = _phase(edges, k)
        if phase is None:
            shares[k] = (0, 0)
            continue
        pr, pc = phase
        constant = informative = 0
        for (r, c, win), ok in zip(windows, valid):
            got = _blocks(win, ok, k, (pr - r) % k, (pc - c) % k)
            constant, informative = constant + got[0], informative + got[1]
        shares[k] = (constant, informative)
        if informative >= MIN_BLOCKS and constant >= SHARE * informative:
            best = Repeat(k, pr, pc, constant, informative)   # ks rise: the largest that passes stays
    return best, shares


def native_view(ds: gdal.Dataset, info: RasterInfo, rep: Repeat) -> tuple[gdal.Dataset, RasterInfo]:
    """(view, its info): the MS at its own pixel, one value per ``rep`` block (the block's value: GDAL's warper,
    nearest neighbour from the block's centre, onto the blocks' grid; a partial block at an edge is left out)."""
    k, gt = rep.k, info.gt
    nc, nr = (info.width - rep.col) // k, (info.height - rep.row) // k
    x0, y0 = gt[0] + rep.col * gt[1], gt[3] + rep.row * gt[5]
    x1, y1 = x0 + nc * k * gt[1], y0 + nr * k * gt[5]
    opts = gdal.WarpOptions(format="VRT", outputBounds=(x0, y1, x1, y0), width=nc, height=nr, resampleAlg="near")
    view, msg = gdal_call(gdal.Warp, "", ds, options=opts)
    if view is None:
        raise InputError(f"cannot read the MS raster at its own pixel: {msg}")
    return named_view(view, ds), dataclasses.replace(info, width=nc, height=nr, gt=tuple(view.GetGeoTransform()))


def _size(v: float) -> str:
    return f"{abs(v):.10g}"


def store_command(info: RasterInfo, rep: Repeat) -> str:
    """The gdal_translate command that writes the MS at its own pixel (the blocks' values, nearest neighbour)."""
    k, gt = rep.k, info.gt
    nc, nr = (info.width - rep.col) // k, (info.height - rep.row) // k
    win = "" if (rep.row, rep.col, nc * k, nr * k) == (0, 0, info.width, info.height) else \
        f"-srcwin {rep.col} {rep.row} {nc * k} {nr * k} "
    src = info.path or "ms.tif"
    return (f"gdal_translate {win}-tr {_size(gt[1] * k)} {_size(gt[5] * k)} -r nearest {shell_arg(src)} "
            f"{shell_arg(beside(src, '_native.tif'))}")


def warning(info: RasterInfo, rep: Repeat, ratio: float) -> str:
    """What was found, what the run does about it, and the command that stores the MS so."""
    k = rep.k
    share = 100.0 * rep.constant / rep.informative
    return (f"The MS raster repeats each of its values in {k} x {k} pixel blocks ({share:.1f} % of the "
            f"{rep.informative} sampled blocks that differ from their neighbours hold one value in every band): it is "
            f"an MS stored upsampled by nearest neighbour, whose own pixel is {_size(info.gt[1] * k)} x "
            f"{_size(info.gt[5] * k)}, not {_size(info.gt[1])} x {_size(info.gt[5])}. It is read at its own pixel "
            f"(one value per block, no resampling): the MS/PAN ratio is {ratio * k:.4g}, not {ratio:.4g}. To store it "
            f"so: {store_command(info, rep)}")


def applies(info: RasterInfo) -> bool:
    """Whether the MS grid is one a block view can be made on: georeferenced, north-up, neither rotated nor
    mirrored (other layouts are read through plan_grid's views and keep their ratio)."""
    gt = info.gt
    return info.georeferenced and not info.rotated and gt[1] > 0 and gt[5] < 0 and math.isfinite(gt[1] * gt[5])


def with_native_grid(ds: gdal.Dataset, info: RasterInfo, ratio: float | None,
                     checkpoint: Checkpoint = never_cancelled) -> tuple[gdal.Dataset, RasterInfo, str | None]:
    """(dataset, info, warning): an MS stored repeated in k x k blocks read at its own pixel, with the warning that
    says so; (``ds``, ``info``, None) when it is not, or when ``ratio`` (its apparent MS/PAN ratio) is None."""
    if ratio is None or not applies(info):
        return ds, info, None
    rep, _ = find(ds, info, ratio, checkpoint)
    if rep is None:
        return ds, info, None
    view, native = native_view(ds, info, rep)
    return view, native, warning(info, rep, ratio)
