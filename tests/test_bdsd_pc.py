"""BDSD-PC (Vivone 2019): band-dependent spatial detail with coefficients fitted at reduced scale under the physical
constraint (g_b >= 0, every gamma_b,i <= 0), applied at full scale as LMS_b + g_b P + sum_i gamma_b,i LMS_i."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal
from test_mtf_glp_fs import _case

from ksdiff_qgis.engine import classical, metrics, selfcheck
from ksdiff_qgis.engine.pipeline import method_names, pansharpen

ROOT = Path(__file__).resolve().parents[1]


def test_the_fit_recovers_known_coefficients_and_keeps_its_bounds():
    rng = np.random.default_rng(7)
    c, n = 4, 5000
    lms = rng.uniform(100, 1000, (c, n))
    p_lr = lms.mean(axis=0) + rng.normal(0, 50, n)
    g = np.array([0.8, 1.1, 0.5, 2.0])
    w = np.array([[0.3, 0.0, 0.2, 0.1], [0.0, 0.6, 0.0, 0.2], [0.1, 0.1, 0.1, 0.1], [0.0, 0.0, 0.9, 0.4]])
    ms = lms + g[:, None] * p_lr[None] - w @ lms
    coef = classical.bdsd_pc_coef(ms, lms, p_lr[None].repeat(c, axis=0))
    assert coef[:, 0] == pytest.approx(g, abs=1e-3)
    assert coef[:, 1:] == pytest.approx(-w, abs=1e-3)
    # a band whose detail the unconstrained fit explains with a positive gamma: the bound holds it at 0
    ms[0] = lms[0] + 0.8 * p_lr + 0.5 * lms[1]
    free = np.linalg.lstsq(np.column_stack([p_lr, lms.T]), ms[0] - lms[0], rcond=None)[0]
    assert free[2] > 0.4
    coef = classical.bdsd_pc_coef(ms, lms, p_lr[None].repeat(c, axis=0))
    assert coef[0, 2] == 0.0 and (coef[:, 1:] <= 0).all() and (coef[:, 0] >= 0).all()
    # too few samples to trust: no coefficients, and the fuser says so
    assert classical.bdsd_pc_coef(ms[:, :79], lms[:, :79], lms[:, :79]) is None


def test_tiled_equals_untiled_and_processing_writes_it(qgis_app, data_dir, tmp_path):
    import processing

    pan, ms = str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif")
    one = pansharpen(pan, ms, str(tmp_path / "one.tif"), "wv2", "bdsd_pc", tile_size=512)
    tiled = pansharpen(pan, ms, str(tmp_path / "tiled.tif"), "wv2", "bdsd_pc", tile_size=64, overlap=0)
    assert tiled.tiles > 1
    a, b = gdal.Open(one.output_path).ReadAsArray(), gdal.Open(tiled.output_path).ReadAsArray()
    assert np.array_equal(a, b)
    assert not np.array_equal(a, gdal.Open(pansharpen(pan, ms, str(tmp_path / "exp.tif"), "wv2",
                                                      "exp").output_path).ReadAsArray())
    out = str(tmp_path / "alg.tif")
    res = processing.run("ksdiff:pansharpen", {"PAN": pan, "MS": ms, "SENSOR": "wv2", "METHOD": "bdsd_pc",
                                               "OUTPUT": out})
    assert res["METHOD_USED"] == "bdsd_pc"
    ds, pan_ds = gdal.Open(out), gdal.Open(pan)
    assert (ds.RasterXSize, ds.RasterYSize, ds.RasterCount) == (pan_ds.RasterXSize, pan_ds.RasterYSize, 4)
    assert ds.GetGeoTransform() == pytest.approx(pan_ds.GetGeoTransform())
    assert ds.GetProjection() == pan_ds.GetProjection()
    assert np.array_equal(ds.ReadAsArray(), a)


def test_bdsd_pc_beats_upsampling_on_the_landsat_wald_case(data_dir, tmp_path):
    pan, ms, ref = _case(data_dir, tmp_path, (0.3, 0.35, 0.35, 0.0))
    err = {}
    for method in ("bdsd_pc", "mtf_glp_fs", "mtf_glp_hpm", "exp"):
        res = pansharpen(pan, ms, str(tmp_path / f"{method}.tif"), "qb", method)
        fused = gdal.Open(res.output_path).ReadAsArray().astype(np.float64)
        err[method] = metrics.ergas(fused[:, 8:-8, 8:-8], ref[:, 8:-8, 8:-8].astype(np.float64), 4)
    print("ERGAS", err)
    assert err["bdsd_pc"] < 0.9 * err["exp"], err


def test_appended_after_the_others_and_a_self_check_candidate():
    keys = list(method_names())
    assert keys[:7] == ["ksdiff", "exp", "brovey", "gsa", "mtf_glp_hpm", "auto", "mtf_glp_fs"]   # numbers keep
    assert keys[7] == "bdsd_pc" and method_names()["bdsd_pc"].startswith("BDSD-PC")
    # taken by the rule of docs/VALIDATION.md (2026-12-07, sixth session)
    assert selfcheck.CLASSICAL_CANDIDATES == ("mtf_glp_hpm", "gsa", "brovey", "mtf_glp_fs", "bdsd_pc")


def test_the_self_check_scores_it_and_skips_it_without_coefficients(data_dir):
    """The self-check scores BDSD-PC beside the others; a scene without coefficients leaves it out instead of
    failing."""
    from dataclasses import replace

    from ksdiff_qgis.engine.grid import plan_grid
    from ksdiff_qgis.engine.pipeline import estimate_scene_stats
    from ksdiff_qgis.engine.raster_io import open_raster
    from ksdiff_qgis.engine.sensors import get_sensor

    pan_ds, pan = open_raster(str(data_dir / "wv2_pan.tif"), "PAN")
    ms_ds, ms = open_raster(str(data_dir / "wv2_ms.tif"), "MS")
    plan = plan_grid(pan, ms, ms_ds)
    sensor = get_sensor("wv2")
    stats = estimate_scene_stats(pan_ds, ms_ds, pan, ms, plan, gains=tuple(sensor.mtf_ms))
    assert stats.bdsd_coef is not None and stats.bdsd_coef.shape == (4, 5)
    area = (0, 0, ms.width, ms.height)
    res = selfcheck.run_check(pan_ds, ms_ds, pan, ms, plan, sensor, None, stats, area)
    assert "bdsd_pc" in res.candidates
    res = selfcheck.run_check(pan_ds, ms_ds, pan, ms, plan, sensor, None, replace(stats, bdsd_coef=None), area)
    assert "bdsd_pc" not in res.candidates and "mtf_glp_fs" in res.candidates
