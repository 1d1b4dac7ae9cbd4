"""What the log says of an input's radiometry, on a crop of WorldView-2 pair 2 (QA, 2026-12: a constant MS band, float
reflectance with an offset, ±Inf in the PAN).

- An MS band of one value (500) is named before fusing with what the method does to it: MTF-GLP-HPM gave it the
  PAN's texture (3–2047, std 101) without a word, while an all-zero band was warned.
- The 'below 0' warning names each input's share: '68% of the sampled pixels are below 0' was NIR's 67.5 % alone.
- PAN holes of ±Inf are said as 'NaN or infinite values', not 'NaN'.
- Writing the output's QGIS style prints no GDAL error for a band of one value ("ERROR 5: <output>, band 3: dfMax
  should be strictly greater than dfMin": QGIS's default renderer's histogram, on the layer KSDiff opens to style).
"""
from __future__ import annotations

import re

import numpy as np
import pytest
from osgeo import gdal

from ksdiff_qgis.engine.feedback import RecordingFeedback
from ksdiff_qgis.engine.pipeline import pansharpen

PAN_WIN, MS_WIN = [0, 0, 512, 512], [0, 0, 128, 128]   # WV2 pair 2's top-left corner, with its nodata strip
REFLECTANCE = 0.6 / 2047   # DN to a reflectance-like float, as the QA's inputs


@pytest.fixture()
def pair2(cached, tmp_path) -> tuple[str, str]:
    """A crop of WV2 pair 2 (PAN 512², MS 128², UInt16, nodata 0) in tmp_path."""
    pan, ms = str(tmp_path / "pan.tif"), str(tmp_path / "ms.tif")
    gdal.Translate(pan, str(cached("wv2/pair2_pan.tif")), srcWin=PAN_WIN)
    gdal.Translate(ms, str(cached("wv2/pair2_ms.tif")), srcWin=MS_WIN)
    return pan, ms


def _rewritten(src: str, dst: str, change, dtype=None, nodata=None) -> str:
    """A copy of ``src`` whose bands (C, H, W, float64, with the source's nodata mask) are ``change(arr, mask)``."""
    ds = gdal.Open(src)
    arr = ds.ReadAsArray().astype(np.float64).reshape(ds.RasterCount, ds.RasterYSize, ds.RasterXSize)
    mask = arr == ds.GetRasterBand(1).GetNoDataValue()
    out = gdal.Translate(dst, src, outputType=dtype or gdal.GDT_Unknown,
                         noData=nodata)
    for b, plane in enumerate(change(arr, mask), 1):
        out.GetRasterBand(b).WriteArray(plane)
    out = None
    return dst


def _run(pan: str, ms: str, out: str, method: str) -> tuple[RecordingFeedback, np.ndarray]:
    fb = RecordingFeedback()
    res = pansharpen(pan, ms, out, "wv2", method, feedback=fb)
    return fb, gdal.Open(res.output_path).ReadAsArray()


def _constant_band(arr, mask):
    arr[2][~mask[2]] = 500   # MS band 3 (Red) = 500 wherever it has data
    return arr


@pytest.mark.parametrize("method,effect,textured", [
    ("mtf_glp_hpm", "MTF-GLP-HPM multiplies it by a PAN ratio, which puts the PAN's detail into it", True),
    ("brovey", "Weighted Brovey multiplies it by a PAN ratio, which puts the PAN's detail into it", True),
    ("gsa", "Gram-Schmidt adaptive (GSA) keeps it at 500", False),
    ("mtf_glp_fs", "MTF-GLP-FS keeps it at 500", False),
])
def test_a_constant_ms_band_is_named_with_what_the_method_does(pair2, tmp_path, method, effect, textured):
    """QA: MS band 3 = 500 came out of MTF-GLP-HPM at 3–2047 (Brovey 7–2047) with no word. Now one warning, before
    the fusion starts, names the band and its value and says what the method does to it, which the output bears
    out: the PAN's texture (ratio methods), or 500 kept (GSA, MTF-GLP-FS)."""
    pan, ms = pair2
    const = _rewritten(ms, str(tmp_path / "const.tif"), _constant_band)
    fb, out = _run(pan, const, str(tmp_path / "o.tif"), method)
    said = [i for i, line in enumerate(fb.lines) if "one value everywhere" in line]
    assert len(said) == 1, fb.lines
    line = fb.lines[said[0]]
    assert line.startswith("WARNING MS band 3 (Red) holds one value everywhere on the scene (500: a constant band): "
                           + effect), line
    assert "MS_BANDS" in line
    fusing = next(i for i, line in enumerate(fb.lines) if line.startswith("Fusing with"))
    assert said[0] < fusing   # before any pixel is written
    red = out[2][out[2] != 0]
    assert (red.std() > 20) if textured else (red == 500).all(), (red.min(), red.max(), red.std())


