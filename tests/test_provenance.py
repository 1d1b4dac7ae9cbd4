"""A fused output as others meet it: natural colour when the file is opened in QGIS directly (its ``.qml`` default
style), how it was made in its own metadata (``engine/provenance.py``), and floating-point values above the inputs'
top said in the log (``engine/saturation.py``)."""
from __future__ import annotations

import os
import re

import numpy as np
import pytest
from osgeo import gdal

from ksdiff_qgis.engine.feedback import RecordingFeedback
from ksdiff_qgis.engine.pipeline import pansharpen


def _run(params: dict) -> dict:
    import processing

    return processing.run("ksdiff:pansharpen", params)


def _opened(path: str):
    """The output as Add Raster Layer / drag and drop opens it (QGIS loads its default style)."""
    from qgis.core import QgsRasterLayer

    return QgsRasterLayer(path, "opened")


def test_output_opens_in_natural_colour_and_a_stale_style_goes(qgis_app, pair, tmp_path):
    out = str(tmp_path / "fused.tif")
    _run({**pair, "OUTPUT": out})
    layer = _opened(out)
    renderer = layer.renderer()   # WV2 fixture: Blue, Green, Red, NIR
    assert renderer.type() == "multibandcolor"
    assert (renderer.redBand(), renderer.greenBand(), renderer.blueBand()) == (3, 2, 1)
    ce = renderer.redContrastEnhancement()
    red = gdal.Open(out).ReadAsArray()[2]
    assert red.min() < ce.minimumValue() < ce.maximumValue() < red.max()   # the 2–98 % stretch, not the type's range
    qml = str(tmp_path / "fused.qml")
    assert os.path.isfile(qml)   # QGIS's default style of fused.tif

    # the same output again with the NIR band alone: no red, green and blue, and no style of the earlier layout
    _run({**pair, "MS_BANDS": [4], "OUTPUT": out})
    assert not os.path.exists(qml)
    layer = _opened(out)
    assert layer.renderer().type() != "multibandcolor"


def test_a_failed_run_leaves_no_style(qgis_app, pair, tmp_path):
    from qgis.core import QgsProcessingException

    out = str(tmp_path / "fused.tif")
    with pytest.raises(QgsProcessingException):
        _run({**pair, "MTF_GAINS": "0.3,0.3", "OUTPUT": out})   # 2 gains for 4 bands: refused before any pixel
    assert not os.path.exists(out) and not os.path.exists(str(tmp_path / "fused.qml"))


@pytest.mark.parametrize("cog", [False, True])
def test_output_says_how_it_was_made(data_dir, tmp_path, cog):
    out = str(tmp_path / "fused.tif")
    result = pansharpen(str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), out, sensor="auto",
                        method="auto", cog=cog)
    copy = gdal.Translate(str(tmp_path / "copy.tif"), out)   # what a copy keeps (the default domain)
    for ds in (gdal.Open(out), copy):
        md = ds.GetMetadata()
        assert re.fullmatch(r"KSDiff for QGIS \d+\.\d+\.\d+ \(build ([0-9a-f]{7,}(-dirty)?|source)\)",
                            md["TIFFTAG_SOFTWARE"])
        assert md["KSDIFF_METHOD"] == result.method
        assert md["KSDIFF_SENSOR"] == result.sensor == "wv2"
        assert md["KSDIFF_SELFCHECK_METHOD"] == result.method
        assert md["KSDIFF_SELFCHECK_REASON"] == result.selfcheck.reason
        assert float(md["KSDIFF_SELFCHECK_KSDIFF_ERGAS"]) == pytest.approx(result.selfcheck.learned.ergas, rel=1e-5)
        assert float(md["KSDIFF_SELFCHECK_CLASSICAL_ERGAS"]) == pytest.approx(result.selfcheck.classical.ergas,
                                                                               rel=1e-5)
        assert (md.get("KSDIFF_MODEL") == "wv2.onnx") == (result.method == "ksdiff")
        assert md["SOURCE"].startswith("WorldView-2")   # the MS's own metadata is still copied
    copy = None


def test_classical_output_names_no_model(data_dir, tmp_path):
    out = str(tmp_path / "fused.tif")
    pansharpen(str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), out, sensor="wv2", method="gsa")
    md = gdal.Open(out).GetMetadata()
    assert md["KSDIFF_METHOD"] == "gsa" and "KSDIFF_MODEL" not in md and "KSDIFF_SELFCHECK_METHOD" not in md


