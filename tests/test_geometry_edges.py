"""Scene-geometry extremes (QA 99): tiles larger than TILE_SIZE in the memory plan, one minimum for an EXTENT and a
scene, an EXTENT typed to 4 decimals, a ratio that is not whole at the MS's edge, and R-* on 16 MS pixels."""
from __future__ import annotations

import numpy as np
import pytest
from osgeo import gdal

from ksdiff_qgis.engine import memory
from ksdiff_qgis.engine.errors import InputError
from ksdiff_qgis.engine.feedback import RecordingFeedback
from ksdiff_qgis.engine.grid import plan_grid
from ksdiff_qgis.engine.pipeline import pansharpen
from ksdiff_qgis.engine.raster_io import open_raster
from ksdiff_qgis.engine.tiling import choose_layout

PAN1, MS1 = "wv2/pair1_pan.tif", "wv2/pair1_ms.tif"
EPSG = "EPSG:32631"


def test_the_memory_plan_counts_a_learned_models_overlap(cached, monkeypatch):
    """QA: a learned model's tiles are TILE_SIZE + OVERLAP (cells of 512 blended over 32 more: 544 px), but the memory
    plan sized TILE_SIZE alone, so a budget between the two let tiles through that it could not hold. The tiles the
    run then computes (Landsat 8's 1207-row PAN, 512 / 32) fit the budget."""
    _, pan = open_raster(str(cached("landsat8/pan.tif")), "PAN")
    rows, cols = pan.height, pan.width
    small, large = (memory.estimate_mb(t, rows, cols, 7, 0, True) for t in (512, 544))
    budget = (small + large) / 2
    monkeypatch.setenv(memory.ENV_LIMIT, f"{budget:.1f}")
    tile, overlap, warning = memory.fit_tile(512, 32, rows, cols, 7, 0, learned=True)
    assert tile < 512 and warning and "Tiles of 512 px" in warning, (tile, warning)
    layout = choose_layout(rows, cols, tile, overlap, (256, 256), exact=False)
    assert memory.estimate_mb(layout.tile, rows, cols, 7, 0, True) <= budget, layout
    # the classical methods' tiles have no overlap: the same budget keeps their 512 px
    assert memory.fit_tile(512, 32, rows, cols, 7, 0, learned=False)[0] == 512


@pytest.mark.parametrize("pixels, refused", [(20, True), (31, True), (32, False)])
def test_an_extent_has_the_minimum_of_a_scene(cached, tmp_path, pixels, refused):
    """QA: an EXTENT down to 16 x 16 PAN pixels was fused at ratio 4 while a scene below 32 x 32 is refused and
    ksdiff:assess refuses such an output. Now 20 x 20 and 31 x 31 are refused in a scene's words, 32 x 32 is fused
    (and assessed)."""
    from ksdiff_qgis.engine.assessment import assess_full

    gt = gdal.Open(str(cached(PAN1))).GetGeoTransform()
    x0, y1 = gt[0] + 260 * gt[1], gt[3] + 240 * gt[5]   # on PAN pixel edges: the window is ``pixels`` wide
    out = tmp_path / "e.tif"
    run = lambda: pansharpen(str(cached(PAN1)), str(cached(MS1)), str(out), "wv2", "mtf_glp_hpm",  # noqa: E731
                             extent=(x0, y1 + pixels * gt[5], x0 + pixels * gt[1], y1))
    if refused:
        with pytest.raises(InputError) as e:
            run()
        assert str(e.value) == (f"EXTENT covers only {pixels} x {pixels} PAN pixels of the PAN/MS overlap: too small "
                                "to fuse; the minimum is 32 x 32 PAN pixels (8 x 8 MS pixels at ratio 4); give a "
                                "larger EXTENT"), str(e.value)
        assert not out.exists()
        return
    res = run()
    assert (res.width, res.height) == (32, 32)
    full = assess_full(str(out), str(cached(PAN1)), str(cached(MS1)), "wv2")
    assert 0 < full["HQNR"] < 1


