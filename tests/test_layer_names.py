"""The layer a run loads has a name no other layer of its project has.

QA: MTF-GLP-HPM on WV2 pair 1 with MS_BANDS 1,2,3,4, then 4,3,2, both to temporary outputs, loaded two layers named
"MTF-GLP-HPM – pair1_ms"; the Raster Calculator's "MTF-GLP-HPM – pair1_ms@1" with the 3-band layer chosen read
band 1 (Blue) of the 4-band one instead of its NIR.
"""
from __future__ import annotations

import numpy as np
import pytest
from osgeo import gdal

BASE = "MTF-GLP-HPM – pair1_ms"


@pytest.fixture(scope="module")
def runs(qgis_app, cached):
    """Four runs loaded into a fresh project as the dialog loads them: MS_BANDS 1,2,3,4; 4,3,2; 4,3,2 again on a
    smaller EXTENT; none given, COG on. Yields (project, the layers in run order)."""
    import processing
    from processing.gui.Postprocessing import handleAlgorithmResults
    from qgis.core import (
        QgsApplication,
        QgsProcessingContext,
        QgsProcessingFeedback,
        QgsProcessingOutputLayerDefinition,
        QgsProject,
        QgsRasterLayer,
    )

    project = QgsProject()
    ms = QgsRasterLayer(str(cached("wv2/pair1_ms.tif")), "pair1_ms")
    pan = str(cached("wv2/pair1_pan.tif"))
    e = ms.extent()
    smaller = "{},{},{},{}".format(e.xMinimum(), e.center().x(), e.yMinimum(), e.center().y())
    settings = ({"MS_BANDS": [1, 2, 3, 4]}, {"MS_BANDS": [4, 3, 2]}, {"MS_BANDS": [4, 3, 2], "EXTENT": smaller},
                {"COG": True})
    layers = []
    for extra in settings:
        context, feedback = QgsProcessingContext(), QgsProcessingFeedback()
        context.setProject(project)
        alg = QgsApplication.processingRegistry().createAlgorithmById("ksdiff:pansharpen")
        params = {"PAN": pan, "MS": ms, "METHOD": "mtf_glp_hpm", **extra,
                  "OUTPUT": QgsProcessingOutputLayerDefinition("TEMPORARY_OUTPUT", project)}
        processing.run(alg, params, context=context, feedback=feedback)
        known = set(project.mapLayers())
        assert handleAlgorithmResults(alg, context, feedback, parameters=params)
        (new,) = set(project.mapLayers()) - known
        layers.append(project.mapLayer(new))
    yield project, layers
    project.clear()


def test_runs_with_other_settings_load_layers_of_distinct_names(runs):
    """The first run's name as before; then what differs (the band list), then a counter."""
    _, layers = runs
    assert [layer.name() for layer in layers] == [
        BASE, BASE + " (bands 4,3,2)", BASE + " (bands 4,3,2) (2)", BASE + " (2)"]


def test_raster_calculator_reads_the_layer_its_name_names(qgis_app, runs, tmp_path):
    """The user's case: "<name>@1" of the 3-band layer is its band 1 (NIR), not the 4-band layer's Blue. The
    calculator's entries are made as QGIS makes them from a project (``QgsRasterCalculatorEntry.rasterEntries``,
    which reads ``QgsProject.instance()``, left alone here): "<layer name>@<band>" for each layer in id order (random
    ids: here the chosen layer last, the order that fails), a later layer whose ref is taken renamed
    "<name>_1@<band>"."""
    from qgis.analysis import QgsRasterCalculator, QgsRasterCalculatorEntry

    project, layers = runs
    second = layers[1]
    assert second.bandCount() == 3
    entries, refs = [], set()
    for layer in [layer for layer in layers if layer is not second] + [second]:
        for band in range(1, layer.bandCount() + 1):
            entry = QgsRasterCalculatorEntry()
            entry.raster, entry.bandNumber = layer, band
            entry.ref = "{}@{}".format(layer.name(), band)
            if entry.ref in refs:
                entry.ref = "{}_1@{}".format(layer.name(), band)
            refs.add(entry.ref)
            entries.append(entry)
    out = str(tmp_path / "calc.tif")
    calc = QgsRasterCalculator('"{}@1"'.format(second.name()), out, "GTiff", second.extent(), second.crs(),
                               second.width(), second.height(), entries, project.transformContext())
    assert calc.processCalculation() == QgsRasterCalculator.Success
    got = gdal.Open(out).ReadAsArray()
    assert np.array_equal(got, gdal.Open(second.source()).ReadAsArray()[0])


def test_a_layer_named_after_its_file_and_a_reused_layer_keep_their_names(qgis_app):
    """``distinct_name``: a layer does not clash with itself (a run onto the file it shows reuses it), and names
    are compared without case, as QGIS finds layers by name."""
    from qgis.core import QgsProject, QgsRasterLayer

    from ksdiff_qgis.algorithms.layer_name import bands_detail, distinct_name

    project = QgsProject()
    one = QgsRasterLayer("", BASE)
    other = QgsRasterLayer("", BASE.upper())
    project.addMapLayers([one, other], False)
    assert bands_detail(None) is None and bands_detail([3, 2, 1]) == "bands 3,2,1"
    fresh = QgsRasterLayer("", "new")
    assert distinct_name(project, fresh, BASE) == BASE + " (2)"
    project.removeMapLayer(other.id())
    assert distinct_name(project, one, BASE, "bands 3,2,1") == BASE   # itself only
    project.clear()
