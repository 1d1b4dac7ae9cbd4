"""Issue 14 through QGIS Processing: enum forms, SENSOR=auto, MS_BANDS, EXTENT (also in models and batch)."""
from __future__ import annotations

import re

import numpy as np
import pytest
from osgeo import gdal, osr
from test_sensors_bands import make_wv2_8band


def _run(params, feedback=None):
    import processing
    from qgis.core import QgsProcessingFeedback

    return processing.run("ksdiff:pansharpen", params, feedback=feedback or QgsProcessingFeedback())


class Log:
    """A QgsProcessingFeedback that keeps what the algorithm logged; ``cancel_at``: a pattern whose warning cancels
    the run (a user who reads it and stops)."""

    def __new__(cls, cancel_at=None):
        from qgis.core import QgsProcessingFeedback

        class _Log(QgsProcessingFeedback):
            def __init__(self):
                super().__init__()
                self.lines = []

            def pushInfo(self, info):  # noqa: N802
                self.lines.append(info)
                super().pushInfo(info)

            def pushWarning(self, warning):  # noqa: N802
                self.lines.append("WARNING " + warning)
                if cancel_at is not None and cancel_at.search(warning):
                    self.cancel()
                super().pushWarning(warning)

            def pushDebugInfo(self, info):  # noqa: N802
                self.lines.append("DEBUG " + info)
                super().pushDebugInfo(info)

            def reportError(self, error, fatalError=False):  # noqa: N802, N803
                self.lines.append("ERROR " + error)
                super().reportError(error, fatalError)

        return _Log()


def _extent_string(path, cols, rows, epsg=None):
    """'xmin,xmax,ymin,ymax [CRS]' over PAN pixel columns/rows ``cols``/``rows`` (optionally in EPSG:epsg)."""
    ds = gdal.Open(str(path))
    gt = ds.GetGeoTransform()
    x0, x1 = gt[0] + cols[0] * gt[1], gt[0] + cols[1] * gt[1]
    y1, y0 = gt[3] + rows[0] * gt[5], gt[3] + rows[1] * gt[5]
    src = osr.SpatialReference(wkt=ds.GetProjection())
    if epsg is None:
        return f"{x0!r},{x1!r},{y0!r},{y1!r} [{src.GetAuthorityName(None)}:{src.GetAuthorityCode(None)}]"
    dst = osr.SpatialReference()
    dst.ImportFromEPSG(epsg)
    for s in (src, dst):
        s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    ct = osr.CoordinateTransformation(src, dst)
    a, b = ct.TransformPoint(x0, y0)[:2], ct.TransformPoint(x1, y1)[:2]
    return f"{a[0]!r},{b[0]!r},{a[1]!r},{b[1]!r} [EPSG:{epsg}]"


# the label, and the longer label of 0.3.0 and before (read by the key in its brackets)
@pytest.mark.parametrize("value", ["wv2", "WV2", 1, "1", "WorldView-2 4 bands [wv2]",
                                   "WorldView-2 (4 bands: B, G, R, NIR), ratio 4 [wv2]"])
def test_sensor_accepts_key_label_and_index(qgis_app, data_dir, tmp_path, value):
    out = str(tmp_path / "o.tif")
    _run({"PAN": str(data_dir / "wv2_pan.tif"), "MS": str(data_dir / "wv2_ms.tif"), "SENSOR": value,
          "METHOD": "exp", "OUTPUT": out})
    ref = str(tmp_path / "ref.tif")
    _run({"PAN": str(data_dir / "wv2_pan.tif"), "MS": str(data_dir / "wv2_ms.tif"), "SENSOR": "wv2",
          "METHOD": 1, "OUTPUT": ref})                    # METHOD index 1 = exp
    assert np.array_equal(gdal.Open(out).ReadAsArray(), gdal.Open(ref).ReadAsArray())


def test_unknown_enum_value_lists_the_keys(qgis_app, data_dir, tmp_path):
    from qgis.core import QgsApplication, QgsProcessingContext

    alg = QgsApplication.processingRegistry().algorithmById("ksdiff:pansharpen")
    ok, msg = alg.checkParameterValues({"PAN": str(data_dir / "wv2_pan.tif"), "MS": str(data_dir / "wv2_ms.tif"),
                                        "SENSOR": "worldview9", "OUTPUT": str(tmp_path / "o.tif")},
                                       QgsProcessingContext())
    assert not ok and "worldview9" in msg and "wv2_8" in msg and "landsat8" in msg
    sensor = alg.parameterDefinition("SENSOR")
    assert sensor.valueAsPythonString(2, QgsProcessingContext()) == "2"   # History re-opens dialogs by index
    assert sensor.defaultValue() == 0 and sensor.keys[0] == "auto"


