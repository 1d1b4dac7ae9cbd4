"""The user-facing messages QA reviewed (2026-12-06): each says what was done in the dialog's words, with readable
numbers; diagnostics go to debug info. Real runs on the fixtures where the message comes from a run."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from ksdiff_qgis.engine import labels, runtime, selfcheck
from ksdiff_qgis.engine.clipping import ClipCounter
from ksdiff_qgis.engine.errors import InputError
from ksdiff_qgis.engine.feedback import RecordingFeedback
from ksdiff_qgis.engine.numbers import share
from ksdiff_qgis.engine.pipeline import pansharpen

ROOT = Path(__file__).resolve().parent.parent


def test_the_label_table_matches_the_dialog(qgis_app):
    """The engine's advice names parameters by the labels the dialog shows: the table must follow the algorithm."""
    from ksdiff_qgis.algorithms.pansharpen import PansharpenAlgorithm

    alg = PansharpenAlgorithm()
    alg.initAlgorithm()
    for key, label in labels.PARAMS.items():
        assert alg.parameterDefinition(key).description() == label, key
    assert labels.param("TILE_SIZE") == "'Tile size (PAN pixels, 64–8192)' (TILE_SIZE)"
    assert labels.param("SENSOR", "wv2") == "'Sensor' (SENSOR=wv2)"


def test_a_tiny_share_is_not_printed_as_zero():
    """QA: 18 clipped values of 30 million were said as '0.000%'."""
    assert share(18, 30_000_000) == "< 0.001%"
    assert share(9_000, 30_000_000) == "0.030%"
    assert share(0, 10) == "0%"
    assert share(380, 20_430_400, 2) == "< 0.01%"


def test_the_clip_line_says_the_real_limit_and_what_was_written():
    """QA: 'an integer output type holds them clipped to its range' for UInt16 output clipped at 2047, and '0.000%'
    for 18 of 30 M values. Now: counts without a thousands separator (QA: '28,725' reads as a decimal to German and
    French readers), '< 0.001%', the data's 11-bit top, what was written."""
    fb = RecordingFeedback()
    cc = ClipCounter(2047, ["Blue"], bits=11, type_name="UInt16")
    strip = np.full((1, 1000, 1000), 500.0, np.float32)
    cc.add(np.where(np.arange(1000) < 3, 3000.0, np.where(np.arange(1000) < 18, -2.0, strip)).astype(np.float32))
    for _ in range(29):
        cc.add(strip)
    cc.report(fb, labels.method("ksdiff"))
    line = fb.lines[0]
    assert line.startswith("KSDiff (learned): 18000 of 30000000 fused values (0.060%)"), line
    fb = RecordingFeedback()
    few = ClipCounter(2047, ["Blue"], bits=11)
    hit = strip.copy()
    hit[0, 0, :3] = 3000   # 3 values of 30 million
    few.add(hit)
    for _ in range(29):
        few.add(strip)
    few.report(fb, "KSDiff (learned)")
    assert fb.lines[0].startswith("KSDiff (learned): 3 of 30000000 fused values (< 0.001%)"), fb.lines
    assert "those above 2047, the 11-bit maximum (NBITS), were written as 2047" in line, line
    assert "those below 0 as 0." in line and "clipped to its range" not in line, line
    fb = RecordingFeedback()
    cc = ClipCounter(65535, ["Blue"], type_name="UInt16")
    cc.add(np.array([[[70000.0, 1.0]]], np.float32))
    cc.report(fb, "MTF-GLP-HPM")
    assert "those above 65535, the UInt16 maximum, were written as 65535." in fb.lines[0], fb.lines


def test_a_pan_with_several_bands_says_what_to_check(data_dir, tmp_path):
    """QA: "the PAN raster must have one band; '…/pair1_ms.tif' has 4" (lower case, a Python repr, no way out)."""
    ms = str(data_dir / "wv2_ms.tif")
    with pytest.raises(InputError) as raised:
        pansharpen(ms, str(data_dir / "wv2_pan.tif"), str(tmp_path / "o.tif"), "wv2", "mtf_glp_hpm")
    said = str(raised.value)
    assert said.startswith(f"The PAN raster must have one band; {ms} has 4. Check that PAN and MS are not "
                           "swapped"), said
    assert "'" + ms not in said and "gdal_translate -b N" in said and "Raster > Conversion > Translate" in said


