"""The plugin inside real QGIS Processing: loading, running, graphical models, batches."""
from __future__ import annotations

import numpy as np
import pytest
from osgeo import gdal


def _run(params):
    import processing

    return processing.run("ksdiff:pansharpen", params)


def test_plugin_loads_and_registers_algorithm(qgis_app):
    from qgis.core import QgsApplication

    alg = QgsApplication.processingRegistry().algorithmById("ksdiff:pansharpen")
    assert alg is not None
    names = [p.name() for p in alg.parameterDefinitions()]
    for n in ("PAN", "MS", "SENSOR", "METHOD", "MODEL", "DEVICE", "TILE_SIZE", "OVERLAP", "OUTPUT"):
        assert n in names
    sensor = alg.parameterDefinition("SENSOR")
    assert "wv2" in sensor.keys and any(o.endswith("[wv2]") for o in sensor.options())   # labels show the key
    assert alg.shortHelpString()


def test_processing_run_real_scene(qgis_app, data_dir, tmp_path):
    out = str(tmp_path / "fused.tif")
    res = _run({"PAN": str(data_dir / "wv2_pan.tif"), "MS": str(data_dir / "wv2_ms.tif"), "SENSOR": "wv2",
                "METHOD": "mtf_glp_hpm", "OUTPUT": out})
    assert res["OUTPUT"] == out
    pan, ds = gdal.Open(str(data_dir / "wv2_pan.tif")), gdal.Open(out)
    assert (ds.RasterXSize, ds.RasterYSize, ds.RasterCount) == (pan.RasterXSize, pan.RasterYSize, 4)
    assert ds.GetGeoTransform() == pytest.approx(pan.GetGeoTransform())
    b = ds.GetRasterBand(1)
    assert gdal.GetDataTypeName(b.DataType) == "UInt16"
    assert b.GetNoDataValue() == 0
    assert [ds.GetRasterBand(i).GetDescription() for i in (1, 2, 3, 4)] == ["Blue", "Green", "Red", "NIR"]
    arr = ds.ReadAsArray()
    assert arr.max() <= 2047 and arr.min() > 0
    # sharper than plain upsampling: more high-frequency energy along rows
    exp = str(tmp_path / "exp.tif")
    _run({"PAN": str(data_dir / "wv2_pan.tif"), "MS": str(data_dir / "wv2_ms.tif"), "SENSOR": "wv2",
          "METHOD": "exp", "OUTPUT": exp})
    lap = lambda a: np.abs(np.diff(a.astype(float), axis=2)).mean()  # noqa: E731
    assert lap(arr) > 1.5 * lap(gdal.Open(exp).ReadAsArray())


def test_nodata_propagates(qgis_app, data_dir, tmp_path):
    out = str(tmp_path / "nd.tif")
    _run({"PAN": str(data_dir / "wv2_nodata_pan.tif"), "MS": str(data_dir / "wv2_nodata_ms.tif"),
          "SENSOR": "wv2", "METHOD": "gsa", "TILE_SIZE": 64, "OVERLAP": 8, "OUTPUT": out})
    arr = gdal.Open(out).ReadAsArray()
    pan = gdal.Open(str(data_dir / "wv2_nodata_pan.tif")).ReadAsArray()
    nod = (arr == 0).all(axis=0)
    assert nod[pan == 0].all()          # PAN nodata is output nodata
    assert ((arr == 0).any(axis=0) == nod).all()  # nodata is all-bands, never a partial pixel
    assert 0.2 < nod.mean() < 0.8


def test_graphical_model(qgis_app, data_dir, tmp_path, pansharpen_model):
    from qgis.core import QgsProcessingContext, QgsProcessingFeedback, QgsProcessingParameterRasterLayer

    raster = QgsProcessingParameterRasterLayer
    model = pansharpen_model("pansharpen model", {"PAN": ("pan", raster), "MS": ("ms", raster)},
                             {"SENSOR": "wv2", "METHOD": "brovey"})
    target = str(tmp_path / "model_out.tif")
    import processing

    res = processing.run(model, {"pan": str(data_dir / "wv2_pan.tif"), "ms": str(data_dir / "wv2_ms.tif"),
                                 "sharpen:fused": target},
                         context=QgsProcessingContext(), feedback=QgsProcessingFeedback())
    ds = gdal.Open(res["sharpen:fused"])
    assert ds is not None and ds.RasterCount == 4 and ds.RasterXSize == 256


