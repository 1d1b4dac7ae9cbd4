"""Processing algorithm ``ksdiff:assess``: quality indices of a pansharpened raster, as an HTML report.

A thin wrapper: reading, tiled computation (``engine/assessment.py``) and the report
(``engine/report.py``) live in the QGIS-free engine.
"""
from __future__ import annotations

import math

from qgis.core import (
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingParameterFileDestination,
)

from ..engine import metrics as M
from ..engine.assessment import assess_full, assess_reduced, check_inputs_located, pair_ratio
from ..engine.errors import Cancelled, InputError
from ..engine.grid import assign_crs
from ..engine.raster_io import describe, open_dataset
from ..engine.report import INDICES, check_report_path, html_report, write_report
from ..engine.sensor_detect import (
    Detection,
    detect_sensor,
    metadata_detection,
    plugin_tag_detection,
    tagged_ratio,
)
from ..engine.sensors import AUTO, SENSORS
from .base import KsdiffAlgorithm, releases_on_failure, translator
from .common import ProcessingFeedback, input_notes, layer_crs, layer_nodata, raster_path
from .compat import KeyedEnum, set_help
from .options import sensor_help, sensor_name
from .raster_param import RasterInput

# option numbers (saved in models, History, batch files) keep their meaning: options are only appended. The sensor
# table as it was when auto came (generic last), then auto; a sensor added to the table later comes after auto
BEFORE_AUTO = ("wv2", "wv2_8", "wv3", "wv3_4", "wv4", "qb", "ge1", "ikonos", "pleiades", "pneo", "spot67", "gf2",
               "landsat8", "generic")
ASSESS_SENSORS = [*BEFORE_AUTO, AUTO, *(k for k in SENSORS if k not in BEFORE_AUTO)]
# decimals the log gives these indices: as ksdiff:pansharpen's self-check says them (QA: ERGAS 2.9070 here, 2.907
# there)
LOG_DECIMALS = {"SAM": 3, "ERGAS": 3, "R_SAM": 3, "R_ERGAS": 3}
NO_CLUE = ("no product metadata names the sensor, and without the original PAN and MS its ratio and pixel size are "
           "unknown", "the generic MTF gains and the data's maximum are used, and ERGAS is n/a: set SENSOR, or give "
           "the original PAN and MS")


def guess_sensor(fused: str, ref: str | None, pan: str | None, ms: str | None,
                 crs: dict[str, str | None]) -> Detection:
    """SENSOR auto: ksdiff:pansharpen's guess (``sensor_detect``) on the original PAN and MS when given (ratio, band
    count, PAN pixel size, product metadata; ``crs``: a layer's CRS per role, as the assessment uses it), else the
    product metadata of the reference and the fused raster, else KSDiff's tags on them (``plugin_tag_detection``);
    generic when nothing names the sensor."""
    if pan and ms:
        infos, sets = {}, {}
        for role, path in (("PAN", pan), ("MS", ms)):
            sets[role], _ = assign_crs(open_dataset(path, role), crs.get(role), role)
            infos[role] = describe(sets[role], path)
        # the ratio pansharpen fused at: after reprojecting or resampling the MS (the fused raster lies on the PAN grid)
        ratio = pair_ratio(infos["PAN"], infos["MS"], sets["MS"])
        found = detect_sensor(infos["PAN"], infos["MS"], ratio)
        return found if found.source == "metadata" else _tagged_over_guess(fused, found, ratio)
    info = describe(open_dataset(ref, "REFERENCE"), ref)
    # product metadata first, then KSDiff's own tags (KSDIFF_SENSOR of a ksdiff:pansharpen output, KSDIFF_WALD of a
    # Wald case) and the reference's band codes: a Landsat 8 Wald case was assessed as generic, ERGAS n/a (QA)
    return (metadata_detection([ref, fused], info.bands)
            or plugin_tag_detection(fused, [ref], info.bands, list(info.descriptions))
            or Detection("generic", list(NO_CLUE), "fallback"))


def _tagged_over_guess(fused: str, found: Detection, ratio: int) -> Detection:
    """FUSED's KSDIFF_SENSOR tag (the sensor ksdiff:pansharpen fused it with) over a guess from the PAN and MS that no
    product metadata backs (pixel size, band count), when the tag's sensor has the pair's ratio. QA: auto guessed
    wv2_8 from a 0.5 m pixel for a fusion tagged wv3, then warned that FUSED was made with wv3."""
    tagged = (open_dataset(fused, "FUSED").GetMetadataItem("KSDIFF_SENSOR") or "").strip()
    spec = SENSORS.get(tagged)
    if tagged == found.key and found.source != "fallback":   # QA: "set SENSOR to be sure" though the tag agreed
        return found.confirmed(f"FUSED's tag KSDIFF_SENSOR={tagged} agrees")
    if spec is None or tagged == found.key or (spec.ratio and spec.ratio != ratio):
        return found
    return Detection(tagged, [f"FUSED's tag KSDIFF_SENSOR={tagged} (the sensor ksdiff:pansharpen fused it with), "
                              f"over the guess from the PAN and MS, which no product metadata names ({found.key}: "
                              f"{'; '.join(found.reasons)})"], "metadata", warnings=found.warnings)


