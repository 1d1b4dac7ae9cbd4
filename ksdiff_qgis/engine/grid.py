"""Grid logic: detect the PAN/MS ratio, find the output grid, reproject MS if needed.

The output grid is the PAN grid over the PAN∩MS intersection. An MS grid that is merely shifted
against the PAN grid (Landsat 8's half PAN pixel, misregistered products) is not warped: the
upsampler samples MS at the true sub-pixel position of every PAN pixel centre. An MS stored south-up or
mirrored east-west is read through a flipped, north-up view of the same pixels (no resampling). An MS raster in
another CRS, or with a rotated geotransform, is warped with GDAL (a virtual warped dataset, read
window by window) onto a north-up grid in the PAN CRS whose pixels are ``ratio`` PAN pixels.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field, replace

from osgeo import gdal, osr

from . import antimeridian, datums
from .errors import InputError
from .gdalutil import crs_name, gdal_call, named_view, quiet_gdal
from .labels import param
from .placement import check_map_grid, epsg_of
from .raster_io import RasterInfo
from .shellcmd import beside, shell_arg

RATIO_TOLERANCE = 1e-3   # relative; WorldView-2 products carry ~6e-5 of float noise
EDGE_TOLERANCE = 0.05    # PAN pixels: grid-edge noise below this snaps to the nearest pixel edge
# PAN pixels: an MS/PAN ratio near a whole one is taken as whole while the MS's far edge stays this close to where
# its georeference puts it (WorldView-2: 4.000246, 0.04 pixels over a 150-pixel MS, 2.2 over a whole scene)
DRIFT_TOLERANCE = 0.25
GRID_SHIFT = "The MS grid is shifted"   # the start of plan_grid's line about a grid offset
# PAN pixels: a shift this close to half a PAN pixel on both axes at ratio 2 is the layout USGS delivers Landsat in
# (pixel-is-area corners PAN 452467.5, MS 452475: the MS pixel centres on PAN pixel centres), said as info
LANDSAT_LAYOUT_TOLERANCE = 0.01
ASSIGN_CRS = "QGIS Raster > Projections > Assign Projection, or gdal_edit.py -a_srs EPSG:<code> file.tif"
NO_CRS = ("Neither the PAN nor the MS raster has a coordinate reference system (CRS): they are fused by their "
          "geotransforms alone, and the output has no CRS either (a .prj beside a .tfw world file is not read for a "
          "GeoTIFF). Assign the CRS their coordinates are in to both inputs, or to the output afterwards: "
          f"{ASSIGN_CRS}.")
MIN_OVERLAP_MS = 8       # MS pixels per side: fewer leave too few samples for the scene statistics


@dataclass
class GridPlan:
    """The geometry of one run, in PAN pixel coordinates of the PAN raster."""

    ratio: int
    region: tuple[int, int, int, int]       # row0, col0, rows, cols of the output on the PAN raster
    ms_origin: tuple[float, float]          # (row, col) of the MS raster's top-left corner, PAN pixels
    out_gt: tuple[float, ...]
    ms_dataset: gdal.Dataset | None = None  # a virtual MS to read instead of the file's: warped, or flipped north-up
    resampled: bool = False                 # ms_dataset is warped (cubic), not the MS's own pixels
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)   # info lines: facts of the layout that need no action
    extent: bool = False                    # the region is the user's EXTENT (messages name the area of interest)


def with_region(plan: GridPlan, r0: int, c0: int, r1: int, c1: int, **changes) -> GridPlan:
    """``plan`` with its output region rows [r0, r1) and columns [c0, c1) of the PAN raster (its output geotransform
    moved along), and any other ``changes``."""
    gt, (pr0, pc0, _, _) = plan.out_gt, plan.region
    out_gt = (gt[0] + (c0 - pc0) * gt[1], gt[1], gt[2], gt[3] + (r0 - pr0) * gt[5], gt[4], gt[5])
    return replace(plan, region=(r0, c0, r1 - r0, c1 - c0), out_gt=out_gt, **changes)


@functools.lru_cache(maxsize=64)
def same_crs(a: str, b: str) -> bool:
    """Whether two WKT strings name the same CRS (both empty: the same, none): the same definition, its horizontal
    part, or one written differently that PROJ relates to the other by the identity (``_identity_between``)."""
    if not a and not b:
        return True
    if not a or not b:
        return False
    sa, sb = osr.SpatialReference(), osr.SpatialReference()
    if sa.ImportFromWkt(a) != 0 or sb.ImportFromWkt(b) != 0:
        return a == b
    if sa.IsSame(sb):
        return True
    # a compound CRS (e.g. UTM + EGM96 height) places pixels as its horizontal part does: the fusion is 2-D
    for s in (sa, sb):
        if s.IsCompound():
            gdal_call(s.StripVertical)
    return bool(sa.IsSame(sb)) or _identity_between(sa, sb)


def _sample_lonlat(sa: osr.SpatialReference, sb: osr.SpatialReference) -> list[tuple[float, float]]:
    """A 3 x 3 grid of longitudes / latitudes where the CRSs are used: either's area of use, else a degree around
    ``sa``'s projection origin."""
    area = sa.GetAreaOfUse() or sb.GetAreaOfUse()
    if area is not None:
        w, s, e, n = area.west_lon_degree, area.south_lat_degree, area.east_lon_degree, area.north_lat_degree
        if e < w:   # an area across the antimeridian
            e += 360.0
    else:
        lon0 = sa.GetProjParm(osr.SRS_PP_CENTRAL_MERIDIAN, 0.0) if sa.IsProjected() else 0.0
        lat0 = sa.GetProjParm(osr.SRS_PP_LATITUDE_OF_ORIGIN, 0.0) if sa.IsProjected() else 0.0
        w, s, e, n = lon0 - 1, max(-89.0, lat0 - 1), lon0 + 1, min(89.0, lat0 + 1)
    return [(w + (e - w) * i / 2, s + (n - s) * j / 2) for i in range(3) for j in range(3)]


