"""Processing algorithm ``ksdiff:pansharpen``: fuse a PAN and an MS raster onto the PAN grid."""
from __future__ import annotations

import os

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
)
from qgis.PyQt.QtCore import QCoreApplication

from ..engine import classical
from ..engine.errors import Cancelled, InputError
from ..engine.model_card import bundled_cards
from ..engine.pipeline import method_names, pansharpen
from ..engine.raster_io import open_raster
from ..engine.sensors import SENSORS
from ..engine.bandcolour import rgb_bands
from .common import NaturalColour, ProcessingFeedback, raster_path
from .layer_pair import dialog_defaults

DEVICES = ["auto", "cuda", "cpu"]


def tr(text: str) -> str:
    return QCoreApplication.translate("KsdiffPansharpen", text)


class PansharpenAlgorithm(QgsProcessingAlgorithm):
    PAN, MS, SENSOR, METHOD, MODEL, DEVICE = "PAN", "MS", "SENSOR", "METHOD", "MODEL", "DEVICE"
    TILE_SIZE, OVERLAP, THREADS, OUTPUT = "TILE_SIZE", "OVERLAP", "THREADS", "OUTPUT"

    def name(self) -> str:
        return "pansharpen"

    def displayName(self) -> str:  # noqa: N802
        return tr("Pansharpen (KSDiff)")

    def group(self) -> str:
        return tr("Pansharpening")

    def groupId(self) -> str:  # noqa: N802
        return "pansharpening"

    def tags(self) -> list[str]:
        return tr("pansharpening,fusion,panchromatic,multispectral,ksdiff,diffusion,brovey,gsa,mtf,glp").split(",")

    def shortHelpString(self) -> str:  # noqa: N802
        sensors = "".join(f"<li><b>{k}</b>: {s.name}, ratio {s.ratio}</li>" for k, s in SENSORS.items())
        methods = "".join(f"<li><b>{k}</b>: {v}</li>" for k, v in method_names().items())
        bundled = ", ".join(bundled_cards()) or "none yet"
        return tr(
            "Fuses a panchromatic (PAN) band and a multispectral (MS) raster into MS at the PAN resolution. "
            "The output lies on the PAN pixel grid over the PAN/MS overlap, keeps the MS data type, band names "
            "and nodata, and is written tile by tile (any scene size).<br><br>"
            "<b>PAN</b>: one-band panchromatic raster. <b>MS</b>: multispectral raster with the sensor's bands, "
            "pixels a whole number of times coarser than PAN (e.g. 4); another CRS or a shifted grid is handled "
            "(with a warning).<br><b>Sensor</b>: sets the band layout and the MTF (blur) of the sensor:"
            f"<ul>{sensors}</ul><b>Method</b>:<ul>{methods}</ul>Bundled KSDiff models: {bundled}.<br>"
            "<b>Model</b> (advanced): an ONNX model with its model card, overriding the bundled one. "
            "<b>Device</b> (advanced): where a learned model runs (auto uses an NVIDIA GPU when present). "
            "<b>Tile size</b> / <b>Overlap</b> (advanced): PAN pixels per tile and blended overlap between tiles; "
            "smaller tiles use less memory (tiles that would not fit in half the free memory are made smaller, with a "
            "warning). <b>Threads</b> (advanced): CPU threads for a learned model "
            "(0 = all cores)."
        )

    def createInstance(self):  # noqa: N802
        return PansharpenAlgorithm()

    def initAlgorithm(self, config=None):  # noqa: N802
        # the dialog would otherwise preselect the active layer for both: start on the project's likely pair
        pair = dialog_defaults() or (None, None)
        self.addParameter(QgsProcessingParameterRasterLayer(self.PAN, tr("Panchromatic (PAN) raster"),
                                                            defaultValue=pair[0]))
        self.addParameter(QgsProcessingParameterRasterLayer(self.MS, tr("Multispectral (MS) raster"),
                                                            defaultValue=pair[1]))
        self.addParameter(
            QgsProcessingParameterEnum(self.SENSOR, tr("Sensor"), options=list(SENSORS), defaultValue="wv2",
                                       usesStaticStrings=True)
        )
        self.addParameter(
            QgsProcessingParameterEnum(self.METHOD, tr("Method"), options=list(method_names()),
                                       defaultValue="ksdiff" if bundled_cards() else classical.BEST_CLASSICAL,
                                       usesStaticStrings=True)
        )
        advanced = [
            QgsProcessingParameterFile(self.MODEL, tr("ONNX model overriding the bundled one"), extension="onnx",
                                       optional=True),
            QgsProcessingParameterEnum(self.DEVICE, tr("Device for learned models"), options=DEVICES,
                                       defaultValue="auto", usesStaticStrings=True),
            QgsProcessingParameterNumber(self.TILE_SIZE, tr("Tile size (PAN pixels)"),
                                         QgsProcessingParameterNumber.Integer, defaultValue=512, minValue=64,
                                         maxValue=8192),
            QgsProcessingParameterNumber(self.OVERLAP, tr("Tile overlap (PAN pixels)"),
                                         QgsProcessingParameterNumber.Integer, defaultValue=32, minValue=0,
                                         maxValue=4096),
            QgsProcessingParameterNumber(self.THREADS, tr("CPU threads for a learned model (0 = all cores)"),
                                         QgsProcessingParameterNumber.Integer, defaultValue=0, minValue=0,
                                         maxValue=256),
        ]
        for p in advanced:
            p.setFlags(p.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
            self.addParameter(p)
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, tr("Pansharpened")))

    def supportedOutputRasterLayerExtensions(self):  # noqa: N802
        return ["tif"]

    def checkParameterValues(self, parameters, context):  # noqa: N802
        ok, msg = super().checkParameterValues(parameters, context)
        if not ok:
            # QGIS only says "Incorrect parameter value": say what is wrong with a file that won't load
            for name in (self.PAN, self.MS):
                value = parameters.get(name)
                if isinstance(value, str) and os.path.isfile(value):
                    try:
                        open_raster(value, name)
                    except InputError as e:
                        return False, str(e)
        return ok, msg

    def prepareAlgorithm(self, parameters, context, feedback):  # noqa: N802
        # main thread: copy everything the worker needs; it never touches layers or the project
        self._pan = raster_path(self.parameterAsRasterLayer(parameters, self.PAN, context), "PAN")
        self._ms = raster_path(self.parameterAsRasterLayer(parameters, self.MS, context), "MS")
        self._sensor = self.parameterAsEnumString(parameters, self.SENSOR, context)
        self._method = self.parameterAsEnumString(parameters, self.METHOD, context)
        self._model = self.parameterAsFile(parameters, self.MODEL, context) or None
        self._device = self.parameterAsEnumString(parameters, self.DEVICE, context)
        self._tile = self.parameterAsInt(parameters, self.TILE_SIZE, context)
        self._overlap = self.parameterAsInt(parameters, self.OVERLAP, context)
        self._threads = self.parameterAsInt(parameters, self.THREADS, context)
        self._ms_name = self.parameterAsRasterLayer(parameters, self.MS, context).name()
        return True

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        # resolved here, not in prepareAlgorithm: only this (worker) context's layers-to-load survive the task
        self._output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        try:
            result = pansharpen(
                self._pan, self._ms, self._output, sensor=self._sensor, method=self._method,
                tile_size=self._tile, overlap=self._overlap, model_path=self._model, device=self._device,
                feedback=ProcessingFeedback(feedback), threads=self._threads,
            )
        except InputError as e:
            raise QgsProcessingException(str(e)) from e
        except Cancelled:
            raise QgsProcessingException(tr("Cancelled: no output was written")) from None
        except OSError as e:
            raise QgsProcessingException(tr(f"Reading or writing a raster failed: {e}")) from e
        feedback.pushInfo(
            tr(f"Wrote {result.width}x{result.height} pixels in {result.tiles} tile(s) in {result.seconds:.1f} s "
               f"({result.width * result.height / 1e6 / max(result.seconds, 1e-9):.2f} Mpx/s) on {result.device}")
        )
        self._describe_layer_to_load(context, rgb_bands(result.band_names))
        return {self.OUTPUT: self._output}

    def _describe_layer_to_load(self, context, rgb: tuple[int, int, int] | None) -> None:
        """Name the layer the dialog loads after the method and MS layer, and show it in natural colour."""
        if not context.willLoadLayerOnCompletion(self._output):
            return
        details = context.layerToLoadOnCompletionDetails(self._output)
        label = method_names()[self._method].split(" (")[0]
        # QGIS still prefers the file name for a typed path (its "use filename as layer name" setting)
        details.name = "{} – {}".format(label, self._ms_name)
        if rgb is not None:
            details.setPostProcessor(NaturalColour.create(rgb))
