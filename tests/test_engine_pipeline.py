"""Engine without QGIS: grid logic, tiling equivalence, streaming writer, data types."""
from __future__ import annotations

import numpy as np
import pytest
from fixture_helpers import StopAfter
from osgeo import gdal

from ksdiff_qgis.engine import classical
from ksdiff_qgis.engine.errors import Cancelled, InputError
from ksdiff_qgis.engine.feedback import RecordingFeedback
from ksdiff_qgis.engine.grid import plan_grid
from ksdiff_qgis.engine.pipeline import pansharpen
from ksdiff_qgis.engine.raster_io import describe
from ksdiff_qgis.engine.tiling import blend_strips, tile_starts
from model_core.rasters import read, write_geotiff


def _read(path):
    return gdal.Open(str(path)).ReadAsArray().astype(np.float64)


@pytest.mark.parametrize("method", list(classical.FUSERS))
def test_tiled_equals_untiled(data_dir, tmp_path, method):
    pan, ms = str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif")
    whole = pansharpen(pan, ms, str(tmp_path / "whole.tif"), "wv2", method, tile_size=1024, overlap=0)
    tiled = pansharpen(pan, ms, str(tmp_path / "tiled.tif"), "wv2", method, tile_size=80, overlap=12)
    assert whole.tiles == 1 and tiled.tiles == 16
    a, b = _read(whole.output_path), _read(tiled.output_path)
    if method in ("exp", "brovey", "gsa", "bdsd_pc"):   # pixel-wise given LMS: exactly equal
        assert np.array_equal(a, b)
    else:                                    # filtered: within 1e-4 relative
        assert np.abs(a - b).max() <= 1e-4 * a.max() + 0.5  # 0.5: integer rounding of the uint16 output


def test_landsat_half_pixel_offset_is_honoured(data_dir, tmp_path):
    """Landsat 8: MS pixel centres coincide with every other PAN pixel centre; EXP must return MS exactly there."""
    fb = RecordingFeedback()
    res = pansharpen(str(data_dir / "l8_pan.tif"), str(data_dir / "l8_ms.tif"), str(tmp_path / "l8.tif"),
                     "landsat8", "exp", feedback=fb)
    # said as the usual Landsat layout (an info line), not warned
    assert any(line.startswith("The MS grid is shifted") and "usual Landsat layout" in line for line in fb.lines)
    assert not any("shifted" in w for w in res.warnings)
    out_ds, ms_ds = gdal.Open(res.output_path), gdal.Open(str(data_dir / "l8_ms.tif"))
    ogt, mgt = out_ds.GetGeoTransform(), ms_ds.GetGeoTransform()
    out, ms = out_ds.ReadAsArray(), ms_ds.ReadAsArray()
    # PAN pixel (i, j) centre -> MS fractional index; keep pixels landing exactly on MS centres
    i = np.arange(out.shape[1])
    u = (ogt[3] - (i + 0.5) * -ogt[5] - mgt[3]) / mgt[5] - 0.5
    j = np.arange(out.shape[2])
    v = (ogt[0] + (j + 0.5) * ogt[1] - mgt[0]) / mgt[1] - 0.5
    ri, ci = np.where(np.isclose(u, np.round(u)))[0], np.where(np.isclose(v, np.round(v)))[0]
    assert len(ri) > 100 and len(ci) > 100
    got = out[:, ri][:, :, ci]
    want = ms[:, np.round(u[ri]).astype(int)][:, :, np.round(v[ci]).astype(int)]
    assert np.array_equal(got, want)


def test_output_on_pan_grid_over_intersection(data_dir, tmp_path):
    # MS cut to its lower-right part: the output must shrink to the overlap, snapped to PAN pixels
    ms = str(tmp_path / "ms_part.tif")
    gdal.Translate(ms, str(data_dir / "wv2_ms.tif"), srcWin=[10, 20, 54, 44])
    res = pansharpen(str(data_dir / "wv2_pan.tif"), ms, str(tmp_path / "o.tif"), "wv2", "gsa")
    pan_gt = gdal.Open(str(data_dir / "wv2_pan.tif")).GetGeoTransform()
    ogt = gdal.Open(res.output_path).GetGeoTransform()
    assert (res.width, res.height) == (216, 176)
    assert ogt[1] == pan_gt[1] and ogt[5] == pan_gt[5]
    col, row = (ogt[0] - pan_gt[0]) / pan_gt[1], (ogt[3] - pan_gt[3]) / pan_gt[5]
    assert col == pytest.approx(40, abs=1e-6) and row == pytest.approx(80, abs=1e-6)