def _identity_between(sa: osr.SpatialReference, sb: osr.SpatialReference) -> bool:
    """Whether two CRSs of one kind (projected, or geographic) are the same CRS written differently: the operation
    PROJ would reproject with (GDAL's warper too) moves no point where they are used by more than 0.1 mm (1e-9
    degrees). E.g. ``+proj=utm +zone=31 +ellps=WGS84 +towgs84=0,0,0,0,0,0,0`` against EPSG:32631, which ``IsSame``
    tells apart (a datum named otherwise, with a null TOWGS84): reprojecting changes nothing but cubic-resamples."""
    if sa.IsProjected() != sb.IsProjected() or sa.IsGeographic() != sb.IsGeographic() or sa.IsLocal() or sb.IsLocal():
        return False
    if not (sa.IsProjected() or sa.IsGeographic()):
        return False
    geo = osr.SpatialReference()
    geo.ImportFromEPSG(4326)
    a, b = sa.Clone(), sb.Clone()
    for srs in (geo, a, b):
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)   # x = easting / longitude on both sides
    try:   # quiet: far apart CRSs (UTM 31N, 16N) print "Point outside of projection domain" per point, not an error
        with quiet_gdal():
            to_a, a_to_b = osr.CoordinateTransformation(geo, a), osr.CoordinateTransformation(a, b)
            pts = [to_a.TransformPoint(lon, lat)[:2] for lon, lat in _sample_lonlat(a, b)]
            moved = [a_to_b.TransformPoint(x, y)[:2] for x, y in pts]
    except (RuntimeError, TypeError):
        return False
    tol = 1e-9 if a.IsGeographic() else 1e-4 / (a.GetLinearUnits() or 1.0)
    return all(math.isfinite(x) and math.isfinite(y) and abs(x - u) <= tol and abs(y - v) <= tol
               for (x, y), (u, v) in zip(pts, moved))


def _ratio(ms_res: float, pan_res: float, axis: str) -> float:
    r = ms_res / pan_res
    if r < 1.0 - RATIO_TOLERANCE:
        raise InputError(
            f"the MS pixels are finer than the PAN pixels along {axis} ({ms_res:g} vs {pan_res:g}): "
            "check that the PAN and MS inputs are not swapped"
        )
    return r


def whole_ratio(rx: float, ry: float) -> int | None:
    """The whole MS/PAN ratio (at least 2) shared by both axes within ``RATIO_TOLERANCE``, else None."""
    r = round(rx)
    if r < 2 or abs(rx - r) > RATIO_TOLERANCE * r or abs(ry - r) > RATIO_TOLERANCE * r:
        return None
    return r


MIN_RATIO = 1.5   # MS/PAN pixel size ratio below which a pair is refused; 1.5 up to 2 is resampled to 2
# below this ratio the MS pixel is the PAN's (up to a reprojection's rounding): an MS resampled onto the PAN grid,
# which no PAN can sharpen; its own pixel is PAN pixel x the sensor's ratio, TYPICAL_RATIO when no sensor tells
SAME_PIXEL = 1.2
TYPICAL_RATIO = 4
RatioHint = tuple[int, str]   # (the MS/PAN ratio of the product, whose it is), ``sensor_detect.native_ratio``


def nearest_ratio(raw: float) -> int:
    """The whole ratio nearest ``raw``, half up: a ratio within ``RATIO_TOLERANCE`` of half-way counts as half-way.
    A 1.25 m MS over a 0.5 m PAN measures 2.499999999999999 (float noise of the georeference): 3, as README says,
    not 2."""
    return math.floor(raw + 0.5 + RATIO_TOLERANCE * raw)


def _integer_ratio(rx: float, ry: float, pan: RasterInfo, ms: RasterInfo, hint: RatioHint | None) -> int | None:
    """The whole MS/PAN ratio shared by both axes, None when there is none (the MS is then resampled). Raises
    InputError below ``MIN_RATIO`` (``too_close_ratio``)."""
    if math.sqrt(rx * ry) < MIN_RATIO:
        raise InputError(too_close_ratio(rx, ry, pan, ms, hint))
    return whole_ratio(rx, ry)


def _size_text(v: float) -> str:
    return f"{abs(v):.10g}"


def _target_srs(pan: RasterInfo, ms: RasterInfo) -> str:
    """gdalwarp's -t_srs for an MS in another CRS than the PAN's ('' when they share one)."""
    if same_crs(pan.wkt, ms.wkt):
        return ""
    code = epsg_of(pan.wkt)
    return f"-t_srs EPSG:{code} " if code else "-t_srs <the PAN's CRS> "


def too_close_ratio(rx: float, ry: float, pan: RasterInfo, ms: RasterInfo, hint: RatioHint | None = None) -> str:
    """Why a pair whose MS/PAN ratio is below ``MIN_RATIO`` is refused, and the command that makes one that fuses.
    No command makes the PAN finer than it is (QA: an MS upsampled onto a 30 m PAN's grid was told to resample the
    PAN to 15 m): an MS with the PAN's pixel (below SAME_PIXEL) looks resampled onto the PAN grid and is averaged
    back to its own pixel, PAN pixel x the ratio of ``hint`` (the sensor's) or TYPICAL_RATIO; a ratio of 1.2-1.5
    (a SkySat-like 0.8 m PAN with a 1.0 m MS) averages the MS to twice the PAN pixel, ratio 2."""
    measured = f"{rx:.3g}" if abs(rx - ry) <= RATIO_TOLERANCE * rx else f"{rx:.3g} (x) x {ry:.3g} (y)"
    src = ms.path or "ms.tif"
    px, py = abs(pan.gt[1]), abs(pan.gt[5])
    warp = f"gdalwarp {_target_srs(pan, ms)}-tr"
    if math.sqrt(rx * ry) < SAME_PIXEL:
        ratio, whose = hint or (TYPICAL_RATIO, "")
        size = (f"the PAN pixel x {ratio}, {whose}" if whose else
                f"here the PAN pixel x {ratio}, a typical ratio: use the MS pixel of your product")
        return (f"The MS pixel is the PAN's (MS/PAN pixel size ratio {measured}): the MS looks resampled onto the "
                "PAN grid, and no PAN can sharpen an MS that already has its pixel (the resampling added no detail to "
                "sharpen from). "
                "Give the MS as delivered, at its own pixel, or average this one back to it "
                f"({size}): {warp} {_size_text(px * ratio)} {_size_text(py * ratio)} -r average "
                f"{shell_arg(src)} {shell_arg(beside(src, '_native.tif'))}")
    return (f"The MS pixel is only {measured} times the PAN's: pansharpening needs a PAN at least {MIN_RATIO:g} "
            "times finer than the MS (ratios 1.5-2 are resampled to 2). Check that PAN and MS are the right layers of "
            "the same product; a PAN this close to the MS adds little detail. To fuse them anyway, average the MS to "
            f"twice the PAN pixel (ratio 2; the PAN is never made finer than it is): {warp} {_size_text(2 * px)} "
            f"{_size_text(2 * py)} -r average {shell_arg(src)} {shell_arg(beside(src, '_2x.tif'))}")


