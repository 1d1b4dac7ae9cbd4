"""Bad input gets a clear message before any pixel is written, and nothing is left behind."""
from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal


def _copy_with_gt(src: str, dst: str, transform) -> str:
    """A GeoTIFF copy of ``src`` whose geotransform is ``transform(old geotransform)``."""
    ds = gdal.Translate(dst, src, format="GTiff")
    ds.SetGeoTransform(transform(list(ds.GetGeoTransform())))
    ds = None
    return dst


def _without_georef(src: str, dst: str) -> str:
    """The pixels of ``src`` in a GeoTIFF with neither geotransform nor CRS."""
    s = gdal.Open(src)
    out = gdal.GetDriverByName("GTiff").Create(dst, s.RasterXSize, s.RasterYSize, s.RasterCount,
                                               s.GetRasterBand(1).DataType)
    for i in range(1, s.RasterCount + 1):
        out.GetRasterBand(i).WriteArray(s.GetRasterBand(i).ReadAsArray())
    out = None
    return dst


def _expect_error(params, out, match):
    import processing
    from qgis.core import QgsProcessingException

    with pytest.raises(QgsProcessingException, match=match):
        processing.run("ksdiff:pansharpen", {**params, "OUTPUT": out})
    assert not os.path.exists(out)
    leftovers = [f for f in os.listdir(os.path.dirname(out)) if "partial" in f]
    assert not leftovers


def test_no_overlap(qgis_app, pair, tmp_path):
    ms = _copy_with_gt(pair["MS"], str(tmp_path / "far.tif"), lambda gt: [gt[0] + 10000, *gt[1:]])
    # both extents named (an antimeridian pair written once as +180 and once as -180 showed only "do not overlap")
    _expect_error({**pair, "MS": ms}, str(tmp_path / "o.tif"),
                  r"do not overlap: in the PAN.s CRS \(EPSG:32631\) the PAN covers x .* the MS x ")


def _run_with_warnings(params: dict) -> list[str]:
    import processing
    from qgis.core import QgsProcessingFeedback

    warnings = []

    class Fb(QgsProcessingFeedback):
        def pushWarning(self, msg):  # noqa: N802
            warnings.append(msg)
            super().pushWarning(msg)

    processing.run("ksdiff:pansharpen", params, feedback=Fb())
    return warnings


@pytest.mark.parametrize("scale,ratio", [(0.625, 3), (0.69, 3), (1.1, 4)])
def test_a_non_integer_ratio_is_resampled_with_a_warning(qgis_app, pair, tmp_path, scale, ratio):
    """MS pixels of 2.5, 2.76 (ZiYuan-3's 5.8 m over 2.1 m) or 4.4 PAN pixels: the MS is resampled to the nearest
    whole ratio on the PAN grid (it was an error), the output keeps the PAN's grid and the MS's footprint."""
    ms = _copy_with_gt(pair["MS"], str(tmp_path / "odd.tif"),
                       lambda gt: [gt[0], gt[1] * scale, 0, gt[3], 0, gt[5] * scale])
    out = str(tmp_path / "o.tif")
    warnings = _run_with_warnings({**pair, "MS": ms, "SENSOR": "generic", "OUTPUT": out})
    assert any(f"to {ratio} PAN pixels per MS pixel" in w for w in warnings), warnings
    pan, fused, src = gdal.Open(pair["PAN"]), gdal.Open(out), gdal.Open(ms)
    pgt, fgt, mgt = pan.GetGeoTransform(), fused.GetGeoTransform(), src.GetGeoTransform()
    assert fgt[1] == pgt[1] and fgt[5] == pgt[5] and fused.RasterCount == 4
    # the output lies inside the MS footprint (the resampled grid is snapped outward: PAN pixels beyond the MS were
    # written from the warp's fill), by less than a PAN pixel a side
    right = min(mgt[0] + src.RasterXSize * mgt[1], pgt[0] + pan.RasterXSize * pgt[1])
    assert mgt[0] - 0.05 * pgt[1] <= fgt[0] < mgt[0] + pgt[1]
    assert right - pgt[1] < fgt[0] + fused.RasterXSize * fgt[1] <= right + 0.05 * pgt[1]
    assert fused.RasterXSize * fgt[1] > 0.8 * min(src.RasterXSize * mgt[1], pan.RasterXSize * pgt[1])
    data = fused.ReadAsArray().astype(float)
    assert np.isfinite(data).all() and data.std() > 0


