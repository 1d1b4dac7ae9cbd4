"""Inputs as products come: RPC-only rasters, pairs without a CRS, sheared grids, NBITS behind a VRT or NITF, and the MS
metadata the output keeps (QA 2026-12: each was refused wrongly, silent or lost)."""
from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal, osr

from ksdiff_qgis.engine.feedback import RecordingFeedback
from ksdiff_qgis.engine.pipeline import pansharpen
from ksdiff_qgis.engine.raster_io import open_raster

SAMPLE = Path(__file__).resolve().parent.parent / "ksdiff_qgis" / "resources" / "sample"


def _pixels_only(src: str, dst: str, driver: str = "GTiff") -> str:
    """``src``'s pixels, band names and nodata in a new raster with neither geotransform nor CRS."""
    s = gdal.Open(src)
    out = gdal.GetDriverByName(driver).Create(dst, s.RasterXSize, s.RasterYSize, s.RasterCount,
                                              s.GetRasterBand(1).DataType)
    for i in range(1, s.RasterCount + 1):
        band = out.GetRasterBand(i)
        band.WriteArray(s.GetRasterBand(i).ReadAsArray())
        band.SetDescription(s.GetRasterBand(i).GetDescription())
        if s.GetRasterBand(i).GetNoDataValue() is not None:
            band.SetNoDataValue(s.GetRasterBand(i).GetNoDataValue())
    out = None
    return dst


def _rpc_of(src: str) -> dict:
    """RPC coefficients that place ``src``'s pixels where its geotransform does (an affine fit in lon/lat)."""
    s = gdal.Open(src)
    gt, w, h = s.GetGeoTransform(), s.RasterXSize, s.RasterYSize
    utm, wgs = osr.SpatialReference(wkt=s.GetProjection()), osr.SpatialReference()
    wgs.ImportFromEPSG(4326)
    for srs in (utm, wgs):
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    ct = osr.CoordinateTransformation(utm, wgs)
    pts = np.array([(*ct.TransformPoint(gt[0] + c * gt[1], gt[3] + r * gt[5])[:2], r, c)
                    for r in np.linspace(0, h, 5) for c in np.linspace(0, w, 5)])
    lon0, lat0 = pts[:, 0].mean(), pts[:, 1].mean()
    lon_s, lat_s = np.ptp(pts[:, 0]) / 2, np.ptp(pts[:, 1]) / 2
    a = np.c_[np.ones(len(pts)), (pts[:, 0] - lon0) / lon_s, (pts[:, 1] - lat0) / lat_s]
    line = np.linalg.lstsq(a, (pts[:, 2] - h / 2) / (h / 2), rcond=None)[0]
    samp = np.linalg.lstsq(a, (pts[:, 3] - w / 2) / (w / 2), rcond=None)[0]

    def coeffs(c):
        return " ".join(str(v) for v in [*c, *[0] * 17])

    one = " ".join(["1"] + ["0"] * 19)
    return {"LINE_OFF": str(h / 2), "SAMP_OFF": str(w / 2), "LAT_OFF": str(lat0), "LONG_OFF": str(lon0),
            "HEIGHT_OFF": "0", "LINE_SCALE": str(h / 2), "SAMP_SCALE": str(w / 2), "LAT_SCALE": str(lat_s),
            "LONG_SCALE": str(lon_s), "HEIGHT_SCALE": "100", "LINE_NUM_COEFF": coeffs(line),
            "LINE_DEN_COEFF": one, "SAMP_NUM_COEFF": coeffs(samp), "SAMP_DEN_COEFF": one}


# 1. RPC-only -------------------------------------------------------------------------------------------