def _reflectance(data_dir, tmp_path, name: str) -> str:
    """The WV2 fixture as Float32 reflectance, 0.6 at the 11-bit top (QA's f32 derivative)."""
    src = gdal.Open(str(data_dir / name))
    path = str(tmp_path / name)
    gdal.Translate(path, src, outputType=gdal.GDT_Float32, scaleParams=[[0, 2047, 0, 0.6]]).FlushCache()
    return path


def test_float_values_above_the_inputs_top_are_said(data_dir, tmp_path):
    pan, ms = (_reflectance(data_dir, tmp_path, n) for n in ("wv2_pan.tif", "wv2_ms.tif"))
    top = max(float(np.nanmax(gdal.Open(p).ReadAsArray())) for p in (pan, ms))
    out = str(tmp_path / "fused.tif")
    fb = RecordingFeedback()
    pansharpen(pan, ms, out, sensor="wv2", method="mtf_glp_hpm", feedback=fb)
    fused = gdal.Open(out).ReadAsArray().astype(np.float64)
    above = int(np.count_nonzero(fused > top))
    assert above > 0   # the fusion extrapolates past the inputs (QA, pair 1: 0.60 -> 1.92)
    lines = [line for line in fb.lines if "lie above" in line]
    assert len(lines) == 1, fb.lines
    assert f"above {top:.6g}, the inputs' highest value" in lines[0]
    counts = [int(c) for c in re.findall(r"(?:Blue|Green|Red|NIR): (\d+)", lines[0])]
    assert sum(counts) == above
    assert "Raster Calculator" in lines[0] and "NBITS" not in lines[0]


def test_a_run_outside_qgis_drops_the_replaced_outputs_style(qgis_app, pair, data_dir, tmp_path):
    """The batch (no QGIS, so no new style) replacing an output must not leave the old layout's style to QGIS: a
    style KSDiff wrote goes; one it did not write (no mark: the engine reads the .qml's text) stays."""
    out, qml = str(tmp_path / "fused.tif"), tmp_path / "fused.qml"
    _run({**pair, "OUTPUT": out})   # writes KSDiff's (marked) fused.qml
    assert qml.exists()
    fb = RecordingFeedback()
    pansharpen(str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), out, sensor="wv2", method="gsa",
               feedback=fb)
    assert not qml.exists()
    assert any("removed fused.qml, the QGIS style of the replaced output" in line for line in fb.lines)

    qml.write_text("<qgis/>")
    fb = RecordingFeedback()
    pansharpen(str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), out, sensor="wv2", method="gsa",
               feedback=fb)
    assert qml.read_text() == "<qgis/>"
    assert "kept your style fused.qml; the output opens with it" in fb.lines


USER_STYLE = '<qgis><pipe><rasterrenderer type="singlebandgray" grayBand="1"/></pipe></qgis>\n'


def _logged(params: dict) -> list[str]:
    """The run's info lines that speak of a .qml style."""
    import processing
    from test_issue14_processing import Log

    feedback = Log()
    processing.run("ksdiff:pansharpen", params, feedback=feedback)
    return [line for line in feedback.lines if "qml" in line and not line.startswith("WARNING ")]


def test_a_style_ksdiff_did_not_write_is_never_removed_or_replaced(qgis_app, pair, tmp_path):
    """QA: MS ``scene.vrt`` with the user's ``scene.qml`` and OUTPUT ``scene.tif`` (new): the run removed scene.qml
    as "the replaced output's" and wrote its own, so the input opened with the fused style."""
    from osgeo import gdal

    ms = str(tmp_path / "scene.vrt")
    gdal.Translate(ms, pair["MS"], format="VRT")
    user = tmp_path / "scene.qml"
    user.write_text(USER_STYLE)
    assert _logged({**pair, "MS": ms, "OUTPUT": str(tmp_path / "scene.tif")}) == [
        "kept your style scene.qml; the output opens with it"]
    assert user.read_text() == USER_STYLE
    assert _opened(str(tmp_path / "scene.tif")).renderer().type() == "singlebandgray"   # the user's, as said

    # a hand-made style with no output beside it yet
    (tmp_path / "fused.qml").write_text(USER_STYLE)
    _run({**pair, "OUTPUT": str(tmp_path / "fused.tif")})
    assert (tmp_path / "fused.qml").read_text() == USER_STYLE


