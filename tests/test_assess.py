"""ksdiff:assess in real QGIS: a Wald test case from the real WorldView-2 fixture, fused, then assessed."""
from __future__ import annotations

import html
import re
import subprocess

import numpy as np
import pytest
from osgeo import gdal, osr

from ksdiff_qgis.engine import metrics as M
from ksdiff_qgis.engine.pipeline import pansharpen
from model_core.wald import make_reduced_case

OUTPUTS = ("SAM", "ERGAS", "Q2N", "Q", "SCC", "PSNR", "SSIM", "D_LAMBDA", "D_S", "HQNR", "D_RHO", "R_Q2N", "R_SAM",
           "R_ERGAS", "CHECKERBOARD", "CHECKERBOARD_PAN")


@pytest.fixture(scope="module")
def wald_case(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("assess")
    case = make_reduced_case(data_dir / "wv2_pan.tif", data_dir / "wv2_ms.tif", str(out), "wv2")
    fused = {}
    for method in ("exp", "mtf_glp_hpm"):
        fused[method] = pansharpen(case.pan, case.ms, str(out / f"fused_{method}.tif"), sensor="wv2",
                                   method=method).output_path
    return case, fused, out


def _run(params):
    import processing

    return processing.run("ksdiff:assess", params)


def test_assess_reduced_resolution(qgis_app, wald_case):
    case, fused, out = wald_case
    html = str(out / "report_rr.html")
    res = _run({"FUSED": fused["mtf_glp_hpm"], "REFERENCE": case.ref, "SENSOR": "wv2", "OUTPUT_HTML": html})
    assert 0 < res["SAM"] < 20 and 0 < res["ERGAS"] < 30
    for k in ("Q2N", "Q", "SCC", "SSIM"):
        assert 0.3 < res[k] < 1.0, k
    assert 15 < res["PSNR"] < 60
    assert res["D_LAMBDA"] is None and res["HQNR"] is None
    with open(res["OUTPUT_HTML"], encoding="utf-8") as fh:
        text = fh.read()
    assert "<svg" in text and "ERGAS" in text and "Blue" in text
    # the algorithm equals the whole-image engine computation
    f = gdal.Open(fused["mtf_glp_hpm"]).ReadAsArray().astype(float)
    r = gdal.Open(case.ref).ReadAsArray().astype(float)
    direct = M.reduced_resolution(f, r, 4, 2047)
    for key, out_name in (("SAM", "SAM"), ("ERGAS", "ERGAS"), ("Q2n", "Q2N"), ("SCC", "SCC")):
        assert res[out_name] == round(direct[key], 4), key   # Processing outputs: 4 decimals, as the log
    # fusion beats plain upsampling on the reference-based indices
    exp = _run({"FUSED": fused["exp"], "REFERENCE": case.ref, "SENSOR": "wv2", "OUTPUT_HTML": str(out / "exp.html")})
    assert res["ERGAS"] < exp["ERGAS"] and res["Q2N"] > exp["Q2N"] and res["SCC"] > exp["SCC"]


def test_assess_float_reflectance_scores_as_its_integer_product(wald_case, tmp_path):
    """PSNR and SSIM divide by the data's full scale: the case as float reflectance (DN / 2047) scores as the 11-bit
    product (until 2026-12-06 they divided reflectance by 2047: PSNR 66 dB higher, SSIM near 1 whatever the fusion)."""
    from ksdiff_qgis.engine.assessment import assess_reduced

    case, fused, _ = wald_case
    refl = {}
    for name, path in (("fused", fused["mtf_glp_hpm"]), ("ref", case.ref)):
        refl[name] = str(tmp_path / f"{name}_refl.tif")
        gdal.Translate(refl[name], path, outputType=gdal.GDT_Float32, scaleParams=[[0, 2047, 0, 1]])
    dn = assess_reduced(fused["mtf_glp_hpm"], case.ref, "wv2")
    fl = assess_reduced(refl["fused"], refl["ref"], "wv2")
    assert fl["max_value"] == 1.0 and dn["max_value"] == 2047
    # a stray bright pixel does not change the scale of reflectance (it moved it to 2047: PSNR +65 dB, SSIM 1)
    ds = gdal.Open(refl["ref"], gdal.GA_Update)
    band = ds.GetRasterBand(1)
    arr = band.ReadAsArray()
    arr[0, 0] = 1.6
    band.WriteArray(arr)
    band = ds = None
    assert assess_reduced(refl["fused"], refl["ref"], "wv2")["max_value"] == 1.0
    for key in ("PSNR", "SSIM", "ERGAS", "SAM"):
        assert fl[key] == pytest.approx(dn[key], rel=1e-4, abs=1e-3), key


def test_assess_full_resolution(qgis_app, wald_case, data_dir, tmp_path):
    case, _, out = wald_case
    fused = pansharpen(str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), str(tmp_path / "full.tif"),
                       sensor="wv2", method="mtf_glp_hpm").output_path
    res = _run({"FUSED": fused, "PAN": str(data_dir / "wv2_pan.tif"), "MS": str(data_dir / "wv2_ms.tif"),
                "SENSOR": "wv2", "OUTPUT_HTML": str(tmp_path / "full.html")})
    assert 0 <= res["D_LAMBDA"] < 0.3 and 0 <= res["D_S"] < 0.3
    assert res["HQNR"] == pytest.approx((1 - res["D_LAMBDA"]) * (1 - res["D_S"]), abs=2e-4)   # 4 decimals each
    assert res["SAM"] is None
    with open(res["OUTPUT_HTML"], encoding="utf-8") as fh:
        text = fh.read()
    assert "Ds" in text and "R-ERGAS" in text and "Checkerboard" in text and "Dρ" in text
    # a clean classical fusion: consistent with its MS, no one-pixel grid
    assert 0 < res["R_ERGAS"] < 5 and res["R_Q2N"] > 0.8 and 0 < res["D_RHO"] < 1
    assert res["CHECKERBOARD"] < 1.1 * res["CHECKERBOARD_PAN"]


def test_assess_full_resolution_offset_grids_and_upsampling(qgis_app, data_dir, tmp_path):
    """Landsat 8 (MS half a PAN pixel off the PAN grid): indices are finite, and plain upsampling is
    spectrally consistent (small R-ERGAS) but spatially not (large Dρ) compared with MTF-GLP-HPM."""
    pan, ms = str(data_dir / "l8_pan.tif"), str(data_dir / "l8_ms.tif")
    res = {}
    for method in ("exp", "mtf_glp_hpm"):
        fused = pansharpen(pan, ms, str(tmp_path / f"{method}.tif"), sensor="landsat8", method=method).output_path
        res[method] = _run({"FUSED": fused, "PAN": pan, "MS": ms, "SENSOR": "landsat8",
                            "OUTPUT_HTML": str(tmp_path / f"{method}.html")})
    for r in res.values():
        for k in ("D_RHO", "R_Q2N", "R_SAM", "R_ERGAS", "CHECKERBOARD", "CHECKERBOARD_PAN"):
            assert r[k] is not None and np.isfinite(r[k]), k
    assert res["exp"]["R_ERGAS"] < 1.0 and res["mtf_glp_hpm"]["R_ERGAS"] < 1.5
    assert res["exp"]["D_RHO"] > res["mtf_glp_hpm"]["D_RHO"] + 0.1
    assert res["exp"]["CHECKERBOARD"] < res["mtf_glp_hpm"]["CHECKERBOARD"]


def test_reprojection_indices_find_no_error_in_the_truth_on_landsat_grids(data_dir, tmp_path):
    """A fused image whose MS is known (tests/landsat_layout.py: real Landsat 8 content, its MS the MTF-filtered image
    at the MS pixel centres, which on Landsat 8 lie on PAN pixel centres). QA: the MS was cubic-shifted by a quarter of
    an MS pixel instead, blurring the reference's own detail: R-ERGAS 0.16 on this truth, and on real fusions classical
    methods flattered by 7-30 %, KSDiff penalised by 9 %. A 12-pixel nodata collar keeps the MS pixels whose filter
    would reach past the fused raster (mirrored there) out."""
    from landsat_layout import landsat_truth_scene

    from ksdiff_qgis.engine.assessment import assess_full

    scene = landsat_truth_scene(data_dir, tmp_path, collar=12)
    res = assess_full(scene["fused"], scene["pan"], scene["ms"], "landsat8")
    assert res["gains"] == scene["gains"]
    assert res["R_ERGAS"] < 1e-4 and res["R_SAM"] < 1e-4 and res["R_Q2n"] > 1 - 1e-6, res