def test_an_rpc_only_pair_is_refused_with_the_orthorectification_fix(qgis_app, pair, tmp_path):
    """A raw image placed by RPC coefficients only (WorldView L1B, Pléiades primary): refused as such, with the
    gdalwarp -rpc fix (it said "has no georeferencing (no geotransform, no CRS)", while QGIS draws it in place)."""
    import processing
    from qgis.core import QgsProcessingException

    paths = {}
    for role in ("PAN", "MS"):
        paths[role] = _pixels_only(pair[role], str(tmp_path / f"{role.lower()}_rpc.tif"))
        ds = gdal.Open(paths[role], gdal.GA_Update)
        ds.SetMetadata(_rpc_of(pair[role]), "RPC")
        ds = None
    out = str(tmp_path / "o.tif")
    with pytest.raises(QgsProcessingException,
                       match=r"RPC coefficients only.*Orthorectify PAN and MS alike.*gdalwarp -rpc -t_srs "
                             r"EPSG:\d+ -tr .*-tap.*-dstnodata 0.*RPC_DEM="):
        processing.run("ksdiff:pansharpen", {**pair, **paths, "OUTPUT": out})
    assert not os.path.exists(out) and not [f for f in os.listdir(tmp_path) if "partial" in f]


# 4. no CRS on either input ------------------------------------------------------------------------------

@pytest.mark.parametrize("how", ["geotransform", "world file"])
def test_a_pair_without_crs_is_fused_with_a_warning(pair, tmp_path, how):
    """Neither input has a CRS (a bare geotransform, or a .tfw world file whose .prj GDAL does not read for a
    GeoTIFF): fused as before, but the warning says the output has no CRS and how to assign one (it was silent)."""
    paths = {}
    for role in ("PAN", "MS"):
        src = gdal.Open(pair[role])
        dst = _pixels_only(pair[role], str(tmp_path / f"{role.lower()}.tif"))
        gt = src.GetGeoTransform()
        if how == "geotransform":
            ds = gdal.Open(dst, gdal.GA_Update)
            ds.SetGeoTransform(gt)
            ds = None
        else:   # a world file gives the centre of the top-left pixel
            Path(dst[:-4] + ".tfw").write_text("\n".join(str(v) for v in (gt[1], gt[4], gt[2], gt[5],
                                                                        gt[0] + gt[1] / 2, gt[3] + gt[5] / 2)))
            srs = osr.SpatialReference(wkt=src.GetProjection())
            srs.MorphToESRI()
            Path(dst[:-4] + ".prj").write_text(srs.ExportToWkt())
        paths[role] = dst
    res = pansharpen(paths["PAN"], paths["MS"], str(tmp_path / "o.tif"), "wv2", "mtf_glp_hpm")
    said = [w for w in res.warnings if w.startswith("Neither the PAN nor the MS raster has a coordinate reference")]
    assert len(said) == 1 and "the output has no CRS" in said[0] and "gdal_edit.py -a_srs" in said[0], res.warnings
    out = gdal.Open(res.output_path)
    assert out.GetProjection() == "" and out.GetGeoTransform()[1] == gdal.Open(pair["PAN"]).GetGeoTransform()[1]


# 5. a sheared and rotated MS ----------------------------------------------------------------------------

def test_a_rotated_and_sheared_ms_is_not_called_only_rotated(pair, tmp_path):
    """Rows turned 10 degrees, columns 10 degrees the other way (a non-orthogonal grid): the warning says rotated or
    sheared and the angles (it said "rotated by 10.0 degrees"); a pure rotation still says rotated by its angle."""
    a = math.radians(10)
    ms = {}
    for name, turn in (("sheared", lambda px, py: (px * math.cos(a), py * math.sin(a), px * math.sin(a),
                                                   py * math.cos(a))),
                       ("rotated", lambda px, py: (px * math.cos(a), -py * math.sin(a), px * math.sin(a),
                                                   py * math.cos(a)))):
        ms[name] = str(tmp_path / f"{name}.tif")
        ds = gdal.Translate(ms[name], pair["MS"])
        gt = ds.GetGeoTransform()
        g1, g2, g4, g5 = turn(gt[1], gt[5])
        ds.SetGeoTransform((gt[0], g1, g2, gt[3], g4, g5))
        ds = None
    res = pansharpen(pair["PAN"], ms["sheared"], str(tmp_path / "s.tif"), "wv2", "mtf_glp_hpm")
    assert any(w.startswith("The MS raster is rotated or sheared (its rows run 10.0 degrees off east-west and meet "
                            "its columns at 110.0 degrees") for w in res.warnings), res.warnings
    res = pansharpen(pair["PAN"], ms["rotated"], str(tmp_path / "r.tif"), "wv2", "mtf_glp_hpm")
    assert any(w.startswith("The MS raster is rotated by 10.0 degrees against north-up") for w in res.warnings)


