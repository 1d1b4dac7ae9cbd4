"""Lossy-compressed inputs (``engine/lossy.py``) and the scattered PAN holes such a compression leaves
(``panholes.scattered``, the self-check's windows).

QA: JPEG and lossy JPEG 2000 inputs got no word, and METHOD auto kept KSDiff where GSA did better (Sentinel-2 JPEG
quality 50: +15.4 % ERGAS), its Wald check smoothing the compression's blocks away. A WV2 PAN in JPEG 2000 QUALITY=5
with nodata 0 had 1.86 % of its dark pixels turned into 0: every self-check window was refused ("only 0 valid MS
pixels", though the MS had no hole) and auto fell back unchecked.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from osgeo import gdal

from ksdiff_qgis.engine import lossy, panholes, selfcheck
from ksdiff_qgis.engine.feedback import RecordingFeedback
from ksdiff_qgis.engine.pipeline import pansharpen

LOSSY_WORDS = "is stored with lossy compression"


def _translate(src, dst, **kw) -> str:
    gdal.Translate(str(dst), str(src), options=gdal.TranslateOptions(**kw))
    return str(dst)


def _byte(src, dst, **kw) -> str:
    """An 8-bit copy of a real 11-bit fixture (JPEG in TIFF takes 8-bit samples), scaled as a viewer would."""
    return _translate(src, dst, outputType=gdal.GDT_Byte, scaleParams=[[0, 1023, 1, 255]], **kw)


def _warnings(pan: str, ms: str, out, method: str = "mtf_glp_hpm", **kw):
    fb = RecordingFeedback()
    res = pansharpen(pan, ms, str(out), "wv2", method, feedback=fb, **kw)
    return res, [line for line in fb.lines if line.startswith("WARNING")]


def test_jpeg_in_tiff_and_lossy_jpeg2000_warn_once_per_input(data_dir, tmp_path):
    """The real WV2 fixture stored as JPEG in GeoTIFF (quality 60) and as lossy JPEG 2000: one warning per input,
    naming the codec, what it does and what to use instead; the result's warnings hold them too."""
    pan, ms = data_dir / "wv2_pan.tif", data_dir / "wv2_ms.tif"
    jpeg = {role: _byte(src, tmp_path / f"{role}_jpeg.tif", creationOptions=["COMPRESS=JPEG", "JPEG_QUALITY=60"])
            for role, src in (("pan", pan), ("ms", ms))}
    res, said = _warnings(jpeg["pan"], jpeg["ms"], tmp_path / "jpeg_out.tif")
    notes = [w for w in said if LOSSY_WORDS in w]
    assert len(notes) == 2 and notes[0].startswith("WARNING The PAN raster (pan_jpeg.tif)") and "MS raster" in notes[1]
    assert all("JPEG, quality 60" in n and "8 x 8-pixel blocks" in n and "original product" in n for n in notes)
    assert len([w for w in res.warnings if LOSSY_WORDS in w]) == 2
    jp2 = {role: _translate(src, tmp_path / f"{role}.jp2", format="JP2OpenJPEG",
                            creationOptions=["QUALITY=10", "REVERSIBLE=NO"])
           for role, src in (("pan", pan), ("ms", ms))}
    _, said = _warnings(jp2["pan"], jp2["ms"], tmp_path / "jp2_out.tif")
    notes = [w for w in said if LOSSY_WORDS in w]
    assert len(notes) == 2 and all("JPEG 2000, irreversible 9/7 wavelet" in n and "wavelet quantisation" in n
                                   for n in notes)


@pytest.mark.parametrize("how", [
    dict(format="JP2OpenJPEG", creationOptions=["QUALITY=100", "REVERSIBLE=YES"]),
    dict(creationOptions=["COMPRESS=LZW"]),
    dict(creationOptions=["COMPRESS=DEFLATE"]),
])
def test_lossless_storage_is_not_warned(data_dir, tmp_path, how):
    """Lossless JPEG 2000 (reversible 5/3, every layer), LZW and DEFLATE GeoTIFFs of the same imagery: no word."""
    ext = "jp2" if how.get("format") else "tif"
    pan = _translate(data_dir / "wv2_pan.tif", tmp_path / f"pan.{ext}", **how)
    ms = _translate(data_dir / "wv2_ms.tif", tmp_path / f"ms.{ext}", **how)
    _, said = _warnings(pan, ms, tmp_path / "out.tif")
    assert not [w for w in said if "lossy" in w]


