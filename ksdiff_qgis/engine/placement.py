"""Whether each input lies on a map grid, said alike by ksdiff:pansharpen and ksdiff:assess before anything else.

A raw image located by RPC coefficients or ground control points only is drawn by QGIS through them, but has no
pixel grid to fuse or compare on. Its refusal gives the gdalwarp commands that make a pair that fuses cleanly:
``-dstnodata 0`` (the warped corners outside the image are marked, not fused as data) and ``-tr``, ``-tap``, one
``-te``
(PAN at its pixel size, MS at ratio times it, both over one extent on whole MS pixels: the grids start together;
without it the two warps start wherever each footprint starts, a fraction of a pixel apart); ``-tap`` alone where the
extent cannot be worked out).
"""
from __future__ import annotations

import math

from osgeo import gdal, osr

from .errors import InputError
from .gdalutil import gdal_call, quiet_metadata
from .raster_io import DEFAULT_GT, RasterInfo
from .shellcmd import beside, shell_arg

FUSION = "the fusion needs both rasters on a map grid"
ASSESSMENT = "the assessment compares the rasters on a map grid"


def check_map_grid(info: RasterInfo, role: str, needs: str = FUSION,
                   others: dict[str, RasterInfo] | None = None) -> None:
    """InputError unless ``info`` (the input ``role``) lies on a map grid: RPC-only, GCP-only (``check_located``), no
    georeferencing, or a CRS without a pixel grid, each said with how to fix it. ``needs`` says what needs the grid;
    ``others``: the run's inputs by role, for the orthorectification commands (PAN and MS alike)."""
    check_located(info, role, needs, others)
    if not info.georeferenced:
        raise InputError(f"the {role} raster {info.path} has no georeferencing (no geotransform, no CRS), and {needs}")
    if tuple(info.gt) == DEFAULT_GT:   # a CRS, but no pixel grid to place the pixels with
        raise InputError(f"the {role} raster {info.path} has a coordinate reference system but no geotransform "
                         f"(no pixel grid), and {needs}: georeference it (Raster > Georeferencer, or gdal_translate "
                         "-a_ullr)")


def check_located(info: RasterInfo, role: str, needs: str, others: dict[str, RasterInfo] | None = None) -> None:
    """InputError when ``info`` is placed on the map by RPC coefficients or ground control points only (a raw
    image): QGIS draws it, so the user takes it for georeferenced. The assessment checks only this (two rasters
    with no georeferencing at all are compared pixel for pixel there)."""
    if _raw(info):
        raise InputError(
            f"the {role} raster {info.path} is located by RPC coefficients only (a raw, not orthorectified image, as "
            f"WorldView L1B or Pléiades primary products are), not by a pixel grid: QGIS draws it through them, but "
            f"{needs}. Orthorectify PAN and MS alike, onto aligned grids with their outside marked as nodata: "
            f"{orthorectify_commands({**(others or {}), role: info}, role)} (with a DEM for relief: add -to "
            "RPC_DEM=dem.tif), or in QGIS Raster > Projections > Warp (Reproject) with these options in its "
            "additional command-line parameters; give the warped rasters")
    if not info.georeferenced and info.gcps:
        raise InputError(f"the {role} raster {info.path} is georeferenced by {info.gcps} ground control points only, "
                         f"not by a pixel grid, and {needs}: warp it first (Raster > Projections > Warp (Reproject), "
                         "or gdalwarp -dstnodata 0) and give the warped raster")


