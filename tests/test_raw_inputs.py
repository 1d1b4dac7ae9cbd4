"""Raw images placed by RPC coefficients or ground control points only: refused alike by ksdiff:pansharpen and
ksdiff:assess, with gdalwarp commands that, followed, give a pair that fuses without grid or fill warnings."""
from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest
from osgeo import gdal
from test_input_containers import _rpc_of
from test_sensors_bands import Log

from ksdiff_qgis.engine.assessment import assess_full, assess_reduced
from ksdiff_qgis.engine.errors import InputError
from ksdiff_qgis.engine.pipeline import pansharpen


def _raw(src: Path, dst: Path, how: str) -> str:
    """A copy of ``src``'s pixels with no grid: placed by RPCs (``how`` 'rpc') or 5 ground control points ('gcp')."""
    ds = gdal.Open(str(src))
    out = gdal.GetDriverByName("GTiff").CreateCopy(str(dst), ds)
    out.SetGeoTransform((0.0, 1.0, 0.0, 0.0, 0.0, 1.0))
    out.SetProjection("")
    out = None
    Path(str(dst) + ".aux.xml").unlink(missing_ok=True)   # gdal.Unlink raises once a test turned exceptions on
    # rewritten without the grid: a GeoTIFF keeps a geotransform once set, so copy the bands into a fresh file
    fresh = gdal.GetDriverByName("GTiff").Create(str(dst), ds.RasterXSize, ds.RasterYSize, ds.RasterCount,
                                                 ds.GetRasterBand(1).DataType)
    for b in range(ds.RasterCount):
        fresh.GetRasterBand(b + 1).WriteArray(ds.GetRasterBand(b + 1).ReadAsArray())
        fresh.GetRasterBand(b + 1).SetDescription(ds.GetRasterBand(b + 1).GetDescription())
    if how == "rpc":
        fresh.SetMetadata(_rpc_of(str(src)), "RPC")
    else:
        gt, w, h = ds.GetGeoTransform(), ds.RasterXSize, ds.RasterYSize
        fresh.SetGCPs([gdal.GCP(gt[0] + c * gt[1], gt[3] + r * gt[5], 0, c, r)
                       for c, r in ((0, 0), (w, 0), (0, h), (w, h), (w / 2, h / 2))], ds.GetProjection())
    fresh = None
    return str(dst)


def test_the_rpc_refusal_gives_commands_that_make_a_pair_that_fuses_cleanly(data_dir, tmp_path):
    """It suggested gdalwarp -rpc -t_srs EPSG:… -r cubic: followed, the warped black corners were fused as data and
    the MS grid came out a fraction of an MS pixel off the PAN's (a grid-shift warning). The commands now carry the
    UTM zone, -tr (PAN's pixel size, ratio times it for the MS), -tap, one -te on whole MS pixels and -dstnodata 0."""
    pan = _raw(data_dir / "wv2_pan.tif", tmp_path / "pan_l1b.tif", "rpc")
    ms = _raw(data_dir / "wv2_ms.tif", tmp_path / "ms_l1b.tif", "rpc")
    with pytest.raises(InputError) as raised:
        pansharpen(pan, ms, str(tmp_path / "x.tif"), "wv2", "mtf_glp_hpm")
    said = str(raised.value)
    assert "is located by RPC coefficients only" in said and "the fusion needs both rasters on a map grid" in said
    commands = re.findall(r"gdalwarp -rpc [^(]*?_ortho\.tif", said)
    assert len(commands) == 2 and all("-dstnodata 0" in c and "-tap" in c for c in commands), said
    pan_tr = float(re.search(r"-tr (\S+)", commands[0]).group(1))
    ms_tr = float(re.search(r"-tr (\S+)", commands[1]).group(1))
    assert ms_tr == 4 * pan_tr and "EPSG:326" in commands[0], commands
    for c in commands:
        subprocess.run(shlex.split(c), cwd=tmp_path, check=True, capture_output=True)
    log = Log()
    pansharpen(str(tmp_path / "pan_l1b_ortho.tif"), str(tmp_path / "ms_l1b_ortho.tif"), str(tmp_path / "f.tif"),
               "wv2", "mtf_glp_hpm", feedback=log)
    warnings = [line for line in log.lines if line.startswith("WARNING")]
    assert not [w for w in warnings if "grid is shifted" in w or "nodata" in w.lower() and "MS" in w[:60]], warnings
    out = gdal.Open(str(tmp_path / "f.tif"))
    assert out.GetRasterBand(1).GetNoDataValue() == 0   # the warped corners are nodata, not fused


def test_assess_says_a_raw_pan_or_ms_first_worded_for_the_assessment(data_dir, tmp_path):
    """assess said "the fusion needs…" after an unrelated noise warning."""
    pan = _raw(data_dir / "wv2_pan.tif", tmp_path / "pan_l1b.tif", "rpc")
    ms = _raw(data_dir / "wv2_ms.tif", tmp_path / "ms_l1b.tif", "rpc")
    fused = pansharpen(str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), str(tmp_path / "f.tif"), "wv2",
                       "mtf_glp_hpm").output_path
    log = Log()
    with pytest.raises(InputError) as raised:
        assess_full(fused, pan, ms, "wv2", log)
    said = str(raised.value)
    assert said.startswith(f"the PAN raster {pan} is located by RPC coefficients only"), said
    assert "the assessment compares the rasters on a map grid" in said and "fusion" not in said, said
    assert "-dstnodata 0" in said and not log.lines, log.lines


def test_assess_says_a_gcp_only_fused_as_pansharpen_says_it(data_dir, tmp_path):
    """A GCP-only FUSED was said to be "in different coordinate reference systems (or one has none)"."""
    fused = _raw(data_dir / "wv2_ms.tif", tmp_path / "fused_gcp.tif", "gcp")
    with pytest.raises(InputError) as raised:
        assess_reduced(fused, str(data_dir / "wv2_ms.tif"), "wv2")
    said = str(raised.value)
    assert said.startswith(f"the FUSED raster {fused} is georeferenced by 5 ground control points only"), said
    assert "the assessment compares the rasters on a map grid" in said and "Warp (Reproject)" in said, said


def test_processing_assess_says_a_raw_input_before_the_sensor_guess(qgis_app, data_dir, tmp_path):
    import processing
    from qgis.core import QgsProcessingException

    fused = _raw(data_dir / "wv2_ms.tif", tmp_path / "fused_gcp.tif", "gcp")
    with pytest.raises(QgsProcessingException) as raised:
        processing.run("ksdiff:assess", {"FUSED": fused, "REFERENCE": str(data_dir / "wv2_ms.tif"),
                                         "OUTPUT_HTML": str(tmp_path / "a.html")})
    assert "is georeferenced by 5 ground control points only" in str(raised.value), raised.value
    assert "different coordinate reference systems" not in str(raised.value)
