"""Awkward names (QA): a file name starting with "-" in the fix-it commands, band names with newlines or bidi
controls in log lines, a style file for an output named a>b<c.tif, a 300-character band name in the report's chart,
and control characters or multi-line rows in a batch CSV."""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import types
from dataclasses import replace

import numpy as np
import pytest
from osgeo import gdal

from ksdiff_qgis.engine import nodatacmd, placement, shellcmd
from ksdiff_qgis.engine.errors import InputError, one_line
from ksdiff_qgis.engine.feedback import RecordingFeedback
from ksdiff_qgis.engine.outliers import Screened
from ksdiff_qgis.engine.pipeline import outlier_note, pansharpen
from ksdiff_qgis.engine.raster_io import open_raster
from ksdiff_qgis.engine.scenes import SceneListError, read_scenes


def _run(line: str, cwd) -> subprocess.CompletedProcess:
    """Run a command line as a POSIX shell would split it, from ``cwd``."""
    return subprocess.run(shlex.split(line), cwd=cwd, capture_output=True, text=True)


def test_a_leading_dash_is_not_read_as_an_option():
    assert shellcmd.shell_arg("-pan0.tif", "posix") == "./-pan0.tif"
    assert shellcmd.shell_arg("-my pan.tif", "posix") == "'./-my pan.tif'"
    assert shellcmd.shell_arg("-pan0.tif", "nt") == ".\\-pan0.tif"
    assert shellcmd.shell_arg("-my pan.tif", "nt") == '".\\-my pan.tif"'
    assert shellcmd.shell_arg("/data/-pan0.tif", "posix") == "/data/-pan0.tif"
    assert shellcmd.shell_arg("C:\\d\\-pan0.tif", "nt") == "C:\\d\\-pan0.tif"
    assert shellcmd.command(["gdal_edit.py", "-a_nodata", "0"], "posix") == "gdal_edit.py -a_nodata 0"


@pytest.mark.skipif(not (shutil.which("gdalwarp") and shutil.which("gdal_edit.py")), reason="GDAL utilities")
def test_fix_it_commands_run_for_files_named_with_a_leading_dash(data_dir, tmp_path, monkeypatch):
    """QA: 'gdal_edit.py -a_nodata 0 -pan0.tif' printed gdal_edit.py's usage, 'gdalwarp … -ms.tif -ms_2x.tif'
    said "Unrecognized option", and the outlier note's command dropped the folder. Each now runs as shown, from the
    folder the run was started in, and writes beside the input."""
    monkeypatch.chdir(tmp_path)
    shutil.copy(data_dir / "wv2_pan.tif", "-pan.tif")
    shutil.copy(data_dir / "wv2_ms.tif", "-ms.tif")
    pan_gt = gdal.Open("-pan.tif").GetGeoTransform()
    gdal.Warp("-ms_close.tif", "-ms.tif", xRes=pan_gt[1] * 1.2, yRes=-pan_gt[5] * 1.2)

    line = nodatacmd.nodata_command("-ms.tif", 0.0)
    assert line == "gdal_edit.py -a_nodata 0 ./-ms.tif", line
    assert _run(line, tmp_path).returncode == 0
    assert gdal.Open("-ms.tif").GetRasterBand(1).GetNoDataValue() == 0

    with pytest.raises(InputError) as err:
        pansharpen("-pan.tif", "-ms_close.tif", str(tmp_path / "out.tif"), method="exp")
    warp = "gdalwarp " + str(err.value).split("gdalwarp ", 1)[1]
    # an MS pixel 1.2 x the PAN's: averaged to twice the PAN pixel (a finer PAN is never advised)
    assert warp.endswith(" ./-ms_close.tif ./-ms_close_2x.tif"), warp
    done = _run(warp, tmp_path)
    assert done.returncode == 0, done.stderr
    assert gdal.Open(str(tmp_path / "-ms_close_2x.tif")).GetGeoTransform()[1] == pytest.approx(pan_gt[1] * 2, rel=1e-4)
    assert not (tmp_path / "out.tif").exists()
    # given by full path (the dialog's way): the averaged MS goes beside it, not into the current folder
    with pytest.raises(InputError) as err:
        pansharpen(str(tmp_path / "-pan.tif"), str(tmp_path / "-ms_close.tif"), str(tmp_path / "out.tif"))
    assert f" {tmp_path}/-ms_close.tif {tmp_path}/-ms_close_2x.tif" in str(err.value), err.value

    info = types.SimpleNamespace(path="-pan.tif", rpc=False, gt=(0, 1, 0, 0, 0, -1))
    assert placement.orthorectify_commands({"FUSED": info}, "FUSED").endswith(" ./-pan.tif ./-pan_ortho.tif")
    info.path = str(tmp_path / "f.tif")
    assert placement.orthorectify_commands({"FUSED": info}, "FUSED").endswith(f" {tmp_path}/f_ortho.tif")
    sub = tmp_path / "sub"
    sub.mkdir()
    ok = (np.nan, np.nan)
    screened = Screened(bounds=((0, 1),) * 5, counts=(0, 3, 0, 0, 0), seen=(ok, (-9, 5e6), ok, ok, ok),
                        data=((0, 1),) * 5)
    _, ms = open_raster("-ms.tif", "MS")
    for path, shown in (("-ms.tif", "./-ms.tif"), (str(sub / "ms.tif"), str(sub / "ms.tif"))):
        note = outlier_note(screened, ms, replace(ms, path=path))
        assert note.split("or ", 1)[1].startswith(f"gdal_edit.py -a_nodata <value> {shown};"), note