def test_option_numbers_never_move(qgis_app):
    """The dialog and saved models store an option's number: keys are only ever appended."""
    from qgis.core import QgsApplication

    alg = QgsApplication.processingRegistry().algorithmById("ksdiff:pansharpen")
    assert alg.parameterDefinition("SENSOR").keys[:15] == [
        "auto", "wv2", "wv2_8", "wv3", "wv3_4", "wv4", "qb", "ge1", "ikonos", "pleiades", "pneo", "spot67", "gf2",
        "landsat8", "generic"]
    assert alg.parameterDefinition("METHOD").keys[:5] == ["ksdiff", "exp", "brovey", "gsa", "mtf_glp_hpm"]
    assert alg.parameterDefinition("DEVICE").keys == ["auto", "cuda", "cpu"]
    assert alg.parameterDefinition("PRECISION").keys == ["fp32", "int8"]
    assert alg.parameterDefinition("PRECISION").defaultValue() == 1   # int8


@pytest.mark.parametrize("precision, says", [(None, "tiles run in int8 (PRECISION int8)"),
                                             ("fp32", "tiles run in float32 (PRECISION fp32)"),
                                             ("float32", "tiles run in float32 (PRECISION fp32)")])
def test_precision_through_processing(qgis_app, data_dir, tmp_path, precision, says):
    """PRECISION (advanced): the int8 path on CPU by default, float32 when asked; the log says which ran. The help
    calls it float32: that word is fp32's alias (it was refused: "unknown value 'float32'; use one of fp32, int8")."""
    log = Log()
    params = {"PAN": str(data_dir / "wv2_test_pan.tif"), "MS": str(data_dir / "wv2_test_ms.tif"), "SENSOR": "wv2",
              "METHOD": "ksdiff", "DEVICE": "cpu", "OUTPUT": str(tmp_path / "out.tif")}
    if precision:
        params["PRECISION"] = precision
    _run(params, log)
    assert any(says in line for line in log.lines), log.lines


def test_default_sensor_on_a_landsat_pair(qgis_app, data_dir, tmp_path):
    """The default sensor is auto: a Landsat pair is recognised (it used to fail with the wv2 model)."""
    log = Log()
    out = str(tmp_path / "l8.tif")
    _run({"PAN": str(data_dir / "l8_pan.tif"), "MS": str(data_dir / "l8_ms.tif"), "OUTPUT": out}, log)
    assert any("SENSOR=auto" in line and "[landsat8]" in line for line in log.lines), log.lines
    assert gdal.Open(out).RasterCount == 4


@pytest.mark.parametrize("method", ["gsa", "ksdiff"])
def test_ms_bands_on_an_eight_band_product(qgis_app, data_dir, tmp_path, method):
    ms8 = make_wv2_8band(data_dir / "wv2_ms.tif", tmp_path / "ms8.tif")
    log = Log()
    out = str(tmp_path / "o.tif")
    # reorder: NIR1, Red, Green, Blue, Yellow (band numbers of the 8-band layout)
    _run({"PAN": str(data_dir / "wv2_pan.tif"), "MS": str(ms8), "SENSOR": "wv2_8", "METHOD": method,
          "MS_BANDS": [7, 5, 3, 2, 4], "OUTPUT": out}, log)
    ds = gdal.Open(out)
    names = [ds.GetRasterBand(i + 1).GetDescription() for i in range(ds.RasterCount)]
    if method == "gsa":
        assert names == ["NIR1", "Red", "Green", "Blue", "Yellow"]
        assert ds.GetRasterBand(2).GetColorInterpretation() == gdal.GCI_RedBand
    else:   # the selection lacks bands of the 8-band network: the 4-band one fuses Blue, Green, Red, NIR from it,
        # MTF-GLP-HPM the Yellow band, and the output keeps the selection's order (until 2026-12-06 it held the
        # model's four bands in the model's order)
        assert names == ["NIR1", "Red", "Green", "Blue", "Yellow"]
        assert ds.GetRasterBand(2).GetColorInterpretation() == gdal.GCI_RedBand
        assert any("using wv2.onnx" in line for line in log.lines), log.lines
        assert any("mtf_glp_hpm fuses the others: Yellow" in line for line in log.lines), log.lines


