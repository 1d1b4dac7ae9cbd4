"""The dialogs at the size QGIS opens them: short labels (the detail in each parameter's tooltip), no sideways scroll,
a toolbox tooltip saying what each algorithm does, the likely PAN/MS pair preselected, and the assess report listed
in the Results Viewer that opens when the dialog closes."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ALGORITHMS = ("ksdiff:pansharpen", "ksdiff:assess", "ksdiff:install_runtime")
MAX_OPTION = 50       # a drop-down is as wide as its longest option
DIALOG_SIZE = (688, 523)   # QGIS 3.22's algorithm dialog on a fresh profile (QA, Xvfb at 1366x768)


def _fresh(alg_id: str):
    from qgis.core import QgsApplication

    return QgsApplication.processingRegistry().createAlgorithmById(alg_id)


@pytest.mark.parametrize("alg_id", ALGORITHMS)
def test_parameter_labels_are_short_and_the_detail_is_in_their_help(qgis_app, alg_id):
    """QA at 1366x768: labels up to 80 characters ('MS MTF gains at Nyquist, separated by commas or spaces (default:
    the sensor's)') made the parameter panel 626 px wide in a 376 px view. Labels are now at most MAX_LABEL characters,
    as QGIS's own, options at most MAX_OPTION, and every input says more in its help (the tooltip)."""
    from ksdiff_qgis.algorithms.compat import KeyedEnum
    from ksdiff_qgis.engine.labels import MAX_LABEL

    alg = _fresh(alg_id)
    for p in alg.parameterDefinitions():
        assert len(p.description()) <= MAX_LABEL, (p.name(), p.description())
        if isinstance(p, KeyedEnum):
            assert all(len(o) <= MAX_OPTION for o in p.options()), (p.name(), p.options())
        if not p.isDestination():
            assert len(p.help()) > len(p.description()), (p.name(), p.help())


def _quoted_labels(text: str, pattern: str) -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in re.finditer(pattern, text)]


def test_messages_and_docs_quote_the_labels_the_dialog_shows(qgis_app):
    """Advice names a parameter as the dialog shows it, then its key ("tick 'Co-register the MS onto the PAN'
    (COREGISTER)"); the README as *Label* (`KEY`). Every such quote in the plugin's code, the README and docs/ names
    the current label of that parameter."""
    labels = {}
    for alg in [_fresh(alg_id) for alg_id in ALGORITHMS]:   # held: its parameters die with it
        for p in alg.parameterDefinitions():
            labels.setdefault(p.name(), set()).add(p.description())
    found = []
    for path in sorted((ROOT / "ksdiff_qgis").rglob("*.py")):
        for label, key in _quoted_labels(path.read_text(encoding="utf-8"), r"'([^'\n]+)' \(([A-Z][A-Z_]+)[=,)…]"):
            if key in labels:
                assert label in labels[key], (path.name, label, key, labels[key])
                found.append(key)
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for label, key in _quoted_labels(path.read_text(encoding="utf-8"), r"\*([^*\n]+)\*\s+\(`([A-Z][A-Z_]+)"):
            if key in labels:
                assert label in labels[key], (path.name, label, key, labels[key])
                found.append(key)
    assert {"MS_BANDS", "WHEEL", "REINSTALL", "COREGISTER"} <= set(found), found
    from ksdiff_qgis.engine import coregistration

    assert coregistration.ADVICE == "tick 'Co-register the MS onto the PAN' (COREGISTER), under Advanced Parameters"


@pytest.fixture()
def desktop_font(qgis_app):
    """The application font of QGIS 3.22 on X11 (QA under Xvfb: Sans Serif 9 pt at 100 dpi), at the same pixel size
    here: the offscreen platform's own (DejaVu 12 pt) is a third larger."""
    from qgis.PyQt.QtGui import QFont
    from qgis.PyQt.QtWidgets import QApplication

    before = QApplication.font()
    font = QFont("Sans Serif")
    font.setPointSizeF(9 * 100 / QApplication.primaryScreen().logicalDotsPerInch())
    QApplication.setFont(font)
    yield
    QApplication.setFont(before)