def _ms_pixel_size(ms: RasterInfo, pan: RasterInfo) -> float | None:
    """Side of a square with the area of one MS pixel at the MS centre, in PAN CRS units.

    The pixel size GDAL suggests for a warp is that of the north-up box around a pixel, up to 1.41 times
    too large for a rotated MS (45 degrees); the area of the pixel itself does not depend on rotation.
    """
    gt = ms.gt
    c, r = ms.width / 2, ms.height / 2
    corners = ((c, r), (c + 1, r), (c, r + 1))
    pts = [(gt[0] + x * gt[1] + y * gt[2], gt[3] + x * gt[4] + y * gt[5]) for x, y in corners]
    if not same_crs(ms.wkt, pan.wkt):
        src, dst = osr.SpatialReference(), osr.SpatialReference()
        src.ImportFromWkt(ms.wkt)
        dst.ImportFromWkt(pan.wkt)
        for srs in (src, dst):
            srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        try:
            ct = osr.CoordinateTransformation(src, dst)
            pts = [ct.TransformPoint(x, y)[:2] for x, y in pts]
        except (RuntimeError, TypeError):
            return None
        if dst.IsGeographic():
            # longitudes of a pixel across the antimeridian: +179.99999 and -179.99999 are 0.00002 degrees apart, not
            # 360 (a UTM 60S MS whose centre pixel straddles 180 was taken as ratio 17915 and refused as too small)
            pts = [(x - 360.0 * round((x - pts[0][0]) / 360.0), y) for x, y in pts]
    (x0, y0), (x1, y1), (x2, y2) = pts
    area = abs((x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0))
    return math.sqrt(area) if math.isfinite(area) and area > 0 else None


def apparent_ratio(pan: RasterInfo, ms: RasterInfo) -> float | None:
    """The MS/PAN pixel size ratio the georeferences give (the geometric mean of both axes; an MS in another CRS by
    the area of its pixel there), None when it cannot be told (a PAN that is not north-up, no georeference)."""
    if not pan.georeferenced or not ms.georeferenced or pan.rotated or pan.gt[1] <= 0 or pan.gt[5] >= 0:
        return None
    if same_crs(pan.wkt, ms.wkt) and not ms.rotated:
        size = math.sqrt(abs(ms.gt[1] * ms.gt[5]))
    else:
        try:   # a pair plan_grid refuses (a CRS on one side only, a broken one) is refused there, with its message
            size = _ms_pixel_size(ms, pan)
        except (RuntimeError, TypeError, ValueError):
            return None
    ratio = size / math.sqrt(pan.gt[1] * -pan.gt[5]) if size else None
    return ratio if ratio is not None and math.isfinite(ratio) and ratio > 0 else None


def _rotation(ms: RasterInfo) -> float:
    """Rotation of the MS pixel grid against north-up, in degrees."""
    return math.degrees(math.atan2(ms.gt[4], ms.gt[1]))


def _turn(ms: RasterInfo) -> str:
    """How a rotated geotransform turns the MS grid, for the warning: rotated by an angle when its rows and columns
    stay at right angles, else sheared (then also rotated, or not)."""
    gt = ms.gt
    # the angle between the pixel grid's row and column directions: 90 degrees unless it is sheared
    cross = gt[1] * gt[5] - gt[2] * gt[4]
    between = math.degrees(math.atan2(abs(cross), gt[1] * gt[2] + gt[4] * gt[5]))
    if abs(between - 90.0) < 0.05:
        return f"is rotated by {_rotation(ms):.1f} degrees against north-up"
    if abs(_rotation(ms)) < 0.05:
        return "is sheared (its rows and columns are not at right angles)"
    return (f"is rotated or sheared (its rows run {_rotation(ms):.1f} degrees off east-west and meet its columns at "
            f"{between:.1f} degrees, not 90)")


def _lonlat_footprint(ms: RasterInfo, pan: RasterInfo) -> tuple[float, float, float, float] | None:
    """(xmin, ymin, xmax, ymax) of the MS footprint (its densified edges) in a PAN CRS in degrees, its longitudes
    taken within 180 degrees of the PAN's centre (the PAN's convention: beyond +180 or below -180 when it is written
    so); None when the PAN CRS is not geographic or the edges do not transform. GDAL's own guess spans 358 degrees
    for an MS across the antimeridian (-179.9 and +179.9), which read as a pair that does not overlap."""
    src, dst = osr.SpatialReference(), osr.SpatialReference()
    if not ms.wkt or src.ImportFromWkt(ms.wkt) != 0 or dst.ImportFromWkt(pan.wkt) != 0 or not dst.IsGeographic():
        return None
    for srs in (src, dst):
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    gt, n = ms.gt, 21
    edge = [(ms.width * i / (n - 1), r) for i in range(n) for r in (0, ms.height)]
    edge += [(c, ms.height * i / (n - 1)) for i in range(n) for c in (0, ms.width)]
    try:
        ct = osr.CoordinateTransformation(src, dst)
        pts = [ct.TransformPoint(gt[0] + c * gt[1] + r * gt[2], gt[3] + c * gt[4] + r * gt[5])[:2] for c, r in edge]
    except (RuntimeError, TypeError):
        return None
    if not all(math.isfinite(v) for p in pts for v in p):
        return None
    centre = pan.gt[0] + pan.width / 2 * pan.gt[1]
    xs = [x - 360.0 * round((x - centre) / 360.0) for x, _ in pts]
    ys = [y for _, y in pts]
    return min(xs), min(ys), max(xs), max(ys)


def _footprint(ms_ds: gdal.Dataset, ms: RasterInfo, pan: RasterInfo,
               operation: str | None) -> tuple[float, float, float, float] | None:
    """(xmin, ymin, xmax, ymax) of the MS footprint (its densified edges) in the PAN CRS, moved by the operation the
    warp uses; None when the edges do not transform. GDAL's own guess (``AutoCreateWarpedVRT``) rounds its size to
    whole pixels: up to half an MS pixel off the footprint (QA130: a PAN row the MS covers left out as nodata)."""
    opts = [f"SRC_SRS={ms.wkt}", f"DST_SRS={pan.wkt}"] if ms.wkt and pan.wkt else []
    if operation and opts:
        opts.append(f"COORDINATE_OPERATION={datums.for_warper(operation, ms.wkt, pan.wkt)}")
    n = 21
    edge = [(ms.width * i / (n - 1), r) for i in range(n) for r in (0, ms.height)]
    edge += [(c, ms.height * i / (n - 1)) for i in range(n) for c in (0, ms.width)]
    try:
        with quiet_gdal():
            tr = gdal.Transformer(ms_ds, None, opts)
            pts = [tr.TransformPoint(0, c, r) for c, r in edge]
    except (RuntimeError, TypeError):
        return None
    if not all(ok and math.isfinite(p[0]) and math.isfinite(p[1]) for ok, p in pts):
        return None
    xs, ys = [p[0] for _, p in pts], [p[1] for _, p in pts]
    return min(xs), min(ys), max(xs), max(ys)


