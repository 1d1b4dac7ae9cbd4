"""An MS stored south-up or mirrored east-west (an axis-aligned geotransform in the PAN's CRS) is the north-up MS in
another storage order: read through a flipped view, it fuses to the very same output (QA: a south-up Landsat 8 MS was
warped cubic onto the PAN lattice, a quarter MS pixel off its own grid: EXP moved by 49-75 DN per band on average, up
to 1300 DN inside, and the output grew from 511 x 511 to 512 x 512 with half-covered PAN rows and columns)."""
from __future__ import annotations

import numpy as np
import pytest
from osgeo import gdal

from ksdiff_qgis.engine.feedback import RecordingFeedback
from ksdiff_qgis.engine.pipeline import pansharpen


def _flipped(src: str, dst: str, south_up: bool, mirrored: bool) -> str:
    """``src`` rewritten with its rows bottom first (``south_up``) and/or its columns east first (``mirrored``), the
    geotransform changed to match: the same pixels on the same ground."""
    ds = gdal.Translate(dst, src)
    w, h = ds.RasterXSize, ds.RasterYSize
    x0, px, _, y0, _, py = ds.GetGeoTransform()
    ds.SetGeoTransform([x0 + w * px if mirrored else x0, -px if mirrored else px, 0.0,
                        y0 + h * py if south_up else y0, 0.0, -py if south_up else py])
    for b in range(1, ds.RasterCount + 1):
        band = ds.GetRasterBand(b)
        a = band.ReadAsArray()
        band.WriteArray(np.ascontiguousarray(a[::-1 if south_up else 1, ::-1 if mirrored else 1]))
    ds = None
    return dst


def _same_output(a: str, b: str) -> None:
    fa, fb = gdal.Open(a), gdal.Open(b)
    assert (fb.RasterXSize, fb.RasterYSize) == (fa.RasterXSize, fa.RasterYSize)
    assert fb.GetGeoTransform() == fa.GetGeoTransform()
    assert np.array_equal(fb.ReadAsArray(), fa.ReadAsArray())


@pytest.mark.parametrize("method", ["exp", "mtf_glp_hpm"])
def test_south_up_landsat8_ms_fuses_as_north_up(data_dir, tmp_path, method):
    """Landsat 8 (ratio 2, MS grid half a PAN pixel off the PAN's): the south-up MS gives the north-up run's output
    bit for bit — size, geotransform, pixels — said as an info line, not a reprojection warning."""
    pan, ms = str(data_dir / "l8_pan.tif"), str(data_dir / "l8_ms.tif")
    south = _flipped(ms, str(tmp_path / "ms_south_up.tif"), south_up=True, mirrored=False)
    north = pansharpen(pan, ms, str(tmp_path / "north.tif"), "landsat8", method)
    fb = RecordingFeedback()
    res = pansharpen(pan, south, str(tmp_path / "south.tif"), "landsat8", method, feedback=fb)
    _same_output(north.output_path, res.output_path)
    assert not any("reprojected on the fly" in w or "nodata" in w for w in res.warnings), res.warnings
    assert any("The MS raster is stored south-up (positive pixel height): it is read flipped to north-up, pixel "
               "for pixel (no resampling)." in line for line in fb.lines), fb.lines


@pytest.mark.parametrize("south_up,mirrored", [(True, False), (False, True), (True, True)])
def test_flipped_wv2_ms_fuses_as_north_up(data_dir, tmp_path, south_up, mirrored):
    """WorldView-2 (ratio 4, float-noisy pixel sizes): south-up, mirrored east-west, or both, bit for bit."""
    pan, ms = str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif")
    flipped = _flipped(ms, str(tmp_path / "ms_flipped.tif"), south_up, mirrored)
    north = pansharpen(pan, ms, str(tmp_path / "north.tif"), "wv2", "mtf_glp_hpm")
    fb = RecordingFeedback()
    res = pansharpen(pan, flipped, str(tmp_path / "flipped.tif"), "wv2", "mtf_glp_hpm", feedback=fb)
    _same_output(north.output_path, res.output_path)
    said = [line for line in fb.lines if "The MS raster is stored" in line]
    assert len(said) == 1 and ("south-up" in said[0]) == south_up and ("mirrored" in said[0]) == mirrored, said


def test_flipped_ms_with_nodata_keeps_its_holes(data_dir, tmp_path):
    """A south-up MS with nodata holes: the holes stay where they are, the output equals the north-up run's."""
    pan, ms = str(data_dir / "wv2_nodata_pan.tif"), str(data_dir / "wv2_nodata_ms.tif")
    south = _flipped(ms, str(tmp_path / "ms_south_up.tif"), south_up=True, mirrored=False)
    north = pansharpen(pan, ms, str(tmp_path / "north.tif"), "wv2", "mtf_glp_hpm")
    res = pansharpen(pan, south, str(tmp_path / "south.tif"), "wv2", "mtf_glp_hpm")
    _same_output(north.output_path, res.output_path)