@pytest.mark.parametrize("alg_id", ALGORITHMS)
def test_the_dialog_needs_no_sideways_scroll_with_advanced_expanded(no_iface, desktop_font, alg_id):
    """QA at 1366x768: at the size the dialog opens (688x523) the parameter panel scrolled sideways by 250 px with
    Advanced Parameters expanded, hiding the Sensor and Method drop-down arrows and the '…' buttons; install_runtime's
    Package drop-down alone was 646 px wide."""
    from qgis.gui import QgsCollapsibleGroupBox
    from qgis.PyQt import sip
    from qgis.PyQt.QtWidgets import QApplication, QScrollArea, QWidget

    dialog = _fresh(alg_id).createCustomParametersWidget(None)   # what processing.createAlgorithmDialog opens
    try:
        dialog.resize(*DIALOG_SIZE)
        dialog.show()
        advanced = sip.cast(dialog.findChild(QWidget, "grpAdvanced"), QgsCollapsibleGroupBox)
        advanced.setCollapsed(False)
        for _ in range(5):
            QApplication.processEvents()
        # the parameters' own scroll area, the innermost holding them (the dialog's outer one holds the whole panel)
        holding = [a for a in dialog.findChildren(QScrollArea) if a.widget() and a.widget().isAncestorOf(advanced)]
        area = next(a for a in holding if not any(b is not a and a.isAncestorOf(b) for b in holding))
        assert area.isVisible() and area.viewport().width() >= 350, area.viewport().width()
        if advanced.isVisible():   # assess has no advanced parameters
            assert not advanced.isCollapsed() and advanced.height() > 60, advanced.height()   # laid out open
        wide = area.widget().minimumSizeHint().width()
        assert wide <= area.viewport().width(), (wide, area.viewport().width())
        assert area.horizontalScrollBar().maximum() == 0
    finally:
        dialog.close()
        dialog.deleteLater()


@pytest.mark.parametrize("alg_id", ALGORITHMS)
def test_the_toolbox_tooltip_says_what_the_algorithm_does(qgis_app, alg_id):
    """QA: the Processing Toolbox's tooltip showed only the name and the id: each algorithm has a one-line
    shortDescription, which the toolbox shows."""
    from qgis.core import QgsApplication
    from qgis.gui import QgsProcessingToolboxModel
    from qgis.PyQt.QtCore import QModelIndex, Qt

    short = _fresh(alg_id).shortDescription()
    assert short and "\n" not in short and len(short) <= 120, short
    model = QgsProcessingToolboxModel(None, QgsApplication.processingRegistry())
    pending, tips = [QModelIndex()], []
    while pending:
        parent = pending.pop()
        for row in range(model.rowCount(parent)):
            index = model.index(row, 0, parent)
            alg = model.algorithmForIndex(index)
            if alg is not None and alg.id() == alg_id:
                tips.append(model.data(index, Qt.ToolTipRole))
            pending.append(index)
    assert tips and all(short in tip for tip in tips), tips


# ---------------------------------------------------------------------------------------------- the preselected pair
def _project(layers: list[tuple[str, str]]):
    """A project of its own (never QgsProject.instance()) holding ``layers`` as (file, layer name), in that order."""
    from qgis.core import QgsProject, QgsRasterLayer

    project = QgsProject()
    made = [QgsRasterLayer(path, name) for path, name in layers]
    assert all(lyr.isValid() for lyr in made)
    project.addMapLayers(made)
    return project, {lyr.name(): lyr.id() for lyr in made}


def _subset(src: Path, dest: Path, bands: list[int]) -> str:
    from osgeo import gdal

    gdal.Translate(str(dest), str(src), bandList=bands)
    return str(dest)


def test_the_ms_named_as_the_pan_wins_a_tie(qgis_app, data_dir, tmp_path):
    """QA: with pair1_pan, pair1_ms (4 bands) and ms3 (3 of its bands, the same extent) the dialog chose ms3, the first
    layer id of equal overlap. The MS named as the PAN now wins (pair1_pan: pair1_ms), whatever the layer order."""
    from ksdiff_qgis.algorithms.layer_pair import plausible_pair

    ms3 = _subset(data_dir / "wv2_ms.tif", tmp_path / "ms3.tif", [1, 2, 3])
    for order in ([0, 1, 2], [2, 1, 0]):
        layers = [(str(data_dir / "wv2_pan.tif"), "pair1_pan"), (str(data_dir / "wv2_ms.tif"), "pair1_ms"),
                  (ms3, "ms3")]
        project, ids = _project([layers[i] for i in order])
        assert plausible_pair(project) == (ids["pair1_pan"], ids["pair1_ms"])


