"""The output type policy: the valid value range of a data type, the nodata value of an output, and the
cast of fused float values into the output type. Numpy only; every raster the project writes goes
through :func:`to_dtype` (the pipeline's output, and model_core's Wald test cases)."""
from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:   # info imports osgeo; this module stays numpy-only (model_core uses it)
    from .info import RasterInfo


def value_range(dtype, nbits: int | None = None) -> tuple[float, float]:
    """(lowest, highest) value an output of ``dtype`` holds; an NBITS integer raster tops out at 2**nbits - 1.

    Floating point outputs are held to the float32 range (the output type of float data).
    """
    dt = np.dtype(dtype)
    if dt.kind == "f":
        return float(np.finfo(np.float32).min), float(np.finfo(np.float32).max)
    ii = np.iinfo(dt)
    hi = float(2 ** nbits - 1) if nbits and nbits < ii.bits else float(ii.max)
    return float(ii.min), hi


def data_scale(info: RasterInfo) -> float:
    """Largest raw value of a raster's type (NBITS aware); 1.0 for floating point (reflectance)."""
    if info.dtype.kind == "f":
        return 1.0
    return value_range(info.dtype, info.nbits)[1]


def fits(value: float | None, info: RasterInfo) -> bool:
    """Whether ``value`` is a pixel value the output type (the MS type, NBITS aware) can hold."""
    if value is None:
        return False
    if info.dtype.kind == "f":
        return math.isnan(value) or abs(value) <= float(np.finfo(info.dtype).max)
    lo, hi = value_range(info.dtype, info.nbits)
    return not math.isnan(value) and float(value).is_integer() and lo <= value <= hi


def output_nodata(pan: RasterInfo, ms: RasterInfo, nbits: int | None = None) -> tuple[float | None, str]:
    """The output nodata value and why: MS nodata if the output type holds it, else PAN nodata if it does,
    else 0 for unsigned integers, the type's minimum for signed ones, NaN for floats. None (no nodata)
    only when neither input declares one and the output is not floating point (a floating-point output declares NaN:
    NaN in the inputs are holes whether declared or not). ``nbits``: the output's NBITS (a CREATE_OPTIONS NBITS,
    ``outputs.output_nbits``), None for the MS's own: GDAL cuts a nodata value above its top to its bits (QA134)."""
    if nbits is not None:
        ms = replace(ms, nbits=nbits)
    # a masked input's NaN is the view's, not the product's value: its holes take the output type's default
    ms_nodata, pan_nodata = (None if i.mask else i.nodata for i in (ms, pan))
    masked = [f"the pixels the {n} {i.mask} hides" for n, i in (("MS", ms), ("PAN", pan)) if i.mask]
    if fits(ms_nodata, ms):
        return ms_nodata, f"the MS nodata value {ms_nodata:g}"
    # NaN and infinities in a floating-point input are holes whether declared or not (``valid_pixels``): a
    # floating-point output declares NaN, which no value it holds can be confused with
    undeclared = pan_nodata is None and ms_nodata is None and not masked
    if undeclared and ms.dtype.kind != "f":
        return None, "none (neither input declares nodata)"
    unfit = [f"{n} nodata {v:g}" for n, v in (("MS", ms_nodata), ("PAN", pan_nodata))
             if v is not None and not fits(v, ms)]
    bits = f"{ms.nbits}-bit " if ms.nbits and ms.nbits < 8 * ms.dtype.itemsize else ""
    notes = ([f"{' and '.join(unfit)} not representable in {bits}{ms.dtype.name}"] if unfit else []) + masked + \
        (["no input declares one; NaN in the inputs are holes"] if undeclared else [])
    note = f" ({'; '.join(notes)})" if notes else ""
    if fits(pan_nodata, ms):
        return pan_nodata, f"the PAN nodata value {pan_nodata:g}{note}"
    value = float("nan") if ms.dtype.kind == "f" else value_range(ms.dtype, ms.nbits)[0]
    return value, f"{value:g}, the default for {ms.dtype.name}{note}"


def _nudged_float(nodata: float, hi: float) -> float:
    """The float32 value a valid value equal to the float ``nodata`` is written as: the next one toward the type's
    top ``hi`` (down when nodata is the top); next to 0 the smallest normal float, ±1.2e-38, not a denormal."""
    toward = np.inf if nodata < hi else -np.inf
    if nodata == 0:
        return float(np.copysign(np.finfo(np.float32).tiny, toward))
    return float(np.nextafter(np.float32(nodata), np.float32(toward)))


def to_dtype(strip: np.ndarray, dtype, nodata: float | None, nbits: int | None = None) -> np.ndarray:
    """Float values (NaN = nodata) -> ``dtype``: clipped to its valid range (NBITS aware), integers rounded,
    NaN -> ``nodata``, and a valid value that would equal ``nodata`` nudged by one step so it never reads
    as a hole."""
    dt = np.dtype(dtype)
    lo, hi = value_range(dt, nbits)
    nan = np.isnan(strip)
    out = np.clip(strip, lo, hi)
    if dt.kind != "f":
        out = np.rint(out)
        if nodata is not None:
            out[(out == nodata) & ~nan] = nodata + 1 if nodata < hi else nodata - 1
    elif nodata is not None and not math.isnan(nodata):
        # the same for floats: the nearest representable value next to nodata, a normal float: next to 0 that is
        # the smallest normal float32 (1.2e-38), not the denormal 1.4e-45, which software that flushes denormals to
        # zero reads as 0, the hole (QA: pixels moved off a nodata 0 became 1.4e-45)
        out[(out == nodata) & ~nan] = _nudged_float(nodata, hi)
    out[nan] = nodata if nodata is not None else lo
    return out.astype(dt)