# 3. NBITS behind a container ----------------------------------------------------------------------------

def _separate_vrt(ms: str, folder: Path) -> str:
    """gdalbuildvrt -separate of ``ms``'s bands written as one GeoTIFF each."""
    bands = [str(folder / f"band{b}.tif") for b in range(1, gdal.Open(ms).RasterCount + 1)]
    for b, path in enumerate(bands, start=1):
        gdal.Translate(path, ms, bandList=[b])
    vrt = str(folder / "separate.vrt")
    gdal.BuildVRT(vrt, bands, separate=True)
    return vrt


@pytest.mark.parametrize("container", ["vrt", "vrt -separate", "nitf"])
def test_nbits_is_found_behind_a_vrt_or_nitf(tmp_path, container):
    """The 11-bit WorldView-2 MS as a user's VRT (gdalbuildvrt, also -separate of band files) or NITF (ABPP=11):
    GDAL reports no NBITS there, and the output took the 16-bit range (values up to 65535 where the GeoTIFF's are
    clipped to 2047). Now the bit depth comes from the VRT's sources or the NITF's ABPP: the output is the GeoTIFF's."""
    pan, ms = str(SAMPLE / "demo_pan.tif"), str(tmp_path / "ms.tif")
    shutil.copy(SAMPLE / "demo_ms.tif", ms)
    if container == "vrt":
        other = str(tmp_path / "ms.vrt")
        gdal.BuildVRT(other, [ms])
    elif container == "vrt -separate":
        other = _separate_vrt(ms, tmp_path)
    else:
        other = str(tmp_path / "ms.ntf")
        gdal.Translate(other, ms, format="NITF", creationOptions=["ABPP=11"])
    assert gdal.Open(other).GetRasterBand(1).GetMetadataItem("NBITS", "IMAGE_STRUCTURE") is None
    assert open_raster(other, "MS")[1].nbits == 11
    ref = pansharpen(pan, ms, str(tmp_path / "ref.tif"), "wv2", "mtf_glp_hpm")
    log = RecordingFeedback()
    got = pansharpen(pan, other, str(tmp_path / "got.tif"), "wv2", "mtf_glp_hpm", feedback=log)
    a, b = gdal.Open(ref.output_path).ReadAsArray(), gdal.Open(got.output_path).ReadAsArray()
    assert a.max() == b.max() == 2047 and any("above 2047" in line for line in log.lines), (b.max(), log.lines)
    if container != "nitf":   # NITF rounds the corner coordinates: its grid is a fraction of a pixel off
        assert np.array_equal(a, b)


def test_nbits_behind_a_vrt_with_a_mask_band(tmp_path):
    """A VRT whose first band carries its own <MaskBand> (a source band 'mask,1'): the mask's VRTRasterBand is no band
    of the dataset — reading it as one took 'mask,1' for a band number (ValueError) or shifted the bands after it."""
    ms = str(tmp_path / "ms.tif")
    shutil.copy(SAMPLE / "demo_ms.tif", ms)
    vrt = str(tmp_path / "masked.vrt")
    gdal.BuildVRT(vrt, [ms])
    text = open(vrt).read()
    mask = ('<MaskBand><VRTRasterBand dataType="Byte"><SimpleSource><SourceFilename relativeToVRT="1">ms.tif'
            '</SourceFilename><SourceBand>mask,1</SourceBand></SimpleSource></VRTRasterBand></MaskBand>')
    first_band_end = text.index("</VRTRasterBand>")
    open(vrt, "w").write(text[:first_band_end] + mask + text[first_band_end:])
    assert gdal.Open(vrt).GetRasterBand(1).GetMaskFlags() != gdal.GMF_ALL_VALID   # GDAL reads the mask band
    assert open_raster(vrt, "MS")[1].nbits == 11


