"""A PAN and an MS in one geographic CRS whose longitudes are written 360 degrees apart: the same place across the
antimeridian (+180.0001 and -179.9999), which the MS is moved to, pixel for pixel.

An MS in another CRS is reprojected into the PAN's longitudes (``grid._lonlat_footprint``); an MS in the PAN's own
geographic CRS is not reprojected, so its longitudes were compared as written and the pair refused as "do not overlap".
"""
from __future__ import annotations

from dataclasses import replace

from osgeo import gdal, osr

from .errors import InputError
from .gdalutil import gdal_call, named_view
from .raster_io import RasterInfo


def _range(info: RasterInfo, axis: int) -> tuple[float, float]:
    """The raster's (min, max) georeferenced x (``axis`` 0) or y (1) over its four corners."""
    o, dc, dr = info.gt[3 * axis:3 * axis + 3]
    values = [o + c * dc + r * dr for c in (0, info.width) for r in (0, info.height)]
    return min(values), max(values)


def _overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return min(a[1], b[1]) > max(a[0], b[0])


def lon_shift(pan: RasterInfo, ms: RasterInfo) -> float:
    """The multiple of 360 degrees to add to the MS's longitudes so the pair overlaps, for a PAN and MS in one
    geographic CRS (``pan.wkt``) that do not overlap as written and do so moved; 0.0 otherwise (a projected CRS, a
    pair that overlaps already or lies apart on the globe too)."""
    srs = osr.SpatialReference()
    if not pan.wkt or srs.ImportFromWkt(pan.wkt) != 0 or not srs.IsGeographic():
        return 0.0
    (px0, px1), (mx0, mx1) = _range(pan, 0), _range(ms, 0)
    turns = round(((px0 + px1) / 2 - (mx0 + mx1) / 2) / 360.0)
    if not turns or _overlap((px0, px1), (mx0, mx1)) or not _overlap(_range(pan, 1), _range(ms, 1)):
        return 0.0
    shift = 360.0 * turns
    return shift if _overlap((px0, px1), (mx0 + shift, mx1 + shift)) else 0.0


def moved_view(ms_ds: gdal.Dataset, ms: RasterInfo, shift: float) -> tuple[gdal.Dataset, RasterInfo]:
    """(view, its info): ``ms_ds`` as a virtual raster of the very same pixels whose longitudes are ``shift``
    degrees on (its geotransform's x origin moved)."""
    gt = (ms.gt[0] + shift, *ms.gt[1:])
    view, msg = gdal_call(gdal.Translate, "", ms_ds, format="VRT")
    if view is None or view.SetGeoTransform(gt) != 0:
        raise InputError(f"cannot place the MS raster in the PAN's longitudes: {msg or 'GDAL refused the view'}")
    return named_view(view, ms_ds), replace(ms, gt=gt)