def test_a_default_style_the_user_saved_over_ours_is_kept(qgis_app, pair, tmp_path):
    """The user opens the output (QGIS loads KSDiff's style, mark included), draws it in false colour and saves
    that as the default style: the next run keeps it (QA: it was silently replaced)."""
    from qgis.core import QgsMultiBandColorRenderer

    out = str(tmp_path / "fused.tif")
    _run({**pair, "OUTPUT": out})
    layer = _opened(out)
    layer.setRenderer(QgsMultiBandColorRenderer(layer.dataProvider(), 4, 3, 2))
    assert layer.saveDefaultStyle()[1]
    del layer
    assert _logged({**pair, "METHOD": "gsa", "OUTPUT": out}) == ["kept your style fused.qml; the output opens with it"]
    renderer = _opened(out).renderer()
    assert (renderer.redBand(), renderer.greenBand(), renderer.blueBand()) == (4, 3, 2)

    # KSDiff's own style is still replaced run after run
    os.remove(str(tmp_path / "fused.qml"))
    _run({**pair, "OUTPUT": out})
    assert _logged({**pair, "METHOD": "gsa", "OUTPUT": out})[-1].startswith("replaced fused.qml")


def test_a_rerun_says_it_replaced_ksdiffs_style_in_one_translatable_line(qgis_app, pair, tmp_path, monkeypatch):
    """QA: a re-run logged "removed fused.qml, the QGIS style of the replaced output" then "wrote fused.qml …".
    Now one line; the style lines go through tr() like the rest of the algorithm's messages (upper-cased here)."""
    from ksdiff_qgis.algorithms import colour_style

    out = str(tmp_path / "fused.tif")
    assert _logged({**pair, "OUTPUT": out}) == [
        "wrote fused.qml: QGIS opens the output in natural colour however it is added"]
    assert _logged({**pair, "METHOD": "gsa", "OUTPUT": out}) == [
        "replaced fused.qml, the QGIS style KSDiff wrote for the old output: QGIS opens the new output in natural "
        "colour however it is added"]
    monkeypatch.setattr(colour_style, "tr", str.upper)
    assert _logged({**pair, "OUTPUT": out}) == [
        "REPLACED fused.qml, THE QGIS STYLE KSDIFF WROTE FOR THE OLD OUTPUT: QGIS OPENS THE NEW OUTPUT IN NATURAL "
        "COLOUR HOWEVER IT IS ADDED"]
    # without red, green and blue bands: the removal is still said, with why no style replaces it
    assert _logged({**pair, "OUTPUT": out, "MS_BANDS": [4]})[0].startswith(
        "REMOVED fused.qml, THE QGIS STYLE KSDIFF WROTE FOR THE OLD OUTPUT; NO QGIS STYLE WRITTEN")


def _tags(path: str) -> dict[str, str]:
    """The KSDIFF_ items of ``path`` as a copy keeps them (gdal_translate: the default domain only)."""
    copy = gdal.Translate("/vsimem/provenance_copy.tif", path)
    md = {k: v for k, v in copy.GetMetadata().items() if k.startswith("KSDIFF_")}
    copy = None
    gdal.Unlink("/vsimem/provenance_copy.tif")
    return md


def test_runs_that_differ_in_pixels_differ_in_their_tags(data_dir, tmp_path):
    """QA: PRECISION int8 against fp32 (44 % of the pixels differ) and TILE_SIZE 128 against 512 (75 %) wrote the
    same tags. Now the precision that ran, the tiling, the consistency step and the model's SHA-256 are recorded."""
    from ksdiff_qgis.engine.model_card import bundled_cards, load_card

    pan, ms = str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif")
    runs = {}
    for name, kw in (("fp32", dict(precision="fp32", tile_size=128, overlap=16)),
                     ("int8", dict(precision="int8", tile_size=128, overlap=16)),
                     ("t64", dict(precision="fp32", tile_size=64, overlap=16)),
                     ("plain", dict(precision="fp32", tile_size=128, overlap=16, consistency=False))):
        out = str(tmp_path / f"{name}.tif")
        pansharpen(pan, ms, out, sensor="wv2", method="ksdiff", **kw)
        runs[name] = (gdal.Open(out).ReadAsArray(), _tags(out))
    fp32 = runs["fp32"][1]
    assert fp32["KSDIFF_PRECISION"] == "fp32" and runs["int8"][1]["KSDIFF_PRECISION"] == "int8"
    assert fp32["KSDIFF_MODEL_SHA256"] == load_card(str(bundled_cards()["wv2"])).data["onnx_sha256"]
    assert (fp32["KSDIFF_TILE_SIZE"], fp32["KSDIFF_OVERLAP"]) == ("128", "16")
    assert fp32["KSDIFF_CONSISTENCY"] == "yes" and runs["plain"][1]["KSDIFF_CONSISTENCY"] == "no"
    assert fp32["KSDIFF_COREGISTER"] == "no" and "KSDIFF_COREGISTER_OFFSET" not in fp32
    assert fp32["KSDIFF_MS_BANDS"] == "1,2,3,4" and "KSDIFF_EXTENT" not in fp32
    assert (fp32["KSDIFF_MTF_GAINS"], fp32["KSDIFF_MTF_GAIN_PAN"]) == ("0.35,0.35,0.35,0.35", "0.11")   # WV2's
    assert (fp32["KSDIFF_PAN_NODATA"], fp32["KSDIFF_PAN_NODATA_SOURCE"]) == ("0", "file")   # the fixture declares 0
    for name in ("int8", "t64", "plain"):   # what changes pixels changes the tags
        assert not np.array_equal(runs[name][0], runs["fp32"][0]) and runs[name][1] != fp32, name
    assert runs["t64"][1]["KSDIFF_TILE_SIZE"] == "64" and "KSDIFF_TILE_LAYOUT" in fp32


