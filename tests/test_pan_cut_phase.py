"""A PAN cut at a pixel that is not a multiple of the ratio (the MS kept whole) is fused as the same area of the uncut
pair. QA: WorldView-2 pair 1's PAN cut at column 301 gave MTF-GLP-HPM pixels 40 px from any edge 1.36 % (up to 243 DN)
off the whole-scene run, since the PAN's low-pass was decimated on the cut PAN's lattice, not the MS's; a hand-cut
mosaic showed seams. The MS is interpolated as before; the shift is an info line, not a warning."""
from __future__ import annotations

import numpy as np
import pytest
from osgeo import gdal

from ksdiff_qgis.engine import pipeline
from ksdiff_qgis.engine.feedback import RecordingFeedback
from ksdiff_qgis.engine.grid import GRID_SHIFT, ms_lattice

MARGIN = 40   # PAN pixels: beyond the tile margin, where a cut pair and the whole one see the same context


def _interior_diff(cut: str, whole: str) -> float:
    """Largest |cut - whole| over the cut output's pixels MARGIN px inside its edges (the same ground in both)."""
    s, b = gdal.Open(cut), gdal.Open(whole)
    gs, gb = s.GetGeoTransform(), b.GetGeoTransform()
    xo, yo = round((gs[0] - gb[0]) / gb[1]), round((gs[3] - gb[3]) / gb[5])
    a = s.ReadAsArray().astype(np.float64)
    c = b.ReadAsArray(xo, yo, s.RasterXSize, s.RasterYSize).astype(np.float64)
    m = MARGIN
    return float(np.abs(a[:, m:-m, m:-m] - c[:, m:-m, m:-m]).max())


@pytest.mark.parametrize("pan, ms, sensor, win", [
    ("wv2_pan.tif", "wv2_ms.tif", "wv2", (5, 3, 240, 241)),          # ratio 4: column 5, row 3
    ("l8_pan.tif", "l8_ms.tif", "landsat8", (7, 0, 240, 256)),       # ratio 2, an odd column, half-pixel layout
])
def test_a_pan_cut_off_the_ratio_is_fused_as_the_uncut_pair(data_dir, tmp_path, pan, ms, sensor, win):
    pan, ms = str(data_dir / pan), str(data_dir / ms)
    whole = str(tmp_path / "whole.tif")
    pipeline.pansharpen(pan, ms, whole, sensor, "mtf_glp_hpm")
    cut = str(tmp_path / "cut.tif")
    gdal.Translate(cut, pan, srcWin=list(win))
    out = str(tmp_path / "out.tif")
    fb = RecordingFeedback()
    res = pipeline.pansharpen(cut, ms, out, sensor, "mtf_glp_hpm", feedback=fb)
    assert _interior_diff(out, whole) == 0.0
    said = [line for line in fb.lines if GRID_SHIFT in line]
    assert len(said) == 1 and not said[0].startswith("WARNING"), said
    assert not [w for w in res.warnings if GRID_SHIFT in w]
    if sensor == "wv2":   # whole PAN pixels: said plainly, as normal
        assert said[0].startswith(f"{GRID_SHIFT} by whole PAN pixels (-1, +1) (x, y)") and "normal" in said[0], said
    else:                 # still Landsat's half-pixel layout
        assert "usual Landsat layout" in said[0], said


def test_the_low_pass_lattice_follows_the_ms_corner():
    """The nearest PAN corner to the MS's: whole shifts exactly, Landsat's +0.5 and small shifts stay at 0 (the
    whole scenes' output does not move), float noise does not tip a half-way corner."""
    assert ms_lattice((0.0, 0.0)) == (0, 0)
    assert ms_lattice((-3.0000001, -300.99999)) == (-3, -301)
    assert ms_lattice((0.5, 0.5 + 1e-9)) == (0, 0)                       # Landsat 8 as USGS delivers it
    assert ms_lattice((-3.5, -300.5)) == (-4, -301)                      # ... its PAN cut at an odd pixel
    assert ms_lattice((0.3, -0.3)) == (0, 0)


@pytest.mark.parametrize("ms_name, sensor, corner", [
    ("wv2_ms.tif", "wv2", -1.5),     # MS pixel centres on PAN pixel corners at ratio 4: half-way
    ("l8_ms.tif", "landsat8", 0.5),  # Landsat's half-pixel layout
])
def test_georeference_noise_at_a_half_way_corner_does_not_move_the_output(data_dir, tmp_path, ms_name, sensor,
                                                                          corner):
    """QA: an MS corner half-way between PAN pixel corners took the lattice above or below by 1e-6: 1e-4 PAN pixel of
    georeference noise (a Landsat MS moved by 1 mm) moved every MTF-GLP-HPM pixel, up to 1069 DN. Within the edge
    tolerance of half-way, both sides of the noise take one lattice."""
    pan = str(data_dir / ("wv2_pan.tif" if sensor == "wv2" else "l8_pan.tif"))
    px = gdal.Open(pan).GetGeoTransform()
    outs = []
    for eps in (1e-4, -1e-4):
        ms = str(tmp_path / f"ms{eps}.tif")
        ds = gdal.Translate(ms, str(data_dir / ms_name))
        gt = list(ds.GetGeoTransform())
        shift = corner + eps - (gt[0] - px[0]) / px[1]   # put the MS corner at ``corner`` + eps PAN pixels
        gt[0] += shift * px[1]
        gt[3] += (corner + eps - (gt[3] - px[3]) / px[5]) * px[5]
        ds.SetGeoTransform(gt)
        ds = None
        out = str(tmp_path / f"out{eps}.tif")
        pipeline.pansharpen(pan, ms, out, sensor, "mtf_glp_hpm")
        outs.append(gdal.Open(out).ReadAsArray().astype(np.float64))
    assert outs[0].shape == outs[1].shape
    assert np.abs(outs[0] - outs[1]).max() <= 2