FAKE = "line1\nINFO: fake log entry\nline3"
BIDI = "Red \u202eFIG\u202c"


def test_one_line_escapes_controls_and_bidi_but_keeps_text():
    assert one_line(FAKE) == "line1\\nINFO: fake log entry\\nline3"
    assert one_line("tab\there\x1b[31m") == "tab\\there\\x1b[31m"
    assert one_line(BIDI) == "Red \\u202eFIG\\u202c" and one_line("\u2066x\u2069\u2028") == "\\u2066x\\u2069\\u2028"
    assert one_line('NIR <b>x</b> & "q" ü 🛰 👩‍👩') == 'NIR <b>x</b> & "q" ü 🛰 👩‍👩'   # printable: as written


def test_band_names_with_line_breaks_make_no_fake_log_lines(data_dir, tmp_path):
    """QA: a band named 'line1\\nINFO: fake log entry\\nline3' put a fake "INFO:" line into the out-of-range
    warning. Every message is one line now, naming the band escaped; the output keeps the names as they are."""
    ms = str(tmp_path / "ms.tif")
    gdal.Translate(ms, str(data_dir / "wv2_ms.tif"))
    names = ["Blue", "tab\there", BIDI, FAKE]
    ds = gdal.Open(ms, gdal.GA_Update)
    for i, name in enumerate(names, start=1):
        ds.GetRasterBand(i).SetDescription(name)
    ds = None
    fb = RecordingFeedback()
    out = str(tmp_path / "out.tif")
    result = pansharpen(str(data_dir / "wv2_pan.tif"), ms, out, sensor="wv2", method="exp", feedback=fb)
    said = fb.lines + list(result.warnings)
    assert any("line1\\nINFO: fake log entry\\nline3" in m for m in said), said   # the band is named, escaped
    for message in said:
        assert not any(ch in message for ch in "\n\t\u202e\u202c"), message
    fused = gdal.Open(out)
    assert [fused.GetRasterBand(i + 1).GetDescription() for i in range(4)] == names


def test_outlier_note_names_a_band_on_one_line(data_dir):
    _, ms = open_raster(str(data_dir / "wv2_ms.tif"), "MS")
    ms = replace(ms, descriptions=[FAKE, "Green", "Red", "NIR"])
    ok = (np.nan, np.nan)
    screened = Screened(bounds=((0, 1),) * 5, counts=(0, 3, 0, 0, 0), seen=(ok, (-9, 5e6), ok, ok, ok),
                        data=((0, 1),) * 5)
    note = outlier_note(screened, ms, ms)
    assert "MS band 1 (line1\\nINFO: fake log entry\\nline3): 3 sampled values" in note and "\n" not in note


def _scene_list(tmp_path, data_dir, rows: str):
    path = tmp_path / "scenes.csv"
    path.write_text("pan,ms,sensor,method,output\n" + rows, encoding="utf-8", newline="")
    return str(path)