def test_float_ms_keeps_type_and_values_in_range(data_dir, tmp_path):
    ms = str(tmp_path / "ms_f32.tif")
    gdal.Translate(ms, str(data_dir / "wv2_ms.tif"), outputType=gdal.GDT_Float32, noData="none")
    res = pansharpen(str(data_dir / "wv2_pan.tif"), ms, str(tmp_path / "o.tif"), "wv2", "brovey")
    b = gdal.Open(res.output_path).GetRasterBand(1)
    assert gdal.GetDataTypeName(b.DataType) == "Float32"


@pytest.mark.parametrize("method", ["mtf_glp_hpm", "brovey"])
def test_float_reflectance_is_fused_as_its_integer_product(data_dir, tmp_path, method):
    """The ratio methods do not depend on the unit: the WorldView-2 fixture as float reflectance (DN / 2047) fuses to
    the integer product's output / 2047 (until 2026-12-06 every reflectance divisor fell under the floor of the
    sensor's 11-bit scale and MTF-GLP-HPM and Brovey returned the upsampled MS)."""
    paths = {}
    for role in ("pan", "ms"):
        paths[role] = str(tmp_path / f"{role}_refl.tif")
        gdal.Translate(paths[role], str(data_dir / f"wv2_{role}.tif"), outputType=gdal.GDT_Float32,
                       scaleParams=[[0, 2047, 0, 1]])   # nodata 0 stays 0
    dn = pansharpen(str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), str(tmp_path / "dn.tif"), "wv2",
                    method)
    refl = pansharpen(paths["pan"], paths["ms"], str(tmp_path / "refl.tif"), "wv2", method)
    exp = pansharpen(paths["pan"], paths["ms"], str(tmp_path / "exp.tif"), "wv2", "exp")
    a, b = _read(dn.output_path), _read(refl.output_path) * 2047
    inside = (a > 1) & (a < 2047)   # the 11-bit output clips and keeps 0 for nodata; float reflectance does not
    assert inside.mean() > 0.9
    assert np.abs(a - b)[inside].max() <= 0.5 + 1e-3 * a.max()   # rounding, float32 statistics
    assert np.abs(b - _read(exp.output_path) * 2047).mean() > 5   # detail injected, not the upsampled MS


def test_ratio_methods_do_not_depend_on_the_declared_scale(data_dir, tmp_path):
    """11-bit data in a plain 16-bit file declared generic (a full scale of 65535) fuses as the WorldView-2 product
    with the same MTF gain (the divisor floor was a thousandth of the full scale: 65.5 DN, no detail under it)."""
    src = read(str(data_dir / "wv2_ms.tif"))
    ms = write_geotiff(str(tmp_path / "ms_u16.tif"), src.data, src.transform, src.crs, nodata=0)   # no NBITS
    pan = str(data_dir / "wv2_pan.tif")
    for method in ("mtf_glp_hpm", "brovey"):
        generic = pansharpen(pan, ms, str(tmp_path / f"g_{method}.tif"), "generic", method, mtf_gains=[0.35])
        a = _read(generic.output_path)
        b = _read(pansharpen(pan, ms, str(tmp_path / f"w_{method}.tif"), "wv2", method).output_path)
        assert np.array_equal(a, b), method


