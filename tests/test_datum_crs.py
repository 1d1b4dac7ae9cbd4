"""An MS on another datum than the PAN (QA130): a bare PROJ string with no datum shift is placed as QGIS shows it and
warned of; the QGIS project's datum transformation is the one the MS is reprojected with, and named."""
from __future__ import annotations

import numpy as np
import pytest
from osgeo import gdal

from ksdiff_qgis.engine.feedback import RecordingFeedback
from ksdiff_qgis.engine.pipeline import pansharpen

BARE_ED50 = "+proj=utm +zone=31 +ellps=intl +units=m +no_defs"   # ED50 / UTM 31N as old GeoTIFFs write it


@pytest.fixture()
def ed50(data_dir, tmp_path):
    """(PAN, MS in EPSG:23031, the same MS declared by the bare PROJ string): the fixture lies at Rotterdam."""
    ms = str(tmp_path / "ms_ed50.tif")
    gdal.Warp(ms, str(data_dir / "wv2_ms.tif"), dstSRS="EPSG:23031", resampleAlg="cubic", xRes=2, yRes=2)
    bare = str(tmp_path / "ms_bare.tif")
    gdal.Translate(bare, ms, outputSRS=BARE_ED50)
    return str(data_dir / "wv2_pan.tif"), ms, bare


def _run(params: dict, context=None) -> tuple[tuple, np.ndarray, list[str]]:
    import processing
    from qgis.core import QgsProcessingFeedback

    warnings: list[str] = []

    class Feedback(QgsProcessingFeedback):
        def pushWarning(self, text):  # noqa: N802
            warnings.append(text)

    out = processing.run("ksdiff:pansharpen", {"SENSOR": "wv2", "METHOD": "mtf_glp_hpm", **params},
                         context=context, feedback=Feedback())["OUTPUT"]
    ds = gdal.Open(out)
    return ds.GetGeoTransform() + (ds.RasterXSize, ds.RasterYSize), ds.ReadAsArray(), warnings


def test_a_bare_proj_string_ms_is_fused_where_qgis_shows_it(qgis_app, data_dir, ed50, tmp_path):
    from qgis.core import QgsRasterLayer

    pan, _, bare = ed50
    layer = QgsRasterLayer(bare, "ms_bare")
    assert layer.crs().authid() == "EPSG:23031"   # QGIS's reading of the bare string, drawn with ED50's shift
    ref, ref_px, _ = _run({"PAN": pan, "MS": str(data_dir / "wv2_ms.tif"), "OUTPUT": str(tmp_path / "ref.tif")})
    got, got_px, warnings = _run({"PAN": pan, "MS": layer, "OUTPUT": str(tmp_path / "bare.tif")})
    # within one MS pixel (2 m, 4 PAN pixels) of the same-CRS run; the file's own CRS put it 88 m east, half cut off
    assert abs(got[0] - ref[0]) <= 2 and abs(got[3] - ref[3]) <= 2, (got, ref)
    assert abs(got[6] - ref[6]) <= 4 and abs(got[7] - ref[7]) <= 4, (got, ref)
    assert any("EPSG:23031" in w and "replaces" in w for w in warnings), warnings
    r0, c0 = round((ref[3] - got[3]) / 0.5), round((got[0] - ref[0]) / 0.5)
    h, w = min(got[7], ref[7]) - 8, min(got[6], ref[6]) - 8
    a = got_px[:, 4 - min(r0, 0):4 - min(r0, 0) + h, 4 - min(c0, 0):4 - min(c0, 0) + w].astype(float)
    b = ref_px[:, 4 + max(r0, 0):4 + max(r0, 0) + h, 4 + max(c0, 0):4 + max(c0, 0) + w].astype(float)
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.95


def test_the_engine_warns_of_an_ms_crs_with_no_datum_shift(ed50, tmp_path):
    pan, _, bare = ed50
    log = RecordingFeedback()
    pansharpen(pan, bare, str(tmp_path / "o.tif"), sensor="wv2", method="mtf_glp_hpm", feedback=log)
    said = [w for w in _warnings(log) if "no datum shift" in w]
    assert len(said) == 1 and "gdal_edit.py -a_srs EPSG:23031" in said[0], _warnings(log)
    assert len(said[0]) <= 420 and "\n" not in said[0]
    # QA133: "The MS's CRS the custom CRS +proj=…", a word missing; QA136: "(a custom CRS)" read as part of the CRS
    assert said[0].startswith(f"The MS's CRS, the custom CRS {BARE_ED50} (") and "CRS the" not in said[0], said[0]
    assert "(a custom CRS)" not in said[0] and "to the PAN's, EPSG:" in said[0], said[0]


def test_a_same_datum_pair_names_no_datum_transformation(ed50, tmp_path):
    pan, ms, _ = ed50
    log = RecordingFeedback()
    pansharpen(pan, ms, str(tmp_path / "o.tif"), sensor="wv2", method="mtf_glp_hpm", feedback=log)
    line = next(w for w in _warnings(log) if "reprojected on the fly" in w)
    assert "Datum transformation European_Datum_1950 to WGS_1984" in line
    assert not any("no datum shift" in w for w in _warnings(log))


