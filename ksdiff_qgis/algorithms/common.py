"""What the Processing algorithms share: feedback forwarding and the GDAL source behind a raster layer."""
from __future__ import annotations

import os
import re

from qgis.core import (
    QgsCoordinateTransform,
    QgsCoordinateTransformContext,
    QgsCsException,
    QgsDatumTransform,
    QgsProcessingException,
    QgsProviderRegistry,
    QgsRaster,
)

from ..engine.datums import placed_alike
from ..engine.errors import InputError, one_line, shown_name
from ..engine.feedback import Feedback
from ..engine.grid import same_crs
from ..engine.nodatacmd import exact
from ..engine.raster_io import open_dataset
from ..engine.shellcmd import command, shell_arg
from .base import translator
from .compat import WKT_FOR_GDAL
from .console_signals import deliver_pending_signals

tr = translator("Ksdiff")


class ProcessingFeedback(Feedback):
    """Engine feedback forwarded to QgsProcessingFeedback (safe from the worker thread). An info line equal to
    in ``hold`` (one line or several) is kept in ``held`` instead, for the algorithm to say in its own words later."""

    def __init__(self, feedback, hold: str | tuple[str, ...] | None = None):
        self.fb, self.held = feedback, []
        self.hold = (hold,) if isinstance(hold, str) else tuple(hold or ())

    def progress(self, fraction: float) -> None:
        self.fb.setProgress(100.0 * fraction)

    def info(self, message: str) -> None:
        if message in self.hold:
            self.held.append(message)
        else:
            self.fb.pushInfo(message)

    def debug(self, message: str) -> None:
        self.fb.pushDebugInfo(message)

    def warning(self, message: str) -> None:
        self.fb.pushWarning(message)

    def is_cancelled(self) -> bool:
        deliver_pending_signals()   # qgis_process: a Ctrl-C during a long GDAL call reaches the feedback only so
        return self.fb.isCanceled()


QGIS_OPEN_OPTION = re.compile(r"\|option:[^|]*")   # how QGIS 3.22's GDAL provider marks an open option in a source


def raster_path(layer, name: str) -> str:
    """The GDAL dataset name behind a GDAL raster layer, or a clear error for other providers.

    That is the layer's full source, not just its file: ``/vsizip/…/scene.zip/pan.tif`` keeps the
    archive prefix and the member, ``GPKG:file.gpkg:table`` the table, ``NETCDF:"f.nc":var`` the
    subdataset. Only QGIS's own ``|option:KEY=VALUE`` parts are dropped (GDAL does not know them), as QGIS's GDAL
    provider drops them: a ``|`` in a file name (``pan|v2.tif``, legal on Linux and macOS) stays.
    """
    if layer is None:
        raise QgsProcessingException(tr("{}: no raster layer given or it could not be loaded").format(name))
    if layer.providerType() != "gdal":
        raise QgsProcessingException(
            tr("{}: layer '{}' is served by the '{}' provider; KSDiff's algorithms read rasters through GDAL "
               "(export it to GeoTIFF first: right-click the layer > Export > Save As)").format(
                name, shown_name(layer.name()), layer.providerType())
        )
    return QGIS_OPEN_OPTION.sub("", layer.source())


def unapplied_open_options(layer, name: str) -> str | None:
    """A warning when the layer's source carries GDAL open options (``file.tif|option:OVERVIEW_LEVEL=0``), else None.

    They are not applied: the engine opens the file itself by its name at several places (inputs, sensor guess,
    reprojection), and GDAL names have no place for open options. The warning says what is read instead and how to
    make a file that has them applied."""
    if layer is None or layer.providerType() != "gdal":
        return None
    options = QgsProviderRegistry.instance().decodeUri("gdal", layer.source()).get("openOptions") or []
    if not options:
        return None
    path = raster_path(layer, name)
    shown = "{}x{}".format(layer.width(), layer.height())
    try:
        ds = open_dataset(path, name)
        read = "{}x{}".format(ds.RasterXSize, ds.RasterYSize)
    except InputError:
        read = "?"
    sizes = tr(" ({} pixels, where QGIS shows the layer with them as {})").format(read, shown) if read != shown \
        else ""
    stem, ext = os.path.splitext(os.path.basename(path))
    made = os.path.join(os.path.dirname(path), "{}_opened{}".format(stem, ext or ".tif"))
    # quoted for the shell: a path in double quotes ran its $(...) and backticks when the command was pasted (QA116)
    cmd = " ".join([command(["gdal_translate", *(w for o in options for w in ("-oo", o))]), shell_arg(path),
                    shell_arg(made)])
    return tr("{}: the layer '{}' opens its file with the GDAL open option(s) {}, which are not applied here: the file "
              "itself is read{}. To use them, make a file that has them applied and give that instead: "
              "{}").format(name, shown_name(layer.name()), ", ".join(map(one_line, options)), sizes, one_line(cmd))


