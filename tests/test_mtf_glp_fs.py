"""MTF-GLP-FS: additive MTF-matched details with per-band gains regressed at full scale (Vivone et al. 2018).

Real imagery: the Landsat 8 fixture's four 30 m bands are the reference; a PAN is simulated from them (band
mixes of other spectral responses, not blurred) and the MS degraded by 4 with a generic MTF, the kind of case
where a PAN as sharp as the reference made the fixed-gain methods over- or under-inject.
"""
from __future__ import annotations

import numpy as np
import pytest
from osgeo import gdal, osr

from ksdiff_qgis.engine import classical, metrics, pipeline, selfcheck
from ksdiff_qgis.engine.filters import wald_degrade
from ksdiff_qgis.engine.pipeline import method_names, pansharpen


def _write(path, arr, transform, epsg=32633):
    drv = gdal.GetDriverByName("GTiff")
    ds = drv.Create(str(path), arr.shape[2], arr.shape[1], arr.shape[0], gdal.GDT_UInt16)
    ds.SetGeoTransform(transform)
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    ds.SetProjection(srs.ExportToWkt())
    for b in range(arr.shape[0]):
        ds.GetRasterBand(b + 1).WriteArray(arr[b])
    ds = None
    return str(path)


def _case(data_dir, tmp_path, weights):
    ref = gdal.Open(str(data_dir / "l8_ms.tif")).ReadAsArray()[:, :128, :128].astype(np.float32)
    pan = np.tensordot(np.asarray(weights, np.float32), ref, axes=1)[None]
    ms = wald_degrade(ref, (0.3,) * 4, 4)
    gt = (500000.0, 10.0, 0.0, 4000000.0, 0.0, -10.0)
    ms_gt = (500000.0, 40.0, 0.0, 4000000.0, 0.0, -40.0)
    p = _write(tmp_path / "pan.tif", np.round(pan).astype(np.uint16), gt)
    m = _write(tmp_path / "ms.tif", np.round(ms).astype(np.uint16), ms_gt)
    return p, m, ref


@pytest.mark.parametrize("weights", [(0.3, 0.35, 0.35, 0.0), (0.1, 0.2, 0.3, 0.4)], ids=["visible", "nir_heavy"])
def test_fs_beats_the_fixed_gain_methods_on_a_sharp_pan(data_dir, tmp_path, weights):
    pan, ms, ref = _case(data_dir, tmp_path, weights)
    err = {}
    for method in ("mtf_glp_fs", "mtf_glp_hpm", "gsa", "exp"):
        res = pansharpen(pan, ms, str(tmp_path / f"{method}.tif"), "qb", method)
        fused = gdal.Open(res.output_path).ReadAsArray().astype(np.float64)
        err[method] = metrics.ergas(fused[:, 8:-8, 8:-8], ref[:, 8:-8, 8:-8].astype(np.float64), 4)
    assert err["mtf_glp_fs"] < 0.97 * min(err["mtf_glp_hpm"], err["gsa"]), err
    assert err["mtf_glp_fs"] < 0.8 * err["exp"], err


def test_fs_gains_are_the_regression_of_each_band_on_the_pan(data_dir):
    ms = gdal.Open(str(data_dir / "l8_ms.tif")).ReadAsArray().astype(np.float64)
    rng = np.random.default_rng(3)
    pan_lr = 2.0 * ms[2] - 0.5 * ms[3] + 300.0 + rng.normal(0, 20, ms.shape[1:])
    st = classical.scene_stats(pan_lr, ms, np.ones(ms.shape[1:], bool))
    for b in range(4):
        slope = np.polyfit(pan_lr.ravel(), ms[b].ravel(), 1)[0]
        assert st.fs_gain[b] == pytest.approx(slope, rel=1e-6)
    # a band the PAN does not see gets a gain of the sign of its correlation, not a fixed positive one
    assert st.fs_gain[3] < st.fs_gain[2]


def test_fs_is_appended_after_auto_and_a_self_check_candidate():
    keys = list(method_names())
    assert keys[:6] == ["ksdiff", "exp", "brovey", "gsa", "mtf_glp_hpm", "auto"]   # option numbers keep
    assert keys[6] == "mtf_glp_fs"
    assert "mtf_glp_fs" in selfcheck.CLASSICAL_CANDIDATES
    assert classical.margin("mtf_glp_fs", 4) == classical.margin("mtf_glp_hpm", 4)
    assert pipeline.method_names()["mtf_glp_fs"].startswith("MTF-GLP-FS")


def _lowpass_by_definition(pan: np.ndarray, gain: float, ratio: int) -> np.ndarray:
    """P_L written out from the definition, apart from the engine's filters: the PAN (mirrored at its edges) weighted
    by the Gaussian whose response at the MS Nyquist frequency is ``gain``, centred on each MS pixel's centre."""
    sigma = ratio * np.sqrt(-2.0 * np.log(gain)) / np.pi
    reach = int(np.ceil(8 * sigma))

    def weights(n: int) -> np.ndarray:   # (n // ratio, n + 2 reach): one row of weights per MS pixel
        x = np.arange(-reach, n + reach)
        centres = np.arange(n // ratio) * ratio + (ratio - 1) / 2
        w = np.exp(-0.5 * ((x[None] - centres[:, None]) / sigma) ** 2)
        return w / w.sum(axis=1, keepdims=True)

    padded = np.pad(pan, reach, mode="symmetric")
    return weights(pan.shape[0]) @ padded @ weights(pan.shape[1]).T


def test_fs_gains_are_the_definitions_on_the_mtf_lowpass_pan(data_dir):
    """g_b = cov(MS_b, P_L) / var(P_L), P_L the PAN's MTF-matched low-pass (Vivone et al. 2018), on a real WorldView-2
    crop: the stats sample (the whole 64 x 64 MS here) gives the definition's gains; the PAN block-averaged onto the
    MS grid, aliased detail and all, gave gains 3.5 % lower."""
    from ksdiff_qgis.engine.grid import plan_grid
    from ksdiff_qgis.engine.raster_io import open_raster
    from ksdiff_qgis.engine.sensors import get_sensor

    pan_ds, pan = open_raster(str(data_dir / "wv2_pan.tif"), "PAN")
    ms_ds, ms = open_raster(str(data_dir / "wv2_ms.tif"), "MS")
    plan = plan_grid(pan, ms, ms_ds)
    gains = get_sensor("wv2").mtf_ms
    fs_gain = pipeline.estimate_scene_stats(pan_ds, ms_ds, pan, ms, plan, gains=tuple(gains)).fs_gain
    p = pan_ds.ReadAsArray().astype(np.float64)
    m = ms_ds.ReadAsArray().astype(np.float64)
    assert plan.ratio == 4 and m.shape[1:] == (64, 64)
    want = []
    for b in range(4):
        low = _lowpass_by_definition(p, gains[b], 4)
        want.append(np.cov(m[b].ravel(), low.ravel())[0, 1] / low.var(ddof=1))
    assert fs_gain == pytest.approx(want, rel=1e-6)
    box = p.reshape(64, 4, 64, 4).mean(axis=(1, 3)).ravel()
    old = [np.cov(m[b].ravel(), box)[0, 1] / box.var(ddof=1) for b in range(4)]
    assert all(o < 0.99 * w for o, w in zip(old, want))   # the block average's gains: clearly below