@pytest.mark.parametrize("declared", [None, -9999.0])
def test_non_finite_values_are_holes(data_dir, tmp_path, declared):
    """NaN and infinities in a float MS are nodata whether or not it declares a nodata value (until 2026-12-06 the
    scene statistics' regression failed on them: 'SVD did not converge', for every method)."""
    src = read(str(data_dir / "wv2_ms.tif"))
    arr = src.data.astype(np.float32)
    arr[:, 20:22, 30:32] = np.nan
    arr[2, 40, 10] = np.inf
    ms = write_geotiff(str(tmp_path / "ms_nan.tif"), arr, src.transform, src.crs, nodata=declared)
    for method in ("mtf_glp_hpm", "gsa"):
        res = pansharpen(str(data_dir / "wv2_pan.tif"), ms, str(tmp_path / f"{method}.tif"), "wv2", method)
        o = gdal.Open(res.output_path)
        nodata = o.GetRasterBand(1).GetNoDataValue()
        out = o.ReadAsArray()
        hole = np.isnan(out) if nodata is None or np.isnan(nodata) else out == nodata
        assert hole[:, 80:88, 120:128].all()               # the NaN MS pixels (ratio 4), in every band
        assert hole[:, 160:164, 40:44].all()               # the infinity, in every band
        assert np.isfinite(out[~hole]).all() and hole.mean() < 0.05


def test_ratio_method_on_negative_values_is_warned(data_dir, tmp_path):
    """A scene with an offset below 0 (float DN less 500): Brovey and MTF-GLP-HPM say why their output is extreme;
    GSA, additive, does not need the warning."""
    paths = {}
    for role in ("pan", "ms"):
        paths[role] = str(tmp_path / f"{role}_off.tif")
        gdal.Translate(paths[role], str(data_dir / f"wv2_{role}.tif"), outputType=gdal.GDT_Float32, noData="none",
                       scaleParams=[[0, 2047, -500, 1547]])
    for method, warned in (("mtf_glp_hpm", True), ("brovey", True), ("gsa", False)):
        res = pansharpen(paths["pan"], paths["ms"], str(tmp_path / f"{method}.tif"), "wv2", method)
        assert any("below 0" in w and "ratio" in w for w in res.warnings) == warned, (method, res.warnings)


def test_byte_ms_is_clipped_to_its_range(data_dir, tmp_path):
    ms = str(tmp_path / "ms_u8.tif")
    gdal.Translate(ms, str(data_dir / "wv2_ms.tif"), outputType=gdal.GDT_Byte, scaleParams=[[0, 600, 0, 255]])
    res = pansharpen(str(data_dir / "wv2_pan.tif"), ms, str(tmp_path / "o.tif"), "wv2", "mtf_glp_hpm")
    ds = gdal.Open(res.output_path)
    assert gdal.GetDataTypeName(ds.GetRasterBand(1).DataType) == "Byte"
    assert ds.ReadAsArray().max() <= 255


def test_ratio_detection_tolerates_float_noise(data_dir):
    pan_ds, ms_ds = gdal.Open(str(data_dir / "wv2_pan.tif")), gdal.Open(str(data_dir / "wv2_ms.tif"))
    plan = plan_grid(describe(pan_ds, "pan"), describe(ms_ds, "ms"), ms_ds)
    assert plan.ratio == 4   # the WorldView-2 product's pixel sizes differ from 4 by 6e-5


def test_cancel_raises_and_removes_partial(data_dir, tmp_path):
    with pytest.raises(Cancelled):
        pansharpen(str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), str(tmp_path / "o.tif"), "wv2",
                   "gsa", tile_size=64, overlap=0, feedback=StopAfter(2))
    assert list(tmp_path.iterdir()) == []


def test_output_equal_to_input_is_refused(data_dir, tmp_path):
    import shutil

    pan = tmp_path / "pan.tif"
    shutil.copy(data_dir / "wv2_pan.tif", pan)
    with pytest.raises(InputError, match="is the PAN input"):
        pansharpen(str(pan), str(data_dir / "wv2_ms.tif"), str(pan), "wv2", "gsa")


