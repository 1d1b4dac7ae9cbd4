"""A no-data value (Layer Properties > Transparency) or a CRS (Layer Properties > Source) set on the QGIS layer, not in
the file: the pipeline reads the file, so the algorithm hands the layer's value to the engine (``pan_nodata`` /
``ms_nodata``, ``pan_crs`` / ``ms_crs``). Layer settings it cannot follow (a no-data value the file overrides, GDAL
open options) are warned."""
from __future__ import annotations

import shlex

import numpy as np
import pytest
from osgeo import gdal, osr

from ksdiff_qgis.engine.feedback import RecordingFeedback
from ksdiff_qgis.engine.pipeline import pansharpen

BLOCK = (slice(0, 20), slice(0, 24))   # MS pixels set to 0 (PAN 80 x 96)


def _zero_as_layer_nodata(layer) -> None:
    """0 as the layer's nodata value on every band, as Layer Properties > Transparency sets it."""
    from qgis.core import QgsRasterRange

    for b in range(1, layer.bandCount() + 1):
        layer.dataProvider().setUserNoDataValue(b, [QgsRasterRange(0, 0)])



def _fused_log(data_dir, ms, method: str, out):
    """ksdiff:pansharpen of the WV2 fixture PAN with ``ms`` (a layer or path) as SENSOR wv2: (results, its Log)."""
    import processing
    from test_issue14_processing import Log

    log = Log()
    res = processing.run("ksdiff:pansharpen", {"PAN": str(data_dir / "wv2_pan.tif"), "MS": ms, "SENSOR": "wv2",
                                               "METHOD": method, "OUTPUT": str(out)}, feedback=log)
    return res, log

def _with_zero_block(src, path, block, nodata=None) -> str:
    """A copy of ``src`` whose pixels ``block`` are 0 in every band (real data there), declaring ``nodata``."""
    ds = gdal.Translate(str(path), str(src), options=gdal.TranslateOptions(noData="none"))
    for b in range(1, ds.RasterCount + 1):
        band = ds.GetRasterBand(b)
        arr = band.ReadAsArray()
        arr[block] = 0
        band.WriteArray(arr)
        if nodata is not None:
            band.SetNoDataValue(nodata)
        band = None
    ds = None
    return str(path)


def _ms_with_zero_block(data_dir, path, nodata=None) -> str:
    return _with_zero_block(data_dir / "wv2_ms.tif", path, BLOCK, nodata)


def _holes(path) -> np.ndarray:
    ds = gdal.Open(path)
    arr, nodata = ds.ReadAsArray(), ds.GetRasterBand(1).GetNoDataValue()
    return (arr == nodata).all(axis=0) if nodata is not None else np.zeros(arr.shape[1:], bool)


def test_engine_nodata_from_outside_the_file_acts_as_the_files(data_dir, tmp_path):
    pan = str(data_dir / "wv2_pan.tif")
    plain = _ms_with_zero_block(data_dir, tmp_path / "plain.tif")
    declared = _ms_with_zero_block(data_dir, tmp_path / "declared.tif", nodata=0)
    log = RecordingFeedback()
    given = pansharpen(pan, plain, str(tmp_path / "given.tif"), "wv2", "mtf_glp_hpm", ms_nodata=0, feedback=log)
    assert any("MS layer's nodata value 0 is used" in line for line in log.lines)
    ref = pansharpen(pan, declared, str(tmp_path / "ref.tif"), "wv2", "mtf_glp_hpm")
    a, b = (gdal.Open(r.output_path).ReadAsArray().astype(np.int64) for r in (given, ref))
    assert np.array_equal(a, b) and _holes(given.output_path)[:80, :96].all()
    # a file that declares its own nodata keeps it, and the log says the layer's value was not used
    log = RecordingFeedback()
    pansharpen(pan, declared, str(tmp_path / "kept.tif"), "wv2", "mtf_glp_hpm", ms_nodata=7, feedback=log)
    assert any("nodata value 7 is not used: the file declares 0" in line for line in log.lines)


