"""A learned network (ONNX) as a tile fuser, with the same interface as the classical methods."""
from __future__ import annotations

import base64
import dataclasses
import math
import threading

import numpy as np

from . import consistency, memory, noise, outliers, runguard, runtime, saturation
from .classical import BEST_CLASSICAL, FUSERS, TileContext
from .errors import Cancelled, InputError
from .filters import grow_mask
from .model_card import ModelCard, edited_card, parse_embedded
from .numbers import share as percent
from .raster_io import RasterInfo
from .runtime import Session
from .units import UNITS_TOLERANCE, same_units

PROBE_MIN = 8   # PAN pixels per side of the smallest probe tile
# mean MS value of the training products in model units (WorldView-2 pairs 1-2 / 2047: 0.07-0.11,
# Landsat 8 / 65535: 0.16): where floating-point data is put
TYPICAL_MEAN = 0.1
PERCENT_FACTOR = (50.0, 200.0)   # scene means this far apart (either way): likely percent and 0-1 reflectance
FLOOR_FRACTION = 0.2   # learned values below this share of the upsampled MS are compressed towards 0
FAST_TOLERANCE = 1e-4  # the per-tile kernel path must reproduce the full graph within this share of its range
# the int8 path's RMS difference to the full graph on the probe, as a share of the output's RMS: measured
# 0.028 on the probe ramp (0.006 on real tiles); wrong offsets or scales give ~1
INT8_TOLERANCE = 0.1
CONTRAST_BLOCK = 128   # PAN pixels per side of the blocks the int8 path's contrast statistic is measured on
PRECISIONS = {"fp32": "float32 throughout",
              "int8": "int8 on CPU when the model carries a checked int8 variant (the default: about 1.6x faster end "
                      "to end, ERGAS within 1 % of float32 on every bench scene), else float32"}
DEFAULT_PRECISION = "int8"
PRECISION_ALIASES = {"float32": "fp32"}   # what the help and the logs call it, accepted as PRECISION's value too
# a tile with nodata: its kernels come from its largest data-only rectangle, found on blocks of this many PAN
# pixels, when that rectangle is at least PRIOR_MIN_SIDE pixels each way (half the training patches' side)
PRIOR_BLOCK = 8
PRIOR_MIN_SIDE = 32
# a network output further from 0 than this many times the data's range is refused as broken (``output_fault``).
# The range, in model units: 1 (the NBITS or 8-bit top; 10 x the scene mean for floating-point data, ``value_scale``)
# or the tile's largest input, whichever is larger. A fused value is the MS plus the PAN's detail: the bundled models'
# largest |output| / that range, METHOD ksdiff and auto, int8 and fp32 (2026-12-07): WorldView-2 pair 1 3.28 (its
# saturated roofs), pair 2 1.93, Landsat 8 0.92, Sentinel-2 (bench case) 0.33; a value beyond 100 x is clipped to the
# top or floored on every integer output anyway: not a fusion, a broken model (QA: 3e38 on dark pixels became inf once
# scaled back; -1e30 x MS; both wrote a damaged GeoTIFF with rc 0)
ABSURD_FACTOR = 100.0


def tile_contrast(pan: np.ndarray, a: float, b: float) -> float:
    """The statistic the int8 path picks its activation scales by (``model_core/tile_int8.py``): the largest
    std of the normalised PAN (pan * a + b, what the backbone sees) over the tile's ``CONTRAST_BLOCK``² blocks
    (the calibration patches' size). The largest, not the tile's: a tile half fields, half town needs the
    town's ranges."""
    x = np.asarray(pan, dtype=np.float32).reshape(pan.shape[-2:]) * np.float32(a) + np.float32(b)
    n = CONTRAST_BLOCK
    rows, cols = (_block_starts(size, n) for size in x.shape)
    return max(float(np.std(x[r:r + n, c:c + n])) for r in rows for c in cols)


def _block_starts(size: int, n: int) -> list[int]:
    """Starts of ``n``-long blocks on a regular grid, the last flush with the end: every pixel in a block."""
    return [0] if size <= n else sorted(set(range(0, size - n + 1, n)) | {size - n})