def _warnings(log: RecordingFeedback) -> list[str]:
    return [line[len("WARNING "):] for line in log.lines if line.startswith("WARNING ")]


def _operation(name_part: str) -> str:
    """The PROJ pipeline QGIS offers for EPSG:23031 -> EPSG:32631 whose name has ``name_part``."""
    from qgis.core import QgsCoordinateReferenceSystem, QgsDatumTransform

    ops = QgsDatumTransform.operations(QgsCoordinateReferenceSystem("EPSG:23031"),
                                       QgsCoordinateReferenceSystem("EPSG:32631"))
    found = [op.proj for op in ops if name_part in op.name and op.isAvailable]
    if not found:
        pytest.skip(f"PROJ offers no available {name_part}")
    return found[0]


def test_the_project_datum_transformation_is_used_and_named(qgis_app, ed50, tmp_path):
    from qgis.core import (
        QgsCoordinateReferenceSystem,
        QgsCoordinateTransformContext,
        QgsProcessingContext,
        QgsProject,
    )

    pan, ms, _ = ed50
    op = _operation("ED50 to WGS 84 (2)")   # EPSG:1134; PROJ's default here is (1), EPSG:1133, ~1.2 m apart
    default, default_px, _ = _run({"PAN": pan, "MS": ms, "OUTPUT": str(tmp_path / "default.tif")})
    ctx = QgsCoordinateTransformContext()
    assert ctx.addCoordinateOperation(QgsCoordinateReferenceSystem("EPSG:23031"),
                                      QgsCoordinateReferenceSystem("EPSG:32631"), op)
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    context.setTransformContext(ctx)
    got, got_px, warnings = _run({"PAN": pan, "MS": ms, "OUTPUT": str(tmp_path / "ctx.tif")}, context)
    assert not np.array_equal(got_px, default_px)   # before: byte-identical to the default operation's run
    # the engine given that operation writes the same pixels, and its warp is gdalwarp's with that operation
    pansharpen(pan, ms, str(tmp_path / "engine.tif"), sensor="wv2", method="mtf_glp_hpm", ms_operation=op)
    assert np.array_equal(gdal.Open(str(tmp_path / "engine.tif")).ReadAsArray(), got_px)
    line = next(w for w in warnings if "reprojected on the fly" in w)
    assert "ED50 to WGS 84 (2)" in line and "accuracy" in line and "project" in line, line


def test_the_warp_with_an_operation_is_gdalwarps(ed50):
    from ksdiff_qgis.engine import grid
    from ksdiff_qgis.engine.raster_io import open_raster

    pan_path, ms_path, _ = ed50
    op = ("+proj=pipeline +step +inv +proj=utm +zone=31 +ellps=intl +step +proj=push +v_3 +step +proj=cart "
          "+ellps=intl +step +proj=helmert +x=-84 +y=-107 +z=-120 +step +inv +proj=cart +ellps=WGS84 +step "
          "+proj=pop +v_3 +step +proj=utm +zone=31 +ellps=WGS84")   # EPSG:1134's shift
    _, pan = open_raster(pan_path, "PAN")
    ms_ds, ms = open_raster(ms_path, "MS")
    plan = grid.plan_grid(pan, ms, ms_ds, ms_operation=op)
    vrt = plan.ms_dataset
    gt = vrt.GetGeoTransform()
    bounds = (gt[0], gt[3] + vrt.RasterYSize * gt[5], gt[0] + vrt.RasterXSize * gt[1], gt[3])
    ref = gdal.Warp("", ms_path, format="MEM", dstSRS="EPSG:32631", outputBounds=bounds, xRes=gt[1], yRes=-gt[5],
                    resampleAlg="cubic", srcNodata=0, dstNodata=0, coordinateOperation=op)
    assert np.array_equal(vrt.ReadAsArray(), ref.ReadAsArray())
    default = grid.plan_grid(pan, ms, ms_ds).ms_dataset
    assert not np.array_equal(default.ReadAsArray(), ref.ReadAsArray())


def test_an_axis_swap_is_no_datum_transformation(data_dir):
    """A custom CRS on WGS 84 assigned to the MS (through the VRT that writes it back as WKT1, longitude first) against
    the PAN's EPSG:32631 (latitude first): one datum, no 'Datum transformation' clause (QA135: 'WGS_1984 to
    WGS_1984: Inverse of unknown + axis order change ...')."""
    from osgeo import osr

    from ksdiff_qgis.engine import datums, grid

    srs = osr.SpatialReference()
    srs.ImportFromProj4("+proj=tmerc +lat_0=0 +lon_0=3 +k=0.99960001 +x_0=500000 +y_0=0 +datum=WGS84 +units=m +no_defs")
    view, _ = grid.assign_crs(gdal.Open(str(data_dir / "wv2_ms.tif")), srs.ExportToWkt(["FORMAT=WKT2_2018"]), "MS")
    pan = gdal.Open(str(data_dir / "wv2_pan.tif")).GetProjection()
    assert datums.transformation_text(view.GetProjection(), pan, None, "an axis swap") == ""
