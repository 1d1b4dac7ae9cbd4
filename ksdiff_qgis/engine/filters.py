"""Resampling primitives shared by the pipeline, the classical methods, Wald's protocol and model_core.

Geometry convention: pixel ``i`` of a fine grid spans ``[i, i+1)``; coarse pixel ``k`` of a grid
``ratio`` times coarser spans ``[k*ratio, (k+1)*ratio)`` of the fine grid it is anchored to, so its
centre is ``(k + 0.5) * ratio``. Every function here is exact about that geometry, which is what
keeps georeferencing right and makes tiled results equal untiled ones.

The upsampler used everywhere in the project (LMS, GLP, Wald test cases) is separable Keys cubic
convolution (a = -0.5) evaluated at the true sub-pixel position of each fine pixel centre.
"""
from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

MTF_TAPS = 41


def mtf_sigma(gain: float, ratio: int) -> float:
    """Std (fine pixels) of the Gaussian whose response at the coarse Nyquist frequency is ``gain``."""
    if not 0.0 < gain < 1.0:
        raise ValueError(f"MTF gain must be in (0, 1), got {gain}")
    return ratio * math.sqrt(-2.0 * math.log(gain)) / math.pi


def mtf_kernel(gain: float, ratio: int, taps: int = MTF_TAPS, shift: float = 0.0) -> np.ndarray:
    """1-D Gaussian kernel (normalised to sum 1) sampled at ``n + shift`` for n in [-taps//2, taps//2]."""
    half = taps // 2
    x = np.arange(-half, half + 1, dtype=np.float64) + shift
    k = np.exp(-0.5 * (x / mtf_sigma(gain, ratio)) ** 2)
    return k / k.sum()


def convolve_axis(img: np.ndarray, kernel: np.ndarray, axis: int) -> np.ndarray:
    """'Same'-size correlation of ``img`` with a 1-D odd ``kernel`` along ``axis`` (symmetric padding)."""
    half = len(kernel) // 2
    pad = [(0, 0)] * img.ndim
    pad[axis] = (half, half)
    padded = np.pad(img, pad, mode="symmetric")
    n = img.shape[axis]
    out = np.zeros(img.shape, dtype=np.float32)
    tmp = np.empty(img.shape, dtype=np.float32)
    for t, w in enumerate(kernel):
        # a strided view, not a gather: no index array and no copy per tap
        np.multiply(_axis_slice(padded, axis, t, n, 1), np.float32(w), out=tmp)
        out += tmp
    return out


def _axis_slice(arr: np.ndarray, axis: int, start: int, count: int, step: int) -> np.ndarray:
    """View of ``count`` elements of ``arr`` along ``axis`` from ``start`` every ``step``."""
    index = [slice(None)] * arr.ndim
    index[axis] = slice(start, start + (count - 1) * step + 1, step)
    return arr[tuple(index)]


def _fir(img: np.ndarray, kernel, axis: int, start: int, count: int, step: int) -> np.ndarray:
    """sum_t kernel[t] * img[start + t + j*step] along ``axis`` for j < count, in float32.

    Taps are added in kernel order, term 0 first: the same arithmetic as a gather-based loop.
    """
    shape = list(img.shape)
    shape[axis] = count
    out = np.empty(shape, dtype=np.float32)
    tmp = np.empty(shape, dtype=np.float32)
    for t, w in enumerate(kernel):
        np.multiply(_axis_slice(img, axis, start + t, count, step), np.float32(w), out=tmp if t else out)
        if t:
            out += tmp
    return out


def lowpass(img: np.ndarray, gain: float, ratio: int) -> np.ndarray:
    """MTF-matched Gaussian low-pass of the last two axes, on the same grid."""
    k = mtf_kernel(gain, ratio)
    return convolve_axis(convolve_axis(img, k, -2), k, -1)


def _decimate_axis(img: np.ndarray, kernel: np.ndarray, ratio: int, axis: int, origin: int,
                   centre: int | None = None) -> tuple[np.ndarray, int]:
    """Filter-and-sample along ``axis``: coarse sample k takes the kernel around fine pixel k*ratio + ``centre``
    (default ``ratio // 2``).

    ``origin`` is the global fine index of ``img``'s first element on that axis; coarse pixels are
    anchored at global fine index 0, so tiles of one scene produce the same coarse samples.
    Only coarse pixels whose full kernel support lies inside ``img`` are returned. Returns the samples
    and the global index of the first coarse pixel.
    """
    half = len(kernel) // 2
    n = img.shape[axis]
    off = ratio // 2 if centre is None else centre
    k_first = math.ceil((origin + half - off) / ratio)
    k_last = math.floor((origin + n - 1 - half - off) / ratio)
    if k_last < k_first:
        raise ValueError("array too small for the decimation filter")
    first_centre = k_first * ratio + off - origin
    return _fir(img, kernel, axis, first_centre - half, k_last - k_first + 1, ratio), k_first


