"""The fast classical kernels against the slow reference forms they replaced (gather loops, one band at a time).

The reference functions below are the pre-optimisation implementations, kept verbatim in spirit: a
rewrite of the kernels must stay within 1 DN of them on the real fixtures (in practice it is exact or
off by float32 rounding).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from osgeo import gdal

from ksdiff_qgis.engine import classical, filters, pipeline
from ksdiff_qgis.engine.pipeline import pansharpen


# ------------------------------------------------------------------ slow reference implementations
def ref_convolve_axis(img, kernel, axis):
    half = len(kernel) // 2
    pad = [(0, 0)] * img.ndim
    pad[axis] = (half, half)
    padded = np.pad(img, pad, mode="symmetric")
    n = img.shape[axis]
    out = np.zeros(img.shape, dtype=np.float32)
    for t, w in enumerate(kernel):
        out += np.float32(w) * np.take(padded, np.arange(t, t + n), axis=axis)
    return out


def ref_decimate_axis(img, kernel, ratio, axis, origin):
    half = len(kernel) // 2
    n = img.shape[axis]
    off = ratio // 2
    k_first = math.ceil((origin + half - off) / ratio)
    k_last = math.floor((origin + n - 1 - half - off) / ratio)
    centres = np.arange(k_first, k_last + 1) * ratio + off - origin
    out = None
    for t, w in enumerate(kernel):
        term = np.float32(w) * np.take(img, centres + (t - half), axis=axis)
        out = term if out is None else out + term
    return out.astype(np.float32, copy=False), k_first


def ref_decimate(img, gains, ratio, origin=(0, 0)):
    squeeze = img.ndim == 2
    arr = img[None] if squeeze else img
    g = np.broadcast_to(np.asarray(gains, dtype=np.float64), (arr.shape[0],))
    shift = 0.0 if ratio % 2 else 0.5
    bands, first = [], (0, 0)
    for b in range(arr.shape[0]):
        k = filters.mtf_kernel(float(g[b]), ratio, shift=shift)
        rows, r0 = ref_decimate_axis(arr[b].astype(np.float32), k, ratio, 0, origin[0])
        out, c0 = ref_decimate_axis(rows, k, ratio, 1, origin[1])
        bands.append(out)
        first = (r0, c0)
    res = np.stack(bands)
    return (res[0] if squeeze else res), first


def ref_upsample(lr, ratio, out_shape, origin=(0.0, 0.0)):
    squeeze = lr.ndim == 2
    arr = (lr[None] if squeeze else lr).astype(np.float32, copy=False)
    ri, rw = filters._cubic_taps(out_shape[0], ratio, origin[0], arr.shape[1])
    ci, cw = filters._cubic_taps(out_shape[1], ratio, origin[1], arr.shape[2])
    rows = sum(rw[t][None, :, None] * arr[:, ri[t], :] for t in range(4))
    out = sum(cw[t][None, None, :] * rows[:, :, ci[t]] for t in range(4)).astype(np.float32, copy=False)
    return out[0] if squeeze else out


def ref_pan_lowpass(pan, gain, ctx):
    lr, first = ref_decimate(pan, gain, ctx.ratio, origin=ctx.origin)
    origin = (first[0] * ctx.ratio - ctx.origin[0], first[1] * ctx.ratio - ctx.origin[1])
    return ref_upsample(lr, ctx.ratio, pan.shape, origin)


def ref_fuse_mtf_glp_hpm(pan, lms, ctx):
    out = np.empty_like(lms)
    floor = np.float32(1e-3 * (ctx.stats.pan_mean + 3 * ctx.stats.pan_std))
    for b in range(lms.shape[0]):
        pan_lp = ref_pan_lowpass(pan, ctx.gains[b], ctx)
        ratio = np.where(pan_lp > floor, pan / np.maximum(pan_lp, floor), np.float32(1.0))
        out[b] = lms[b] * ratio
    return out


def ref_fuse_brovey(pan, lms, ctx):
    st = ctx.stats
    intensity = np.full(lms.shape[1:], np.float32(st.brovey_w[-1]), dtype=np.float32)
    for b in range(lms.shape[0]):
        intensity += np.float32(st.brovey_w[b]) * lms[b]
    p = (pan - np.float32(st.pan_mean)) * np.float32(st.brovey_i_std / st.pan_std) + np.float32(st.brovey_i_mean)
    floor = np.float32(1e-3 * (st.brovey_i_mean + 3 * st.brovey_i_std))
    ratio = np.where(intensity > floor, p / np.maximum(intensity, floor), np.float32(1.0))
    return lms * ratio[None]


def ref_fuse_gsa(pan, lms, ctx):
    st = ctx.stats
    i = np.full(lms.shape[1:], np.float32(st.gsa_alpha[-1]), dtype=np.float32)
    for b in range(lms.shape[0]):
        i += np.float32(st.gsa_alpha[b]) * lms[b]
    i0 = i - np.float32(st.gsa_i_mean)
    p = (pan - np.float32(st.pan_mean)) * np.float32(st.gsa_i_std / st.pan_std)
    return lms + st.gsa_gain.astype(np.float32)[:, None, None] * (p - i0)[None]


def ref_fuse_mtf_glp_fs(pan, lms, ctx):
    out = np.empty_like(lms)
    for b in range(lms.shape[0]):
        out[b] = lms[b] + np.float32(ctx.stats.fs_gain[b]) * (pan - ref_pan_lowpass(pan, ctx.gains[b], ctx))
    return out


def ref_fuse_bdsd_pc(pan, lms, ctx):
    """LMS_b + g_b (P - f_P) + sum_i gamma_b,i (LMS_i - F): the data measured from the scene's floor (2026-12-07)."""
    coef, floor = ctx.stats.bdsd_coef, ctx.stats.bdsd_floor
    p = pan[None] - floor[:, :1, None]
    detail = coef[:, :1, None] * p + np.tensordot(coef[:, 1:], lms - floor[0, 1:, None, None], axes=1)
    return (lms + detail).astype(np.float32)


