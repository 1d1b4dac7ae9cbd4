"""What the Processing algorithms share: feedback forwarding and the GDAL source behind a raster layer."""
from __future__ import annotations

from qgis.core import (
    QgsContrastEnhancement,
    QgsMultiBandColorRenderer,
    QgsProcessingException,
    QgsProcessingLayerPostProcessorInterface,
    QgsRasterMinMaxOrigin,
    QgsRectangle,
)

from ..engine.feedback import Feedback
from .base import translator
from .compat import WKT_FOR_GDAL

tr = translator("Ksdiff")


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
    """The GDAL dataset name behind a GDAL raster layer, or a clear error for other providers.

    That is the layer's full source, not just its file: ``/vsizip/…/scene.zip/pan.tif`` keeps the
    archive prefix and the member, ``GPKG:file.gpkg:table`` the table, ``NETCDF:"f.nc":var`` the
    subdataset. Only QGIS's own ``|key:value`` URI parts are dropped: GDAL does not know them.
    """
    if layer is None:
        raise QgsProcessingException(tr("{}: no raster layer given or it could not be loaded").format(name))
    if layer.providerType() != "gdal":
        raise QgsProcessingException(
            tr("{}: layer '{}' is served by the '{}' provider; pansharpening reads files through GDAL "
               "(export it to GeoTIFF first)").format(name, layer.name(), layer.providerType())
        )
    return layer.source().split("|")[0]


def layer_nodata(layer) -> float | None:
    """The no-data value set on a QGIS raster layer (Layer Properties > Transparency, one value) when its file
    declares none, else None: the pipeline reads the file, which does not carry it."""
    provider = layer.dataProvider() if layer is not None else None
    if provider is None or provider.sourceHasNoDataValue(1):
        return None
    for span in provider.userNoDataValues(1):
        if span.min() == span.max():
            return float(span.min())
    return None


def layer_crs(layer) -> str | None:
    """The CRS set on a QGIS raster layer (Layer Properties > Source, or QGIS's choice for a file without one), as
    WKT, when it is not its file's; else None. QGIS shows the layer's pixels there; the pipeline reads the file."""
    crs = layer.crs() if layer is not None else None
    provider = layer.dataProvider() if layer is not None else None
    if crs is None or not crs.isValid() or (provider is not None and provider.crs() == crs):
        return None
    return crs.toWkt(WKT_FOR_GDAL)


class NaturalColour(QgsProcessingLayerPostProcessorInterface):
    """Shows a loaded multiband result as red/green/blue = the given bands (None: as QGIS chooses), stretched
    2–98 %, read afresh from its file."""

    _keep = []   # Processing holds a plain pointer to it: keep every instance alive (a few bytes each)

    def __init__(self, rgb: tuple[int, int, int] | None):
        super().__init__()
        self.rgb = rgb

    @classmethod
    def create(cls, rgb: tuple[int, int, int] | None) -> "NaturalColour":
        processor = cls(rgb)
        cls._keep.append(processor)
        return processor

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802
        # a run onto a file the project already shows reuses that layer, whose provider still reads the replaced
        # file (the writer renames the new one into place): read the new file
        layer.reload()
        if self.rgb is not None and layer.bandCount() >= max(self.rgb):
            layer.setRenderer(QgsMultiBandColorRenderer(layer.dataProvider(), *self.rgb))
            layer.setContrastEnhancement(QgsContrastEnhancement.StretchToMinimumMaximum,
                                         QgsRasterMinMaxOrigin.CumulativeCut, QgsRectangle())
            layer.triggerRepaint()
