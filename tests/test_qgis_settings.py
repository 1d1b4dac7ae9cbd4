"""The plugin under a user's QGIS settings (real QGIS, real WorldView-2 fixture): a GeoPackage output URI, GDAL
drivers unticked in Settings > Options > GDAL (GDAL_SKIP), Processing's "Style for raster layers", and a CPL_TMPDIR
that is no writable folder."""
from __future__ import annotations

from pathlib import Path

import pytest

URI = "ogr:dbname='{}' table=\"fused\" (geom)"   # how QGIS names a GeoPackage output


def _refusal(alg: str, params: dict) -> str:
    import processing
    from qgis.core import QgsProcessingException

    with pytest.raises(QgsProcessingException) as refused:
        processing.run(alg, params)
    return str(refused.value)


def test_a_geopackage_output_uri_gets_the_geotiff_only_refusal(qgis_app, pair, tmp_path):
    """QA: "the output folder "<cwd>/ogr:dbname='" does not exist": the URI was read as a relative path."""
    gpkg = str(tmp_path / "g2.gpkg")
    text = _refusal("ksdiff:pansharpen", {**pair, "OUTPUT": URI.format(gpkg)})
    assert "does not exist" not in text
    assert f'is a table "fused" in the GeoPackage "{gpkg}", not a file' in text
    assert "must be a GeoTIFF file ending in .tif or .tiff" in text and str(tmp_path / "g2.tif") in text
    report = _refusal("ksdiff:assess", {"FUSED": pair["MS"], "PAN": pair["PAN"], "MS": pair["MS"], "SENSOR": "wv2",
                                        "OUTPUT_HTML": URI.format(gpkg)})
    assert "does not exist" not in report
    assert f'the report "{URI.format(gpkg)}" is a table "fused" in the GeoPackage "{gpkg}", not a file' in report
    # dbname in double quotes, as typed by hand (QA: 'in the database ""/x/o2.gpkg""', 'such as "/x/o2.tif')
    typed = f'ogr:dbname="{tmp_path / "o2.gpkg"}" table="fused" (geom)'
    text = _refusal("ksdiff:pansharpen", {**pair, "OUTPUT": typed})
    assert f'is a table "fused" in the GeoPackage "{tmp_path / "o2.gpkg"}", not a file' in text
    assert f'such as {tmp_path / "o2.tif"}, then convert' in text and '""' not in text


@pytest.fixture()
def skip_drivers(qgis_app):
    """``skip_drivers(["COG"])``: as unticking them in Settings > Options > GDAL (QGIS sets GDAL_SKIP); every
    driver is back afterwards, in GDAL's order: a driver registered again comes last, and a GTiff after COG would make
    every later ``gdal.Translate`` to a ``.tif`` of this test session write a COG ("Several drivers matching tif
    extension. Using COG"), which dropped NBITS=16 in test_saturated_range."""
    from osgeo import gdal
    from qgis.core import QgsApplication

    order = [gdal.GetDriver(i).ShortName for i in range(gdal.GetDriverCount())]
    yield lambda names: QgsApplication.setSkippedGdalDrivers(names, [])
    QgsApplication.setSkippedGdalDrivers([], [])
    for name in order[order.index("GTiff") + 1:]:   # those after GTiff go back after it
        driver = gdal.GetDriverByName(name)
        if driver is not None:
            driver.Deregister()
            driver.Register()
    assert [gdal.GetDriver(i).ShortName for i in range(gdal.GetDriverCount())] == order


def test_a_skipped_gdal_driver_is_named_with_how_to_enable_it(skip_drivers, pair, tmp_path):
    """QA: COG skipped + COG=true blamed 'Additional creation options' never given ("Output driver `COG' not
    recognised"); GTiff skipped made a valid GeoTIFF PAN "not a raster GDAL can read"."""
    from osgeo import gdal

    skip_drivers(["COG"])
    assert gdal.GetDriverByName("COG") is None
    out = tmp_path / "cog.tif"
    text = _refusal("ksdiff:pansharpen", {**pair, "OUTPUT": str(out), "COG": True})
    assert "creation options" not in text
    assert "GDAL's COG driver, which writes the Cloud-Optimized GeoTIFF" in text and "is disabled" in text
    assert "GDAL_SKIP" in text and "Settings > Options > GDAL" in text and "restart QGIS" in text
    assert not out.exists()
    from ksdiff_qgis.engine.errors import InputError
    from ksdiff_qgis.engine.pipeline import pansharpen
    with pytest.raises(InputError, match="GDAL's COG driver, .* is disabled"):   # the batch's way, without QGIS
        pansharpen(pair["PAN"], pair["MS"], str(out), "wv2", "mtf_glp_hpm", cog=True)
    skip_drivers(["GTiff"])
    text = _refusal("ksdiff:pansharpen", {**pair, "OUTPUT": str(tmp_path / "plain.tif")})
    assert "not a raster GDAL can read" not in text
    assert "GDAL's GTiff driver, which reads GeoTIFF inputs and writes the output, is disabled" in text
    assert "Settings > Options > GDAL" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ms.tif", "pan.tif"]


def _gray_band_4_style(ms: str, qml: str) -> None:
    """A user's raster style: gray band 4 at 50 % opacity."""
    from qgis.core import QgsRasterLayer, QgsSingleBandGrayRenderer

    layer = QgsRasterLayer(ms, "ms")
    renderer = QgsSingleBandGrayRenderer(layer.dataProvider(), 4)
    renderer.setOpacity(0.5)
    layer.setRenderer(renderer)
    assert layer.saveNamedStyle(qml)[1]


