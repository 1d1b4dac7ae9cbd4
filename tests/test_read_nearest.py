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
