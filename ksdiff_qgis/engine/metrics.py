"""Pansharpening quality indices (numpy only: this module runs inside QGIS's own Python).

Images are ``(C, H, W)`` arrays (a 2-D array is one band). ``ref`` is the reference (ground truth at
reduced resolution, or LMS / PAN for the no-reference indices), ``fused`` the image under test.
The definitions are the functions below (the ``ksdiff:assess`` HTML report's Notes say them in words). They follow
the community toolbox (Vivone et al.) except where said: SCC and Ds are not the toolbox's.

* ``sam``    spectral angle mapper, degrees, mean over pixels whose two spectra are non-zero (Kahan's atan2 form of
             the angle: exactly 0 for identical spectra).
* ``ergas``  ``100/ratio * sqrt(mean_b(MSE_b / mean(ref_b)^2))``.
* ``q_avg``  "Q": mean over bands of the universal image quality index (UIQI) averaged over all
             ``block x block`` sliding windows (``img_qi.m``).
* ``q2n``    hypercomplex UIQI (Q4 / Q8) on non-overlapping 32x32 blocks, bands zero-padded to a power
             of two; sizes that are not a multiple of the block are mirror-padded (``q2n.m``). A block where a
             reference band is constant and the fused band is not scores ~0 (``onions_quality.m`` alike).
* ``scc``    correlation (no mean removal) of Sobel gradient magnitudes over interior pixels, all bands (not the
             toolbox's ``SCC.m``, which filters with zero padding, so the image border counts with false edges).
* ``psnr``   on data divided by the sensor's maximum value: ``10 log10(1 / MSE)``.
* ``ssim``   Wang et al. (11x11 Gaussian, sigma 1.5, K1 0.01, K2 0.03) per band on data / max, averaged.
* ``d_lambda_khan``  ``1 - Q2n(LMS, MTF-filtered fused)`` (fused low-passed on its own grid with the
             per-band MS gains).
* ``d_s``    ``mean_b |Q(F_b, PAN) - Q(LMS_b, PAN_LP)|`` with ``PAN_LP`` the PAN degraded by Wald's
             protocol (PAN MTF gain) and re-interpolated with the project's cubic upsampler, Q on every 32x32
             sliding window, all at PAN resolution (the toolbox's ``D_s.m`` takes non-overlapping blocks and a PAN
             degraded by ``imresize`` and re-interpolated with its 23-tap filter).
* ``hqnr``   ``(1 - D_lambda) (1 - D_s)``: the hybrid QNR (Khan's D_lambda, this D_s at PAN resolution), not
             Alparone et al.'s 2008 QNR (D_lambda from the Q of band pairs, D_s at MS scale), whose values differ
             (QA, WorldView-2 pair 1 fused by KSDiff: HQNR 0.934, QNR 0.908).
* ``d_rho``  Scarpa & Ciotola (2022): ``1 - mean`` over bands and ``ratio x ratio`` windows of the local
             correlation coefficient between each fused band and the PAN, clipped to [-1, 1]. Not comparable with
             their fr-pansh-eval-tool's NumPy ``local_cross_correlation``, which zero-pads the border, subtracts
             from each pixel its own local mean and floors the covariance at 1e-20: lower values (WorldView-2 pair 1
             fused by KSDiff 0.185 against 0.268, Landsat 8 0.307 against 0.422).
* ``reprojection``  R-Q2n, R-SAM, R-ERGAS: the fused image filtered with the MS MTF and sampled at the MS
             pixel centres, against the original MS, which is never resampled (``reproject_at`` on any grid
             offset, as Landsat 8's; ``reprojection`` on aligned grids: Wald's degradation, ``filters.wald_degrade``).
* ``checkerboard_response``  per band ``mean |x * [[1,-1],[-1,1]]| / mean(|dx x| + |dy x|)`` over 2x2
             windows: 1 for a pure one-pixel checkerboard, 0 for anything without one, ~0.71 for white
             noise; a real PAN scores ~0.4-0.5.

Every index accepts an optional ``mask`` (H, W) of valid pixels: pixels, windows or blocks touching an
invalid pixel are left out.
"""
from __future__ import annotations

import math

import numpy as np

from .filters import decimate, lowpass, split_corner, upsample, wald_degrade

EPS = np.finfo(np.float64).eps


def _as3(x) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise ValueError(f"expected a (C, H, W) or (H, W) array, got shape {a.shape}")
    return a


def _pair(fused, ref):
    f, r = _as3(fused), _as3(ref)
    if f.shape != r.shape:
        raise ValueError(f"shape mismatch: fused {f.shape} vs reference {r.shape}")
    return f, r


def _mask(mask, shape) -> np.ndarray | None:
    if mask is None:
        return None
    m = np.asarray(mask, dtype=bool)
    if m.shape != tuple(shape[-2:]):
        raise ValueError(f"mask shape {m.shape} does not match image {shape[-2:]}")
    return m


# ----------------------------------------------------------------------------------------- helpers
def box_sum(img: np.ndarray, size: int) -> np.ndarray:
    """Sum over every ``size x size`` window ('valid'): integral image, any leading axes."""
    c = np.cumsum(np.cumsum(img, axis=-2, dtype=np.float64), axis=-1)
    c = np.pad(c, [(0, 0)] * (c.ndim - 2) + [(1, 0), (1, 0)])
    return c[..., size:, size:] - c[..., :-size, size:] - c[..., size:, :-size] + c[..., :-size, :-size]


def _valid_windows(mask: np.ndarray | None, shape, size: int) -> np.ndarray | None:
    """Windows ('valid' positions) whose whole support is valid."""
    if mask is None:
        return None
    return box_sum((~mask).astype(np.float64), size) < 0.5


