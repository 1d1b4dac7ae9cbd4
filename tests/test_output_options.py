"""CREATE_OPTIONS checked before any work: a value GDAL does not recognise is refused with the values it takes, and
options GDAL cannot write are refused before the scene statistics (QA, 4200x4200 WV2 pair 2 mosaics)."""
from __future__ import annotations

import pytest
from osgeo import gdal

from ksdiff_qgis.engine import pipeline
from ksdiff_qgis.engine.errors import InputError
from ksdiff_qgis.engine.feedback import RecordingFeedback
from ksdiff_qgis.engine.pipeline import pansharpen


def _run(data_dir, out, options, cog=False, **kw):
    return pansharpen(str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), str(out), "wv2",
                      "mtf_glp_hpm", cog=cog, create_options=options, **kw)


@pytest.mark.parametrize("options, cog, said", [
    # QA: the user's COMPRESS replaced our DEFLATE, GDAL dropped it: 4720478 bytes instead of 973788, uncompressed
    ("COMPRESS=FOO", False, "COMPRESS=FOO: GDAL's GTiff driver does not take this value; choose one of NONE, LZW, "),
    ("BIGTIFF=MAYBE", False, "BIGTIFF=MAYBE: GDAL's GTiff driver does not take this value; choose one of YES, NO, "
                             "IF_NEEDED, IF_SAFER"),
    ("INTERLEAVE=LINE", False, "INTERLEAVE=LINE: GDAL's GTiff driver does not take this value; choose one of BAND, "
                               "PIXEL"),
    ("ZLEVEL=13", False, "ZLEVEL=13: GDAL's GTiff driver does not take this value (int: DEFLATE compression level"),
    ("PREDICTOR=5", False, "PREDICTOR=5: GDAL's GTiff driver does not take this value (int: Predictor Type "
                           "(1=default, 2=horizontal differencing, 3=floating point prediction))"),
    ("PREDICTOR=HORIZONTAL", True, "PREDICTOR=HORIZONTAL: GDAL's COG driver does not take this value; choose one of "
                                   "YES, NO, STANDARD (2), FLOATING_POINT (3)"),
    ("COMPRESS=LZW;NBITS=11", False, "write COMPRESS=LZW|NBITS=11 (creation options are separated by |)"),
    ("COMPRESS=ZSTD,ZSTD_LEVEL=22", True, "write COMPRESS=ZSTD|ZSTD_LEVEL=22"),
], ids=["compress", "bigtiff", "interleave", "zlevel", "predictor", "cog-predictor", "semicolon", "comma-cog"])
@pytest.mark.parametrize("exceptions", [False, True], ids=["plain", "gdal-exceptions"])
def test_a_value_gdal_does_not_recognise_is_refused_with_the_choices(data_dir, tmp_path, options, cog, said,
                                                                      exceptions):
    """A value GDAL ignores with a console warning dropped our default with it (COMPRESS=FOO: uncompressed), though
    the warning said the file was written as if it were not given. Now it is refused before any work, naming the
    values the option takes (from GDAL's creation option list), or the corrected text for a ; or , inside a value."""
    was = gdal.GetUseExceptions()
    (gdal.UseExceptions if exceptions else gdal.DontUseExceptions)()
    try:
        with pytest.raises(InputError) as refused:
            _run(data_dir, tmp_path / "o.tif", options, cog)
    finally:
        (gdal.UseExceptions if was else gdal.DontUseExceptions)()
    assert said in str(refused.value), str(refused.value)
    assert "/vsimem/" not in str(refused.value)   # the trial copy is no one's file
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("options, cog", [("COMPRESS=JPEG", False), ("COMPRESS=JPEG", True), ("COMPRESS=FOO", False),
                                          ("PREDICTOR=3", False)])