def _warp_ms(ms_ds: gdal.Dataset, ms: RasterInfo, pan: RasterInfo, ratio: int | None = None,
             notes: list[str] | None = None, hint: RatioHint | None = None,
             centres_inside: bool = False, operation: str | None = None, reprojected: bool = False
             ) -> tuple[gdal.Dataset, int, tuple[float, float, float, float]]:
    """Reproject MS into the PAN CRS on a grid aligned with PAN whose pixels are a whole ratio of PAN's
    (``ratio``, else the reprojected pixel size's: as it is within 10 % of a whole number, else the nearest whole number
    (half up), said in ``notes`` — as the same-CRS path resamples a ratio that is not whole). ``hint``: the
    product's ratio for the refusal of a ratio below 1.5 (``too_close_ratio``). ``centres_inside``: the grid ends
    with the last pixel whose centre lies inside the MS (resampling a ratio that is not whole), not one past it.
    ``operation``: the PROJ pipeline from the MS CRS to the PAN's to use (a QGIS project's choice), else PROJ's.
    ``reprojected``: the grid is laid over the exact footprint (``_footprint``), its edges within EDGE_TOLERANCE of a
    PAN pixel edge snapped to it. Also returns the footprint (left, top, right, bottom) the grid was laid over (None
    when it is not the exact one)."""
    guess, msg = gdal_call(gdal.AutoCreateWarpedVRT, ms_ds, ms.wkt or None, pan.wkt, gdal.GRA_NearestNeighbour)
    if guess is None:
        raise InputError(f"cannot reproject the MS raster into the PAN CRS: {msg}")
    ggt = guess.GetGeoTransform()
    px, py = pan.gt[1], -pan.gt[5]
    if ratio is None:
        # a reprojected pixel size is never exact: accept 10% around a whole ratio
        ms_size = _ms_pixel_size(ms, pan) or math.sqrt(abs(ggt[1] * ggt[5]))
        raw = _ratio(ms_size, math.sqrt(px * py), "x and y")
        ratio = nearest_ratio(raw)
        if ratio < 2:   # the same refusal and command as on one CRS, in the PAN's CRS
            raise InputError(too_close_ratio(raw, raw, pan, ms, hint))
        if abs(raw - ratio) > 0.1 * ratio and notes is not None:
            notes.append(f"After reprojection the MS/PAN pixel size ratio is {raw:.3g}, not a whole number: the MS is "
                         f"resampled to {ratio} PAN pixels per MS pixel.")
    # the bounds of the warped MS, snapped outward to the PAN grid
    x0, y0 = ggt[0], ggt[3]
    x1, y1 = x0 + ggt[1] * guess.RasterXSize, y0 + ggt[5] * guess.RasterYSize
    exact = _footprint(ms_ds, ms, pan, operation) if reprojected else None
    if exact is not None:
        x0, y1, x1, y0 = exact
    lonlat = _lonlat_footprint(ms, pan) if abs(x1 - x0) > 180.0 else None
    if lonlat is not None and lonlat[2] - lonlat[0] < 180.0:
        # a PAN in degrees and an MS across the antimeridian: its footprint in the PAN's longitudes
        x0, y1, x1, y0 = lonlat
    # an edge within EDGE_TOLERANCE past a PAN pixel edge starts there: a grid a whole PAN row above the MS put its
    # first and last pixel centres outside it (nodata, which the PAN row beside them was fused from)
    snap = EDGE_TOLERANCE if reprojected else 0.0
    c0 = math.floor((x0 - pan.gt[0]) / px + snap)
    r0 = math.floor((pan.gt[3] - y0) / py + snap)
    ncols = math.ceil(((x1 - pan.gt[0]) / px - c0) / ratio)
    nrows = math.ceil(((pan.gt[3] - y1) / py - r0) / ratio)
    if centres_inside:
        # a last pixel whose centre lies past the MS is all nodata (0 on an MS without one): as context of the
        # output's last rows and columns it read as a hole (QA, ratio 4.2: 3 tiles "with nodata", and the edge 8-10 DN
        # off the MS resampled beforehand); the edge is then read as an integer-ratio MS's, past its last pixel
        ncols = max(1, math.ceil(((x1 - pan.gt[0]) / px - c0) / ratio + 0.5) - 1)
        nrows = max(1, math.ceil(((pan.gt[3] - y1) / py - r0) / ratio + 0.5) - 1)
    bounds = (pan.gt[0] + c0 * px, pan.gt[3] - (r0 + nrows * ratio) * py,
              pan.gt[0] + (c0 + ncols * ratio) * px, pan.gt[3] - r0 * py)
    opts = gdal.WarpOptions(
        format="VRT", dstSRS=pan.wkt, outputBounds=bounds, xRes=px * ratio, yRes=py * ratio,
        resampleAlg="cubic", srcNodata=ms.nodata, dstNodata=ms.nodata,
        **({"coordinateOperation": datums.for_warper(operation, ms.wkt, pan.wkt)} if operation else {}),
    )
    warped, msg = gdal_call(gdal.Warp, "", ms_ds, options=opts)
    if warped is None:
        raise InputError(f"cannot reproject the MS raster into the PAN CRS: {msg}")
    # no footprint to trim to when the exact one could not be computed (GDAL's guess is rounded to whole pixels)
    return named_view(warped, ms_ds), ratio, (x0, y0, x1, y1) if exact is not None else None


def _flip(ms: RasterInfo) -> str | None:
    """How an axis-aligned MS grid in the PAN CRS is stored other than north-up ('south-up (positive pixel height)',
    'mirrored east-west ...', or both), None when it is north-up or not axis-aligned."""
    gt = ms.gt
    if ms.rotated or gt[1] == 0 or gt[5] == 0:
        return None
    how = [text for flipped, text in ((gt[5] > 0, "south-up (positive pixel height)"),
                                      (gt[1] < 0, "mirrored east-west (negative pixel width)")) if flipped]
    return " and ".join(how) or None


def north_up_view(ms_ds: gdal.Dataset, ms: RasterInfo) -> tuple[gdal.Dataset, RasterInfo]:
    """(view, its info): an MS stored south-up and/or mirrored east-west (``_flip``) as a north-up virtual raster of
    the very same pixels. GDAL's warper onto the MS's own footprint at its own pixel count, nearest neighbour: every
    output pixel centre is a source pixel centre, so the view is a pure flip (no value changes; the cubic warp onto the
    PAN lattice this replaced moved Landsat 8 by up to 1300 DN)."""
    gt = ms.gt
    xs, ys = (gt[0], gt[0] + ms.width * gt[1]), (gt[3], gt[3] + ms.height * gt[5])
    opts = gdal.WarpOptions(format="VRT", outputBounds=(min(xs), min(ys), max(xs), max(ys)), width=ms.width,
                            height=ms.height, resampleAlg="near")
    view, msg = gdal_call(gdal.Warp, "", ms_ds, options=opts)
    if view is None:
        raise InputError(f"cannot read the MS raster north-up: {msg}")
    return named_view(view, ms_ds), replace(ms, gt=tuple(view.GetGeoTransform()))


