"""What every ``ksdiff`` Processing algorithm shares: translation, group, icon and ``createInstance``.

Translatable strings: ``tr("… {} …").format(…)``, never ``tr(f"…")`` (the translation is looked up by the
literal source text, which an f-string has already replaced).
"""
from __future__ import annotations

import os
from typing import Callable

from qgis.core import QgsProcessingAlgorithm
from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtGui import QIcon

ICONS = os.path.join(os.path.dirname(os.path.dirname(__file__)), "resources", "icons")
ICON = os.path.join(ICONS, "ksdiff.svg")
GROUPS = {"pansharpening": "Pansharpening", "setup": "Setup"}   # group id -> display name (translated in group())


def translator(context: str) -> Callable[[str], str]:
    """A ``tr(text)`` that translates in ``context`` (one context per algorithm module)."""
    def tr(text: str) -> str:
        return QCoreApplication.translate(context, text)

    return tr


class KsdiffAlgorithm(QgsProcessingAlgorithm):
    """Base of the provider's algorithms: a subclass sets ``GROUP_ID`` (a key of ``GROUPS``) and defines
    name, displayName, shortHelpString, initAlgorithm and processAlgorithm."""

    GROUP_ID = "pansharpening"
    ICON_FILE = "ksdiff.svg"   # in resources/icons: each algorithm shows its own icon in the toolbox

    def group(self) -> str:
        return QCoreApplication.translate("Ksdiff", GROUPS[self.GROUP_ID])

    def groupId(self) -> str:  # noqa: N802
        return self.GROUP_ID

    def icon(self) -> QIcon:
        return QIcon(self.svgIconPath())

    def svgIconPath(self) -> str:  # noqa: N802
        return os.path.join(ICONS, self.ICON_FILE)

    def createInstance(self):  # noqa: N802
        return type(self)()

    def createCustomParametersWidget(self, parent=None):  # noqa: N802
        """QGIS's dialog, reading preset enum values given by key (imported here: qgis_process has no GUI)."""
        from .dialog import KeyedEnumDialog

        return KeyedEnumDialog(self, parent=parent)
