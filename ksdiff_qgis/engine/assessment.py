"""Quality assessment of a pansharpened raster against rasters on disk, tile by tile (no QGIS).

Reduced resolution (a reference MS on the fused grid, e.g. the original MS of a Wald test case):
SAM, ERGAS, Q2n (Q4/Q8), Q, SCC, PSNR, SSIM. Full resolution (the original PAN and MS): Dλ (Khan), Ds,
HQNR, Dρ, the checkerboard response (fused, worst band, and the PAN's) and the reprojection indices
R-Q2n, R-SAM, R-ERGAS. Definitions: ``metrics.py``.

Memory is bounded: rasters are read in tiles with context (``raster_io.MaskedRaster``) and the indices are
accumulated tile by tile (:class:`metrics.ReducedAccumulator`, :class:`metrics.FullAccumulator`); every pixel,
sliding window and 32x32 block is counted once, so the result equals the whole-image computation.
The reprojection indices are accumulated on the MS grid in a second pass.
"""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
from osgeo import osr

from . import blockrepeat
from . import metrics as M
from .bandcolour import alpha_flagged
from .bands import band_gain, band_names, colour_named, colour_names, kind_of, select_bands, with_colour_names
from .delivery import source_band_statements
from .dimap_values import product_view
from .errors import InputError, shown_name
from .feedback import Feedback
from .filters import MTF_TAPS, grow_mask, upsample
from .gdalutil import gdal_text
from .grid import (
    EDGE_TOLERANCE,
    GRID_SHIFT,
    NO_CRS,
    apparent_ratio,
    assign_crs,
    crs_name,
    extent_text,
    plan_grid,
    same_crs,
    whole_ratio,
)
from .masks import with_nodata, without_transparency_mask
from .metascan import MetadataScan
from .placement import ASSESSMENT, check_located, epsg_of
from .raster_io import (
    MaskedRaster,
    RasterInfo,
    declared_scaling,
    describe,
    encoding_words,
    is_nodata,
    open_dataset,
    read_nearest,
    value_range,
)
from .report import INDICES
from .sensors import GENERIC_MTF_MS, SENSORS, Sensor, get_sensor
from .shellcmd import beside, shell_arg

TILE = 512
MIN_FULL = 32           # PAN pixels per side of the overlap the full-resolution indices need (one 32x32 block)
REPRO_TILE = 128        # MS pixels per reprojection tile (the fused window behind it is ratio^2 larger)
REPRO_HALO = 32         # MS pixels of context: enough for 32x32 Q2n blocks and Q windows
ALIGN_TOL = 0.05        # fused pixels: a smaller MS grid offset counts as aligned
APPROXIMATE = ("The full-resolution indices (Dλ, Ds, HQNR, Dρ, R-Q2n, R-SAM, R-ERGAS) compare the fused raster with "
               "this resampled MS, as ksdiff:pansharpen fused it, not with the MS's own pixels: they are "
               "approximate, and flattering, as the resampling smooths the MS (on the WorldView-2 test fixture "
               "reprojected to EPSG:4326: Dλ 0.012 against 0.058 on its own pixels, HQNR 0.95 against 0.88). For "
               "exact figures give an MS on a whole-ratio, north-up grid in the PAN's CRS (e.g. gdalwarp -t_srs "
               "<PAN CRS> -tr <ratio x PAN pixel>), and pansharpen and assess with it")


def grid_offset(a: MaskedRaster, b: MaskedRaster, tol: float = ALIGN_TOL) -> tuple[int, int]:
    """Integer pixel offset (col, row) of ``b``'s origin on ``a``'s grid; both grids must coincide: pixel sizes
    within ``tol`` pixels of drift across the larger raster (float noise in a georeference: 2.0001 against
    2.0001 x (1 + 1.5e-6) drifts 0.0002 pixels over 148), the origins within ``tol`` of a whole pixel."""
    drift = max(abs(a.gt[1] - b.gt[1]) / abs(a.gt[1]) * max(a.w, b.w),
                abs(a.gt[5] - b.gt[5]) / abs(a.gt[5]) * max(a.h, b.h))
    if drift > tol:
        raise InputError(f"{b.role} and {a.role} have different pixel sizes ({b.gt[1]:.10g} x {b.gt[5]:.10g} vs "
                         f"{a.gt[1]:.10g} x {a.gt[5]:.10g}: {drift:.3g} pixels apart across the raster, more than "
                         f"{tol:g}); they must share one pixel grid: resample {b.role} onto {a.role}'s grid "
                         f"({warp_onto(b, a)}, {a.role}'s extent and pixel size)")
    u, v = (b.gt[0] - a.gt[0]) / a.gt[1], (b.gt[3] - a.gt[3]) / a.gt[5]
    if abs(u - round(u)) > tol or abs(v - round(v)) > tol:
        # the amount and the remedy with the numbers to type (QA: the refusal said neither)
        raise InputError(f"{b.role} is shifted by a fraction of a pixel from {a.role}: its origin lies at "
                         f"({u - round(u):+.2f}, {v - round(v):+.2f}) {a.role} pixels (column, row) from the nearest "
                         f"corner of {a.role}'s grid, more than {tol:g}; the pixels must coincide: resample {a.role} "
                         f"onto {b.role}'s grid ({warp_onto(a, b)}, {b.role}'s extent and pixel size)")
    return int(round(u)), int(round(v))


def warp_onto(a: MaskedRaster, b: MaskedRaster) -> str:
    """The gdalwarp command that resamples ``a``'s file onto ``b``'s grid, with both file names (QA133: the refusal
    gave the options alone, and pasted as printed it failed), and ``-s_srs`` when ``a``'s QGIS layer CRS replaces its
    file's (``_layer_srs``)."""
    x0, y0, x1, y1 = _extent(b)
    src = a.path or a.role.lower() + ".tif"
    return (f"gdalwarp {_layer_srs(a)}-te {x0:.10g} {y0:.10g} {x1:.10g} {y1:.10g} -tr {abs(b.gt[1]):.10g} "
            f"{abs(b.gt[5]):.10g} -r cubic {shell_arg(src)} {shell_arg(beside(src, '_on_' + b.role.lower() + '.tif'))}")


def _layer_srs(r: MaskedRaster) -> str:
    """'-s_srs EPSG:32631 ' when ``r``'s layer CRS replaced its file's (``use_layer_crs``), else '': without it
    gdalwarp writes the file's own CRS, and the resampled raster was not on the grid the command named (QA136)."""
    wkt = r.ds.GetProjection() or ""
    try:
        own = open_dataset(r.path, r.role) if r.path and wkt else None
    except InputError:
        return ""
    if own is None or assign_crs(own, wkt, r.role)[1] is None:
        return ""
    code = epsg_of(wkt)
    if code:
        return f"-s_srs EPSG:{code} "
    srs = osr.SpatialReference()
    srs.ImportFromWkt(wkt)
    return f"-s_srs {shell_arg(srs.ExportToProj4().strip() or wkt)} "