def _centre_tap(ratio: int, phase: float) -> tuple[int, float]:
    """(fine pixel the kernel is centred on, kernel shift) for coarse pixel 0 spanning ``[phase, phase + ratio)``.

    Its centre is at fine index ``phase + (ratio - 1) / 2``; the kernel sits on the next fine pixel up and is sampled
    that far off centre, so phase 0 gives ``ratio // 2`` and a half-pixel shift for an even ratio, as before.
    """
    c = phase + (ratio - 1) / 2
    n0 = math.ceil(c - 1e-6)   # float noise in a georeference does not move the kernel by a whole pixel
    return n0, n0 - c


# fine pixels: a grid offset below this is float noise from the geotransforms and counts as aligned. Only that:
# snapping a real offset (0.05 did, in the reprojection indices) measured a correctly placed fusion that far off, and
# the indices jumped there (QA: Landsat 8 KSDiff R-ERGAS +7.4 % between offsets 0.050 and 0.045)
GRID_TOL = 1e-6


def split_corner(corner: tuple[float, float]) -> tuple[tuple[int, int], tuple[float, float]]:
    """A coarse grid's corner (row, col) in fine pixels as an integer origin and a ``decimate`` phase in [0, 1):
    only float noise (``GRID_TOL``) snaps to the lattice, per axis, so a real offset however small is honoured."""
    pos = [float(round(x)) if abs(x - round(x)) < GRID_TOL else float(x) for x in corner]
    origin = (math.floor(pos[0]), math.floor(pos[1]))
    return origin, (pos[0] - origin[0], pos[1] - origin[1])


def decimate(img: np.ndarray, gains, ratio: int, origin: tuple[int, int] = (0, 0),
             taps: int = MTF_TAPS, phase: tuple[float, float] = (0.0, 0.0)) -> tuple[np.ndarray, tuple[int, int]]:
    """MTF-filter each band with its gain and decimate by ``ratio`` (Wald degradation).

    ``img`` is (H, W) or (C, H, W); ``gains`` one value or one per band; ``taps`` the filter length.
    Each coarse sample is the MTF Gaussian evaluated at the coarse pixel's centre. For an even ratio that centre falls
    between fine pixels, so the Gaussian is sampled half a pixel off centre: the coarse grid is exactly the fine grid
    with ``ratio``-times larger pixels and the same origin. ``phase`` (row, col), in fine pixels, moves the coarse grid
    by a fraction of a fine pixel (Landsat 8's MS grid sits half a PAN pixel off the PAN's): the Gaussian is then
    evaluated at the moved centres, so the coarse samples are those of the moved grid without resampling anything.
    Returns the coarse image and the global coarse index (row, col) of its first pixel.
    """
    squeeze = img.ndim == 2
    arr = img[None] if squeeze else img
    g = np.broadcast_to(np.asarray(gains, dtype=np.float64), (arr.shape[0],))
    (row_c, row_s), (col_c, col_s) = _centre_tap(ratio, phase[0]), _centre_tap(ratio, phase[1])
    bands = []
    first = (0, 0)
    for b in range(arr.shape[0]):
        kr = mtf_kernel(float(g[b]), ratio, taps, shift=row_s)
        kc = kr if col_s == row_s else mtf_kernel(float(g[b]), ratio, taps, shift=col_s)
        rows, r0 = _decimate_axis(arr[b].astype(np.float32, copy=False), kr, ratio, 0, origin[0], row_c)
        out, c0 = _decimate_axis(rows, kc, ratio, 1, origin[1], col_c)
        bands.append(out)
        first = (r0, c0)
    res = np.stack(bands)
    return (res[0] if squeeze else res), first


