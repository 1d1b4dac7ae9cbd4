"""A scene list's ``extent`` cell: QGIS's comma form or gdalwarp's space form, and a box in the other order refused.

QGIS writes an extent ``xmin,xmax,ymin,ymax [EPSG:32631]`` (EXTENT, the output tag KSDIFF_EXTENT); gdalwarp -te
takes ``xmin ymin xmax ymax``. Both are read, each in its own order: until 2026-12-07 every cell was read in
gdalwarp's order, and a KSDIFF_EXTENT pasted into a row fused a 455 x 365 window instead of its 282 x 295, exit 0.
"""
from __future__ import annotations

import re

from osgeo import gdal

from . import aoi
from .errors import InputError

_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
# QGIS's extent text: four numbers separated by commas, the CRS optionally after them in brackets
QGIS_FORM = re.compile(rf"^\s*({_NUM})\s*,\s*({_NUM})\s*,\s*({_NUM})\s*,\s*({_NUM})\s*(?:\[(.*)\])?\s*$")
QGIS_ORDER = "xmin,xmax,ymin,ymax (commas: QGIS's order, as EXTENT and KSDIFF_EXTENT)"
GDAL_ORDER = "xmin ymin xmax ymax (spaces: gdalwarp -te order)"
FORMS = ("write xmin,xmax,ymin,ymax [EPSG:...] with commas (QGIS's order, as EXTENT and KSDIFF_EXTENT give it) or "
         "xmin ymin xmax ymax separated by spaces (gdalwarp -te order)")
Box = tuple[float, float, float, float]   # xmin, ymin, xmax, ymax


def read_extent(cell: str) -> tuple[Box, str | None, str]:
    """(box as xmin, ymin, xmax, ymax; the CRS written in brackets or None; the order it was read in) of an
    ``extent`` cell. ValueError for any other text, and for a box that is empty in the order it is read in."""
    m = QGIS_FORM.match(cell)
    if m:
        x0, x1, y0, y1 = (float(v) for v in m.groups()[:4])
        crs, order = (m.group(5) or "").strip() or None, QGIS_ORDER
    else:
        if "," in cell or ";" in cell or "[" in cell:
            raise ValueError(f"neither of the two forms an extent takes: {FORMS}")
        items = cell.split()
        try:
            values = [float(v) for v in items]
        except ValueError:
            values = []
        if len(values) != 4:
            raise ValueError(f"an extent is four numbers: {FORMS}")
        (x0, y0, x1, y1), crs, order = values, None, GDAL_ORDER
    if not (x1 > x0 and y1 > y0):
        raise ValueError(f"read as {order} it gives xmin {x0:g}, xmax {x1:g}, ymin {y0:g}, ymax {y1:g}, an empty "
                         f"box: {FORMS}")
    return (x0, y0, x1, y1), crs, order


def other_order(box: Box) -> Box:
    """``box`` as the same four numbers read in the other form's order: QGIS's xmin,xmax,ymin,ymax and gdalwarp's
    xmin ymin xmax ymax differ by the second and third number, so the swap is the same both ways."""
    return box[0], box[2], box[1], box[3]


def misread(box: Box, extent_wkt: str | None, pan_path: str, pan_crs: str | None, order: str) -> str | None:
    """Why ``box`` (in the CRS ``extent_wkt``, read in ``order``) cannot be meant for the PAN ``pan_path``: it does
    not overlap the PAN at all, or it reaches beyond the PAN while its four numbers in the other order give a box
    inside it (the QA's 'xmin xmax ymin ymax' with spaces read as a box 5 154 093 m wide). None otherwise: a
    regional area of interest larger than the PAN is cut to the PAN/MS overlap with clip_plan's warning (until
    2026-12-07 a 4 x 4 km box around WorldView-2 pair 1's 300 m PAN was refused as 178 times its area). None too
    when the PAN cannot be read here (its scene then says why)."""
    ds = gdal.OpenEx(pan_path, gdal.OF_RASTER) if pan_path else None
    gt = ds.GetGeoTransform(can_return_null=True) if ds is not None else None
    if gt is None or gt[2] or gt[4]:
        return None   # no georeferencing or a rotated grid: the scene's own checks speak
    pan_wkt = pan_crs or ds.GetProjection()
    xs = sorted((gt[0], gt[0] + gt[1] * ds.RasterXSize))
    ys = sorted((gt[3], gt[3] + gt[5] * ds.RasterYSize))
    pan_box = (xs[0], ys[0], xs[1], ys[1])
    try:
        read = aoi.to_pan_crs(box, extent_wkt, pan_wkt)
    except InputError:
        return None   # refused by the scene with its own message
    other = _in_pan_crs(other_order(box), extent_wkt, pan_wkt)
    other_order_name = GDAL_ORDER if order == QGIS_ORDER else QGIS_ORDER
    x0, y0, x1, y1 = read
    said = f"read as {order} it is the box xmin {x0:.10g}, ymin {y0:.10g}, xmax {x1:.10g}, ymax {y1:.10g} (PAN CRS)"
    pan_said = (f"the PAN covers xmin {pan_box[0]:.10g}, ymin {pan_box[1]:.10g}, xmax {pan_box[2]:.10g}, "
                f"ymax {pan_box[3]:.10g}")
    if not _overlaps(read, pan_box):
        if other is not None and _overlaps(other, pan_box):
            return (f"{said}, which does not overlap the PAN ({pan_said}); read as {other_order_name} it would "
                    f"overlap it: write it in that form. {FORMS}")
        return f"{said}, which does not overlap the PAN ({pan_said}): give an area on the PAN. {FORMS}"
    if not _inside(read, pan_box) and other is not None and _inside(other, pan_box):
        return (f"{said}, reaching beyond the PAN ({pan_said}), while read as {other_order_name} it lies inside "
                f"the PAN: is it in that order? Write it in that form. {FORMS}")
    return None


def _in_pan_crs(box: Box, extent_wkt: str | None, pan_wkt: str) -> Box | None:
    """``box`` in the PAN CRS, or None when it is empty or cannot be transformed there."""
    if not (box[2] > box[0] and box[3] > box[1]):
        return None
    try:
        return aoi.to_pan_crs(box, extent_wkt, pan_wkt)
    except InputError:
        return None


def _overlaps(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _inside(a: Box, b: Box) -> bool:
    return b[0] <= a[0] and a[2] <= b[2] and b[1] <= a[1] and a[3] <= b[3]
