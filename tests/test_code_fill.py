"""An undeclared fill code on a scene edge (-9999 or -32768 in Int16 Sentinel-2 reflectance x 10^4, 65535 in UInt16
Landsat 8), or a negative sentinel code (-9999, -32768) anywhere and in any band: left out as nodata, as if the file
declared it, and said once with the command that declares it. A saturated top (8-bit 255, 16-bit 65535 on bright
targets), in all bands or some, stays data. Real scenes of the data cache (QA)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal
from scipy.ndimage import gaussian_filter

from ksdiff_qgis.engine import codefill
from ksdiff_qgis.engine.pipeline import pansharpen
from model_core.datacache import data_dir as cache_dir

SAID = "declares no nodata value, yet"
# (source PAN, its band, source MS, its bands, storage type, sensor, wedge size in metres)
SCENES = {"s2": ("sentinel2/s2_10m.tif", 4, "sentinel2/s2_20m.tif", [1, 2, 3, 7], gdal.GDT_Int16, "generic", 1800),
          "l8": ("landsat8/pan.tif", 1, "landsat8/ms.tif", [1, 2, 3, 4], gdal.GDT_UInt16, "landsat8", 2700)}


def _cached(relative: str) -> Path:
    found = cache_dir() / relative
    if not found.exists():
        pytest.skip(f"no {relative} in the data cache (make data)")
    return found


def _crop(src: Path, dst: Path, size: int, bands: list[int], dtype: int, value: float, declare: bool,
          corner: tuple[float, float], edge: float) -> str:
    """``src``'s top-left ``size`` pixels of ``bands`` as ``dtype``, with ``value`` over the wedge of ground within
    ``edge`` metres (x + y) of the scene's ``corner`` (a scene-edge fill, in PAN and MS alike), declared or not."""
    ds = gdal.Translate(str(dst), str(src), srcWin=[0, 0, size, size], bandList=bands, outputType=dtype)
    gt = ds.GetGeoTransform()
    yy, xx = np.mgrid[0:size, 0:size]
    wedge = (gt[0] + (xx + 0.5) * gt[1] - corner[0]) + (corner[1] - gt[3] - (yy + 0.5) * gt[5]) < edge
    _fill(ds, wedge, value, declare)
    ds = None
    return str(dst)


def _fill(ds: gdal.Dataset, where, value: float, declare: bool, bands: list[int] | None = None) -> None:
    """``value`` written at ``where`` (a mask or a window) in ``bands`` of ``ds`` (1-based; None: all), and declared
    as every band's nodata value when ``declare``."""
    for b in range(1, ds.RasterCount + 1):
        band = ds.GetRasterBand(b)
        if bands is None or b in bands:
            a = band.ReadAsArray()
            a[where] = value
            band.WriteArray(a)
        if declare:
            band.SetNoDataValue(value)


def _scene(tmp: Path, name: str, value: float, declare: bool) -> tuple[str, str, str]:
    pan_src, pan_band, ms_src, ms_bands, dtype, sensor, edge = SCENES[name]
    gt = gdal.Open(str(_cached(pan_src))).GetGeoTransform()
    folder = tmp / f"{name}_{value}_{declare}"
    folder.mkdir()
    pan = _crop(_cached(pan_src), folder / "pan.tif", 512, [pan_band], dtype, value, declare, (gt[0], gt[3]), edge)
    ms = _crop(_cached(ms_src), folder / "ms.tif", 256, ms_bands, dtype, value, declare, (gt[0], gt[3]), edge)
    return pan, ms, sensor


@pytest.mark.parametrize("name, value, method", [("s2", -9999, "mtf_glp_hpm"), ("s2", -9999, "ksdiff"),
                                                 ("s2", -32768, "mtf_glp_hpm"), ("l8", 65535, "mtf_glp_hpm")])
