"""The edges of an MS in another CRS than the PAN (QA130 D4): every PAN row and column the MS covers is fused, and
the output keeps to the MS's footprint, as an MS resampled on the PAN's CRS does."""
from __future__ import annotations

import numpy as np
import pytest
from osgeo import gdal

from ksdiff_qgis.engine.feedback import RecordingFeedback
from ksdiff_qgis.engine.pipeline import pansharpen


@pytest.fixture(scope="module")
def ed50(data_dir, tmp_path_factory) -> str:
    """The fixture's MS reprojected to ED50 / UTM 31N (EPSG:23031): its footprint is the PAN's within 0.01 m."""
    ms = str(tmp_path_factory.mktemp("ed50") / "ms_ed50.tif")
    gdal.Warp(ms, str(data_dir / "wv2_ms.tif"), dstSRS="EPSG:23031", resampleAlg="cubic", xRes=2, yRes=2)
    return ms


def _moved(src: str, dst: str, dy: float) -> str:
    """``src`` with its geotransform moved ``dy`` metres north (the pixels, placed elsewhere)."""
    ds = gdal.Translate(dst, src)
    gt = list(ds.GetGeoTransform())
    gt[3] += dy
    ds.SetGeoTransform(gt)
    ds = None
    return dst


def _fuse(pan: str, ms: str, out: str) -> tuple[tuple, np.ndarray]:
    pansharpen(pan, ms, out, sensor="wv2", method="mtf_glp_hpm", feedback=RecordingFeedback())
    ds = gdal.Open(out)
    return ds.GetGeoTransform(), ds.GetRasterBand(1).ReadAsArray()


def test_a_covered_last_row_is_fused(data_dir, ed50, tmp_path):
    """The MS 1 cm further north still covers the PAN's last row (to 0.007 PAN pixels). Its warped grid started a PAN
    row above the PAN, its last row's centre lay outside the MS (nodata), and the PAN's last row, fused from it, was
    all nodata."""
    pan = str(data_dir / "wv2_pan.tif")
    gt, band = _fuse(pan, _moved(ed50, str(tmp_path / "ms.tif"), 0.01), str(tmp_path / "o.tif"))
    assert band.shape == (256, 256)
    assert not (band == 0).all(axis=1).any() and not (band == 0).all(axis=0).any()
    assert gt[3] == gdal.Open(pan).GetGeoTransform()[3]


def test_the_output_keeps_to_the_reprojected_footprint(data_dir, ed50, tmp_path):
    """The MS 0.35 m further south: the PAN's first row (its centre 0.1 m outside the MS) is left out, as on one CRS,
    and the rows it covers are fused. It was fused from the warp's edge, outside the MS."""
    pan = str(data_dir / "wv2_pan.tif")
    pgt = gdal.Open(pan).GetGeoTransform()
    gt, band = _fuse(pan, _moved(ed50, str(tmp_path / "ms.tif"), -0.35), str(tmp_path / "o.tif"))
    assert band.shape == (255, 256)
    assert gt[3] == pytest.approx(pgt[3] + pgt[5], abs=1e-6)   # starts at the PAN's second row
    assert not (band == 0).all(axis=1).any() and not (band == 0).all(axis=0).any()
