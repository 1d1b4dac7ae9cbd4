"""Natural colour for a fused output in QGIS: on the layer a run loads, and in a ``<output>.qml`` default style.

QGIS 3.22 ignores a GeoTIFF's colour interpretation (``engine.bandcolour``) and draws a B, G, R, NIR product as
red = band 1 (Blue), green = 2, blue = 3 (Red), an 8-bit one unstretched. The loaded layer is set here
(``NaturalColour``); a file opened any other way (Add Raster Layer, drag and drop, a colleague) gets the same from the
style QGIS loads by itself from ``<output basename>.qml`` beside it (``write_default_style``), which the
engine's commit removes with the output it replaces (``raster_io.style_sidecar``). Only a style KSDiff wrote (marked:
``raster_io.stylemark``) is removed or replaced; the user's own is kept and used.
"""
from __future__ import annotations

import contextlib
import os

from qgis.core import (
    QgsContrastEnhancement,
    QgsDataProvider,
    QgsMapLayer,
    QgsMultiBandColorRenderer,
    QgsProcessingLayerPostProcessorInterface,
    QgsRasterLayer,
    QgsRasterMinMaxOrigin,
    QgsRasterTransparency,
    QgsRectangle,
)

from ..engine.errors import disk_full
from ..engine.gdalutil import quiet_gdal
from ..engine.raster_io import (
    STYLE_FOR,
    STYLE_MARK,
    UNSEALED,
    belongs_to,
    cumulative_cut,
    free_space,
    is_ksdiff_style,
    namesakes,
    owner_of,
    seal_style,
    style_sidecar,
)
from .base import translator
from .layer_name import distinct_name

tr = translator("KsdiffPansharpen")


def show_natural_colour(layer: QgsRasterLayer, rgb: tuple[int, int, int] | None) -> bool:
    """Draw ``layer`` as red/green/blue = the 1-based bands ``rgb``, each stretched over its 2–98 % cumulative cut
    (QGIS's cut settings) measured by ``stretch.cumulative_cut`` and set as fixed limits; False (layer unchanged)
    when ``rgb`` is None or the layer lacks those bands. The one place both the ``.qml`` and the loaded layer get
    their stretch."""
    if rgb is None or layer.bandCount() < max(rgb):
        return False
    provider = layer.dataProvider()
    renderer = QgsMultiBandColorRenderer(provider, *rgb)
    origin = renderer.minMaxOrigin()   # QGIS's cut (Settings > Options > Rendering: 2–98 % unless changed)
    cuts = cumulative_cut(layer.source(), rgb, origin.cumulativeCutLower(), origin.cumulativeCutUpper())
    if cuts is None:   # GDAL cannot read the file by its path (a provider URI): QGIS's own estimate
        layer.setRenderer(renderer)
        layer.setContrastEnhancement(QgsContrastEnhancement.StretchToMinimumMaximum,
                                     QgsRasterMinMaxOrigin.CumulativeCut, QgsRectangle())
        return True
    # not QGIS's CumulativeCut: its approximate histogram reads a few blocks of a file without overviews (QA: a
    # 4096² output drew 32–138 where its cut is 34–734). Fixed limits ("user defined" in Symbology), which QGIS
    # keeps as they are instead of estimating them again
    for set_band, band, (low, high) in zip((renderer.setRedContrastEnhancement, renderer.setGreenContrastEnhancement,
                                            renderer.setBlueContrastEnhancement), rgb, cuts):
        enhancement = QgsContrastEnhancement(provider.dataType(band))
        enhancement.setContrastEnhancementAlgorithm(QgsContrastEnhancement.StretchToMinimumMaximum)
        enhancement.setMinimumValue(low)
        enhancement.setMaximumValue(high)
        set_band(enhancement)   # takes ownership
    origin.setLimits(QgsRasterMinMaxOrigin.None_)
    renderer.setMinMaxOrigin(origin)
    layer.setRenderer(renderer)
    return True


def open_quietly(path: str, name: str) -> QgsRasterLayer:
    """The raster ``path`` as a layer without its default style, GDAL's messages kept off the console: QGIS's
    default renderer asks GDAL for a histogram of each band as it opens a file, which GDAL refuses with an error
    for a band of one value or with infinite values (QA: every GSA, MTF-GLP-FS and auto run on an MS band of 500
    printed "ERROR 5: <output>, band 3: dfMax should be strictly greater than dfMin" while its style was written).
    The stretch KSDiff shows is its own (``show_natural_colour``); validity is the layer's."""
    with quiet_gdal():
        return QgsRasterLayer(path, name, "gdal", QgsRasterLayer.LayerOptions(False))


