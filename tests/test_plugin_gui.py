"""initGui adds a menu entry and toolbar button; unload removes them and the provider."""
from __future__ import annotations

from unittest import mock


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
        assert iface.addPluginToRasterMenu.call_count == 2   # pansharpen dialog + runtime installer
        iface.addToolBarIcon.assert_called_once_with(plugin.action)
        assert "Pansharpen" in plugin.action.text()
        plugin.unload()
        assert iface.removePluginRasterMenu.call_count == 2
        iface.removeToolBarIcon.assert_called_once()
        assert registry.providerById("ksdiff") is None
        assert plugin.action is None
    finally:
        session_plugin.initProcessing()