def _cubic_taps(n_out: int, ratio: float, origin: float, n_in: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (4, n_out) and Keys weights (4, n_out) sampling a coarse axis at fine pixel centres.

    ``origin`` is where coarse pixel 0's leading edge sits, in fine pixels of the output array.
    """
    u = (np.arange(n_out, dtype=np.float64) + 0.5 - origin) / ratio - 0.5
    k = np.floor(u)
    t = u - k
    w = np.stack(
        [
            ((-0.5 * t + 1.0) * t - 0.5) * t,
            (1.5 * t - 2.5) * t * t + 1.0,
            ((-1.5 * t + 2.0) * t + 0.5) * t,
            (0.5 * t - 0.5) * t * t,
        ]
    )
    idx = np.clip(k.astype(np.int64) + np.arange(-1, 3)[:, None], 0, n_in - 1)
    return idx, w.astype(np.float32)


def upsample(lr: np.ndarray, ratio: float, out_shape: tuple[int, int],
             origin: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """Cubic (Keys, a=-0.5) interpolation of ``lr`` (C, h, w) or (h, w) onto a fine grid.

    ``origin`` = (row, col) position, in output pixels, of the top-left corner of ``lr[..., 0, 0]``
    (may be fractional or negative: this is how sub-pixel grid offsets are honoured). Samples beyond
    ``lr`` repeat its edge.
    """
    squeeze = lr.ndim == 2
    arr = (lr[None] if squeeze else lr).astype(np.float32, copy=False)
    if float(ratio).is_integer():
        # columns first, on the small array: the big pass then writes whole contiguous rows
        cols = _cubic_axis_phased(arr, int(ratio), origin[1], out_shape[1], 2)
        out = _cubic_axis_phased(cols, int(ratio), origin[0], out_shape[0], 1)
    else:
        ri, rw = _cubic_taps(out_shape[0], ratio, origin[0], arr.shape[1])
        ci, cw = _cubic_taps(out_shape[1], ratio, origin[1], arr.shape[2])
        rows = sum(rw[t][None, :, None] * arr[:, ri[t], :] for t in range(4))
        out = sum(cw[t][None, None, :] * rows[:, :, ci[t]] for t in range(4)).astype(np.float32, copy=False)
    return out[0] if squeeze else out


def _cubic_axis_phased(arr: np.ndarray, ratio: int, origin: float, n_out: int, axis: int) -> np.ndarray:
    """Cubic interpolation along ``axis`` by phase: output pixels ``p, p+ratio, ...`` share one set of weights.

    Each phase reads four contiguous views of the edge-padded input (no gathers). Weights and the order
    of the four terms are those of ``_cubic_taps``, so results equal the gather-based form.
    """
    n_in = arr.shape[axis]
    idx, w = _cubic_taps(n_out, ratio, origin, n_in)
    first = math.floor((0.5 - origin) / ratio - 0.5) - 1
    last = math.floor((n_out - 0.5 - origin) / ratio - 0.5) + 2
    lo, hi = max(0, -first), max(0, last - (n_in - 1))
    pad = [(0, 0)] * arr.ndim
    pad[axis] = (lo, hi)
    src = np.pad(arr, pad, mode="edge") if lo or hi else arr   # edge padding == clamped indices
    shape = list(arr.shape)
    shape[axis] = n_out
    out = np.empty(shape, dtype=np.float32)
    for p in range(min(ratio, n_out)):
        count = len(range(p, n_out, ratio))
        k0 = math.floor((p + 0.5 - origin) / ratio - 0.5)   # coarse index left of output pixel p
        acc = _fir(src, w[:, p], axis, k0 - 1 + lo, count, 1)
        index = [slice(None)] * arr.ndim
        index[axis] = slice(p, None, ratio)
        out[tuple(index)] = acc
    return out


def wald_degrade(img: np.ndarray, gains, ratio: int) -> np.ndarray:
    """Degrade a whole image by Wald's protocol: symmetric padding, MTF filter, decimation.

    The result has exactly ``H // ratio`` x ``W // ratio`` pixels on the grid with the same origin.
    """
    squeeze = img.ndim == 2
    arr = img[None] if squeeze else img
    h, w = arr.shape[-2] // ratio * ratio, arr.shape[-1] // ratio * ratio
    arr = arr[:, :h, :w]
    half = MTF_TAPS // 2 + ratio
    padded = np.pad(arr.astype(np.float32, copy=False), ((0, 0), (half, half), (half, half)), mode="symmetric")
    out, first = decimate(padded, gains, ratio, origin=(-half, -half))
    # first coarse pixel is global index 0 only if the padding covered the support; crop to the grid
    r0, c0 = -first[0], -first[1]
    out = out[:, r0 : r0 + h // ratio, c0 : c0 + w // ratio]
    return out[0] if squeeze else out


def grow_mask(mask: np.ndarray, r: int) -> np.ndarray:
    """``mask`` dilated by a (2r+1)^2 square (separable running maximum, no wrap-around): nodata grown by a
    filter's reach."""
    out = np.pad(mask, r)
    out = sliding_window_view(out, 2 * r + 1, axis=0).any(-1)
    return sliding_window_view(out, 2 * r + 1, axis=1).any(-1)