def test_an_undeclared_fill_code_is_fused_as_if_declared(tmp_path, name, value, method):
    """Fused as data, the wedge's code reached the valid pixels beside it (full-scene QA, MTF-GLP-HPM: up to 33474
    off at -9999, 32321 at -32768, 8704 at 65535; KSDiff 4678 at -9999) and the only word was "8% of the sampled
    pixels are below 0". Now the output is the declared run's bit for bit, nodata included, and one warning per
    input gives the gdal_edit.py command."""
    runs = {}
    for declare in (True, False):
        pan, ms, sensor = _scene(tmp_path, name, value, declare)
        res = pansharpen(pan, ms, str(Path(pan).parent / "out.tif"), sensor, method)
        out = gdal.Open(res.output_path)
        runs[declare] = (out.ReadAsArray(), out.GetRasterBand(1).GetNoDataValue(), res.warnings, out.GetMetadata())
    (declared, nd, _, _), (undeclared, und, warnings, meta) = runs[True], runs[False]
    assert und == nd == value
    assert np.array_equal(declared, undeclared), float(np.abs(declared.astype(float) - undeclared).max())
    said = [w for w in warnings if SAID in w]
    assert len(said) == 2, warnings
    for role, w in zip(("PAN", "MS"), said):
        assert w.startswith(f"The {role} raster") and f"gdal_edit.py -a_nodata {value} " in w, w
    assert not any("below 0" in w for w in warnings), warnings
    assert meta["KSDIFF_MS_NODATA_SOURCE"] == meta["KSDIFF_PAN_NODATA_SOURCE"] == "fill"
    assert meta["KSDIFF_MS_NODATA"] == str(value)


def test_method_auto_checks_an_undeclared_fill_as_a_declared_one(tmp_path):
    """METHOD auto on the Sentinel-2 scene with an undeclared -9999 wedge: the self-check scored the code as data
    (full scene: KSDiff's R-ERGAS 4.93 against 4.39) and fused with MTF-GLP-FS where the declared scene keeps
    KSDiff. Now the same choice and figures as the declared scene."""
    checks = {}
    for declare in (True, False):
        pan, ms, sensor = _scene(tmp_path, "s2", -9999, declare)
        checks[declare] = pansharpen(pan, ms, str(Path(pan).parent / "auto.tif"), sensor, "auto",
                                     check_only=True).selfcheck
    assert checks[False].method == checks[True].method, checks[False].reason
    assert checks[False].outputs() == checks[True].outputs()


def _clipped(path: Path, percentile: float, top: int) -> np.ndarray:
    """The real raster scaled so its ``percentile`` reaches ``top`` (the type's maximum) and clipped there: bright
    targets saturated, as an 8-bit or 16-bit product holds them."""
    a = gdal.Open(str(path)).ReadAsArray().astype(np.float64)
    a = a[None] if a.ndim == 2 else a
    return np.clip(np.round(a / np.percentile(a[a > 0], percentile) * top), 0, top)


def _dataset(a: np.ndarray, dtype: int) -> gdal.Dataset:
    ds = gdal.GetDriverByName("MEM").Create("", a.shape[2], a.shape[1], a.shape[0], dtype)
    for b, band in enumerate(a, 1):
        ds.GetRasterBand(b).WriteArray(band)
    return ds


@pytest.mark.parametrize("path", ["landsat8/pan.tif", "landsat8/ms.tif", "wv2/pair1_pan.tif", "wv2/pair1_ms.tif",
                                  "wv2/pair2_pan.tif", "sentinel2/s2_10m.tif"])
@pytest.mark.parametrize("top, dtype", [(255, gdal.GDT_Byte), (65535, gdal.GDT_UInt16)])
def test_a_saturated_top_stays_data(path, top, dtype):
    """Bright targets clipped at the type's top (5 % of the pixels: clouds, roofs; 1-5 % in a band or more) come
    with the values just below them: no gap, so no fill. The scenes as stored hold none either."""
    a = _clipped(_cached(path), 95, top)
    assert (a == top).any(axis=0).mean() > 0.01
    np_type = np.uint8 if dtype == gdal.GDT_Byte else np.uint16
    assert codefill.find(codefill.sample(_dataset(a, dtype)), np_type) is None
    stored = gdal.Open(str(_cached(path)))
    assert codefill.find(codefill.sample(stored), np.uint16) is None


