"""Count fused values the output type cannot hold, so clipping is never silent.

A learned network can return negative values or values above the range of the MS data type; the
writer clips them (``raster_io.to_dtype``). This counter sees every final strip before that and the
pipeline logs the totals per run: a warning when more than :data:`WARN_FRACTION` of the pixels were hit.
"""
from __future__ import annotations

import math

import numpy as np

from .errors import shown_name
from .feedback import Feedback
from .numbers import share

WARN_FRACTION = 0.001   # 0.1 % of the valid pixels


class ClipCounter:
    """Accumulates, over the strips of one run, how many valid values fell below ``low`` / above ``high``."""

    def __init__(self, high: float, band_names: list[str] | None = None, clipped: bool = True, low: float = 0.0,
                 ceiling: float | None = None, bits: int | None = None, type_name: str | None = None,
                 nodata: float | None = None):
        """``clipped``: the output type clips (integers); a floating-point output keeps the values as they are.
        ``low``: the type's smallest value (0 unsigned; a signed type holds negative values). ``ceiling``: also count
        the values from this one on, above the top the inputs keep to (``saturation.Ceiling.counted_from``; not
        clipped). ``bits``: ``high`` is the top of the data's ``bits``-bit range (NBITS), not the type's;
        ``type_name``: the output type ('UInt16'), for the message. ``nodata``: the integer output's nodata value; a
        valid value written as it is moved one step off it (``raster_io.to_dtype``), and the message says so."""
        self.high, self.low = float(high), float(low)
        self.nodata = None if nodata is None or not clipped or math.isnan(nodata) else float(nodata)
        self.at_nodata = 0   # valid values in range that round to the nodata value
        self.bits, self.type_name = bits, type_name
        self.ceiling = ceiling
        self.over_ceiling: np.ndarray | None = None
        self.names = band_names
        self.clipped = clipped
        self.negative: np.ndarray | None = None
        # a signed integer output keeps values in [low, 0) as they are: counted and said, as a float output's are
        self.kept_negative: np.ndarray | None = None
        self.above: np.ndarray | None = None
        self.valid = 0
        self.minimum, self.maximum = np.inf, -np.inf

    def add(self, strip: np.ndarray) -> None:
        """Count one (C, H, W) float strip; NaN (nodata) pixels are ignored."""
        if self.negative is None:
            self.negative = np.zeros(strip.shape[0], np.int64)
            self.kept_negative = np.zeros(strip.shape[0], np.int64)
            self.above = np.zeros(strip.shape[0], np.int64)
            self.over_ceiling = np.zeros(strip.shape[0], np.int64)
        ok = ~np.isnan(strip).any(axis=0)
        self.valid += int(ok.sum())
        if not ok.any():
            return
        v = strip if ok.all() else strip[:, ok]   # no nodata in the strip: count in place, no copy
        axes = tuple(range(1, v.ndim))
        low, high = self._limits()
        self.negative += np.count_nonzero(v < low, axis=axes)
        if self.clipped and self.low < 0:   # written negative: rint(v) < 0, i.e. v < -0.5 (-0.5 rounds to 0)
            self.kept_negative += np.count_nonzero((v < -0.5) & (v >= low), axis=axes)
        self.above += np.count_nonzero(v >= high if self.clipped else v > high, axis=axes)
        if self.ceiling is not None:
            self.over_ceiling += np.count_nonzero(v >= self.ceiling, axis=axes)
        if self.nodata is not None:   # not clipped, rounded onto nodata: written one step off it
            n = self.nodata
            near = v[(v >= max(n - 0.5, low)) & (v <= n + 0.5) & (v < high)]
            self.at_nodata += int(np.count_nonzero(np.rint(near) == n)) if near.size else 0
        self.minimum = min(self.minimum, float(v.min()))
        self.maximum = max(self.maximum, float(v.max()))

    def _limits(self) -> tuple[float, float]:
        """(v < first: clipped up; v >= second: clipped down) for an integer output: only the values the writer's
        clip changes (``raster_io.to_dtype`` clips, then rounds half to even). An integer type's top is odd and its
        bottom even, so top + 0.5 rounds past the top and bottom - 0.5 back to it: a saturated plateau fused at
        2047.0005 is written as 2047 either way and not counted (QA: 92 % "out of range", 1 % changed). A float
        output: (low, high), below it counted, above it kept."""
        return (self.low - 0.5, self.high + 0.5) if self.clipped else (self.low, self.high)

    def top_note(self) -> str:
        """'the N above TOP, clipped to WRITTEN' for the values the writer clipped at the top, or ''
        (``saturation.report``)."""
        above = int(self.above.sum()) if self.above is not None and self.clipped else 0
        return f"the {above} above {self.high:g}, clipped to {self._off(self.high)}" if above else ""

    def fraction(self) -> float:
        """Share of valid pixel values (all bands) that had to be clipped."""
        if not self.valid or self.negative is None:
            return 0.0
        return float(self.negative.sum() + self.above.sum()) / (self.valid * len(self.negative))

    def _written(self, value: float) -> float:
        """What the writer stores for a valid ``value`` at a limit: one step off the nodata value when it is that."""
        if self.nodata is None or value != self.nodata:
            return value
        return value + 1 if value < self.high else value - 1

    def _nodata_note(self) -> str:
        """The values in range that rounded onto the nodata value and were written one step off it, or ''."""
        if not self.at_nodata:
            return ""
        n = self.nodata
        one = self.at_nodata == 1   # QA119: '1 values that rounded to 0 ... were written as 1'
        return (f"{self.at_nodata} {'value' if one else 'values'} that rounded to {n:g}, the output's nodata value, "
                f"{'was' if one else 'were'} written as {self._written(n):g}")

    def report(self, fb: Feedback, method: str, cause: str = "") -> str:
        """Log the counts: nothing when none were clipped (or moved off the nodata value), info below the threshold,
        else a warning. ``method``: the method as the log names it (its label); ``cause``: why values lie past the top,
        when known ('the inputs saturate at 2047 (...)', ``saturation.clip_cause``), said with them. Returns the
        warning ('' when none), for the run's result (QA134: 100 % clipped was in the log only)."""
        if self.negative is None:
            return ""
        self._report_kept_negative(fb, method)
        below, above = int(self.negative.sum()), int(self.above.sum())
        total = self.valid * len(self.negative)
        moved = self._nodata_note()
        if not (below or above):
            if moved:   # QA: "min 0.0" was said while the output's lowest value is 1, its nodata 0
                fb.info(f"{method}: {moved[0].upper()}{moved[1:]} ({share(self.at_nodata, total)} of {total} fused "
                        f"values), so that {'it does' if self.at_nodata == 1 else 'they do'} not read as nodata.")
            return ""
        # one line each: a band named "a\nINFO: x" made a fake log line
        names = [shown_name(n) for n in self.names or [f"band {i + 1}" for i in range(len(self.negative))]]
        # counts in words, zero counts left out: "Blue: 45 above 2047", "Red: 12 below 0, 3 above 2047"
        per_band = ", ".join(f"{n}: " + ", ".join(f"{int(c)} {word} {limit:g}" for c, word, limit in
                                                  ((a, "below", self.low), (b, "above", self.high)) if c)
                             for n, a, b in zip(names, self.negative, self.above) if a or b)
        if self.clipped:
            # say what the writer did (``raster_io.to_dtype``) and the limit that applied: the data's NBITS top or
            # the type's (QA: "out of the output's range" for UInt16 clipped at 2047)
            top = (f"the {self.bits}-bit maximum (NBITS)" if self.bits else
                   f"the {self.type_name} maximum" if self.type_name else "the output type's maximum")
            bottom = (f"the {self.type_name} minimum" if self.type_name and self.low < 0 else None)
            done = []
            if above:
                done.append(f"those above {self.high:g}, {top}, were written as {self._off(self.high)}")
            if below:
                low = f"{self.low:g}" + (f", {bottom}," if bottom else "")
                done.append(f"those below {low} " + ("as " if above else "were written as ") + self._off(self.low))
            if moved:
                done.append(moved)
            if above and cause:   # last: between the two limits it split the sentence (QA122)
                done.append(cause)
            msg = (f"{method}: {below + above} of {total} fused values ({share(below + above, total)}) were out of "
                   f"range (fused min {self.minimum:.1f}, max {self.maximum:.1f}; {per_band}): "
                   + "; ".join(done) + ".")
        else:   # float: nothing is above the type's range; the negatives are written as they are
            per_band = ", ".join(f"{n}: {int(a)} below 0" for n, a in zip(names, self.negative) if a)
            msg = (f"{method}: {below} of {total} fused values ({share(below, total)}) are negative "
                   f"(min {self.minimum:.4g}; {per_band}); the floating-point output keeps them as they are.")
        if self.fraction() > WARN_FRACTION:
            fb.warning(msg)
            return msg
        fb.info(msg)
        return ""

    def _report_kept_negative(self, fb: Feedback, method: str) -> None:
        """The negative values a signed integer output (Int16, Int32) keeps, counted as a float output's are (QA:
        they were written without a word while a float output's got a count): info, a warning above
        :data:`WARN_FRACTION`."""
        kept = int(self.kept_negative.sum()) if self.kept_negative is not None else 0
        if not kept:
            return
        total = self.valid * len(self.kept_negative)
        names = [shown_name(n) for n in self.names or [f"band {i + 1}" for i in range(len(self.kept_negative))]]
        per_band = ", ".join(f"{n}: {int(a)} below 0" for n, a in zip(names, self.kept_negative) if a)
        msg = (f"{method}: {kept} of {total} fused values ({share(kept, total)}) are negative ({per_band}); the "
               f"{self.type_name or 'signed integer'} output keeps them as they are.")
        (fb.warning if kept / total > WARN_FRACTION else fb.info)(msg)

    def _off(self, limit: float) -> str:
        """``limit`` as written, with why when that is one step off it (the nodata value)."""
        written = self._written(limit)
        return f"{written:g}" if written == limit else f"{written:g} ({limit:g} is the output's nodata value)"
