"""An MS stored upsampled: resampled onto the PAN grid (ratio 1) it is refused with the command that averages it back,
never one that makes the PAN finer than it is. Real imagery: WorldView-2 pair 1 (solaris), Landsat 8, Sentinel-2."""
from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from osgeo import gdal

from ksdiff_qgis.engine.errors import InputError
from ksdiff_qgis.engine.pipeline import pansharpen


def _on_pan_grid(ms: str, pan: str, dst: str, how: str) -> str:
    """``ms`` resampled (``how``) onto the grid of ``pan``: ratio 1."""
    p = gdal.Open(pan)
    gt = p.GetGeoTransform()
    bounds = (gt[0], gt[3] + p.RasterYSize * gt[5], gt[0] + p.RasterXSize * gt[1], gt[3])
    gdal.Warp(dst, ms, outputBounds=bounds, width=p.RasterXSize, height=p.RasterYSize, resampleAlg=how)
    return dst


def _crop(src: str, dst: str, win: list[int], **options) -> str:
    gdal.Translate(dst, src, srcWin=win, **options)
    return dst


# (PAN, its window, MS, its window, SENSOR, the -tr of the command): a Landsat 8 pair (ratio 2: SENSOR's, or the one
# of every 4-band product with a 15 m PAN), and Sentinel-2's 20 m bands over its 10 m NIR band (no sensor has 8
# bands and a 10 m PAN: a typical ratio 4)
CASES = {"landsat8 auto": ("landsat8/pan.tif", [100, 100, 256, 256], "landsat8/ms.tif", [50, 50, 128, 128], "auto",
                           "30 30"),
         "landsat8": ("landsat8/pan.tif", [100, 100, 256, 256], "landsat8/ms.tif", [50, 50, 128, 128], "landsat8",
                      "30 30"),
         "sentinel2 20 m on 10 m": ("sentinel2/s2_10m.tif", [401, 400, 256, 256], "sentinel2/s2_20m.tif",
                                    [200, 200, 128, 128], "auto", "40 40")}


@pytest.mark.parametrize("case", CASES)
def test_an_ms_resampled_onto_the_pan_grid_is_refused_with_the_command_that_averages_it_back(
        qgis_app, cached, tmp_path, case):
    """QA: a Landsat 8 MS bilinear-upsampled onto the PAN grid (ratio 1) was told to resample the PAN to half
    the MS pixel (gdalwarp -tr 7.5 7.5 -r cubic pan.tif): a PAN made finer than it is. The refusal now says the MS
    looks resampled onto the PAN grid and gives the command that averages the MS back to its own pixel: the
    sensor's ratio (Landsat 8/9's 2, from SENSOR or the 15 m PAN), else a typical ratio 4. The command, run as shown,
    makes a pair that fuses."""
    import processing
    from qgis.core import QgsProcessingException

    pan_name, pan_win, ms_name, ms_win, sensor, tr = CASES[case]
    pan = _crop(str(cached(pan_name)), str(tmp_path / "pan.tif"), pan_win, bandList=[4] if "s2" in pan_name else None)
    ms = _crop(str(cached(ms_name)), str(tmp_path / "ms.tif"), ms_win)
    up = _on_pan_grid(ms, pan, str(tmp_path / "ms up.tif"), "bilinear")
    out = str(tmp_path / "o.tif")
    with pytest.raises(QgsProcessingException) as err:
        processing.run("ksdiff:pansharpen", {"PAN": pan, "MS": up, "SENSOR": sensor, "METHOD": "mtf_glp_hpm",
                                             "OUTPUT": out})
    text = str(err.value)
    assert "the MS looks resampled onto the PAN grid" in text, text
    assert "-r cubic" not in text and "_half" not in text, text
    native = tmp_path / "ms up_native.tif"
    assert f"gdalwarp -tr {tr} -r average {shlex.quote(up)} {shlex.quote(str(native))}" in text, text
    assert not Path(out).exists()
    tool = shutil.which("gdalwarp")
    if tool:
        command = re.search(r"gdalwarp -tr .*$", text).group(0)
        subprocess.run([tool, *shlex.split(command)[1:]], check=True, capture_output=True)
        res = pansharpen(pan, str(native), out, sensor=sensor, method="mtf_glp_hpm")
        assert res.ratio == int(tr.split()[0]) // int(abs(gdal.Open(pan).GetGeoTransform()[1]))


def test_a_cubic_wv2_ms_on_the_pan_grid_gets_the_wv2_pixel(cached, tmp_path):
    """A WorldView-2 MS cubic-resampled onto its 0.5 m PAN's grid: the command averages it back to 4 PAN pixels
    (WorldView-2's ratio, from the PAN pixel and the 4 bands), not a finer PAN."""
    pan, ms = str(cached("wv2/pair1_pan.tif")), str(cached("wv2/pair1_ms.tif"))
    up = _on_pan_grid(ms, pan, str(tmp_path / "up.tif"), "cubic")
    with pytest.raises(InputError, match="looks resampled onto the PAN grid") as err:
        pansharpen(pan, up, str(tmp_path / "o.tif"))
    assert re.search(r"ratio of 4-band products with a 0\.5 m PAN pixel: WorldView-2.*gdalwarp -tr 1\.99997382 "
                     r"1\.99997382 -r average ", str(err.value)), str(err.value)