def test_an_empty_band_under_a_learned_model_is_said_to_get_the_pans_detail(pair2, tmp_path):
    """The all-zero band's warning is the same check: KSDiff puts the PAN's detail into it, a classical method keeps
    it at 0."""
    pan, ms = pair2

    def empty(arr, mask):
        arr[3] = 0
        return arr

    zero = _rewritten(ms, str(tmp_path / "zero.tif"), empty, nodata="none")
    for method, effect in (("ksdiff", "KSDiff (learned) puts the PAN's detail into it"),
                           ("mtf_glp_hpm", "MTF-GLP-HPM keeps it at 0")):
        fb, _ = _run(pan, zero, str(tmp_path / f"{method}.tif"), method)
        said = [line for line in fb.lines if "an empty band" in line]
        assert len(said) == 1 and said[0].startswith(
            "WARNING MS band 4 (NIR) is 0 everywhere on the scene (an empty band): " + effect), fb.lines


def _offset_reflectance(pan: str, ms: str, tmp_path) -> tuple[str, str]:
    """The pair as float reflectance with a -0.01 offset (an atmospheric correction's values below 0), NaN nodata."""
    def offset(arr, mask):
        arr = arr * REFLECTANCE - 0.01
        arr[mask] = np.nan
        return arr

    return tuple(_rewritten(src, str(tmp_path / f"{role}_f.tif"), offset, gdal.GDT_Float32, float("nan"))
                 for role, src in (("pan", pan), ("ms", ms)))


def test_the_below_zero_warning_names_each_inputs_share(pair2, tmp_path):
    """QA: float reflectance with a -0.01 offset said '68% of the sampled pixels are below 0' where NIR had 67.5 %,
    the other MS bands 1–4 % and the PAN 3 %. Now each input that reaches below 0 is named with its share."""
    pan, ms = pair2

    pan_f, ms_f = _offset_reflectance(pan, ms, tmp_path)
    fb, _ = _run(pan_f, ms_f, str(tmp_path / "o.tif"), "mtf_glp_hpm")
    (line,) = [line for line in fb.lines if "below 0 in the sampled pixels" in line]
    assert "% of the sampled pixels are below 0" not in line
    shares = dict(re.findall(r"(band \d \(\w+\)|PAN) (\d+\.\d)%", line))
    assert set(shares) == {"band 1 (Blue)", "band 2 (Green)", "band 3 (Red)", "band 4 (NIR)", "PAN"}, line
    # the MS's data at full resolution, as the sample sees them: NIR far ahead, the others a few percent
    data = gdal.Open(ms_f).ReadAsArray()
    valid = np.isfinite(data).all(axis=0)
    for b, name in enumerate(("Blue", "Green", "Red", "NIR")):
        truth = 100 * (data[b][valid] < 0).mean()
        assert abs(float(shares[f"band {b + 1} ({name})"]) - truth) < 1.5, (name, truth, line)
    assert float(shares["band 4 (NIR)"]) > 40 > max(float(v) for k, v in shares.items() if "NIR" not in k)
    assert line.index("band 4 (NIR)") < line.index("band 1 (Blue)")   # the band with most first


def test_pan_holes_of_infinite_values_are_said_so(pair2, tmp_path):
    """QA: 20 +Inf, 10 -Inf and 10 NaN PAN pixels were said as '(the PAN holds NaN there)'."""
    pan, ms = pair2
    rng = np.random.default_rng(0)

    def holes(arr, mask):
        arr = arr * REFLECTANCE
        arr[mask] = np.nan
        ys, xs = np.nonzero(~mask[0][16:-16, 16:-16])
        pick = rng.choice(len(ys), 40, replace=False)
        y, x = ys[pick] + 16, xs[pick] + 16
        arr[0, y[:20], x[:20]], arr[0, y[20:30], x[20:30]], arr[0, y[30:], x[30:]] = np.inf, -np.inf, np.nan
        return arr

    pan_f = _rewritten(pan, str(tmp_path / "pan_inf.tif"), holes, gdal.GDT_Float32, float("nan"))
    fb, out = _run(pan_f, ms, str(tmp_path / "o.tif"), "mtf_glp_hpm")
    (line,) = [line for line in fb.lines if "only because of the PAN" in line]
    assert "(the PAN holds NaN or infinite values there)" in line, line


SUBSET = [1, 2, 4]   # MS_BANDS leaving out Red: the file's band 4 (NIR) is the run's third band