def test_a_jpg_a_webp_tiff_and_a_truncated_reversible_jpeg2000_are_found(data_dir, tmp_path):
    """Other lossy storage, found from the file alone: a .jpg, WebP in GeoTIFF (lossy, not its lossless mode), a
    reversible 5/3 JPEG 2000 truncated to QUALITY=5 (GDAL states it lossy)."""
    rgb = _byte(data_dir / "wv2_ms.tif", tmp_path / "rgb.tif", bandList=[3, 2, 1])
    cases = {
        "jpg": (_translate(rgb, tmp_path / "a.jpg", format="JPEG", creationOptions=["QUALITY=70"]), "JPEG"),
        "webp": (_translate(rgb, tmp_path / "w.tif", creationOptions=["COMPRESS=WEBP", "WEBP_LEVEL=70"]), "WebP"),
        "webp lossless": (_translate(rgb, tmp_path / "wl.tif", creationOptions=["COMPRESS=WEBP", "WEBP_LOSSLESS=YES"]),
                          None),
        "jp2 5/3 truncated": (_translate(data_dir / "wv2_pan.tif", tmp_path / "r.jp2", format="JP2OpenJPEG",
                                         creationOptions=["QUALITY=5", "REVERSIBLE=YES"]), "JPEG 2000"),
    }
    for name, (path, codec) in cases.items():
        ds = gdal.Open(path)
        found = lossy.find(ds)
        assert (found and found.codec) == codec, name
    assert "truncated" in lossy.find(gdal.Open(cases["jp2 5/3 truncated"][0])).detail


def test_a_jpeg2000_driver_that_states_nothing_is_read_from_its_codestream(data_dir, tmp_path, monkeypatch):
    """JP2KAK or JP2ECW state no COMPRESSION_REVERSIBILITY: the codestream's COD marker says 9/7 (lossy) or 5/3, and a
    5/3 stream with every layer stays unwarned."""
    lossy_jp2 = _translate(data_dir / "wv2_pan.tif", tmp_path / "l.jp2", format="JP2OpenJPEG",
                           creationOptions=["QUALITY=20", "REVERSIBLE=NO"])
    lossless = _translate(data_dir / "wv2_pan.tif", tmp_path / "n.jp2", format="JP2OpenJPEG",
                          creationOptions=["QUALITY=100", "REVERSIBLE=YES"])
    assert lossy._jp2_wavelet(lossy_jp2) == "irreversible 9/7" and lossy._jp2_wavelet(lossless) == "reversible 5/3"
    real = lossy._structure
    monkeypatch.setattr(lossy, "_structure", lambda ds: {k: v for k, v in real(ds).items()
                                                         if k != "COMPRESSION_REVERSIBILITY"})
    assert lossy.find(gdal.Open(lossy_jp2)).detail == "irreversible 9/7 wavelet"
    assert lossy.find(gdal.Open(lossless)) is None


def test_auto_keeping_ksdiff_on_lossy_inputs_says_so_in_its_reason(data_dir, tmp_path):
    """The check cannot see compression artefacts: when it keeps the model on lossy inputs, the method's reason and the
    check's own say so (the choice itself is unchanged)."""
    pan = _byte(data_dir / "wv2_pan.tif", tmp_path / "pan.tif", creationOptions=["COMPRESS=JPEG", "JPEG_QUALITY=75"])
    ms = _byte(data_dir / "wv2_ms.tif", tmp_path / "ms.tif", creationOptions=["COMPRESS=JPEG", "JPEG_QUALITY=75"])
    res = pansharpen(pan, ms, str(tmp_path / "out.tif"), "wv2", "auto", check_only=True)
    assert res.method == "ksdiff", res.method_reason
    for text in (res.method_reason, res.selfcheck.reason):
        assert "the PAN and the MS are lossy-compressed (JPEG)" in text and "cannot judge them" in text


