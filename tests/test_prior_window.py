"""A tile with nodata takes its KSDiff kernels from its data (engine/learned.prior_window): what lies under a hole
no longer changes the kernels of the tile's other pixels."""
from __future__ import annotations

import dataclasses
import itertools
import shutil

import numpy as np
import pytest
from osgeo import gdal

from ksdiff_qgis.engine import runtime
from ksdiff_qgis.engine.classical import TileContext, scene_stats
from ksdiff_qgis.engine.feedback import RecordingFeedback
from ksdiff_qgis.engine.learned import (
    PRIOR_BLOCK,
    PRIOR_MIN_SIDE,
    OnnxFuser,
    fill_areas,
    largest_rectangle,
    loaded_session,
    prior_window,
)
from ksdiff_qgis.engine.model_card import bundled_cards, load_card
from ksdiff_qgis.engine.pipeline import pansharpen


def _brute_force_area(valid: np.ndarray) -> int:
    rows, cols = valid.shape
    return max((h * w for r, c in itertools.product(range(rows), range(cols))
                for h in range(1, rows - r + 1) for w in range(1, cols - c + 1) if valid[r:r + h, c:c + w].all()),
               default=0)


def test_largest_rectangle_matches_a_brute_force_search():
    rng = np.random.default_rng(0)
    for density in (0.5, 0.7, 0.9):
        for _ in range(20):
            valid = rng.random((6, 8)) < density
            r, c, h, w = largest_rectangle(valid)
            assert h * w == _brute_force_area(valid)
            assert valid[r:r + h, c:c + w].all()


def test_prior_window_is_the_data_part_of_a_tile():
    valid = np.ones((96, 120), dtype=bool)
    assert prior_window(valid) is None                      # no hole: the whole tile, as before
    assert prior_window(None) is None
    assert prior_window(~valid) is None                     # nothing but nodata: nothing to take kernels from
    valid[:30] = False                                      # a strip along the top
    r, c, h, w = prior_window(valid)
    assert (r, c, h, w) == (32, 0, 64, 120)                 # block-aligned, inside the data
    assert valid[r:r + h, c:c + w].all()
    valid[:] = False
    valid[:, :PRIOR_MIN_SIDE - PRIOR_BLOCK] = True          # data too narrow to summarise: the whole tile
    assert prior_window(valid) is None


def test_a_fill_is_an_area_of_zeros_not_scattered_dark_pixels():
    rng = np.random.default_rng(4)
    zero = rng.random((100, 90)) < 0.05                     # dark pixels of an 8-bit product
    assert fill_areas(zero) is None
    zero[:, :37] = True                                     # a scene-edge strip, its edge off the block grid
    fill = fill_areas(zero)
    assert fill[:, :37].all()                               # the whole strip
    assert not fill[:, 37 + 2 * PRIOR_BLOCK:].any()         # and no more than its edge's block beyond it
    assert fill.shape == zero.shape


@pytest.fixture(scope="module")
def wv2_fuser():
    runtime.clear_cache()
    card = load_card(bundled_cards()["wv2"])

    def make(precision):
        session = loaded_session(card, "cpu", 1, precision)
        return OnnxFuser(card, session, card.scale, precision, consistency=False)
    return make


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_what_lies_under_a_hole_changes_no_pixel_away_from_it(data_dir, wv2_fuser, precision):
    """Real WorldView-2 pixels, the bundled model on its per-tile path: two different contents under a declared
    hole (the scene mean, as the pipeline fills; random values) give the same pixels beyond the network's reach
    of the hole. Before, the hole's content changed every pixel of the tile through its kernels."""
    fuser = wv2_fuser(precision)
    assert fuser.fast is not None
    pan = gdal.Open(str(data_dir / "wv2_pan.tif")).ReadAsArray().astype(np.float32)
    ms = gdal.Open(str(data_dir / "wv2_ms.tif")).ReadAsArray().astype(np.float32)
    lms = np.repeat(np.repeat(ms, 4, axis=1), 4, axis=2)
    stats = scene_stats(ms.mean(0), ms, np.ones(ms.shape[1:], dtype=bool))
    valid = np.ones(pan.shape, dtype=bool)
    valid[:, :90] = False                                   # the left third is a hole
    ctx = TileContext(stats=stats, ratio=4, gains=(0.3,) * 4, origin=(0, 0), valid=valid)
    outs = []
    for fill in ("mean", "noise"):
        p, x = pan.copy(), lms.copy()
        if fill == "mean":
            p[~valid], x[:, ~valid] = pan[valid].mean(), lms[:, valid].mean(axis=1)[:, None]
        else:
            rng = np.random.default_rng(1)
            p[~valid] = rng.uniform(0, 2047, (~valid).sum())
            x[:, ~valid] = rng.uniform(0, 2047, (4, (~valid).sum()))
        outs.append(fuser(p, x, ctx))
    reach = 2 * fuser.card.margin                           # beyond it the backbone does not see the hole
    far = np.abs(outs[0][:, :, 90 + reach:] - outs[1][:, :, 90 + reach:])
    near = np.abs(outs[0][:, :, 90:90 + 4] - outs[1][:, :, 90:90 + 4])
    assert far.max() < 1e-2 * float(np.abs(outs[0]).mean())     # float rounding only
    assert near.max() > 1.0                                 # the test sees a difference where one must be
    assert fuser.windowed == 2


