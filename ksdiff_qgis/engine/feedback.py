"""How the engine reports progress and messages, and learns about cancellation, without knowing QGIS."""
from __future__ import annotations

import logging

log = logging.getLogger("ksdiff")


class Feedback:
    """Base feedback: logs messages, never cancels. Subclass it to connect a GUI or a progress bar."""

    def progress(self, fraction: float) -> None:
        """Called after each tile with the fraction of work done (0..1)."""

    def info(self, message: str) -> None:
        log.info(message)

    def warning(self, message: str) -> None:
        log.warning(message)

    def is_cancelled(self) -> bool:
        return False


class RecordingFeedback(Feedback):
    """Keeps every message (warnings prefixed ``WARNING``): for scripts and tests that read the log."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, message: str) -> None:
        self.lines.append(message)

    def warning(self, message: str) -> None:
        self.lines.append("WARNING " + message)


class HeldFeedback(Feedback):
    """Holds messages until ``release`` passes them on, or drops them with itself: what is said about a choice that
    a later check may still refuse (the model a run would use), so that a refused run prints only its refusal."""

    def __init__(self) -> None:
        self.held: list[tuple[bool, str]] = []

    def info(self, message: str) -> None:
        self.held.append((False, message))

    def warning(self, message: str) -> None:
        self.held.append((True, message))

    def release(self, to: Feedback) -> None:
        """Pass the held messages on to ``to``, in order."""
        for warn, message in self.held:
            (to.warning if warn else to.info)(message)
        self.held.clear()
