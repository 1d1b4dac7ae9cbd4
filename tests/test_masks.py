"""GDAL mask bands of the inputs (engine/masks.py): an internal mask hides pixels exactly as a declared nodata value
over the same pixels would, through every step (statistics, tiles, self-check, output holes), on real imagery."""
from __future__ import annotations

import numpy as np
import pytest
from osgeo import gdal

from ksdiff_qgis.engine import masks
from ksdiff_qgis.engine.errors import InputError
from ksdiff_qgis.engine.feedback import RecordingFeedback
from ksdiff_qgis.engine.pipeline import pansharpen
from ksdiff_qgis.engine.raster_io import describe

HIDDEN = (slice(0, 20), slice(0, 24))   # MS rows, columns the mask hides (PAN: 80 x 96 at ratio 4)


def _copy(src: str, path, *, hide=None, fill=None, nodata=None) -> str:
    """A GTiff copy of ``src`` with no nodata; ``hide`` (rows, cols) hidden by an internal mask, or set to ``fill``
    and declared ``nodata``."""
    ds = gdal.Translate(str(path), src, options=gdal.TranslateOptions(noData="none"))
    if fill is not None:
        for b in range(1, ds.RasterCount + 1):
            band = ds.GetRasterBand(b)
            arr = band.ReadAsArray()
            arr[hide] = fill
            band.WriteArray(arr)
            band.SetNoDataValue(nodata)
            band = None
    elif hide is not None:
        ds.CreateMaskBand(gdal.GMF_PER_DATASET)
        band = ds.GetRasterBand(1)
        mask = band.GetMaskBand()
        m = np.full((ds.RasterYSize, ds.RasterXSize), 255, np.uint8)
        m[hide] = 0
        mask.WriteArray(m)
        mask = band = None
    ds = None
    return str(path)


def _scaled(hide: tuple[slice, slice], k: int) -> tuple[slice, slice]:
    return tuple(slice(s.start * k, s.stop * k) for s in hide)


@pytest.mark.parametrize("method", ["mtf_glp_hpm", "ksdiff"])
def test_an_ms_mask_band_acts_as_nodata(data_dir, tmp_path, method):
    pan = _copy(str(data_dir / "wv2_pan.tif"), tmp_path / "pan.tif")
    src = str(data_dir / "wv2_ms.tif")
    masked = _copy(src, tmp_path / "masked.tif", hide=HIDDEN)
    zeroed = _copy(src, tmp_path / "zeroed.tif", hide=HIDDEN, fill=0, nodata=0)
    ds = gdal.Open(masked)
    assert masks.own_mask(ds) and not masks.own_mask(gdal.Open(zeroed))
    ds = None
    out = {}
    for name, ms in (("masked", masked), ("zeroed", zeroed)):
        log = RecordingFeedback()
        res = pansharpen(pan, ms, str(tmp_path / f"{name}_{method}.tif"), "wv2", method, feedback=log)
        assert any("MS raster has a mask band" in line for line in log.lines) == (name == "masked")
        ds = gdal.Open(res.output_path)
        b1 = ds.GetRasterBand(1)
        out[name] = (ds.ReadAsArray(), b1.GetNoDataValue(), b1.DataType, b1.GetMetadataItem("NBITS", "IMAGE_STRUCTURE"))
        b1 = ds = None
    (fm, nm, tm, bm), (fz, nz, tz, bz) = out["masked"], out["zeroed"]
    assert (nm, tm, bm) == (nz, tz, bz) == (0, gdal.GDT_UInt16, bz)   # the product's type, NBITS and holes
    hidden = np.zeros(fm.shape[1:], bool)
    hidden[_scaled(HIDDEN, 4)] = True
    assert (fm[:, hidden] == 0).all() and (fm[:, ~hidden] != 0).mean() > 0.99
    # the same pixels as with nodata declared over zeroed values: the hidden values reach nothing
    assert np.abs(fm.astype(np.int64) - fz).max() <= 1


