"""QA of what a GIS analyst reads in a run's log (2026-12-08, real crops of the data cache): each line says a fact in
plain words with its unit, lines that count say it over the same values, one line per fact, advice only where it
applies, and the output's tags say what the log says."""
from __future__ import annotations

import re

import numpy as np
import pytest
from osgeo import gdal

from ksdiff_qgis.engine import runtime
from ksdiff_qgis.engine.deps import has_nvidia_gpu
from ksdiff_qgis.engine.feedback import RecordingFeedback
from ksdiff_qgis.engine.model_card import bundled_cards
from ksdiff_qgis.engine.pipeline import pansharpen

needs_wv2 = pytest.mark.skipif("wv2" not in bundled_cards(), reason="no bundled wv2 model")


def _lines_with(lines: list[str], text: str) -> list[str]:
    return [line for line in lines if text in line]


@pytest.fixture(scope="module")
def pair1(cached):
    """WorldView-2 pair 1 (600 x 600 PAN, UInt16 with NBITS=11, nodata 0; PAN and MS 1.4 PAN pixels apart)."""
    return str(cached("wv2/pair1_pan.tif")), str(cached("wv2/pair1_ms.tif"))


@pytest.fixture(scope="module")
def pair1_ksdiff(pair1, tmp_path_factory):
    """KSDiff forced on pair 1, as the QA ran it: (result, log lines)."""
    fb = RecordingFeedback()
    res = pansharpen(*pair1, str(tmp_path_factory.mktemp("ksd") / "ksd.tif"), "wv2", "ksdiff", device="cpu",
                     feedback=fb)
    return res, fb.lines


@needs_wv2
def test_the_noise_pull_line_says_what_it_does_to_the_output_with_a_unit(pair1_ksdiff):
    """QA: "noise pull: the PAN's noise 8.40 (on the flattest quarter of the statistics sample; detail up to 1.5 x
    that counts as noise and takes MTF-GLP-HPM's)": jargon, no unit, and it hid that flat noisy areas of a KSDiff
    output are blended towards MTF-GLP-HPM."""
    _, lines = pair1_ksdiff
    said = _lines_with(lines, "blended towards MTF-GLP-HPM's")
    assert len(said) == 1, lines
    assert re.search(r"In flat, noisy areas \(water, shadow\), where the PAN's detail is within 1\.5 × its noise "
                     r"\(8\.\d DN\), KSDiff's detail is blended towards MTF-GLP-HPM's so sensor noise is not "
                     r"amplified\.$", said[0]), said
    assert not _lines_with(lines, "noise pull") and not _lines_with(lines, "statistics sample"), lines


@needs_wv2
def test_the_floor_and_range_lines_count_the_same_written_values(pair1_ksdiff):
    """QA: "117073 of 2334784 fused values (5.01%; tiles counted with their borders) ... eased smoothly towards black"
    then "427 of 1440000 fused values (0.030%) ... out of the output's range (min 0.0, ...)": two denominators, the
    first over tile borders never written; and "min 0.0" where the output's lowest value is 1 (0 is its nodata),
    the move never said. Both lines now count the values written, and the move off nodata is said."""
    res, lines = pair1_ksdiff
    written = res.width * res.height * 4
    floor = _lines_with(lines, "eased smoothly towards black")
    clip = _lines_with(lines, "were out of range")
    assert len(floor) == 1 and len(clip) == 1, lines
    floor_n = re.search(r"(\d+) of (\d+) fused values \(([\d.]+)%\) came out under 20%", floor[0])
    clip_n = re.search(r"(\d+) of (\d+) fused values \(([\d.]+)%\) were out of range", clip[0])
    assert floor_n and clip_n, (floor, clip)
    assert int(floor_n[2]) == int(clip_n[2]) == written, (floor, clip)
    assert "borders" not in floor[0]
    # the values that rounded onto the nodata value 0 were written as 1: said, and true of the file
    moved = re.search(r"; (\d+) values that rounded to 0, the output's nodata value, were written as 1\.$", clip[0])
    assert moved and int(moved[1]) > 0, clip
    out = gdal.Open(res.output_path).ReadAsArray()
    assert out.min() == 1 and int(moved[1]) <= int((out == 1).sum())


