"""The pansharpening job: validate, plan the grid, estimate scene statistics, fuse tile by tile, stream out.

Everything that can be wrong with the inputs is checked before the output file is created; the
output is written to a temporary file and renamed into place only when the whole scene is done.
"""
from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np
from osgeo import gdal, gdal_array

from . import (
    aoi,
    auxlayers,
    blockrepeat,
    classical,
    codefill,
    coregistration,
    delivery,
    dimap_values,
    eta,
    footprint,
    gdaldrivers,
    inrange,
    labels,
    lossy,
    masks,
    memory,
    metaoffsets,
    model_card,
    noise,
    outliers,
    pan_encoding,
    panholes,
    provenance,
    runguard,
    runtime,
    saturation,
    selfcheck,
    threadlimits,
)
from . import bands as band_sel
from . import consistency as consistency_step
from . import progress as progress_rates
from .bandcolour import (
    alpha_band_note,
    alpha_flagged,
    rgb_bands,
    sample_bands,
    set_colour_interpretation,
    transparency_masks,
)
from .blockcache import InputCache, row_budget_mb
from .clipping import ClipCounter
from .errors import InputError, one_line, shown_name
from .feedback import Checkpoint, Feedback, HeldFeedback, never_cancelled
from .filters import grow_mask, upsample, wald_degrade
from .flatbands import band_list, band_name, flat_band_note, flat_bands
from .grid import EDGE_TOLERANCE, GRID_SHIFT, GridPlan, apparent_ratio, extent_text, ms_lattice, plan_grid, with_crs
from .learned import (
    DEFAULT_PRECISION,
    PRECISION_ALIASES,
    PRECISIONS,
    OnnxFuser,
    checked_session,
    fill_areas,
    lift_note,
    may_hold_fill,
    pan_units,
    value_scale,
    value_scale_note,
    zero_fill,
)
from .metascan import MetadataScan
from .nodatacmd import exact, nodata_command
from .parallel import BlockRowWriter, TilePool, aligned_cells, default_workers, write_cells
from .progress import RunProgress
from .raster_io import (
    GeoTiffWriter,
    RasterInfo,
    Signature,
    band_value_notes,
    check_not_input,
    check_writable,
    declared_scaling,
    describe,
    is_nodata,
    open_raster,
    output_nodata,
    outputs,
    read_decimated,
    read_full_band,
    scaling_note,
    signature,
    space,
    to_dtype,
    valid_pixels,
    value_range,
)
from .raster_io.stamps import InputStamps
from .sensor_detect import (
    PIXEL_NOTE,
    Detection,
    ambiguous_codes,
    band_order_doubt,
    detect_sensor,
    native_ratio,
    pixel_size_m,
    pixel_size_note,
)
from .sensors import AUTO, GENERIC_NEAREST, SENSORS, Sensor, get_sensor, model_for, table_of
from .shellcmd import shell_arg
from .tiling import Ownership, blend_cells, blend_strips, choose_layout

STATS_WINDOW = 128      # MS pixels per side of a window sampled for scene statistics
STATS_WINDOWS = 16      # at most this many windows (262k MS pixels: plenty for a 5-term regression)
MIN_TILE = 64
NOISE_PULL = True   # learned tiles taken towards MTF-GLP-HPM where the PAN's detail is noise (``noise``)
WRITE_CHUNK = 1024      # columns converted and written at a time (a multiple of the 256-pixel blocks)
LEARNED_METHODS = {"ksdiff": "KSDiff (kernel-space diffusion network, bundled model per sensor)"}


def method_names() -> dict[str, str]:
    """Every method the pipeline knows, in option order: the learned ones, the first classical ones, the checked
    default, then the classical methods added after it (appended: option numbers never move)."""
    first = {k: v for k, v in classical.METHODS.items() if k not in classical.ADDED_AFTER_AUTO}
    later = {k: classical.METHODS[k] for k in classical.ADDED_AFTER_AUTO}
    return {**LEARNED_METHODS, **first, selfcheck.AUTO: selfcheck.AUTO_LABEL, **later}


def check_tiling(tile_size: int, overlap: int, tile_name: str | None = None, overlap_name: str | None = None) -> None:
    """InputError unless ``tile_size`` and ``overlap`` are usable; the batch command checks its scene list with it
    before any scene starts. ``tile_name``, ``overlap_name``: how the refusal names them (default: the dialog's
    'Label' (KEY); the batch gives its options, as for ``memory.advice``)."""
    if tile_size < MIN_TILE:
        raise InputError(f"the tile size must be at least {MIN_TILE} pixels")
    if not 0 <= overlap <= tile_size // 2:
        # the number to type: QA had to work out that 33 was too much for a 64-pixel tile
        raise InputError(f"{overlap_name or labels.param('OVERLAP')} is {overlap}; with "
                         f"{tile_name or labels.param('TILE_SIZE')} {tile_size} it must be 0 to {tile_size // 2}")


def network_words(key: str, checked: bool, shape: str = "") -> str:
    """'the WorldView-2 network (wv2.onnx)', then ``shape`` (what it was trained on), then what checks it on the
    scene: METHOD auto's self-check (``checked``), or the user, when METHOD ksdiff is forced."""
    spec = SENSORS.get(key)
    name = f"the {spec.name.split(' (')[0]} network" if spec else "the network"
    check = ("the self-check below compares it with the classical methods" if checked else
             "compare it with a classical method (METHOD auto's self-check does so on the scene)")
    return f"{name} ({key}.onnx){shape}; {check}"


def resolve_model(sensor: str, model_path: str | None, feedback: Feedback | None = None, bands: int | None = None,
                  ratio: int | None = None, by_shape: bool = False, checked: bool = False,
                  sensor_says: bool = False) -> model_card.ModelCard:
    """The checked model card for a user's MODEL file or the bundled model that serves ``sensor``.

    A sensor without its own model gets the nearest sensor's (``sensors.model_for``; a generic product the
    network of its MS ``bands`` and ``ratio``), with a warning: whether that helps on a scene is for the
    per-scene self-check to say (``checked``: METHOD auto's, which follows). ``sensor_says``: a generic product's
    network is said in the sensor's own line (``Detection.message``), not here.
    """
    if not model_path:
        bundled = model_card.bundled_cards()
        key, nearest = model_for(sensor, bands, ratio, by_shape) if sensor in SENSORS else (sensor, False)
        if key not in bundled:
            # more bands than the 4-band network's: naming them is what lets it fuse its four (``_named_subset_card``)
            named = ("; if the MS bands include Blue, Green, Red and NIR, name them (band descriptions) and the 4-band "
                     "network fuses those" if bands and bands > 4 and (4, ratio) in GENERIC_NEAREST else "")
            shape = (f"no bundled KSDiff model fits {bands} MS bands at ratio {ratio} (bundled: "
                     f"{', '.join(f'{b} bands at ratio {r}' for b, r in sorted(GENERIC_NEAREST))}){named}"
                     if sensor in SENSORS and get_sensor(sensor).generic and bands and ratio else
                     f"no bundled KSDiff model for sensor {sensor} (bundled: {', '.join(bundled) or 'none'})")
            raise InputError(f"{shape}; {NO_MODEL_ADVICE}")
        spec = get_sensor(sensor) if sensor in SENSORS else None
        other_ratio = spec is not None and by_shape and bool(ratio) and bool(spec.ratio) and ratio != spec.ratio
        shape = f", trained on products of this shape ({bands} MS bands, ratio {ratio})"
        if nearest and feedback is not None and spec is not None and spec.generic:
            if not sensor_says:
                feedback.warning(f"generic sensor: KSDiff uses {network_words(key, checked, shape)}.")
        elif nearest and feedback is not None and other_ratio and key == GENERIC_NEAREST.get((bands, ratio)):
            feedback.warning(f"the data's PAN/MS ratio is {ratio}, {spec.name.split(' (')[0]}'s is {spec.ratio}: "
                             f"KSDiff uses {network_words(key, checked, shape)}.")
        elif nearest and feedback is not None:
            feedback.warning(f"no KSDiff model was trained on {get_sensor(sensor).name}: KSDiff uses the nearest "
                             f"sensor's, {network_words(key, checked)}.")
        return model_card.load_card(str(bundled[key]))
    card = model_card.load_card(model_path)
    for note in (_other_sensor_note(card, sensor), model_card.unfinished_note(card)):
        if note and feedback is not None:
            feedback.warning(note)
    if card.embedded is False and feedback is not None:
        feedback.info(f"the MODEL {card.path.name} carries no copy of its card (model_core.export embeds one), so "
                      f"edits to {card.path.with_suffix('.json').name} cannot be detected; its sha256 still proves "
                      "the .onnx file")
    return card


def _other_sensor_note(card: model_card.ModelCard, sensor: str) -> str | None:
    """A warning when a user's MODEL was trained for another sensor than SENSOR (as the bundled models warn when
    they serve a sensor they were not trained on); None when they agree or either is generic (no sensor named). A
    card's sensor this plugin does not know is warned of too (QA: accepted silently, a known other one warned)."""
    if card.sensor not in SENSORS and sensor in SENSORS and not get_sensor(sensor).generic:
        return (f"the MODEL {card.path.name} was trained for sensor {card.sensor!r} (its card's sensor), which this "
                f"plugin does not know, not for {get_sensor(sensor).name.split(' (')[0]} (SENSOR {sensor}): compare "
                "with a classical method (METHOD auto checks it on this scene)")
    if card.sensor == sensor or card.sensor not in SENSORS or sensor not in SENSORS or \
            get_sensor(card.sensor).generic or get_sensor(sensor).generic:
        return None
    return (f"the MODEL {card.path.name} was trained for {get_sensor(card.sensor).name.split(' (')[0]} (its card's "
            f"sensor {card.sensor}), not for {get_sensor(sensor).name.split(' (')[0]} (SENSOR {sensor}): compare with "
            "a classical method (METHOD auto checks it on this scene)")


FORCED = "forced by METHOD"   # a result's method_reason when METHOD named the method (no self-check ran)


@dataclass
class PansharpenResult:
    output_path: str
    seconds: float
    width: int
    height: int
    tiles: int
    method: str
    ratio: int
    device: str = "cpu"
    warnings: list[str] = field(default_factory=list)
    selfcheck: selfcheck.SelfCheck | None = None    # METHOD auto: the check's figures and choice
    model: str | None = None            # the model file that fused (learned methods), else None
    method_reason: str = FORCED         # why ``method`` fused: METHOD forced it, or the self-check's ``summary``
    band_names: list[str] = field(default_factory=list)
    coregistration: str | None = None   # COREGISTER: how far the MS moved and what was left (the log's line)
    sensor: str | None = None           # the sensor the run used (SENSOR=auto: the one it guessed)
    # why no natural colour is taken from the band names (bare Landsat codes of either numbering), for the style line
    colour_doubt: str | None = None
    # unnamed MS bands the network took in its order: the output's (red, green, blue) band numbers by that order, and
    # the order they were taken in ('Blue, Green, Red, NIR'), for the natural-colour style (QA: the log said
    # band 1 Blue, then QGIS drew band 1 as red)
    assumed_rgb: tuple[int, int, int] | None = None
    assumed_order: str | None = None



# METHOD ksdiff's refusal advises this; METHOD auto has just done the second half, so it leaves the advice out
NO_MODEL_ADVICE = "give an ONNX model with its card, or choose a classical method"


def _auto_reason(e: InputError) -> str:
    """Why METHOD auto does not use the model, without the advice that auto itself follows (a band plan's refusal:
    its ``auto`` wording)."""
    text, advice = getattr(e, "auto", str(e)).rstrip("."), "; " + NO_MODEL_ADVICE
    return text[:-len(advice)] if text.endswith(advice) else text   # str.removesuffix is Python 3.9+


def _on_pan_grid(ms_mask: np.ndarray, shape: tuple[int, int], origin: tuple[float, float], k: int) -> np.ndarray:
    """An MS-grid mask on the tile's PAN grid: each PAN pixel takes the MS pixel that contains its centre
    (``origin``: where MS pixel [0, 0]'s corner sits in tile pixels)."""
    ri = np.floor((np.arange(shape[0]) + 0.5 - origin[0]) / k).astype(int).clip(0, ms_mask.shape[0] - 1)
    ci = np.floor((np.arange(shape[1]) + 0.5 - origin[1]) / k).astype(int).clip(0, ms_mask.shape[1] - 1)
    return ms_mask[ri][:, ci]


def _tile_valid(pan_valid: np.ndarray | None, ms_valid: np.ndarray | None, shape: tuple[int, int],
                origin: tuple[float, float], k: int) -> np.ndarray:
    """(H, W) bool on the tile's PAN grid: the PAN pixel holds data and so does the MS pixel that contains its
    centre."""
    valid = np.ones(shape, dtype=bool) if pan_valid is None else pan_valid.copy()
    if ms_valid is not None:
        valid &= _on_pan_grid(ms_valid, shape, origin, k)
    return valid


def _ms_stats_window(plan: GridPlan, ms_w: int, ms_h: int) -> tuple[int, int, int, int]:
    """MS pixels (col, row, w, h) whose footprint lies inside the output region."""
    r0, c0, rows, cols = plan.region
    k = plan.ratio
    # footprint edges within EDGE_TOLERANCE PAN pixels snap, as plan_grid's: a 16x16 MS 0.012 PAN pixels off its
    # 64x64 PAN counted 15 MS pixels, and the self-check's 16-pixel window no longer fitted
    tol = EDGE_TOLERANCE / k
    kc0 = max(0, math.ceil((c0 - plan.ms_origin[1]) / k - tol))
    kr0 = max(0, math.ceil((r0 - plan.ms_origin[0]) / k - tol))
    kc1 = min(ms_w, math.floor((c0 + cols - plan.ms_origin[1]) / k + tol))
    kr1 = min(ms_h, math.floor((r0 + rows - plan.ms_origin[0]) / k + tol))
    return kc0, kr0, max(1, kc1 - kc0), max(1, kr1 - kr0)


def _sample_windows(kc: int, kr: int, kw: int, kh: int) -> list[tuple[int, int, int, int]]:
    """Up to STATS_WINDOWS windows of at most STATS_WINDOW MS pixels, spread evenly over the region."""
    cols = [(kc + i * STATS_WINDOW, min(STATS_WINDOW, kw - i * STATS_WINDOW))
            for i in range(math.ceil(kw / STATS_WINDOW))]
    rows = [(kr + i * STATS_WINDOW, min(STATS_WINDOW, kh - i * STATS_WINDOW))
            for i in range(math.ceil(kh / STATS_WINDOW))]
    grid = [(c, r, w, h) for r, h in rows for c, w in cols]
    if len(grid) > STATS_WINDOWS:
        grid = [grid[int(i)] for i in np.linspace(0, len(grid) - 1, STATS_WINDOWS).round()]
    return grid


REGISTRATION_DATA = 0.5   # a window read whole is used for the PAN/MS registration when this share of it is data
FILL_SHARE = 0.01   # zeros in this share of the sampled pixels of an input without nodata: a fill, probably


