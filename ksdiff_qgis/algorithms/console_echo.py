"""A failed run's message said once by ``qgis_process``.

QGIS 3.22's ``qgis_process`` prints every Critical message of the message log to stderr, and a run that raises
QgsProcessingException logs its message there twice (``QgsProcessingAlgorithm::run``'s catch, then
``QgsProcessingFeedback::reportError``) besides printing it as ``ERROR:`` — its own native algorithms show every
error three times too (``native:rasterlayerstatistics BAND=9``). One line is kept: the ``ERROR:`` line, or with
``--json`` (which prints no ``ERROR:`` line, and no JSON for a failed run) the first echo. The dialog (its log and
the Log Messages panel) and ``processing.run`` (the exception, the feedback's log) are untouched.
"""
from __future__ import annotations

from qgis.core import QgsApplication
from qgis.PyQt.QtCore import QThread, QTimer

QGIS_PROCESS = "qgis_process"   # QgsApplication.platform() of the standalone tool


def _mute_until_idle(log) -> None:
    """Block the log's signals until control is back in the event loop: QGIS logs the failure synchronously while
    the exception unwinds, anything logged after that is heard again."""
    log.blockSignals(True)
    QTimer.singleShot(0, lambda: log.blockSignals(False))


def quiet_log_echo(message: str) -> bool:
    """Under ``qgis_process`` only: let the failure ``message`` about to be raised reach the console once. True when
    the echo is handled."""
    if QgsApplication.platform() != QGIS_PROCESS:
        return False
    log = QgsApplication.messageLog()
    # only from the log's own thread (qgis_process runs the algorithm there), and not twice
    if log is None or log.signalsBlocked() or log.thread() != QThread.currentThread():
        return False
    if "--json" not in QgsApplication.arguments():
        _mute_until_idle(log)
        return True

    def heard(text: str, _tag: str, _level) -> None:
        # qgis_process's own printer was connected first: it has printed this one already
        if text.strip() == message.strip():
            log.messageReceived.disconnect(heard)
            _mute_until_idle(log)

    log.messageReceived.connect(heard)
    return True
