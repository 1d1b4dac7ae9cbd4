"""Where the inputs top out below their data type, and the fused values above that top, so they are never silent.

An 11-bit WorldView-2 product stored as plain UInt16 without NBITS holds 0-2047, yet its type holds 65535: the
writer's clipping (``clipping.ClipCounter``) sees nothing above 2047. Where the inputs saturate (PAN and MS clipped at
2047 over bright roofs, clouds, snow) and disagree, every method extrapolates past the top: a gain-saturated crop of
WorldView-2 pair 1 (QA, PAN top 15 % and MS top 25 % at 2047) came back with ~18 % of the values above 2047, up to
6687 (MTF-GLP-HPM 6201), without a word. The run now says so with the counts per band and how to clip them.

The top is the sensor's nominal one (``Sensor.scale``: 2047 for an 11-bit sensor) when both inputs' sampled values keep
within it; without a sensor range, the inputs' own highest sampled value when it is a saturation plateau (at least
``PLATEAU_SHARE`` of an input's sampled values sit exactly at it, ``SPIKE`` times as many as at the next lower value;
on the real WorldView-2 and Landsat 8 fixtures the highest value is held by 1-6 pixels, 0.00001 of them, and data
quantised to a few levels hold no more at their top level than below it). Fused values are not clamped: they are
said, and ``CREATE_OPTIONS NBITS=`` clips them (``clipping.ClipCounter`` then counts what it clipped).

Floating-point inputs (reflectance) have no type top, nor a sensor's nominal one (that is in DN, not in the
product's units): their top is the inputs' highest sampled value, saturated or not. QA's reflectance copy of
WorldView-2 pair 1 (inputs at most 0.5997) came back with fused values up to 1.92 unsaid; 260 of its 1.44 million
values lie above it (0.018 %: a log line, a warning above ``WARN_FRACTION`` as for integers). A value counts above
it as soon as it exceeds it (nothing rounds it back).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .feedback import Feedback
from .labels import method as label
from .labels import param
from .numbers import share as percent
from .raster_io import RasterInfo, value_range

PLATEAU_SHARE = 1e-3   # this share of an input's sampled values exactly at its highest one: saturated there
WARN_FRACTION = 0.001  # as ``clipping.WARN_FRACTION``: a warning above 0.1 % of the fused values, else a log line
SPIKE = 4.0            # ... and this many times as many as at the next lower value (not a coarse quantisation's top)
MOSTLY = 0.5           # a saturated share above this: the self-check says its figures rest on the rest
NEAR_PIXELS = 3        # "next to saturated PAN": within this many PAN pixels of it


@dataclass(frozen=True)
class Top:
    """An input's highest valid value over the scene statistics' sample, the share of sampled values at it, and how
    many times more values sit at it than at the next lower value the sample holds."""

    value: float = -math.inf
    share: float = 0.0
    spike: float = 0.0
    # per band, how many sampled values need each bit width (index: bits; 0, fractions and negatives at 0): the share
    # an output's NBITS would clip in each band (``shares_above``); and how many values were sampled in all
    widths: tuple[tuple[int, ...], ...] = ()
    sampled: int = 0

    def shares_above(self, bits: int) -> list[float]:
        """Each band's share of its sampled values above ``2**bits - 1``, the top of a ``bits``-bit output (whole
        values). Per band: pooled over 8 bands, one band's 0.8 % clipped was 0.1 % of all (QA136)."""
        return [sum(w[bits + 1:]) / sum(w) if sum(w) else 0.0 for w in self.widths]

    @property
    def saturated(self) -> bool:
        """Whether the input piles up at its top (clipped by the sensor or the product): a plateau of at least
        ``PLATEAU_SHARE`` of its values, ``SPIKE`` times the next value's count. Not a lone bright pixel, and not the
        top level of coarsely quantised data, which holds no more values than the levels below it."""
        return math.isfinite(self.value) and self.share >= PLATEAU_SHARE and self.spike >= SPIKE


