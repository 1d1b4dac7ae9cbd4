"""CRS names in messages: a custom CRS set in QGIS (WKT named 'unknown') is named by its PROJ string."""
from __future__ import annotations

import numpy as np
import pytest
from osgeo import gdal, osr

from ksdiff_qgis.engine import grid
from ksdiff_qgis.engine.errors import InputError
from ksdiff_qgis.engine.grid import crs_name
from ksdiff_qgis.engine.raster_io.info import RasterInfo

BARE = "+proj=utm +zone=31 +ellps=intl +units=m +no_defs"


def _wkt(proj: str) -> str:
    srs = osr.SpatialReference()
    srs.ImportFromProj4(proj)
    return srs.ExportToWkt()


def test_a_custom_crs_is_named_by_its_proj_string_not_unknown():
    """QA: a custom CRS on both layers was said as 'The PAN layer's CRS unknown … placed in unknown'."""
    custom = _wkt("+proj=tmerc +lat_0=0 +lon_0=3 +k=0.9996 +x_0=400000 +y_0=0 +datum=WGS84 +units=m +no_defs")
    name = crs_name(custom)
    assert "unknown" not in name and name.startswith("the custom CRS +proj=tmerc") and name.endswith("+no_defs")
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32631)
    assert crs_name(srs.ExportToWkt()) == "EPSG:32631"
    assert crs_name("") == "none"


def _info(wkt: str) -> RasterInfo:
    return RasterInfo("x.tif", 10, 10, 1, (0.0, 1.0, 0.0, 10.0, 0.0, -1.0), wkt, np.dtype("uint16"), gdal.GDT_UInt16,
                      None, None, [""])


def _said(text: str) -> None:
    """No nested parentheses, no '(a custom CRS)' to copy, no 'CRS' before the name's own article."""
    depth = 0
    for ch in text:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        assert depth <= 1, text
    assert "(a custom CRS)" not in text and "CRS the" not in text and "CRS an" not in text, text


def test_custom_and_unnamed_crs_names_read_right_in_their_sentences():
    """QA136: "the PAN has one (+proj=… (a custom CRS)), … assign the MS raster the CRS its coordinates are in
    (+proj=… (a custom CRS) if they are in the PAN's)"; and "The PAN layer's CRS an unnamed CRS, set in QGIS"."""
    with pytest.raises(InputError) as err:
        grid._check_crs_pair(_info(_wkt(BARE)), _info(""))
    said = str(err.value)
    _said(said)
    assert f"while the PAN has one, the custom CRS {BARE}, so the two" in said, said
    assert "the CRS its coordinates are in, the PAN's if they are in it:" in said, said
    ds = gdal.GetDriverByName("MEM").Create("", 4, 4, 1)
    ds.SetGeoTransform((0.0, 1.0, 0.0, 4.0, 0.0, -1.0))
    _, note = grid.assign_crs(ds, _wkt(BARE), "PAN")
    assert note == f"The PAN layer's CRS set in QGIS, the custom CRS {BARE}, is used: its file has none.", note
    _said(note)
    unnamed = 'LOCAL_CS["unknown",UNIT["metre",1]]'
    assert crs_name(unnamed) == "an unnamed CRS"   # PROJ writes no PROJ string for it
    assert grid.assign_crs(ds, unnamed, "PAN")[1] == ("The PAN layer's CRS set in QGIS, an unnamed CRS, is used: its "
                                                      "file has none.")