def test_ms_bands_as_an_expression_or_a_bool(qgis_app, data_dir, tmp_path):
    """QA: MS_BANDS from a graphical model or processing.run as an expression ("'3,2,1'", array(3,2,1)) failed with
    "band 0 does not exist": it skipped the text reading for QGIS's. The expression's value is read like a value
    given directly; True, a failing expression are refused saying the accepted forms, before anything is written."""
    from qgis.core import QgsProcessingException, QgsProperty

    pair = {"PAN": str(data_dir / "wv2_pan.tif"), "MS": str(data_dir / "wv2_ms.tif"), "SENSOR": "wv2",
            "METHOD": "exp"}
    for i, value in enumerate([QgsProperty.fromExpression("'3,2,1'"), QgsProperty.fromExpression("array(3,2,1)"),
                               QgsProperty.fromValue("3 2 1")]):
        out = str(tmp_path / f"o{i}.tif")
        _run({**pair, "MS_BANDS": value, "OUTPUT": out})
        assert gdal.Open(out).GetMetadataItem("KSDIFF_MS_BANDS") == "3,2,1", value
    out = str(tmp_path / "null.tif")   # NULL: all bands, as when MS_BANDS is not given
    _run({**pair, "MS_BANDS": QgsProperty.fromExpression("NULL"), "OUTPUT": out})
    assert gdal.Open(out).RasterCount == 4

    for value, says in [(True, "MS_BANDS: 'True' is not a list of band numbers"),
                        (QgsProperty.fromExpression("3,2,1"), "MS_BANDS: the expression 3,2,1 failed")]:
        out = tmp_path / "bad.tif"
        with pytest.raises(QgsProcessingException) as raised:   # by the parameter check, in its own words
            _run({**pair, "MS_BANDS": value, "OUTPUT": str(out)})
        said = str(raised.value)
        assert said.startswith(f"Unable to execute algorithm\n{says}") and "4,3,2,1 or 4 3 2 1" in said, said
        assert not out.exists()


def test_extent_through_processing_in_another_crs(qgis_app, data_dir, tmp_path):
    pan = data_dir / "wv2_pan.tif"
    out = str(tmp_path / "aoi.tif")
    _run({"PAN": str(pan), "MS": str(data_dir / "wv2_ms.tif"), "SENSOR": "wv2", "METHOD": "exp",
          "EXTENT": _extent_string(pan, (64, 192), (32, 160), epsg=4326), "OUTPUT": out})
    ds = gdal.Open(out)
    assert 128 <= ds.RasterXSize <= 134 and 128 <= ds.RasterYSize <= 134
    gt, pgt = ds.GetGeoTransform(), gdal.Open(str(pan)).GetGeoTransform()
    col, row = (gt[0] - pgt[0]) / pgt[1], (gt[3] - pgt[3]) / pgt[5]
    assert col == pytest.approx(round(col), abs=1e-6) and row == pytest.approx(round(row), abs=1e-6)  # on the PAN grid


def test_extent_partly_outside_the_overlap_is_said(data_dir, tmp_path):
    """An EXTENT of 100 x 60 PAN pixels, half of it beyond the PAN's edge: the output covers the part inside, and the
    log says so (it was cut silently; only the output size showed it)."""
    from ksdiff_qgis.engine.pipeline import pansharpen

    pan = gdal.Open(str(data_dir / "wv2_pan.tif"))
    gt = pan.GetGeoTransform()
    x0, y1 = gt[0] + 206 * gt[1], gt[3] + 100 * gt[5]
    res = pansharpen(str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), str(tmp_path / "o.tif"), "wv2",
                     "exp", extent=(x0, y1 + 60 * gt[5], x0 + 100 * gt[1], y1))
    note = [w for w in res.warnings if w.startswith("EXTENT reaches beyond")]
    assert len(note) == 1 and f"covers {res.width} x 60 of its 100 x 60 PAN pixels" in note[0], res.warnings
    inside = pansharpen(str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), str(tmp_path / "i.tif"), "wv2",
                        "exp", extent=(gt[0] + 10 * gt[1], y1 + 60 * gt[5], gt[0] + 110 * gt[1], y1))
    assert not [w for w in inside.warnings if w.startswith("EXTENT")]


def test_extent_that_misses_is_refused(qgis_app, data_dir, tmp_path):
    from qgis.core import QgsProcessingException

    out = tmp_path / "miss.tif"
    with pytest.raises(QgsProcessingException):
        _run({"PAN": str(data_dir / "wv2_pan.tif"), "MS": str(data_dir / "wv2_ms.tif"), "SENSOR": "wv2",
              "METHOD": "exp", "EXTENT": _extent_string(data_dir / "wv2_pan.tif", (400, 500), (400, 500)),
              "OUTPUT": str(out)})
    assert not out.exists()


def _unreadable_extents():
    from qgis.core import (
        QgsCoordinateReferenceSystem,
        QgsGeometry,
        QgsPointXY,
        QgsProperty,
        QgsRectangle,
        QgsReferencedGeometry,
        QgsReferencedPointXY,
    )

    utm = QgsCoordinateReferenceSystem("EPSG:32631")
    return [(QgsProperty.fromExpression("'abc'"), "the expression 'abc'"),
            (QgsProperty.fromExpression("1/0"), "the expression 1/0"),
            (QgsReferencedGeometry(QgsGeometry.fromRect(QgsRectangle(593300, 5747500, 593400, 5747600)), utm),
             "a QgsReferencedGeometry"),
            (QgsReferencedPointXY(QgsPointXY(593300, 5747500), utm), "a QgsReferencedPointXY")]