def _conv_valid(img: np.ndarray, k: np.ndarray, axis: int) -> np.ndarray:
    n = img.shape[axis] - len(k) + 1
    out = None
    for t, w in enumerate(k):
        term = w * np.take(img, np.arange(t, t + n), axis=axis)
        out = term if out is None else out + term
    return out


# --------------------------------------------------------------------------------------- spectral
def spectral_angles(f: np.ndarray, r: np.ndarray, nf: np.ndarray, nr: np.ndarray) -> np.ndarray:
    """Angle in degrees between the spectra ``f`` and ``r`` ``(C, N)`` of norms ``nf``, ``nr`` (both > 0).

    Kahan's ``2 atan2(|u - v|, |u + v|)`` of the unit vectors: arccos of the cosine gave 2.4e-7 degrees for
    identical images (a cosine one rounding step below 1) and loses precision at every small angle."""
    u, v = f / nf, r / nr
    return np.degrees(2.0 * np.arctan2(np.sqrt(np.sum((u - v) ** 2, axis=0)), np.sqrt(np.sum((u + v) ** 2, axis=0))))


def sam(fused, ref, mask=None) -> float:
    """Mean spectral angle in degrees over pixels where both spectra are non-zero (and valid)."""
    f, r = _pair(fused, ref)
    m = _mask(mask, f.shape)
    nf, nr = np.sqrt(np.sum(f * f, axis=0)), np.sqrt(np.sum(r * r, axis=0))
    ok = (nf > 0) & (nr > 0)
    if m is not None:
        ok &= m
    if not ok.any():
        return float("nan")
    return float(np.mean(spectral_angles(f[:, ok], r[:, ok], nf[ok], nr[ok])))


def _valid_pixels(f, r, m):
    if m is None:
        return f.reshape(f.shape[0], -1), r.reshape(r.shape[0], -1)
    return f[:, m], r[:, m]


def ergas(fused, ref, ratio: float, mask=None) -> float:
    """ERGAS = 100/ratio * sqrt(mean_b(MSE_b / mean(ref_b)^2))."""
    f, r = _pair(fused, ref)
    fv, rv = _valid_pixels(f, r, _mask(mask, f.shape))
    mse = np.mean((fv - rv) ** 2, axis=1)
    mu = np.mean(rv, axis=1)
    if np.any(mu * mu < EPS):   # ERGAS divides by the band means: a band that averages 0 has no relative error
        return float("nan")
    return float(100.0 / ratio * math.sqrt(np.mean(mse / (mu * mu))))


def rmse_per_band(fused, ref, mask=None) -> np.ndarray:
    f, r = _pair(fused, ref)
    fv, rv = _valid_pixels(f, r, _mask(mask, f.shape))
    return np.sqrt(np.mean((fv - rv) ** 2, axis=1))


def psnr(fused, ref, max_value: float, mask=None) -> float:
    """PSNR in dB of data divided by ``max_value`` (the sensor's maximum), MSE over all bands."""
    f, r = _pair(fused, ref)
    fv, rv = _valid_pixels(f / max_value, r / max_value, _mask(mask, f.shape))
    mse = float(np.mean((fv - rv) ** 2))
    return float("inf") if mse == 0 else 10.0 * math.log10(1.0 / mse)


def psnr_per_band(fused, ref, max_value: float, mask=None) -> np.ndarray:
    f, r = _pair(fused, ref)
    fv, rv = _valid_pixels(f / max_value, r / max_value, _mask(mask, f.shape))
    mse = np.mean((fv - rv) ** 2, axis=1)
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(1.0 / mse)


