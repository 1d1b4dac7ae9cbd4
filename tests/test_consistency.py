"""The learned output is projected onto its MS (one back-projection step, ``engine.consistency``; issue 12)."""
from __future__ import annotations

import numpy as np
import pytest
from osgeo import gdal

from ksdiff_qgis.engine import classical, consistency, metrics
from ksdiff_qgis.engine.assessment import assess_full
from ksdiff_qgis.engine.filters import upsample, wald_degrade
from ksdiff_qgis.engine.learned import OnnxFuser, checked_session
from ksdiff_qgis.engine.model_card import bundled_cards, load_card
from ksdiff_qgis.engine.pipeline import pansharpen
from ksdiff_qgis.engine.sensors import get_sensor

WV2 = get_sensor("wv2")


@pytest.fixture(scope="module")
def fuser():
    card = load_card(bundled_cards()["wv2"])
    return OnnxFuser(card, checked_session(card, "cpu", 1), 2047.0, "fp32")


def _ctx(ms=None):
    stats = classical.SceneStats.__new__(classical.SceneStats)   # the network does not read scene statistics
    return classical.TileContext(stats, 4, WV2.mtf_ms, (0, 0), ms=ms)


def test_the_step_brings_the_fusion_back_to_its_ms_and_closer_to_the_reference(wv2_arrays, fuser):
    """Wald's protocol on real imagery: the bundled network's fusion of the degraded pair, with and without the
    step. Reprojected onto the MS grid it is far closer to the MS it was given, and closer to the reference."""
    pan, ms = wv2_arrays
    pan_lr, ms_lr = wald_degrade(pan, WV2.mtf_pan, 4), wald_degrade(ms, WV2.mtf_ms, 4)
    lms_lr = upsample(ms_lr, 4, pan_lr.shape)
    raw, fixed = fuser(pan_lr, lms_lr, _ctx()), fuser(pan_lr, lms_lr, _ctx(ms_lr))
    inner, inner_lr = (slice(None), slice(24, -24), slice(24, -24)), (slice(None), slice(6, -6), slice(6, -6))

    def r_ergas(f):
        return metrics.ergas(wald_degrade(f, WV2.mtf_ms, 4)[inner_lr], ms_lr[inner_lr], 4)

    assert r_ergas(fixed) < 0.7 * r_ergas(raw)
    assert metrics.ergas(fixed[inner], ms[inner], 4) < 0.99 * metrics.ergas(raw[inner], ms[inner], 4)
    # a smooth correction: no one-pixel pattern added
    assert (metrics.checkerboard_response(fixed) <= metrics.checkerboard_response(raw) + 0.01).all()


def test_a_tile_with_the_halo_equals_the_whole_image(wv2_arrays, fuser):
    """Tiles at offsets that are not multiples of the ratio, with MS windows that start elsewhere: the
    interior is what the whole image gets (the pipeline's margin includes the halo)."""
    pan, ms = wv2_arrays
    fused = fuser(pan, upsample(ms, 4, pan.shape), _ctx())
    whole = consistency.project(fused, ms, (0, 0), WV2.mtf_ms, 4)
    halo = consistency.halo(4, WV2.mtf_ms)
    assert halo < classical.margin("mtf_glp_hpm", 4)   # the shorter filter keeps the model's extra work small
    for r0, c0, h, w in ((37, 45, 61, 50), (halo, 101, 90, 77), (130, halo + 3, 70, 41)):
        R0, C0 = r0 - halo, c0 - halo
        tile = fused[:, R0:r0 + h + halo, C0:c0 + w + halo]
        mr, mc = R0 // 4 - 1, C0 // 4 - 1            # the MS window may start before the tile
        win = ms[:, max(mr, 0):, max(mc, 0):]
        origin = (max(mr, 0) * 4 - R0, max(mc, 0) * 4 - C0)
        out = consistency.project(tile, win, origin, WV2.mtf_ms, 4)
        diff = np.abs(out[:, halo:-halo, halo:-halo] - whole[:, r0:r0 + h, c0:c0 + w]).max()
        assert diff < 1e-2, (r0, c0, diff)
    # without the halo the border pixels are not exact: the halo is needed
    out = consistency.project(fused[:, 40:140, 40:140], ms[:, 10:35, 10:35], (0, 0), WV2.mtf_ms, 4)
    assert np.abs(out[:, :4] - whole[:, 40:44, 40:140]).max() > 1.0