def test_a_pan_mask_band_acts_as_nodata(data_dir, tmp_path):
    pan_hide = _scaled(HIDDEN, 4)
    masked = _copy(str(data_dir / "wv2_pan.tif"), tmp_path / "pan_masked.tif", hide=pan_hide)
    ms = _copy(str(data_dir / "wv2_ms.tif"), tmp_path / "ms.tif")   # no nodata: the holes come from the PAN mask
    log = RecordingFeedback()
    res = pansharpen(masked, ms, str(tmp_path / "out.tif"), "wv2", "mtf_glp_hpm", feedback=log)
    assert any("PAN raster has a mask band" in line for line in log.lines)
    assert any("output nodata" in line and "the PAN mask band hides" in line for line in log.lines), log.lines
    fused = gdal.Open(res.output_path).ReadAsArray()
    assert (fused[(slice(None), *pan_hide)] == 0).all() and (fused[:, 100:, 100:] != 0).all()


def test_a_masked_ms_in_another_crs_keeps_its_holes(data_dir, tmp_path):
    """The MS is reprojected onto the PAN grid (a warning): the mask's holes travel with it, as nodata would."""
    other = str(tmp_path / "ms_3857.tif")
    gdal.Warp(other, str(data_dir / "wv2_ms.tif"), dstSRS="EPSG:3857", resampleAlg="near", srcNodata="none",
              dstNodata="none")
    ds = gdal.Open(other)
    hide = (ds.ReadAsArray() == 0).all(axis=0)   # the frame the reprojection filled with 0, and a block
    hide[HIDDEN] = True
    ds = None
    out = {}
    out = {}
    # 65535 as the twin's nodata: the data hold real zeros (dark NIR), which a nodata of 0 would also hide
    for name, kw in (("plain", {"hide": None}), ("masked", {}), ("filled", {"fill": 65535, "nodata": 65535})):
        ms = _copy(other, tmp_path / f"{name}.tif", **{"hide": hide, **kw})
        log = RecordingFeedback()
        res = pansharpen(str(data_dir / "wv2_pan.tif"), ms, str(tmp_path / f"{name}_out.tif"), "wv2", "mtf_glp_hpm",
                         feedback=log)
        assert any("reproject" in line for line in log.lines), log.lines
        ds = gdal.Open(res.output_path)
        b1 = ds.GetRasterBand(1)
        out[name] = (ds.ReadAsArray().astype(np.int64), b1.GetNoDataValue())
        b1 = ds = None
    holes = {name: (arr == nodata).all(axis=0) for name, (arr, nodata) in out.items()}
    # about a ninth of the MS hidden besides the frame: holes where the unmasked MS has none
    assert holes["masked"].mean() > holes["plain"].mean() + 0.05
    assert np.array_equal(holes["masked"], holes["filled"])
    valid = ~holes["masked"]
    # the twin's reprojected MS is rounded to integers, the masked view's is not: dark NIR pixels differ a little
    assert (np.abs(out["masked"][0][:, valid] - out["filled"][0][:, valid]) > 1).mean() < 0.005


def test_the_masked_view_keeps_values_and_the_products_type(data_dir, tmp_path):
    masked = _copy(str(data_dir / "wv2_ms.tif"), tmp_path / "masked.tif", hide=HIDDEN)
    ds = gdal.Open(masked)
    info = describe(ds, masked)
    view, vinfo = masks.masked_view(ds, info, "mask band")
    raw, seen = ds.ReadAsArray(), view.ReadAsArray()
    assert np.isnan(seen[(slice(None), *HIDDEN)]).all()
    rest = ~np.isnan(seen)
    assert rest.sum() == seen.size - 4 * 20 * 24 and np.array_equal(seen[rest], raw[rest].astype(np.float32))
    assert (vinfo.dtype, vinfo.gdal_type, vinfo.nbits, vinfo.gt) == (info.dtype, info.gdal_type, info.nbits, info.gt)
    assert np.isnan(vinfo.nodata) and vinfo.mask == "mask band"
    view = ds = None