# ------------------------------------------------------------------------------------- UIQI / Q
def uiqi_map(a, b, block: int = 32, mask=None) -> np.ndarray:
    """UIQI of every ``block x block`` window ('valid': entry (i, j) is the window starting at pixel
    (i, j)); NaN where the window touches an invalid pixel. Literal port of ``img_qi.m`` with integral
    images: a window whose variances are both zero scores its mean term only, one whose means and
    variances are all zero scores 1."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 2:
        raise ValueError(f"uiqi needs two 2-D images of one shape, got {x.shape} and {y.shape}")
    bs = min(block, x.shape[0], x.shape[1])
    n = float(bs * bs)
    m = _mask(mask, x.shape)
    # the (co)variance sums on data centred on its mean: on raw DN (30000 +- 1) the integral images of x*x
    # cancelled to ~1e-3 error per window on 2048^2 pixels (2e-2 on 4096^2); the means are added back after
    cx, cy = _centre(x, m), _centre(y, m)
    x, y = x - cx, y - cy
    c1, c2 = box_sum(x, bs), box_sum(y, bs)
    c11, c22, c12 = box_sum(x * x, bs), box_sum(y * y, bs), box_sum(x * y, bs)
    s1, s2 = c1 + n * cx, c2 + n * cy
    sum_mul = s1 * s2
    sq_sum_mul = s1 * s1 + s2 * s2
    numerator = 4.0 * (n * c12 - c1 * c2) * sum_mul
    den1 = n * (c11 + c22) - c1 * c1 - c2 * c2
    den = den1 * sq_sum_mul
    # img_qi.m's "== 0" tests, within the box sums' rounding (bounded by the integral images' totals): a flat window
    # of non-integer data (an unmasked fill) scored its rounding noise (-5.6e14 on a 300^2 float image)
    tol = 16 * EPS
    e1, e2 = tol * float(np.abs(x).sum()), tol * float(np.abs(y).sum())
    flat = den1 <= tol * n * float((x * x).sum() + (y * y).sum()) + 2 * (np.abs(c1) * e1 + np.abs(c2) * e2)
    zero_mean = (np.abs(s1) <= e1 + tol * n * abs(cx)) & (np.abs(s2) <= e2 + tol * n * abs(cy))
    qmap = np.ones_like(den)
    idx = flat & ~zero_mean
    qmap[idx] = 2.0 * sum_mul[idx] / sq_sum_mul[idx]
    idx = ~flat & ~zero_mean
    qmap[idx] = numerator[idx] / den[idx]
    ok = _valid_windows(m, x.shape, bs)
    if ok is not None:
        qmap[~ok] = np.nan
    return qmap


def _centre(a: np.ndarray, mask: np.ndarray | None) -> float:
    """The mean of ``a`` over its valid pixels (0 when there is none): what the box sums are centred on. Rounded to a
    whole number for integer-valued data, whose centred box sums then stay exact (a flat window keeps a variance of
    exactly 0, which ``uiqi_map`` scores by its means alone)."""
    v = a if mask is None else a[mask]
    c = float(v.mean()) if v.size else 0.0
    if not math.isfinite(c):
        return 0.0
    return float(round(c)) if np.array_equal(v, np.round(v)) else c


def _nanmean(a) -> float:
    a = np.asarray(a, dtype=np.float64)
    fin = np.isfinite(a)
    return float(a[fin].mean()) if fin.any() else float("nan")


def uiqi(a, b, block: int = 32, mask=None) -> float:
    """Universal image quality index of two 2-D images, mean over all sliding ``block`` windows."""
    return _nanmean(uiqi_map(a, b, block, mask))


def q_per_band(fused, ref, block: int = 32, mask=None) -> np.ndarray:
    f, r = _pair(fused, ref)
    return np.array([uiqi(r[b], f[b], block, mask) for b in range(f.shape[0])])


def q_avg(fused, ref, block: int = 32, mask=None) -> float:
    """Q: mean over bands of the UIQI (sliding ``block`` windows)."""
    return float(np.mean(q_per_band(fused, ref, block, mask)))


# ------------------------------------------------------------------------------------------ Q2n
def _conj(v: np.ndarray) -> np.ndarray:
    out = -v
    out[0] = v[0]
    return out


def onion_mult(o1: np.ndarray, o2: np.ndarray) -> np.ndarray:
    """Cayley-Dickson hypercomplex product (components on axis 0), as ``onion_mult.m``."""
    n = o1.shape[0]
    if n == 1:
        return o1 * o2
    h = n // 2
    a, b = o1[:h], _conj(o1[h:])
    c, d = o2[:h], _conj(o2[h:])
    if n == 2:
        return np.concatenate([a * c - d * b, a * d + c * b])
    return np.concatenate([onion_mult(a, c) - onion_mult(d, _conj(b)), onion_mult(_conj(a), d) + onion_mult(c, b)])


def _onions_quality(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Hypercomplex quality of blocks: x (reference), y (fused) as (C, nblocks, npix); returns (C, nblocks)."""
    npx = x.shape[-1]
    k = npx / (npx - 1.0)
    m = x.mean(axis=-1, keepdims=True)
    s = x.std(axis=-1, ddof=1, keepdims=True)
    s = np.where(s == 0, EPS, s)
    xn = (x - m) / s + 1.0
    yn = np.where(m == 0, y - m + 1.0, (y - m) / s + 1.0)
    yn = _conj(yn)
    m1, m2 = xn.mean(axis=-1), yn.mean(axis=-1)                 # (C, nb)
    mod1m2, mod2m2 = np.sum(m1 * m1, axis=0), np.sum(m2 * m2, axis=0)
    int1 = k * np.mean(np.sum(xn * xn, axis=0), axis=-1)
    int2 = k * np.mean(np.sum(yn * yn, axis=0), axis=-1)
    term3 = int1 + int2 - k * (mod1m2 + mod2m2)
    mean_bias = 2.0 * np.sqrt(mod1m2 * mod2m2) / (mod1m2 + mod2m2)
    qu = onion_mult(xn, yn).mean(axis=-1)
    qm = onion_mult(m1, m2)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = (k * qu - k * qm) * mean_bias * (2.0 / term3)
    zero = term3 == 0
    if zero.any():
        q[:, zero] = 0.0
        q[-1, zero] = mean_bias[zero]
    return q


def q2n_map(fused, ref, block: int = 32, shift: int = 32, mask=None) -> np.ndarray:
    """Per-block Q2n values (nby, nbx); NaN for blocks that touch an invalid pixel."""
    f, r = _pair(fused, ref)
    m = _mask(mask, f.shape)
    c, h, w = f.shape
    nby, nbx = math.ceil(h / shift), math.ceil(w / shift)
    ph, pw = (nby - 1) * shift + block - h, (nbx - 1) * shift + block - w
    if ph or pw:  # mirror-pad to whole blocks, as q2n.m
        pad = ((0, 0), (0, ph), (0, pw))
        f, r = np.pad(f, pad, mode="symmetric"), np.pad(r, pad, mode="symmetric")
        if m is not None:
            m = np.pad(m, pad[1:], mode="symmetric")
    n2 = 1 << max(0, math.ceil(math.log2(c)))
    if n2 != c:
        z = np.zeros((n2 - c,) + f.shape[1:])
        f, r = np.concatenate([f, z]), np.concatenate([r, z])
    if shift != block:
        raise ValueError("q2n: only shift == block (non-overlapping blocks) is supported")
    hh, ww = nby * block, nbx * block

    def blocks(a):
        a = a[:, :hh, :ww].reshape(a.shape[0], nby, block, nbx, block)
        return a.transpose(0, 1, 3, 2, 4).reshape(a.shape[0], nby * nbx, block * block)

    q = _onions_quality(blocks(r), blocks(f))
    vals = np.sqrt(np.sum(q * q, axis=0)).reshape(nby, nbx)
    if m is not None:
        bad = blocks((~m)[None].astype(np.float64))[0].sum(axis=-1).reshape(nby, nbx) > 0
        vals[bad] = np.nan
    return vals