def test_processing_uses_the_layers_no_data_value(qgis_app, data_dir, tmp_path):
    import processing
    from qgis.core import QgsProcessingFeedback, QgsRasterLayer

    ms_path = _ms_with_zero_block(data_dir, tmp_path / "ms.tif")
    pan = QgsRasterLayer(str(data_dir / "wv2_pan.tif"), "pan")
    outs = {}
    for name in ("file_only", "layer_nodata"):
        ms = QgsRasterLayer(ms_path, "ms")
        assert ms.isValid()
        if name == "layer_nodata":
            _zero_as_layer_nodata(ms)
        res = processing.run("ksdiff:pansharpen", {"PAN": pan, "MS": ms, "SENSOR": "wv2", "METHOD": "mtf_glp_hpm",
                                                   "OUTPUT": str(tmp_path / f"{name}.tif")},
                             feedback=QgsProcessingFeedback())
        outs[name] = _holes(res["OUTPUT"])
    assert outs["layer_nodata"][:80, :96].all() and not outs["file_only"][:80, :96].any()
    assert not outs["layer_nodata"][120:, 120:].any()


def test_a_layers_no_data_value_the_file_overrides_is_warned(qgis_app, data_dir, tmp_path):
    """The file declares 0, the layer 300 (QA: silently ignored, documented only in the code): both algorithms warn
    that the layer's value is not used, which one is, and how to use the layer's."""
    import processing
    from qgis.core import QgsRasterLayer, QgsRasterRange
    from test_issue14_processing import Log

    ms = QgsRasterLayer(_ms_with_zero_block(data_dir, tmp_path / "ms.tif", nodata=0), "declared ms")
    ms.dataProvider().setUserNoDataValue(1, [QgsRasterRange(300, 300)])
    said = ("MS: the nodata value 300 set on the layer 'declared ms' (Layer Properties > Transparency) is not used: "
            "the run reads the file, which declares its own nodata value, 0, and that one is used",
            "gdal_translate -a_nodata 300")
    _, log = _fused_log(data_dir, ms, "mtf_glp_hpm", tmp_path / "o.tif")
    assert any(line.startswith("WARNING " + said[0]) and said[1] in line for line in log.lines), log.lines
    log = Log()
    processing.run("ksdiff:assess", {"FUSED": str(tmp_path / "o.tif"), "PAN": str(data_dir / "wv2_pan.tif"), "MS": ms,
                                     "SENSOR": "wv2", "OUTPUT_HTML": str(tmp_path / "r.html")}, feedback=log)
    assert any(line.startswith("WARNING " + said[0]) for line in log.lines), log.lines
    # a layer whose value is used says nothing of the kind
    plain = QgsRasterLayer(_ms_with_zero_block(data_dir, tmp_path / "plain.tif"), "plain ms")
    _zero_as_layer_nodata(plain)
    _, log = _fused_log(data_dir, plain, "mtf_glp_hpm", tmp_path / "p.tif")
    assert not any("Transparency" in line for line in log.lines), log.lines


def test_a_layers_gdal_open_options_are_warned(qgis_app, data_dir, tmp_path):
    """A layer opening its file with ``|option:OVERVIEW_LEVEL=0`` (QGIS shows the 32x32 overview): the run reads the
    64x64 file (QA: without a word); the warning names the options, both sizes and the gdal_translate -oo fix."""
    from qgis.core import QgsRasterLayer

    path = str(tmp_path / "ms_ovr.tif")
    ds = gdal.Translate(path, str(data_dir / "wv2_ms.tif"))
    ds.BuildOverviews("AVERAGE", [2])
    ds = None
    ms = QgsRasterLayer(path + "|option:OVERVIEW_LEVEL=0", "ms overview")
    assert ms.isValid() and (ms.width(), ms.height()) == (32, 32)
    _, log = _fused_log(data_dir, ms, "gsa", tmp_path / "o.tif")
    said = [line for line in log.lines if "open option" in line]
    assert len(said) == 1 and said[0].startswith("WARNING MS: the layer 'ms overview'"), log.lines
    for part in ("OVERVIEW_LEVEL=0, which are not applied here: the file itself is read (64x64 pixels, where QGIS "
                 "shows the layer with them as 32x32)", f"gdal_translate -oo OVERVIEW_LEVEL=0 {shlex.quote(path)}"):
        assert part in said[0], said[0]
    # the same file without options: no warning
    _, log = _fused_log(data_dir, QgsRasterLayer(path, "ms"), "gsa", tmp_path / "p.tif")
    assert not any("open option" in line for line in log.lines)