def test_the_gpu_hint_names_the_plugins_installer():
    """QA: 'install onnxruntime-gpu on a machine with an NVIDIA GPU' named a pip package, not the plugin's menu."""
    why = runtime.choose_providers("auto", [runtime.CPU], gpu=True).reason
    assert "Raster > KSDiff > Install ONNX Runtime…, Package 'NVIDIA GPU build'" in why
    assert "onnxruntime-gpu" not in why


@pytest.fixture(scope="module")
def wv2_auto_log(data_dir, tmp_path_factory):
    fb = RecordingFeedback()
    res = pansharpen(str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"),
                     str(tmp_path_factory.mktemp("msg") / "o.tif"), "wv2", "auto", device="cpu", feedback=fb)
    return res, fb.lines


def test_a_run_log_keeps_diagnostics_at_debug_level(wv2_auto_log):
    """QA: the noise pull, the detail gains and the tiles' internals were printed on every run as plain info."""
    res, lines = wv2_auto_log
    if res.method != "ksdiff":
        pytest.skip("the self-check did not keep KSDiff on this build")
    for what in ("In flat, noisy areas", "values divided by", "px of context beyond their edges"):
        said = [line for line in lines if what in line]
        assert said and all(line.startswith("DEBUG ") for line in said), (what, lines)
    assert not [line for line in lines if "detail gains" in line], lines   # a study's diagnostic: not said at all
    device = [line for line in lines if line.startswith("Model wv2.onnx: running on the")]
    assert len(device) == 1 and "normalised" not in device[0], lines
    assert any(line.startswith("Fusing with KSDiff (learned): output ") for line in lines), lines


def test_the_log_names_methods_by_their_labels(wv2_auto_log):
    """QA: the self-check table and its verdict said mtf_glp_hpm, gsa, mtf_glp_fs while the dialog says MTF-GLP-HPM,
    Gram-Schmidt adaptive (GSA), MTF-GLP-FS."""
    _, lines = wv2_auto_log
    prose = [line for line in lines if not line.startswith("DEBUG ")]
    assert any(line.startswith("MTF-GLP-HPM: ") and "Wald ERGAS" in line for line in prose), prose
    assert any(line.startswith("Gram-Schmidt adaptive (GSA): ") for line in prose), prose
    for key in selfcheck.CLASSICAL_CANDIDATES:
        assert not [line for line in prose if re.search(rf"\b{key}\b", line) and "METHOD=" not in line], (key, prose)


def test_the_selfcheck_table_reads_well_without_alignment(wv2_auto_log):
    """QA (desktop, WorldView-2 pair 1): the Processing dialog's Log tab collapses runs of spaces, so the self-check's
    rows, aligned with spaces for qgis_process, came out ragged. Each row now starts with its method's label and a
    colon, figures in the same order, separated by commas and semicolons, with no run of spaces to rely on."""
    _, lines = wv2_auto_log
    start = next(i for i, line in enumerate(lines) if line.startswith("Self-check on ")) + 1
    table = lines[start:start + 1 + len(selfcheck.CLASSICAL_CANDIDATES)]   # the model, then every classical one
    labels_seen = [line.split(":", 1)[0] for line in table]
    assert labels_seen[0] == "KSDiff", table
    assert {selfcheck.label(k) for k in selfcheck.CLASSICAL_CANDIDATES} == set(labels_seen[1:]), table
    order = re.compile(r"^[^:]+: Wald ERGAS [\d.]+, SAM [\d.]+°; full resolution R-ERGAS [\d.]+, checkerboard [\d.]+ "
                       r"\(PAN [\d.]+, MS [\d.]+\)$")
    for line in table:
        assert not re.search(r"\s{2,}", line), line
        assert order.match(line), line


def test_selfcheck_figures_are_rounded_for_processing(wv2_auto_log):
    """QA: SELFCHECK_* outputs printed 16 digits (9.598752695238298): 4 decimals, still numbers."""
    res, _ = wv2_auto_log
    out = res.selfcheck.outputs(selfcheck.DIGITS)
    figures = [v for k, v in out.items() if isinstance(v, float)]
    assert figures and all(v == round(v, 4) for v in figures), out
    assert out["SELFCHECK_CLASSICAL_ERGAS"] == round(res.selfcheck.classical.ergas, 4)


def test_the_shrunk_tile_size_is_explained(data_dir, tmp_path):
    """QA: '4 tile(s) of 316 px' beside a TILE_SIZE default of 512 looked like a bug: the line says why."""
    fb = RecordingFeedback()
    pansharpen(str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), str(tmp_path / "o.tif"), "wv2", "ksdiff",
               tile_size=200, overlap=12, workers=1, device="cpu", feedback=fb)
    said = [line for line in fb.lines if line.startswith("Fusing with")]
    assert len(said) == 1 and "px (200 at most, evened out over the output), overlap 12 px" in said[0], said