def test_the_plugin_projects_ksdiff_but_not_the_classical_methods(data_dir, tmp_path, monkeypatch):
    """Through the pipeline on the real fixture: KSDiff's full-resolution R-ERGAS drops against the same run
    without the step; a classical method's output is untouched by it."""
    pan, ms = str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif")
    runs = {}
    for name, step in (("with", consistency.project), ("without", lambda f, *a, **k: np.asarray(f, np.float32))):
        monkeypatch.setattr(consistency, "project", step)
        for method in ("ksdiff", "mtf_glp_hpm"):
            out = str(tmp_path / f"{method}_{name}.tif")
            pansharpen(pan, ms, out, sensor="wv2", method=method, precision="fp32")
            runs[method, name] = out
    r = {k: assess_full(v, pan, ms, "wv2")["R_ERGAS"] for k, v in runs.items()}
    assert r["ksdiff", "with"] < 0.8 * r["ksdiff", "without"]
    a, b = (gdal.Open(runs["mtf_glp_hpm", n]).ReadAsArray() for n in ("with", "without"))
    assert np.array_equal(a, b)


def test_an_ms_grid_half_a_pan_pixel_off_is_honoured(data_dir, tmp_path, monkeypatch):
    """Landsat 8 (real fixture): the MS grid sits half a PAN pixel off the PAN's. The step resamples the MS onto
    its own grid; rounding the offset instead pulled the output towards a shifted MS (R-ERGAS 0.44 -> 0.82 on
    the bench scene)."""
    pan, ms = str(data_dir / "l8_pan.tif"), str(data_dir / "l8_ms.tif")
    r = {}
    for name, step in (("with", consistency.project), ("without", lambda f, *a, **k: np.asarray(f, np.float32))):
        monkeypatch.setattr(consistency, "project", step)
        out = str(tmp_path / f"{name}.tif")
        pansharpen(pan, ms, out, sensor="landsat8", method="ksdiff", precision="fp32")
        r[name] = assess_full(out, pan, ms, "landsat8")
    assert r["with"]["R_ERGAS"] < 0.85 * r["without"]["R_ERGAS"]
    assert r["with"]["D_lambda"] < r["without"]["D_lambda"]


def test_the_step_can_be_switched_off_in_processing(qgis_app, data_dir, tmp_path):
    """CONSISTENCY (advanced, default on): off writes the network's own output, through real QGIS Processing."""
    import processing

    pan, ms = str(data_dir / "wv2_test_pan.tif"), str(data_dir / "wv2_test_ms.tif")
    base = {"PAN": pan, "MS": ms, "SENSOR": "wv2", "METHOD": "ksdiff", "DEVICE": "cpu"}
    alg_default = processing.run("ksdiff:pansharpen", {**base, "OUTPUT": str(tmp_path / "on.tif")})
    alg_off = processing.run("ksdiff:pansharpen", {**base, "CONSISTENCY": False, "OUTPUT": str(tmp_path / "off.tif")})
    on, off = (gdal.Open(r["OUTPUT"]).ReadAsArray() for r in (alg_default, alg_off))
    raw = pansharpen(pan, ms, str(tmp_path / "raw.tif"), sensor="wv2", method="ksdiff", consistency=False)
    assert np.array_equal(off, gdal.Open(raw.output_path).ReadAsArray())
    assert np.abs(on.astype(int) - off.astype(int)).mean() > 0.5
    r_on, r_off = (assess_full(str(tmp_path / f), pan, ms, "wv2")["R_ERGAS"] for f in ("on.tif", "off.tif"))
    assert r_on < r_off