def nodata_held(pan_lr: np.ndarray, ms_lr: np.ndarray, pan: RasterInfo, ms: RasterInfo) -> frozenset[str]:
    """The roles ("PAN", "MS") whose sampled pixels hold the nodata value their file declares (for the MS, in any
    band). A declared value none of them hold is no better than none for a fill of zeros: netCDF's UInt16
    _FillValue 65535 over a zero scene edge fused it as data without a word (QA137)."""
    return frozenset(role for role, values, info in (("PAN", pan_lr, pan), ("MS", ms_lr, ms))
                     if info.file_nodata is not None and bool(is_nodata(values, info.file_nodata, info.dtype).any()))


def undeclared_fills(pan_lr: np.ndarray, ms_lr: np.ndarray, pan: RasterInfo, ms: RasterInfo,
                     held: frozenset[str] | None = None) -> set[str]:
    """The roles ("PAN", "MS") whose raster declares no nodata value its sampled pixels hold (``nodata_held``) yet
    holds a fill of zeros (at least FILL_SHARE of the sampled pixels 0, in every band for the MS): what
    ``undeclared_fill_notes`` warns of. ``held``: ``nodata_held`` of the scene's sample (a pad around a stats window
    judges by it, not by its own few pixels); None: of these arrays."""
    held = nodata_held(pan_lr, ms_lr, pan, ms) if held is None else held
    zeros = {"PAN": pan_lr == 0, "MS": (ms_lr == 0).all(axis=0)}
    return {role for role, zero in zeros.items() if role not in held and float(zero.mean()) >= FILL_SHARE}


def ms_fill_over_pan_data(pan_lr: np.ndarray, ms_lr: np.ndarray, pan: RasterInfo, ms: RasterInfo,
                          shapes: list[tuple[int, int]] | None = None, *, scene_fill: bool = False,
                          origin: tuple[int, int] = (0, 0), held: frozenset[str] | None = None) -> np.ndarray:
    """The sampled pixels (N,) of an undeclared MS fill of zeros (``undeclared_fills``) over the PAN's data: 0 in every
    MS band, the PAN not 0 beneath. No measurement makes that (the PAN sees light the MS bands span): such pixels are
    left out of the scene statistics, where they tilted every regression (QA122, a 12-column strip on the WV2 fixture:
    GSA 36 DN off on average away from it, 16 % of the data's mean). Where the PAN is 0 too they stay in, as before.

    Only areas of zeros count (``learned.fill_areas``, as for a tile's context): scattered dark pixels clipped to 0 in
    every band (an 8-bit stretch, 1.6 % of WV2 pair 1) are data, and left out they took BDSD-PC's whole sample once
    grown by its filters' reach (QA128). ``shapes``: the windows (h, w) whose pixels, in turn, make the sample's N
    pixels (``_scene_stats``); None: ``ms_lr`` (C, h, w) is one window (a flat (C, N) one holds no area).
    ``scene_fill``: the scene's sample found the fill already (a pad around a stats window: its few zeros count as
    the sample's would, QA132); ``origin``: where a block of ``fill_areas`` starts in a single window (the sample's
    lattice); ``held``: as for ``undeclared_fills``."""
    if not scene_fill and "MS" not in undeclared_fills(pan_lr, ms_lr, pan, ms, held):
        return np.zeros(ms_lr.shape[1:], dtype=bool).ravel()
    zero = (ms_lr == 0).all(axis=0).ravel()
    over = zero & (pan_lr != 0).ravel()
    parts, at = [], 0
    for h, w in shapes or [ms_lr.shape[-2:] if ms_lr.ndim > 2 else (1, zero.size)]:
        area = fill_areas(zero[at:at + h * w].reshape(h, w), origin)
        parts.append(np.zeros(h * w, dtype=bool) if area is None else area.ravel())
        at += h * w
    return np.concatenate(parts) & over


def undeclared_fill_notes(pan_lr: np.ndarray, ms_lr: np.ndarray, pan: RasterInfo, ms: RasterInfo,
                          shapes: list[tuple[int, int]] | None = None) -> list[str]:
    """Warnings for an input that declares no nodata value yet holds many zeros (0 in every band): a scene-edge fill
    that would be fused as data, and that a learned model's tiles would take for scene content. ``shapes``: as for
    ``ms_fill_over_pan_data``."""
    notes = []
    fills = undeclared_fills(pan_lr, ms_lr, pan, ms)
    for role, zero, info in (("PAN", pan_lr == 0, pan), ("MS", (ms_lr == 0).all(axis=0), ms)):
        share = float(zero.mean())
        if role in fills:
            over = role == "MS" and ms_fill_over_pan_data(pan_lr, ms_lr, pan, ms, shapes).any()
            notes.append(f"The {role} raster declares {_unheld_nodata(info)}, yet {share:.0%} of its "
                         "sampled pixels are 0" + (" in every band" if role == "MS" else "")
                         + ": if that is a fill (a scene edge), " + _zero_nodata_fix(info) + ". It "
                         "is fused as data now" + (", left out of the scene statistics where the PAN holds data"
                                                   if over else "") + ".")
    return notes


def _unheld_nodata(info: RasterInfo) -> str:
    """What the raster declares of nodata, none of which its sampled pixels hold (``undeclared_fills``)."""
    if info.file_nodata is None:
        return "no nodata value its pixels can hold"
    return f"the nodata value {exact(info.file_nodata, info.dtype)}, which none of its sampled pixels hold"


def _zero_nodata_fix(info: RasterInfo) -> str:
    """How to declare 0 the raster's nodata value, in a message's words."""
    return f"set 0 as its nodata value (Layer Properties > Transparency, or {nodata_command(info.path, 0)})"


def outlier_note(screened: outliers.Screened, pan: RasterInfo, ms: RasterInfo) -> str:
    """The warning for values the scene statistics left out (``outliers.screen``): per input, how many sampled
    values, their range and the data's, and how to declare them nodata if they are a fill."""
    parts, fill = [], None
    for i, (n, seen, data) in enumerate(zip(screened.counts, screened.seen, screened.data)):
        if not n:
            continue
        label = ms.descriptions[i - 1] if i else ""
        name = "PAN" if i == 0 else f"MS band {i}" + (f" ({shown_name(label)})" if label else "")
        # a fill's value exactly (the command below declares it: -3.40282e+38 is not the -FLT_MAX pixels hold)
        info = pan if i == 0 else ms
        values = exact(seen[0], info.dtype) if seen[0] == seen[1] else f"{seen[0]:.6g} to {seen[1]:.6g}"
        parts.append(f"{name}: {n} sampled value{'s' * (n > 1)} at {values} (its data: {data[0]:.6g} to "
                     f"{data[1]:.6g})")
        if seen[0] == seen[1] and fill is None:
            fill = (seen[0], info)
    # one value repeated is a fill: the command that declares it (gdal_edit.py, or a VRT copy where GDAL cannot update)
    command = (nodata_command(fill[1].path, fill[0], fill[1].dtype) if fill else
               f"gdal_edit.py -a_nodata <value> {shell_arg(ms.path)}")
    return ("Values far outside their band's own data are left out of the scene statistics (band means, the "
            f"methods' regressions, the data's range): {'; '.join(parts)}. If they are a fill value (nodata not "
            f"declared), declare it: Layer Properties > Transparency, or {command}; if they are real values, they "
            "are fused with statistics that leave them out, and KSDiff's network sees them clipped to the data's "
            "range.")


def stats_seconds(plan: GridPlan, ms_w: int, ms_h: int) -> float:
    """Estimated seconds of ``estimate_scene_stats``: its windows' PAN pixels at the measured rate
    (``progress.STATS_RATE``)."""
    windows = _sample_windows(*_ms_stats_window(plan, ms_w, ms_h))
    return progress_rates.mpx(sum(w * h for _, _, w, h in windows) * plan.ratio ** 2) * progress_rates.STATS_RATE


