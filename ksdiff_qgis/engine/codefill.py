"""An undeclared fill code: a fill such as -9999, -32768 or 65535 that the raster does not declare as nodata.

Fused as data, such a plateau wrecked every pixel the filters or the network reach from it (QA, a Sentinel-2-like
Int16 x 10^4 reflectance scene with a corner wedge at -9999: MTF-GLP-HPM up to 33474 off beside it, KSDiff 4678,
METHOD auto chose MTF-GLP-FS over KSDiff) while the only word was that 8 % of the pixels were below 0. Such a value
is taken as the input's nodata, as if its file declared it, and the warning gives the command that declares it.

Two kinds of value are fills (``find`` picks a candidate on the sampled windows, ``confirmed`` checks it on one
decimated read of the whole raster, ``overview``):

- A SENTINEL code: negative, one no measurement, saturation or clipping makes — a run of nines (-999, -9999, ...) or a
  signed type's lowest value (-128, -32768, -2147483648, -FLT_MAX) — below all the rest of the data (negative where
  they are >= 0, or GAP_SHARE of their range below them). A fill wherever it is and in whichever bands, any share:
  a masked cloud or a gap inside the scene, one band's detector gap (QA, an interior -9999 block in Sentinel-2 Int16
  reflectance: MTF-GLP-HPM 33844 off beside it, KSDiff 9842; -9999 in one MS band only: 3015 and 3239). GDAL's
  nodata is one value for every band and the pipeline leaves out a pixel that holds it in any band, so such a pixel
  is nodata in the output, as with the same value declared.
- Any other value is a fill only as a scene edge: a plateau of one exact value in every band, in FILL_SHARE of the
  sampled pixels and SOLID (areas, not speckle), outside the rest of the data (negative where every other value is
  >= 0, or the storage type's extreme 255, 65535, ... apart from the data by GAP_SHARE of their range), and on the
  whole raster still outside it and reaching the raster's border (a scene edge, a collar, a corner wedge). The windows
  can miss a sharp-edged object's few edge pixels (QA, a disk-shaped cloud clipped at 65535 on the Landsat 8 PAN:
  19.5 % of the output went nodata), hence the whole-raster read. Inside the scene, or in some bands only, such a
  value is data: bright clouds clipped at 255 (8-bit) or 65535 (16-bit) in one band or all, water clipped to -1. A
  saturated top comes with the values just below it (its edges, mixed pixels), so no gap either.

Zero is ``pipeline.undeclared_fill_notes``'.
"""
from __future__ import annotations

import numpy as np
from osgeo import gdal
from scipy.ndimage import binary_erosion, label

from .errors import InputError
from .feedback import Checkpoint, never_cancelled
from .gdalutil import dataset_name
from .masks import declared_copy
from .nodatacmd import exact, nodata_command
from .numbers import share as percent
from .raster_io import RasterInfo, read_nearest
from .window_sample import spread_windows

WINDOW = 64        # pixels per side of a sampled window, read at full resolution (exact values: no averaging)
WINDOWS = 8        # windows per side of the sampling grid, corners included (a fill is often a corner wedge)
FILL_SHARE = 0.01  # the plateau's share of the sampled pixels (as ``pipeline.FILL_SHARE`` for zeros)
SOLID = 0.5        # share of the plateau's pixels whose 3 x 3 neighbourhood is plateau too: an area, not speckle
GAP_SHARE = 0.25   # a type's extreme lies this share of the data's range beyond all of them (8-bit clouds: 1 / 254)
OVERVIEW = 1_500_000  # pixels per band of the decimated whole-raster read that confirms a candidate (bounded cost)
EDGE_SHARE = 0.5   # share of that read's plateau in areas reaching the raster's border: a scene edge, not an object
NINES_FROM = 999   # the shortest run of nines taken for a fill code (-99 is within reach of data clipped below 0)
# the signed integer types' lowest values: fill codes in any type (an Int16 product made float keeps -32768)
SIGNED_LOWEST = tuple(float(np.iinfo(t).min) for t in (np.int8, np.int16, np.int32))