STYLE_ROOM = 64 * 1024   # bytes a style needs with room to spare (a natural-colour style is ~3 KB)


def _why_not_written(qml: str, message: str, full: bool) -> str:
    """Why the style ``qml`` is not on disk, in words that hold: a full disk (its free bytes), else what was wrong.
    QGIS returns its success text ("Created default style file as …") with a file the disk cut short."""
    folder = os.path.dirname(os.path.abspath(qml))
    free = free_space(folder)
    if full or (free is not None and free < STYLE_ROOM):
        return tr("no space left on the disk: {} bytes free in {}").format(free if free is not None else 0, folder)
    try:
        size = os.path.getsize(qml)
    except OSError:
        return tr("QGIS wrote no file") if not message or qml in message else message
    if qml in message:   # QGIS's success text over a file it did not complete
        return tr("QGIS wrote {} bytes of it, without the end of the style").format(size)
    return message


def write_default_style(output: str, rgb: tuple[int, int, int] | None, replaced: bool = False,
                        missing: list[str] | None = None, why: str | None = None) -> str:
    """Save the natural-colour style of the committed GeoTIFF ``output`` as its default style (``style_sidecar``):
    only when its red, green and blue bands are known (``rgb``), marked as KSDiff's (``stylemark``). The commit
    removed the replaced output's style (``replaced``: it did, and held back its line, said here instead), so none
    of another band layout stays; a style that is not KSDiff's (the user's, an input's) is kept, and nothing is
    written (the commit said so: ""); nor while another raster of its stem (o.tiff for o.tif) is beside it, which
    QGIS would open with it too, or the style there is KSDiff's for that raster (``stylemark.owner_of``).
    ``missing``: why the names give no ``rgb`` (``bandcolour.missing_colours``), said instead of all three; ``why``:
    the reason no colours are taken from the names at all (``PansharpenResult.colour_doubt``), said before that.
    Returns the line for the log."""
    qml, pam = style_sidecar(output), output + ".aux.xml"
    if os.path.exists(qml) and not is_ksdiff_style(qml):
        return ""
    name = os.path.basename(qml)
    # the old output's style went with it: one line, not "removed X.qml" followed by "wrote X.qml"
    removed = tr("removed {}, the QGIS style KSDiff wrote for the old output; ").format(name) if replaced else ""
    # QGIS reads <stem>.qml for o.tif, o.tiff, o.vrt alike: KSDiff's style of another of them is not replaced, and
    # none is written that another would open with (QA: the 1-band o.tiff drew bands 3, 2, 1 of o.tif's style)
    owner = owner_of(qml, output) if os.path.exists(qml) else None
    other = owner if owner is not None and not belongs_to(qml, output) else next(iter(namesakes(output)), None)
    if other is not None:
        return removed + tr(
            "no QGIS style written: '{}' beside it shares the name, and QGIS reads {} for both files{}. The layer "
            "this run loads is in natural colour; to open the file so elsewhere, give the output a name of its own "
            "(no other file named {}.*) and run again, or save this layer's style (Layer Properties > Symbology > "
            "Style > Save Style) and load it there").format(
            other, name, tr(" (it is the style KSDiff wrote for '{}')").format(other) if owner == other else "",
            os.path.splitext(os.path.basename(output))[0])
    # a COG's IMAGERY metadata lives there: what the run put there is all that stays (QA: a COG's .aux.xml kept the
    # three 250,000-bucket histograms and statistics GDAL wrote as this step's layer closed, 1.5 MB beside 2 MB)
    pam_before = read_sidecar(pam)
    # the file alone, without a default style: a stale one (not removable, said by the commit) must not come back
    layer = open_quietly(output, os.path.basename(output))
    shown = layer.isValid() and show_natural_colour(layer, rgb)
    layer.setCustomProperty(STYLE_MARK, UNSEALED)   # sealed below: only a style KSDiff wrote is ever replaced
    layer.setCustomProperty(STYLE_FOR, os.path.basename(output))   # and only by a run onto this output
    # QGIS's own writer (the layer's renderer as QGIS reads it back); the symbology and the mark: no layer name/notes
    message, ok = layer.saveNamedStyle(qml, QgsMapLayer.Symbology | QgsMapLayer.CustomProperties) if shown \
        else ("", False)
    full = False
    del layer   # closes the file: GDAL writes the histograms the stretch read into an .aux.xml then
    restore_sidecar(pam, pam_before)   # none left by this step: removed if new, else its earlier content back
    if not shown:
        if why:   # the names were left bare on purpose: the reason, not the colours they lack
            return removed + tr("no QGIS style written: {} (QGIS draws bands 1, 2, 3)").format(why)
        if missing:   # which colour is lacking, not all three (QA: NIR1, Red, Green said red/green/blue unknown)
            return removed + tr("no QGIS style written: natural colour needs one band each named Red, Green and "
                                "Blue, and the output has {} (QGIS draws bands 1, 2, 3)").format("; ".join(missing))
        return removed + tr("no QGIS style written: the output's red, green and blue bands are not known by name or "
                            "colour interpretation (QGIS draws bands 1, 2, 3)")
    if ok:
        try:
            # QGIS says "Created default style file as …" even when the disk took none of it: no mark then
            ok = seal_style(qml)
        except OSError as e:
            ok, message, full = False, str(e), disk_full(e)
    if not ok:
        with contextlib.suppress(OSError):
            os.remove(qml)   # unsealed: no later run could replace it
        return removed + tr("the natural-colour style {} could not be written ({}); the output itself is "
                            "complete").format(qml, _why_not_written(qml, message, full))
    if replaced:
        return tr("replaced {}, the QGIS style KSDiff wrote for the old output: QGIS opens the new output in "
                  "natural colour however it is added").format(name)
    return tr("wrote {}: QGIS opens the output in natural colour however it is added").format(name)


