"""The algorithm dialog (GUI only, imported when a dialog opens): QGIS's own, given preset enum values by key."""
from __future__ import annotations

from processing.gui.AlgorithmDialog import AlgorithmDialog

from .compat import enum_indexes


class KeyedEnumDialog(AlgorithmDialog):
    """QGIS's algorithm dialog; preset values (processing.execAlgorithmDialog, createAlgorithmDialog) may name an
    enum option by its key or label: its widget reads numbers only and would show the default instead."""

    def setParameters(self, parameters):  # noqa: N802
        super().setParameters(enum_indexes(self.algorithm(), parameters))
