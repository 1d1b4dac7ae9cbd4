"""Georeferencing written differently but meaning the same is read as the same (QA): rotation terms of float noise,
one CRS in another spelling; an MS across the antimeridian against a PAN in degrees; messages that say the fix.
All on the real WorldView-2 fixture (tests/data: PAN 256 x 256 at 0.5 m, MS 64 x 64, EPSG:32631)."""
from __future__ import annotations

import numpy as np
import pytest
from osgeo import gdal, osr

from ksdiff_qgis.engine.errors import InputError
from ksdiff_qgis.engine.feedback import RecordingFeedback
from ksdiff_qgis.engine.pipeline import pansharpen


def _copy(src: str, dst: str, gt=None, srs: str | None = None) -> str:
    """A GeoTIFF copy of ``src`` with geotransform ``gt(old)`` and/or CRS ``srs`` ('' removes it)."""
    ds = gdal.Translate(dst, src, format="GTiff")
    if gt is not None:
        ds.SetGeoTransform(gt(list(ds.GetGeoTransform())))
    if srs is not None:
        s = osr.SpatialReference()
        if srs:
            s.SetFromUserInput(srs)
        ds.SetProjection(s.ExportToWkt() if srs else "")
    ds = None
    return dst


@pytest.fixture()
def fixture_pair(data_dir):
    return str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif")


def _same_output(a, b) -> None:
    fa, fb = gdal.Open(a.output_path), gdal.Open(b.output_path)
    assert fa.GetGeoTransform() == fb.GetGeoTransform()
    assert np.array_equal(fa.ReadAsArray(), fb.ReadAsArray())


def test_rotation_terms_of_float_noise_are_north_up(fixture_pair, tmp_path):
    """gt[2], gt[4] = 1e-12 beside a 0.5 m pixel (some tools write them): the PAN was refused as "rotated or
    sheared ... must be north-up", the MS cubic-warped with "rotated by 0.0 degrees" (0.3-1 DN moved), ksdiff:assess
    refused it. Now read north-up as they are: the very output of the untouched pair, no warning about it."""
    from ksdiff_qgis.engine.raster_io import MaskedRaster, is_rotated

    pan, ms = fixture_pair
    tiny_pan = _copy(pan, str(tmp_path / "tiny_pan.tif"), lambda g: [g[0], g[1], 1e-12, g[3], -1e-12, g[5]])
    tiny_ms = _copy(ms, str(tmp_path / "tiny_ms.tif"), lambda g: [g[0], g[1], 1e-12, g[3], 1e-12, g[5]])
    ref = pansharpen(pan, ms, str(tmp_path / "ref.tif"), "wv2", "mtf_glp_hpm")
    for name, p, m in (("p", tiny_pan, ms), ("m", pan, tiny_ms), ("pm", tiny_pan, tiny_ms)):
        res = pansharpen(p, m, str(tmp_path / f"{name}.tif"), "wv2", "mtf_glp_hpm")
        assert not [w for w in res.warnings if "rotated" in w or "reprojected" in w], res.warnings
        _same_output(ref, res)
    assert MaskedRaster(tiny_ms, "MS").gt[2] == 0.0   # the assessment's reader takes it too
    # a real rotation still counts: a thousandth of a pixel across the raster is the line
    assert is_rotated((0, 0.5, 0.5e-3 / 255, 0, 0, -0.5), 256, 256)
    assert not is_rotated((0, 0.5, 0.5e-3 / 257, 0, 0, -0.5), 256, 256)


def test_one_crs_written_differently_is_not_reprojected(fixture_pair, tmp_path):
    """An MS in '+proj=utm +zone=31 +ellps=WGS84 +towgs84=0,0,0,0,0,0,0' against a PAN in EPSG:32631: it was
    "in another CRS than PAN: reprojected on the fly (cubic)" (0.32 DN changed, nothing moved). The same CRS now."""
    from ksdiff_qgis.engine.grid import same_crs

    pan, ms = fixture_pair
    other = _copy(ms, str(tmp_path / "ms_towgs84.tif"),
                  srs="+proj=utm +zone=31 +ellps=WGS84 +towgs84=0,0,0,0,0,0,0 +units=m +no_defs")
    ref = pansharpen(pan, ms, str(tmp_path / "ref.tif"), "wv2", "mtf_glp_hpm")
    res = pansharpen(pan, other, str(tmp_path / "o.tif"), "wv2", "mtf_glp_hpm")
    assert not [w for w in res.warnings if "another CRS" in w], res.warnings
    _same_output(ref, res)

    def wkt(text: str) -> str:
        s = osr.SpatialReference()
        s.SetFromUserInput(text)
        return s.ExportToWkt()

    # CRSs that really differ stay different: another datum (ED50), another zone, other units
    for text in ("EPSG:23031", "EPSG:32632", "+proj=utm +zone=31 +datum=WGS84 +units=us-ft", "EPSG:4326"):
        assert not same_crs(wkt("EPSG:32631"), wkt(text)), text