def q2n(fused, ref, block: int = 32, shift: int = 32, mask=None) -> float:
    """Q2n (Q4 for 3-4 bands, Q8 for 5-8): mean hypercomplex UIQI over 32x32 blocks."""
    vals = q2n_map(fused, ref, block, shift, mask)
    return float(np.nanmean(vals)) if np.isfinite(vals).any() else float("nan")


# ------------------------------------------------------------------------------------------ SCC
def _sobel_mag(a: np.ndarray) -> np.ndarray:
    """Sobel gradient magnitude at interior pixels (output shrinks by one pixel on each side)."""
    sm = a[:, :-2, :] + 2.0 * a[:, 1:-1, :] + a[:, 2:, :]       # smooth along rows
    gx = sm[:, :, 2:] - sm[:, :, :-2]
    sm = a[:, :, :-2] + 2.0 * a[:, :, 1:-1] + a[:, :, 2:]
    gy = sm[:, 2:, :] - sm[:, :-2, :]
    return np.sqrt(gx * gx + gy * gy)


def _scc_parts(fused, ref, mask=None):
    f, r = _pair(fused, ref)
    m = _mask(mask, f.shape)
    gf, gr = _sobel_mag(f), _sobel_mag(r)
    if m is not None:
        ok = box_sum((~m).astype(np.float64), 3) < 0.5
        gf, gr = gf * ok, gr * ok
    return np.sum(gf * gr, axis=(1, 2)), np.sum(gf * gf, axis=(1, 2)), np.sum(gr * gr, axis=(1, 2))


def scc(fused, ref, mask=None) -> float:
    """Spatial correlation coefficient: sum(GF*GR)/sqrt(sum GF^2 * sum GR^2) of Sobel magnitudes, all bands."""
    fr, ff, rr = _scc_parts(fused, ref, mask)
    den = math.sqrt(float(ff.sum()) * float(rr.sum()))
    return float(fr.sum() / den) if den > 0 else float("nan")


def scc_per_band(fused, ref, mask=None) -> np.ndarray:
    fr, ff, rr = _scc_parts(fused, ref, mask)
    with np.errstate(divide="ignore", invalid="ignore"):
        return fr / np.sqrt(ff * rr)