def test_the_log_and_tags_say_which_mtf_gains_were_used(cached, tmp_path):
    """QA round 58: no log line or tag said the MTF gains a run used. Now one info line gives each fused band's MS
    gain and the PAN's and whose they are (the sensor's, MTF_GAINS, the generic values), and the output carries them
    as KSDIFF_MTF_GAINS (one per output band, as MTF_GAINS takes them back) and KSDIFF_MTF_GAIN_PAN. Crops of the
    cached WorldView-2 pair 1."""
    pan, ms = str(tmp_path / "pan.tif"), str(tmp_path / "ms.tif")
    gdal.Translate(pan, str(cached("wv2/pair1_pan.tif")), srcWin=[0, 0, 256, 256])
    gdal.Translate(ms, str(cached("wv2/pair1_ms.tif")), srcWin=[0, 0, 64, 64])
    cases = [("ikonos", {}, "MS Blue 0.26, Green 0.28, Red 0.29, NIR 0.28 (IKONOS's); PAN 0.17 (IKONOS's)",
              "0.26,0.28,0.29,0.28", "0.17"),
             ("qb", {"ms_bands": [3, 2, 1]}, "MS Red 0.3, Green 0.32, Blue 0.34 (QuickBird's); PAN 0.15 (QuickBird's)",
              "0.3,0.32,0.34", "0.15"),
             ("gf2", {"mtf_gains": [0.25]}, "MS Blue 0.25, Green 0.25, Red 0.25, NIR 0.25 (as given in MTF_GAINS); "
              "PAN 0.15 (the generic value)", "0.25,0.25,0.25,0.25", "0.15"),
             ("wv2", {"mtf_gains": [0.3, 0.31, 0.32, 0.33]}, "MS Blue 0.3, Green 0.31, Red 0.32, NIR 0.33 (as given in "
              "MTF_GAINS); PAN 0.11 (WorldView-2's)", "0.3,0.31,0.32,0.33", "0.11"),
             ("generic", {}, "MS Blue 0.3, Green 0.3, Red 0.3, NIR 0.3 (the generic values); PAN 0.15 (the generic "
              "value)", "0.3,0.3,0.3,0.3", "0.15")]
    for sensor, kw, line, gains, pan_gain in cases:
        log = RecordingFeedback()
        out = str(tmp_path / f"{sensor}.tif")
        pansharpen(pan, ms, out, sensor=sensor, method="mtf_glp_hpm", feedback=log, **kw)
        said = [x for x in log.lines if x.startswith("MTF gains at Nyquist: ")]
        assert said == [f"MTF gains at Nyquist: {line}"], (sensor, said)
        tags = _tags(out)
        assert (tags["KSDIFF_MTF_GAINS"], tags["KSDIFF_MTF_GAIN_PAN"]) == (gains, pan_gain), (sensor, tags)
    # a sensor without published gains says so
    log = RecordingFeedback()
    pansharpen(pan, ms, str(tmp_path / "spot.tif"), sensor="spot67", method="mtf_glp_hpm", feedback=log)
    assert "MTF gains at Nyquist: MS Blue 0.3, Green 0.3, Red 0.3, NIR 0.3 (the generic values: none are published " \
           "for SPOT 6/7); PAN 0.15 (the generic value)" in log.lines, log.lines


