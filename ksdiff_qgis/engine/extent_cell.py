"""A scene list's ``extent`` cell: QGIS's comma form or gdalwarp's space form, and a box far too large refused.

QGIS writes an extent ``xmin,xmax,ymin,ymax [EPSG:32631]`` (EXTENT, the output tag KSDIFF_EXTENT); gdalwarp -te
takes ``xmin ymin xmax ymax``. Both are read, each in its own order: until 2026-12-08 every cell was read in
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
# a box this many times the PAN's area is no area of interest within it: almost always an extent in the other order
# (the QA's 'xmin xmax ymin ymax' in UTM read as a box 5 154 093 m wide, 2.7e8 times the PAN's area)
MAX_AREA_RATIO = 100

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


def too_large(box: Box, extent_wkt: str | None, pan_path: str, pan_crs: str | None, order: str) -> str | None:
    """Why ``box`` (in the CRS ``extent_wkt``) cannot be meant for the PAN ``pan_path``: it covers more than
    MAX_AREA_RATIO times the PAN's area (its overlap with the MS is no larger). None when it can, or when the PAN
    cannot be read here (its scene then says why)."""
    ds = gdal.OpenEx(pan_path, gdal.OF_RASTER) if pan_path else None
    gt = ds.GetGeoTransform(can_return_null=True) if ds is not None else None
    if gt is None or gt[2] or gt[4]:
        return None   # no georeferencing or a rotated grid: the scene's own checks speak
    pan_wkt = pan_crs or ds.GetProjection()
    try:
        x0, y0, x1, y1 = aoi.to_pan_crs(box, extent_wkt, pan_wkt)
    except InputError:
        return None   # refused by the scene with its own message
    pan_w, pan_h = abs(gt[1]) * ds.RasterXSize, abs(gt[5]) * ds.RasterYSize
    ratio = (x1 - x0) * (y1 - y0) / (pan_w * pan_h)
    if ratio <= MAX_AREA_RATIO:
        return None
    return (f"read as {order} it is a box {x1 - x0:.6g} x {y1 - y0:.6g} (PAN CRS units), {ratio:.3g} times the PAN's "
            f"area ({pan_w:.6g} x {pan_h:.6g}): is it in the other order? {FORMS}")
