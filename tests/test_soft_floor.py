"""Learned outputs stay positive: additive detail on nearly black pixels is damped, not clipped (issue 12)."""
from __future__ import annotations

import re

import numpy as np
from osgeo import gdal

from ksdiff_qgis.engine.classical import SceneStats, TileContext
from ksdiff_qgis.engine.filters import upsample
from ksdiff_qgis.engine.learned import FLOOR_FRACTION, OnnxFuser, checked_session, soft_floor
from ksdiff_qgis.engine.model_card import bundled_cards, load_card


def test_soft_floor_is_identity_above_threshold_and_positive_below():
    lms = np.full((1, 1, 9), 100.0, np.float32)
    v = np.linspace(-300, 300, 9, dtype=np.float32).reshape(1, 1, 9)
    out, n = soft_floor(v, lms)
    t = FLOOR_FRACTION * 100
    assert n == int((v < t).sum()) > 0
    assert np.array_equal(out[v >= t], v[v >= t])          # untouched where the value is plausible
    assert (out > 0).all() and (out[v < t] < t).all()
    assert np.all(np.diff(out.ravel()) > 0)                 # still monotone: detail keeps its sign
    # continuous with a continuous slope at the threshold
    eps = np.float32(1e-2)
    near, _ = soft_floor(np.array([[[t - eps]]], np.float32), lms[..., :1])
    assert abs(float(near) - (t - eps)) < 1e-4
    # no MS signal at all: plain clip at 0; data that end below 0 (``base``, signed data) measure the floor from there
    zero, _ = soft_floor(np.array([[[-5.0, 3.0]]], np.float32), np.zeros((1, 1, 2), np.float32))
    assert zero.tolist() == [[[0.0, 3.0]]]
    neg, n = soft_floor(np.array([[[-5.0, 3.0, -400.0]]], np.float32), np.array([[[-10.0, 0.0, -15.0]]], np.float32),
                        base=np.array([-20.0], np.float32))
    assert n == 1 and neg[0, 0, :2].tolist() == [-5.0, 3.0] and -20 <= neg[0, 0, 2] < -19


def test_bundled_model_output_is_positive_on_real_dark_pixels(data_dir):
    """The WorldView-2 fixture (real pair 1 crop): the raw network turns some values negative; the fuser does not."""
    card = load_card(bundled_cards()["wv2"])
    session = checked_session(card, "cpu", 1)
    pan = gdal.Open(str(data_dir / "wv2_pan.tif")).ReadAsArray().astype(np.float32)
    ms = gdal.Open(str(data_dir / "wv2_ms.tif")).ReadAsArray().astype(np.float32)
    h, w = ms.shape[1] * 4, ms.shape[2] * 4
    pan = pan[:h, :w]
    lms = upsample(ms, 4, (h, w)).astype(np.float32)
    raw = session.session.run(None, {"pan": pan[None, None] / 2047, "lms": lms[None] / 2047})[0][0] * 2047
    fuser = OnnxFuser(card, session, 2047.0, "fp32")   # against the float32 graph: no int8 rounding
    out = fuser(pan, lms, TileContext(SceneStats.__new__(SceneStats), 4, (), (0, 0)))
    low = raw < FLOOR_FRACTION * np.maximum(lms, 0)   # cubic upsampling can ring below 0
    assert low.any(), "the fixture no longer shows the dark-pixel overshoot this guards against"
    assert (out >= 0).all() and np.allclose(out[~low], raw[~low], rtol=1e-5, atol=1e-2)
    assert fuser.floored == int(low.sum()) and "eased smoothly towards black" in fuser.floor_note()


