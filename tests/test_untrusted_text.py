"""Untrusted text read from inputs (QA116): band names and metadata that are not valid UTF-8, control characters
and very long names reach messages, output files and reports safely."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

BAD_NAME = b"Bl\xff\xfeue\xc3("   # 8 bytes, as many as the placeholder: the TIFF's offsets stay right
BAD_SOURCE = b"\xff" * 8


def _bad_utf8_ms(src: Path, dst: Path) -> str:
    """A copy of ``src`` whose band 1 description and SOURCE metadata hold bytes that are not UTF-8."""
    from osgeo import gdal

    gdal.Translate(str(dst), str(src))
    ds = gdal.Open(str(dst), gdal.GA_Update)
    ds.GetRasterBand(1).SetDescription("QQBADQQ1")
    ds.SetMetadata({**ds.GetMetadata(), "SOURCE": "QQBADQQ3"})
    ds = None
    raw = dst.read_bytes().replace(b"QQBADQQ1", BAD_NAME).replace(b"QQBADQQ3", BAD_SOURCE)
    dst.write_bytes(raw)
    for aux in dst.parent.glob(dst.name + ".aux.xml"):
        aux.unlink()
    return str(dst)


def test_band_name_not_utf8_is_fused_with_a_valid_name(qgis_app, pair, tmp_path):
    """GDAL gives such a name as a str with lone surrogates: SetDescription refused it ("Internal error")."""
    import processing
    from osgeo import gdal

    ms = _bad_utf8_ms(Path(pair["MS"]), tmp_path / "bad_ms.tif")
    out = processing.run("ksdiff:pansharpen", {**pair, "MS": ms, "OUTPUT": str(tmp_path / "o.tif")})["OUTPUT"]
    ds = gdal.Open(out)
    name = ds.GetRasterBand(1).GetDescription()
    assert name.startswith("Bl") and "\ufffd" in name and name.encode("utf-8")
    assert all(isinstance(v, str) for v in ds.GetMetadata().values())


def test_metadata_not_utf8_reads_as_text(tmp_path, data_dir):
    """Metadata values GDAL returns as bytes are decoded with replacement where KSDiff reads metadata."""
    from osgeo import gdal

    from ksdiff_qgis.engine.gdalutil import quiet_metadata, text_metadata
    from ksdiff_qgis.engine.metaoffsets import s2_offsets
    from ksdiff_qgis.engine.raster_io.outputs import copy_metadata

    src = gdal.Open(_bad_utf8_ms(data_dir / "wv2_ms.tif", tmp_path / "bad_ms.tif"))
    assert isinstance(src.GetMetadata()["SOURCE"], bytes)   # what the bindings give
    assert text_metadata(src)["SOURCE"] == "\ufffd" * 8 == quiet_metadata(src)["SOURCE"]
    assert s2_offsets(src) == {}
    dst = gdal.GetDriverByName("MEM").Create("", 4, 4, 1)
    copy_metadata(dst, src, [1])
    assert dst.GetMetadataItem("SOURCE") == "\ufffd" * 8


def test_assess_of_fused_name_not_utf8_writes_the_report(qgis_app, pair, tmp_path):
    """write_report hit UnicodeEncodeError on the surrogates and left its .tmp file behind."""
    import processing

    fused = processing.run("ksdiff:pansharpen", {**pair, "OUTPUT": str(tmp_path / "f.tif")})["OUTPUT"]
    bad = _bad_utf8_ms(Path(fused), tmp_path / "fused_bad.tif")
    html = tmp_path / "r.html"
    processing.run("ksdiff:assess", {"FUSED": bad, "PAN": pair["PAN"], "MS": pair["MS"], "OUTPUT_HTML": str(html)})
    assert "Bl\ufffd" in html.read_text(encoding="utf-8")
    assert not list(tmp_path.glob("r.html.*.tmp"))


def test_write_report_leaves_no_temporary_file_on_any_error(tmp_path):
    from ksdiff_qgis.engine.report import write_report

    path = tmp_path / "r.html"
    with pytest.raises(UnicodeEncodeError):
        write_report(str(path), "bad \udcff text")
    assert os.listdir(tmp_path) == []


HOSTILE_DIR = "d $(touch pwnedA)`touch pwnedB`; x'q\"&"


def _pasted_args(cmd: str, cwd: Path) -> list[str]:
    """The arguments bash gives the command ``cmd`` (its program replaced by printf), run in ``cwd``."""
    import subprocess

    args = cmd.split(" ", 1)[1]
    out = subprocess.run(["bash", "-c", "printf '%s\\0' " + args], cwd=cwd, capture_output=True, check=True)
    return out.stdout.decode().split("\0")[:-1]


def _hostile_ms(data_dir, tmp_path) -> str:
    import shutil

    folder = tmp_path / HOSTILE_DIR
    folder.mkdir()
    path = folder / "-m s$(touch pwnedD).tif"
    shutil.copy(data_dir / "wv2_ms.tif", path)
    return str(path)


@pytest.mark.parametrize("which", ["unused_layer_nodata", "unticked_not_followed", "unapplied_open_options"])
def test_pasted_commands_take_the_path_as_one_argument(qgis_app, data_dir, tmp_path, which):
    """The paths were in double quotes: pasting the command ran $(...) and backticks (QA116)."""
    from qgis.core import QgsRasterLayer, QgsRasterRange

    from ksdiff_qgis.algorithms import common

    path = _hostile_ms(data_dir, tmp_path)
    layer = QgsRasterLayer(path + ("|option:OVERVIEW_LEVEL=0" if which == "unapplied_open_options" else ""),
                           "ms\n`id`")
    if which == "unused_layer_nodata":
        layer.dataProvider().setUserNoDataValue(1, [QgsRasterRange(5, 5)])
    elif which == "unticked_not_followed":
        layer.dataProvider().setUseSourceNoDataValue(1, False)
    text = getattr(common, which)(layer, "MS")
    assert "\n" not in text and "ms\\n`id`" in text   # the layer's name on one line
    cmd = text[text.index("gdal_translate"):].split(" (or ")[0]
    run = tmp_path / "run"
    run.mkdir()
    args = _pasted_args(cmd, run)
    assert path in args, (cmd, args)
    assert not list(run.iterdir()), cmd   # nothing ran


def test_quoted_escapes_control_characters():
    """A file name holding a newline and 'WARNING:' made a fake log line."""
    from ksdiff_qgis.engine.errors import quoted

    assert quoted("in/bad\x1b]0;T\x07X\nWARNING:\tfake.tif") == '"in/bad\\x1b]0;T\\x07X\\nWARNING:\\tfake.tif"'


def test_unfinished_note_of_a_card_is_one_short_line(tmp_path):
    """A card's training.unfinished reached the log raw: ESC sequences, a newline and 100 kB (QA116)."""
    from ksdiff_qgis.engine.model_card import ModelCard, unfinished_note

    what = "smoke\x1b[2J\x1b]0;title\x07\nWARNING: fake\r\u202e" + "x" * 100_000
    note = unfinished_note(ModelCard(tmp_path / "m\n.onnx", {"training": {"unfinished": what}}))
    assert not any(c in note for c in "\x1b\x07\n\r\u202e") and len(note) < 1000, note[:300]
    assert "smoke\\x1b[2J" in note and "m\\n.onnx" in note and "…" in note


