"""Processing provider ``ksdiff``."""
from __future__ import annotations

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from .algorithms.assess import AssessAlgorithm
from .algorithms.base import ICON
from .algorithms.install_runtime import InstallRuntimeAlgorithm
from .algorithms.pansharpen import PansharpenAlgorithm


class KsdiffProvider(QgsProcessingProvider):
    def id(self) -> str:
        return "ksdiff"

    def name(self) -> str:
        return "KSDiff pansharpening"

    def longName(self) -> str:  # noqa: N802
        return "KSDiff pansharpening (kernel-space diffusion and classical methods)"

    def icon(self) -> QIcon:
        return QIcon(ICON)

    def svgIconPath(self) -> str:  # noqa: N802
        return ICON

    def supportedOutputRasterLayerExtensions(self) -> list[str]:  # noqa: N802
        # the engine writes GeoTIFF only: QGIS then offers .tif/.tiff, names temporary outputs .tif and
        # the dialog refuses other extensions; processing.run and qgis_process meet the engine's own check
        return ["tif", "tiff"]

    def loadAlgorithms(self) -> None:  # noqa: N802
        self.addAlgorithm(PansharpenAlgorithm())
        self.addAlgorithm(AssessAlgorithm())
        self.addAlgorithm(InstallRuntimeAlgorithm())