def test_floor_note_is_one_short_plain_sentence(data_dir, tmp_path):
    """The floor note, logged on every KSDiff run, is one short info sentence: what happened and how many (QA: a
    60-word line with percentages of the upsampled MS and a clause on data below 0; then "as is usual over water and
    shadow" also on a cloud scene: the cause is named only where it is measured, ``test_saturated_range``)."""
    from ksdiff_qgis.engine.feedback import RecordingFeedback
    from ksdiff_qgis.engine.pipeline import pansharpen

    fb = RecordingFeedback()
    pansharpen(str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), str(tmp_path / "o.tif"), sensor="wv2",
               method="ksdiff", feedback=fb)
    said = [line for line in fb.lines if "eased smoothly towards black" in line]
    assert len(said) == 1, fb.lines
    line = said[0]
    assert re.fullmatch(r"KSDiff \(learned\): [\d,]+ of [\d,]+ fused values \(\d+\.\d\d\d%\) came out under "
                        r"20% of the MS's value there and were eased smoothly towards black instead of overshooting "
                        r"below it\.", line), line
    assert len(line.split()) <= 40 and line.count(".") == 2   # the percentage's point and the full stop


def test_float_reflectance_is_fused_like_the_same_integer_product(data_dir, tmp_path):
    """The bundled (tile-normalised) model gives the same image for an 11-bit product and for the same data
    as float reflectance: float data is scaled by its own mean, not divided by the card's 2047."""
    from ksdiff_qgis.engine import metrics as M
    from ksdiff_qgis.engine.pipeline import pansharpen
    from model_core.rasters import read, write_geotiff

    paths = {}
    for name in ("pan", "ms"):
        r = read(str(data_dir / f"wv2_{name}.tif"))
        paths[name] = write_geotiff(str(tmp_path / f"{name}_refl.tif"), r.data.astype(np.float32) / 4000.0,
                                    r.transform, r.crs)
    pansharpen(str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), str(tmp_path / "int.tif"), sensor="wv2",
               method="ksdiff")
    pansharpen(paths["pan"], paths["ms"], str(tmp_path / "float.tif"), sensor="wv2", method="ksdiff")
    a = read(str(tmp_path / "int.tif")).data.astype(np.float64)
    b = read(str(tmp_path / "float.tif")).data.astype(np.float64) * 4000.0
    assert M.ergas(b, a, 4) < 0.5, "float reflectance is fused differently from the same integer product"


def test_signed_product_keeps_its_negative_values(data_dir, tmp_path):
    """An Int16 MS holding valid negative values (the WorldView-2 fixture less 150 DN): KSDiff keeps them, damped
    towards where the data end rather than 0 (until 2026-12-06 every value whose upsampled MS was below 0 became 0;
    without a floor there the detail on those dark pixels went to -400)."""
    from ksdiff_qgis.engine.pipeline import pansharpen
    from model_core.rasters import read, write_geotiff

    r = read(str(data_dir / "wv2_ms.tif"))
    src = r.data.astype(np.int16) - 150
    ms = write_geotiff(str(tmp_path / "ms_i16.tif"), src, r.transform, r.crs, descriptions=r.descriptions)
    res = pansharpen(str(data_dir / "wv2_pan.tif"), ms, str(tmp_path / "o.tif"), "wv2", "ksdiff")
    fused = gdal.Open(res.output_path).ReadAsArray()
    assert (src < 0).mean() > 0.1 and (fused < 0).mean() > 0.1
    assert (fused == 0).mean() < 0.01
    assert fused.min() >= np.percentile(src, 0.1) - 5   # the floor measured from where the data end (not -400)


def test_a_tiny_floored_share_is_not_said_as_zero():
    """380 of 20,430,400 values (Sentinel-2, QA) were said as "(0.00%, …)": now "0.002%", "< 0.001%" when fewer."""
    from ksdiff_qgis.engine.learned import OnnxFuser

    fuser = OnnxFuser.__new__(OnnxFuser)   # the note reads only the run's counts
    fuser.floored, fuser.values, fuser.pan_saturated_at = 380, 20430400, None
    assert "380 of 20430400 fused values (0.002%)" in fuser.floor_note()
    fuser.floored = 20
    assert "20 of 20430400 fused values (< 0.001%)" in fuser.floor_note()
    fuser.floored = 20430
    assert "(0.100%)" in fuser.floor_note()
