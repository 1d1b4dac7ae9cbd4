"""Wald's protocol on real rasters: build a reduced-resolution test case from a PAN + MS GeoTIFF pair.

Given a PAN and an MS raster (any format GDAL reads, grids ``ratio`` apart), :func:`make_reduced_case` writes

* ``<prefix>_pan.tif``  the PAN degraded by ``ratio`` (PAN MTF gain, :func:`filters.wald_degrade`); it
  lands exactly on the original MS grid (same origin, MS pixel size),
* ``<prefix>_ms.tif``   the MS degraded by ``ratio`` (per-band MS gains): pixels ``ratio`` times larger
  than the MS pixels, same origin,
* ``<prefix>_ref.tif``  the original MS over the same ground: the reference the fused result of the two
  files above is compared with (same grid as the degraded PAN).

When the PAN grid is not aligned with the MS grid (Landsat 8: half a PAN pixel apart), the PAN is first
resampled onto the PAN-resolution grid anchored at the MS origin with the project's cubic interpolator
(``filters.upsample`` at ratio 1); the returned notes say so. :func:`make_half_pixel_case` keeps that geometry
instead (nothing resampled): its reduced MS sits half a reduced PAN pixel off the reduced PAN, as the real pair.

Nodata: a degraded pixel whose filter support touches a nodata pixel becomes nodata. Outputs keep the
input data types (degraded values rounded and clipped for integer types). Whole windows are held in
memory: this is for test scenes (up to a few thousand pixels a side), not for whole archives.
Needs rasterio and numpy only (no torch; files through ``model_core.rasters``): the bench and the tests
build their test cases with it. It lives beside the training code, not in the plugin: the plugin never
builds test cases.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np

from ksdiff_qgis.engine.filters import MTF_TAPS, decimate, split_corner, upsample, wald_degrade
from ksdiff_qgis.engine.raster_io.geotransform import is_rotated
from ksdiff_qgis.engine.sensors import get_sensor

from .rasters import cast, describe, read, write_geotiff

ALIGN_TOL = 0.05  # PAN pixels: offsets below this count as aligned


@dataclass
class WaldCase:
    pan: str            # degraded PAN on the MS grid
    ms: str             # degraded MS (ratio x larger pixels)
    ref: str            # original MS, the reference
    ratio: int
    sensor: str
    ms_window: tuple[int, int, int, int]   # (col, row, width, height) of the reference in the MS raster
    notes: list[str] = field(default_factory=list)


def _degrade_mask(invalid: np.ndarray, ratio: int) -> np.ndarray:
    """Coarse pixels whose MTF filter support touches an invalid fine pixel (wide Gaussian as bound)."""
    frac = wald_degrade(invalid.astype(np.float32), 0.01, ratio)  # sigma ~ ratio: covers the MTF support
    return frac > 1e-4


def make_reduced_case(pan_path: str, ms_path: str, out_dir: str, sensor: str, window=None,
                      prefix: str = "wald", ratio: int | None = None) -> WaldCase:
    """Build a reduced-resolution test case (see module doc).

    ``window`` = (col, row, width, height) in pixels of the **MS** raster (e.g. a held-apart crop);
    default: the part of the MS covered by the PAN. Width and height are trimmed to multiples of the
    ratio. ``ratio`` defaults to the sensor's. Returns a :class:`WaldCase`.
    """
    sens = get_sensor(sensor)
    ratio = int(ratio or sens.ratio)
    pds, mds = describe(pan_path), describe(ms_path)
    pgt, mgt = pds.gt, mds.gt
    if is_rotated(pgt, pds.width, pds.height) or is_rotated(mgt, mds.width, mds.height):
        raise ValueError("rotated geotransforms are not supported")
    real_ratio = mgt[1] / pgt[1]
    if abs(real_ratio - ratio) > 1e-3 * ratio or abs(mgt[5] / pgt[5] - ratio) > 1e-3 * ratio:
        raise ValueError(f"MS/PAN pixel size ratio is {real_ratio:.4f}, expected {ratio}")
    if not sens.generic and mds.count != sens.n_bands:
        raise ValueError(f"sensor {sensor} has {sens.n_bands} bands, MS has {mds.count}")
    mtf_ms = tuple(sens.gain_for(b) for b in range(mds.count))   # the generic sensor: the generic gains
    notes: list[str] = []

    # position of MS pixel (0, 0)'s corner in PAN pixels
    u0 = (mgt[0] - pgt[0]) / pgt[1]
    v0 = (mgt[3] - pgt[3]) / pgt[5]
    # MS pixels fully covered by the PAN (one PAN pixel margin when resampling is needed)
    aligned = abs(u0 - round(u0)) < ALIGN_TOL and abs(v0 - round(v0)) < ALIGN_TOL
    if aligned:
        u0, v0 = float(round(u0)), float(round(v0))
    m = 0 if aligned else 2
    c_lo = math.ceil((m - u0) / ratio)
    c_hi = math.floor((pds.width - m - u0) / ratio)   # exclusive
    r_lo = math.ceil((m - v0) / ratio)
    r_hi = math.floor((pds.height - m - v0) / ratio)
    c_lo, r_lo = max(c_lo, 0), max(r_lo, 0)
    c_hi, r_hi = min(c_hi, mds.width), min(r_hi, mds.height)
    if window is None:
        window = (c_lo, r_lo, c_hi - c_lo, r_hi - r_lo)
    col, row, w, h = (int(v) for v in window)
    if col < 0 or row < 0 or col + w > mds.width or row + h > mds.height:
        raise ValueError(f"MS window {window} lies outside the MS raster ({mds.width}x{mds.height})")
    col2, row2 = max(col, c_lo), max(row, r_lo)
    w2, h2 = min(col + w, c_hi) - col2, min(row + h, r_hi) - row2
    if (col2, row2, w2, h2) != (col, row, w, h):
        if w2 < w // 2 or h2 < h // 2:
            raise ValueError(f"MS window {window} is mostly not covered by the PAN "
                             f"(covered: cols {c_lo}-{c_hi}, rows {r_lo}-{r_hi})")
        notes.append(f"MS window {tuple(window)} clipped to the part the PAN covers: {(col2, row2, w2, h2)}")
        col, row, w, h = col2, row2, w2, h2
    w, h = w // ratio * ratio, h // ratio * ratio
    if w < ratio * 2 or h < ratio * 2:
        raise ValueError("window too small for a reduced-resolution case")

    # PAN over the MS window, on the PAN-resolution grid anchored at the MS window origin
    fw, fh = w * ratio, h * ratio
    pu, pv = u0 + col * ratio, v0 + row * ratio
    pnd = pds.nodata
    if aligned:
        pan = read(pan_path, (int(round(pu)), int(round(pv)), fw, fh)).data[0]
        pan_invalid = (pan == pnd) if pnd is not None else None
    else:
        iu, iv = int(math.floor(pu)) - 2, int(math.floor(pv)) - 2
        src = read(pan_path, (iu, iv, fw + 5, fh + 5)).data[0].astype(np.float32)
        # output pixel j centre sits at PAN position pu + j + 0.5: src pixel 0 starts at iu - pu
        pan = upsample(src, 1, (fh, fw), origin=(iv - pv, iu - pu))
        pan_invalid = None
        if pnd is not None:
            bad = (src == pnd).astype(np.float32)
            pan_invalid = upsample(bad, 1, (fh, fw), origin=(iv - pv, iu - pu)) != 0
        notes.append(f"PAN resampled (cubic) by ({pu - round(pu):+.3f}, {pv - round(pv):+.3f}) PAN pixels onto the "
                     "MS-aligned grid")

    ms = read(ms_path, (col, row, w, h)).data
    mnd = mds.nodata
    ms_invalid = np.any(ms == mnd, axis=0) if mnd is not None else None

    pan_lr = wald_degrade(pan.astype(np.float32), sens.mtf_pan, ratio)          # (h, w) on the MS grid
    ms_lr = wald_degrade(ms.astype(np.float32), mtf_ms, ratio)             # (C, h/r, w/r)
    pan_lr_invalid = _degrade_mask(pan_invalid, ratio) if pan_invalid is not None and pan_invalid.any() else None
    ms_lr_invalid = _degrade_mask(ms_invalid, ratio) if ms_invalid is not None and ms_invalid.any() else None

    srs = mds.crs or pds.crs
    ref_gt = (mgt[0] + col * mgt[1], mgt[1], 0.0, mgt[3] + row * mgt[5], 0.0, mgt[5])
    lr_gt = (ref_gt[0], mgt[1] * ratio, 0.0, ref_gt[3], 0.0, mgt[5] * ratio)
    names = mds.descriptions
    meta = {"KSDIFF_WALD": f"sensor={sensor} ratio={ratio} ms_window={col},{row},{w},{h}"}
    os.makedirs(out_dir, exist_ok=True)
    case = WaldCase(
        pan=os.path.join(out_dir, f"{prefix}_pan.tif"),
        ms=os.path.join(out_dir, f"{prefix}_ms.tif"),
        ref=os.path.join(out_dir, f"{prefix}_ref.tif"),
        ratio=ratio, sensor=sensor, ms_window=(col, row, w, h), notes=notes,
    )
    write_geotiff(case.pan, cast(pan_lr[None], pds.dtype, pnd, pan_lr_invalid), ref_gt, srs, pnd,
                  [pds.descriptions[0] or "PAN"], meta)
    write_geotiff(case.ms, cast(ms_lr, ms.dtype, mnd, ms_lr_invalid), lr_gt, srs, mnd, names, meta)
    write_geotiff(case.ref, cast(ms, ms.dtype, mnd, ms_invalid), ref_gt, srs, mnd, names, meta)
    return case


def degrade_at(img: np.ndarray, gains, ratio: int, corner: tuple[float, float], shape: tuple[int, int]
               ) -> np.ndarray:
    """``img`` (C, H, W) Wald-degraded by ``ratio`` onto the coarse grid whose pixel [0, 0] has its top-left corner
    at fine position ``corner`` (row, col; fractional allowed): each band's MTF Gaussian evaluated at the coarse
    pixels' own centres (``filters.decimate``'s phase), so nothing is resampled; symmetric past ``img``'s edges.
    Returns (C, *shape). With an integer corner this is ``filters.wald_degrade`` on the window there."""
    pad = MTF_TAPS // 2 + 2 * ratio
    arr = np.pad(img.astype(np.float32, copy=False), ((0, 0), (pad, pad), (pad, pad)), mode="symmetric")
    o, phase = split_corner(corner)
    lr, first = decimate(arr, gains, ratio, origin=(-(o[0] + pad), -(o[1] + pad)), phase=phase)
    r0, c0 = -first[0], -first[1]
    if r0 < 0 or c0 < 0 or r0 + shape[0] > lr.shape[1] or c0 + shape[1] > lr.shape[2]:
        raise ValueError(f"{shape} coarse pixels from {corner} do not fit the {img.shape[1:]} image")
    return lr[:, r0:r0 + shape[0], c0:c0 + shape[1]]


def _invalid_at(invalid: np.ndarray | None, ratio: int, corner: tuple[float, float], shape: tuple[int, int]
                ) -> np.ndarray | None:
    """Coarse pixels (``degrade_at``'s grid) whose filter support touches an invalid fine pixel (as
    ``_degrade_mask``)."""
    if invalid is None or not invalid.any():
        return None
    return degrade_at(invalid[None].astype(np.float32), 0.01, ratio, corner, shape)[0] > 1e-4


def half_pixel_shape(h: int, w: int, ratio: int, shift: float) -> tuple[int, int]:
    """Coarse pixels of ``ratio`` fine ones, starting ``shift`` fine pixels in, that fit an (h, w) window."""
    return math.floor((h - shift) / ratio + 1e-9), math.floor((w - shift) / ratio + 1e-9)


def half_pixel_ms(ref: np.ndarray, gains, ratio: int, shift: float = 0.5) -> np.ndarray:
    """The reduced MS of a half-pixel Wald case from its reference (C, h, w): degraded by ``ratio`` onto the grid
    whose corner sits ``shift`` reference pixels inside the reference's (``degrade_at``)."""
    return degrade_at(ref, gains, ratio, (shift, shift), half_pixel_shape(ref.shape[1], ref.shape[2], ratio, shift))