def test_batch_refuses_control_characters_in_path_cells(data_dir, tmp_path):
    """QA: an output cell with a line break made a file named with it."""
    pan, ms = data_dir / "wv2_pan.tif", data_dir / "wv2_ms.tif"
    for cell in ('"a\nb.tif"', '"a\tb.tif"', '"a\x1bb.tif"'):
        csv_path = _scene_list(tmp_path, data_dir, f"{pan},{ms},wv2,exp,{tmp_path}/ok.tif\n{pan},{ms},wv2,exp,{cell}\n")
        with pytest.raises(SceneListError, match=r"^line 3: column 'output': .* control character") as err:
            read_scenes(csv_path)
        assert "\n" not in str(err.value) and "\t" not in str(err.value), err.value
    assert not list(tmp_path.glob("a*b.tif"))


def test_batch_names_a_multi_line_row_by_its_first_line(data_dir, tmp_path):
    """QA: a quoted cell spanning lines made the row's errors point at its last physical line."""
    pan, ms = data_dir / "wv2_pan.tif", data_dir / "wv2_ms.tif"
    rows = (f"{pan},{ms},wv2,exp,{tmp_path}/one.tif\n\n"
            f'{pan},{ms},"wv2\n\n",exp,{tmp_path}/two.tif\n'
            f"{pan},{ms},wv2,exp,{tmp_path}/three.tif\n")
    scenes = read_scenes(_scene_list(tmp_path, data_dir, rows))
    assert [s.line for s in scenes] == [2, 4, 7]
    bad = f'{pan},{ms},wv2,exp,{tmp_path}/one.tif\n{pan},"{ms}\n",wv2,exp,{tmp_path}/two.tif,9\n'
    with pytest.raises(SceneListError, match="^line 3: more cells"):
        read_scenes(_scene_list(tmp_path, data_dir, bad))


def test_the_style_of_an_output_named_with_angle_brackets_is_known_as_its_own(qgis_app, pair, tmp_path):
    """QA: QGIS writes value="a>b&lt;c.tif" (">" raw) and a regex up to the first ">" read no name from it, so a run
    onto a>b<c.tiff took the style KSDiff wrote for a>b<c.tif as its own and replaced it. The .qml is parsed as XML."""
    import processing
    from test_issue14_processing import Log

    from ksdiff_qgis.engine.raster_io import belongs_to, style_owner

    tif, tiff, qml = str(tmp_path / "a>b<c.tif"), str(tmp_path / "a>b<c.tiff"), tmp_path / "a>b<c.qml"
    processing.run("ksdiff:pansharpen", {**pair, "OUTPUT": tif})
    ours = qml.read_bytes()
    assert b'value="a>b&lt;c.tif"' in ours   # as QGIS 3.22 writes it
    assert style_owner(str(qml)) == "a>b<c.tif"
    assert belongs_to(str(qml), tif) and not belongs_to(str(qml), tiff)
    os.remove(tif)   # the user removed the output, not its style: a run onto a>b<c.tiff leaves it alone
    log = Log()
    processing.run("ksdiff:pansharpen", {**pair, "MS_BANDS": [4], "OUTPUT": tiff}, feedback=log)
    assert qml.read_bytes() == ours, [line for line in log.lines if "qml" in line]
    assert not any("a>b<c.tiff'" in line for line in log.lines if "qml" in line), log.lines


def test_a_long_band_name_is_cut_in_the_chart_and_whole_in_its_tooltip():
    """QA: a 300-character band name in the assess report's chart ran over the other bands' labels."""
    import xml.etree.ElementTree as ET

    from ksdiff_qgis.engine.report import svg_bars

    char_px = 6.5   # an 11 px sans-serif character's mean advance

    long = 'NIR <b>"x"</b> & ' + "y" * 283
    labels = ["Blue", "Green", long, "Red"]
    svg = ET.fromstring(svg_bars({"Q": [0.9, 0.8, 0.7, 0.6], "SCC": [0.5, 0.6, 0.7, 0.8]}, labels, vmax=1.0))
    ns = "{http://www.w3.org/2000/svg}"
    shown = [t for t in svg.iter(f"{ns}text") if t.find(f"{ns}title") is not None]
    assert [t.find(f"{ns}title").text for t in shown] == labels   # the whole name, escaped and read back
    group = (520 - 40 - 10) / 4
    texts = [t.find(f"{ns}title").tail for t in shown]
    assert texts[:2] == ["Blue", "Green"] and texts[2].endswith("…") and texts[2].startswith("NIR <b>")
    assert all(len(t) * char_px <= group for t in texts), texts