def test_assess_uses_a_layers_no_data_value(qgis_app, data_dir, tmp_path):
    """ksdiff:assess through Processing: a reference whose zero block is no-data only on its QGIS layer scores as
    the same reference with 0 declared in the file (the block left out), not as the file alone."""
    import processing
    from qgis.core import QgsRasterLayer

    from model_core.wald import make_reduced_case

    case = make_reduced_case(data_dir / "wv2_pan.tif", data_dir / "wv2_ms.tif", str(tmp_path), "wv2")
    fused = pansharpen(case.pan, case.ms, str(tmp_path / "fused.tif"), "wv2", "mtf_glp_hpm").output_path
    refs = {}
    for name, nodata in (("plain", None), ("declared", 0)):
        ds = gdal.Translate(str(tmp_path / f"ref_{name}.tif"), case.ref, options=gdal.TranslateOptions(noData="none"))
        for b in range(1, ds.RasterCount + 1):
            band = ds.GetRasterBand(b)
            arr = band.ReadAsArray()
            arr[:20, :24] = 0
            band.WriteArray(arr)
            if nodata is not None:
                band.SetNoDataValue(nodata)
            band = None
        ds = None
        refs[name] = str(tmp_path / f"ref_{name}.tif")
    layer = QgsRasterLayer(refs["plain"], "ref")
    _zero_as_layer_nodata(layer)
    run = {name: processing.run("ksdiff:assess", {"FUSED": fused, "REFERENCE": ref, "SENSOR": "wv2",
                                                  "OUTPUT_HTML": str(tmp_path / f"{name}.html")})
           for name, ref in (("plain", refs["plain"]), ("declared", refs["declared"]), ("layer", layer))}
    assert run["layer"]["ERGAS"] == run["declared"]["ERGAS"] != run["plain"]["ERGAS"]


def test_a_zero_fill_without_a_nodata_value_is_pointed_out(data_dir, tmp_path):
    """An MS whose corner is 0 in every band but declares no nodata value: fused as data (as before), with a warning
    that names the fix (the layer's no-data value); none once the value is declared, none on plain data."""
    pan = str(data_dir / "wv2_pan.tif")
    runs = {"undeclared": _ms_with_zero_block(data_dir, tmp_path / "ms_fill.tif"),
            "declared": _ms_with_zero_block(data_dir, tmp_path / "ms_nd.tif", nodata=0),
            "plain": str(data_dir / "wv2_ms.tif")}
    for name, ms in runs.items():
        log = RecordingFeedback()
        res = pansharpen(pan, ms, str(tmp_path / f"out_{name}.tif"), "wv2", "gsa", feedback=log)
        said = [w for w in res.warnings if "declares no nodata value" in w and "MS" in w]
        assert bool(said) == (name == "undeclared"), (name, res.warnings)
        if said:
            assert "Layer Properties > Transparency" in said[0] and "12%" in said[0]   # 20 x 24 of 64 x 64 MS pixels
            assert any(said[0] in m for m in log.lines)


def test_the_zero_fill_warning_comes_before_the_self_check(data_dir, tmp_path):
    """The self-check's windows fuse such a fill as data too: the user reads why before its figures."""
    ms = _ms_with_zero_block(data_dir, tmp_path / "ms_fill.tif")
    log = RecordingFeedback()
    pansharpen(str(data_dir / "wv2_pan.tif"), ms, str(tmp_path / "out.tif"), "wv2", "auto", feedback=log)
    fill = next(i for i, m in enumerate(log.lines) if "declares no nodata value" in m)
    check = next(i for i, m in enumerate(log.lines) if m.startswith("Self-check"))
    assert fill < check
    assert sum("declares no nodata value" in m for m in log.lines) == 1     # said once


def _copy_with_crs(src, path, epsg: int | None) -> str:
    """A copy of ``src`` whose file says EPSG:``epsg`` (None: no CRS), pixels and geotransform unchanged."""
    ds = gdal.Translate(str(path), str(src))
    srs = None
    if epsg is not None:
        srs = osr.SpatialReference()
        srs.ImportFromEPSG(epsg)
    ds.SetSpatialRef(srs)
    ds = None
    return str(path)