def coord_text(v: float) -> str:
    """A coordinate as messages write it: plain digits, never scientific notation (5747457.25, not 5.74746e+06),
    with about nine significant digits (centimetres in metres, a millimetre in degrees) and no trailing zeros."""
    whole = len(str(int(abs(v)))) if abs(v) >= 1 else 1
    text = f"{v:.{max(0, min(7, 9 - whole))}f}"
    text = text.rstrip("0").rstrip(".") if "." in text else text
    return "0" if text in ("-0", "") else text


def extent_text(x0: float, y0: float, x1: float, y1: float) -> str:
    """'x 593270 to 593570, y 5747360 to 5747660': an extent (xmin, ymin, xmax, ymax) as messages name it."""
    return f"x {coord_text(x0)} to {coord_text(x1)}, y {coord_text(y0)} to {coord_text(y1)}"


def assign_crs(ds: gdal.Dataset, wkt: str | None, role: str) -> tuple[gdal.Dataset, str | None]:
    """``ds`` with ``wkt`` assigned on a virtual copy, and the warning that says so, when it differs from the raster's
    own CRS (a CRS set on the QGIS layer, which QGIS shows the pixels in); ``(ds, None)`` otherwise. Assigned, never
    reprojected: the pixels stay where the file's geotransform puts them, in the layer's coordinates."""
    own = ds.GetProjection() or ""
    # placed alike too: QGIS's EPSG:23031 for a file's "+proj=utm +zone=31 +ellps=intl" is ED50's datum shift apart
    gt = ds.GetGeoTransform()
    centre = (gt[0] + ds.RasterXSize / 2 * gt[1] + ds.RasterYSize / 2 * gt[2],
              gt[3] + ds.RasterXSize / 2 * gt[4] + ds.RasterYSize / 2 * gt[5])
    if not wkt or (same_crs(own, wkt) and datums.placed_alike(own, wkt, *centre)):
        return ds, None
    vrt, msg = gdal_call(gdal.Translate, "", ds, format="VRT", outputSRS=wkt)
    if vrt is None:
        raise InputError(f"cannot assign {crs_name(wkt)}, the {role} layer's CRS, to its raster: {msg}")
    named_view(vrt, ds)
    name = crs_name(wkt)
    if own:
        return vrt, (f"The {role} layer's CRS set in QGIS, {name}, replaces its file's, {crs_name(own)}: its pixels "
                     f"are placed in {name}, as QGIS shows the layer.")
    return vrt, f"The {role} layer's CRS set in QGIS, {name}, is used: its file has none."


def with_crs(ds: gdal.Dataset, info: RasterInfo, wkt: str | None, role: str,
             warnings: list[str]) -> tuple[gdal.Dataset, RasterInfo]:
    """(dataset, info) with the layer's CRS ``wkt`` (``assign_crs``), its warning appended to ``warnings``."""
    out, note = assign_crs(ds, wkt, role)
    if note is None:
        return ds, info
    warnings.append(note)
    return out, replace(info, wkt=out.GetProjection())


def _check_degrees(info: RasterInfo, name: str) -> None:
    """InputError when a raster in a geographic CRS has corners no longitude / latitude can have: coordinates in
    metres under a CRS in degrees (a wrong CRS set on the QGIS layer or in the file) read as "MS finer than PAN"."""
    srs = osr.SpatialReference()
    if not info.wkt or srs.ImportFromWkt(info.wkt) != 0 or not srs.IsGeographic():
        return
    gt = info.gt
    xs = [gt[0] + c * gt[1] + r * gt[2] for c in (0, info.width) for r in (0, info.height)]
    ys = [gt[3] + c * gt[4] + r * gt[5] for c in (0, info.width) for r in (0, info.height)]
    if max(abs(v) for v in xs) > 360 or max(abs(v) for v in ys) > 90.5:
        raise InputError(f"the {name} raster's coordinates ({extent_text(min(xs), min(ys), max(xs), max(ys))}) "
                         f"cannot be longitudes and latitudes, yet its CRS, {crs_name(info.wkt)}, is in "
                         "degrees: the CRS is wrong (set on the QGIS layer, or in the file); give it the CRS its "
                         "coordinates are in")


def _is_local(wkt: str) -> bool:
    """Whether ``wkt`` is a local / engineering CRS (LOCAL_CS, ENGCRS): coordinates on no datum."""
    srs = osr.SpatialReference()
    return bool(wkt) and srs.ImportFromWkt(wkt) == 0 and bool(srs.IsLocal())


def _check_crs_pair(pan: RasterInfo, ms: RasterInfo) -> None:
    """InputError, with the fix, when the two CRSs cannot be related: one raster has none, or they differ and one
    is a local / engineering CRS (PROJ has no operation from one to the other)."""
    if bool(pan.wkt) != bool(ms.wkt):
        which, other = ("PAN", "MS") if not pan.wkt else ("MS", "PAN")
        name = crs_name(pan.wkt or ms.wkt)
        raise InputError(f"the {which} raster has no coordinate reference system (CRS) while the {other} has one, "
                         f"{name}, so the two cannot be placed against each other: assign the {which} raster the "
                         f"CRS its coordinates are in, the {other}'s if they are in it: set it on its QGIS layer "
                         f"(Layer Properties > Source), or in the file: {ASSIGN_CRS}")
    if same_crs(pan.wkt, ms.wkt):
        return
    local = [role for role, info in (("PAN", pan), ("MS", ms)) if _is_local(info.wkt)]
    if local:
        which = " and the ".join(local)
        raise InputError(
            f"the {which} raster{'s are' if len(local) > 1 else ' is'} in a local (engineering) CRS, which cannot be "
            f"related to the other's (PAN: {crs_name(pan.wkt)}, MS: {crs_name(ms.wkt)}): there is no transformation "
            f"between a local CRS and any other. Assign the {which} raster the real CRS its coordinates are in (or "
            "give both rasters the same CRS, if their coordinates are in one system): on its QGIS layer (Layer "
            f"Properties > Source), or in the file: {ASSIGN_CRS}")


def landsat_layout(ratio: int, frac_c: float, frac_r: float) -> bool:
    """Whether an MS grid shifted by (``frac_c``, ``frac_r``) PAN pixels is Landsat's standard layout: ratio 2, half
    a PAN pixel on both axes (either sign: which one depends only on where the scene's grids start)."""
    return ratio == 2 and all(abs(abs(f) - 0.5) <= LANDSAT_LAYOUT_TOLERANCE for f in (frac_c, frac_r))