@pytest.mark.parametrize("method", ["exp", "mtf_glp_hpm"])
def test_landsat_reprojection_equals_the_filtered_fusion_at_the_ms_centres(data_dir, tmp_path, method):
    """The Landsat 8 fixture fused and assessed: R-ERGAS, R-SAM and R-Q2n are those of the fused image low-passed with
    the MS MTF (on its own grid) and picked at the MS pixel centres, against the MS as it is. The assessment mirrors
    the fused image beyond the MS pixels whose footprint lies in it, so this computation does too."""
    from ksdiff_qgis.engine.assessment import assess_full

    pan, ms = str(data_dir / "l8_pan.tif"), str(data_dir / "l8_ms.tif")
    fused = pansharpen(pan, ms, str(tmp_path / f"{method}.tif"), sensor="landsat8", method=method).output_path
    res = assess_full(fused, pan, ms, "landsat8")
    f_ds, m_ds = gdal.Open(fused), gdal.Open(ms)
    f, m = f_ds.ReadAsArray().astype(np.float32), m_ds.ReadAsArray().astype(np.float64)
    fgt, mgt = f_ds.GetGeoTransform(), m_ds.GetGeoTransform()
    k = round(mgt[1] / fgt[1])
    corner = ((mgt[3] - fgt[3]) / fgt[5], (mgt[0] - fgt[0]) / fgt[1])    # MS pixel 0's corner on the fused grid
    assert k == 2 and corner == (-3.5, -3.5)
    first = [int(np.ceil(-c / k)) for c in corner]                       # the first MS pixel inside the fused raster
    n = [int((size - c) // k) - i for size, c, i in zip(f.shape[1:], corner, first)]
    end = [round(c + (i + nn) * k) for c, i, nn in zip(corner, first, n)]   # fused pixels those MS pixels cover
    pad = 32
    fp = np.pad(f[:, :end[0], :end[1]], ((0, 0), (pad, pad), (pad, pad)), mode="symmetric")
    seen = M.mtf_filter(fp, res["gains"], k)
    rows = (corner[0] + k * np.arange(first[0], first[0] + n[0]) + k / 2 - 0.5 + pad).astype(int)
    cols = (corner[1] + k * np.arange(first[1], first[1] + n[1]) + k / 2 - 0.5 + pad).astype(int)
    red = seen[:, rows][:, :, cols]
    ref = m[:, first[0]:first[0] + n[0], first[1]:first[1] + n[1]]
    assert res["R_ERGAS"] == pytest.approx(M.ergas(red, ref, k), rel=1e-9)
    assert res["R_SAM"] == pytest.approx(M.sam(red, ref), rel=1e-9)
    assert res["R_Q2n"] == pytest.approx(M.q2n(red, ref), rel=1e-9)


def test_assess_full_resolution_resamples_a_non_integer_ratio_as_pansharpen(qgis_app, data_dir, tmp_path):
    """pansharpen resamples such an MS to a whole ratio (with a warning); assess reads it the same way (it refused
    it, naming gdalwarp) and scores against that view at pansharpen's ratio."""
    pan, ms = str(data_dir / "wv2_pan.tif"), str(tmp_path / "ms_odd.tif")
    gdal.Warp(ms, str(data_dir / "wv2_ms.tif"), xRes=2.2, yRes=2.2, resampleAlg="average")
    fused = pansharpen(pan, ms, str(tmp_path / "f.tif"), sensor="generic", method="mtf_glp_hpm").output_path
    res = _run({"FUSED": fused, "PAN": pan, "MS": ms, "SENSOR": "generic", "OUTPUT_HTML": str(tmp_path / "x.html")})
    assert 0 < res["HQNR"] <= 1
    assert "resampled on the fly (cubic) to 4 PAN pixels" in html.unescape((tmp_path / "x.html").read_text("utf-8"))


def test_assess_needs_a_reference_or_pan_and_ms(qgis_app, wald_case, tmp_path):
    from qgis.core import QgsProcessingException

    _, fused, _ = wald_case
    with pytest.raises(QgsProcessingException):
        _run({"FUSED": fused["exp"], "SENSOR": "wv2", "OUTPUT_HTML": str(tmp_path / "x.html")})


def test_assess_is_registered_with_help(qgis_app):
    from qgis.core import QgsApplication

    alg = QgsApplication.processingRegistry().algorithmById("ksdiff:assess")
    assert alg is not None
    for p in alg.parameterDefinitions():
        assert p.help(), p.name()
    assert {o.name() for o in alg.outputDefinitions()} >= set(OUTPUTS)


def test_engine_assessment_tiled_equals_whole_image(tmp_path, monkeypatch):
    """engine.assessment reads tiles (here forced small) and equals metrics on the whole arrays."""
    from ksdiff_qgis.engine import assessment
    from model_core.rasters import write_geotiff

    monkeypatch.setattr(assessment, "TILE", 64)
    monkeypatch.setattr(assessment, "REPRO_TILE", 32)
    rng = np.random.default_rng(5)
    pan = M.mtf_filter(rng.uniform(100, 1000, (200, 136)), 0.5, 2)[0]
    fused = np.stack([pan * g for g in (0.9, 1.0, 1.2, 1.1)]) + rng.normal(0, 20, (4, 200, 136))
    ms = M.reproject(fused * 1.05, [0.35] * 4, 4) + rng.normal(0, 5, (4, 50, 34))
    gt = (1000.0, 0.5, 0.0, 2000.0, 0.0, -0.5)
    gt_ms = (1000.0, 2.0, 0.0, 2000.0, 0.0, -2.0)
    paths = {}
    for name, arr, g in (("pan", pan[None], gt), ("fused", fused, gt), ("ms", ms, gt_ms)):
        paths[name] = write_geotiff(str(tmp_path / f"{name}.tif"), arr.astype(np.float32), g, "", None)
    res = assessment.assess_full(paths["fused"], paths["pan"], paths["ms"], "wv2")
    f32 = lambda a: a.astype(np.float32).astype(np.float64)  # noqa: E731  (the files hold float32)
    from ksdiff_qgis.engine.filters import upsample

    lms = upsample(f32(ms).astype(np.float32), 4, (200, 136)).astype(np.float64)
    whole = M.full_resolution(f32(fused), f32(pan), lms, [0.35] * 4, 0.11, 4, ms=f32(ms))
    for k in M.FULL + M.CONSISTENCY:
        assert res[k] == pytest.approx(whole[k], rel=1e-4, abs=1e-6), k
    assert res["R_ERGAS"] > 1.0                      # the 5 % gain error is seen


def test_assess_never_writes_its_report_over_an_input(qgis_app, wald_case, tmp_path):
    """OUTPUT_HTML naming the FUSED or REFERENCE raster is refused before anything is written (the report replaced
    the raster, rc 0); a report path that cannot be written is refused before the indices are computed (it failed
    after them, with a traceback)."""
    from qgis.core import QgsProcessingException

    case, fused, _ = wald_case
    before = open(fused["mtf_glp_hpm"], "rb").read()
    for target in (fused["mtf_glp_hpm"], case.ref):
        with pytest.raises(QgsProcessingException):
            _run({"FUSED": fused["mtf_glp_hpm"], "REFERENCE": case.ref, "SENSOR": "wv2", "OUTPUT_HTML": target})
    assert open(fused["mtf_glp_hpm"], "rb").read() == before and gdal.Open(case.ref) is not None
    for bad in (str(tmp_path), "/proc/nope/report.html"):
        with pytest.raises(QgsProcessingException):
            _run({"FUSED": fused["mtf_glp_hpm"], "REFERENCE": case.ref, "SENSOR": "wv2", "OUTPUT_HTML": bad})
    # a missing folder is refused as ksdiff:pansharpen and QGIS's own algorithms refuse it (it was made, silently)
    with pytest.raises(QgsProcessingException, match="the report folder .*new.* does not exist"):
        _run({"FUSED": fused["mtf_glp_hpm"], "REFERENCE": case.ref, "SENSOR": "wv2",
              "OUTPUT_HTML": str(tmp_path / "new" / "r.html")})
    assert not (tmp_path / "new").exists()


def test_assess_nan_holes_as_integer_holes(data_dir, tmp_path):
    """A float product whose holes are NaN (the plugin's own float outputs) scores as the same product in 16 bits
    with 0 for its holes, at both resolutions (NaN ran through the windowed indices' sums: Ds, HQNR, Dρ, R-ERGAS
    came back empty, Q on a fraction of its windows)."""
    from ksdiff_qgis.engine.assessment import assess_full
    from model_core.rasters import read, write_geotiff

    paths = {"int": {}, "float": {}}
    fused = pansharpen(str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), str(tmp_path / "f.tif"),
                       sensor="wv2", method="mtf_glp_hpm").output_path
    for role, src, rows in (("fused", fused, 64), ("pan", str(data_dir / "wv2_pan.tif"), 64),
                            ("ms", str(data_dir / "wv2_ms.tif"), 16)):
        r = read(src)
        a = r.data.astype(np.float32)
        a[:, :rows] = 0                                        # a strip of holes across the top
        paths["int"][role] = write_geotiff(str(tmp_path / f"{role}_i.tif"), a.astype(np.uint16), r.transform,
                                           r.crs, nodata=0)
        a[a == 0] = np.nan
        paths["float"][role] = write_geotiff(str(tmp_path / f"{role}_f.tif"), a, r.transform, r.crs,
                                             nodata=float("nan"))
    got = {kind: assess_full(p["fused"], p["pan"], p["ms"], "wv2") for kind, p in paths.items()}
    for key in ("D_lambda", "D_s", "HQNR", "D_rho", "R_ERGAS", "R_SAM", "R_Q2n"):
        assert got["float"][key] == pytest.approx(got["int"][key], rel=1e-5, abs=1e-6), key


def test_assess_refuses_rasters_it_cannot_compare(data_dir, tmp_path, wald_case):
    """Another CRS with the same numbers (it scored them as if aligned) is refused with what to do; an MS whose
    pixels are not the same ratio across and down (it read the MS at the wrong ground position) is read as
    pansharpen reads it, resampled at its true ground position, with a warning."""
    from ksdiff_qgis.engine.assessment import assess_full, assess_reduced
    from ksdiff_qgis.engine.errors import InputError

    case, fused, _ = wald_case
    other = str(tmp_path / "other_crs.tif")
    gdal.Translate(other, fused["mtf_glp_hpm"], outputSRS="EPSG:32632")
    with pytest.raises(InputError, match="different coordinate reference systems"):
        assess_reduced(other, case.ref, "wv2")
    ms = str(tmp_path / "ms_tall.tif")
    ds = gdal.Translate(ms, str(data_dir / "wv2_ms.tif"))
    gt = list(ds.GetGeoTransform())
    gt[5] *= 1.25
    ds.SetGeoTransform(gt)
    ds = None
    full = pansharpen(str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), str(tmp_path / "f.tif"),
                      sensor="wv2", method="mtf_glp_hpm").output_path
    said = _Said()
    assess_full(full, str(data_dir / "wv2_pan.tif"), ms, "wv2", said.fb)
    assert any("not one whole number on both axes" in w for w in said.warnings), said.warnings