def test_the_assessment_leaves_out_what_a_mask_hides(data_dir, tmp_path):
    """``ksdiff:assess`` reads through MaskedRaster: a reference's mask band leaves its hidden pixels out."""
    from ksdiff_qgis.engine.raster_io.read import MaskedRaster

    masked = _copy(str(data_dir / "wv2_ms.tif"), tmp_path / "masked.tif", hide=HIDDEN)
    _, valid = MaskedRaster(masked, "reference").read(0, 0, 64, 64)
    assert not valid[HIDDEN].any() and valid.sum() == 64 * 64 - 20 * 24
    _, valid = MaskedRaster(masked, "reference").read(10, 10, 30, 30)   # a window: the mask's same window
    assert not valid[:10, :14].any() and valid[10:, :].all() and valid[:, 14:].all()


def test_a_mask_and_a_nodata_value_both_hide(tmp_path):
    """GDAL lets a mask band override a declared nodata value; the view hides both (the warper alone applied only
    the nodata value)."""
    ds = gdal.GetDriverByName("GTiff").Create(str(tmp_path / "both.tif"), 64, 48, 2, gdal.GDT_UInt16)
    ds.SetGeoTransform((1000, 2, 0, 2000, 0, -2))
    ds.SetProjection("EPSG:32633")
    for b in (1, 2):
        band = ds.GetRasterBand(b)
        arr = np.full((48, 64), 100, np.uint16)
        arr[40:, 50:] = 0
        band.WriteArray(arr)
        band.SetNoDataValue(0)
        band = None
    ds.CreateMaskBand(gdal.GMF_PER_DATASET)
    band = ds.GetRasterBand(1)
    mask = band.GetMaskBand()
    m = np.full((48, 64), 255, np.uint8)
    m[:10, :20] = 0
    mask.WriteArray(m)
    mask = band = None
    assert masks.own_mask(ds)
    view, _ = masks.masked_view(ds, describe(ds, "both.tif"), "mask band")
    seen = view.ReadAsArray()
    assert np.isnan(seen[:, :10, :20]).all() and np.isnan(seen[:, 40:, 50:]).all()
    assert np.isnan(seen).sum() == 2 * (10 * 20 + 8 * 14) and (seen[~np.isnan(seen)] == 100).all()
    view = ds = None


def test_a_pan_with_an_alpha_band_is_its_grey_band(data_dir, tmp_path):
    """``gdalwarp -dstalpha`` writes a PAN as grey + alpha: band 1 is fused, the pixels the alpha hides are nodata
    (it stopped with "the PAN raster must have one band")."""
    pan = _copy(str(data_dir / "wv2_pan.tif"), tmp_path / "pan.tif")
    ds = gdal.Open(pan)
    width, height = ds.RasterXSize, ds.RasterYSize
    ds = None
    # the same grid, the alpha hiding a corner: GDAL writes the alpha where the source mask hides pixels
    src = _copy(str(data_dir / "wv2_pan.tif"), tmp_path / "pan_masked.tif", hide=_scaled(HIDDEN, 4))
    gdal.Warp(str(tmp_path / "pan_la.tif"), src, dstAlpha=True, width=width, height=height, resampleAlg="near")
    la = gdal.Open(str(tmp_path / "pan_la.tif"))
    band = la.GetRasterBand(2)
    assert la.RasterCount == 2 and band.GetColorInterpretation() == gdal.GCI_AlphaBand
    band = la = None
    ms = _copy(str(data_dir / "wv2_ms.tif"), tmp_path / "ms.tif")
    log = RecordingFeedback()
    res = pansharpen(str(tmp_path / "pan_la.tif"), ms, str(tmp_path / "out.tif"), "wv2", "mtf_glp_hpm", feedback=log)
    assert any("PAN raster's band 2 is a transparency mask" in line for line in log.lines), log.lines
    fused = gdal.Open(res.output_path).ReadAsArray()
    plain = gdal.Open(pansharpen(pan, ms, str(tmp_path / "plain.tif"), "wv2", "mtf_glp_hpm").output_path).ReadAsArray()
    hidden = np.zeros(fused.shape[1:], bool)
    hidden[_scaled(HIDDEN, 4)] = True
    assert (fused[:, hidden] == 0).all() and (fused[:, ~hidden] != 0).mean() > 0.99
    far = np.zeros_like(hidden)
    far[120:, 120:] = True   # away from the hole, the grey band fuses as the plain PAN does
    assert np.abs(fused[:, far].astype(np.int64) - plain[:, far]).max() <= 1


