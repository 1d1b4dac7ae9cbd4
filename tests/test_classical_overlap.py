"""Classical methods need no overlap between tiles, also below one output block (QA: TILE_SIZE 64 with the default
OVERLAP 32 fused a 4200x4200 mosaic of WV2 pair 2 in 17161 tiles and 87.5 s instead of 8.4 s, for the same pixels)."""
from __future__ import annotations

import re

import numpy as np
import pytest
from osgeo import gdal

from ksdiff_qgis.engine import classical
from ksdiff_qgis.engine.feedback import RecordingFeedback
from ksdiff_qgis.engine.pipeline import pansharpen
from ksdiff_qgis.engine.tiling import choose_layout, tile_count


def _pixels(path):
    return gdal.Open(str(path)).ReadAsArray()


@pytest.mark.parametrize("method", list(classical.FUSERS))
@pytest.mark.parametrize("scene", ["wv2", "wv2_nodata", "pair2_offset"])
def test_small_tiles_of_a_classical_method_have_no_overlap(data_dir, cached, tmp_path, method, scene):
    """TILE_SIZE 64 (below the output's 256 px blocks): the tiles of every classical method abut, whatever OVERLAP,
    and the pixels are those of 512 px block-aligned tiles, bit for bit (their filters read their context through
    the tile margin): on the fixture, on its nodata variant, and on WV2 pair 2 cut so that the MS grid is offset
    from the output's (PAN from pixel 2, 3)."""
    if scene == "pair2_offset":
        pan, ms = str(tmp_path / "pan.tif"), str(cached("wv2/pair2_ms.tif"))
        gdal.Translate(pan, str(cached("wv2/pair2_pan.tif")), srcWin=[2, 3, 590, 589])
    else:
        pan, ms = str(data_dir / f"{scene}_pan.tif"), str(data_dir / f"{scene}_ms.tif")
    ref = pansharpen(pan, ms, str(tmp_path / "ref.tif"), "wv2", method, tile_size=512)
    log = RecordingFeedback()
    small = pansharpen(pan, ms, str(tmp_path / "small.tif"), "wv2", method, tile_size=64, overlap=32, feedback=log)
    assert small.tiles == tile_count(small.height, small.width, 64, 0), small.tiles   # not the 32 px overlap's
    assert np.array_equal(_pixels(small.output_path), _pixels(ref.output_path))
    layout = gdal.Open(small.output_path).GetMetadataItem("KSDIFF_TILE_LAYOUT")
    assert layout.startswith(f"{small.tiles} tiles (a ") and layout.endswith("no overlap needed"), layout
    # the log's words, less why the tiles are smaller than asked
    assert any(re.sub(r" \(\d+ at most, evened out over the output\)", "", line).endswith(f" in {layout}.")
               for line in log.lines), log.lines


def test_a_learned_method_keeps_its_overlap_below_a_block():
    """The network's tiles still overlap by OVERLAP and are blended, in strips below one block."""
    learned = choose_layout(4200, 4200, 64, 32, (256, 256), exact=False)
    exact = choose_layout(4200, 4200, 64, 32, (256, 256), exact=True)
    assert (learned.kind, learned.overlap, learned.count) == ("strips", 32, 17161)
    assert (exact.kind, exact.overlap, exact.count) == ("strips", 0, 66 * 66)
    assert exact.describe(64).endswith("no overlap needed")