def gdal_band_count(layer) -> int:
    """The number of bands GDAL reads in the file behind a raster layer, which the run fuses and MS_BANDS numbers.

    QGIS's GDAL provider shows a file's mask (an internal mask or a ``.msk`` beside it, as COG writers and
    ``gdal_translate -mask`` leave) as one more band, an alpha band after the file's own: ``layer.bandCount()``
    counts it, GDAL does not (the run applies that mask to every band). Only a layer whose last band is alpha is
    opened here: that band is either the file's own alpha band or such a mask."""
    provider = layer.dataProvider() if layer is not None else None
    count = provider.bandCount() if provider is not None else 0
    if count == 0 or layer.providerType() != "gdal" or provider.colorInterpretation(count) != QgsRaster.AlphaBand:
        return count
    try:
        return open_dataset(raster_path(layer, "raster"), "raster").RasterCount
    except InputError:   # GDAL cannot open the source by itself: what QGIS shows is all there is to go by
        return count


def mask_band_chosen(layer, bands: list[int] | None, name: str) -> str | None:
    """Why ``bands`` (the parameter ``name``: MS bands to fuse) cannot be fused from ``layer`` when they name the
    extra band QGIS shows for its file's mask (``gdal_band_count``), which QGIS's band picker lists with the file's
    bands; else None."""
    provider = layer.dataProvider() if layer is not None else None
    shown = provider.bandCount() if provider is not None else 0
    if not bands or not any(b >= shown > 0 for b in bands):   # no file opened unless the layer's last band is chosen
        return None
    count = gdal_band_count(layer)
    masks = sorted({b for b in bands if count < b <= shown})
    if not masks:
        return None
    return tr("{}: band {} of the layer '{}' is not a band of its file but the file's mask, which QGIS lists as one "
              "more band. The file has {} band(s) (1–{}), and the run applies the mask to all of them. Leave band {} "
              "out of 'MS bands to fuse' ({}), or leave that empty for all bands; nothing was written.").format(
        name, masks[0], shown_name(layer.name()), count, count, masks[0], name)


def file_nodata_unticked(layer) -> bool:
    """Whether the layer's file declares a nodata value the layer does not use ('No data value' unticked in Layer
    Properties > Transparency, band 1 as for the value): QGIS shows those pixels as data, and so does the run."""
    provider = layer.dataProvider() if layer is not None else None
    return provider is not None and provider.sourceHasNoDataValue(1) and not provider.useSourceNoDataValue(1)


def layer_nodata(layer) -> float | None:
    """The nodata value set on a QGIS raster layer (Layer Properties > Transparency, one value, band 1's) when its
    file declares none or the layer does not use the file's (``file_nodata_unticked``), else None: the pipeline
    reads the file, which does not carry it."""
    provider = layer.dataProvider() if layer is not None else None
    if provider is None or provider.sourceHasNoDataValue(1) and provider.useSourceNoDataValue(1):
        return None
    for span in provider.userNoDataValues(1):
        if span.min() == span.max():
            return float(span.min())
    return None


def _span_text(span) -> str:
    # exact: the text goes into gdal_translate -a_nodata, and -3.40282e+38 is not the -FLT_MAX pixels hold
    return exact(span.min()) if span.min() == span.max() else "{}–{}".format(exact(span.min()), exact(span.max()))


