"""Scene-geometry extremes (QA 99): tiles larger than TILE_SIZE in the memory plan, one minimum for an EXTENT and a
scene, an EXTENT typed to 4 decimals, a ratio that is not whole at the MS's edge, and R-* on 16 MS pixels."""
from __future__ import annotations

from ksdiff_qgis.engine import memory
from ksdiff_qgis.engine.raster_io import open_raster
from ksdiff_qgis.engine.tiling import choose_layout

PAN1, MS1 = "wv2/pair1_pan.tif", "wv2/pair1_ms.tif"


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