def test_a_filled_nodata_hole_does_not_pull_its_neighbours(wv2_arrays, fuser):
    """The pipeline fills MS nodata with the scene mean; ``real`` keeps those pixels out of the step, so the
    valid pixels next to a hole get the same correction as without the hole (a pull towards the mean leaked
    into them before)."""
    pan, ms = wv2_arrays
    fused = fuser(pan, upsample(ms, 4, pan.shape), _ctx())
    whole = consistency.project(fused, ms, (0, 0), WV2.mtf_ms, 4)
    holed = ms.copy()
    holed[:, 30:34, 30:34] = ms.mean(axis=(1, 2))[:, None, None]   # a 4x4 MS-pixel hole, filled as the pipeline does
    real = np.ones(ms.shape[1:], dtype=bool)
    real[30:34, 30:34] = False
    next_to = (slice(None), slice(34 * 4, 36 * 4), slice(30 * 4, 34 * 4))   # two MS rows below the hole
    leaked = consistency.project(fused, holed, (0, 0), WV2.mtf_ms, 4)
    kept = consistency.project(fused, holed, (0, 0), WV2.mtf_ms, 4, real=real)
    err_leaked = np.abs(leaked[next_to] - whole[next_to]).mean()
    err_kept = np.abs(kept[next_to] - whole[next_to]).mean()
    assert err_kept < 0.5 * err_leaked
    assert np.abs(kept[:, :100, :100] - whole[:, :100, :100]).max() < 1e-4   # far from the hole: unchanged


def test_on_landsat_grids_a_consistent_fusion_is_left_alone(data_dir, tmp_path):
    """A fusion whose MS is exactly what the MS sensor sees of it (``landsat_layout``: MS pixel centres on PAN pixel
    centres, half a PAN pixel off the PAN grid) is consistent: the step must leave it as it is. It resampled the MS by
    a quarter MS pixel instead, and pulled the truth towards that blurred MS."""
    from landsat_layout import MS_CORNER, PAD, landsat_truth_scene

    scene = landsat_truth_scene(data_dir, tmp_path)
    truth = scene["truth_padded"]
    ms = gdal.Open(scene["ms"]).ReadAsArray().astype(np.float32)
    out = consistency.project(truth, ms, (PAD + MS_CORNER, PAD + MS_CORNER), scene["gains"], scene["ratio"])
    inner = (slice(None), slice(PAD, -PAD), slice(PAD, -PAD))
    change = np.abs(out - truth)[inner]
    assert change.mean() < 1e-3 * truth[inner].mean() and change.max() < 0.01 * truth[inner].mean()


def test_a_small_real_grid_offset_is_honoured_not_snapped(wv2_arrays):
    """An MS grid 0.005 PAN pixels off the PAN's is an offset, not float noise: a fusion exactly consistent with that
    MS is left alone. The step snapped offsets up to 0.01 px to the lattice (moving such a fusion by up to 1.4 DN)
    while the reprojection indices honoured them: both now split the corner the same way (``filters.split_corner``)."""
    pan, ms = wv2_arrays
    truth = np.stack([pan * (ms[b].mean() / pan.mean()) for b in range(ms.shape[0])])
    pad = 24
    corner = (pad + 0.005, pad + 0.005)
    n = (truth.shape[1] - 2 * pad) // 4 - 1
    seen = metrics.reproject_at(truth, WV2.mtf_ms, 4, corner, (n, n)).astype(np.float32)
    out = consistency.project(truth, seen, corner, WV2.mtf_ms, 4)
    change = np.abs(out - truth)[:, 2 * pad:-2 * pad, 2 * pad:-2 * pad]
    assert change.mean() < 0.005 and change.max() < 0.1, (change.mean(), change.max())