# ----------------------------------------------------------------------------------------- SSIM
def _gauss(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    x = np.arange(size) - (size - 1) / 2.0
    g = np.exp(-0.5 * (x / sigma) ** 2)
    return g / g.sum()


def ssim_map(fused, ref, max_value: float, mask=None) -> np.ndarray:
    """SSIM (Wang et al. 2004) map per band (C, H-10, W-10) on data / ``max_value``: entry (i, j) is the
    11x11 Gaussian window starting at pixel (i, j); NaN where it touches an invalid pixel."""
    f, r = _pair(fused, ref)
    m = _mask(mask, f.shape)
    f, r = f / max_value, r / max_value
    g = _gauss()
    if min(f.shape[1:]) < len(g):
        raise ValueError("ssim needs images of at least 11x11 pixels")

    def filt(a):
        return _conv_valid(_conv_valid(a, g, -2), g, -1)

    c1, c2 = 0.01 ** 2, 0.03 ** 2
    mu1, mu2 = filt(r), filt(f)
    s11 = filt(r * r) - mu1 * mu1
    s22 = filt(f * f) - mu2 * mu2
    s12 = filt(r * f) - mu1 * mu2
    smap = ((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1 * mu1 + mu2 * mu2 + c1) * (s11 + s22 + c2))
    ok = _valid_windows(m, f.shape, len(g))
    if ok is not None:
        smap[:, ~ok] = np.nan
    return smap


def ssim_per_band(fused, ref, max_value: float, mask=None) -> np.ndarray:
    """SSIM of each band, mean over the 'valid' 11x11 windows."""
    smap = ssim_map(fused, ref, max_value, mask)
    return np.array([_nanmean(b) for b in smap])


def ssim(fused, ref, max_value: float, mask=None) -> float:
    return float(np.mean(ssim_per_band(fused, ref, max_value, mask)))


# -------------------------------------------------------------------------------- no reference
def mtf_filter(img, gains, ratio: int) -> np.ndarray:
    """Low-pass every band with its MTF-matched Gaussian, on the same grid (no decimation)."""
    a = _as3(img)
    g = np.broadcast_to(np.asarray(gains, dtype=np.float64), (a.shape[0],))
    return np.stack([lowpass(a[b], float(g[b]), ratio).astype(np.float64) for b in range(a.shape[0])])


def d_lambda_khan(fused, lms, gains, ratio: int, block: int = 32, mask=None) -> float:
    """Khan's spectral distortion: 1 - Q2n(LMS, MTF-filtered fused)."""
    f, l = _pair(fused, lms)
    return 1.0 - q2n(mtf_filter(f, gains, ratio), l, block, block, mask)


def pan_lowpass(pan, pan_gain: float, ratio: int) -> np.ndarray:
    """PAN degraded by Wald's protocol (PAN MTF gain, decimation) and cubic re-interpolated to its grid."""
    p = np.asarray(pan, dtype=np.float64)
    if p.ndim == 3:
        p = p[0]
    lr = wald_degrade(p.astype(np.float32), pan_gain, ratio)
    return upsample(lr, ratio, p.shape).astype(np.float64)


def d_s_per_band(fused, pan, lms, pan_gain: float, ratio: int, block: int = 32, mask=None,
                 pan_lp=None) -> np.ndarray:
    f, l = _pair(fused, lms)
    p = np.asarray(pan, dtype=np.float64)
    if p.ndim == 3:
        p = p[0]
    lp = pan_lowpass(p, pan_gain, ratio) if pan_lp is None else np.asarray(pan_lp, dtype=np.float64)
    return np.array([abs(uiqi(f[b], p, block, mask) - uiqi(l[b], lp, block, mask)) for b in range(f.shape[0])])


def d_s(fused, pan, lms, pan_gain: float, ratio: int, block: int = 32, q: float = 1.0, mask=None,
        pan_lp=None) -> float:
    """Spatial distortion: (mean_b |Q(F_b, PAN) - Q(LMS_b, PAN_LP)|^q)^(1/q)."""
    d = d_s_per_band(fused, pan, lms, pan_gain, ratio, block, mask, pan_lp)
    return float(np.mean(d ** q) ** (1.0 / q))


def hqnr(d_lambda: float, ds: float) -> float:
    return (1.0 - d_lambda) * (1.0 - ds)


# ------------------------------------------------------------ consistency (Scarpa & Ciotola 2022)
def local_corr_map(a, b, size: int, mask=None) -> np.ndarray:
    """Correlation coefficient of two 2-D images on every ``size x size`` window ('valid' positions),
    clipped to [-1, 1]; NaN where the window touches an invalid pixel. A flat window (zero variance in
    either image) scores 0, as in the reference implementation."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 2:
        raise ValueError(f"local correlation needs two 2-D images of one shape, got {x.shape} and {y.shape}")
    n = float(size * size)
    # centre on the global means first: the box-sum variances then lose no precision on raw DN
    x, y = x - x.mean(), y - y.mean()
    sx, sy = box_sum(x, size), box_sum(y, size)
    vx = box_sum(x * x, size) - sx * sx / n
    vy = box_sum(y * y, size) - sy * sy / n
    cxy = box_sum(x * y, size) - sx * sy / n
    tiny = 1e-12 * max(float(np.abs(x).max(initial=0.0)), float(np.abs(y).max(initial=0.0)), 1.0) ** 2 * n
    flat = (vx <= tiny) | (vy <= tiny)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = np.where(flat, 0.0, cxy / np.sqrt(np.maximum(vx, tiny) * np.maximum(vy, tiny)))
    rho = np.clip(rho, -1.0, 1.0)
    ok = _valid_windows(_mask(mask, x.shape), x.shape, size)
    if ok is not None:
        rho[~ok] = np.nan
    return rho


def d_rho_per_band(fused, pan, ratio: int, mask=None) -> np.ndarray:
    """1 - mean local correlation of each fused band with the PAN on ``ratio x ratio`` windows."""
    f = _as3(fused)
    p = np.asarray(pan, dtype=np.float64)
    p = p[0] if p.ndim == 3 else p
    return np.array([1.0 - _nanmean(local_corr_map(f[b], p, ratio, mask)) for b in range(f.shape[0])])


def d_rho(fused, pan, ratio: int, mask=None) -> float:
    """Dρ (spatial consistency, 0 is ideal): mean over bands of :func:`d_rho_per_band`."""
    return float(np.mean(d_rho_per_band(fused, pan, ratio, mask)))


def _checker_parts(img, mask=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per 2x2 window (top-left at (i, j)): |checkerboard filter|, |dx| + |dy|, and window validity."""
    a = _as3(img)
    cb = np.abs(a[:, :-1, :-1] - a[:, :-1, 1:] - a[:, 1:, :-1] + a[:, 1:, 1:])
    grad = np.abs(a[:, :-1, 1:] - a[:, :-1, :-1]) + np.abs(a[:, 1:, :-1] - a[:, :-1, :-1])
    m = _mask(mask, a.shape)
    ok = np.ones(cb.shape[1:], bool) if m is None else _valid_windows(m, a.shape, 2)
    return cb, grad, ok


def checkerboard_response(img, mask=None) -> np.ndarray:
    """Per band mean |x * [[1,-1],[-1,1]]| / mean(|dx x| + |dy x|) over valid 2x2 windows."""
    cb, grad, ok = _checker_parts(img, mask)
    num, den = cb[:, ok].sum(axis=1), grad[:, ok].sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / den, np.nan)


def reproject(fused, gains, ratio: int) -> np.ndarray:
    """The fused image as the MS sensor would see it: MTF filter per band, decimation by ``ratio``."""
    return wald_degrade(_as3(fused).astype(np.float32), gains, ratio).astype(np.float64)


def reproject_at(fused, gains, ratio: int, corner: tuple[float, float], shape: tuple[int, int]) -> np.ndarray:
    """The fused image as the MS sensor sees it at the MS's own pixel centres: ``shape`` (rows, cols) MS pixels, the
    first of which has its top-left corner at ``corner`` (row, col) in fused pixels, fractional allowed.

    Each band is filtered with its MTF Gaussian evaluated at the MS pixel centres (``filters.decimate`` with a
    phase): the reference MS is never resampled, which would blur its own detail (a quarter-pixel cubic shift keeps
    ~0.69 of it at Nyquist) and flatter smooth fusions. On Landsat 8 the MS centres fall on PAN pixel centres and the
    Gaussian is sampled centred there; on aligned grids this is exactly ``wald_degrade``. The filter's whole support
    must lie in ``fused`` (ValueError otherwise): give the context around the MS pixels.
    """
    a = _as3(fused).astype(np.float32, copy=False)
    o, phase = split_corner(corner)
    red, first = decimate(a, gains, ratio, origin=(-o[0], -o[1]), phase=phase)
    r0, c0 = -first[0], -first[1]
    if r0 < 0 or c0 < 0 or r0 + shape[0] > red.shape[1] or c0 + shape[1] > red.shape[2]:
        raise ValueError(f"the fused array {a.shape[1:]} does not hold the MTF filter's support around the "
                         f"{shape} MS pixels from corner {tuple(corner)}")
    return red[:, r0:r0 + shape[0], c0:c0 + shape[1]].astype(np.float64)