tr = translator("KsdiffAssess")


def sensor_labels(keys: list[str]) -> list[str]:
    """'<short sensor name> [key]' per option, as ksdiff:pansharpen's (``options.sensor_name``)."""
    return [tr("Auto-detect from the data") + " [auto]" if k == AUTO else "{} [{}]".format(sensor_name(k), k)
            for k in keys]


# ----------------------------------------------------------------------------------- algorithm
class AssessAlgorithm(KsdiffAlgorithm):
    ICON_FILE = "assess.svg"
    FUSED, REFERENCE, PAN, MS, SENSOR, OUTPUT_HTML = "FUSED", "REFERENCE", "PAN", "MS", "SENSOR", "OUTPUT_HTML"
    HELP_ANCHOR = "algorithms"   # README.md's section, as GitHub slugs its heading

    def name(self) -> str:
        return "assess"

    def displayName(self) -> str:  # noqa: N802
        return tr("Assess pansharpening quality")

    def shortDescription(self) -> str:  # noqa: N802
        return tr("Quality indices of a pansharpened raster (SAM, ERGAS, Q2n, HQNR and more) as an HTML report.")

    def tags(self) -> list[str]:
        # no bare "qnr": the index is HQNR, and the toolbox's search finds "qnr" inside "hqnr" anyway
        return tr("quality,assessment,sam,ergas,q4,q8,q2n,scc,psnr,ssim,hqnr,hybrid qnr,wald,pansharpening").split(",")

    def shortHelpString(self) -> str:  # noqa: N802
        return tr(
            "Measures the quality of a pansharpened raster with the indices of the pansharpening literature and "
            "writes an HTML report (table of indices, per-band figures, a bar chart). Every index is also an "
            "output of the algorithm, for use in graphical models.\n\n"
            "Pansharpened (fused) raster: the image to assess.\n"
            "Reference MS (reduced resolution): the true MS on the same pixel grid as the fused "
            "raster, typically the original MS of a Wald test case (fuse the PAN and MS degraded by the ratio, "
            "compare with the original MS). Gives SAM, ERGAS, Q2n (Q4/Q8), Q, SCC, PSNR and SSIM.\n"
            "Original PAN and original MS (full resolution, no reference needed): the "
            "inputs the fused raster was made from. Gives Dλ (Khan), Ds, HQNR, Dρ (local correlation with the PAN), "
            "the reprojection indices R-Q2n, R-SAM and R-ERGAS (the fused image filtered with the MS MTF and "
            "decimated, against the MS) and the checkerboard response (one-pixel grid artefacts; a clean fusion "
            "stays near the PAN's own value, also reported).\n"
            "HQNR (hybrid QNR) = (1 − Dλ)(1 − Ds): Khan's Dλ (1 − Q2n of the MS against the fused raster low-passed "
            "with the MS MTF), Ds at PAN resolution. Not Alparone's QNR (band-pair Dλ, Ds at MS scale): published "
            "QNR figures are another index.\n"
            "Give a reference, or PAN and MS, or all three.\n"
            "Sensor: sets the resolution ratio, the MTF gains used by Dλ/Ds and the maximum value used by "
            "PSNR/SSIM; generic: the MTF gains 0.3 for MS, 0.15 for PAN, the data's ratio (from the original MS) and "
            "maximum. "
            "auto (the default) guesses it as Pansharpen (KSDiff) does, from the original PAN and MS (ratio, band "
            "count, PAN pixel size, product metadata; without product metadata, the sensor the fused raster was "
            "made with, as its KSDiff tag says, when it has the pair's ratio), or from the reference's metadata "
            "alone (product metadata, then KSDiff's own tags: the sensor a KSDiff fusion was made with, a Wald "
            "case's sensor and ratio, then "
            "Landsat 8/9 band codes), and logs why; "
            "without a clue it is generic, with a warning.\n"
            "Quality report: the HTML file to write. When the run ends, QGIS opens its Results Viewer panel listing "
            "it: click its path there to open it in the browser.\n\n"
            "Rasters are read in tiles: memory stays bounded for any scene size. Nodata pixels are left out."
        )

    def initAlgorithm(self, config=None):  # noqa: N802
        params = [
            (RasterInput(self.FUSED, tr("Pansharpened (fused) raster")),
             tr("The pansharpened raster to assess.")),
            (RasterInput(self.REFERENCE, tr("Reference MS (reduced resolution)"), optional=True),
             tr("Reduced-resolution assessment: the ground-truth MS on the same pixel grid as the fused raster (e.g. "
                "the original MS of a Wald test case). Enables SAM, ERGAS, Q2n, Q, SCC, PSNR and SSIM.")),
            (RasterInput(self.PAN, tr("Original PAN (full resolution)"), optional=True),
             tr("Full-resolution assessment (no reference needed): the panchromatic raster the fused raster was made "
                "from (same pixel grid). With the original MS "
                "it enables Dλ, Ds, HQNR, Dρ, R-Q2n, R-SAM, R-ERGAS and the checkerboard response.")),
            (RasterInput(self.MS, tr("Original MS (full resolution)"), optional=True),
             tr("Full-resolution assessment: the multispectral raster the fused raster was made from, with the "
                "original PAN. An MS that Pansharpen (KSDiff) "
                "reprojected or resampled (another CRS, rotated, a ratio not whole) is read onto the PAN grid the "
                "same way, with a warning: the indices are then approximate.")),
            (KeyedEnum(self.SENSOR, tr("Sensor"), ASSESS_SENSORS, sensor_labels(ASSESS_SENSORS), AUTO),
             tr("Sensor of the imagery: resolution ratio, MTF gains and maximum value. Default: auto (guessed from "
                "the original PAN and MS and their metadata, as Pansharpen (KSDiff) does; the log says what and "
                "why).") + " " + sensor_help(tr)),
            (QgsProcessingParameterFileDestination(self.OUTPUT_HTML, tr("Quality report"),
                                                  tr("HTML files (*.html)")),
             tr("HTML report with the table of indices, per-band figures and a chart. When the run ends, QGIS "
                "lists it in its Results Viewer panel (Processing > Results Viewer).")),
        ]
        for p, helptext in params:
            set_help(p, helptext)
            self.addParameter(p)
        for out, label, _, _ in INDICES.values():
            self.addOutput(QgsProcessingOutputNumber(out, label))

    def refusal(self, parameters, context) -> str | None:
        """Inputs that give nothing to compare FUSED with, as the run refuses them."""
        return self.refusal_of(lambda: self._compared_with(parameters, context))

    def _compared_with(self, parameters, context):
        """The REFERENCE, PAN and MS layers (None when not given); refuses a PAN without its MS (or an MS without
        its PAN), and neither a reference nor both."""
        ref, pan, ms = (self.parameterAsRasterLayer(parameters, name, context)
                        for name in (self.REFERENCE, self.PAN, self.MS))
        if (pan is None) != (ms is None):
            given, missing = ("PAN", "MS") if ms is None else ("MS", "PAN")
            instead = tr("and give a reference MS (REFERENCE)") if ref is None else \
                tr("to assess against the reference alone")
            raise QgsProcessingException(tr(
                "Full-resolution assessment needs both the original PAN and the original MS: {} is given, {} is not. "
                "Give the original {} too, or leave {} empty {}").format(given, missing, missing, given, instead))
        if ref is None and pan is None:
            raise QgsProcessingException(tr(
                "Give a reference raster, or the original PAN and MS, or both: FUSED alone has nothing to be compared "
                "with (REFERENCE for SAM, ERGAS and Q2n; PAN and MS for HQNR and the other full-resolution indices)"))
        return ref, pan, ms

    @releases_on_failure
    def prepareAlgorithm(self, parameters, context, feedback):  # noqa: N802
        fused = self.parameterAsRasterLayer(parameters, self.FUSED, context)
        self._fused = raster_path(fused, "FUSED")
        ref, pan, ms = self._compared_with(parameters, context)
        # no-data values set on the QGIS layers (the files are read, which do not carry them)
        layers = (("FUSED", fused), ("REFERENCE", ref), ("PAN", pan), ("MS", ms))
        self._nodata = {role: layer_nodata(layer) for role, layer in layers}
        self._crs = {role: layer_crs(layer) for role, layer in layers}   # as QGIS shows them (ksdiff:pansharpen too)
        for note in input_notes({role: layer for role, layer in layers if layer is not None}, follows_unticked=False):
            if feedback is not None:
                feedback.pushWarning(note)
        self._ref = raster_path(ref, "REFERENCE") if ref is not None else None
        self._pan = raster_path(pan, "PAN") if pan is not None else None
        self._ms = raster_path(ms, "MS") if ms is not None else None
        self._sensor = self.parameterDefinition(self.SENSOR).resolve(parameters, context) or AUTO
        return True

    def _ergas_ratio(self, full: dict | None, feedback) -> int | None:
        """The ratio ERGAS divides by when the sensor has none (generic): the original PAN and MS's, else the one the
        evidence of SENSOR auto states, else FUSED's tag KSDIFF_RATIO (the ratio ksdiff:pansharpen fused at), said
        in the log. QA: a generic fusion assessed against its reference alone had ERGAS n/a."""
        ratio = (full or {}).get("ratio") or self._tag_ratio
        if ratio or SENSORS.get(self._sensor, SENSORS["generic"]).ratio:
            return ratio
        ratio = tagged_ratio(self._fused)
        if ratio:
            feedback.pushInfo(tr("ERGAS uses ratio {}, FUSED's tag KSDIFF_RATIO (the ratio ksdiff:pansharpen fused "
                                 "it at): the {} sensor has none of its own").format(ratio, self._sensor))
        return ratio

    @releases_on_failure
    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        # destinations are resolved in the worker's context (the house rule; see ksdiff:pansharpen)
        self._html = self.parameterAsFileOutput(parameters, self.OUTPUT_HTML, context)
        reduced = full = guessed = self._tag_ratio = None
        fb = ProcessingFeedback(feedback)
        inputs = {"Fused": self._fused, "Reference": self._ref, "PAN": self._pan, "MS": self._ms}
        try:
            check_report_path(self._html, inputs)   # an input is never overwritten, a bad path not found late
        except InputError as e:
            raise QgsProcessingException(str(e)) from None
        try:
            # a raw (RPC- or GCP-only) input is said first, as ksdiff:pansharpen says it, not after the sensor guess
            check_inputs_located({"FUSED": self._fused, "REFERENCE": self._ref, "PAN": self._pan, "MS": self._ms})
            auto = self._sensor == AUTO   # the sensor-fit warning then advises no auto
            if auto:   # reads the inputs' metadata: here, in the worker
                found = guess_sensor(self._fused, self._ref, self._pan, self._ms, self._crs)
                self._sensor, guessed, self._tag_ratio = found.key, "; ".join(found.reasons), found.ratio
                (feedback.pushWarning if found.source == "fallback" else feedback.pushInfo)(found.message())
                for w in found.warnings:
                    feedback.pushWarning(w)
            # full resolution first: its ratio (the data's) serves ERGAS when the sensor has none (generic)
            if self._pan:
                feedback.pushInfo(tr("Full-resolution assessment against the original PAN and MS…"))
                full = assess_full(self._fused, self._pan, self._ms, self._sensor, fb, layer_nodata=self._nodata,
                                   layer_crs=self._crs, auto=auto)
            if self._ref and not feedback.isCanceled():
                feedback.pushInfo(tr("Reduced-resolution assessment against the reference…"))
                reduced = assess_reduced(self._fused, self._ref, self._sensor, fb, layer_nodata=self._nodata,
                                         ratio=self._ergas_ratio(full, feedback), layer_crs=self._crs,
                                         check_sensor=full is None, auto=auto)   # the full assessment checked it
        except Cancelled:
            raise QgsProcessingException(tr("Cancelled")) from None
        except InputError as e:   # a problem with the inputs, said as one ("Assessment failed:" is for bugs)
            raise QgsProcessingException(str(e)) from None
        except (ValueError, RuntimeError) as e:
            raise QgsProcessingException(tr("Assessment failed: {}").format(e)) from e
        if feedback.isCanceled():
            raise QgsProcessingException(tr("Cancelled"))
        results = {}
        for key, (out, label, _, _) in INDICES.items():
            src = reduced if key in M.REDUCED else full
            v = None if src is None else src.get(key)
            # 4 decimals (Processing showed 16 digits), as ksdiff:pansharpen's SELFCHECK_* outputs
            results[out] = None if v is None or (isinstance(v, float) and math.isnan(v)) else round(float(v), 4)
            if results[out] is not None:   # the report's names, not the metric keys; SAM and ERGAS as the
                # pansharpen log's self-check says them (3 decimals), the other indices, which lie within 0-1, with 4
                feedback.pushInfo(f"{label}: {results[out]:.{LOG_DECIMALS.get(key, 4)}f}")
        try:   # through a temporary file: a full disk leaves an earlier report whole (it was cut to 4096 bytes)
            write_report(self._html, html_report(reduced, full, inputs, self._sensor, guessed))
        except OSError as e:
            raise QgsProcessingException(e.strerror or str(e)) from None
        results[self.OUTPUT_HTML] = self._html
        return results