@needs_wv2
def test_an_11_bit_clip_names_the_nbits_maximum(pair1_ksdiff):
    """QA: "out of the output's range" on a UInt16 output clipped at NBITS=11's 2047."""
    _, lines = pair1_ksdiff
    clip = _lines_with(lines, "were out of range")
    assert clip and "those above 2047, the 11-bit maximum (NBITS), were written as 2047" in clip[0], clip
    assert "output's range" not in clip[0]


@needs_wv2
def test_the_offset_warning_is_the_fact_in_pixels_and_metres_and_the_action(pair1_ksdiff):
    """QA: 497-519 characters with jargon ("the self-check, which degrades the scene, sees only part of the
    offset"). Now the offset in PAN pixels and metres, what it does to the output, and the option that fixes it."""
    _, lines = pair1_ksdiff
    said = _lines_with(lines, "PAN pixels apart")
    assert len(said) == 1 and said[0].startswith("WARNING "), lines
    line = said[0][len("WARNING "):]
    assert len(line) < 320, (len(line), line)
    assert re.match(r"The PAN and the MS are 1\.4 PAN pixels apart \(0\.7\d? m; ", line), line
    assert "expect colour fringes along edges" in line and "(COREGISTER)" in line, line
    assert "self-check" not in line and "degrades" not in line


@needs_wv2
def test_a_cpu_run_without_a_gpu_gives_no_gpu_advice(pair1_ksdiff):
    """QA: "auto: this ONNX Runtime build has no CUDA provider (for an NVIDIA GPU, install the GPU build: …, Package
    'NVIDIA GPU build'); using CPU." on every run of a machine without an NVIDIA GPU."""
    if has_nvidia_gpu():
        pytest.skip("this machine has an NVIDIA GPU")
    _, lines = pair1_ksdiff
    assert "Model wv2.onnx: running on the CPU." in lines, lines
    assert not _lines_with(lines, "NVIDIA") and not _lines_with(lines, "CUDA"), lines


def test_the_gpu_advice_comes_with_a_gpu_and_names_one_package_option(qgis_app):
    """The GPU build is advised only when nvidia-smi finds a GPU, naming the installer's option exactly ('NVIDIA GPU
    build' matched two of them)."""
    from qgis.core import QgsApplication

    cpu = runtime.CPU
    assert runtime.choose_providers("auto", [cpu], gpu=False).reason == ""
    with_gpu = runtime.choose_providers("auto", [cpu], gpu=True).reason
    assert runtime.GPU_INSTALL in with_gpu and "NVIDIA GPU" in with_gpu, with_gpu
    options = QgsApplication.processingRegistry().algorithmById("ksdiff:install_runtime") \
        .parameterDefinition("PACKAGE").options()
    named = re.search(r"Package '([^']+)'", runtime.GPU_INSTALL)[1]
    # one option only, as the dialog shows it (its package key after it)
    assert [o for o in options if o.startswith(named)] == [f"{named} [onnxruntime-gpu]"], (named, options)
    # DEVICE cuda on a machine without a GPU says so instead of advising an install
    assert runtime.choose_providers("cuda", [cpu], gpu=False).reason == "no NVIDIA GPU was found (nvidia-smi)"


@needs_wv2
def test_the_tile_tag_and_the_log_say_the_same_tiles(pair1, pair1_ksdiff, tmp_path):
    """QA: KSDIFF_TILE_LAYOUT "strips of 316 px" for a 2 x 2 grid; MTF-GLP-HPM's tag "aligned of 512 px, overlap 0"
    and its log "4 tile(s) of 512 px" on a 600 x 600 output, whose tiles are 512 and 88 px."""
    res, lines = pair1_ksdiff
    tag = gdal.Open(res.output_path).GetMetadataItem("KSDIFF_TILE_LAYOUT")
    assert tag == "4 tiles (a 2 x 2 grid) of 316x316 px, overlap 32 px", tag
    fusing = _lines_with(lines, "Fusing with KSDiff")
    assert fusing and fusing[0].endswith("in 4 tiles (a 2 x 2 grid) of 316x316 px (512 at most, evened out over the "
                                         "output), overlap 32 px."), fusing
    fb = RecordingFeedback()
    hpm = pansharpen(*pair1, str(tmp_path / "hpm.tif"), "wv2", "mtf_glp_hpm", feedback=fb)
    tag = gdal.Open(hpm.output_path).GetMetadataItem("KSDIFF_TILE_LAYOUT")
    assert tag == "4 tiles (a 2 x 2 grid) of up to 512x512 px on the output's blocks, no overlap needed", tag
    assert any(line.endswith(f" in {tag}.") for line in fb.lines if line.startswith("Fusing with")), fb.lines