def test_an_ms_warped_with_an_alpha_band_keeps_its_holes(data_dir, tmp_path):
    """``gdalwarp -dstalpha`` on a 16-bit 4-band MS: five bands, the fifth alpha (0 / 65535), which GDAL does not
    take as the dataset's mask. The alpha is left out and what it hides is nodata."""
    gdal.Warp(str(tmp_path / "ms5.tif"), str(data_dir / "wv2_ms.tif"), dstAlpha=True, dstSRS="EPSG:3857",
              srcNodata="none")
    ds = gdal.Open(str(tmp_path / "ms5.tif"))
    band = ds.GetRasterBand(1)
    assert ds.RasterCount == 5 and band.GetMaskFlags() == gdal.GMF_ALL_VALID
    alpha = ds.GetRasterBand(5).ReadAsArray()
    band = ds = None
    assert set(np.unique(alpha).tolist()) == {0, 65535} and (alpha == 0).mean() > 0.01
    log = RecordingFeedback()
    res = pansharpen(str(data_dir / "wv2_pan.tif"), str(tmp_path / "ms5.tif"), str(tmp_path / "out.tif"), "wv2",
                     "mtf_glp_hpm", feedback=log)
    assert any("MS band 5 is a transparency mask" in line and "hides are nodata" in line for line in log.lines)
    out = gdal.Open(res.output_path)
    fused, nodata = out.ReadAsArray(), out.GetRasterBand(1).GetNoDataValue()
    assert out.RasterCount == 4 and (fused == nodata).all(axis=0).mean() > 0.005   # the reprojection's empty corners


def test_a_grey_alpha_pan_without_georeferencing_says_so(data_dir, tmp_path):
    """The alpha handling must not hide the real problem behind "the PAN raster must have one band"."""
    src = gdal.Open(str(data_dir / "wv2_pan.tif"))
    arr = src.ReadAsArray()
    src = None
    ds = gdal.GetDriverByName("GTiff").Create(str(tmp_path / "la.tif"), arr.shape[1], arr.shape[0], 2, gdal.GDT_UInt16,
                                              ["PHOTOMETRIC=MINISBLACK", "ALPHA=YES"])
    ds.GetRasterBand(1).WriteArray(arr)
    ds.GetRasterBand(2).WriteArray(np.full(arr.shape, 65535, np.uint16))
    ds = None
    with pytest.raises(InputError, match="georeferencing"):
        pansharpen(str(tmp_path / "la.tif"), str(data_dir / "wv2_ms.tif"), str(tmp_path / "out.tif"), "wv2",
                   "mtf_glp_hpm")
    assert not (tmp_path / "out.tif").exists()


