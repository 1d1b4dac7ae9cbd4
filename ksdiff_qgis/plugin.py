"""The QGIS plugin object: registers the Processing provider, a menu/toolbar shortcut and the help entries."""
from __future__ import annotations

from qgis.core import QgsApplication

from .algorithms.base import ICON
from .provider import KsdiffProvider

# QGIS registers the main window's actions with its shortcuts manager once the plugins are loaded, and that rewrites
# each tooltip: it deletes everything from the first "(" to the last ")" (taken for an old shortcut) and sets the rest
# in bold. So no parentheses in these tooltips (the installer's lost "(GPU build when an NVIDIA GPU is found)").
DIALOG_TIP = "Pansharpen a PAN + MS pair: KSDiff and classical methods"
INSTALL_TIP = "Install ONNX Runtime, which the KSDiff method needs: the GPU build when an NVIDIA GPU is found"
HELP_TIP = "Open the KSDiff README on the project homepage: methods, parameters, sensors, batch runs"
MODELS_TIP = "Open the bundled models' README: model cards, training data and its licences; works offline"
MENU = "KSDiff"   # Raster > KSDiff
UNLOAD_WAIT_S = 30.0   # how long unload() waits for cancelled runs to end (a cancel stops a run within ~0.1 s)
UNLOADED = ("Cancelled because the KSDiff plugin is being unloaded (reloaded, upgraded, disabled or uninstalled); "
            "run it again once the plugin is loaded")
_KEPT: list = []   # providers kept alive past the unload: a run that did not stop still uses its provider


class KsdiffPlugin:
    def __init__(self, iface):
        self.iface = iface
        self.provider: KsdiffProvider | None = None
        self.action = None
        self.install_action = None
        self.help_action = None
        self.models_action = None

    def initProcessing(self) -> None:  # noqa: N802
        """Register the provider (no GUI code: qgis_process calls only this)."""
        if self.provider is not None:
            return
        from .algorithms.install_runtime import runtime_base
        from .engine import deps

        deps.activate(runtime_base())   # a private ONNX Runtime installed earlier, if any
        self.provider = KsdiffProvider()
        QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self) -> None:  # noqa: N802
        self.initProcessing()
        if self.iface is None:
            return
        from qgis.PyQt.QtGui import QIcon

        from .algorithms.install_runtime import InstallRuntimeAlgorithm

        self.action = self._menu_action(QIcon(ICON), "KSDiff Pansharpening…", DIALOG_TIP, self.open_dialog)
        self.iface.addToolBarIcon(self.action)   # the Plugins toolbar: QGIS hides the Raster one in a new profile
        # the install algorithm's own icon, as the toolbox shows it
        self.install_action = self._menu_action(InstallRuntimeAlgorithm().icon(), "Install ONNX Runtime…",
                                                INSTALL_TIP, self.open_installer)
        self.help_action = self._menu_action(QgsApplication.getThemeIcon("/mActionHelpContents.svg"),
                                             "KSDiff Help…", HELP_TIP, self.open_help)
        self.models_action = self._menu_action(QgsApplication.getThemeIcon("/mIconInfo.svg"),
                                               "Model Cards and Licences…", MODELS_TIP, self.open_model_cards)

    def _menu_action(self, icon, text: str, tip: str, slot):
        """A QAction under Raster > KSDiff running ``slot``."""
        from qgis.PyQt.QtWidgets import QAction

        action = QAction(icon, text, self.iface.mainWindow())
        action.setToolTip(tip)
        action.triggered.connect(slot)
        self.iface.addPluginToRasterMenu(MENU, action)
        return action

    def open_dialog(self) -> None:
        import processing

        processing.execAlgorithmDialog("ksdiff:pansharpen")

    def open_installer(self) -> None:
        import processing

        processing.execAlgorithmDialog("ksdiff:install_runtime")

    def open_help(self) -> None:
        """The README on the project homepage, in the web browser."""
        from qgis.PyQt.QtCore import QUrl
        from qgis.PyQt.QtGui import QDesktopServices

        from .helplinks import readme_url

        QDesktopServices.openUrl(QUrl(readme_url()))

    def open_model_cards(self) -> None:
        """The bundled models' README, a file in the plugin folder (no network needed)."""
        from qgis.PyQt.QtCore import QUrl
        from qgis.PyQt.QtGui import QDesktopServices

        from .helplinks import MODELS_README

        QDesktopServices.openUrl(QUrl.fromLocalFile(str(MODELS_README)))

    def unload(self) -> None:
        for name in ("models_action", "help_action", "install_action"):
            action = getattr(self, name)
            if action is not None and self.iface is not None:
                self.iface.removePluginRasterMenu(MENU, action)
                action.deleteLater()
                setattr(self, name, None)
        if self.action is not None and self.iface is not None:
            self.iface.removePluginRasterMenu(MENU, self.action)
            self.iface.removeToolBarIcon(self.action)
            self.action.deleteLater()
            self.action = None
        if self.provider is not None:
            cancelled, left = _stop_runs()
            if left:
                _KEPT.append(self.provider)
            else:
                _close_dialogs()
                QgsApplication.processingRegistry().removeProvider(self.provider)   # deletes it
            _say_stopped(self.iface, cancelled, left)
            self.provider = None
        _forget_modules()


