"""Input values above an input's declared bit depth (``engine/inrange.py``): read as the range's top, counted once,
said in one warning; everything else untouched."""
from __future__ import annotations

import re

import numpy as np
import pytest
from osgeo import gdal

from ksdiff_qgis.engine import inrange
from ksdiff_qgis.engine.feedback import RecordingFeedback
from ksdiff_qgis.engine.pipeline import pansharpen
from ksdiff_qgis.engine.raster_io import describe
from ksdiff_qgis.engine.raster_io.read import read_padded

HOT = (60, 190)   # a PAN pixel of the fixture (dark roof, ~300 DN)


def _pan_copy(data_dir, path, value: float | None = None, scale: int = 1, nodata: float | None = None) -> str:
    """The WV2 fixture's PAN as plain UInt16 without NBITS (as a tool that drops it writes it), ``value`` at ``HOT``,
    its values x ``scale``, ``nodata`` declared and written into a corner."""
    ds = gdal.Translate(str(path), str(data_dir / "wv2_pan.tif"), creationOptions=["NBITS=16"])
    band = ds.GetRasterBand(1)
    arr = band.ReadAsArray().astype(np.int64) * scale
    if value is not None:
        arr[HOT] = value
    if nodata is not None:
        band.SetNoDataValue(nodata)
        arr[:40, :40] = nodata
    band.WriteArray(np.clip(arr, 0, 65535).astype(np.uint16))
    ds = None
    assert describe(gdal.Open(str(path)), str(path)).nbits is None
    return str(path)


def _run(pan: str, ms: str, out, method: str) -> tuple[np.ndarray, list[str]]:
    fb = RecordingFeedback()
    res = pansharpen(pan, ms, str(out), "wv2", method, feedback=fb)
    return gdal.Open(res.output_path).ReadAsArray().astype(np.int64), fb.lines


def _range_warnings(lines: list[str]) -> list[str]:
    return [line for line in lines if "declared bit depth" in line]


@pytest.mark.parametrize("method", ["gsa", "mtf_glp_hpm", "ksdiff"])
def test_a_hot_pixel_above_the_products_range_is_read_as_its_top(data_dir, tmp_path, method):
    """QA: one PAN pixel at 60000 in WV2 pair 1 (an 11-bit product whose PAN copy had lost its NBITS) changed 228,436
    output pixels by more than 2 DN with GSA (the scene regression), 75,544 with KSDiff (its tile normalisation),
    360 with MTF-GLP-HPM. It is read as 2047, the MS's 11-bit top: the output is the one of a PAN holding 2047 there,
    and one warning says so."""
    ms = str(data_dir / "wv2_ms.tif")
    hot, hot_lines = _run(_pan_copy(data_dir, tmp_path / "hot.tif", 60000), ms, tmp_path / "hot_out.tif", method)
    top, top_lines = _run(_pan_copy(data_dir, tmp_path / "top.tif", 2047), ms, tmp_path / "top_out.tif", method)
    assert np.array_equal(hot, top)
    assert _range_warnings(hot_lines) == [
        "WARNING Values above an input's declared bit depth cannot be data (a hot pixel, a bit error) and were clamped "
        "before fusing, so they do not disturb their neighbourhood: PAN: 1 pixel above the MS's 11-bit range (max "
        "60000; the PAN declares no bit depth of its own) read as 2047."]
    assert not _range_warnings(top_lines)


def test_a_wider_input_does_not_take_the_other_inputs_range(data_dir, tmp_path, monkeypatch):
    """A PAN without NBITS whose values go well past the MS's 11 bits (here x 2) keeps every value, and nothing is
    said: its range is its own, not the MS's."""
    ms = str(data_dir / "wv2_ms.tif")
    pan = _pan_copy(data_dir, tmp_path / "wide.tif", scale=2)
    out, lines = _run(pan, ms, tmp_path / "wide_out.tif", "gsa")
    assert not _range_warnings(lines)
    monkeypatch.setattr(inrange, "guards", lambda pan, ms, resampled_ms=False: {})
    plain, _ = _run(pan, ms, tmp_path / "plain_out.tif", "gsa")
    assert np.array_equal(out, plain)