def unused_layer_nodata(layer, name: str) -> str | None:
    """A warning naming the nodata values set on the QGIS layer that the run does not use, and which value it uses
    (``layer_nodata``: the file's own value wins while the layer uses it; of the layer's, one single value is used);
    else None."""
    provider = layer.dataProvider() if layer is not None else None
    spans = list(provider.userNoDataValues(1)) if provider is not None else []
    if not spans:
        return None
    if provider.sourceHasNoDataValue(1) and provider.useSourceNoDataValue(1):
        return tr("{}: the nodata value {} set on the layer '{}' (Layer Properties > Transparency) is not used: the "
                  "run reads the file, which declares its own nodata value, {}, and that one is used. To use {} "
                  "instead, write it into a copy of the file and give that: gdal_translate -a_nodata {} {} "
                  "copy.tif (or Raster > Conversion > Translate, 'Assign a specified nodata value').").format(
            name, ", ".join(_span_text(s) for s in spans), shown_name(layer.name()),
            exact(provider.sourceNoDataValue(1)), _span_text(spans[0]), _span_text(spans[0]),
            shell_arg(raster_path(layer, name)))
    chosen = layer_nodata(layer)
    unused = [s for s in spans if not (s.min() == s.max() == chosen)]
    if not unused:
        return None
    used = tr("only {} is used").format(exact(chosen)) if chosen is not None else tr("no range can be used")
    return tr("{}: the nodata value {} set on the layer '{}' (Layer Properties > Transparency) is not used: the "
              "run takes one single value from the layer, and {}. Set one value there, or declare it in a copy of "
              "the file (gdal_translate -a_nodata).").format(
        name, ", ".join(_span_text(s) for s in unused), shown_name(layer.name()), used)


def _band_nodata_text(provider, band: int) -> str:
    """What is nodata in ``band`` of the layer, as QGIS shows it: the file's value (when used) and the layer's."""
    values = [exact(provider.sourceNoDataValue(band))] \
        if provider.sourceHasNoDataValue(band) and provider.useSourceNoDataValue(band) else []
    values += [_span_text(s) for s in provider.userNoDataValues(band)]
    return ", ".join(values) or tr("none")


def _file_nodata_only(provider, bands: int) -> bool:
    """Whether the layer's nodata settings of its ``bands`` are the file's own: no value set on the layer, and the
    file's value used wherever the file declares one."""
    return all(not provider.userNoDataValues(b) and
               (provider.useSourceNoDataValue(b) or not provider.sourceHasNoDataValue(b)) for b in range(1, bands + 1))


def band_nodata_differs(layer, name: str, file_said: bool = False) -> str | None:
    """A warning when the layer's bands have different nodata settings (values set band by band from Python;
    Layer Properties > Transparency sets all bands alike): the run takes band 1's for every band (one nodata value
    per raster), and the warning says which that is; else None. Only the file's bands (``gdal_band_count``): the
    extra band QGIS shows for a file's mask has no nodata value (QA: "band 5: none" for a 4-band MS with a mask).
    ``file_said``: the run warns of the file's own per-band values itself (``raster_io.band_value_notes``), so
    nothing is said here when the layer only uses them (QA: two warnings for one condition)."""
    provider = layer.dataProvider() if layer is not None else None
    bands = gdal_band_count(layer) if provider is not None else 0
    if bands < 2 or (file_said and _file_nodata_only(provider, bands)):
        return None
    texts = [_band_nodata_text(provider, b) for b in range(1, bands + 1)]
    if len(set(texts)) == 1:
        return None
    listed = "; ".join(tr("band {}: {}").format(b, t) for b, t in enumerate(texts, 1))
    return tr("{}: the bands of the layer '{}' have different nodata values ({}), and the run takes one for all "
              "bands, band 1's: {} in every band, the others' values are data. Set the same nodata value on every "
              "band (Layer Properties > Transparency), or declare one in a copy of the file (gdal_translate "
              "-a_nodata).").format(name, shown_name(layer.name()), listed, texts[0])


def unticked_not_followed(layer, name: str) -> str | None:
    """A warning for an algorithm that reads the file's own nodata value (ksdiff:assess) when the layer does not
    use it (``file_nodata_unticked``), else None."""
    if not file_nodata_unticked(layer):
        return None
    value = layer.dataProvider().sourceNoDataValue(1)
    return tr("{}: 'No data value' is unticked on the layer '{}' (Layer Properties > Transparency), which this "
              "algorithm does not follow: the file's nodata value {} is used (and no value set on the layer), so "
              "those pixels are left out. To "
              "count them as data, give a copy of the file without it: gdal_translate -a_nodata none {} "
              "copy.tif").format(name, shown_name(layer.name()), exact(value), shell_arg(raster_path(layer, name)))


