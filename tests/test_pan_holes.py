"""Output pixels that are nodata only because the PAN has nodata there (``engine/panholes.py``): kept as nodata, and
one warning says how many, so the holes through the MS's data do not come unexplained."""
from __future__ import annotations

import numpy as np
import pytest
from osgeo import gdal

from ksdiff_qgis.engine.feedback import RecordingFeedback
from ksdiff_qgis.engine.pipeline import pansharpen


def _zeroed(src, dst, rows: slice, cols: slice) -> str:
    """A copy of ``src`` (nodata 0 declared, as the WV2 fixture) with 0 in ``rows`` x ``cols`` of every band."""
    ds = gdal.Translate(str(dst), str(src))
    for b in range(1, ds.RasterCount + 1):
        band = ds.GetRasterBand(b)
        arr = band.ReadAsArray()
        arr[rows, cols] = 0
        band.WriteArray(arr)
    ds = None
    return str(dst)


def _run(pan: str, ms: str, out, method: str, **kw) -> tuple[np.ndarray, list[str]]:
    fb = RecordingFeedback()
    res = pansharpen(pan, ms, str(out), "wv2", method, feedback=fb, **kw)
    return gdal.Open(res.output_path).ReadAsArray(), [line for line in fb.lines if "only because of the PAN" in line]


@pytest.mark.parametrize("method,kw", [("mtf_glp_hpm", {}), ("ksdiff", {"tile_size": 128, "workers": 2})])
def test_a_dead_pan_column_declared_nodata_is_said(data_dir, tmp_path, method, kw):
    """QA: a PAN column of 0 (its nodata value) inside the MS's data became a full-height nodata line in the output,
    with no word. It stays nodata, and the warning counts its pixels once, overlapping tiles (KSDiff) or not."""
    pan = _zeroed(data_dir / "wv2_pan.tif", tmp_path / "pan.tif", slice(None), slice(100, 101))
    out, notes = _run(pan, str(data_dir / "wv2_ms.tif"), tmp_path / "out.tif", method, **kw)
    assert (out[:, :, 100] == 0).all() and (out[:, :, 99] > 0).all()
    assert len(notes) == 1 and notes[0].startswith(
        "WARNING 256 output pixels (0.39% of the output) are nodata only because of the PAN (the PAN holds its nodata "
        "value 0 there) where the MS holds data")
    assert "gdal_fillnodata" in notes[0] and "gdal_edit.py -unsetnodata" in notes[0]


def test_nodata_in_both_inputs_is_not_warned(data_dir, tmp_path):
    """The usual case: both inputs nodata over one area (WV2 pair 2's scene edge; a corner of zeros in both, the PAN's
    reaching 2 PAN pixels further, within the MS pixel beside it) gives no warning."""
    _, notes = _run(str(data_dir / "wv2_nodata_pan.tif"), str(data_dir / "wv2_nodata_ms.tif"), tmp_path / "a.tif",
                    "ksdiff")
    assert not notes
    pan = _zeroed(data_dir / "wv2_pan.tif", tmp_path / "pan.tif", slice(0, 82), slice(0, 98))
    ms = _zeroed(data_dir / "wv2_ms.tif", tmp_path / "ms.tif", slice(0, 20), slice(0, 24))
    out, notes = _run(pan, ms, tmp_path / "b.tif", "mtf_glp_hpm")
    assert (out[:, :82, :98] == 0).all() and not notes