def test_nbits_of_a_vrt_needs_every_source_to_agree(tmp_path):
    """A VRT's NBITS is its sources' only when all of them say the same and hand their values on unchanged: a band
    file without NBITS, or a scaled source, leaves the type's range."""
    ms = str(tmp_path / "ms.tif")
    shutil.copy(SAMPLE / "demo_ms.tif", ms)
    vrt = _separate_vrt(ms, tmp_path)
    gdal.Translate(str(tmp_path / "band4.tif"), ms, bandList=[4], creationOptions=["NBITS=16"])
    assert open_raster(vrt, "MS")[1].nbits is None
    scaled = str(tmp_path / "scaled.vrt")
    gdal.Translate(scaled, ms, format="VRT", scaleParams=[[0, 2047, 0, 4094]])
    assert open_raster(scaled, "MS")[1].nbits is None


# 2. the MS's metadata on the output ---------------------------------------------------------------------

@pytest.mark.parametrize("cog", [False, True])
def test_the_output_keeps_the_ms_units_band_metadata_and_imagery(data_dir, tmp_path, cog):
    """The output keeps, per band, its MS band's unit type and metadata (WAVELENGTH) — also with MS_BANDS reordering
    them — and the MS's default and IMAGERY metadata, without the MS's statistics or its other domains (only band
    names, colours and scale/offset were kept)."""
    pan, ms = str(tmp_path / "pan.tif"), str(tmp_path / "ms.tif")
    shutil.copy(data_dir / "l8_pan.tif", pan)
    shutil.copy(data_dir / "l8_ms.tif", ms)
    ds = gdal.Open(ms, gdal.GA_Update)
    ds.SetMetadata({**ds.GetMetadata(), "SPACECRAFT_ID": "LANDSAT_8"})
    ds.SetMetadata({"SATELLITEID": "LANDSAT_8", "CLOUDCOVER": "0.1"}, "IMAGERY")
    ds.SetMetadata({"MY_KEY": "my value"}, "CUSTOMDOMAIN")
    for b in range(1, 5):
        band = ds.GetRasterBand(b)
        band.SetUnitType("reflectance")
        band.SetMetadata({"WAVELENGTH": str(400 + 100 * b)})
        band.ComputeStatistics(False)   # STATISTICS_* of the MS's values: not the output's
    ds = None
    res = pansharpen(pan, ms, str(tmp_path / "o.tif"), "landsat8", "mtf_glp_hpm", ms_bands=[4, 3, 2, 1], cog=cog)
    out = gdal.Open(res.output_path)
    assert out.GetMetadataItem("SPACECRAFT_ID") == "LANDSAT_8"
    assert out.GetMetadataItem("SOURCE").startswith("Landsat 8")
    assert out.GetMetadata("IMAGERY") == {"SATELLITEID": "LANDSAT_8", "CLOUDCOVER": "0.1"}
    assert not out.GetMetadata("CUSTOMDOMAIN") and not out.GetMetadata("RPC")
    for i, b in enumerate([4, 3, 2, 1], start=1):
        band = out.GetRasterBand(i)
        assert band.GetUnitType() == "reflectance"
        assert band.GetMetadata() == {"WAVELENGTH": str(400 + 100 * b)}, band.GetMetadata()
    assert out.GetMetadataItem("LAYOUT", "IMAGE_STRUCTURE") == ("COG" if cog else None)