def test_missing_and_local_crs_say_how_to_fix(fixture_pair, tmp_path):
    """An MS without CRS beside a PAN with one, and an MS in a local (engineering) CRS: the messages said "has no
    coordinate reference system while the other has one" (no fix) and GDAL's "Cannot find coordinate operations from
    ENGCRS[...]"; both now say what to assign and where."""
    pan, ms = fixture_pair
    no_crs = _copy(ms, str(tmp_path / "ms_nocrs.tif"), srs="")
    with pytest.raises(InputError, match=r"MS raster has no coordinate reference system \(CRS\) while the PAN has one, "
                                         r"EPSG:32631,.*Assign Projection, or gdal_edit.py -a_srs"):
        pansharpen(pan, no_crs, str(tmp_path / "a.tif"), "wv2", "mtf_glp_hpm")
    local = _copy(ms, str(tmp_path / "ms_local.tif"))
    ds = gdal.Open(local, gdal.GA_Update)
    ds.SetProjection('LOCAL_CS["local metres",UNIT["metre",1],AXIS["Easting",EAST],AXIS["Northing",NORTH]]')
    ds = None
    with pytest.raises(InputError, match=r"MS raster is in a local \(engineering\) CRS, which cannot be related to "
                                         r"the other's.*Assign the MS raster the real CRS"):
        pansharpen(pan, local, str(tmp_path / "b.tif"), "wv2", "mtf_glp_hpm")
    assert not list(tmp_path.glob("[ab].tif"))


def test_ms_across_the_antimeridian_against_a_pan_beyond_180(fixture_pair, tmp_path):
    """A PAN in EPSG:4326 written past +180 degrees (179.9993 to 180.0005) and its MS in UTM zone 1S: the MS
    footprint GDAL guessed spanned 358 degrees of longitude and the pair was refused as "not overlapping". Now fused,
    the whole PAN covered."""
    pan, ms = fixture_pair
    dlat = 0.5 / 111320.0
    lon0 = 180.0 - 128 * dlat
    pan_ll = _copy(pan, str(tmp_path / "pan_ll.tif"), lambda g: [lon0, dlat, 0, -16.0, 0, -dlat], "EPSG:4326")
    ms_ll = _copy(ms, str(tmp_path / "ms_ll.tif"), lambda g: [lon0, 4 * dlat, 0, -16.0, 0, -4 * dlat], "EPSG:4326")
    ms_utm = str(tmp_path / "ms_utm1s.tif")
    gdal.Warp(ms_utm, ms_ll, dstSRS="EPSG:32701", resampleAlg="cubic")
    res = pansharpen(pan_ll, ms_utm, str(tmp_path / "o.tif"), "wv2", "mtf_glp_hpm")
    assert res.width > 200 and res.height > 200
    assert gdal.Open(res.output_path).GetGeoTransform()[0] > 179.99


def test_a_grid_shift_names_the_offset_both_ways(fixture_pair, tmp_path):
    """An MS moved by +3 PAN pixels (ratio 4) was said "shifted by (-1.00, -1.00) PAN pixels", the offset modulo an MS
    pixel, unexplained: the line now says it is within one MS pixel and names the same grid's other reading."""
    pan, ms = fixture_pair
    p = gdal.Open(pan).GetGeoTransform()   # the MS origin 3 PAN pixels right of and below the PAN's
    moved = _copy(ms, str(tmp_path / "ms_off3.tif"), lambda g: [p[0] + 3 * p[1], g[1], 0, p[3] + 3 * p[5], 0, g[5]])
    fb = RecordingFeedback()
    res = pansharpen(pan, moved, str(tmp_path / "o.tif"), "wv2", "mtf_glp_hpm", feedback=fb)
    # whole PAN pixels: an info line (a PAN cut at another pixel is normal, and fused exactly: test_pan_cut_phase)
    assert not [w for w in res.warnings if w.startswith("The MS grid is shifted")]
    line = [w for w in fb.lines if w.startswith("The MS grid is shifted")]
    assert line and "by whole PAN pixels (-1, -1) (x, y)" in line[0], fb.lines
    assert "(the same grid as a shift by (+3, +3)): the PAN and the MS were cut" in line[0]
    # the MS's content is 3 PAN pixels off its PAN: the offset measured on the scene still warns
    assert any("PAN pixels apart" in w for w in res.warnings), res.warnings