def test_a_reprojected_ms_of_no_whole_ratio_is_resampled_too(pair, tmp_path):
    """An MS in another CRS whose pixels are 3.47 PAN pixels: resampled to 3 with a warning, as in the PAN's CRS (it
    stopped: 'after reprojection the MS/PAN pixel size ratio is 3.47, not a whole number >= 2')."""
    from ksdiff_qgis.engine.pipeline import pansharpen

    ms = str(tmp_path / "ms_32632.tif")
    pan_px = gdal.Open(pair["PAN"]).GetGeoTransform()[1]
    gdal.Warp(ms, pair["MS"], dstSRS="EPSG:32632", xRes=3.47 * pan_px, yRes=3.47 * pan_px, resampleAlg="cubic")
    res = pansharpen(pair["PAN"], ms, str(tmp_path / "o.tif"), "generic", "mtf_glp_hpm")
    assert res.ratio == 3
    assert any("not a whole number: the MS is resampled to 3" in w for w in res.warnings), res.warnings


def test_a_nearly_whole_ratio_that_would_drift_is_resampled(tmp_path):
    """The demo's MS pixels made 4.0038 PAN pixels: taken as 4, the MS's far edge would sit half a PAN pixel from
    where its georeference puts it (a whole WorldView-2 scene, 4.000246, about 2 pixels): resampled, with a warning,
    and the plain upsampled MS (EXP) then matches GDAL's own cubic warp of the MS onto the output grid."""
    from ksdiff_qgis.engine.pipeline import pansharpen

    sample = Path(__file__).resolve().parent.parent / "ksdiff_qgis" / "resources" / "sample"
    ms = _copy_with_gt(str(sample / "demo_ms.tif"), str(tmp_path / "drift.tif"),
                       lambda gt: [gt[0], gt[1] * 1.0009, 0, gt[3], 0, gt[5] * 1.0009])
    res = pansharpen(str(sample / "demo_pan.tif"), ms, str(tmp_path / "o.tif"), "wv2", "exp")
    assert any("would drift up to 0.49 PAN pixels" in w for w in res.warnings), res.warnings
    out = gdal.Open(res.output_path)
    gt = out.GetGeoTransform()
    ref = gdal.Warp("", ms, format="MEM", outputBounds=(gt[0], gt[3] + out.RasterYSize * gt[5],
                                                         gt[0] + out.RasterXSize * gt[1], gt[3]),
                    xRes=gt[1], yRes=-gt[5], resampleAlg="cubic").ReadAsArray().astype(float)
    inner = (slice(None), slice(8, -8), slice(8, -8))
    assert np.abs(out.ReadAsArray().astype(float) - ref)[inner].mean() < 0.02 * ref[inner].std()


def test_a_ratio_near_one_is_refused(qgis_app, pair, tmp_path):
    ms = _copy_with_gt(pair["MS"], str(tmp_path / "same.tif"),
                       lambda gt: [gt[0], gt[1] * 0.3, 0, gt[3], 0, gt[5] * 0.3])
    _expect_error({**pair, "MS": ms, "SENSOR": "generic"}, str(tmp_path / "o.tif"), "only 1.2 times the PAN's")


def test_a_skysat_like_ratio_is_refused_with_the_measured_ratio_and_the_command(qgis_app, pair, tmp_path):
    """A 0.8 m PAN with a 1.0 m MS (ratio 1.25, SkySat-like) was refused as "(about) the same pixel size: there is
    nothing to sharpen": the message gives the measured ratio, the 1.5 the plugin needs, and a command that makes a
    pair that fuses without making the PAN finer than it is (QA: the command resampled the PAN to half the MS
    pixel): the MS averaged to twice the PAN pixel."""
    pan = _copy_with_gt(pair["PAN"], str(tmp_path / "sky pan.tif"), lambda gt: [gt[0], 0.8, 0, gt[3], 0, -0.8])
    ms = _copy_with_gt(pair["MS"], str(tmp_path / "ms10.tif"), lambda gt: [gt[0], 1.0, 0, gt[3], 0, -1.0])
    _expect_error({**pair, "PAN": pan, "MS": ms, "SENSOR": "generic"}, str(tmp_path / "o.tif"),
                  re.escape("The MS pixel is only 1.25 times the PAN's: pansharpening needs a PAN at least 1.5 times "
                            "finer than the MS (ratios 1.5-2 are resampled to 2)")
                  + ".*" + re.escape(f"gdalwarp -tr 1.6 1.6 -r average {ms} {tmp_path / 'ms10_2x.tif'}"))


