"""A plausible PAN/MS pair among the project's raster layers, to preselect in the dialog."""
from __future__ import annotations

from qgis.core import QgsCoordinateTransform, QgsProject, QgsRasterLayer
from qgis.PyQt.QtCore import QCoreApplication, QThread


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


def plausible_pair(project: QgsProject) -> tuple[str, str] | None:
    """(PAN id, MS id): a one-band raster and a coarser multi-band raster overlapping it most, or None."""
    rasters = [lyr for lyr in project.mapLayers().values()
               if isinstance(lyr, QgsRasterLayer) and lyr.isValid() and lyr.providerType() == "gdal"]
    best: tuple[float, str, str] | None = None
    for pan in (lyr for lyr in rasters if lyr.bandCount() == 1):
        for ms in (lyr for lyr in rasters if lyr.bandCount() >= 3):
            same_crs = ms.crs() == pan.crs()
            if same_crs and _pixel_size(ms) <= _pixel_size(pan):
                continue   # an MS band set at the PAN resolution (or finer) is not the MS of this PAN
            share = _overlap(pan, ms, project)
            if share > 0 and (best is None or share > best[0]):
                best = (share, pan.id(), ms.id())
    return best and (best[1], best[2])


def dialog_defaults() -> tuple[str, str] | None:
    """The pair for the current project, only on the main thread (layers must not be touched elsewhere)."""
    app = QCoreApplication.instance()
    if app is None or QThread.currentThread() != app.thread():
        return None
    return plausible_pair(QgsProject.instance())
