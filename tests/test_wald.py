"""Wald's protocol on real rasters: reduced-resolution test cases with consistent georeferencing."""
from __future__ import annotations

import numpy as np
import pytest
from osgeo import gdal

from ksdiff_qgis.engine import metrics as M
from ksdiff_qgis.engine.filters import wald_degrade
from ksdiff_qgis.engine.sensors import get_sensor
from model_core.wald import make_reduced_case


def _info(path):
    ds = gdal.Open(str(path))
    arr = ds.ReadAsArray()
    arr = arr[None] if arr.ndim == 2 else arr
    return ds.GetGeoTransform(), arr, ds.GetRasterBand(1).GetNoDataValue(), ds.GetProjection()


def test_wv2_case_georeferencing(data_dir, tmp_path):
    case = make_reduced_case(data_dir / "wv2_pan.tif", data_dir / "wv2_ms.tif", str(tmp_path), "wv2")
    ms_ds = gdal.Open(str(data_dir / "wv2_ms.tif"))
    mgt = ms_ds.GetGeoTransform()
    pgt, pan, _, psrs = _info(case.pan)
    lgt, ms, _, _ = _info(case.ms)
    rgt, ref, nd, rsrs = _info(case.ref)
    assert pgt == pytest.approx(rgt) and pgt == pytest.approx(mgt)      # degraded PAN on the MS grid
    assert pan.shape[1:] == ref.shape[1:] == (64, 64)
    assert ms.shape == (4, 16, 16)
    assert lgt[0] == pytest.approx(rgt[0]) and lgt[3] == pytest.approx(rgt[3])   # same origin
    assert lgt[1] == pytest.approx(4 * rgt[1]) and lgt[5] == pytest.approx(4 * rgt[5])
    assert pan.dtype == ms.dtype == ref.dtype == np.uint16 and nd == 0 and psrs == rsrs
    np.testing.assert_array_equal(ref, ms_ds.ReadAsArray())               # the reference is the original MS
    # the degraded MS is the documented Wald degradation of the reference
    exp = wald_degrade(ref.astype(np.float32), get_sensor("wv2").mtf_ms, 4)
    assert np.abs(ms.astype(float) - exp).max() <= 0.5 + 1e-3
    # the degraded PAN looks like the reference's band average (real data: strongly correlated)
    assert np.corrcoef(pan[0].ravel(), ref.mean(axis=0).ravel())[0, 1] > 0.8
    # upsampled degraded MS is a meaningful baseline, not perfect
    assert 0.0 < M.q2n(np.kron(ms, np.ones((4, 4))), ref) < 1.0


def test_window_argument(data_dir, tmp_path):
    case = make_reduced_case(data_dir / "wv2_pan.tif", data_dir / "wv2_ms.tif", str(tmp_path), "wv2",
                             window=(8, 16, 34, 40), prefix="win")
    assert case.ms_window == (8, 16, 32, 40)                              # trimmed to the ratio
    mgt = gdal.Open(str(data_dir / "wv2_ms.tif")).GetGeoTransform()
    rgt, ref, _, _ = _info(case.ref)
    assert rgt[0] == pytest.approx(mgt[0] + 8 * mgt[1]) and rgt[3] == pytest.approx(mgt[3] + 16 * mgt[5])
    assert ref.shape == (4, 40, 32)
    assert _info(case.ms)[1].shape == (4, 10, 8)
    with pytest.raises(ValueError):
        make_reduced_case(data_dir / "wv2_pan.tif", data_dir / "wv2_ms.tif", str(tmp_path), "wv2",
                          window=(40, 40, 40, 40))  # outside the MS raster


def test_landsat_offset_grids(data_dir, tmp_path):
    case = make_reduced_case(data_dir / "l8_pan.tif", data_dir / "l8_ms.tif", str(tmp_path), "landsat8")
    assert case.ratio == 2 and case.notes and "resampled" in case.notes[0]
    pgt, pan, _, _ = _info(case.pan)
    rgt, ref, _, _ = _info(case.ref)
    mgt = gdal.Open(str(data_dir / "l8_ms.tif")).GetGeoTransform()
    assert pgt == pytest.approx(rgt)
    # the reference window is an integer MS window
    assert ((rgt[0] - mgt[0]) / mgt[1]) == pytest.approx(case.ms_window[0])
    assert pan.shape[1:] == ref.shape[1:]
    assert np.corrcoef(pan[0].ravel(), ref[:3].mean(axis=0).ravel())[0, 1] > 0.8