def test_without_a_name_match_more_bands_win_a_tie(qgis_app, data_dir, tmp_path):
    """Two MS of equal overlap, neither named as the PAN: the one with more bands (all of them, not a subset)."""
    from ksdiff_qgis.algorithms.layer_pair import plausible_pair

    ms3 = _subset(data_dir / "wv2_ms.tif", tmp_path / "a.tif", [1, 2, 3])
    project, ids = _project([(str(data_dir / "wv2_pan.tif"), "panchro"), (ms3, "a"),
                             (str(data_dir / "wv2_ms.tif"), "z")])
    assert plausible_pair(project) == (ids["panchro"], ids["z"])


def test_name_stems_drop_the_pan_and_ms_words():
    from ksdiff_qgis.algorithms.layer_pair import name_stem

    assert name_stem("pair1_pan") == name_stem("pair1_ms.tif") == "pair1"
    assert name_stem("IMG_PHR1A_P_001") == name_stem("IMG_PHR1A_MS_001") == "img phr1a 001"
    assert name_stem("18JAN01-P1BS-0001.tif") == name_stem("18JAN01-M1BS-0001.tif")
    assert name_stem("LC08_L1TP_B8.TIF") == name_stem("LC08_L1TP_MUL.vrt")
    assert name_stem("ms3") == "ms3" and name_stem("pan") == ""


# ------------------------------------------------------------------------------------------------- the assess report
def test_a_closed_assess_dialog_leaves_its_report_in_the_results_viewer_it_opens(qgis_app, no_iface, data_dir,
                                                                                  tmp_path):
    """QA: with 'Keep dialog open after running an algorithm' off (QGIS's default) the assess dialog closes when the
    run ends. QGIS 3.22 then opens its Results Viewer on any HTML output (ResultsDock.addResult), as for its own
    algorithms: a real run, finished by QGIS's own dialog code, leaves the report listed there by a name that says
    what it is (it read 'Report')."""
    import processing
    from processing.core.ProcessingConfig import ProcessingConfig
    from processing.gui.ResultsDock import ResultsDock
    from processing.tools import dataobjects
    from qgis.core import QgsProcessingFeedback

    fused, html = str(tmp_path / "fused.tif"), str(tmp_path / "report.html")
    pair = {"PAN": str(data_dir / "wv2_pan.tif"), "MS": str(data_dir / "wv2_ms.tif"), "SENSOR": "wv2"}
    processing.run("ksdiff:pansharpen", {**pair, "METHOD": "exp", "OUTPUT": fused})
    alg = _fresh("ksdiff:assess")
    feedback = QgsProcessingFeedback()
    context = dataobjects.createContext(feedback)
    params = {"FUSED": fused, "PAN": pair["PAN"], "MS": pair["MS"], "SENSOR": "wv2", "OUTPUT_HTML": html}
    results, ok = alg.run(params, context, feedback)   # headless, as processing.run and qgis_process run it
    assert ok and results["OUTPUT_HTML"] == html
    dock = ResultsDock()   # the desktop's (ProcessingPlugin adds it to the main window, hidden)
    dialog = alg.createCustomParametersWidget(None)
    kept = ProcessingConfig.getSetting(ProcessingConfig.KEEP_DIALOG_OPEN)
    ProcessingConfig.setSettingValue(ProcessingConfig.KEEP_DIALOG_OPEN, False)
    try:
        dialog.show()
        dialog.iterateParam = None   # as runAlgorithm sets it for a single run
        dialog.finish(True, results, context, feedback)   # what the dialog runs when the task ends
        assert not dialog.isVisible()
        assert dock.isUserVisible()
        item = dock.treeResults.currentItem()
        assert item.filename == html and item.text(0).startswith("Quality report ["), item.text(0)
    finally:
        ProcessingConfig.setSettingValue(ProcessingConfig.KEEP_DIALOG_OPEN, kept)
        dialog.deleteLater()
        dock.deleteLater()
