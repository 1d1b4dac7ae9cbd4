"""Issue 14 through `qgis_process` (the deployed plugin): enum key/label/index, EXTENT, MS_BANDS, help text."""
from __future__ import annotations

import re

import numpy as np
import pytest
from osgeo import gdal
from test_issue14_processing import _extent_string
from test_qgis_process import profile, qgis_process  # noqa: F401  (module fixture: deploy into a temp profile)
from test_sensors_bands import make_wv2_8band


def _ok(res):
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return res


@pytest.mark.parametrize("value", ["wv2", "WV2", "1", "WorldView-2 (4 bands: B, G, R, NIR), ratio 4 [wv2]"])
def test_sensor_key_label_and_index(profile, data_dir, tmp_path, value):  # noqa: F811
    out = tmp_path / "o.tif"
    _ok(qgis_process(profile, "run", "ksdiff:pansharpen", "--", f"PAN={data_dir / 'wv2_pan.tif'}",
                     f"MS={data_dir / 'wv2_ms.tif'}", f"SENSOR={value}", "METHOD=Gram-Schmidt adaptive (GSA) [gsa]",
                     "DEVICE=2", f"OUTPUT={out}"))
    from ksdiff_qgis.engine.pipeline import pansharpen

    ref = pansharpen(str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), str(tmp_path / "r.tif"), "wv2", "gsa")
    assert np.array_equal(gdal.Open(str(out)).ReadAsArray(), gdal.Open(ref.output_path).ReadAsArray())


def test_unknown_sensor_is_refused_with_the_keys(profile, data_dir, tmp_path):  # noqa: F811
    res = qgis_process(profile, "run", "ksdiff:pansharpen", "--", f"PAN={data_dir / 'wv2_pan.tif'}",
                       f"MS={data_dir / 'wv2_ms.tif'}", "SENSOR=worldview9", f"OUTPUT={tmp_path / 'o.tif'}")
    assert res.returncode != 0 and "SENSOR" in res.stdout + res.stderr


def test_default_sensor_landsat_and_extent(profile, data_dir, tmp_path):  # noqa: F811
    pan = data_dir / "l8_pan.tif"
    out = tmp_path / "l8.tif"
    res = _ok(qgis_process(profile, "run", "ksdiff:pansharpen", "--", f"PAN={pan}", f"MS={data_dir / 'l8_ms.tif'}",
                           "METHOD=mtf_glp_hpm", f"EXTENT={_extent_string(pan, (10, 110), (20, 90))}", f"OUTPUT={out}"))
    assert "[landsat8]" in res.stdout
    ds = gdal.Open(str(out))
    assert (ds.RasterXSize, ds.RasterYSize) == (100, 70)
    miss = _extent_string(pan, (1000, 1100), (1000, 1100))
    res = qgis_process(profile, "run", "ksdiff:pansharpen", "--", f"PAN={pan}", f"MS={data_dir / 'l8_ms.tif'}",
                       "METHOD=exp", f"EXTENT={miss}", f"OUTPUT={tmp_path / 'miss.tif'}")
    assert res.returncode != 0 and "misses the PAN/MS overlap" in res.stdout + res.stderr
    assert not (tmp_path / "miss.tif").exists()


def test_ms_bands_repeated_argument(profile, data_dir, tmp_path):  # noqa: F811
    ms8 = make_wv2_8band(data_dir / "wv2_ms.tif", tmp_path / "ms8.tif")
    out = tmp_path / "o.tif"
    _ok(qgis_process(profile, "run", "ksdiff:pansharpen", "--", f"PAN={data_dir / 'wv2_pan.tif'}", f"MS={ms8}",
                     "SENSOR=wv2_8", "METHOD=brovey", "MS_BANDS=5", "MS_BANDS=3", "MS_BANDS=2", f"OUTPUT={out}"))
    ds = gdal.Open(str(out))
    assert [ds.GetRasterBand(i).GetDescription() for i in (1, 2, 3)] == ["Red", "Green", "Blue"]


def test_help_has_no_html_and_lists_keys(profile):  # noqa: F811
    res = _ok(qgis_process(profile, "help", "ksdiff:pansharpen"))
    text = res.stdout
    assert not re.search(r"</?(b|i|ul|li|br|p)\b", text), text[:2000]
    for key in ("[auto]", "[wv2_8]", "[pleiades]", "[generic]", "[mtf_glp_hpm]", "EXTENT", "MS_BANDS"):
        assert key in text
    for default in ("Default: 512 (64 to 8192)", "Default: 32", "Default: auto (an NVIDIA GPU", "Default: deflate"):
        assert default in text, default   # QGIS 3.22 prints no defaults itself
    res = _ok(qgis_process(profile, "help", "ksdiff:assess"))
    assert not re.search(r"</?(b|i|ul|li|br|p)\b", res.stdout)
    assert "Default: auto (guessed from the original PAN and MS" in res.stdout and "14: Auto-detect" in res.stdout