def _written(path) -> tuple[np.ndarray, tuple, str | None]:
    ds = gdal.Open(path)
    srs = ds.GetSpatialRef()
    return ds.ReadAsArray(), ds.GetGeoTransform(), srs and srs.GetAuthorityCode(None)


def test_processing_uses_the_layers_crs(qgis_app, data_dir, tmp_path):
    """A layer's CRS is the one used, as QGIS shows the layer, with a warning: files without a CRS on layers given
    one (the output had no CRS; a PAN with one and such an MS was refused as having none), and layers whose CRS
    differs from their files' (the EXTENT was taken in the layer's CRS but the output written in the file's)."""
    import processing
    from qgis.core import QgsCoordinateReferenceSystem, QgsRasterLayer
    from test_issue14_processing import Log

    pan, ms = data_dir / "wv2_pan.tif", data_dir / "wv2_ms.tif"
    bare = {k: _copy_with_crs(p, tmp_path / f"bare_{k}.tif", None) for k, p in (("pan", pan), ("ms", ms))}
    ed50 = {k: _copy_with_crs(p, tmp_path / f"ed50_{k}.tif", 23031) for k, p in (("pan", pan), ("ms", ms))}

    def layer(path, epsg=None):
        # layer objects, not ids in the session's project: removing such layers again crashed QGIS in two of three
        # clean-clone CI runs (what the ids resolve to is the same layer object)
        lyr = QgsRasterLayer(str(path), "layer")
        if epsg:
            lyr.setCrs(QgsCoordinateReferenceSystem(f"EPSG:{epsg}"))
        return lyr

    def run(name, params, log=None):
        out = str(tmp_path / f"{name}.tif")
        processing.run("ksdiff:pansharpen", {"SENSOR": "wv2", "METHOD": "mtf_glp_hpm", **params, "OUTPUT": out},
                       feedback=log)
        return _written(out)

    gt = gdal.Open(str(pan)).GetGeoTransform()
    aoi = f"{gt[0] + 40 * gt[1]!r},{gt[0] + 200 * gt[1]!r},{gt[3] + 180 * gt[5]!r},{gt[3] + 20 * gt[5]!r}"
    ref = run("ref", {"PAN": str(pan), "MS": str(ms)})
    ref_ed50 = run("ref_ed50", {"PAN": ed50["pan"], "MS": ed50["ms"], "EXTENT": aoi + " [EPSG:23031]"})
    assert ref[2] == "32631" and ref_ed50[2] == "23031"
    cases = {
        "no CRS in the files": ({"PAN": layer(bare["pan"], 32631), "MS": layer(bare["ms"], 32631)}, ref,
                                "CRS set in QGIS, EPSG:32631, is used: its file has none"),
        "MS CRS on its layer only": ({"PAN": layer(pan), "MS": layer(bare["ms"], 32631)}, ref,
                                     "The MS layer's CRS set in QGIS, EPSG:32631, is used: its file has none"),
        "layers in ED50": ({"PAN": layer(pan, 23031), "MS": layer(ms, 23031), "EXTENT": aoi + " [EPSG:23031]"},
                           ref_ed50, "The PAN layer's CRS set in QGIS, EPSG:23031, replaces its file's, EPSG:32631"),
    }
    for name, (params, expected, says) in cases.items():
        log = Log()
        arr, out_gt, epsg = run(name.replace(" ", "_"), params, log)
        assert np.array_equal(arr, expected[0]), name
        assert out_gt == pytest.approx(expected[1]) and epsg == expected[2], (name, out_gt, epsg)
        assert any(line.startswith("WARNING") and says in line for line in log.lines), (name, log.lines)


