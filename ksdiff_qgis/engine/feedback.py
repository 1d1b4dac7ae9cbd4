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