def test_a_ratio_below_1_5_that_differs_by_axis_gives_both(qgis_app, pair, tmp_path):
    """0.72 m PAN, MS 1.0 x 1.1 m: 1.39 x 1.53, under 1.5 together: both axes are given, the command averages the MS
    to twice the PAN pixel."""
    pan = _copy_with_gt(pair["PAN"], str(tmp_path / "p.tif"), lambda gt: [gt[0], 0.72, 0, gt[3], 0, -0.72])
    ms = _copy_with_gt(pair["MS"], str(tmp_path / "m.tif"), lambda gt: [gt[0], 1.0, 0, gt[3], 0, -1.1])
    _expect_error({**pair, "PAN": pan, "MS": ms, "SENSOR": "generic"}, str(tmp_path / "o.tif"),
                  re.escape("only 1.39 (x) x 1.53 (y) times the PAN's") + ".*" + re.escape("gdalwarp -tr 1.44 1.44 "))


def test_ms_finer_than_pan(qgis_app, pair, tmp_path):
    ms = _copy_with_gt(pair["MS"], str(tmp_path / "fine.tif"), lambda gt: [gt[0], gt[1] / 8, 0, gt[3], 0, gt[5] / 8])
    _expect_error({**pair, "MS": ms}, str(tmp_path / "o.tif"), "finer than the PAN")


def test_pan_with_several_bands(qgis_app, pair, tmp_path):
    _expect_error({**pair, "PAN": pair["MS"]}, str(tmp_path / "o.tif"), "one band")


def test_band_count_does_not_fit_sensor(qgis_app, pair, tmp_path):
    _expect_error({**pair, "SENSOR": "wv3"}, str(tmp_path / "o.tif"), "4 bands but sensor .* expects 8")


def test_band_count_error_is_not_preceded_by_a_model_switch(pair, tmp_path):
    """A 4-band MS declared WorldView-3 (8 bands): only the band-count error, named as the dialog names the
    parameter (the log said first that 'the selected MS bands' sent the run to the 4-band model: none were
    selected)."""
    from ksdiff_qgis.engine.errors import InputError
    from ksdiff_qgis.engine.feedback import RecordingFeedback
    from ksdiff_qgis.engine.pipeline import pansharpen

    log = RecordingFeedback()
    with pytest.raises(InputError, match=r"'Sensor' \(SENSOR\)") as refused:
        pansharpen(pair["PAN"], pair["MS"], str(tmp_path / "o.tif"), "wv3", "auto", feedback=log)
    assert not any("selected MS bands" in line for line in log.lines), log.lines
    assert "MS_BANDS" not in str(refused.value)   # no choice of 4 bands makes up 8 (tests/test_colour_interp.py)


def test_no_georeferencing(qgis_app, pair, tmp_path):
    pan = _without_georef(pair["PAN"], str(tmp_path / "nogeo.tif"))
    _expect_error({**pair, "PAN": pan}, str(tmp_path / "o.tif"), "no georeferencing")


def test_no_georeferencing_keeps_gdal_quiet(qgis_app, pair, tmp_path):
    """QA: a PAN without georeferencing printed GDAL's "ERROR 1: Unable to compute a transformation between pixel/line
    and georeferenced coordinates ... SRC_METHOD=NO_GEOTRANSFORM" before the plugin's refusal: QGIS loads an input
    given as a file name when it checks the value (qgis_process does so before any of the algorithm's code), and its
    GDAL provider tries to warp such a raster. The raster parameters of both algorithms now check it quietly (a
    model's copy too); the refusal still says what is wrong. The control: QGIS's own raster parameter, checking the
    same file the same way, is heard."""
    from qgis.core import QgsApplication, QgsProcessingContext, QgsProcessingParameterRasterLayer

    from ksdiff_qgis.algorithms.raster_param import RasterInput

    pan = _without_georef(pair["PAN"], str(tmp_path / "nogeo.tif"))
    heard: list[str] = []
    gdal.PushErrorHandler(lambda _cls, _no, msg: heard.append(msg))   # what would reach the console
    try:
        for alg_id, name in (("ksdiff:pansharpen", "PAN"), ("ksdiff:pansharpen", "MS"), ("ksdiff:assess", "FUSED"),
                             ("ksdiff:assess", "PAN")):
            param = QgsApplication.processingRegistry().algorithmById(alg_id).parameterDefinition(name)
            for p in (param, param.clone()):
                assert isinstance(p, RasterInput)
                assert p.checkValueIsAcceptable(pan, QgsProcessingContext())   # as qgis_process checks a value
        _expect_error({**pair, "PAN": pan}, str(tmp_path / "o.tif"), "no georeferencing")
        ours = list(heard)
        plain = QgsProcessingParameterRasterLayer("PLAIN", "plain")
        assert plain.checkValueIsAcceptable(pan, QgsProcessingContext())
    finally:
        gdal.PopErrorHandler()
    assert not [m for m in ours if "NO_GEOTRANSFORM" in m], ours
    assert [m for m in heard[len(ours):] if "NO_GEOTRANSFORM" in m], heard   # without RasterInput: heard