def test_assess_full_tiled_equals_whole_at_ratio_3(data_dir, tmp_path, monkeypatch):
    """Tiles of whole multiples of the ratio (512-pixel tiles at ratio 3 moved Ds by 1 % against the whole image)."""
    from ksdiff_qgis.engine import assessment

    ms3 = str(tmp_path / "ms3.tif")
    ds = gdal.Open(str(data_dir / "wv2_ms.tif"))
    gt = ds.GetGeoTransform()
    gdal.Translate(ms3, ds, xRes=gt[1] * 3 / 4, yRes=-gt[5] * 3 / 4, resampleAlg="cubic")
    ds = None
    pan = str(data_dir / "wv2_pan.tif")
    fused = pansharpen(pan, ms3, str(tmp_path / "f3.tif"), sensor="generic", method="mtf_glp_hpm").output_path
    monkeypatch.setattr(assessment, "TILE", 100)   # several tiles on the fixture, not a multiple of 3 or 32
    tiled = assessment.assess_full(fused, pan, ms3, "ikonos")
    monkeypatch.setattr(assessment, "TILE", 4096)
    whole = assessment.assess_full(fused, pan, ms3, "ikonos")
    for key in ("D_lambda", "D_s", "HQNR", "D_rho"):
        assert tiled[key] == pytest.approx(whole[key], rel=1e-9, abs=1e-12), key


def test_assess_guesses_the_sensor_by_default(qgis_app, data_dir, tmp_path):
    """SENSOR auto, appended (option 14; 0 is still wv2) and the default, guesses as ksdiff:pansharpen does and logs
    what: a Landsat 8 result assessed without SENSOR scores as with SENSOR landsat8 (QA: it took WorldView-2's MTF
    gains and ratio, with a warning). Without the original PAN and MS nothing tells the ratio: generic, warned."""
    import processing
    from qgis.core import QgsApplication
    from test_issue14_processing import Log

    param = QgsApplication.processingRegistry().algorithmById("ksdiff:assess").parameterDefinition("SENSOR")
    assert param.keys.index("auto") == 14 == param.defaultValue() and param.keys[0] == "wv2"
    pan, ms = str(data_dir / "l8_pan.tif"), str(data_dir / "l8_ms.tif")
    fused = pansharpen(pan, ms, str(tmp_path / "l8.tif"), sensor="landsat8", method="mtf_glp_hpm").output_path
    runs, logs = {}, {}
    for sensor in (None, "14", "landsat8", 0):
        logs[sensor] = Log()
        params = {"FUSED": fused, "PAN": pan, "MS": ms, "OUTPUT_HTML": str(tmp_path / f"{sensor}.html")}
        runs[sensor] = processing.run("ksdiff:assess", params if sensor is None else {**params, "SENSOR": sensor},
                                      feedback=logs[sensor])
    said = [line for line in logs[None].lines if line.startswith("SENSOR=auto: Landsat 8/9 OLI")]
    assert len(said) == 1 and "[landsat8]" in said[0] and "ratio 2" in said[0], logs[None].lines
    for key in ("D_LAMBDA", "D_S", "R_ERGAS"):
        assert runs[None][key] == runs["14"][key] == runs["landsat8"][key] != runs[0][key], key
    assert not any(line.startswith("WARNING") for line in logs[None].lines), logs[None].lines
    assert any("at ratio 4; FUSED has 4 bands, the PAN/MS pair ratio 2" in line for line in logs[0].lines)
    assert "Landsat 8/9 OLI" in (tmp_path / "None.html").read_text(encoding="utf-8")
    # a reference alone: no ratio, no pixel size, no metadata, no KSDiff tag, no band codes
    log = Log()
    bare = _untagged(fused, str(tmp_path / "bare.tif"), names=False)
    res = processing.run("ksdiff:assess", {"FUSED": bare, "REFERENCE": bare, "OUTPUT_HTML": str(tmp_path / "r.html")},
                         feedback=log)
    assert any(line.startswith("WARNING SENSOR=auto: Generic") and "set SENSOR" in line for line in log.lines)
    assert res["ERGAS"] is None and res["Q2N"] == pytest.approx(1)


def test_assess_report_says_when_the_sensor_was_guessed(qgis_app, data_dir, tmp_path):
    """SENSOR auto: the report's header says the sensor was guessed, and why (the log's reasons); a chosen sensor
    says nothing of the kind (QA: 'Sensor: WorldView-2 …' with no hint that auto chose it)."""
    import processing
    from test_issue14_processing import Log

    pan, ms = str(data_dir / "l8_pan.tif"), str(data_dir / "l8_ms.tif")
    fused = pansharpen(pan, ms, str(tmp_path / "l8.tif"), sensor="landsat8", method="mtf_glp_hpm").output_path
    log = Log()
    processing.run("ksdiff:assess", {"FUSED": fused, "PAN": pan, "MS": ms, "OUTPUT_HTML": str(tmp_path / "a.html")},
                   feedback=log)
    said = [line for line in log.lines if line.startswith("SENSOR=auto: ")]
    assert len(said) == 1, log.lines
    reasons = said[0].split(" — ", 1)[1]
    head = (tmp_path / "a.html").read_text(encoding="utf-8").split("<h2>", 1)[0]
    assert "Sensor: Landsat 8/9 OLI" in head and f" — guessed (SENSOR auto): {html.escape(reasons)}." in head, head
    processing.run("ksdiff:assess", {"FUSED": fused, "PAN": pan, "MS": ms, "SENSOR": "landsat8",
                                     "OUTPUT_HTML": str(tmp_path / "c.html")})
    assert "guessed" not in (tmp_path / "c.html").read_text(encoding="utf-8")
    # a reference alone: the generic fallback says why too
    bare = _untagged(fused, str(tmp_path / "bare.tif"), names=False)   # no KSDiff tag, no band codes
    processing.run("ksdiff:assess", {"FUSED": bare, "REFERENCE": bare, "OUTPUT_HTML": str(tmp_path / "r.html")})
    head = (tmp_path / "r.html").read_text(encoding="utf-8").split("<h2>", 1)[0]
    assert "guessed (SENSOR auto): no product metadata names the sensor" in head, head


def test_assess_full_says_when_the_sensor_has_another_ratio(data_dir, tmp_path):
    """Landsat 8 (ratio 2) assessed with the default sensor (WorldView-2, ratio 4) is said (it passed silently)."""
    from ksdiff_qgis.engine.assessment import assess_full
    from ksdiff_qgis.engine.feedback import RecordingFeedback

    pan, ms = str(data_dir / "l8_pan.tif"), str(data_dir / "l8_ms.tif")
    fused = pansharpen(pan, ms, str(tmp_path / "l8.tif"), sensor="landsat8", method="mtf_glp_hpm").output_path
    log = RecordingFeedback()
    res = assess_full(fused, pan, ms, "wv2", log)
    assert res["ratio"] == 2 and any("SENSOR wv2 is WorldView-2: 4 MS bands at ratio 4; FUSED has 4 bands, the PAN/MS "
                                     "pair ratio 2" in line for line in log.lines), log.lines


def _with_hole(src: str, path: str, fill: float, rows: slice, cols: slice) -> str:
    """``src`` as float32 with a hole filled with ``fill`` and ``fill`` declared nodata."""
    from model_core.rasters import read, write_geotiff

    r = read(src)
    a = r.data.astype(np.float32)
    a[:, rows, cols] = fill
    return write_geotiff(path, a, r.transform, r.crs, nodata=fill)


@pytest.fixture(scope="module")
def full_fused(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("assess_full")
    return pansharpen(str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), str(out / "f.tif"),
                      sensor="wv2", method="mtf_glp_hpm").output_path


@pytest.mark.parametrize("role", ["FUSED", "PAN"])
def test_assess_full_independent_of_the_nodata_fill(data_dir, tmp_path, full_fused, role):
    """The value written into the declared-nodata pixels of the FUSED raster or the PAN does not change any index
    (the MTF filters spread it into valid neighbours: a fused hole of 0 / -9999 / 60000 gave Dλ 0.0239 / 0.0404 /
    0.0538 and R-ERGAS 3.3 / 17.9 / 104.5; a PAN hole moved Ds from 0.065 to 0.073)."""
    from ksdiff_qgis.engine.assessment import assess_full

    pan, ms = str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif")
    got = {}
    for fill in (0.0, -9999.0, 60000.0, float("nan")):
        holed = _with_hole(full_fused if role == "FUSED" else pan, str(tmp_path / f"h{fill}.tif"), fill,
                           slice(100, 116), slice(100, 116))
        got[fill] = assess_full(holed, pan, ms, "wv2") if role == "FUSED" else assess_full(full_fused, holed, ms, "wv2")
    for fill, res in got.items():
        for key in M.FULL + M.CONSISTENCY:
            assert res[key] == pytest.approx(got[0.0][key], rel=1e-6, abs=1e-9, nan_ok=True), (fill, key)


def test_assess_refuses_rasters_with_no_valid_pixel_in_common(qgis_app, full_fused, tmp_path):
    """FUSED valid on the left half, REFERENCE on the right half: a clear error and no report (it scored ERGAS 0
    and PSNR ∞, rc 0)."""
    from qgis.core import QgsProcessingException

    left = _with_hole(full_fused, str(tmp_path / "left.tif"), 0.0, slice(None), slice(128, None))
    right = _with_hole(full_fused, str(tmp_path / "right.tif"), 0.0, slice(None), slice(0, 128))
    html = tmp_path / "disjoint.html"
    with pytest.raises(QgsProcessingException, match="no valid pixel in common"):
        _run({"FUSED": left, "REFERENCE": right, "SENSOR": "wv2", "OUTPUT_HTML": str(html)})
    assert not html.exists()