def test_assess_uses_the_layers_crs(qgis_app, data_dir, tmp_path):
    """ksdiff:assess places pixels as QGIS shows the layers, like ksdiff:pansharpen: a PAN and MS whose CRS exists
    only on their layers are assessed against a fused raster that carries it (refused before: 'different coordinate
    reference systems (or one has none)'), with the same figures as with files that carry it."""
    import processing
    from qgis.core import QgsCoordinateReferenceSystem, QgsRasterLayer
    from test_issue14_processing import Log

    pan, ms = data_dir / "wv2_pan.tif", data_dir / "wv2_ms.tif"
    fused = str(tmp_path / "fused.tif")
    processing.run("ksdiff:pansharpen", {"PAN": str(pan), "MS": str(ms), "SENSOR": "wv2", "METHOD": "mtf_glp_hpm",
                                         "OUTPUT": fused})
    bare = {k: _copy_with_crs(p, tmp_path / f"bare_{k}.tif", None) for k, p in (("pan", pan), ("ms", ms))}

    def layer(path):
        lyr = QgsRasterLayer(str(path), "layer")
        lyr.setCrs(QgsCoordinateReferenceSystem("EPSG:32631"))
        return lyr

    log = Log()
    got = processing.run("ksdiff:assess", {"FUSED": fused, "PAN": layer(bare["pan"]), "MS": layer(bare["ms"]),
                                           "SENSOR": "wv2", "OUTPUT_HTML": str(tmp_path / "a.html")}, feedback=log)
    want = processing.run("ksdiff:assess", {"FUSED": fused, "PAN": str(pan), "MS": str(ms), "SENSOR": "wv2",
                                            "OUTPUT_HTML": str(tmp_path / "b.html")})
    assert got["HQNR"] == pytest.approx(want["HQNR"]) and got["D_LAMBDA"] == pytest.approx(want["D_LAMBDA"])
    said = "PAN layer's CRS set in QGIS, EPSG:32631,"
    assert any(line.startswith("WARNING") and said in line for line in log.lines), log.lines


def test_a_file_name_with_a_pipe_is_read_as_qgis_reads_it(qgis_app, data_dir, tmp_path):
    """``pan|v2.tif`` is a legal file name; QGIS opens it and its own algorithms read it. The run read ``pan`` (the
    source cut at the first ``|``: 'the file does not exist'); only ``|option:`` parts are QGIS's, and they still go."""
    import shutil

    import processing
    from qgis.core import QgsRasterLayer

    pan = tmp_path / "pan|v2.tif"
    shutil.copy(data_dir / "wv2_pan.tif", pan)
    layer = QgsRasterLayer(str(pan) + "|option:NUM_THREADS=1", "pan v2")
    assert layer.isValid()
    res = processing.run("ksdiff:pansharpen", {"PAN": layer, "MS": str(data_dir / "wv2_ms.tif"), "SENSOR": "wv2",
                                               "METHOD": "gsa", "OUTPUT": str(tmp_path / "o.tif")})
    ref = processing.run("ksdiff:pansharpen", {"PAN": str(data_dir / "wv2_pan.tif"), "MS": str(data_dir / "wv2_ms.tif"),
                                               "SENSOR": "wv2", "METHOD": "gsa", "OUTPUT": str(tmp_path / "r.tif")})
    assert np.array_equal(gdal.Open(res["OUTPUT"]).ReadAsArray(), gdal.Open(ref["OUTPUT"]).ReadAsArray())


def _pan_with_zero_block(data_dir, path, nodata=None) -> str:
    """A copy of the WV2 PAN whose pixels [100:140, 100:140] are 0 (real data there), declaring ``nodata``."""
    return _with_zero_block(data_dir / "wv2_pan.tif", path, np.s_[100:140, 100:140], nodata)


