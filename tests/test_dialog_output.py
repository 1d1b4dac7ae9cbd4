"""The dialog's way of running: a background task, then Processing loads the outputs into the project."""
from __future__ import annotations

import time

import pytest


def _run_like_dialog(alg_id: str, params: dict, timeout: float = 120.0):
    """Run ``alg_id`` as AlgorithmDialog does: QgsProcessingAlgRunnerTask, then handleAlgorithmResults."""
    from processing.gui.Postprocessing import handleAlgorithmResults
    from processing.tools import dataobjects
    from qgis.core import QgsApplication, QgsProcessingAlgRunnerTask, QgsProcessingFeedback

    alg = QgsApplication.processingRegistry().createAlgorithmById(alg_id)
    feedback = QgsProcessingFeedback()
    context = dataobjects.createContext(feedback)
    done: dict = {}
    task = QgsProcessingAlgRunnerTask(alg, params, context, feedback)
    task.executed.connect(lambda ok, results: done.update(ok=ok, results=results))
    QgsApplication.taskManager().addTask(task)
    t0 = time.time()
    while "ok" not in done and time.time() - t0 < timeout:
        QgsApplication.processEvents()
        time.sleep(0.02)
    assert done.get("ok"), f"task failed or timed out: {done}"
    assert handleAlgorithmResults(alg, context, feedback, False, done["results"])
    return done["results"]


@pytest.fixture()
def project(qgis_app, data_dir):
    """QgsProject.instance() holding the WV-2 PAN and MS as layers; emptied afterwards."""
    from qgis.core import QgsProject, QgsRasterLayer

    proj = QgsProject.instance()
    proj.clear()
    pan = QgsRasterLayer(str(data_dir / "wv2_pan.tif"), "wv2 pan")
    ms = QgsRasterLayer(str(data_dir / "wv2_ms.tif"), "wv2 ms")
    assert pan.isValid() and ms.isValid()
    proj.addMapLayers([pan, ms])
    yield proj, pan, ms
    proj.clear()


def _new_layers(proj, before: set):
    return [lyr for lid, lyr in proj.mapLayers().items() if lid not in before]


@pytest.mark.parametrize("typed_path", [False, True])
def test_dialog_loads_fused_raster(project, tmp_path, typed_path):
    from qgis.core import QgsProcessing, QgsProcessingOutputLayerDefinition, QgsProject

    proj, pan, ms = project
    dest = str(tmp_path / "fused.tif") if typed_path else QgsProcessing.TEMPORARY_OUTPUT
    out = QgsProcessingOutputLayerDefinition(dest, QgsProject.instance())
    before = set(proj.mapLayers())
    results = _run_like_dialog("ksdiff:pansharpen", {"PAN": pan.id(), "MS": ms.id(), "SENSOR": "wv2",
                                                     "METHOD": "brovey", "OUTPUT": out})
    new = _new_layers(proj, before)
    assert len(new) == 1, "the fused raster was not loaded into the project"
    layer = new[0]
    assert layer.isValid() and layer.bandCount() == 4
    assert layer.source() == results["OUTPUT"]
    if typed_path:
        assert results["OUTPUT"] == dest
    else:
        # a temporary output has no meaningful file name: name it after the method and the MS layer
        assert layer.name() == "Weighted Brovey – wv2 ms"
    # natural colour: red, green, blue = the sensor's Red, Green, Blue bands (B, G, R, NIR -> 3, 2, 1)
    renderer = layer.renderer()
    assert renderer.type() == "multibandcolor"
    assert (renderer.redBand(), renderer.greenBand(), renderer.blueBand()) == (3, 2, 1)
    assert renderer.redContrastEnhancement() is not None


def test_a_rerun_onto_a_loaded_output_shows_the_new_pixels(project, tmp_path):
    """Run twice onto one file the project shows: Processing reuses the loaded layer, which must read the new file
    (it kept showing the first run's pixels under the second run's name: the writer renames the new file into
    place)."""
    from osgeo import gdal
    from qgis.core import QgsPointXY, QgsProcessingOutputLayerDefinition, QgsProject

    proj, pan, ms = project
    dest = str(tmp_path / "fused.tif")
    params = {"PAN": pan.id(), "MS": ms.id(), "SENSOR": "wv2"}
    _run_like_dialog("ksdiff:pansharpen", {**params, "METHOD": "exp",
                                           "OUTPUT": QgsProcessingOutputLayerDefinition(dest, QgsProject.instance())})
    (layer,) = [lyr for lyr in proj.mapLayers().values() if lyr.source() == dest]
    ds = gdal.Open(dest)
    gt = ds.GetGeoTransform()
    point = QgsPointXY(gt[0] + 101.5 * gt[1], gt[3] + 101.5 * gt[5])
    ds = None
    _run_like_dialog("ksdiff:pansharpen", {**params, "METHOD": "brovey",
                                           "OUTPUT": QgsProcessingOutputLayerDefinition(dest, QgsProject.instance())})
    ds = gdal.Open(dest)
    on_disk = float(ds.GetRasterBand(1).ReadAsArray(101, 101, 1, 1)[0, 0])
    ds = None
    shown = [lyr for lyr in proj.mapLayers().values() if lyr.source() == dest]
    assert shown, "the output is not in the project"
    for lyr in shown:
        value, ok = lyr.dataProvider().sample(point, 1)
        assert ok and value == on_disk, (value, on_disk)


