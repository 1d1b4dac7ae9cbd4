"""What the Processing algorithms share: feedback forwarding and the file behind a raster layer."""
from __future__ import annotations

from qgis.core import QgsProcessingException, QgsProviderRegistry
from qgis.PyQt.QtCore import QCoreApplication

from ..engine.feedback import Feedback


def tr(text: str) -> str:
    return QCoreApplication.translate("Ksdiff", text)


class ProcessingFeedback(Feedback):
    """Engine feedback forwarded to QgsProcessingFeedback (safe from the worker thread)."""

    def __init__(self, feedback):
        self.fb = feedback

    def progress(self, fraction: float) -> None:
        self.fb.setProgress(100.0 * fraction)

    def info(self, message: str) -> None:
        self.fb.pushInfo(message)

    def warning(self, message: str) -> None:
        self.fb.pushWarning(message)

    def is_cancelled(self) -> bool:
        return self.fb.isCanceled()


def raster_path(layer, name: str) -> str:
    """File path behind a GDAL raster layer, or a clear error for other providers."""
    if layer is None:
        raise QgsProcessingException(tr(f"{name}: no raster layer given or it could not be loaded"))
    if layer.providerType() != "gdal":
        raise QgsProcessingException(
            tr(f"{name}: layer '{layer.name()}' is served by the '{layer.providerType()}' provider; "
               "pansharpening reads files through GDAL (export it to GeoTIFF first)")
        )
    parts = QgsProviderRegistry.instance().decodeUri("gdal", layer.source())
    return parts.get("path") or layer.source()
