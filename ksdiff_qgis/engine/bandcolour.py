"""Which output bands are red, green and blue, and telling GDAL so (natural colour in any GIS); alpha-flagged inputs."""
from __future__ import annotations

import re

import numpy as np
from osgeo import gdal

from .gdalutil import gdal_call

_COLOURS = {"red": gdal.GCI_RedBand, "green": gdal.GCI_GreenBand, "blue": gdal.GCI_BlueBand}


def _colour_of(name: str) -> str | None:
    """'red', 'green' or 'blue' when a band name says so ('B4 Red', 'Blue'); 'Red Edge' is not red."""
    words = set(re.findall(r"[a-z]+", name.lower()))
    hits = [c for c in _COLOURS if c in words]
    if len(hits) != 1 or words & {"edge", "nir", "infrared"}:
        return None
    return hits[0]


def rgb_bands(names: list[str]) -> tuple[int, int, int] | None:
    """1-based (red, green, blue) band numbers from band names, or None unless each colour is there once."""
    found: dict[str, list[int]] = {c: [] for c in _COLOURS}
    for i, name in enumerate(names, start=1):
        colour = _colour_of(name or "")
        if colour:
            found[colour].append(i)
    if any(len(v) != 1 for v in found.values()):
        return None
    return found["red"][0], found["green"][0], found["blue"][0]


def set_colour_interpretation(ds: gdal.Dataset, names: list[str]) -> None:
    """Mark the red, green and blue bands of ``ds`` (GeoTIFF stores this in the file, no sidecar)."""
    rgb = rgb_bands(names)
    if rgb is None:
        return
    wanted = {i: gdal.GCI_Undefined for i in range(1, ds.RasterCount + 1)}   # GTiff would say Gray
    wanted.update({band: _COLOURS[c] for band, c in zip(rgb, ("red", "green", "blue"))})
    for i, interp in wanted.items():
        # cosmetic: a driver that refuses must not fail the run (GDAL exceptions may be on)
        gdal_call(ds.GetRasterBand(i).SetColorInterpretation, interp)


def alpha_band_note(ds: gdal.Dataset, fused: list[int]) -> str | None:
    """A warning when a band about to be fused is flagged as alpha (transparency) in the file, else None.

    GDAL writes three or four Byte bands as RGB + alpha unless told otherwise, so a 4-band 8-bit B, G, R, NIR
    product often carries its NIR band flagged as alpha: the band is fused as data either way; the note says how
    to leave a real transparency band out."""
    flagged = [b for b in fused if ds.GetRasterBand(b).GetColorInterpretation() == gdal.GCI_AlphaBand]
    if not flagged:
        return None
    which = ", ".join(str(b) for b in flagged)
    keep = ",".join(str(b) for b in fused if b not in flagged)
    return (f"MS band {which} is flagged as alpha (transparency) in the file; it is fused as a spectral band "
            f"(GDAL flags the 4th band of 8-bit products so by default). If it really is a transparency mask, "
            f"choose the other bands (MS bands {keep}) and give the MS a nodata value.")


def _sample(ds: gdal.Dataset, band: int, sample: int):
    w, h = ds.RasterXSize, ds.RasterYSize
    arr, _ = gdal_call(ds.GetRasterBand(band).ReadAsArray, 0, 0, w, h, min(w, sample), min(h, sample))
    return arr


def hidden_pixels_are_zero(ds: gdal.Dataset, masks: list[int], sample: int = 256) -> bool:
    """True when every other band is 0 wherever a transparency mask is 0 (on the same sample): then 0 can serve as
    the MS nodata value, so the hidden pixels are left out like any nodata."""
    arrays = {b: _sample(ds, b, sample) for b in range(1, ds.RasterCount + 1)}
    if any(a is None for a in arrays.values()):
        return False
    hidden = np.logical_or.reduce([arrays[b] == 0 for b in masks])
    return bool(hidden.any()) and all((a[hidden] == 0).all() for b, a in arrays.items() if b not in masks)


def transparency_masks(ds: gdal.Dataset, sample: int = 256) -> list[int]:
    """1-based bands flagged as alpha that hold only 0 and the data type's maximum on a sample of the raster (nearest
    neighbour): transparency masks, not spectral bands. An alpha-flagged band with other values is data (GDAL's
    default flag on the 4th of four Byte bands)."""
    out = []
    for b in range(1, ds.RasterCount + 1):
        band = ds.GetRasterBand(b)
        if band.GetColorInterpretation() != gdal.GCI_AlphaBand:
            continue
        arr = _sample(ds, b, sample)
        if arr is None or not np.issubdtype(arr.dtype, np.integer):
            continue
        if set(np.unique(arr).tolist()) <= {0, int(np.iinfo(arr.dtype).max)}:
            out.append(b)
    return out
