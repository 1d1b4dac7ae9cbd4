"""A float32 fill at -FLT_MAX (QA): the nodata commands print it exactly (':g' gave -3.40282e+38, which is not the
value the pixels hold), and a nodata value declared with 6 digits is compared with the pixels in the raster's own
type, as GDAL's mask compares it (GDAL hid the pixels, the tiles fused them as data at -3.4e38)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fixture_helpers import write_on_grid
from osgeo import gdal

from ksdiff_qgis.engine.nodatacmd import exact
from ksdiff_qgis.engine.pipeline import pansharpen
from ksdiff_qgis.engine.raster_io import is_nodata
from model_core.datacache import data_dir as cache_dir

FLT_MAX = float(np.finfo(np.float32).max)
HOLE = (slice(100, 140), slice(200, 240))   # MS pixels at -FLT_MAX


def _cached(relative: str) -> Path:
    found = cache_dir() / relative
    if not found.exists():
        pytest.skip(f"no {relative} in the data cache (make data)")
    return found


def _write(path: Path, arr: np.ndarray, src: gdal.Dataset, nodata: float | None = None) -> str:
    return write_on_grid(path, arr, src, nodata=nodata)


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> dict[str, str]:
    """The real Landsat 8 crop as float32 reflectance (x 2.75e-5 - 0.2, Collection 2), a 40 x 40 MS block at
    -FLT_MAX: undeclared, and declared as the old advice printed it (-3.40282e+38)."""
    tmp = tmp_path_factory.mktemp("fltmax")
    pan, ms = (gdal.Open(str(_cached(f"landsat8/{n}.tif"))) for n in ("pan", "ms"))
    m = (ms.ReadAsArray(0, 0, 300, 300) * 2.75e-5 - 0.2).astype(np.float32)
    m[(slice(None), *HOLE)] = -FLT_MAX
    p = (pan.ReadAsArray(0, 0, 600, 600)[None] * 2.75e-5 - 0.2).astype(np.float32)
    return {"pan": _write(tmp / "pan.tif", p, pan), "ms": _write(tmp / "ms.tif", m, ms),
            "ms_6digits": _write(tmp / "ms_6.tif", m, ms, -3.40282e38), "dir": str(tmp)}


def test_the_advised_command_declares_the_value_the_pixels_hold(scene):
    """The warning for the undeclared fill gives '-a_nodata -3.4028235e+38' (float32's shortest exact text), not
    -3.40282e+38; that value, declared, is the pixels' value exactly. (A solid block of it in every band is taken as
    the MS's nodata now, ``codefill``: its warning gives the command.)"""
    res = pansharpen(scene["pan"], scene["ms"], str(Path(scene["dir"]) / "undeclared.tif"), "landsat8", "gsa")
    said = [w for w in res.warnings if "-a_nodata" in w]
    assert said and "-a_nodata -3.4028235e+38 " in said[0], said
    assert "sampled pixels are -3.4028235e+38 in every band" in said[0], said[0]
    assert np.float32(float("-3.4028235e+38")) == np.float32(-FLT_MAX) != np.float32(-3.40282e38)
    assert exact(-FLT_MAX) == "-3.4028234663852886e+38" and exact(0.0) == "0" and exact(-9999.0) == "-9999"


@pytest.mark.parametrize("method", ["mtf_glp_fs", "ksdiff"])
def test_a_six_digit_nodata_hides_the_float32_fill_as_gdal_does(scene, method):
    """MS nodata declared -3.40282e+38 on pixels at -FLT_MAX: GDAL's mask hides them, and now the fusion does too:
    every output value beyond 1e30 is a nodata pixel of the output (before: 2424 fused as data, MTF-GLP-FS)."""
    res = pansharpen(scene["pan"], scene["ms_6digits"], str(Path(scene["dir"]) / f"six_{method}.tif"), "landsat8",
                     method)
    ds = gdal.Open(res.output_path)
    out = ds.ReadAsArray()
    hidden = np.stack([ds.GetRasterBand(b + 1).GetMaskBand().ReadAsArray() == 0 for b in range(ds.RasterCount)])
    assert hidden.any()
    assert not (np.abs(out) > 1e30)[~hidden].any(), int((np.abs(out) > 1e30)[~hidden].sum())
    assert np.isfinite(out[~hidden]).all() and float(np.abs(out[~hidden]).max()) < 2


def test_is_nodata_matches_gdals_mask():
    """``is_nodata`` finds what GDAL's nodata mask finds, float32 and float64 and integer rasters alike."""
    cases = [(gdal.GDT_Float32, [-FLT_MAX, -3.40282e38, 0.1, 1.0000001, 1.0, 5.0], [-3.40282e38, 0.1, 1.0]),
             (gdal.GDT_Float64, [0.1, float(np.float32(0.1)), 1e300, 1.000001e300], [0.1, 1e300]),
             (gdal.GDT_UInt16, [0, 1, 65535, 2], [0, 65535])]
    for gtype, values, nodatas in cases:
        for nd in nodatas:
            ds = gdal.GetDriverByName("MEM").Create("", len(values), 1, 1, gtype)
            band = ds.GetRasterBand(1)
            band.WriteArray(np.array([values]))
            band.SetNoDataValue(nd)
            arr = band.ReadAsArray()
            gdal_hidden = band.GetMaskBand().ReadAsArray() == 0
            np.testing.assert_array_equal(is_nodata(arr.astype(np.float64), nd, arr.dtype), gdal_hidden,
                                          err_msg=f"{gtype} {nd}")