def sample(ds: gdal.Dataset, checkpoint: Checkpoint = never_cancelled) -> list[np.ndarray]:
    """Up to WINDOWS x WINDOWS windows (C, h, w) of ``ds`` read at full resolution, spread from edge to edge;
    ``checkpoint()`` before each (a cancel stops the scan)."""
    return [a for _, _, a in spread_windows(ds, WINDOW, WINDOWS, checkpoint)]


def _extremes(dtype: np.dtype) -> tuple[float, float]:
    """The storage type's lowest and highest values."""
    info = np.iinfo(dtype) if dtype.kind in "iu" else np.finfo(dtype)
    return float(info.min), float(info.max)


def _solid(windows: list[np.ndarray], value: float) -> float:
    """The share of the plateau's pixels (``value`` in every band) whose 3 x 3 neighbourhood is plateau too; a
    window's edge counts as plateau (the area goes on beyond it)."""
    total = inner = 0
    for win in windows:
        plateau = (win == value).all(axis=0)
        total += int(plateau.sum())
        inner += int(binary_erosion(plateau, np.ones((3, 3), dtype=bool), border_value=1).sum())
    return inner / total if total else 0.0


def sentinel(value: float, dtype) -> bool:
    """Whether ``value`` is a negative code no measurement, saturation or clipping makes: a run of nines from
    NINES_FROM (-999, -9999, -99999, ...) or a signed type's lowest value (SIGNED_LOWEST, a float's -max)."""
    if not value < 0:
        return False
    if value == _extremes(np.dtype(dtype))[0] or value in SIGNED_LOWEST:
        return True
    magnitude = -float(value)
    return magnitude >= NINES_FROM and magnitude.is_integer() and set(str(int(magnitude))) == {"9"}


def _outside(value: float, rest: np.ndarray, dtype: np.dtype) -> bool:
    """``value`` lies outside the ``rest`` of the data (finite, without it): negative where all of them are >= 0, or
    the type's extreme or a ``sentinel`` beyond all of them by GAP_SHARE of their range."""
    if rest.size == 0:
        return False
    low, high = _extremes(dtype)
    below = value < rest.min()
    gap = rest.min() - value if below else value - rest.max()
    coded = value in (low, high) or below and sentinel(value, dtype)
    return bool((below and value < 0 <= rest.min()) or
                (coded and gap >= GAP_SHARE * (rest.max() - rest.min())))


def find(windows: list[np.ndarray], dtype) -> float | None:
    """The candidate fill code of a raster of type ``dtype`` whose sampled ``windows`` (C, h, w) show one, else None
    (``confirmed`` checks it on the whole raster)."""
    dtype = np.dtype(dtype)
    pixels = np.concatenate([w.reshape(w.shape[0], -1) for w in windows], axis=1)
    finite = pixels[np.isfinite(pixels)]
    if finite.size == 0:
        return None
    for value in (float(finite.min()), float(finite.max())):
        if value == 0 or not _outside(value, finite[finite != value], dtype):
            continue
        if sentinel(value, dtype):   # a fill wherever it is, in whichever bands: no share, no shape asked
            return value
        plateau = (pixels == value).all(axis=0)
        if plateau.mean() >= FILL_SHARE and _solid(windows, value) >= SOLID:
            return value
    return None


def overview(ds: gdal.Dataset) -> np.ndarray:
    """The whole of ``ds`` (C, h, w) read once, decimated by nearest neighbour to at most OVERVIEW pixels per band
    (exact values: a fill code and its neighbours stay what they are; never the file's overviews: ``read_nearest``)."""
    step = max(1.0, float(np.sqrt(ds.RasterXSize * ds.RasterYSize / OVERVIEW)))
    w = max(1, min(ds.RasterXSize, int(ds.RasterXSize / step)))
    h = max(1, min(ds.RasterYSize, int(ds.RasterYSize / step)))
    a, msg = read_nearest(ds, w, h)
    if a is None:
        raise InputError(f"cannot read {dataset_name(ds)}: {msg}")
    return np.asarray(a, dtype=np.float64).reshape(ds.RasterCount, h, w)


