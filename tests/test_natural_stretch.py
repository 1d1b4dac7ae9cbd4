"""The natural-colour stretch (the ``.qml`` and the loaded layer) is the output's own 2–98 % cut.

QA: a 4096² MTF-GLP-HPM output of WV2 pair 2 (COG off: a tiled GeoTIFF without overviews) opened washed out, red
/green/blue over 32–138 / 44–128 / 34–97 where the file's cut is 34–734 / 44–651 / 36–550: QGIS's CumulativeCut read
GDAL's approximate histogram, a few blocks of such a file.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest
from osgeo import gdal

TOLERANCE = 0.02   # of the exact cut's range


def _exact_cut(path: str, band: int) -> tuple[float, float]:
    """The 2–98 % cut of all valid pixels of ``band`` (nodata, masked and NaN left out)."""
    ds = gdal.Open(path)   # kept: a band outlives no dataset
    b = ds.GetRasterBand(band)
    data = b.ReadAsArray().astype(np.float64)
    values = data[(b.GetMaskBand().ReadAsArray() > 0) & np.isfinite(data)]
    lo, hi = np.percentile(values, [2, 98])
    return float(lo), float(hi)


def _limits(renderer) -> list[float]:
    """The red, green, blue (min, max) of a multiband renderer, flat."""
    return [v for ce in (renderer.redContrastEnhancement(), renderer.greenContrastEnhancement(),
                         renderer.blueContrastEnhancement()) for v in (ce.minimumValue(), ce.maximumValue())]


def _qml_limits(qml: str) -> list[float]:
    root = ET.parse(qml).getroot()
    out = []
    for colour in ("red", "green", "blue"):
        ce = root.find(f".//{colour}ContrastEnhancement")
        out += [float(ce.findtext("minValue")), float(ce.findtext("maxValue"))]
    return out


def _assert_close(path: str, rgb: tuple[int, int, int], limits: list[float]) -> None:
    for band, lo, hi in zip(rgb, limits[::2], limits[1::2]):
        elo, ehi = _exact_cut(path, band)
        span = ehi - elo
        assert abs(lo - elo) <= TOLERANCE * span and abs(hi - ehi) <= TOLERANCE * span, \
            f"band {band}: stretch {lo:g}-{hi:g}, the file's 2-98 % cut {elo:g}-{ehi:g}"


@pytest.fixture(scope="module")
def big_output(qgis_app, cached, tmp_path_factory):
    """The QA scene: WV2 pair 2 resampled to a 4096² PAN (1024² MS), fused by MTF-GLP-HPM without COG into a tiled
    GeoTIFF with no overviews, run and loaded as the dialog does; (output, loaded layer, log)."""
    import processing
    from processing.gui.Postprocessing import handleAlgorithmResults
    from qgis.core import (
        QgsApplication,
        QgsProcessingContext,
        QgsProcessingFeedback,
        QgsProcessingOutputLayerDefinition,
        QgsProject,
    )

    folder = tmp_path_factory.mktemp("big")
    pan, ms, out = str(folder / "big_pan.tif"), str(folder / "big_ms.tif"), str(folder / "big.tif")
    gdal.Translate(pan, str(cached("wv2/pair2_pan.tif")), width=4096, height=4096, resampleAlg="bilinear",
                   creationOptions=["TILED=YES"])
    gdal.Translate(ms, str(cached("wv2/pair2_ms.tif")), width=1024, height=1024, resampleAlg="bilinear",
                   creationOptions=["TILED=YES"])
    project = QgsProject()
    context, feedback = QgsProcessingContext(), QgsProcessingFeedback()
    context.setProject(project)
    alg = QgsApplication.processingRegistry().createAlgorithmById("ksdiff:pansharpen")
    params = {"PAN": pan, "MS": ms, "SENSOR": "wv2", "METHOD": "mtf_glp_hpm", "COG": False,
              "OUTPUT": QgsProcessingOutputLayerDefinition(out, project)}
    processing.run(alg, params, context=context, feedback=feedback)
    assert handleAlgorithmResults(alg, context, feedback, parameters=params)
    (layer,) = project.mapLayers().values()
    yield out, layer, feedback.textLog()
    project.clear()


def test_a_large_output_without_overviews_opens_with_its_own_cut(big_output):
    """The ``.qml`` and the loaded layer give the same limits, each within 2 % of the range of the file's exact
    2–98 % cut (before: 32–138 against 34–734), and QGIS keeps them (not estimated again: "user defined")."""
    from qgis.core import QgsRasterLayer, QgsRasterMinMaxOrigin

    out, layer, _ = big_output
    ds = gdal.Open(out)
    assert ds.GetRasterBand(1).GetOverviewCount() == 0   # the case QGIS's estimate gets wrong
    renderer = layer.renderer()
    rgb = (renderer.redBand(), renderer.greenBand(), renderer.blueBand())
    assert rgb == (3, 2, 1)
    qml = out[:-4] + ".qml"
    assert _qml_limits(qml) == pytest.approx(_limits(renderer))
    _assert_close(out, rgb, _limits(renderer))
    assert renderer.minMaxOrigin().limits() == QgsRasterMinMaxOrigin.None_
    opened = QgsRasterLayer(out, "opened")   # as Add Raster Layer opens it: with the .qml
    assert _limits(opened.renderer()) == pytest.approx(_limits(renderer))


def test_a_large_output_without_overviews_logs_how_to_build_them(big_output):
    out, _, log = big_output
    lines = [line for line in log.splitlines() if "gdaladdo -r average" in line]
    assert len(lines) == 1 and out in lines[0] and "Build Overviews" in lines[0]


@pytest.mark.parametrize("kind", ["float reflectance", "8-bit", "8 bands"])
def test_the_stretch_is_the_files_cut_for_each_kind_of_output(qgis_app, big_output, tmp_path, kind):
    """Other outputs KSDiff writes, made from the QA scene's output (large, tiled, no overviews): float32
    reflectance, 8-bit, and 8 bands with red, green, blue at 6, 3, 2 (a WV2 8-band product)."""
    from qgis.core import QgsRasterLayer

    from ksdiff_qgis.algorithms.colour_style import show_natural_colour

    src, path = big_output[0], str(tmp_path / "kind.tif")
    opts = dict(creationOptions=["TILED=YES"])
    rgb = (3, 2, 1)
    if kind == "float reflectance":
        gdal.Translate(path, src, outputType=gdal.GDT_Float32, scaleParams=[[0, 2047, 0.0, 1.0]], noData=0, **opts)
    elif kind == "8-bit":
        gdal.Translate(path, src, outputType=gdal.GDT_Byte, scaleParams=[[0, 1023, 0, 255]], noData=0, **opts)
    else:
        gdal.Translate(path, src, bandList=[4, 1, 2, 4, 3, 3, 4, 4], noData=0, **opts)
        rgb = (6, 3, 2)
    layer = QgsRasterLayer(path, "kind", "gdal", QgsRasterLayer.LayerOptions(False))
    assert show_natural_colour(layer, rgb)
    _assert_close(path, rgb, _limits(layer.renderer()))


def test_landsat8_output_is_stretched_over_its_cut(qgis_app, cached, tmp_path):
    """QA: the Landsat 8 output's stretch was 3 % low; sampled (1253x1205 > the sample), it is within 2 %."""
    import processing
    from qgis.core import QgsRasterLayer

    out = str(tmp_path / "l8.tif")
    processing.run("ksdiff:pansharpen", {"PAN": str(cached("landsat8/pan.tif")), "MS": str(cached("landsat8/ms.tif")),
                                         "OUTPUT": out})
    opened = QgsRasterLayer(out, "l8")
    renderer = opened.renderer()
    rgb = (renderer.redBand(), renderer.greenBand(), renderer.blueBand())
    _assert_close(out, rgb, _limits(renderer))