def test_extent_that_gives_no_rectangle_is_refused(qgis_app, data_dir, tmp_path):
    """QA: an EXTENT given as an expression whose value is no extent ('abc', 1/0), or as a referenced geometry or
    point, which QGIS reads as no rectangle, fused the whole scene without a word. Each is refused, naming what was
    given and what to give, and nothing is written."""
    from qgis.core import QgsProcessingException

    for value, shown in _unreadable_extents():
        out = tmp_path / "o.tif"
        with pytest.raises(QgsProcessingException) as raised:   # by the parameter check, in its own words
            _run({"PAN": str(data_dir / "wv2_pan.tif"), "MS": str(data_dir / "wv2_ms.tif"), "SENSOR": "wv2",
                  "METHOD": "exp", "EXTENT": value, "OUTPUT": str(out)})
        said = str(raised.value)
        assert said.startswith(f"Unable to execute algorithm\nEXTENT: {shown} gives no rectangle"), said
        assert "xmin,xmax,ymin,ymax [CRS]" in said and not out.exists()


@pytest.mark.parametrize("project_crs", [None, "EPSG:32631", "EPSG:3857"])
def test_extent_with_an_unknown_crs_is_refused(qgis_app, data_dir, tmp_path, project_crs):
    """QGIS takes an extent whose CRS it does not know as one in the project's CRS (without one, the layer's); the
    algorithm refuses it instead. It fused a window of the PAN's own coordinates silently whenever the project had a
    CRS, as the desktop always does (QA: refused only under qgis_process, which has no project CRS)."""
    import processing
    from qgis.core import QgsCoordinateReferenceSystem, QgsProcessingContext, QgsProcessingException, QgsProject

    out = tmp_path / "unknown.tif"
    extent = _extent_string(data_dir / "wv2_pan.tif", (64, 192), (32, 160)).split(" [")[0] + " [EPSG:999999]"
    project = QgsProject()   # a project of the test's own: QgsProject.instance() is left alone
    if project_crs:
        project.setCrs(QgsCoordinateReferenceSystem(project_crs))
    context = QgsProcessingContext()
    context.setProject(project)
    log = Log()
    with pytest.raises(QgsProcessingException):
        processing.run("ksdiff:pansharpen", {"PAN": str(data_dir / "wv2_pan.tif"), "MS": str(data_dir / "wv2_ms.tif"),
                                             "SENSOR": "wv2", "METHOD": "exp", "EXTENT": extent, "OUTPUT": str(out)},
                       context=context, feedback=log)
    assert any('the text in brackets could not be read as a CRS: "EPSG:999999"' in line for line in log.lines), \
        log.lines
    assert not out.exists()


def _crs_text(path, form: str) -> str:
    srs = osr.SpatialReference(wkt=gdal.Open(str(path)).GetProjection())
    return {"epsg": "EPSG:32631", "wkt1": srs.ExportToWkt(),
            "wkt2": srs.ExportToWkt(["FORMAT=WKT2_2019"]), "proj": srs.ExportToProj4(),
            "proj4_prefixed": "proj4:" + srs.ExportToProj4()}[form]


@pytest.mark.parametrize("form", ["wkt1", "wkt2", "proj", "proj4_prefixed"])
def test_extent_with_a_wkt_or_proj_crs(qgis_app, data_dir, tmp_path, form):
    """EXTENT 'xmin,xmax,ymin,ymax [CRS]' with the CRS as a WKT or a bare PROJ string fuses the same window as with
    [EPSG:32631]. A WKT was refused with a fragment of itself ('EXTENT names the CRS "EPSG","32631", which QGIS does
    not know'), a bare PROJ string as unknown (QGIS reads the text in brackets as a WKT)."""
    pan = data_dir / "wv2_pan.tif"
    window = _extent_string(pan, (64, 192), (32, 160)).split(" [")[0]
    ref, out = str(tmp_path / "ref.tif"), str(tmp_path / f"{form}.tif")
    common = {"PAN": str(pan), "MS": str(data_dir / "wv2_ms.tif"), "SENSOR": "wv2", "METHOD": "exp"}
    _run({**common, "EXTENT": f"{window} [EPSG:32631]", "OUTPUT": ref})
    _run({**common, "EXTENT": f"{window} [{_crs_text(pan, form)}]", "OUTPUT": out})
    a, b = gdal.Open(ref), gdal.Open(out)
    assert (b.RasterXSize, b.RasterYSize) == (a.RasterXSize, a.RasterYSize) == (128, 128)
    assert b.GetGeoTransform() == pytest.approx(a.GetGeoTransform())