def _subset_run(pan: str, ms: str, out: str, method: str) -> RecordingFeedback:
    fb = RecordingFeedback()
    pansharpen(pan, ms, out, "wv2", method, feedback=fb, ms_bands=SUBSET)
    return fb


def test_a_flat_band_of_an_ms_bands_subset_is_named_by_its_file_number(pair2, tmp_path):
    """Review: with MS_BANDS 1,2,4 and the file's band 4 at 500 the log said 'MS band 3 (NIR) holds one value' and
    told the user to leave it out with MS_BANDS, where band 3 (Red) was already left out. The band is named by its
    number in the file, the number MS_BANDS takes."""
    pan, ms = pair2

    def nir_500(arr, mask):
        arr[3][~mask[3]] = 500
        return arr

    const = _rewritten(ms, str(tmp_path / "const.tif"), nir_500)
    fb = _subset_run(pan, const, str(tmp_path / "o.tif"), "mtf_glp_hpm")
    (line,) = [line for line in fb.lines if "one value everywhere" in line]
    assert line.startswith("WARNING MS band 4 (NIR) holds one value everywhere on the scene (500"), line


def test_the_below_zero_shares_of_an_ms_bands_subset_name_the_files_band_numbers(pair2, tmp_path):
    """Review: the 'below 0' warning numbered the MS bands by their position in MS_BANDS (NIR as 'band 3')."""
    pan, ms = pair2

    pan_f, ms_f = _offset_reflectance(pan, ms, tmp_path)
    fb = _subset_run(pan_f, ms_f, str(tmp_path / "o.tif"), "mtf_glp_hpm")
    (line,) = [line for line in fb.lines if "below 0 in the sampled pixels" in line]
    shares = dict(re.findall(r"(band \d \(\w+\)|PAN) (\d+\.\d)%", line))
    assert {"band 1 (Blue)", "band 2 (Green)", "band 4 (NIR)"} <= set(shares), line
    assert "band 3" not in line, line


def test_an_all_nodata_band_of_an_ms_bands_subset_is_refused_by_its_file_number(pair2, tmp_path):
    """Review: the refusal of an MS band without data named its position in MS_BANDS ('MS band 3 (NIR)') and told
    the user to leave it out with MS_BANDS, where '3' means Red. It names the file's band 4, and writes nothing."""
    from ksdiff_qgis.engine.errors import InputError

    pan, ms = pair2

    def no_nir(arr, mask):
        arr[3] = 0   # the file's nodata
        return arr

    holes = _rewritten(ms, str(tmp_path / "holes.tif"), no_nir)
    out = tmp_path / "o.tif"
    with pytest.raises(InputError, match=r"MS band 4 \(NIR\) is nodata \(or NaN\) everywhere"):
        _subset_run(pan, holes, str(out), "mtf_glp_hpm")
    assert not out.exists()


def test_the_below_zero_warning_writes_a_band_name_on_one_line(pair2, tmp_path):
    """Review: the 'below 0' warning put the band's name from the file into the log as written: a description
    'NIR\\nINFO: all fine' made a fake INFO line. It is escaped, as every band name the log shows."""
    pan, ms = pair2

    pan_f, ms_f = _offset_reflectance(pan, ms, tmp_path)
    ds = gdal.Open(ms_f, gdal.GA_Update)   # held: a band outliving its dataset crashes GDAL
    ds.GetRasterBand(4).SetDescription("NIR\nINFO: all fine")
    ds = None
    fb, _ = _run(pan_f, ms_f, str(tmp_path / "o.tif"), "mtf_glp_hpm")
    (line,) = [line for line in fb.lines if "below 0 in the sampled pixels" in line]
    assert "\n" not in line and r"band 4 (NIR\nINFO: all fine)" in line, line


def test_the_advice_on_several_flat_bands_speaks_of_them_all(pair2, tmp_path):
    """Review: two constant bands were listed, then the warning said '(500, 700: a constant band)' and 'If the band
    should hold data ... leave it out' as of one band. It takes the plural with the list."""
    pan, ms = pair2

    def two_constant(arr, mask):
        arr[2][~mask[2]], arr[3][~mask[3]] = 500, 700
        return arr

    const = _rewritten(ms, str(tmp_path / "const.tif"), two_constant)
    fb, _ = _run(pan, const, str(tmp_path / "o.tif"), "mtf_glp_hpm")
    (line,) = [line for line in fb.lines if "one value everywhere" in line]
    assert line.startswith("WARNING MS bands 3 (Red), 4 (NIR) hold one value everywhere on the scene (500, 700: "
                           "constant bands)"), line
    assert line.endswith("If the bands should hold data, check the MS; else leave them out with MS bands to fuse "
                         "(MS_BANDS), or fuse with GSA or MTF-GLP-FS, which keep such bands at their values."), line
