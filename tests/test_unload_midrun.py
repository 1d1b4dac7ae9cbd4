"""The plugin unloaded (Plugin Reloader, Plugin Manager upgrade/disable/uninstall) while one of its algorithms runs.

QA: QGIS crashed (signal 11) when the run's task finished: unload() had deleted the provider, which the task's copy
of the algorithm still used (QgsProcessingAlgRunnerTask::finished -> QgsProcessingAlgorithm::id). Now unload()
cancels the run, waits until its task has finished, and only then removes the provider. The run is driven in a
child process, as the dialog drives it (a QgsProcessingAlgRunnerTask on QGIS's task manager): a crash fails the test
instead of killing pytest.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

DRIVER = r"""
import json, os, sys, time
root, alg_id, params, marker = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
sys.path.insert(0, root)
sys.path.insert(0, "/usr/share/qgis/python/plugins")
from qgis.testing import start_app
app = start_app()
from processing.core.Processing import Processing
Processing.initialize()
from qgis.core import (QgsApplication, QgsProcessingAlgRunnerTask, QgsProcessingContext, QgsProcessingFeedback,
                       QgsProject)
import ksdiff_qgis
plugin = ksdiff_qgis.classFactory(None)
plugin.initProcessing()
alg = QgsApplication.processingRegistry().createAlgorithmById(alg_id)
context = QgsProcessingContext()
context.setProject(QgsProject.instance())
warnings, infos = [], []
class Feedback(QgsProcessingFeedback):
    def pushWarning(self, text):
        warnings.append(text)
        super().pushWarning(text)
    def pushInfo(self, text):
        infos.append(text)
        super().pushInfo(text)
feedback = Feedback()
ok, why = alg.checkParameterValues(params, context)
assert ok, why
task = QgsProcessingAlgRunnerTask(alg, params, context, feedback)
ended = []
# as Processing's dialog does when its run ends (its history entry): the algorithm's id, read from its provider
task.executed.connect(lambda ok, results: ended.append((ok, alg.id())))
QgsApplication.taskManager().addTask(task)
t0 = time.monotonic()
def started():   # the line said as the long part of the run starts: well inside processAlgorithm
    return any(line.startswith(marker) for line in infos)
while not started() and not ended and time.monotonic() - t0 < 120:
    app.processEvents()
    time.sleep(0.02)
started = started()
# an open dialog of the algorithm: after the provider is deleted it would hold an algorithm that uses it
from qgis.gui import QgsProcessingAlgorithmDialogBase
from qgis.PyQt import sip
class Dialog(QgsProcessingAlgorithmDialogBase):   # abstract in C++, as Processing's AlgorithmDialog subclasses it
    def getParameterValues(self):
        return {}
dialog = Dialog()
dialog.setAlgorithm(QgsApplication.processingRegistry().createAlgorithmById(alg_id))
dialog.show()
t1 = time.monotonic()
plugin.unload()
dialog_open = not sip.isdeleted(dialog) and dialog.isVisible()
unload_s = time.monotonic() - t1
providers = [p.id() for p in QgsApplication.processingRegistry().providers()].count("ksdiff")
while not ended and time.monotonic() - t0 < 300:
    app.processEvents()
    time.sleep(0.02)
for _ in range(20):   # the task's deletion, after finished()
    app.processEvents()
print(json.dumps({"started": started, "ended": ended, "unload_s": unload_s, "providers": providers,
                  "dialog_open": dialog_open, "warnings": warnings,
                  "left": sorted(os.listdir(os.path.dirname(list(params.values())[-1])))}))
sys.stdout.flush()
os._exit(0)   # the result is printed; QGIS's own exit is not what this test is about
"""


def _scaled(src: Path, dst: Path, factor: int) -> str:
    """``src`` resampled ``factor`` times larger (cubic), a real scene big enough to take a few seconds."""
    from osgeo import gdal

    gdal.Translate(str(dst), str(src), widthPct=100 * factor, heightPct=100 * factor, resampleAlg="cubic")   # closed
    return str(dst)


def _run_and_unload(alg_id: str, params: dict, marker: str) -> dict:
    """Run ``alg_id`` on ``params`` (its output last, alone in its folder) in a child process, unload the plugin once
    the log says ``marker``, and return what the child saw."""
    res = subprocess.run([sys.executable, "-c", DRIVER, str(ROOT), alg_id, json.dumps(params), marker],
                         capture_output=True, text=True, timeout=600,
                         env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert res.returncode == 0, f"QGIS died (rc {res.returncode}) after the plugin's unload:\n{res.stderr[-3000:]}"
    report = json.loads(res.stdout.strip().splitlines()[-1])
    assert report["started"], "the run had not reached its long part before the unload"
    assert report["ended"] == [[False, alg_id]], "the run was not cancelled by the unload"
    assert any("plugin is being unloaded" in w for w in report["warnings"]), report["warnings"]
    assert report["unload_s"] < 30, "unload() waited for the whole run"
    assert report["providers"] == 0, "the provider stayed registered after the run stopped"
    assert not report["dialog_open"], "the algorithm's dialog stayed open with an algorithm whose provider is gone"
    assert report["left"] == [], "the cancelled run left files behind"
    return report


def test_unload_mid_pansharpen_cancels_the_run_and_qgis_survives_its_end(cached, tmp_path):
    pan = _scaled(cached("wv2/pair1_pan.tif"), tmp_path / "pan.tif", 2)
    ms = _scaled(cached("wv2/pair1_ms.tif"), tmp_path / "ms.tif", 2)
    (tmp_path / "out").mkdir()
    _run_and_unload("ksdiff:pansharpen", {"PAN": pan, "MS": ms, "SENSOR": "wv2", "METHOD": "ksdiff",
                                          "PRECISION": "fp32", "OUTPUT": str(tmp_path / "out" / "fused.tif")},
                    "Fusing with")


def test_unload_mid_assess_cancels_the_run(cached, tmp_path):
    from osgeo import gdal

    pan = _scaled(cached("wv2/pair1_pan.tif"), tmp_path / "pan.tif", 2)
    ms = _scaled(cached("wv2/pair1_ms.tif"), tmp_path / "ms.tif", 2)
    fused = str(tmp_path / "fused.tif")   # the MS on the PAN's grid: what an EXP fusion starts from
    gt, (w, h) = gdal.Open(pan).GetGeoTransform(), (gdal.Open(pan).RasterXSize, gdal.Open(pan).RasterYSize)
    gdal.Warp(fused, ms, xRes=gt[1], yRes=-gt[5], outputBounds=(gt[0], gt[3] + gt[5] * h, gt[0] + gt[1] * w, gt[3]),
              resampleAlg="cubic")
    (tmp_path / "out").mkdir()
    _run_and_unload("ksdiff:assess", {"FUSED": fused, "PAN": pan, "MS": ms, "SENSOR": "wv2",
                                      "OUTPUT_HTML": str(tmp_path / "out" / "report.html")},
                    "Full-resolution assessment")