def confirmed(whole: np.ndarray, value: float, dtype) -> bool:
    """``find``'s candidate ``value`` is a fill on the decimated ``whole`` raster (C, h, w) too: outside the rest of
    the data read there (a saturated object's blurred edge fills the gap the windows saw). A ``sentinel`` then is a
    fill wherever it is (the read may even miss a small hole the windows saw); any other value only when EDGE_SHARE
    of its plateau in every band lies in areas that reach the raster's border. An interior plateau — a saturated
    cloud, water clipped to -1 — is data, unless no saturation or clipping makes it: a float type's extreme."""
    dtype = np.dtype(dtype)
    finite = whole[np.isfinite(whole)]
    if not _outside(value, finite[finite != value], dtype):
        return False
    if sentinel(value, dtype):
        return True
    plateau = (whole == value).all(axis=0)
    if not plateau.any():
        return False
    areas, _ = label(plateau, structure=np.ones((3, 3), dtype=bool))
    ring = np.concatenate([areas[0], areas[-1], areas[:, 0], areas[:, -1]])
    if np.isin(areas, np.unique(ring[ring > 0])).sum() >= EDGE_SHARE * plateau.sum():
        return True
    return value in _extremes(dtype) and dtype.kind == "f"


def _where(held: list[int], bands: int) -> str:
    """The bands that hold a fill, as the warning names them ('' for a one-band raster)."""
    if bands == 1:
        return ""
    if len(held) == bands:
        return " in every band"
    return f" in band{'s' * (len(held) > 1)} {', '.join(map(str, held))} only"


def with_fill_code(ds: gdal.Dataset, info: RasterInfo, role: str, checkpoint: Checkpoint = never_cancelled
                   ) -> tuple[gdal.Dataset, RasterInfo, str | None]:
    """(dataset, info, the warning) with an undeclared fill code ``find`` sees declared nodata on a virtual copy
    (GDAL's own reads leave it out too, as a QGIS layer's value is: ``masks.with_nodata``); the warning says so and
    gives the command that makes the file declare it. (``ds``, ``info``, None) when there is none. Only for a raster
    that declares no nodata value (nor has one set on its layer or in its DIMAP). ``checkpoint()`` between its reads
    (``Feedback.stop_if_cancelled``)."""
    if info.nodata is not None:
        return ds, info, None
    windows = sample(ds, checkpoint)
    value = find(windows, info.dtype)
    if value is None:
        return ds, info, None
    checkpoint()
    whole = overview(ds)
    if not confirmed(whole, value, info.dtype):
        return ds, info, None
    vrt, declared = declared_copy(ds, info, value, f"the {role} raster's fill value {exact(value, info.dtype)} as "
                                  "nodata")
    rest = whole[np.isfinite(whole) & (whole != value)]
    shown = exact(value, info.dtype)
    data = f"({rest.min():.6g} to {rest.max():.6g})"
    command = (f"To make the file declare it, {nodata_command(info.path, value, info.dtype)}; if those pixels are "
               "data, declare another nodata value on the layer (Layer Properties > Transparency).")
    if not sentinel(value, info.dtype):
        plateau = (whole == value).all(axis=0)
        return vrt, declared, (
            f"The {role} raster declares no nodata value, yet {percent(int(plateau.sum()), plateau.size, 0)} of its "
            f"sampled pixels are {shown}"
            + (" in every band" if info.bands > 1 else "") + f", in solid areas outside the rest of its data {data}: "
            f"a fill (a scene edge), left out as nodata (the output is nodata there). {command}")
    # the decimated read can miss a small hole the windows saw: the bands and share of both
    found = (whole == value).any(axis=0)
    held = sorted({b + 1 for b in range(info.bands) if (whole[b] == value).any()}
                  | {b + 1 for w in windows for b in range(info.bands) if (w[b] == value).any()})
    if not found.any():   # a hole only the windows saw
        found = np.concatenate([(w == value).any(axis=0).ravel() for w in windows])
    some = len(held) < info.bands
    return vrt, declared, (
        f"The {role} raster declares no nodata value, yet {percent(int(found.sum()), found.size, 0)} of its sampled "
        f"pixels are {shown}"
        f"{_where(held, info.bands)}, far below the rest of its data {data}: a fill code, which no measurement makes, "
        "left out as nodata wherever it is (the output is nodata there"
        + (", in every band: a pixel that is fill in one band is nodata in all" if some else "") + f"). {command}")