def ms_lattice(ms_origin: tuple[float, float]) -> tuple[int, int]:
    """The PAN pixel corner (row, col) nearest the MS grid's top-left corner ``ms_origin`` (PAN pixels; half-way: the
    one above / to the left): where the PAN's low-pass is decimated (``classical.TileContext.lattice``). It moves
    with the MS, so a PAN cut at any pixel (the MS kept whole) is fused as the same area of the uncut scene; an MS
    aligned with the PAN, Landsat's half-pixel layout (+0.5) and any shift below half a PAN pixel give (0, 0) mod
    the ratio, as before."""
    # a corner within EDGE_TOLERANCE of half-way takes the one above / to the left: georeference noise (WorldView-2
    # carries ~6e-5 PAN pixels; QA moved a Landsat MS by 1 mm) must not tip it to the other lattice, which moved
    # every output pixel (up to 1069 DN on a Landsat 8 crop)
    return math.ceil(ms_origin[0] - 0.5 - EDGE_TOLERANCE), math.ceil(ms_origin[1] - 0.5 - EDGE_TOLERANCE)



def grid_offset(origin: float, ratio: int) -> float:
    """The MS grid's offset against the PAN grid along one axis, from its origin ``origin`` (PAN pixels), modulo an
    MS pixel: within half an MS pixel, and half-way (within ``EDGE_TOLERANCE``) taken as +ratio/2 on either axis.
    Python's round() split an MS moved 2 PAN pixels east and 2 south (ratio 4) by its georeference noise: 2.00003
    read -2 and 1.99998 read +2, "(+2, -2)" for an equal move."""
    return origin - math.ceil((origin - EDGE_TOLERANCE) / ratio - 0.5) * ratio


def whole_shift(frac_c: float, frac_r: float) -> bool:
    """Whether an MS grid shifted by (``frac_c``, ``frac_r``) PAN pixels is off by whole PAN pixels on both axes
    (within ``EDGE_TOLERANCE``): the pair was cut from its scenes at different pixels, fused exactly."""
    return all(abs(f - round(f)) <= EDGE_TOLERANCE for f in (frac_c, frac_r))


def _half_covered(c0: float, r0: float, c1: float, r1: float, pan: RasterInfo) -> str:
    """The clause naming the PAN edges where the MS footprint [c0, c1) x [r0, r1) (PAN pixels) ends half-way through
    a PAN pixel inside the PAN: the output leaves those pixels out (it lies on whole PAN pixels the MS covers)."""
    def half(v: float) -> bool:
        return abs(v - round(v)) > EDGE_TOLERANCE

    edges = [name for name, inside, v in (("left", c0 > 0, c0), ("top", r0 > 0, r0),
                                          ("right", c1 < pan.width, c1), ("bottom", r1 < pan.height, r1))
             if inside and half(v)]
    if not edges:
        return ""
    where = ", ".join(edges[:-1]) + " and " + edges[-1] if len(edges) > 1 else edges[0]
    return (f", and the output leaves out the PAN pixels the MS covers only half of (one column or row at the "
            f"{where} edge{'s' if len(edges) > 1 else ''})")


def _own_extent(info: RasterInfo) -> tuple[float, float, float, float]:
    """(xmin, ymin, xmax, ymax) of a raster's corners in its own CRS (a rotated grid: the box around them)."""
    gt, w, h = info.gt, info.width, info.height
    xs = [gt[0] + c * gt[1] + r * gt[2] for c in (0, w) for r in (0, h)]
    ys = [gt[3] + c * gt[4] + r * gt[5] for c in (0, w) for r in (0, h)]
    return min(xs), min(ys), max(xs), max(ys)


def _lonlat_centre(info: RasterInfo) -> tuple[float, float] | None:
    """(longitude, latitude) of a raster's centre, from its own CRS (always within that CRS's domain), or None."""
    srs = osr.SpatialReference()
    if not info.wkt or srs.ImportFromWkt(info.wkt) != 0 or not (srs.IsProjected() or srs.IsGeographic()):
        return None
    geo = srs.CloneGeogCS()
    for s in (srs, geo):
        s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    x0, y0, x1, y1 = _own_extent(info)
    try:
        with quiet_gdal():
            lon, lat = osr.CoordinateTransformation(srs, geo).TransformPoint((x0 + x1) / 2, (y0 + y1) / 2)[:2]
    except (RuntimeError, TypeError):
        return None
    return (lon, lat) if math.isfinite(lon) and math.isfinite(lat) else None


def _lonlat_text(lonlat: tuple[float, float] | None) -> str:
    """', around 51.8720°N 4.3567°E' (four decimals: about 10 m), or '' when the place is not known."""
    if lonlat is None:
        return ""
    lon, lat = lonlat
    lon = (lon + 180.0) % 360.0 - 180.0
    return f", around {abs(lat):.4f}°{'N' if lat >= 0 else 'S'} {abs(lon):.4f}°{'E' if lon >= 0 else 'W'}"


def _outside_use(lonlat: tuple[float, float] | None, wkt: str) -> bool:
    """Whether ``lonlat`` lies outside the area of use of the CRS ``wkt`` (False when either is unknown): UTM zone
    31N's is 0° to 6° E, a projection PROJ computes nonsense in 90° of longitude away (x -7714419 for an MS in
    Florida)."""
    srs = osr.SpatialReference()
    if lonlat is None or not wkt or srs.ImportFromWkt(wkt) != 0:
        return False
    area = srs.GetAreaOfUse()
    if area is None:
        return False
    lon, lat = lonlat
    w, e = area.west_lon_degree, area.east_lon_degree
    if e < w:   # across the antimeridian
        e += 360.0
    lon = w + (lon - w) % 360.0
    return not (w <= lon <= e and area.south_lat_degree <= lat <= area.north_lat_degree)


def _no_overlap(pan: RasterInfo, ms: RasterInfo, placed: tuple, reprojection_errors: list[str]) -> str:
    """The refusal of a pair that does not overlap, naming both extents. ``placed`` is the MS's (geotransform,
    width, height) on the PAN's CRS. An MS in another CRS that does not reproject into the PAN's (PROJ reported
    errors, or it lies outside that CRS's area of use) is named in its own CRS, with where both lie on the globe: its
    reprojected extent was nonsense ("x -7714418.96 to -7705545.08" for an MS in Florida against a PAN in UTM 31N)."""
    # a pair across the antimeridian written once as +180 and once as -180 is no longer refused (``antimeridian``)
    tail = "(a CRS or georeference is wrong)"
    pan_box = extent_text(*_own_extent(pan))
    if not same_crs(pan.wkt, ms.wkt):
        pan_at, ms_at = _lonlat_centre(pan), _lonlat_centre(ms)
        if reprojection_errors or _outside_use(ms_at, pan.wkt):
            return (f"the PAN and MS rasters do not overlap: the PAN covers {pan_box} in its CRS ({crs_name(pan.wkt)})"
                    f"{_lonlat_text(pan_at)}; the MS covers {extent_text(*_own_extent(ms))} in its own CRS "
                    f"({crs_name(ms.wkt)}){_lonlat_text(ms_at)}, too far from where the PAN's CRS is defined to be "
                    "reprojected into it. Give the MS of the PAN's scene, or, if the MS's coordinates are not in the "
                    f"CRS it declares, assign it the right one ({ASSIGN_CRS})")
    gt, w, h = placed
    ms_box = extent_text(gt[0], gt[3] + h * gt[5], gt[0] + w * gt[1], gt[3])
    return (f"the PAN and MS rasters do not overlap: in the PAN's CRS ({crs_name(pan.wkt)}) the PAN covers {pan_box}, "
            f"the MS {ms_box} {tail}")


