"""The learned output taken towards MTF-GLP-HPM where the PAN's detail is noise (engine/noise.py)."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from osgeo import gdal

from ksdiff_qgis.engine import noise, pipeline


def _pan(data_dir) -> np.ndarray:
    return gdal.Open(str(data_dir / "wv2_pan.tif")).ReadAsArray().astype(np.float32)


def test_noise_sigma_reads_added_noise_on_a_real_pan(data_dir):
    """The noise estimate on the real WV2 crop: adding noise of a known sigma raises it as sqrt(s0^2 + s^2), and a
    flat patch carrying only that noise reads it alone (within 10 %: the flattest quartile of pure noise is its quieter
    blocks, ~8 % low; test_noise_estimate.py has the estimator's own tests)."""
    pan = _pan(data_dir)
    s0 = noise.noise_sigma(pan)
    rng = np.random.default_rng(1)
    for s in (4.0, 12.0):
        est = noise.noise_sigma(pan + rng.normal(0, s, pan.shape).astype(np.float32))
        assert est == pytest.approx(np.hypot(s0, s), rel=0.15)
    flat = np.float32(300) + rng.normal(0, 5, (128, 128)).astype(np.float32)
    assert noise.noise_sigma(flat) == pytest.approx(5.0, rel=0.1)
    # filled (invalid) pixels carry no noise and are left out: the estimate stays the data's
    holed = flat.copy()
    holed[:, :96] = 0
    valid = holed != 0
    assert noise.noise_sigma(holed, valid) == pytest.approx(5.0, rel=0.1)
    assert noise.noise_sigma(holed) < 1.0


def test_signal_share_is_low_on_noise_and_high_on_edges():
    rng = np.random.default_rng(2)
    detail = rng.normal(0, 5, (64, 128)).astype(np.float32)
    detail[:, 64:] += np.where(np.arange(64) % 8 < 4, 80, -80)[None].astype(np.float32)   # strong stripes
    share = noise.signal_share(detail, 5.0)
    assert share.min() >= 0 and share.max() <= 1
    assert np.median(share[:, 8:56]) < 0.2 and np.median(share[:, 72:120]) > 0.95


@pytest.fixture()
def lake(data_dir, tmp_path):
    """The real WV2 fixture with a flat 'lake': a 64 x 64 PAN block of level 150 plus noise (sigma 6 DN) and the MS
    block under it flat at its mean per band."""
    pan, ms = tmp_path / "pan.tif", tmp_path / "ms.tif"
    shutil.copy(data_dir / "wv2_pan.tif", pan)
    shutil.copy(data_dir / "wv2_ms.tif", ms)
    ds = gdal.Open(str(pan), gdal.GA_Update)
    a = ds.ReadAsArray().astype(np.float64)
    a[96:160, 96:160] = 150 + np.random.default_rng(0).normal(0, 6, (64, 64))
    ds.GetRasterBand(1).WriteArray(np.round(a).astype(np.uint16))
    ds = gdal.Open(str(ms), gdal.GA_Update)
    for b in range(1, ds.RasterCount + 1):
        x = ds.GetRasterBand(b).ReadAsArray().astype(np.float64)
        x[24:40, 24:40] = x[24:40, 24:40].mean()
        ds.GetRasterBand(b).WriteArray(np.round(x).astype(np.uint16))
    ds = None
    return str(pan), str(ms)


def _lake_std(path: str) -> np.ndarray:
    out = gdal.Open(path).ReadAsArray().astype(np.float64)[:, 104:152, 104:152]   # the lake less its shores
    return out.reshape(out.shape[0], -1).std(axis=1)


def test_learned_output_on_pure_noise_is_mtf_glp_hpm(lake, tmp_path, monkeypatch):
    """On the lake the PAN's detail is noise only: the delivered KSDiff tiles carry MTF-GLP-HPM's texture there
    (band std within 5 % of its), not the network's own amplification of that noise (off: 0.75-1.36 x)."""
    pan, ms = lake
    pipeline.pansharpen(pan, ms, str(tmp_path / "hpm.tif"), "wv2", "mtf_glp_hpm")
    hpm = _lake_std(str(tmp_path / "hpm.tif"))
    monkeypatch.setattr(pipeline, "NOISE_PULL", True)
    pipeline.pansharpen(pan, ms, str(tmp_path / "on.tif"), "wv2", "ksdiff")
    assert np.abs(_lake_std(str(tmp_path / "on.tif")) / hpm - 1).max() < 0.05
    monkeypatch.setattr(pipeline, "NOISE_PULL", False)
    pipeline.pansharpen(pan, ms, str(tmp_path / "off.tif"), "wv2", "ksdiff")
    assert np.abs(_lake_std(str(tmp_path / "off.tif")) / hpm - 1).max() > 0.2


def test_the_self_check_decides_on_the_network_alone(lake, tmp_path, monkeypatch):
    """METHOD auto: the self-check's figures are the network's with or without the pull (it is a delivery step)."""
    pan, ms = lake
    figures = []
    for on in (False, True):
        monkeypatch.setattr(pipeline, "NOISE_PULL", on)
        res = pipeline.pansharpen(pan, ms, str(tmp_path / f"auto{on}.tif"), "wv2", "auto")
        figures.append(res.selfcheck.outputs())
    assert figures[0]["SELFCHECK_KSDIFF_ERGAS"] == figures[1]["SELFCHECK_KSDIFF_ERGAS"]
    assert figures[0] == figures[1]


def test_the_pull_does_not_change_what_the_network_sees(data_dir, tmp_path, monkeypatch):
    """The pull needs a wider tile margin than the network (its MTF-GLP-HPM anchor's context): the network still runs
    on its own margin, so with the pull's step itself made the identity the output is the network's, bit for bit
    (2 more pixels of mirrored margin cost it 1.2-2.0 % ERGAS on one-tile Wald scenes)."""
    pan, ms = str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif")
    monkeypatch.setattr(pipeline, "NOISE_PULL", False)
    pipeline.pansharpen(pan, ms, str(tmp_path / "off.tif"), "wv2", "ksdiff", precision="fp32")
    monkeypatch.setattr(pipeline, "NOISE_PULL", True)
    monkeypatch.setattr(noise, "pull", lambda out, *args: out)
    pipeline.pansharpen(pan, ms, str(tmp_path / "on.tif"), "wv2", "ksdiff", precision="fp32")
    off, on = (gdal.Open(str(tmp_path / f)).ReadAsArray() for f in ("off.tif", "on.tif"))
    np.testing.assert_array_equal(on, off)