def test_assess_says_why_an_index_is_na_and_how_many_pixels_it_used(full_fused, tmp_path):
    """A reference valid on 20 columns: the report counts the 5,120 pixels used (it said '256×256 pixels assessed')
    and Q2n / Q are n/a with the reason in the log and the report (no reason was given); a reference band of zeros
    makes ERGAS n/a with its reason (it was 1.3e11, a division by EPS)."""
    from ksdiff_qgis.engine.assessment import assess_reduced
    from ksdiff_qgis.engine.feedback import RecordingFeedback
    from ksdiff_qgis.engine.report import html_report

    narrow = _with_hole(full_fused, str(tmp_path / "narrow.tif"), 0.0, slice(None), slice(20, None))
    log = RecordingFeedback()
    res = assess_reduced(full_fused, narrow, "wv2", log)
    assert res["pixels"] == 256 * 20 and np.isnan(res["Q2n"]) and np.isnan(res["Q"]) and res["SAM"] >= 0
    assert any("Q2n (Q4/Q8) is n/a: no 32×32 block" in line for line in log.lines), log.lines
    text = html_report(res, None, {"Fused": full_fused}, "wv2")
    assert "5120 of the 256×256 pixels" in text and "no 32×32 block is entirely valid" in text
    zero_b2 = _with_hole(full_fused, str(tmp_path / "zero_b2.tif"), 0.0, slice(None), slice(None))
    src = gdal.Open(full_fused).ReadAsArray()
    ds = gdal.Open(zero_b2, gdal.GA_Update)
    for b in (1, 2, 3, 4):     # only band 2 stays all zeros; no nodata declared
        ds.GetRasterBand(b).DeleteNoDataValue()
        if b != 2:
            ds.GetRasterBand(b).WriteArray(src[b - 1])
    ds = None
    log = RecordingFeedback()
    res = assess_reduced(full_fused, zero_b2, "wv2", log)
    assert np.isnan(res["ERGAS"]) and any("ERGAS is n/a: band 2 of the reference averages 0" in line
                                          for line in log.lines), log.lines


def test_assess_small_rasters_get_q_on_smaller_windows(full_fused, tmp_path):
    """A 12×12 crop assessed against itself scores Q = 1 (Q was n/a below 32 pixels while metrics.q_avg shrinks its
    window), as the whole-array metric."""
    from ksdiff_qgis.engine.assessment import assess_reduced

    crop = str(tmp_path / "tiny.tif")
    gdal.Translate(crop, full_fused, srcWin=[100, 100, 12, 12])
    res = assess_reduced(crop, crop, "wv2")
    a = gdal.Open(crop).ReadAsArray().astype(float)
    assert res["Q"] == pytest.approx(1.0) == pytest.approx(M.q_avg(a, a))


def test_assess_offers_the_generic_sensor(qgis_app, data_dir, full_fused, tmp_path):
    """SENSOR generic is offered (it was not: users of an untrained sensor had to pick a wrong one), after the indexes
    saved models hold; it assesses with the generic MTF gains, the data's ratio (ERGAS too) and the data's maximum."""
    from qgis.core import QgsApplication

    from ksdiff_qgis.engine.sensors import SENSORS

    keys = QgsApplication.processingRegistry().algorithmById("ksdiff:assess").parameterDefinition("SENSOR").keys
    assert keys[:13] == [k for k, s in SENSORS.items() if s.ratio] and keys[13] == "generic"
    pan, ms = str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif")
    html = tmp_path / "generic.html"
    res = _run({"FUSED": full_fused, "REFERENCE": full_fused, "PAN": pan, "MS": ms, "SENSOR": "generic",
                "OUTPUT_HTML": str(html)})
    assert res["ERGAS"] == 0 and res["Q2N"] == pytest.approx(1) and 0 <= res["D_LAMBDA"] < 0.3
    text = html.read_text(encoding="utf-8")
    assert "the data's ratio 4" in text and "MS MTF gains 0.3, 0.3, 0.3, 0.3" in text


def test_assess_full_mtf_gains_by_band_name(data_dir, full_fused, tmp_path):
    """A 4-band B, G, R, NIR product assessed as WorldView-3 (8 bands) gets those bands' gains (every band got the
    first gain, 0.325, silently); unnamed bands that cannot be placed get the generic gain, and the log says so."""
    from ksdiff_qgis.engine.assessment import assess_full
    from ksdiff_qgis.engine.feedback import RecordingFeedback

    pan, ms = str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif")
    log = RecordingFeedback()
    assert assess_full(full_fused, pan, ms, "wv3", log)["gains"] == [0.355, 0.360, 0.365, 0.335]
    assert not any("generic MTF gain" in line for line in log.lines), log.lines
    unnamed, ms_unnamed = str(tmp_path / "unnamed.tif"), str(tmp_path / "ms_unnamed.tif")
    for src, dst in ((full_fused, unnamed), (ms, ms_unnamed)):
        ds = gdal.Translate(dst, src)
        for b in range(1, 5):
            ds.GetRasterBand(b).SetDescription("")
            ds.GetRasterBand(b).SetColorInterpretation(gdal.GCI_Undefined)   # the fusion's Blue/Green/Red tags name
        ds = None
    log = RecordingFeedback()
    assert assess_full(unnamed, pan, ms_unnamed, "wv3", log)["gains"] == [0.3] * 4
    assert any("generic MTF gain 0.3" in line and "choose the data's sensor" in line for line in log.lines), log.lines


def test_assess_pairs_a_band_subset_by_name(data_dir, tmp_path, wald_case):
    """A pansharpen output of MS_BANDS 4,3,2 (NIR, Red, Green) is assessed against the full MS and reference, band
    by band by name, as against those bands cut out (it failed: 'FUSED has 3 bands, MS 4'); bands that cannot be
    paired are refused with how to fix it."""
    from ksdiff_qgis.engine.assessment import assess_full, assess_reduced
    from ksdiff_qgis.engine.errors import InputError
    from ksdiff_qgis.engine.feedback import RecordingFeedback

    pan, ms = str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif")
    fused = pansharpen(pan, ms, str(tmp_path / "f432.tif"), sensor="wv2", method="mtf_glp_hpm",
                       ms_bands=[4, 3, 2]).output_path
    ms432 = str(tmp_path / "ms432.tif")
    gdal.Translate(ms432, ms, bandList=[4, 3, 2])
    log = RecordingFeedback()
    got, cut = assess_full(fused, pan, ms, "wv2", log), assess_full(fused, pan, ms432, "wv2")
    for key in M.FULL + M.CONSISTENCY:
        assert got[key] == pytest.approx(cut[key], rel=1e-9, nan_ok=True), key
    assert any("NIR = MS band 4, Red = MS band 3, Green = MS band 2" in line for line in log.lines), log.lines
    case, fused_rr, _ = wald_case
    sub, ref432 = str(tmp_path / "sub.tif"), str(tmp_path / "ref432.tif")
    gdal.Translate(sub, fused_rr["mtf_glp_hpm"], bandList=[4, 3, 2])
    gdal.Translate(ref432, case.ref, bandList=[4, 3, 2])
    assert assess_reduced(sub, case.ref, "wv2")["ERGAS"] == pytest.approx(assess_reduced(sub, ref432, "wv2")["ERGAS"])
    ds = gdal.Open(sub, gdal.GA_Update)
    ds.GetRasterBand(1).SetDescription("")
    ds = None
    with pytest.raises(InputError, match="gdal_translate -b"):
        assess_reduced(sub, case.ref, "wv2")
    # all four bands in another order (MS_BANDS 4,3,2,1) were compared by position: ERGAS 60.9 instead of 8.3
    rev = pansharpen(pan, ms, str(tmp_path / "f4321.tif"), sensor="wv2", method="mtf_glp_hpm",
                     ms_bands=[4, 3, 2, 1]).output_path
    ms4321 = str(tmp_path / "ms4321.tif")
    gdal.Translate(ms4321, ms, bandList=[4, 3, 2, 1])
    got, cut = assess_full(rev, pan, ms, "wv2"), assess_full(rev, pan, ms4321, "wv2")
    for key in M.FULL + M.CONSISTENCY:
        assert got[key] == pytest.approx(cut[key], rel=1e-9, nan_ok=True), key


def test_assess_pairs_an_unnamed_ms_by_fuseds_ms_bands_tag(data_dir, tmp_path):
    """QA: FUSED made with MS_BANDS 7,5,3,2 (tag KSDIFF_MS_BANDS=7,5,3,2), assessed against the unnamed 8-band MS, was
    refused ('cannot be paired by band name ... e.g. gdal_translate -b 4 -b 3 -b 2'): the tag pairs the bands, as
    the same bands cut out would; when it cannot, the refusal names FUSED's own bands."""
    from test_sensors_bands import make_wv2_8band

    from ksdiff_qgis.engine.assessment import assess_full
    from ksdiff_qgis.engine.errors import InputError
    from ksdiff_qgis.engine.feedback import RecordingFeedback

    pan = str(data_dir / "wv2_pan.tif")
    named = make_wv2_8band(data_dir / "wv2_ms.tif", tmp_path / "ms8.tif")
    fused = pansharpen(pan, str(named), str(tmp_path / "f7532.tif"), sensor="wv2_8", method="mtf_glp_hpm",
                       ms_bands=[7, 5, 3, 2]).output_path
    assert gdal.Open(fused).GetMetadataItem("KSDIFF_MS_BANDS") == "7,5,3,2"
    bare, cut, six = (str(tmp_path / f"{n}.tif") for n in ("bare", "cut", "six"))
    for path, bands in ((bare, None), (cut, [7, 5, 3, 2]), (six, [1, 2, 3, 4, 5, 6])):
        gdal.Translate(path, str(named), bandList=bands)
        ds = gdal.Open(path, gdal.GA_Update)
        for b in range(1, ds.RasterCount + 1):
            ds.GetRasterBand(b).SetDescription("")
        ds = None
    log = RecordingFeedback()
    got, ref = assess_full(fused, pan, bare, "wv2_8", log), assess_full(fused, pan, cut, "wv2_8")
    for key in M.FULL + M.CONSISTENCY:
        assert got[key] == pytest.approx(ref[key], rel=1e-9, nan_ok=True), key
    assert any("KSDIFF_MS_BANDS" in line and "NIR1 = MS band 7, Red = MS band 5" in line for line in log.lines)
    with pytest.raises(InputError, match="gdal_translate -b 7 -b 5 -b 3 -b 2, the bands"):
        assess_full(fused, pan, six, "wv2_8")


