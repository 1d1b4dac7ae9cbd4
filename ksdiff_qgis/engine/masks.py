"""GDAL mask bands as nodata: an input's own mask (an internal TIFF mask, a ``.msk`` file) or its transparency
band (an RGBA product's alpha, ``gdalwarp -dstalpha``'s last band) hides pixels that hold no data.

The pipeline honours nodata in every step (scene statistics, the self-check, each tile, the output's holes), so a
masked input is read through a virtual float view of it (GDAL's warper on the same grid, nearest neighbour) in
which the hidden pixels are NaN and NaN is the declared nodata. Values are unchanged; the view's ``RasterInfo``
keeps the product's data type and NBITS, so normalisation and the output type stay the product's.

Before the filters and the networks read a window, its holes are filled from their edges (``read_filled``): the fill
never reaches the output (holes stay nodata) but the filters read a few pixels into a hole.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import threading

import numpy as np
from osgeo import gdal

from .bandcolour import sample_bands, transparency_masks
from .bands import select_bands
from .errors import InputError
from .feedback import Feedback
from .gdalutil import gdal_call, named_view
from .nodatacmd import exact, nodata_command
from .raster_io import RasterInfo
from .raster_io.read import Clamp, own_mask, per_band_masks, raster_dtype, read_padded, valid_pixels

NAN = float("nan")


def masked_view(ds: gdal.Dataset, info: RasterInfo, what: str, alpha: bool = False) -> tuple[gdal.Dataset, RasterInfo]:
    """(view, its info): ``ds`` with the pixels its mask hides as NaN, declared nodata; every band, the same grid and
    values. ``alpha``: the last band is the mask (a transparency band; GDAL takes it as the dataset's mask only for
    some layouts, e.g. RGBA but not four bands + alpha). ``what`` names the mask for messages (``RasterInfo.mask``)."""
    gt = info.gt
    bounds = (gt[0], gt[3] + gt[5] * info.height, gt[0] + gt[1] * info.width, gt[3])
    # float32 holds every integer value of 8- and 16-bit data exactly; wider types and float64 stay 64-bit
    wide = info.dtype.itemsize > 2 and info.dtype.kind in "iu" or info.dtype.itemsize > 4
    grid = dict(format="VRT", outputBounds=bounds, width=info.width, height=info.height, resampleAlg="near",
                dstNodata=NAN)
    # the warper applies a source nodata value instead of the mask, so the mask first ("None": not the file's
    # nodata), then the nodata value on that view; nearest neighbour copies the first view's NaN as they are
    first = dict(srcNodata="None", outputType=gdal.GDT_Float64 if wide else gdal.GDT_Float32, srcAlpha=alpha)
    if alpha:   # the band's own opaque value: the warper takes the type's maximum, and a 255 in UInt16 hid everything
        top = gdal_call(ds.GetRasterBand(ds.RasterCount).ComputeRasterMinMax, True)[0]
        if top is not None and top[1] > 0:
            first["warpOptions"] = [f"SRC_ALPHA_MAX={top[1]:g}"]
    steps = [first]
    if info.nodata is not None and not math.isnan(info.nodata):
        # band by band, as the pipeline reads nodata (a pixel is a hole when any band holds the value); the warper
        # by default keeps a pixel unless every band holds it (dark NIR zeros over water stayed data)
        steps.append(dict(srcNodata=info.nodata, warpOptions=["UNIFIED_SRC_NODATA=NO"]))
    view = ds
    for step in steps:
        view, msg = gdal_call(gdal.Warp, "", view, options=gdal.WarpOptions(**grid, **step))
        if view is None:
            raise InputError(f"cannot apply the {what} of {info.path}: {msg}")
    return named_view(view, ds), dataclasses.replace(info, nodata=NAN, mask=what, bands=view.RasterCount)


def without_last_alpha(ds: gdal.Dataset, info: RasterInfo) -> tuple[gdal.Dataset, RasterInfo, bool]:
    """(dataset, info, applied): the raster without its last band, a transparency mask, whose hidden pixels become
    nodata (``masked_view``) when its grid allows a view (georeferenced, north-up; ``applied``), else just the other
    bands, numbered as before."""
    applied = info.georeferenced and not info.rotated
    if applied:
        ds, info = masked_view(ds, info, f"alpha band {info.bands}", alpha=True)
    ds, info = select_bands(ds, info, list(range(1, info.bands)))
    return ds, info, applied


def without_alpha_flag(ds: gdal.Dataset, info: RasterInfo, bands: list[int]) -> gdal.Dataset:
    """A virtual copy of ``ds`` whose alpha-flagged ``bands``, fused as data, are no longer flagged (colour
    interpretation undefined); ``ds`` itself when there are none. GDAL otherwise takes a flagged 4th band as the mask
    of bands 1-3: the scene statistics, the warper and GDAL's averaged reads dropped every pixel where the NIR is 0
    (QA129: BDSD-PC refused, 'nodata took 100 %'), while the tiles read them."""
    if not bands:
        return ds
    flags = [word for b in bands for word in (f"-colorinterp_{b}", "undefined")]
    vrt, msg = gdal_call(gdal.Translate, "", ds, options=gdal.TranslateOptions(options=flags, format="VRT"))
    if vrt is None:
        raise InputError(f"cannot read the alpha-flagged MS bands {bands} of {info.path} as data: {msg}")
    return named_view(vrt, ds)


def without_transparency_mask(ms_ds, ms: RasterInfo, flagged: list[int], ms_bands: list[int] | None,
                               fb: Feedback) -> tuple[object, RasterInfo, list[int] | None, list[int]]:
    """(MS dataset, its info, MS bands to fuse, transparency masks still among its bands) for an MS with
    alpha-flagged bands (``flagged``). A band that is a transparency mask (only 0 and one opaque value,
    ``transparency_masks``) as the last band, as RGBA products and ``gdalwarp -dstalpha`` / ``gdalbuildvrt
    -addalpha`` write it, hides its pixels (``masked_view``) and is dropped: the MS then has only its spectral
    bands, numbered as before. A mask elsewhere is left out of the fused bands unless MS_BANDS chose it, its pixels
    fused as they are (the warning says to set a nodata value). An alpha-flagged band with other values is data
    (``alpha_band_note``), read through a view without the flag (``without_alpha_flag``)."""
    samples = sample_bands(ms_ds)
    found = [] if samples is None else transparency_masks(samples, flagged, ms.nbits)
    if not found or len(found) == ms.bands:
        return without_alpha_flag(ms_ds, ms, flagged), ms, ms_bands, []
    ms_ds = without_alpha_flag(ms_ds, ms, [b for b in flagged if b not in found])
    opaque = int(samples[found[0] - 1].max())
    what = f"MS band {', '.join(map(str, found))} is a transparency mask (alpha, only 0 and {opaque})"
    unhidden = "The pixels it hides are fused as they are: give the MS a nodata value to leave them out."
    if found == [ms.bands]:   # the warper takes the last band as the alpha
        ms_ds, ms, applied = without_last_alpha(ms_ds, ms)
        fb.warning(f"{what}: left out; the pixels it hides are nodata." if applied else f"{what}: left out. {unhidden}")
        return ms_ds, ms, ms_bands, []
    keep = ms_bands or [b for b in range(1, ms.bands + 1) if b not in found]
    fused = "" if ms_bands else f"left out, the MS bands fused are {', '.join(map(str, keep))}. "
    fb.warning(f"{what}: {fused}{unhidden}")
    return ms_ds, ms, keep, found


def apply_own_mask(ds: gdal.Dataset, info: RasterInfo, role: str, fb: Feedback) -> tuple[gdal.Dataset, RasterInfo]:
    """(dataset, info): a masked view when the raster has a mask of its own (``own_mask``), said in the log; the
    raster itself otherwise. A rotated raster keeps its grid (the warper would turn it north-up): a warning."""
    if per_band_masks(ds):   # GDAL's warper, which makes the masked view, does not apply them
        fb.warning(f"the {role} raster has a mask per band, which is not applied: the pixels those masks hide are "
                   "fused as data. Give the raster a nodata value, or one mask for all bands (gdal_translate "
                   "-mask 1), to leave them out.")
    if not own_mask(ds) or not info.georeferenced:
        return ds, info
    if info.rotated:
        fb.warning(f"the {role} raster has a mask band, which is not applied to its rotated grid: the pixels it hides "
                   "are fused as they are; give it a nodata value to leave them out")
        return ds, info
    fb.info(f"the {role} raster has a mask band: the pixels it hides are nodata")
    return masked_view(ds, info, "mask band")


def with_nodata(ds: gdal.Dataset, info: RasterInfo, value: float | None, role: str,
                fb: Feedback, file_nodata: bool = True) -> tuple[gdal.Dataset, RasterInfo]:
    """(dataset, info) with ``value`` declared as nodata on a virtual copy, when the raster declares none (a no-data
    value set on the QGIS layer, not in the file); the raster itself otherwise. Declared on the dataset, not only in
    ``info``, so GDAL's own reads (averaged windows, the warper) leave those pixels out too.
    ``file_nodata`` False: the file's own nodata value is not used (the QGIS layer's 'No data value' unticked, so
    QGIS shows those pixels as data): the copy declares ``value``, or no nodata at all."""
    if value is None and (file_nodata or info.nodata is None):
        return ds, info
    if info.nodata is not None and file_nodata:
        if not (info.nodata == value or math.isnan(info.nodata) and math.isnan(value)):
            fb.info(f"the {role} layer's nodata value {exact(value)} is not used: the file declares "
                    f"{exact(info.nodata)}")
        return ds, info
    shown = "no nodata value" if value is None else f"the nodata value {exact(value)}"
    vrt, declared = declared_copy(ds, info, value, f"{shown} on the {role} raster")
    # a layer setting is not in the file, and QGIS History records only the file's path: a replay of the run reads
    # the file's own nodata and gives another result, so the line says how to make the file carry the setting
    # gdal_edit.py where GDAL can update the file, else a VRT copy
    command = nodata_command(info.path, value, info.dtype)
    depends = ("; the result depends on that layer setting, which QGIS History does not record (only the file): to "
               f"make the file carry it, {command}")
    if info.nodata is not None:   # file_nodata False
        fb.info(f"the {role} file's nodata value {exact(info.nodata)} is not used, as on its QGIS layer ('No data "
                "value' unticked in Layer Properties > Transparency): its pixels are data"
                + (f"; the layer's nodata value {exact(value)} is used" if value is not None else "") + depends)
    else:
        fb.info(f"the {role} layer's nodata value {exact(value)} is used (the file declares none){depends}")
    return vrt, declared


def declared_copy(ds: gdal.Dataset, info: RasterInfo, value: float | None, what: str
                  ) -> tuple[gdal.Dataset, RasterInfo]:
    """A virtual copy of ``ds`` declaring ``value`` as its nodata (None: none), and ``info`` to match: GDAL's own
    reads (averaged windows, the warper) then leave those pixels out too. InputError "cannot declare ``what``" when
    GDAL cannot make it. The one way a layer's, a DIMAP's or a found fill's value is applied."""
    vrt, msg = gdal_call(gdal.Translate, "", ds, format="VRT", noData="none" if value is None else value)
    if vrt is None:
        raise InputError(f"cannot declare {what}: {msg}")
    return named_view(vrt, ds), dataclasses.replace(info, nodata=None if value is None else float(value))