def test_extent_with_unreadable_crs_text_quotes_it_whole(qgis_app, data_dir, tmp_path):
    """Text in brackets that is no CRS is quoted whole (a long one cut), with the forms that work."""
    from qgis.core import QgsProcessingException

    pan = data_dir / "wv2_pan.tif"
    window = _extent_string(pan, (64, 192), (32, 160)).split(" [")[0]
    bad = _crs_text(pan, "wkt1").replace("PROJCS[", "PROJXX[")
    log = Log()
    with pytest.raises(QgsProcessingException):
        _run({"PAN": str(pan), "MS": str(data_dir / "wv2_ms.tif"), "SENSOR": "wv2", "METHOD": "exp",
              "EXTENT": f"{window} [{bad}]", "OUTPUT": str(tmp_path / "o.tif")}, log)
    line = next(x for x in log.lines if "could not be read as a CRS" in x)
    assert f'"{bad[:160]} …"' in line and "Use EPSG:xxxx, a WKT or a proj4: string" in line, line
    assert not (tmp_path / "o.tif").exists()


def test_extent_in_a_graphical_model_and_a_batch(qgis_app, data_dir, tmp_path, pansharpen_model):
    import processing
    from qgis.core import (
        QgsProcessingContext,
        QgsProcessingFeedback,
        QgsProcessingParameterExtent,
        QgsProcessingParameterRasterLayer,
    )

    raster = QgsProcessingParameterRasterLayer
    model = pansharpen_model("aoi model", {"PAN": ("pan", raster), "MS": ("ms", raster),
                                           "EXTENT": ("aoi", QgsProcessingParameterExtent)},
                             {"SENSOR": "qb", "METHOD": "brovey"})
    pan = data_dir / "wv2_pan.tif"
    res = processing.run(model, {"pan": str(pan), "ms": str(data_dir / "wv2_ms.tif"),
                                 "aoi": _extent_string(pan, (0, 100), (0, 60)),
                                 "sharpen:fused": str(tmp_path / "m.tif")},
                         context=QgsProcessingContext(), feedback=QgsProcessingFeedback())
    ds = gdal.Open(res["sharpen:fused"])
    assert (ds.RasterXSize, ds.RasterYSize) == (100, 60)
    # a batch: the same algorithm, one area per scene
    for i, (cols, rows) in enumerate((((0, 64), (0, 64)), ((128, 256), (100, 200)))):
        o = str(tmp_path / f"b{i}.tif")
        _run({"PAN": str(pan), "MS": str(data_dir / "wv2_ms.tif"), "SENSOR": "wv2", "METHOD": "gsa",
              "EXTENT": _extent_string(pan, cols, rows), "OUTPUT": o})
        assert (gdal.Open(o).RasterXSize, gdal.Open(o).RasterYSize) == (cols[1] - cols[0], rows[1] - rows[0])


def test_help_is_plain_text_with_parameter_help(qgis_app):
    from qgis.core import QgsApplication

    alg = QgsApplication.processingRegistry().algorithmById("ksdiff:pansharpen")
    assert "<" not in alg.shortHelpString()
    for name in ("SENSOR", "MS_BANDS", "EXTENT", "MTF_GAINS"):
        p = alg.parameterDefinition(name)
        assert p is not None and (not hasattr(p, "help") or p.help())
    from ksdiff_qgis.algorithms.compat import FLAG_ADVANCED

    assert alg.parameterDefinition("MS_BANDS").flags() & FLAG_ADVANCED
    assert not alg.parameterDefinition("EXTENT").flags() & FLAG_ADVANCED


def test_a_parameters_copy_keeps_its_flags_and_help(qgis_app):
    """A model or the batch dialog works on copies (``clone``): KSDiff's own parameter classes (raster inputs, band
    list, keyed enums) copy the flags (advanced) and help their constructors do not take."""
    from qgis.core import QgsApplication

    from ksdiff_qgis.algorithms.band_param import BandList
    from ksdiff_qgis.algorithms.compat import KeyedEnum
    from ksdiff_qgis.algorithms.raster_param import RasterInput

    seen = set()
    for alg_id in ("ksdiff:pansharpen", "ksdiff:assess"):
        for p in QgsApplication.processingRegistry().algorithmById(alg_id).parameterDefinitions():
            if isinstance(p, (BandList, KeyedEnum, RasterInput)):
                c = p.clone()
                assert type(c) is type(p) and (c.name(), c.flags()) == (p.name(), p.flags()), p.name()
                assert not hasattr(p, "help") or c.help() == p.help(), p.name()
                seen.add(type(p))
    assert seen == {BandList, KeyedEnum, RasterInput}


