"""An MS stored upsampled: by nearest neighbour (k x k blocks of one value) it is read at its own pixel, with a
warning; resampled smoothly onto the PAN grid (ratio 1) it is refused with the command that averages it back, never
one that makes the PAN finer than it is. Real imagery: WorldView-2 pair 1 (solaris), Landsat 8, Sentinel-2."""
from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from ksdiff_qgis.engine import blockrepeat
from ksdiff_qgis.engine.errors import InputError
from ksdiff_qgis.engine.feedback import RecordingFeedback
from ksdiff_qgis.engine.pipeline import pansharpen
from ksdiff_qgis.engine.raster_io import describe

REPEATS = "The MS raster repeats each of its values in"


def _repeated(src: str, dst: str, k: int, **options) -> str:
    """``src`` stored upsampled k times by nearest neighbour (each value in k x k pixels), its metadata kept."""
    gdal.Translate(dst, src, widthPct=100 * k, heightPct=100 * k, resampleAlg="nearest", **options)
    return dst


def _fuse(pan: str, ms: str, out: str, method: str = "mtf_glp_hpm", sensor: str = "auto"):
    fb = RecordingFeedback()
    res = pansharpen(pan, ms, out, sensor=sensor, method=method, feedback=fb)
    return res, fb, gdal.Open(res.output_path).ReadAsArray()


@pytest.mark.parametrize("method", ["mtf_glp_hpm", "auto"])
def test_a_wv2_ms_stored_2x2_fuses_as_its_own_ms(cached, tmp_path, method):
    """QA: the WorldView-2 MS as solaris stores it (2 m values in 2 x 2 blocks of 1 m) was fused at ratio 2, the
    sensor not recognised, METHOD auto's network printing the block grid (Wald ERGAS 13.05 against 7.43 at ratio 4).
    It is now read at its own pixel: the same output, byte for byte, as from the native MS, and a warning that says
    what was found with the command that stores it so."""
    pan, ms = str(cached("wv2/pair1_pan.tif")), str(cached("wv2/pair1_ms.tif"))
    rep = _repeated(ms, str(tmp_path / "ms 1m.tif"), 2, creationOptions=["NBITS=11"])
    native, _, want = _fuse(pan, ms, str(tmp_path / "native.tif"), method)
    res, fb, got = _fuse(pan, rep, str(tmp_path / "repeated.tif"), method)
    assert (res.ratio, res.sensor, res.method) == (4, "wv2", native.method) == (4, "wv2", native.method)
    assert np.array_equal(got, want)
    said = [w for w in res.warnings if w.startswith(REPEATS)]
    assert len(said) == 1 and f"WARNING {said[0]}" in fb.lines, res.warnings
    assert "2 x 2 pixel blocks" in said[0] and "the MS/PAN ratio is 4, not 2" in said[0], said[0]
    command = said[0].split("To store it so: ")[1]
    assert command.startswith("gdal_translate -tr 2.000096631 2.000096631 -r nearest "), command
    tool = shutil.which("gdal_translate")
    if tool:   # the command as shown writes the native MS, value for value
        subprocess.run([tool, *shlex.split(command)[1:]], check=True, capture_output=True)
        made = gdal.Open(shlex.split(command)[-1])
        assert np.array_equal(made.ReadAsArray(), gdal.Open(ms).ReadAsArray())
        assert made.GetGeoTransform() == pytest.approx(gdal.Open(ms).GetGeoTransform(), rel=1e-9)


def test_the_solaris_ms_as_delivered_fuses_as_its_own_pixels(cached, tmp_path):
    """The raw solaris pair 1 MS (Float64, 300 x 300 at 1 m, no nodata) against its every second pixel at 2 m: one
    output."""
    whl = cached("archives/solaris-0.4.0-py3-none-any.whl")
    with zipfile.ZipFile(whl) as zf:
        zf.extract("solaris/data/preproc_tutorial/ms1.tif", tmp_path)
    raw = str(tmp_path / "solaris/data/preproc_tutorial/ms1.tif")
    src = gdal.Open(raw)
    gt = list(src.GetGeoTransform())
    native = gdal.Translate(str(tmp_path / "ms1_2m.tif"), raw, srcWin=[0, 0, 300, 300], width=150, height=150,
                            resampleAlg="nearest")
    assert native.GetGeoTransform()[1] == pytest.approx(2 * gt[1], rel=1e-12)
    assert np.array_equal(native.ReadAsArray(), src.ReadAsArray()[:, ::2, ::2])
    native = None
    pan = str(cached("wv2/pair1_pan.tif"))
    _, _, want = _fuse(pan, str(tmp_path / "ms1_2m.tif"), str(tmp_path / "native.tif"))
    res, _, got = _fuse(pan, raw, str(tmp_path / "raw.tif"))
    assert (res.ratio, res.sensor) == (4, "wv2")
    assert any(w.startswith(REPEATS + " 2 x 2") for w in res.warnings), res.warnings
    assert np.array_equal(got, want)