def test_an_unticked_file_no_data_value_is_not_used(qgis_app, data_dir, tmp_path):
    """QA: 'No data value' unticked on the layer (Layer Properties > Transparency; 0 is real data in the PAN) was
    ignored: the file's 0 still made 1,600 output pixels nodata, and the PAN-hole note advised to do what the user had
    done. Now the run reads the file as having no nodata value, as QGIS shows it, and says so: the output equals
    the run on copies that declare none, for the PAN and for the MS."""
    import processing
    from qgis.core import QgsRasterLayer
    from test_issue14_processing import Log

    pan = QgsRasterLayer(_pan_with_zero_block(data_dir, tmp_path / "pan_nd.tif", nodata=0), "pan")
    ms = QgsRasterLayer(_ms_with_zero_block(data_dir, tmp_path / "ms_nd.tif", nodata=0), "ms")
    for layer in (pan, ms):
        for b in range(1, layer.bandCount() + 1):
            layer.dataProvider().setUseSourceNoDataValue(b, False)
    assert not pan.dataProvider().block(1, pan.extent(), pan.width(), pan.height()).isNoData(120, 120)
    log = Log()
    got = processing.run("ksdiff:pansharpen", {"PAN": pan, "MS": ms, "SENSOR": "wv2", "METHOD": "gsa",
                                               "OUTPUT": str(tmp_path / "unticked.tif")}, feedback=log)["OUTPUT"]
    want = pansharpen(_pan_with_zero_block(data_dir, tmp_path / "pan.tif"),
                      _ms_with_zero_block(data_dir, tmp_path / "ms.tif"), str(tmp_path / "none.tif"), "wv2",
                      "gsa").output_path
    assert np.array_equal(gdal.Open(got).ReadAsArray(), gdal.Open(want).ReadAsArray())
    assert not _holes(got)[100:140, 100:140].any() and not _holes(got)[:80, :96].any()
    for role in ("PAN", "MS"):
        assert any(f"the {role} file's nodata value 0 is not used, as on its QGIS layer ('No data value' unticked"
                   in line for line in log.lines), log.lines
    assert not any("only because of the PAN" in line for line in log.lines), log.lines


def test_an_unticked_file_no_data_value_with_a_layer_value(data_dir, tmp_path):
    """The file's value unticked and another set on the layer: that one is nodata, the file's is data."""
    pan = _pan_with_zero_block(data_dir, tmp_path / "pan_nd.tif", nodata=0)
    log = RecordingFeedback()
    res = pansharpen(pan, str(data_dir / "wv2_ms.tif"), str(tmp_path / "o.tif"), "wv2", "gsa",
                     pan_nodata=65535, pan_file_nodata=False, feedback=log)
    assert not _holes(res.output_path)[100:140, 100:140].any()
    assert any("PAN file's nodata value 0 is not used" in line and "the layer's nodata value 65535 is used" in line
               for line in log.lines), log.lines


def test_the_pan_hole_note_names_the_layer_setting_that_works(data_dir, tmp_path):
    """The note on output pixels left nodata by the PAN's nodata value advises what now takes effect: unticking
    'No data value' on the layer (and removing an additional value there), or gdal_edit -unsetnodata."""
    pan = _pan_with_zero_block(data_dir, tmp_path / "pan_nd.tif", nodata=0)
    res = pansharpen(pan, str(data_dir / "wv2_ms.tif"), str(tmp_path / "o.tif"), "wv2", "gsa")
    note = [w for w in res.warnings if "only because of the PAN" in w]
    assert note and "untick 'No data value'" in note[0] and "gdal_edit.py -unsetnodata" in note[0], res.warnings


def test_no_data_values_that_differ_between_bands_are_warned(qgis_app, data_dir, tmp_path):
    """QA: band 1's no-data value on the layer was applied to every MS band without a word, band 2's own value
    ignored. The engine takes one nodata value per raster: the run warns, listing each band's value and saying band
    1's is used in every band; bands set alike say nothing."""
    from qgis.core import QgsRasterLayer, QgsRasterRange

    path = _ms_with_zero_block(data_dir, tmp_path / "ms.tif")
    ms = QgsRasterLayer(path, "ms per band")
    ms.dataProvider().setUserNoDataValue(1, [QgsRasterRange(0, 0)])
    ms.dataProvider().setUserNoDataValue(2, [QgsRasterRange(77, 77)])
    res, log = _fused_log(data_dir, ms, "gsa", tmp_path / "o.tif")
    said = [line for line in log.lines if "different nodata values" in line]
    assert len(said) == 1 and said[0].startswith("WARNING MS: the bands of the layer 'ms per band'"), log.lines
    assert "band 1: 0; band 2: 77; band 3: none" in said[0] and "band 1's: 0 in every band" in said[0], said[0]
    assert _holes(res["OUTPUT"])[:80, :96].all()
    alike = QgsRasterLayer(path, "ms alike")
    _zero_as_layer_nodata(alike)
    _, log = _fused_log(data_dir, alike, "gsa", tmp_path / "a.tif")
    assert not any("different nodata values" in line for line in log.lines), log.lines