def test_assess_report_wording(data_dir, tmp_path):
    """The full-resolution per-band table says Ds, Dρ, Checkerboard (it said D_s, D_rho, CB), the notes give the tiles
    really used (480×480 with 66 pixels of context at ratio 3; they always said 512 / 64), and bands without
    descriptions take the sensor's names (they showed Band 1…4)."""
    from ksdiff_qgis.engine.assessment import assess_full
    from ksdiff_qgis.engine.report import html_report

    pan, ms3, fused = str(data_dir / "wv2_pan.tif"), str(tmp_path / "ms3.tif"), str(tmp_path / "f3.tif")
    ds = gdal.Open(str(data_dir / "wv2_ms.tif"))
    gt = ds.GetGeoTransform()
    gdal.Translate(ms3, ds, xRes=gt[1] * 3 / 4, yRes=-gt[5] * 3 / 4, resampleAlg="cubic")
    ds = None
    pansharpen(pan, ms3, fused, sensor="generic", method="mtf_glp_hpm")
    for path in (fused, ms3):
        ds = gdal.Open(path, gdal.GA_Update)
        for b in range(1, 5):
            ds.GetRasterBand(b).SetDescription("")
        ds = None
    text = html_report(None, assess_full(fused, pan, ms3, "ikonos"), {"Fused": fused}, "ikonos")
    assert "<th>Ds</th><th>Dρ</th><th>Checkerboard</th>" in text and "<th>D_s</th>" not in text
    assert "480×480 pixels with 66 pixels of context" in text and "512×512" not in text
    assert "<td>Blue</td>" in text and "Band 1" not in text


def test_assess_says_when_the_rasters_do_not_overlap(qgis_app, full_fused, data_dir, tmp_path):
    """FUSED from WV2 pair 1, PAN and MS from pair 2 (about 4 km away): the error says they do not overlap and names
    both extents (QA: 'PAN is shifted by a fraction of a pixel from FUSED'); no report is written."""
    from qgis.core import QgsProcessingException

    from ksdiff_qgis.engine.assessment import assess_reduced
    from ksdiff_qgis.engine.errors import InputError

    pan, ms = str(data_dir / "wv2_nodata_pan.tif"), str(data_dir / "wv2_nodata_ms.tif")
    html = tmp_path / "apart.html"
    with pytest.raises(QgsProcessingException, match=r"FUSED and PAN do not overlap: in their CRS \(EPSG:32631\) "
                       r"FUSED covers x 593370.29\d* to 593498.2\d*, y 5747429.4\d* to 5747557.4\d*, PAN x 595475.31"):
        _run({"FUSED": full_fused, "PAN": pan, "MS": ms, "SENSOR": "wv2", "OUTPUT_HTML": str(html)})
    assert not html.exists()
    with pytest.raises(InputError, match="FUSED and REFERENCE do not overlap"):
        assess_reduced(full_fused, ms, "wv2")


def test_definitions_say_what_is_computed_and_where_it_is_not_the_toolboxs(data_dir):
    """QA: the report's Ds line said it compared with 'the MS at low resolution' (it uses the upsampled MS and the
    PAN low-passed at PAN resolution); metrics.py and docs/BENCHMARKS.md cited METHOD.md, which is not shipped, as
    toolbox definitions (SCC and Ds are not the toolbox's); README read 'its local correlation (Dρ) rises'."""
    import json

    from bench.report import markdown
    from ksdiff_qgis.engine.report import INDICES

    root = data_dir.parent.parent
    ds = INDICES["D_s"][3]
    assert "low resolution" not in ds and "sliding windows" in ds and "D_s.m" in ds
    bench_md = markdown(json.loads((root / "bench" / "results.json").read_text()), [])
    for text in (M.__doc__, (root / "docs" / "BENCHMARKS.md").read_text(encoding="utf-8"), bench_md):
        assert "METHOD.md" not in text and "SCC.m" in text and "D_s.m" in text
    readme = (root / "README.md").read_text(encoding="utf-8")
    assert "Dρ rises 0.18 → 0.24 (its local correlation with the PAN falls)" in " ".join(readme.split())


@pytest.fixture(scope="module")
def resampled_ms(data_dir, tmp_path_factory):
    """The WorldView-2 fixture's MS as QA gave it to ksdiff:pansharpen: reprojected to EPSG:4326 (gdal.Warp), and
    resampled to 2.5 PAN pixels per MS pixel (gdal.Translate), each fused by the engine."""
    out = tmp_path_factory.mktemp("assess_grid")
    pan, ms = str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif")
    px = gdal.Open(pan).GetGeoTransform()[1]
    paths = {"4326": str(out / "ms_4326.tif"), "2.5": str(out / "ms_r25.tif")}
    gdal.Warp(paths["4326"], ms, dstSRS="EPSG:4326", resampleAlg="cubic", srcNodata=0, dstNodata=0)
    gdal.Translate(paths["2.5"], ms, xRes=2.5 * px, yRes=2.5 * px, resampleAlg="cubic")
    fused = {k: pansharpen(pan, p, str(out / f"fused_{k}.tif"), sensor="wv2", method="mtf_glp_hpm").output_path
             for k, p in paths.items()}
    return pan, ms, paths, fused


class _Said:
    """An engine feedback that keeps its warnings."""

    def __init__(self):
        from ksdiff_qgis.engine.feedback import Feedback

        self.warnings: list[str] = []
        self.fb = Feedback()
        self.fb.warning = self.warnings.append


def test_assess_reads_a_reprojected_or_resampled_ms_as_pansharpen_did(resampled_ms):
    """QA: assess refused what pansharpen had just made from an MS in another CRS ('different coordinate reference
    systems'), rotated or at a ratio that is not whole ('expected a whole ratio'). It now reads the MS onto the PAN
    grid as pansharpen did (grid.plan_grid), says so and that the indices are then approximate, once. Against the
    MS in EPSG:4326 the fusion scores near, and better than, against the MS on its own UTM grid (the view is two cubic
    resamplings of it, smoother; not shifted: within 0.1 MS pixel of it). Measured |Δ|: Dλ 0.047, Ds 0.021, HQNR
    0.064, Dρ 0.001, R-Q2n 0.034, R-SAM 2.3°, R-ERGAS 3.2."""
    from ksdiff_qgis.engine.assessment import assess_full

    approximate = "they are approximate"
    pan, ms, paths, fused = resampled_ms
    said = _Said()
    got = assess_full(fused["4326"], pan, paths["4326"], "wv2", said.fb)
    own = assess_full(fused["4326"], pan, ms, "wv2")
    assert got["ratio"] == own["ratio"] == 4
    assert any("in another CRS than PAN: it is reprojected on the fly" in w for w in said.warnings), said.warnings
    assert sum(approximate in w for w in said.warnings) == 1
    assert any(approximate in n for n in got["notes"]) and not own["notes"]
    for key, tol in (("D_lambda", 0.06), ("D_s", 0.03), ("HQNR", 0.08), ("D_rho", 0.005), ("R_SAM", 3.0),
                     ("R_ERGAS", 4.0)):
        assert got[key] == pytest.approx(own[key], abs=tol), key
    # the 64th MS pixel across and down counts since 2026-12-07 (it ends 0.012 px past FUSED): the fused raster's last
    # column and row, nodata where the reprojected MS was, fall in it, so no 32x32 block of the own 64x64 MS grid is
    # whole (until then 63 counted and the last block was mirror-padded: R-Q2n 0.965)
    assert np.isnan(own["R_Q2n"]) and own["why"]["R_Q2n"] == "no 32×32 block is entirely valid", own["why"]
    assert 0.9 < got["R_Q2n"] <= 1
    assert got["D_lambda"] < own["D_lambda"] and got["R_ERGAS"] < own["R_ERGAS"] and got["HQNR"] > own["HQNR"]
    # a ratio of 2.5: resampled to 3, as pansharpen fused it
    said = _Said()
    r25 = assess_full(fused["2.5"], pan, paths["2.5"], "wv2", said.fb)
    assert r25["ratio"] == 3 and 0 < r25["HQNR"] <= 1
    assert any("2.5 x 2.5, not one whole number" in w for w in said.warnings), said.warnings


def test_assess_processing_scores_a_fusion_of_a_reprojected_ms(qgis_app, resampled_ms, tmp_path):
    """Through Processing with SENSOR auto: the guess takes the ratio pansharpen fused at (QA: 'no known sensor has
    ratio 0 with 4 MS bands' for an MS in degrees, 'ratio 2' at 2.5), and the report says the MS was resampled."""
    import processing
    from test_issue14_processing import Log

    from ksdiff_qgis.algorithms.assess import guess_sensor

    pan, _, paths, fused = resampled_ms
    for key, ratio in (("4326", "ratio 4"), ("2.5", "ratio 3")):
        found = guess_sensor(fused[key], None, pan, paths[key], {})
        assert any(ratio in r for r in found.reasons) and not any("ratio 0" in r for r in found.reasons), found.reasons
    log, report = Log(), tmp_path / "r.html"
    res = processing.run("ksdiff:assess", {"FUSED": fused["4326"], "PAN": pan, "MS": paths["4326"],
                                           "OUTPUT_HTML": str(report)}, feedback=log)
    assert 0 < res["HQNR"] <= 1 and res["R_ERGAS"] > 0
    assert any("reprojected on the fly" in line for line in log.lines), log.lines
    text = html.unescape(report.read_text(encoding="utf-8"))
    assert "reprojected on the fly" in text and "they are approximate" in text


