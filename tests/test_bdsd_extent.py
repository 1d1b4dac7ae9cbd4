"""BDSD-PC's reduced-scale fit on an EXTENT (QA123): the MS beyond the EXTENT's edges gives the filters their reach,
so a small EXTENT fits as the same area with its surroundings; only the raster's true edges limit it, and runs
without an EXTENT read no more than before."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from osgeo import gdal

from ksdiff_qgis.engine import pipeline
from ksdiff_qgis.engine.sensors import get_sensor

N = 30   # MS pixels a side of the EXTENT: the filters' reach from its edges (18 for WV2) took all of it before


def _extent(data_dir: Path, name: str, col: int, row: int, n: int = N) -> tuple[float, float, float, float]:
    """``n`` x ``n`` MS pixels from (``col``, ``row``) of the ``name`` pair, snapped to the PAN's grid."""
    gt = gdal.Open(str(data_dir / f"{name}_ms.tif")).GetGeoTransform()
    pgt = gdal.Open(str(data_dir / f"{name}_pan.tif")).GetGeoTransform()
    x0 = pgt[0] + round((gt[0] + col * gt[1] - pgt[0]) / pgt[1]) * pgt[1]
    y1 = pgt[3] + round((gt[3] + row * gt[5] - pgt[3]) / pgt[5]) * pgt[5]
    return x0, y1 + n * gt[5], x0 + n * gt[1], y1


def _coef(pan, ms, out: Path, sensor: str, extent) -> dict:
    pipeline.pansharpen(str(pan), str(ms), str(out), sensor, "bdsd_pc", extent=extent)
    return json.loads(gdal.Open(str(out)).GetMetadataItem("KSDIFF_BDSD_COEF"))


def test_a_small_extent_fits_on_all_its_pixels(data_dir, tmp_path):
    """QA123's case: a 30 x 30 MS-pixel EXTENT inside the WV2 pair was refused (0 usable pixels: 'the EXTENT is too
    small'), while the same area cut into files fitted."""
    coef = _coef(data_dir / "wv2_pan.tif", data_dir / "wv2_ms.tif", tmp_path / "o.tif", "wv2",
                 _extent(data_dir, "wv2", 17, 17))
    assert coef["n"] == N * N, coef


def test_an_extent_fits_as_the_same_area_with_its_surroundings(data_dir, tmp_path):
    """The EXTENT's coefficients are those of the same EXTENT on files cut with 25 MS pixels around it (more than the
    filters' reach): the fit sees the pixels beyond the EXTENT, not its edges."""
    ext = _extent(data_dir, "l8", 50, 50)
    margin = 25 * 30.0
    win = [ext[0] - margin, ext[3] + margin, ext[2] + margin, ext[1] - margin]
    cut = {}
    for role in ("pan", "ms"):
        cut[role] = tmp_path / f"{role}.tif"
        gdal.Translate(str(cut[role]), str(data_dir / f"l8_{role}.tif"), projWin=win)
    whole = _coef(data_dir / "l8_pan.tif", data_dir / "l8_ms.tif", tmp_path / "a.tif", "landsat8", ext)
    around = _coef(cut["pan"], cut["ms"], tmp_path / "b.tif", "landsat8", ext)
    assert whole == around and whole["n"] >= (N - 1) ** 2, (whole, around)


@pytest.mark.parametrize("window, region, pad", [
    ((0, 0, 30, 30), (0, 0, 30, 30), (0, 21, 0, 21)),   # at the raster's corner: nothing past its edges
    ((34, 34, 30, 30), (34, 34, 30, 30), (18, 0, 18, 0)),   # at the opposite corner
    ((17, 17, 30, 30), (17, 17, 30, 30), (17, 17, 17, 17)),   # 17 pixels on every side: all of them, no further
    ((4, 40, 30, 24), (4, 40, 30, 24), (18, 0, 4, 21)),   # reach 18 above, the raster's bottom, 4 left, 18 + 3 right
    ((12, 12, 8, 8), (4, 4, 32, 32), (0, 0, 0, 0)),   # a window inside the EXTENT: its edges are the sample's own
])
def test_the_pad_stops_at_the_rasters_edge(window, region, pad):
    """The MS read around a stats window stays inside the raster (64 x 64) and only at the EXTENT's edges."""
    got = pipeline._extent_pad(window, region, (64, 64), 4, tuple(get_sensor("wv2").mtf_ms))
    assert got == pad
    c, r, w, h = window
    assert c - got[2] >= 0 and r - got[0] >= 0 and c + w + got[3] <= 64 and r + h + got[1] <= 64


def test_runs_without_an_extent_read_nothing_around_their_windows(data_dir, tmp_path, monkeypatch):
    """Without an EXTENT the sample is the one before (its fused pixels unchanged): no MS read around a window."""
    monkeypatch.setattr(pipeline, "_read_around", lambda *a, **k: pytest.fail("read around a window"))
    for method in ("bdsd_pc", "auto"):
        pipeline.pansharpen(str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"),
                            str(tmp_path / f"{method}.tif"), "wv2", method)


@pytest.mark.parametrize("pair", ["wv2", "l8"])
@pytest.mark.parametrize("extent", [False, True])
def test_the_fit_leaves_the_registration_as_it_is(data_dir, pair, extent):
    """The registration's sample is the same whether BDSD-PC is fitted or not, with an EXTENT or without (review: the
    pad's unpacking once took the name of the PAN window's row, and every window's read offset with it, off the
    raster's first row)."""
    from ksdiff_qgis.engine.aoi import clip_plan
    from ksdiff_qgis.engine.grid import plan_grid
    from ksdiff_qgis.engine.raster_io import open_raster
    pan_ds, pan = open_raster(str(data_dir / f"{pair}_pan.tif"), "PAN")
    ms_ds, ms = open_raster(str(data_dir / f"{pair}_ms.tif"), "MS")
    plan = plan_grid(pan, ms, ms_ds)
    if extent:
        plan = clip_plan(plan, pan, _extent(data_dir, pair, 17, 17))
    offsets = [pipeline.estimate_scene_stats(pan_ds, plan.ms_dataset or ms_ds, pan, ms, plan, gains=(0.3,) * ms.bands,
                                             bdsd=bdsd).pan_offset for bdsd in (False, True)]
    assert offsets[0] == offsets[1]