def _moved_across(pan: RasterInfo, ms: RasterInfo, shift: float) -> str:
    """The warning for an MS whose longitudes are moved by ``shift`` degrees into the PAN's (``antimeridian``),
    with the command that writes them so (the MS's corners, moved; a rotated MS: no corners to give)."""
    (px0, py0, px1, py1), (mx0, my0, mx1, my1) = _own_extent(pan), _own_extent(ms)
    way = "east" if shift > 0 else "west"
    text = (f"The MS raster's longitudes are written {abs(shift):g} degrees apart from the PAN's, at the same place "
            f"across the antimeridian (in {crs_name(pan.wkt)}, the PAN covers {extent_text(px0, py0, px1, py1)}, "
            f"the MS {extent_text(mx0, my0, mx1, my1)}): the MS is placed {abs(shift):g} degrees {way}, in the PAN's "
            "longitudes, pixel for pixel (no resampling)")
    if ms.rotated:
        return text + f"; to write it so, add {shift:g} to its geotransform's x origin."
    gt = ms.gt
    corners = " ".join(f"{v:.15g}" for v in (gt[0] + shift, gt[3], gt[0] + shift + ms.width * gt[1],
                                            gt[3] + ms.height * gt[5]))
    return text + f"; to write it so: gdal_edit.py -a_ullr {corners} {shell_arg(ms.path or 'ms.tif')}"


def min_overlap_px(ratio: int) -> int:
    """PAN pixels per side a fused area needs at ``ratio``: the whole PAN/MS overlap, or the part EXTENT keeps."""
    return MIN_OVERLAP_MS * ratio


def too_small(ratio: int) -> str:
    """The refusal's words for an area below ``min_overlap_px`` (a scene's overlap and an EXTENT say the same)."""
    n = min_overlap_px(ratio)
    return (f"too small to fuse; the minimum is {n} x {n} PAN pixels ({MIN_OVERLAP_MS} x {MIN_OVERLAP_MS} MS pixels "
            f"at ratio {ratio})")