def test_an_extent_typed_to_4_decimals_is_the_pans_own(cached, tmp_path):
    """QA: the PAN's extent typed to 4 decimals (1.3e-5 m past its right edge) warned 'EXTENT reaches beyond the
    PAN/MS overlap: ... 600 x 600 of its 601 x 601'; an extent a hundredth of a pixel past it still warns."""
    said = RecordingFeedback()
    res = pansharpen(str(cached(PAN1)), str(cached(MS1)), str(tmp_path / "a.tif"), "wv2", "mtf_glp_hpm",
                     extent=(593270.2919, 5747357.4196, 593570.2880, 5747657.4159), extent_wkt=EPSG, feedback=said)
    assert (res.width, res.height) == (600, 600)
    assert not [w for w in said.lines if "reaches beyond" in w], said.lines
    said = RecordingFeedback()
    pansharpen(str(cached(PAN1)), str(cached(MS1)), str(tmp_path / "b.tif"), "wv2", "mtf_glp_hpm",
               extent=(593270.2919, 5747357.4196, 593570.2930, 5747657.4159), extent_wkt=EPSG, feedback=said)
    assert [w for w in said.lines if "600 x 600 of its 601 x 600 PAN pixels" in w], said.lines


def _ms_at(cached, tmp_path, size: float, name: str) -> str:
    """Pair 1's MS averaged to ``size`` m pixels (no nodata left anywhere in it), as ``gdalwarp -r average -tr``."""
    out = str(tmp_path / name)
    gdal.Warp(out, str(cached(MS1)), xRes=size, yRes=size, resampleAlg="average")
    return out


def test_a_ratio_not_whole_has_no_false_nodata_at_the_edge(cached, tmp_path):
    """QA: pair 1's MS averaged to 2.1 m (ratio 4.2, no nodata anywhere) fused with KSDiff logged '3 tile(s) with
    nodata (or a fill of zeros)', and its last row and column were 8-10 DN off the same MS resampled to 2 m first
    (interior 0.45): the on-the-fly resampling had one pixel more, past the MS, all nodata. Now the resampled grid
    ends inside the MS and the edge is read as an integer-ratio MS's."""
    ms42 = _ms_at(cached, tmp_path, 2.09997251, "ms42.tif")
    pan_ds, pan = open_raster(str(cached(PAN1)), "PAN")
    ms_ds, ms = open_raster(ms42, "MS")
    plan = plan_grid(pan, ms, ms_ds)
    grid = plan.ms_dataset
    assert (plan.ratio, plan.region, grid.RasterXSize, grid.RasterYSize) == (4, (0, 0, 600, 600), 150, 150)
    assert grid.ReadAsArray().min() > 0   # no pixel of the grid the fusion reads is a fill
    # the same resampling written beforehand: the fusion must not tell them apart, at the edge either
    pre = str(tmp_path / "pre.tif")
    gdal.Warp(pre, grid)
    said = RecordingFeedback()
    fused = {}
    for name, path, fb in (("fly", ms42, said), ("pre", pre, None)):
        out = str(tmp_path / f"fused_{name}.tif")
        pansharpen(str(cached(PAN1)), path, out, "wv2", "ksdiff", precision="fp32", feedback=fb)
        fused[name] = gdal.Open(out).ReadAsArray().astype(np.float64)
    assert not [w for w in said.lines if "data-only rectangle" in w], said.lines
    d = np.abs(fused["fly"] - fused["pre"])
    assert d[:, :, -1].mean() < 0.5 and d[:, -1, :].mean() < 0.5 and d.mean() < 0.1, (
        d[:, :, -1].mean(), d[:, -1, :].mean(), d.mean())


def test_assess_counts_16_whole_ms_pixels_across_a_64_px_output(cached, tmp_path):
    """QA: a 64 x 600 PAN output of 16 x 150 MS pixels (ratio 4.0003: the 16th MS pixel ends 0.026 px past the output)
    was told 'R-ERGAS is n/a: fewer than 16 whole MS pixels across or down lie in the overlap'. Now the 16 count."""
    from ksdiff_qgis.engine.assessment import assess_full

    p, m = str(tmp_path / "p.tif"), str(tmp_path / "m.tif")
    gdal.Translate(p, str(cached(PAN1)), srcWin=[280, 0, 64, 600])
    gdal.Translate(m, str(cached(MS1)), srcWin=[70, 0, 16, 150])
    fused = pansharpen(p, m, str(tmp_path / "f.tif"), "wv2", "mtf_glp_hpm").output_path
    res = assess_full(fused, p, m, "wv2")
    assert (res["width"], res["height"]) == (64, 600)
    assert all(np.isfinite(res[k]) for k in ("R_Q2n", "R_SAM", "R_ERGAS")), res["why"]
    assert 0 < res["R_ERGAS"] < 10 and 0 < res["R_Q2n"] <= 1, res