def test_parameter_help_states_each_default(qgis_app):
    """QGIS 3.22's ``qgis_process help`` prints no defaults: every option list and number of both algorithms says its
    own in its help (QA: TILE_SIZE, OVERLAP, DEVICE, COMPRESSION and assess SENSOR did not)."""
    from qgis.core import QgsApplication, QgsProcessingParameterNumber

    from ksdiff_qgis.algorithms.compat import KeyedEnum

    checked = []
    for alg_id in ("ksdiff:pansharpen", "ksdiff:assess"):
        for p in QgsApplication.processingRegistry().algorithmById(alg_id).parameterDefinitions():
            if isinstance(p, KeyedEnum):
                want = "Default: {}".format(p.keys[p.defaultValue()])
            elif isinstance(p, QgsProcessingParameterNumber):
                want = "Default: {:g}".format(p.defaultValue())
            else:
                continue
            assert want in p.help(), (alg_id, p.name(), p.help())
            checked.append(p.name())
    assert {"TILE_SIZE", "OVERLAP", "DEVICE", "COMPRESSION", "SENSOR"} <= set(checked)
    alg = QgsApplication.processingRegistry().algorithmById("ksdiff:pansharpen")
    assert "Default: 512 (64 to 8192)" in alg.parameterDefinition("TILE_SIZE").help()


def test_generic_sensor_with_custom_gains(qgis_app, data_dir, tmp_path):
    out, ref = str(tmp_path / "g.tif"), str(tmp_path / "qb.tif")
    common = {"PAN": str(data_dir / "wv2_pan.tif"), "MS": str(data_dir / "wv2_ms.tif"), "METHOD": "mtf_glp_hpm"}
    _run({**common, "SENSOR": "generic", "MTF_GAINS": "0.34, 0.32, 0.30, 0.22", "OUTPUT": out})
    _run({**common, "SENSOR": "qb", "OUTPUT": ref})       # the same gains as QuickBird's table entry
    assert np.array_equal(gdal.Open(out).ReadAsArray(), gdal.Open(ref).ReadAsArray())
    # separated by spaces, as MS_BANDS and the batch's mtf_gains column take them (QA: refused in QGIS only)
    spaced = str(tmp_path / "spaced.tif")
    _run({**common, "SENSOR": "generic", "MTF_GAINS": "0.34 0.32 0.30 0.22", "OUTPUT": spaced})
    assert np.array_equal(gdal.Open(spaced).ReadAsArray(), gdal.Open(ref).ReadAsArray())
    from qgis.core import QgsProcessingException

    with pytest.raises(QgsProcessingException):
        _run({**common, "SENSOR": "generic", "MTF_GAINS": "1.5", "OUTPUT": str(tmp_path / "bad.tif")})


@pytest.mark.parametrize("gains, meant", [("0,35", "0.35"), ("0,34; 0,32; 0,30; 0,22", "0.34, 0.32, 0.30, 0.22"),
                                          ("0,35 0,32 0,30 0,22", "0.35, 0.32, 0.30, 0.22")])
def test_decimal_comma_in_mtf_gains_says_use_a_decimal_point(qgis_app, data_dir, tmp_path, gains, meant):
    """MTF_GAINS "0,35" (a decimal comma, German/French habit) read as the gains 0 and 35 and only said "every gain
    must lie between 0 and 1": the message names the decimal comma and the value meant, before any output. Also
    for gains separated by spaces (QA: "0,35 0,32 0,30 0,22" only said "is not a comma-separated list of numbers")."""
    from qgis.core import QgsProcessingException

    out, log = tmp_path / "g.tif", Log()
    with pytest.raises(QgsProcessingException):
        _run({"PAN": str(data_dir / "wv2_pan.tif"), "MS": str(data_dir / "wv2_ms.tif"), "METHOD": "mtf_glp_hpm",
              "SENSOR": "generic", "MTF_GAINS": gains, "OUTPUT": str(out)}, log)
    errors = [line for line in log.lines if line.startswith("ERROR")]
    assert any(f"use a decimal point ({meant}); commas or spaces separate one gain per band" in e for e in errors), \
        errors
    assert not out.exists()