def test_a_virtual_mosaic_with_an_added_alpha_fuses_like_its_source(data_dir, tmp_path):
    """QGIS's Build Virtual Raster / ``gdalbuildvrt -addalpha`` over 16-bit data adds a *Byte* alpha band (0 / 255;
    GDAL reads the bands' mixed types as floats): it is left out of MS and PAN, SENSOR auto still finds WorldView-2,
    and the pixels equal those of the plain inputs (it was fused as a fifth spectral band, or refused for wv2)."""
    vrts = {}
    for role in ("pan", "ms"):
        vrts[role] = str(tmp_path / f"{role}.vrt")
        gdal.BuildVRT(vrts[role], [str(data_dir / f"wv2_{role}.tif")], addAlpha=True)
        ds = gdal.Open(vrts[role])
        alpha = ds.GetRasterBand(ds.RasterCount)
        assert alpha.GetColorInterpretation() == gdal.GCI_AlphaBand and alpha.DataType == gdal.GDT_Byte
        alpha = ds = None
    log = RecordingFeedback()
    res = pansharpen(vrts["pan"], vrts["ms"], str(tmp_path / "out.tif"), "auto", "mtf_glp_hpm", feedback=log)
    assert any("SENSOR=auto: WorldView-2" in line for line in log.lines), log.lines
    assert any("MS band 5 is a transparency mask (alpha, only 0 and 255)" in line for line in log.lines)
    plain = pansharpen(str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), str(tmp_path / "plain.tif"), "wv2",
                       "mtf_glp_hpm")
    fused, want = (gdal.Open(r.output_path).ReadAsArray().astype(np.int64) for r in (res, plain))
    assert fused.shape == want.shape == (4, 256, 256) and np.abs(fused - want).max() <= 1


def test_a_mask_per_band_is_said_not_applied(data_dir, tmp_path):
    """Masks per band (GDAL flags 0, a .msk with one mask per band) are not applied by the masked view: the log says so
    and how to fix it (they were ignored silently)."""
    ms = str(tmp_path / "ms.tif")
    gdal.Translate(ms, str(data_dir / "wv2_ms.tif"), options=gdal.TranslateOptions(noData="none"))
    gdal.SetConfigOption("GDAL_TIFF_INTERNAL_MASK", "NO")
    try:
        ds = gdal.Open(ms, gdal.GA_Update)
        for b in range(1, ds.RasterCount + 1):
            band = ds.GetRasterBand(b)
            band.CreateMaskBand(0)
            m = np.full((ds.RasterYSize, ds.RasterXSize), 255, np.uint8)
            m[HIDDEN] = 0
            band.GetMaskBand().WriteArray(m)
            band = None
        ds = None
    finally:
        gdal.SetConfigOption("GDAL_TIFF_INTERNAL_MASK", None)
    log = RecordingFeedback()
    pansharpen(str(data_dir / "wv2_pan.tif"), ms, str(tmp_path / "o.tif"), "wv2", "mtf_glp_hpm", feedback=log)
    assert any("mask per band, which is not applied" in line and "-mask 1" in line for line in log.lines), log.lines


def test_an_added_alpha_on_both_inputs_still_warns_of_a_zero_fill(data_dir, tmp_path):
    """``gdalbuildvrt -addalpha`` over the nodata-edged pair whose copies declare no nodata (the alpha opaque
    everywhere): the alpha is read as a mask (nodata NaN), which hid the zero fill from the undeclared-fill check —
    its warning vanished and a learned tile's context took the zeros for scene content. Both warn again."""
    vrts = {}
    for role in ("pan", "ms"):
        plain = str(tmp_path / f"{role}.tif")
        gdal.Translate(plain, str(data_dir / f"wv2_nodata_{role}.tif"), noData="none")
        vrts[role] = str(tmp_path / f"{role}.vrt")
        gdal.BuildVRT(vrts[role], [plain], addAlpha=True).FlushCache()
    res = pansharpen(vrts["pan"], vrts["ms"], str(tmp_path / "o.tif"), "wv2", "gsa")
    fills = [w for w in res.warnings if "declares no nodata value its pixels can hold" in w]
    assert len(fills) == 2, res.warnings


