"""The run's progress bar: each stage of a run reports its own 0..1, mapped onto its share of the bar.

A stage's share is in proportion to its estimated seconds (the rates below, measured on the bench scenes on a
2-core CPU: only their ratios matter). QA saw the bar at 0 for the statistics and the self-check (1.1-1.3 s of a
3 s run on WorldView-2 pair 1) and then jump: now the statistics report per window read, the self-check per method
scored, the tiles per tile, and the final write its own last share; the bar never moves back and ends at 1.0.
"""
from __future__ import annotations

from .feedback import Feedback

# seconds per million PAN pixels (measured: WorldView-2 pair 1, 600x600 ratio 4; the Landsat 8 crop, 1253x1205
# ratio 2; the 256x256 fixture)
STATS_RATE = 0.4            # the statistics' windows read (0.10 s for 0.36 Mpx, 0.43 s for 1.05 Mpx)
CHECK_LEARNED_RATE = 3.0    # the self-check's learned model on a window and its context (0.9 s for 0.33 Mpx)
CHECK_CLASSICAL_RATE = 0.15  # a classical candidate on the same, with its figures (0.05 s for 0.33 Mpx)
TILE_LEARNED_RATE = 3.5     # the learned tiles (1.4 s for 0.36 Mpx, 4.1 s for 1.5 Mpx)
TILE_CLASSICAL_RATE = 0.4   # MTF-GLP-HPM's tiles (0.13 s for 0.36 Mpx, 0.6 s for 1.5 Mpx); the others are faster
COG_RATE = 0.4              # the Cloud-Optimized GeoTIFF's copy with overviews (0.15 s for 0.36 Mpx, 0.5 s for 1.5)
MODEL_LOAD_SECONDS = 0.7    # an ONNX Runtime session for a bundled model (0.5-1.0 s)
FINAL_SHARE = 0.01          # the final write's share at least: a plain GeoTIFF's close and rename take ~ms


def mpx(pixels: float) -> float:
    """Millions of pixels."""
    return pixels / 1e6


class Span:
    """A stage's own progress (0..1) mapped onto [start, end] of the run's bar."""

    def __init__(self, bar: RunProgress, start: float, end: float):
        self.bar, self.start, self.end = bar, start, end

    def __call__(self, fraction: float) -> None:
        # exactly ``end`` when the stage is done: a caller may wait for that value (the last tile)
        self.bar.report(self.end if fraction >= 1.0 else self.start + (self.end - self.start) * max(0.0, fraction))


class RunProgress:
    """The bar shared out among a run's stages (name -> estimated seconds, in run order; the last one is the final
    write, kept at least ``FINAL_SHARE``). A stage gets its share of what is left when it starts, so a stage
    re-estimated on the way (``estimate``: the tiles once the self-check chose the method) is shared out right."""

    def __init__(self, feedback: Feedback, stages: dict[str, float]):
        self.fb = feedback
        self.costs = {name: max(0.0, s) for name, s in stages.items()}
        self.last = list(stages)[-1]
        total = sum(self.costs.values())
        self.final_share = max(FINAL_SHARE, self.costs[self.last] / total if total > 0 else 0.0)
        self.at = 0.0      # where the stages started so far end
        self.shown = 0.0   # what was reported (never less than before)

    def estimate(self, name: str, seconds: float) -> None:
        """A stage not yet started, re-estimated (0: skipped)."""
        self.costs[name] = max(0.0, seconds)

    def stage(self, name: str) -> Span:
        """The span of the stage ``name``, which starts now: the stages before it that did not start are skipped."""
        names = list(self.costs)
        for skipped in names[:names.index(name)]:
            del self.costs[skipped]
        if name == self.last:
            del self.costs[name]
            return Span(self, self.at, 1.0)
        limit = 1.0 - self.final_share
        rest = [n for n in self.costs if n != self.last]
        cost = self.costs.pop(name)
        if len(rest) == 1:   # the last stage before the write ends exactly at the write's share
            end = limit
        else:
            total = sum(self.costs[n] for n in rest if n != name) + cost
            end = self.at + (limit - self.at) * (cost / total if total > 0 else 0.0)
        span = Span(self, self.at, max(self.at, end))
        self.at = span.end
        return span

    def report(self, value: float) -> None:
        """Pass ``value`` on when it is further than what was shown. Every report is a cancel check, before it (no
        progress is shown after a cancel) and after it (a cancel while it was shown stops the stage before its next
        step): Cancelled then (``Feedback.stop_if_cancelled``)."""
        self.fb.stop_if_cancelled()
        value = min(1.0, value)
        if value > self.shown:
            self.shown = value
            self.fb.progress(value)
            self.fb.stop_if_cancelled()

    def finish(self) -> None:
        """The run is done: the bar at 1.0. No cancel check: the output is written by then, a late cancel changes
        nothing."""
        self.costs.clear()
        if self.shown < 1.0:
            self.shown = 1.0
            self.fb.progress(1.0)
