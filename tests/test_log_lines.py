"""QA of what a GIS analyst reads in a run's log (2026-12-08, real crops of the data cache): each line says a fact in
plain words with its unit, lines that count say it over the same values, one line per fact, advice only where it
applies, and the output's tags say what the log says."""
from __future__ import annotations

import re

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
    assert sum("NVIDIA GPU build" in o for o in options) == 2, options
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