@pytest.mark.parametrize("method,limit", [("mtf_glp_hpm", 0.025), ("ksdiff", 0.05)])
def test_a_nodata_edge_draws_no_fringe(data_dir, tmp_path, method, limit):
    """The fixture with its first 64 PAN columns (16 MS) made nodata: the 8 columns beside the hole stay close to the
    whole scene's output there. Holes were filled with the scene mean, which the filters carried across the edge
    (a fringe: 4.2 % / 7.3 % mean change with MTF-GLP-HPM / KSDiff; now 1.7 % / 3.7 %, like a raster edge)."""
    holed = {}
    for role, cut in (("pan", 64), ("ms", 16)):
        holed[role] = str(tmp_path / f"hole_{role}.tif")
        gdal.Translate(holed[role], str(data_dir / f"wv2_{role}.tif"))
        ds = gdal.Open(holed[role], gdal.GA_Update)
        for b in range(ds.RasterCount):
            band = ds.GetRasterBand(b + 1)
            arr = band.ReadAsArray()
            arr[:, :cut] = 0
            band.WriteArray(arr)
            band.SetNoDataValue(0)
        ds = None
    whole = pansharpen(str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), str(tmp_path / "w.tif"), "wv2",
                       method).output_path
    hole = pansharpen(holed["pan"], holed["ms"], str(tmp_path / "h.tif"), "wv2", method).output_path
    a = gdal.Open(whole).ReadAsArray().astype(float)[:, :, 64:72]
    b = gdal.Open(hole).ReadAsArray().astype(float)[:, :, 64:72]
    assert np.abs(a - b).mean() / a.mean() < limit


def test_hole_filling_does_not_depend_on_the_working_directory(data_dir, tmp_path, monkeypatch):
    """GDAL's FillNodata writes work files into the working directory by default: where that could not be written
    (QGIS started from its install folder, a cron job in /) the holes silently fell back to the scene mean (QA: 16,881
    values off by up to 45 DN on WorldView-2 pair 2). A working directory that no longer exists fails even as root."""
    pan, ms = str(data_dir / "wv2_nodata_pan.tif"), str(data_dir / "wv2_nodata_ms.tif")
    pansharpen(pan, ms, str(tmp_path / "here.tif"), sensor="wv2", method="mtf_glp_hpm")
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    pansharpen(pan, ms, str(tmp_path / "gone.tif"), sensor="wv2", method="mtf_glp_hpm")
    here, there = (gdal.Open(str(tmp_path / f)).ReadAsArray() for f in ("here.tif", "gone.tif"))
    np.testing.assert_array_equal(here, there)


def test_an_11_bit_ms_warped_with_an_alpha_band_keeps_its_holes(data_dir, tmp_path):
    """``gdalwarp -dstalpha -co NBITS=11`` stores the alpha as 0 / 2047: it was fused as a 5th spectral band (generic
    sensor: 5 output bands, the warped-out pixels data) with a warning about 8-bit products. An alpha holding only 0
    and 2^NBITS - 1 is a mask, as 0 / 65535 and 0 / 255 are."""
    gdal.Warp(str(tmp_path / "ms5.tif"), str(data_dir / "wv2_ms.tif"), dstAlpha=True, dstSRS="EPSG:3857",
              srcNodata="none", creationOptions=["NBITS=11"])
    ds = gdal.Open(str(tmp_path / "ms5.tif"))
    alpha = ds.GetRasterBand(5).ReadAsArray()
    ds = None
    assert set(np.unique(alpha).tolist()) == {0, 2047} and (alpha == 0).mean() > 0.01
    log = RecordingFeedback()
    res = pansharpen(str(data_dir / "wv2_pan.tif"), str(tmp_path / "ms5.tif"), str(tmp_path / "out.tif"), "generic",
                     "mtf_glp_hpm", feedback=log)
    assert any("MS band 5 is a transparency mask (alpha, only 0 and 2047)" in line and "hides are nodata" in line
               for line in log.lines)
    assert not any("flagged as alpha" in line for line in log.lines)
    out = gdal.Open(res.output_path)
    fused, nodata = out.ReadAsArray(), out.GetRasterBand(1).GetNoDataValue()
    assert out.RasterCount == 4 and (fused == nodata).all(axis=0).mean() > 0.005   # the reprojection's empty corners