def _run_and_load_with_style(pair: dict, out: str, style: str, feedback, delete_style: bool = False):
    """``ksdiff:pansharpen`` onto ``out`` with Processing's "Style for raster layers" set to ``style`` (deleted after
    it is set when ``delete_style``), its output loaded as the dialog loads it into a project of the run's own
    (QgsProject.instance() keeps its layers), returned. ``feedback`` receives the loading's
    messages."""
    import processing
    from processing.core.ProcessingConfig import ProcessingConfig
    from processing.gui.Postprocessing import handleAlgorithmResults
    from qgis.core import (
        QgsApplication,
        QgsProcessingContext,
        QgsProcessingFeedback,
        QgsProcessingOutputLayerDefinition,
        QgsProject,
    )

    project = QgsProject()
    kept = ProcessingConfig.getSetting(ProcessingConfig.RASTER_STYLE)
    ProcessingConfig.setSettingValue(ProcessingConfig.RASTER_STYLE, style)
    if delete_style:
        Path(style).unlink()   # Processing takes only a style file that exists when it is set ... and is deleted later
    try:
        context = QgsProcessingContext()
        context.setProject(project)
        results = processing.run("ksdiff:pansharpen", {**pair, "OUTPUT": QgsProcessingOutputLayerDefinition(
            out, project)}, context=context, feedback=QgsProcessingFeedback())
        alg = QgsApplication.processingRegistry().createAlgorithmById("ksdiff:pansharpen")
        assert handleAlgorithmResults(alg, context, feedback, False, results)
    finally:
        ProcessingConfig.setSettingValue(ProcessingConfig.RASTER_STYLE, kept)
    return project   # the caller keeps it: its layers die with it


def test_processing_raster_style_setting_is_respected(qgis_app, pair, tmp_path):
    """QA: with Processing's "Style for raster layers" set, a native algorithm's output opened in it, ours in natural
    colour 3, 2, 1 with only the opacity kept. The loaded layer takes the user's style; the .qml beside the output
    (how the file opens elsewhere) is still KSDiff's natural colour."""
    from qgis.core import QgsMultiBandColorRenderer, QgsProcessingFeedback, QgsRasterLayer

    from ksdiff_qgis.engine.raster_io import is_ksdiff_style

    qml = str(tmp_path / "mystyle.qml")
    _gray_band_4_style(pair["MS"], qml)
    out = str(tmp_path / "fused.tif")
    project = _run_and_load_with_style(pair, out, qml, QgsProcessingFeedback())
    (layer,) = project.mapLayers().values()
    renderer = layer.renderer()
    assert type(renderer).__name__ == "QgsSingleBandGrayRenderer" and renderer.grayBand() == 4
    assert renderer.opacity() == 0.5
    # the file's own style is still natural colour, for every other way of opening it
    sidecar = str(tmp_path / "fused.qml")
    assert is_ksdiff_style(sidecar)
    opened = QgsRasterLayer(out, "elsewhere")
    assert isinstance(opened.renderer(), QgsMultiBandColorRenderer)
    assert (opened.renderer().redBand(), opened.renderer().greenBand(), opened.renderer().blueBand()) == (3, 2, 1)


def test_a_missing_processing_raster_style_keeps_natural_colour_and_says_so(qgis_app, pair, tmp_path):
    """QA: "Style for raster layers" set to a .qml since deleted: the loaded layer opened in bands 1, 2, 3 (Blue drawn
    red), with no word why. It is natural colour 3, 2, 1 and one warning names the missing file and the setting."""
    from qgis.core import QgsMultiBandColorRenderer, QgsProcessingFeedback

    class Recorded(QgsProcessingFeedback):
        warnings: list = []

        def pushWarning(self, text):  # noqa: N802
            self.warnings.append(text)

    gone = tmp_path / "gone.qml"
    _gray_band_4_style(pair["MS"], str(gone))
    feedback = Recorded()
    project = _run_and_load_with_style(pair, str(tmp_path / "fused.tif"), str(gone), feedback, delete_style=True)
    (layer,) = project.mapLayers().values()
    renderer = layer.renderer()
    assert isinstance(renderer, QgsMultiBandColorRenderer)
    assert (renderer.redBand(), renderer.greenBand(), renderer.blueBand()) == (3, 2, 1)
    style_warnings = [w for w in feedback.warnings if "gone.qml" in w]
    assert len(style_warnings) == 1
    assert f'The style file "{gone}" set in Settings > Options > Processing > General > "Style for raster layers" ' \
           "does not exist" in style_warnings[0]


@pytest.mark.parametrize("tmpdir, said", [
    ("/proc", "cannot be written (it is a pseudo file system such as /proc, where no file can be created)"),
    ("/etc/hostname", "is a file, not a folder"),
])
def test_a_cpl_tmpdir_that_is_no_writable_folder_says_why(qgis_app, pair, tmp_path, monkeypatch, tmpdir, said):
    """QA: CPL_TMPDIR=/proc with COG said "No such file or directory", CPL_TMPDIR=/etc/hostname "does not exist"."""
    import os

    if not os.path.exists(tmpdir):
        pytest.skip(f"no {tmpdir} here")
    monkeypatch.setenv("CPL_TMPDIR", tmpdir)
    out = tmp_path / "cog.tif"
    text = _refusal("ksdiff:pansharpen", {**pair, "OUTPUT": str(out), "COG": True})
    assert f"GDAL's temporary folder CPL_TMPDIR={tmpdir} {said}" in text
    assert "does not exist" not in text and "No such file" not in text and "create it" not in text
    assert not out.exists()
