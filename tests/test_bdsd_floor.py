"""BDSD-PC fitted and applied on data measured from the scene's floor (docs/VALIDATION.md, 2026-12-07 22:41: an
offset in how PAN and MS are stored moves nothing, and the fit stays the paper's, through the origin), and its
explainability: the coefficients' info line and the KSDIFF_BDSD_COEF tag."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from osgeo import gdal

from ksdiff_qgis.engine import classical
from ksdiff_qgis.engine.feedback import RecordingFeedback
from ksdiff_qgis.engine.pipeline import pansharpen

ROOT = Path(__file__).resolve().parents[1]
SHIFT = 3000


def _shifted(src: Path, dst: Path, shift: int) -> str:
    """``src`` with ``shift`` added to every value, same type and georeferencing."""
    gdal.Translate(str(dst), str(src))
    ds = gdal.Open(str(dst), gdal.GA_Update)
    for b in range(1, ds.RasterCount + 1):
        band = ds.GetRasterBand(b)
        band.WriteArray(band.ReadAsArray().astype(np.int64) + shift)
    ds = None
    return str(dst)


def _fused(data_dir: Path, tmp_path: Path, shift: int) -> np.ndarray:
    """The Landsat 8 fixture fused by BDSD-PC with ``shift`` added to PAN and MS, the output moved back."""
    pan = _shifted(data_dir / "l8_pan.tif", tmp_path / f"pan{shift}.tif", shift)
    ms = _shifted(data_dir / "l8_ms.tif", tmp_path / f"ms{shift}.tif", shift)
    res = pansharpen(pan, ms, str(tmp_path / f"out{shift}.tif"), "landsat8", "bdsd_pc")
    return gdal.Open(res.output_path).ReadAsArray().astype(np.int64) - shift


def test_the_floor_fit_recovers_known_coefficients_on_offset_data():
    """Data made through the origin of values measured from their floor, then stored with an offset: the fit from
    the floor finds the coefficients; the paper's fit on the stored values misses them."""
    rng = np.random.default_rng(11)
    c, n = 4, 5000
    offset = 5000.0   # an offset in how the data are stored
    lms = rng.uniform(100, 1000, (c, n))
    lms[:, :10] = 0.0   # dark pixels: where the data end
    p_lr = lms.mean(axis=0) + rng.normal(0, 50, n)
    g = np.array([0.8, 1.1, 0.5, 2.0])
    w = np.array([[0.3, 0.0, 0.2, 0.1], [0.0, 0.6, 0.0, 0.2], [0.1, 0.1, 0.1, 0.1], [0.0, 0.0, 0.9, 0.4]])
    ms = lms + g[:, None] * p_lr[None] - w @ lms
    lms, p_lr, ms = lms + offset, p_lr + offset, ms + offset
    floor = classical.bdsd_floor(lms, p_lr)
    assert floor.shape == (c, c + 1)
    assert np.allclose(floor[:, 1:], offset) and np.allclose(floor[:, 0], offset)   # one offset: PAN and MS alike
    p_all = p_lr[None].repeat(c, axis=0)
    coef = classical.bdsd_pc_coef(ms, lms, p_all, floor)
    assert np.allclose(coef[:, 0], g, atol=1e-3) and np.allclose(coef[:, 1:], -w, atol=1e-3), coef
    plain = classical.bdsd_pc_coef(ms, lms, p_all)
    assert np.abs(plain - np.column_stack([g, -w])).max() > 0.05


def test_a_pan_in_other_units_is_measured_from_its_own_floor():
    rng = np.random.default_rng(3)
    lms = rng.uniform(0.02, 0.4, (4, 2000))   # reflectance
    p = rng.uniform(300, 1800, 2000)          # DN
    floor = classical.bdsd_floor(lms, p)
    assert np.allclose(floor[:, 1:], np.percentile(lms, 0.1, axis=1).min())
    assert np.allclose(floor[:, 0], np.percentile(p, 0.1))


def test_outputs_ignore_an_offset_in_the_stored_numbers(data_dir, tmp_path):
    """The Landsat 8 pair and the same pair + 3000 give outputs within 1 DN (rounding). The paper's fit without an
    intercept, taken first (17:03), moved: max 52 DN, mean 6.3 DN on this pair (2026-12-07)."""
    plain = _fused(data_dir, tmp_path, 0)
    shifted = _fused(data_dir, tmp_path, SHIFT)
    moved = np.abs(shifted - plain)
    assert moved.max() <= 1, (moved.max(), moved.mean())
    tag = json.loads(gdal.Open(str(tmp_path / "out0.tif")).GetMetadataItem("KSDIFF_BDSD_COEF"))
    assert set(tag["floor"]) == {"pan", "ms"}   # the floor is recorded with the coefficients


def test_the_coefficients_are_logged_and_tagged(data_dir, tmp_path):
    """QA119: the coefficients, BDSD-PC's whole state, were neither logged nor tagged."""
    said = RecordingFeedback()
    res = pansharpen(str(data_dir / "l8_pan.tif"), str(data_dir / "l8_ms.tif"), str(tmp_path / "o.tif"),
                     "landsat8", "bdsd_pc", feedback=said)
    lines = [m for m in said.lines if m.startswith("BDSD-PC's coefficients, fitted on ")]
    assert len(lines) == 1 and "band 1: g " in lines[0] and "band 4: g " in lines[0] and "\n" not in lines[0]
    tag = json.loads(gdal.Open(res.output_path).GetMetadataItem("KSDIFF_BDSD_COEF"))
    assert tag["n"] > 0 and len(tag["g"]) == 4 and len(tag["gamma"]) == 4 and len(tag["gamma"][0]) == 4
    said = f"fitted on {tag['n']} MS pixels, the PAN measured from {tag['floor']['pan']:.6g} and the MS from"
    assert said in lines[0]
    assert all(v >= 0 for v in tag["g"]) and all(v <= 0 for row in tag["gamma"] for v in row)
    other = pansharpen(str(data_dir / "l8_pan.tif"), str(data_dir / "l8_ms.tif"), str(tmp_path / "fs.tif"),
                       "landsat8", "mtf_glp_fs")
    assert gdal.Open(other.output_path).GetMetadataItem("KSDIFF_BDSD_COEF") is None


def test_the_tag_writes_a_coefficient_at_its_bound_as_zero():
    """A gamma the fit left a hair below its bound 0 was tagged and logged as -0.0 / -0.0000."""
    coef = np.array([[0.5, -1e-7, -0.2], [0.3, -0.1, -3e-6]])
    z = np.zeros(2)
    stats = classical.SceneStats(ms_mean=z, pan_mean=1.0, pan_std=1.0, gsa_alpha=np.zeros(3), gsa_gain=z,
                                 gsa_i_mean=0.0, gsa_i_std=1.0, brovey_w=np.zeros(3), brovey_i_mean=0.0,
                                 brovey_i_std=1.0, fs_gain=z, bdsd_coef=coef, bdsd_sample=(100, 48, 100))
    assert "-0.0" not in classical.bdsd_coef_text(stats) and "-0.0000" not in classical.bdsd_coef_line(stats)