def input_notes(layers: dict, follows_unticked: bool = True, file_said: bool = False) -> list[str]:
    """The warnings about QGIS layer settings the run cannot follow (open options, nodata values), per role.
    ``follows_unticked``: whether the run drops a file nodata value the layer does not use; ``file_said``: whether
    it warns of the file's own per-band nodata values itself (``band_nodata_differs``)."""
    notes = []
    for role, layer in layers.items():
        checks = [unapplied_open_options, unused_layer_nodata,
                  lambda lay, name: band_nodata_differs(lay, name, file_said)]
        if not follows_unticked:
            checks.append(unticked_not_followed)
        for note in (check(layer, role) for check in checks):
            if note:
                notes.append(note)
    return notes


def _file_wkt(layer) -> str | None:
    """The WKT of the raster's own CRS as GDAL reads it, its ground control points' for a file georeferenced by them
    alone, as QGIS reads it ('' for none), None when GDAL cannot open it."""
    try:
        ds = open_dataset(raster_path(layer, "layer"), "layer")
    except (InputError, QgsProcessingException):
        return None
    return ds.GetProjection() or ds.GetGCPProjection() or ""


def layer_crs(layer) -> str | None:
    """The CRS set on a QGIS raster layer (Layer Properties > Source, or QGIS's choice for a file without one), as
    WKT, when it is not its file's as GDAL reads it; else None. QGIS shows the layer's pixels there; the pipeline reads
    the file. Compared with GDAL's, not the provider's: QGIS reads a file's "+proj=utm +zone=31 +ellps=intl" as
    EPSG:23031 in both, while GDAL keeps a datum with no shift (placed about 100 m off)."""
    crs = layer.crs() if layer is not None else None
    if crs is None or not crs.isValid():
        return None
    wkt = crs.toWkt(WKT_FOR_GDAL)
    own = _file_wkt(layer)
    if own is None:   # as before: the provider's CRS stands for the file's
        provider = layer.dataProvider()
        return None if provider is not None and provider.crs() == crs else wkt
    centre = layer.extent().center()
    return None if same_crs(own, wkt) and placed_alike(own, wkt, centre.x(), centre.y()) else wkt


def ms_operation(ms_layer, pan_layer, context) -> tuple[str | None, str | None]:
    """(PROJ pipeline, 'name, accuracy N m') of the datum transformation the project's transform context uses from the
    MS layer's CRS to the PAN's (Project > Properties > Transformations), as QGIS draws the MS. The pipeline only when
    the project sets one (else GDAL's default, as before); the text whenever QGIS names an operation."""
    src, dst = ms_layer.crs(), pan_layer.crs()
    if not (src.isValid() and dst.isValid()) or src == dst:
        return None, None
    ctx = context.transformContext() if context is not None else QgsCoordinateTransformContext()
    chosen = ctx.calculateCoordinateOperation(src, dst) or None
    if chosen:   # QGIS names a set pipeline "PROJ-based coordinate operation": its name is the offered one's
        named = [op for op in QgsDatumTransform.operations(src, dst) if op.proj == chosen]
        return chosen, _operation_words(named[0].name, named[0].accuracy, "the QGIS project's") if named else None
    transform = QgsCoordinateTransform(src, dst, ctx)
    try:   # QGIS knows its operation once it has transformed a point: the MS's centre
        transform.transform(ms_layer.extent().center())
    except QgsCsException:
        return None, None
    details = transform.instantiatedCoordinateOperationDetails()
    return None, _operation_words(details.name, details.accuracy, "QGIS's default") if details.name else None


def _operation_words(name: str, accuracy: float | None, whose: str) -> str:
    """'ED50 to WGS 84 (1), accuracy 10 m (QGIS's default)'."""
    known = accuracy is not None and accuracy > 0
    return f"{name}, accuracy {accuracy:g} m ({whose})" if known else f"{name}, accuracy unknown ({whose})"