def test_options_gdal_cannot_write_are_refused_before_the_statistics(data_dir, tmp_path, monkeypatch, options, cog):
    """README promises a refusal before any work; QA: COMPRESS=JPEG on 16-bit data was refused only after the scene
    statistics and the self-check (8.8 s on a 4200x4200 mosaic), when the writer was made. The trial copy (the
    output's data type and band count) now runs before the statistics, and once."""
    from ksdiff_qgis.engine.raster_io import outputs

    tried = []

    def stats(*_a, **_k):
        raise AssertionError("the scene statistics ran before the creation options were checked")

    monkeypatch.setattr(pipeline, "estimate_scene_stats", stats)
    real = outputs.check_options
    monkeypatch.setattr(outputs, "check_options", lambda *a, **k: tried.append(a[2]) or real(*a, **k))
    with pytest.raises(InputError, match="cannot be written with these creation options"):
        _run(data_dir, tmp_path / "o.tif", options, cog)
    assert len(tried) == 1
    assert not list(tmp_path.iterdir())


def test_valid_options_are_tried_once_and_used(data_dir, tmp_path, monkeypatch):
    """Valid options (any case) are tried once, before the statistics, and the output is written with them."""
    from ksdiff_qgis.engine.raster_io import outputs

    tried = []
    real = outputs.check_options
    monkeypatch.setattr(outputs, "check_options", lambda *a, **k: tried.append(a[2]) or real(*a, **k))
    log = RecordingFeedback()
    res = _run(data_dir, tmp_path / "o.tif", "compress=lzw|BIGTIFF=NO", feedback=log)
    assert tried == ["GTiff"]
    assert gdal.Open(res.output_path).GetMetadata("IMAGE_STRUCTURE")["COMPRESSION"] == "LZW"
    assert not [line for line in log.lines if "CREATE_OPTIONS" in line], log.lines
    cog = _run(data_dir, tmp_path / "c.tif", "LEVEL=9", cog=True)
    assert tried == ["GTiff", "COG"] and gdal.Open(cog.output_path).GetMetadata("IMAGE_STRUCTURE")["LAYOUT"] == "COG"


@pytest.mark.parametrize("options", ["TARGET_SRS=EPSG:3857", "TILING_SCHEME=GoogleMapsCompatible"])
def test_cog_options_that_reproject_are_tried_on_a_georeferenced_copy(data_dir, tmp_path, options):
    """QA: COG with TARGET_SRS=EPSG:3857 (or TILING_SCHEME=GoogleMapsCompatible) was always refused — the 32x32 trial
    copy had no georeferencing, so GDAL could not 'compute a transformation between pixel/line and georeferenced
    coordinates'. The copy now lies over the output's extent in its CRS: the run writes a COG in Web Mercator that
    covers the plain output's footprint, its corners outside the scene nodata."""
    from osgeo import osr

    plain = gdal.Open(_run(data_dir, tmp_path / "plain.tif", "", cog=True).output_path)
    out = gdal.Open(_run(data_dir, tmp_path / "web.tif", options, cog=True).output_path)
    assert out.GetSpatialRef().GetAuthorityCode(None) == "3857"
    assert out.GetMetadata("IMAGE_STRUCTURE")["LAYOUT"] == "COG"
    band = out.GetRasterBand(1)
    assert band.GetNoDataValue() == plain.GetRasterBand(1).GetNoDataValue()
    # the plain output's centre, in Web Mercator, lies inside the reprojected one and is data there
    gt, web = plain.GetGeoTransform(), out.GetGeoTransform()
    to_web = osr.CoordinateTransformation(plain.GetSpatialRef(), out.GetSpatialRef())
    x, y, _ = to_web.TransformPoint(gt[0] + gt[1] * plain.RasterXSize / 2, gt[3] + gt[5] * plain.RasterYSize / 2)
    col, row = int((x - web[0]) / web[1]), int((y - web[3]) / web[5])
    assert 0 <= col < out.RasterXSize and 0 <= row < out.RasterYSize
    assert band.GetMaskBand().ReadAsArray(col, row, 1, 1)[0, 0] == 255