@pytest.mark.parametrize("role", ["PAN", "MS"])
@pytest.mark.parametrize("link", ["absolute symlink", "relative symlink", "symlink to a symlinked input", "hardlink"])
def test_output_linked_to_an_input_is_refused(data_dir, tmp_path, role, link):
    """An output that is a link to an input (QA: a symlink to the MS) is the input: refused before any work, the link
    and the input as they were."""
    import os
    import shutil

    inputs = {"PAN": tmp_path / "pan.tif", "MS": tmp_path / "ms.tif"}
    shutil.copy(data_dir / "wv2_pan.tif", inputs["PAN"])
    shutil.copy(data_dir / "wv2_ms.tif", inputs["MS"])
    target, out = inputs[role], tmp_path / "outs" / "link.tif"
    out.parent.mkdir()
    if link == "symlink to a symlinked input":   # the input itself given through a symlink
        inputs[role] = tmp_path / "alias.tif"
        os.symlink(target, inputs[role])
    if link == "hardlink":
        os.link(target, out)
    else:
        os.symlink(os.path.join("..", target.name) if link == "relative symlink" else target, out)
    before = target.read_bytes()
    with pytest.raises(InputError, match=f"is the {role} input"):
        pansharpen(str(inputs["PAN"]), str(inputs["MS"]), str(out), "wv2", "gsa")
    assert out.is_symlink() == (link != "hardlink") and target.read_bytes() == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["link.tif"]


def test_blend_strips_seamless_and_streaming():
    """Blending many disagreeing tiles stays within their values and yields each row exactly once."""
    rng = np.random.default_rng(0)
    offsets = {}

    def run(r, c, h, w):
        offsets[(r, c)] = rng.uniform(-1, 1)
        return np.full((1, h, w), offsets[(r, c)], dtype=np.float32)

    rows = []
    for row, strip in blend_strips(300, 260, 64, 16, run):
        rows.extend(range(row, row + strip.shape[1]))
        assert strip.min() >= -1 and strip.max() <= 1
    assert rows == list(range(300))
    assert tile_starts(300, 64, 16)[-1] == 300 - 64


def test_nan_nodata_on_an_integer_raster_is_said(data_dir, tmp_path):
    """NaN declared as the nodata value of an integer PAN marks no pixel: the log says so (it was ignored silently),
    and the PAN's undeclared zero fill is then warned like any other."""
    pan = str(tmp_path / "pan.tif")
    gdal.Translate(pan, str(data_dir / "wv2_pan.tif"), noData="none")
    ds = gdal.Open(pan, gdal.GA_Update)
    band = ds.GetRasterBand(1)
    band.SetNoDataValue(float("nan"))
    assert np.isnan(band.GetNoDataValue())
    band = ds = None
    log = RecordingFeedback()
    pansharpen(pan, str(data_dir / "wv2_ms.tif"), str(tmp_path / "o.tif"), "wv2", "gsa", feedback=log)
    assert any("declares NaN as its nodata value" in line for line in log.lines), log.lines


def test_a_pan_in_other_units_than_the_ms_keeps_its_detail(data_dir, tmp_path):
    """A reflectance PAN (0-1) with a DN MS: said, and the network gets as much PAN detail as from the DN PAN (the
    detail's standard deviation was 36-42 % lower, without a word)."""
    pan = str(tmp_path / "pan_reflectance.tif")
    gdal.Translate(pan, str(data_dir / "wv2_pan.tif"), outputType=gdal.GDT_Float32, scaleParams=[[0, 10000, 0, 1]])
    ms = str(data_dir / "wv2_ms.tif")
    up = np.repeat(np.repeat(gdal.Open(ms).ReadAsArray().astype(float), 4, 1), 4, 2)
    detail = {}
    for name, p in (("dn", str(data_dir / "wv2_pan.tif")), ("reflectance", pan)):
        log = RecordingFeedback()
        res = pansharpen(p, ms, str(tmp_path / f"{name}.tif"), "wv2", "ksdiff", feedback=log)
        detail[name] = (gdal.Open(res.output_path).ReadAsArray() - up).std(axis=(1, 2))
        said = [line for line in log.lines if line.startswith("WARNING") and "different units" in line]
        assert bool(said) == (name == "reflectance"), log.lines
    np.testing.assert_allclose(detail["reflectance"], detail["dn"], rtol=0.05)