def test_output_declares_rgb_colour_interpretation(qgis_app, data_dir, tmp_path):
    """Any GIS opening the file sees which bands are red, green and blue (GDAL colour interpretation)."""
    import processing
    from osgeo import gdal

    out = str(tmp_path / "o.tif")
    processing.run("ksdiff:pansharpen", {"PAN": str(data_dir / "wv2_pan.tif"), "MS": str(data_dir / "wv2_ms.tif"),
                                         "SENSOR": "wv2", "METHOD": "exp", "OUTPUT": out})
    ds = gdal.Open(out)
    got = [gdal.GetColorInterpretationName(ds.GetRasterBand(i).GetColorInterpretation()) for i in range(1, 5)]
    assert got[:3] == ["Blue", "Green", "Red"] and got[3] != "Alpha"
    assert not (tmp_path / "o.tif.aux.xml").exists()   # stored in the GeoTIFF itself, not a sidecar


def test_assess_report_through_task(project, tmp_path):
    """ksdiff:assess in the background task: the report is written where the dialog said."""
    from qgis.core import QgsProcessingOutputLayerDefinition, QgsProject

    proj, pan, ms = project
    fused = str(tmp_path / "fused.tif")
    _run_like_dialog("ksdiff:pansharpen", {"PAN": pan.id(), "MS": ms.id(), "SENSOR": "wv2", "METHOD": "exp",
                                           "OUTPUT": QgsProcessingOutputLayerDefinition(fused, QgsProject.instance())})
    html = str(tmp_path / "report.html")
    results = _run_like_dialog("ksdiff:assess", {"FUSED": fused, "PAN": pan.id(), "MS": ms.id(), "SENSOR": "wv2",
                                                 "OUTPUT_HTML": html})
    assert results["OUTPUT_HTML"] == html and "<html" in open(html, encoding="utf-8").read()
    # the dialog lists an HTML output in its results viewer (it loads no layer for assess)
    from qgis.core import QgsApplication, QgsProcessingOutputHtml

    alg = QgsApplication.processingRegistry().algorithmById("ksdiff:assess")
    assert isinstance(alg.outputDefinition("OUTPUT_HTML"), QgsProcessingOutputHtml)


def test_dialog_starts_on_plausible_pair(project, data_dir, monkeypatch):
    """PAN picker on the one-band layer, MS on the overlapping multi-band one, whatever layer is active."""
    from unittest import mock

    import processing.gui.ParametersPanel as panel_module
    from qgis.core import QgsRasterLayer

    proj, pan, ms = project
    other = QgsRasterLayer(str(data_dir / "l8_ms.tif"), "landsat elsewhere")   # multi-band, far away
    proj.addMapLayer(other)
    from processing.gui.AlgorithmDialog import AlgorithmDialog
    from qgis.core import QgsApplication

    iface = mock.MagicMock()
    iface.mapCanvas.return_value = iface.browserModel.return_value = None
    iface.activeLayer.return_value = ms       # the user last clicked the MS layer
    monkeypatch.setattr(panel_module, "iface", iface)
    # what processing.createAlgorithmDialog does, without a main window
    dialog = AlgorithmDialog(QgsApplication.processingRegistry().createAlgorithmById("ksdiff:pansharpen"))
    try:
        wrappers = dialog.mainWidget().wrappers
        assert wrappers["PAN"].parameterValue() == pan.id()
        assert wrappers["MS"].parameterValue() == ms.id()
    finally:
        dialog.deleteLater()


def test_no_plausible_pair_no_defaults(qgis_app):
    """Without project layers (qgis_process, scripts) PAN and MS have no default."""
    from qgis.core import QgsApplication, QgsProject

    QgsProject.instance().clear()
    alg = QgsApplication.processingRegistry().createAlgorithmById("ksdiff:pansharpen")
    assert alg.parameterDefinition("PAN").defaultValue() is None
    assert alg.parameterDefinition("MS").defaultValue() is None