def test_tags_record_the_bands_gains_extent_and_coregistration(data_dir, tmp_path):
    pan, ms = str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif")
    gt = gdal.Open(pan).GetGeoTransform()
    box = (gt[0] + 32 * gt[1], gt[3] + 224 * gt[5], gt[0] + 224 * gt[1], gt[3] + 32 * gt[5])
    out = str(tmp_path / "o.tif")
    result = pansharpen(pan, ms, out, sensor="wv2", method="mtf_glp_hpm", ms_bands=[3, 2, 1],
                        mtf_gains=[0.25], extent=box, coregister=True)
    tags = _tags(out)
    assert tags["KSDIFF_MS_BANDS"] == "3,2,1" and tags["KSDIFF_MTF_GAINS"] == "0.25,0.25,0.25"
    assert tags["KSDIFF_EXTENT"] == f"{box[0]!r},{box[2]!r},{box[1]!r},{box[3]!r} [EPSG:32631]"
    assert tags["KSDIFF_COREGISTER"] == "yes"
    # the RGB bands measure the area's offset too roughly to move the MS by it (``coregistration.trusted``): no
    # offset applied; all four bands move it, and the tag says by how much
    assert "so it was not moved" in result.coregistration and "KSDIFF_COREGISTER_OFFSET" not in tags
    result = pansharpen(pan, ms, out, sensor="wv2", method="mtf_glp_hpm", extent=box, coregister=True)
    assert "the MS moved onto the PAN" in result.coregistration
    assert re.fullmatch(r"east -?\d+\.\d{3} south -?\d+\.\d{3} \(PAN pixels\)", _tags(out)["KSDIFF_COREGISTER_OFFSET"])
    assert "KSDIFF_PRECISION" not in tags and "KSDIFF_MODEL_SHA256" not in tags   # a classical method: no model


def _engine_run_keeps(pair: dict, out: str, qml, owner: str) -> None:
    """A run of the engine alone (the batch) onto ``out`` leaves ``qml``, the style KSDiff wrote for its namesake
    ``owner``, as it was, and says why."""
    kept = qml.read_bytes()
    fb = RecordingFeedback()
    pansharpen(pair["PAN"], pair["MS"], out, sensor="wv2", method="gsa", feedback=fb)
    assert qml.read_bytes() == kept
    assert (f"kept o.qml, the QGIS style KSDiff wrote for '{owner}', which shares this output's name: QGIS opens "
            "this output with it too; give the output a name of its own for a style of its own") in fb.lines


def test_outputs_sharing_a_name_do_not_take_each_others_style(qgis_app, pair, tmp_path):
    """QGIS reads o.qml for o.tif and o.tiff alike. QA: a 1-band run onto o.tiff deleted o.tif's style ("removed
    o.qml, the QGIS style KSDiff wrote for the old output"), and a re-run onto o.tif wrote it again, so the 1-band
    o.tiff opened as multibandcolor bands 3, 2, 1. The style records its output's name; neither run touches the
    other's, and none is written that the other file would open with."""
    tif, tiff, qml = str(tmp_path / "o.tif"), str(tmp_path / "o.tiff"), tmp_path / "o.qml"
    assert _logged({**pair, "OUTPUT": tif})[0].startswith("wrote o.qml")
    ours = qml.read_bytes()
    assert b'name="ksdiff/style-for"' in ours and b'value="o.tif"' in ours

    (line,) = _logged({**pair, "MS_BANDS": [4], "OUTPUT": tiff})
    assert line.startswith("no QGIS style written: 'o.tif' beside it shares the name, and QGIS reads o.qml for both "
                           "files (it is the style KSDiff wrote for 'o.tif')"), line
    assert "Save Style" in line
    assert qml.read_bytes() == ours   # o.tif's style stays
    renderer = _opened(tif).renderer()
    assert (renderer.redBand(), renderer.greenBand(), renderer.blueBand()) == (3, 2, 1)

    # o.tif again: its own old style goes (o.tiff would read it too), and no new one is written while o.tiff is there
    (line,) = _logged({**pair, "METHOD": "gsa", "OUTPUT": tif})
    assert line.startswith("removed o.qml, the QGIS style KSDiff wrote for the old output; no QGIS style written: "
                           "'o.tiff' beside it shares the name"), line
    assert not qml.exists()
    assert _opened(tiff).renderer().type() != "multibandcolor"

    # the batch (engine only) onto o.tiff keeps a style KSDiff wrote for o.tif, and says why
    os.remove(tiff)
    _run({**pair, "OUTPUT": tif})
    _engine_run_keeps(pair, tiff, qml, "o.tif")


