"""An undeclared fill of zeros in the MS alone, the PAN's data beneath (an MS strip missing, an MS footprint smaller
than the PAN's): left out of the scene statistics, of a learned tile's context and of the self-check's windows, as a
fill in both inputs is, and still fused as data with the warning that names the fix. Dark or one-band zeros stay
data (QA122)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from ksdiff_qgis.engine import pipeline
from ksdiff_qgis.engine.learned import zero_fill
from ksdiff_qgis.engine.raster_io import describe

COLS = 12   # MS columns of the strip (48 PAN columns on the WV2 fixture)
FAR = (COLS + 4) * 4   # PAN columns from the right edge beyond which the output is compared


def _copy(src: Path, dst: Path, nodata: str, strip=None) -> str:
    """``src`` declaring ``nodata`` ("none": nothing), with ``strip(band_number, array)`` applied to each band."""
    ds = gdal.Translate(str(dst), str(src), options=gdal.TranslateOptions(noData=nodata))
    for b in range(1, ds.RasterCount + 1):
        band = ds.GetRasterBand(b)
        if strip is not None:
            band.WriteArray(strip(b, band.ReadAsArray()))
    ds = None
    return str(dst)


def _zero_strip(b: int, a: np.ndarray) -> np.ndarray:
    a[:, -COLS:] = 0
    return a


def _pair(data_dir, tmp: Path, nodata: str, strip=_zero_strip) -> tuple[str, str]:
    """The WV2 fixture, its PAN declaring nothing, its MS's last COLS columns set by ``strip``."""
    pan = _copy(data_dir / "wv2_pan.tif", tmp / "pan.tif", "none")
    return pan, _copy(data_dir / "wv2_ms.tif", tmp / f"ms_{nodata}.tif", nodata, strip)


@pytest.mark.parametrize("method", ["gsa", "bdsd_pc", "ksdiff"])
def test_an_ms_only_zero_strip_is_left_out_as_a_declared_one(data_dir, tmp_path, method):
    """Fused into the statistics and the kernels, the strip moved the whole scene (away from it, off the run with
    0 declared in the MS: GSA 36 DN on average, up to 379; BDSD-PC 46 / 837; KSDiff 18 / 1573). Now within 1 DN
    there, and the warning says it; so too for an MS declaring 65535, which none of its pixels hold (QA137)."""
    out, said = {}, {}
    for nodata in ("none", "65535", "0"):
        pan, ms = _pair(data_dir, tmp_path, nodata)
        res = pipeline.pansharpen(pan, ms, str(tmp_path / f"{method}_{nodata}.tif"), "wv2", method, workers=1)
        out[nodata] = gdal.Open(res.output_path).ReadAsArray().astype(np.float64)
        said[nodata] = [w for w in res.warnings if "left out of the scene statistics" in w]
    for undeclared in ("none", "65535"):
        far = np.abs(out[undeclared] - out["0"])[:, :, :-FAR]
        assert far.max() <= 1, (undeclared, float(far.mean()), float(far.max()))
        assert len(said[undeclared]) == 1 and said[undeclared][0].startswith("The MS raster"), said
    assert not said["0"], said


def test_method_auto_checks_an_ms_only_zero_strip_as_a_declared_one(data_dir, tmp_path):
    """The self-check scored the strip's fusions as data: KSDiff's Wald ERGAS 11.871 against 6.846 declared, and
    METHOD auto fused with MTF-GLP-HPM where the declared scene keeps KSDiff."""
    checks = {}
    for nodata in ("none", "0"):
        pan, ms = _pair(data_dir, tmp_path, nodata)
        checks[nodata] = pipeline.pansharpen(pan, ms, str(tmp_path / f"auto_{nodata}.tif"), "wv2", "auto",
                                             check_only=True, workers=1).selfcheck
    assert checks["none"].method == checks["0"].method == "ksdiff", checks["none"].reason
    assert checks["none"].learned.ergas == pytest.approx(checks["0"].learned.ergas, rel=0.01)


def _dark_or_one_band(b: int, a: np.ndarray) -> np.ndarray:
    """Dark water (1 to 4, varying) in the strip, with band 4 (NIR) at 0 throughout it: no band-wide zero."""
    rng = np.random.default_rng(b)
    a[:, -COLS:] = 0 if b == 4 else rng.integers(1, 5, size=a[:, -COLS:].shape)
    return a


def test_dark_water_and_a_zero_band_stay_data(data_dir, tmp_path, monkeypatch):
    """Dark but varying values, and 0 in one band only (a band constant there), are no fill: the fused pixels are
    those of the rule's absence, bit for bit, with no word of a fill."""
    pan, ms = _pair(data_dir, tmp_path, "none", _dark_or_one_band)
    out = {}
    for name in ("rule", "without"):
        if name == "without":
            monkeypatch.setattr(pipeline, "ms_fill_over_pan_data",
                                lambda pan_lr, ms_lr, *a: np.zeros(ms_lr.shape[1:], dtype=bool).ravel())
        res = pipeline.pansharpen(pan, ms, str(tmp_path / f"{name}.tif"), "wv2", "gsa", workers=1)
        out[name] = gdal.Open(res.output_path).ReadAsArray()
        assert not any("declares no nodata value" in w for w in res.warnings), res.warnings
    assert np.array_equal(out["rule"], out["without"])