def plan_grid(pan: RasterInfo, ms: RasterInfo, ms_ds: gdal.Dataset, hint: RatioHint | None = None,
              ms_operation: str | None = None, ms_operation_text: str | None = None) -> GridPlan:
    """Check the geometry of a PAN/MS pair and work out the output grid. Raises InputError. ``hint``: the
    product's MS/PAN ratio (the sensor's), for the command in the refusal of a ratio below 1.5. ``ms_operation``:
    the PROJ pipeline reprojecting an MS in another CRS (a QGIS project's), else PROJ's default; ``ms_operation_text``:
    its name and accuracy as QGIS gives them, for the reprojection warning."""
    for info, name in ((pan, "PAN"), (ms, "MS")):
        check_map_grid(info, name, others={"PAN": pan, "MS": ms})
        _check_degrees(info, name)
    if pan.rotated or pan.gt[5] >= 0 or pan.gt[1] <= 0:
        how = ("is mirrored east-west (negative pixel width)" if pan.gt[1] <= 0 and not pan.rotated else
               "is rotated or sheared" if pan.rotated else "is south-up (positive pixel height)")
        raise InputError(f"the PAN raster {how}: the output lies on the PAN's grid, which must be north-up; warp it "
                         "first (Raster > Projections > Warp (Reproject), or gdalwarp) and give the warped raster")
    _check_crs_pair(pan, ms)
    warnings: list[str] = []
    if not pan.wkt:   # a grid alone places the pair against each other, not on the map
        warnings.append(NO_CRS)
    warped, foot, view = None, None, None
    notes: list[str] = []
    lon_moved = antimeridian.lon_shift(pan, ms) if same_crs(pan.wkt, ms.wkt) else 0.0
    if lon_moved:   # one place written once past +180 and once past -180: as an MS in another CRS is reprojected
        warnings.append(_moved_across(pan, ms, lon_moved))
        view, ms = antimeridian.moved_view(ms_ds, ms, lon_moved)
        ms_ds = view
    flip = _flip(ms) if same_crs(pan.wkt, ms.wkt) else None
    if flip:   # storage order alone: the same pixels, read north-up, take the north-up path below
        view, ms = north_up_view(ms_ds, ms)
        ms_ds = view
        notes.append(f"The MS raster is stored {flip}: it is read flipped to north-up, pixel for pixel (no "
                     "resampling).")
    reprojection_errors: list[str] = []
    if not same_crs(pan.wkt, ms.wkt) or ms.rotated or ms.gt[5] >= 0 or ms.gt[1] <= 0:
        other_crs = not same_crs(pan.wkt, ms.wkt)
        # a CRS with no datum shift to the PAN's (a bare PROJ string): moved by none, about 100 m off for ED50
        ballpark = datums.ballpark_warning(ms.wkt, pan.wkt, crs_name(ms.wkt), crs_name(pan.wkt)) if other_crs else None
        if ballpark:
            warnings.append(ballpark)
        with quiet_gdal() as reprojection_errors:   # said below when they matter (a pair that does not overlap)
            # as the same-CRS resampled grid: it ends with its last pixel whose centre lies in the MS, and the output
            # keeps to the MS's footprint (below)
            warped, ratio, foot = _warp_ms(ms_ds, ms, pan, notes=warnings, hint=hint, centres_inside=True,
                                           reprojected=True, operation=ms_operation if other_crs else None)
        datum_text = ""
        if other_crs:
            why = "is in another CRS than PAN"
            datum_text = datums.transformation_text(ms.wkt, pan.wkt, ms_operation, ms_operation_text)
        elif ms.rotated:
            why = _turn(ms)
        else:   # a flipped grid was read north-up above: what is left is degenerate (a zero pixel size)
            why = "is not north-up"
        warnings.append(
            f"The MS raster {why}: it is reprojected on the fly (cubic) onto the PAN CRS at "
            f"{ratio} PAN pixels per MS pixel.{datum_text}"
        )
        if ms.nodata is None:
            # the warp fills the corners outside the MS footprint with 0, which then reads as data
            warnings.append("The MS raster declares no nodata value: where the reprojected MS does not cover "
                            "PAN, its fill value 0 is fused as data. Set an MS nodata value to mask it.")
        ms_gt, ms_w, ms_h = warped.GetGeoTransform(), warped.RasterXSize, warped.RasterYSize
    else:
        ms_gt, ms_w, ms_h = ms.gt, ms.width, ms.height
        rx, ry = _ratio(ms_gt[1], pan.gt[1], "x"), _ratio(-ms_gt[5], -pan.gt[5], "y")
        ratio = _integer_ratio(rx, ry, pan, ms, hint)
        drift = None if ratio is None else max(abs(rx - ratio) * ms_w, abs(ry - ratio) * ms_h)
        if ratio is None or drift > DRIFT_TOLERANCE:
            # e.g. ZiYuan-3 (2.1 m / 5.8 m) or resampled products: GDAL's pansharpening takes any ratio; the fusion
            # here works on whole ratios, so the MS is resampled to the nearest one (half up)
            ratio = ratio or max(2, nearest_ratio(math.sqrt(rx * ry)))
            warped, ratio, _ = _warp_ms(ms_ds, ms, pan, ratio, centres_inside=True)
            warnings.append(
                (f"The MS/PAN pixel size ratio is {rx:.4g} x {ry:.4g}, not one whole number on both axes"
                 if drift is None else f"The MS/PAN pixel size ratio is {rx:.7g} x {ry:.7g}: taken as {ratio}, the "
                 f"MS would drift up to {drift:.2f} PAN pixels from its georeference across the scene")
                + f": the MS is resampled on the fly (cubic) to {ratio} PAN pixels per MS pixel."
            )
            # the output stays inside the MS's own footprint (the resampled grid is snapped outward)
            foot = (ms_gt[0], ms_gt[3], ms_gt[0] + ms_w * ms_gt[1], ms_gt[3] + ms_h * ms_gt[5])
            ms_gt, ms_w, ms_h = warped.GetGeoTransform(), warped.RasterXSize, warped.RasterYSize
    px, py = pan.gt[1], -pan.gt[5]
    ms_c0 = (ms_gt[0] - pan.gt[0]) / px
    ms_r0 = (pan.gt[3] - ms_gt[3]) / py
    ms_c1 = ms_c0 + ms_w * ms_gt[1] / px
    ms_r1 = ms_r0 + ms_h * -ms_gt[5] / py
    c0, r0, c1, r1 = ms_c0, ms_r0, ms_c1, ms_r1   # the MS's footprint on the PAN grid
    if foot is not None:
        fc0, fr0 = (foot[0] - pan.gt[0]) / px, (pan.gt[3] - foot[1]) / py
        fc1, fr1 = (foot[2] - pan.gt[0]) / px, (pan.gt[3] - foot[3]) / py
        # the resampled grid ends with its last pixel whose centre lies in the MS (``_warp_ms(centres_inside)``), at
        # most half a pixel short of it: the PAN pixels the MS covers beyond are fused too, read past that pixel as
        # an integer-ratio MS's edge is (the output keeps the MS's footprint)
        c0, r0, c1, r1 = max(c0, fc0), max(r0, fr0), fc1, fr1
    c_start = max(0, math.ceil(c0 - EDGE_TOLERANCE))
    r_start = max(0, math.ceil(r0 - EDGE_TOLERANCE))
    c_end = min(pan.width, math.floor(c1 + EDGE_TOLERANCE))
    r_end = min(pan.height, math.floor(r1 + EDGE_TOLERANCE))
    if c_end <= c_start or r_end <= r_start:
        raise InputError(_no_overlap(pan, ms, (ms_gt, ms_w, ms_h), reprojection_errors))
    min_px = min_overlap_px(ratio)
    if c_end - c_start < min_px or r_end - r_start < min_px:
        raise InputError(f"the PAN and MS rasters overlap on only {c_end - c_start} x {r_end - r_start} PAN pixels: "
                         f"{too_small(ratio)}")
    frac_r, frac_c = grid_offset(ms_r0, ratio), grid_offset(ms_c0, ratio)
    if warped is None and (abs(frac_r) > EDGE_TOLERANCE or abs(frac_c) > EDGE_TOLERANCE):
        shift = f"{GRID_SHIFT} by ({frac_c:+.2f}, {frac_r:+.2f}) PAN pixels (x, y) against the PAN grid"
        # the offset is only known modulo an MS pixel (the grids repeat every ``ratio`` PAN pixels): an MS moved
        # by +3 PAN pixels at ratio 4 reads -1; both are named, so a known move is recognised
        alt_c, alt_r = (f - math.copysign(ratio, f) if abs(f) > EDGE_TOLERANCE else 0.0 for f in (frac_c, frac_r))
        if whole_shift(frac_c, frac_r):
            # the PAN's low-pass follows the MS lattice (``ms_lattice``) and the MS pixels are interpolated as on an
            # aligned pair: the output is that of the same area of the uncut pair. An MS whose content is off is
            # still warned of, by the offset measured on the scene (``coregistration.offset_note``)
            notes.append(f"{GRID_SHIFT} by whole PAN pixels ({round(frac_c):+d}, {round(frac_r):+d}) (x, y) against "
                         f"the PAN grid (the same grid as a shift by ({round(alt_c):+d}, {round(alt_r):+d})): the "
                         "PAN and the MS were cut from their scenes at different pixels, which is normal; the fusion "
                         "follows the MS grid, so the classical methods give that area of the uncut pair exactly (a "
                         "learned model, which also reads the scene's statistics, close to it, not exactly).")
        elif landsat_layout(ratio, frac_c, frac_r):
            notes.append(f"{shift}: the usual Landsat layout (USGS delivers the MS pixel centres on PAN pixel "
                         "centres), not a misregistration; MS is resampled at the true position of every PAN pixel"
                         + _half_covered(c0, r0, c1, r1, pan) + ".")
        else:
            # unlike Landsat's half-pixel layout (a product convention), this shift is no known layout: a crop
            # at another pixel, or an MS that really is off; the plugin cannot tell which, so it stays a warning
            warnings.append(f"{shift} (the same grid as a shift by ({alt_c:+.2f}, {alt_r:+.2f})): expected when the "
                            "PAN and the MS were cut from their scenes at different pixels; otherwise the MS's "
                            f"georeference is off (check it, or tick {param('COREGISTER')}). The MS is resampled at "
                            "the true position of every PAN pixel.")
    out_gt = (pan.gt[0] + c_start * px, px, 0.0, pan.gt[3] - r_start * py, 0.0, -py)
    return GridPlan(
        ratio=ratio,
        region=(r_start, c_start, r_end - r_start, c_end - c_start),
        ms_origin=(ms_r0, ms_c0),
        out_gt=out_gt,
        ms_dataset=warped if warped is not None else view,
        resampled=warped is not None,
        warnings=warnings,
        notes=notes,
    )