def _meridian_180(epsg: int, lat: float) -> tuple[float, float]:
    """(easting, northing) of longitude 180 at latitude ``lat`` in UTM ``epsg``."""
    geo, utm = osr.SpatialReference(), osr.SpatialReference()
    geo.ImportFromEPSG(4326)
    utm.ImportFromEPSG(epsg)
    for s in (geo, utm):
        s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return osr.CoordinateTransformation(geo, utm).TransformPoint(180.0, lat)[:2]


@pytest.mark.parametrize("side", [180.0, -180.0])
@pytest.mark.parametrize("epsg", [32760, 32701])
def test_an_ms_whose_centre_pixel_straddles_the_antimeridian(fixture_pair, tmp_path, side, epsg):
    """QA: a PAN in EPSG:4326 across the antimeridian (179.9988 to 180.0012, or -180.0012 to -179.9988) and its MS
    in UTM 60S whose centre pixel spans 180 degrees: the MS pixel measured ~360 degrees wide (its three corners taken
    as +179.99999 and -179.99999), ratio 17915, refused as "overlap on only 533 x 533 PAN pixels: too small to fuse".
    The same MS moved 100 m west fused. Now ratio 4, the whole PAN fused, either way the PAN's longitudes are written
    and in either UTM zone beside the antimeridian. (The pair as QA made it: the real pair placed in UTM, the meridian
    through the middle of the MS's centre pixel, column 32; the PAN warped to degrees.)"""
    pan, ms = fixture_pair
    e180, n = _meridian_180(epsg, -16.0)
    x0, y0 = e180 - 65.0, n + 64.0
    ms_utm = _copy(ms, str(tmp_path / "ms_utm.tif"), lambda g: [x0, 2.0, 0, y0, 0, -2.0], f"EPSG:{epsg}")
    pan_utm = _copy(pan, str(tmp_path / "pan_utm.tif"), lambda g: [x0, 0.5, 0, y0, 0, -0.5], f"EPSG:{epsg}")
    step = 4.5e-6   # 0.5 m of latitude; 0.001 degrees (107 m of longitude, 111 m of latitude) inside the MS's 128 m
    pan_ll = str(tmp_path / "pan_ll.tif")
    gdal.Warp(pan_ll, pan_utm, dstSRS="EPSG:4326", xRes=step, yRes=step, resampleAlg="cubic",
              outputBounds=(side - 0.0005, -16.0005, side + 0.0005, -15.9995))
    res = pansharpen(pan_ll, ms_utm, str(tmp_path / "o.tif"), "wv2", "mtf_glp_hpm")
    assert res.ratio == 4
    size = gdal.Open(pan_ll)
    assert (res.width, res.height) == (size.RasterXSize, size.RasterYSize) == (222, 222)
    out = gdal.Open(res.output_path)
    assert out.GetGeoTransform()[0] == pytest.approx(side - 0.0005)
    assert np.all(out.ReadAsArray() > 0)   # every pixel fused from the MS, none a fill


def _written_at(src: str, dst: str, lon0: float, step: float) -> str:
    return _copy(src, dst, lambda g: [lon0, step, 0, -17.0, 0, -step], "EPSG:4326")


@pytest.mark.parametrize("pan_lon0,ms_lon0", [(180.0 - 64 * 4.5e-6, -180.0 - 64 * 4.5e-6),
                                              (-180.0 - 64 * 4.5e-6, 180.0 - 64 * 4.5e-6),
                                              (180.0001, -179.9999)])
def test_a_pair_in_degrees_written_once_past_180_and_once_past_minus_180(fixture_pair, tmp_path, pan_lon0,
                                                                         ms_lon0):
    """QA: PAN and MS both in EPSG:4326 at one place across the antimeridian, written once as +180 and once as -180
    (PAN 179.9986 to 180.0014, MS -180.0014 to -179.9986): refused as "do not overlap", while an MS in another CRS at
    that place was moved by 360 degrees on its own. Now the MS is moved the same way, pixel for pixel, with a warning
    that gives the command writing it in the PAN's longitudes: the very output of the pair written alike."""
    pan, ms = fixture_pair
    step = 4.5e-6
    pan_ll = _written_at(pan, str(tmp_path / "pan.tif"), pan_lon0, step)
    ms_other = _written_at(ms, str(tmp_path / "ms_other.tif"), ms_lon0, 4 * step)
    ms_alike = _written_at(ms, str(tmp_path / "ms_alike.tif"), pan_lon0, 4 * step)
    ref = pansharpen(pan_ll, ms_alike, str(tmp_path / "ref.tif"), "wv2", "mtf_glp_hpm")
    res = pansharpen(pan_ll, ms_other, str(tmp_path / "o.tif"), "wv2", "mtf_glp_hpm")
    _same_output(ref, res)
    moved = [w for w in res.warnings if "longitudes are written 360 degrees apart" in w]
    assert len(moved) == 1, res.warnings
    way = "east" if pan_lon0 > ms_lon0 else "west"
    assert f"the MS is placed 360 degrees {way}, in the PAN's longitudes, pixel for pixel (no resampling)" in moved[0]
    assert not [w for w in ref.warnings if "longitudes" in w]
    # the command it gives writes the MS so: fused alike, without the warning
    command = moved[0].split("gdal_edit.py -a_ullr ")[1].split()
    ulx, uly, lrx, lry = map(float, command[:4])
    assert command[4] == ms_other
    gdal.Translate(str(tmp_path / "ms_fixed.tif"), ms_other, outputBounds=[ulx, uly, lrx, lry])
    fixed = pansharpen(pan_ll, str(tmp_path / "ms_fixed.tif"), str(tmp_path / "f.tif"), "wv2", "mtf_glp_hpm")
    _same_output(ref, fixed)
    assert not [w for w in fixed.warnings if "longitudes" in w]