def read_sidecar(path: str) -> bytes | None:
    """The bytes of the file ``path`` (a PAM ``.aux.xml``), None when there is none."""
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError:
        return None


def restore_sidecar(path: str, content: bytes | None) -> None:
    """Put the file ``path`` back to ``content`` (None: no file), if it differs."""
    if read_sidecar(path) == content:
        return
    with contextlib.suppress(OSError):
        if content is None:
            os.remove(path)
        else:
            with open(path, "wb") as fh:
                fh.write(content)


def default_renderer(path: str, rgb: tuple[int, int, int] | None):
    """The renderer QGIS gives the raster ``path`` by itself (no default style) when it has no bands ``rgb`` to
    show in natural colour, else None."""
    fresh = open_quietly(path, "default")
    if not fresh.isValid() or fresh.renderer() is None or (rgb is not None and fresh.bandCount() >= max(rgb)):
        return None
    return fresh.renderer().clone()


def keep_user_settings(layer: QgsRasterLayer, user) -> None:
    """Give ``layer``'s new renderer what the user set on the renderer ``user`` it replaces (None: nothing): its
    opacity, nodata colour, alpha band (when the file still has it) and transparent pixels (same renderer type)."""
    renderer = layer.renderer()
    if user is None or renderer is None:
        return
    renderer.setOpacity(user.opacity())
    renderer.setNodataColor(user.nodataColor())
    if 0 < user.alphaBand() <= layer.bandCount():
        renderer.setAlphaBand(user.alphaBand())
    if user.rasterTransparency() is not None and user.type() == renderer.type():
        transparency = QgsRasterTransparency()
        transparency.setTransparentSingleValuePixelList(user.rasterTransparency().transparentSingleValuePixelList())
        transparency.setTransparentThreeValuePixelList(user.rasterTransparency().transparentThreeValuePixelList())
        renderer.setRasterTransparency(transparency)   # takes ownership


RASTER_STYLE_SETTING = 'Settings > Options > Processing > General > "Style for raster layers"'
OUTPUT_STYLE_SETTING = "the Processing Toolbox's Edit Rendering Styles for Outputs"


def processing_style(alg_id: str | None, output: str = "OUTPUT") -> tuple[str, str] | None:
    """The style file Processing gave the loaded layer before our post-processor ran, as it chooses it, and where it
    is set: the style set for this algorithm's output (``OUTPUT_STYLE_SETTING``), else Processing's "Style for raster
    layers" (RASTER_STYLE, ``RASTER_STYLE_SETTING``); None when neither is set (or Processing is not there)."""
    try:
        from processing.core.ProcessingConfig import ProcessingConfig
        from processing.gui.RenderingStyles import RenderingStyles
    except ImportError:   # pragma: no cover - the plugin always runs with QGIS's Processing
        return None
    style = RenderingStyles.getStyle(alg_id, output) if alg_id else None
    if style:
        return style, OUTPUT_STYLE_SETTING
    style = ProcessingConfig.getSetting(ProcessingConfig.RASTER_STYLE)
    return (style, RASTER_STYLE_SETTING) if style else None


