"""The algorithm dialog (GUI only, imported when a dialog opens): QGIS's own, given preset enum values by key and
MS_BANDS as text, its help panel showing the help's items as a list."""
from __future__ import annotations

from processing.gui.AlgorithmDialog import AlgorithmDialog
from qgis.PyQt.QtWidgets import QTextBrowser

from .band_param import band_lists
from .compat import enum_indexes
from .helptext import has_items, help_html

HELP_PANEL = "textShortHelp"   # the QTextBrowser QgsProcessingAlgorithmDialogBase shows shortHelpString in


class KeyedEnumDialog(AlgorithmDialog):
    """QGIS's algorithm dialog; preset values (processing.execAlgorithmDialog, createAlgorithmDialog) may name an
    enum option by its key or label, and MS_BANDS as text ("3,2,1"): QGIS's widgets read numbers only and would
    show the default option, and band 0."""

    def setParameters(self, parameters):  # noqa: N802
        super().setParameters(band_lists(self.algorithm(), enum_indexes(self.algorithm(), parameters)))

    def setAlgorithm(self, alg):  # noqa: N802
        """QGIS's setup, then the help panel with the help's "- Label: text" lines as one list (QGIS makes each
        line a paragraph; ``shortHelpString`` stays plain text for ``qgis_process help``)."""
        super().setAlgorithm(alg)
        text = alg.shortHelpString()
        panel = self.findChild(QTextBrowser, HELP_PANEL)
        if panel is not None and has_items(text):   # the panel keeps QGIS's style sheet
            panel.setHtml(help_html(alg.displayName(), text))
