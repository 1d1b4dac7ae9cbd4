"""BDSD-PC's pad on an EXTENT (the MS read beyond its edges for the filters' reach) holds no data a window would not
(QA128): a spike the sample never saw, a declared nodata above the bit depth, an undeclared fill of zeros and a PAN
nodata collar are left out of the fit as in a window."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fixture_helpers import write_on_grid
from osgeo import gdal
from test_bdsd_extent import N, _extent

from ksdiff_qgis.engine import pipeline

STRIP = (slice(None), slice(17, 47), slice(6, 17))   # MS rows 17-46, cols 6-16: left of the EXTENT, in its pad


def _write(path: Path, arr: np.ndarray, like: Path, dtype=gdal.GDT_UInt16, nodata: float | None = None) -> Path:
    """``arr`` (C, H, W) as a GeoTIFF on ``like``'s grid (no NBITS: an MS of this type borrows the PAN's 11 bits)."""
    return Path(write_on_grid(path, arr, like, dtype, nodata))


def _run(data_dir: Path, pan: Path, ms: Path, out: Path, n: int = N) -> tuple[dict, np.ndarray]:
    """BDSD-PC on the n x n MS-pixel EXTENT at (17, 17): its coefficients' tag and the output."""
    pipeline.pansharpen(str(pan), str(ms), str(out), "wv2", "bdsd_pc", extent=_extent(data_dir, "wv2", 17, 17, n))
    ds = gdal.Open(str(out))
    return json.loads(ds.GetMetadataItem("KSDIFF_BDSD_COEF")), ds.ReadAsArray().astype(float)


def _ms(data_dir: Path) -> np.ndarray:
    return gdal.Open(str(data_dir / "wv2_ms.tif")).ReadAsArray()


def test_a_spike_in_the_pad_is_screened_as_in_the_sample(data_dir, tmp_path):
    """QA128 1: one 1e20 seven pixels left of a clean EXTENT made g 0 and every output value -4.7e14: the sample's
    screen had no bounds for it. Judged by the screen's rule, it and its reach are left out as in a window."""
    like = data_dir / "wv2_ms.tif"
    a = _ms(data_dir).astype(np.float32)
    clean = _write(tmp_path / "clean.tif", a, like, gdal.GDT_Float32, 0)
    a[:, 30, 10] = 1e20
    spiked = _write(tmp_path / "spike.tif", a, like, gdal.GDT_Float32, 0)
    ref, o_ref = _run(data_dir, data_dir / "wv2_pan.tif", clean, tmp_path / "a.tif")
    coef, out = _run(data_dir, data_dir / "wv2_pan.tif", spiked, tmp_path / "b.tif")
    assert 0 < coef["n"] < N * N and all(g > 0.3 for g in coef["g"]), coef
    assert np.abs(out - o_ref).mean() < 0.05 * o_ref.mean(), (coef, ref)


def test_a_nodata_above_the_bit_depth_stays_nodata_in_the_pad(data_dir, tmp_path):
    """QA128 2: a UInt16 MS declaring 65535 under the 11-bit range the PAN lends it: the pad clamped its 65535 block
    to 2047 and fitted it as data (n 900, output +72 %). Left out with its reach, as a window's nodata is."""
    like = data_dir / "wv2_ms.tif"
    a = _ms(data_dir)
    plain = _write(tmp_path / "plain.tif", a, like, nodata=65535)
    a[STRIP] = 65535
    block = _write(tmp_path / "block.tif", a, like, nodata=65535)
    ref, o_ref = _run(data_dir, data_dir / "wv2_pan.tif", plain, tmp_path / "a.tif")
    coef, out = _run(data_dir, data_dir / "wv2_pan.tif", block, tmp_path / "b.tif")
    assert ref["n"] == N * N and coef["n"] < N * N, (ref, coef)


@pytest.mark.parametrize("collar", [False, True])
def test_an_undeclared_fill_in_the_pad_is_left_out_as_a_declared_one(data_dir, tmp_path, collar):
    """QA128 4: a strip of zeros (0 in every band) beside the EXTENT in an MS declaring no nodata, the PAN's data
    beneath (or its declared nodata: ``collar``), was blurred into the fit (output 9.5 DN off on average). The fit
    is now that of the same strip declared nodata."""
    like = data_dir / "wv2_ms.tif"
    a = _ms(data_dir)
    a[STRIP] = 0
    pan = data_dir / "wv2_pan.tif"
    if collar:
        p = gdal.Open(str(pan)).ReadAsArray()[None]
        p[:, 17 * 4:47 * 4, 6 * 4:17 * 4] = 0
        pan = _write(tmp_path / "pan.tif", p, pan, nodata=0)
    declared, _ = _run(data_dir, pan, _write(tmp_path / "declared.tif", a, like, nodata=0), tmp_path / "a.tif")
    undeclared, _ = _run(data_dir, pan, _write(tmp_path / "undeclared.tif", a, like), tmp_path / "b.tif")
    assert declared["n"] < N * N and undeclared == declared, (undeclared, declared)


def test_the_screens_rule_judges_values_beyond_its_sample():
    """``outliers.bounds(x, more)``: ``x``'s percentiles and gaps among both; no ``more``: ``x``'s own bounds."""
    from ksdiff_qgis.engine import outliers
    x = np.linspace(60.0, 120.0, 900)
    assert outliers.bounds(x) == outliers.bounds(x, np.array([])) == (-np.inf, np.inf)
    assert outliers.bounds(x, np.array([70.0, 1e20])) == (-np.inf, 120.0)


def test_a_fill_patch_in_the_pad_is_left_out_as_the_samples_fill(data_dir, tmp_path):
    """QA132 S3: the pad judged a fill on its own (1 % of the padded window, blocks from its own corner): an 8 x 8 zero
    patch nine pixels left of the EXTENT, on the sample's block lattice but not the pad's, was fitted as data while
    the sample left its own 8 x 8 fill out. The pad now takes the sample's decision and lattice: the patch and its
    reach are left out, as a fill in the sample is."""
    like = data_dir / "wv2_ms.tif"
    a = _ms(data_dir)
    a[:, 49:57, 49:57] = 0   # the sample's fill: a whole block on its lattice (the EXTENT's corner, 17 + 32)
    alone = _write(tmp_path / "alone.tif", a, like)
    a[:, 25:33, 1:9] = 0   # the pad's patch: on the sample's lattice (17 - 16, 17 + 8), 9 pixels from the EXTENT
    patched = _write(tmp_path / "patched.tif", a, like)
    ref, _ = _run(data_dir, data_dir / "wv2_pan.tif", alone, tmp_path / "a.tif", 40)
    coef, _ = _run(data_dir, data_dir / "wv2_pan.tif", patched, tmp_path / "b.tif", 40)
    assert 0 < coef["n"] < ref["n"], (coef, ref)
