"""Learned outputs stay positive: additive detail on nearly black pixels is damped, not clipped (issue 12)."""
from __future__ import annotations

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
    # no MS signal at all: plain clip at 0
    zero, _ = soft_floor(np.array([[[-5.0, 3.0]]], np.float32), np.zeros((1, 1, 2), np.float32))
    assert zero.tolist() == [[[0.0, 3.0]]]


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
    fuser = OnnxFuser(card, session, 2047.0)
    out = fuser(pan, lms, TileContext(SceneStats.__new__(SceneStats), 4, (), (0, 0), 2047.0))
    low = raw < FLOOR_FRACTION * np.maximum(lms, 0)   # cubic upsampling can ring below 0
    assert low.any(), "the fixture no longer shows the dark-pixel overshoot this guards against"
    assert (out >= 0).all() and np.allclose(out[~low], raw[~low], rtol=1e-5, atol=1e-2)
    assert fuser.floored == int(low.sum()) and "damped towards 0" in fuser.floor_note()
