"""Lossy-compressed inputs (``engine/lossy.py``).

QA: JPEG and lossy JPEG 2000 inputs got no word, and METHOD auto kept KSDiff where GSA did better (Sentinel-2 JPEG
quality 50: +15.4 % ERGAS), its Wald check smoothing the compression's blocks away.
"""
from __future__ import annotations

import pytest
from osgeo import gdal

from ksdiff_qgis.engine import lossy
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

