"""The CRS of an extent (``extent_wkt``, the batch list's column of that name) as EXTENT takes one: an authority code
(EPSG:32631), a WKT or a PROJ string (QA round 57: ``EPSG:32631`` failed every scene with SWIG's TypeError from
CoordinateTransformation.TransformPoint, as aoi.py read it with ImportFromWkt and ignored the error). Text that is no
CRS, or a geometry's WKT in its place, stops a batch before any scene starts, naming the row, column and value."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fixture_helpers import lonlat_window, run_cli
from osgeo import gdal, osr

from ksdiff_qgis import batch
from ksdiff_qgis.engine.errors import InputError
from ksdiff_qgis.engine.pipeline import pansharpen
from ksdiff_qgis.engine.scenes import SceneListError, read_scenes

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
PAN, MS = DATA / "wv2_pan.tif", DATA / "wv2_ms.tif"


def test_an_authority_code_or_proj_string_places_the_extent_as_its_wkt_does(tmp_path):
    box = lonlat_window(PAN)
    wkt = osr.SpatialReference()
    wkt.ImportFromEPSG(4326)
    ref = pansharpen(str(PAN), str(MS), str(tmp_path / "wkt.tif"), "wv2", "exp", extent=box,
                     extent_wkt=wkt.ExportToWkt())
    want = gdal.Open(ref.output_path)
    for i, crs in enumerate(("EPSG:4326", "+proj=longlat +datum=WGS84 +no_defs")):
        res = pansharpen(str(PAN), str(MS), str(tmp_path / f"{i}.tif"), "wv2", "exp", extent=box, extent_wkt=crs)
        got = gdal.Open(res.output_path)
        assert got.GetGeoTransform() == want.GetGeoTransform(), crs
        assert np.array_equal(got.ReadAsArray(), want.ReadAsArray()), crs


@pytest.mark.parametrize("text, says", [
    ("garbage", r'extent_wkt "garbage" is no CRS: give the CRS the extent \(xmin ymin xmax ymax\) is in as '
                r"EPSG:32631, a WKT or a PROJ string"),
    ("32631", r'extent_wkt "32631" is no CRS \(EPSG:32631\?\)'),
    ("EPSG:99999", r'extent_wkt "EPSG:99999" is no CRS \(PROJ: .*crs not found\)'),
    ("POLYGON((593380 5747400,593500 5747400,593500 5747520,593380 5747400))",
     r'extent_wkt "POLYGON\(\(593380 .*\)\)" is a geometry, not a CRS: extent_wkt names the CRS the extent '
     r".*e\.g\. extent 593300 5747400 593450 5747550 with extent_wkt EPSG:32631"),
])
def test_the_engine_refuses_text_that_is_no_crs_before_writing(tmp_path, text, says):
    gt = gdal.Open(str(PAN)).GetGeoTransform()
    box = (gt[0] + 10, gt[3] - 100, gt[0] + 100, gt[3] - 10)
    out = tmp_path / "o.tif"
    with pytest.raises(InputError, match=says):
        pansharpen(str(PAN), str(MS), str(out), "wv2", "exp", extent=box, extent_wkt=text)
    assert list(tmp_path.iterdir()) == []


def test_metres_under_a_crs_in_degrees_are_refused_in_words(tmp_path):
    """Projected coordinates under EPSG:4326 transformed to inf: an OverflowError per scene."""
    gt = gdal.Open(str(PAN)).GetGeoTransform()
    box = (gt[0] + 10, gt[3] - 100, gt[0] + 100, gt[3] - 10)
    with pytest.raises(InputError, match=r"EXTENT \(x 593380.291 to 593470.291, .*\) cannot be coordinates in its "
                                         r"CRS, EPSG:4326 \(extent_wkt\).*EPSG:32631"):
        pansharpen(str(PAN), str(MS), str(tmp_path / "o.tif"), "wv2", "exp", extent=box, extent_wkt="EPSG:4326")
    assert list(tmp_path.iterdir()) == []


def test_the_batch_reads_an_epsg_code_and_refuses_bad_text_when_the_list_is_read(tmp_path):
    lon0, lat0, lon1, lat1 = lonlat_window(PAN)
    (tmp_path / "ok.csv").write_text("pan,ms,sensor,method,output,extent,extent_wkt\n"
                                     f"{PAN},{MS},wv2,exp,a.tif,{lon0} {lat0} {lon1} {lat1},EPSG:4326\n")
    p = run_cli(str(tmp_path / "ok.csv"), "--workers", "1")
    assert p.returncode == 0 and "1 scene(s): 1 done" in p.stdout, p.stdout + p.stderr
    assert 128 <= gdal.Open(str(tmp_path / "a.tif")).RasterXSize <= 136

    rows = (f"{PAN},{MS},wv2,exp,b.tif,593400 5747420 593480 5747500,EPSG:32631\n"
            f"{PAN},{MS},wv2,exp,c.tif,593400 5747420 593480 5747500,WGS 84 / UTM 31N\n")
    (tmp_path / "bad.csv").write_text("pan,ms,sensor,method,output,extent,Extent_WKT\n" + rows)
    with pytest.raises(SceneListError, match=r'^line 3: Extent_WKT "WGS 84 / UTM 31N" is no CRS: give the CRS'):
        read_scenes(str(tmp_path / "bad.csv"))
    p = run_cli(str(tmp_path / "bad.csv"), "--workers", "1")
    assert p.returncode == batch.EXIT_USAGE, p.stdout + p.stderr
    assert p.stderr.strip().splitlines() == [
        'ksdiff batch: line 3: Extent_WKT "WGS 84 / UTM 31N" is no CRS: give the CRS the extent (xmin ymin xmax ymax) '
        "is in as EPSG:32631, a WKT or a PROJ string (+proj=utm +zone=31 +datum=WGS84), or nothing for the PAN's "
        "CRS"], p.stderr
    assert "scene(s)" not in p.stdout and not (tmp_path / "b.tif").exists()