def nodata_source(before: RasterInfo, after: RasterInfo) -> str:
    """Where the nodata ``with_nodata`` left on ``after`` (from ``before``) came from: 'layer' (a QGIS layer's
    setting, in place of the file's: ``with_nodata`` replaced the info), 'file', or 'none'."""
    if after is not before:
        return "layer"
    return "file" if after.nodata is not None else "none"


PAN_FILL_REACH = 24   # PAN pixels a hole is filled from its edge: past the MTF filters' reach (20)
MS_FILL_REACH = 4     # MS pixels: past the cubic upsampling's (2)


def fill_holes(arr: np.ndarray, valid: np.ndarray, fallback: np.ndarray, reach: int) -> None:
    """Fill ``arr`` (C, H, W) in place where ``valid`` (H, W) is False by extending the valid pixels around each hole
    (GDAL's FillNodata: inverse-distance interpolation from the first valid pixels within ``reach``), the rest with
    ``fallback`` (C,), the scene's mean. The filters and a learned model read a few pixels into a hole: a scene
    mean there drew a fringe up to 8 PAN pixels wide along a nodata edge (dark water beside a bright mean: 0.62-0.83
    of the MS), where a raster edge, mirrored, drew none."""
    holes = ~valid
    if not holes.any():
        return
    if reach <= 0 or not valid.any():   # no filter reads into the holes (or nothing to extend): the mean
        arr[:, holes] = np.asarray(fallback, dtype=arr.dtype)[:, None]
        return
    h, w = valid.shape
    mem = gdal.GetDriverByName("MEM")
    mask = mem.Create("", w, h, 1, gdal.GDT_Byte)
    mask.GetRasterBand(1).WriteArray(valid.astype(np.uint8))
    for b in range(arr.shape[0]):
        ds = mem.Create("", w, h, 1, gdal.GDT_Float32)
        band = ds.GetRasterBand(1)
        band.WriteArray(np.where(valid, arr[b], np.float32(np.nan)))
        # its work files in memory: by default GDAL writes them into the working directory, and where that is not
        # writable (QGIS started from its install folder, a cron job in /) the fill failed and fell back to the mean
        gdal.FillNodata(band, mask.GetRasterBand(1), reach, 0, options=["TEMP_FILE_DRIVER=MEM"])
        filled = band.ReadAsArray()
        arr[b] = np.where(np.isfinite(filled), filled, np.float32(fallback[b]))