def test_an_8bit_fill_of_255_beside_data_below_it_is_found(tmp_path):
    """An 8-bit product whose data end at 200 and whose scene edge holds 255: a fill, found as -9999 is."""
    a = np.round(_clipped(_cached("wv2/pair1_ms.tif"), 100, 200))
    h, w = a.shape[1:]
    yy, xx = np.mgrid[0:h, 0:w]
    a[:, xx + yy < 0.4 * w] = 255
    assert codefill.find(codefill.sample(_dataset(a, gdal.GDT_Byte)), np.uint8) == 255


def _disk(shape: tuple[int, int], blur: float) -> np.ndarray:
    """A disk a quarter of the scene's size across its centre (0 to 1), edged by a Gaussian of ``blur`` pixels."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    disk = (np.hypot((yy - 0.5 * h) / h, (xx - 0.5 * w) / w) < 0.25).astype(float)
    return gaussian_filter(disk, blur) if blur else disk


def _copy(src: Path, dst: Path, a: np.ndarray, dtype: int = gdal.GDT_Unknown) -> str:
    """``src`` (its georeferencing, all its bands) holding ``a`` (C, h, w) as ``dtype`` (its own if unknown)."""
    ds = gdal.Translate(str(dst), str(src), outputType=dtype) if dtype else \
        gdal.GetDriverByName("GTiff").CreateCopy(str(dst), gdal.Open(str(src)))
    for b, band in enumerate(a, 1):
        ds.GetRasterBand(b).WriteArray(band)
    ds = None
    return str(dst)


def test_a_saturated_cloud_inside_the_scene_stays_data(tmp_path):
    """QA: the real Landsat 8 PAN and MS with a disk-shaped cloud clipped at 65535 (sharp edge, a 1-pixel blur, 19 %
    of the scene). The 8 x 8 windows missed its edge pixels, so 65535 looked like a fill outside the data (6461 to
    30998) and 19.5 % of the output became nodata. Now the whole-raster read sees its blurred edge fill the gap and
    that it does not reach the border: data, fused, no fill warning."""
    pan_src, ms_src = _cached("landsat8/pan.tif"), _cached("landsat8/ms.tif")
    p = gdal.Open(str(pan_src)).ReadAsArray().astype(np.float64)
    m = _disk(p.shape, 1.0)
    pan = _copy(pan_src, tmp_path / "pan.tif", np.clip(p * (1 - m) + 70000 * m, 0, 65535).round()[None])
    a = gdal.Open(str(ms_src)).ReadAsArray().astype(np.float64)
    m = _disk(a.shape[1:], 1.0)
    ms = _copy(ms_src, tmp_path / "ms.tif", np.clip(a * (1 - m) + 70000 * m, 0, 65535).round())
    assert codefill.find(codefill.sample(gdal.Open(pan)), np.uint16) == 65535   # the windows alone are fooled
    res = pansharpen(pan, ms, str(tmp_path / "out.tif"), "landsat8", "mtf_glp_hpm")
    out = gdal.Open(res.output_path)
    assert not [w for w in res.warnings if SAID in w], res.warnings
    assert out.GetMetadataItem("KSDIFF_PAN_NODATA_SOURCE") == out.GetMetadataItem("KSDIFF_MS_NODATA_SOURCE") == "none"
    assert (out.GetRasterBand(1).GetMaskBand().ReadAsArray() == 255).all()
    assert (out.ReadAsArray() == 65535).all(axis=0).mean() > 0.15   # the cloud is there, saturated


@pytest.mark.parametrize("dtype, scale", [(gdal.GDT_Int16, 1.0), (gdal.GDT_Float32, 1e-4)])
def test_water_clipped_to_minus_one_inside_the_scene_stays_data(tmp_path, dtype, scale):
    """Sentinel-2 reflectance (Int16 x 10^4, or float) whose lake, inside the scene, is clipped to exactly -1 in
    every band of PAN and MS: negative where all else is >= 0, so the windows take it for a fill. It does not reach
    the scene's border and lies next to the data: fused as data, no fill warning."""
    runs = {}
    for role, rel in (("pan", "sentinel2/s2_10m.tif"), ("ms", "sentinel2/s2_20m.tif")):
        src = _cached(rel)
        a = gdal.Open(str(src)).ReadAsArray().astype(np.float64) * scale
        a[:, _disk(a.shape[1:], 0) > 0.5] = -1
        runs[role] = _copy(src, tmp_path / f"{role}.tif", a, dtype)
    ms_type = np.int16 if dtype == gdal.GDT_Int16 else np.float32
    assert codefill.find(codefill.sample(gdal.Open(runs["ms"])), ms_type) == -1   # the windows alone are fooled
    gdal.Translate(str(tmp_path / "pan1.tif"), runs["pan"], bandList=[4]).FlushCache()
    res = pansharpen(str(tmp_path / "pan1.tif"), runs["ms"], str(tmp_path / "out.tif"), "generic", "mtf_glp_hpm")
    out = gdal.Open(res.output_path)
    assert not [w for w in res.warnings if SAID in w], res.warnings
    assert out.GetMetadataItem("KSDIFF_PAN_NODATA_SOURCE") == out.GetMetadataItem("KSDIFF_MS_NODATA_SOURCE") == "none"
    assert (out.GetRasterBand(1).GetMaskBand().ReadAsArray() == 255).all()


