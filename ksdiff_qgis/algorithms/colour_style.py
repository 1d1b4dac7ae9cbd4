"""Natural colour for a fused output in QGIS: on the layer a run loads, and in a ``<output>.qml`` default style.

QGIS 3.22 ignores a GeoTIFF's colour interpretation (``engine.bandcolour``) and draws a B, G, R, NIR product as
red = band 1 (Blue), green = 2, blue = 3 (Red), an 8-bit one unstretched. The loaded layer is set here
(``NaturalColour``); a file opened any other way (Add Raster Layer, drag and drop, a colleague) gets the same from the
style QGIS loads by itself from ``<output basename>.qml`` beside it (``write_default_style``), which the
engine's commit removes with the output it replaces (``raster_io.style_sidecar``).
"""
from __future__ import annotations

import contextlib
import os

from qgis.core import (
    QgsContrastEnhancement,
    QgsMapLayer,
    QgsMultiBandColorRenderer,
    QgsProcessingLayerPostProcessorInterface,
    QgsRasterLayer,
    QgsRasterMinMaxOrigin,
    QgsRectangle,
)

from ..engine.raster_io import style_sidecar
from .common import reread_source


def show_natural_colour(layer: QgsRasterLayer, rgb: tuple[int, int, int] | None) -> bool:
    """Draw ``layer`` as red/green/blue = the 1-based bands ``rgb``, each stretched over its 2–98 % cumulative cut;
    False (layer unchanged) when ``rgb`` is None or the layer lacks those bands."""
    if rgb is None or layer.bandCount() < max(rgb):
        return False
    layer.setRenderer(QgsMultiBandColorRenderer(layer.dataProvider(), *rgb))
    layer.setContrastEnhancement(QgsContrastEnhancement.StretchToMinimumMaximum,
                                 QgsRasterMinMaxOrigin.CumulativeCut, QgsRectangle())
    return True


def write_default_style(output: str, rgb: tuple[int, int, int] | None) -> str:
    """Save the natural-colour style of the committed GeoTIFF ``output`` as its default style (``style_sidecar``):
    only when its red, green and blue bands are known (``rgb``). The commit removed the replaced output's style, so
    none of another band layout stays. Returns the line for the log."""
    qml, pam = style_sidecar(output), output + ".aux.xml"
    had_pam = os.path.exists(pam)   # a COG's IMAGERY metadata lives there
    # the file alone, without a default style: a stale one (not removable, said by the commit) must not come back
    layer = QgsRasterLayer(output, os.path.basename(output), "gdal", QgsRasterLayer.LayerOptions(False))
    shown = layer.isValid() and show_natural_colour(layer, rgb)
    # QGIS's own writer (the layer's renderer as QGIS reads it back); the symbology alone: no layer name or notes
    message, ok = layer.saveNamedStyle(qml, QgsMapLayer.Symbology) if shown else ("", False)
    del layer   # closes the file: GDAL writes the histograms the stretch read into an .aux.xml then
    if not had_pam and os.path.exists(pam):   # a file of its own beside the output: not left by this step
        with contextlib.suppress(OSError):
            os.remove(pam)
    if not shown:
        return ("no QGIS style written: the output's red, green and blue bands are not known by name or colour "
                "interpretation (QGIS draws bands 1, 2, 3)")
    if not ok:
        return f"the natural-colour style {qml} could not be written ({message}); the output itself is complete"
    return f"wrote {os.path.basename(qml)}: QGIS opens the output in natural colour however it is added"


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
        # file (the writer renames the new one into place). reload() reopens the file but keeps the provider's
        # cached band statistics and histograms, from which the stretch below would be built (QA: red 1–558 from
        # the old file, 20–524 from the new one): a new provider reads the new file and its statistics afresh
        reread_source(layer)
        if show_natural_colour(layer, self.rgb):
            layer.triggerRepaint()