@pytest.fixture(scope="module")
def auto_fp32(data_dir, tmp_path_factory):
    """METHOD auto with PRECISION fp32 on the WorldView-2 fixture (a crop of pair 1): (result, log lines)."""
    fb = RecordingFeedback()
    res = pansharpen(str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"),
                     str(tmp_path_factory.mktemp("fp32") / "o.tif"), "wv2", "auto", device="cpu", precision="fp32",
                     feedback=fb)
    return res, fb.lines


@needs_wv2
def test_debug_lines_are_short_and_say_float32(auto_fp32):
    """QA: debug lines printed by qgis_process: "output at PAN offset (0, 0); tile margin 33 px; method ksdiff", "KSDiff
    detail gains fitted on the Wald sample (diagnostic, not applied): …", a 400-character model line, and with
    PRECISION fp32 "tiles run per-tile kernels on the plain backbone", never fp32."""
    res, lines = auto_fp32
    if res.method != "ksdiff":
        pytest.skip("the self-check did not keep KSDiff on this build")
    debug = [line[len("DEBUG "):] for line in lines if line.startswith("DEBUG ")]
    assert debug and all(len(line) <= 200 for line in debug), [len(line) for line in debug]
    assert not _lines_with(lines, "detail gains") and not _lines_with(lines, "plain backbone"), lines
    assert not _lines_with(lines, "PAN offset (0, 0)") and not _lines_with(lines, "method ksdiff"), lines
    model = _lines_with(debug, "model wv2.onnx: ")
    assert len(model) == 1 and "tiles run in float32 (PRECISION fp32)" in model[0], model


@needs_wv2
def test_sam_carries_its_unit_in_the_selfcheck_rows(auto_fp32):
    """QA: the pansharpen log's SAM had no unit (ksdiff:assess says degrees)."""
    _, lines = auto_fp32
    rows = [line for line in lines if re.match(r"^[^:]+: Wald ERGAS \d+\.\d{3}, SAM", line)]
    assert len(rows) >= 2 and all(re.search(r", SAM \d+\.\d{3}°; ", row) for row in rows), rows


@pytest.fixture(scope="module")
def assessed(qgis_app, pair1, pair1_ksdiff, tmp_path_factory):
    """ksdiff:assess (SENSOR auto) of the KSDiff fusion of pair 1 against its PAN and MS: the log lines."""
    import processing
    from test_issue14_processing import Log

    res, _ = pair1_ksdiff
    log = Log()
    processing.run("ksdiff:assess", {"FUSED": res.output_path, "PAN": pair1[0], "MS": pair1[1],
                                     "OUTPUT_HTML": str(tmp_path_factory.mktemp("assess") / "r.html")}, feedback=log)
    return log.lines


@needs_wv2
def test_assess_says_ergas_and_sam_as_the_pansharpen_log(assessed):
    """QA: ksdiff:assess said "R-ERGAS: 2.9070" where the pansharpen log says ERGAS with 3 decimals."""
    for label in ("R-ERGAS", "R-SAM (degrees)"):
        said = [line for line in assessed if line.startswith(f"{label}: ")]
        assert len(said) == 1 and re.fullmatch(rf"{re.escape(label)}: \d+\.\d{{3}}", said[0]), (label, assessed)
    assert any(re.fullmatch(r"HQNR: \d\.\d{4}", line) for line in assessed), assessed   # the 0-1 indices: 4


