"""The runs of this plugin's algorithms in progress, so that unloading the plugin can stop them before its provider
goes.

QGIS deletes a provider when it is removed from the registry, but a run's task keeps a copy of the algorithm that
points at it: when a run outlived the provider (the plugin reloaded, upgraded, disabled or uninstalled mid-run),
the task's ``finished()`` asked the copy for its id and QGIS crashed (QA: signal 11 in QgsProcessingAlgorithm::id).
A run counts as over only once the algorithm copy that ran it is deleted: QGIS deletes it with the task, after
``finished()``; ``processing.run`` drops it when it returns. Deleted means its C++ object is gone, whatever Python
still holds (a traceback's frame kept the wrapper alive, and unload waited 30 s for a run long over).

A run on the main thread (``processing.run`` from the console, or an algorithm QGIS runs there) that is still in
``processAlgorithm`` while the plugin unloads has called the unload from its own nested event loop: it can only end
once the unload returns, so the unload does not wait for it (``awaited``).
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
        self.on_main = threading.current_thread() is threading.main_thread()   # QGIS's GUI thread

    def over(self) -> bool:
        """Out of processAlgorithm and its algorithm instance deleted (the Python wrapper gone, or its C++ object)."""
        if self.inside:
            return False
        algorithm = self.algorithm()
        return algorithm is None or _deleted(algorithm)


def _deleted(obj) -> bool:
    """Whether QGIS deleted ``obj``'s C++ object (False for a plain Python object)."""
    from qgis.PyQt import sip

    try:
        return sip.isdeleted(obj)
    except TypeError:   # not a sip wrapper
        return False


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
        _RUNS[:] = [r for r in _RUNS if not r.over()]
        return len(_RUNS)


def awaited() -> int:
    """How many runs not over yet can end while the main thread waits for them: all but those inside
    processAlgorithm on the main thread, whose nested event loop called the waiting code."""
    with _LOCK:
        _RUNS[:] = [r for r in _RUNS if not r.over()]
        return sum(not (r.inside and r.on_main) for r in _RUNS)


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
