"""Fused values above the top both inputs keep to (``engine/saturation.py``): an 11-bit product stored as UInt16
without NBITS, saturated, is warned per band with how to clip; a normal scene is not; nothing is clamped silently."""
from __future__ import annotations

import math
import re

import numpy as np
import pytest
from osgeo import gdal

from ksdiff_qgis.engine import labels, saturation
from ksdiff_qgis.engine.feedback import RecordingFeedback
from ksdiff_qgis.engine.pipeline import pansharpen
from ksdiff_qgis.engine.raster_io import describe


def _copy(data_dir, name: str, path, top_share: float | None) -> str:
    """The WV2 fixture ``name`` as plain UInt16 without NBITS (as a tool that drops it writes it); ``top_share``: each
    band's brightest share of its valid pixels gained up to 2047 and clipped there (a sensor saturating over bright
    ground, as QA's gain-saturated pair 1), the rest scaled by the same gain."""
    ds = gdal.Translate(str(path), str(data_dir / name), creationOptions=["NBITS=16"])
    for b in range(1, ds.RasterCount + 1):
        band = ds.GetRasterBand(b)
        arr = band.ReadAsArray().astype(np.float64)
        if top_share is not None:
            valid = arr > 0
            t = np.percentile(arr[valid], 100 * (1 - top_share))
            arr = np.where(valid, np.minimum(2047, np.round(arr * 2047 / t)), 0)
        band.WriteArray(arr.astype(np.uint16))
    ds = None
    assert describe(gdal.Open(str(path)), str(path)).nbits is None
    return str(path)


def _saturated(data_dir, tmp_path) -> tuple[str, str]:
    """PAN's top 15 % and the MS's top 25 % at 2047, in different places (QA's p1gain on the fixture)."""
    return (_copy(data_dir, "wv2_pan.tif", tmp_path / "sat_pan.tif", 0.15),
            _copy(data_dir, "wv2_ms.tif", tmp_path / "sat_ms.tif", 0.25))


def _run(pan: str, ms: str, out, method: str, sensor: str = "wv2", **kw) -> tuple[np.ndarray, list[str]]:
    fb = RecordingFeedback()
    res = pansharpen(pan, ms, str(out), sensor, method, feedback=fb, **kw)
    return gdal.Open(res.output_path).ReadAsArray().astype(np.int64), fb.lines


def _above(lines: list[str]) -> list[str]:
    return [line for line in lines if "of the fused values lie above" in line]


@pytest.mark.parametrize("method", ["exp", "brovey", "gsa", "mtf_glp_hpm", "mtf_glp_fs", "ksdiff"])
def test_values_above_a_saturated_11_bit_products_top_are_warned_per_band(data_dir, tmp_path, method):
    """QA: WorldView-2 pair 1 without NBITS, gain-saturated (PAN top 15 %, MS top 25 % at 2047): 62-72 k pixels per
    band came back above 2047, up to 6687 (MTF-GLP-HPM 6201), without a word — the range check went by UInt16's 65535.
    Now one warning counts them per band (as written), names the saturation it measured and how to clip; the values
    are kept. With CREATE_OPTIONS NBITS=11 they are clipped at 2047 and that warning says so instead."""
    pan, ms = _saturated(data_dir, tmp_path)
    out, lines = _run(pan, ms, tmp_path / "out.tif", method)
    per_band = [int((b > 2047).sum()) for b in out]
    share = sum(per_band) / out.size
    assert share > 0.01, per_band
    said = _above(lines)
    assert len(said) == 1 and said[0].startswith(
        f"WARNING {labels.method(method)}: {share:.3%} of the fused values lie above 2047, "
        f"the top of WorldView-2's 11-bit range ({sum(per_band)} values; max "), lines
    counts = dict(re.findall(r"(Blue|Green|Red|NIR): ([\d,]+)", said[0]))
    assert [int(counts.get(n, "0").replace(",", "")) for n in ("Blue", "Green", "Red", "NIR")] == per_band
    past = ("the MS's cubic upsampling overshoots past it beside them" if method == "exp"
            else "where the PAN and the MS disagree there the fusion extrapolates past it")
    assert re.search(r"the inputs saturate at 2047 \(1\d\.\d% of the sampled PAN values, 2\d\.\d% of the sampled MS "
                     r"values\), and " + past + r"\. They are written as they are; to clip them at 2047, add "
                     r"NBITS=11 to 'Additional creation options' \(CREATE_OPTIONS\)\.$", said[0]), said[0]
    clipped, clip_lines = _run(pan, ms, tmp_path / "nb.tif", method, create_options="NBITS=11")
    assert clipped.max() <= 2047 and not _above(clip_lines)
    # what the writer did, and the limit that really applied: the data's 11-bit top, not UInt16's
    assert any(line.startswith("WARNING") and "above 2047, the 11-bit maximum (NBITS), were written as 2047"
               in line for line in clip_lines), clip_lines