def test_a_refusal_reaches_the_dialog_log_once_and_the_message_log(qgis_app, pair, tmp_path):
    """Raised as QGIS's own algorithms do, never also reported: a run as the dialog makes it (QgsProcessingAlgorithm.run
    catching the exception) shows the message once in its log and in the Log Messages panel; qgis_process's own
    echo is quieted only there (test_qgis_process_says_a_refusal_once)."""
    from qgis.core import QgsApplication, QgsProcessingContext, QgsProcessingFeedback

    pan = _without_georef(pair["PAN"], str(tmp_path / "nogeo.tif"))
    logged = []

    def heard(text, tag, level):
        logged.append(text)

    log = QgsApplication.messageLog()
    log.messageReceived.connect(heard)
    try:
        alg = QgsApplication.processingRegistry().createAlgorithmById("ksdiff:pansharpen")
        feedback = QgsProcessingFeedback()
        _, ok = alg.run({**pair, "PAN": pan, "OUTPUT": str(tmp_path / "o.tif")}, QgsProcessingContext(), feedback,
                        {}, True)
    finally:
        log.messageReceived.disconnect(heard)
    assert not ok and not os.path.exists(tmp_path / "o.tif")
    assert feedback.textLog().count("no georeferencing") == 1, feedback.textLog()
    assert any("no georeferencing" in text for text in logged)


def test_gcp_only_georeferencing(qgis_app, pair, tmp_path):
    """An MS georeferenced by ground control points only (no grid): the message says so and how to fix it."""
    ms = _without_georef(pair["MS"], str(tmp_path / "gcp.tif"))
    s, ds = gdal.Open(pair["MS"]), gdal.Open(ms, gdal.GA_Update)
    gt = s.GetGeoTransform()
    gcps = [gdal.GCP(gt[0] + c * gt[1], gt[3] + r * gt[5], 0, c, r) for c, r in ((0, 0), (60, 0), (0, 40), (60, 40))]
    ds.SetGCPs(gcps, s.GetProjection())
    ds = None
    _expect_error({**pair, "MS": ms}, str(tmp_path / "o.tif"), "ground control points only.*warp it first")