REF_FUSERS = {"exp": lambda pan, lms, ctx: lms, "brovey": ref_fuse_brovey, "gsa": ref_fuse_gsa,
              "mtf_glp_hpm": ref_fuse_mtf_glp_hpm, "mtf_glp_fs": ref_fuse_mtf_glp_fs, "bdsd_pc": ref_fuse_bdsd_pc}


# ----------------------------------------------------------------------------------- kernel tests
@pytest.mark.parametrize("ratio,origin", [(4, (0.0, 0.0)), (4, (-7.0, 3.0)), (2, (0.5, -0.5)), (3, (1.25, 0.0)),
                                          (1, (0.3, -0.6))])
def test_upsample_matches_reference(ratio, origin):
    rng = np.random.default_rng(ratio)
    lr = rng.uniform(0, 2047, (3, 37, 29)).astype(np.float32)
    shape = (37 * ratio + 5, 29 * ratio - 3)
    np.testing.assert_allclose(filters.upsample(lr, ratio, shape, origin), ref_upsample(lr, ratio, shape, origin),
                               rtol=0, atol=2e-3)


def test_upsample_fractional_ratio_uses_reference_form():
    lr = np.arange(20 * 20, dtype=np.float32).reshape(20, 20)
    assert np.array_equal(filters.upsample(lr, 2.5, (50, 50)), ref_upsample(lr, 2.5, (50, 50)))


@pytest.mark.parametrize("ratio,origin", [(4, (0, 0)), (4, (13, -22)), (2, (-5, 7)), (3, (1, 1))])
def test_decimate_and_convolve_match_reference(ratio, origin):
    rng = np.random.default_rng(7)
    img = rng.uniform(0, 2047, (2, 131, 117)).astype(np.float32)
    got, first = filters.decimate(img, (0.3, 0.35), ratio, origin)
    want, want_first = ref_decimate(img, (0.3, 0.35), ratio, origin)
    assert first == want_first
    assert np.array_equal(got, want)
    k = filters.mtf_kernel(0.3, ratio)
    for axis in (-1, -2):
        assert np.array_equal(filters.convolve_axis(img, k, axis), ref_convolve_axis(img, k, axis))


# ------------------------------------------------------------------------------ whole pipeline
def _run(monkeypatch, fusers, upsample, tmp_path, name, pan, ms, sensor, method, tile):
    monkeypatch.setattr(classical, "FUSERS", fusers)
    monkeypatch.setattr(pipeline, "upsample", upsample)
    out = str(tmp_path / f"{name}.tif")
    pansharpen(pan, ms, out, sensor, method, tile_size=tile, overlap=16)
    monkeypatch.undo()
    return gdal.Open(out).ReadAsArray().astype(np.int64)


@pytest.mark.parametrize("method", list(classical.FUSERS))
@pytest.mark.parametrize("scene", [("wv2", "wv2_pan.tif", "wv2_ms.tif"), ("landsat8", "l8_pan.tif", "l8_ms.tif"),
                                   ("wv2", "wv2_nodata_pan.tif", "wv2_nodata_ms.tif")])
def test_pipeline_within_1dn_of_reference_kernels(data_dir, tmp_path, monkeypatch, method, scene):
    sensor, pan, ms = scene[0], str(data_dir / scene[1]), str(data_dir / scene[2])
    fast = _run(monkeypatch, dict(classical.FUSERS), filters.upsample, tmp_path, "fast", pan, ms, sensor, method, 96)
    slow = _run(monkeypatch, REF_FUSERS, ref_upsample, tmp_path, "slow", pan, ms, sensor, method, 96)
    assert np.abs(fast - slow).max() <= 1