def test_a_hole_at_a_negative_sentinel_code_inside_the_scene_is_still_a_fill():
    """A -32768 or -9999 hole masked out of Int16 reflectance inside the scene (no saturation or clipping makes
    either): a fill, border or not; the same hole at -1 is data (water clipped); a 65535 plateau inside a UInt16
    scene, apart from the data, is a saturated object (data) where the same value on a corner wedge is a fill."""
    a = gdal.Open(str(_cached("sentinel2/s2_20m.tif"))).ReadAsArray()[:4].astype(np.float64)
    hole = _disk(a.shape[1:], 0) > 0.5
    for value, fill in ((-32768, True), (-9999, True), (-1, False)):
        b = a.copy()
        b[:, hole] = value
        assert codefill.confirmed(codefill.overview(_dataset(b, gdal.GDT_Int16)), value, np.int16) is fill
    b = np.round(a / a.max() * 30000)
    b[:, hole] = 65535
    assert not codefill.confirmed(codefill.overview(_dataset(b, gdal.GDT_UInt16)), 65535, np.uint16)
    yy, xx = np.mgrid[0:b.shape[1], 0:b.shape[2]]
    b = np.round(a / a.max() * 30000)
    b[:, xx + yy < 0.3 * b.shape[2]] = 65535
    assert codefill.confirmed(codefill.overview(_dataset(b, gdal.GDT_UInt16)), 65535, np.uint16)


# an interior block (a masked cloud, a gap inside the scene): MS rows, cols (PAN: twice as many); one band's stripe
BLOCK = (slice(100, 140), slice(90, 150))
STRIPE = (slice(60, 200), slice(120, 132))


def _planted(tmp: Path, value: float, declare: bool, block: tuple[slice, slice], ms_band: int | None = None
             ) -> tuple[str, str]:
    """The Sentinel-2 PAN (512 px, B8) and MS (256 px, 4 bands) as Int16 with ``value`` over the MS pixels ``block``
    and the PAN pixels beneath them, or in MS band ``ms_band`` only (the PAN keeps its data); declared or not."""
    pan_src, pan_band, ms_src, ms_bands = SCENES["s2"][:4]
    folder = tmp / f"{value}_{declare}_{ms_band}"
    folder.mkdir()
    paths = []
    for role, src, bands, scale in (("pan", pan_src, [pan_band], 2), ("ms", ms_src, ms_bands, 1)):
        size = 256 * scale
        ds = gdal.Translate(str(folder / f"{role}.tif"), str(_cached(src)), srcWin=[0, 0, size, size],
                            bandList=bands, outputType=gdal.GDT_Int16)
        window = tuple(slice(s.start * scale, s.stop * scale) for s in block)
        _fill(ds, window, value, declare, None if ms_band is None else [ms_band] if role == "ms" else [])
        ds = None
        paths.append(str(folder / f"{role}.tif"))
    return paths[0], paths[1]


def _runs(tmp: Path, value: float, method: str, block: tuple[slice, slice], ms_band: int | None = None) -> dict:
    """{declared: (output array, its validity mask, its nodata value, warnings, metadata)} of both runs."""
    runs = {}
    for declare in (True, False):
        pan, ms = _planted(tmp, value, declare, block, ms_band)
        res = pansharpen(pan, ms, str(Path(pan).parent / "out.tif"), "generic", method)
        out = gdal.Open(res.output_path)
        band = out.GetRasterBand(1)
        runs[declare] = (out.ReadAsArray(), band.GetMaskBand().ReadAsArray() > 0, band.GetNoDataValue(),
                         res.warnings, out.GetMetadata())
    return runs