# ------------------------------------------------------------------------------------------ scattered PAN holes
def _holed(src, dst, share: float, seed: int = 0) -> str:
    """A copy of the real fixture PAN (nodata 0) with ``share`` of its pixels set to 0 one by one at random places:
    isolated holes, as a lossy compression leaves in dark areas."""
    ds = gdal.Translate(str(dst), str(src))
    band = ds.GetRasterBand(1)
    arr = band.ReadAsArray()
    arr[np.random.default_rng(seed).random(arr.shape) < share] = 0
    band.WriteArray(arr)
    band = ds = None
    return str(dst)


def test_scattered_holes_are_told_from_areas():
    """Single pixels, specks and a one-pixel line are scattered; a wide hole (a scene edge, a gap) is not, not even at
    its rim."""
    valid = np.ones((40, 40), dtype=bool)
    valid[5, 5] = valid[8:10, 20:22] = False   # a pixel, a 2 x 2 speck
    valid[30, 2:20] = False                    # a dead line segment
    valid[15:30, 25:40] = False                # an area at the edge
    thin = panholes.scattered(valid)
    assert thin[5, 5] and thin[8:10, 20:22].all() and thin[30, 2:20].all()
    assert not thin[15:30, 25:40].any()


def test_scattered_pan_nodata_leaves_the_check_its_windows(data_dir, tmp_path):
    """2 % of the real fixture PAN's pixels nodata, one by one: every window used to be refused (the check wants 99 %
    data) and auto fell back unchecked; the holes are filled for the check as for the tiles, so it scores both."""
    pan = _holed(data_dir / "wv2_pan.tif", tmp_path / "pan.tif", 0.02)
    res = pansharpen(pan, str(data_dir / "wv2_ms.tif"), str(tmp_path / "out.tif"), "wv2", "auto", workers=1)
    check = res.selfcheck
    assert check.pixels >= selfcheck.MIN_PIXELS, check.reason
    assert check.learned is not None and math.isfinite(check.learned.ergas)
    out = gdal.Open(res.output_path).ReadAsArray()
    holes = gdal.Open(pan).ReadAsArray() == 0
    assert (out[:, holes] == 0).all() and (out[:, ~holes] > 0).all()   # the holes stay nodata in the output


def test_too_many_scattered_pan_holes_are_named_as_the_cause(data_dir, tmp_path):
    """10 % of the PAN's pixels nodata, one by one, beside an MS without a hole: the check cannot run, and its reason
    names the PAN's nodata in the windows, not 'only 0 valid MS pixels'."""
    pan = _holed(data_dir / "wv2_pan.tif", tmp_path / "pan.tif", 0.10)
    res = pansharpen(pan, str(data_dir / "wv2_ms.tif"), str(tmp_path / "out.tif"), "wv2", "auto", check_only=True)
    reason = res.selfcheck.reason
    assert "valid MS pixels for the self-check" not in reason
    assert reason.startswith("the PAN's nodata refused ") and "where the MS holds data" in reason
    assert "10.2% of their pixels (scattered pixels and specks; the check fills up to 5% of a window" in reason


@pytest.fixture(scope="module")
def qa_jp2_case(load_script, cached, tmp_path_factory):
    """The QA's case: a Wald-degraded crop of WV2 pair 1 (148 x 148 PAN), PAN and MS in JPEG 2000 QUALITY=5 (nodata
    0): 408 PAN pixels, 1.86 %, dark ones, became 0."""
    cached("wv2/pair1_pan.tif")
    from rasterio.transform import Affine

    from model_core.rasters import write_geotiff

    case = load_script("robustness").wv2_cases("pair1")[0]
    folder = tmp_path_factory.mktemp("qa_jp2")
    paths = {}
    for role, arr, tf in (("pan", case.pan[None], case.transform),
                          ("ms", case.ms, case.transform * Affine.scale(case.ratio))):
        tif = write_geotiff(folder / f"{role}.tif", arr.astype(case.dtype), tf, case.crs, 0)
        paths[role] = _translate(tif, folder / f"{role}.jp2", format="JP2OpenJPEG",
                                 creationOptions=["QUALITY=5", "REVERSIBLE=NO"])
    return paths