HELP_ITEMS = ("Sensor", "Method", "Area of interest", "MS bands (advanced)", "Memory and threads",
              "Precision (advanced)", "Consistency (advanced, on by default)", "Co-register (advanced, off by default)",
              "Output (advanced)")


def test_help_panel_lists_one_short_item_per_parameter_group(qgis_app, monkeypatch):
    """The dialog's help panel shows the pansharpen help as a list, one short item per parameter group with its label
    in bold (QA: one long paragraph for Sensor, MS bands, area of interest, memory, threads, Precision, Consistency,
    Co-register, then Output, Method); shortHelpString stays plain text, one line per item, for qgis_process."""
    from unittest import mock

    import processing.gui.ParametersPanel as panel_module
    from qgis.core import QgsApplication
    from qgis.PyQt.QtGui import QFont
    from qgis.PyQt.QtWidgets import QTextBrowser

    alg = QgsApplication.processingRegistry().createAlgorithmById("ksdiff:pansharpen")
    text = alg.shortHelpString()
    lines = [line for line in text.splitlines() if line.startswith("- ")]
    assert "<" not in text and [line[2:].split(": ", 1)[0] for line in lines] == list(HELP_ITEMS), lines
    assert all(len(line) <= 260 for line in lines), [len(line) for line in lines]
    iface = mock.MagicMock()
    iface.mapCanvas.return_value = iface.browserModel.return_value = iface.activeLayer.return_value = None
    monkeypatch.setattr(panel_module, "iface", iface)
    dialog = alg.createCustomParametersWidget(None)   # what processing.createAlgorithmDialog opens
    try:
        panel = dialog.findChild(QTextBrowser, "textShortHelp")
        doc = panel.document()
        blocks = [doc.findBlockByNumber(i) for i in range(doc.blockCount())]
        items = [b for b in blocks if b.textList() is not None]
        assert [b.text().split(": ", 1)[0] for b in items] == list(HELP_ITEMS)
        assert items[0].textList().count() == len(HELP_ITEMS)   # one list holds them all
        for b in items:   # the label in bold, the rest not
            label = b.text().split(": ", 1)[0]
            assert b.begin().fragment().text() == label and b.begin().fragment().charFormat().fontWeight() >= QFont.Bold
        plain = [b.text() for b in blocks if b.textList() is None and b.text()]
        assert plain[0] == "Pansharpen (KSDiff)" and plain[1].startswith("Fuses a panchromatic (PAN) band")
        assert plain[-1].startswith("Bundled KSDiff models:")
    finally:
        dialog.deleteLater()


def test_help_says_what_a_run_writes_beside_and_into_the_output_and_reads_from_the_layer(qgis_app):
    """The help panel names the README's behaviours (QA: it said none of them): the natural-colour .qml beside the
    output (only KSDiff's replaced), the provenance metadata, and the layer's nodata settings."""
    from qgis.core import QgsApplication

    text = QgsApplication.processingRegistry().createAlgorithmById("ksdiff:pansharpen").shortHelpString()
    for said in ("fused.qml", "only a style KSDiff wrote is ever replaced or removed", "TIFFTAG_SOFTWARE", "KSDIFF_*",
                 "Layer Properties > Transparency", "'No data value' unticked"):
        assert said in text, said


def test_help_html_lists_item_lines():
    """help_html: runs of "- Label: text" lines become one list each, other lines paragraphs, all escaped."""
    from ksdiff_qgis.algorithms.helptext import help_html

    out = help_html("T", "Intro & more\n- A: one\n- B (x): two < three\nBetween\n- no label here\n")
    assert out == ('<h2>T</h2><p>Intro &amp; more</p><ul style="-qt-list-indent:0; margin-left:14px">'
                   "<li><b>A</b>: one</li><li><b>B (x)</b>: two &lt; three</li></ul><p>Between</p>"
                   '<ul style="-qt-list-indent:0; margin-left:14px"><li>no label here</li></ul>')


def test_help_says_ksdiff_needs_onnx_runtime_and_how_to_get_it(qgis_app):
    """First-run QA: `qgis_process help ksdiff:pansharpen` never said that KSDiff (and auto's learned part) needs
    ONNX Runtime, nor which algorithm installs it."""
    from qgis.core import QgsApplication

    text = QgsApplication.processingRegistry().createAlgorithmById("ksdiff:pansharpen").shortHelpString()
    method = next(line for line in text.splitlines() if line.startswith("- Method: "))
    assert "KSDiff needs ONNX Runtime: ksdiff:install_runtime" in method
