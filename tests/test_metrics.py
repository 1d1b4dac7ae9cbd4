"""Quality indices on hand-checkable cases (METHOD.md definitions)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from ksdiff_qgis.engine import metrics as M
from ksdiff_qgis.engine.filters import mtf_kernel, mtf_sigma
from ksdiff_qgis.engine.sensors import SENSORS


@pytest.fixture(scope="module")
def img():
    rng = np.random.default_rng(42)
    base = rng.uniform(100, 1000, (4, 70, 90))
    return base


def test_identical_images_are_perfect(img):
    assert M.sam(img, img) == pytest.approx(0.0, abs=1e-5)
    assert M.ergas(img, img, 4) == 0.0
    assert M.q2n(img, img) == pytest.approx(1.0, abs=1e-12)
    assert M.q_avg(img, img) == pytest.approx(1.0, abs=1e-12)
    assert M.scc(img, img) == pytest.approx(1.0, abs=1e-12)
    assert M.psnr(img, img, 2047) == math.inf
    assert M.ssim(img, img, 2047) == pytest.approx(1.0, abs=1e-12)


def test_sam_known_angles():
    ref = np.zeros((2, 4, 4))
    ref[0] = 1.0
    fused = np.zeros((2, 4, 4))
    fused[0], fused[1] = 1.0, 1.0                              # 45 degrees everywhere
    assert M.sam(fused, ref) == pytest.approx(45.0, abs=1e-9)
    fused[0, :2], fused[1, :2] = 0.0, 3.0                      # half the pixels at 90 degrees
    assert M.sam(fused, ref) == pytest.approx(67.5, abs=1e-9)
    # a spectrum scaled by any positive factor has angle 0
    rng = np.random.default_rng(1)
    r = rng.uniform(1, 10, (4, 8, 8))
    assert M.sam(r * 3.7, r) == pytest.approx(0.0, abs=1e-5)
    # zero spectra are left out, invalid pixels too
    z = r.copy()
    z[:, 0, 0] = 0
    assert M.sam(z * 2, r) == pytest.approx(0.0, abs=1e-5)


def test_ergas_scaling_laws(img):
    # a relative error e on constant bands gives ERGAS = 100/ratio * e
    flat = np.stack([np.full((8, 8), v) for v in (100.0, 300.0, 900.0)])
    assert M.ergas(flat * 1.1, flat, 4) == pytest.approx(100 / 4 * 0.1, rel=1e-12)
    assert M.ergas(flat * 1.1, flat, 2) == pytest.approx(100 / 2 * 0.1, rel=1e-12)
    # on textured bands: 100/ratio * e * sqrt(mean_b(E[x^2] / E[x]^2))
    k = np.sqrt(np.mean((img ** 2).mean(axis=(1, 2)) / img.mean(axis=(1, 2)) ** 2))
    assert M.ergas(img * 1.1, img, 4) == pytest.approx(25 * 0.1 * k, rel=1e-12)
    # invariant to a common scaling of both images
    noisy = img + np.random.default_rng(3).normal(0, 20, img.shape)
    assert M.ergas(noisy * 5, img * 5, 4) == pytest.approx(M.ergas(noisy, img, 4), rel=1e-12)
    # an additive error d on band mean mu gives 100/ratio * d / mu (one band)
    one = np.full((1, 10, 10), 200.0)
    assert M.ergas(one + 10, one, 4) == pytest.approx(25 * 10 / 200)


def test_psnr_and_ssim_scaling(img):
    err = np.full_like(img, 2047 * 0.01)  # RMSE 1% of full scale -> 40 dB
    assert M.psnr(img + err, img, 2047) == pytest.approx(40.0, abs=1e-9)
    noisy = img + np.random.default_rng(4).normal(0, 30, img.shape)
    assert M.psnr(noisy * 2, img * 2, 2 * 2047) == pytest.approx(M.psnr(noisy, img, 2047), rel=1e-12)
    s = M.ssim(noisy, img, 2047)
    assert 0 < s < 1
    assert M.ssim(noisy * 2, img * 2, 2 * 2047) == pytest.approx(s, rel=1e-9)


def test_uiqi_closed_form():
    rng = np.random.default_rng(5)
    x = rng.normal(100, 10, (32, 32))
    y = 0.5 * x + 20 + rng.normal(0, 3, x.shape)
    mx, my = x.mean(), y.mean()
    vx, vy = x.var(ddof=1), y.var(ddof=1)
    cxy = np.cov(x.ravel(), y.ravel())[0, 1]
    expected = 4 * cxy * mx * my / ((vx + vy) * (mx ** 2 + my ** 2))
    assert M.uiqi(x, y, 32) == pytest.approx(expected, rel=1e-9)
    # scale and shift sensitivity: an image with a different mean scores below 1
    assert M.uiqi(x, x + 50, 32) < 0.95
    assert M.uiqi(x, x * 1.0, 8) == pytest.approx(1.0)


def test_q2n_reduces_to_uiqi_for_one_block_and_is_bounded(img):
    rng = np.random.default_rng(6)
    noisy = img + rng.normal(0, 40, img.shape)
    q = M.q2n(noisy, img)
    assert 0 < q < 1
    # a constant gain on every band lowers Q2n only through the mean/contrast terms
    assert M.q2n(img * 1.05, img) < 1.0
    assert M.q2n(img * 1.05, img) > 0.99
    # 8 bands (Q8) and 5 bands (padded to 8) work
    r8 = rng.uniform(100, 1000, (5, 64, 64))
    assert M.q2n(r8, r8) == pytest.approx(1.0, abs=1e-12)
    assert 0 < M.q2n(r8 + rng.normal(0, 50, r8.shape), r8) < 1


def test_q2n_blocks_not_multiple_of_32():
    rng = np.random.default_rng(7)
    r = rng.uniform(100, 1000, (4, 40, 75))
    vals = M.q2n_map(r + rng.normal(0, 30, r.shape), r)
    assert vals.shape == (2, 3)                               # ceil(40/32) x ceil(75/32) blocks
    assert np.isfinite(vals).all() and (vals > 0).all() and (vals < 1).all()
    assert M.q2n(r, r) == pytest.approx(1.0, abs=1e-12)
    # smaller than one block
    small = r[:, :20, :20]
    assert M.q2n(small, small) == pytest.approx(1.0, abs=1e-12)
    # a mask drops the blocks that touch invalid pixels
    mask = np.ones(r.shape[1:], bool)
    mask[0, 0] = False
    v = M.q2n_map(r, r, mask=mask)
    assert np.isnan(v[0, 0]) and np.isfinite(v[1:, :]).all()


def test_scc():
    rng = np.random.default_rng(8)
    r = rng.uniform(0, 100, (3, 30, 30))
    assert M.scc(r * 4, r) == pytest.approx(1.0)              # scale invariant
    assert M.scc(r + 7, r) == pytest.approx(1.0)              # gradients ignore offsets
    flat = np.ones_like(r)
    assert math.isnan(M.scc(flat, r))                         # no gradient at all: undefined
    assert -1 <= M.scc(rng.uniform(0, 100, r.shape), r) < 0.9


def test_mtf_filter_response_at_nyquist_equals_gain():
    for sensor in SENSORS.values():
        for gain in set(sensor.mtf_ms) | {sensor.mtf_pan}:
            r = sensor.ratio or 4     # generic: any ratio
            for shift in (0.0, 0.5):
                k = mtf_kernel(gain, r, shift=shift)
                n = np.arange(len(k)) - len(k) // 2 + shift
                resp = abs(np.sum(k * np.exp(-2j * np.pi * n / (2 * r))))  # f = 1 / (2 ratio) cycles / px
                assert resp == pytest.approx(gain, abs=2e-3), (sensor.key, gain, shift)
    assert mtf_sigma(0.3, 4) == pytest.approx(4 * math.sqrt(-2 * math.log(0.3)) / math.pi)


def test_mtf_filter_keeps_constants():
    c = np.full((2, 50, 50), 321.0)
    np.testing.assert_allclose(M.mtf_filter(c, [0.3, 0.35], 4), c, rtol=1e-5)


def test_full_resolution_indices():
    rng = np.random.default_rng(9)
    pan = M.mtf_filter(rng.uniform(100, 1000, (128, 128)), 0.6, 2)[0]   # some texture, not white noise
    pan_lp = M.pan_lowpass(pan, 0.11, 4)
    gains = (0.8, 1.0, 1.1, 1.3)
    lms = np.stack([pan_lp * g for g in gains])               # LMS = scaled low-passed PAN
    ideal = np.stack([pan * g for g in gains])                # ideal fusion: PAN scaled per band
    # Ds of the ideal fusion is 0: Q(g PAN, PAN) = Q(g PAN_LP, PAN_LP) for every window
    assert M.d_s(ideal, pan, lms, 0.11, 4, pan_lp=pan_lp) == pytest.approx(0.0, abs=1e-9)
    # the LMS itself as "fused" has spatial distortion
    res = M.full_resolution(lms, pan, lms, [0.35] * 4, 0.11, 4)
    assert res["D_s"] > 0.05
    assert 0 <= res["D_lambda"] < 0.05                        # low-passing a smooth image changes little
    assert res["HQNR"] == pytest.approx((1 - res["D_lambda"]) * (1 - res["D_s"]))
    # swapping bands is a spectral distortion Khan's index sees
    assert M.d_lambda_khan(lms[::-1], lms, [0.35] * 4, 4) > res["D_lambda"] + 0.01
    assert M.hqnr(0.0, 0.0) == 1.0 and M.hqnr(0.1, 0.2) == pytest.approx(0.72)


def test_reduced_resolution_bundle_and_mask(img):
    noisy = img + np.random.default_rng(10).normal(0, 25, img.shape)
    res = M.reduced_resolution(noisy, img, 4, 2047)
    for k in M.REDUCED:
        assert np.isfinite(res[k]), k
    assert len(res["per_band"]["Q"]) == 4
    # masked pixels are ignored: corrupt them and the score stays the same
    mask = np.ones(img.shape[1:], bool)
    mask[:, :40] = False
    bad = noisy.copy()
    bad[:, :, :40] = 0
    assert M.sam(bad, img, mask) == pytest.approx(M.sam(noisy[:, :, 40:], img[:, :, 40:]))
    assert M.ergas(bad, img, 4, mask) == pytest.approx(M.ergas(noisy[:, :, 40:], img[:, :, 40:], 4))
    assert M.psnr(bad, img, 2047, mask) == pytest.approx(M.psnr(noisy[:, :, 40:], img[:, :, 40:], 2047))


def test_tiled_accumulation_equals_whole_image():
    rng = np.random.default_rng(11)
    ref = M.mtf_filter(rng.uniform(50, 1500, (4, 150, 170)), 0.5, 2)
    fused = ref + rng.normal(0, 30, ref.shape)
    mask = np.ones(ref.shape[1:], bool)
    mask[100:104, 20:30] = False
    whole = M.reduced_resolution(fused, ref, 4, 2047, mask)
    acc = M.ReducedAccumulator(4, 4, 2047)
    for (r, c, h, w), core in M.tile_cores(150, 170, tile=64, halo=40):
        acc.add(fused[:, r:r + h, c:c + w], ref[:, r:r + h, c:c + w], core, mask[r:r + h, c:c + w])
    tiled = acc.result()
    for k in M.REDUCED:
        assert tiled[k] == pytest.approx(whole[k], rel=1e-9), k
    for k, v in whole["per_band"].items():
        np.testing.assert_allclose(tiled["per_band"][k], v, rtol=1e-9, err_msg=k)


def test_tiled_full_resolution_equals_whole_image():
    rng = np.random.default_rng(12)
    pan = M.mtf_filter(rng.uniform(100, 1000, (200, 136)), 0.5, 2)[0]
    lms = np.stack([M.pan_lowpass(pan, 0.11, 4) * g for g in (0.9, 1.0, 1.2, 1.1)])
    fused = np.stack([pan * g for g in (0.9, 1.0, 1.2, 1.1)]) + rng.normal(0, 10, lms.shape)
    whole = M.full_resolution(fused, pan, lms, [0.35] * 4, 0.11, 4)
    acc = M.FullAccumulator(4, [0.35] * 4, 0.11, 4)
    for (r, c, h, w), core in M.tile_cores(200, 136, tile=64, halo=64):
        acc.add(fused[:, r:r + h, c:c + w], pan[r:r + h, c:c + w], lms[:, r:r + h, c:c + w], core)
    tiled = acc.result()
    for k in M.FULL + ("D_rho", "CB", "CB_PAN"):
        assert tiled[k] == pytest.approx(whole[k], rel=1e-4, abs=1e-6), k
    for k in ("D_rho", "CB"):
        np.testing.assert_allclose(tiled["per_band"][k], whole["per_band"][k], rtol=1e-6, err_msg=k)


# ------------------------------------------------------------ full-resolution consistency indices
def test_checkerboard_response_known_values():
    i, j = np.mgrid[0:64, 0:64]
    checker = np.where((i + j) % 2, 1.0, -1.0) * 50 + 500
    assert M.checkerboard_response(checker)[0] == pytest.approx(1.0)     # |4a| / (2a + 2a)
    ramp = 3.0 * i + 2.0 * j                                             # no 2x2 alternation at all
    stripes = np.where(j % 2, 10.0, 0.0)                                 # a one-pixel stripe is not a checkerboard
    assert M.checkerboard_response(np.stack([ramp, stripes])) == pytest.approx([0.0, 0.0], abs=1e-12)
    noise = np.random.default_rng(0).normal(0, 1, (400, 400))
    # white noise: E|4 terms| / E(|2 terms| + |2 terms|) = 2 sigma / (2 sqrt(2) sigma)
    assert M.checkerboard_response(noise)[0] == pytest.approx(1 / math.sqrt(2), rel=0.02)
    # a masked corner does not count
    bad = checker.copy()
    bad[:10, :10] = 0
    mask = np.ones(bad.shape, bool)
    mask[:10, :10] = False
    assert M.checkerboard_response(bad, mask)[0] == pytest.approx(1.0)


def test_d_rho_known_values():
    rng = np.random.default_rng(1)
    pan = M.mtf_filter(rng.uniform(100, 1000, (96, 96)), 0.5, 2)[0]
    fused = np.stack([pan * 0.7 + 30, pan * 1.3])          # affine in PAN: correlation 1 in every window
    assert M.d_rho(fused, pan, 4) == pytest.approx(0.0, abs=1e-9)
    assert M.d_rho(-fused, pan, 4) == pytest.approx(2.0, abs=1e-9)      # anti-correlated: 1 - (-1)
    unrelated = rng.normal(0, 1, (2, 96, 96))
    assert 0.8 < M.d_rho(unrelated, pan, 4) < 1.2                        # independent noise: rho ~ 0
    flat = np.full((1, 96, 96), 7.0)
    assert M.d_rho(flat, pan, 4) == pytest.approx(1.0)                   # flat windows count as rho = 0
    # window size is the ratio: a 4x4 map is (H-3) x (W-3)
    assert M.local_corr_map(pan, pan, 4).shape == (93, 93)


def test_reprojection_of_upsampled_ms_is_nearly_consistent():
    from ksdiff_qgis.engine.filters import upsample, wald_degrade

    rng = np.random.default_rng(2)
    scene = M.mtf_filter(rng.uniform(200, 1500, (4, 256, 256)), 0.3, 4)   # a smooth "true" HR scene
    ms = wald_degrade(scene.astype(np.float32), [0.35] * 4, 4).astype(np.float64)
    # the true scene reprojects exactly onto its own MS
    exact = M.reprojection(scene, ms, [0.35] * 4, 4)
    assert exact["R_ERGAS"] == pytest.approx(0.0, abs=1e-4) and exact["R_SAM"] == pytest.approx(0.0, abs=1e-3)
    assert exact["R_Q2n"] == pytest.approx(1.0, abs=1e-4)
    # plain upsampling of the MS is close (small R-ERGAS); doubling the detail is much further
    lms = upsample(ms.astype(np.float32), 4, (256, 256)).astype(np.float64)
    up = M.reprojection(lms, ms, [0.35] * 4, 4)
    assert up["R_ERGAS"] < 1.0 and up["R_Q2n"] > 0.9
    wrong = M.reprojection(lms * np.array([1.3, 1.0, 0.8, 1.0])[:, None, None], ms, [0.35] * 4, 4)
    assert wrong["R_ERGAS"] > 5 * up["R_ERGAS"] and wrong["R_SAM"] > up["R_SAM"]


def test_full_resolution_bundle_has_consistency_indices():
    rng = np.random.default_rng(3)
    pan = M.mtf_filter(rng.uniform(100, 1000, (128, 128)), 0.6, 2)[0]
    lms = np.stack([M.pan_lowpass(pan, 0.11, 4) * g for g in (0.9, 1.0, 1.1)])
    ms = M.reproject(lms, [0.35] * 3, 4)
    res = M.full_resolution(lms, pan, lms, [0.35] * 3, 0.11, 4, ms=ms)
    for k in M.CONSISTENCY:
        assert np.isfinite(res[k]), k
    assert len(res["per_band"]["D_rho"]) == 3 and len(res["per_band"]["CB"]) == 3
    assert res["R_ERGAS"] < 0.5
    assert math.isnan(M.full_resolution(lms, pan, lms, [0.35] * 3, 0.11, 4)["R_ERGAS"])


# ------------------------------------------------------------- reprojection at the MS's own pixel centres
@pytest.mark.parametrize("ratio", [2, 4])
def test_reproject_at_samples_the_mtf_filtered_image_at_the_ms_centres(wv2_arrays, ratio):
    """An MS grid half a PAN pixel off the PAN's (Landsat 8): its pixel centres fall on PAN pixel centres, and the
    reprojection is the MTF-filtered fused image picked there (no interpolation of either side)."""
    pan, ms = wv2_arrays
    img = np.stack([pan, pan[::-1], pan[:, ::-1]]).astype(np.float64)      # three real bands
    gains = [0.3, 0.27, 0.33]
    corner, shape = (30.5, 29.5), (20, 24)                                # MS pixel 0's top-left corner
    got = M.reproject_at(img, gains, ratio, corner, shape)
    seen = M.mtf_filter(img, gains, ratio)
    rows = (corner[0] + ratio * np.arange(shape[0]) + ratio / 2 - 0.5).astype(int)
    cols = (corner[1] + ratio * np.arange(shape[1]) + ratio / 2 - 0.5).astype(int)
    np.testing.assert_allclose(got, seen[:, rows][:, :, cols], rtol=1e-6)


def test_reproject_at_is_wald_degradation_on_aligned_grids_and_a_gaussian_between_pixels(wv2_arrays):
    from ksdiff_qgis.engine.filters import wald_degrade

    pan, _ = wv2_arrays
    img = np.stack([pan, pan.T]).astype(np.float32)
    gains, k = [0.3, 0.25], 4
    # aligned: exactly Wald's degradation (the interior, away from its mirrored edges)
    np.testing.assert_array_equal(M.reproject_at(img, gains, k, (40, 32), (30, 32)),
                                  wald_degrade(img, gains, k)[:, 10:40, 8:40])
    # a quarter of a PAN pixel off: each MS pixel is the Gaussian evaluated at its true centre
    corner = (40.25, 32.25)
    got = M.reproject_at(img, gains, k, corner, (5, 6))
    for b, g in enumerate(gains):
        sigma = mtf_sigma(g, k)
        for i in range(5):
            for j in range(6):
                t = np.array(corner) + k * np.array([i, j]) + k / 2 - 0.5      # the centre, fine pixel units
                n0 = np.ceil(t).astype(int)
                wr, wc = (np.exp(-0.5 * ((np.arange(n - 20, n + 21) - s) / sigma) ** 2) for n, s in zip(n0, t))
                patch = img[b, n0[0] - 20:n0[0] + 21, n0[1] - 20:n0[1] + 21].astype(np.float64)
                want = wr @ patch @ wc / (wr.sum() * wc.sum())
                assert got[b, i, j] == pytest.approx(want, rel=1e-5)
    with pytest.raises(ValueError, match="support"):
        M.reproject_at(img, gains, k, (2.5, 2.5), (4, 4))


# ------------------------------------------------------------------------------ UIQI precision
def test_uiqi_keeps_its_precision_on_large_high_dn_images():
    """QA: on a 2048^2 image of DN 30000 +- 1 the integral-image sums lost ~1e-3 per window (1.9e-2 at 4096^2)."""
    rng = np.random.default_rng(3)
    n = 2048
    x = 30000.0 + rng.normal(0, 1, (n, n))
    y = x + rng.normal(0, 1, (n, n))
    qmap = M.uiqi_map(x, y, 32)

    def exact(a, b):   # the window on its own, centred: no cancellation
        a, b = a - a.mean(), b - b.mean()
        ma, mb = 30000.0 + a.mean(), 30000.0 + b.mean()
        va, vb, cab = (a * a).mean(), (b * b).mean(), (a * b).mean()
        return 4 * cab * ma * mb / ((va + vb) * (ma * ma + mb * mb))

    for i, j in ((0, 0), (n - 32, n - 32), (n // 2, n // 3), (n - 40, 7)):
        want = exact(x[i:i + 32, j:j + 32] - 30000.0, y[i:i + 32, j:j + 32] - 30000.0)
        assert qmap[i, j] == pytest.approx(want, abs=1e-9), (i, j)


def test_uiqi_flat_windows_of_float_data_score_their_means():
    """img_qi.m's flat-window rules hold for non-integer data too (they scored rounding noise, down to -5.6e14)."""
    rng = np.random.default_rng(1)
    x = np.round(3000 + rng.normal(0, 50, (300, 300)))
    y = np.round(x + rng.normal(0, 20, x.shape))
    x[100:200, 100:200] = y[100:200, 100:200] = 0          # an unmasked fill in both
    x[20:60, 200:260], y[20:60, 200:260] = 4000, 3900       # flat in both, at two levels
    for scale in (1.0, 7.3):                                # integer DN, and the same as non-integer floats
        q = M.uiqi_map(x / scale, y / scale, 32)
        np.testing.assert_allclose(q[110:160, 110:160], 1.0)
        np.testing.assert_allclose(q[20:28, 205:225], 2 * 4000 * 3900 / (4000 ** 2 + 3900 ** 2), rtol=1e-12)


def test_reproject_at_is_continuous_in_the_grid_offset(data_dir):
    """The MS's pixel centres may sit any fraction of a fused pixel off: the reprojection must move smoothly with that
    offset (snapping offsets below 0.05 px jumped by 19.6 DN RMS between corners 0.0499 and 0.0501)."""
    from osgeo import gdal

    pan = gdal.Open(str(data_dir / "l8_pan.tif")).ReadAsArray().astype(np.float32)
    img = np.stack([pan, pan[::-1]])
    gains = (0.3, 0.3)
    shape = (40, 40)
    near = [M.reproject_at(img, gains, 2, (30 + f, 30 + f), shape) for f in (0.0499, 0.0501, 0.0503)]
    step = np.sqrt(np.mean((near[1] - near[0]) ** 2))
    slope = np.sqrt(np.mean((near[2] - near[1]) ** 2))
    assert step < 3 * slope + 1e-3