@pytest.mark.parametrize("alg_id", ["ksdiff:pansharpen", "ksdiff:assess"])
def test_option_labels_are_short_and_safe_in_file_names(qgis_app, alg_id):
    """QA under Xvfb: the batch panel's Sensor column was ~570 px and Method 400+ px wide, squeezing PAN and MS, and
    its autofill named files after the label: ``batch_KSDiff, checked on this scene (the best classical method when
    the model loses the self-check) [auto].tif``. Labels are short, end in their key, hold nothing a file name must
    not (commas, slashes, colons), and the detail is in the parameter's help."""
    from qgis.core import QgsApplication

    from ksdiff_qgis.algorithms.compat import KeyedEnum

    alg = QgsApplication.processingRegistry().algorithmById(alg_id)
    enums = [p for p in alg.parameterDefinitions() if isinstance(p, KeyedEnum)]
    assert {p.name() for p in enums} >= ({"SENSOR", "METHOD", "DEVICE", "PRECISION", "COMPRESSION"}
                                         if alg_id == "ksdiff:pansharpen" else {"SENSOR"})
    for p in enums:
        for key, label in zip(p.keys, p.options()):
            assert len(label) <= 40, (p.name(), label)
            assert re.fullmatch(r"[\w .()+-]+ \[[\w-]+\]", label), (p.name(), label)   # no , / : ; in a file name
            assert label.endswith(f"[{key}]") and p.key_of(label) == key
    if alg_id == "ksdiff:pansharpen":
        method, sensor = alg.parameterDefinition("METHOD"), alg.parameterDefinition("SENSOR")
        assert "auto: KSDiff, checked on this scene (the best classical method" in method.help()
        assert "wv2_8: WorldView-2 (8 bands), ratio 4" in sensor.help()
        assert [method.key_of(i) for i in range(7)] == ["ksdiff", "exp", "brovey", "gsa", "mtf_glp_hpm", "auto",
                                                        "mtf_glp_fs"]   # option numbers never move


def test_dialog_widget_shows_labels_and_round_trips(qgis_app):
    """The dialog's enum widget lists the labels; a value set by index (History, batch, models) comes back."""
    from qgis.core import QgsApplication, QgsProcessingContext
    from qgis.gui import QgsGui, QgsProcessingGui
    from qgis.PyQt.QtWidgets import QComboBox

    alg = QgsApplication.processingRegistry().algorithmById("ksdiff:pansharpen")
    param = alg.parameterDefinition("SENSOR")
    wrapper = QgsGui.processingGuiRegistry().createParameterWidgetWrapper(param, QgsProcessingGui.Standard)
    widget = wrapper.createWrappedWidget(QgsProcessingContext())
    combo = widget if isinstance(widget, QComboBox) else widget.findChild(QComboBox)
    assert combo.itemText(0).endswith("[auto]") and combo.itemText(2) == "WorldView-2 8 bands [wv2_8]"
    assert wrapper.parameterValue() == 0                  # default: auto
    wrapper.setParameterValue(2, QgsProcessingContext())
    assert wrapper.parameterValue() == 2 and param.key_of(wrapper.parameterValue()) == "wv2_8"


def test_algorithm_dialog_builds_and_returns_the_new_parameters(qgis_app, data_dir):
    """The real dialog (as the toolbox opens it) with the band picker, extent and labelled enums, also given preset
    values by key (processing.execAlgorithmDialog)."""
    from unittest import mock

    import processing
    import processing.gui.AlgorithmDialog as algorithm_dialog
    import processing.tools.general as general
    from qgis.core import QgsProject, QgsRasterLayer
    from qgis.PyQt.QtWidgets import QMainWindow

    window = QMainWindow()
    iface = mock.MagicMock()
    iface.mainWindow.return_value = window
    iface.activeLayer.return_value = None
    # names of their own, and left in the project: removing layers a closed (not yet deleted) dialog's widgets still
    # hold crashed the suite once (segfault in removeMapLayers under load)
    pan = QgsRasterLayer(str(data_dir / "wv2_pan.tif"), "issue14 dialog pan")
    ms = QgsRasterLayer(str(data_dir / "wv2_ms.tif"), "issue14 dialog ms")
    QgsProject.instance().addMapLayers([pan, ms])
    with mock.patch.object(general, "iface", iface), mock.patch.object(algorithm_dialog, "iface", iface):
        dlg = processing.createAlgorithmDialog("ksdiff:pansharpen", {"PAN": pan.id(), "MS": ms.id(), "SENSOR": 6,
                                                                      "MS_BANDS": [4, 3, 2]})
        params = dlg.createProcessingParameters()
        assert params["SENSOR"] == 6 and dlg.algorithm().parameterDefinition("SENSOR").key_of(6) == "qb"
        assert params["MS_BANDS"] == [4, 3, 2]
        assert params.get("EXTENT") in (None, "")
        dlg.close()
        # preset values may name options by key or label (the dialog showed the defaults: auto, auto)
        dlg = processing.createAlgorithmDialog("ksdiff:pansharpen", {"PAN": pan.id(), "MS": ms.id(), "SENSOR": "QB",
                                                                      "METHOD": "gsa", "DEVICE": "cpu"})
        params = dlg.createProcessingParameters()
        assert (params["SENSOR"], params["METHOD"], params["DEVICE"]) == (6, 3, 2), params
        dlg.close()


