"""Help reachable from QGIS (desktop QA: Raster > KSDiff had no help entry and no algorithm had a helpUrl, so the
dialog offered no Help button; the README, the model cards and their licences could not be reached from QGIS).
Each algorithm's Help opens its README section on metadata.txt's homepage; Raster > KSDiff > KSDiff Help… opens the
README and Model Cards and Licences… the bundled models' README, a local file that opens offline."""
from __future__ import annotations

import configparser
import re
import sys
from pathlib import Path
from unittest import mock

import pytest

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = ROOT / "ksdiff_qgis"
sys.path.insert(0, str(ROOT / "scripts"))

import package  # noqa: E402


def metadata_homepage() -> str:
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(PLUGIN / "metadata.txt", encoding="utf-8")
    return cfg["general"]["homepage"]


def github_slugs(markdown: str) -> set[str]:
    """The anchors GitHub gives a Markdown file's headings: lower case, punctuation dropped, spaces to hyphens
    (headings inside fenced code are not headings)."""
    slugs, fenced = set(), False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (m := re.match(r"#{1,6} +(.+?) *#*$", line)):
            slugs.add(re.sub(r"[^\w\- ]", "", m.group(1).lower()).replace(" ", "-"))
    return slugs


README_SLUGS = github_slugs((ROOT / "README.md").read_text(encoding="utf-8"))


class UrlCatcher:
    """Catches what QDesktopServices.openUrl is asked to open (from Python or C++), instead of a browser."""

    def __init__(self):
        from qgis.PyQt.QtCore import QObject, QUrl, pyqtSlot

        class Receiver(QObject):
            def __init__(self):
                super().__init__()
                self.urls: list[str] = []

            @pyqtSlot(QUrl)
            def open(self, url):
                self.urls.append(url.toString())

        self.receiver = Receiver()

    def __enter__(self) -> list[str]:
        from qgis.PyQt.QtGui import QDesktopServices

        for scheme in ("https", "http", "file"):
            QDesktopServices.setUrlHandler(scheme, self.receiver, "open")
        return self.receiver.urls

    def __exit__(self, *exc):
        from qgis.PyQt.QtGui import QDesktopServices

        for scheme in ("https", "http", "file"):
            QDesktopServices.unsetUrlHandler(scheme)


def test_slugs_follow_github():
    assert github_slugs("# KSDiff for QGIS\n## Parameters of `ksdiff:pansharpen`\n```sh\n# local: x\n```\n"
                        "## ONNX Runtime (for the KSDiff method)") == {
        "ksdiff-for-qgis", "parameters-of-ksdiffpansharpen", "onnx-runtime-for-the-ksdiff-method"}


def ksdiff_algorithms():
    from qgis.core import QgsApplication

    return QgsApplication.processingRegistry().providerById("ksdiff").algorithms()


def test_every_algorithm_has_a_help_url_into_the_readme(qgis_app):
    algs = ksdiff_algorithms()
    assert {a.id() for a in algs} >= {"ksdiff:pansharpen", "ksdiff:assess", "ksdiff:install_runtime"}
    homepage = metadata_homepage()
    for alg in algs:
        base, _, anchor = alg.helpUrl().partition("#")
        assert base == homepage, (alg.id(), alg.helpUrl())
        assert anchor in README_SLUGS, (alg.id(), anchor)
    urls = {a.id(): a.helpUrl() for a in algs}
    assert urls["ksdiff:pansharpen"].endswith("#parameters-of-ksdiffpansharpen")
    assert urls["ksdiff:install_runtime"].endswith("#onnx-runtime-for-the-ksdiff-method")


def test_dialog_help_button_opens_the_algorithms_readme_section(qgis_app, no_iface, monkeypatch):
    """QGIS's dialog drops its Help button when an algorithm has no helpUrl; now it has one and opens the section."""
    from qgis.core import QgsApplication
    from qgis.PyQt.QtWidgets import QDialogButtonBox

    # a fresh instance: the dialog takes ownership of its algorithm (the provider's own one was freed twice at exit)
    alg = QgsApplication.processingRegistry().createAlgorithmById("ksdiff:pansharpen")
    dialog = alg.createCustomParametersWidget(None)   # what processing.createAlgorithmDialog opens
    try:
        button = dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.Help)
        assert button is not None, "no Help button in the dialog"
        with UrlCatcher() as urls:
            button.click()
        assert urls == [metadata_homepage() + "#parameters-of-ksdiffpansharpen"]
    finally:
        dialog.deleteLater()


@pytest.fixture()
def raster_menu(qgis_app, session_plugin):
    """A plugin started with an iface whose Raster > KSDiff is a real QMenu; the session's provider restored after."""
    from qgis.PyQt.QtWidgets import QMainWindow, QMenu

    import ksdiff_qgis

    window, menu = QMainWindow(), QMenu("KSDiff")
    iface = mock.MagicMock()
    iface.mainWindow.return_value = window
    iface.addPluginToRasterMenu.side_effect = lambda name, action: menu.addAction(action)
    iface.removePluginRasterMenu.side_effect = lambda name, action: menu.removeAction(action)
    session_plugin.unload()
    plugin = ksdiff_qgis.classFactory(iface)
    try:
        yield plugin, menu
    finally:
        plugin.unload()
        session_plugin.initProcessing()


def test_menu_offers_help_and_model_cards_and_unload_removes_them(raster_menu):
    from qgis.PyQt.QtCore import QUrl

    plugin, menu = raster_menu
    plugin.initGui()
    actions = {a.text(): a for a in menu.actions()}
    assert list(actions) == ["KSDiff Pansharpening…", "Install ONNX Runtime…", "KSDiff Help…",
                             "Model Cards and Licences…"]
    models_readme = PLUGIN / "resources" / "models" / "README.md"
    with UrlCatcher() as urls:
        actions["KSDiff Help…"].trigger()
        actions["Model Cards and Licences…"].trigger()
    assert urls == [metadata_homepage() + "#ksdiff-for-qgis", QUrl.fromLocalFile(str(models_readme)).toString()]
    assert urls[1].startswith("file:///") and models_readme.is_file()
    assert "ksdiff-for-qgis" in README_SLUGS
    assert "licence" in models_readme.read_text(encoding="utf-8")
    plugin.unload()
    assert menu.actions() == []


def test_models_readme_ships_in_the_plugin_zip():
    """The local Model Cards and Licences page must be in the packaged plugin, where the menu action looks for it."""
    from ksdiff_qgis import helplinks

    shipped = {name for _, name in package.plugin_files()}
    assert "ksdiff_qgis/" + helplinks.MODELS_README.relative_to(PLUGIN).as_posix() in shipped
    assert helplinks.MODELS_README == PLUGIN / "resources" / "models" / "README.md"
