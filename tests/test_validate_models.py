"""scripts/validate_models.py's Landsat 8 validation rows: the same ground in PAN and MS, outside training and test."""
from __future__ import annotations

from model_core.datacache import HELD_APART, overlaps_held_apart

LANDSAT_MS_SIZE = (627, 603)   # the cached Landsat 8 MS (width, height), make data


def test_landsat_validation_windows(load_script):
    vm = load_script("validate_models")
    (mc, mr, mw, mh), (pc, pr, pw, ph) = vm.LANDSAT_VALIDATION["ms"], vm.LANDSAT_VALIDATION["pan"]
    # the PAN grid sits half a PAN pixel off the MS grid, as in the held-apart pair of windows
    hc, hr, _, _ = HELD_APART["landsat8/ms.tif"]
    assert HELD_APART["landsat8/pan.tif"][:2] == (2 * hc + 2, 2 * hr + 1)
    assert (pc, pr) == (2 * mc + 2, 2 * mr + 1)
    assert 2 * mw - 4 <= pw <= 2 * mw and 2 * mh - 4 <= ph <= 2 * mh
    # below the 80 % of rows every Landsat config trains on, and clear of the held-apart corner
    assert mr >= 0.8 * LANDSAT_MS_SIZE[1] and mr + mh <= LANDSAT_MS_SIZE[1]
    assert not overlaps_held_apart("landsat8/ms.tif", (mc, mr, mw, mh), LANDSAT_MS_SIZE)


def test_wv3_proxy_spreads_pair_2_over_eight_bands(load_script, data_dir, tmp_path, monkeypatch):
    """``--wv3``'s scene: pair 2's MS (here the real fixture in its place) spread over WorldView-3's eight bands by
    the WorldView-3 recipe's ``ms_mix``, same grid, same data type."""
    import shutil

    import numpy as np
    from osgeo import gdal

    vm = load_script("validate_models")
    (tmp_path / "wv2").mkdir()
    shutil.copy(data_dir / "wv2_ms.tif", tmp_path / "wv2" / "pair2_ms.tif")
    monkeypatch.setattr(vm, "data_dir", lambda: tmp_path)
    out = gdal.Open(vm.wv3_proxy(tmp_path))
    src = gdal.Open(str(data_dir / "wv2_ms.tif"))
    assert out.RasterCount == 8 and out.GetGeoTransform() == src.GetGeoTransform()
    assert out.GetRasterBand(1).DataType == src.GetRasterBand(1).DataType
    b, g, r, n = src.ReadAsArray().astype(np.float64)
    eight = out.ReadAsArray().astype(np.float64)
    assert np.abs(eight[3] - (g + r) / 2).max() <= 0.5 and np.array_equal(eight[1], b)
    assert np.abs(eight[7] - 0.95 * n).max() <= 0.5


def test_real_pan_pair_keeps_the_pan_and_degrades_the_ms_to_ratio_4(load_script, data_dir, tmp_path, monkeypatch):
    """``--real-pan``'s pair: the Landsat full-resolution pair (here the real Landsat fixture in its place) with the
    PAN untouched and the 30 m MS Wald-degraded by 2 onto a 60 m grid with the same origin: ratio 4, same type."""
    import numpy as np
    from osgeo import gdal

    vm = load_script("validate_models")
    pan_src, ms_src = str(data_dir / "l8_pan.tif"), str(data_dir / "l8_ms.tif")
    monkeypatch.setattr(vm, "landsat_full_pair", lambda folder: (pan_src, ms_src))
    pan, ms = vm.landsat_ratio4_pair(tmp_path)
    assert pan == pan_src
    src, out = gdal.Open(ms_src), gdal.Open(ms)
    gt, sgt = out.GetGeoTransform(), src.GetGeoTransform()
    assert (gt[0], gt[3]) == (sgt[0], sgt[3]) and (gt[1], gt[5]) == (2 * sgt[1], 2 * sgt[5])
    assert (out.RasterXSize, out.RasterYSize) == (src.RasterXSize // 2, src.RasterYSize // 2)
    assert out.RasterCount == 4 and out.GetRasterBand(1).DataType == src.GetRasterBand(1).DataType
    block = src.ReadAsArray().astype(np.float64)[:, 8:12, 8:12].mean(axis=(1, 2))   # a 2 x 2 block of 60 m pixels
    assert np.allclose(out.ReadAsArray().astype(np.float64)[:, 4:6, 4:6].mean(axis=(1, 2)), block, rtol=0.05)