@needs_wv2
def test_assess_does_not_nag_when_the_fusions_tag_agrees(pair1_ksdiff, assessed):
    """QA: "no product metadata: set SENSOR to be sure" although FUSED's KSDIFF_SENSOR=wv2 agreed with the guess."""
    res, _ = pair1_ksdiff
    assert gdal.Open(res.output_path).GetMetadataItem("KSDIFF_SENSOR") == "wv2"
    guess = _lines_with(assessed, "SENSOR=auto")
    assert len(guess) == 1 and "[wv2]" in guess[0], assessed
    assert "to be sure" not in guess[0] and "FUSED's tag KSDIFF_SENSOR=wv2 agrees" in guess[0], guess


def _sentinel2_like(cached, folder) -> tuple[str, str]:
    """A product of no known sensor: 4 Sentinel-2 10 m bands of a real scene as the MS at 40 m and their mean as a
    10 m PAN (ratio 4, UInt16), 512 x 512 PAN pixels."""
    src = gdal.Open(str(cached("sentinel2/s2_10m.tif")))
    bands = src.ReadAsArray(0, 0, 512, 512).astype(np.float64)[:4]
    gt = list(src.GetGeoTransform())
    gt[1], gt[5] = 10.0, -10.0
    paths = []
    for name, arr, step in (("pan", bands.mean(0)[None], 10.0), ("ms", bands.reshape(4, 128, 4, 128, 4).mean((2, 4)),
                                                                   40.0)):
        path = str(folder / f"s2_{name}.tif")
        ds = gdal.GetDriverByName("GTiff").Create(path, arr.shape[2], arr.shape[1], arr.shape[0], gdal.GDT_UInt16)
        ds.SetGeoTransform([gt[0], step, 0, gt[3], 0, -step])
        ds.SetProjection(src.GetProjection())
        ds.WriteArray(np.round(arr).astype(np.uint16))
        ds = None
        paths.append(path)
    return paths[0], paths[1]


@needs_wv2
def test_an_unrecognised_sensor_and_its_network_are_one_actionable_line(cached, tmp_path):
    """QA (Sentinel-2-like product): "no known sensor has ratio 4 with 4 MS bands and a PAN pixel 10.00 m; set
    'Sensor' (SENSOR) if you know it", then "generic sensor: using the bundled network … wv2.onnx; compare with a
    classical method" right above the self-check that does that comparison. One line now; the advice to compare
    only when METHOD ksdiff is forced (no self-check)."""
    pan, ms = _sentinel2_like(cached, tmp_path)
    start = "WARNING Sensor not recognised (4 MS bands, ratio 4, PAN pixel 10.00 m): generic MTF gains (0.3 for MS, " \
            "0.15 for PAN) and the WorldView-2 network (wv2.onnx); "
    for method, check in (("auto", "the self-check below compares it with the classical methods. "),
                          ("ksdiff", "compare it with a classical method (METHOD auto's self-check does so on the "
                                     "scene). ")):
        fb = RecordingFeedback()
        pansharpen(pan, ms, str(tmp_path / f"{method}.tif"), "auto", method, device="cpu", feedback=fb,
                   check_only=method == "auto")
        said = _lines_with(fb.lines, "wv2.onnx") + _lines_with(fb.lines, "[generic]")
        assert said and said[0] == start + check + "Set 'Sensor' (SENSOR) if you know the sensor.", fb.lines
        assert len([line for line in said if not line.startswith(("Model ", "DEBUG "))]) == 1, fb.lines
        assert not _lines_with(fb.lines, "compare with a classical method"), fb.lines
    # a classical method: the sensor line alone
    fb = RecordingFeedback()
    pansharpen(pan, ms, str(tmp_path / "hpm.tif"), "auto", "mtf_glp_hpm", feedback=fb)
    said = _lines_with(fb.lines, "Sensor not recognised")
    assert said == ["WARNING Sensor not recognised (4 MS bands, ratio 4, PAN pixel 10.00 m): generic MTF gains (0.3 "
                    "for MS, 0.15 for PAN). Set 'Sensor' (SENSOR) if you know the sensor."], fb.lines