class TopTracker:
    """Follows one input's two highest valid values and their counts over the scene sample (a ``read_decimated``
    sample hook), and each band's bit widths."""

    def __init__(self, then=None, bands: int = 1):
        """``then``: the hook the values pass first (``inrange.RangeGuard.sample``: what is fused is what counts).
        ``bands``: the input's; ``read_decimated`` and ``read_footprint`` hand each window's bands in turn, in order."""
        self.then = then
        self.counts: dict[float, int] = {}   # the two highest distinct values seen, and how many sit at each
        self.sampled = 0
        self.widths = [np.zeros(0, np.int64) for _ in range(bands)]   # ``Top.widths``
        self.calls = 0   # bands handed so far: the next one's index, modulo ``bands``

    def __call__(self, arr: np.ndarray, ok: np.ndarray) -> np.ndarray:
        if self.then is not None:
            arr = self.then(arr, ok)
        v = arr.ravel() if ok.all() else arr[ok]   # no copy of the usual all-valid window
        self.sampled += v.size
        b = self.calls % len(self.widths)
        self.calls += 1
        if v.size:   # frexp's exponent of a whole value above 0 is its bit length (a fraction's is below 0)
            widths = np.bincount(np.maximum(np.frexp(np.maximum(v, 0))[1].ravel(), 0))
            self.widths[b] = np.pad(self.widths[b], (0, max(0, widths.size - self.widths[b].size)))
            self.widths[b][:widths.size] += widths
        # a window's two highest values: the scene's second highest is among them wherever it occurs (a window
        # holding two values above it would hold a value above the scene's highest)
        below = math.inf
        for _ in range(2):
            top = float(np.max(v, where=v < below, initial=-math.inf)) if v.size else -math.inf
            if top == -math.inf:
                break
            self.counts[top] = self.counts.get(top, 0) + int(np.count_nonzero(v == top))
            below = top
        for value in sorted(self.counts)[:-2]:
            del self.counts[value]
        return arr

    def top(self) -> Top:
        """What was seen, as a ``Top``."""
        if not self.counts:
            return Top()
        values = sorted(self.counts)
        n = self.counts[values[-1]]
        below = self.counts[values[-2]] if len(values) > 1 else 0
        widths = tuple(tuple(int(n) for n in w) for w in self.widths)
        return Top(values[-1], n / self.sampled, n / below if below else math.inf, widths, self.sampled)


@dataclass(frozen=True)
class Ceiling:
    """The highest value the fused product can hold by its inputs, and why."""

    value: float
    why: str        # "the top of WorldView-2's 11-bit range" / "the inputs' own top"
    pan: Top
    ms: Top
    floating: bool = False   # a floating-point output: kept as it is, no NBITS
    type_bits: int = 0       # an integer output's type width (16 for UInt16): NBITS at it clips nothing more

    @property
    def counted_from(self) -> float:
        """The smallest fused value counted above the ceiling: an integer output rounds up to ceiling + 0.5 back to
        it; a floating-point one keeps any value above it. The float strips and output are float32: the next float32
        up (float64's next value compared with a float32 array becomes the ceiling itself, QA: every value exactly at
        2047 counted as above it)."""
        if self.floating:
            return float(np.nextafter(np.float32(self.value), np.float32(math.inf)))
        return self.value + 0.5


def ceiling(pan: RasterInfo, ms: RasterInfo, pan_top: Top, ms_top: Top, sensor_scale: float, sensor_name: str,
            out_nbits: int | None) -> Ceiling | None:
    """The fused values' ceiling below the output type's top, or None: unsigned integer inputs (not when the output
    declares a bit depth: NBITS, the writer clips at it and ``ClipCounter`` says so), or floating-point inputs by their
    highest value (signed integer data have no such top)."""
    if pan.dtype.kind == ms.dtype.kind == "f":
        highest = max(pan_top.value, ms_top.value)
        if not math.isfinite(highest):
            return None
        saturated = any(t.saturated and t.value == highest for t in (pan_top, ms_top))
        return Ceiling(highest, "the inputs' own top" if saturated else "the inputs' highest value", pan_top, ms_top,
                       floating=True)
    if pan.dtype.kind != "u" or ms.dtype.kind != "u":
        return None
    type_top, width = float(np.iinfo(ms.dtype).max), np.iinfo(ms.dtype).bits
    if value_range(ms.dtype, out_nbits)[1] < type_top:
        return None
    highest = max(pan_top.value, ms_top.value)
    if not math.isfinite(highest):
        return None
    if 0 < sensor_scale < type_top and highest <= sensor_scale:
        bits = math.log2(sensor_scale + 1)
        depth = f"{bits:.0f}-bit " if bits.is_integer() else ""
        return Ceiling(sensor_scale, f"the top of {sensor_name}'s {depth}range", pan_top, ms_top, type_bits=width)
    if highest < type_top and any(t.saturated and t.value == highest for t in (pan_top, ms_top)):
        return Ceiling(highest, "the inputs' own top", pan_top, ms_top, type_bits=width)
    return None


