"""How the engine reports progress and messages, and learns about cancellation, without knowing QGIS."""
from __future__ import annotations

import logging
from typing import Callable

from .errors import Cancelled
from .raster_io.partials import leftover_line

log = logging.getLogger("ksdiff")

# a stage's cancel check: returns, or raises Cancelled (``Feedback.stop_if_cancelled``); loops outside the pipeline
# (model_core, the tests) call the stages without one
Checkpoint = Callable[[], None]


def never_cancelled() -> None:
    """The checkpoint of a stage run outside a cancellable run: it never stops."""


class Feedback:
    """Base feedback: logs messages, never cancels. Subclass it to connect a GUI or a progress bar."""

    def progress(self, fraction: float) -> None:
        """Called with the fraction of the whole run done (0..1, never less than before; 1.0 at the end): the
        statistics, the self-check, the tiles and the final write each report within their share
        (``engine.progress``)."""

    def info(self, message: str) -> None:
        log.info(message)

    def debug(self, message: str) -> None:
        """A diagnostic for whoever studies a run (internal settings, fitted values): QGIS shows it as debug info."""
        log.debug(message)

    def warning(self, message: str) -> None:
        log.warning(message)

    def leftover(self, path: str) -> None:
        """A killed run's temporary file this run removed: said in the log (a batch keeps them for its report)."""
        self.info(leftover_line(path))

    def is_cancelled(self) -> bool:
        return False

    def stop_if_cancelled(self) -> None:
        """Raise Cancelled once the user asked to stop: the check each loop of a run makes at each of its steps
        (window, block, tile, method scored; the progress bar at each report, ``progress.RunProgress``), so that a
        cancel stops the run within one step and nothing more is reported after it."""
        if self.is_cancelled():
            raise Cancelled("cancelled by the user")


class RecordingFeedback(Feedback):
    """Keeps every message (warnings prefixed ``WARNING``, debug info ``DEBUG``) and every progress fraction, with
    the number of messages said before it: for scripts and tests that read the log."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.progress_calls: list[tuple[float, int]] = []   # (fraction, len(lines) then)

    def progress(self, fraction: float) -> None:
        self.progress_calls.append((fraction, len(self.lines)))

    def info(self, message: str) -> None:
        self.lines.append(message)

    def debug(self, message: str) -> None:
        self.lines.append("DEBUG " + message)

    def warning(self, message: str) -> None:
        self.lines.append("WARNING " + message)


class HeldFeedback(Feedback):
    """Holds messages until ``release`` passes them on, or drops them with itself: what is said about a choice that
    a later check may still refuse (the model a run would use), so that a refused run prints only its refusal."""

    def __init__(self) -> None:
        self.held: list[tuple[str, str]] = []   # (level, message)

    def info(self, message: str) -> None:
        self.held.append(("info", message))

    def debug(self, message: str) -> None:
        self.held.append(("debug", message))

    def warning(self, message: str) -> None:
        self.held.append(("warning", message))

    def release(self, to: Feedback) -> None:
        """Pass the held messages on to ``to``, in order."""
        for level, message in self.held:
            getattr(to, level)(message)
        self.held.clear()