def soft_floor(fused: np.ndarray, lms: np.ndarray, fraction: float = FLOOR_FRACTION,
               base: np.ndarray | None = None, counted: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """(fused kept positive, how many values changed; ``counted``, (H, W) bool: only those there).

    The networks inject detail additively: where a band is nearly black (NIR over water, deep shadow)
    and the PAN, which hardly sees that band, has a strong dark edge, lms + detail falls below zero
    (measured on WorldView-2 pairs 2 and 3: 2.4-4 % of the NIR values, 0.1-0.8 % of the visible ones).
    Below t = fraction * lms the value becomes t * exp((v - t) / t): equal to v with the same slope at t,
    always positive, tending to 0 - the proportional damping MTF-GLP-HPM's ratio injection has built in,
    applied only where the additive result turns implausible. Where lms <= 0 the value is clipped at 0.
    ``base`` (C,): where each band's data end when that is below 0 (an Int16 product, reflectance below 0 after an
    atmospheric correction): the same floor measured from there (until 2026-12-06 such valid negative values
    became 0).
    """
    if base is not None:
        b = np.asarray(base, dtype=np.float32)[:, None, None]
        out, n = soft_floor(fused - b, lms - b, fraction, counted=counted)
        return out + b, n
    t = np.maximum(lms, 0, dtype=np.float32) * np.float32(fraction)
    low = fused < t
    if not low.any():
        return fused, 0
    n = int(np.count_nonzero(low if counted is None else low & counted))
    out = fused.copy()
    tl, v = t[low], fused[low]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        damped = tl * np.exp((v - tl) / tl)
    out[low] = np.where(tl > 0, damped, np.maximum(v, 0))
    return out, n


def data_lifts(stats) -> tuple[float, float]:
    """(MS lift, PAN lift): how far the learned path raises the MS and the PAN (its output is lowered back by the MS
    lift); 0 and 0 when no value reaches below 0 (ordinary DN or reflectance: untouched, to the bit).

    Why: the network divides each tile by its mean intensity (``model_core/nets/tilenorm.py``) and learned on DN
    products, whose dark pixels keep a pedestal above 0; the noise pull's MTF-GLP-HPM anchor divides the PAN by its
    low-pass. Data reaching below 0 lost that zero (an Int16 product stored as DN - 300; surface reflectance below 0
    after an atmospheric correction, where tiles with a mean near 0 got 7-30 times the detail: Landsat C2 L2 float,
    self-check Wald ERGAS 27.2 against MTF-GLP-HPM's 10.99). They are raised by the least constant that takes them to
    0 or above, measured from where they end (``SceneStats.ms_low``, ``pan_low``: 0.1th percentiles): one constant for
    all MS bands, and for the PAN too when, so measured, it is in the MS's units (scene means within
    ``UNITS_TOLERANCE``), as an offset of the product moves them all alike. (The PAN raised by its own floor sat 21 DN
    lower against the MS than in the UInt16 product on WorldView-2 pair 1: 1.8 DN mean difference to that run, up to
    567, against 0.34 and 16.) Until 2026-12-07 each MS band was raised by its own floor and the PAN not at all: pair 1
    stored as Int16 DN - 300 fused with Wald ERGAS 10.00 against the UInt16 encoding's 8.24, single NIR values at 5372
    where the UInt16 run had 854 (the pull's P / P_L on a PAN near 0).
    """
    ms_low, pan_low = getattr(stats, "ms_low", None), getattr(stats, "pan_low", None)
    ms = max(0.0, -float(np.min(ms_low))) if ms_low is not None and np.size(ms_low) else 0.0
    pan = max(0.0, -float(pan_low)) if pan_low is not None else 0.0
    if ms or pan:
        common = max(ms, pan)
        if same_units(float(np.mean(stats.ms_mean)) + common, float(stats.pan_mean) + common):
            return common, common
    return ms, pan


def lift_note(stats) -> str | None:
    """What ``data_lifts`` does to this scene, for the log; None when it does nothing. QA: an Int16 product stored as
    DN - 300 was logged only as "values divided by 2047" and 11.6 % of its values "eased towards black"."""
    ms, pan = data_lifts(stats)
    if not (ms or pan):
        return None
    lows = []
    if stats.ms_low is not None and float(np.min(stats.ms_low)) < 0:
        lows.append(f"the MS's to {float(np.min(stats.ms_low)):.4g}")
    if stats.pan_low is not None and stats.pan_low < 0:
        lows.append(f"the PAN's to {stats.pan_low:.4g}")
    if ms == pan:
        raised = f"the MS and the PAN raised by {ms:.4g}"
    else:
        raised = " and ".join(part for part in (ms and f"the MS raised by {ms:.4g}",
                                                pan and f"the PAN{'' if ms else ' raised'} by {pan:.4g}") if part)
    return (f"KSDiff (learned): values reach below 0 ({', '.join(lows)}; 0.1th percentiles): it fuses {raised}, "
            "to end at 0 as a digital-number product's do, and lowers its output back by as much.")


def largest_rectangle(valid: np.ndarray) -> tuple[int, int, int, int]:
    """(row, col, height, width) of the largest all-True rectangle of a 2-D bool array (0 size when none):
    the classic histogram-and-stack scan, row by row."""
    rows, cols = valid.shape
    heights = np.zeros(cols + 1, dtype=int)   # the trailing 0 empties the stack at each row's end
    best = (0, 0, 0, 0, 0)
    for r in range(rows):
        heights[:cols] = np.where(valid[r], heights[:cols] + 1, 0)
        stack: list[tuple[int, int]] = []       # (start column, height), heights increasing
        for c in range(cols + 1):
            start = c
            while stack and stack[-1][1] >= heights[c]:
                s, h = stack.pop()
                if h * (c - s) > best[0]:
                    best = (h * (c - s), r - h + 1, s, h, c - s)
                start = s
            stack.append((start, int(heights[c])))
    return best[1:]


def _whole_blocks(mask: np.ndarray, b: int) -> np.ndarray:
    """(H // b, W // b): True where a b x b block of ``mask`` is True throughout (the remainder rows and columns
    left out)."""
    h, w = mask.shape[0] // b, mask.shape[1] // b
    return mask[: h * b, : w * b].reshape(h, b, w, b).all(axis=(1, 3))


def prior_window(valid: np.ndarray | None) -> tuple[int, int, int, int] | None:
    """The part of a tile its kernels are computed from (row, col, height, width), or None for the whole tile.

    ``valid`` (H, W): pixels holding data in PAN and MS. A KSDiff prior summarises its whole tile (brightness,
    contrast, structure) and never saw nodata in training: the flat fill of a hole in the tile changed the
    kernels of every pixel (pair 2's Wald ERGAS 8.74 against 7.38, docs/VALIDATION.md). A tile with holes gets
    the kernels of its largest data-only rectangle; a whole tile when it has no holes, or no such rectangle of
    at least PRIOR_MIN_SIDE pixels each way."""
    if valid is None or valid.all() or not valid.any():
        return None
    b = PRIOR_BLOCK
    r, c, rh, rw = largest_rectangle(_whole_blocks(valid, b))
    if min(rh, rw) * b < PRIOR_MIN_SIDE:
        return None
    return r * b, c * b, rh * b, rw * b


def fill_areas(zero: np.ndarray, origin: tuple[int, int] = (0, 0)) -> np.ndarray | None:
    """The parts of a tile's zero pixels (H, W) that form a fill: whole PRIOR_BLOCK-pixel blocks of zeros, grown by
    one block to take in the fill's ragged edge; None when there is none. Scattered zeros (dark pixels of a low bit
    depth) are not a fill. ``origin``: the (row, col) in ``zero`` where a block starts (default its corner), so a
    window read around another finds the blocks that other one does (QA132: a pad's own lattice missed them)."""
    b = PRIOR_BLOCK
    lead = [(b - o % b) % b for o in origin]   # rows / columns before the first block: part of no whole block
    if any(lead):
        found = fill_areas(np.pad(zero, ((lead[0], 0), (lead[1], 0))))
        return None if found is None else found[lead[0]:, lead[1]:]
    blocks = _whole_blocks(zero, b)
    h, w = blocks.shape
    if not blocks.any():
        return None
    padded = np.pad(blocks, 1)
    grown = np.zeros_like(blocks)
    for dy in range(3):
        for dx in range(3):
            grown |= padded[dy:dy + h, dx:dx + w]
    full = np.repeat(np.repeat(grown, b, axis=0), b, axis=1)
    # the last rows and columns beyond whole blocks follow their neighbours
    return np.pad(full, ((0, zero.shape[0] - h * b), (0, zero.shape[1] - w * b)), mode="edge")


def zero_fill(pan_zero: np.ndarray | None, ms_zero: np.ndarray | None) -> np.ndarray | None:
    """A fill of zeros (``fill_areas``) of the inputs that declare no nodata value: ``pan_zero`` / ``ms_zero`` are
    the zero pixels (MS: 0 in every band) on the tile's PAN grid, None for an input that declares a value. The MS's
    zeros count on their own, the PAN's data beneath or not (0 in every band is no dark pixel; QA122: an MS-only strip
    steered the kernels and took METHOD auto off KSDiff); the PAN's only where the MS declares a value or agrees (one
    band's 0 can be a shadow)."""
    if ms_zero is not None:
        return fill_areas(ms_zero)
    return None if pan_zero is None else fill_areas(pan_zero)


def may_hold_fill(role: str, info: RasterInfo, stats) -> bool:
    """Whether ``role``'s zeros may be an undeclared fill for ``zero_fill``: its file declares no nodata value, or the
    scene's sample found one its declared value does not cover (``SceneStats.zero_fills``: a value none of the sampled
    pixels hold, QA137's netCDF _FillValue 65535 over a zero edge)."""
    return info.file_nodata is None or role in getattr(stats, "zero_fills", ())


def value_scale(card: ModelCard, ms: RasterInfo, ms_mean: np.ndarray | None = None) -> float:
    """The raw value that maps to 1.0 for the network: the raster's NBITS (or 8-bit range), else the card's scale.

    A 12-bit product fed to an 11-bit model is normalised by its own range, so the network sees the
    value distribution it was trained on. Floating-point data (reflectance 0-1, radiance, x 1e4 ...) has
    no range to go by: the scene's mean MS value (``ms_mean``: per band, as ``SceneStats.ms_mean``) is
    mapped to :data:`TYPICAL_MEAN`, the mean of the training products in model units. Dividing reflectance
    by the card's 2047 left values near 1e-4, under the tile normalisation's floor: ERGAS 5.6 against 1.4
    for GSA on the robustness suite's float case.
    """
    if ms.nbits and ms.dtype.kind in "iu":
        return float(2 ** ms.nbits - 1)
    if ms.dtype == np.uint8:
        return 255.0
    mean = float(np.mean(ms_mean)) if ms_mean is not None else math.nan
    if ms.dtype.kind == "f" and math.isfinite(mean) and mean > 0:
        return mean / TYPICAL_MEAN
    return card.scale


def value_scale_note(card: ModelCard, ms: RasterInfo, scale: float) -> str:
    """What ``value_scale`` divided the values by, and why, for the log: without NBITS the card's scale is the
    model's training scale, not the data's range. QA read "values normalised by 2047" beside "above 4095, the top
    of Pléiades 1A/1B's 12-bit range" as two ceilings for one 12-bit product (UInt16 without NBITS)."""
    if ms.nbits and ms.dtype.kind in "iu":
        return f"values divided by {scale:g}, the MS's {ms.nbits}-bit maximum (NBITS)"
    if ms.dtype == np.uint8:
        return f"values divided by {scale:g}, the 8-bit maximum"
    if scale != card.scale:
        return f"values divided by {scale:.4g}, which maps the MS's scene mean to the training data's"
    # the network normalises each tile itself: a global gain leaves its output unchanged (test_input_range)
    return (f"values divided by {scale:g}, the model's training scale, not the data's range (no NBITS; each tile is "
            "normalised anyway)")


def pan_units(stats, learned: bool = True, scaling: tuple | None = None) -> tuple[float, str | None]:
    """The factor that takes the PAN's values into the MS's units for the network, and a warning, when their scene
    means differ by more than :data:`UNITS_TOLERANCE` (a reflectance PAN with a DN MS, a x 1e4 scaling on one of
    them): the network sees both through one value scale, and a PAN 1e4 times too small lost about half its detail
    under the tile normalisation's floor. The classical methods fit the PAN to the MS per scene: unaffected, yet the
    user mixed product levels, so ``learned`` False (a classical method fuses) still warns, saying so.
    ``scaling``: ((PAN scale, offset), [(scale, offset) per MS band]) the inputs declare (None: neither does); the
    warning then compares their physical values (a float reflectance PAN with a UInt16 MS declaring x 2.75e-05 - 0.2
    is one product level), while the factor stays on the stored values, which the network sees. Data reaching below 0
    are compared from where they end (``data_lifts``): an Int16 product stored as DN - 300 has scene means near or below
    0 that say nothing of its units."""
    lift, pan_lift = data_lifts(stats)   # 0 each unless some value of that input reaches below 0
    ms_mean, pan_mean = float(np.mean(stats.ms_mean)) + lift, float(stats.pan_mean) + pan_lift
    if not (math.isfinite(ms_mean) and math.isfinite(pan_mean) and ms_mean > 0 and pan_mean > 0):
        return 1.0, None
    factor = ms_mean / pan_mean
    if 1 / UNITS_TOLERANCE <= factor <= UNITS_TOLERANCE:
        return 1.0, None
    pan_said = ms_said = "values measured from where their data end" if lift or pan_lift else "values"
    if scaling is not None:
        (p_sc, p_off), ms_pairs = scaling
        means = np.ravel(stats.ms_mean)
        pairs = ms_pairs if len(ms_pairs) == means.size else [ms_pairs[0]] * means.size
        pan_mean = float(stats.pan_mean) * p_sc + p_off
        ms_mean = float(np.mean([m * sc + off for m, (sc, off) in zip(means, pairs)]))
        # said of the input that declares one only (QA: a percent PAN declaring nothing had "its declared scale")
        physical = "physical values (the declared scale/offset applied)"
        pan_said = physical if (p_sc, p_off) != (1.0, 0.0) else "values (no scale/offset declared)"
        ms_said = physical if any(pair != (1.0, 0.0) for pair in pairs) else "values (no scale/offset declared)"
        if not (ms_mean > 0 and pan_mean > 0) or 1 / UNITS_TOLERANCE <= ms_mean / pan_mean <= UNITS_TOLERANCE:
            return factor, None
    shown = ms_mean / pan_mean
    # a factor near 100 is the one likely mix-up to name; others could be DN, radiance, reflectance, scalings
    percent = PERCENT_FACTOR[0] <= max(shown, 1 / shown) <= PERCENT_FACTOR[1]
    guess = ("different units (percent and 0-1 reflectance?)." if percent
             else "different units or quantities (e.g. radiance and reflectance)?")
    return factor, (f"the PAN's {pan_said} (scene mean {pan_mean:.4g}) and the MS's "
                    f"{'' if ms_said == pan_said else ms_said + ' '}(scene mean {ms_mean:.4g}) differ by "
                    f"a factor {shown:.4g}: {guess} "
                    + ("The network gets the PAN scaled by that factor" if learned and shown == factor else
                       f"The network gets the PAN's stored values scaled by {factor:.4g}" if learned else
                       "The classical method fits the PAN to the MS on the scene, so the result is still usable")
                    + "; check that both inputs are the same product level (both digital numbers or both "
                      "reflectance)")


def probe_side(card: ModelCard) -> int:
    """Side of the probe tile: covers the receptive field, a multiple of the model's size multiple."""
    m = card.size_multiple
    need = max(2 * card.margin + 1, PROBE_MIN)
    return -(-need // m) * m


class TileKernels:
    """A KSDiff model's per-tile kernel path on CPU (``model_core/tile_graphs.py``): the prior graph gives
    the tile's merged kernels, written into a copy of the plain backbone graph, which ONNX Runtime then
    runs with its fastest convolutions. Same result as the full graph (checked on the probe tile).

    ``int8``: the card's int8 backbone instead (``model_core/tile_int8.py``); each tile's kernels are
    quantized here, per output channel, with the activation scales fixed at export."""

    def __init__(self, card: ModelCard, session: Session, int8: bool = False, prior=None):
        """``prior``: the prior graph's session of another ``TileKernels`` of the same model (the float32 and
        int8 paths share it: the same kernels, and creating it is most of this constructor's time)."""
        self.ort = ort = runtime.import_onnxruntime()
        meta = session.session.get_modelmeta().custom_metadata_map
        spec = card.data["tile_kernels"]
        self.threads = session.threads
        self.names = list(spec["offsets"])
        self.probe = _probe_inputs(card)
        self._last = None   # the last tile's session (``release``)
        self.prior = prior or ort.InferenceSession(base64.b64decode(meta[spec["prior"]]),
                                                   runtime.session_options(self.threads), providers=[runtime.CPU])
        if int8:
            q = spec["int8"]
            self.backbone = base64.b64decode(meta[q["graph"]])
            self.floats = {name: (int(at), int(n)) for name, (at, n) in q["floats"].items()}
            self.convs = [_Int8Conv(c) for c in q["convs"]]
            # activation scales per contrast class (model_core/tile_int8.py), chosen per tile
            self.edges = [float(e) for e in q["contrast_edges"]]
            self.activations = [(int(a["scale"][0]), int(a["scale"][1]), np.asarray(a["values"], dtype="<f4"))
                                for a in q["activations"]]
            spans = [span for c in self.convs for span in c.spans()] + [(at, n) for at, n, _ in self.activations]
        else:
            self.backbone = base64.b64decode(meta[spec["backbone"]])
            self.floats = {name: (int(at), int(n)) for name, (at, n) in spec["offsets"].items()}
            self.convs, self.edges, self.activations, spans = [], [], [], []
        for at, n in list(self.floats.values()) + spans:
            if at < 0 or at + n > len(self.backbone):
                raise ValueError("a kernel offset lies outside the backbone graph")

    def __call__(self, pan: np.ndarray, lms: np.ndarray, window: tuple[int, int, int, int] | None = None,
                 guard: runguard.RunGuard | None = None) -> np.ndarray:
        """Fuse (1, 1, H, W) and (1, C, H, W); ``window`` (row, col, height, width): the part of the tile the
        kernels are computed from (``prior_window``; None: all of it). ``guard``: a cancel ends its runs."""
        graph = bytearray(self.backbone)
        if window is not None:
            r, c, h, w = window
            pan_p = np.ascontiguousarray(pan[:, :, r:r + h, c:c + w])
            lms_p = np.ascontiguousarray(lms[:, :, r:r + h, c:c + w])
        else:
            pan_p, lms_p = pan, lms
        values = dict(zip(self.names, runguard.run(self.prior, self.names, {"pan": pan_p, "lms": lms_p}, guard)))
        for name, (at, n) in self.floats.items():
            _put(graph, at, n, np.ascontiguousarray(values[name], dtype="<f4"))
        if self.convs:
            k = self.contrast_class(pan_p, values)
            for at, n, scales in self.activations:
                _put(graph, at, n, scales[k])
            for conv in self.convs:
                conv.write(graph, values, k)
        tile = self.ort.InferenceSession(bytes(graph), runtime.session_options(self.threads, shared_arena=True),
                                         providers=[runtime.CPU])
        out = runguard.run(tile, None, {"pan": pan, "lms": lms}, guard)[0]
        self._last = tile   # kept for ``release``, which must not build a session of its own
        return out

    def release(self) -> None:
        """Hand the shared arena's free memory back (end of a run): ONNX Runtime shrinks an arena only at the
        end of a run that asks for it. Without this QGIS kept ~290 MB after a 2048² run (497 against 231 MB).

        Never builds a session and never raises: it runs in cleanup paths, often after an allocation failed, where
        a new session failed in turn and hid the first error (QA: a traceback of pthread_create under prlimit --as).
        The last tile's session runs the small probe tile once with the shrink option, when a tile ran at all."""
        tile, self._last = getattr(self, "_last", None), None
        if tile is None:
            return
        try:
            options = self.ort.RunOptions()
            options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
            pan, lms = self.probe
            tile.run(None, {"pan": pan, "lms": lms}, options)
        except Exception:  # noqa: BLE001 - freeing is best effort: the run's own result or error stands
            pass

    def contrast_class(self, pan: np.ndarray, values: dict[str, np.ndarray]) -> int:
        """The tile's contrast class: ``tile_contrast`` against the calibration edges (``model_core.tile_int8``)."""
        a, b = (float(np.asarray(values[k]).ravel()[0]) for k in ("a", "b"))
        return int(np.searchsorted(self.edges, tile_contrast(pan, a, b), side="left"))


def _put(graph: bytearray, at: int, n: int, value: np.ndarray) -> None:
    raw = value.tobytes()
    if len(raw) != n:
        raise ValueError(f"a per-tile tensor has {len(raw)} bytes where the backbone graph holds {n}")
    graph[at : at + n] = raw


class _Int8Conv:
    """One convolution of the int8 backbone whose kernel changes per tile: symmetric int8 per output
    channel, the bias as int32 at the scale input x kernel (what QLinearConv computes with)."""

    def __init__(self, spec: dict):
        self.weight, self.bias = spec["weight"], spec.get("bias")
        self.bias_values = np.asarray(spec.get("bias_values", []), dtype=np.float32)
        self.x_scales = np.asarray(spec["x_scale"], dtype=np.float32)   # one per contrast class
        self.at = {k: (int(spec[k][0]), int(spec[k][1])) for k in ("w_q", "w_scale", "b_q", "b_scale") if k in spec}

    def spans(self) -> list[tuple[int, int]]:
        return list(self.at.values())

    def write(self, graph: bytearray, values: dict[str, np.ndarray], k: int) -> None:
        """Quantize this tile's kernel into ``graph``; ``k``: the tile's contrast class."""
        w = np.asarray(values[self.weight], dtype=np.float32)
        absmax = np.abs(w.reshape(w.shape[0], -1)).max(axis=1)
        scale = (np.maximum(absmax, np.float32(1e-12)) / np.float32(127)).astype("<f4")
        q = np.clip(np.rint(w / scale[:, None, None, None]), -127, 127).astype(np.int8)
        _put(graph, *self.at["w_q"], q)
        _put(graph, *self.at["w_scale"], scale)
        if "b_q" in self.at:
            bias = np.asarray(values[self.bias], dtype=np.float32) if self.bias else self.bias_values
            b_scale = (self.x_scales[k] * scale).astype("<f4")
            bq = np.clip(np.rint(bias / b_scale), -2**31, 2**31 - 1).astype("<i4")
            _put(graph, *self.at["b_q"], bq)
            _put(graph, *self.at["b_scale"], b_scale)


def _tile_kernels(card: ModelCard, session: Session, pan: np.ndarray, lms: np.ndarray, reference: np.ndarray,
                  int8: bool = False, prior=None, guard: runguard.RunGuard | None = None):
    """The checked ``TileKernels`` of the card's model, or None (no such path, not on CPU, or it disagrees).
    ``prior``: as ``TileKernels``; ``guard``: a cancel ends its runs (Cancelled)."""
    spec = card.data.get("tile_kernels")
    if not spec or session.device != "cpu" or (int8 and "int8" not in spec):
        return None
    try:
        fast = TileKernels(card, session, int8, prior)
        diff = fast(pan, lms, guard=guard) - reference
        if int8:
            ok = float(np.sqrt(np.mean(diff ** 2))) <= INT8_TOLERANCE * float(np.sqrt(np.mean(reference ** 2)))
        else:
            ok = float(np.abs(diff).max()) <= FAST_TOLERANCE * max(1.0, float(np.abs(reference).max()))
    except Cancelled:
        raise   # the user's cancel, not a broken path
    except Exception:  # noqa: BLE001 - a broken fast path only costs speed: the full graph stays
        return None
    return fast if ok else None


def _run(card: ModelCard, session: Session, pan: np.ndarray, lms: np.ndarray, fast=None,
         window: tuple[int, int, int, int] | None = None, guard: runguard.RunGuard | None = None) -> np.ndarray:
    """Run the graph on (1, 1, H, W) and (1, C, H, W) (through ``fast``, a ``TileKernels``, when given, with its
    kernels from ``window``); InputError when it fails or returns the wrong shape; Cancelled when ``guard``'s
    feedback is cancelled meanwhile (the run stops midway)."""
    pan_name, lms_name = card.input_names
    try:
        if fast:
            out = fast(pan, lms, window, guard)
        else:
            out = runguard.run(session.session, [card.output_name], {pan_name: pan, lms_name: lms}, guard)[0]
    except Cancelled:
        raise
    except Exception as e:  # ONNX Runtime raises its own exception types
        # out of memory keeps ONNX Runtime's words alone: the run's memory advice follows (``memory.advice``)
        fix = "" if memory.out_of_memory(e) else ("; check that its card's inputs, bands and margin are the ones it "
                                                  "was exported with, or use a classical method")
        raise InputError(f"the model {card.path.name} failed on a {pan.shape[3]}x{pan.shape[2]} tile: "
                         f"{runtime.ort_words(e).rstrip('.')}{fix}") from None
    want = (1, len(card.bands), pan.shape[2], pan.shape[3])
    if tuple(getattr(out, "shape", ())) != want:
        raise InputError(
            f"the model {card.path.name} returns an array of shape {tuple(getattr(out, 'shape', ()))} for a "
            f"{pan.shape[3]}x{pan.shape[2]} tile; its card promises {want} ({len(card.bands)} bands, same size)"
        )
    return out


def output_fault(name: str, out: np.ndarray, inputs: tuple[np.ndarray, ...], scale: float = 1.0) -> str | None:
    """Why the network output ``out`` (model units) is unusable, in words, or None: NaN or infinite values, or values
    beyond ``ABSURD_FACTOR`` times the data's range (the larger of 1 and the largest of ``inputs``, in model units).
    ``scale``: the data's value of 1.0 in model units, for the message. Ends before "it is broken"."""
    if not np.isfinite(out).all():
        return f"the model {name} returned NaN or infinite values"
    bound = _bound(inputs)
    if float(np.abs(out).max()) <= bound:
        return None
    signed = float(out.flat[int(np.argmax(np.abs(out)))])
    return (f"the model {name} returned values absurdly far outside the data's range (as large as "
            f"{signed * scale:.3g}, more than {ABSURD_FACTOR:g} times the data's range, "
            f"{bound / ABSURD_FACTOR * scale:.4g} here)")


def _bound(inputs: tuple[np.ndarray, ...]) -> float:
    """``ABSURD_FACTOR`` times the data's range in model units: the larger of 1 and the largest of ``inputs``."""
    return ABSURD_FACTOR * max([1.0] + [float(np.nanmax(np.abs(a))) for a in inputs if a.size])


def _faulty(out: np.ndarray, inputs: tuple[np.ndarray, ...]) -> np.ndarray:
    """Where ``output_fault`` finds ``out`` unusable: NaN, infinite or beyond ``_bound``."""
    with np.errstate(invalid="ignore"):
        return ~(np.abs(out) <= _bound(inputs))


def check_graph(card: ModelCard, session: Session, guard: runguard.RunGuard | None = None) -> None:
    """The graph has the card's tensors and turns a small probe tile into sane values of the right shape
    (``output_fault``); ``guard``: a cancel ends the probe (Cancelled)."""
    # sessions are cached per ONNX file's content; the card beside it may have changed since the last probe, so
    # it is compared on every run (QA: an edit after a first run was accepted), the graph probed once per key
    embedded = session.session.get_modelmeta().custom_metadata_map.get("model_card")
    inside = None if embedded is None else parse_embedded(embedded, card.path)   # None: not JSON, no card of ours
    if inside is not None and inside != {k: v for k, v in card.data.items() if k != "onnx_sha256"}:
        # the hash proves the ONNX file; the copy of the card inside it proves the JSON beside it
        raise InputError(edited_card(card.path))   # load_card compares them first; this is the session's own copy
    key = (card.input_names, card.output_name, len(card.bands), card.margin, card.size_multiple)
    if session.probed == key:
        return
    inputs = [i.name for i in session.session.get_inputs()]
    outputs = [o.name for o in session.session.get_outputs()]
    for role, name in zip(("pan", "lms"), card.input_names):
        if name not in inputs:
            raise InputError(f"the model card of {card.path.name} names the {role} input {name!r}, but the graph's "
                             f"inputs are {', '.join(inputs)}")
    if card.output_name not in outputs:
        raise InputError(f"the model card of {card.path.name} names the output {card.output_name!r}, but the "
                         f"graph's outputs are {', '.join(outputs)}")
    ramp, lms = _probe_inputs(card)
    out = _run(card, session, ramp, lms, guard=guard)   # the full graph: the reference
    fault = output_fault(card.path.name, out, (ramp, lms), card.scale)
    if fault:
        bad = _faulty(out, (ramp, lms))
        raise InputError(f"{fault} on {bad.mean():.0%} of a {ramp.shape[3]}x{ramp.shape[2]} test tile: it is broken")
    session.tile_kernels = _tile_kernels(card, session, ramp, lms, out, guard=guard)
    session.tile_int8 = None   # built and checked when first asked for (int8_path)
    session.probed = key


def _probe_inputs(card: ModelCard) -> tuple[np.ndarray, np.ndarray]:
    """A smooth ramp in the normalised range (PAN, LMS): any sane network maps it to finite values."""
    side = probe_side(card)
    ramp = np.linspace(0.2, 0.8, side * side, dtype=np.float32).reshape(1, 1, side, side)
    return ramp, np.concatenate([ramp * np.float32(0.8 + 0.1 * b) for b in range(len(card.bands))], axis=1)


def int8_path(card: ModelCard, session: Session, guard: runguard.RunGuard | None = None):
    """The session's checked int8 ``TileKernels`` (built on first use), or None when the model has none."""
    if session.tile_int8 is None and session.tile_kernels is not None and "int8" in card.data["tile_kernels"]:
        ramp, lms = _probe_inputs(card)
        reference = _run(card, session, ramp, lms, guard=guard)
        session.tile_int8 = _tile_kernels(card, session, ramp, lms, reference, int8=True,
                                          prior=session.tile_kernels.prior, guard=guard) or False
    return session.tile_int8 or None


def checked_session(card: ModelCard, device: str, threads: int, guard: runguard.RunGuard | None = None) -> Session:
    """A session for the card's model that passed ``check_graph``; CUDA failing at its first run falls back to CPU.
    ``guard``: a cancel ends the probe runs (Cancelled).

    A model with a per-tile kernel path gets its full graph on CPU unoptimised (``runtime.get_session``): only the
    probe runs on it. Should that path fail its check, the graph runs every tile and is created again, optimised."""
    tiled = bool(card.data.get("tile_kernels"))
    session = runtime.get_session(str(card.path), device, threads, reference_on_cpu=tiled, sha256=card.sha256)
    try:
        check_graph(card, session, guard)
    except InputError as e:
        if session.device != "cuda":
            raise
        session = runtime.cpu_fallback(session, str(card.path), threads, runtime.short_error(e), card.sha256)
        check_graph(card, session, guard)   # the model itself is broken if it fails on CPU too
    if session.tile_kernels is None and not session.optimised:
        session = runtime.get_session(str(card.path), device, threads, sha256=card.sha256)
        check_graph(card, session, guard)
    return session


def loaded_session(card: ModelCard, device: str, threads: int, precision: str = DEFAULT_PRECISION) -> Session:
    """Everything a run loads once per model (``checked_session``, and the int8 path when ``precision`` asks for
    it), as the pipeline's fuser then finds it: for timing or warming that loading apart from a run."""
    session = checked_session(card, device, threads)
    if precision == "int8":
        int8_path(card, session)
    return session


class OnnxFuser:
    """Runs the model on one tile: normalise, pad to the model's size multiple, infer, crop, de-normalise.

    ``bands``: the model's bands as positions among the tile's bands, in the model's order (``BandPlan.model``); the
    others are fused by MTF-GLP-HPM and every band keeps its place. None: the tile holds the model's bands in order.
    ``guard``: a cancel ends the network's runs in progress (``runguard``; None: they run to their end).
    ``noise_pull``: take the output towards MTF-GLP-HPM where the PAN's detail is noise (``engine/noise.py``); the
    delivered tiles' step, not the self-check's. ``net_crop``: PAN pixels each side of a tile that only other steps
    need (the pull's or the other bands' MTF-GLP-HPM context): the network runs on the tile less that ring, so it sees
    what it sees without those steps (2 more pixels of mirrored margin cost it 1.2-2.0 % ERGAS on one-tile scenes).
    """

    def __init__(self, card: ModelCard, session: Session, scale: float, precision: str = DEFAULT_PRECISION,
                 consistency: bool = True, bands: list[int] | None = None, pan_factor: float = 1.0,
                 noise_pull: bool = False, net_crop: int = 0, guard: runguard.RunGuard | None = None):
        self.guard = guard
        check_graph(card, session, guard)
        self.card, self.session, self.scale = card, session, np.float32(scale)
        self.pan_scale = np.float32(scale / pan_factor)   # a PAN in other units than the MS (``pan_units``)
        self.bands = bands
        self.consistency = consistency   # project each tile onto the MS its context carries (``consistency``)
        self.noise_pull = noise_pull
        self.net_crop = net_crop
        # the per-tile kernel path when the probe checked it; its int8 variant when asked for
        self.precision = precision
        self.fast = (int8_path(card, session, guard) if precision == "int8" else None) or session.tile_kernels
        # values damped by soft_floor over this fuser's tiles (tiles run in parallel), of the values written (every
        # band's): the range line's count (``TileContext.counted``)
        self.floored = 0
        self.values = 0
        # of those, how many lie in or next to saturated PAN (``floored_near_saturation``); the PAN's top, when it
        # saturates
        self.floored_near = 0
        self.pan_saturated_at: float | None = None
        self.windowed = 0     # tiles with nodata whose kernels came from their data (``prior_window``)
        self.unwindowed = 0   # such tiles on the full graph, which cannot do that
        self._count_lock = threading.Lock()

    def release(self) -> None:
        """Free the memory the run's per-tile sessions left in the shared arena (call once the tiles are done)."""
        if self.fast is not None:
            self.fast.release()

    @property
    def precision_used(self) -> str:
        """'int8' when the tiles run the int8 path, else 'fp32' (PRECISION int8 without a checked int8 variant on
        this device runs float32)."""
        return "int8" if self.fast is not None and self.fast is not self.session.tile_kernels else "fp32"

    def path_note(self) -> str:
        """How the tiles run, for the log: the precision in plain words (QA: PRECISION fp32 was said as "per-tile
        kernels on the plain backbone", never "float32")."""
        if self.precision_used == "int8":
            return "tiles run in int8 (PRECISION int8)"
        graph = "" if self.fast is not None else " on the whole graph"
        if self.precision == "int8":
            return f"tiles run in float32{graph}: this model has no checked int8 variant on this device"
        return f"tiles run in float32 (PRECISION fp32){graph}"

    def window_note(self) -> str | None:
        """How many tiles with nodata took their kernels from a data-only part (or could not: the full graph),
        or None when no tile had nodata."""
        notes = []
        if self.windowed:
            notes.append(f"{self.windowed} tile(s) with nodata (or a fill of zeros) took their kernels from their "
                         "largest data-only rectangle (the model's tile context leaves them out)")
        # a model without kernels (model_core's bare FusionNet) only ever runs whole (QA: it was told of kernels and
        # a CPU run's pixels on the CPU); only a CPU session takes the per-tile path, which a GPU run lacks
        if self.unwindowed and not self.card.data.get("tile_kernels"):
            notes.append(f"{self.unwindowed} tile(s) with nodata ran the whole network on their filled holes "
                         "(pixels next to a hole see its fill)")
        elif self.unwindowed:
            notes.append(f"{self.unwindowed} tile(s) with nodata ran the full graph, whose kernels also see the "
                         "filled nodata" + (" (pixels near holes may differ from a CPU run's)"
                                            if self.session.device != "cpu" else ""))
        return "; ".join(notes) or None

    def floor_note(self) -> str | None:
        """What soft_floor did over the run, or None when no value needed it."""
        if not self.floored:
            return None
        # one plain line on every KSDiff run: what happened, and the one cause it can check (QA: "as is usual over
        # water and shadow" was said of a cloud scene where most of them lay in or beside the saturated PAN)
        shown = percent(self.floored, self.values)   # not "0.000%" for a few hundred of millions
        # of the values written, as the range line counts them (QA: tiles with their margins, 5.01% of 2334784 beside
        # that line's 1440000)
        text = (f"{self.floored} of {self.values} fused values ({shown}) came out under {FLOOR_FRACTION:.0%} of the "
                "MS's value there and were eased smoothly towards black instead of overshooting below it")
        if self.pan_saturated_at is not None:
            text += (f"; {self.floored_near / self.floored:.0%} of them lie in or within {saturation.NEAR_PIXELS} "
                     f"pixels of saturated PAN (at {self.pan_saturated_at:g})")
        return text + "."

    def _floored_near_saturation(self, pan: np.ndarray, before: np.ndarray, after: np.ndarray,
                                 ctx: TileContext) -> int:
        """How many of the values soft_floor changed (``before`` -> ``after``) lie in or within ``NEAR_PIXELS`` of
        the tile's PAN at its scene top, when the PAN saturates there (``SceneStats.pan_top``); 0 otherwise."""
        top = getattr(ctx.stats, "pan_top", None)
        if top is None or not top.saturated:
            return 0
        self.pan_saturated_at = top.value
        at_top = pan >= top.value
        if not at_top.any():
            return 0
        near = grow_mask(at_top, saturation.NEAR_PIXELS)
        if ctx.counted is not None:
            near &= ctx.counted
        return int(np.count_nonzero((after != before) & near[None]))

    def __call__(self, pan: np.ndarray, lms: np.ndarray, ctx: TileContext) -> np.ndarray:
        written = pan.size if ctx.counted is None else int(np.count_nonzero(ctx.counted))
        with self._count_lock:   # every band's values: the other bands' are fused by a classical method
            self.values += written * lms.shape[0]
        if self.bands is None:
            return self._fuse(pan, lms, ctx)
        if len(self.bands) == lms.shape[0]:   # the model's bands in another order
            out = np.empty(lms.shape, dtype=np.float32)
        else:
            out = np.asarray(FUSERS[BEST_CLASSICAL](pan, lms, ctx), dtype=np.float32)
        sub = dataclasses.replace(ctx, gains=tuple(ctx.gains[b] for b in self.bands),
                                  ms=None if ctx.ms is None else ctx.ms[self.bands])
        out[self.bands] = self._fuse(pan, lms[self.bands], sub, self.bands)
        return out

    def _fuse(self, pan: np.ndarray, lms: np.ndarray, ctx: TileContext, bands: list[int] | None = None) -> np.ndarray:
        """The model on its bands (``bands``: their places among the scene's, for the scene statistics)."""
        h, w = pan.shape
        lift, pan_lift = (np.float32(v) for v in data_lifts(ctx.stats))
        # values the scene statistics screened as far outside the data would wreck the whole tile's normalisation:
        # the network sees them clipped to the data's range (the steps after it see them as they are)
        screened = getattr(ctx.stats, "screened", None)
        net_pan, net_lms = outliers.clamp(pan, lms, screened, bands)
        stored_pan = pan   # the saturation count compares the stored values with the scene's top
        if lift:   # data reaching below 0: the network sees them from where they end, as a DN product's
            lms = lms + lift
            net_lms = lms if screened is None else net_lms + lift
            ctx = dataclasses.replace(ctx, ms=None if ctx.ms is None else ctx.ms + lift)
        if pan_lift:   # the noise pull's P / P_L needs a PAN that ends at 0 or above, as the MS
            pan, net_pan = pan + pan_lift, net_pan + pan_lift
            ctx = dataclasses.replace(ctx, stats=dataclasses.replace(ctx.stats, pan_mean=ctx.stats.pan_mean + pan_lift))
        m = self.card.size_multiple
        c = self.net_crop if min(h, w) > 2 * self.net_crop + m else 0
        valid = ctx.valid if not c or ctx.valid is None else ctx.valid[c:h - c, c:w - c]
        hn, wn = h - 2 * c, w - 2 * c
        ph, pw = (-hn) % m, (-wn) % m
        p = net_pan[None, None, c:c + hn, c:c + wn] / self.pan_scale
        x = net_lms[None, :, c:c + hn, c:c + wn] / self.scale
        if ph or pw:
            p = np.pad(p, ((0, 0), (0, 0), (0, ph), (0, pw)), mode="symmetric")
            x = np.pad(x, ((0, 0), (0, 0), (0, ph), (0, pw)), mode="symmetric")
        # the per-tile path can take a tile's kernels from its data only; the full graph sees the whole tile
        window = prior_window(valid)
        unwindowed = window is not None and self.fast is None
        if unwindowed:
            window = None
        p, x = np.ascontiguousarray(p, dtype=np.float32), np.ascontiguousarray(x, dtype=np.float32)
        out = _run(self.card, self.session, p, x, self.fast, window, self.guard)[0, :, :hn, :wn]
        # NaN would silently become nodata, 3e38 inf once scaled back (written as the top value): a model that
        # produces either is broken, not the data; refused before any of the tile is written
        fault = output_fault(self.card.path.name, out, (p, x), float(self.scale))
        if fault:
            raise InputError(f"{fault} {_place(ctx, _faulty(out, (p, x)), c)}: it is broken for this data")
        if c:   # the ring only other steps read as context (never written: it is within the tile's margin)
            out = np.pad(out, ((0, 0), (c, c), (c, c)), mode="edge")
        x = lms / self.scale
        if self.noise_pull:
            out = noise.pull(out, pan, x, ctx)
        if self.consistency and ctx.ms is not None:   # before the floor: the step may move values either way
            out = consistency.project(out, ctx.ms / self.scale, ctx.ms_origin, ctx.gains, ctx.ratio, real=ctx.ms_real)
        # lifted data end at 0 or above: the floor is measured from the lifted zero
        floored, n = soft_floor(out, x, counted=ctx.counted)
        near = self._floored_near_saturation(stored_pan, out, floored, ctx) if n else 0
        out = floored
        with self._count_lock:
            self.floored += n
            self.floored_near += near
            self.windowed += window is not None
            self.unwindowed += unwindowed
        with np.errstate(over="ignore", invalid="ignore"):
            out = out * self.scale
            out = out - lift if lift else out
        if not np.isfinite(out).all():   # sane in model units, beyond float32 in the data's (an extreme scale)
            raise InputError(f"the model {self.card.path.name} returned values that are NaN or infinite once scaled "
                             f"back to the data's units (x {self.scale:.4g}) "
                             f"{_place(ctx, ~np.isfinite(out), 0)}: it is broken for this data")
        return out


def _place(ctx: TileContext, bad: np.ndarray, crop: int) -> str:
    """Where the first of the ``bad`` values (C, h, w) lies, in words: the PAN row and column inside the scene (a
    tile's array starts at its margin, which may reach beyond the scene: QA read "row -33, column -33"), preferring
    the values the tile writes; ``crop``: pixels of the tile left out each side of ``bad``; ``ctx.place`` instead
    when the array is no part of the scene's grid (the self-check's reduced-resolution copies)."""
    if ctx.place:
        return ctx.place
    hit = bad.any(axis=0)
    for keep in (ctx.counted, ctx.valid):
        if keep is not None:
            inside = hit & keep[crop:crop + hit.shape[0], crop:crop + hit.shape[1]]
            if inside.any():
                hit = inside
                break
    r, c = (int(v[0]) for v in np.nonzero(hit))
    return (f"on the tile at PAN row {max(0, ctx.origin[0] + crop + r)}, column {max(0, ctx.origin[1] + crop + c)} "
            "(its first such value)")
