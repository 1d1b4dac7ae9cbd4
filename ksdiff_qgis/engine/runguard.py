"""A cancel that stops the network midway: ONNX Runtime's ``RunOptions.terminate`` set on the runs in progress.

ONNX Runtime checks that flag between the graph's nodes (inside a Loop's iterations too) and then fails the run. A
shared model whose graph runs for tens of seconds per tile could not be stopped before (QA: a ~45 s graph, cancel
asked at 3 s, the run returned after 22.8 s)."""
from __future__ import annotations

import threading
from typing import Callable

from . import memlimits, runtime
from .errors import Cancelled

POLL_SECONDS = 0.1   # how often the watcher asks whether the user cancelled while a run is in progress
IDLE_SECONDS = 2.0   # the watcher ends after this long without a run in progress (the next run starts another)


class RunGuard:
    """Runs ONNX Runtime sessions so that a cancel ends the runs in progress.

    One watcher thread per guard, alive only while runs are in progress (and ``IDLE_SECONDS`` after: tiles follow each
    other without a thread each), asks ``is_cancelled`` every ``POLL_SECONDS`` and then sets ``terminate`` on every
    run in progress; those runs raise ``Cancelled``. Thread-safe: the tile workers share one guard.

    Under an address-space limit (``ulimit -v``) no watcher starts: its thread took 64-72 MB of the address space
    (its stack and a malloc arena; measured under ``test_memory_limit_auto``'s limit: 628 MB in use without it, 700
    with it), which a run there needs for its tiles; a cancel then ends the run after the network call in progress,
    as the tile loop's own checks do."""

    def __init__(self, is_cancelled: Callable[[], bool]):
        self.is_cancelled = is_cancelled
        self.watch = memlimits.address_space_room() is None
        self._active: dict[int, object] = {}   # the RunOptions of the runs in progress, by id
        self._cond = threading.Condition()
        self._watcher: threading.Thread | None = None

    def run(self, session, outputs: list[str] | None, feed: dict) -> list:
        """``session.run(outputs, feed)``, ended by a cancel: Cancelled then (also when it was asked before)."""
        if self.is_cancelled():
            raise Cancelled("cancelled by the user")
        if not self.watch:
            return session.run(outputs, feed)
        options = runtime.import_onnxruntime().RunOptions()
        # the engine says it was cancelled in its own words, not ONNX Runtime's red "terminate flag" line
        options.log_severity_level = runtime.ORT_LOG_FATAL
        with self._cond:
            self._active[id(options)] = options
            if self._watcher is None:
                self._watcher = threading.Thread(target=self._watch, name="ksdiff-cancel-watch", daemon=True)
                self._watcher.start()
            self._cond.notify()
        try:
            return session.run(outputs, feed, options)
        except Exception:
            if options.terminate:   # whatever the run said while it was being stopped: the user cancelled
                raise Cancelled("cancelled by the user") from None
            raise
        finally:
            with self._cond:
                self._active.pop(id(options), None)

    def _watch(self) -> None:
        with self._cond:
            while True:
                if not self._active:
                    self._cond.wait(IDLE_SECONDS)
                    if not self._active:
                        self._watcher = None
                        return
                    continue
                self._cond.wait(POLL_SECONDS)
                if self._active and self._cancelled():
                    for options in self._active.values():
                        options.terminate = True

    def _cancelled(self) -> bool:
        try:
            return bool(self.is_cancelled())
        except Exception:  # noqa: BLE001 - a feedback gone with its dialog: the run's own checks decide
            return False


def run(session, outputs: list[str] | None, feed: dict, guard: RunGuard | None = None) -> list:
    """``session.run(outputs, feed)``, through ``guard`` when given (a cancellable run), else plainly (model_core,
    the tests, a warm-up: nothing to cancel)."""
    if guard is None:
        return session.run(outputs, feed)
    return guard.run(session, outputs, feed)
