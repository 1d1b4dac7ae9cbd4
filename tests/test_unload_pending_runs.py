"""When a run counts as over for the plugin's unload (``algorithms/running.py``), on real QGIS algorithm objects.

Review: a run counted as over only once the Python wrapper of its algorithm was gone, so a lingering reference (a
traceback's frame) kept it pending after QGIS had deleted the C++ object: unload waited 30 s and kept the provider.
And a run inside processAlgorithm on the main thread (unload called from its nested event loop) cannot end while
unload waits for it: unload froze QGIS 30 s. Both now end the wait at once."""
from __future__ import annotations

import threading
import time

from qgis.core import QgsApplication, QgsProcessingFeedback
from qgis.PyQt import sip

from ksdiff_qgis import plugin
from ksdiff_qgis.algorithms import running


def test_a_run_whose_algorithm_qgis_deleted_is_over_whatever_python_holds(qgis_app):
    alg = QgsApplication.processingRegistry().createAlgorithmById("ksdiff:pansharpen")
    with running.registered(alg, QgsProcessingFeedback()):
        assert running.pending() == 1
    assert running.pending() == 1   # its algorithm still exists: the task's finished() may still use it
    held = alg   # as a traceback's frame holds it
    sip.delete(alg)   # QGIS deleted the task and its algorithm
    assert sip.isdeleted(held)
    assert running.pending() == 0
    t0 = time.monotonic()
    assert plugin._stop_runs(wait_s=5) == (0, 0) and time.monotonic() - t0 < 1


def test_unload_does_not_wait_for_a_run_on_the_main_thread_that_called_it(qgis_app):
    """A run inside processAlgorithm on the main thread is cancelled and left pending at once (the provider is kept
    for it); a run on a worker thread is still waited for until it ends."""
    alg = QgsApplication.processingRegistry().createAlgorithmById("ksdiff:pansharpen")
    feedback = QgsProcessingFeedback()
    with running.registered(alg, feedback):
        t0 = time.monotonic()
        assert plugin._stop_runs(wait_s=5) == (1, 1)
        assert time.monotonic() - t0 < 1, "unload waited for a run that can only end after it returns"
        assert feedback.isCanceled()
    del alg
    assert running.pending() == 0

    worker = QgsApplication.processingRegistry().createAlgorithmById("ksdiff:pansharpen")
    feedback, inside, release = QgsProcessingFeedback(), threading.Event(), threading.Event()

    def run():
        with running.registered(worker, feedback):
            inside.set()
            while not feedback.isCanceled():   # as processAlgorithm ends on a cancel
                time.sleep(0.01)
            release.wait(5)

    thread = threading.Thread(target=run)
    thread.start()
    inside.wait(5)
    threading.Timer(0.5, release.set).start()
    threading.Timer(0.6, lambda: sip.delete(worker)).start()   # the task deleted after its finished()
    t0 = time.monotonic()
    assert plugin._stop_runs(wait_s=5) == (1, 0)
    assert 0.4 < time.monotonic() - t0 < 3
    thread.join()
