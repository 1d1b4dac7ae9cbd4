"""A raster layer parameter that loads a file name without GDAL's messages on the console.

QGIS loads an input given as a file name (``processing.run``, ``qgis_process``) when it checks the value, and its GDAL
provider tries to warp a raster without georeferencing: "ERROR 1: Unable to compute a transformation between
pixel/line and georeferenced coordinates ... SRC_METHOD=NO_GEOTRANSFORM" was printed before ksdiff:pansharpen's own
refusal ("has no georeferencing ... needs both rasters on a map grid"), and before ksdiff:assess compared such rasters
pixel for pixel. qgis_process checks every value this way before any of the algorithm's code runs; the algorithms say
themselves what is wrong with an input.
"""
from __future__ import annotations

from qgis.core import QgsProcessingParameterRasterLayer

from ..engine.gdalutil import quiet_gdal
from .compat import FLAG_OPTIONAL, copied_from


class RasterInput(QgsProcessingParameterRasterLayer):
    """QGIS's raster layer parameter whose value check (which loads a file name as a layer) keeps GDAL quiet."""

    def __init__(self, name: str, description: str, defaultValue=None, optional: bool = False):  # noqa: N803
        super().__init__(name, description, defaultValue, optional)

    def clone(self):
        return copied_from(RasterInput(self.name(), self.description(), self.defaultValue(),
                                       bool(self.flags() & FLAG_OPTIONAL)), self)

    def checkValueIsAcceptable(self, value, context=None):  # noqa: N802
        with quiet_gdal():
            return super().checkValueIsAcceptable(value, context)