def reprojection(fused, ms, gains, ratio: int, mask=None) -> dict:
    """R-Q2n, R-SAM, R-ERGAS of ``fused`` (``ratio`` x the MS grid, same origin) against ``ms``.

    ``mask`` is on the MS grid. The fused image is trimmed to whole MS pixels; ``ms`` must cover them.
    """
    red = reproject(fused, gains, ratio)
    m = _as3(ms)[:, : red.shape[1], : red.shape[2]]
    if m.shape != red.shape:
        raise ValueError(f"the MS {_as3(ms).shape} does not cover the reprojected fused image {red.shape}")
    mk = None if mask is None else np.asarray(mask, bool)[: red.shape[1], : red.shape[2]]
    return {"R_Q2n": q2n(red, m, mask=mk), "R_SAM": sam(red, m, mk), "R_ERGAS": ergas(red, m, ratio, mk)}


# ------------------------------------------------------------------------------------- bundles
REDUCED = ("SAM", "ERGAS", "Q2n", "Q", "SCC", "PSNR", "SSIM")
FULL = ("D_lambda", "D_s", "HQNR")
# full-resolution consistency indices: Dρ, reprojection (need the original MS), checkerboard (worst band)
CONSISTENCY = ("D_rho", "R_Q2n", "R_SAM", "R_ERGAS", "CB", "CB_PAN")


def reduced_resolution(fused, ref, ratio: int, max_value: float, mask=None) -> dict:
    """All reference-based indices; ``per_band`` holds per-band RMSE, Q, SCC, PSNR and SSIM."""
    f, r = _pair(fused, ref)
    out = {
        "SAM": sam(f, r, mask),
        "ERGAS": ergas(f, r, ratio, mask),
        "Q2n": q2n(f, r, mask=mask),
        "Q": q_avg(f, r, mask=mask),
        "SCC": scc(f, r, mask),
        "PSNR": psnr(f, r, max_value, mask),
        "SSIM": ssim(f, r, max_value, mask),
    }
    out["per_band"] = {
        "RMSE": rmse_per_band(f, r, mask).tolist(),
        "Q": q_per_band(f, r, mask=mask).tolist(),
        "SCC": scc_per_band(f, r, mask).tolist(),
        "PSNR": psnr_per_band(f, r, max_value, mask).tolist(),
        "SSIM": ssim_per_band(f, r, max_value, mask).tolist(),
    }
    return out


def full_resolution(fused, pan, lms, gains, pan_gain: float, ratio: int, mask=None, ms=None,
                    ms_mask=None) -> dict:
    """D_lambda (Khan), D_s, HQNR, Dρ and the checkerboard response (worst band, and the PAN's);
    R-Q2n / R-SAM / R-ERGAS when the original ``ms`` (on the MS grid, same origin) is given, else NaN.
    ``per_band`` holds the per-band D_s, Dρ and checkerboard terms."""
    dl = d_lambda_khan(fused, lms, gains, ratio, mask=mask)
    dsb = d_s_per_band(fused, pan, lms, pan_gain, ratio, mask=mask)
    ds = float(np.mean(dsb))
    drb = d_rho_per_band(fused, pan, ratio, mask)
    cbb = checkerboard_response(fused, mask)
    out = {"D_lambda": dl, "D_s": ds, "HQNR": hqnr(dl, ds), "D_rho": float(np.mean(drb)),
           "CB": float(np.nanmax(cbb)), "CB_PAN": float(checkerboard_response(pan, mask)[0]),
           "R_Q2n": float("nan"), "R_SAM": float("nan"), "R_ERGAS": float("nan"),
           "per_band": {"D_s": dsb.tolist(), "D_rho": drb.tolist(), "CB": cbb.tolist()}}
    if ms is not None:
        out.update(reprojection(fused, ms, gains, ratio, ms_mask))
    return out


# ------------------------------------------------------------------------ tiled (bounded memory)
TILE_HALO = 64   # pixels of context a tile needs on each side for exact tiled results


