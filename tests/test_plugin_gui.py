"""initGui adds a menu entry and toolbar button; unload removes them and the provider."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent


def test_init_gui_and_unload(qgis_app, session_plugin):
    from qgis.core import QgsApplication
    from qgis.PyQt.QtWidgets import QMainWindow

    import ksdiff_qgis

    window = QMainWindow()
    iface = mock.MagicMock()
    iface.mainWindow.return_value = window
    registry = QgsApplication.processingRegistry()
    session_plugin.unload()   # the session's provider; registered again below
    try:
        plugin = ksdiff_qgis.classFactory(iface)
        plugin.initGui()
        assert registry.providerById("ksdiff") is not None
        assert iface.addPluginToRasterMenu.call_count == 4   # pansharpen dialog, runtime installer, help, model cards
        iface.addToolBarIcon.assert_called_once_with(plugin.action)
        assert "Pansharpen" in plugin.action.text()
        plugin.unload()
        assert iface.removePluginRasterMenu.call_count == 4
        iface.removeToolBarIcon.assert_called_once()
        assert registry.providerById("ksdiff") is None
        assert plugin.action is None
    finally:
        session_plugin.initProcessing()


def test_install_hint_names_the_menu_the_plugin_creates(qgis_app, session_plugin):
    """The hint said 'Plugins > KSDiff', a menu that does not exist (QA under Xvfb): the action is in Raster > KSDiff.
    """
    from qgis.PyQt.QtWidgets import QMainWindow

    import ksdiff_qgis
    from ksdiff_qgis.engine import runtime

    iface = mock.MagicMock()
    iface.mainWindow.return_value = QMainWindow()
    session_plugin.unload()
    try:
        plugin = ksdiff_qgis.classFactory(iface)
        plugin.initGui()
        menu, action = next(c.args for c in iface.addPluginToRasterMenu.call_args_list
                            if c.args[1] is plugin.install_action)
        assert f"Raster > {menu} > {action.text()}" in runtime.INSTALL_HINT
        plugin.unload()
    finally:
        session_plugin.initProcessing()


def test_menu_entries_have_icons_and_whole_tooltips(qgis_app, session_plugin):
    """QA under Xvfb: Raster > KSDiff > Install ONNX Runtime… had no icon and its tooltip read "Install the runtime the
    KSDiff method needs " — QGIS registers the main window's actions with its shortcuts manager once the plugins are
    loaded, which cuts everything from "(" to ")" out of a tooltip (taken for an old shortcut) and sets it in bold."""
    from qgis.gui import QgsShortcutsManager
    from qgis.PyQt.QtWidgets import QMainWindow

    import ksdiff_qgis
    from ksdiff_qgis.algorithms.install_runtime import InstallRuntimeAlgorithm

    window = QMainWindow()
    iface = mock.MagicMock()
    iface.mainWindow.return_value = window
    session_plugin.unload()
    plugin = ksdiff_qgis.classFactory(iface)
    try:
        plugin.initGui()
        actions = (plugin.action, plugin.install_action, plugin.help_action, plugin.models_action)
        written = [a.toolTip() for a in actions]
        QgsShortcutsManager(window).registerAllChildren(window)   # what QGIS does after loading the plugins
        for action, tip in zip(actions, written):
            assert re.sub(r"</?b>", "", action.toolTip()) == tip, action.toolTip()   # shown whole
            assert not action.icon().isNull(), action.text()
        assert "GPU build when an NVIDIA GPU is found" in plugin.install_action.toolTip()
        shown = plugin.install_action.icon().pixmap(32, 32).toImage()
        assert shown == InstallRuntimeAlgorithm().icon().pixmap(32, 32).toImage()   # the toolbox's icon for it
        assert shown != plugin.action.icon().pixmap(32, 32).toImage()
    finally:
        plugin.unload()
        session_plugin.initProcessing()


UNLOAD_SCRIPT = """
import sys
from qgis.core import QgsApplication
app = QgsApplication([], False)
app.initQgis()
from qgis import utils
from qgis.PyQt.QtWidgets import QMainWindow
from unittest import mock
sys.path.insert(0, sys.argv[1])
utils.iface = mock.MagicMock()
utils.iface.mainWindow.return_value = QMainWindow()
utils.available_plugins.append("ksdiff_qgis")   # what QGIS's scan of its plugin folders finds
assert utils.loadPlugin("ksdiff_qgis") and utils.startPlugin("ksdiff_qgis")
from ksdiff_qgis.engine.raster_io import to_dtype   # a lazily loaded submodule (importlib)
import ksdiff_qgis.algorithms.base
assert "ksdiff_qgis.engine.raster_io.dtypes" in sys.modules
assert utils.unloadPlugin("ksdiff_qgis")
print("LEFT", sorted(m for m in sys.modules if m.startswith("ksdiff_qgis")))
"""


def test_qgis_unloading_the_plugin_drops_all_its_modules(tmp_path):
    """Reload, upgrade, disable or uninstall in the Plugin Manager: QGIS dropped only the modules its import hook saw,
    so after an upgrade the lazily imported engine/raster_io/dtypes (and the algorithms package) kept running the old
    code until QGIS restarted (QA in the desktop). Now nothing of the package stays."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    r = subprocess.run([sys.executable, "-c", UNLOAD_SCRIPT, str(ROOT)], capture_output=True, text=True, env=env,
                       timeout=300)
    assert "LEFT []" in r.stdout, r.stdout + r.stderr
