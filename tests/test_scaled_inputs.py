"""Inputs that declare a GDAL band scale/offset (QA round 98): a physical PAN beside a scaled MS is fused in the MS's
stored encoding, and the log says a scale/offset once. Real Landsat 8 crops from the data cache, tagged with
SetScale/SetOffset."""
from __future__ import annotations

import numpy as np
import pytest
from fixture_helpers import physical_copy, tagged_copy
from osgeo import gdal

from ksdiff_qgis.engine.feedback import Feedback
from ksdiff_qgis.engine.pipeline import pansharpen

SC, OF = 2.75e-05, -0.2   # Landsat Collection 2 Level-2 surface reflectance


class _Log(Feedback):
    def __init__(self):
        super().__init__()
        self.infos, self.warnings = [], []

    def info(self, message: str) -> None:
        self.infos.append(message)

    def warning(self, message: str) -> None:
        self.warnings.append(message)


def _physical(path: str, dst: str) -> str:
    """A float32 copy of the single-band ``path`` in physical values (stored x SC + OF), declaring no scale/offset."""
    return physical_copy(path, dst, SC, OF)


@pytest.fixture()
def l8(cached, tmp_path) -> dict[str, str]:
    """A Landsat 8 crop: PAN (UInt16, untagged), the same PAN in float reflectance, the MS with C2 L2's scale/offset."""
    pan = str(tmp_path / "pan.tif")
    gdal.Translate(pan, str(cached("landsat8/pan.tif")), srcWin=[256, 256, 512, 512])
    ms = str(tmp_path / "ms.tif")
    gdal.Translate(ms, str(cached("landsat8/ms.tif")), srcWin=[128, 128, 256, 256])
    ms_sc = tagged_copy(ms, tmp_path / "ms_sc.tif", SC, OF)
    return {"pan": pan, "pan_refl": _physical(pan, str(tmp_path / "pan_refl.tif")), "ms": ms, "ms_sc": ms_sc}


@pytest.mark.parametrize("method", ["mtf_glp_hpm", "ksdiff"])
def test_a_reflectance_pan_with_a_scaled_ms_fuses_as_the_stored_pan(l8, tmp_path, method):
    """QA: a float reflectance PAN with a UInt16 MS declaring x 2.75e-05 - 0.2 was brought to the MS's numbers by a
    gain only: MTF-GLP-HPM 0.96 % of values out of range, KSDiff 13 % of pixels off by > 100 DN. Mapped with both
    numbers ((value - offset) / scale), the output is the run on the PAN stored like the MS, within 2 DN, and the log
    says what was done."""
    base, refl = str(tmp_path / "base.tif"), str(tmp_path / "refl.tif")
    pansharpen(l8["pan"], l8["ms_sc"], base, "landsat8", method, precision="fp32")
    log = _Log()
    pansharpen(l8["pan_refl"], l8["ms_sc"], refl, "landsat8", method, precision="fp32", feedback=log)
    a = gdal.Open(base).ReadAsArray().astype(np.float64)
    b = gdal.Open(refl).ReadAsArray().astype(np.float64)
    assert np.abs(a - b).max() <= 2, np.abs(a - b).max()
    said = [line for line in log.infos + log.warnings if "brought into the MS's stored encoding" in line]
    assert len(said) == 1 and "physical values" in said[0]


def test_a_pan_stored_like_the_ms_is_left_as_it_is(l8, tmp_path):
    """An untagged PAN of stored numbers beside the scaled MS (the usual L2 pair): nothing is mapped."""
    log = _Log()
    pansharpen(l8["pan"], l8["ms_sc"], str(tmp_path / "o.tif"), "landsat8", "mtf_glp_hpm", feedback=log)
    assert not [line for line in log.infos + log.warnings if "brought into" in line]


def _with_unit(path: str, unit: str) -> str:
    ds = gdal.Open(path, gdal.GA_Update)
    for b in range(1, ds.RasterCount + 1):
        ds.GetRasterBand(b).SetUnitType(unit)
    ds = None
    return path


def test_a_scale_without_offset_is_an_info_line_and_different_scales_one_warning(l8, tmp_path):
    """QA: every run on a scaled MS warned even with offset 0 (nothing can go wrong); a PAN and an MS of different
    scales and units got three overlapping scale warnings. Now: an info line, and one warning."""
    ms = tagged_copy(l8["ms"], tmp_path / "ms_gain.tif", 4.885e-4)
    log = _Log()
    pansharpen(l8["pan"], ms, str(tmp_path / "a.tif"), "landsat8", "mtf_glp_hpm", feedback=log)
    assert not [w for w in log.warnings if "scale" in w]
    assert len([i for i in log.infos if "carry a scale/offset" in i]) == 1
    pan = _with_unit(tagged_copy(l8["pan"], tmp_path / "pan_rad.tif", 0.05), "W/m2/sr/um")
    _with_unit(ms, "reflectance")
    log = _Log()
    pansharpen(pan, ms, str(tmp_path / "b.tif"), "landsat8", "mtf_glp_hpm", feedback=log)
    scale_lines = [w for w in log.warnings + log.infos if "scale" in w.lower() and "offset" in w.lower()]
    assert len(scale_lines) == 1 and scale_lines[0] in log.warnings, scale_lines
    assert "PAN x 0.05 + 0" in scale_lines[0] and "'W/m2/sr/um'" in scale_lines[0]


