"""A plausible PAN/MS pair among the project's raster layers, to preselect in the dialog."""
from __future__ import annotations

import os
import re

from qgis.core import QgsCoordinateTransform, QgsProject, QgsProviderRegistry, QgsRaster, QgsRasterLayer
from qgis.PyQt.QtCore import QCoreApplication, QThread

from .common import gdal_band_count

# words that only say which of the pair a name is, dropped before comparing names: pair1_pan / pair1_ms, DIMAP's
# IMG_..._P_... / IMG_..._MS_..., Maxar's ..._P1BS_... / ..._M1BS_..., PAN / MUL, Landsat's B8 / B2-B5
PAN_WORDS = {"pan", "p", "panchro", "panchromatic", "p1bs", "b8"}
MS_WORDS = {"ms", "mul", "mss", "multi", "multispectral", "m1bs", "xs", "b2", "b3", "b4", "b5", "rgb", "rgbn",
            "rgbnir"}
OVERLAP_STEP = 0.01   # overlaps within 1 % of the PAN's extent count as equal: the names and band counts decide


def _pixel_size(layer: QgsRasterLayer) -> float:
    return max(layer.rasterUnitsPerPixelX(), layer.rasterUnitsPerPixelY())


def _overlap(pan: QgsRasterLayer, ms: QgsRasterLayer, project: QgsProject) -> float:
    """Fraction of the PAN extent that the MS layer covers (0 when it cannot be transformed)."""
    extent = ms.extent()
    if ms.crs() != pan.crs():
        try:
            to_pan = QgsCoordinateTransform(ms.crs(), pan.crs(), project.transformContext())
            extent = to_pan.transformBoundingBox(extent)
        except Exception:  # noqa: BLE001 - QgsCsException: an MS that cannot be placed is no candidate
            return 0.0
    area = pan.extent().area()
    return pan.extent().intersect(extent).area() / area if area > 0 else 0.0


def name_stem(name: str) -> str:
    """``name`` without its extension and the words naming a PAN or an MS: 'pair1_pan' and 'pair1_ms.tif' both give
    'pair1', 'IMG_PHR1A_P_001' and 'IMG_PHR1A_MS_001' 'img phr1a 001'."""
    base, ext = os.path.splitext(name)
    words = re.split(r"[^0-9a-z]+", (base if ext.lower() in (".tif", ".tiff", ".vrt", ".jp2", ".img") else name)
                     .lower())
    return " ".join(w for w in words if w and w not in PAN_WORDS | MS_WORDS)


def _names(layer: QgsRasterLayer) -> set[str]:
    """The stems of the layer's name and of its file's name (a renamed layer still matches by its file)."""
    path = layer.source().split("|")[0]
    return {s for s in (name_stem(layer.name()), name_stem(os.path.basename(path))) if s}


def _same_stem(pan: QgsRasterLayer, ms: QgsRasterLayer) -> bool:
    return bool(_names(pan) & _names(ms))


def _band_count(layer: QgsRasterLayer) -> int:
    """The bands ``plausible_pair`` counts for ``layer``. QGIS shows a file's mask as one more band, an alpha band
    after the file's own; whether the last band is that or the file's own alpha band only GDAL can tell, and the
    dialog opens often: the file is opened (``gdal_band_count``) only where it decides what the layer is: 2 bands
    shown (a PAN with a mask, or no PAN), 4 or more (an MS's bands, which rank a tie). 3 shown, the last alpha: two
    bands besides it either way, no MS. A source that is no local file (``/vsicurl/``, ``/vsimem/``) is not
    opened: what QGIS shows is all there is to go by."""
    provider = layer.dataProvider()
    shown = provider.bandCount()
    if shown < 2 or provider.colorInterpretation(shown) != QgsRaster.AlphaBand:
        return shown
    if shown == 3:
        return 2
    path = QgsProviderRegistry.instance().decodeUri("gdal", layer.source()).get("path") or ""
    return gdal_band_count(layer) if os.path.isfile(path) else shown


def plausible_pair(project: QgsProject) -> tuple[str, str] | None:
    """(PAN id, MS id): a one-band raster and a coarser multi-band raster overlapping it most, or None. Overlaps
    within ``OVERLAP_STEP`` tie; a tie goes to the MS named as the PAN is (pair1_pan: pair1_ms), then to more bands
    (QA: with pair1_pan, pair1_ms and ms3, a 3-band subset of it, the dialog chose ms3, the first layer id). Bands
    as the file has them (``_band_count``): QGIS shows a file's mask as one more band (QA: a masked PAN had 2)."""
    rasters = [lyr for lyr in project.mapLayers().values()
               if isinstance(lyr, QgsRasterLayer) and lyr.isValid() and lyr.providerType() == "gdal"]
    bands = {lyr.id(): _band_count(lyr) for lyr in rasters}
    best: tuple[tuple[int, bool, int], str, str] | None = None
    for pan in (lyr for lyr in rasters if bands[lyr.id()] == 1):
        for ms in (lyr for lyr in rasters if bands[lyr.id()] >= 3):
            same_crs = ms.crs() == pan.crs()
            if same_crs and _pixel_size(ms) <= _pixel_size(pan):
                continue   # an MS band set at the PAN resolution (or finer) is not the MS of this PAN
            share = _overlap(pan, ms, project)
            if share <= 0:
                continue
            rank = (round(share / OVERLAP_STEP), _same_stem(pan, ms), bands[ms.id()])
            if best is None or rank > best[0]:
                best = (rank, pan.id(), ms.id())
    return best and (best[1], best[2])


def dialog_defaults() -> tuple[str, str] | None:
    """The pair for the current project, only on the main thread (layers must not be touched elsewhere)."""
    app = QCoreApplication.instance()
    if app is None or QThread.currentThread() != app.thread():
        return None
    return plausible_pair(QgsProject.instance())