def peak_value(raster: MaskedRaster, sensor_scale: float) -> float:
    """The full scale PSNR and SSIM divide by: the sensor's, unless the data's type holds less (8-bit products).
    Floating point: 1.0 for reflectance (band mean + 5 standard deviations at most 1.5, so a stray bright pixel does
    not change the scale), else the larger of the sensor's scale and the data's maximum (reflectance x 10^4).
    A raster read in physical values (``use_declared_scaling``): that full scale in them, its highest band's."""
    peak = _stored_peak(raster, sensor_scale)
    if not raster.physical:
        return peak
    return max(peak * sc + off for sc, off in raster.scaling)


def _stored_peak(raster: MaskedRaster, sensor_scale: float) -> float:
    info = describe(raster.ds, raster.path)
    if info.dtype.kind != "f" and (sensor_scale or info.nbits):   # the generic sensor (scale 0): the declared bits
        return min(sensor_scale or math.inf, value_range(info.dtype, info.nbits)[1])
    # a decimated read: no statistics written beside the user's file
    sample = _nearest_sample(raster)
    values = [b[np.isfinite(b) & ~np.isin(b, [nd for nd in raster.nodata if nd is not None])] for b in sample]
    values = [v for v in values if v.size]
    if info.dtype.kind != "f":   # the generic sensor and integers of undeclared bits: the data's maximum
        return max([float(v.max()) for v in values] + [1.0])
    if not values or max(v.mean() + 5 * v.std() for v in values) <= 1.5:
        return 1.0
    return max(sensor_scale, max(float(v.max()) for v in values))


SCALE_FACTOR = 4        # 99th percentiles further apart than this: the rasters are on different radiometric scales
COVERAGE_NOTE = 0.99    # FUSED covering less of REFERENCE's valid pixels than this is said
ZERO_HOLES = 64         # all-zero FUSED pixels over REFERENCE data, without a declared nodata, said from this many


def _nearest_sample(raster: MaskedRaster) -> np.ndarray:
    """``raster``'s selected bands decimated to at most 512 x 512 pixels, (bands, pixels) float64 in stored values:
    read once per raster and band selection (the peak, the scale check and the level test ask up to five times, each
    a decoding of the whole file). Real pixels, never the file's averaged overviews: they blend nodata into data."""
    key = tuple(raster.band_list)
    cache = raster.__dict__.setdefault("_nearest_samples", {})
    if key not in cache:
        arr, msg = read_nearest(raster.ds, 512, 512, raster.band_list)
        if arr is None:   # a damaged block: said, not an AttributeError or a silently skipped check
            raise InputError(f"cannot read {raster.role} {shown_name(gdal_text(raster.path))}: {msg}")
        cache[key] = np.asarray(arr, dtype=np.float64).reshape(len(key), -1)
    return cache[key]


def _sample(raster: MaskedRaster) -> np.ndarray:
    """The valid values (not nodata, finite) of a decimated read of ``raster``'s bands, pooled; nothing is written
    beside the user's file (no statistics)."""
    arr = _nearest_sample(raster)
    ok = np.isfinite(arr).all(axis=0)
    for b, nd in enumerate(raster.nodata):
        if nd is not None and not math.isnan(nd):
            ok &= ~is_nodata(arr[b], nd, raster.dtype)
    if raster.physical:   # as the indices read it (nodata compared on the stored values)
        arr = raster.to_physical(arr)
    return arr[:, ok].ravel()


def _type_text(raster: MaskedRaster) -> str:
    """'8-bit', '11-bit', 'floating point': the data type as a user reads it (NBITS when declared); with the declared
    scale/offset when the raster is read in physical values (its bit depth is not what the values show)."""
    info = describe(raster.ds, raster.path)
    text = "floating point" if info.dtype.kind == "f" else f"{info.nbits or info.dtype.itemsize * 8}-bit"
    return f"{text} {_encoding(raster)}" if raster.physical and _declares(raster) else text


def scale_warning(fu: MaskedRaster, other: MaskedRaster) -> str | None:
    """A warning when FUSED's values and ``other``'s (REFERENCE or MS) are on different radiometric scales: their
    99th percentiles (a decimated sample) more than ``SCALE_FACTOR`` apart (an 8-bit view of an 11-bit product). The
    indices still run: a warning, not a refusal. When only one of the two declares a scale/offset, the advice is the
    missing tag, not the bit depth (QA: a scaled FUSED against an untagged REFERENCE was told "not a rescaled or
    8-bit copy")."""
    a, b = _sample(fu), _sample(other)
    if not a.size or not b.size:
        return None
    pa, pb = float(np.percentile(a, 99)), float(np.percentile(b, 99))
    if pa > 0 and pb > 0 and 1 / SCALE_FACTOR <= pa / pb <= SCALE_FACTOR:
        return None
    if pa <= 0 and pb <= 0:
        return None
    head = (f"FUSED is {_type_text(fu)} (values up to {pa:.4g}, 99th percentile), {other.role} {_type_text(other)} "
            f"(up to {pb:.4g}): different radiometric scales, the indices compare unlike values. ")
    if _declares(fu) != _declares(other):
        has, lacks = (fu, other) if _declares(fu) else (other, fu)
        return head + (f"Only {has.role} declares a scale/offset ({_encoding(has)}): if {lacks.role} is stored like "
                       f"it, declare the same on {lacks.role} (gdal_edit.py -scale / -offset); else assess a fused "
                       f"raster on {other.role}'s scale")
    return head + (f"Assess a fused raster on {other.role}'s scale (the output of the fusion itself, not a rescaled "
                   "or 8-bit copy)")


def _encoding(raster: MaskedRaster) -> str:
    """'x 2.75e-05 - 0.2' (one per distinct band encoding), or 'none declared'."""
    pairs = list(dict.fromkeys(p for p in raster.scaling if p != (1.0, 0.0)))
    return ", ".join(map(encoding_words, pairs)) if pairs else "none declared (stored values)"


def _declares(raster: MaskedRaster) -> bool:
    return any(p != (1.0, 0.0) for p in raster.scaling)


def _level(raster: MaskedRaster, physical: bool) -> float:
    """log10 of the mean magnitude of ``raster``'s sampled values, stored or physical."""
    was, raster.physical = raster.physical, physical and _declares(raster)
    try:
        values = _sample(raster)
    finally:
        raster.physical = was
    return math.log10(float(np.abs(values).mean()) + 1e-12) if values.size else 0.0


