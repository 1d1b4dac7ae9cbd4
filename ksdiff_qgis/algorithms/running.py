"""The runs of this plugin's algorithms in progress, so that unloading the plugin can stop them before its provider
goes.

QGIS deletes a provider when it is removed from the registry, but a run's task keeps a copy of the algorithm that
points at it: when a run outlived the provider (the plugin reloaded, upgraded, disabled or uninstalled mid-run),
the task's ``finished()`` asked the copy for its id and QGIS crashed (QA: signal 11 in QgsProcessingAlgorithm::id).
A run counts as over only once the algorithm copy that ran it is deleted: QGIS deletes it with the task, after
``finished()``; ``processing.run`` drops it when it returns.
"""
from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Iterator


class _Run:
    def __init__(self, algorithm, feedback) -> None:
        self.algorithm = weakref.ref(algorithm)
        self.feedback = feedback   # only used while the run is inside processAlgorithm
        self.inside = True


_RUNS: list[_Run] = []
_LOCK = threading.Lock()   # runs start and end on worker threads; the unload reads them on the main thread


@contextlib.contextmanager
def registered(algorithm, feedback) -> Iterator[None]:
    """Around ``processAlgorithm``: the run is known until its algorithm instance is deleted."""
    run = _Run(algorithm, feedback)
    with _LOCK:
        _RUNS.append(run)
    try:
        yield
    finally:
        with _LOCK:
            run.inside, run.feedback = False, None


def pending() -> int:
    """How many runs are not over yet (in processAlgorithm, or their algorithm instance still exists)."""
    with _LOCK:
        _RUNS[:] = [r for r in _RUNS if r.inside or r.algorithm() is not None]
        return len(_RUNS)


def cancel_all(reason: str) -> int:
    """Cancel every run still in processAlgorithm, saying ``reason`` in its log; the number cancelled.
    On the main thread: a task's feedback is deleted there, only after the task has finished."""
    with _LOCK:
        feedbacks = [r.feedback for r in _RUNS if r.inside and r.feedback is not None]
    for feedback in feedbacks:
        with contextlib.suppress(RuntimeError):   # its C++ object already gone: that run is over
            feedback.pushWarning(reason)
            feedback.cancel()
    return len(feedbacks)