@pytest.mark.parametrize("options", ["TARGET_SRS=EPSG:4326", "TILING_SCHEME=GoogleMapsCompatible"])
def test_a_reprojected_cog_keeps_its_band_names_and_the_log_says_its_grid(data_dir, tmp_path, options):
    """QA134: a COG GDAL reprojects from an output without nodata (Landsat 8 crop) gained a 5th band, an alpha band,
    and lost its band names, while the log and KSDIFF_TILE_LAYOUT still said 256x256 px, 4 bands. The names (and
    colours) are kept in its .aux.xml, the COG stays valid, and the log says GDAL's grid and the added alpha band."""
    from osgeo_utils.samples.validate_cloud_optimized_geotiff import validate

    log = RecordingFeedback()
    res = pansharpen(str(data_dir / "l8_pan.tif"), str(data_dir / "l8_ms.tif"), str(tmp_path / "o.tif"), "landsat8",
                     "mtf_glp_hpm", cog=True, create_options=options, feedback=log)
    out = gdal.Open(res.output_path)
    names = [out.GetRasterBand(b).GetDescription() for b in range(1, out.RasterCount + 1)]
    assert names[:4] == res.band_names and out.RasterCount == 5, names
    assert out.GetRasterBand(5).GetColorInterpretation() == gdal.GCI_AlphaBand
    assert [out.GetRasterBand(b).GetColorInterpretation() for b in (1, 2, 3)] == [
        gdal.GCI_BlueBand, gdal.GCI_GreenBand, gdal.GCI_RedBand]
    assert validate(res.output_path)[:2] == ([], [])
    said = [line for line in log.lines if line.startswith("GDAL's COG driver reprojected the output")]
    auth = out.GetSpatialRef().GetAuthorityCode(None)
    assert said and f"{out.RasterXSize}x{out.RasterYSize} px in EPSG:{auth}" in said[0], log.lines
    assert "added band 5, an alpha band" in said[0]
    # the tag, in the file itself: the tiles on the PAN's grid, then GDAL's grid (it said "1 tile of 256x256 px (the
    # whole output)" of a 275x237 px file, as if it were the file's)
    tag = out.GetMetadataItem("KSDIFF_TILE_LAYOUT")
    assert tag.startswith("1 tile of 256x256 px") and "on the PAN's grid (256x256 px in EPSG:32616)" in tag, tag
    assert tag.endswith(f"GDAL's COG driver then warped it onto this file's grid ({options})"), tag
    assert "KSDIFF_TILE_LAYOUT" not in open(res.output_path + ".aux.xml", encoding="utf-8").read()


def test_a_reprojected_cog_with_nodata_adds_no_alpha_band(data_dir, tmp_path):
    """With a nodata value GDAL's warp marks outside the scene with it (ADD_ALPHA=NO): four named bands."""
    res = pansharpen(str(data_dir / "wv2_nodata_pan.tif"), str(data_dir / "wv2_nodata_ms.tif"), str(tmp_path / "o.tif"),
                     "wv2", "mtf_glp_hpm", cog=True, create_options="TARGET_SRS=EPSG:4326")
    out = gdal.Open(res.output_path)
    assert out.RasterCount == len(res.band_names)
    assert [out.GetRasterBand(b).GetDescription() for b in range(1, out.RasterCount + 1)] == res.band_names


def test_a_blocksize_below_the_cog_minimum_is_refused_with_the_minimum(data_dir, tmp_path):
    """QA134: BLOCKSIZE=64 was refused with 'does not take this value (int: Tile size in pixels)', GDAL's reason
    ('should be >= 128') left out."""
    with pytest.raises(InputError) as refused:
        _run(data_dir, tmp_path / "o.tif", "BLOCKSIZE=64", cog=True)
    assert "BLOCKSIZE=64: GDAL's COG driver does not take this value (int: Tile size in pixels, at least 128)" in str(
        refused.value), str(refused.value)