def read_filled(ds: gdal.Dataset, row: int, col: int, rows: int, cols: int, nodata: float | None,
                fallback: np.ndarray, reach: int, lock: threading.Lock | None = None,
                clamp: Clamp | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """A window as ``read_padded`` reads it (mirrored beyond the raster) and its validity (None: all valid), its holes
    filled (``fill_holes``) on a window ``reach`` pixels larger: a pixel's fill then depends on the scene within
    ``reach`` of it only, never on the tile it falls in (a classical method's tiles equal one whole-scene pass).
    ``lock``: held while reading only (one GDAL dataset, several tile workers), not while filling. The larger window
    is read only when this one has holes (most tiles have none). ``clamp``: as ``read_padded`` takes it."""
    lock = lock or contextlib.nullcontext()
    with lock:
        arr = read_padded(ds, row, col, rows, cols, "symmetric", clamp)
    dtype = raster_dtype(ds)   # nodata compared in the raster's own type, as GDAL's mask compares it
    valid = valid_pixels(arr, nodata, dtype)
    if valid is None or valid.all() or reach <= 0:
        if valid is not None:
            fill_holes(arr, valid, fallback, 0)
        return arr, valid
    with lock:
        big = read_padded(ds, row - reach, col - reach, rows + 2 * reach, cols + 2 * reach, "symmetric", clamp)
    fill_holes(big, valid_pixels(big, nodata, dtype), fallback, reach)
    return big[:, reach:reach + rows, reach:reach + cols].copy(), valid