def test_a_generic_run_goes_by_the_inputs_own_saturated_top(data_dir, tmp_path):
    """Without a sensor range (SENSOR generic) the top is the inputs' own, where they pile up: the same warning."""
    pan, ms = _saturated(data_dir, tmp_path)
    out, lines = _run(pan, ms, tmp_path / "g.tif", "mtf_glp_hpm", sensor="generic")
    said = _above(lines)
    assert len(said) == 1 and "lie above 2047, the inputs' own top (" in said[0] and "values; max" in said[0]
    assert f"{int((out > 2047).sum()) / out.size:.3%}" in said[0]


@pytest.mark.parametrize("nbits", [True, False])
def test_a_normal_scene_gets_no_such_warning(data_dir, tmp_path, nbits):
    """The real fixture as delivered (NBITS=11: the writer's clip count covers it) and as a copy without NBITS: no
    warning; a handful of values above 2047 at most gets a log line."""
    if nbits:
        pan, ms = str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif")
    else:
        pan = _copy(data_dir, "wv2_pan.tif", tmp_path / "p.tif", None)
        ms = _copy(data_dir, "wv2_ms.tif", tmp_path / "m.tif", None)
    for method in ("mtf_glp_hpm", "ksdiff"):
        _, lines = _run(pan, ms, tmp_path / f"{method}.tif", method)
        said = _above(lines)
        assert not any(line.startswith("WARNING") for line in said), said
        assert not (nbits and said)


def test_the_floor_note_names_the_saturated_pan_it_lies_beside(data_dir, tmp_path):
    """QA: on a Landsat 8 scene with saturated clouds the floor note said "as is usual over water and shadow" of
    values that lay in or beside the saturated PAN. It now says what happened and, when the PAN saturates, how many
    of them lie in or within 3 pixels of it; over the plain fixture it names no cause."""
    pan, ms = _saturated(data_dir, tmp_path)
    _, lines = _run(pan, ms, tmp_path / "k.tif", "ksdiff")
    said = [line for line in lines if "eased smoothly towards black" in line]
    assert len(said) == 1 and "\n" not in said[0], lines
    line = said[0]
    found = re.fullmatch(r"KSDiff \(learned\): [\d,]+ of [\d,]+ fused values \(\d+\.\d\d\d%\) came out under "
                         r"20% of the MS's value there and were eased smoothly towards black instead of overshooting "
                         r"below it; (\d+)% of them lie in or within 3 pixels of saturated PAN \(at 2047\)\.", line)
    assert found and 0 < int(found.group(1)) <= 100, line
    assert "water" not in said[0]
    _, plain = _run(str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), tmp_path / "p.tif", "ksdiff")
    note = [line for line in plain if "eased smoothly towards black" in line]
    assert len(note) == 1 and note[0].endswith("instead of overshooting below it.") and "saturated" not in note[0]


def test_a_top_is_saturated_only_where_values_pile_up():
    """The plateau rule: a lone bright pixel, or the top level of data quantised to a few levels, is no saturation;
    a pile at the top is, also when it is spread over windows read one by one."""
    rng = np.random.default_rng(0)
    ok = np.ones((64, 64), dtype=bool)
    lone = saturation.TopTracker()
    lone(rng.integers(0, 1500, (64, 64)).astype(float), ok)
    assert not lone.top().saturated
    levels = saturation.TopTracker()   # five levels of 8, the top one as full as the others
    levels((rng.integers(0, 5, (64, 64)) * 8).astype(float), ok)
    assert levels.top().value == 32 and levels.top().share > 0.1 and not levels.top().saturated
    piled = saturation.TopTracker()
    for w in range(4):
        a = rng.integers(0, 2000, (64, 64)).astype(float)
        a[: 4 * w] = 2047
        piled(a, ok)
    top = piled.top()
    assert top.saturated and top.value == 2047 and math.isclose(top.share, (4 + 8 + 12) * 64 / (4 * 64 * 64))