@pytest.mark.parametrize("method", ["mtf_glp_hpm", "brovey"])
def test_a_classical_method_chosen_explicitly_warns_of_pan_and_ms_units(data_dir, tmp_path, method):
    """QA: a reflectance PAN (mean ~0.02) with a DN MS under METHOD mtf_glp_hpm said nothing (only METHOD auto's
    classical fallback warned). Now once per run for every classical method, with what to check."""
    pan = str(tmp_path / "pan_reflectance.tif")
    gdal.Translate(pan, str(data_dir / "wv2_pan.tif"), outputType=gdal.GDT_Float32, scaleParams=[[0, 10000, 0, 1]])
    log = RecordingFeedback()
    res = pansharpen(pan, str(data_dir / "wv2_ms.tif"), str(tmp_path / "o.tif"), "wv2", method, feedback=log)
    said = [line for line in log.lines if line.startswith("WARNING") and "different units" in line]
    assert len(said) == 1 and len([w for w in res.warnings if "different units" in w]) == 1, log.lines
    assert "so the result is still usable; check that both inputs are the same product level (both digital " \
           "numbers or both reflectance)" in said[0], said


def _with_band(src: str, dst: str, band: int, values, dtype=None) -> str:
    """A copy of ``src`` that declares no nodata value, whose band ``band`` (1-based) holds ``values`` everywhere."""
    gdal.Translate(dst, src, outputType=dtype or gdal.GDT_Unknown, noData="none")
    ds = gdal.Open(dst, gdal.GA_Update)
    b = ds.GetRasterBand(band)
    b.WriteArray(np.full((ds.RasterYSize, ds.RasterXSize), values))
    ds = None
    return dst


def test_an_empty_or_missing_ms_band_is_named(data_dir, tmp_path):
    """One MS band of zeros: warned (a learned model draws the PAN's detail into it), and the self-check's figures
    stay finite (its KSDiff ERGAS was 1e10); one band of NaN: the refusal names the band and the fix (it said the
    overlap held no valid pixels at all)."""
    pan, ms = str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif")
    zero = _with_band(ms, str(tmp_path / "zero.tif"), 4, 0)
    log = RecordingFeedback()
    res = pansharpen(pan, zero, str(tmp_path / "z.tif"), "wv2", "auto", feedback=log)
    assert any(line.startswith("WARNING MS band 4") and "0 everywhere" in line for line in log.lines), log.lines
    assert res.selfcheck.learned is not None and res.selfcheck.learned.ergas < 100
    nan = _with_band(ms, str(tmp_path / "nan.tif"), 4, np.nan, gdal.GDT_Float32)
    with pytest.raises(InputError, match=r"MS band 4 \(NIR\) is nodata .*everywhere.*MS_BANDS"):
        pansharpen(pan, nan, str(tmp_path / "n.tif"), "wv2", "mtf_glp_hpm")


def test_an_unnamed_rgb_product_stays_rgb(data_dir, tmp_path):
    """8-bit R, G, B bands tagged so but unnamed, a generic sensor: the output keeps the tags (it said Gray,
    Undefined, Undefined: QGIS no longer drew it in colour), as gdal:pansharp keeps them."""
    ms, pan = str(tmp_path / "rgb.tif"), str(tmp_path / "pan8.tif")
    gdal.Translate(ms, str(data_dir / "wv2_ms.tif"), bandList=[3, 2, 1], outputType=gdal.GDT_Byte,
                   scaleParams=[[0, 2047, 0, 255]], creationOptions=["PHOTOMETRIC=RGB"])
    gdal.Translate(pan, str(data_dir / "wv2_pan.tif"), outputType=gdal.GDT_Byte, scaleParams=[[0, 2047, 0, 255]])
    ds = gdal.Open(ms, gdal.GA_Update)
    for i in (1, 2, 3):
        ds.GetRasterBand(i).SetDescription("")
    ds = None
    res = pansharpen(pan, ms, str(tmp_path / "o.tif"), "generic", "mtf_glp_hpm")
    ds = gdal.Open(res.output_path)
    assert [ds.GetRasterBand(i).GetColorInterpretation() for i in (1, 2, 3)] == [
        gdal.GCI_RedBand, gdal.GCI_GreenBand, gdal.GCI_BlueBand]