def _stop_runs(wait_s: float | None = None) -> tuple[int, int]:
    """Cancel the runs of our algorithms still going and wait (handling Qt events, at most ``wait_s``) until they
    are over, their tasks' ``finished()`` included: only then may the provider be deleted (a task that finished
    after it crashed QGIS). A run inside processAlgorithm on the main thread (the unload called from its nested event
    loop) can only end after the unload returns: not waited for (it froze QGIS 30 s), the provider kept for it. How
    many runs were cancelled, and how many are still not over."""
    import time

    from qgis.PyQt.QtCore import QCoreApplication, QEventLoop, QThread

    from .algorithms import running

    if not running.pending():
        return 0, 0
    cancelled = running.cancel_all(QCoreApplication.translate("Ksdiff", UNLOADED))
    deadline = time.monotonic() + (UNLOAD_WAIT_S if wait_s is None else wait_s)
    while running.awaited() and time.monotonic() < deadline:
        # the task's finished() and then its deleteLater (which deletes the algorithm) arrive as events
        QCoreApplication.processEvents(QEventLoop.AllEvents, 50)
        QThread.msleep(10)
    return cancelled, running.pending()


def _say_stopped(iface, cancelled: int, left: int) -> None:
    """The unload's cancelled runs in the message log, and on the message bar: their dialogs are closed."""
    from qgis.core import Qgis, QgsMessageLog
    from qgis.PyQt.QtCore import QCoreApplication

    if left:
        text = QCoreApplication.translate(
            "Ksdiff", "{} KSDiff run(s) did not stop within {:.0f} s of the plugin's unload: the KSDiff Processing "
            "provider stays loaded for them. Restart QGIS before using the plugin again.").format(left, UNLOAD_WAIT_S)
    elif cancelled:
        text = QCoreApplication.translate(
            "Ksdiff", "The KSDiff plugin was unloaded (reloaded, upgraded, disabled or uninstalled) during {} run(s): "
            "they were cancelled, no output was written, and the plugin's dialogs were closed. Run them again once "
            "the plugin is loaded.").format(cancelled)
    else:
        return
    QgsMessageLog.logMessage(text, "KSDiff", Qgis.Warning)
    if iface is not None:
        iface.messageBar().pushMessage("KSDiff", text, Qgis.Warning)


def _close_dialogs() -> None:
    """Close the open dialogs of this plugin's algorithms: each holds an algorithm that would use the deleted
    provider (QA: Run again in the dialog of a run the reload cancelled raised a TypeError from a dangling provider;
    its Copy as Python Command reads the algorithm's id, as the crash did). Told apart by the algorithm's class, this
    module's: asking an algorithm for its provider could touch one an earlier unload deleted."""
    from qgis.gui import QgsProcessingAlgorithmDialogBase
    from qgis.PyQt import sip
    from qgis.PyQt.QtWidgets import QApplication

    from .algorithms.base import KsdiffAlgorithm

    for widget in QApplication.topLevelWidgets():
        if isinstance(widget, QgsProcessingAlgorithmDialogBase) and not sip.isdeleted(widget) \
                and isinstance(widget.algorithm(), KsdiffAlgorithm):
            widget.close()


def _forget_modules() -> None:
    """When QGIS unloads the plugin (Plugin Manager: reload, upgrade, disable, uninstall), drop every module of the
    package, so the next load runs the code on disk. QGIS drops only the modules its import hook saw; modules loaded by
    importlib (``engine/raster_io``'s lazy submodules) or reached only as a parent package stayed, and an upgraded
    plugin ran their old code until QGIS restarted. Only under QGIS's plugin loader: a process that imported the
    package itself (tests, scripts) keeps its modules."""
    import sys

    from qgis import utils

    package = __name__.rpartition(".")[0]
    if package not in utils.plugins:
        return
    for name in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
        del sys.modules[name]
