"""A batch row whose output another run is writing right now (two batches on one list): wait for that run to end.

Dask-free: ``scenes.run_scene`` calls it on a cluster worker; ``stopped`` tells it the batch was stopped."""
from __future__ import annotations

import time
from collections.abc import Callable

from .raster_io.partials import live_partials

BUSY_WAIT = 600.0   # seconds: longer than a scene of the lists QA timed (seconds to a few minutes each)
BUSY_POLL = 0.5     # seconds between two looks at the other run's temporary file


def never_stopped() -> bool:
    return False


def wait_for_writer(output: str, stopped: Callable[[], bool] = never_stopped, limit: float | None = None) -> bool:
    """Wait until no live run holds a temporary file of ``output`` (``partials.live_partials``); True once none does,
    False when ``limit`` seconds (``BUSY_WAIT`` when None) passed first or ``stopped()`` turned true."""
    deadline = time.monotonic() + (BUSY_WAIT if limit is None else limit)
    while live_partials(output):
        if stopped() or time.monotonic() > deadline:
            return False
        time.sleep(BUSY_POLL)
    return True