@pytest.mark.parametrize("value, method", [(-9999, "mtf_glp_hpm"), (-9999, "ksdiff"), (-32768, "mtf_glp_hpm")])
def test_an_interior_fill_code_is_fused_as_if_declared(tmp_path, value, method):
    """QA: a -9999 block inside a Sentinel-2 Int16 scene (a masked cloud, not touching the border), undeclared, was
    fused as data: MTF-GLP-HPM up to 33844 off within 8 pixels of it, KSDiff 9842, and no word. A negative
    sentinel code is no saturation: now nodata wherever it is, the declared run's output bit for bit, one warning
    per input with the gdal_edit.py command."""
    runs = _runs(tmp_path, value, method, BLOCK)
    (declared, valid, nd, _, _), (undeclared, uvalid, und, warnings, meta) = runs[True], runs[False]
    assert und == nd == value
    assert np.array_equal(valid, uvalid) and not valid[200:280, 180:300].any()
    assert np.array_equal(declared, undeclared), float(np.abs(declared.astype(float) - undeclared).max())
    said = [w for w in warnings if SAID in w]
    assert len(said) == 2, warnings
    for role, w in zip(("PAN", "MS"), said):
        assert w.startswith(f"The {role} raster") and f"gdal_edit.py -a_nodata {value} " in w, w
        assert "wherever it is" in w and "only" not in w, w
    assert meta["KSDIFF_MS_NODATA_SOURCE"] == meta["KSDIFF_PAN_NODATA_SOURCE"] == "fill"


@pytest.mark.parametrize("method", ["mtf_glp_hpm", "ksdiff"])
def test_a_fill_code_in_one_band_only_is_nodata_in_every_band(tmp_path, method):
    """QA: -9999 in one MS band only (a detector gap; the other bands hold data there), undeclared, was fused as a
    value: MTF-GLP-HPM up to 3015 off beside it, KSDiff 3239. Now such a pixel is nodata in every output band, as with
    -9999 declared (one nodata value for all bands; a pixel that holds it in any band is a hole), and the warning
    names the band."""
    runs = _runs(tmp_path, -9999, method, STRIPE, ms_band=2)
    (declared, valid, nd, _, _), (undeclared, uvalid, und, warnings, meta) = runs[True], runs[False]
    assert und == nd == -9999
    assert np.array_equal(valid, uvalid) and not valid[120:400, 240:264].any() and valid.mean() > 0.9
    assert (undeclared[:, 120:400, 240:264] == -9999).all()
    assert np.array_equal(declared, undeclared), float(np.abs(declared.astype(float) - undeclared).max())
    said = [w for w in warnings if SAID in w]
    assert len(said) == 1 and said[0].startswith("The MS raster"), warnings
    assert "-9999 in band 2 only" in said[0] and "nodata in all" in said[0], said[0]
    assert meta["KSDIFF_MS_NODATA_SOURCE"] == "fill" and meta["KSDIFF_PAN_NODATA_SOURCE"] == "none"


def test_a_positive_extreme_in_some_bands_only_stays_data():
    """65535 on a corner wedge of one or two bands of the real Landsat 8 MS (UInt16: saturation of a bright band
    reaching the border) and 255 on 8-bit WorldView-2: data, as the same top inside the scene; a fill at the top
    is one in every band only. -1 (water clipped) in one band on a wedge is data too."""
    for rel, dtype, np_type, top in (("landsat8/ms.tif", gdal.GDT_UInt16, np.uint16, 65535),
                                     ("wv2/pair1_ms.tif", gdal.GDT_Byte, np.uint8, 255)):
        a = np.round(_clipped(_cached(rel), 100, 0.8 * top))
        h, w = a.shape[1:]
        yy, xx = np.mgrid[0:h, 0:w]
        for bands in ([0], [0, 1]):
            b = a.copy()
            for i in bands:
                b[i][xx + yy < 0.4 * w] = top
            ds = _dataset(b, dtype)
            assert codefill.find(codefill.sample(ds), np_type) is None, (rel, bands)
    a = gdal.Open(str(_cached("sentinel2/s2_20m.tif"))).ReadAsArray()[:4].astype(np.float64)
    yy, xx = np.mgrid[0:a.shape[1], 0:a.shape[2]]
    a[1][xx + yy < 0.4 * a.shape[2]] = -1
    assert codefill.find(codefill.sample(_dataset(a, gdal.GDT_Int16)), np.int16) is None