def test_the_ms_zeros_count_alone_only_in_every_band(data_dir, tmp_path):
    """On the tile's grid: an MS that is 0 in every band over 2 x 2 MS pixels is a fill whatever the PAN holds;
    the PAN's zeros alone are not (a shadow) while the MS declares no nodata; 0 in one band is no MS zero."""
    ms = gdal.Open(_copy(data_dir / "wv2_ms.tif", tmp_path / "ms.tif", "none", _dark_or_one_band)).ReadAsArray()
    ms_zero = (ms == 0).all(axis=0)
    assert not ms_zero.any() and zero_fill(np.ones((64, 64), bool), ms_zero) is None
    strip = np.zeros((64, 64), dtype=bool)
    strip[:, -COLS:] = True
    fill = zero_fill(np.zeros((64, 64), dtype=bool), strip)   # the PAN's data beneath
    assert fill is not None and fill[:, -COLS:].all() and not fill[:, : -COLS - 8].any()
    assert zero_fill(strip, np.zeros((64, 64), dtype=bool)) is None


def test_the_sample_leaves_out_only_band_wide_zeros_over_pan_data(data_dir, tmp_path):
    """``ms_fill_over_pan_data`` on a sample of two windows: the MS's band-wide zeros over the PAN's data in an area,
    not those over the PAN's own zeros (a fill in both, kept as before), nor scattered ones (QA128: dark pixels of an
    8-bit product), and nothing for an MS that declares a nodata value."""
    pan_info = describe(gdal.Open(str(data_dir / "wv2_pan.tif")), "pan.tif")
    ms_path = _copy(data_dir / "wv2_ms.tif", tmp_path / "ms.tif", "none")
    ms_info = describe(gdal.Open(ms_path), ms_path)
    shapes = [(16, 16), (8, 8)]
    ms_lr = np.full((4, 1, 16 * 16 + 64), 300.0)
    first, second = ms_lr[:, 0, :256].reshape(4, 16, 16), ms_lr[:, 0, 256:].reshape(4, 8, 8)
    first[:, :, 8:] = 0   # a strip, its first 4 rows over the PAN's zeros
    second[:, range(8), range(8)] = 0   # scattered
    pan_lr = np.full((1, ms_lr.shape[2]), 500.0)
    pan_lr[0, :256].reshape(16, 16)[:4, 8:] = 0
    over = pipeline.ms_fill_over_pan_data(pan_lr, ms_lr, pan_info, ms_info, shapes)
    expected = np.zeros((16, 16), dtype=bool)
    expected[4:, 8:] = True
    assert over.tolist() == expected.ravel().tolist() + [False] * 64
    declared = describe(gdal.Open(str(data_dir / "wv2_ms.tif")), "ms.tif")
    assert not pipeline.ms_fill_over_pan_data(pan_lr, ms_lr, pan_info, declared, shapes).any()


def test_a_declared_nodata_no_pixel_holds_is_no_declaration(data_dir, tmp_path):
    """QA137: a file declaring 65535 (netCDF's UInt16 _FillValue), which none of its pixels hold, over a zero strip
    was taken at its word: no warning, the MS strip kept in the statistics (GSA 0.5-0.95 DN off the 0-declared run).
    Now as a file declaring nothing: the PAN's and the MS's fill warned with the fix, the MS's left out."""
    pan, ms = _pair(data_dir, tmp_path, "65535")
    res = pipeline.pansharpen(pan, ms, str(tmp_path / "gsa_65535.tif"), "wv2", "gsa", workers=1)
    said = [w for w in res.warnings if "declares the nodata value 65535, which none of its sampled pixels" in w]
    assert len(said) == 1 and said[0].startswith("The MS raster") and "-a_nodata 0" in said[0], res.warnings
    assert "left out of the scene statistics" in said[0]
    _, declared = _pair(data_dir, tmp_path, "0")
    ref = pipeline.pansharpen(pan, declared, str(tmp_path / "gsa_0.tif"), "wv2", "gsa", workers=1)
    a, b = (gdal.Open(r.output_path).ReadAsArray().astype(np.float64) for r in (res, ref))
    assert np.abs(a - b)[:, :, :-FAR].max() <= 1
    # the PAN's own strip, its file declaring 65535 (QA137's wedge: fused as data, without a word)
    pan_fill = _copy(data_dir / "wv2_pan.tif", tmp_path / "pan_65535.tif", "65535", lambda b, a: _zero_strip(b, a))
    res = pipeline.pansharpen(pan_fill, str(data_dir / "wv2_ms.tif"), str(tmp_path / "pan.tif"), "wv2", "gsa",
                              workers=1)
    said = [w for w in res.warnings if w.startswith("The PAN raster declares the nodata value 65535")]
    assert len(said) == 1 and "-a_nodata 0" in said[0], res.warnings


def test_a_declared_nodata_pixels_hold_keeps_its_zeros_data(data_dir, tmp_path):
    """The same MS declaring 2000 (its NBITS 11 holds no 65535) with a corner at 2000 in every band: the declared
    value is in use, so its zeros stay data, with no word of a fill (as before QA137)."""
    def strip_and_corner(b: int, a: np.ndarray) -> np.ndarray:
        a[:8, :8] = 2000
        return _zero_strip(b, a)
    pan, ms = _pair(data_dir, tmp_path, "2000", strip_and_corner)
    res = pipeline.pansharpen(pan, ms, str(tmp_path / "held.tif"), "wv2", "gsa", workers=1)
    assert not any("sampled pixels are 0" in w for w in res.warnings), res.warnings
