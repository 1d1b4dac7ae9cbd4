"""Datums of a reprojected MS: a CRS with no datum shift to the PAN's (PROJ's "ballpark"), the datum transformation
a reprojection uses, and a QGIS project's operation handed to GDAL's warper.

A legacy CRS written as a PROJ string without ``+towgs84`` (``+proj=utm +zone=31 +ellps=intl``) has a datum named
"Unknown based on ... ellipsoid": PROJ relates it to another datum by a ballpark transformation, which moves nothing,
so an ED50 raster lands about 100 m off. QGIS identifies such a CRS as an EPSG one (EPSG:23031) and places it right.
"""
from __future__ import annotations

import functools
import math

from osgeo import osr

from .gdalutil import quiet_gdal


def _srs(wkt: str) -> osr.SpatialReference | None:
    srs = osr.SpatialReference()
    if not wkt or srs.ImportFromWkt(wkt) != 0:
        return None
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return srs


def _datum(srs: osr.SpatialReference) -> str:
    """'WGS_1984'; 'no datum (International 1924 ellipsoid)' for PROJ's "Unknown based on ... ellipsoid"."""
    name = srs.GetAttrValue("DATUM") or "unknown"
    if name.lower().startswith("unknown"):
        ellipsoid = (srs.GetAttrValue("SPHEROID") or "").split(" (")[0]
        return f"no datum ({ellipsoid} ellipsoid)" if ellipsoid else "no datum"
    return name


@functools.lru_cache(maxsize=64)
def ballpark(src_wkt: str, dst_wkt: str) -> bool:
    """Whether PROJ has only a ballpark transformation from ``src_wkt`` to ``dst_wkt``: two datums and no datum shift
    known between them (the CRS PROJ would relate with none once ballpark is disallowed)."""
    src, dst = _srs(src_wkt), _srs(dst_wkt)
    if src is None or dst is None or src.IsLocal() or dst.IsLocal():
        return False
    opts = osr.CoordinateTransformationOptions()
    opts.SetBallparkAllowed(False)
    try:
        with quiet_gdal():
            ct = osr.CoordinateTransformation(src, dst, opts)
    except (RuntimeError, TypeError, ValueError):
        return True
    # GDAL 3.6 wraps a failed creation as a proxy of None (no exception without osr.UseExceptions)
    return ct is None or getattr(ct, "this", None) is None


def _same_datum(a: osr.SpatialReference, b: osr.SpatialReference) -> bool:
    """Whether two CRSs share their geographic CRS, whatever its axis order (QA135: a custom CRS written back as WKT1
    lists longitude first where EPSG's lists latitude first, and a plain axis swap was named a datum transformation,
    'WGS_1984 to WGS_1984')."""
    return bool(a.IsSameGeogCS(b))


@functools.lru_cache(maxsize=64)
def placed_alike(a_wkt: str, b_wkt: str, x: float, y: float) -> bool:
    """Whether the coordinates (x, y) (a raster's centre) lie at one place on the earth (WGS 84, within 1 mm) read in
    either CRS: false for "+proj=utm +zone=31 +ellps=intl" against EPSG:23031, which PROJ relates by the identity (a
    ballpark) but whose positions differ by ED50's datum shift (about 100 m at Rotterdam)."""
    a, b = _srs(a_wkt), _srs(b_wkt)
    if a is None or b is None or a.IsLocal() or b.IsLocal() or _same_datum(a, b):
        return True
    geo = osr.SpatialReference()
    geo.ImportFromEPSG(4326)
    geo.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    try:
        with quiet_gdal():
            (lon, lat), (lon2, lat2) = (osr.CoordinateTransformation(s, geo).TransformPoint(x, y)[:2] for s in (a, b))
    except (RuntimeError, TypeError, AttributeError):
        return True
    if not all(math.isfinite(v) for v in (lon, lat, lon2, lat2)):
        return True
    return abs(lon - lon2) <= 1e-8 and abs(lat - lat2) <= 1e-8


def likely_epsg(wkt: str) -> str | None:
    """'EPSG:23031': the EPSG CRS PROJ identifies ``wkt`` with (as QGIS does for a bare PROJ string), else None."""
    srs = _srs(wkt)
    if srs is None:
        return None
    with quiet_gdal():
        matches = srs.FindMatches() or []
    for match, _confidence in matches:
        if match.GetAuthorityName(None) == "EPSG" and match.GetAuthorityCode(None):
            return f"EPSG:{match.GetAuthorityCode(None)}"
    return None


def ballpark_warning(ms_wkt: str, pan_wkt: str, ms_name: str, pan_name: str) -> str | None:
    """The one-line warning for an MS whose CRS has no datum shift to the PAN's, else None."""
    if not ballpark(ms_wkt, pan_wkt):
        return None
    ms_srs, pan_srs = _srs(ms_wkt), _srs(pan_wkt)
    code = likely_epsg(ms_wkt)
    fix = (f"it is likely {code}: assign that to the MS in QGIS (Layer Properties > Source) or gdal_edit.py -a_srs "
           f"{code} on its file" if code else "assign the MS its full CRS (an EPSG code) in QGIS or with gdal_edit.py "
           "-a_srs")
    return (f"The MS's CRS, {ms_name} ({_datum(ms_srs)}), has no datum shift to the PAN's, {pan_name} "
            f"({_datum(pan_srs)}): it is reprojected without one and can be fused ~100 m off; {fix}.")


def transformation_text(ms_wkt: str, pan_wkt: str, operation: str | None, described: str | None) -> str:
    """The datum transformation a reprojection uses, for the reprojection warning: QGIS's words (``described``:
    'ED50 to WGS 84 (1), accuracy 10 m'), else what osr tells ('' when both CRSs share one datum)."""
    ms_srs, pan_srs = _srs(ms_wkt), _srs(pan_wkt)
    if ms_srs is None or pan_srs is None or _same_datum(ms_srs, pan_srs):
        return ""
    datums = f"{_datum(ms_srs)} to {_datum(pan_srs)}"
    if described:
        return f" Datum transformation {datums}: {described}."
    if ballpark(ms_wkt, pan_wkt):
        return " Datum transformation: none known (see the CRS warning)."
    if operation:
        return f" Datum transformation {datums}: the one given ({operation[:80]})."
    return (f" Datum transformation {datums}: PROJ's default, its accuracy not known here (projinfo -s <MS CRS> "
            "-t <PAN CRS> lists them).")


def for_warper(operation: str, ms_wkt: str, pan_wkt: str) -> str:
    """``operation`` (a PROJ pipeline in x/y order, as QGIS stores it) in the axis order GDAL's warper hands it: the
    CRSs' own (latitude first for EPSG:4326). Axis swaps are spliced on where a CRS's order is not x/y."""
    if not operation.lstrip().startswith("+proj=pipeline"):
        return operation
    swap = " +step +proj=axisswap +order=2,1"
    steps = operation.lstrip()[len("+proj=pipeline"):]
    src, dst = _srs(ms_wkt), _srs(pan_wkt)
    first = swap if src is not None and (src.EPSGTreatsAsLatLong() or src.EPSGTreatsAsNorthingEasting()) else ""
    last = swap if dst is not None and (dst.EPSGTreatsAsLatLong() or dst.EPSGTreatsAsNorthingEasting()) else ""
    return f"+proj=pipeline{first}{steps}{last}" if first or last else operation