def test_a_lossy_pan_s_zeros_let_the_check_run_and_the_warning_says_why(qa_jp2_case, tmp_path):
    """The QA's JPEG 2000 case: the check runs (it read 'only 0 valid MS pixels' of 28 windows and fell back), and the
    warning of the PAN holes says such zeros are a lossy compression's with nodata 0."""
    fb = RecordingFeedback()
    res = pansharpen(qa_jp2_case["pan"], qa_jp2_case["ms"], str(tmp_path / "out.tif"), "auto", "auto", feedback=fb)
    assert res.selfcheck.pixels >= selfcheck.MIN_PIXELS and res.selfcheck.learned is not None, res.selfcheck.reason
    holes = [w for w in res.warnings if "only because of the PAN" in w]
    assert len(holes) == 1 and holes[0].startswith("408 output pixels (1.86% of the output)")
    assert "lossy-compressed (JPEG 2000, irreversible 9/7 wavelet), and its nodata value is 0: isolated pixels of 0 " \
           "in dark areas are typical of that" in holes[0]


def test_a_lossless_pan_s_holes_are_not_blamed_on_compression(data_dir, tmp_path):
    """The same warning for a lossless PAN with holes says nothing of compression."""
    pan = _holed(data_dir / "wv2_pan.tif", tmp_path / "pan.tif", 0.01)
    _, said = _warnings(pan, str(data_dir / "wv2_ms.tif"), tmp_path / "out.tif")
    holes = [w for w in said if "only because of the PAN" in w]
    assert len(holes) == 1 and "lossy" not in holes[0]


def test_lerc_with_an_error_bound_is_found_from_its_first_block(data_dir, tmp_path):
    """QA: LERC with MAX_Z_ERROR=2 read back up to 2 DN off (output up to 40 DN) with no word; GDAL 3.6 states only
    COMPRESSION=LERC, so the bound is read from the first block's Lerc2 header. LERC without a bound (an integer
    bound of 0.5 is exact) and the lossless codecs stay unwarned."""
    def lerc(src, name: str, comp: str, bound: float, float32: bool = False) -> str:
        # the fixture's NBITS=11 is carried over unless replaced, and LERC refuses packed bits
        return _translate(src, tmp_path / name, outputType=gdal.GDT_Float32 if float32 else gdal.GDT_Unknown,
                          creationOptions=[f"COMPRESS={comp}", f"MAX_Z_ERROR={bound}"] + ["NBITS=16"] * (not float32))

    pan, ms = data_dir / "wv2_pan.tif", data_dir / "wv2_ms.tif"
    cases = {(comp, bound, float32): lerc(pan, f"{comp}_{bound}_{float32}.tif", comp, bound, float32)
             for comp in ("LERC", "LERC_DEFLATE") for bound in (0, 0.5, 2) for float32 in (False, True)}
    for (comp, bound, float32), path in cases.items():
        found = lossy.find(gdal.Open(path))
        lossy_expected = bound > (0 if float32 else 0.5)
        assert (found is not None) == lossy_expected, (comp, bound, float32)
        assert found is None or found.words() == f"LERC, MAX_Z_ERROR {bound:g}"
    res, said = _warnings(cases[("LERC", 2, False)], lerc(ms, "ms_lerc2.tif", "LERC", 2), tmp_path / "out.tif")
    notes = [w for w in said if LOSSY_WORDS in w]
    assert len(notes) == 2 and all("LERC, MAX_Z_ERROR 2" in n and "error bound" in n for n in notes), said