def _at_stored_level(raster: MaskedRaster, against: MaskedRaster) -> bool:
    """Whether a raster that declares no scale/offset holds the stored encoding of ``against`` (which declares one: a
    tool dropped the tag, or the product never had it) rather than physical values (converted to them): its values'
    level is nearer the stored one."""
    mine = _level(raster, False)
    return abs(mine - _level(against, False)) <= abs(mine - _level(against, True))


def _roles(rasters: list[MaskedRaster]) -> str:
    """'FUSED', 'the PAN and the MS': the roles as a sentence names them."""
    names = [r.role if r.role == "FUSED" else f"the {r.role}" for r in rasters]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _one_encoding(raster: MaskedRaster) -> tuple[float, float] | None:
    """``raster``'s declared (scale, offset) when all its bands share one, else None."""
    pairs = set(raster.scaling)
    return pairs.pop() if len(pairs) == 1 else None


def use_declared_scaling(rasters: list[MaskedRaster], fb: Feedback) -> str | None:
    """When any of ``rasters`` (FUSED first, the MS or REFERENCE last) declares a band scale/offset (Landsat C2 L2:
    UInt16 x 2.75e-05 - 0.2), read each in physical values, its own scale/offset applied (none: its stored values,
    physical ones), and say so (the line, also given to ``fb``, for the report); None, and nothing changed, when none
    declares one. QA: the indices ran on stored DN, and a fused raster converted to reflectance scored HQNR 0
    against a scaled MS and PAN.

    Rasters that declare none while others do and whose values are at the declaring ones' stored level (a tool
    dropped the tag, or only some inputs were tagged) would be compared in stored numbers against physical values
    (QA: an untagged FUSED, HQNR 0.945 -> 0.0; an untagged PAN, Ds 0.027 -> 0; an untagged REFERENCE, Q 0.894 -> 0):
    all the rasters are compared on stored values then, the figures those of the untagged inputs, with one warning
    naming the inputs without the tag — when all the declaring rasters share one encoding. When the untagged rasters
    are some at the stored level and some physical, or the declaring ones store differently (a FUSED x 1e-4 beside
    an MS x 2.75e-05 - 0.2), the stored ones are read with the MS's (REFERENCE's) encoding (a PAN stored like the MS,
    as ksdiff:pansharpen takes it), said in the same warning."""
    declaring = [r for r in rasters if _declares(r)]
    if not declaring:
        return None
    against = declaring[-1]   # the MS or REFERENCE when it declares one: what the others were made from
    bare = [r for r in rasters if not _declares(r)]
    stored = [r for r in bare if _at_stored_level(r, against)]
    encoding = _one_encoding(against)
    many = len(stored) > 1
    lack = stored and (f"{_roles(stored)} {'carry' if many else 'carries'} no scale/offset while {_roles(declaring)} "
            f"{'declares' if len(declaring) == 1 else 'declare'} one ({against.role} {_encoding(against)}), and "
            f"{'their' if many else 'its'} values are at the {against.role}'s stored level")
    lack = lack and lack[0].upper() + lack[1:]
    # stored values are one scale only when every declaring raster stores alike (a FUSED x 1e-4 beside an MS
    # x 2.75e-05 - 0.2 stores other numbers: the untagged ones then take the MS's encoding, below)
    alike = len({p for r in declaring for p in r.scaling}) == 1
    if stored and (encoding is None or (alike and len(stored) == len(bare))):
        fb.warning(f"{lack}: the indices compare all the inputs on stored values, as if none declared one (declare "
                   f"the scale/offset on {_roles(stored)} to compare physical values)")
        for r in rasters:
            r.physical = False
        return None
    for r in stored:   # a PAN stored like the MS beside a FUSED in physical values: the MS's encoding is its own
        r.scaling = [encoding] * r.bands
    physical = [r for r in bare if r not in stored]
    if stored:
        why = (f"{_roles(physical)} {'hold' if len(physical) > 1 else 'holds'} physical values" if physical else
               f"{_roles(declaring)} declare different scale/offsets (stored values are no common scale)")
        fb.warning(f"{lack}, while {why}: {_roles(stored)} {'are' if many else 'is'} read with the "
                   f"{against.role}'s scale/offset (declare it on {_roles(stored)} to say so)")
    for r in rasters:
        r.physical = True
    line = ("The indices are computed on physical values, each raster's own declared scale/offset applied: "
            + "; ".join(f"{r.role} {_encoding(r)}" for r in rasters))
    fb.info(line)
    return line


def use_layer_crs(rasters: list[MaskedRaster], layer_crs: dict[str, str | None] | None, fb: Feedback) -> None:
    """Give each raster the CRS (WKT) set on its QGIS layer, per role, as ``ksdiff:pansharpen`` does
    (``grid.assign_crs``): both algorithms place the pixels as QGIS shows them."""
    for r in rasters:
        r.ds, note = assign_crs(r.ds, (layer_crs or {}).get(r.role), r.role)
        if note:
            fb.warning(note)


def check_same_crs(first: MaskedRaster, *others: MaskedRaster) -> None:
    """The rasters of one assessment must share a CRS: their pixels are compared by grid position."""
    wkt = first.ds.GetProjection() or ""
    for other in others:
        if not same_crs(wkt, other.ds.GetProjection() or ""):
            raise InputError(f"{other.role} and {first.role} are in different coordinate reference systems (or one "
                             "has none): reproject one onto the other's grid first (Raster > Projections > Warp)")


def _extent(r: MaskedRaster) -> tuple[float, float, float, float]:
    """(xmin, ymin, xmax, ymax) a north-up raster covers."""
    x0, x1 = sorted((r.gt[0], r.gt[0] + r.w * r.gt[1]))
    y0, y1 = sorted((r.gt[3], r.gt[3] + r.h * r.gt[5]))
    return x0, y0, x1, y1


def check_overlap(first: MaskedRaster, *others: MaskedRaster) -> None:
    """InputError naming both extents when a raster does not overlap ``first`` (rasters in one CRS): said as such,
    before the grids are compared (rasters of another scene read as 'shifted by a fraction of a pixel')."""
    a = _extent(first)
    for other in others:
        b = _extent(other)
        if min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1]):
            continue

        def text(e: tuple[float, float, float, float]) -> str:
            return extent_text(*e)

        crs = crs_name(first.ds.GetProjection() or "")
        raise InputError(f"{first.role} and {other.role} do not overlap: in their CRS ({crs}) {first.role} covers "
                         f"{text(a)}, {other.role} {text(b)}. Give the {other.role} of the scene {first.role} was made "
                         "from (or check both georeferences)")


def _pan_reach(ratio: int) -> int:
    """Fused pixels a PAN value reaches through its low-pass (Wald degradation, then cubic re-interpolation)."""
    return MTF_TAPS // 2 + 3 * ratio


def _shrink(valid: np.ndarray, reach: int) -> np.ndarray:
    """``valid`` without the pixels within ``reach`` of a hole: a filter of that reach carries the hole's fill into
    them."""
    return valid if valid.all() else valid & ~grow_mask(~valid, reach)


