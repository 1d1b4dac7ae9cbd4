"""QA126: a many-band output (hyperspectral, Float32) written band by band into its pixel-interleaved GeoTIFF grew
with a small GDAL block cache: half-filled blocks were encoded, read back and appended again (230 bands: 667 MB
became 3.78 GB at GDAL_CACHEMAX=32, or failed past 4 GB). The writer now fills each block from all bands in one
call, and the strips' held rows go with the rows that complete their blocks: the size does not depend on the cache.
A synthetic 40-band scene at ratio 6 (600² PAN; 384² for strips, whose tiles are below a block). And the memory
shrink's warning names the tiles the run then has."""
from __future__ import annotations

import hashlib
import os
import re

import numpy as np
import pytest
from osgeo import gdal, osr

from ksdiff_qgis.engine import memory
from ksdiff_qgis.engine.feedback import RecordingFeedback
from ksdiff_qgis.engine.pipeline import pansharpen
from model_core.rasters import write_geotiff

BANDS, RATIO = 40, 6
SMALL_CACHE, LARGE_CACHE = 1 << 20, 512 << 20   # bytes: below one block of all bands (10 MB here), above a tile's


def _pair(folder, n: int) -> tuple[str, str]:
    """A smooth PAN of n² Float32 pixels and a 40-band HS at 1/6 of its resolution (scaled PAN averages)."""
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)
    pan = (0.3 + 0.1 * np.sin(xx / 17) * np.cos(yy / 29) + 0.02 * rng.random((n, n))).astype(np.float32)
    low = pan.reshape(n // RATIO, RATIO, n // RATIO, RATIO).mean((1, 3))
    hs = np.stack([low * (0.5 + b / BANDS) for b in range(BANDS)]).astype(np.float32)
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32633)
    wkt = srs.ExportToWkt()
    return (write_geotiff(str(folder / "pan.tif"), pan, (500000, 10.0, 0, 4000000, 0, -10.0), wkt),
            write_geotiff(str(folder / "hs.tif"), hs, (500000, 10.0 * RATIO, 0, 4000000, 0, -10.0 * RATIO), wkt))


def _fuse(pan: str, hs: str, out, cache: int, tile: int) -> tuple[int, str]:
    """(file size, md5 of the pixels) of an MTF-GLP-HPM fusion written with GDAL's block cache at ``cache`` bytes."""
    before = gdal.GetCacheMax()
    gdal.SetCacheMax(cache)
    try:
        res = pansharpen(pan, hs, str(out), "generic", "mtf_glp_hpm", tile_size=tile)
    finally:
        gdal.SetCacheMax(before)
    pixels = gdal.Open(res.output_path).ReadAsArray()
    return os.path.getsize(res.output_path), hashlib.md5(pixels.tobytes()).hexdigest()


@pytest.mark.parametrize("n, tile", [(600, 512), (384, 128)], ids=["aligned-tiles", "strips"])
def test_a_many_band_output_has_the_same_size_whatever_gdals_cache(tmp_path, n, tile):
    pan, hs = _pair(tmp_path, n)
    large = _fuse(pan, hs, tmp_path / "large.tif", LARGE_CACHE, tile)
    small = _fuse(pan, hs, tmp_path / "small.tif", SMALL_CACHE, tile)
    # before: 685 MB against 33.5 MB (aligned tiles), 311 MB against 13.8 MB (strips)
    sizes = f"{small[0] / 2**20:.1f} MB with a 1 MB cache, {large[0] / 2**20:.1f} MB with 512 MB"
    assert small[0] <= 1.1 * large[0], sizes
    assert small[1] == large[1]   # the same pixels


def test_shrunk_tiles_are_said_as_the_run_lays_them_out(tmp_path, monkeypatch):
    """QA126 D2: under a memory limit the warning said "using tiles of 384 px ... about 2x as many tiles" while the
    block-aligned layout rounded them to 256 px: 25 tiles instead of 9. Now it names the tiles the log's layout line
    gives. Here 512-px tiles do not fit, 384-px ones do, and the run has 256-px tiles, 9 instead of 4."""
    pan, hs = _pair(tmp_path, 600)
    first = RecordingFeedback()
    pansharpen(pan, hs, str(tmp_path / "free.tif"), "generic", "mtf_glp_hpm", feedback=first)
    margin = int(re.search(r"tiles read (\d+) px of context", "\n".join(first.lines)).group(1))
    need = [memory.estimate_mb(t, 600, 600, BANDS, margin, False) for t in (384, 512)]
    monkeypatch.setenv(memory.ENV_LIMIT, f"{sum(need) / 2:.0f}")
    fb = RecordingFeedback()
    pansharpen(pan, hs, str(tmp_path / "shrunk.tif"), "generic", "mtf_glp_hpm", feedback=fb)
    warning = next(line for line in fb.lines if line.startswith("WARNING Tiles of 512 px would need"))
    layout = next(line for line in fb.lines if line.startswith("Fusing with"))
    assert "in 9 tiles (a 3 x 3 grid) of up to 256x256 px on the output's blocks" in layout, layout
    least = memory.estimate_mb(256, 600, 600, BANDS, margin, False)
    assert f"using tiles of 256 px (about {least:.0f} MB): 9 tiles instead of 4," in warning, warning