def test_nodata_propagates(data_dir, tmp_path):
    case = make_reduced_case(data_dir / "wv2_nodata_pan.tif", data_dir / "wv2_nodata_ms.tif", str(tmp_path), "wv2")
    _, ref, nd, _ = _info(case.ref)
    _, ms, _, _ = _info(case.ms)
    _, pan, _, _ = _info(case.pan)
    assert nd == 0
    assert (ref == 0).any() and (ms == 0).any() and (pan == 0).any()
    # wherever the reference is nodata the degraded PAN is too (its support touched nodata)
    ref_nd = np.all(ref == 0, axis=0)
    assert np.all(pan[0][ref_nd] == 0)


def test_window_clipped_to_pan_coverage(data_dir, tmp_path):
    # Landsat: the last MS column is only partly under the PAN (grids half a PAN pixel apart)
    case = make_reduced_case(data_dir / "l8_pan.tif", data_dir / "l8_ms.tif", str(tmp_path), "landsat8",
                             window=(60, 60, 70, 70))
    assert any("clipped" in n for n in case.notes)
    c, r, w, h = case.ms_window
    assert c == 60 and r == 60 and c + w <= 128 and w % 2 == 0


def test_half_pixel_case_keeps_landsats_grid(data_dir, tmp_path):
    """``make_half_pixel_case`` on the Landsat 8 fixture: the reduced PAN on the reference (MS) grid, the reduced MS
    corner half a reduced PAN pixel inside it (the real pair's MS corner = PAN corner + half a PAN pixel), nothing
    resampled: the reduced MS is the reference degraded at the moved pixel centres."""
    from model_core.wald import degrade_at, make_half_pixel_case

    case = make_half_pixel_case(str(data_dir / "l8_pan.tif"), str(data_dir / "l8_ms.tif"), str(tmp_path),
                                "landsat8", (4, 4, 120, 100), prefix="h")
    pgt, pan, _, _ = _info(case.pan)
    lgt, ms, _, _ = _info(case.ms)
    rgt, ref, _, _ = _info(case.ref)
    assert pgt == pytest.approx(rgt) and pan.shape[1:] == ref.shape[1:] == (100, 120)
    assert (lgt[0] - pgt[0], lgt[3] - pgt[3]) == pytest.approx((0.5 * pgt[1], 0.5 * pgt[5]))   # half a PAN pixel
    assert lgt[1] == pytest.approx(2 * pgt[1]) and ms.shape == (4, 49, 59)
    full = gdal.Open(str(data_dir / "l8_ms.tif")).ReadAsArray().astype(np.float32)
    exp = degrade_at(full, get_sensor("landsat8").mtf_ms, 2, (4.5, 4.5), (49, 59))
    assert np.abs(ms - exp).max() <= 0.5 + 1e-3
    # the MS pixel centres sit on reference pixel centres: MS pixel [0, 0] is centred on reference pixel [1, 1]
    # (Gaussian sampled centred), where the reference sits; the reduced PAN tracks the reference's intensity
    assert np.corrcoef(pan[0].ravel(), ref.mean(axis=0).ravel())[0, 1] > 0.8


def test_half_pixel_case_with_no_shift_is_the_wald_case(data_dir, tmp_path):
    """With ``shift`` 0 on an aligned pair the construction is ``make_reduced_case``'s: the same pixels wherever the
    filters do not reach the window's edge (there one mirrors the window, the other the raster)."""
    from model_core.wald import make_half_pixel_case

    pan_path, ms_path = str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif")
    a = make_reduced_case(pan_path, ms_path, str(tmp_path), "wv2", window=(0, 0, 64, 64), prefix="a")
    b = make_half_pixel_case(pan_path, ms_path, str(tmp_path), "wv2", (0, 0, 64, 64), prefix="b", shift=0.0)
    reach = 41 // 2 // 4 + 1   # MS pixels the 41-tap MTF filter reaches at ratio 4
    for key, cut in (("pan", reach), ("ms", 2)):
        (ga, xa, _, _), (gb, xb, _, _) = _info(getattr(a, key)), _info(getattr(b, key))
        assert ga == pytest.approx(gb) and xa.shape == xb.shape
        np.testing.assert_array_equal(xa[:, cut:-cut, cut:-cut], xb[:, cut:-cut, cut:-cut])
    np.testing.assert_array_equal(_info(a.ref)[1], _info(b.ref)[1])
