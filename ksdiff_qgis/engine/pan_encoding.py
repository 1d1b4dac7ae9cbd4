"""The PAN brought into the MS's stored encoding when the MS declares a band scale/offset and the PAN's values are in
other numbers of the same quantity: physical values (a float reflectance PAN beside a UInt16 MS declaring
x 2.75e-05 - 0.2, the pairing Landsat C2 L2 users make) or a scale/offset of its own.

The fusion works on the MS's stored numbers. A gain alone (the ratio of scene means, ``learned.pan_units``; the
classical methods' fit) is right only when the offset is 0: QA, a reflectance PAN with the L2 MS gave MTF-GLP-HPM
0.96 % of values out of range and KSDiff 13 % of pixels off by more than 100 DN against the run whose PAN is stored
like the MS. Mapped with both numbers, (physical - offset) / scale, the run is that run, within a DN.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
from osgeo import gdal

from .errors import InputError
from .gdalutil import gdal_call, gdal_text, named_view
from .raster_io import RasterInfo, declared_scaling, encoding_words

SAMPLE_SIDE = 256   # the decimated read whose means tell physical from stored values
# a PAN taken for the MS's physical values has a scene mean within this factor of theirs: a percent-reflectance PAN
# (Landsat 8 crop: mean 7.06) beside a C2 L2 MS (physical mean ~0.07) is nearer that than the stored mean (~9000),
# yet 100 times off; mapped as 0-1 reflectance it was fused 100 times too bright
PHYSICAL_WITHIN = 10.0


@dataclasses.dataclass(frozen=True)
class PanMapping:
    """How the PAN was brought into the MS's stored encoding: its own (scale, offset) (physical values: (1, 0)) and
    the MS's."""

    pan: tuple[float, float]
    ms: tuple[float, float]

    def note(self) -> str:
        """The log line that says what was done."""
        ms, mo = self.ms
        was = "physical values" if self.pan == (1.0, 0.0) else f"stored {encoding_words(self.pan)}"
        # the offset taken away in words: '(physical value + 0.2)', not '(physical value - (-0.2))'
        value = f"(physical value {'+' if mo < 0 else '-'} {abs(mo):g})" if mo else "physical value"
        return (f"The PAN's values ({was}) were brought into the MS's stored encoding ({encoding_words(self.ms)}): "
                f"{value} / {ms:g}, so PAN and MS are fused in one encoding")


def _mean(ds: gdal.Dataset, bands: list[int]) -> float:
    """The mean of the valid pixels of ``bands`` (1-based) of ``ds`` over a decimated read; NaN when none is."""
    means = []
    w, h = min(SAMPLE_SIDE, ds.RasterXSize), min(SAMPLE_SIDE, ds.RasterYSize)
    for b in bands:
        band = ds.GetRasterBand(b)
        arr, _ = gdal_call(band.ReadAsArray, 0, 0, ds.RasterXSize, ds.RasterYSize, w, h,
                           buf_type=gdal.GDT_Float64)
        if arr is None:
            return math.nan
        ok = np.isfinite(arr)
        if band.GetMaskFlags() != gdal.GMF_ALL_VALID:
            mask, _ = gdal_call(band.GetMaskBand().ReadAsArray, 0, 0, ds.RasterXSize, ds.RasterYSize, w, h)
            if mask is not None:
                ok &= mask > 0
        if ok.any():
            means.append(float(arr[ok].mean()))
    return float(np.mean(means)) if means else math.nan


def _closer_to_physical(pan_mean: float, ms_stored: float, ms_physical: float) -> bool:
    """Whether the PAN's scene mean is the MS's physical values': within ``PHYSICAL_WITHIN`` of their mean and nearer
    it (as a ratio) than the MS's stored mean. Other PANs (percent reflectance, radiance) keep the gain the fusion
    fits and the units warning (``learned.pan_units``)."""
    if not all(math.isfinite(v) and v > 0 for v in (pan_mean, ms_stored, ms_physical)):
        return False
    off_physical = abs(math.log(pan_mean / ms_physical))
    return off_physical <= math.log(PHYSICAL_WITHIN) and off_physical < abs(math.log(pan_mean / ms_stored))


def _units_differ(pan_file: gdal.Dataset, ms_file: gdal.Dataset, bands: list[int]) -> bool:
    """Both declare a unit type and they differ (a radiance PAN with a reflectance MS): not one quantity."""
    pan_unit = (pan_file.GetRasterBand(1).GetUnitType() or "").strip().lower()
    ms_units = {(ms_file.GetRasterBand(b).GetUnitType() or "").strip().lower() for b in bands} - {""}
    return bool(pan_unit and ms_units and ms_units != {pan_unit})


def plan_mapping(pan_ds: gdal.Dataset, ms_ds: gdal.Dataset, pan_file: gdal.Dataset, ms_file: gdal.Dataset,
                 bands: list[int]) -> PanMapping | None:
    """The mapping of the PAN into the MS's stored encoding, when it is due: the fused MS ``bands`` (1-based) declare
    one scale/offset, the PAN either declares another of the same unit type, or declares none and its values are
    physical (its scene mean within 10x of the MS's physical mean, and nearer it than the stored one). None
    otherwise: the PAN is stored like the MS already, or nothing says how the two relate. ``pan_file``/``ms_file``:
    the files' own bands, whose declarations count; ``pan_ds``/``ms_ds``: the views the run reads (nodata
    declared), whose means are compared."""
    ms_pairs = set(declared_scaling(ms_file, bands))
    if len(ms_pairs) != 1:
        return None
    ms_pair = ms_pairs.pop()
    pan_pair = declared_scaling(pan_file, [1])[0]
    if ms_pair == (1.0, 0.0) or pan_pair == ms_pair or _units_differ(pan_file, ms_file, bands):
        return None
    if pan_pair == (1.0, 0.0):
        ms_stored = _mean(ms_ds, bands)
        if not _closer_to_physical(_mean(pan_ds, [1]), ms_stored, ms_stored * ms_pair[0] + ms_pair[1]):
            return None
    return PanMapping(pan_pair, ms_pair)


def mapped_pan(pan_ds: gdal.Dataset, pan: RasterInfo, mapping: PanMapping) -> tuple[gdal.Dataset, RasterInfo]:
    """A virtual float32 copy of the PAN in the MS's stored encoding: stored x (ps / ms) + (po - mo) / ms. Its nodata
    pixels (those of ``pan_ds``) become NaN, the declared nodata of the copy: a PAN nodata such as 3.4e38 has no
    image in float32 once mapped."""
    (ps, po), (ms, mo) = mapping.pan, mapping.ms
    stage, msg = gdal_call(gdal.Translate, "", pan_ds, format="VRT")
    if stage is not None:
        band = stage.GetRasterBand(1)
        band.SetScale(ps / ms)
        band.SetOffset((po - mo) / ms)
        copy, msg = gdal_call(gdal.Translate, "", stage, format="VRT", unscale=True, outputType=gdal.GDT_Float32,
                              noData="nan" if pan.nodata is not None else "none")
    if stage is None or copy is None:
        raise InputError(f"cannot bring the PAN into the MS's stored encoding: {msg}")
    named_view(copy, pan_ds)
    copy.GetRasterBand(1).SetDescription(gdal_text(pan_ds.GetRasterBand(1).GetDescription()))
    return copy, dataclasses.replace(pan, dtype=np.dtype(np.float32), gdal_type=gdal.GDT_Float32, nbits=None,
                                     nodata=math.nan if pan.nodata is not None else None)