def test_an_ms_repeated_onto_the_pan_grid_is_read_at_its_own_pixel_not_refused(cached, tmp_path):
    """An MS stored nearest-neighbour on the PAN's own grid (4 x 4 blocks, ratio 1) is the MS itself, repaired:
    the same output as the native MS, where a smooth resampling is refused (test below)."""
    pan, ms = str(cached("wv2/pair1_pan.tif")), str(cached("wv2/pair1_ms.tif"))
    rep = _repeated(ms, str(tmp_path / "ms_on_pan.tif"), 4, creationOptions=["NBITS=11"])
    _, _, want = _fuse(pan, ms, str(tmp_path / "native.tif"))
    res, _, got = _fuse(pan, rep, str(tmp_path / "repeated.tif"))
    assert res.ratio == 4 and np.array_equal(got, want)
    assert any("4 x 4 pixel blocks" in w and "the MS/PAN ratio is 4, not 1" in w for w in res.warnings)


def test_assess_reads_a_repeated_ms_at_its_own_pixel(cached, tmp_path):
    """ksdiff:assess's full-resolution indices of a fusion against the 2 x 2 stored MS are those against the native
    MS (they compared MS pixels with 2 x 2 blocks of the fusion, at ratio 2)."""
    from ksdiff_qgis.engine.assessment import assess_full

    pan, ms = str(cached("wv2/pair1_pan.tif")), str(cached("wv2/pair1_ms.tif"))
    rep = _repeated(ms, str(tmp_path / "rep.tif"), 2, creationOptions=["NBITS=11"])
    fused = pansharpen(pan, ms, str(tmp_path / "f.tif"), sensor="wv2", method="mtf_glp_hpm").output_path
    want = assess_full(fused, pan, ms, "wv2")
    fb = RecordingFeedback()
    got = assess_full(fused, pan, rep, "wv2", fb)
    for key in ("D_lambda", "D_s", "HQNR"):
        assert got[key] == want[key], key
    assert any(line.startswith(f"WARNING {REPEATS} 2 x 2") for line in fb.lines), fb.lines


def test_blocks_that_start_inside_the_raster_are_found_at_their_offset(cached, tmp_path):
    """A repeated MS cut at an odd pixel (its first block half outside): the blocks are found where they start and
    the view holds the native values."""
    ms = str(cached("wv2/pair1_ms.tif"))
    rep = _repeated(ms, str(tmp_path / "rep.tif"), 2)
    cut = gdal.Translate(str(tmp_path / "cut.tif"), rep, srcWin=[1, 3, 297, 295])
    info = describe(cut, str(tmp_path / "cut.tif"))
    found, _ = blockrepeat.find(cut, info, 2.0)
    assert (found.k, found.row, found.col) == (2, 1, 1)
    view, native = blockrepeat.native_view(cut, info, found)
    assert (native.width, native.height) == (148, 147)
    assert np.array_equal(view.ReadAsArray(), gdal.Open(ms).ReadAsArray()[:, 2:149, 1:149])
    assert "-srcwin 1 1 296 294 " in blockrepeat.store_command(info, found)


def _stretched8(src: gdal.Dataset, levels: int = 255) -> gdal.Dataset:
    """An 8-bit copy of ``src``, each band's 2-98 % stretched to 1..``levels`` and clipped there (saturated flat
    areas at both ends, as an 8-bit display product has)."""
    a = src.ReadAsArray().astype(float).reshape(src.RasterCount, src.RasterYSize, src.RasterXSize)
    out = gdal.GetDriverByName("MEM").Create("", src.RasterXSize, src.RasterYSize, src.RasterCount, gdal.GDT_Byte)
    out.SetGeoTransform(src.GetGeoTransform())
    out.SetProjection(src.GetProjection())
    for b in range(a.shape[0]):
        lo, hi = np.percentile(a[b][a[b] > 0], (2, 98))
        out.GetRasterBand(b + 1).WriteArray(np.clip(np.round((a[b] - lo) / (hi - lo) * (levels - 1) + 1), 1, levels))
    return out


@pytest.mark.parametrize("name", ["wv2/pair1_ms.tif", "wv2/pair2_ms.tif", "landsat8/ms.tif", "landsat8/pan.tif",
                                  "landsat7/ms.tif", "sentinel2/s2_10m.tif", "sentinel2/s2_20m.tif"])
def test_real_rasters_are_not_taken_for_repeated_blocks(cached, name):
    """No false detection on real imagery, as delivered (16-bit; Landsat 7 8-bit), stretched to 8 bits with both
    ends saturated, or posterised to 16 levels (flat areas everywhere): every k the detector may try (ratio 1: k 2
    to 6) is rejected."""
    src = gdal.Open(str(cached(name)))
    for ds in (src, _stretched8(src), _stretched8(src, 16)):
        info = describe(ds, name)
        found, tried = blockrepeat.find(ds, info, 1.0)
        assert found is None, (name, found)
        assert sorted(tried) == [2, 3, 4, 5, 6]
        assert all(constant <= 0.5 * informative for constant, informative in tried.values()), (name, tried)


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
