"""The PAN/MS misregistration diagnostic (engine/coregistration.py) on real WorldView-2 and Landsat 8 pixels: known
shifts applied to the PAN's geotransform are measured back."""
from __future__ import annotations

import pytest
from osgeo import gdal

from ksdiff_qgis.engine import coregistration, pipeline
from ksdiff_qgis.engine.feedback import RecordingFeedback
from ksdiff_qgis.engine.grid import plan_grid
from ksdiff_qgis.engine.raster_io import open_raster


def _offset(pan_path: str, ms_path: str, monkeypatch) -> tuple[float, float]:
    """The offset (rows, cols) in PAN pixels that the scene statistics' sample measures."""
    seen = []

    def spy(offset, ratio):
        seen.append(offset if offset is None else (offset[0] * ratio, offset[1] * ratio))
        return None

    monkeypatch.setattr(coregistration, "offset_note", spy)
    pan_ds, pan = open_raster(pan_path, "PAN")
    ms_ds, ms = open_raster(ms_path, "MS")
    plan = plan_grid(pan, ms, ms_ds)
    pipeline.estimate_scene_stats(pan_ds, plan.ms_dataset or ms_ds, pan, ms, plan, notes=[])
    assert seen and seen[-1] is not None
    return seen[-1]


def _moved(src: str, dst: str, rows: float, cols: float) -> str:
    """``src`` with its geotransform moved by (rows, cols) of its pixels (down, right): the data stay, so its content
    lies that much further along against the other raster."""
    ds = gdal.Translate(dst, src, format="VRT")
    gt = list(ds.GetGeoTransform())
    gt[0] += cols * gt[1]
    gt[3] += rows * gt[5]
    ds.SetGeoTransform(gt)
    ds = None
    return dst


@pytest.mark.parametrize("pair,ratio", [("wv2", 4), ("l8", 2)])
@pytest.mark.parametrize("shift", [(0.0, 1.0), (1.0, 0.0), (0.5, -0.5)])
def test_known_shifts_are_measured(data_dir, tmp_path, monkeypatch, pair, ratio, shift):
    pan, ms = str(data_dir / f"{pair}_pan.tif"), str(data_dir / f"{pair}_ms.tif")
    base = _offset(pan, ms, monkeypatch)
    moved = _offset(_moved(pan, str(tmp_path / "moved.vrt"), *shift), ms, monkeypatch)
    for axis in range(2):
        assert moved[axis] - base[axis] == pytest.approx(shift[axis], abs=0.3), (base, moved)


def test_a_misregistered_pair_is_warned_and_an_aligned_one_is_not(data_dir, tmp_path):
    """The WorldView-2 fixture (a crop of pair 1, about 1.4 PAN pixels apart, as DATA.md says of pair 1) is warned;
    the same PAN moved back onto its MS is not."""
    pan, ms = str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif")
    log = RecordingFeedback()
    res = pipeline.pansharpen(pan, ms, str(tmp_path / "o.tif"), "wv2", "mtf_glp_hpm", feedback=log)
    notes = [w for w in res.warnings if "PAN pixels apart" in w]
    assert len(notes) == 1 and "Co-register" in notes[0]
    assert sum("PAN pixels apart" in line for line in log.lines) == 1   # said once
    aligned = _moved(pan, str(tmp_path / "aligned.vrt"), 0.64, 1.24)
    res = pipeline.pansharpen(aligned, ms, str(tmp_path / "a.tif"), "wv2", "mtf_glp_hpm")
    assert not [w for w in res.warnings if "PAN pixels apart" in w]


def test_offset_note_threshold():
    assert coregistration.offset_note(None, 4) is None
    assert coregistration.offset_note((0.1, 0.05), 4) is None                      # 0.45 PAN pixels
    note = coregistration.offset_note((-0.25, 0.1), 4)                             # the PAN 1 px north, 0.4 px east
    assert "1.1 PAN pixels apart" in note and "0.4 px east and 1.0 px north" in note
