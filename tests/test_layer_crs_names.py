"""CRS names in messages: a custom CRS set in QGIS (WKT named 'unknown') is named by its PROJ string."""
from __future__ import annotations

from osgeo import osr

from ksdiff_qgis.engine.grid import crs_name


def _wkt(proj: str) -> str:
    srs = osr.SpatialReference()
    srs.ImportFromProj4(proj)
    return srs.ExportToWkt()


def test_a_custom_crs_is_named_by_its_proj_string_not_unknown():
    """QA: a custom CRS on both layers was said as 'The PAN layer's CRS unknown … placed in unknown'."""
    custom = _wkt("+proj=tmerc +lat_0=0 +lon_0=3 +k=0.9996 +x_0=400000 +y_0=0 +datum=WGS84 +units=m +no_defs")
    name = crs_name(custom)
    assert "unknown" not in name and name.startswith("+proj=tmerc") and name.endswith("+no_defs (a custom CRS)")
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32631)
    assert crs_name(srs.ExportToWkt()) == "EPSG:32631"
    assert crs_name("") == "none"