def test_enum_keys_survive_a_model_exported_to_python_and_the_history(qgis_app, data_dir, tmp_path, pansharpen_model):
    """A model child given SENSOR=qb, METHOD=brovey by key, exported to Python and run, fuses as the model does; the
    command History logs names the same options (both wrote 0, 0: SENSOR auto, METHOD KSDiff, silently)."""
    import processing
    from qgis.core import (
        QgsApplication,
        QgsProcessing,
        QgsProcessingContext,
        QgsProcessingFeedback,
        QgsProcessingParameterRasterLayer,
    )

    raster = QgsProcessingParameterRasterLayer
    model = pansharpen_model("keys", {"PAN": ("pan", raster), "MS": ("ms", raster)},
                             {"SENSOR": "qb", "METHOD": "brovey"})
    code = "\n".join(model.asPythonCode(QgsProcessing.PythonQgsProcessingAlgorithmSubclass, 4))
    assert "'SENSOR': 6," in code and "'METHOD': 2," in code, code
    namespace = {}
    exec(code, namespace)   # noqa: S102 - the script QGIS wrote
    exported = namespace["Keys"]()
    exported.initAlgorithm()
    inputs = {"pan": str(data_dir / "wv2_pan.tif"), "ms": str(data_dir / "wv2_ms.tif")}
    res = processing.run(exported, {**inputs, "Fused": str(tmp_path / "exported.tif")},
                         context=QgsProcessingContext(), feedback=QgsProcessingFeedback())
    ref = str(tmp_path / "ref.tif")
    _run({"PAN": inputs["pan"], "MS": inputs["ms"], "SENSOR": "qb", "METHOD": "brovey", "OUTPUT": ref})
    assert np.array_equal(gdal.Open(res["Fused"]).ReadAsArray(), gdal.Open(ref).ReadAsArray())

    alg = QgsApplication.processingRegistry().algorithmById("ksdiff:pansharpen")
    logged = alg.asPythonCommand({"SENSOR": "QB", "METHOD": "brovey", "DEVICE": 2}, QgsProcessingContext())
    assert "'SENSOR':6" in logged and "'METHOD':2" in logged and "'DEVICE':2" in logged, logged


def test_an_unknown_option_in_a_model_is_refused_not_run_as_the_default(qgis_app, data_dir, tmp_path):
    """QGIS 3.22 checks no model child's values: a METHOD of 'mtf-glp-hpm' (a typo) ran METHOD auto and the model
    said it finished (QA). The child now fails with the same refusal as a direct run; a model exported to Python
    keeps the typed value (it wrote 0, another option)."""
    import processing
    from qgis.core import (
        QgsApplication,
        QgsProcessingContext,
        QgsProcessingException,
        QgsProcessingModelAlgorithm,
        QgsProcessingModelChildAlgorithm,
    )
    from qgis.core import QgsProcessingModelChildParameterSource as Source

    model = QgsProcessingModelAlgorithm("typo", "tests")
    child = QgsProcessingModelChildAlgorithm("ksdiff:pansharpen")
    child.setChildId("ps")
    values = {"PAN": str(data_dir / "wv2_pan.tif"), "MS": str(data_dir / "wv2_ms.tif"), "SENSOR": "wv2",
              "METHOD": "mtf-glp-hpm", "OUTPUT": str(tmp_path / "o.tif")}
    for name, value in values.items():
        child.addParameterSources(name, [Source.fromStaticValue(value)])
    model.addChildAlgorithm(child)
    with pytest.raises(QgsProcessingException):
        processing.run(model, {})
    assert not (tmp_path / "o.tif").exists()
    method = QgsApplication.processingRegistry().algorithmById("ksdiff:pansharpen").parameterDefinition("METHOD")
    with pytest.raises(QgsProcessingException, match="METHOD: unknown value 'mtf-glp-hpm'; use one of ksdiff"):
        method.resolve({"METHOD": "mtf-glp-hpm"}, QgsProcessingContext())
    assert method.resolve({"METHOD": ""}, QgsProcessingContext()) == "auto"
    # QA: "(or an option's label or number)" while the label alone is refused by design: the message says what works
    label = next(o for o in method.options() if o.endswith("[brovey]"))
    whole = r"\(or an option's whole label with its \[key\], or its number\)$"
    with pytest.raises(QgsProcessingException, match=whole):
        method.resolve({"METHOD": label.replace(" [brovey]", "")}, QgsProcessingContext())
    assert method.resolve({"METHOD": label}, QgsProcessingContext()) == "brovey"
    assert method.valueAsPythonString("mtf-glp-hpm", QgsProcessingContext()) == "'mtf-glp-hpm'"
    assert method.valueAsPythonString("gsa", QgsProcessingContext()) == str(method.keys.index("gsa"))
