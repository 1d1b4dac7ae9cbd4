"""The out-of-range counts over saturated plateaus (``engine/clipping.py``, ``engine/saturation.py``): only values the
writer really changes are counted, a float output's values exactly at the top are not "above" it, and the clip hint
of a UInt16 product topping out near 65535 says what was written and no useless NBITS=16."""
from __future__ import annotations

import re

import numpy as np
import pytest
from osgeo import gdal

from ksdiff_qgis.engine.clipping import ClipCounter
from ksdiff_qgis.engine.feedback import RecordingFeedback
from ksdiff_qgis.engine.pipeline import pansharpen
from ksdiff_qgis.engine.raster_io import to_dtype, value_range

PLATEAU = slice(16, 48)   # MS pixels; the PAN's are 4x these


def _plateau(data_dir, name: str, path, top: float, gain: float = 1.0, dtype=np.uint16, ms_square=PLATEAU) -> str:
    """The WV2 fixture ``name`` ×``gain`` without NBITS (``dtype``), with a saturated square at ``top`` over the same
    ground in the PAN and the MS (a cloud clipped by the sensor: QA114's ``sat``; ``ms_square``: its MS rows and
    columns), and each band clipped at ``top``."""
    ds = gdal.Translate(str(path), str(data_dir / name), creationOptions=["NBITS=16"] if dtype == np.uint16 else [],
                        outputType=gdal.GDT_UInt16 if dtype == np.uint16 else gdal.GDT_Float32)
    k = ds.RasterXSize // 64
    square = slice(ms_square.start * k, ms_square.stop * k)
    for b in range(1, ds.RasterCount + 1):
        band = ds.GetRasterBand(b)
        arr = band.ReadAsArray().astype(np.float64) * gain
        arr[square, square] = top
        band.WriteArray(np.minimum(arr, top).astype(dtype))
    ds = None
    return str(path)


def _run(pan: str, ms: str, out, method: str, **kw) -> tuple[np.ndarray, list[str]]:
    fb = RecordingFeedback()
    res = pansharpen(pan, ms, str(out), "wv2", method, feedback=fb, **kw)
    return gdal.Open(res.output_path).ReadAsArray().astype(np.float64), fb.lines


def _counted(line: str) -> int:
    """The count a clip line ('N of M fused values') or a ceiling line ('(N values;') gives."""
    found = re.search(r"([\d,]+) of [\d,]+ fused values|\(([\d,]+) values;", line)
    return int((found.group(1) or found.group(2)).replace(",", ""))


def test_clip_counts_are_the_values_the_writer_changes():
    """Every count against ``to_dtype`` itself: values that round back to the top or the bottom are not clipped,
    those that round onto the nodata value are moved off it (QA: 2047.0005 counted as out of range)."""
    rng = np.random.default_rng(1)
    for dtype, nbits, nodata in ((np.uint16, 11, 0.0), (np.uint16, None, 65535.0), (np.int16, None, -32768.0)):
        low, high = value_range(dtype, nbits)
        edges = np.array([low - 0.5, low - 0.49, low - 0.51, low, -0.5, -0.51, 0.5, high, high + 0.49, high + 0.5])
        strip = np.concatenate([edges, rng.uniform(low - 3, low + 3, 500), rng.uniform(high - 3, high + 3, 500),
                                rng.uniform(-3, 3, 500)]).reshape(1, 1, -1)
        c = ClipCounter(high, ["b"], low=low, nodata=nodata, bits=nbits)
        c.add(strip)
        out = to_dtype(strip, dtype, nodata, nbits).astype(np.float64)
        r = np.rint(strip)
        assert c.above[0] == np.count_nonzero(r > high), dtype
        assert c.negative[0] == np.count_nonzero(r < low), dtype
        assert c.at_nodata == np.count_nonzero((r == nodata) & (out != nodata)), dtype
        assert c.kept_negative[0] == (np.count_nonzero((r < 0) & (r >= low)) if low < 0 else 0), dtype


@pytest.mark.parametrize("method", ["mtf_glp_hpm", "mtf_glp_fs"])
def test_a_saturated_plateau_is_not_counted_as_clipped(data_dir, tmp_path, method):
    """QA114: a scene saturated at 2047 (NBITS=11) was said to be 30-92 % "out of range": the plateau fused at
    2047 + 0.0005, written as 2047 anyway. Now the count is of the values clipped (those the same run without NBITS
    writes above 2047) and the line says the inputs saturate there."""
    pan = _plateau(data_dir, "wv2_pan.tif", tmp_path / "p.tif", 2047, gain=1.5)
    ms = _plateau(data_dir, "wv2_ms.tif", tmp_path / "m.tif", 2047, gain=1.5)
    free, _ = _run(pan, ms, tmp_path / "free.tif", method)
    clipped, lines = _run(pan, ms, tmp_path / "nb.tif", method, create_options="NBITS=11")
    assert clipped.max() <= 2047
    said = [line for line in lines if "were out of range" in line]
    assert len(said) == 1, lines
    above = [int(n) for n in re.findall(r"(\d+) above 2047", said[0])]
    assert above == [int((b > 2047).sum()) for b in free], said[0]
    # the cause last, not between the two limits (QA122: it split "written as 2047; ...; those below 0 as 1")
    assert re.search(r"were written as 2047; .*; the inputs saturate at 2047 \(\d+\.\d% of the sampled PAN values, "
                     r"\d+\.\d% of the sampled MS values\)\.$", said[0]), said[0]