def _clip_hint(top: float, floating: bool = False, type_bits: int = 0) -> str:
    """How to clip the output at ``top``: the NBITS creation option that does, or comes nearest (integer output, when
    narrower than the type: NBITS=16 on UInt16 clips nothing), else the Raster Calculator."""
    calc = f"the Raster Calculator's min(value, {top:.6g})"
    bits = max(1, int(top).bit_length())
    if floating or (type_bits and bits >= type_bits):
        return f"to clip them at {top:.6g}, use {calc}"
    if top == 2 ** bits - 1:
        return f"to clip them at {top:g}, add NBITS={bits} to {param('CREATE_OPTIONS')}"
    return f"NBITS={bits} in {param('CREATE_OPTIONS')} clips them at {2 ** bits - 1} ({calc} at {top:g})"


def saturated_shares(pan: Top, ms: Top, value: float) -> list[str]:
    """'93.1% of the sampled PAN values', ... for each input saturated at ``value``."""
    return [f"{t.share:.1%} of the sampled {role} values" for role, t in (("PAN", pan), ("MS", ms))
            if t.saturated and t.value == value]


def sample_note(pan: Top | None, ms: Top | None) -> str:
    """'93% of the scene's sampled PAN values are saturated at 2047: ...' when most of an input is (more than
    ``MOSTLY``), else '': the self-check's figures come mostly from the rest (QA: a 93 % saturated scene, unsaid)."""
    most = max((t for t in (pan, ms) if t is not None and t.saturated), key=lambda t: t.share, default=None)
    if most is None or most.share <= MOSTLY:
        return ""
    role = "PAN" if most is pan else "MS"
    rest = 1 - most.share
    if rest < 0.0005:   # one decimal would say '100.0%' and 'the other 0.0%' (QA121: '100% ... the other 0%')
        return (f"almost all of the scene's sampled {role} values are saturated at {most.value:g}: the figures "
                f"above come from the few others (under 0.1%)")
    return (f"{most.share:.1%} of the scene's sampled {role} values are saturated at {most.value:g}: the figures "
            f"above come mostly from the other {rest:.1%}")


def clip_cause(pan: Top | None, ms: Top | None, high: float) -> str:
    """Why values lie past an integer output's top ``high`` when the inputs saturate at it ('' otherwise): the
    writer's clip count then says so (QA: "92% out of range" on a cloudy NBITS=11 scene, with no word of its
    saturation)."""
    shares = saturated_shares(pan or Top(), ms or Top(), high)
    return f"the inputs saturate at {high:g} ({', '.join(shares)})" if shares else ""


def report(fb: Feedback, method: str, ceil: Ceiling, above: np.ndarray, valid: int, maximum: float,
           names: list[str], clipped: str = "") -> str | None:
    """Log the fused values above the ceiling (``above``: per band, of ``valid`` pixels): a warning above
    ``WARN_FRACTION`` of the values (returned), a log line below it, nothing when there are none. ``clipped``: those
    of them the writer clipped at the type's top ('the 33552 above 65535, clipped to 65535': ``top_note``)."""
    total = int(above.sum())
    if not total:
        return None
    share = total / max(valid * len(above), 1)
    per_band = ", ".join(f"{n}: {int(c)}" for n, c in zip(names, above) if c)
    saturated = saturated_shares(ceil.pan, ceil.ms, ceil.value)
    # EXP (the upsampled MS) sees no PAN: its cubic interpolation rings past the top beside the MS's plateaus
    past = ("the MS's cubic upsampling overshoots past it beside them" if method == "exp" else
            "where the PAN and the MS disagree there the fusion extrapolates past it")
    cause = (f"the inputs saturate at {ceil.value:.6g} ({', '.join(saturated)}), and {past}" if saturated
             else "no input pixel holds such a value: the fusion extrapolates past the inputs' range where the PAN "
                  "and the MS disagree" if ceil.floating else "the sensor delivers no such value")
    top, peak = (f"{ceil.value:.6g}", f"{maximum:.4g}") if ceil.floating else (f"{ceil.value:g}", f"{maximum:.1f}")
    msg = (f"{label(method)}: {percent(total, valid * len(above))} of the fused values lie above {top}, {ceil.why} "
           f"({total} values; max {peak}; "
           f"{per_band}): {cause}. They are written as they are{f', except {clipped}' if clipped else ''}; "
           f"{_clip_hint(ceil.value, ceil.floating, ceil.type_bits)}.")
    if share > WARN_FRACTION:
        fb.warning(msg)
        return msg
    fb.info(msg)
    return None