def test_truncated_file(qgis_app, pair, tmp_path):
    bad = str(tmp_path / "trunc.tif")
    # an uncompressed copy whose pixel data is cut short: the header opens, the last rows are missing
    gdal.Translate(bad, pair["MS"], creationOptions=["COMPRESS=NONE", "TILED=NO"])
    size = os.path.getsize(bad)
    with open(bad, "r+b") as f:
        f.truncate(size // 2)
    _expect_error({**pair, "MS": bad}, str(tmp_path / "o.tif"),
                  "(?i)unreadable or truncated|could not load|cannot open")


def test_a_damaged_block_names_its_file(qgis_app, pair, tmp_path):
    """A block that cannot be decoded shows only when a tile reaches it: the message names the input."""
    bad = str(tmp_path / "pan_damaged.tif")
    gdal.Translate(bad, pair["PAN"], creationOptions=["TILED=YES", "BLOCKXSIZE=64", "BLOCKYSIZE=64",
                                                       "COMPRESS=DEFLATE"])
    ds = gdal.Open(bad)
    offset = int(ds.GetRasterBand(1).GetMetadataItem("BLOCK_OFFSET_2_2", "TIFF"))  # a block mid-scene
    ds = None
    with open(bad, "r+b") as f:
        f.seek(offset)
        f.write(b"\xff" * 256)
    _expect_error({**pair, "PAN": bad}, str(tmp_path / "o.tif"),
                  '(?s)input ".*pan_damaged.tif" failed.*damaged or truncated')


def test_not_a_raster(qgis_app, pair, tmp_path):
    bad = tmp_path / "garbage.tif"
    bad.write_bytes(b"this is not a GeoTIFF" * 100)
    _expect_error({**pair, "PAN": str(bad)}, str(tmp_path / "o.tif"), "cannot open the PAN raster")


def test_output_not_writable(qgis_app, pair, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    import processing
    from qgis.core import QgsProcessingException

    with pytest.raises(QgsProcessingException, match="is a file, not a folder"):
        processing.run("ksdiff:pansharpen", {**pair, "OUTPUT": str(blocker / "out.tif")})


def test_an_output_through_a_missing_folder_is_refused_before_any_pixel(qgis_app, pair, tmp_path):
    """QA: OUTPUT 'e/nodir/../o3.tif' with no 'nodir' passed the checks (they read the normalised 'e/o3.tif'),
    fused the whole scene, then failed at the final rename with a raw "[Errno 2] ... -> 'e/nodir/../o3.tif'"."""
    import processing
    from qgis.core import QgsProcessingException

    out = os.path.join(str(tmp_path), "nodir", os.pardir, "o3.tif")
    missing = re.escape(f"\"{tmp_path / 'nodir'}\"")
    with pytest.raises(QgsProcessingException, match=f"the output folder {missing} does not exist"):
        processing.run("ksdiff:pansharpen", {**pair, "METHOD": "brovey", "OUTPUT": out})
    # no partial, no output, no folder made
    assert not [p for p in os.listdir(tmp_path) if "o3" in p or p == "nodir"], os.listdir(tmp_path)


def test_a_missing_file_is_called_missing(tmp_path):
    from ksdiff_qgis.engine.errors import InputError
    from ksdiff_qgis.engine.raster_io.info import open_dataset

    with pytest.raises(InputError, match="PAN raster .*missing.tif.*: the file does not exist"):
        open_dataset(str(tmp_path / "missing.tif"), "PAN")


def test_a_pseudo_file_system_is_not_a_full_disk():
    """/proc holds no files and reports 0 bytes free: that is not "no space left on device"."""
    from ksdiff_qgis.engine.raster_io.writer import write_failure

    msg = write_failure("/proc/x.tif", "creating it", ["Attempt to create new tiff file failed: No such file"])
    assert "no space left" not in msg and "No such file" in msg, msg


def test_cancel_halfway_leaves_nothing_and_keeps_old_output(qgis_app, pair, tmp_path):
    import processing
    from qgis.core import QgsProcessingException, QgsProcessingFeedback

    out = tmp_path / "o.tif"
    out.write_bytes(b"previous result")
    fb = QgsProcessingFeedback()
    seen = []

    def on_progress(p):
        seen.append(p)
        if p >= 30:
            fb.cancel()

    fb.progressChanged.connect(on_progress)
    with pytest.raises(QgsProcessingException, match="(?i)cancel"):
        processing.run("ksdiff:pansharpen", {**pair, "TILE_SIZE": 64, "OVERLAP": 8, "OUTPUT": str(out)}, feedback=fb)
    assert 30 <= max(seen) < 100
    assert out.read_bytes() == b"previous result"
    assert not [f for f in os.listdir(tmp_path) if "partial" in f]


def test_different_crs_is_reprojected_with_warning(qgis_app, pair, tmp_path):
    import processing
    from qgis.core import QgsProcessingFeedback

    ms = str(tmp_path / "ms_4326.tif")
    gdal.Warp(ms, pair["MS"], dstSRS="EPSG:4326", resampleAlg="near")
    warnings = []

    class Fb(QgsProcessingFeedback):
        def pushWarning(self, msg):  # noqa: N802
            warnings.append(msg)
            super().pushWarning(msg)

    out = str(tmp_path / "o.tif")
    processing.run("ksdiff:pansharpen", {**pair, "MS": ms, "OUTPUT": out}, feedback=Fb())
    ds = gdal.Open(out)
    assert ds.RasterCount == 4 and ds.RasterXSize > 200
    assert any("another CRS" in w for w in warnings)


def test_ms_bands_of_different_types_are_refused(qgis_app, pair, tmp_path):
    """A VRT stacking three UInt16 bands and a Float32 one: every band was read as band 1's type (the float band
    became 0/1)."""
    for i in range(4):
        gdal.Translate(str(tmp_path / f"s{i}.tif"), pair["MS"], bandList=[i + 1],
                       outputType=gdal.GDT_Float32 if i == 3 else gdal.GDT_UInt16)
    parts = [str(tmp_path / f"s{i}.tif") for i in range(4)]
    gdal.BuildVRT(str(tmp_path / "sep.vrt"), parts, separate=True).FlushCache()
    _expect_error({**pair, "MS": str(tmp_path / "sep.vrt")}, str(tmp_path / "o.tif"), "different data types")


def test_signed_bytes_and_palettes_are_refused(qgis_app, pair, tmp_path):
    signed = str(tmp_path / "signed.tif")
    gdal.Translate(signed, pair["MS"], outputType=gdal.GDT_Byte, scaleParams=[[0, 2047, 0, 127]],
                   creationOptions=["PIXELTYPE=SIGNEDBYTE"])
    _expect_error({**pair, "MS": signed}, str(tmp_path / "o.tif"), "signed 8-bit")

    def palette(ds):
        table = gdal.ColorTable()
        table.SetColorEntry(1, (255, 0, 0, 255))
        ds.GetRasterBand(1).SetColorTable(table)

    pan = str(tmp_path / "pan_byte.tif")
    gdal.Translate(pan, pair["PAN"], outputType=gdal.GDT_Byte, scaleParams=[[0, 2047, 0, 255]])
    ds = gdal.Open(pan, gdal.GA_Update)
    palette(ds)
    ds = None
    _expect_error({**pair, "PAN": pan}, str(tmp_path / "o2.tif"), "palette indices")


def test_overviews_on_the_inputs_change_nothing(pair, tmp_path):
    """A PAN with nearest-neighbour overviews (gdaladdo's and QGIS's pyramid default): the scene statistics and the
    registration were read from them (GSA moved by up to 253 DN, the PAN/MS offset flipped); now the same pixels."""
    from ksdiff_qgis.engine.pipeline import pansharpen

    with_ovr = str(tmp_path / "pan_ovr.tif")
    gdal.Translate(with_ovr, pair["PAN"])
    ds = gdal.Open(with_ovr, gdal.GA_Update)
    ds.BuildOverviews("NEAREST", [2, 4, 8])
    ds = None
    a = pansharpen(pair["PAN"], pair["MS"], str(tmp_path / "a.tif"), "wv2", "gsa")
    b = pansharpen(with_ovr, pair["MS"], str(tmp_path / "b.tif"), "wv2", "gsa")
    assert np.array_equal(gdal.Open(a.output_path).ReadAsArray(), gdal.Open(b.output_path).ReadAsArray())
    assert a.warnings == b.warnings


def test_scale_offset_is_said_and_kept_on_the_output(pair, tmp_path):
    """Reflectance stored as integers with a scale/offset (Landsat Collection 2: x 2.75e-5 - 0.2): fused as the stored
    numbers (said, with the caveat for ratio methods), and the output carries the same scale/offset so QGIS reads it
    in the same units (it was dropped silently)."""
    from ksdiff_qgis.engine.pipeline import pansharpen

    ms = str(tmp_path / "scaled.tif")
    ds = gdal.Translate(ms, pair["MS"])
    for b in range(1, 5):
        ds.GetRasterBand(b).SetScale(2.75e-5)
        ds.GetRasterBand(b).SetOffset(-0.2)
    ds = None
    res = pansharpen(pair["PAN"], ms, str(tmp_path / "o.tif"), "wv2", "mtf_glp_hpm", ms_bands=[3, 2, 1])
    notes = [w for w in res.warnings if "scale/offset" in w]
    assert len(notes) == 1 and "band 3: x 2.75e-05 - 0.2" in notes[0] and "ratio-based" in notes[0]
    out = gdal.Open(res.output_path)
    assert [(out.GetRasterBand(b).GetScale(), out.GetRasterBand(b).GetOffset()) for b in (1, 2, 3)] == \
        [(2.75e-5, -0.2)] * 3
    plain = pansharpen(pair["PAN"], pair["MS"], str(tmp_path / "p.tif"), "wv2", "mtf_glp_hpm")
    assert not [w for w in plain.warnings if "scale/offset" in w]
    assert gdal.Open(plain.output_path).GetRasterBand(1).GetScale() in (None, 1.0)


def test_different_nodata_per_band_is_warned(pair, tmp_path):
    from ksdiff_qgis.engine.pipeline import pansharpen

    ms = str(tmp_path / "nd.vrt")   # a VRT holds a nodata value per band (a GeoTIFF one for all)
    ds = gdal.Translate(ms, pair["MS"], format="VRT")
    ds.GetRasterBand(2).SetNoDataValue(2047)
    ds = None
    res = pansharpen(pair["PAN"], ms, str(tmp_path / "o.tif"), "wv2", "mtf_glp_hpm")
    assert any("different nodata values (band 1: 0; band 2: 2047; band 3: 0; band 4: 0)" in w for w in res.warnings), \
        res.warnings
    # QA140: with MS_BANDS the first fused band's value is the one used, and bands left out are not listed
    ds = gdal.Open(ms, gdal.GA_Update)
    ds.GetRasterBand(3).SetNoDataValue(2047)
    ds = None
    picked = pansharpen(pair["PAN"], ms, str(tmp_path / "p.tif"), "generic", "gsa", ms_bands=[2, 3])
    assert not [w for w in picked.warnings if "different nodata values" in w], picked.warnings
    mixed = pansharpen(pair["PAN"], ms, str(tmp_path / "m.tif"), "generic", "gsa", ms_bands=[2, 4])
    said = [w for w in mixed.warnings if "different nodata values" in w]
    assert len(said) == 1 and "(band 2: 2047; band 4: 0): band 2's, 2047, is used" in said[0], said


def test_metres_under_a_crs_in_degrees_are_called_a_wrong_crs(pair, tmp_path):
    """A PAN whose CRS says degrees over coordinates in metres (a wrong CRS set on a QGIS layer) read as 'the MS
    pixels are finer than the PAN pixels: swapped?'."""
    from osgeo import osr

    from ksdiff_qgis.engine.errors import InputError
    from ksdiff_qgis.engine.pipeline import pansharpen

    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    with pytest.raises(InputError, match="cannot be longitudes and latitudes.*EPSG:4326.*the CRS is wrong"):
        pansharpen(pair["PAN"], pair["MS"], str(tmp_path / "o.tif"), "wv2", "mtf_glp_hpm", pan_crs=srs.ExportToWkt())
    model = tmp_path / "dir.onnx"
    model.mkdir()
    with pytest.raises(InputError, match="is a folder, not an ONNX file"):
        pansharpen(pair["PAN"], pair["MS"], str(tmp_path / "o.tif"), "wv2", "ksdiff", model_path=str(model))


def test_mirrored_and_gridless_rasters(pair, tmp_path):
    """An MS mirrored east-west (negative pixel width) is read flipped and fuses exactly like the original (it was
    refused as "finer than the PAN ... swapped?", then warped with a warning; test_flipped_ms has the details); a
    mirrored PAN, and a raster with a CRS but no geotransform, get messages that name what is wrong (they were "must
    be north-up" and a raw GDAL warp error)."""
    from ksdiff_qgis.engine.errors import InputError
    from ksdiff_qgis.engine.pipeline import pansharpen

    def mirrored(src: str, dst: str) -> str:
        ds = gdal.Translate(dst, src)
        gt = list(ds.GetGeoTransform())
        ds.SetGeoTransform([gt[0] + ds.RasterXSize * gt[1], -gt[1], 0, gt[3], 0, gt[5]])
        for b in range(1, ds.RasterCount + 1):
            band = ds.GetRasterBand(b)
            band.WriteArray(band.ReadAsArray()[:, ::-1])
        ds = None
        return dst

    ms = mirrored(pair["MS"], str(tmp_path / "ms_m.tif"))
    a = pansharpen(pair["PAN"], pair["MS"], str(tmp_path / "a.tif"), "wv2", "mtf_glp_hpm")
    b = pansharpen(pair["PAN"], ms, str(tmp_path / "b.tif"), "wv2", "mtf_glp_hpm")
    assert not any("reprojected" in w for w in b.warnings), b.warnings
    fa, fb = gdal.Open(a.output_path), gdal.Open(b.output_path)
    assert fa.GetGeoTransform() == fb.GetGeoTransform()
    assert np.array_equal(fa.ReadAsArray(), fb.ReadAsArray())
    with pytest.raises(InputError, match="PAN raster is mirrored east-west"):
        pansharpen(mirrored(pair["PAN"], str(tmp_path / "pan_m.tif")), pair["MS"], str(tmp_path / "c.tif"), "wv2",
                   "mtf_glp_hpm")
    gridless = str(tmp_path / "gridless.tif")
    src = gdal.Open(pair["PAN"])
    ds = gdal.GetDriverByName("GTiff").Create(gridless, src.RasterXSize, src.RasterYSize, 1, gdal.GDT_UInt16)
    ds.SetProjection(src.GetProjection())
    ds.GetRasterBand(1).WriteArray(src.ReadAsArray())
    ds = None
    with pytest.raises(InputError, match="has a coordinate reference system but no geotransform"):
        pansharpen(gridless, pair["MS"], str(tmp_path / "d.tif"), "wv2", "mtf_glp_hpm")
    assert not [f for f in os.listdir(tmp_path) if f[0] in "cd" and f.endswith(".tif")]


def test_a_compound_crs_is_its_horizontal_crs(pair, tmp_path):
    """A PAN in UTM 31N + EGM96 height and an MS in UTM 31N: the same pixel grid (it was taken as another CRS: an
    extra cubic warp of the MS and a reprojection warning)."""
    from osgeo import osr

    from ksdiff_qgis.engine.pipeline import pansharpen

    pan = str(tmp_path / "pan_compound.tif")
    ds = gdal.Translate(pan, pair["PAN"])
    srs = osr.SpatialReference()
    srs.SetFromUserInput("EPSG:32631+5773")
    ds.SetProjection(srs.ExportToWkt())
    ds = None
    a = pansharpen(pair["PAN"], pair["MS"], str(tmp_path / "a.tif"), "wv2", "mtf_glp_hpm")
    b = pansharpen(pan, pair["MS"], str(tmp_path / "b.tif"), "wv2", "mtf_glp_hpm")
    assert not [w for w in b.warnings if "another CRS" in w]
    assert np.array_equal(gdal.Open(a.output_path).ReadAsArray(), gdal.Open(b.output_path).ReadAsArray())


def test_nan_holes_without_nodata_stay_holes_in_the_scene_statistics(tmp_path):
    """Float32 inputs with NaN holes and no nodata value: the scene statistics' averaged reads keep them holes (they
    became 0: a false "53 % of its sampled pixels are 0" fill warning and a 47.7-pixel misregistration)."""
    from ksdiff_qgis.engine.pipeline import pansharpen

    data = Path(__file__).resolve().parent / "data"
    paths = {}
    for role in ("pan", "ms"):
        paths[role] = str(tmp_path / f"{role}_nan.tif")
        src = gdal.Open(str(data / f"wv2_nodata_{role}.tif"))
        ds = gdal.GetDriverByName("GTiff").Create(paths[role], src.RasterXSize, src.RasterYSize, src.RasterCount,
                                                  gdal.GDT_Float32)
        ds.SetGeoTransform(src.GetGeoTransform())
        ds.SetProjection(src.GetProjection())
        for b in range(1, src.RasterCount + 1):
            arr = src.GetRasterBand(b).ReadAsArray().astype(np.float32)
            arr[arr == 0] = np.nan
            ds.GetRasterBand(b).WriteArray(arr)
        ds = None
    res = pansharpen(paths["pan"], paths["ms"], str(tmp_path / "o.tif"), "wv2", "gsa")
    assert not [w for w in res.warnings if "are 0" in w or "PAN pixels apart" in w and "47" in w], res.warnings
    # the output's holes are NaN and declared so (they were -3.4e38 with no nodata declared)
    out = gdal.Open(res.output_path)
    band = out.GetRasterBand(1)
    assert math.isnan(band.GetNoDataValue())
    data = band.ReadAsArray()
    assert np.isnan(data).mean() > 0.2 and np.nanmin(data) > -1e30


def test_a_sheared_ms_is_called_sheared(pair, tmp_path):
    """An MS whose rows are sheared (no rotation of its columns): warped, and the warning says sheared (it said
    "rotated by 0.0 degrees")."""
    from ksdiff_qgis.engine.pipeline import pansharpen

    ms = _copy_with_gt(pair["MS"], str(tmp_path / "shear.tif"), lambda gt: [gt[0], gt[1], 0.002, gt[3], 0, gt[5]])
    res = pansharpen(pair["PAN"], ms, str(tmp_path / "o.tif"), "wv2", "mtf_glp_hpm")
    assert any("The MS raster is sheared" in w for w in res.warnings), res.warnings