def _pan_low_window(pan_ds, pan: RasterInfo, pc: int, pr: int, w: int, h: int, k: int, gains,
                    guard: inrange.RangeGuard | None, phase: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """Each band's MTF-matched low-pass PAN on a stats window's (h, w) MS pixels, (C, h*w): the PAN read at full
    resolution with the filter's context around them (mirrored past the raster's edge; nodata, GDAL's mask, as the
    window's mean). ``phase``: how far into PAN pixel (``pr``, ``pc``) the MS pixels start (``footprint``)."""
    m = classical.lowpass_margin(k)
    ey, ex = (int(f > 0) for f in phase)   # the footprint's last fractional PAN pixel
    r0, c0 = max(0, pr - m), max(0, pc - m)
    r1, c1 = min(pan.height, pr + h * k + m + ey), min(pan.width, pc + w * k + m + ex)
    arr, ok = read_full_band(pan_ds, 0, c0, r0, c1 - c0, r1 - r0)
    if guard is not None:
        arr = np.minimum(arr, guard.top)
    arr = np.where(ok, arr, arr[ok].mean() if ok.any() else 0.0)
    arr = np.pad(arr, ((r0 - (pr - m), pr + h * k + m + ey - r1), (c0 - (pc - m), pc + w * k + m + ex - c1)),
                 mode="symmetric")
    return classical.lowpass_on_ms_grid(arr, gains, k, (h, w), phase).reshape(len(gains), -1)


NO_PAD = (0, 0, 0, 0)


def _lms_lr_edges(h: int, w: int, k: int, gains, inner: tuple[bool, bool, bool, bool],
                  pad: tuple[int, int, int, int] = NO_PAD) -> tuple[int, int, int, int] | None:
    """The rows and columns (top, bottom, left, right) of an (h, w) stats window without BDSD-PC's LMS_LR: within
    the filters' reach (``classical.bdsd_reach``) of its ``inner`` edges (those inside the raster) and past the
    decimation's whole blocks; None when they leave no pixel. ``pad``: the MS pixels (top, bottom, left, right) read
    around the window (``_extent_pad``), which keep that much of the reach and blocks off it; ``inner`` is then the
    padded window's."""
    pt, pb, pl, pr = pad
    hp, wp = h + pt + pb, w + pl + pr
    r = classical.bdsd_reach(gains, k)
    top, bottom, left, right = (r if cut else 0 for cut in inner)
    bottom = max(bottom, hp - hp // k * k)   # rows the decimation's whole blocks leave out: no LMS_LR there
    right = max(right, wp - wp // k * k)
    top, bottom, left, right = max(0, top - pt), max(0, bottom - pb), max(0, left - pl), max(0, right - pr)
    if top + bottom >= h or left + right >= w:
        return None
    return top, bottom, left, right


def _lms_lr_room(h: int, w: int, k: int, gains, inner: tuple[bool, bool, bool, bool],
                 pad: tuple[int, int, int, int] = NO_PAD) -> int:
    """How many of an (h, w) stats window's pixels its edges alone leave BDSD-PC's fit, nodata aside
    (``classical.bdsd_unfit``: which was short)."""
    edges = _lms_lr_edges(h, w, k, gains, inner, pad)
    return 0 if edges is None else (h - edges[0] - edges[1]) * (w - edges[2] - edges[3])


def _extent_pad(window: tuple[int, int, int, int], region: tuple[int, int, int, int], size: tuple[int, int],
                k: int, gains) -> tuple[int, int, int, int]:
    """MS pixels (top, bottom, left, right) to read around a stats ``window`` (col, row, w, h) for BDSD-PC's LMS_LR
    where its edge is the EXTENT's (the stats ``region``'s, (col, row, w, h)) and the MS raster (``size``: width,
    height) goes on: the filters' reach (QA123: a 30 x 30 MS-pixel EXTENT lost it all to its inner edges and was
    refused, the same area cut into files fitted), at most to the raster's edge (mirrored there, as a window's at
    it)."""
    c, r, w, h = window
    kc, kr, kw, kh = region
    reach = classical.bdsd_reach(gains, k)
    top, bottom, left, right = (r if r == kr else 0, size[1] - r - h if r + h == kr + kh else 0,
                                c if c == kc else 0, size[0] - c - w if c + w == kc + kw else 0)
    # bottom and right: up to a block more, for the rows past the padded window's last whole decimation block
    return min(reach, top), min(reach + k - 1, bottom), min(reach, left), min(reach + k - 1, right)


def _read_around(ms_ds, window: tuple[int, int, int, int], pad: tuple[int, int, int, int],
                 guard: inrange.RangeGuard | None) -> np.ndarray:
    """The MS (C, h, w) of a stats ``window`` (col, row, w, h) with ``pad`` (``_extent_pad``) around it, clamped to
    the declared bit depth as the window's own values (not tallied: these pixels lie outside the EXTENT)."""
    c, r, w, h = window
    pt, pb, pl, pr = pad
    cols, rows = w + pl + pr, h + pt + pb
    arr = read_decimated(ms_ds, c - pl, r - pt, cols, rows, cols, rows).reshape(-1, rows, cols)
    if guard is not None:   # a nodata above the range stays nodata, as in a window (QA128: 65535 read as 2047, data)
        guard.quiet(arr, r - pt, c - pl, (ms_ds.RasterYSize, ms_ds.RasterXSize))
    return arr


def _pan_around(pan_ds, pan: RasterInfo, pc: int, pr: int, w: int, h: int, k: int,
                pad: tuple[int, int, int, int]) -> np.ndarray:
    """The PAN averaged onto the MS grid of a stats window ((h, w) MS pixels from PAN pixel (``pr``, ``pc``)) with
    ``pad`` around it, (h + pt + pb, w + pl + pr) as a window's (``read_decimated``): where it holds data beneath the
    pad; NaN off the PAN raster (no data there)."""
    pt, pb, pl, pr_ = pad
    hp, wp = h + pt + pb, w + pl + pr_
    out = np.full((hp, wp), np.nan)
    r0, c0 = pr - pt * k, pc - pl * k
    # the MS rows and columns whose k x k PAN block lies inside the PAN raster
    i0, j0 = max(0, -(r0 // k)), max(0, -(c0 // k))
    i1, j1 = min(hp, (pan.height - r0) // k), min(wp, (pan.width - c0) // k)
    if i1 > i0 and j1 > j0:
        out[i0:i1, j0:j1] = read_decimated(pan_ds, c0 + j0 * k, r0 + i0 * k, (j1 - j0) * k, (i1 - i0) * k,
                                           j1 - j0, i1 - i0)[0]
    return out


def _no_data(p: np.ndarray, m: np.ndarray, pan: RasterInfo, ms: RasterInfo) -> np.ndarray:
    """(h, w): where the PAN ``p`` (h, w) or the MS ``m`` (C, h, w) on the MS grid is nodata (or not finite)."""
    bad = np.zeros(p.shape, dtype=bool)
    for arr, info in ((p[None], pan), (m, ms)):
        v = valid_pixels(arr, info.nodata, info.dtype)
        if v is not None:
            bad |= ~v
    return bad


def _around_bad(around: np.ndarray, pan_around: np.ndarray, pan: RasterInfo, ms: RasterInfo, scene_fill: bool,
                pad: tuple[int, int, int, int], held: frozenset[str] | None = None) -> np.ndarray:
    """The padded window's pixels (``_read_around``; ``pan_around``: ``_pan_around``) that are no data for BDSD-PC's
    LMS_LR, of the kinds a window's are: MS nodata, the PAN's nodata beneath, and an undeclared MS fill of zeros over
    the PAN's data (``ms_fill_over_pan_data`` on the padded arrays). QA128: a zero strip beside the EXTENT, blurred in,
    moved its output by 9.5 DN on average. A fill is one where the scene's sample found one (``scene_fill``), or
    where the padded window holds one by itself (QA128's strip beside a sample without zeros); its blocks lie on the
    sample's lattice, from the window's corner inside its ``pad`` (QA132: a patch the sample would leave out, under
    1 % of the padded window or off its lattice, was fitted as data). ``held``: the sample's ``nodata_held``."""
    fill = ms_fill_over_pan_data(pan_around[None], around, pan, ms, scene_fill=scene_fill,
                                 origin=(pad[0], pad[2]), held=held).reshape(pan_around.shape)
    return _no_data(pan_around, around, pan, ms) | fill


def _pad_limits(mss: list[np.ndarray], valid: np.ndarray, cuts: list) -> list[tuple[float, float]] | None:
    """Each MS band's (lowest, highest) value kept in the pads around the stats windows: ``outliers.bounds`` of the
    sample's ``valid`` pixels (N,) with the pads' own data, the screen's rule (the sample's bounds alone screen
    nothing the sample did not hold: QA128, one 1e20 in a pad made every output pixel -3.5e14). None without pads."""
    more = []
    for cut in cuts:
        if cut is not None and cut[3] is not None:
            h, w, _, (around, bad), (pt, _, pl, _) = cut
            outer = ~bad
            outer[pt:pt + h, pl:pl + w] = False
            more.append(around[:, outer])
    if not more:
        return None
    sample, beyond = np.concatenate(mss, axis=1)[:, valid], np.concatenate(more, axis=1)
    return [outliers.bounds(s, b) for s, b in zip(sample, beyond)]


def _lms_lr_window(p: np.ndarray, m: np.ndarray, pan: RasterInfo, ms: RasterInfo, k: int, gains,
                   inner: tuple[bool, bool, bool, bool], screened: np.ndarray | None = None,
                   around: np.ndarray | None = None, pad: tuple[int, int, int, int] = NO_PAD,
                   around_bad: np.ndarray | None = None) -> np.ndarray:
    """BDSD-PC's LMS_LR on a stats window's MS pixels, (C, h*w): the MS window (nodata in the PAN or the MS, and the
    ``screened`` pixels (h, w), filled with the window's mean) Wald-degraded by ``k`` with each band's MTF gain and
    upsampled back, as the self-check's ``lms_lr``; NaN within the filters' reach (``classical.bdsd_reach``) of
    nodata, of screened values and of the window's ``inner`` (top, bottom, left, right) edges, those inside the
    raster, and everywhere in a window too small to leave a pixel, so the fit sees no fill, outlier or cut. At the
    raster's own edge the mirroring is the scene's, as every fused tile's and the PAN low-pass's there
    (``_pan_low_window``): kept, so a small MS (32 x 32) still has pixels to fit on. ``around``: the MS with ``pad``
    pixels around the window (``_read_around``, at the EXTENT's edges), degraded whole so the reach there is the
    scene's; its own pixels count as bad where ``around_bad`` (hp, wp) says (``_around_bad``, and values beyond the
    screen's limits: ``_pad_limits``); ``inner`` is then the padded window's edges."""
    c, h, w = m.shape
    out = np.full((c, h, w), np.nan, np.float32)
    edges = _lms_lr_edges(h, w, k, gains, inner, pad)
    if edges is None:
        return out.reshape(c, -1)
    top, bottom, left, right = edges
    pt, pb, pl, pr = pad
    big = m if around is None else around
    hp, wp = big.shape[1:]
    hh, ww = hp // k * k, wp // k * k
    bad = _no_data(p, m, pan, ms)
    if screened is not None:
        bad |= screened
    if around is not None:
        bad_big = np.zeros((hp, wp), dtype=bool) if around_bad is None else around_bad.copy()
        bad_big[pt:pt + h, pl:pl + w] = bad
        bad = bad_big
    if bad.all():
        return out.reshape(c, -1)
    filled = np.where(bad[None], big[:, ~bad].mean(axis=1)[:, None, None], big).astype(np.float32)
    lms_lr = upsample(wald_degrade(filled, gains, k), k, (hh, ww))
    usable = ~grow_mask(bad, classical.bdsd_reach(gains, k))[:hh, :ww]
    whole = np.full((c, hp, wp), np.nan, np.float32)
    whole[:, :hh, :ww] = np.where(usable[None], lms_lr, np.nan)
    out = whole[:, pt:pt + h, pl:pl + w].copy()
    out[:, :top], out[:, h - bottom:], out[:, :, :left], out[:, :, w - right:] = np.nan, np.nan, np.nan, np.nan
    return out.reshape(c, -1)


def _lms_lr_sample(pans: list[np.ndarray], mss: list[np.ndarray], cuts: list, pan: RasterInfo, ms: RasterInfo,
                   k: int, gains, checkpoint: Checkpoint = never_cancelled, fill: np.ndarray | None = None,
                   valid: np.ndarray | None = None
                   ) -> Callable[[np.ndarray | None, outliers.Screened | None], np.ndarray]:
    """BDSD-PC's LMS_LR sample, (C, 1, N), for ``classical.scene_stats`` to build after its outlier screen: given the
    sample's pixels kept (1, N; None: nothing screened) and what was screened, each stats window's ``_lms_lr_window``
    with the pixels not kept as bad as nodata (QA: built before the screen, one 1e20 blurred into every LMS_LR pixel
    within the filters' reach, g 0.33 -> 0.96 and a centre of 1.5e15). ``pans`` (h*w,) and ``mss`` (C, h*w): the
    windows as read (reused, not copied); ``cuts``: each window's (h, w, inner edges, (MS around it, its bad pixels:
    ``_around_bad``) or None, its pad), None for one cut by the raster's edge (no LMS_LR). ``checkpoint()`` before
    each window. ``fill``: the sample's pixels (N,) as bad as nodata too (``ms_fill_over_pan_data``: blurred in, it
    moved BDSD-PC's fit). ``valid``: the sample's pixels (N,) the screen judged, whose rule the pads' values pass too
    (``_pad_limits``; the screen's own bounds come from the sample alone)."""
    def build(kept: np.ndarray | None, screened: outliers.Screened | None = None) -> np.ndarray:
        flat = None if kept is None else kept.reshape(-1)
        if fill is not None and fill.any():
            flat = ~fill if flat is None else flat & ~fill
        limits = None if valid is None else _pad_limits(mss, valid, cuts)
        parts, at = [], 0
        for p, m, cut in zip(pans, mss, cuts):
            checkpoint()
            n = p.size
            if cut is None:
                parts.append(np.full((ms.bands, n), np.nan, np.float32))
            else:
                h, w, inner, around, pad = cut
                gone = None if flat is None else ~flat[at:at + n].reshape(h, w)
                ms_around, around_bad = (None, None) if around is None else around
                if around is not None and limits is not None:
                    around_bad = around_bad | outliers.beyond(ms_around, limits)
                parts.append(_lms_lr_window(p.reshape(h, w), m.reshape(ms.bands, h, w), pan, ms, k, gains, inner,
                                            gone, ms_around, pad, around_bad))
            at += n
        return np.concatenate(parts, axis=1)[:, None]
    return build


def _refuse_unfit_bdsd(method: str, stats: classical.SceneStats, plan: GridPlan) -> None:
    """BDSD-PC refused, before any pixel is written, when the scene statistics fitted no coefficients (checked after
    every estimate: the co-registered one may lose the fit the first had)."""
    if method == "bdsd_pc" and stats.bdsd_coef is None:
        raise InputError(classical.bdsd_unfit(stats, extent=bool(plan.extent)))


def estimate_scene_stats(pan_ds, ms_ds, pan: RasterInfo, ms: RasterInfo, plan: GridPlan,
                         notes: list[str] | None = None,
                         ranges: dict[str, inrange.RangeGuard] | None = None,
                         progress: Callable[[float], None] | None = None, *,
                         gains: tuple[float, ...], checkpoint: Checkpoint = never_cancelled,
                         band_numbers: list[int] | None = None, bdsd: bool = True) -> classical.SceneStats:
    """``_scene_stats``, with running out of memory said in one line (InputError) before any pixel is written.
    QA: under ulimit -v 500 MB NumPy's own _ArrayMemoryError came out of ``classical.scene_stats`` as a traceback;
    at 1060 MB OpenBLAS retried its work buffer forever (``memory.reserve_blas_buffer`` refuses first), and a lazy
    import of SciPy failed with the loader's ImportError (QA142)."""
    try:
        memory.reserve_blas_buffer(bdsd)   # under ulimit -v OpenBLAS hung in the fit instead (QA139)
        return _scene_stats(pan_ds, ms_ds, pan, ms, plan, notes, ranges, progress, gains=gains, checkpoint=checkpoint,
                            band_numbers=band_numbers, bdsd=bdsd)
    except (MemoryError, ImportError) as e:
        # a lazy import's library refused under ulimit -v is the loader's "failed to map segment" (QA142)
        if isinstance(e, ImportError) and not memory.out_of_memory(e):
            raise
        detail = one_line(str(e) or type(e).__name__)
        if isinstance(e, ImportError):   # the loader names the library by its full path: its file name says enough
            detail = detail.rsplit("/", 1)[-1]
        raise InputError(f"not enough memory to measure the scene statistics ({detail}): "
                         f"{memory.more_memory_way(budget=False)}. No output was written") from None


def _scene_stats(pan_ds, ms_ds, pan: RasterInfo, ms: RasterInfo, plan: GridPlan,
                 notes: list[str] | None = None,
                 ranges: dict[str, inrange.RangeGuard] | None = None,
                 progress: Callable[[float], None] | None = None, *,
                 gains: tuple[float, ...], checkpoint: Checkpoint = never_cancelled,
                 band_numbers: list[int] | None = None, bdsd: bool = True) -> classical.SceneStats:
    """Scene statistics from MS and PAN averaged onto the MS grid, over a spread sample of windows, with the PAN/MS
    offset measured on them (``SceneStats.pan_offset``).

    Reading windows (not the whole scene decimated) keeps memory flat: each is averaged from its full-resolution
    pixels (``read_decimated``). ``notes`` gets the sample's ``undeclared_fill_notes``. ``ranges``: the inputs'
    ``inrange.guards``, which clamp the full-resolution values above a declared bit depth before they are averaged.
    Each input's highest value and the share at it are followed too (``saturation.TopTracker``).
    ``progress``: told the fraction of the windows read after each. ``gains``: the MS bands' MTF gains, for
    MTF-GLP-FS's gains on the MTF-matched low-pass PAN (``classical.lowpass_on_ms_grid``), and for BDSD-PC's
    reduced-scale fit (``_lms_lr_window``). ``checkpoint()``: the
    run's cancel check (``Feedback.stop_if_cancelled``), at each window read and each step of the statistics and the
    offset measurement after them. ``band_numbers``: the file's 1-based number of each band of ``ms`` (a view MS_BANDS
    cut: ``BandPlan.indices``), for the refusal of a band without data to name the band MS_BANDS would leave out.
    ``bdsd``: fit BDSD-PC's coefficients (its method or auto's self-check); other methods skip the fit (about 1 s).
    """
    pan_guard, ms_guard = ((ranges or {}).get(role) for role in ("PAN", "MS"))
    pan_seen, ms_seen = (saturation.TopTracker(g and g.sample, info.bands)
                         for g, info in ((pan_guard, pan), (ms_guard, ms)))
    kc, kr, kw, kh = _ms_stats_window(plan, ms_ds.RasterXSize, ms_ds.RasterYSize)
    k = plan.ratio
    pans, mss, whole = [], [], []   # whole: the windows read whole, for the registration
    whole_pixel = []   # the PAN at whole pixels on each window (``pans`` on a fractional grid), for the registration
    # clamped to the declared bit depth as the sample, not tallied twice
    clamp = None if pan_guard is None else (lambda a, ok: np.minimum(a, pan_guard.top))
    full: list = []   # a PAN window at full resolution, for the scene's noise (``noise.pooled_sigma``)
    details = []
    windows = _sample_windows(kc, kr, kw, kh)
    lows = []   # each band's MTF-matched low-pass PAN on the windows' MS pixels: MTF-GLP-FS's gains
    cuts = []   # each window's (h, w, inner edges, MS around, pad) for BDSD-PC's LMS_LR, built after the screen
               # (None: a window cut by the raster's edge)
    lms_room = 0   # of them, those the windows' edges alone leave (nodata aside): ``classical.bdsd_unfit``
    lms_pixels = 0   # and all of those windows' pixels (``classical.bdsd_unfit``: the area itself too small)
    # windows of a row share the blocks of inputs in large blocks (JPEG2000): kept while they fit the budget
    cache = InputCache([pan_ds, ms_ds], budget_mb=row_budget_mb(
        [(pan_ds, STATS_WINDOW * k), (ms_ds, STATS_WINDOW)], memory.room_mb(memory.FIXED_MB)))
    for i, (c, r, w, h) in enumerate(windows, 1):
        checkpoint()
        y, x = plan.ms_origin[0] + r * k, plan.ms_origin[1] + c * k   # the MS window's PAN position
        exact = footprint.exact_window(y, x, w, h, k, pan.width, pan.height)   # None: on the PAN's lattice
        if exact is None:
            pc = min(max(0, round(x)), pan.width - 1)
            pr = min(max(0, round(y)), pan.height - 1)
            pw, ph = min(w * k, pan.width - pc), min(h * k, pan.height - pr)
            phase = (0.0, 0.0)
            p = read_decimated(pan_ds, pc, pr, pw, ph, w, h, pan_seen, full)[0]
        else:   # the PAN over each MS pixel's exact footprint (a half-pixel grid)
            pr, pc, phase = exact
            pw, ph = w * k, h * k
            p = footprint.read_footprint(pan_ds, pr, pc, phase, w, h, k, pan_seen, full)
            # the registration keeps its whole-pixel sample (and intensity weights fitted on it), its read offset
            # taken out: on the footprint's (offset 0) a known 1-pixel shift of the Landsat 8 fixture read 0.65
            rr, rc = min(max(0, round(y)), pan.height - 1), min(max(0, round(x)), pan.width - 1)
            near_size = (min(pw, pan.width - rc), min(ph, pan.height - rr))
            near = read_decimated(pan_ds, rc, rr, *near_size, w, h, clamp)[0]
            near_offset = ((rr - y) / k, (rc - x) / k) if near_size == (pw, ph) else None
        details.extend(noise.window_detail(*f) for f in full)
        full.clear()
        m = read_decimated(ms_ds, c, r, w, h, w, h, ms_seen).reshape(ms.bands, h, w)
        pans.append(p.ravel())
        whole_pixel.append(p.ravel() if exact is None else near.ravel())
        # a window cut by the raster's edge (a partial average) keeps the averaged PAN
        lows.append(_pan_low_window(pan_ds, pan, pc, pr, w, h, k, gains, pan_guard, phase)
                    if (pw, ph) == (w * k, h * k)
                    else np.repeat(p.reshape(1, -1), ms.bands, axis=0))
        mss.append(m.reshape(ms.bands, -1))
        if bdsd and (pw, ph) == (w * k, h * k):
            # an EXTENT's edge inside the raster: the MS beyond it gives the filters their reach, as the PAN's
            # low-pass has it (no EXTENT: no pad, the sample as before)
            pad = _extent_pad((c, r, w, h), (kc, kr, kw, kh), (ms_ds.RasterXSize, ms_ds.RasterYSize), k,
                              gains) if plan.extent else NO_PAD
            inner = (r - pad[0] > 0, r + h + pad[1] < ms_ds.RasterYSize, c - pad[2] > 0,
                     c + w + pad[3] < ms_ds.RasterXSize)
            around = None
            if any(pad):
                ms_around = _read_around(ms_ds, (c, r, w, h), pad, ms_guard)
                # its bad pixels once the whole sample has said whether the MS holds a fill (``_around_bad``)
                around = (ms_around, _pan_around(pan_ds, pan, pc, pr, w, h, k, pad))
            cuts.append((h, w, inner, around, pad))
            lms_room += _lms_lr_room(h, w, k, gains, inner, pad)
            lms_pixels += h * w
        elif bdsd:
            cuts.append(None)
        if exact is not None:
            if near_offset is not None:
                whole.append((near, m, near_offset))
        elif (pw, ph) == (w * k, h * k):   # read whole: a window for the registration (its nodata left out after)
            whole.append((p, m, ((pr - y) / k, (pc - x) / k)))
        cache.trim()   # a row of windows at most in GDAL's cache, whatever the scene's size
        if progress is not None:
            progress(i / len(windows))
    cache.flush()
    pan_lr, ms_lr = np.concatenate(pans)[None], np.concatenate(mss, axis=1)[:, None]
    shapes = [(h, w) for _, _, w, h in windows]   # the sample's windows, for the fill's areas
    if notes is not None:
        notes.extend(undeclared_fill_notes(pan_lr, ms_lr, pan, ms, shapes))
    valid = np.ones(pan_lr.shape, dtype=bool)
    for arr, nd, dt in ((pan_lr[None], pan.nodata, pan.dtype), (ms_lr, ms.nodata, ms.dtype)):
        v = valid_pixels(arr, nd, dt)
        if v is not None:
            valid &= v
    fill = ms_fill_over_pan_data(pan_lr, ms_lr, pan, ms, shapes)
    held = nodata_held(pan_lr, ms_lr, pan, ms)
    fills = undeclared_fills(pan_lr, ms_lr, pan, ms, held)
    scene_fill = "MS" in fills
    cuts = [cut if cut is None or cut[3] is None else
            (*cut[:3], (cut[3][0], _around_bad(*cut[3], pan, ms, scene_fill, cut[4], held)), cut[4]) for cut in cuts]
    filled = int((valid & fill).sum())   # the data pixels only the MS's fill takes
    valid &= ~fill
    if valid.sum() < 16:
        holes = [b for b in range(ms.bands) if (v := valid_pixels(ms_lr[b:b + 1], ms.nodata, ms.dtype)) is not None
                 and v.sum() < 16]
        where = _region_name(plan)
        if holes and len(holes) < ms.bands:   # one band without data makes every pixel nodata
            raise InputError(f"MS {band_list(holes, ms, band_numbers)} nodata (or NaN) everywhere in {where}, so "
                             f"every output pixel would be nodata: leave {'it' if len(holes) == 1 else 'them'} out "
                             "with MS bands to fuse (MS_BANDS)")
        if filled and valid.sum() + filled >= 16:   # QA128: a (nearly) all-zero MS was said to be all nodata
            raise InputError(f"the MS is 0 in every band almost everywhere the PAN holds data in {where}: an empty MS "
                             "or a fill of zeros it does not declare. Check the MS file; if 0 is its fill, "
                             + _zero_nodata_fix(ms))
        if plan.extent:   # QA: an EXTENT in a 68 % valid scene's nodata was refused without naming the EXTENT
            raise InputError(f"{where} holds (almost) no valid pixels of PAN and MS: everything in it is nodata. "
                             "Move the EXTENT onto the scene's data, or leave EXTENT empty to fuse the whole "
                             "PAN/MS overlap")
        raise InputError("the overlap of PAN and MS holds (almost) no valid pixels: everything is nodata")
    pan_low = np.concatenate(lows, axis=1)[:, None]
    lms_lr = _lms_lr_sample(pans, mss, cuts, pan, ms, k, gains, checkpoint, fill, valid.ravel()) if bdsd else None
    stats = classical.scene_stats(pan_lr, ms_lr, valid, pan_low, checkpoint, lms_lr=lms_lr,
                                  lms_room=lms_room, lms_pixels=lms_pixels)
    checkpoint()
    stats = replace(stats, pan_noise=noise.pooled_sigma(details), pan_top=pan_seen.top(), ms_top=ms_seen.top(),
                    ms_flat=flat_bands(ms_lr, ms), zero_fills=frozenset(fills))
    if notes is not None and stats.screened is not None:
        notes.append(outlier_note(stats.screened, pan, ms))
    # the registration leaves out nodata, and an undeclared fill of zeros the sample shows (warned of above): a
    # Landsat 7 SLC-off MS with 40 % zero gaps read 0.6 PAN pixels off on registered data; and the values the
    # statistics screened
    whole = _registration_windows(whole, pan, ms, fills, stats.screened)
    if whole:
        alpha = stats.gsa_alpha if all(a is b for a, b in zip(pans, whole_pixel)) else \
            _whole_pixel_alpha(np.concatenate(whole_pixel)[None], ms_lr, valid, pan, pan_low, checkpoint)
        measured = coregistration.measure_offset([w[0] for w in whole], [w[1] for w in whole], alpha,
                                                 [w[2] for w in whole], [w[3] for w in whole], checkpoint)
        if measured is not None:
            stats = replace(stats, pan_offset=measured.offset, pan_offset_error=measured.error)
    return stats


def _whole_pixel_alpha(pan_lr: np.ndarray, ms_lr: np.ndarray, valid: np.ndarray, pan: RasterInfo,
                       pan_low: np.ndarray, checkpoint: Checkpoint) -> np.ndarray:
    """GSA's intensity weights on the registration's whole-pixel PAN sample (a fractional grid: ``_scene_stats``),
    fitted as the statistics' are (the same screen; its own nodata left out: QA132, six 1e20 spikes gave weights of
    2e-17 and an offset of 29.6 PAN pixels, a PAN nodata strip entered as -9999)."""
    v = valid_pixels(pan_lr[None], pan.nodata, pan.dtype)
    return classical.scene_stats(pan_lr, ms_lr, valid if v is None else valid & v, pan_low, checkpoint).gsa_alpha


def _measured_on(plan: GridPlan) -> str:
    """Where the scene statistics (and the PAN/MS offset) were measured: the area of interest or the scene."""
    return "area of interest" if plan.extent else "scene"


def _region_name(plan: GridPlan) -> str:
    """What the run's region is called in a message: 'the EXTENT (x .. to .., y .. to .. in the PAN CRS)' when the
    user gave one, else 'the overlap'."""
    if not plan.extent:
        return "the overlap"
    gt, (_, _, rows, cols) = plan.out_gt, plan.region
    x0, y1 = gt[0], gt[3]
    return f"the EXTENT ({extent_text(x0, y1 + rows * gt[5], x0 + cols * gt[1], y1)} in the PAN CRS)"


def _registration_windows(windows: list, pan: RasterInfo, ms: RasterInfo, fills: set[str],
                          screened: outliers.Screened | None = None) -> list:
    """(PAN, MS, read offset, data mask or None) per window read whole (PAN, MS, read offset) with at least
    REGISTRATION_DATA of data: nodata, the undeclared zero ``fills`` (``undeclared_fills``' roles) and the values
    beyond the ``screened`` bounds filled with the window's data mean and masked."""
    out = []
    for p, m, offset in windows:
        ok = np.ones(p.shape, dtype=bool)
        for v in (valid_pixels(p[None], pan.nodata, pan.dtype), valid_pixels(m, ms.nodata, ms.dtype),
                  p != 0 if "PAN" in fills else None, (m != 0).any(axis=0) if "MS" in fills else None):
            if v is not None:
                ok &= v
        if screened is not None:
            ok &= ~outliers.beyond((p, *m), screened.bounds)
        if ok.mean() >= REGISTRATION_DATA:
            out.append((np.where(ok, p, p[ok].mean()), np.where(ok, m, m[:, ok].mean(axis=1)[:, None, None]),
                        offset, None if ok.all() else ok))
    return out


def _fit_threads(workers: int, pool_size: int, ort_threads: int, method: str, options: outputs.OutputOptions,
                 fb: Feedback) -> tuple[threadlimits.ThreadPlan, outputs.OutputOptions]:
    """The run's tile workers, ONNX Runtime threads and GDAL encoding threads within what ``ulimit -u`` or a pids
    cgroup leaves (``threadlimits``), said in one warning when lowered; the output's options with GDAL's."""
    learned = method in LEARNED_METHODS or method == selfcheck.AUTO
    cores = runtime.default_threads()
    asked = workers or (pool_size if learned else default_workers())
    fitted = threadlimits.fit(asked, ort_threads, outputs.encoding_threads(options, cores), learned,
                              threadlimits.thread_room())
    if fitted.note is None:   # no cap on the workers either path picks (a classical one: default_workers)
        return threadlimits.ThreadPlan(max(asked, pool_size, default_workers()), ort_threads), options
    fb.warning(fitted.note)
    return fitted, outputs.with_encoding_threads(options, fitted.gdal, cores)


def _fit_encoding_memory(options: outputs.OutputOptions, fb: Feedback) -> outputs.OutputOptions:
    """``options`` with no more GDAL encoding threads than ``memory.encoding_threads_fit`` leaves under ``ulimit -v``
    (said in the log): GDAL hung for good when it could not start one (QA142)."""
    cores = runtime.default_threads()
    threads, note = memory.encoding_threads_fit(outputs.encoding_threads(options, cores))
    if note is None:
        return options
    fb.info(note)
    return outputs.with_encoding_threads(options, threads, cores)


def _fit_workers(workers: int, tile: int, rows: int, cols: int, bands: int, margin: int, learned: bool,
                 size_multiple: int) -> int:
    """At most ``workers`` tiles in flight, fewer when their memory would pass the run's budget."""
    budget = memory.budget_mb()
    if budget is None or workers <= 1:
        return workers
    one = memory.estimate_mb(tile, rows, cols, bands, margin, learned, size_multiple)
    per_tile = one - memory.FIXED_MB   # each extra worker: a padded tile (and, to be safe, a strip)
    while workers > 1 and one + (workers - 1) * per_tile > budget[0]:
        workers -= 1
    return workers


def _band_metadata_notes(pan_ds, ms_ds, pan: RasterInfo, ms: RasterInfo, spec: Sensor, fused: list[int],
                         found: Detection | None, ratio: int, selection: list[int] | None,
                         ms_stated: list[tuple[str, int]] | None) -> list[str]:
    """Warnings about what the inputs' band metadata say and the fusion does not follow: a colour interpretation
    that orders unnamed bands otherwise than the sensor, unnamed bands whose order SENSOR=auto took from the PAN pixel
    size alone where sensors of that size differ (``found``: the guess), an explicit SENSOR whose PAN pixel size is
    far from the data's, a scale/offset, nodata values that differ between bands. ``ms_stated``: what a VRT MS's
    source bands say (``delivery.source_band_statements``)."""
    colours = band_sel.colour_names(ms_ds, ms_stated)
    notes = [band_sel.colour_order_note(colours, ms, spec)]
    if found is not None and not selection:   # MS_BANDS: the user ordered the bands
        notes.append(band_order_doubt(found, pan, ms, ratio, set(band_sel.colour_statement(colours, ms))))
    elif found is None:
        notes.append(pixel_size_note(spec, pan, ms.bands, ratio))
    return [n for n in notes if n] + band_value_notes(ms_ds, "MS", fused) + band_value_notes(pan_ds, "PAN", [1])


def _value_encoding(pan_file, ms_file, pan_path: str, ms_path: str, fused: list[int], scan: MetadataScan,
                    mapping: pan_encoding.PanMapping | None = None) -> tuple[list[str], list[str], tuple | None, bool]:
    """What the inputs declare of their values' encoding: (warnings: their scale/offset when it matters
    (``scaling_note``, one line), an offset only their product metadata declare (``metaoffsets``); info lines: a
    scale without an offset, or the PAN brought into the MS's encoding (``mapping``); the declared (scale, offset) of
    the PAN — the MS's once mapped — and of each fused MS band when either declares one, so ``pan_units`` compares
    physical values (QA: a float reflectance PAN with a scaled UInt16 MS was told "different units"), else None;
    whether the MS's values carry an offset, on its bands or in its metadata: the self-check's ERGAS is on the stored
    encoding)."""
    said = scaling_note(pan_file, ms_file, fused, mapping.note() if mapping else None)
    warned, infos = ([said[0]], []) if said and said[1] else ([], [said[0]] if said else [])
    meta = {role: metaoffsets.metadata_offset_note(ds, path, role, scan)
            for role, ds, path in (("MS", ms_file, ms_path), ("PAN", pan_file, pan_path))}
    pan_pair, ms_pairs = declared_scaling(pan_file, [1])[0], declared_scaling(ms_file, fused)
    if mapping is not None:   # the PAN the run reads is stored like the MS now
        pan_pair = mapping.ms
    declared = any(p != (1.0, 0.0) for p in [pan_pair, *ms_pairs])
    offset = any(off for _, off in ms_pairs) or meta["MS"] is not None
    return [n for n in [*warned, *meta.values()] if n], infos, (pan_pair, ms_pairs) if declared else None, offset


def _fits(card: model_card.ModelCard, n_bands: int, ratio: int) -> bool:
    """Whether the model fits ``n_bands`` MS bands at ``ratio`` (``model_card.check_against_data``)."""
    try:
        model_card.check_against_data(card, n_bands, ratio)
    except InputError:
        return False
    return True


def _check_model_fit(card: model_card.ModelCard, n_bands: int, ratio: int, pan: RasterInfo, ms: RasterInfo,
                     sensor: str, scan: MetadataScan) -> None:
    """METHOD ksdiff: refuse a model that does not fit the fused MS bands and the ratio, naming the sensor the data
    looks like when it is not SENSOR."""
    try:
        model_card.check_against_data(card, n_bands, ratio)
    except InputError as e:
        guess = detect_sensor(pan, ms, ratio, scan=scan)
        hint = (f" (the data looks like {guess.key}: try {labels.param('SENSOR', guess.key)} or auto)"
                if guess.key != sensor else "")
        raise InputError(f"{e}{hint}") from None


def _make_writer(path: str, cols: int, rows: int, ms: RasterInfo, gt, wkt: str, names: list[str],
                 nodata: float | None, options: outputs.OutputOptions, fb: Feedback,
                 found: Signature | None, need: space.SpaceNeed | None) -> GeoTiffWriter:
    """A streamed GeoTIFF writer with the ``options`` checked before any work; for a COG, a fast intermediate copied
    at commit. ``found``: what was at the output when the run started (``GeoTiffWriter``); ``need``: what the
    free-space warning measured (None: not measured, there was room), which a full disk's message repeats."""
    if options.cog is not None:
        return outputs.CogWriter(path, cols, rows, ms, gt, wkt, names, nodata, options=options.gtiff,
                                 cog_options=options.cog, is_cancelled=fb.is_cancelled, found=found,
                                 needed=need and need.peak, temp_needed=need and need.temp)
    # an 11-bit product is written as plain 16-bit samples with the predictor, not bit-packed (NBITS=11):
    # half the encoding time and ~13 % smaller (docs/BENCHMARKS_SPEED.md); CREATE_OPTIONS NBITS=11 packs
    return GeoTiffWriter(path, cols, rows, ms, gt, wkt, names, nodata, options=options.gtiff, found=found,
                         needed=need and need.peak)


def _space_need(pan_ds, ms_ds, pan: RasterInfo, ms: RasterInfo, plan: GridPlan, spec: Sensor,
                stats: classical.SceneStats, ranges, fb: Feedback, nbits: int | None,
                options: outputs.OutputOptions) -> space.SpaceNeed:
    """What the output will take on the disk (``space.estimate``), measured on a few of its blocks fused with
    MTF-GLP-HPM: any method's output has the PAN's detail at the MS's levels, and so compresses alike."""
    method = classical.BEST_CLASSICAL
    runner = _TileRunner(pan_ds, ms_ds, pan, ms, plan, spec, classical.FUSERS[method],
                         classical.margin(method, plan.ratio), stats, fb, 1, ranges)
    nodata = output_nodata(pan, ms, nbits)[0]
    rows, cols = plan.region[2], plan.region[3]
    blocks = [to_dtype(runner(*window), ms.dtype, nodata, nbits) for window in space.sample_blocks(rows, cols)]
    return space.estimate(blocks, cols, rows, nodata, options.gtiff, options.cog)


class _TileRunner:
    """Reads one tile (plus margin) from PAN and MS, fuses it and returns the tile interior."""

    def __init__(self, pan_ds, ms_ds, pan: RasterInfo, ms: RasterInfo, plan: GridPlan, sensor: Sensor,
                 fuse, margin: int, stats: classical.SceneStats, feedback: Feedback, total: int,
                 ranges: dict[str, inrange.RangeGuard] | None = None,
                 progress: Callable[[float], None] | None = None):
        self.pan_ds, self.ms_ds, self.pan, self.ms, self.plan = pan_ds, ms_ds, pan, ms, plan
        # values above a declared bit depth clamped as they are read, and counted (``inrange``)
        self.clamps = {role: g.clamp for role, g in (ranges or {}).items()}
        self.pan_holes: panholes.PanOnlyHoles | None = None   # set with the layout (``set_layout``)
        self.owner: Ownership | None = None   # which output pixels each tile's counts stand for (``set_layout``)
        self.sensor, self.fuse, self.margin, self.stats = sensor, fuse, margin, stats
        self.feedback, self.total, self.done = feedback, total, 0
        self.progress = progress or feedback.progress   # the fraction of the tiles done (the run's: a ``Span``)
        self.learned = isinstance(fuse, OnnxFuser)   # only a learned fuser uses a tile's context (TileContext.valid)
        # one GDAL dataset must not be read from two threads at once: tile workers take turns reading
        self.read_lock = threading.Lock()
        self.time_left: eta.TimeLeft | None = None   # large scenes only (``eta``)

    def _ms_window(self, start: int, length: int, axis: int) -> tuple[int, int]:
        """MS pixel range (first, count) the cubic interpolator touches for PAN pixels [start, start+length)."""
        o, k = self.plan.ms_origin[axis], self.plan.ratio
        first = math.floor((start + 0.5 - o) / k - 0.5) - 1
        last = math.floor((start + length - 0.5 - o) / k - 0.5) + 2
        return first, last - first + 1

    def __call__(self, row: int, col: int, rows: int, cols: int) -> np.ndarray:
        self.feedback.stop_if_cancelled()
        m, k = self.margin, self.plan.ratio
        R0, C0 = self.plan.region[0] + row - m, self.plan.region[1] + col - m
        H, W = rows + 2 * m, cols + 2 * m
        mr, mh = self._ms_window(R0, H, 0)
        mc, mw = self._ms_window(C0, W, 1)
        st = self.stats
        # both mirrored beyond the raster edge, so the margin is one consistent (mirrored) scene: a mirrored PAN over
        # repeated MS edge pixels misleads a learned model's tile context (docs/VALIDATION.md); holes filled from
        # their edges, the scene mean beyond (``masks.read_filled``)
        # a method that reads the PAN pixel by pixel (no margin: GSA, Brovey, EXP) never looks into a PAN hole
        pan_reach = masks.PAN_FILL_REACH if m else 0
        pan, pan_valid = masks.read_filled(self.pan_ds, R0, C0, H, W, self.pan.nodata, np.array([st.pan_mean]),
                                           pan_reach, self.read_lock, self.clamps.get("PAN"))
        ms, ms_valid = masks.read_filled(self.ms_ds, mr, mc, mh, mw, self.ms.nodata, st.ms_mean,
                                         masks.MS_FILL_REACH, self.read_lock, self.clamps.get("MS"))
        origin = (self.plan.ms_origin[0] + mr * k - R0, self.plan.ms_origin[1] + mc * k - C0)
        lms = upsample(ms, k, (H, W), origin)
        holes = pan_valid is not None or ms_valid is not None   # declared nodata, or non-finite values
        valid = _tile_valid(pan_valid, ms_valid, (H, W), origin, k) if holes else None
        ctx = classical.TileContext(stats=st, ratio=k, gains=self.sensor.mtf_ms, origin=(R0, C0),
                                    lattice=ms_lattice(self.plan.ms_origin), ms=ms, ms_origin=origin, ms_real=ms_valid,
                                    valid=self._context_valid(valid, pan, ms, origin) if self.learned else valid,
                                    counted=self._counted(row, col, rows, cols, valid) if self.learned else None)
        fused = self.fuse(pan[0], lms, ctx).astype(np.float32, copy=False)
        if m:   # a copy of the interior frees the margin; without a margin the array is already fresh
            fused = fused[:, m : m + rows, m : m + cols].copy()
        if valid is not None:
            fused[:, ~valid[m : m + rows, m : m + cols]] = np.nan
        if self.pan_holes is not None and pan_valid is not None and not pan_valid.all():
            # nodata only because of the PAN: the MS holds data there, and beside it (not the scene edge of both)
            ms_data = True if ms_valid is None else _on_pan_grid(panholes.eroded(ms_valid), (H, W), origin, k)
            self.pan_holes.add(row, col, (~pan_valid & ms_data)[m : m + rows, m : m + cols])
        return fused

    def set_layout(self, tiles: list[tuple[int, int, int, int]], rows: int, cols: int) -> None:
        """The run's ``tiles`` (its layout's) over the ``rows`` x ``cols`` output: what each tile counts (the output
        pixels nodata only because of the PAN, a learned fuser's floored values) stands for each pixel once."""
        self.pan_holes = panholes.PanOnlyHoles(tiles, rows, cols)
        self.owner = Ownership(tiles)

    def _counted(self, row: int, col: int, rows: int, cols: int, valid: np.ndarray | None) -> np.ndarray | None:
        """``TileContext.counted`` of the tile at output ``row``, ``col`` (``rows`` x ``cols``, without its margin):
        the pixels it writes and owns, data only. QA: the floor's count took every tile with its margin (5.01% of
        2334784 values on a 600x600 scene, beside the range line's 1440000)."""
        if self.owner is None:
            return None
        m = self.margin
        skip_r, skip_c = self.owner.skip(row, col, rows, cols)
        counted = np.zeros((rows + 2 * m, cols + 2 * m), dtype=bool)
        counted[m + skip_r : m + rows, m + skip_c : m + cols] = True
        return counted if valid is None else counted & valid

    def _context_valid(self, valid: np.ndarray | None, pan: np.ndarray, ms: np.ndarray,
                       origin: tuple[float, float]) -> np.ndarray | None:
        """The tile's pixels a learned model may summarise (``TileContext.valid``): the valid ones, less an
        undeclared fill (``learned.zero_fill``). Such a fill is still fused as data (``undeclared_fill_notes``
        warns), but a scene edge of zeros must not steer the kernels of the tile's real pixels."""
        ms_zero = None if not may_hold_fill("MS", self.ms, self.stats) else _on_pan_grid(
            (ms == 0).all(axis=0), pan.shape[1:], origin, self.plan.ratio)
        fill = zero_fill(pan[0] == 0 if may_hold_fill("PAN", self.pan, self.stats) else None, ms_zero)
        if fill is None:
            return valid
        return ~fill if valid is None else valid & ~fill

    def tile_done(self) -> None:
        """Progress after each tile, reported from the caller's thread (Qt delivers its signals there). The run's
        bar checks for a cancel as it reports (``RunProgress.report``): Cancelled then."""
        self.done += 1
        if self.time_left is not None:
            self.time_left.after(self.done)
        self.progress(self.done / self.total)


def pansharpen(
    pan_path: str,
    ms_path: str,
    output_path: str,
    sensor: str = AUTO,
    method: str = classical.BEST_CLASSICAL,
    tile_size: int = 512,
    overlap: int = 32,
    model_path: str | None = None,
    device: str = "auto",
    feedback: Feedback | None = None,
    threads: int = 0,
    ms_bands: list[int] | None = None,
    extent: tuple[float, float, float, float] | None = None,
    extent_wkt: str | None = None,
    mtf_gains: list[float] | None = None,
    compression: str = outputs.DEFAULT_COMPRESSION,
    cog: bool = False,
    create_options: str | list[str] | None = None,
    workers: int = 0,
    precision: str = DEFAULT_PRECISION,
    consistency: bool = True,
    pan_nodata: float | None = None,
    ms_nodata: float | None = None,
    pan_file_nodata: bool = True,
    ms_file_nodata: bool = True,
    coregister: bool = False,
    pan_crs: str | None = None,
    ms_crs: str | None = None,
    ms_operation: str | None = None,
    ms_operation_text: str | None = None,
    check_only: bool = False,
    mtf_pan: float | None = None,
) -> PansharpenResult:
    """Fuse ``pan_path`` and ``ms_path`` into a GeoTIFF at ``output_path`` on the PAN grid.

    ``sensor='auto'`` guesses the sensor (``sensor_detect``); ``ms_bands`` selects and orders MS bands
    (1-based); ``extent`` (xmin, ymin, xmax, ymax in the CRS ``extent_wkt`` names: EPSG:4326, a WKT or a PROJ
    string; default the PAN CRS) limits the output;
    ``mtf_gains`` overrides the sensor's MS MTF gains (one per fused band, or one for all).
    ``compression``/``cog``/``create_options`` choose the output encoding (``raster_io.outputs``); ``workers``
    tiles are fused in parallel (0: one per core), ``threads`` is ONNX Runtime's intra-op thread count
    (0: cores shared out between the tile workers). The output does not depend on either.
    ``precision``: ``int8`` (default), a learned model's int8 variant on CPU when its card carries one (about
    1.6x faster end to end, ERGAS within 1 % of float32 on every bench scene), else float32; or ``fp32`` throughout
    (``learned.PRECISIONS``).
    ``consistency``: a learned model's tiles get one back-projection step onto their MS (``engine/consistency.py``);
    False writes the network's own output. Classical methods ignore it.
    ``pan_nodata`` / ``ms_nodata``: a nodata value set outside the file (a QGIS layer's nodata value), used when the
    file declares none. ``pan_file_nodata`` / ``ms_file_nodata`` False: the file's own nodata value is not used
    (a QGIS layer's 'No data value' unticked): its pixels are data, or nodata by ``pan_nodata`` / ``ms_nodata``.
    ``coregister``: the MS moved onto the PAN by the offset measured on the scene (``engine/coregistration.py``)
    before anything is fused, unless the measurement's error could explain it (``coregistration.trusted``); the
    output keeps the PAN's grid. Off, an offset of half a PAN pixel or more is warned.
    ``pan_crs`` / ``ms_crs``: a CRS (WKT) set outside the file (a QGIS layer's), assigned in place of the file's.
    ``ms_operation``: the PROJ pipeline reprojecting an MS in another CRS onto the PAN's (a QGIS project's datum
    transformation), else PROJ's default; ``ms_operation_text``: its name and accuracy, for the reprojection warning.
    ``check_only`` (METHOD auto): return after the self-check, its figures in ``selfcheck``; no tile is fused and
    nothing written (``python -m model_core adapt`` scores models on the user's scene with it).
    ``mtf_pan``: overrides the sensor's PAN MTF gain (``adapt``: a generic model's own, from its training config).
    Raises InputError (nothing written) for bad input and Cancelled when ``feedback`` asks to stop.
    """
    fb = feedback or Feedback()
    fb.stop_if_cancelled()   # a run cancelled before it starts reads nothing
    t0 = time.perf_counter()
    memory.cap_arenas_under_limit()   # before ONNX Runtime or the tile pool start threads
    if sensor != AUTO:
        try:
            get_sensor(sensor)
        except KeyError as e:
            raise InputError(str(e.args[0])) from None
    if method not in method_names():
        raise InputError(f"unknown method {method!r}; available: {', '.join(method_names())}")
    if check_only and method != selfcheck.AUTO:
        raise InputError(f"check_only runs the self-check of METHOD {selfcheck.AUTO}, not {method}")
    precision = PRECISION_ALIASES.get(precision, precision)   # batch lists and scripts too, not only QGIS
    if precision not in PRECISIONS:
        raise InputError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)} (or float32)")
    check_tiling(tile_size, overlap)
    check_writable(output_path)
    if not check_only:   # a driver unticked in QGIS's GDAL settings: said before any input is read (QA)
        gdaldrivers.require("GTiff", "reads GeoTIFF inputs and writes the output")
        if cog:
            gdaldrivers.require("COG", "writes the Cloud-Optimized GeoTIFF ('COG' is ticked: untick it for a plain "
                                       "GeoTIFF)")
    found_at_output = signature(output_path)   # a run onto the same output meanwhile is not replaced
    extra_options = outputs.parse_options(create_options)
    if compression not in outputs.COMPRESSIONS:
        raise InputError(f"unknown compression {compression!r}; choose one of {', '.join(outputs.COMPRESSIONS)}")
    pan_ds, pan = open_raster(pan_path, "PAN")
    ms_ds, ms = open_raster(ms_path, "MS")
    stamps = InputStamps()   # an input rewritten mid-run must not give a silently mixed output (checked at the commit)
    stamps.add("PAN", pan_path)
    stamps.add("MS", ms_path)
    scan = MetadataScan()   # the inputs' metadata files, found and read once in this run
    ms, name_notes = band_sel.with_delivery_names(ms, scan)   # band names from a VRT's files or a DIMAP (``delivery``)
    ms_stated = delivery.source_band_statements(ms_path)   # a VRT's sources' band colours (``bands.band_colours``)
    # then from Red/Green/Blue tags
    ms, colour_notes = band_sel.with_colour_names(ms, band_sel.colour_names(ms_ds, ms_stated))
    name_notes += colour_notes
    for note in name_notes:
        fb.info(note)
    # a QA, angle or classification layer stacked among the bands (QA137: its bit codes were fused with PAN texture)
    band_sel.check_selection(ms_bands, ms.bands)
    auxlayers.refuse_aux_bands(ms_path, ms.descriptions, ms_bands)
    # what the DIMAP behind each input declares of its values (NBITS, NODATA), however the delivery was opened
    dimaps = {"PAN": dimap_values.product_values(pan_ds, pan, scan), "MS": dimap_values.product_values(ms_ds, ms, scan)}
    pan = dimap_values.with_product_nbits(pan, dimaps["PAN"], "PAN", fb)
    ms = dimap_values.with_product_nbits(ms, dimaps["MS"], "MS", fb)
    ms_file = ms_ds   # the file's own metadata, whatever views of it are fused (outputs.copy_metadata)
    pan_file = pan_ds   # and the PAN's: its declared scale/offset and unit type (``_value_encoding``)
    check_not_input(output_path, {"PAN": pan_ds, "MS": ms_ds})
    # a lossy-compressed input (JPEG, lossy JPEG 2000, ...): said once each, from the files' metadata (``lossy``)
    compressed = {role: found for role, ds in (("PAN", pan_ds), ("MS", ms_ds)) if (found := lossy.find(ds))}
    lossy_notes = [lossy.note(role, found) for role, found in compressed.items()]
    for note in lossy_notes:
        fb.warning(note)
    crs_notes: list[str] = []
    pan_ds, pan = with_crs(pan_ds, pan, pan_crs, "PAN", crs_notes)
    ms_ds, ms = with_crs(ms_ds, ms, ms_crs, "MS", crs_notes)
    for note in crs_notes:
        fb.warning(note)
    pan, ms = _without_integer_nan(pan, "PAN", fb), _without_integer_nan(ms, "MS", fb)
    before = pan, ms
    pan_ds, pan = masks.with_nodata(pan_ds, pan, pan_nodata, "PAN", fb, pan_file_nodata)
    ms_ds, ms = masks.with_nodata(ms_ds, ms, ms_nodata, "MS", fb, ms_file_nodata)
    # the nodata used and where it came from: a layer's is not in the file, a DIMAP's in its metadata (``provenance``)
    sources = {"PAN": masks.nodata_source(before[0], pan), "MS": masks.nodata_source(before[1], ms)}
    if sources["PAN"] == "none" and pan_file_nodata:
        pan_ds, pan, applied = dimap_values.with_product_nodata(pan_ds, pan, dimaps["PAN"], "PAN", fb)
        sources["PAN"] = "dimap" if applied else "none"
    if sources["MS"] == "none" and ms_file_nodata:
        ms_ds, ms, applied = dimap_values.with_product_nodata(ms_ds, ms, dimaps["MS"], "MS", fb)
        sources["MS"] = "dimap" if applied else "none"
    # a fill code no one declared (-9999, -32768, 65535 on a scene edge): nodata, as if the file declared it
    code_notes: list[str] = []
    if sources["PAN"] == "none":
        pan_ds, pan, note = codefill.with_fill_code(pan_ds, pan, "PAN", fb.stop_if_cancelled)
        code_notes += [note] if note else []
        sources["PAN"] = "fill" if note else "none"
    if sources["MS"] == "none":
        ms_ds, ms, note = codefill.with_fill_code(ms_ds, ms, "MS", fb.stop_if_cancelled)
        code_notes += [note] if note else []
        sources["MS"] = "fill" if note else "none"
    for note in code_notes:
        fb.warning(note)
    settings = {"PAN_FILE": provenance.input_file(str(pan_path)),
                "MS_FILE": provenance.input_file(str(ms_path)),
                **provenance.nodata_items("PAN", pan.nodata, sources["PAN"]),
                **provenance.nodata_items("MS", ms.nodata, sources["MS"])}
    pan_ds, pan = _pan_without_alpha(pan_ds, pan, fb)
    if pan.bands != 1:
        raise InputError(f"The PAN raster must have one band; {pan_path} has {pan.bands}. Check that PAN and MS are "
                         "not swapped; for a product without a PAN band, pick one band first (gdal_translate -b N, "
                         "or Raster > Conversion > Translate).")
    # masks first: a reprojected MS (plan_grid) must carry its holes along
    flagged, alpha_masks = alpha_flagged(ms_ds), []
    if flagged:
        ms_ds, ms, ms_bands, alpha_masks = masks.without_transparency_mask(ms_ds, ms, flagged, ms_bands, fb)
    pan_ds, pan = masks.apply_own_mask(pan_ds, pan, "PAN", fb)
    ms_ds, ms = masks.apply_own_mask(ms_ds, ms, "MS", fb)
    # an MS stored upsampled by nearest neighbour (k x k blocks of one value) is read at its own pixel, so the ratio,
    # the sensor and the self-check are the product's (QA: WorldView-2 at 2 x 2 fused at ratio 2, not 4)
    ms_ds, ms, note = blockrepeat.with_native_grid(ms_ds, ms, apparent_ratio(pan, ms), fb.stop_if_cancelled)
    if note:
        fb.warning(note)
        code_notes.append(note)   # the run's warnings list it with the other repairs of the inputs
    # the product's ratio (SENSOR's, or the PAN pixel's sensors'), for the refusal of an MS on the PAN's pixel
    plan = plan_grid(pan, ms, ms_ds, native_ratio(sensor, pan, ms.bands - len(alpha_masks)), ms_operation,
                     ms_operation_text)
    found = None
    if sensor == AUTO:   # the spectral bands only: a transparency mask is no band of the sensor's
        spectral = replace(ms, bands=ms.bands - len(alpha_masks),
                           descriptions=[d for b, d in enumerate(ms.descriptions, 1) if b not in alpha_masks])
        found = detect_sensor(pan, spectral, plan.ratio, ms_bands, scan)
        sensor = found.key
        if not found.unrecognised:   # a product of no known sensor: said below, with the network it gets
            (fb.warning if found.source == "fallback" else fb.info)(found.message())
    unrecognised = found is not None and found.unrecognised
    spec = found.sensor() if found else get_sensor(sensor)   # auto: a generic run may keep a sensor's gains
    # MS_BANDS empty on an MS that holds the sensor's bands among others: the path of listing every band
    ms_bands = band_sel.effective_selection(ms, spec, ms_bands)
    if extent is not None:
        box = aoi.to_pan_crs(extent, extent_wkt, pan.wkt)
        plan = aoi.clip_plan(plan, pan, box)
        settings["EXTENT"] = provenance.extent_text(box, pan.wkt)   # EXTENT's own syntax: pasted back, same window
    warnings, grid_notes = list(plan.warnings), list(plan.notes)
    warnings += found.warnings if found else []   # metadata that disagrees, or names a satellite KSDiff lacks
    warnings += band_sel.unread_layout_warnings(scan, spec, ms)   # a malformed DIMAP: what is assumed instead
    card = None
    shape = (len(ms_bands) if ms_bands else ms.bands, plan.ratio)   # what a generic product's nearest network must fit
    # what is said about the model waits for the band plan and the model's fit: a refused run prints only its refusal
    held = HeldFeedback()
    # a generic product of a band count no network has, whose named bands hold Blue, Green, Red and NIR
    subset = None if model_path or method not in (*LEARNED_METHODS, selfcheck.AUTO) else \
        _named_subset_card(sensor, spec, ms, ms_bands, shape, held)
    if subset is not None:
        card, no_model = subset, ""
    elif method in LEARNED_METHODS:
        card = resolve_model(sensor, model_path, held, *shape, sensor_says=unrecognised)
    elif method == selfcheck.AUTO:   # the bands KSDiff would fuse, whichever method the check picks
        card, no_model = _auto_card(sensor, model_path, held, shape, sensor_says=unrecognised)
    if card is not None and not model_path:
        card = _model_for_bands(card, spec, ms, ms_bands, held)
    if card is not None:
        stamps.add("MODEL", str(card.path))
    try:
        bplan = band_sel.plan_bands(ms, spec, ms_bands, card.bands if card else None, mtf_gains)
    except InputError as e:
        if method != selfcheck.AUTO or card is None:
            raise
        # METHOD auto and the model (bundled or MODEL) cannot fuse the chosen bands: the classical methods fuse any
        card, no_model, held = None, _auto_reason(e), HeldFeedback()
        bplan = band_sel.plan_bands(ms, spec, ms_bands, None, mtf_gains)
    warnings.extend(bplan.warnings)
    alpha_note = _alpha_note(flagged, alpha_masks, bplan, ms, card, ms_path)   # said after the band plan's notes
    warnings.extend(_band_metadata_notes(pan_ds, ms_ds, pan, ms, spec, bplan.indices, found, plan.ratio,
                                         ms_bands, ms_stated))
    # a physical (or otherwise scaled) PAN beside a scaled MS: fused in the MS's stored numbers, offset and all
    mapping = pan_encoding.plan_mapping(pan_ds, ms_ds, pan_file, ms_file, bplan.indices)
    if mapping is not None:
        pan_ds, pan = pan_encoding.mapped_pan(pan_ds, pan, mapping)
    encoding_notes, encoding_infos, scaling, ms_offset = _value_encoding(pan_file, ms_file, pan_path, ms_path,
                                                                         bplan.indices, scan, mapping)
    warnings.extend(encoding_notes)
    for line in encoding_infos:
        fb.info(line)
    doubt = ambiguous_codes(found, [ms.descriptions[b - 1] for b in bplan.indices])
    colour_doubt = None
    if doubt:   # a bare code names no colour for sure: it stays bare, so no colour tag or style is taken from it
        warnings.append(doubt[1])
        codes = ", ".join(shown_name(ms.descriptions[bplan.indices[j] - 1].strip()) for j in doubt[0])
        colour_doubt = (f"the band codes {codes} "
                        "mean other colours on Landsat 8/9 than on Landsat 4-7, and SENSOR=auto guessed the mission "
                        "from the geometry alone")
        bplan = replace(bplan, names=[ms.descriptions[b - 1].strip() if j in doubt[0] else n
                                      for j, (b, n) in enumerate(zip(bplan.indices, bplan.names))])
    if bplan.indices != list(range(1, ms.bands + 1)):
        ms_ds, ms = band_sel.select_bands(ms_ds, ms, bplan.indices)
        if plan.ms_dataset is not None:   # a reprojected or flipped MS: select from that view
            plan.ms_dataset, _ = band_sel.select_bands(plan.ms_dataset, describe(plan.ms_dataset, ms_path),
                                                       bplan.indices)
    unfit = False   # METHOD auto's model cannot fuse the chosen bands at this ratio
    if method in LEARNED_METHODS:   # the model must fit the fused bands and the ratio before anything is said of it
        _check_model_fit(card, _model_band_count(ms, bplan.model), plan.ratio, pan, ms, sensor, scan)
        # and ONNX Runtime must be there: without it the refusal came after the offset measurement and statistics
        runtime.import_onnxruntime()
    elif card is not None and not _fits(card, _model_band_count(ms, bplan.model), plan.ratio):
        held = HeldFeedback()   # METHOD auto falls back to a classical method and says why (``_auto_method``)
        unfit = True
    if unrecognised:   # the bundled network of the product's shape, in the same line
        net = card.path.stem if card is not None and not model_path and not unfit else None
        fb.warning(found.message(net and network_words(net, method == selfcheck.AUTO)))
    for note in bplan.notes:
        fb.info(note)
    if alpha_note:
        fb.warning(alpha_note)
    held.release(fb)
    # the MTF gains and names follow the fused bands; the ratio the data's for the generic sensor
    fb.info(band_sel.gains_note(bplan, spec, bool(mtf_gains), spec.mtf_pan if mtf_pan is None else float(mtf_pan),
                                mtf_pan is not None))
    spec = replace(spec, band_names=tuple(bplan.names), mtf_ms=bplan.gains, ratio=spec.ratio or plan.ratio,
                   mtf_pan=spec.mtf_pan if mtf_pan is None else float(mtf_pan))
    # a CREATE_OPTIONS NBITS the values fit (refused before any work when narrower than the product's own)
    out_nbits = outputs.output_nbits(extra_options, ms.dtype, ms.nbits)
    nodata_note = outputs.nbits_nodata_note(pan, ms, out_nbits)   # the holes' value cut to the bits: another one
    if nodata_note:
        warnings.append(nodata_note)
    # the output's creation options tried on a tiny copy of its type and bands: refused before the statistics
    out_grid = outputs.OutputGrid(pan.wkt, tuple(plan.out_gt), plan.region[3], plan.region[2])
    out_options = outputs.checked_options(ms, compression, cog, extra_options, out_grid)
    for note in out_options.notes:
        fb.warning(note)
    if not check_only:   # a COG's overviews go to CPL_TMPDIR after the fusion: a missing folder refused now
        space.check_temp_folder(cog)
    # never more threads than cores: they only slow the run, and ONNX Runtime's results changed past them (QA)
    threads, threads_note = threadlimits.capped_threads(threads)
    if threads_note:
        fb.warning(threads_note)
    # tiles in flight x ONNX Runtime threads = the cores; one session serves the self-check and the run
    pool_size, ort_threads = runtime.balance_threads(workers, threads)
    # and no more threads than a process/thread limit leaves (ONNX Runtime hung past one)
    fitted, out_options = _fit_threads(workers, pool_size, ort_threads, method, out_options, fb)
    pool_size, ort_threads = min(pool_size, fitted.workers), fitted.threads
    check = None
    ms_src = plan.ms_dataset or ms_ds
    # one read: the self-check and the run share it
    fill_notes: list[str] = []
    ranges = inrange.guards(pan, ms, resampled_ms=plan.resampled)
    bar = _run_progress(fb, plan, ms_src, method, card, coregister, cog)
    # an output that surely cannot fit its disk is refused now; one that may not is measured once the statistics
    # are known, still before the self-check and the first tile (co-registration only cuts the region)
    out_shape = (plan.region[3], plan.region[2], ms.bands, ms.dtype)
    measure_space = not check_only and space.precheck(output_path, *out_shape, out_options.gtiff, out_options.cog)
    bdsd = method in ("bdsd_pc", selfcheck.AUTO)   # only they use BDSD-PC's fit (auto's self-check tries it)
    stats = estimate_scene_stats(pan_ds, ms_src, pan, ms, plan, notes=fill_notes, ranges=ranges,
                                 progress=bar.stage("stats"), gains=spec.mtf_ms, checkpoint=fb.stop_if_cancelled,
                                 band_numbers=bplan.indices, bdsd=bdsd)
    if inrange.drop_unfit(ranges):   # an input wider than the other's bit depth: its sample read again, unclamped
        stats = estimate_scene_stats(pan_ds, ms_src, pan, ms, plan, ranges=ranges, gains=spec.mtf_ms,
                                     checkpoint=fb.stop_if_cancelled, band_numbers=bplan.indices, bdsd=bdsd)
    _refuse_unfit_bdsd(method, stats, plan)
    # and the NBITS against the sampled values: a product without NBITS of its own (Landsat, S2) written all 4095
    outputs.output_nbits(extra_options, ms.dtype, ms.nbits, stats.ms_top,
                         lambda b: f"MS band {band_name(b, ms, bplan.indices)}")
    need = None
    if measure_space:
        need = _space_need(pan_ds, ms_src, pan, ms, plan, spec, stats, ranges, fb, out_nbits, out_options)
        # refused here when it cannot fit; a learned method (or auto's pick) compresses worse than the sample
        low_space = space.space_warning(output_path, need, *out_shape, space.codec(compression, extra_options), cog,
                                        learned=method in LEARNED_METHODS or method == selfcheck.AUTO)
        if low_space:
            fb.warning(low_space)
            fb.stop_if_cancelled()   # a user who reads it and stops loses nothing: no tile was fused yet
    moved_line = None
    settings["COREGISTER"] = "yes" if coregister else "no"
    where, error = _measured_on(plan), stats.pan_offset_error
    if not coregister:
        note = coregistration.offset_note(stats.pan_offset, plan.ratio, where, error, pixel_size_m(pan))
        if note:
            fill_notes.append(note)
        else:   # an offset the measurement's error on this MS can explain: said, not warned of
            info = coregistration.offset_info(stats.pan_offset, plan.ratio, where, error)
            if info:
                fb.info(info)
    elif stats.pan_offset is None:
        moved_line = coregistration.UNMEASURED
        fill_notes.append(moved_line)
    elif not coregistration.trusted(stats.pan_offset, error, plan.ratio):
        moved_line = coregistration.unmoved_note(stats.pan_offset, error, plan.ratio, where)
        fill_notes.append(moved_line)
    else:
        offset = stats.pan_offset
        settings["COREGISTER_OFFSET"] = coregistration.offset_text(offset, plan.ratio)
        plan = coregistration.moved_plan(plan, offset, (ms_src.RasterYSize, ms_src.RasterXSize))
        warnings, grid_notes = _before_move(warnings), _before_move(grid_notes)
        stats = estimate_scene_stats(pan_ds, ms_src, pan, ms, plan, ranges=ranges,   # on the co-registered grid
                                     progress=bar.stage("stats_moved"), gains=spec.mtf_ms,
                                     checkpoint=fb.stop_if_cancelled, band_numbers=bplan.indices, bdsd=bdsd)
        _refuse_unfit_bdsd(method, stats, plan)   # the moved grid's sample may be too small: still before any pixel
        moved_line, unreliable = coregistration.moved_note(offset, stats.pan_offset, plan.ratio, where, error)
        if unreliable:
            fill_notes.append(moved_line)
        else:
            fb.info(moved_line)
    for note in fill_notes:   # before the self-check, whose windows fuse such a fill as data too
        fb.warning(note)
    if method == selfcheck.AUTO:
        method, check = _auto_method(pan_ds, ms_src, pan, ms, plan, spec, stats, card, no_model, model_path, device,
                                     ort_threads, fb, precision, consistency, bplan.model, ranges, bar,
                                     ms_offset=ms_offset, caveat=lossy.caveat(compressed))
    # what the method that fuses makes of a band of one value (QA: MTF-GLP-HPM gave a band of 500 the PAN's texture);
    # ``ms`` is the view MS_BANDS cut: its bands are named by their numbers in the file
    out_nodata = output_nodata(pan, ms, out_nbits)[0]
    flat_note = flat_band_note(method, stats.ms_flat, ms, bplan.model, bplan.indices, written=lambda v: float(
        to_dtype(np.full((1, 1), v, np.float32), ms.dtype, out_nodata, out_nbits)[0, 0]))
    if flat_note:
        warnings.append(flat_note)
    # any classical method, chosen or fallen back to by METHOD auto (QA: METHOD mtf_glp_hpm said nothing of a
    # reflectance PAN with a DN MS); KSDiff's run warns below. The user mixed product levels either way
    if method not in LEARNED_METHODS:
        units_note = pan_units(stats, learned=False, scaling=scaling)[1]
        if units_note:
            warnings.append(units_note)
    if check_only:   # METHOD auto only (checked above)
        return PansharpenResult(output_path="", seconds=time.perf_counter() - t0, width=0, height=0, tiles=0,
                                method=method, ratio=plan.ratio,
                                warnings=lossy_notes + crs_notes + code_notes + fill_notes + warnings, selfcheck=check,
                                sensor=sensor,
                                method_reason=check.summary())
    bar.estimate("tiles", _tile_seconds(plan, method in LEARNED_METHODS))   # the method is known now
    if method in LEARNED_METHODS:   # its fit to the data was checked above (METHOD auto: by its self-check)
        fb.stop_if_cancelled()   # creating a model's session takes up to seconds, and cannot be stopped once started
        guard = runguard.RunGuard(fb.is_cancelled)   # a cancel stops the network midway (its probe, each tile)
        session = checked_session(card, device, ort_threads, guard)
        if check is None:   # METHOD auto loaded the model for its self-check, and warned then
            bar.stage("model")(1.0)
            runtime.warn_cpu_fallback(device, session, fb)
        # a GPU runs one tile at a time anyway: a second in flight would only double its memory
        workers = min(workers or (1 if session.device == "cuda" else pool_size), fitted.workers)
        scale = value_scale(card, ms, stats.ms_mean)
        # the model's own context plus the consistency step's (its filter reads beyond what it corrects), and the
        # classical method's that fuses the bands the model does not know
        net_margin = card.margin + (consistency_step.halo(plan.ratio, spec.mtf_ms) if consistency else 0)
        margin = net_margin
        if (bplan.model is not None and len(bplan.model) < ms.bands) or NOISE_PULL:
            margin = max(margin, classical.margin(classical.BEST_CLASSICAL, plan.ratio))
        pan_factor, units_note = pan_units(stats, scaling=scaling)
        if units_note:
            warnings.append(units_note)
        fuse = OnnxFuser(card, session, scale, precision, consistency, bplan.model, pan_factor, NOISE_PULL,
                         margin - net_margin, guard)   # the network sees its own margin only
        # int8 falls back to float32 where the model has no checked int8 variant: the tags say what ran
        settings.update(PRECISION=fuse.precision_used, CONSISTENCY="yes" if consistency else "no",
                        MODEL_SHA256=card.sha256)   # load_card checked the file against it: no second hash
        used_device = session.device
        if NOISE_PULL:
            line, warn = noise.pull_note(stats.pan_noise, pan.dtype.kind in "iu")
            (fb.warning if warn else fb.debug)(line + ".")   # what the pull does: a detail, unless it does nothing
        fb.info(runtime.device_line(card.path.name, session))
        lifted = lift_note(stats)
        if lifted:
            fb.info(lifted)
        # how the tiles run: for whoever studies a run, not every user's log
        fb.debug(f"model {card.path.name}: {value_scale_note(card, ms, scale)}; {fuse.path_note()}; "
                 + ("one consistency step onto the MS per tile" if consistency else "no consistency step"))
    else:
        if model_path and check is None:   # auto explained already why the model is not used
            warnings.append(f"MODEL is ignored by the classical method {method}.")
        negative = classical.negative_note(method, stats, bplan.names, bplan.indices)
        if negative:
            warnings.append(negative)
        fuse, margin, used_device = classical.FUSERS[method], classical.margin(method, plan.ratio), "cpu"
    if spec.ratio and plan.ratio != spec.ratio and not any(w.startswith(PIXEL_NOTE) for w in warnings):
        warnings.append(
            f"The PAN/MS pixel ratio of the data is {plan.ratio}, not {spec.ratio} as for {spec.name}; "
            f"using {plan.ratio}."
        )
    for note in grid_notes:
        fb.info(note)
    for w in warnings:
        fb.warning(w)
    r0, c0, rows, cols = plan.region
    # before any tile: refuse, or shrink the tiles, when the run would not fit the free memory
    learned = method in LEARNED_METHODS
    limited = memory.limit_note()
    if limited:
        fb.info(limited)
    block = space.block_size(out_options.gtiff, False)   # the writer's blocks (its GeoTIFF is always tiled)
    # the warning names the tiles the run will use: block-aligned ones round the shrunk size down (QA126)
    tile_size, overlap, too_big = memory.fit_tile(
        tile_size, overlap, rows, cols, ms.bands, margin, learned, card.size_multiple if learned else 1,
        lambda t, o: choose_layout(rows, cols, t, o, block, exact=not learned))
    if too_big:
        fb.warning(too_big)
        warnings.append(too_big)
    nodata, nodata_why = output_nodata(pan, ms, out_nbits)
    names = bplan.names
    out_options = _fit_encoding_memory(out_options, fb)   # now: the statistics took their address space
    writer = _make_writer(output_path, cols, rows, ms, plan.out_gt, pan.wkt, names, nodata, out_options, fb,
                          found_at_output, need)
    pool = None   # from here on, any failure (even before the first tile) removes the partial file
    try:
        # classical methods: block-aligned tiles, no overlap; KSDiff: blended cells (or strips on small scenes)
        requested = tile_size   # (after memory.fit_tile, which warns when it shrinks it)
        settings.update(TILE_SIZE=tile_size, OVERLAP=overlap)   # as asked (or shrunk to fit the memory)
        layout = choose_layout(rows, cols, tile_size, overlap, writer.block_size(), exact=not learned)
        tile_size, overlap = layout.tile, layout.overlap
        workers = _fit_workers(min(workers or default_workers(), fitted.workers), tile_size, rows, cols, ms.bands,
                               margin, learned, card.size_multiple if learned else 1)
        fb.info(
            f"Fusing with {labels.method(method)}: output {cols}x{rows} px (PAN {pan.width}x{pan.height}, MS "
            f"{ms.width}x{ms.height}, {ms.bands} bands, ratio {plan.ratio}) in "
            f"{layout.describe(requested)}."
        )
        fb.debug(f"tiles read {margin} px of context beyond their edges"
                 + (f"; the output starts at the PAN's column {c0}, row {r0}" if r0 or c0 else ""))
        fb.info(f"output nodata: {nodata_why}")
        if method == "bdsd_pc":   # the method's whole state, to explain and reproduce a run (QA119)
            fb.info(classical.bdsd_coef_line(stats, bplan.indices))
            settings["BDSD_COEF"] = classical.bdsd_coef_text(stats)
        runner = _TileRunner(pan_ds, ms_src, pan, ms, plan, spec, fuse, margin, stats, fb, layout.count, ranges,
                             bar.stage("tiles"))
        if eta.is_large(pan.width, pan.height):
            raw = rows * cols * ms.bands * ms.dtype.itemsize   # the bound when the space check did not measure
            fb.info(eta.size_line(pan.width, pan.height, need and need.file, raw))
            runner.time_left = eta.TimeLeft(layout.count, fb.info)
        set_colour_interpretation(writer.ds, names, band_sel.band_colours(ms_ds, ms_stated, bplan.indices))
        # the output's values are the MS's stored numbers: its scale/offset, units and band metadata say what they
        # mean
        for note in outputs.copy_metadata(writer.ds, ms_file, bplan.indices):   # a value too long to copy
            fb.info(note)
        metaoffsets.carry_source_items(writer.ds, ms_path)   # a VRT's: its sources' Sentinel-2 offset (QA137)
        # how it was made: METHOD auto may have fallen back to a classical method (``provenance``)
        # the tiles as laid out on this scene (blended cells or strips sized to it) and their margin of context
        # the ratio fused at: ksdiff:assess's ERGAS divides by it, and a generic sensor has none of its own (QA: a
        # generic fusion assessed against its reference alone gave ERGAS n/a)
        settings.update(RATIO=plan.ratio, MS_BANDS=provenance.numbers(bplan.indices), TILE_MARGIN=margin,
                        TILE_LAYOUT=layout.describe())   # the log's words, without why a tile is smaller
        # the gains the fusion used, whoever gave them: the MS's as MTF_GAINS takes them back, one per output band
        settings.update(MTF_GAINS=provenance.numbers(bplan.gains), MTF_GAIN_PAN=float(spec.mtf_pan))
        provenance.record(writer.ds, provenance.items(
            method, sensor, card.path.name if method in LEARNED_METHODS else None, check and check.outputs(),
            settings))
        for p in writer.removed_partials:
            fb.leftover(p)
        low, high = value_range(ms.dtype, out_nbits)
        floating = ms.dtype.kind == "f"   # keeps every value; its negatives are still worth a line in the log
        # clipping is never silent
        # values above the top both inputs keep to (11-bit data in UInt16 without NBITS): said, not clipped
        ceil = saturation.ceiling(pan, ms, stats.pan_top, stats.ms_top, spec.scale,
                                  table_of(spec).name.split(" (")[0], out_nbits)
        clips = ClipCounter(high, names, clipped=not floating, low=0.0 if floating else low,
                            ceiling=ceil and ceil.counted_from,
                            bits=out_nbits if out_nbits and out_nbits < 8 * ms.dtype.itemsize else None,
                            type_name=gdal.GetDataTypeName(gdal_array.NumericTypeCodeToGDALTypeCode(ms.dtype)),
                            nodata=nodata)
        pool = TilePool(runner, rows, cols, tile_size, overlap, workers, on_result=runner.tile_done,
                        order=layout.order)
        runner.set_layout(pool.order, rows, cols)

        # the tiles' windows with their margin, in each input's pixels (the MS's with its upsampling context)
        side = tile_size + 2 * margin
        in_use = memory.estimate_mb(tile_size, rows, cols, ms.bands, margin, learned,
                                    card.size_multiple if learned else 1) * workers
        inputs = InputCache([pan_ds, ms_src], runner.read_lock, row_budget_mb(
            [(pan_ds, side), (ms_src, -(-side // plan.ratio) + 4)], memory.room_mb(in_use)))
        free_pages = memory.FreeMemoryKeeper()

        def flush() -> None:
            writer.flush()   # hand finished blocks to disk (checked)
            inputs.flush()   # the strip's input blocks: the cache would otherwise grow with the scene

        def after_tile() -> None:
            writer.flush()   # the tile completed its blocks: each is encoded once
            inputs.trim()
            free_pages.after_tile()   # what the allocator keeps must not grow with the tiles of a row

        def convert(fused: np.ndarray) -> np.ndarray:
            return to_dtype(fused, ms.dtype, nodata, out_nbits)

        # whole GeoTIFF block rows per flush: each block is compressed once, by all cores (NUM_THREADS)
        rows_out = BlockRowWriter(writer.write, flush, convert, outputs.BLOCK, rows, WRITE_CHUNK)
        if layout.kind != "strips":
            cells = (aligned_cells(layout.order, pool) if layout.kind == "aligned"
                     else blend_cells(rows, cols, layout.cell, overlap, pool))
            write_cells(cells, writer.write, convert, clips.add, after_tile)
        else:
            for row, strip in blend_strips(rows, cols, tile_size, overlap, pool):
                clips.add(strip)
                rows_out.add(row, strip)
                del strip   # one strip in memory at a time
            rows_out.finish()
        pool.close()
        # a cancel during the last tile (or the only one) must not replace the old output
        fb.stop_if_cancelled()
        if isinstance(writer, outputs.CogWriter):   # a pass of its own: the last share of the progress
            fb.info("writing the Cloud-Optimized GeoTIFF and its overviews (cancel still works)")
        stamps.check()   # the tiles read the inputs as they were when the run opened them
        for note in writer.commit(fb.is_cancelled, bar.stage("write")):
            fb.info(note)
        bar.finish()
    except BaseException:
        if pool is not None:
            pool.close()
        writer.abort()
        raise
    finally:
        if isinstance(fuse, OnnxFuser):
            fuse.release()   # the per-tile sessions' memory goes back to the system, not kept by QGIS
    if isinstance(fuse, OnnxFuser):
        # how tiles with nodata took their kernels: a diagnostic; the floor note says what happened to values
        for note, say in ((fuse.window_note(), fb.debug), (fuse.floor_note(), fb.info)):
            if note:
                say(f"{labels.method(method)}: {note}")
    # NBITS (no ceiling): the inputs' saturation at the top explains the clipped values
    clipped = clips.report(fb, labels.method(method), "" if ceil else saturation.clip_cause(stats.pan_top,
                                                                                             stats.ms_top, high))
    if clipped:   # a warning the caller sees too (the batch summary), as the others
        warnings.append(clipped)
    if ceil is not None and clips.over_ceiling is not None:
        over = saturation.report(fb, method, ceil, clips.over_ceiling, clips.valid, clips.maximum, names,
                                 clips.top_note())
        if over:
            warnings.append(over)
    pan_dimap = dimaps["PAN"].dimap if sources["PAN"] == "dimap" else None   # its NODATA is the PAN's: other advice
    for note in (inrange.report(ranges), runner.pan_holes.note(pan, pan_dimap, compressed.get("PAN"))):
        if note:
            fb.warning(note)
            warnings.append(note)
    return PansharpenResult(output_path=output_path, seconds=time.perf_counter() - t0, width=cols, height=rows,
                            sensor=sensor,
                            tiles=layout.count, method=method, ratio=plan.ratio, device=used_device,
                            warnings=lossy_notes + crs_notes + code_notes + fill_notes + warnings,
                            band_names=list(names), selfcheck=check, coregistration=moved_line,
                            colour_doubt=colour_doubt, model=card.path.name if learned else None,
                            assumed_rgb=rgb_bands(bplan.assumed) if bplan.assumed and not rgb_bands(names) else None,
                            assumed_order=", ".join(bplan.assumed) if bplan.assumed else None,
                            method_reason=check.summary() if check is not None else FORCED)


def _tile_seconds(plan: GridPlan, learned: bool) -> float:
    """Estimated seconds of the tiles over the output region (``progress``'s measured rates)."""
    rate = progress_rates.TILE_LEARNED_RATE if learned else progress_rates.TILE_CLASSICAL_RATE
    return progress_rates.mpx(plan.region[2] * plan.region[3]) * rate


def _run_progress(fb: Feedback, plan: GridPlan, ms_src, method: str, card: model_card.ModelCard | None,
                  coregister: bool, cog: bool) -> RunProgress:
    """The run's progress bar shared out among its stages by their estimated seconds: the statistics (twice with
    COREGISTER), the model's session, METHOD auto's self-check, the tiles (learned ones while auto may keep the
    model) and the final write (a COG's copy with overviews)."""
    learned = method in LEARNED_METHODS or (method == selfcheck.AUTO and card is not None)
    stats = stats_seconds(plan, ms_src.RasterXSize, ms_src.RasterYSize)
    area = _ms_stats_window(plan, ms_src.RasterXSize, ms_src.RasterYSize)
    return RunProgress(fb, {
        "stats": stats,
        "stats_moved": stats if coregister else 0.0,
        "model": progress_rates.MODEL_LOAD_SECONDS if learned else 0.0,
        "check": selfcheck.estimate_seconds(area, plan.ratio, card is not None) if method == selfcheck.AUTO else 0.0,
        "tiles": _tile_seconds(plan, learned),
        "write": progress_rates.mpx(plan.region[2] * plan.region[3]) * progress_rates.COG_RATE if cog else 0.0,
    })


def _before_move(lines: list[str]) -> list[str]:
    """``lines`` with the grid-shift line saying it describes the georeference, before COREGISTER moved the MS."""
    return [w[:-1] + " (by its georeference, before the COREGISTER move)." if w.startswith(GRID_SHIFT) else w
            for w in lines]


def _without_integer_nan(info: RasterInfo, role: str, fb: Feedback) -> RasterInfo:
    """``info`` without a nodata value of NaN on an integer raster, which no pixel can hold: said, not ignored
    silently (a layer's nodata value or an undeclared fill's warning may then apply)."""
    if info.nodata is None or not math.isnan(info.nodata) or info.dtype.kind == "f":
        return info
    fb.warning(f"the {role} raster declares NaN as its nodata value, which its integer pixels ({info.dtype}) cannot "
               f"hold: no pixel is nodata by it (set a value they can hold, e.g. {nodata_command(info.path, 0)})")
    return replace(info, nodata=None)


def _pan_without_alpha(pan_ds, pan: RasterInfo, fb: Feedback) -> tuple[object, RasterInfo]:
    """A PAN with a transparency band (gray + alpha, as ``gdalwarp -dstalpha`` writes it) as its grey band, the
    pixels the alpha hides nodata; any other PAN as it is."""
    if pan.bands != 2 or alpha_flagged(pan_ds) != [2]:
        return pan_ds, pan
    samples = sample_bands(pan_ds)
    if samples is None or transparency_masks(samples, [2], pan.nbits) != [2]:
        return pan_ds, pan
    fb.info("the PAN raster's band 2 is a transparency mask (alpha): band 1 is the PAN, the pixels the mask hides "
            "are nodata")
    return masks.without_last_alpha(pan_ds, pan)[:2]   # not georeferenced: the grid check says so next


def _model_for_bands(card: model_card.ModelCard, spec: Sensor, ms: RasterInfo, selection: list[int] | None,
                     fb: Feedback) -> model_card.ModelCard:
    """The sensor's subset model (``Sensor.subset_model``) when the selected MS bands lack one of the bundled
    model's bands: an 8-band product's B, G, R, NIR picked with MS_BANDS go to the 4-band network."""
    sub = model_card.bundled_cards().get(spec.subset_model) if spec.subset_model else None
    if sub is None or band_sel.holds_bands(ms, spec, selection, card.bands):
        return card
    if not selection and ms.bands != spec.n_bands:
        return card   # the band count does not fit the sensor: the band plan says so next
    picked = model_card.load_card(str(sub))
    fb.info(f"the selected MS bands lack some of the {len(card.bands)} bands {card.path.name} fuses; using "
            f"{sub.name}, which fuses {', '.join(picked.bands)}")
    return picked


def _named_subset_card(sensor: str, spec: Sensor, ms: RasterInfo, selection: list[int] | None,
                       shape: tuple[int, int], fb: Feedback) -> model_card.ModelCard | None:
    """A generic product (SENSOR generic, or auto that found no sensor) whose MS band count has no bundled network
    (``shape``: the fused bands and the ratio; 5 bands Blue, Green, Red, Red Edge, NIR, or Sentinel-2's B02 ... B08)
    gets the bundled 4-band network of its ratio when the fused bands' names hold that network's Blue, Green, Red and
    NIR (``bands.holds_bands``: the names and band codes the rest of the engine reads). It fuses those four, and
    MTF-GLP-HPM the others (``BandPlan.model``), as on a Pléiades Neo product. None otherwise: which of unnamed bands
    is the NIR is not guessed."""
    if sensor not in SENSORS or not get_sensor(sensor).generic or model_for(sensor, *shape)[0] is not None:
        return None
    key = GENERIC_NEAREST.get((4, shape[1]))
    path = model_card.bundled_cards().get(key) if key else None
    if path is None:
        return None
    card = model_card.load_card(str(path))
    if not band_sel.holds_bands(ms, spec, selection, card.bands):
        return None
    fb.warning(f"generic sensor: no bundled network fits {shape[0]} MS bands at ratio {shape[1]}, but the MS bands "
               f"are named and hold Blue, Green, Red and NIR: the 4-band network of ratio {shape[1]} ({path.name}) "
               f"fuses those, {labels.method(classical.BEST_CLASSICAL)} the others; compare with a classical method")
    return card


def _alpha_note(flagged: list[int], alpha_masks: list[int], bplan: band_sel.BandPlan, ms: RasterInfo,
                card: model_card.ModelCard | None, ms_path: str) -> str | None:
    """``alpha_band_note`` for the fused bands, named by the file's own band names, each unnamed one but a real
    transparency mask (``alpha_masks``) by the name the band order assumed takes it as, with the bands the model
    fuses (``card``: None, none)."""
    names = [shown_name(ms.descriptions[b - 1].strip()) for b in bplan.indices]
    taken = bplan.assumed or bplan.names   # a generic run's unnamed bands stay 'Band i' in names
    assumed = ["" if b in alpha_masks else name for b, name in zip(bplan.indices, taken)]
    model = [] if card is None else bplan.indices if bplan.model is None else [bplan.indices[j] for j in bplan.model]
    return alpha_band_note(flagged, bplan.indices, names, str(ms_path), model, assumed)


def _model_band_count(ms: RasterInfo, bands: list[int] | None) -> int:
    """The MS bands a learned model is given: ``BandPlan.model``'s, else all that are fused."""
    return ms.bands if bands is None else len(bands)


def _auto_card(sensor: str, model_path: str | None, fb: Feedback,
               shape: tuple[int, int], sensor_says: bool = False) -> tuple[model_card.ModelCard | None, str]:
    """METHOD auto: the model to check, or (None, why) when there is none for the sensor (``shape``: MS bands and
    ratio, for a generic product; ``sensor_says``: as ``resolve_model``'s)."""
    try:
        return resolve_model(sensor, model_path, fb, *shape, by_shape=True, checked=True,
                             sensor_says=sensor_says), ""
    except InputError as e:
        if model_path:
            raise   # the user's own MODEL is broken: say so rather than hide it
        return None, str(e)


def _auto_method(pan_ds, ms_src, pan: RasterInfo, ms: RasterInfo, plan: GridPlan, spec: Sensor,
                 stats: classical.SceneStats,
                 card: model_card.ModelCard | None, no_model: str, model_path: str | None, device: str,
                 threads: int, fb: Feedback, precision: str, consistency: bool,
                 bands: list[int] | None,
                 ranges: dict[str, inrange.RangeGuard] | None,
                 bar: RunProgress, ms_offset: bool = False, caveat: str = "") -> tuple[str, selfcheck.SelfCheck]:
    """METHOD auto: the learned model if it passes the self-check on this scene, else the best classical method
    on the check (also the choice when no model can run here). ``bands``: ``BandPlan.model``; ``ranges``: the
    inputs' ``inrange.guards`` (the check reads the values clamped as the run does); ``bar``: the run's progress
    (its ``model`` and ``check`` stages); ``ms_offset``: the MS's values carry an offset (the check's ERGAS note).
    ``caveat``: what the check's reason adds when it keeps the model (``lossy.caveat``: lossy-compressed inputs)."""
    area = _ms_stats_window(plan, ms_src.RasterXSize, ms_src.RasterYSize)
    # an EXTENT too small or too empty (nodata) for the check: it samples the scene around it (the MS over the whole
    # PAN) rather than falling back untested
    scene = _ms_stats_window(replace(plan, region=(0, 0, pan.height, pan.width)), ms_src.RasterXSize,
                             ms_src.RasterYSize)
    where = "area of interest" if plan.extent else "scene"
    area, widened = selfcheck.check_area(area, scene, plan.ratio, lambda a: selfcheck.usable_pixels(
        pan_ds, ms_src, pan, ms, plan, stats, a, fb, ranges), where)
    if widened:
        fb.info(f"Method auto: {widened}.")
        where = "scene"
        bar.estimate("check", selfcheck.estimate_seconds(area, plan.ratio, card is not None))

    def classical_choice(why: InputError) -> tuple[str, selfcheck.SelfCheck]:
        # no learned model to score: the check's share is re-estimated for the classical candidates alone
        bar.estimate("check", selfcheck.estimate_seconds(area, plan.ratio, False))
        check = selfcheck.run_check(pan_ds, ms_src, pan, ms, plan, spec, None, stats, area, fb, ranges,
                                    bar.stage("check"), ms_offset=ms_offset, where=where)
        check.not_scored = _auto_reason(why)   # said once, before the check (``log_check`` refers to it)
        check.reason = f"{check.not_scored}; {check.reason}"   # a sentence's full stop would end in '.;'
        selfcheck.log_check(check, fb)
        return check.method, check

    try:
        if card is None:
            raise InputError(no_model)
        model_card.check_against_data(card, _model_band_count(ms, bands), plan.ratio)
    except InputError as e:
        if model_path:   # README: auto uses the best classical method when the model does not fit (ksdiff refuses)
            fb.warning(f"Method auto: the MODEL {os.path.basename(model_path)} does not fit this scene "
                       f"({str(e).rstrip('.')}); fusing "
                       f"with the best classical method on this scene instead ({labels.param('METHOD', 'ksdiff')} "
                       "would stop here)")
        else:
            fb.info(f"Method auto: {_auto_reason(e)}, so the best classical method on this scene is used.")
        return classical_choice(e)
    sizes, why_smaller = selfcheck.model_window_sizes(plan.ratio, len(card.bands), card.size_multiple)
    if not sizes:   # not even the smallest check window's model tile fits: the check cannot score the model
        e = InputError(f"the self-check could not score it within this run's memory: {why_smaller}")
        fb.warning(f"Method auto: {e}, so the best classical method on this scene is used. "
                   f"{memory.more_memory_hint()}")
        return classical_choice(e)
    if why_smaller:
        fb.info(f"Method auto: the self-check reads smaller windows than usual: {why_smaller}.")
    fb.stop_if_cancelled()   # creating a model's session takes up to seconds, and cannot be stopped once started
    guard = runguard.RunGuard(fb.is_cancelled)   # a cancel stops the network midway (its probe, each check window)
    try:
        session = checked_session(card, device, threads, guard)
    except InputError as e:
        if model_path and not isinstance(e, runtime.RuntimeUnavailable) and str(e) != runtime.INSTALL_HINT:
            raise   # the user's own MODEL is broken: say so rather than hide it
        # a missing or broken ONNX Runtime is the user's to fix: a warning, not an info line among many
        fb.warning(f"Method auto: KSDiff cannot run ({_auto_reason(e)}), so the best classical method on this "
                   "scene is used.")
        return classical_choice(e)
    bar.stage("model")(1.0)
    runtime.warn_cpu_fallback(device, session, fb)
    fuser = OnnxFuser(card, session, value_scale(card, ms, stats.ms_mean), precision, consistency, bands,
                      pan_units(stats)[0], guard=guard)   # the network's factor: on the stored values, as the run's
    out_of_memory = None
    try:
        check = selfcheck.run_check(pan_ds, ms_src, pan, ms, plan, spec, fuser, stats, area, fb, ranges,
                                    bar.stage("check"), ms_offset=ms_offset, where=where, sizes=sizes)
    except InputError as e:
        if not memory.out_of_memory(e):
            raise
        out_of_memory = str(e)   # not the exception: its traceback's frames would keep the model's sessions alive
    finally:
        fuser.release()
    if out_of_memory is not None:
        # the model ran out of memory on a check tile (the plan is an estimate; each ONNX Runtime thread reserves
        # address space of its own): auto still has an answer. The model's sessions are dropped first, or the
        # classical candidates ran out of memory in their turn (measured under prlimit --as=1500000000)
        del fuser, session
        runtime.clear_cache()
        memory.release_free_memory()
        why = InputError("the self-check ran out of memory on the model's tile")
        fb.warning(f"Method auto: {why}, so the best classical method on this scene is used. "
                   f"{memory.more_memory_hint()}")
        return classical_choice(why)
    if caveat and check.method == "ksdiff":   # kept on inputs whose artefacts the check cannot see: its reason says so
        check.caveat, check.reason = caveat, f"{check.reason}; {caveat}"
    # the user's own MODEL is named: "KSDiff" alone read as the bundled network
    selfcheck.log_check(check, fb, f"KSDiff ({card.path.name})" if model_path else "KSDiff")
    adapted = (card.data.get("training") or {}).get("adapted_from") if model_path else None
    if adapted and check.method == "ksdiff":
        fb.warning(f"the MODEL {one_line(card.path.name)} was fine-tuned on a scene of its own (python -m model_core "
                   "adapt): on that scene the self-check measures it on the data it learned from, not independently")
    return check.method, check
