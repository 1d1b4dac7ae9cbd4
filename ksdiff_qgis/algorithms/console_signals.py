"""Ctrl-C under qgis_process during a long GDAL call on the main thread.

qgis_process turns SIGINT into a cancel of the run's feedback through Qt (a socket written by the C signal handler,
read by a ``QSocketNotifier``), which acts only when Qt handles events on the main thread. Nothing does while GDAL
writes a Cloud-Optimized GeoTIFF and its overviews, so a Ctrl-C there was lost and the late result replaced the old
output (QA139 D2). Each cancel check therefore lets Qt handle its pending events first (about 1 µs when none are
pending: no rate limit, which would let a Ctrl-C just before the commit's last check slip through), on the main
thread of a QGIS without a desktop: the desktop runs algorithms in a task thread and takes no SIGINT, and handling its
events mid-run (clicks, the plugin's unloading) could re-enter it.
"""
from __future__ import annotations

from qgis.core import QgsApplication
from qgis.PyQt.QtCore import QCoreApplication, QEventLoop, QThread


def _console_main_thread() -> bool:
    """On the main thread of a QGIS application that is not the desktop (qgis_process, a script)."""
    app = QCoreApplication.instance()
    if app is None or QThread.currentThread() != app.thread():
        return False
    return QgsApplication.platform() != "desktop"


def deliver_pending_signals() -> None:
    """Let Qt handle pending events (a SIGINT qgis_process turns into a cancel), only on the main thread of a QGIS
    without a desktop (``_console_main_thread``)."""
    if _console_main_thread():
        QCoreApplication.processEvents(QEventLoop.ExcludeUserInputEvents)
