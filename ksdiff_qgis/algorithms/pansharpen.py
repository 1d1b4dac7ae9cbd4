"""Processing algorithm ``ksdiff:pansharpen``: fuse a PAN and an MS raster onto the PAN grid."""
from __future__ import annotations

import os

from qgis.core import (
    QgsExpression,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterExtent,
    QgsProcessingParameterFile,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterString,
    QgsProperty,
)
from qgis.PyQt.QtCore import QVariant

from ..engine import gdaldrivers, labels, memory, selfcheck, threadlimits
from ..engine.bandcolour import missing_colours, rgb_bands, wavelength_choice
from ..engine.bands import check_selection
from ..engine.errors import Cancelled, InputError
from ..engine.learned import DEFAULT_PRECISION, PRECISION_ALIASES, PRECISIONS
from ..engine.model_card import bundled_cards, check_model_file, not_onnx_words
from ..engine.pipeline import LEARNED_METHODS, check_tiling, method_names, pansharpen
from ..engine.raster_io import (
    open_raster,
    outputs,
    overview_hint,
    owner_of,
    removed_style_note,
    shared_style_note,
    style_sidecar,
)
from ..engine.runtime import default_threads
from ..engine.sensors import AUTO, SENSORS
from .area import UnreadableCrs, referenced_extent, unreadable_extent
from .band_param import BandList
from .base import KsdiffAlgorithm, releases_on_failure, translator
from .colour_style import NaturalColour, write_default_style
from .common import (
    ProcessingFeedback,
    file_nodata_unticked,
    gdal_band_count,
    input_notes,
    layer_crs,
    layer_nodata,
    mask_band_chosen,
    ms_operation,
    raster_path,
)
from .compat import NUMBER_INTEGER, WKT_FOR_GDAL, KeyedEnum, advanced, set_help
from .layer_name import bands_detail
from .layer_pair import dialog_defaults
from .options import (
    BAND_FORMS,
    compression_help,
    compression_labels,
    device_labels,
    method_help,
    method_labels,
    parse_bands,
    parse_gains,
    precision_labels,
    sensor_help,
    sensor_labels,
)
from .raster_param import RasterInput
from .temp_leftovers import sweep_temp_leftovers

DEVICES = ["auto", "cuda", "cpu"]
# every run: what fused and why (QA: a forced METHOD ended with 13 empty SELFCHECK_* fields and nothing naming the
# method or the model)
RUN_OUTPUTS = {
    "METHOD_USED": "Method used",
    "MODEL_USED": "Model used (learned methods)",
    "METHOD_REASON": "Why this method",
}
# METHOD auto: the self-check's figures, as outputs for graphical models and scripts (None when not run)
SELFCHECK_OUTPUTS = {
    "SELFCHECK_METHOD": "Self-check: method used",
    "SELFCHECK_REASON": "Self-check: why",
    "SELFCHECK_CLASSICAL_METHOD": "Self-check: best classical method on this scene",
    "SELFCHECK_KSDIFF_ERGAS": "Self-check: KSDiff ERGAS (Wald, on this scene)",
    "SELFCHECK_CLASSICAL_ERGAS": "Self-check: best classical ERGAS (Wald, on this scene)",
    "SELFCHECK_KSDIFF_SAM": "Self-check: KSDiff SAM (Wald)",
    "SELFCHECK_CLASSICAL_SAM": "Self-check: best classical SAM (Wald)",
    "SELFCHECK_KSDIFF_R_ERGAS": "Self-check: KSDiff R-ERGAS (full resolution)",
    "SELFCHECK_CLASSICAL_R_ERGAS": "Self-check: best classical R-ERGAS (full resolution)",
    "SELFCHECK_KSDIFF_CHECKERBOARD": "Self-check: KSDiff checkerboard response (worst band)",
    "SELFCHECK_PAN_CHECKERBOARD": "Self-check: PAN checkerboard response",
    "SELFCHECK_MS_CHECKERBOARD": "Self-check: MS checkerboard response (own resolution, worst band)",
    "SELFCHECK_PIXELS": "Self-check: MS pixels in the sample",
}

NOT_RUN = "not run (METHOD forced)"   # SELFCHECK_REASON of a run whose METHOD named the method


tr = translator("KsdiffPansharpen")
RASTER_OPTIONS_WIDGET = "processing.algs.gdal.ui.RasterOptionsWidget.RasterOptionsWidgetWrapper"