def _tiling(ratio: int = 1) -> tuple[int, int]:
    """Tile size and context (pixels) of the tiled pass: see :func:`_tiles`."""
    step = math.lcm(32, ratio)
    halo = max(M.TILE_HALO, 32 + _pan_reach(ratio)) if ratio > 1 else M.TILE_HALO
    return max(step, TILE // step * step), -(-halo // ratio) * ratio


def _tiles(h: int, w: int, ratio: int = 1):
    """Tiles and their cores; at full resolution the tile and its halo are whole multiples of 32 and of the ratio
    (``tile_cores``): at ratio 3 the 512-pixel tiles moved Ds by 1 % against the whole image. The halo holds a
    32-pixel window past the core plus the filters' reach, so a hole's shadow is seen in every tile it falls on."""
    return list(M.tile_cores(h, w, *_tiling(ratio)))


def _bands(fu: MaskedRaster, sens: Sensor, fb: Feedback) -> tuple[list[str], list[float]]:
    """Names of the fused bands (description, else the sensor's by position) and their MS MTF gains: by band name,
    by position when the layout is the sensor's, else the generic gain, said."""
    names = band_names(fu.names, sens)
    gains = [band_gain(i, nm, fu.bands, sens) for i, nm in enumerate(names)]
    kind = kind_of(sens)
    kinds = [kind(n) for n in sens.band_names]
    unknown = [nm for nm in names if kind(nm) is None or kinds.count(kind(nm)) != 1]
    if not sens.generic and fu.bands != sens.n_bands and unknown:
        short, one = sens.name.split(" (")[0], len(unknown) == 1
        # one sentence (QA: "FUSED has 8 bands, WorldView-2 (4 bands: B, G, R, NIR) 4, and Coastal, ... is not named")
        fb.warning(f"FUSED has {fu.bands} bands and {short} (SENSOR {sens.key}) {sens.n_bands}: "
                   f"{', '.join(unknown)} {'is' if one else 'are'} none of {short}'s bands "
                   f"({', '.join(sens.band_names)}), so the generic MTF gain {GENERIC_MTF_MS:g} filters "
                   f"{'it' if one else 'them'} for Dλ and the R- indices. Name the bands as the sensor's (band "
                   "descriptions) or choose the data's sensor")
    return names, gains


def sensor_fit_note(sensor: str, bands: int, ratio: int | None = None, made_with: str | None = None,
                    auto: bool = False) -> str | None:
    """One warning line when the chosen ``sensor`` does not fit the data: its MS band count is not FUSED's ``bands``
    (unless FUSED was fused with that very sensor, ``made_with``: its KSDIFF_SENSOR tag, an MS_BANDS subset), its
    ratio not the PAN/MS pair's ``ratio`` (None: no PAN/MS given), or FUSED's tag names another sensor; naming the
    other sensors that fit (FUSED's tag first), and auto unless SENSOR auto (``auto``) chose ``sensor``. None when
    it fits or is generic. The SENSOR option numbers differ between ksdiff:pansharpen and ksdiff:assess (kept: saved
    models and History depend on them), so a bare number copied from one to the other picks another sensor: this
    line is what says so."""
    spec = get_sensor(sensor)
    if spec.generic:
        return None
    own = made_with == sensor
    off_bands = bands != spec.n_bands and not own
    off_ratio = bool(ratio and spec.ratio and ratio != spec.ratio)
    other_tag = made_with in SENSORS and made_with != sensor and not get_sensor(made_with).generic
    if not (off_bands or off_ratio or other_tag):
        return None
    fits = [k for k, s in SENSORS.items() if not s.generic and s.n_bands == bands
            and (not ratio or not s.ratio or s.ratio == ratio)]
    # never the chosen sensor among the alternatives (QA: "choose a sensor that fits (wv2_8, wv3) or auto" on wv2_8,
    # under SENSOR auto)
    others = ([made_with] if other_tag else []) + [k for k in fits if k not in (sensor, made_with)]
    name = spec.name.split(" (")[0]
    data = f"FUSED has {bands} bands" + (f", the PAN/MS pair ratio {ratio}" if ratio else "")
    tag = f"; FUSED was made with SENSOR {made_with} (its KSDIFF_SENSOR tag)" if other_tag else ""
    chosen = f"SENSOR auto chose {sensor}, {name}" if auto else f"SENSOR {sensor} is {name}"
    advice = (f"set SENSOR to one that fits ({', '.join(others)})" if others else "set SENSOR to generic") \
        + ("" if auto else " or auto")
    return (f"{chosen}: {spec.n_bands} MS bands at ratio {spec.ratio}; {data}{tag}. The indices use "
            f"{name}'s MTF gains, full scale (PSNR, SSIM) and ratio (ERGAS): {advice}")


def _made_with(path: str) -> str | None:
    """The sensor a ksdiff:pansharpen output was fused with (its KSDIFF_SENSOR tag), or None."""
    ds = open_dataset(path, "FUSED")
    return gdal_text(ds.GetMetadataItem("KSDIFF_SENSOR") or "") or None


def _tagged_bands(fu: MaskedRaster) -> list[int] | None:
    """The MS bands FUSED was fused from, as its KSDIFF_MS_BANDS tag lists them ('7,5,3,2'), when it lists one per
    FUSED band, else None."""
    text = gdal_text(open_dataset(fu.path, "FUSED").GetMetadataItem("KSDIFF_MS_BANDS") or "").strip()
    parts = [p.strip() for p in text.split(",")] if text else []
    if not parts or not all(p.isdigit() for p in parts):
        return None
    bands = [int(p) for p in parts]
    return bands if len(bands) == fu.bands and len(set(bands)) == len(bands) and min(bands) >= 1 else None


def name_by_colour(r: MaskedRaster, fb: Feedback) -> None:
    """Name ``r``'s unnamed bands that the file's colour interpretation tags Red, Green or Blue, as ksdiff:pansharpen
    names them (``bands.colour_named``), so ``pair_bands`` pairs them by name (QA: an R, G, B, NIR MS tagged so, fused
    with MS_BANDS 3,2,1,4, was compared by position: FUSED's Blue with the MS's Red, D_lambda 0.0996 for 0.0252)."""
    r.names, notes = colour_named(r.names, colour_names(r.ds, source_band_statements(r.path)), r.dtype, r.role)
    for line in notes:
        fb.info(line)


def pair_bands(fu: MaskedRaster, other: MaskedRaster, fb: Feedback) -> None:
    """Make ``other`` (REFERENCE or MS) read the bands FUSED holds. A fused raster of fewer bands or of the same bands
    in another order (pansharpened from an MS_BANDS selection, e.g. NIR, Red, Green) is paired with ``other``'s bands
    of the same descriptions when each names exactly one; else with the MS bands FUSED's KSDIFF_MS_BANDS tag says it
    was fused from (an unnamed MS: QA, a 7,5,3,2 fusion of an unnamed 8-band MS was refused); otherwise the band
    counts must agree (paired by position)."""
    key = [(n or "").strip().lower() for n in other.names]
    picks = [[i + 1 for i, k in enumerate(key) if k and k == (nm or "").strip().lower()] for nm in fu.names]
    # as many unnamed bands of ``other`` as FUSED bands no name pairs: those, in order (an MS tagged Red, Green, Blue
    # beside one untagged band, fused as B, G, R, NIR: its 4th band is the NIR, as ksdiff:pansharpen took it)
    unnamed, left = [i + 1 for i, k in enumerate(key) if not k], [j for j, p in enumerate(picks) if not p]
    if fu.bands == other.bands and unnamed and len(unnamed) == len(left) and len(unnamed) < fu.bands:
        for j, b in zip(left, unnamed):
            picks[j] = [b]
    by_name = fu.bands <= other.bands and all(len(p) == 1 for p in picks) and len({p[0] for p in picks}) == fu.bands
    tagged = _tagged_bands(fu)
    # only to pick a subset: a raster of FUSED's band count may already be the bands in FUSED's order (as the
    # refusal below asks), which the tag would reorder
    if not by_name and tagged and fu.bands < other.bands and max(tagged) <= other.bands:
        other.select(tagged)
        fb.info(f"FUSED's {fu.bands} bands are compared with the {other.role} bands its KSDIFF_MS_BANDS tag says it "
                f"was fused from ({other.role}'s band names do not pair them): "
                + ", ".join(f"{shown_name(nm) if nm else f'band {i}'} = {other.role} band {b}"
                            for i, (nm, b) in enumerate(zip(fu.names, tagged), start=1)))
        return
    if fu.bands == other.bands and (not by_name or [p[0] for p in picks] == list(range(1, fu.bands + 1))):
        return   # the same bands in the same order, or nothing in the names to say otherwise: by position
    if by_name:   # a subset, or the same bands in another order (MS_BANDS 4,3,2,1): by name
        other.select([p[0] for p in picks])
        fb.info(f"FUSED's {fu.bands} bands are compared with {other.role}'s bands of the same names: "
                + ", ".join(f"{shown_name(nm)} = {other.role} band {p[0]}" + (" (unnamed: the band the names leave)"
                                                                              if p[0] in unnamed else "")
                            for nm, p in zip(fu.names, picks)))
        return

    def listed(r: MaskedRaster) -> str:
        return ", ".join(shown_name(n) if n else "unnamed" for n in r.names)

    # the command for FUSED's own bands when its tag says them; a generic example otherwise
    example = ("gdal_translate " + " ".join(f"-b {b}" for b in tagged) + ", the bands FUSED's KSDIFF_MS_BANDS tag "
               "lists" if tagged else "gdal_translate -b 4 -b 3 -b 2 for bands 4, 3, 2")
    raise InputError(f"FUSED has {fu.bands} bands ({listed(fu)}), {other.role} {other.bands} ({listed(other)}), and "
                     f"they cannot be paired by band name: give a {other.role} of only the bands FUSED was made "
                     f"from, in its order (e.g. {example}; or Raster > Conversion > Translate), or "
                     f"name FUSED's bands (band descriptions) as {other.role}'s")


def _explain(res: dict, fb: Feedback) -> None:
    """Say in the log why each n/a index is n/a (the report says it too)."""
    for key, why in res.get("why", {}).items():
        fb.warning(f"{INDICES[key][1]} is n/a: {why}")


def _step(fb: Feedback, done: int, total: int) -> None:
    fb.stop_if_cancelled()
    fb.progress(done / max(total, 1))


def check_inputs_located(paths: dict[str, str | None]) -> None:
    """InputError when an input (by role: FUSED, REFERENCE, PAN, MS) is placed by RPC coefficients or ground control
    points only, said as ksdiff:pansharpen says it (``placement``), worded for the assessment: before the sensor
    guess or any pixel is read, whose warnings came first and whose messages misled ("the fusion needs...", a
    GCP-only FUSED said to be "in different coordinate reference systems")."""
    infos = {role: describe(open_dataset(path, role), path) for role, path in paths.items() if path}
    for role, info in infos.items():
        check_located(info, role, ASSESSMENT, infos)


def assess_reduced(fused_path: str, ref_path: str, sensor: str, feedback: Feedback | None = None,
                   extra_nodata: float | None = None, layer_nodata: dict[str, float | None] | None = None,
                   ratio: int | None = None, layer_crs: dict[str, str | None] | None = None,
                   check_sensor: bool = True, auto: bool = False) -> dict:
    """Reference-based indices of ``fused`` against ``ref`` over their common pixels (same grid).

    A pixel counts when it is valid in both (declared nodata, NaN and ``extra_nodata`` in any band are not).
    ``layer_nodata``: per role (FUSED, REFERENCE) a nodata value set outside the file, used when it declares none.
    ``ratio``: the data's resolution ratio, for ERGAS when the sensor has none (generic); without either ERGAS is n/a.
    ``layer_crs``: per role a CRS (WKT) set on the QGIS layer, used in place of the file's (``use_layer_crs``).
    ``check_sensor``: warn when the sensor does not fit FUSED (``sensor_fit_note``); False when ``assess_full`` did.
    ``auto``: SENSOR auto chose ``sensor`` (the warning then does not advise auto).
    """
    check_inputs_located({"FUSED": fused_path, "REFERENCE": ref_path})
    fb = feedback or Feedback()
    sens = get_sensor(sensor)
    given = layer_nodata or {}
    fu = MaskedRaster(fused_path, "FUSED", extra_nodata, given.get("FUSED"))
    fit = sensor_fit_note(sensor, fu.bands, None, _made_with(fused_path), auto) if check_sensor else None
    if fit:
        fb.warning(fit)
    # a DIMAP delivery's NODATA and NBITS, as ksdiff:pansharpen reads them (``dimap_values``)
    rf = MaskedRaster(ref_path, "REFERENCE", extra_nodata, given.get("REFERENCE"),
                      product_view(ref_path, "REFERENCE", given.get("REFERENCE"), MetadataScan(), fb))
    use_layer_crs([fu, rf], layer_crs, fb)
    for r in (fu, rf):
        name_by_colour(r, fb)
    pair_bands(fu, rf, fb)
    check_same_crs(fu, rf)
    check_overlap(fu, rf)
    dc, dr = grid_offset(fu, rf)               # reference origin in fused pixels
    c0, r0 = max(0, dc), max(0, dr)
    c1, r1 = min(fu.w, dc + rf.w), min(fu.h, dr + rf.h)
    if c1 - c0 < 11 or r1 - r0 < 11:
        raise InputError("FUSED and REFERENCE overlap by less than 11x11 pixels")
    physical = use_declared_scaling([fu, rf], fb)
    notes = [w for w in [scale_warning(fu, rf)] if w]
    for line in notes:
        fb.warning(line)
    notes = [physical, *notes] if physical else notes
    peak = peak_value(rf, sens.scale)
    q_window = min(32, c1 - c0, r1 - r0)
    if q_window < 32:
        fb.info(f"Q on {q_window}×{q_window} windows: the rasters overlap by less than 32 pixels")
    ratio = sens.ratio or ratio
    acc = M.ReducedAccumulator(fu.bands, ratio or 1, peak, q_window=q_window)
    tiles = _tiles(r1 - r0, c1 - c0)
    # counted over the tiles' cores: REFERENCE's valid pixels, those FUSED covers, FUSED's all-zero pixels over them
    undeclared = all(nd is None for nd in fu.nodata)
    f0, g0 = (r.to_physical(np.zeros((r.bands, 1, 1))) if r.physical else 0.0 for r in (fu, rf))   # a stored 0
    ref_valid = common = zeros = 0
    for i, ((r, c, h, w), core) in enumerate(tiles):
        _step(fb, i, len(tiles))
        f, fv = fu.read(c0 + c, r0 + r, w, h)
        g, gv = rf.read(c0 + c - dc, r0 + r - dr, w, h)
        acc.add(f, g, core, fv & gv)
        inner = (slice(core[0], core[1]), slice(core[2], core[3]))
        ref_valid += int(gv[inner].sum())
        common += int((fv & gv)[inner].sum())
        if undeclared:
            zeros += int(((f == f0).all(axis=0) & fv & gv & (g != g0).any(axis=0))[inner].sum())
    fb.progress(1.0)
    if (c0, r0, c1, r1) != (dc, dr, dc + rf.w, dr + rf.h):   # REFERENCE reaches past FUSED: count it all
        ref_valid = _valid_pixels(rf, fb)
    notes += _coverage_notes(common, ref_valid, zeros, fb)
    res = acc.result()
    if not res["pixels"]:
        raise InputError("FUSED and REFERENCE have no valid pixel in common: where one holds data the other is "
                         "nodata (or masked). Check that the reference covers the fused raster's data and that "
                         "both rasters' nodata values are right")
    if not ratio:
        res["ERGAS"] = float("nan")
        res["why"]["ERGAS"] = ("the generic sensor has no resolution ratio, which ERGAS divides by: give the original "
                               "PAN and MS too (their ratio is used), or choose the sensor")
    res.update(width=c1 - c0, height=r1 - r0, band_names=band_names(fu.names, sens), ratio=ratio, max_value=peak,
               tiling=_tiling(), notes=notes)
    _explain(res, fb)
    return res


def _valid_pixels(raster: MaskedRaster, fb: Feedback) -> int:
    """The valid pixels of the whole ``raster`` (a tiled read)."""
    total = 0
    for r in range(0, raster.h, TILE):
        for c in range(0, raster.w, TILE):
            fb.stop_if_cancelled()
            total += int(raster.read(c, r, min(TILE, raster.w - c), min(TILE, raster.h - r))[1].sum())
    return total


def _coverage_notes(common: int, ref_valid: int, zeros: int, fb: Feedback) -> list[str]:
    """The lines (also said to ``fb``) on how much of REFERENCE's valid area FUSED covers, and on FUSED's all-zero
    pixels over REFERENCE data where FUSED declares no nodata (holes the indices count as black pixels)."""
    said = []
    if ref_valid and common < COVERAGE_NOTE * ref_valid:
        said.append(f"FUSED covers {100 * common / ref_valid:.0f} % of REFERENCE ({common} of its {ref_valid} valid "
                    "pixels): the indices are over the overlap only")
        fb.info(said[-1])
    if zeros >= ZERO_HOLES:
        said.append(f"{zeros} pixels of FUSED are 0 in every band where REFERENCE has data: undeclared nodata? They "
                    "are scored as black pixels; if they are holes, declare it (gdal_edit.py -a_nodata 0 FUSED.tif, "
                    "or the layer's Properties > Transparency > No data value) and assess again")
        fb.warning(said[-1])
    return said


def assess_full(fused_path: str, pan_path: str, ms_path: str, sensor: str, feedback: Feedback | None = None,
                layer_nodata: dict[str, float | None] | None = None,
                layer_crs: dict[str, str | None] | None = None, auto: bool = False) -> dict:
    """No-reference indices of ``fused`` (PAN grid) against the original PAN and MS (``layer_nodata`` and
    ``layer_crs`` as in ``assess_reduced``, roles FUSED, PAN, MS; ``auto``: SENSOR auto chose ``sensor``)."""
    check_inputs_located({"FUSED": fused_path, "PAN": pan_path, "MS": ms_path})
    fb = feedback or Feedback()
    sens = get_sensor(sensor)
    given = layer_nodata or {}
    scan = MetadataScan()
    fu = MaskedRaster(fused_path, "FUSED", outside_nodata=given.get("FUSED"))
    # a DIMAP delivery's NODATA and NBITS, as ksdiff:pansharpen reads them: its collar is no data (``dimap_values``)
    pn = MaskedRaster(pan_path, "PAN", outside_nodata=given.get("PAN"),
                      dataset=product_view(pan_path, "PAN", given.get("PAN"), scan, fb))
    use_layer_crs([fu, pn], layer_crs, fb)
    if pn.bands != 1:
        raise InputError(f"PAN must have one band, it has {pn.bands}")
    ms, notes = ms_on_pan_grid(pn, ms_path, given.get("MS"), (layer_crs or {}).get("MS"), fb, scan)
    name_by_colour(fu, fb)
    pair_bands(fu, ms, fb)
    physical = use_declared_scaling([fu, pn, ms], fb)   # before the scale check: it compares what the indices read
    if physical:
        notes = [*notes, physical]
    scale = scale_warning(fu, ms)
    if scale:
        fb.warning(scale)
        notes = [*notes, scale]
    check_same_crs(fu, pn, ms)
    check_overlap(fu, pn, ms)
    ratio_f = ms.gt[1] / fu.gt[1]
    ratio = int(round(ratio_f))
    if abs(ms.gt[5] / fu.gt[5] - ratio_f) > 1e-3 * ratio_f:
        raise InputError(f"the MS pixels are {ratio_f:.4f} times the FUSED pixels across but "
                         f"{ms.gt[5] / fu.gt[5]:.4f} times down: the full-resolution indices need one whole ratio "
                         "on both axes (resample the MS first, e.g. gdalwarp -tr)")
    if ratio < 2 or abs(ratio_f - ratio) > 1e-3 * ratio:
        raise InputError(f"MS pixels are {ratio_f:.4f} times the FUSED pixels; expected a whole ratio ≥ 2 (the "
                         "full-resolution indices compare MS pixels with whole blocks of fused pixels: resample the "
                         "MS to a whole ratio first, e.g. gdalwarp -tr)")
    fit = sensor_fit_note(sensor, fu.bands, ratio, _made_with(fused_path), auto)
    if fit:
        fb.warning(fit + (" (the full-resolution indices use the data's ratio)" if sens.ratio != ratio else ""))
    dc, dr = grid_offset(fu, pn)
    # MS extent in fused pixels
    mu0, mv0 = (ms.gt[0] - fu.gt[0]) / fu.gt[1], (ms.gt[3] - fu.gt[3]) / fu.gt[5]
    # the MS footprint's edges snap to the nearest PAN pixel edge within EDGE_TOLERANCE, as ksdiff:pansharpen reads
    # the pair (grid.plan_grid): a 64x64 fusion of a 16x16 MS 0.012 px off, ratio 4.00015, counted 63 and was refused
    c0 = max(0, dc, math.ceil(mu0 - EDGE_TOLERANCE))
    r0 = max(0, dr, math.ceil(mv0 - EDGE_TOLERANCE))
    c1 = min(fu.w, dc + pn.w, math.floor(mu0 + ms.w * ms.gt[1] / fu.gt[1] + EDGE_TOLERANCE))
    r1 = min(fu.h, dr + pn.h, math.floor(mv0 + ms.h * ms.gt[5] / fu.gt[5] + EDGE_TOLERANCE))
    if c1 - c0 < MIN_FULL or r1 - r0 < MIN_FULL:
        # Dλ and Ds need one whole 32x32 block; narrower overlaps get the indices they can have, the others n/a
        raise InputError(f"FUSED, PAN and MS overlap on only {max(0, c1 - c0)} x {max(0, r1 - r0)} PAN pixels; the "
                         f"full-resolution indices need at least {MIN_FULL} x {MIN_FULL} (Dλ and Ds compare "
                         f"{MIN_FULL}x{MIN_FULL} blocks): give a larger FUSED, PAN and MS over one area, or assess "
                         "against a reference only")
    names, gains = _bands(fu, sens, fb)
    acc = M.FullAccumulator(fu.bands, gains, sens.mtf_pan, ratio)
    tiles = _tiles(r1 - r0, c1 - c0, ratio)
    repro = _repro_tiles(fu, ms, ratio, (c0, r0, c1, r1), mu0, mv0)
    total = len(tiles) + len(repro[0])
    for i, ((r, c, h, w), core) in enumerate(tiles):
        _step(fb, i, total)
        f, fv = fu.read(c0 + c, r0 + r, w, h)
        p, pv = pn.read(c0 + c - dc, r0 + r - dr, w, h)
        # MS pixels around the region, upsampled onto it with the project's cubic interpolator
        u, v = (c0 + c - mu0) / ratio, (r0 + r - mv0) / ratio
        mc0, mr0 = max(0, math.floor(u) - 3), max(0, math.floor(v) - 3)
        mc1, mr1 = min(ms.w, math.ceil(u + w / ratio) + 3), min(ms.h, math.ceil(v + h / ratio) + 3)
        m, mvalid = ms.read(mc0, mr0, mc1 - mc0, mr1 - mr0)
        origin = ((mr0 - v) * ratio, (mc0 - u) * ratio)
        lms = upsample(m.astype(np.float32), ratio, (h, w), origin).astype(np.float64)
        # the MS MTF filter (Dλ) and the PAN's low-pass (Ds) carry a hole's fill into its neighbours
        valid = _shrink(fv, MTF_TAPS // 2) & _shrink(pv, _pan_reach(ratio))
        if not mvalid.all():
            valid &= np.abs(upsample((~mvalid).astype(np.float32), ratio, (h, w), origin)) < 1e-6
        acc.add(f, p[0], lms, core, valid)
    res = acc.result()
    if not res["pixels"]:
        raise InputError("FUSED, PAN and MS have no valid pixel in common (away from holes by the filters' reach): "
                         "check that they cover one area and that their nodata values are right")
    rep = _reprojection(fu, ms, gains, ratio, peak_value(ms, sens.scale), repro, fb, len(tiles), total)
    res["why"].update(rep.pop("why"))
    res.update(rep)
    fb.progress(1.0)
    res.update(width=c1 - c0, height=r1 - r0, band_names=names, ratio=ratio, gains=gains, tiling=_tiling(ratio),
               notes=notes)
    _explain(res, fb)
    return res


def _whole_ratio(pan: RasterInfo | MaskedRaster, ms: RasterInfo) -> int | None:
    """The MS/PAN pixel size ratio when it is one whole number ≥ 2 on both axes of north-up grids, else None."""
    return whole_ratio(ms.gt[1] / pan.gt[1], ms.gt[5] / pan.gt[5])   # as ksdiff:pansharpen reads the pair


def _needs_plan(pan: RasterInfo | MaskedRaster, pan_wkt: str, ms: RasterInfo) -> bool:
    """Whether the MS must be read through ksdiff:pansharpen's view of it (``grid.plan_grid``): another CRS, a rotated
    or flipped grid, or a ratio that is not one whole number on both axes."""
    return (not same_crs(pan_wkt, ms.wkt) or ms.rotated or ms.gt[1] <= 0 or ms.gt[5] >= 0
            or _whole_ratio(pan, ms) is None)


def ms_on_pan_grid(pn: MaskedRaster, ms_path: str, nodata: float | None, crs_wkt: str | None,
                   fb: Feedback, scan: MetadataScan | None = None) -> tuple[MaskedRaster, list[str]]:
    """The MS as ksdiff:pansharpen read it onto the PAN grid (``grid.plan_grid``: reprojected, de-rotated, flipped
    north-up or resampled to a whole ratio on the fly; the file itself when it needs none of that), and the lines
    said about it (warnings and info, also given to ``fb``) for the report. ``nodata`` and ``crs_wkt``: the MS
    layer's, as in ``assess_full``; a DIMAP delivery's NODATA and NBITS apply (``dimap_values.product_view``)."""
    ds = product_view(ms_path, "MS", nodata, scan or MetadataScan(), fb)
    ds, note = assign_crs(ds, crs_wkt, "MS")
    if note:
        fb.warning(note)
    # unnamed bands tagged Red, Green or Blue named so, before a view drops the tags (``name_by_colour``)
    info, named = with_colour_names(describe(ds, ms_path), colour_names(ds, source_band_statements(ms_path)))
    for line in named:
        fb.info(line)
    flagged = alpha_flagged(ds)
    if flagged:   # a transparency band is left out and hides its pixels, as ksdiff:pansharpen does
        ds, info, keep, _ = without_transparency_mask(ds, info, flagged, None, fb)
        if keep:
            ds, info = select_bands(ds, info, keep)
    # an MS stored upsampled by nearest neighbour is read at its own pixel, as ksdiff:pansharpen fused it
    own = ds
    scan_info = info if info.nodata is not None or nodata is None else replace(info, nodata=float(nodata))
    ds, native, repeat = blockrepeat.with_native_grid(ds, scan_info, apparent_ratio(describe(pn.ds, pn.path), info))
    said = [repeat] if repeat else []
    if repeat:
        info = replace(native, nodata=info.nodata)
    if not _needs_plan(pn, pn.ds.GetProjection() or "", info):
        for line in said:
            fb.warning(line)
        ms = MaskedRaster(ms_path, "MS", outside_nodata=nodata, dataset=ds)
        ms.names = list(info.descriptions)   # a masked view (the warper's) drops the band descriptions
        if repeat:   # and the scale/offset
            ms.scaling = declared_scaling(own, list(range(1, info.bands + 1)))
        return ms, said
    ds, info = with_nodata(ds, info, nodata, "MS", fb)   # declared on the dataset: the warper leaves it out too
    plan = plan_grid(describe(pn.ds, pn.path), info, ds)
    said += [w for w in plan.warnings if w != NO_CRS and not w.startswith(GRID_SHIFT)]
    if plan.resampled:
        said.append(APPROXIMATE + ".")
    for line in said:
        fb.warning(line)
    for line in plan.notes:
        fb.info(line)
    ms = MaskedRaster(ms_path, "MS", outside_nodata=nodata, dataset=plan.ms_dataset or ds)
    if ms.bands == info.bands:   # the warper's view may drop the band descriptions pair_bands reads
        ms.names = list(info.descriptions)
        ms.scaling = declared_scaling(own if repeat else ds, list(range(1, info.bands + 1)))   # and the scale/offset
    return ms, said + plan.notes


def pair_ratio(pan: RasterInfo, ms: RasterInfo, ms_ds) -> int:
    """The whole MS/PAN ratio ksdiff:pansharpen fuses a pair at (``grid.plan_grid``: after reprojection or resampling
    to a whole ratio; an MS stored upsampled by nearest neighbour at its own pixel, ``blockrepeat``), for the sensor
    guess; the rounded pixel size ratio when the pair cannot be planned."""
    ms_ds, ms, _ = blockrepeat.with_native_grid(ms_ds, ms, apparent_ratio(pan, ms))
    whole = None if _needs_plan(pan, pan.wkt or "", ms) else _whole_ratio(pan, ms)
    if whole:
        return whole
    try:
        return plan_grid(pan, ms, ms_ds).ratio
    except InputError:
        return round(abs(ms.gt[1]) / abs(pan.gt[1]))


def _repro_tiles(fu: MaskedRaster, ms: MaskedRaster, ratio: int, region, mu0: float, mv0: float):
    """MS-grid tiles for the reprojection pass: the MS pixels whose footprint lies in the fused region.

    Returns (tiles, crop) with ``crop`` = (fused col, fused row, MS col, MS row, cols, rows, frac_col,
    frac_row): the fused crop starts at the rounded footprint of MS pixel (MS col, MS row); ``frac`` is
    the remaining sub-pixel offset of the MS grid (fused pixels), honoured on the fused side (``metrics.reproject_at``).
    """
    c0, r0, c1, r1 = region
    # footprints reaching past the region by less than EDGE_TOLERANCE fused pixels count as inside, as the region's
    # own edges snapped (QA: a 64 px output of 16 MS pixels at ratio 4.0003 counted 15, the 16th 0.026 px past it)
    tol = EDGE_TOLERANCE / ratio
    mc0, mr0 = math.ceil((c0 - mu0) / ratio - tol), math.ceil((r0 - mv0) / ratio - tol)
    mc1, mr1 = math.floor((c1 - mu0) / ratio + tol), math.floor((r1 - mv0) / ratio + tol)
    fc, fr = round(mu0 + mc0 * ratio), round(mv0 + mr0 * ratio)
    # rounding may push the last footprint past the region: drop it
    while fc + (mc1 - mc0) * ratio > c1:
        mc1 -= 1
    while fr + (mr1 - mr0) * ratio > r1:
        mr1 -= 1
    n_c, n_r = mc1 - mc0, mr1 - mr0
    if n_c < 2 * 32 // ratio or n_r < 2 * 32 // ratio:
        return [], None
    crop = (fc, fr, mc0, mr0, n_c, n_r, mu0 + mc0 * ratio - fc, mv0 + mr0 * ratio - fr)
    return list(M.tile_cores(n_r, n_c, REPRO_TILE, REPRO_HALO)), crop


def _reprojection(fu: MaskedRaster, ms: MaskedRaster, gains, ratio: int, scale: float, repro, fb: Feedback, done: int,
                  total: int) -> dict:
    """R-Q2n, R-SAM, R-ERGAS accumulated over MS-grid tiles: the fused image filtered with the MS MTF and sampled at
    the MS pixel centres (``metrics.reproject_at``, also on a grid offset by a fraction of a fused pixel, as
    Landsat 8's), against the MS as it is (whole-image equal to ``metrics.reprojection`` when aligned)."""
    tiles, crop = repro
    keys = {"Q2n": "R_Q2n", "SAM": "R_SAM", "ERGAS": "R_ERGAS"}
    if crop is None:
        why = f"fewer than {2 * 32 // ratio} whole MS pixels across or down lie in the overlap"
        return {k: float("nan") for k in keys.values()} | {"why": {k: why for k in keys.values()}}
    fc, fr, mc0, mr0, n_c, n_r, frac_c, frac_r = crop
    bounds = (fc, fr, fc + n_c * ratio, fr + n_r * ratio)
    half = MTF_TAPS // 2 + ratio
    acc = M.ReducedAccumulator(fu.bands, ratio, scale)
    for i, ((r, c, h, w), core) in enumerate(tiles):
        _step(fb, done + i, total)
        # fused footprint of the MS region with filter context, mirrored at the crop edges
        f, fv = fu.read_mirrored(fc + c * ratio - half, fr + r * ratio - half, w * ratio + 2 * half,
                                 h * ratio + 2 * half, bounds)
        rep = M.reproject_at(f, gains, ratio, (half + frac_r, half + frac_c), (h, w))
        inner = _shrink(fv, MTF_TAPS // 2)[half:half + h * ratio, half:half + w * ratio]
        ok = inner.reshape(h, ratio, w, ratio).all(axis=(1, 3))
        m, mv = ms.read(mc0 + c, mr0 + r, w, h)
        acc.add(rep, m, core, ok & mv)
    res = acc.result()
    why = {keys[k]: w.replace("reference", "MS") for k, w in res["why"].items() if k in keys}
    return {new: res[old] for old, new in keys.items()} | {"why": why}
