"""A product stored with a negative offset fuses as the product itself (QA round 89): real WorldView-2 pair 1 as
delivered (UInt16, NBITS 11) and the same data stored as Int16 DN - 300, mostly below 0."""
from __future__ import annotations

import numpy as np
import pytest
from osgeo import gdal

from ksdiff_qgis.engine.feedback import RecordingFeedback
from ksdiff_qgis.engine.model_card import bundled_cards
from ksdiff_qgis.engine.pipeline import pansharpen

pytestmark = pytest.mark.skipif("wv2" not in bundled_cards(), reason="no bundled WorldView-2 model")
OFFSET = -300
NODATA = -32768
# the remaining difference is the product's own pedestal, which the data cannot tell apart from the offset: the
# Int16 run is raised so its data end at 0 where pair 1's MS ends at 2 DN (measured: 0.34 DN mean, 16 DN at most)
MEAN_DN, MAX_DN = 1.0, 40.0


def _shifted(src: str, dst: str) -> str:
    """``src`` with OFFSET added, as Int16, its nodata pixels (0) at NODATA, declared."""
    ds = gdal.Open(src)
    a = ds.ReadAsArray().astype(np.int32).reshape(ds.RasterCount, ds.RasterYSize, ds.RasterXSize)
    out = gdal.GetDriverByName("GTiff").Create(dst, ds.RasterXSize, ds.RasterYSize, ds.RasterCount, gdal.GDT_Int16)
    out.SetGeoTransform(ds.GetGeoTransform())
    out.SetProjection(ds.GetProjection())
    for b in range(ds.RasterCount):
        band = out.GetRasterBand(b + 1)
        band.WriteArray(np.where(a[b] == 0, NODATA, a[b] + OFFSET))
        band.SetNoDataValue(NODATA)
    out = None
    return dst


def test_an_int16_product_stored_as_dn_minus_300_fuses_as_the_uint16_product(cached, tmp_path):
    """KSDiff on the DN - 300 encoding was 15 DN off the UInt16 run on average and up to 31664 DN (single values at
    33067: the noise pull divided a PAN near 0 by its low-pass; each MS band was raised by its own floor). Now its
    output is the UInt16 run's minus 300 within MEAN_DN on average and MAX_DN everywhere, and the log says why."""
    pan, ms = str(cached("wv2/pair1_pan.tif")), str(cached("wv2/pair1_ms.tif"))
    said = {"u16": RecordingFeedback(), "i16": RecordingFeedback()}
    base = pansharpen(pan, ms, str(tmp_path / "u16.tif"), "wv2", "ksdiff", precision="fp32", feedback=said["u16"])
    shifted = pansharpen(_shifted(pan, str(tmp_path / "pan.tif")), _shifted(ms, str(tmp_path / "ms.tif")),
                         str(tmp_path / "i16.tif"), "wv2", "ksdiff", precision="fp32", feedback=said["i16"])
    a = gdal.Open(base.output_path).ReadAsArray().astype(np.float64)
    b = gdal.Open(shifted.output_path).ReadAsArray().astype(np.float64)
    data = (b != NODATA).all(axis=0) & (a != 0).all(axis=0)
    # the UInt16 product declares NBITS 11, so its output is clipped at 2047; the Int16 one's is not
    compared = data & (a < 2047).all(axis=0)
    assert compared.mean() > 0.95
    diff = np.abs(b - OFFSET - a)[:, compared]
    assert diff.mean() < MEAN_DN and diff.max() < MAX_DN, (diff.mean(), diff.max())
    lifted = {k: [line for line in fb.lines if "values reach below 0" in line] for k, fb in said.items()}
    assert not lifted["u16"] and len(lifted["i16"]) == 1 and "raised by 298" in lifted["i16"][0], lifted