def test_assess_says_it_does_not_follow_an_unticked_no_data_value(qgis_app, data_dir, tmp_path):
    """ksdiff:assess reads the file's own no-data value; with 'No data value' unticked on a layer it says so and how
    to score those pixels as data."""
    import processing
    from qgis.core import QgsRasterLayer
    from test_issue14_processing import Log

    fused = pansharpen(str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), str(tmp_path / "f.tif"), "wv2",
                       "gsa").output_path
    pan = QgsRasterLayer(_pan_with_zero_block(data_dir, tmp_path / "pan_nd.tif", nodata=0), "pan")
    pan.dataProvider().setUseSourceNoDataValue(1, False)
    log = Log()
    processing.run("ksdiff:assess", {"FUSED": fused, "PAN": pan, "MS": str(data_dir / "wv2_ms.tif"), "SENSOR": "wv2",
                                     "OUTPUT_HTML": str(tmp_path / "r.html")}, feedback=log)
    assert any(line.startswith("WARNING PAN: 'No data value' is unticked on the layer 'pan'")
               and "gdal_translate -a_nodata none" in line for line in log.lines), log.lines


def test_a_layers_no_data_value_is_recorded_and_the_file_command_given(qgis_app, data_dir, tmp_path):
    """QA: a run with the MS layer's nodata (Layer Properties, not in the file) replayed from History (the path only)
    gave another result. The output's tags record the nodata used and where it came from, and the log gives the
    gdal_edit.py command that makes the file carry it: the replay after that command writes the same pixels."""
    import shlex
    import subprocess

    from qgis.core import QgsRasterLayer

    ms_path = _ms_with_zero_block(data_dir, tmp_path / "ms.tif")
    ms = QgsRasterLayer(ms_path, "ms")
    _zero_as_layer_nodata(ms)
    res, log = _fused_log(data_dir, ms, "mtf_glp_hpm", tmp_path / "layer.tif")
    md = gdal.Open(res["OUTPUT"]).GetMetadata()
    assert (md["KSDIFF_MS_NODATA"], md["KSDIFF_MS_NODATA_SOURCE"]) == ("0", "layer")
    assert (md["KSDIFF_PAN_NODATA"], md["KSDIFF_PAN_NODATA_SOURCE"]) == ("0", "file")   # the fixture's own
    lines = [line for line in log.lines if "depends on that layer setting" in line]
    assert len(lines) == 1, log.lines
    command = lines[0].split("to make the file carry it, ")[1]
    assert command == f"gdal_edit.py -a_nodata 0 {ms_path}"
    subprocess.run(shlex.split(command), check=True)
    replay, _ = _fused_log(data_dir, ms_path, "mtf_glp_hpm", tmp_path / "replay.tif")
    assert np.array_equal(gdal.Open(res["OUTPUT"]).ReadAsArray(), gdal.Open(replay["OUTPUT"]).ReadAsArray())
    assert gdal.Open(replay["OUTPUT"]).GetMetadataItem("KSDIFF_MS_NODATA_SOURCE") == "file"


def test_a_file_whose_bands_declare_different_nodata_is_warned_once_listing_every_band(qgis_app, data_dir, tmp_path):
    """QA137: an MS VRT whose bands declare 0, 0, none, 65535 got two warnings for one condition, the layer's
    ("band 1: 0; band 2: 0; band 3: none; band 4: 65535") and the engine's ("band 1: 0.0; band 3: None, band 4:
    65535.0": band 2 left out, ';' beside ','). Now one, the engine's, listing every band alike (also for the batch
    CLI, which has no layer)."""
    ms = str(tmp_path / "nd.vrt")
    ds = gdal.Translate(ms, str(data_dir / "wv2_ms.tif"), format="VRT", noData="none")
    for b, value in ((1, 0), (2, 0), (4, 65535)):
        ds.GetRasterBand(b).SetNoDataValue(value)
    ds = None
    _, log = _fused_log(data_dir, ms, "mtf_glp_hpm", tmp_path / "o.tif")
    said = [line for line in log.lines if "different nodata values" in line]
    assert len(said) == 1, said
    assert "(band 1: 0; band 2: 0; band 3: none; band 4: 65535): band 1's, 0, is used for every band" in said[0], said