def test_loaded_layer_names_a_model_output_as_the_model_does(qgis_app, data_dir, tmp_path, pansharpen_model):
    """The layer to load keeps QGIS's name inside a graphical model (the model output's, "fused"; QA: it became
    "Gram-Schmidt adaptive – OUTPUT", after the model's intermediate MS layer), and a direct run's is still
    "<method> – <MS layer name>". Loaded into a project of the test's own, not QgsProject.instance()."""
    import processing
    from qgis.core import (
        QgsProcessingContext,
        QgsProcessingFeedback,
        QgsProcessingOutputLayerDefinition,
        QgsProcessingParameterRasterLayer,
        QgsProject,
        QgsRasterLayer,
    )

    raster = QgsProcessingParameterRasterLayer
    project = QgsProject()
    model = pansharpen_model("named model", {"PAN": ("pan", raster), "MS": ("ms", raster)},
                             {"SENSOR": "wv2", "METHOD": "gsa"})
    ms = QgsRasterLayer(str(data_dir / "wv2_ms.tif"), "my ms")
    runs = {"model": (model, {"pan": str(data_dir / "wv2_pan.tif"), "ms": ms}, "sharpen:fused"),
            "direct": ("ksdiff:pansharpen", {"PAN": str(data_dir / "wv2_pan.tif"), "MS": ms, "SENSOR": "wv2",
                                             "METHOD": "gsa"}, "OUTPUT")}
    names = {}
    for kind, (alg, params, out) in runs.items():
        context = QgsProcessingContext()
        context.setProject(project)
        dest = QgsProcessingOutputLayerDefinition(str(tmp_path / f"{kind}.tif"), project)
        res = processing.run(alg, {**params, out: dest}, context=context, feedback=QgsProcessingFeedback())
        assert context.willLoadLayerOnCompletion(res[out])
        names[kind] = context.layerToLoadOnCompletionDetails(res[out]).name
    assert names == {"model": "fused", "direct": "Gram-Schmidt adaptive – my ms"}


def test_rerun_onto_a_loaded_output_stretches_the_new_file(qgis_app, data_dir, tmp_path):
    """A second run onto an output the project already shows (QGIS reuses that layer): the layer's band statistics
    and its 2–98 % stretch are the new file's (QA: reload() brought the new pixels, but the statistics and the
    stretch stayed the old file's, max 1879 / red 1–558 where a fresh layer gives 1811 / 20–524). Loaded as the
    desktop does (Processing's handleAlgorithmResults) into a project of the test's own."""
    import processing
    from processing.gui.Postprocessing import handleAlgorithmResults
    from qgis.core import (
        QgsApplication,
        QgsProcessingContext,
        QgsProcessingFeedback,
        QgsProcessingOutputLayerDefinition,
        QgsProject,
        QgsRasterBandStats,
        QgsRasterLayer,
    )

    from ksdiff_qgis.algorithms.colour_style import show_natural_colour

    project, out = QgsProject(), str(tmp_path / "fused.tif")

    def run_and_load(method):
        context, feedback = QgsProcessingContext(), QgsProcessingFeedback()
        context.setProject(project)
        alg = QgsApplication.processingRegistry().createAlgorithmById("ksdiff:pansharpen")
        params = {"PAN": str(data_dir / "wv2_pan.tif"), "MS": str(data_dir / "wv2_ms.tif"), "SENSOR": "wv2",
                  "METHOD": method, "OUTPUT": QgsProcessingOutputLayerDefinition(out, project)}
        processing.run(alg, params, context=context, feedback=feedback)
        assert handleAlgorithmResults(alg, context, feedback, parameters=params)
        (layer,) = project.mapLayers().values()
        return layer

    def stretch(layer):
        ce = layer.renderer().redContrastEnhancement()
        return ce.minimumValue(), ce.maximumValue()

    first = run_and_load("gsa")
    old = first.dataProvider().bandStatistics(1, QgsRasterBandStats.All)  # the statistics QGIS caches when shown
    layer = run_and_load("brovey")
    assert layer.id() == first.id()    # QGIS reused the loaded layer
    fresh = QgsRasterLayer(out, "fresh")
    renderer = layer.renderer()
    # the stretch of a fresh layer of the file, as KSDiff measures it (``stretch.cumulative_cut``)
    assert show_natural_colour(fresh, (renderer.redBand(), renderer.greenBand(), renderer.blueBand()))
    new = layer.dataProvider().bandStatistics(1, QgsRasterBandStats.All)
    real = fresh.dataProvider().bandStatistics(1, QgsRasterBandStats.All)
    assert (old.maximumValue, old.mean) != (real.maximumValue, real.mean)   # the two methods' outputs differ
    assert (new.maximumValue, new.mean) == (real.maximumValue, real.mean)
    assert stretch(layer) == stretch(fresh)