def test_a_nodata_value_above_the_range_stays_nodata(data_dir, tmp_path):
    """A PAN whose nodata value (65535) lies above the 11-bit range it takes from the MS: those pixels stay nodata."""
    pan = _pan_copy(data_dir, tmp_path / "nd.tif", 60000, nodata=65535)
    out, lines = _run(pan, str(data_dir / "wv2_ms.tif"), tmp_path / "nd_out.tif", "mtf_glp_hpm")
    assert (out[:, :40, :40] == 0).all() and (out[:, 40:, 40:] > 0).mean() > 0.99
    assert "PAN: 1 pixel above" in _range_warnings(lines)[0]


def test_each_pixel_is_counted_once_and_windows_without_one_are_untouched(data_dir):
    """Overlapping windows (tile margins, the hole fill's larger window, mirrored beyond the edge) count a pixel once;
    the count and maximum are the raster's; a signed or floating-point input gets no guard."""
    info = describe(gdal.Open(str(data_dir / "wv2_ms.tif")), "ms")
    guard = inrange.guards(info, info)["MS"]
    assert guard.top == 2047 and guard.borrowed_from is None
    ds = gdal.Translate("", str(data_dir / "wv2_ms.tif"), format="MEM")
    before = read_padded(ds, 0, 0, 64, 64, "symmetric")
    assert np.array_equal(read_padded(ds, 0, 0, 64, 64, "symmetric", guard.clamp), before) and guard.note() is None
    band = ds.GetRasterBand(2)
    arr = band.ReadAsArray()
    arr[30, 40] = 9000
    band.WriteArray(arr)
    for row, col in ((0, 0), (10, 20), (-5, -5)):
        got = read_padded(ds, row, col, 40, 48, "symmetric", guard.clamp)
        assert got.max() <= 2047 and got[1, 30 - row, 40 - col] == 2047
    assert guard.note() == "MS: 1 pixel value above its 11-bit range (max 9000) read as 2047"
    for dtype in (np.int16, np.float32):
        other = type(info)(**{**info.__dict__, "dtype": np.dtype(dtype)})
        assert inrange.guards(other, other) == {}


@pytest.mark.parametrize("precision", ["int8", "fp32"])
def test_ksdiff_does_not_depend_on_the_datas_gain_without_nbits(data_dir, tmp_path, precision):
    """QA measured KSDiff's output change (median 0.44 %) between a scene stored at 11 bits and x 32, both UInt16
    without NBITS and so both normalised by the card's 2047. The tile normalisation makes the network blind to a
    global gain: the same real crop x 16 (nothing saturates) gives the x 1 output x 16, up to the two outputs' rounding
    (the fused floats are bit-identical). The QA's difference came from its construction: each copy rounded and
    saturated on its own scale, the x 32 output clipped at 65535 where the 11-bit one had headroom, and the int8
    path's per-tile weight rounding amplifies small input differences."""
    ms = str(data_dir / "wv2_ms.tif")
    outs = {}
    for k in (1, 16):
        ms_k = gdal.Translate(str(tmp_path / f"ms{k}.tif"), ms, creationOptions=["NBITS=16"])
        for b in range(1, 5):
            band = ms_k.GetRasterBand(b)
            band.WriteArray(band.ReadAsArray() * np.uint16(k))
        ms_k = None
        pan = _pan_copy(data_dir, tmp_path / f"pan{k}.tif", scale=k)
        res = pansharpen(pan, str(tmp_path / f"ms{k}.tif"), str(tmp_path / f"out{k}.tif"), "wv2", "ksdiff",
                         precision=precision)
        outs[k] = gdal.Open(res.output_path).ReadAsArray().astype(np.float64)
    one, sixteen = outs[1], outs[16]
    # written values: 1 DN steps against 1/16 DN steps; 65535 is the x 16 output's clip, 1 a valid 0 kept off nodata
    # (dark NIR water: 1.6 % of the values)
    kept = (sixteen < 65535) & (one > 1)
    assert kept.mean() > 0.97
    assert np.abs(sixteen / 16 - one)[kept].max() <= 0.5 + 1 / 32