def test_which_negative_codes_are_sentinels():
    """Runs of nines from -999 and signed types' lowest values; not -1, -99, -1e4 nor any positive value."""
    for value, dtype in ((-9999, np.int16), (-999, np.float32), (-99999, np.int32), (-32768, np.int16),
                         (-32768, np.float32), (-128, np.int8), (-2147483648, np.float64),
                         (float(-np.finfo(np.float32).max), np.float32)):
        assert codefill.sentinel(float(value), dtype), (value, dtype)
    for value, dtype in ((-1, np.int16), (-99, np.int16), (-10000, np.float32), (-9999.5, np.float32),
                         (65535, np.uint16), (9999, np.int16), (0, np.int16)):
        assert not codefill.sentinel(float(value), dtype), (value, dtype)


def _collared(folder: Path, overviews: bool) -> tuple[str, str]:
    """The Landsat 8 PAN and MS at 200 % (PAN 6 Mpx: a decimated read of it is answered from 2x overviews) with an
    undeclared 65535 collar on a top-left wedge and a bright strip beside it; with an AVERAGE .ovr when
    ``overviews`` (the same pixels)."""
    folder.mkdir()
    paths = []
    for role, rel in (("pan", "landsat8/pan.tif"), ("ms", "landsat8/ms.tif")):
        path = str(folder / f"{role}.tif")
        ds = gdal.Translate(path, str(_cached(rel)), widthPct=200, heightPct=200, resampleAlg="cubic",
                            creationOptions=["TILED=YES", "COMPRESS=DEFLATE"])
        yy, xx = np.mgrid[0:ds.RasterYSize, 0:ds.RasterXSize]
        across = xx / ds.RasterXSize + yy / ds.RasterYSize
        for b in range(1, ds.RasterCount + 1):
            a = ds.GetRasterBand(b).ReadAsArray().astype(float) * 1.5
            a[(across >= 0.35) & (across < 0.45)] += 20000
            a = np.clip(a, 0, 60000)
            a[across < 0.35] = 65535
            ds.GetRasterBand(b).WriteArray(a.astype(np.uint16))
        ds = None
        if overviews:
            ds = gdal.Open(path)   # read-only: the overviews go to an external .ovr
            ds.BuildOverviews("AVERAGE", [2, 4, 8])
            ds = None
        paths.append(path)
    return paths[0], paths[1]


def test_an_undeclared_fill_is_found_whatever_overviews_the_file_has(tmp_path):
    """QA: the same pixels with an AVERAGE .ovr (or as a COG) hid the collar: the whole-raster read came from the
    overviews, whose averaged plateau edge closed the gap to the data, so 6 % of the scene was fused as data, the
    output declared no nodata and 8514 pixels beside the collar were up to 23311 DN off. Now the same output,
    nodata and warnings; the data range the warning quotes is the real pixels' (the .ovr's said 9599 to 53146)."""
    runs = {}
    for overviews in (False, True):
        pan, ms = _collared(tmp_path / f"ovr{int(overviews)}", overviews)
        res = pansharpen(pan, ms, str(Path(pan).parent / "out.tif"), "landsat8", "mtf_glp_hpm")
        out = gdal.Open(res.output_path)
        said = [w.split(" To make the file")[0] for w in res.warnings if SAID in w]
        runs[overviews] = (out.ReadAsArray(), out.GetRasterBand(1).GetNoDataValue(), said)
    (plain, nd, said), (ovr, ovr_nd, ovr_said) = runs[False], runs[True]
    assert nd == ovr_nd == 65535
    assert len(said) == 1 and said[0].startswith("The PAN raster") and ovr_said == said, (said, ovr_said)
    assert np.array_equal(plain, ovr), float(np.abs(plain.astype(float) - ovr).max())