def _style_not_used(feedback, style: str, where: str, why: str) -> None:
    """One warning that the Processing style ``style`` set in ``where`` was not applied (``why``), and how to fix it."""
    if feedback is not None:
        feedback.pushWarning(f'The style file "{style}" set in {where} {why}: the result is shown in natural colour '
                             "instead. Choose an existing .qml style there, or clear the setting.")


class NaturalColour(QgsProcessingLayerPostProcessorInterface):
    """Shows a loaded result as red/green/blue = the given bands stretched 2–98 %, read afresh from its file; without
    such bands, as QGIS draws the file by itself; with a style of the user's beside it, in that style; with a
    Processing style of the user's (``processing_style``), in that one, as QGIS's own algorithms' outputs. A layer
    QGIS named ``name`` (not after its file) gets a name no other layer of its project has (``distinct_name``)."""

    _keep = []   # Processing holds a plain pointer to it: keep every instance alive (a few bytes each)

    def __init__(self, rgb: tuple[int, int, int] | None, pam: bytes | None, alg_id: str | None = None,
                 name: str | None = None, detail: str | None = None):
        super().__init__()
        self.rgb, self.pam, self.alg_id = rgb, pam, alg_id
        self.name, self.detail = name, detail

    @classmethod
    def create(cls, rgb: tuple[int, int, int] | None, output: str, alg_id: str | None = None,
               name: str | None = None, detail: str | None = None) -> "NaturalColour":
        """``output``: the committed file; its PAM ``.aux.xml`` now (a COG's metadata, or none) is what stays;
        ``alg_id``: the algorithm whose output style Processing may have been told (``processing_style``);
        ``name``: the layer name the run gave (None: not set by KSDiff), ``detail``: what sets it apart
        (``layer_name.bands_detail``)."""
        processor = cls(rgb, read_sidecar(output + ".aux.xml"), alg_id, name, detail)
        cls._keep.append(processor)
        return processor

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802
        # here, in the main thread with the layer in its project (the run's thread must not read the project); only
        # the name KSDiff gave: a layer QGIS named after its file keeps that name
        project = layer.project() or context.project()
        if self.name and layer.name() == self.name and project is not None:
            layer.setName(distinct_name(project, layer, self.name, self.detail))
        # a run onto a file the project already shows reuses that layer, whose provider still reads the replaced
        # file (the writer renames the new one into place) with its cached statistics and histograms. Closing it
        # writes them into <output>.aux.xml, which a provider opened next reads as the new file's (QA: every second
        # re-run showed the previous file's stretch, and that .aux.xml stayed). So: close it first (an empty
        # source), put the .aux.xml back as the run left it, then read the new file afresh
        source, pam = layer.source(), layer.source() + ".aux.xml"
        # a reused layer's renderer holds what the user set on it (QA: opacity 0.5 went back to 1.0 on a re-run)
        user = layer.renderer().clone() if layer.renderer() is not None else None
        options = QgsDataProvider.ProviderOptions()
        options.transformContext = layer.transformContext()
        layer.setDataSource("", layer.name(), layer.providerType(), options)
        qml = style_sidecar(source)
        # the user's Processing style overrides ours, as it does QGIS's own algorithms' (QA: RASTER_STYLE's gray
        # band 4 at 50 % showed as natural colour 3, 2, 1 with only the opacity kept); the .qml beside stays ours
        processing = processing_style(self.alg_id)
        chosen = processing[0] if processing else None
        if processing and not os.path.isfile(chosen):
            # QGIS's loadNamedStyle fails silently and left the file's bands 1, 2, 3 (QA: Blue drawn red)
            _style_not_used(feedback, chosen, processing[1], "does not exist")
            chosen = None
        if chosen is None and os.path.exists(qml) and not is_ksdiff_style(qml):
            chosen = qml   # the user's own style beside the output: the one it opens with
        # not the replaced output's bands (3, 2, 1 on a 1-band file); read before the .aux.xml is put back; also
        # with a chosen style, for one that does not load
        renderer = default_renderer(source, self.rgb)
        restore_sidecar(pam, self.pam)
        with quiet_gdal():   # QGIS's default renderer's histogram, as in ``open_quietly``
            layer.setDataSource(source, layer.name(), layer.providerType(), options)
        # Processing's, reapplied to the file read afresh; or the user's .qml
        if chosen and not layer.loadNamedStyle(chosen)[1]:
            if processing and chosen == processing[0]:
                _style_not_used(feedback, chosen, processing[1], "could not be loaded")
            chosen = None
        if not chosen:
            if renderer is not None:
                layer.setRenderer(renderer)
            else:
                show_natural_colour(layer, self.rgb)
            keep_user_settings(layer, user)
        layer.triggerRepaint()
