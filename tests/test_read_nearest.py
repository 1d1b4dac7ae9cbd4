"""Decimated reads meant to see the raster's real values (the fill check, the MS's top value, the alpha-mask test,
the assessment's sample) pick GDAL's nearest-neighbour pixels at full resolution, never the file's overviews."""
from __future__ import annotations

import numpy as np
from osgeo import gdal

from ksdiff_qgis.engine.bandcolour import sample_bands
from ksdiff_qgis.engine.raster_io import read_nearest


def test_read_nearest_is_gdals_pick_without_its_overviews(tmp_path):
    """Without overviews: GDAL's own decimated read, value for value (no decision on such a file changes). With an
    AVERAGE .ovr, GDAL's read returns averaged values the raster does not hold; read_nearest still the same pixels."""
    rng = np.random.default_rng(1)
    a = rng.integers(0, 60000, (2, 1777, 1301)).astype(np.uint16)
    path = str(tmp_path / "r.tif")
    ds = gdal.GetDriverByName("GTiff").Create(path, 1301, 1777, 2, gdal.GDT_UInt16, ["TILED=YES"])
    ds.WriteRaster(0, 0, 1301, 1777, a.tobytes())
    ds = None
    sizes = ((512, 512), (650, 888), (1000, 1000), (256, 300))
    ds = gdal.Open(path)
    gdal_reads = [ds.ReadAsArray(buf_xsize=w, buf_ysize=h, resample_alg=gdal.GRIORA_NearestNeighbour)
                  for w, h in sizes]
    for (w, h), expected in zip(sizes, gdal_reads):
        got, _ = read_nearest(ds, w, h)
        assert got.dtype == np.uint16 and np.array_equal(got, expected), (w, h)
        assert np.array_equal(read_nearest(ds, w, h, [2])[0][0], expected[1])
    ds.BuildOverviews("AVERAGE", [2, 4])
    ds = None
    ds = gdal.Open(path)
    assert not np.array_equal(ds.ReadAsArray(buf_xsize=650, buf_ysize=888), gdal_reads[1])   # GDAL takes the .ovr
    assert np.array_equal(read_nearest(ds, 650, 888)[0], gdal_reads[1])
    assert np.array_equal(sample_bands(ds, 512), gdal_reads[0])


def _blocks_read(monkeypatch, ds) -> list:
    """Record the blocks each ``ReadAsArray`` on a dataset covers (a list of sets, one per call)."""
    calls, real = [], gdal.Dataset.ReadAsArray
    bw, bh = ds.GetRasterBand(1).GetBlockSize()

    def counted(self, xoff=0, yoff=0, xsize=None, ysize=None, *args, **kwargs):
        calls.append({(bx, by) for by in range(yoff // bh, (yoff + ysize - 1) // bh + 1)
                      for bx in range(xoff // bw, (xoff + xsize - 1) // bw + 1)})
        return real(self, xoff, yoff, xsize, ysize, *args, **kwargs)

    monkeypatch.setattr(gdal.Dataset, "ReadAsArray", counted)
    return calls


def test_read_nearest_decodes_each_block_once_with_a_small_cache(tmp_path, monkeypatch):
    """Reading a row at a time decoded a row of blocks again for each sampled row in it once GDAL's cache could not
    hold the row (QA121: 41 s against 0.009 s on an 8192² 4-band COG). Each block is now asked for once, all bands
    in one call, and the picked pixels stay GDAL's nearest ones."""
    from ksdiff_qgis.engine.raster_io import read as read_mod

    rng = np.random.default_rng(2)
    a = rng.integers(0, 60000, (4, 1000, 1300)).astype(np.uint16)
    path = str(tmp_path / "t.tif")
    ds = gdal.GetDriverByName("GTiff").Create(path, 1300, 1000, 4, gdal.GDT_UInt16,
                                              ["TILED=YES", "BLOCKXSIZE=256", "BLOCKYSIZE=256", "COMPRESS=DEFLATE"])
    ds.WriteRaster(0, 0, 1300, 1000, a.tobytes())
    ds = None
    ds = gdal.Open(path)
    expected = ds.ReadAsArray(buf_xsize=300, buf_ysize=200, resample_alg=gdal.GRIORA_NearestNeighbour)
    old_cache = gdal.GetCacheMax()
    gdal.SetCacheMax(1 << 20)   # less than one row of blocks (6 x 4 x 128 KiB)
    try:
        calls = _blocks_read(monkeypatch, ds)
        got, _ = read_nearest(ds, 300, 200)
        assert np.array_equal(got, expected)
        blocks = [b for c in calls for b in c]
        assert len(blocks) == len(set(blocks)) == 6 * 4   # every block once, none twice
        assert len(calls) <= 4 * 6
        monkeypatch.setattr(read_mod, "MAX_WINDOW_BYTES", 1)   # a block too big for memory: its rows one by one
        assert np.array_equal(read_nearest(ds, 300, 200)[0], expected)
        assert np.array_equal(read_nearest(ds, 300, 200, [3, 1])[0], expected[[2, 0]])
    finally:
        gdal.SetCacheMax(old_cache)