def orthorectify_commands(inputs: dict[str, RasterInfo], role: str = "PAN") -> str:
    """The gdalwarp commands for the raw (RPC-only) PAN and MS of ``inputs`` (by role): one UTM zone, ``-tr`` the
    PAN's pixel size and ratio times it, ``-tap`` and one ``-te`` on whole MS pixels, ``-dstnodata 0``. Numbers
    are filled in from the RPCs (the zone
    from the scene centre, the PAN's pixel size as gdalwarp would choose it, the ratio from the two raw sizes), or
    from the PAN's grid when the MS alone is raw; placeholders where they cannot be known."""
    pan, ms = inputs.get("PAN"), inputs.get("MS")
    raw = [i for i in (pan, ms) if i is not None and _raw(i)]
    if not raw:   # another input is the raw one (an assessment's FUSED or REFERENCE): its own command
        info = inputs[role]
        return (f"gdalwarp -rpc -t_srs EPSG:{_utm_epsg(info.path) or '<its UTM zone>'} -tr <pixel size> <pixel size> "
                f"-tap -r cubic -dstnodata 0 {shell_arg(info.path)} "
                f"{shell_arg(beside(info.path, '_ortho.tif'))}")
    epsg, size, ratio = "<its UTM zone>", "<PAN pixel size>", None
    if pan is not None and not _raw(pan) and pan.gt[1] > 0:   # the MS alone is raw: onto the PAN's CRS and size
        epsg, size = epsg_of(pan.wkt) or epsg, _nice(pan.gt[1])
    elif raw:
        epsg = _utm_epsg(raw[0].path) or epsg
        if pan is not None and epsg.isdigit():
            size = _warp_pixel_size(pan.path, int(epsg)) or size
    if pan is not None and ms is not None and len(raw) == 2 and ms.width:
        ratio = max(1, round(pan.width / ms.width))   # raw images of one scene: their sizes are the ratio
    if ratio and size[0].isdigit():
        ms_size = _nice(ratio * float(size))
    else:
        ms_size = f"<ratio x {size.strip('<>')}>"
    # both raw with known sizes: one extent on whole MS pixels for both, so the grids also start together (-tap
    # alone aligns the edges, but the PAN may start a PAN pixel or three into an MS pixel: a grid-shift warning)
    extent = _common_extent(raw, int(epsg), float(ms_size)) if len(raw) == 2 and ms_size[0].isdigit() else ""

    def command(info: RasterInfo, tr: str) -> str:
        dst = beside(info.path, "_ortho.tif")
        align = f"-tap {extent}"
        return (f"gdalwarp -rpc -t_srs EPSG:{epsg} -tr {tr} {tr} {align}-r cubic -dstnodata 0 "
                f"{shell_arg(info.path)} {shell_arg(dst)}")

    return " and ".join(command(i, size if i is pan else ms_size) for i in raw)


def _raw(info: RasterInfo) -> bool:
    return info.rpc and tuple(info.gt) == DEFAULT_GT


def epsg_of(wkt: str) -> str | None:
    """The EPSG code of a CRS, or None."""
    srs = osr.SpatialReference()
    if not wkt or srs.ImportFromWkt(wkt) != 0:
        return None
    srs.AutoIdentifyEPSG()
    code = srs.GetAuthorityCode(None)
    return code if code and code.isdigit() else None


def _common_extent(raw: list[RasterInfo], epsg: int, step: float) -> str:
    """``-te xmin ymin xmax ymax `` covering the footprints of ``raw`` in ``epsg``, snapped outward to multiples of
    ``step`` (the MS pixel size); '' if a footprint cannot be worked out."""
    boxes = []
    for info in raw:
        vrt, _ = gdal_call(gdal.Warp, "", info.path, format="VRT", dstSRS=f"EPSG:{epsg}", rpc=True)
        if vrt is None:
            return ""
        gt, w, h = vrt.GetGeoTransform(), vrt.RasterXSize, vrt.RasterYSize
        boxes.append((gt[0], gt[3] + h * gt[5], gt[0] + w * gt[1], gt[3]))
    x0, y0 = (math.floor(min(b[i] for b in boxes) / step) * step for i in (0, 1))
    x1, y1 = (math.ceil(max(b[i] for b in boxes) / step) * step for i in (2, 3))
    return f"-te {x0:.10g} {y0:.10g} {x1:.10g} {y1:.10g} "


def _utm_epsg(path: str) -> str | None:
    """The EPSG code of the WGS 84 UTM zone of an RPC image's scene centre (its LAT_OFF, LONG_OFF), or None."""
    ds, _ = gdal_call(gdal.Open, path)
    md = quiet_metadata(ds, "RPC") if ds is not None else {}
    try:
        lat, lon = float(md["LAT_OFF"]), float(md["LONG_OFF"])
    except (KeyError, ValueError):
        return None
    zone = min(60, int(math.floor((lon + 180) / 6)) + 1)
    return str((32600 if lat >= 0 else 32700) + zone)


def _warp_pixel_size(path: str, epsg: int) -> str | None:
    """The pixel size gdalwarp -rpc chooses for ``path`` in ``epsg`` (metres, two significant digits), or None."""
    vrt, _ = gdal_call(gdal.Warp, "", path, format="VRT", dstSRS=f"EPSG:{epsg}", rpc=True)
    gt = vrt.GetGeoTransform() if vrt is not None else None
    return _nice(gt[1]) if gt and gt[1] > 0 else None


def _nice(value: float) -> str:
    """``value`` to two significant digits, written plainly (0.63, 2.5, 15)."""
    return f"{float(f'{value:.2g}'):g}"