def test_unknown_satellite_of_a_sidecar_is_escaped(data_dir, tmp_path):
    """A Maxar IMD's satId with ESC, BEL and U+202E came back raw in "... says {sat}, a satellite KSDiff has no
    entry for"."""
    import shutil

    from ksdiff_qgis.engine.sensor_detect import metadata_candidates

    ms = tmp_path / "S_ms.tif"
    shutil.copy(data_dir / "wv2_ms.tif", ms)
    imd = ('version = "28.3";\nBEGIN_GROUP = IMAGE_1\n\tsatId = "WV\x1b[2J\x1b]0;T\x07X\u202e";\nEND_GROUP = IMAGE_1\n'
           'filename = "S_ms.tif";\nEND;\n')
    (tmp_path / "S_ms.IMD").write_text(imd, encoding="utf-8")
    found, notes = metadata_candidates([str(ms)])
    assert not found and notes == ["S_ms.IMD says WV\\x1b[2J\\x1b]0;T\\x07X\\u202e, a satellite KSDiff has no entry "
                                   "for: ignored"], notes


@pytest.mark.parametrize("column, cell", [("extent", "1,2,3,4 [EPSG:4326\x1b[2J\x1b]0;T\x07]"),
                                          ("mtf_gains", "0.3 \x1b[2J =cmd")])