def _run_and_load(project, out: str, data_dir, method: str, **extra):
    """ksdiff:pansharpen onto ``out`` loaded into ``project`` as the dialog loads it (QGIS's own post-processing);
    the project's one layer."""
    import processing
    from processing.gui.Postprocessing import handleAlgorithmResults
    from qgis.core import (
        QgsApplication,
        QgsProcessingContext,
        QgsProcessingFeedback,
        QgsProcessingOutputLayerDefinition,
    )

    context, feedback = QgsProcessingContext(), QgsProcessingFeedback()
    context.setProject(project)
    alg = QgsApplication.processingRegistry().createAlgorithmById("ksdiff:pansharpen")
    params = {"PAN": str(data_dir / "wv2_pan.tif"), "MS": str(data_dir / "wv2_ms.tif"), "SENSOR": "wv2",
              "METHOD": method, "OUTPUT": QgsProcessingOutputLayerDefinition(out, project), **extra}
    processing.run(alg, params, context=context, feedback=feedback)
    assert handleAlgorithmResults(alg, context, feedback, parameters=params)
    (layer,) = project.mapLayers().values()
    return layer


def test_reruns_onto_a_loaded_output_show_the_new_style_and_leave_no_stale_statistics(qgis_app, data_dir, tmp_path):
    """Re-runs onto an output the project shows: QA saw every second re-run draw the previous file's stretch, with
    a fused.tif.aux.xml of the previous file's histograms left beside it (the old provider wrote its cache there
    when closed, and the new one read it); and a 1-band result replacing a 4-band one kept the multiband renderer on
    bands 3, 2, 1 that no longer exist."""
    import os
    import re

    from qgis.core import (
        QgsProject,
    )

    project, out = QgsProject(), str(tmp_path / "fused.tif")

    def run_and_load(method, **extra):
        return _run_and_load(project, out, data_dir, method, **extra)

    for method in ["mtf_glp_hpm", "exp", "brovey", "gsa", "mtf_glp_fs"]:
        layer = run_and_load(method)
        renderer = layer.renderer()
        shown = [(round(ce.minimumValue()), round(ce.maximumValue())) for ce in (
            renderer.redContrastEnhancement(), renderer.greenContrastEnhancement(),
            renderer.blueContrastEnhancement())]
        with open(str(tmp_path / "fused.qml")) as fh:
            saved = [(round(float(a)), round(float(b))) for a, b in
                     re.findall(r"<minValue>(\S+)</minValue>\s*<maxValue>(\S+)</maxValue>", fh.read())]
        assert shown == saved, method
        assert not os.path.exists(out + ".aux.xml"), method

    layer = run_and_load("mtf_glp_hpm", MS_BANDS=[4])
    assert layer.bandCount() == 1
    assert layer.renderer().type() != "multibandcolor" and max(layer.renderer().usesBands()) == 1


def test_rerun_onto_a_loaded_output_keeps_the_users_layer_settings(qgis_app, data_dir, tmp_path):
    """A re-run onto an output the project shows keeps what the user set on that layer's renderer (QA: opacity 0.5
    went back to 1.0, the post-processor's new renderer had QGIS's defaults): opacity, nodata colour, transparent
    pixels. Its name
    is QGIS's to set: handleAlgorithmResults renames every reused layer (LayerDetails.setOutputLayerName)."""
    from qgis.core import (
        QgsProject,
        QgsRasterTransparency,
    )
    from qgis.PyQt.QtGui import QColor

    project, out = QgsProject(), str(tmp_path / "fused.tif")

    def run_and_load(method, **extra):
        return _run_and_load(project, out, data_dir, method, **extra)

    first = run_and_load("gsa")
    first.renderer().setOpacity(0.5)
    first.renderer().setNodataColor(QColor(255, 0, 255))
    transparent = QgsRasterTransparency.TransparentThreeValuePixel()
    transparent.red, transparent.green, transparent.blue, transparent.percentTransparent = 300.0, 200.0, 100.0, 100.0
    transparency = QgsRasterTransparency()
    transparency.setTransparentThreeValuePixelList([transparent])
    first.renderer().setRasterTransparency(transparency)
    for method, extra in [("brovey", {}), ("mtf_glp_hpm", {"MS_BANDS": [4]})]:   # natural colour, then 1 band
        layer = run_and_load(method, **extra)
        assert layer.id() == first.id()
        assert layer.renderer().opacity() == 0.5, method
        assert layer.renderer().nodataColor() == QColor(255, 0, 255), method
        if method == "brovey":   # a renderer of the same type: the user's transparent pixels too
            (kept,) = layer.renderer().rasterTransparency().transparentThreeValuePixelList()
            assert (kept.red, kept.green, kept.blue, kept.percentTransparent) == (300, 200, 100, 100)
    assert layer.renderer().type() != "multibandcolor"   # the new renderer, with the user's settings