def test_the_generic_sensor_line_gives_its_gains_once(data_dir, tmp_path):
    """QA: 'MTF gains 0.3 / 0.15 unless given … generic MTF gains (0.3 MS, 0.15 PAN) are used' in one line."""
    ms3 = str(tmp_path / "ms3.tif")
    gdal.Translate(ms3, str(data_dir / "wv2_ms.tif"), bandList=[1, 2, 3])
    fb = RecordingFeedback()
    pansharpen(str(data_dir / "wv2_pan.tif"), ms3, str(tmp_path / "o.tif"), "auto", "mtf_glp_hpm", feedback=fb)
    line = [line for line in fb.lines if "Sensor not recognised" in line][0]
    assert "0.3 for MS, 0.15 for PAN" in line and line.count("0.15") == 1, line


def test_messages_say_gdal_edit_py_and_nodata():
    """One spelling: `gdal_edit.py` (the name installs ship) and "nodata" in prose ('No data value' is QGIS's)."""
    for path in (ROOT / "ksdiff_qgis").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"gdal_edit(?!\.py)\b", text), path
        strings = re.findall(r'"[^"\n]*no-data[^"\n]*"', text)
        assert not strings, (path, strings)


def test_tile_size_and_overlap_say_their_range(qgis_app):
    """QA: TILE_SIZE 63 / 8193 failed with QGIS's own 'Incorrect parameter value for TILE_SIZE' (no range), OVERLAP 33
    with TILE_SIZE 64 with 'between 0 and half the tile size' (no number). The labels carry the range; the overlap's
    refusal names the number."""
    from ksdiff_qgis.algorithms.pansharpen import PansharpenAlgorithm
    from ksdiff_qgis.engine.errors import InputError
    from ksdiff_qgis.engine.pipeline import check_tiling

    alg = PansharpenAlgorithm()
    alg.initAlgorithm()
    assert "64–8192" in alg.parameterDefinition("TILE_SIZE").description()
    assert "half a tile" in alg.parameterDefinition("OVERLAP").description()
    # QA: "the overlap must be between 0 and 32 (half the tile size 64); it is 33" named neither parameter as the
    # dialog shows it
    with pytest.raises(InputError) as refused:
        check_tiling(64, 33)
    assert str(refused.value) == ("'Tile overlap (PAN pixels, 0 to half a tile)' (OVERLAP) is 33; with "
                                  "'Tile size (PAN pixels, 64–8192)' (TILE_SIZE) 64 it must be 0 to 32")


def test_paths_in_messages_are_shown_as_written(data_dir, tmp_path, monkeypatch):
    """QA: a path holding ' and " was shown by Python's repr ('/…/\\'Test\\' "q" 北京/Ergebnis ü.png') in the "must be
    a GeoTIFF" refusal and the COG write error; paths are shown in plain double quotes, as written, as the other
    messages do ('cannot open the PAN raster "…"')."""
    folder = tmp_path / "Ergebnisse 50% #2 & 'Test' \"q\" 北京"
    folder.mkdir()
    pan, ms = str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif")
    png = str(folder / "Ergebnis ü.png")
    with pytest.raises(InputError) as refused:
        pansharpen(pan, ms, png, "wv2", "exp")
    assert f'the output "{png}" must be a GeoTIFF' in str(refused.value)
    # a COG larger than one 256 px block has overviews, written in CPL_TMPDIR: a folder that does not exist is refused
    # before the fusion (it failed the COG write after it), its path shown as written
    pan, ms = str(tmp_path / "pan.tif"), str(tmp_path / "ms.tif")
    gdal.Translate(pan, str(data_dir / "wv2_pan.tif"), width=512, height=512)
    gdal.Translate(ms, str(data_dir / "wv2_ms.tif"), width=128, height=128)
    missing = str(folder / "gibt es nicht ä")
    monkeypatch.setenv("CPL_TMPDIR", missing)
    cog = str(folder / "COG ä.tif")
    with pytest.raises(InputError) as failed:
        pansharpen(pan, ms, cog, "wv2", "exp", cog=True)
    assert f"CPL_TMPDIR={missing} does not exist" in str(failed.value)
    assert "\\'" not in str(refused.value) + str(failed.value)