def test_scene_list_cells_with_control_characters_are_shown_escaped(tmp_path, data_dir, column, cell):
    """The batch's exit-2 message for extent and mtf_gains cells carried raw ESC and BEL."""
    from ksdiff_qgis.engine.scenes import SceneListError, read_scenes

    path = tmp_path / "s.csv"
    path.write_text(f'pan,ms,method,output,{column}\n{data_dir / "wv2_pan.tif"},{data_dir / "wv2_ms.tif"},'
                    f'mtf_glp_hpm,o.tif,"{cell}"\n', encoding="utf-8")
    with pytest.raises(SceneListError) as err:
        read_scenes(str(path))
    assert "\x1b" not in str(err.value) and "\x07" not in str(err.value) and "\\x1b[2J" in str(err.value), err.value


def test_long_band_names_are_cut_in_messages_not_in_the_output(data_dir, tmp_path):
    """A 100 000-character band description made two 100 kB log lines (MTF gains, values out of range)."""
    from osgeo import gdal

    from ksdiff_qgis.engine.feedback import RecordingFeedback
    from ksdiff_qgis.engine.pipeline import pansharpen

    ms = str(tmp_path / "ms.tif")
    gdal.Translate(ms, str(data_dir / "wv2_ms.tif"))
    ds = gdal.Open(ms, gdal.GA_Update)
    ds.GetRasterBand(1).SetDescription("X" * 100_000)
    ds = None
    log = RecordingFeedback()
    out = str(tmp_path / "o.tif")
    pansharpen(str(data_dir / "wv2_pan.tif"), ms, out, "wv2", "mtf_glp_hpm", feedback=log)
    named = [line for line in log.lines if "XXXX" in line]
    assert named and max(map(len, named)) < 1000, [line[:200] for line in named]
    assert any("X" * 79 + "…" in line for line in named)
    assert gdal.Open(out).GetRasterBand(1).GetDescription() == "X" * 100_000


def test_band_name_not_utf8_through_a_vrt_is_fused(tmp_path, data_dir):
    """A VRT's band names come from its source files (delivery._band_statement): read raw, they reached the writer's
    SetDescription (QA121 crash #1)."""
    from osgeo import gdal

    from ksdiff_qgis.engine.pipeline import pansharpen

    ms = _bad_utf8_ms(data_dir / "wv2_ms.tif", tmp_path / "bad_ms.tif")
    vrt = str(tmp_path / "bad_ms.vrt")
    gdal.BuildVRT(vrt, [ms]).FlushCache()
    result = pansharpen(str(data_dir / "wv2_pan.tif"), vrt, str(tmp_path / "o.tif"), "wv2", "mtf_glp_hpm")
    out = gdal.Open(result.output_path)
    name = out.GetRasterBand(1).GetDescription()
    assert name.startswith("Bl") and "\ufffd" in name and name.encode("utf-8")


def test_pan_name_not_utf8_survives_the_mapping_into_the_ms_encoding(data_dir, tmp_path):
    """mapped_pan copied the PAN's raw description into its VRT copy (QA121 crash #2)."""
    from ksdiff_qgis.engine import pan_encoding
    from ksdiff_qgis.engine.raster_io import open_raster

    ds, info = open_raster(_bad_utf8_ms(data_dir / "wv2_pan.tif", tmp_path / "bad_pan.tif"), "PAN")
    copy, _ = pan_encoding.mapped_pan(ds, info, pan_encoding.PanMapping((1.0, 0.0), (0.0001, -0.1)))
    name = copy.GetRasterBand(1).GetDescription()
    assert name.startswith("Bl") and "\ufffd" in name and name.encode("utf-8")


def test_writer_makes_every_band_name_valid_text(data_dir, tmp_path):
    """The writer is the last guard: a name with lone surrogates is written with replacement characters."""

    from ksdiff_qgis.engine.raster_io import open_raster
    from ksdiff_qgis.engine.raster_io.writer import GeoTiffWriter

    ds, info = open_raster(str(data_dir / "wv2_ms.tif"), "MS")
    names = ["Bl\udcff\udcfeue"] + [f"b{i}" for i in range(2, info.bands + 1)]
    out = str(tmp_path / "w.tif")
    writer = GeoTiffWriter(out, 8, 8, info, ds.GetGeoTransform(), ds.GetProjection(), names, None)
    try:
        assert writer.ds.GetRasterBand(1).GetDescription() == "Bl\ufffd\ufffdue"
    finally:
        writer.abort()