def test_a_style_of_an_older_version_belongs_to_the_stems_tif(qgis_app, pair, tmp_path):
    """A style written before the output's name was recorded (mark only) is o.tif's when o.tif exists: a run onto
    o.tiff keeps it; a run onto o.tif replaces it; with no o.tif it is the output's own."""
    from ksdiff_qgis.engine.raster_io import belongs_to, seal_style

    tif, qml = str(tmp_path / "o.tif"), tmp_path / "o.qml"
    _run({**pair, "OUTPUT": tif})
    old = re.sub(r'<Option[^>]*name="ksdiff/style-for"[^>]*/>', "", qml.read_text())
    old = re.sub(r'(name="ksdiff/style"[^>]*value=")[0-9a-f]{64}', r"\g<1>" + "0" * 64, old)
    qml.write_text(old)
    assert seal_style(str(qml))
    assert belongs_to(str(qml), tif) and not belongs_to(str(qml), str(tmp_path / "o.tiff"))
    legacy = qml.read_bytes()
    assert _logged({**pair, "METHOD": "gsa", "OUTPUT": str(tmp_path / "o.tiff")})[0].startswith(
        "no QGIS style written: 'o.tif' beside it shares the name")
    assert qml.read_bytes() == legacy
    os.remove(str(tmp_path / "o.tiff"))
    assert _logged({**pair, "METHOD": "gsa", "OUTPUT": tif})[0].startswith("replaced o.qml")

    os.remove(tif)
    qml.write_bytes(legacy)
    assert belongs_to(str(qml), str(tmp_path / "o.tiff"))   # no o.tif: the style is the output's own


def _make_legacy(qml) -> bytes:
    """Turn KSDiff's style ``qml`` into one of an older version: the mark (resealed) without the output's name."""
    from ksdiff_qgis.engine.raster_io import seal_style

    old = re.sub(r'<Option[^>]*name="ksdiff/style-for"[^>]*/>', "", qml.read_text())
    qml.write_text(re.sub(r'(name="ksdiff/style"[^>]*value=")[0-9a-f]{64}', r"\g<1>" + "0" * 64, old))
    assert seal_style(str(qml))
    return qml.read_bytes()


def test_an_older_style_of_a_namesake_is_kept_by_a_first_run_onto_the_stems_tif(qgis_app, pair, tmp_path):
    """QA: an older version's style of o.tiff (no o.tif yet) was taken as the output's own by a first run onto o.tif,
    which deleted it ("removed o.qml, the QGIS style KSDiff wrote for the old output": there was none) and o.tiff
    lost its style. A nameless style with another raster of the stem beside the output is that raster's: kept."""
    from ksdiff_qgis.engine.raster_io import belongs_to

    tif, tiff, qml = str(tmp_path / "o.tif"), str(tmp_path / "o.tiff"), tmp_path / "o.qml"
    _run({**pair, "MS_BANDS": "3,2,1", "OUTPUT": tiff})
    legacy = _make_legacy(qml)
    assert belongs_to(str(qml), tiff)   # re-runs onto o.tiff still replace it

    lines = _logged({**pair, "MS_BANDS": "3,2,1", "OUTPUT": tif})
    assert qml.exists() and qml.read_bytes() == legacy, lines   # o.tiff's style stays
    assert not belongs_to(str(qml), tif)
    assert len(lines) == 1 and lines[0].startswith(
        "no QGIS style written: 'o.tiff' beside it shares the name, and QGIS reads o.qml for both files (it is the "
        "style KSDiff wrote for 'o.tiff')"), lines
    assert not any("removed" in line for line in lines)

    # the batch (engine only) onto a new o.tif keeps it too, and says why
    os.remove(tif)
    _engine_run_keeps(pair, tif, qml, "o.tiff")