class PansharpenAlgorithm(KsdiffAlgorithm):
    PAN, MS, SENSOR, METHOD, MODEL, DEVICE = "PAN", "MS", "SENSOR", "METHOD", "MODEL", "DEVICE"
    MS_BANDS, EXTENT, MTF_GAINS = "MS_BANDS", "EXTENT", "MTF_GAINS"
    TILE_SIZE, OVERLAP, THREADS, OUTPUT = "TILE_SIZE", "OVERLAP", "THREADS", "OUTPUT"
    PRECISION, CONSISTENCY, COREGISTER = "PRECISION", "CONSISTENCY", "COREGISTER"
    COMPRESSION, COG, CREATE_OPTIONS = "COMPRESSION", "COG", "CREATE_OPTIONS"
    HELP_ANCHOR = "parameters-of-ksdiffpansharpen"   # README.md's section, as GitHub slugs its heading

    def name(self) -> str:
        return "pansharpen"

    def displayName(self) -> str:  # noqa: N802
        return tr("Pansharpen (KSDiff)")

    def shortDescription(self) -> str:  # noqa: N802
        # one line for the toolbox tooltip (it showed only the name and id)
        return tr("Fuses a panchromatic and a multispectral raster into MS at the PAN resolution, with KSDiff or a "
                  "classical method.")

    def tags(self) -> list[str]:
        return tr("pansharpening,fusion,panchromatic,multispectral,ksdiff,diffusion,brovey,gsa,mtf,glp").split(",")

    def shortHelpString(self) -> str:  # noqa: N802
        # plain text, one line per parameter group: the dialog lists the "- Label: text" lines (helptext.help_html);
        # `qgis_process help` prints it as it is (3.22's prints raw HTML)
        bundled = ", ".join(bundled_cards()) or tr("none yet")
        return tr(
            "Fuses a panchromatic (PAN) band and a multispectral (MS) raster into MS at the PAN resolution, on the "
            "PAN grid over their overlap, tile by tile (any scene size). The output keeps the MS data type, band "
            "names and nodata; nodata or masked input pixels are nodata in it. A nodata value set on a layer "
            "(Layer Properties > Transparency) is used when the file has none; with 'No data value' unticked there, "
            "the file's is not used. QGIS opens the output in natural colour however it is added, by a style "
            "written beside it (fused.tif: fused.qml); only a style KSDiff wrote is ever replaced or removed, yours "
            "is kept.\n"
            "- Sensor: auto (default) guesses it from pixel sizes, band count and product metadata naming the "
            "input (GDAL IMAGERY, Maxar .IMD, Landsat MTL, DIMAP) and logs why; else generic. Unnamed bands are "
            "named from a VRT's source files (..._B4.TIF) or the DIMAP.\n"
            "- Method: auto (default) self-checks the scene (Wald, R-ERGAS, checkerboard) and uses KSDiff only "
            "where it beats the best classical method, else that one, saying why (SELFCHECK_...); ksdiff forces it. "
            "KSDiff needs ONNX Runtime: ksdiff:install_runtime.\n"
            "- Area of interest: only that window, snapped outward to PAN pixels, is read and written (default: the "
            "whole PAN/MS overlap); at least 8 x 8 MS pixels (32 x 32 PAN pixels at ratio 4), as a whole scene.\n"
            "- MS bands (advanced): the bands to write, in order (4,3,2,1 in scripts). KSDiff fuses its model's bands "
            "(found by name), MTF-GLP-HPM the others; without all of them ksdiff is refused and auto goes classical.\n"
            "- Memory and threads: tiles run a few at a time on all cores, made smaller (with a warning) when they "
            "would not fit in half the free memory; the output does not depend on the thread count.\n"
            "- Precision (advanced): int8 on the CPU by default, about 1.6x faster than float32 with ERGAS within "
            "1 %; fp32 (or float32) runs the model unquantized: use it to compare two versions of a scene.\n"
            "- Consistency (advanced, on by default): each learned tile is corrected to give back the MS when "
            "blurred and decimated; off keeps the network's own output (e.g. PAN and MS taken at different "
            "times).\n"
            "- Co-register (advanced, off by default): moves the MS onto the PAN by the offset measured on the "
            "scene, unless the measurement's error on this MS could explain it; off, an offset of half a PAN pixel "
            "or more is warned.\n"
            "- Output (advanced): lossless DEFLATE by default; optionally a Cloud-Optimized GeoTIFF; GDAL creation "
            "options KEY=VALUE separated by | override ours (e.g. ZLEVEL=9, NBITS=11). It records what made it "
            "(TIFFTAG_SOFTWARE, KSDIFF_* metadata).\n"
            "Outputs METHOD_USED, MODEL_USED and METHOD_REASON name what fused and why, for any METHOD.\n"
            "Bundled KSDiff models: {}. Each option's key (shown in brackets) can be given to qgis_process, "
            "as can its label or number. The labels are short; each sensor's bands and ratio and each method's "
            "principle are in the parameter's tooltip (and in qgis_process help)."
        ).format(bundled)

    def initAlgorithm(self, config=None):  # noqa: N802
        # the dialog would otherwise preselect the active layer for both: start on the project's likely pair
        pair = dialog_defaults() or (None, None)
        enums = {
            self.SENSOR: KeyedEnum(self.SENSOR, tr("Sensor"), [AUTO, *SENSORS], sensor_labels(tr), AUTO),
            self.METHOD: KeyedEnum(self.METHOD, tr("Method"), list(method_names()), method_labels(tr),
                                   selfcheck.AUTO),
            self.DEVICE: KeyedEnum(self.DEVICE, tr("Device for learned models"), DEVICES, device_labels(tr), "auto"),
            self.PRECISION: KeyedEnum(self.PRECISION, tr("Precision of a learned model on CPU"), list(PRECISIONS),
                                      precision_labels(tr), DEFAULT_PRECISION, aliases=PRECISION_ALIASES),
            self.COMPRESSION: KeyedEnum(self.COMPRESSION, tr("Output compression"), list(outputs.COMPRESSIONS),
                                        compression_labels(tr), outputs.DEFAULT_COMPRESSION),
        }
        main = [
            (RasterInput(self.PAN, tr("Panchromatic (PAN) raster"), defaultValue=pair[0]),
             tr("One-band panchromatic raster.")),
            (RasterInput(self.MS, tr("Multispectral (MS) raster"), defaultValue=pair[1]),
             tr("Multispectral raster, pixels coarser than PAN (e.g. 4 times); another CRS, a shifted grid or a "
                "ratio that is not a whole number is handled (with a warning).")),
            (enums[self.SENSOR],
             tr("Sets the band layout and MTF (blur) of the sensor. Default: auto (guessed from the data and its "
                "metadata; the log says what and why).") + " " + sensor_help(tr)),
            (enums[self.METHOD], tr("KSDiff (learned) or a classical method. Default: auto (KSDiff, checked on "
                                    "this scene first; the best classical method there when the model loses).")
             + " " + method_help(tr)),
            (QgsProcessingParameterExtent(self.EXTENT, tr("Area of interest"), optional=True),
             tr("Only this window is fused, snapped outward to the PAN grid; any CRS (reprojected to PAN's). It must "
                "cover 8 x 8 MS pixels of the overlap, as a whole scene must (32 x 32 PAN pixels at ratio 4). "
                "Default: the whole PAN/MS overlap.")),
        ]
        extra = [
            (BandList(self.MS_BANDS, tr("MS bands to fuse"), self.MS),
             tr("Default: all, in the file's order. Every chosen band is written, in the order chosen (scripts: "
                "4,3,2,1, 4 3 2 1 or 4;3;2;1). KSDiff needs "
                "every band of its model among them (found by name; an 8-band product's Blue, Green, Red, NIR go to "
                "the 4-band model, and so do a generic product's named Blue, Green, Red, NIR among 5 or more bands): "
                "it fuses those, MTF-GLP-HPM any others. A selection without all of them is "
                "refused for METHOD ksdiff; auto then uses a classical method, which fuses any bands.")),
            (QgsProcessingParameterString(self.MTF_GAINS, tr("MS MTF gains at Nyquist"), optional=True),
             tr("Default: the sensor's. One value for all bands or one per fused band, separated by commas or "
                "spaces, each between 0 and 1 (e.g. 0.3 for a generic sensor).")),
            (QgsProcessingParameterFile(self.MODEL, tr("ONNX model overriding the bundled one"), extension="onnx",
                                        optional=True),
             tr("An ONNX model with its model card (JSON) beside it.")),
            (enums[self.DEVICE], tr("Where a learned model runs. Default: auto (an NVIDIA GPU when present, else "
                                    "the CPU); cuda that cannot run falls back to the CPU with a warning.")),
            (enums[self.PRECISION],
             tr("Default: int8, the model's int8 variant on CPU when it carries one: about 1.6x faster end to end, "
                "ERGAS within 1 % of float32 on every bench scene (docs/BENCHMARKS.md); fp32 (or float32) runs it "
                "unquantized. Use fp32 to compare two versions of a scene (int8: one changed input pixel moves pixels "
                "all over its tiles by a few DN). A GPU always runs float32.")),
            (QgsProcessingParameterBoolean(self.CONSISTENCY, tr("Spectral consistency (learned methods)"),
                                           defaultValue=True),
             tr("One spectral-consistency step projecting a learned output onto the MS. On (default): each tile "
                "of a learned model is corrected so that, blurred by the MS sensor's MTF and "
                "decimated, it gives back the MS (lower ERGAS and Dλ on every validation scene). Off: the network's "
                "own output, e.g. for PAN and MS taken at different times. Classical methods are not affected.")),
            (QgsProcessingParameterBoolean(self.COREGISTER, tr("Co-register the MS onto the PAN"), defaultValue=False),
             tr("Off (default): the MS is placed where its georeferencing says, and an offset of half a PAN pixel "
                "or more between PAN and MS is warned (colour fringes along edges). On: the MS is moved by the "
                "offset measured on the scene (sub-pixel, the same over the whole scene) before the fusion; the "
                "output keeps the PAN's grid and georeferencing, and the log says how far the MS moved. An MS whose "
                "bands explain the PAN only in part (no band for the near-infrared the PAN sees, or one band) is "
                "measured less precisely: an offset under twice the measurement's error on it is left, with a "
                "warning.")),
            (QgsProcessingParameterNumber(self.TILE_SIZE, tr(labels.PARAMS["TILE_SIZE"]), NUMBER_INTEGER,
                                          defaultValue=512, minValue=64, maxValue=8192),
             tr("PAN pixels per tile side, at most: the classical methods' tiles; a learned model's tiles finish "
                "cells of this size and see up to OVERLAP more (512 with OVERLAP 32: tiles of up to 544 px; the "
                "whole output when smaller). Smaller tiles use less memory. A learned model adapts to each tile's "
                "content, so its pixels change with the tile size and the overlap (KSDiff on WorldView-2 pair 1, "
                "256 against 512: 1.4 % of the mean value on average, but 12.7 % at the 99th percentile of pixels and "
                "up to 134 % at single pixels near strong edges): keep both fixed across scenes you compare. "
                "Default: 512 (64 to 8192).")),
            (QgsProcessingParameterNumber(self.OVERLAP, tr(labels.PARAMS["OVERLAP"]), NUMBER_INTEGER,
                                          defaultValue=32, minValue=0, maxValue=4096),
             tr("Blended overlap between neighbouring tiles of a learned model, added to TILE_SIZE; its pixels "
                "change with it as with the tile size (keep it fixed across scenes you compare). Default: 32 (0 to "
                "half the tile size).")),
            (QgsProcessingParameterNumber(self.THREADS, tr(labels.PARAMS["THREADS"]),
                                          NUMBER_INTEGER, defaultValue=0, minValue=0, maxValue=256),
             tr("CPU threads ONNX Runtime may use. Default: 0 (all cores, shared out between the tiles fused at a "
                "time).")),
            (enums[self.COMPRESSION],
             tr("Lossless encoding of the output GeoTIFF. Default: deflate (level 1, with a predictor): fast and "
                "small.") + " " + compression_help(tr)),
            (QgsProcessingParameterBoolean(self.COG, tr("Write a Cloud-Optimized GeoTIFF"), defaultValue=False),
             tr("COG layout with internal overviews, for web and cloud use; takes a second pass.")),
            (self._create_options_parameter(),
             tr("Extra GDAL creation options (KEY=VALUE separated by |) overriding ours, e.g. ZLEVEL=9 or NBITS=11.")),
        ]
        for p, helptext in main:
            self.addParameter(set_help(p, helptext))
        for p, helptext in extra:
            self.addParameter(advanced(set_help(p, helptext)))
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, tr("Pansharpened")))
        for name, label in RUN_OUTPUTS.items():
            self.addOutput(QgsProcessingOutputString(name, tr(label)))
        for name, label in SELFCHECK_OUTPUTS.items():
            text = name in ("SELFCHECK_METHOD", "SELFCHECK_REASON", "SELFCHECK_CLASSICAL_METHOD")
            kind = QgsProcessingOutputString if text else QgsProcessingOutputNumber
            self.addOutput(kind(name, tr(label)))

    def _create_options_parameter(self) -> QgsProcessingParameterString:
        p = QgsProcessingParameterString(self.CREATE_OPTIONS, tr("Additional creation options"), defaultValue="",
                                         optional=True)
        # QGIS's own creation-options widget (profiles, a key/value table), as its GDAL algorithms use it; 3.22 knows
        # no "widget_type" for it (that showed a bare text box)
        p.setMetadata({"widget_wrapper": {"class": RASTER_OPTIONS_WIDGET}})
        return p

    def _disabled_driver(self, parameters, context) -> str | None:
        """A GDAL driver the run needs (GTiff; COG when ticked) unticked in Settings > Options > GDAL: said before
        the inputs are opened (QA: GTiff skipped made a valid GeoTIFF "not a raster GDAL can read"; COG skipped
        blamed creation options never given)."""
        why = gdaldrivers.disabled("GTiff", "reads GeoTIFF inputs and writes the output")
        if why is None and self.parameterAsBoolean(parameters, self.COG, context):
            why = gdaldrivers.disabled("COG", "writes the Cloud-Optimized GeoTIFF ('COG' is ticked: untick it for "
                                              "a plain GeoTIFF)")
        return why

    def checkParameterValues(self, parameters, context):  # noqa: N802
        disabled = self._disabled_driver(parameters, context)
        if disabled:
            return False, disabled
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
            model = parameters.get(self.MODEL)
            words = not_onnx_words(model) if isinstance(model, str) and model.strip() else None
            if words:
                return False, words
            extent = parameters.get(self.EXTENT)
            if extent not in (None, "") and \
                    not self.parameterDefinition(self.EXTENT).checkValueIsAcceptable(extent, context):
                return False, unreadable_extent(extent)   # as the run words an extent that gives no rectangle
        return ok, msg

    @releases_on_failure
    def prepareAlgorithm(self, parameters, context, feedback):  # noqa: N802
        disabled = self._disabled_driver(parameters, context)   # a model's child is not checked by QGIS 3.22
        if disabled:
            raise QgsProcessingException(disabled)
        # main thread: copy everything the worker needs; it never touches layers or the project
        pan_layer = self.parameterAsRasterLayer(parameters, self.PAN, context)
        ms_layer = self.parameterAsRasterLayer(parameters, self.MS, context)
        self._pan, self._ms = raster_path(pan_layer, "PAN"), raster_path(ms_layer, "MS")
        self._nodata = (layer_nodata(pan_layer), layer_nodata(ms_layer))
        # 'No data value' unticked on a layer: QGIS shows the file's nodata pixels as data, and the run fuses them
        self._file_nodata = (not file_nodata_unticked(pan_layer), not file_nodata_unticked(ms_layer))
        # layer settings the run reads past (the file's own per-band nodata values: the engine's warning)
        for note in input_notes({"PAN": pan_layer, "MS": ms_layer}, file_said=True):
            if feedback is not None:
                feedback.pushWarning(note)
        self._crs = (layer_crs(pan_layer), layer_crs(ms_layer))   # EXTENT (_area) is reprojected into the PAN's
        # the project's datum transformation MS -> PAN (Project > Properties > Transformations), as QGIS draws the MS
        self._operation = ms_operation(ms_layer, pan_layer, context)
        self._sensor = self._enum(parameters, self.SENSOR, context)
        self._method = self._enum(parameters, self.METHOD, context)
        self._model = self.parameterAsFile(parameters, self.MODEL, context) or None
        self._device = self._enum(parameters, self.DEVICE, context)
        self._precision = self._enum(parameters, self.PRECISION, context)
        self._consistency = self.parameterAsBoolean(parameters, self.CONSISTENCY, context)
        self._coregister = self.parameterAsBoolean(parameters, self.COREGISTER, context)
        # read as the check read them (``refusal``): a model's child is not checked by QGIS 3.22
        self._ms_bands = self._bands_of(ms_layer, parameters, context)
        self._gains = self._mtf_gains(parameters, context)
        self._extent, self._extent_wkt = self._area(parameters, context)
        self._tile = self.parameterAsInt(parameters, self.TILE_SIZE, context)
        self._overlap = self.parameterAsInt(parameters, self.OVERLAP, context)
        self._threads = self.parameterAsInt(parameters, self.THREADS, context)
        self._ms_name = self.parameterAsRasterLayer(parameters, self.MS, context).name()
        self._compression = self._enum(parameters, self.COMPRESSION, context)
        self._cog = self.parameterAsBoolean(parameters, self.COG, context)
        self._create_options = self.parameterAsString(parameters, self.CREATE_OPTIONS, context)
        return True

    def refusal(self, parameters, context) -> str | None:
        """The text parameters read as the run reads them (``prepareAlgorithm`` and the engine): MS_BANDS (also
        against the MS's band count), MTF_GAINS, EXTENT, a MODEL file that does not exist (whatever the METHOD: a
        classical one ignored it), CREATE_OPTIONS (KEY=VALUE, a whole NBITS), and OVERLAP against TILE_SIZE. Left
        to the run: what needs the sensor or the data (the number of MTF gains, the output against the inputs)."""
        def model() -> None:
            path = self.parameterAsFile(parameters, self.MODEL, context)
            if path:
                try:
                    check_model_file(path)
                except InputError as e:
                    raise InputError(tr("MODEL: {}; give the model's .onnx file (its model card beside it), or "
                                        "leave MODEL empty for the bundled model").format(e)) from None

        def bands() -> None:
            ms = self.parameterAsRasterLayer(parameters, self.MS, context)
            selection = self._bands_of(ms, parameters, context)
            if ms is not None:
                check_selection(selection, gdal_band_count(ms))

        return self.refusal_of(
            bands,
            lambda: self._mtf_gains(parameters, context),
            lambda: self._area(parameters, context),
            model,
            lambda: outputs.asked_nbits(outputs.parse_options(
                self.parameterAsString(parameters, self.CREATE_OPTIONS, context))),
            lambda: check_tiling(self.parameterAsInt(parameters, self.TILE_SIZE, context),
                                 self.parameterAsInt(parameters, self.OVERLAP, context)),
        )

    def _bands_of(self, ms_layer, parameters, context) -> list[int] | None:
        """MS_BANDS (``_bands``), refused when it names the extra band QGIS's band picker shows for the file's mask."""
        bands = self._bands(parameters, context)
        mask = mask_band_chosen(ms_layer, bands, "MS_BANDS")
        if mask:
            raise QgsProcessingException(mask)
        return bands

    def _mtf_gains(self, parameters, context) -> list[float] | None:
        """MTF_GAINS as gains (``parse_gains``), None when not given."""
        try:
            return parse_gains(self.parameterAsString(parameters, self.MTF_GAINS, context))
        except ValueError as e:
            raise QgsProcessingException(str(e)) from None

    def _bands(self, parameters, context) -> list[int] | None:
        """MS_BANDS: a list, or text with commas, spaces or ';' (``parse_bands``); QGIS's own reading took
        '4,3,2,1' for band 0. An expression (a graphical model, ``QgsProperty``) is evaluated as QGIS does, in this
        run's expression context, and its value read the same way (QA: "'3,2,1'" and array(3,2,1) ran as band 0)."""
        given = parameters.get(self.MS_BANDS)
        if isinstance(given, QgsProperty):
            given = self._property_value(given, context)
        if isinstance(given, QVariant) and given.isNull():   # NULL: no bands given
            given = None
        try:
            return parse_bands(given)
        except ValueError as e:
            raise QgsProcessingException(str(e)) from None

    def _property_value(self, prop: QgsProperty, context):
        """The value of MS_BANDS given as a data-defined property; an expression that fails is refused, naming it
        (QGIS would silently take the default, all bands)."""
        value, _ = prop.value(context.expressionContext(), None)
        if prop.propertyType() == QgsProperty.ExpressionBasedProperty:
            expression = QgsExpression(prop.expressionString())
            expression.evaluate(context.expressionContext())
            if expression.hasParserError() or expression.hasEvalError():
                raise QgsProcessingException(tr(
                    "MS_BANDS: the expression {} failed ({}): it must give band numbers as {}").format(
                    prop.expressionString(), expression.parserErrorString() or expression.evalErrorString(),
                    BAND_FORMS))
        return value

    def _enum(self, parameters, name: str, context) -> str:
        param = self.parameterDefinition(name)
        key = param.resolve(parameters, context) if hasattr(param, "resolve") else None
        if key is None:   # a parameter object that lost its Python class (should not happen): ask QGIS
            key = self.parameterAsEnumString(parameters, name, context)
        return key

    def _area(self, parameters, context):
        """EXTENT in the PAN layer's CRS (QGIS reprojects it), or (None, None) when not given."""
        given = parameters.get(self.EXTENT)
        if given in (None, ""):
            return None, None
        # 'xmin,xmax,ymin,ymax [CRS]' with the CRS read here: QGIS reads a bare PROJ string as a WKT, and an extent
        # whose CRS it cannot read in the project's CRS (without a project CRS, the layer's)
        try:
            referenced = referenced_extent(given)
        except UnreadableCrs as e:
            raise QgsProcessingException(
                tr('EXTENT: the text in brackets could not be read as a CRS: "{}". Use EPSG:xxxx, a WKT or a '
                   "proj4: string, e.g. 'xmin,xmax,ymin,ymax [EPSG:4326]', or draw the extent on the map canvas; "
                   "nothing was written").format(e.quoted)) from None
        if referenced is not None:
            parameters = {**parameters, self.EXTENT: referenced}
        layer = self.parameterAsRasterLayer(parameters, self.PAN, context)
        crs = layer.crs() if layer is not None and layer.crs().isValid() else None
        rect = self.parameterAsExtent(parameters, self.EXTENT, context, crs) if crs else \
            self.parameterAsExtent(parameters, self.EXTENT, context)
        if rect.isNull():
            # given, yet no rectangle: QGIS returns a null one, which read as 'not given' fused the whole scene
            raise QgsProcessingException(unreadable_extent(given))
        extent = (rect.xMinimum(), rect.yMinimum(), rect.xMaximum(), rect.yMaximum())
        if crs is None and referenced is not None:   # a PAN without a CRS: the engine says what it can do
            return extent, referenced.crs().toWkt(WKT_FOR_GDAL)
        return extent, None    # already in the PAN CRS

    @releases_on_failure
    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        # resolved here, not in prepareAlgorithm: only this (worker) context's layers-to-load survive the task
        self._output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        # the commit's "removed <output>.qml" is said with the new style's line ("replaced"), not just before it
        qml = style_sidecar(self._output)
        # and its "kept o.qml, KSDiff's style of o.tif" (a namesake's) is said by the style's line, once
        owner = owner_of(qml, self._output) if os.path.exists(qml) else None
        held = (removed_style_note(qml),) + ((shared_style_note(qml, owner),) if owner is not None else ())
        engine_feedback = ProcessingFeedback(feedback, hold=held)
        for p in sweep_temp_leftovers(self._output):   # TEMPORARY_OUTPUT: a new folder each run, never swept else
            engine_feedback.leftover(p)
        try:
            result = pansharpen(
                self._pan, self._ms, self._output, sensor=self._sensor, method=self._method,
                tile_size=self._tile, overlap=self._overlap, model_path=self._model, device=self._device,
                feedback=engine_feedback, threads=self._threads, ms_bands=self._ms_bands,
                extent=self._extent, extent_wkt=self._extent_wkt, mtf_gains=self._gains,
                compression=self._compression, cog=self._cog, create_options=self._create_options,
                precision=self._precision, consistency=self._consistency, pan_nodata=self._nodata[0],
                ms_nodata=self._nodata[1], pan_file_nodata=self._file_nodata[0],
                ms_file_nodata=self._file_nodata[1], coregister=self._coregister, pan_crs=self._crs[0],
                ms_crs=self._crs[1], ms_operation=self._operation[0], ms_operation_text=self._operation[1],
            )
        except MemoryError as e:
            raise QgsProcessingException(self._memory_message(str(e) or type(e).__name__)) from None
        except InputError as e:   # ONNX Runtime's "pthread_create failed" is one, under a thread limit
            threads = threadlimits.failure_message(e, self._output)
            if threads:
                raise QgsProcessingException(threads) from None
            if memory.out_of_memory(e):
                raise QgsProcessingException(self._memory_message(str(e))) from None
            raise QgsProcessingException(str(e)) from e
        except Cancelled:
            raise QgsProcessingException(tr("Cancelled: no output was written")) from None
        except RuntimeError as e:   # "can't start new thread": a thread limit (ulimit -u), or ulimit -v
            threads = threadlimits.failure_message(e, self._output)
            if threads:
                raise QgsProcessingException(threads) from None
            if memory.out_of_memory(e):
                raise QgsProcessingException(self._memory_message(str(e))) from None
            raise
        except OSError as e:
            raise QgsProcessingException(tr("Reading or writing a raster failed: {}").format(e)) from e
        feedback.pushInfo(
            tr("Wrote {}x{} pixels in {} tile(s) in {:.1f} s ({:.2f} Mpx/s) on {}").format(
                result.width, result.height, result.tiles, result.seconds,
                result.width * result.height / 1e6 / max(result.seconds, 1e-9), result.device)
        )
        # unnamed bands the network took in its order are drawn by that order (QA: the log said band 1 Blue, and QGIS
        # drew band 1 as red); their names stay 'Band i', which claim nothing
        rgb = rgb_bands(result.band_names) or result.assumed_rgb
        # after the commit: a cancelled or failed run raised above, leaving the old output and its style as they were
        # natural colour however the file is opened
        style = write_default_style(self._output, rgb, replaced=removed_style_note(qml) in engine_feedback.held,
                                    missing=missing_colours(result.band_names), why=result.colour_doubt)
        if style.endswith("in natural colour however it is added") and result.assumed_rgb \
                and rgb_bands(result.band_names) is None:
            style += tr(" (bands {}, {}, {} as red, green, blue: the order assumed for the unnamed MS bands, {}; "
                        "name the bands if it is not theirs)").format(*rgb, result.assumed_order)
        by_wavelength = wavelength_choice(result.band_names)
        if style.endswith("in natural colour however it is added") and by_wavelength:
            style += tr(" (by wavelength: {})").format(by_wavelength)   # several bands of a colour (hyperspectral)
        if style:   # "": the user's own style is kept (the commit said so)
            feedback.pushInfo(style)
        hint = None if self._cog else overview_hint(self._output)   # a big file QGIS would draw slowly zoomed out
        if hint:
            feedback.pushInfo(hint)
        self._describe_layer_to_load(context, rgb, result.method)
        checked = result.selfcheck.outputs(selfcheck.DIGITS) if result.selfcheck else {}   # not 16 digits
        if result.selfcheck is None:   # a forced METHOD: the empty figures say why (numbers stay empty)
            checked["SELFCHECK_REASON"] = NOT_RUN
        return {self.OUTPUT: self._output, "METHOD_USED": result.method, "MODEL_USED": result.model,
                "METHOD_REASON": result.method_reason, **{k: checked.get(k) for k in SELFCHECK_OUTPUTS}}

    def _memory_message(self, detail: str) -> str:
        """Out of memory mid-run: what to change, and that no output was written (the engine removed its partial
        file; a file already at the destination is untouched). Worded by the engine, as the batch says it."""
        may_learn = self._method in LEARNED_METHODS or self._method == selfcheck.AUTO   # THREADS only matters then
        return memory.advice(detail, self._tile, labels.param(self.TILE_SIZE), labels.param(self.THREADS),
                             default_threads(), self._output, learned=may_learn)

    def _describe_layer_to_load(self, context, rgb: tuple[int, int, int] | None, method: str) -> None:
        """Name the layer a direct run loads after the method and MS layer (a model's output keeps its own name), and
        show it in natural colour."""
        if not context.willLoadLayerOnCompletion(self._output):
            return
        details = context.layerToLoadOnCompletionDetails(self._output)
        # a direct run's layer is named after the output's description ("Pansharpened"); inside a graphical model
        # QGIS names it after the model output ("fused"), and the MS is often an intermediate layer ("OUTPUT")
        if details.name in ("", self.parameterDefinition(self.OUTPUT).description()):
            label = method_names()[method].split(" (")[0]   # what ran (METHOD auto may fall back)
            # QGIS still prefers the file name for a typed path (its "use filename as layer name" setting)
            details.name = "{} – {}".format(label, self._ms_name)
            # made distinct once loaded (``NaturalColour``): another run's layer may have this name
            named = details.name
        else:
            named = None
        details.setPostProcessor(NaturalColour.create(rgb, self._output, self.id(), named,
                                                      bands_detail(self._ms_bands)))
