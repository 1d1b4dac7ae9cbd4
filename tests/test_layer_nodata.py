"""A no-data value set on the QGIS layer (Layer Properties > Transparency), not in the file: the pipeline reads the
file, so the algorithm hands the layer's value to the engine (``pan_nodata`` / ``ms_nodata``)."""
from __future__ import annotations

import numpy as np
from osgeo import gdal

from ksdiff_qgis.engine.feedback import RecordingFeedback
from ksdiff_qgis.engine.pipeline import pansharpen

BLOCK = (slice(0, 20), slice(0, 24))   # MS pixels set to 0 (PAN 80 x 96)


def _ms_with_zero_block(data_dir, path, nodata=None) -> str:
    ds = gdal.Translate(str(path), str(data_dir / "wv2_ms.tif"), options=gdal.TranslateOptions(noData="none"))
    for b in range(1, ds.RasterCount + 1):
        band = ds.GetRasterBand(b)
        arr = band.ReadAsArray()
        arr[BLOCK] = 0
        band.WriteArray(arr)
        if nodata is not None:
            band.SetNoDataValue(nodata)
        band = None
    ds = None
    return str(path)


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
    assert any("MS layer's no-data value 0 is used" in line for line in log.lines)
    ref = pansharpen(pan, declared, str(tmp_path / "ref.tif"), "wv2", "mtf_glp_hpm")
    a, b = (gdal.Open(r.output_path).ReadAsArray().astype(np.int64) for r in (given, ref))
    assert np.array_equal(a, b) and _holes(given.output_path)[:80, :96].all()
    # a file that declares its own nodata keeps it, and the log says the layer's value was not used
    log = RecordingFeedback()
    pansharpen(pan, declared, str(tmp_path / "kept.tif"), "wv2", "mtf_glp_hpm", ms_nodata=7, feedback=log)
    assert any("no-data value 7 is not used: the file declares 0" in line for line in log.lines)


def test_processing_uses_the_layers_no_data_value(qgis_app, data_dir, tmp_path):
    import processing
    from qgis.core import QgsProcessingFeedback, QgsRasterLayer, QgsRasterRange

    ms_path = _ms_with_zero_block(data_dir, tmp_path / "ms.tif")
    pan = QgsRasterLayer(str(data_dir / "wv2_pan.tif"), "pan")
    outs = {}
    for name in ("file_only", "layer_nodata"):
        ms = QgsRasterLayer(ms_path, "ms")
        assert ms.isValid()
        if name == "layer_nodata":
            for b in range(1, ms.bandCount() + 1):
                ms.dataProvider().setUserNoDataValue(b, [QgsRasterRange(0, 0)])
        res = processing.run("ksdiff:pansharpen", {"PAN": pan, "MS": ms, "SENSOR": "wv2", "METHOD": "mtf_glp_hpm",
                                                   "OUTPUT": str(tmp_path / f"{name}.tif")},
                             feedback=QgsProcessingFeedback())
        outs[name] = _holes(res["OUTPUT"])
    assert outs["layer_nodata"][:80, :96].all() and not outs["file_only"][:80, :96].any()
    assert not outs["layer_nodata"][120:, 120:].any()


def test_assess_uses_a_layers_no_data_value(qgis_app, data_dir, tmp_path):
    """ksdiff:assess through Processing: a reference whose zero block is no-data only on its QGIS layer scores as
    the same reference with 0 declared in the file (the block left out), not as the file alone."""
    import processing
    from qgis.core import QgsRasterLayer, QgsRasterRange

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
    for b in range(1, layer.bandCount() + 1):
        layer.dataProvider().setUserNoDataValue(b, [QgsRasterRange(0, 0)])
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