def test_batch_of_scenes(qgis_app, data_dir, tmp_path):
    """A batch: several scenes and sensors through the same algorithm instance, like the batch dialog."""
    jobs = [("wv2", "wv2", "brovey"), ("wv2_nodata", "wv2", "mtf_glp_hpm"), ("l8", "landsat8", "gsa")]
    for stem, sensor, method in jobs:
        out = str(tmp_path / f"{stem}_{method}.tif")
        _run({"PAN": str(data_dir / f"{stem}_pan.tif"), "MS": str(data_dir / f"{stem}_ms.tif"),
              "SENSOR": sensor, "METHOD": method, "OUTPUT": out})
        pan, ds = gdal.Open(str(data_dir / f"{stem}_pan.tif")), gdal.Open(out)
        assert ds.RasterXSize <= pan.RasterXSize and ds.RasterCount == 4


@pytest.mark.parametrize("error", [
    MemoryError("Unable to allocate 1.00 GiB for an array with shape (4, 8192, 8192) and data type float64"),
    # how the engine words ONNX Runtime's own allocation failure (learned._run)
    __import__("ksdiff_qgis.engine.errors", fromlist=["InputError"]).InputError(
        "the model wv2.onnx failed on a 512x512 tile: [ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Non-zero status "
        "code returned while running Conv node. Failed to allocate memory for requested buffer of size 1073741824"),
    # QA: under a virtual-memory cap (ulimit -v) the tile pool's submit raised this: reported as an internal error
    RuntimeError("can't start new thread"),
], ids=["numpy", "onnxruntime", "threads"])
def test_out_of_memory_mid_run_says_what_to_do_and_keeps_the_old_output(qgis_app, pair, tmp_path, monkeypatch, error):
    """Memory running out after some tiles were written: a message that says what to change (it was a raw Python
    traceback of numpy's _ArrayMemoryError), and the output of an earlier run is untouched."""
    import os

    from qgis.core import QgsProcessingException

    from ksdiff_qgis.engine import classical

    out = str(tmp_path / "out.tif")
    _run({**pair, "OUTPUT": out})
    with open(out, "rb") as f:
        before = f.read()
    real, calls = classical.FUSERS["mtf_glp_hpm"], []

    def runs_out(*args, **kwargs):
        calls.append(1)
        if len(calls) > 2:
            raise error
        return real(*args, **kwargs)   # the first tiles are fused and written

    monkeypatch.setitem(classical.FUSERS, "mtf_glp_hpm", runs_out)
    with pytest.raises(QgsProcessingException) as raised:
        import processing

        processing.run("ksdiff:pansharpen", {**pair, "TILE_SIZE": 128, "OVERLAP": 8, "OUTPUT": out})
    said = str(raised.value)
    assert said.startswith("Not enough memory for this run (" + str(error)[:30]), said
    assert "lower 'Tile size (PAN pixels, 64–8192)' (TILE_SIZE) from 128 to e.g. 64; or close other programs" in said
    assert out in said, said
    # QA: a classical method (pair's METHOD mtf_glp_hpm) was told to set THREADS, which only a learned model reads
    assert "THREADS" not in said and "number of cores" not in said, said
    with open(out, "rb") as f:
        assert f.read() == before
    # the earlier output and its QGIS style (colour_style), nothing of the failed run
    assert sorted(p for p in os.listdir(tmp_path) if "out" in p) == ["out.qml", "out.tif"]


def test_ms_bands_as_text_with_commas_or_spaces(qgis_app, pair, tmp_path):
    """QA: processing.run with MS_BANDS "4,3,2,1" or "4 3 2 1" failed with "band 0 does not exist"; a list, such
    text and a list of such text now give the same bands; text that is not band numbers names the accepted forms."""
    import processing
    from qgis.core import QgsProcessingException

    outs = []
    for i, given in enumerate(([4, 3, 2], "4,3,2", "4 3 2", "4;3;2", ["4", "3", "2"], " 4, 3 2 ")):
        res = processing.run("ksdiff:pansharpen", {**pair, "METHOD": "brovey", "MS_BANDS": given,
                                                   "OUTPUT": str(tmp_path / f"o{i}.tif")})
        ds = gdal.Open(res["OUTPUT"])
        assert ds.GetMetadataItem("KSDIFF_MS_BANDS") == "4,3,2", given
        outs.append(ds.ReadAsArray())
    assert all(np.array_equal(outs[0], o) for o in outs[1:])
    from test_issue14_processing import Log

    log = Log()
    with pytest.raises(QgsProcessingException):
        processing.run("ksdiff:pansharpen", {**pair, "METHOD": "brovey", "MS_BANDS": "red, nir",
                                             "OUTPUT": str(tmp_path / "bad.tif")}, feedback=log)
    assert any("'red, nir' is not a list of band numbers" in line and "4,3,2,1 or 4 3 2 1" in line
               for line in log.lines), log.lines
    assert not (tmp_path / "bad.tif").exists()