def _scaled_pixels(src: str, dst: str, rel: float) -> str:
    """A copy of ``src`` whose pixel size is (1 + ``rel``) times its own, origin kept."""
    ds = gdal.Translate(dst, src)
    gt = list(ds.GetGeoTransform())
    gt[1] *= 1 + rel
    gt[5] *= 1 + rel
    ds.SetGeoTransform(gt)
    ds = None
    return dst


def test_assess_takes_pixel_sizes_within_float_noise_as_one_grid(wald_case, tmp_path):
    """QA: a fused raster whose pixel size differs from the reference's by a relative 1.5e-6 (0.0002 pixels of drift
    over the raster, where an origin 0.05 pixels off is accepted) was refused with the same printed numbers on both
    sides. Now the sizes count as equal while they drift less than 0.05 pixels across the raster; a real
    difference is refused with digits enough to see it."""
    from ksdiff_qgis.engine.assessment import assess_reduced
    from ksdiff_qgis.engine.errors import InputError

    case, fused, _ = wald_case
    base = assess_reduced(fused["mtf_glp_hpm"], case.ref, "wv2")
    noisy = _scaled_pixels(fused["mtf_glp_hpm"], str(tmp_path / "noisy.tif"), 1.5e-6)
    res = assess_reduced(noisy, case.ref, "wv2")
    assert res["ERGAS"] == pytest.approx(base["ERGAS"], rel=1e-9) and res["pixels"] == base["pixels"]
    far = _scaled_pixels(fused["mtf_glp_hpm"], str(tmp_path / "far.tif"), 1e-3)   # 0.15 pixels over 148
    with pytest.raises(InputError, match="different pixel sizes") as err:
        assess_reduced(far, case.ref, "wv2")
    sizes = str(err.value).split("(")[1].split(")")[0]
    left, right = sizes.split(" vs ")
    assert left != right and "pixels apart across the raster" in str(err.value), str(err.value)
    said = str(err.value)
    assert f"-r cubic {case.ref} " in said and "_on_fused.tif, FUSED's extent" in said, said   # QA133: the files named


def test_assess_leaves_an_ms_alpha_band_out_as_pansharpen_does(data_dir, tmp_path):
    """``gdalwarp -dstalpha`` on the MS (0 / 65535 alpha, the PAN's CRS and the MS's pixel size on aligned pixels):
    ksdiff:pansharpen fused its 4 spectral bands, and assess refused the pair ("FUSED has 4 bands ..., MS 5 ... cannot
    be paired by band name"). The alpha is left out and hides its pixels there too."""
    from ksdiff_qgis.engine.assessment import assess_full
    from ksdiff_qgis.engine.feedback import RecordingFeedback

    src = gdal.Open(str(data_dir / "wv2_ms.tif"))
    size = src.GetGeoTransform()[1]
    ms5 = str(tmp_path / "ms5.tif")
    gdal.Warp(ms5, src, dstAlpha=True, dstSRS=src.GetProjection(), xRes=size, yRes=size, targetAlignedPixels=True,
              srcNodata="none")
    src = None
    ds = gdal.Open(ms5)
    alpha = ds.GetRasterBand(5).ReadAsArray()
    ds = None
    assert set(np.unique(alpha).tolist()) == {0, 65535} and (alpha == 0).any()
    fused = pansharpen(str(data_dir / "wv2_pan.tif"), ms5, str(tmp_path / "f.tif"), "wv2", "mtf_glp_hpm").output_path
    log = RecordingFeedback()
    res = assess_full(fused, str(data_dir / "wv2_pan.tif"), ms5, "wv2", feedback=log)
    assert any("MS band 5 is a transparency mask" in line and "hides are nodata" in line for line in log.lines)
    assert len(res["band_names"]) == 4 and res["pixels"] > 0 and np.isfinite(res["HQNR"])


def _untagged(src: str, dst: str, keep_wald: bool = False, names: bool = True) -> str:
    """A copy of ``src`` without KSDiff's tags (KSDIFF_WALD kept on request), its band descriptions kept or cleared."""
    gdal.Translate(dst, src)
    ds = gdal.Open(dst, gdal.GA_Update)
    md = {k: v for k, v in (ds.GetMetadata() or {}).items()
          if not k.startswith("KSDIFF_") or (keep_wald and k == "KSDIFF_WALD")}
    ds.SetMetadata(md)
    if not names:
        for b in range(1, ds.RasterCount + 1):
            ds.GetRasterBand(b).SetDescription("")
    ds = None
    return dst


def test_assess_auto_reads_ksdiffs_own_tags_against_a_reference(qgis_app, data_dir, tmp_path):
    """SENSOR auto with a reference alone: the fused raster's KSDIFF_SENSOR (ksdiff:pansharpen's provenance), else the
    Wald case's KSDIFF_WALD, else the reference's OLI band codes name the sensor, and the log says which (QA: a Landsat
    8 Wald case scored as generic, ERGAS n/a, PSNR/SSIM on the data's maximum)."""
    import processing
    from test_issue14_processing import Log

    case = make_reduced_case(data_dir / "l8_pan.tif", data_dir / "l8_ms.tif", str(tmp_path / "case"), "landsat8")
    fused = pansharpen(case.pan, case.ms, str(tmp_path / "f.tif"), sensor="landsat8", method="mtf_glp_hpm").output_path
    assert gdal.Open(fused).GetMetadataItem("KSDIFF_SENSOR") == "landsat8"
    chosen = _run({"FUSED": fused, "REFERENCE": case.ref, "SENSOR": "landsat8",
                   "OUTPUT_HTML": str(tmp_path / "c.html")})
    assert chosen["ERGAS"] is not None
    plain_ref = _untagged(case.ref, str(tmp_path / "ref_plain.tif"))
    cases = {
        "KSDIFF_SENSOR=landsat8": (fused, plain_ref),
        "KSDIFF_WALD=sensor=landsat8 ratio=2": (_untagged(fused, str(tmp_path / "fw.tif"), keep_wald=True), plain_ref),
        "band descriptions B2 Blue": (_untagged(fused, str(tmp_path / "fp.tif")), plain_ref),
    }
    for why, (fu, ref) in cases.items():
        log = Log()
        res = processing.run("ksdiff:assess", {"FUSED": fu, "REFERENCE": ref, "OUTPUT_HTML": str(tmp_path / "a.html")},
                             feedback=log)
        said = [line for line in log.lines if "SENSOR=auto" in line]
        assert len(said) == 1 and said[0].startswith("SENSOR=auto: Landsat 8/9 OLI") and why in said[0], log.lines
        for key in ("ERGAS", "PSNR", "SSIM", "SAM"):
            assert res[key] == chosen[key], (why, key)
    # nothing names it: generic, warned, ERGAS n/a
    log = Log()
    bare = _untagged(fused, str(tmp_path / "bare.tif"), names=False)
    res = processing.run("ksdiff:assess", {"FUSED": bare, "REFERENCE": bare, "OUTPUT_HTML": str(tmp_path / "b.html")},
                         feedback=log)
    assert any(line.startswith("WARNING SENSOR=auto: Generic") for line in log.lines) and res["ERGAS"] is None


def test_assess_says_the_sub_pixel_shift_and_how_to_resample(wald_case, tmp_path):
    """A reference half a pixel off FUSED's grid is refused with the offset and a gdalwarp line with the reference's
    extent and pixel size; FUSED resampled by that line is assessed (QA: 'REFERENCE is shifted by a fraction of a pixel
    from FUSED', neither the amount nor the fix)."""
    import shlex

    from ksdiff_qgis.engine.assessment import assess_reduced
    from ksdiff_qgis.engine.errors import InputError

    case, fused, _ = wald_case
    shifted = str(tmp_path / "ref_shift.tif")
    gdal.Translate(shifted, case.ref)
    ds = gdal.Open(shifted, gdal.GA_Update)
    gt = list(ds.GetGeoTransform())
    gt[0] += 0.5 * gt[1]
    gt[3] += 0.5 * gt[5]
    ds.SetGeoTransform(gt)
    ds = None
    with pytest.raises(InputError) as err:
        assess_reduced(fused["mtf_glp_hpm"], shifted, "wv2")
    msg = str(err.value)
    assert re.search(r"\([+-]0\.50, [+-]0\.50\) FUSED pixels", msg), msg
    assert "resample FUSED onto REFERENCE's grid" in msg, msg
    # QA133: the line gave gdalwarp's options without FUSED's file and an output name; now it runs as printed
    line = "gdalwarp " + msg.split("(gdalwarp ", 1)[1].rsplit(", REFERENCE's extent", 1)[0]
    args = shlex.split(line)
    on_grid = args[-1]
    assert args[-2] == fused["mtf_glp_hpm"] and on_grid.endswith("_on_reference.tif"), line
    res = subprocess.run(line, shell=True, capture_output=True, text=True, timeout=120)
    try:
        assert res.returncode == 0, res.stderr
        assert assess_reduced(on_grid, shifted, "wv2")["pixels"] > 0
    finally:
        gdal.Unlink(on_grid)   # beside the module's fused file