def test_the_sample_is_spread_over_the_whole_extent_within_its_budget():
    """A 40000² tiled raster: at most MAX_BLOCKS blocks from corner to corner, about SAMPLE_PIXELS pixels."""
    from ksdiff_qgis.engine.raster_io import sample_windows
    from ksdiff_qgis.engine.raster_io.stretch import MAX_BLOCKS, SAMPLE_PIXELS

    reads, step = sample_windows(40000, 40000, (256, 256))
    assert len(reads) <= MAX_BLOCKS
    assert min(r[0] for r in reads) == 0 and max(r[0] + r[2] for r in reads) == 40000
    assert min(r[1] for r in reads) == 0 and max(r[1] + r[3] for r in reads) == 40000
    kept = sum(-(-w // step) * -(-h // step) for _, _, w, h in reads)
    assert SAMPLE_PIXELS / 2 <= kept <= SAMPLE_PIXELS * 1.1
    striped, _ = sample_windows(40000, 40000, (40000, 1))
    assert len(striped) <= MAX_BLOCKS and max(r[1] for r in striped) == 39999


def _rendered_rgb(path: str) -> np.ndarray:
    """The raster ``path`` as QGIS draws it (its default style, the ``.qml`` beside it), 200x200, as (N, 3) RGB."""
    from qgis.core import QgsMapRendererSequentialJob, QgsMapSettings, QgsRasterLayer
    from qgis.PyQt.QtCore import QSize
    from qgis.PyQt.QtGui import QColor

    layer = QgsRasterLayer(path, "drawn")
    settings = QgsMapSettings()
    settings.setLayers([layer])
    settings.setExtent(layer.extent())
    settings.setOutputSize(QSize(200, 200))
    settings.setBackgroundColor(QColor(255, 0, 255))
    job = QgsMapRendererSequentialJob(settings)
    job.start()
    job.waitForFinished()
    image = job.renderedImage()
    bits = image.constBits()
    bits.setsize(image.byteCount())
    argb = np.frombuffer(bits, np.uint8).reshape(image.height(), image.width(), 4)
    return argb[..., [2, 1, 0]].reshape(-1, 3).astype(np.float64)


@pytest.mark.parametrize("scale, offset", [(2.75e-05, -0.2), (1e-4, -0.1)])
def test_a_scaled_output_is_drawn_in_natural_colour_not_black(qgis_app, cached, tmp_path, scale, offset):
    """QA: every output with a band scale/offset (Landsat C2 L2 x 2.75e-05 - 0.2, Sentinel-2 x 1e-4 - 0.1) drew solid
    black: the ``.qml`` limits were stored numbers (6663–13550) while QGIS draws stored x scale + offset (~0.09).
    The limits are in drawn values now: QGIS renders the scaled output as it renders the same output untagged."""
    import processing

    pan = str(tmp_path / "pan.tif")
    gdal.Translate(pan, str(cached("landsat8/pan.tif")), srcWin=[256, 256, 512, 512])
    plain_ms, scaled_ms = str(tmp_path / "ms.tif"), str(tmp_path / "ms_sc.tif")
    gdal.Translate(plain_ms, str(cached("landsat8/ms.tif")), srcWin=[128, 128, 256, 256])
    gdal.Translate(scaled_ms, plain_ms)
    ds = gdal.Open(scaled_ms, gdal.GA_Update)
    for b in range(1, ds.RasterCount + 1):
        ds.GetRasterBand(b).SetScale(scale)
        ds.GetRasterBand(b).SetOffset(offset)
    ds = None
    drawn = {}
    for name, ms in (("plain", plain_ms), ("scaled", scaled_ms)):
        out = str(tmp_path / f"{name}.tif")
        processing.run("ksdiff:pansharpen", {"PAN": pan, "MS": ms, "SENSOR": "landsat8", "METHOD": "mtf_glp_hpm",
                                             "OUTPUT": out})
        drawn[name] = _rendered_rgb(out)
    assert gdal.Open(str(tmp_path / "scaled.tif")).GetRasterBand(1).GetOffset() == offset
    scaled, plain = drawn["scaled"], drawn["plain"]
    assert scaled.mean() > 40 and scaled.std(axis=0).min() > 20   # not black, not one flat colour
    # the same picture as the untagged output's (the stretch is linear in the values: a few grey levels apart)
    assert np.abs(scaled - plain).mean() < 2, (scaled.mean(0), plain.mean(0))


def test_a_cogs_aux_xml_keeps_only_what_the_run_put_there(qgis_app, cached, tmp_path):
    """QA: COG=true on an MS with an IMAGERY domain and a band scale/offset left a 1.5 MB ``.aux.xml`` beside a 2 MB
    COG, holding three 250,000-bucket histograms and statistics next to the IMAGERY item: the style step's layer
    wrote them as it closed, and only a new ``.aux.xml`` was removed. Now it holds the IMAGERY item alone, also after
    the run's layer is loaded as the dialog loads it."""
    import processing
    from processing.gui.Postprocessing import handleAlgorithmResults
    from qgis.core import (
        QgsApplication,
        QgsProcessingContext,
        QgsProcessingFeedback,
        QgsProcessingOutputLayerDefinition,
        QgsProject,
    )

    pan, ms, out = str(tmp_path / "pan.tif"), str(tmp_path / "ms.tif"), str(tmp_path / "cog.tif")
    gdal.Translate(pan, str(cached("landsat8/pan.tif")), srcWin=[0, 0, 512, 512])
    gdal.Translate(ms, str(cached("landsat8/ms.tif")), srcWin=[0, 0, 256, 256])
    for path in (pan, ms):
        ds = gdal.Open(path, gdal.GA_Update)
        for b in range(1, ds.RasterCount + 1):
            ds.GetRasterBand(b).SetScale(2.75e-05)
            ds.GetRasterBand(b).SetOffset(-0.2)
        if path == ms:
            ds.SetMetadata({"SATELLITEID": "LANDSAT_8"}, "IMAGERY")
        ds = None
    project = QgsProject()
    context, feedback = QgsProcessingContext(), QgsProcessingFeedback()
    context.setProject(project)
    alg = QgsApplication.processingRegistry().createAlgorithmById("ksdiff:pansharpen")
    params = {"PAN": pan, "MS": ms, "METHOD": "mtf_glp_hpm", "COG": True,
              "OUTPUT": QgsProcessingOutputLayerDefinition(out, project)}
    processing.run(alg, params, context=context, feedback=feedback)
    assert handleAlgorithmResults(alg, context, feedback, parameters=params)
    assert "wrote cog.qml" in feedback.textLog()   # the style step ran
    root = ET.parse(out + ".aux.xml").getroot()
    assert [m.get("domain") for m in root.findall("Metadata")] == ["IMAGERY"]
    assert root.find(".//Histograms") is None and root.find(".//Metadata[@domain='']") is None
    assert "STATISTICS_" not in ET.tostring(root, encoding="unicode")
    assert gdal.Open(out).GetMetadata("IMAGERY") == {"SATELLITEID": "LANDSAT_8"}
    project.clear()