def test_the_scene_sample_is_averaged_from_clamped_values(data_dir):
    """The scene statistics average full-resolution values clamped first, also through GDAL's averaging of a window
    whose factor is not whole (cut by the raster's edge)."""
    from ksdiff_qgis.engine.raster_io import read_decimated

    windows = {}
    for value in (60000, 2047):
        ds = gdal.Translate("", str(data_dir / "wv2_pan.tif"), format="MEM", outputType=gdal.GDT_UInt16)
        band = ds.GetRasterBand(1)
        arr = band.ReadAsArray()
        arr[HOT] = value
        band.WriteArray(arr)
        windows[value] = ds
    info = describe(gdal.Open(str(data_dir / "wv2_ms.tif")), "ms")
    for size, out in ((248, 62), (250, 62)):   # a whole factor (4), and 250 / 62
        guard = inrange.guards(info, info)["MS"]
        hot = read_decimated(windows[60000], 0, 0, size, size, out, out, guard.sample)
        assert np.allclose(hot, read_decimated(windows[2047], 0, 0, size, size, out, out))
        assert guard.sample_above == 1 and guard.sampled == size * size


def test_many_values_above_the_range_question_the_declared_bit_depth():
    """More than 0.1 % of an input above its range: the warning says the bit depth itself may be wrong and how to fix
    it (data wider than the NBITS a tool wrote)."""
    guard = inrange.RangeGuard("PAN", 11)
    arr = np.full((1, 100, 100), 1000, dtype=np.float32)
    arr[0, :2] = 3000
    guard.clamp(arr, 0, 0, (100, 100))
    assert guard.note() == ("PAN: 200 pixels above its 11-bit range (max 3000) read as 2047: so many that the 11-bit "
                            "range itself may be wrong: if the data are wider, declare their bit depth (gdal_translate "
                            "-co NBITS=16)")


def test_a_12bit_run_without_nbits_states_one_ceiling_for_the_data(data_dir, tmp_path):
    """QA: a 12-bit Pléiades delivery without NBITS logged "values normalised by 2047" (the card's scale, what the
    network is fed) and "above 4095, the top of Pléiades 1A/1B's 12-bit range" in one run: two ceilings for one
    product. The scale line now says 2047 is the model's training scale, not the data's range."""
    paths = []
    for name in ("pan", "ms"):
        path = tmp_path / f"{name}12.tif"
        ds = gdal.Translate(str(path), str(data_dir / f"wv2_{name}.tif"), creationOptions=["NBITS=16"])
        for b in range(1, ds.RasterCount + 1):   # the 11-bit crop x 5, saturating under 4095 as a 12-bit product
            band = ds.GetRasterBand(b)
            band.WriteArray(np.minimum(band.ReadAsArray().astype(np.int64) * 5, 4092).astype(np.uint16))
        ds = None
        assert describe(gdal.Open(str(path)), str(path)).nbits is None
        paths.append(str(path))
    fb = RecordingFeedback()
    pansharpen(*paths, str(tmp_path / "o.tif"), "pleiades", "ksdiff", device="cpu", feedback=fb)
    # every value the log states as the top of the data's range
    tops = {int(m) for line in fb.lines
            for m in re.findall(r"above (\d+), the (?:top of [^,]*range|\d+-bit maximum)", line)}
    scale_lines = [line for line in fb.lines if re.search(r"values (normalised|divided) by \d", line)]
    assert tops == {4095} and len(scale_lines) == 1, fb.lines
    if "not the data's range" not in scale_lines[0]:   # a bare scale reads as the data's range
        tops |= {int(m) for m in re.findall(r"values (?:normalised|divided) by (\d+)", scale_lines[0])}
    assert tops == {4095}, scale_lines
    assert "2047, the model's training scale" in scale_lines[0], scale_lines