class _Sums:
    def __init__(self, n: int):
        self.s = np.zeros(n)
        self.n = np.zeros(n)

    def add(self, values: np.ndarray, band: int | None = None):
        v = np.asarray(values, dtype=np.float64)
        fin = np.isfinite(v)
        if band is None:
            self.s += v[fin].sum()
            self.n += fin.sum()
        else:
            self.s[band] += v[fin].sum()
            self.n[band] += fin.sum()

    def mean(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.s / self.n


def _core_q2n(f, r, core, m, bs):
    """Q2n block values of a tile core; partial blocks at the image edge are mirror-padded from the
    whole read region, exactly as for the whole image."""
    r0, r1, c0, c1 = core
    if r1 <= r0 or c1 <= c0:
        return np.empty(0)
    hh, ww = math.ceil((r1 - r0) / bs) * bs, math.ceil((c1 - c0) / bs) * bs
    pr, pc = max(0, r0 + hh - f.shape[1]), max(0, c0 + ww - f.shape[2])
    if pr or pc:
        pad = ((0, 0), (0, pr), (0, pc))
        f, r = np.pad(f, pad, mode="symmetric"), np.pad(r, pad, mode="symmetric")
        if m is not None:
            m = np.pad(m, pad[1:], mode="symmetric")
    sl = (slice(None), slice(r0, r0 + hh), slice(c0, c0 + ww))
    return q2n_map(f[sl], r[sl], bs, bs, None if m is None else m[sl[1:]])


def _core_slice(lo: int, hi: int, n_map: int, offset: int = 0) -> slice:
    return slice(max(lo + offset, 0), max(min(hi + offset, n_map), 0))


class ReducedAccumulator:
    """Reference-based indices accumulated tile by tile, equal to the whole-image values.

    The caller cuts the common grid into tiles whose cores start at multiples of 32 pixels and reads
    each core with up to :data:`TILE_HALO` pixels of context around it (less at the image edges).
    ``add`` takes the read region and ``core`` = (row0, row1, col0, col1) in region coordinates; every
    pixel, window and 32x32 block is counted in the one tile whose core holds its first pixel.
    """

    def __init__(self, n_bands: int, ratio: int, max_value: float, block: int = 32, q_window: int | None = None):
        self.c, self.ratio, self.max_value, self.block = n_bands, ratio, max_value, block
        # Q's sliding window: ``block`` unless the image is smaller (as :func:`q_avg`, which shrinks it)
        self.q_window = q_window or block
        self.sam = _Sums(1)
        self.sse, self.sref, self.npx = np.zeros(n_bands), np.zeros(n_bands), 0
        self.q2n = _Sums(1)
        self.q = _Sums(n_bands)
        self.ssim = _Sums(n_bands)
        self.scc = np.zeros((3, n_bands))

    def add(self, fused, ref, core, mask=None) -> None:
        f, r = _pair(fused, ref)
        m = _mask(mask, f.shape)
        r0, r1, c0, c1 = core
        fc, rc = f[:, r0:r1, c0:c1], r[:, r0:r1, c0:c1]
        mc = None if m is None else m[r0:r1, c0:c1]
        ok = np.ones(fc.shape[1:], bool) if mc is None else mc
        # SAM, MSE, means: per pixel of the core
        nf, nr = np.sqrt(np.sum(fc * fc, axis=0)), np.sqrt(np.sum(rc * rc, axis=0))
        good = ok & (nf > 0) & (nr > 0)
        if good.any():
            self.sam.add(spectral_angles(fc[:, good], rc[:, good], nf[good], nr[good]))
        self.sse += np.sum(((fc - rc) ** 2)[:, ok], axis=1)
        self.sref += np.sum(rc[:, ok], axis=1)
        self.npx += int(ok.sum())
        # Q2n: 32x32 blocks of the core
        self.q2n.add(_core_q2n(f, r, core, m, self.block))
        # sliding windows starting in the core
        h, w = f.shape[1:]
        if min(h, w) >= self.q_window:
            for b in range(self.c):
                qm = uiqi_map(r[b], f[b], self.q_window, m)
                self.q.add(qm[_core_slice(r0, r1, qm.shape[0]), _core_slice(c0, c1, qm.shape[1])], b)
        if min(h, w) >= 11:
            sm = ssim_map(f, r, self.max_value, m)
            for b in range(self.c):
                self.ssim.add(sm[b][_core_slice(r0, r1, sm.shape[1]), _core_slice(c0, c1, sm.shape[2])], b)
        # SCC: interior pixels of the core (gradient index i is pixel i + 1)
        if min(h, w) >= 3:
            fr, ff, rr = _scc_parts_map(f, r, m)
            sl = (slice(None), _core_slice(r0, r1, fr.shape[1], -1), _core_slice(c0, c1, fr.shape[2], -1))
            self.scc += np.stack([fr[sl].sum(axis=(1, 2)), ff[sl].sum(axis=(1, 2)), rr[sl].sum(axis=(1, 2))])

    def result(self) -> dict:
        """The indices, ``per_band`` figures, ``pixels`` (valid pixels compared) and ``why``: index -> the reason
        it is NaN (n/a)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            mse = self.sse / self.npx
            mu = self.sref / self.npx
            fr, ff, rr = self.scc
            scc_b = fr / np.sqrt(ff * rr)
            psnr_b = 10 * np.log10(self.max_value ** 2 / mse)
        mse_all = float(mse.mean())
        den = math.sqrt(float(ff.sum()) * float(rr.sum()))
        q_b, ssim_b = self.q.mean(), self.ssim.mean()
        flat = [b + 1 for b in range(self.c) if mu[b] * mu[b] < EPS]
        res = {
            "SAM": float(self.sam.mean()[0]),
            "ERGAS": float("nan") if flat or not self.npx else
            float(100.0 / self.ratio * math.sqrt(np.mean(mse / (mu * mu)))),
            "Q2n": float(self.q2n.mean()[0]),
            "Q": float(np.mean(q_b)),
            "SCC": float(fr.sum() / den) if den > 0 else float("nan"),
            "PSNR": float("nan") if not self.npx else
            float("inf") if mse_all == 0 else 10 * math.log10(self.max_value ** 2 / mse_all),
            "SSIM": float(np.mean(ssim_b)),
            "per_band": {"RMSE": np.sqrt(mse).tolist(), "Q": q_b.tolist(), "SCC": scc_b.tolist(),
                         "PSNR": psnr_b.tolist(), "SSIM": ssim_b.tolist()},
            "pixels": int(self.npx),
        }
        reasons = {
            "SAM": "no valid pixel whose two spectra are both non-zero",
            "ERGAS": "no valid pixel" if not self.npx else
            "band {} of the reference averages 0 over the valid pixels (ERGAS divides by each band's mean)".format(
                ", ".join(map(str, flat))),
            "Q2n": f"no {self.block}×{self.block} block is entirely valid",
            "Q": f"no {self.q_window}×{self.q_window} window is entirely valid in every band",
            "SCC": "no gradient over the valid pixels (flat images, or no valid 3×3 neighbourhood)",
            "PSNR": "no valid pixel",
            "SSIM": "no 11×11 window is entirely valid",
        }
        res["why"] = {k: why for k, why in reasons.items() if math.isnan(res[k])}
        return res


def _scc_parts_map(f, r, m):
    gf, gr = _sobel_mag(f), _sobel_mag(r)
    if m is not None:
        ok = box_sum((~m).astype(np.float64), 3) < 0.5
        gf, gr = gf * ok, gr * ok
    return gf * gr, gf * gf, gr * gr


class FullAccumulator:
    """D_lambda (Khan), D_s and HQNR accumulated tile by tile (see :class:`ReducedAccumulator`).

    Tiles' read regions must start at multiples of ``ratio`` (PAN pixels) on the fused grid so the
    PAN's Wald degradation lands on one grid, and carry :data:`TILE_HALO` pixels of context.
    """

    def __init__(self, n_bands: int, gains, pan_gain: float, ratio: int, block: int = 32):
        self.c, self.ratio, self.block = n_bands, ratio, block
        self.gains = np.broadcast_to(np.asarray(gains, dtype=np.float64), (n_bands,))
        self.pan_gain = pan_gain
        self.q2n = _Sums(1)
        self.q_fp = _Sums(n_bands)
        self.q_lp = _Sums(n_bands)
        self.rho = _Sums(n_bands)
        self.cb = np.zeros((2, n_bands))      # sum |checkerboard|, sum |gradient| of the fused bands
        self.cb_pan = np.zeros(2)
        self.npx = 0

    def add(self, fused, pan, lms, core, mask=None) -> None:
        f, l = _pair(fused, lms)
        p = np.asarray(pan, dtype=np.float64)
        p = p[0] if p.ndim == 3 else p
        m = _mask(mask, f.shape)
        r0, r1, c0, c1 = core
        self.npx += int(m[r0:r1, c0:c1].sum()) if m is not None else (r1 - r0) * (c1 - c0)
        ff = mtf_filter(f, self.gains, self.ratio)
        self.q2n.add(_core_q2n(ff, l, core, m, self.block))
        h, w = p.shape
        if min(h, w) >= self.block and min(h, w) >= self.ratio * 2:
            plp = pan_lowpass(p, self.pan_gain, self.ratio)
            for b in range(self.c):
                for acc, a, ref in ((self.q_fp, f[b], p), (self.q_lp, l[b], plp)):
                    qm = uiqi_map(a, ref, self.block, m)
                    acc.add(qm[_core_slice(r0, r1, qm.shape[0]), _core_slice(c0, c1, qm.shape[1])], b)
        if min(h, w) >= self.ratio:
            for b in range(self.c):
                rm = local_corr_map(f[b], p, self.ratio, m)
                self.rho.add(rm[_core_slice(r0, r1, rm.shape[0]), _core_slice(c0, c1, rm.shape[1])], b)
        if min(h, w) >= 2:
            for img, target in ((f, self.cb), (p[None], None)):
                cb, grad, ok = _checker_parts(img, m)
                sl = (_core_slice(r0, r1, ok.shape[0]), _core_slice(c0, c1, ok.shape[1]))
                sums = np.stack([cb[(slice(None),) + sl][:, ok[sl]].sum(axis=1),
                                 grad[(slice(None),) + sl][:, ok[sl]].sum(axis=1)])
                if target is None:
                    self.cb_pan += sums[:, 0]
                else:
                    target += sums

    def result(self) -> dict:
        dl = 1.0 - float(self.q2n.mean()[0])
        dsb = np.abs(self.q_fp.mean() - self.q_lp.mean())
        ds = float(np.mean(dsb))
        drb = 1.0 - self.rho.mean()
        with np.errstate(divide="ignore", invalid="ignore"):
            cbb = self.cb[0] / self.cb[1]
            cbp = float(self.cb_pan[0] / self.cb_pan[1])
        res = {"D_lambda": dl, "D_s": ds, "HQNR": hqnr(dl, ds), "D_rho": float(np.mean(drb)),
               "CB": float(np.nanmax(cbb)) if np.isfinite(cbb).any() else float("nan"), "CB_PAN": cbp,
               "per_band": {"D_s": dsb.tolist(), "D_rho": drb.tolist(), "CB": cbb.tolist()}, "pixels": self.npx}
        b = self.block
        reasons = {
            "D_lambda": f"no {b}×{b} block is entirely valid",
            "D_s": f"no {b}×{b} window is entirely valid",
            "HQNR": "Dλ or Ds is n/a",
            "D_rho": f"no {self.ratio}×{self.ratio} window is entirely valid",
            "CB": "no gradient over the valid pixels of the fused bands",
            "CB_PAN": "no gradient over the valid pixels of the PAN",
        }
        res["why"] = {k: why for k, why in reasons.items() if math.isnan(res[k])}
        return res


def tile_cores(height: int, width: int, tile: int = 512, halo: int = TILE_HALO):
    """Yield (region, core) per tile: region = (row, col, h, w) to read, core in region coordinates.

    ``tile`` must be a multiple of 32 and of the ratio; ``halo`` a multiple of the ratio.
    """
    for r in range(0, height, tile):
        for c in range(0, width, tile):
            rr, cc = max(r - halo, 0), max(c - halo, 0)
            re, ce = min(r + tile + halo, height), min(c + tile + halo, width)
            yield (rr, cc, re - rr, ce - cc), (r - rr, min(r + tile, height) - rr, c - cc, min(c + tile, width) - cc)
