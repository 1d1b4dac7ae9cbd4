"""Area of interest: clip a run's output region to an extent, snapped outward to the PAN grid.

Only the region is read (tiles, scene statistics) and written, so a district of a large scene costs
what the district costs.
"""
from __future__ import annotations

import math
import re

from osgeo import osr

from .errors import InputError, one_line, quoted
from .gdalutil import gdal_try
from .grid import GridPlan, crs_name, extent_text, min_overlap_px, same_crs, too_small, with_region
from .raster_io import RasterInfo

Extent = tuple[float, float, float, float]   # xmin, ymin, xmax, ymax


# PAN pixels an extent's edge may lie past a pixel edge and still snap to it, not outward: an extent typed to 4
# decimals reached 1.3e-5 m (2.6e-5 px) past the PAN's own edge and warned "reaches beyond the PAN/MS overlap"
SNAP_TOLERANCE = 1e-3
MAX_QUOTED = 160   # characters of an unreadable CRS text quoted in a message (a WKT runs to a thousand)
# a geometry's WKT, which the column's name ("extent_wkt") invites: it wants the extent's CRS, not the extent
GEOMETRY_WKT = re.compile(r"\s*(MULTI)?(POLYGON|POINT|LINESTRING)|\s*(GEOMETRYCOLLECTION|BOX|ENVELOPE)\b", re.I)
EXTENT_CRS = "the CRS the extent (xmin ymin xmax ymax) is in"
CRS_EXAMPLE = "EPSG:32631, a WKT or a PROJ string (+proj=utm +zone=31 +datum=WGS84)"


def _shown(text: str) -> str:
    """``text`` as a message quotes it: on one line, a pretty-printed WKT's indentation dropped, cut when long."""
    text = " ".join(one_line(text).split())
    return quoted(text if len(text) <= MAX_QUOTED else text[:MAX_QUOTED] + " …")


def crs_wkt(text: str, name: str = "extent_wkt", wants: str = EXTENT_CRS, empty: str = "the PAN's CRS") -> str:
    """The WKT of the CRS ``text`` names (an authority code such as EPSG:32631, a WKT, a PROJ string: what QGIS's
    EXTENT takes in brackets). InputError naming ``name`` and what it wants when ``text`` is no CRS: an authority
    code read as WKT failed each scene with SWIG's TypeError from TransformPoint. ``wants``: the CRS the value
    names, ``empty``: what an empty value means (the refusal's advice; the batch's pan_crs / ms_crs columns too)."""
    if GEOMETRY_WKT.match(text):
        if wants != EXTENT_CRS:
            raise InputError(f"{name} {_shown(text)} is a geometry, not a CRS: give {wants} as {CRS_EXAMPLE}, or "
                             f"nothing for {empty}")
        raise InputError(
            f"{name} {_shown(text)} is a geometry, not a CRS: {name} names the CRS the extent (xmin ymin xmax ymax) "
            f"is given in; give the geometry's bounding box as the extent and its CRS here, e.g. extent "
            f"593300 5747400 593450 5747550 with {name} EPSG:32631")
    srs = osr.SpatialReference()
    err, errors = gdal_try(srs.SetFromUserInput, text.strip())
    if err != 0 or errors:
        said = [e for e in errors if not e.startswith("GDAL error code")]   # a bare return code says nothing
        detail = f" ({one_line(said[0])})" if said else ""
        meant = f" (EPSG:{text.strip()}?)" if text.strip().isdigit() else ""
        raise InputError(f"{name} {_shown(text)} is no CRS{detail}{meant}: give {wants} as {CRS_EXAMPLE}, or "
                         f"nothing for {empty}")
    return srs.ExportToWkt()