def test_a_signed_integer_output_counts_its_negative_values(l8, tmp_path):
    """QA: an Int16 output kept negative values without a word while a float output gets a count."""
    pan, ms = str(tmp_path / "pan16.tif"), str(tmp_path / "ms16.tif")
    for src, dst in ((l8["pan"], pan), (l8["ms"], ms)):
        gdal.Translate(dst, src, outputType=gdal.GDT_Int16, scaleParams=[[0, 65535, -8000, 57535]])
    log = _Log()
    out = str(tmp_path / "o.tif")
    pansharpen(pan, ms, out, "landsat8", "gsa", feedback=log)
    assert gdal.Open(out).GetRasterBand(1).DataType == gdal.GDT_Int16
    negative = (gdal.Open(out).ReadAsArray() < 0).sum()
    assert negative > 0
    lines = [line for line in log.infos + log.warnings if "are negative" in line]
    assert len(lines) == 1 and "Int16 output keeps them as they are" in lines[0], lines


def test_a_percent_reflectance_pan_is_not_taken_for_physical_values(l8, tmp_path):
    """Review: a PAN in percent reflectance (Landsat 8 crop: scene mean ~7) beside the C2 L2 MS was nearer the MS's
    physical mean (~0.07) than its stored one (~9000), so it was mapped as 0-1 reflectance: 100 times too bright in
    the MS's numbers. Now mapped only within 10x of the MS's physical mean; the percent PAN keeps the fitted gain and
    the units warning, while the 0-1 PAN is still mapped."""
    from ksdiff_qgis.engine import pan_encoding

    pct = str(tmp_path / "pan_pct.tif")
    gdal.Translate(pct, l8["pan_refl"], scaleParams=[[0, 1, 0, 100]], outputType=gdal.GDT_Float32)
    mean = float(gdal.Open(pct).ReadAsArray().mean())
    assert 2 < mean < 20, mean
    ms = gdal.Open(l8["ms_sc"])
    bands = list(range(1, ms.RasterCount + 1))
    pct_ds, refl_ds = gdal.Open(pct), gdal.Open(l8["pan_refl"])
    assert pan_encoding.plan_mapping(pct_ds, ms, pct_ds, ms, bands) is None
    assert pan_encoding.plan_mapping(refl_ds, ms, refl_ds, ms, bands) == pan_encoding.PanMapping((1.0, 0.0), (SC, OF))
    log = _Log()
    out = str(tmp_path / "pct_out.tif")
    pansharpen(pct, l8["ms_sc"], out, "landsat8", "mtf_glp_hpm", feedback=log)
    assert not [line for line in log.infos + log.warnings if "brought into" in line]
    (said,) = [w for w in log.warnings if "different units" in w]
    # worded by what each input declares (QA: "the PAN's physical values (their declared scale/offset applied)"
    # of a PAN declaring none, guessed "reflectance and digital numbers")
    assert "the PAN's values (no scale/offset declared) (scene mean" in said, said
    assert "the MS's physical values (the declared scale/offset applied) (scene mean" in said, said
    assert "different units (percent and 0-1 reflectance?)" in said and "digital numbers?" not in said, said
    # the classical fusion fits the percent PAN by a gain: its output stays in the MS's stored range
    base = str(tmp_path / "base.tif")
    pansharpen(l8["pan"], l8["ms_sc"], base, "landsat8", "mtf_glp_hpm")
    a, b = (gdal.Open(p).ReadAsArray().astype(np.float64) for p in (base, out))
    assert abs(b.mean() / a.mean() - 1) < 0.05


def test_a_negative_offset_is_said_with_a_minus():
    """QA: a VRT with scale 0.0001 and offset -0.1 was said 'band 1: x 0.0001 + -0.1'; now 'x 0.0001 - 0.1'."""
    from ksdiff_qgis.engine.pan_encoding import PanMapping
    from ksdiff_qgis.engine.raster_io import scaling_note

    def mem(bands: int, scale: float, offset: float) -> gdal.Dataset:
        ds = gdal.GetDriverByName("MEM").Create("", 4, 4, bands, gdal.GDT_UInt16)
        for b in range(1, bands + 1):
            ds.GetRasterBand(b).SetScale(scale)
            ds.GetRasterBand(b).SetOffset(offset)
        return ds

    note, _ = scaling_note(mem(1, 1.0, 0.0), mem(2, 0.0001, -0.1), [1, 2])
    assert "band 1: x 0.0001 - 0.1, band 2: x 0.0001 - 0.1" in note and "+ -" not in note, note
    note, _ = scaling_note(mem(1, 0.01, -0.5), mem(2, 0.0001, -0.1), [1, 2])
    assert "(PAN x 0.01 - 0.5, MS x 0.0001 - 0.1)" in note, note
    mapped = PanMapping((1.0, 0.0), (2.75e-05, -0.2)).note()
    assert "(x 2.75e-05 - 0.2)" in mapped and "+ -" not in mapped, mapped
    assert "(physical value + 0.2) / 2.75e-05," in mapped and "- (-" not in mapped, mapped
    assert "(physical value - 0.1) / 0.0001," in PanMapping((1.0, 0.0), (1e-4, 0.1)).note()
    assert ": physical value / 0.0001," in PanMapping((1.0, 0.0), (1e-4, 0.0)).note()