def test_coastal_blue_is_not_blue_and_the_known_colours_are_kept(qgis_app, data_dir, tmp_path):
    """QA (8-band WorldView): 'Coastal Blue' counted as blue, so two blues: no natural-colour style and no colour
    interpretation (Pléiades Neo's 'Deep Blue' too: ``rgb_bands`` of its own band names was None). And with MS_BANDS
    7,5,3 (NIR1, Red, Green) Red and Green were tagged Undefined and the log said red, green and blue were unknown,
    though only Blue is missing."""
    import processing
    from test_issue14_processing import Log

    from ksdiff_qgis.engine.bandcolour import rgb_bands
    from ksdiff_qgis.engine.sensors import SENSORS

    assert rgb_bands(list(SENSORS["pneo"].band_names)) == (1, 2, 3)   # GDAL's order: R, G, B, NIR, RE, DB
    # eight bands from the WV2 fixture's B, G, R, NIR (no torch here: model_core's band mixer beside QGIS crashes)
    src = gdal.Open(str(data_dir / "wv2_ms.tif"))
    b, g, r, n = src.ReadAsArray().astype(np.uint32)
    ms = str(tmp_path / "ms8.tif")
    ds = gdal.GetDriverByName("GTiff").Create(ms, src.RasterXSize, src.RasterYSize, 8, gdal.GDT_UInt16)
    ds.SetGeoTransform(src.GetGeoTransform())
    ds.SetProjection(src.GetProjection())
    names = ["Coastal Blue", "Blue", "Green", "Yellow", "Red", "RedEdge", "Near-IR1", "Near-IR2"]
    for i, (arr, name) in enumerate(zip([b, b, g, (g + r) // 2, r, (r + n) // 2, n, n], names), start=1):
        ds.GetRasterBand(i).WriteArray(arr.astype(np.uint16))
        ds.GetRasterBand(i).SetDescription(name)
        ds.GetRasterBand(i).SetNoDataValue(0)
    ds = None
    params = {"PAN": str(data_dir / "wv2_pan.tif"), "MS": str(ms), "SENSOR": "wv2_8", "METHOD": "mtf_glp_hpm"}
    out = str(tmp_path / "all.tif")
    _run({**params, "OUTPUT": out})
    assert os.path.isfile(str(tmp_path / "all.qml"))
    fused = gdal.Open(out)
    colours = [fused.GetRasterBand(b).GetColorInterpretation() for b in (2, 3, 5)]
    assert colours == [gdal.GCI_BlueBand, gdal.GCI_GreenBand, gdal.GCI_RedBand]

    sub, log = str(tmp_path / "sub.tif"), Log()
    processing.run("ksdiff:pansharpen", {**params, "MS_BANDS": [7, 5, 3], "OUTPUT": sub}, feedback=log)
    fused = gdal.Open(sub)
    assert [fused.GetRasterBand(b).GetColorInterpretation() for b in (1, 2, 3)] == [
        gdal.GCI_Undefined, gdal.GCI_RedBand, gdal.GCI_GreenBand]
    said = [line for line in log.lines if "no QGIS style written" in line]
    assert len(said) == 1 and "has no band named Blue" in said[0] and "Red" not in said[0].split("has")[-1], said


def _tag(path: str, key: str) -> str:
    return gdal.Open(path).GetMetadataItem(key)


@pytest.mark.parametrize("epsg", [None, 4326])
def test_the_extent_tag_given_back_as_extent_fuses_the_same_window(qgis_app, pair, tmp_path, epsg):
    """QA: KSDIFF_EXTENT read '595555,5.75126e+06,595683,5.75139e+06 (PAN CRS)': 6 significant digits (10 m on a UTM
    northing, 20 WorldView-2 PAN pixels), xmin,ymin,xmax,ymax where EXTENT takes xmin,xmax,ymin,ymax, and no CRS
    code, so it could not repeat the run. Now it is EXTENT's own syntax, exact, with the PAN CRS's code: given back
    as EXTENT it fuses the same window, bit for bit (also when the first EXTENT was in another CRS)."""
    from osgeo import osr

    ds = gdal.Open(pair["PAN"])
    gt, wkt = ds.GetGeoTransform(), ds.GetProjection()
    ds = None
    # fractional PAN pixels, as drawn on a canvas
    x0, x1 = gt[0] + 40.37 * gt[1], gt[0] + 171.81 * gt[1]
    y1, y0 = gt[3] + 23.29 * gt[5], gt[3] + 150.66 * gt[5]
    if epsg:
        src, dst = osr.SpatialReference(wkt=wkt), osr.SpatialReference()
        dst.ImportFromEPSG(epsg)
        for s in (src, dst):
            s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        ct = osr.CoordinateTransformation(src, dst)
        (x0, y0, _), (x1, y1, _) = ct.TransformPoint(x0, y0), ct.TransformPoint(x1, y1)
    first, again = str(tmp_path / "first.tif"), str(tmp_path / "again.tif")
    _run({**pair, "EXTENT": f"{x0!r},{x1!r},{y0!r},{y1!r} [EPSG:{epsg or 32631}]", "OUTPUT": first})
    tag = _tag(first, "KSDIFF_EXTENT")
    assert re.fullmatch(r"[-\d.e+]+(,[-\d.e+]+){3} \[EPSG:32631\]", tag), tag
    if not epsg:
        assert tag == f"{x0!r},{x1!r},{y0!r},{y1!r} [EPSG:32631]"   # exactly as given
    _run({**pair, "EXTENT": tag, "OUTPUT": again})
    a, b = gdal.Open(first), gdal.Open(again)
    assert (a.RasterXSize, a.RasterYSize) == (b.RasterXSize, b.RasterYSize)
    assert a.GetGeoTransform() == b.GetGeoTransform()
    assert np.array_equal(a.ReadAsArray(), b.ReadAsArray())
    assert _tag(again, "KSDIFF_EXTENT") == tag


def test_output_names_its_inputs_without_their_folders(pair, tmp_path):
    """QA: only the batch's .ksdiff.json named the inputs; an output passed on said nothing of what it was fused
    from. Now KSDIFF_PAN_FILE / KSDIFF_MS_FILE give each input's file name and size, and no folder (privacy)."""
    out = str(tmp_path / "o.tif")
    pansharpen(pair["PAN"], pair["MS"], out, sensor="wv2", method="gsa")
    md = gdal.Open(out).GetMetadata()
    assert md["KSDIFF_PAN_FILE"] == f"pan.tif, {os.path.getsize(pair['PAN'])} bytes"
    assert md["KSDIFF_MS_FILE"] == f"ms.tif, {os.path.getsize(pair['MS'])} bytes"
    assert not [k for k, v in md.items() if str(tmp_path) in v]


def test_a_vrt_input_is_recorded_by_its_sources_not_its_changing_size(cached, tmp_path):
    """QA: KSDIFF_MS_FILE of a VRT read 2795 bytes on one run and 90988 on the next, same pixels: GDAL (QGIS's
    provider, loading it as a layer) writes statistics and histograms into the VRT. Now a VRT is recorded as such,
    with its source files' names and sizes, which no statistics change."""
    pan, ms = str(tmp_path / "pan.tif"), str(tmp_path / "ms.tif")
    gdal.Translate(pan, str(cached("wv2/pair1_pan.tif")), srcWin=[0, 0, 384, 384])
    gdal.Translate(ms, str(cached("wv2/pair1_ms.tif")), srcWin=[0, 0, 96, 96])
    vrt = str(tmp_path / "ms.vrt")
    gdal.BuildVRT(vrt, [ms])
    first = pansharpen(pan, vrt, str(tmp_path / "a.tif"), sensor="wv2", method="mtf_glp_hpm").output_path
    before = os.path.getsize(vrt)
    ds = gdal.Open(vrt)   # what a layer's statistics do to the file: written into the VRT when it is closed
    for b in range(1, ds.RasterCount + 1):
        ds.GetRasterBand(b).ComputeStatistics(False)
        ds.GetRasterBand(b).GetHistogram()
    ds = None
    assert os.path.getsize(vrt) > 2 * before
    again = pansharpen(pan, vrt, str(tmp_path / "b.tif"), sensor="wv2", method="mtf_glp_hpm").output_path
    tags = [gdal.Open(p).GetMetadataItem("KSDIFF_MS_FILE") for p in (first, again)]
    assert tags[0] == tags[1] == f"ms.vrt (VRT), sources: ms.tif, {os.path.getsize(ms)} bytes"


def _git_commit() -> str:
    """What the checkout under test is: its short commit (+ '-dirty'), or 'source' without git."""
    import subprocess

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        commit = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "source"
    return commit + ("-dirty" if dirty else "")


def test_output_and_report_name_the_build(pair, tmp_path):
    """QA: TIFFTAG_SOFTWARE read 'KSDiff for QGIS 0.5.2' for an old packaged build and for newer source that writes
    other tags alike. Now it names the build ('(build 1a2b3c4)'; a source checkout: its git commit) and KSDIFF_BUILD
    says more; the assess report's header names the version and build too (it named neither)."""
    from ksdiff_qgis.engine.provenance import plugin_version
    from ksdiff_qgis.engine.report import html_report

    out = str(tmp_path / "o.tif")
    pansharpen(pair["PAN"], pair["MS"], out, sensor="wv2", method="gsa")
    commit = _git_commit()
    assert _tag(out, "TIFFTAG_SOFTWARE") == f"KSDiff for QGIS {plugin_version()} (build {commit})"
    build = _tag(out, "KSDIFF_BUILD")
    assert build == (f"{commit}, source checkout" if commit != "source" else "source")
    assert f"KSDiff for QGIS {plugin_version()} (build {build})" in html_report(None, None, {}, "wv2")


def test_the_packaged_plugin_records_its_build(tmp_path):
    """`make package` writes ksdiff_qgis/build.txt (commit and date) into the zip, never into the tree; an unpacked
    plugin reads it, and a copy of the code with neither build.txt nor git says 'source'."""
    import datetime
    import shutil
    import sys
    import zipfile

    from ksdiff_qgis.engine.provenance import PLUGIN_DIR, build_fields

    sys.path.insert(0, str(PLUGIN_DIR.parent / "scripts"))
    import package

    zip_path = package.build(tmp_path / "ksdiff_qgis.zip")
    assert not (PLUGIN_DIR / "build.txt").exists()
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(tmp_path / "unpacked")
    today = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    assert build_fields(tmp_path / "unpacked" / "ksdiff_qgis") == {"commit": _git_commit(), "date": today}
    bare = tmp_path / "bare" / "ksdiff_qgis"
    shutil.copytree(tmp_path / "unpacked" / "ksdiff_qgis", bare)
    (bare / "build.txt").unlink()
    assert build_fields(bare) == {"commit": "source"}