def test_a_hole_barely_moves_the_pixels_elsewhere_in_its_tile(data_dir, tmp_path):
    """Through the engine (one tile, real imagery, METHOD ksdiff): an MS with its left third declared nodata
    against the same MS whole; away from the hole the fused pixels stay close (the kernels come from the data
    only), and the log says which tiles took that path."""
    pan = str(data_dir / "wv2_pan.tif")
    whole = str(tmp_path / "ms.tif")
    shutil.copy(data_dir / "wv2_ms.tif", whole)
    holed = str(tmp_path / "ms_holed.tif")
    gdal.Translate(holed, whole)
    ds = gdal.Open(holed, gdal.GA_Update)
    for b in range(1, 5):
        band = ds.GetRasterBand(b)
        arr = band.ReadAsArray()
        arr[:, :22] = 0
        band.WriteArray(arr)
    ds = None
    out = {}
    for name, ms in (("whole", whole), ("holed", holed)):
        log = RecordingFeedback()
        res = pansharpen(pan, ms, str(tmp_path / f"{name}.tif"), "wv2", "ksdiff", workers=1, feedback=log)
        assert res.tiles == 1
        out[name] = gdal.Open(res.output_path).ReadAsArray().astype(np.float64)
        assert any("took their kernels from their largest data-only rectangle" in m for m in log.lines) == (
            name == "holed")
    far = np.abs(out["whole"] - out["holed"])[:, :, 128:]
    assert (out["holed"][:, :, :80] == 0).all()                 # the hole is nodata in the output
    # measured: 0.93 % of the mean (2.3 DN, p99 15) with kernels from the data part, 3.1 % (7.5 DN, p99 56)
    # with kernels from the whole filled tile; what stays is the kernels' dependence on the context's extent
    assert far.mean() < 0.015 * out["whole"][:, :, 128:].mean()


def test_the_full_graph_says_its_kernels_saw_the_hole(data_dir, wv2_fuser):
    """Without the per-tile path (a CUDA session, or a model without it) the graph sees its whole tile: counted
    and said in the log, not hidden."""
    fuser = wv2_fuser("fp32")
    fuser.fast = None
    pan = gdal.Open(str(data_dir / "wv2_pan.tif")).ReadAsArray().astype(np.float32)
    ms = gdal.Open(str(data_dir / "wv2_ms.tif")).ReadAsArray().astype(np.float32)
    lms = np.repeat(np.repeat(ms, 4, axis=1), 4, axis=2)
    stats = scene_stats(ms.mean(0), ms, np.ones(ms.shape[1:], dtype=bool))
    valid = np.ones(pan.shape, dtype=bool)
    ctx = TileContext(stats=stats, ratio=4, gains=(0.3,) * 4, origin=(0, 0), valid=valid)
    fuser(pan, lms, ctx)
    assert fuser.window_note() is None
    valid[:, :90] = False
    fuser(pan, lms, ctx)
    assert (fuser.windowed, fuser.unwindowed) == (0, 1)
    assert "ran the full graph, whose kernels also see the filled nodata" in fuser.window_note()
    assert "CPU run" not in fuser.window_note()   # this is one (QA)
    # a model without kernels (as model_core exports a bare FusionNet): no kernels to speak of (QA)
    fuser.card = dataclasses.replace(fuser.card, data={k: v for k, v in fuser.card.data.items() if k != "tile_kernels"})
    assert fuser.window_note() == "1 tile(s) with nodata ran the whole network on their filled holes (pixels next to " \
                                  "a hole see its fill)"


def _zero_left(src, dst, cols, nodata):
    gdal.Translate(dst, str(src), options=gdal.TranslateOptions(noData=nodata))
    ds = gdal.Open(dst, gdal.GA_Update)
    for b in range(1, ds.RasterCount + 1):
        band = ds.GetRasterBand(b)
        arr = band.ReadAsArray()
        arr[:, :cols] = 0
        band.WriteArray(arr)
        band = None
    ds = None
    return dst


def test_an_undeclared_zero_fill_does_not_steer_the_kernels(data_dir, tmp_path):
    """The left third of PAN and MS is 0 and neither declares a nodata value: the fill is fused as data (a warning
    says so), but the kernels of the real pixels come from the real pixels, so away from the fill they match the run
    where 0 is declared as nodata."""
    out = {}
    for name, nodata in (("declared", "0"), ("undeclared", "none")):
        pan = _zero_left(data_dir / "wv2_pan.tif", str(tmp_path / f"pan_{name}.tif"), 88, nodata)
        ms = _zero_left(data_dir / "wv2_ms.tif", str(tmp_path / f"ms_{name}.tif"), 22, nodata)
        log = RecordingFeedback()
        res = pansharpen(pan, ms, str(tmp_path / f"out_{name}.tif"), "wv2", "ksdiff", workers=1, feedback=log)
        assert res.tiles == 1
        ds = gdal.Open(res.output_path)
        out[name] = ds.ReadAsArray().astype(np.float64)
        band = ds.GetRasterBand(1)
        assert (band.GetNoDataValue() is None) == (name == "undeclared")   # the fill stays data
        band = ds = None
        assert any("took their kernels from their largest data-only rectangle" in m for m in log.lines), name
    far = np.abs(out["declared"] - out["undeclared"])[:, :, 128:]
    # measured: 1.0 DN on average (0.42 %, p99 6; what remains: the fill enters the scene statistics and the
    # convolutions next to it), against 13.2 DN (5.4 %, p99 104) when the fill steered the kernels
    assert far.mean() < 0.01 * out["declared"][:, :, 128:].mean()