def to_pan_crs(extent: Extent, extent_wkt: str | None, pan_wkt: str) -> Extent:
    """``extent`` given in the CRS ``extent_wkt`` (an EPSG code, a WKT or a PROJ string, read by ``crs_wkt``; None:
    already in the PAN CRS) as a bounding box in the PAN CRS."""
    if not extent_wkt:
        return extent
    extent_wkt = crs_wkt(extent_wkt)   # read even when the PAN has no CRS: a bad value is refused alike
    if not pan_wkt or same_crs(extent_wkt, pan_wkt):
        return extent
    src, dst = osr.SpatialReference(), osr.SpatialReference()
    src.ImportFromWkt(extent_wkt)
    dst.ImportFromWkt(pan_wkt)
    for s in (src, dst):
        s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)   # x = easting/longitude everywhere
    ct = osr.CoordinateTransformation(src, dst)
    # densify the edges: a reprojected rectangle bulges, and its corners alone would clip it
    x0, y0, x1, y1 = extent
    n = 21
    pts = [(x0 + (x1 - x0) * i / (n - 1), y) for i in range(n) for y in (y0, y1)]
    pts += [(x, y0 + (y1 - y0) * i / (n - 1)) for i in range(n) for x in (x0, x1)]
    out = [gdal_try(ct.TransformPoint, x, y)[0] for x, y in pts]
    if any(p is None or not (math.isfinite(p[0]) and math.isfinite(p[1])) for p in out):
        # coordinates the CRS cannot hold (metres under EPSG:4326) became inf, and an OverflowError each scene
        raise InputError(f"EXTENT ({extent_text(x0, y0, x1, y1)}) cannot be coordinates in its CRS, "
                         f"{crs_name(extent_wkt)} (extent_wkt): they do not transform to the PAN's, "
                         f"{crs_name(pan_wkt)}; give the CRS they are in, or none when they are in the PAN's")
    xs, ys = [p[0] for p in out], [p[1] for p in out]
    return min(xs), min(ys), max(xs), max(ys)


def clip_plan(plan: GridPlan, pan: RasterInfo, extent: Extent) -> GridPlan:
    """``plan`` with its region limited to ``extent`` (PAN CRS), snapped outward to whole PAN pixels."""
    x0, y0, x1, y1 = extent
    if not (x1 > x0 and y1 > y0):
        raise InputError(f"EXTENT is empty ({extent_text(x0, y0, x1, y1)})")
    px, py = pan.gt[1], -pan.gt[5]
    c_a = math.floor((x0 - pan.gt[0]) / px + SNAP_TOLERANCE)
    c_b = math.ceil((x1 - pan.gt[0]) / px - SNAP_TOLERANCE)
    r_a = math.floor((pan.gt[3] - y1) / py + SNAP_TOLERANCE)
    r_b = math.ceil((pan.gt[3] - y0) / py - SNAP_TOLERANCE)
    r0, c0, rows, cols = plan.region
    nc0, nc1 = max(c0, c_a), min(c0 + cols, c_b)
    nr0, nr1 = max(r0, r_a), min(r0 + rows, r_b)
    if nc1 <= nc0 or nr1 <= nr0:
        ox0, oy1 = pan.gt[0] + c0 * px, pan.gt[3] - r0 * py
        raise InputError(
            f"EXTENT ({extent_text(x0, y0, x1, y1)} in the PAN CRS) misses the PAN/MS overlap "
            f"({extent_text(ox0, oy1 - rows * py, ox0 + cols * px, oy1)}): nothing to fuse"
        )
    # the minimum of a whole scene, in its words (QA: 16 x 16 at ratio 4 was fused, and ksdiff:assess refused it)
    if nc1 - nc0 < min_overlap_px(plan.ratio) or nr1 - nr0 < min_overlap_px(plan.ratio):
        raise InputError(f"EXTENT covers only {nc1 - nc0} x {nr1 - nr0} PAN pixels of the PAN/MS overlap: "
                         f"{too_small(plan.ratio)}; give a larger EXTENT")
    warnings = list(plan.warnings)
    if (nc0, nc1, nr0, nr1) != (c_a, c_b, r_a, r_b):
        warnings.append(f"EXTENT reaches beyond the PAN/MS overlap: the output covers {nc1 - nc0} x {nr1 - nr0} of "
                        f"its {c_b - c_a} x {r_b - r_a} PAN pixels (the part the PAN and the MS both cover).")
    return with_region(plan, nr0, nc0, nr1, nc1, warnings=warnings, extent=True)