@pytest.mark.parametrize("cog", [False, True])
def test_metadata_of_the_input_file_and_huge_values_are_not_copied(data_dir, tmp_path, cog):
    """QA134: the output kept the MS file's TIFFTAG_DOCUMENTNAME (a local path), a FOOTPRINT of the whole input tile
    and a 200,000-character NC_GLOBAL#history. Those are left out (the long one named in the log); what describes
    the data (sensor, artist, IMAGERY, band WAVELENGTH) is kept."""
    pan, ms = str(tmp_path / "pan.tif"), str(tmp_path / "ms.tif")
    shutil.copy(data_dir / "l8_pan.tif", pan)
    shutil.copy(data_dir / "l8_ms.tif", ms)
    ds = gdal.Open(ms, gdal.GA_Update)
    ds.SetMetadata({**ds.GetMetadata(), "TIFFTAG_DOCUMENTNAME": "/home/alice/secret/ms.tif",
                    "TIFFTAG_HOSTCOMPUTER": "alice-laptop", "TIFFTAG_PAGENAME": "page 1",
                    "FOOTPRINT": "POLYGON((0 0,1 0,1 1,0 0))", "TIFFTAG_ARTIST": "USGS",
                    "SPACECRAFT_ID": "LANDSAT_8", "NC_GLOBAL#history": "x" * 200_000})
    ds.SetMetadata({"SATELLITEID": "LANDSAT_8"}, "IMAGERY")
    ds.GetRasterBand(1).SetMetadata({"WAVELENGTH": "480", "NOTES": "y" * 5000})
    ds = None
    log = RecordingFeedback()
    res = pansharpen(pan, ms, str(tmp_path / "o.tif"), "landsat8", "mtf_glp_hpm", cog=cog, feedback=log)
    out = gdal.Open(res.output_path)
    md = out.GetMetadata()
    for key in ("TIFFTAG_DOCUMENTNAME", "TIFFTAG_HOSTCOMPUTER", "TIFFTAG_PAGENAME", "FOOTPRINT", "NC_GLOBAL#history"):
        assert key not in md, key
    assert md["SPACECRAFT_ID"] == "LANDSAT_8" and md["TIFFTAG_ARTIST"] == "USGS"
    assert out.GetMetadata("IMAGERY") == {"SATELLITEID": "LANDSAT_8"}
    assert out.GetRasterBand(1).GetMetadata() == {"WAVELENGTH": "480"}
    said = [line for line in log.lines if line.startswith("not copied from the MS's metadata")]
    assert said == ["not copied from the MS's metadata, longer than 4096 characters: NC_GLOBAL#history (200,000 "
                    "characters), band 1 NOTES (5,000 characters)"], log.lines


def test_a_cogs_aux_xml_holds_imagery_alone(data_dir, tmp_path):
    """QA134: README says a COG's .aux.xml holds its IMAGERY metadata alone; GDAL's PAM repeated every band's name
    there too."""
    import xml.etree.ElementTree as ET

    ms = str(tmp_path / "ms.tif")
    shutil.copy(data_dir / "l8_ms.tif", ms)
    ds = gdal.Open(ms, gdal.GA_Update)
    ds.SetMetadata({"SATELLITEID": "LANDSAT_8"}, "IMAGERY")
    ds = None
    res = pansharpen(str(data_dir / "l8_pan.tif"), ms, str(tmp_path / "o.tif"), "landsat8", "mtf_glp_hpm", cog=True)
    root = ET.parse(res.output_path + ".aux.xml").getroot()
    assert [child.tag for child in root] == ["Metadata"], ET.tostring(root)
    out = gdal.Open(res.output_path)
    assert out.GetMetadata("IMAGERY") == {"SATELLITEID": "LANDSAT_8"}
    assert [out.GetRasterBand(b).GetDescription() for b in range(1, 5)] == res.band_names
