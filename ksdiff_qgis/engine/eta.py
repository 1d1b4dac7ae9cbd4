"""Two lines for large scenes: the output's size before the tiles, and the time left once a few tiles are done.

QA: a 40000² scene ran for hours with no word on what it would write or how long it would take. Kept to two lines:
no per-tile messages.
"""
from __future__ import annotations

import time
from collections.abc import Callable

LARGE_MPX = 100.0       # PAN megapixels from which a run says its output's size and time left
FIRST_SHARE = 0.02      # of the tiles, or FIRST_SECONDS, whichever comes first, before the time left is told
FIRST_SECONDS = 10.0


def is_large(pan_width: int, pan_height: int) -> bool:
    """True for a scene of at least LARGE_MPX megapixels of PAN."""
    return pan_width * pan_height >= LARGE_MPX * 1e6


def _size(nbytes: float) -> str:
    return f"{nbytes / 2**30:.1f} GB" if nbytes >= 2**30 else f"{nbytes / 2**20:.0f} MB"


def size_line(pan_width: int, pan_height: int, file_bytes: int | None, raw_bytes: int) -> str:
    """The line before the tiles: ``file_bytes`` as the space check measured it (None: not measured, then the
    uncompressed size as an upper bound)."""
    mpx = pan_width * pan_height / 1e6
    size = (f"about {_size(file_bytes)} (measured on sample blocks)" if file_bytes
            else f"at most {_size(raw_bytes)} (uncompressed)")
    return (f"Large scene ({mpx:,.0f} Mpx of PAN): the output will take {size} on disk; the time left is told once "
            f"the first tiles are done.")


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class TimeLeft:
    """Says once, after FIRST_SHARE of ``total`` tiles or FIRST_SECONDS, how long the rest should take at the
    measured rate."""

    def __init__(self, total: int, say: Callable[[str], None], clock: Callable[[], float] = time.monotonic):
        self.total, self.say, self.clock = total, say, clock
        self.start = clock()
        self.told = False

    def after(self, done: int) -> None:
        """Called after each tile with the number done so far."""
        if self.told or done <= 0 or done >= self.total:
            return
        spent = self.clock() - self.start
        if done < FIRST_SHARE * self.total and spent < FIRST_SECONDS:
            return
        self.told = True
        left = spent / done * (self.total - done)
        self.say(f"About {_duration(left)} left: {done} of {self.total} tiles fused in {_duration(spent)}.")