def test_a_float_outputs_values_at_the_top_are_not_above_it(data_dir, tmp_path):
    """QA114 ``satf``: Float32 inputs saturated at 2047; values exactly 2047 were counted as above 2047 (25.8 % said,
    3.6 % written above it). The count is now that of the written values above 2047; EXP writes the plateau's
    interior exactly at 2047 here."""
    pan = _plateau(data_dir, "wv2_pan.tif", tmp_path / "p.tif", 2047, gain=1.5, dtype=np.float32)
    ms = _plateau(data_dir, "wv2_ms.tif", tmp_path / "m.tif", 2047, gain=1.5, dtype=np.float32)
    out, lines = _run(pan, ms, tmp_path / "f.tif", "exp")
    said = [line for line in lines if "of the fused values lie above" in line]
    assert len(said) == 1, lines
    assert _counted(said[0]) == int((out > 2047).sum()) and (out == 2047).sum() > 0, said[0]


def test_a_uint16_product_near_its_types_top_gets_no_nbits_16_advice(data_dir, tmp_path):
    """QA114 ``sat16``: UInt16 saturated at 65504, no NBITS. The line said the values "are written as they are; NBITS=16
    ... clips them at 65535": NBITS=16 on UInt16 does nothing, and those above 65535 were clipped there."""
    pan = _plateau(data_dir, "wv2_pan.tif", tmp_path / "p.tif", 65504, gain=48)
    ms = _plateau(data_dir, "wv2_ms.tif", tmp_path / "m.tif", 65504, gain=48)
    out, lines = _run(pan, ms, tmp_path / "u.tif", "ksdiff")
    clip = [line for line in lines if "were out of range" in line]
    said = [line for line in lines if "of the fused values lie above 65504" in line]
    assert len(clip) == 1 and len(said) == 1, lines
    assert "NBITS" not in said[0], said[0]
    assert said[0].endswith(f"They are written as they are, except the {_counted(clip[0])} above 65535, clipped to "
                            "65535; to clip them at 65504, use the Raster Calculator's min(value, 65504)."), said[0]
    assert _counted(said[0]) == int((out > 65504).sum())


def test_the_self_check_says_when_most_of_the_scene_is_saturated(data_dir, tmp_path):
    """QA114 ``mostsat``: 93 % of the sample saturated, and the self-check's decision rested on the rest unsaid. Now
    its figures are followed by that share; a scene saturated in a quarter of its values gets no such line."""
    notes = {}
    for name, square in (("most", slice(4, 60)), ("quarter", PLATEAU)):
        pan = _plateau(data_dir, "wv2_pan.tif", tmp_path / f"{name}_p.tif", 2047, ms_square=square)
        ms = _plateau(data_dir, "wv2_ms.tif", tmp_path / f"{name}_m.tif", 2047, ms_square=square)
        _, lines = _run(pan, ms, tmp_path / f"{name}.tif", "auto", create_options="NBITS=11")
        assert any(line.startswith("Self-check on a") for line in lines), lines
        notes[name] = [line for line in lines if "of the scene's sampled" in line]
    assert len(notes["most"]) == 1 and re.fullmatch(
        r"  (7\d|8\d)\.\d% of the scene's sampled (PAN|MS) values are saturated at 2047: the figures above come "
        r"mostly from the other (1\d|2\d)\.\d%", notes["most"][0]), notes["most"]
    assert not notes["quarter"]


def test_the_saturation_note_never_says_100_percent_and_the_other_0():
    """QA121: a share of 0.996 printed "100% ... come mostly from the other 0%"."""
    from ksdiff_qgis.engine.saturation import Top, sample_note

    near = sample_note(Top(2047, 0.996, 50), None)
    assert near.startswith("99.6% of the scene's sampled PAN") and near.endswith("from the other 0.4%"), near
    full = sample_note(None, Top(2047, 0.9999, 50))
    assert full.startswith("almost all of the scene's sampled MS") and "0%" not in full.replace("0.1%", ""), full