def test_the_gdalwarp_line_carries_the_layer_crs(wald_case, tmp_path):
    """FUSED's file declares EPSG:23031, its QGIS layer EPSG:32631 (the right one): the printed gdalwarp line names
    the layer's CRS with -s_srs, so the raster it writes lies on REFERENCE's grid in its CRS and is assessed (QA136:
    it was written in the file's EPSG:23031 and refused as in another CRS)."""
    import shlex

    from ksdiff_qgis.engine.assessment import assess_reduced
    from ksdiff_qgis.engine.errors import InputError

    _, fused, _ = wald_case
    wrong = str(tmp_path / "fused_23031.tif")
    gdal.Translate(wrong, fused["mtf_glp_hpm"], outputSRS="EPSG:23031")
    shifted = str(tmp_path / "ref_shift.tif")
    ds = gdal.Translate(shifted, fused["mtf_glp_hpm"])
    gt = list(ds.GetGeoTransform())
    ds.SetGeoTransform([gt[0] + 0.5 * gt[1], gt[1], 0.0, gt[3] + 0.5 * gt[5], 0.0, gt[5]])
    ds = None
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32631)
    with pytest.raises(InputError) as err:
        assess_reduced(wrong, shifted, "wv2", layer_crs={"FUSED": srs.ExportToWkt()})
    msg = str(err.value)
    line = "gdalwarp " + msg.split("(gdalwarp ", 1)[1].rsplit(", REFERENCE's extent", 1)[0]
    assert line.startswith("gdalwarp -s_srs EPSG:32631 -te "), line
    res = subprocess.run(line, shell=True, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert gdal.Open(shlex.split(line)[-1]).GetSpatialRef().GetAuthorityCode(None) == "32631"
    assert assess_reduced(shlex.split(line)[-1], shifted, "wv2")["pixels"] > 0
    # a layer CRS that is the file's own adds nothing
    with pytest.raises(InputError, match=r"\(gdalwarp -te "):
        assess_reduced(shifted, fused["mtf_glp_hpm"], "wv2", layer_crs={"FUSED": srs.ExportToWkt()})


def _kept():
    """An engine Feedback that keeps its lines (warnings prefixed 'WARNING ')."""
    from ksdiff_qgis.engine.feedback import RecordingFeedback

    return RecordingFeedback()


def _warnings(fb) -> list[str]:
    return [line[len("WARNING "):] for line in fb.lines if line.startswith("WARNING ")]


def test_assess_warns_when_fused_and_reference_are_on_different_scales(wald_case, tmp_path):
    """An 8-bit copy of the fusion against the 11-bit reference is scored with a warning naming both scales (QA: ERGAS
    50, HQNR 0.107, said nothing); the fusion itself is not warned about."""
    from ksdiff_qgis.engine.assessment import assess_reduced

    case, fused, _ = wald_case
    byte = str(tmp_path / "fused8.tif")
    gdal.Translate(byte, fused["mtf_glp_hpm"], outputType=gdal.GDT_Byte, scaleParams=[[0, 2047, 0, 255]])
    fb = _kept()
    res = assess_reduced(byte, case.ref, "wv2", fb)
    said = [w for w in _warnings(fb) if "different radiometric scales" in w]
    assert len(said) == 1 and said[0].startswith("FUSED is 8-bit (values up to ") and "REFERENCE 16-bit" in said[0]
    assert res["notes"] == said and np.isfinite(res["ERGAS"])    # a warning, not a refusal
    fb = _kept()
    assess_reduced(fused["mtf_glp_hpm"], case.ref, "wv2", fb)
    assert not any("radiometric" in w for w in _warnings(fb)), fb.lines


def test_assess_says_how_much_of_the_reference_fused_covers(wald_case, tmp_path):
    """A fused raster over a quarter of the reference: an info line and a report note say the indices are over the
    overlap only (QA: nothing said); the whole fusion says nothing."""
    from ksdiff_qgis.engine.assessment import assess_reduced
    from ksdiff_qgis.engine.report import html_report

    case, fused, _ = wald_case
    ds = gdal.Open(fused["mtf_glp_hpm"])
    crop = str(tmp_path / "crop.tif")
    gdal.Translate(crop, ds, srcWin=[0, 0, ds.RasterXSize // 2, ds.RasterYSize // 2])
    fb = _kept()
    res = assess_reduced(crop, case.ref, "wv2", fb)
    said = [line for line in fb.lines if line.startswith("FUSED covers 25 % of REFERENCE")]
    assert len(said) == 1 and "the indices are over the overlap only" in said[0], fb.lines
    assert html.escape(said[0]) in html_report(res, None, {"Fused": crop}, "wv2")
    fb = _kept()
    assess_reduced(fused["mtf_glp_hpm"], case.ref, "wv2", fb)
    assert not any("covers" in line for line in fb.lines)


def test_assess_warns_of_undeclared_zero_holes_in_fused(wald_case, tmp_path):
    """A 40x40 block of zeros in every band of FUSED, no nodata declared, over reference data: warned with the count
    and gdal_edit.py -a_nodata 0; declared as nodata it is left out, without the warning."""
    from ksdiff_qgis.engine.assessment import assess_reduced

    case, fused, _ = wald_case
    holed = str(tmp_path / "holes.tif")
    gdal.Translate(holed, fused["mtf_glp_hpm"])
    ds = gdal.Open(holed, gdal.GA_Update)
    for b in range(1, ds.RasterCount + 1):
        band = ds.GetRasterBand(b)
        band.DeleteNoDataValue()
        arr = band.ReadAsArray()
        arr[10:50, 10:50] = 0
        band.WriteArray(arr)
    ds = band = None
    fb = _kept()
    assess_reduced(holed, case.ref, "wv2", fb)
    said = [w for w in _warnings(fb) if "0 in every band" in w]
    assert len(said) == 1 and said[0].startswith("1600 pixels of FUSED") and "gdal_edit.py -a_nodata 0" in said[0]
    ds = gdal.Open(holed, gdal.GA_Update)
    for b in range(1, ds.RasterCount + 1):
        ds.GetRasterBand(b).SetNoDataValue(0)
    ds = None
    fb = _kept()
    assess_reduced(holed, case.ref, "wv2", fb)
    assert not any("0 in every band" in w for w in _warnings(fb))


def _assess_warnings(params: dict) -> list[str]:
    """ksdiff:assess's warning lines about the chosen SENSOR's fit to the data."""
    import processing
    from test_issue14_processing import Log

    log = Log()
    processing.run("ksdiff:assess", params, feedback=log)
    return [line for line in log.lines if line.startswith("WARNING SENSOR ")]


def test_a_sensor_that_does_not_fit_the_data_is_warned(qgis_app, data_dir, tmp_path):
    """QA: SENSOR wv2_8 / wv3 on a 4-band raster, or landsat8 (ratio 2) for a ratio-4 pair, ran silently with that
    sensor's figures (the same SENSOR number means another sensor in ksdiff:pansharpen: 12 is gf2 there, landsat8
    here). One line now names the sensor's bands and ratio, the data's, and the sensors that fit."""
    pan, ms = str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif")
    fused = pansharpen(pan, ms, str(tmp_path / "f.tif"), "wv2", "gsa").output_path
    reduced = {"FUSED": fused, "REFERENCE": fused, "OUTPUT_HTML": str(tmp_path / "r.html")}
    lines = _assess_warnings({**reduced, "SENSOR": "wv2_8"})
    assert len(lines) == 1, lines
    assert "SENSOR wv2_8 is WorldView-2: 8 MS bands at ratio 4; FUSED has 4 bands" in lines[0]
    assert "(wv2, wv3_4, wv4, qb" in lines[0] and lines[0].endswith("or auto")
    assert _assess_warnings({**reduced, "SENSOR": "wv2"}) == []
    # with the original PAN and MS: the pair's ratio 4 against landsat8's 2 (ksdiff:assess's option 12)
    full = {"FUSED": fused, "PAN": pan, "MS": ms, "OUTPUT_HTML": str(tmp_path / "r.html")}
    lines = _assess_warnings({**full, "SENSOR": 12})
    assert len(lines) == 1, lines
    assert "SENSOR landsat8 is Landsat 8/9 OLI: 4 MS bands at ratio 2; FUSED has 4 bands, the PAN/MS pair ratio 4" \
        in lines[0]
    assert "landsat8" not in lines[0].split("set SENSOR to")[1] and "wv2" in lines[0].split("set SENSOR to")[1]
    assert _assess_warnings({**full, "SENSOR": "wv2"}) == []
    # a subset fused with that very sensor (MS_BANDS 3,2,1 with wv2) fits it
    subset = pansharpen(pan, ms, str(tmp_path / "s.tif"), "wv2", "gsa", ms_bands=[3, 2, 1]).output_path
    assert _assess_warnings({"FUSED": subset, "REFERENCE": subset, "SENSOR": "wv2",
                             "OUTPUT_HTML": str(tmp_path / "r.html")}) == []


def _cut_and_fuse(tmp_path, pan: str, pan_win, ms: str, ms_win, sensor: str) -> tuple[str, str, str]:
    """PAN and MS cut from the cached real scenes (``gdal.Translate`` srcWin; None = whole), fused with MTF-GLP-HPM."""
    p, m = str(tmp_path / "p.tif"), str(tmp_path / "m.tif")
    gdal.Translate(p, pan, srcWin=pan_win) if pan_win else gdal.Translate(p, pan)
    gdal.Translate(m, ms, srcWin=ms_win) if ms_win else gdal.Translate(m, ms)
    fused = pansharpen(p, m, str(tmp_path / "f.tif"), sensor=sensor, method="mtf_glp_hpm").output_path
    return fused, p, m


@pytest.mark.parametrize("case, size, repro", [
    ("wv2_64x64", (64, 64), True),       # 16x16 MS at ratio 4.00015, 0.012 px off: counted 63 PAN pixels; its 16th MS
                                         # pixel reaches 0.03 px past the fused raster and counts (R-* until 2026-12-07
                                         # n/a: 15 counted)
    ("wv2_60x600", (60, 600), False),    # 15x150 MS with the whole PAN
    ("l8_1253x32", (1253, 32), False),   # a 32-row Landsat 8 PAN strip with the whole MS
])
def test_assess_full_scores_the_small_overlaps_pansharpen_makes(tmp_path, cached, case, size, repro):
    """QA: outputs ksdiff:pansharpen made from a small overlap were refused with 'overlap by less than 64x64 PAN
    pixels' (no numbers). Now the MS edges snap within pansharpen's tolerance, and an overlap down to one 32x32 block
    gets Dλ, Ds and HQNR, with R-Q2n/R-SAM/R-ERGAS n/a and the reason when fewer than 16 MS pixels lie in it."""
    from ksdiff_qgis.engine.assessment import assess_full

    inputs = {"wv2_64x64": ("wv2/pair1_pan.tif", [200, 200, 64, 64], "wv2/pair1_ms.tif", [50, 50, 16, 16], "wv2"),
              "wv2_60x600": ("wv2/pair1_pan.tif", None, "wv2/pair1_ms.tif", [0, 0, 15, 150], "wv2"),
              "l8_1253x32": ("landsat8/pan.tif", [0, 400, 1254, 32], "landsat8/ms.tif", None, "landsat8")}[case]
    pan, pan_win, ms, ms_win, sensor = inputs
    fused, p, m = _cut_and_fuse(tmp_path, str(cached(pan)), pan_win, str(cached(ms)), ms_win, sensor)
    res = assess_full(fused, p, m, sensor)
    assert (res["width"], res["height"]) == size
    assert all(0 < res[k] < 1 for k in ("D_lambda", "D_s", "HQNR")), res
    if repro:
        assert all(np.isfinite(res[k]) for k in ("R_Q2n", "R_SAM", "R_ERGAS")), res["why"]
    else:
        assert np.isnan(res["R_Q2n"]) and "whole MS pixels" in res["why"]["R_Q2n"]


def test_assess_says_the_overlap_and_the_minimum_as_an_input_problem(qgis_app, tmp_path, cached):
    """A FUSED 24 PAN pixels wide: the refusal gives the overlap and the minimum, without 'Assessment failed:' (the
    prefix of bugs)."""
    from qgis.core import QgsProcessingException

    fused, p, m = _cut_and_fuse(tmp_path, str(cached("wv2/pair1_pan.tif")), [200, 200, 64, 64],
                                str(cached("wv2/pair1_ms.tif")), [50, 50, 16, 16], "wv2")
    narrow = str(tmp_path / "narrow.tif")
    gdal.Translate(narrow, fused, srcWin=[0, 0, 24, 64])
    with pytest.raises(QgsProcessingException) as e:
        _run({"FUSED": narrow, "PAN": p, "MS": m, "SENSOR": "wv2", "OUTPUT_HTML": str(tmp_path / "a.html")})
    msg = str(e.value)
    assert "overlap on only 24 x 64 PAN pixels" in msg and "at least 32 x 32" in msg and "failed" not in msg, msg


def test_auto_takes_fuseds_sensor_tag_and_the_fit_warning_reads_right(qgis_app, data_dir, tmp_path):
    """QA (8-band WorldView): with SENSOR auto and no product metadata, assess guessed wv2_8 from the pixel size over
    FUSED's KSDIFF_SENSOR=wv3, then warned 'FUSED was made with SENSOR wv3 ... choose a sensor that fits (wv2_8,
    wv3) or auto', on auto and listing the chosen sensor; SENSOR wv2 on 8 bands said 'FUSED has 8 bands, WorldView-2
    (4 bands: B, G, R, NIR) 4, and Coastal, ... is not named'."""
    import processing
    from test_issue14_processing import Log
    from test_sensors_bands import make_wv2_8band

    from ksdiff_qgis.algorithms.assess import guess_sensor
    from ksdiff_qgis.engine.assessment import sensor_fit_note

    pan = str(data_dir / "wv2_pan.tif")
    ms = str(make_wv2_8band(data_dir / "wv2_ms.tif", tmp_path / "ms8.tif"))
    fused = pansharpen(pan, ms, str(tmp_path / "f.tif"), "wv3", "mtf_glp_hpm").output_path
    found = guess_sensor(fused, None, pan, ms, {})
    assert found.key == "wv3" and "KSDIFF_SENSOR=wv3" in found.reasons[0] and "wv2_8" in found.reasons[0]
    full = {"FUSED": fused, "PAN": pan, "MS": ms, "OUTPUT_HTML": str(tmp_path / "r.html")}
    assert _assess_warnings(full) == []
    # auto that lands on another sensor than the tag's: neither the chosen sensor nor auto is advised
    note = sensor_fit_note("wv2_8", 8, 4, "wv3", auto=True)
    advice = note.split("SENSOR wv3 (its KSDIFF_SENSOR tag)")[1]
    assert note.startswith("SENSOR auto chose wv2_8") and "wv2_8" not in advice and "auto" not in advice, note
    assert "set SENSOR to one that fits (wv3)" in note
    assert sensor_fit_note("wv3", 8, 4, "wv2_8").endswith("set SENSOR to one that fits (wv2_8) or auto")
    log = Log()
    processing.run("ksdiff:assess", {**full, "SENSOR": "wv2"}, feedback=log)
    said = [line for line in log.lines if "generic MTF gain" in line]
    assert len(said) == 1 and ("FUSED has 8 bands and WorldView-2 (SENSOR wv2) 4: Coastal, Yellow, Red Edge, NIR2 "
                               "are none of WorldView-2's bands (Blue, Green, Red, NIR), so the generic MTF gain 0.3 "
                               "filters them") in said[0], said


@pytest.fixture
def small_disk(tmp_path):
    """A 64 KB tmpfs (root only; skipped where mounting is not permitted), unmounted after the test."""
    import subprocess

    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here")
    try:
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def _report_on_a_full_disk(wald_case, report):
    from qgis.core import QgsProcessingException

    case, fused, _ = wald_case
    with pytest.raises(QgsProcessingException) as raised:
        _run({"FUSED": fused["mtf_glp_hpm"], "REFERENCE": case.ref, "SENSOR": "wv2", "OUTPUT_HTML": str(report)})
    return str(raised.value)


def test_assess_report_on_a_full_disk_keeps_the_earlier_report(qgis_app, wald_case, small_disk):
    """QA: on a full disk the report failed as "Internal error (OSError: [Errno 28] …)" with a traceback, and an
    earlier report was cut to 4096 bytes. Now a message that says the disk is full (free bytes, folder), the earlier
    report whole, no temporary file."""
    report = small_disk / "old.html"
    report.write_text("OLDREPORT\n")
    import shutil

    # fill it: the report gets no block
    (small_disk / "fill").write_bytes(b"\0" * (shutil.disk_usage(small_disk).free))
    said = _report_on_a_full_disk(wald_case, report)
    assert said.startswith(f"The report could not be written to {report}: the disk is full ("), said
    assert f"bytes free in {small_disk}; the report needs " in said and "an earlier report there is unchanged" in said
    assert "Internal error" not in said and "Errno" not in said
    assert report.read_text() == "OLDREPORT\n"
    assert sorted(p.name for p in small_disk.iterdir()) == ["fill", "old.html"]


def test_assess_report_write_failure_keeps_the_earlier_report(qgis_app, wald_case, tmp_path, monkeypatch):
    """The same without a tmpfs: the write raises ENOSPC after 4096 bytes, as a full disk does."""
    import builtins
    import errno
    import io

    report = tmp_path / "old.html"
    report.write_text("OLDREPORT\n")
    real_open = builtins.open

    class FullDisk(io.StringIO):
        def __init__(self, path):
            super().__init__()
            self.path = path

        def write(self, text):
            with real_open(self.path, "w") as f:   # what the disk took before it was full
                f.write(text[:4096])
            raise OSError(errno.ENOSPC, "No space left on device")

    def full_open(path, mode="r", *args, **kwargs):
        if str(path).startswith(str(report)) and "w" in mode:
            return FullDisk(path)
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", full_open)
    said = _report_on_a_full_disk(wald_case, report)
    monkeypatch.undo()
    assert "the disk is full (" in said and f"bytes free in {tmp_path}" in said, said
    assert report.read_text() == "OLDREPORT\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.html"]


def test_assess_stops_at_a_cancel_in_its_tiles_and_in_its_count_of_the_reference(wald_case, tmp_path):
    """A cancel stops the reduced-resolution assessment at its next tile, and in its count of a REFERENCE that
    reaches past FUSED (read again whole, tile by tile), with nothing reported after it."""
    from ksdiff_qgis.engine import assessment
    from ksdiff_qgis.engine.errors import Cancelled
    from ksdiff_qgis.engine.feedback import RecordingFeedback

    case, fused, _ = wald_case

    class CancelAt(RecordingFeedback):
        def __init__(self, at: float):
            super().__init__()
            self.at = at

        def is_cancelled(self) -> bool:
            return bool(self.progress_calls) and self.progress_calls[-1][0] >= self.at

    part = str(tmp_path / "part.tif")   # FUSED a crop: the REFERENCE reaches past it
    ds = gdal.Open(fused["exp"])
    gdal.Translate(part, ds, srcWin=[0, 0, ds.RasterXSize - 40, ds.RasterYSize - 40])
    for at, path in ((0.0, fused["exp"]), (1.0, part)):
        fb = CancelAt(at)
        fb.progress(0.0)
        with pytest.raises(Cancelled):
            assessment.assess_reduced(path, case.ref, "wv2", fb)
        assert fb.progress_calls[-1][0] == at, fb.progress_calls