def test_a_pair_in_degrees_apart_on_the_globe_too_is_still_refused(fixture_pair, tmp_path):
    """Only a pair that overlaps once moved by 360 degrees is moved: an MS 1 degree away from the PAN across the
    antimeridian keeps the refusal naming both extents as written."""
    pan, ms = fixture_pair
    pan_ll = _written_at(pan, str(tmp_path / "pan.tif"), 179.9995, 4.5e-6)
    far = _written_at(ms, str(tmp_path / "ms.tif"), -179.0, 4 * 4.5e-6)
    with pytest.raises(InputError, match=r"do not overlap: in the PAN's CRS \(EPSG:4326\) the PAN covers x 179.9995 "
                                         r"to 180.0006.*the MS x -179 to -178.99"):
        pansharpen(pan_ll, far, str(tmp_path / "o.tif"), "wv2", "mtf_glp_hpm")


@pytest.mark.parametrize("noise_x,noise_y", [(1.3e-5, 1.3e-5), (-1.3e-5, -1.3e-5), (1.3e-5, -1.3e-5),
                                             (-1.3e-5, 1.3e-5)])
def test_an_equal_whole_pixel_move_reads_alike_on_both_axes(fixture_pair, tmp_path, noise_x, noise_y):
    """QA: an MS moved 2 PAN pixels east and 2 south (ratio 4, half an MS pixel) was said "shifted by whole PAN pixels
    (+2, -2) (x, y) ... (the same grid as a shift by (-2, +2))", where moves of 0.25, 0.5 and 1.5 pixels read (+k, +k):
    the georeference's noise (2.00003 and 1.99998 pixels, 13 micrometres) fell on either side of half-way, which
    round() took to opposite MS pixels. Now half-way is +2 on both axes, whatever the noise's signs."""
    pan, ms = fixture_pair
    p = gdal.Open(pan).GetGeoTransform()
    moved = _copy(ms, str(tmp_path / "ms_off2.tif"),
                  lambda g: [p[0] + 2 * p[1] + noise_x, g[1], 0, p[3] + 2 * p[5] + noise_y, 0, g[5]])
    fb = RecordingFeedback()
    pansharpen(pan, moved, str(tmp_path / "o.tif"), "wv2", "mtf_glp_hpm", feedback=fb)
    line = [w for w in fb.lines if w.startswith("The MS grid is shifted")]
    assert len(line) == 1, fb.lines
    assert "by whole PAN pixels (+2, +2) (x, y) against the PAN grid (the same grid as a shift by (-2, -2))" in line[0]


def test_a_ratio_of_two_and_a_half_rounds_up(fixture_pair, tmp_path):
    """QA: an MS of 1.25 m over the 0.5 m PAN (its pixel written as the PAN's 0.49999345509841 m times 2.5) measures
    2.499999999999999 and was resampled to ratio 2 (SENSOR auto then offered Landsat 8's ratio-2 network on WorldView-2
    data), where README says "the nearest whole ratio, half up": 3 now."""
    pan, ms = fixture_pair
    p, size = gdal.Open(pan).GetGeoTransform(), 0.49999345509841 * 2.5
    coarse = str(tmp_path / "ms_2.5.tif")
    gdal.Warp(coarse, ms, xRes=size, yRes=size, resampleAlg="cubic",
              outputBounds=(p[0], p[3] + 256 * p[5], p[0] + 256 * p[1], p[3]))
    res = pansharpen(pan, coarse, str(tmp_path / "o.tif"), "wv2", "mtf_glp_hpm")
    assert res.ratio == 3
    assert any(w.startswith("The MS/PAN pixel size ratio is 2.5 x 2.5, not one whole number") and
               w.endswith("resampled on the fly (cubic) to 3 PAN pixels per MS pixel.") for w in res.warnings), \
        res.warnings