def make_half_pixel_case(pan_path: str, ms_path: str, out_dir: str, sensor: str, window,
                         prefix: str = "wald_half", shift: float = 0.5) -> WaldCase:
    """A Wald case that keeps a half-pixel grid (Landsat 8/7: MS corner = PAN corner + half a PAN pixel), nothing
    resampled (QA125's construction; :func:`make_reduced_case` resamples the PAN onto the MS-aligned grid instead).

    ``window`` (col, row, width, height) in MS pixels, trimmed to multiples of the ratio. Writes, as
    :func:`make_reduced_case`: ``<prefix>_ref.tif`` the MS window; ``<prefix>_pan.tif`` the PAN MTF-degraded by the
    ratio onto the reference grid (the MTF evaluated at the MS pixels' centres wherever they sit on the PAN grid,
    ``degrade_at``); ``<prefix>_ms.tif`` the MS window MTF-degraded onto a grid whose corner sits ``shift``
    reference pixels (half a reduced PAN pixel) inside the reference's, one coarse pixel fewer per axis. Past the
    rasters' edges the data are mirrored. ``shift`` 0 on an aligned pair gives :func:`make_reduced_case`'s case
    away from the window's edges (there it mirrors the window, this the raster)."""
    sens = get_sensor(sensor)
    ratio = int(sens.ratio)
    pds, mds = describe(pan_path), describe(ms_path)
    pgt, mgt = pds.gt, mds.gt
    if abs(mgt[1] / pgt[1] - ratio) > 1e-3 * ratio or abs(mgt[5] / pgt[5] - ratio) > 1e-3 * ratio:
        raise ValueError(f"MS/PAN pixel size ratio is {mgt[1] / pgt[1]:.4f}, expected {ratio}")
    u0, v0 = (mgt[0] - pgt[0]) / pgt[1], (mgt[3] - pgt[3]) / pgt[5]   # MS pixel (0, 0)'s corner in PAN pixels
    # georeference noise on an aligned pair snaps, as in make_reduced_case
    u0, v0 = (float(round(x)) if abs(x - round(x)) < ALIGN_TOL else x for x in (u0, v0))
    col, row, w, h = (int(v) for v in window)
    w, h = w // ratio * ratio, h // ratio * ratio
    pan_r, ms_r = read(pan_path), read(ms_path)
    pan, ms = pan_r.data[0].astype(np.float32), ms_r.data.astype(np.float32)
    pnd, mnd = pds.nodata, mds.nodata
    corner = (v0 + row * ratio, u0 + col * ratio)
    pan_lr = degrade_at(pan[None], sens.mtf_pan, ratio, corner, (h, w))
    pan_bad = _invalid_at(pan == pnd if pnd is not None else None, ratio, corner, (h, w))
    ref = ms_r.data[:, row:row + h, col:col + w]
    mtf_ms = tuple(sens.gain_for(b) for b in range(mds.count))
    shape = half_pixel_shape(h, w, ratio, shift)
    ms_corner = (row + shift, col + shift)
    ms_lr = degrade_at(ms, mtf_ms, ratio, ms_corner, shape)
    ms_bad = _invalid_at(np.any(ms_r.data == mnd, axis=0) if mnd is not None else None, ratio, ms_corner, shape)
    srs = mds.crs or pds.crs
    ref_gt = (mgt[0] + col * mgt[1], mgt[1], 0.0, mgt[3] + row * mgt[5], 0.0, mgt[5])
    lr_gt = (ref_gt[0] + shift * mgt[1], mgt[1] * ratio, 0.0, ref_gt[3] + shift * mgt[5], 0.0, mgt[5] * ratio)
    meta = {"KSDIFF_WALD": f"sensor={sensor} ratio={ratio} ms_window={col},{row},{w},{h} half_pixel={shift}"}
    os.makedirs(out_dir, exist_ok=True)
    case = WaldCase(pan=os.path.join(out_dir, f"{prefix}_pan.tif"), ms=os.path.join(out_dir, f"{prefix}_ms.tif"),
                    ref=os.path.join(out_dir, f"{prefix}_ref.tif"), ratio=ratio, sensor=sensor,
                    ms_window=(col, row, w, h), notes=[f"MS {shift} reference pixels inside the PAN's grid"])
    names = mds.descriptions
    ms_invalid = np.any(ref == mnd, axis=0) if mnd is not None else None
    write_geotiff(case.pan, cast(pan_lr, pds.dtype, pnd, pan_bad), ref_gt, srs, pnd,
                  [pds.descriptions[0] or "PAN"], meta)
    write_geotiff(case.ms, cast(ms_lr, ms_r.data.dtype, mnd, ms_bad), lr_gt, srs, mnd, names, meta)
    write_geotiff(case.ref, cast(ref, ms_r.data.dtype, mnd, ms_invalid), ref_gt, srs, mnd, names, meta)
    return case
