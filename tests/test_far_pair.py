"""A PAN and an MS on different continents (QA 56 #2): refused as not overlapping, quietly and in plain coordinates.

The PAN (WorldView-2, Rotterdam, UTM 31N) with an MS put in Florida in UTM 16N: the refusal was right, but GDAL/PROJ
printed "ERROR 1: Point outside of projection domain" 20 times first (stderr, the QGIS log), and the refusal gave the
MS's extent reprojected into UTM 31N, 90 degrees of longitude from its central meridian: "x -7714418.96 to
-7705545.08, y 10081343.2 to 10090217.1"."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from osgeo import gdal, osr

ROOT = Path(__file__).resolve().parent.parent

DRIVER = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[1])
    from ksdiff_qgis.engine.errors import InputError
    from ksdiff_qgis.engine.pipeline import pansharpen
    try:
        pansharpen(sys.argv[2], sys.argv[3], sys.argv[4], "wv2", "ksdiff")
    except InputError as e:
        print("REFUSED " + str(e), flush=True)
""")


def _moved(src: Path, dst: Path, epsg: int, x0: float, y0: float) -> str:
    """A GeoTIFF copy of ``src`` with its pixel size kept, its top-left corner at (x0, y0) in EPSG ``epsg``."""
    ds = gdal.Open(str(src))
    gt = ds.GetGeoTransform()
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    gdal.Translate(str(dst), ds, outputSRS=srs.ExportToWkt(),
                   outputBounds=[x0, y0, x0 + ds.RasterXSize * gt[1], y0 + ds.RasterYSize * gt[5]])
    return str(dst)


def _refusal(pan: str, ms: str, tmp_path: Path) -> subprocess.CompletedProcess:
    res = subprocess.run([sys.executable, "-c", DRIVER, str(ROOT), pan, ms, str(tmp_path / "o.tif")],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path,
                         env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert res.returncode == 0, res.stderr[-3000:]
    assert not (tmp_path / "o.tif").exists()
    return res


def test_an_ms_on_another_continent_is_refused_quietly_in_its_own_crs(data_dir, tmp_path):
    ms = _moved(data_dir / "wv2_ms.tif", tmp_path / "far_ms.tif", 32616, 452475.0, 3408645.0)
    res = _refusal(str(data_dir / "wv2_pan.tif"), ms, tmp_path)
    assert "ERROR" not in res.stderr and "projection domain" not in res.stderr, res.stderr
    said = next(line[8:] for line in res.stdout.splitlines() if line.startswith("REFUSED "))
    assert said.startswith("the PAN and MS rasters do not overlap: the PAN covers x 593370.291 to 593498.289, "
                           "y 5747429.42 to 5747557.42 in its CRS (EPSG:32631), around 51.8704°N 4.3571°E; "), said
    assert re.search(r"the MS covers x 452475 to 452603\.006, y 3408516\.99 to 3408645 in its own CRS \(EPSG:32616\), "
                     r"around 30\.8094°N 87\.4962°W, too far from where the PAN's CRS is defined", said), said
    assert "-77" not in said and "Assign Projection" in said


@pytest.mark.parametrize("epsg,x0,y0", [(32631, 603370.0, 5747557.0), (32632, 224656.0, 5754145.0)])
def test_a_near_pair_that_does_not_overlap_keeps_the_pan_crs_wording(data_dir, tmp_path, epsg, x0, y0):
    """10 km away in the PAN's own CRS, or 44 km east (5° E) in the next UTM zone's CRS (inside UTM 31N's area of
    use): both extents in the PAN's CRS, as before."""
    ms = _moved(data_dir / "wv2_ms.tif", tmp_path / "near_ms.tif", epsg, x0, y0)
    res = _refusal(str(data_dir / "wv2_pan.tif"), ms, tmp_path)
    assert "ERROR" not in res.stderr, res.stderr
    said = next(line[8:] for line in res.stdout.splitlines() if line.startswith("REFUSED "))
    assert re.match(r"the PAN and MS rasters do not overlap: in the PAN's CRS \(EPSG:32631\) the PAN covers x "
                    r"593370\.291 to 593498\.289, y 5747429\.42 to 5747557\.42, the MS x \d", said), said
