"""Pipelined engine and output options: parallel == sequential, whole block rows, cancel, compression, COG."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from fixture_helpers import StopAfter
from osgeo import gdal

from ksdiff_qgis.engine import classical
from ksdiff_qgis.engine.errors import Cancelled, InputError
from ksdiff_qgis.engine.feedback import RecordingFeedback
from ksdiff_qgis.engine.model_card import bundled_cards
from ksdiff_qgis.engine.parallel import TilePool
from ksdiff_qgis.engine.pipeline import pansharpen
from ksdiff_qgis.engine.raster_io import outputs
from ksdiff_qgis.engine.tiling import blend_strips


def _pixels(path):
    return gdal.Open(str(path)).ReadAsArray()


def _learned_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return "wv2" in bundled_cards()


METHODS = list(classical.FUSERS) + (["ksdiff"] if _learned_available() else [])


@pytest.mark.parametrize("method", METHODS)
def test_parallel_output_equals_sequential(data_dir, tmp_path, method):
    """Many small overlapping tiles, fused 1, 2 or 3 at a time: the same pixels, bit for bit."""
    pan, ms = str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif")
    runs = {}
    for workers in (1, 2, 3):
        out = tmp_path / f"w{workers}.tif"
        res = pansharpen(pan, ms, str(out), "wv2", method, tile_size=72, overlap=12, workers=workers, device="cpu")
        assert res.tiles >= 16   # 4x4 abutting tiles for a classical method, more for an overlapping one
        runs[workers] = _pixels(out)
    assert np.array_equal(runs[1], runs[2]) and np.array_equal(runs[1], runs[3])


def test_parallel_nodata_scene_equals_sequential(data_dir, tmp_path):
    pan, ms = str(data_dir / "wv2_nodata_pan.tif"), str(data_dir / "wv2_nodata_ms.tif")
    a = pansharpen(pan, ms, str(tmp_path / "a.tif"), "wv2", "brovey", tile_size=64, overlap=8, workers=1)
    b = pansharpen(pan, ms, str(tmp_path / "b.tif"), "wv2", "brovey", tile_size=64, overlap=8, workers=2)
    assert np.array_equal(_pixels(a.output_path), _pixels(b.output_path))


def test_tile_pool_feeds_blend_strips_in_order():
    """Tiles finishing out of order still reach the blender in its own order; the result equals a plain run."""
    rng = np.random.default_rng(1)
    values = {}

    def tile(r, c, h, w):
        time.sleep(float(rng.uniform(0, 0.002)))
        values.setdefault((r, c), float(r * 1000 + c))
        return np.full((2, h, w), values[(r, c)], dtype=np.float32) + np.arange(w, dtype=np.float32)

    plain = [s.copy() for _, s in blend_strips(300, 260, 64, 16, tile)]
    with TilePool(tile, 300, 260, 64, 16, workers=3) as pool:
        pooled = [s.copy() for _, s in blend_strips(300, 260, 64, 16, pool)]
    assert len(plain) == len(pooled) and all(np.array_equal(a, b) for a, b in zip(plain, pooled))


def test_tile_pool_stops_within_one_tile_per_worker():
    started, lock = [], threading.Lock()

    def tile(r, c, h, w):
        with lock:
            started.append((r, c))
            n = len(started)
        if n >= 3:
            raise Cancelled("stop")
        time.sleep(0.01)
        return np.zeros((1, h, w), dtype=np.float32)

    pool = TilePool(tile, 1000, 1000, 64, 0, workers=2)
    with pytest.raises(Cancelled):
        for _ in blend_strips(1000, 1000, 64, 0, pool):
            pass
    pool.close()
    total = len(started)
    time.sleep(0.05)
    assert len(started) == total          # nothing runs after close()
    assert total <= 3 + 2 * 2             # the tiles in flight when the cancel came (depth 2 per worker)


@pytest.mark.parametrize("cuts", [[0, 130, 480, 512, 700, 1000], [0, 100, 200, 300, 1000], [0, 1000],
                                  [0, 256, 512, 999, 1000]])
def test_block_row_writer_flushes_whole_block_rows_only(cuts):
    from ksdiff_qgis.engine.parallel import BlockRowWriter

    data = np.arange(3 * 1000 * 50, dtype=np.float32).reshape(3, 1000, 50)
    out = np.zeros(data.shape, dtype=np.int64)
    written, flushed = [0], []

    def write(arr, row, col):
        assert arr.dtype == np.int64
        out[:, row : row + arr.shape[1], col : col + arr.shape[2]] = arr
        written[0] = max(written[0], row + arr.shape[1])

    def flush():
        flushed.append(written[0])

    w = BlockRowWriter(write, flush, lambda a: a.astype(np.int64), 256, 1000, chunk=16)
    for a, b in zip(cuts, cuts[1:]):
        w.add(a, data[:, a:b])
    w.finish()
    assert np.array_equal(out, data.astype(np.int64))
    assert flushed and flushed[-1] == 1000
    assert all(f % 256 == 0 or f == 1000 for f in flushed)   # never a half-written block row


@pytest.mark.parametrize("method", list(classical.FUSERS))
@pytest.mark.parametrize("scene", ["wv2", "wv2_nodata"])
def test_block_aligned_tiles_equal_blended_strips(data_dir, tmp_path, method, scene):
    """Classical methods on block-aligned tiles without overlap, 1-3 at a time: the pixels of strips of tiles
    smaller than a block (which need no overlap either: OVERLAP 12 is not used), bit for bit."""
    pan, ms = str(data_dir / f"{scene}_pan.tif"), str(data_dir / f"{scene}_ms.tif")
    strips = pansharpen(pan, ms, str(tmp_path / "s.tif"), "wv2", method, tile_size=72, overlap=12, workers=1)
    ref = _pixels(strips.output_path)
    for workers in (1, 2, 3):
        res = pansharpen(pan, ms, str(tmp_path / f"a{workers}.tif"), "wv2", method, tile_size=72, overlap=12,
                         workers=workers, create_options="BLOCKXSIZE=64|BLOCKYSIZE=64")
        assert res.tiles == (gdal.Open(pan).RasterXSize // 64) ** 2
        assert np.array_equal(_pixels(res.output_path), ref)


def test_aligned_tiles_cover_the_grid_on_block_edges():
    from ksdiff_qgis.engine.tiling import aligned_tiles

    assert aligned_tiles(1000, 1000, 200, (256, 256)) is None          # tiles below a block: blended strips
    tiles = aligned_tiles(1000, 700, 600, (256, 128))
    cover = np.zeros((1000, 700), dtype=int)
    for r, c, h, w in tiles:
        assert r % 512 == 0 and c % 512 == 0                            # 600 rounded down to whole blocks
        cover[r : r + h, c : c + w] += 1
    assert (cover == 1).all() and tiles == sorted(tiles)                # row by row, no overlap, no gap
    assert aligned_tiles(300, 200, 512, (256, 256)) == [(0, 0, 300, 200)]


def test_input_cache_flushes_past_its_budget():
    from ksdiff_qgis.engine.blockcache import InputCache

    class Ds:
        flushed = 0

        def FlushCache(self):   # noqa: N802 (GDAL's name)
            self.flushed += 1

    ds = Ds()
    cache = InputCache([ds], threading.Lock(), budget_mb=1e6)
    assert ds.flushed == 1          # what was cached before the tiles is dropped first
    cache.trim()
    assert ds.flushed == 1
    InputCache([ds], threading.Lock(), budget_mb=-1).trim()
    assert ds.flushed == 3


def test_blocks_read_before_the_tiles_leave_gdal_cache(data_dir):
    """Scene statistics read windows spread over the whole scene: kept in GDAL's cache, they grew with the
    scene and set the tiles' cache budget above them (peak memory +12 % from 2048² to 8192²)."""
    from ksdiff_qgis.engine.blockcache import InputCache
    from ksdiff_qgis.engine.grid import plan_grid
    from ksdiff_qgis.engine.pipeline import estimate_scene_stats
    from ksdiff_qgis.engine.raster_io import describe

    pan_ds, ms_ds = gdal.Open(str(data_dir / "wv2_pan.tif")), gdal.Open(str(data_dir / "wv2_ms.tif"))
    pan, ms = describe(pan_ds, "pan"), describe(ms_ds, "ms")
    base = gdal.GetCacheUsed()
    estimate_scene_stats(pan_ds, ms_ds, pan, ms, plan_grid(pan, ms, ms_ds), gains=(0.35,) * 4)
    assert gdal.GetCacheUsed() == base
    pan_ds.ReadAsArray()
    assert gdal.GetCacheUsed() > base
    InputCache([pan_ds, ms_ds], threading.Lock())
    assert gdal.GetCacheUsed() == base


@pytest.mark.parametrize("options", [None, "BLOCKXSIZE=64|BLOCKYSIZE=64"])
def test_cancel_with_parallel_workers_leaves_nothing(data_dir, tmp_path, options):
    with pytest.raises(Cancelled):
        pansharpen(str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), str(tmp_path / "o.tif"), "wv2",
                   "mtf_glp_hpm", tile_size=64, overlap=0, feedback=StopAfter(2), workers=2, create_options=options)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------ output options
def test_default_options_are_fast_lossless_and_threaded():
    opts = outputs.gtiff_options("u")
    for o in ("TILED=YES", "COMPRESS=DEFLATE", "PREDICTOR=2", "ZLEVEL=1", "NUM_THREADS=ALL_CPUS"):
        assert o in opts
    assert "PREDICTOR=3" in outputs.gtiff_options("f")
    assert "COMPRESS=NONE" in outputs.gtiff_options("u", "none")
    # the user's options win, and bit packing drops the predictor GDAL would refuse
    opts = outputs.gtiff_options("u", "deflate", outputs.parse_options("ZLEVEL=9|NBITS=11"))
    assert "ZLEVEL=9" in opts and "ZLEVEL=1" not in opts and not any(o.startswith("PREDICTOR") for o in opts)
    # bit packing on request only; explicit 16-bit samples keep the predictor
    assert "NBITS=11" in outputs.gtiff_options("u", nbits=11)
    opts = outputs.gtiff_options("u", nbits=11, extra=["NBITS=16"])
    assert "NBITS=16" in opts and "PREDICTOR=2" in opts
    with pytest.raises(InputError):
        outputs.parse_options("COMPRESS")


@pytest.mark.parametrize("compression,tag", [("deflate", "DEFLATE"), ("zstd", "ZSTD"), ("lzw", "LZW"), ("none", None)])
def test_compression_choices_are_lossless(data_dir, tmp_path, compression, tag):
    pan, ms = str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif")
    ref = pansharpen(pan, ms, str(tmp_path / "ref.tif"), "wv2", "gsa", compression="none")
    res = pansharpen(pan, ms, str(tmp_path / "o.tif"), "wv2", "gsa", compression=compression)
    ds = gdal.Open(res.output_path)
    assert ds.GetMetadata("IMAGE_STRUCTURE").get("COMPRESSION") == tag
    assert ds.GetRasterBand(1).GetBlockSize() == [256, 256]
    assert np.array_equal(ds.ReadAsArray(), _pixels(ref.output_path))


def test_nbits_unpacked_by_default_and_packed_on_request(data_dir, tmp_path):
    """An 11-bit product: 16-bit samples with the predictor by default (faster, smaller), packed on request."""
    pan, ms = str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif")
    plain = pansharpen(pan, ms, str(tmp_path / "a.tif"), "wv2", "brovey")
    packed = pansharpen(pan, ms, str(tmp_path / "b.tif"), "wv2", "brovey", create_options="NBITS=11")
    a, b = gdal.Open(plain.output_path), gdal.Open(packed.output_path)   # datasets alive while bands are used
    assert a.GetRasterBand(1).GetMetadataItem("NBITS", "IMAGE_STRUCTURE") is None
    assert a.GetMetadata("IMAGE_STRUCTURE").get("PREDICTOR") == "2"
    assert b.GetRasterBand(1).GetMetadataItem("NBITS", "IMAGE_STRUCTURE") == "11"
    assert np.array_equal(a.ReadAsArray(), b.ReadAsArray())
    assert a.ReadAsArray().max() <= 2047


@pytest.mark.parametrize("nbits, message", [("10", "narrower than the product's 11 bits"),
                                            ("8", "does not fit a uint16 output"), ("x", "not a whole number")])
def test_nbits_that_would_lose_values_is_refused(data_dir, tmp_path, nbits, message):
    """NBITS narrower than the 11-bit product clipped it silently (NBITS=10: 2.8 % of the values; NBITS=8 was
    written as 9 bits); refused before any pixel is written, with what the values need."""
    from ksdiff_qgis.engine.errors import InputError

    out = tmp_path / "o.tif"
    with pytest.raises(InputError, match=message):
        pansharpen(str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), str(out), "wv2", "brovey",
                   create_options=f"NBITS={nbits}")
    assert not out.exists() and not list(tmp_path.glob(".*partial*"))


def _ms16(data_dir, tmp_path) -> str:
    """WorldView-2's MS as a plain 16-bit product: no NBITS of its own (values up to 1481 in the sample)."""
    from model_core.rasters import read, write_geotiff

    r = read(str(data_dir / "wv2_ms.tif"))
    return write_geotiff(str(tmp_path / "ms16.tif"), r.data, r.transform, r.crs, nodata=0)


def test_nbits_on_a_product_without_nbits_clips_where_it_says(data_dir, tmp_path, monkeypatch):
    """A plain 16-bit product asked for NBITS=10 (let through here): the values are clipped at 1023 by the output
    type policy and the clipping count says so, in the log (it named the 16-bit range while GDAL clipped at 10 bits)
    and in the result's warnings (QA134: the batch summary never saw '100 % ... written as 4095')."""
    from ksdiff_qgis.engine.feedback import RecordingFeedback
    from ksdiff_qgis.engine.raster_io import outputs

    monkeypatch.setattr(outputs, "NBITS_CLIP_SHARE", 1.0, raising=False)
    log = RecordingFeedback()
    res = pansharpen(str(data_dir / "wv2_pan.tif"), _ms16(data_dir, tmp_path), str(tmp_path / "o.tif"), "wv2",
                     "brovey", create_options="NBITS=10", feedback=log)
    ds = gdal.Open(res.output_path)
    assert ds.ReadAsArray().max() <= 1023
    assert any("above 1023" in line for line in log.lines), log.lines
    assert any("above 1023" in w and "were out of range" in w for w in res.warnings), res.warnings


@pytest.mark.parametrize("ms, nbits, top, need", [("l8_ms.tif", 12, "21684", "NBITS=15"),
                                                  (None, 10, "1481", "NBITS=11")])
def test_nbits_below_the_data_without_nbits_is_refused(data_dir, tmp_path, ms, nbits, top, need):
    """QA134: NBITS=12 on Landsat 8 (values 5932-21691, no NBITS declared) was accepted and every value written as
    4095, said after the whole fusion. Refused before any tile, with the sampled maximum and the NBITS it needs."""
    from ksdiff_qgis.engine.errors import InputError

    pan = "l8_pan.tif" if ms else "wv2_pan.tif"
    ms_path = str(data_dir / ms) if ms else _ms16(data_dir, tmp_path)
    out = tmp_path / "o.tif"
    with pytest.raises(InputError, match=f"NBITS={nbits} holds values up to {2 ** nbits - 1}.*up to {top}.*{need}"):
        pansharpen(str(data_dir / pan), ms_path, str(out), "landsat8" if ms else "wv2", "mtf_glp_hpm",
                   create_options=f"NBITS={nbits}")
    assert not out.exists() and not list(tmp_path.glob(".*partial*"))


def test_nbits_is_refused_when_one_band_holds_values_above_it(data_dir, tmp_path):
    """QA136: the share above NBITS was pooled over the bands, so one band of 4 with 0.3 % of its values above it
    (0.075 % of all) was clipped without a word. Each band is judged on its own, and the refusal names the band."""
    from ksdiff_qgis.engine.errors import InputError

    def one_hot_band(a):
        a = np.where(a == 0, 0, np.maximum(a // 2, 1))   # at most 740: 10 bits hold every band
        a[2].flat[::300] = 2000   # band 3: 14 of 4096 values (0.34 %) above 1023
        return a

    ms = _derived(data_dir, tmp_path, "ms", one_hot_band, np.uint16, 0)
    out = tmp_path / "o.tif"
    with pytest.raises(InputError, match=r"NBITS=10 holds values up to 1023, but 0\.3\d+% of the values sampled in "
                                         r"MS band 3 .*up to 2000.*NBITS=11"):
        pansharpen(str(data_dir / "wv2_pan.tif"), ms, str(out), "wv2", "mtf_glp_hpm", create_options="NBITS=10")
    assert not out.exists()


def _derived(data_dir, tmp_path, role: str, fn, dtype, nodata) -> str:
    """WorldView-2's ``role`` band(s) with ``fn`` applied to the values, written as ``dtype``."""
    from model_core.rasters import read, write_geotiff

    r = read(str(data_dir / f"wv2_{role}.tif"))
    data = fn(r.data.astype(np.float64)).astype(dtype)
    return write_geotiff(str(tmp_path / f"{role}_{np.dtype(dtype)}.tif"), data, r.transform, r.crs, nodata=nodata)


@pytest.mark.parametrize("nbits", [12, 14])
def test_nbits_on_a_signed_output_is_refused(data_dir, tmp_path, nbits):
    """QA136: an Int16 MS with NBITS=12 was refused with "Use NBITS=14"; with NBITS=14 GDAL dropped NBITS (signed
    types take none) while the values were still clipped at 16383, unsaid. Refused up front, without NBITS advice."""
    from ksdiff_qgis.engine.errors import InputError

    def signed(a):
        return np.where(a == 0, -9999, a * 8 - 500)

    pan = _derived(data_dir, tmp_path, "pan", signed, np.int16, -9999)
    ms = _derived(data_dir, tmp_path, "ms", signed, np.int16, -9999)
    out = tmp_path / "o.tif"
    with pytest.raises(InputError, match="unsigned integer outputs.*int16.*leave NBITS out") as err:
        pansharpen(pan, ms, str(out), "wv2", "mtf_glp_hpm", create_options=f"NBITS={nbits}")
    assert "NBITS=1" not in str(err.value).split("this output")[1], str(err.value)
    assert not out.exists()


def test_nbits_refusal_when_no_nbits_holds_the_values_reads_right(data_dir, tmp_path):
    """QA136: with hot pixels at 60000 (more than 0.1 % of the values) the refusal ended "Use leave NBITS out"."""
    from ksdiff_qgis.engine.errors import InputError

    def hot(a):
        a = a.copy()
        a.reshape(-1)[::500] = 60000
        return a

    ms = _derived(data_dir, tmp_path, "ms", hot, np.uint16, 0)
    with pytest.raises(InputError, match=r"they would be written as 2047\. Leave NBITS out$"):
        pansharpen(str(data_dir / "wv2_pan.tif"), ms, str(tmp_path / "o.tif"), "wv2", "mtf_glp_hpm",
                   create_options="NBITS=11")


def test_nbits_output_nodata_fits_the_bits(data_dir, tmp_path):
    """QA134: an MS nodata of 65535 with NBITS=12: GDAL cut the holes to 4095 while the file declared 65535, so they
    read as white data. The output's nodata falls back to one the 12 bits hold (0), said in one warning."""
    from model_core.rasters import read, write_geotiff

    paths = {}
    for role in ("pan", "ms"):
        r = read(str(data_dir / f"wv2_{role}.tif"))
        data = r.data.astype(np.uint16)
        data[:, :32 if role == "pan" else 8, :32 if role == "pan" else 8] = 65535   # a hole in both
        paths[role] = write_geotiff(str(tmp_path / f"{role}.tif"), data, r.transform, r.crs, nodata=65535)
    res = pansharpen(paths["pan"], paths["ms"], str(tmp_path / "o.tif"), "wv2", "mtf_glp_hpm",
                     create_options="NBITS=12")
    ds = gdal.Open(res.output_path)
    band = ds.GetRasterBand(1)
    nodata, hole = band.GetNoDataValue(), ds.ReadAsArray()[:, :16, :16]
    assert nodata == 0 and (hole == nodata).all(), (nodata, np.unique(hole))
    assert any("NBITS=12 holds values up to 4095, not the nodata value 65535" in w for w in res.warnings), \
        res.warnings


@pytest.mark.parametrize("exceptions", [False, True])
@pytest.mark.parametrize("cog,options,what", [(True, "COMPRESS=JPEG", "Cloud-Optimized GeoTIFF"),
                                              (False, "COMPRESS=JPEG", "GeoTIFF"),
                                              (False, "PREDICTOR=3", "GeoTIFF"),
                                              (False, "BLOCKXSIZE=100", "GeoTIFF")])
def test_creation_options_are_checked_before_the_fusion(data_dir, tmp_path, monkeypatch, exceptions, cog, options,
                                                        what):
    """Options the driver refuses for 16-bit data (COMPRESS=JPEG, PREDICTOR=3 on integers, a block width not a
    multiple of 16): refused before any tile is fused, as bad input (a COG failed after the whole fusion, in the
    copy to COG; a plain GeoTIFF at its creation or first block, as a write error), with GDAL exceptions on (as QGIS
    or another plugin may set them) or off."""
    from ksdiff_qgis.engine import pipeline
    from ksdiff_qgis.engine.errors import InputError

    was = gdal.GetUseExceptions()
    (gdal.UseExceptions if exceptions else gdal.DontUseExceptions)()
    request_restore = (gdal.UseExceptions if was else gdal.DontUseExceptions)

    fused = []
    monkeypatch.setattr(pipeline.classical, "FUSERS", {**pipeline.classical.FUSERS,
                                                       "brovey": lambda *a: fused.append(1) or a[1]})
    out = tmp_path / "o.tif"
    try:
        with pytest.raises(InputError, match=rf"the {what} \(4 band\(s\) of UInt16\) cannot be written with these "
                                             "creation options") as refused:
            pansharpen(str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), str(out), "wv2", "brovey",
                       cog=cog, create_options=options)
    finally:
        request_restore()
    assert "/vsimem/" not in str(refused.value)   # the trial copy is no one's file
    assert not fused and not out.exists() and not list(tmp_path.iterdir())


def test_options_a_driver_does_not_know_are_warned(data_dir, tmp_path):
    """ZLEVEL with COG ticked: the COG driver drops it (GDAL says so on the console only): the log says so."""
    log = RecordingFeedback()
    pansharpen(str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), str(tmp_path / "o.tif"), "wv2",
               "brovey", cog=True, create_options="ZLEVEL=9", feedback=log)
    assert any("the Cloud-Optimized GeoTIFF driver does not know ZLEVEL" in line for line in log.lines), log.lines


def test_creation_options_gdal_takes_give_no_warning(data_dir, tmp_path):
    """Our own options and correct ones of the user's bring no GDAL warning (GeoTIFF and COG)."""
    log = RecordingFeedback()
    for cog, options in ((False, "COMPRESS=ZSTD|ZSTD_LEVEL=22|NBITS=11"), (True, "LEVEL=9"), (True, "")):
        pansharpen(str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), str(tmp_path / f"{cog}.tif"), "wv2",
                   "brovey", cog=cog, create_options=options, feedback=log)
    assert not [line for line in log.lines if "GDAL warned" in line], log.lines


def test_cloud_optimized_geotiff(data_dir, tmp_path):
    pan, ms = str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif")
    ref = pansharpen(pan, ms, str(tmp_path / "ref.tif"), "wv2", "mtf_glp_hpm")
    res = pansharpen(pan, ms, str(tmp_path / "cog.tif"), "wv2", "mtf_glp_hpm", cog=True, compression="zstd")
    ds = gdal.Open(res.output_path)
    meta = ds.GetMetadata("IMAGE_STRUCTURE")
    assert meta.get("LAYOUT") == "COG" and meta.get("COMPRESSION") == "ZSTD"
    assert ds.GetRasterBand(1).GetOverviewCount() >= 1 or ds.RasterXSize <= 512
    assert np.array_equal(ds.ReadAsArray(), _pixels(ref.output_path))
    assert ds.GetRasterBand(1).GetDescription() == "Blue" and ds.GetRasterBand(1).GetNoDataValue() == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cog.tif", "ref.tif"]   # no intermediate left


def test_unknown_compression_is_refused_before_writing(data_dir, tmp_path):
    with pytest.raises(InputError, match="compression"):
        pansharpen(str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), str(tmp_path / "o.tif"), "wv2",
                   "gsa", compression="jpeg")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("h,w,tile,overlap", [(2048, 2048, 512, 32), (4096, 3000, 512, 32), (256, 256, 80, 12),
                                              (100, 2048, 512, 32), (700, 513, 256, 0), (256, 256, 512, 32)])
def test_balanced_tile_keeps_the_count_and_shrinks_the_area(h, w, tile, overlap):
    from ksdiff_qgis.engine.tiling import balanced_tile, tile_count

    size = balanced_tile(h, w, tile, overlap)
    assert 2 * overlap <= size <= tile
    assert tile_count(h, w, size, overlap) == tile_count(h, w, tile, overlap)
    if (h, w, tile) == (2048, 2048, 512):
        assert size == 436   # 25 tiles of 436², not 25 of 512² (26 % fewer pixels)


def test_processing_output_parameters(qgis_app, data_dir, tmp_path):
    import processing
    from qgis.core import QgsApplication, QgsProcessingParameterDefinition

    alg = QgsApplication.processingRegistry().algorithmById("ksdiff:pansharpen")
    for name in ("COMPRESSION", "COG", "CREATE_OPTIONS"):
        assert alg.parameterDefinition(name).flags() & QgsProcessingParameterDefinition.FlagAdvanced
    # the widget QGIS's own GDAL algorithms use: its class must exist where the dialog looks it up
    import importlib

    wrapper = alg.parameterDefinition("CREATE_OPTIONS").metadata()["widget_wrapper"]["class"]
    module, name = wrapper.rsplit(".", 1)
    assert hasattr(importlib.import_module(module), name)
    comp = alg.parameterDefinition("COMPRESSION")
    assert comp.keys[comp.defaultValue()] == "deflate"
    out = str(tmp_path / "o.tif")
    processing.run("ksdiff:pansharpen", {"PAN": str(data_dir / "wv2_pan.tif"), "MS": str(data_dir / "wv2_ms.tif"),
                                         "SENSOR": "wv2", "METHOD": "brovey", "COMPRESSION": "lzw", "COG": True,
                                         "CREATE_OPTIONS": "BLOCKSIZE=128", "OUTPUT": out})
    ds = gdal.Open(out)
    meta = ds.GetMetadata("IMAGE_STRUCTURE")
    assert meta.get("LAYOUT") == "COG" and meta.get("COMPRESSION") == "LZW"
    assert ds.GetRasterBand(1).GetBlockSize() == [128, 128]


def test_fewer_workers_when_memory_is_short(monkeypatch):
    from ksdiff_qgis.engine import memory
    from ksdiff_qgis.engine.pipeline import _fit_workers

    one = memory.estimate_mb(512, 4096, 4096, 4, 10, True)
    monkeypatch.setenv(memory.ENV_LIMIT, str(one * 1.5))   # room for one tile in flight, not two
    assert _fit_workers(4, 512, 4096, 4096, 4, 10, True, 1) == 1
    monkeypatch.setenv(memory.ENV_LIMIT, str(one * 10))
    assert _fit_workers(4, 512, 4096, 4096, 4, 10, True, 1) == 4


def _assemble(height, width, bands, pieces):
    out = np.full((bands, height, width), np.nan, dtype=np.float32)
    seen = np.zeros((height, width), dtype=int)
    for r, c, a in pieces:
        out[:, r : r + a.shape[1], c : c + a.shape[2]] = a
        seen[r : r + a.shape[1], c : c + a.shape[2]] += 1
    return out, seen


def _disagreeing_tiles():
    """Tiles that disagree with each other (a random offset per tile) on top of a shared field."""
    rng, offsets = np.random.default_rng(3), {}

    def tile(r, c, h, w):
        offsets.setdefault((r, c, h, w), float(rng.uniform(-1, 1)))
        yy, xx = np.mgrid[r : r + h, c : c + w].astype(np.float32)
        return np.stack([yy * 0.01 + xx * 0.02, yy - xx]) + np.float32(offsets[(r, c, h, w)])

    return tile


def test_blend_cells_equals_blend_strips_on_the_same_tiles():
    """Where both layouts place the same tiles (scene = n cells + overlap), cells = strips, bit for bit."""
    from ksdiff_qgis.engine.tiling import blend_cells

    h, w, cell, ov = 3 * 48 + 16, 4 * 48 + 16, 48, 16
    tile = _disagreeing_tiles()
    strips = [(r, 0, s.copy()) for r, s in blend_strips(h, w, cell + ov, ov, tile)]
    cells = [(r, c, a.copy()) for r, c, a in blend_cells(h, w, cell, ov, tile)]
    a, _ = _assemble(h, w, 2, strips)
    b, seen = _assemble(h, w, 2, cells)
    assert (seen == 1).all() and np.array_equal(a, b)


@pytest.mark.parametrize("h,w,cell,ov", [(300, 260, 64, 16), (64, 64, 64, 16), (100, 2000, 256, 32),
                                         (257, 513, 256, 32)])
def test_blend_cells_covers_each_pixel_once_on_aligned_cells(h, w, cell, ov):
    from ksdiff_qgis.engine.tiling import blend_cells, cell_spans

    asked = []
    base = _disagreeing_tiles()

    def tile(r, c, th, tw):
        asked.append((th, tw))
        return base(r, c, th, tw)

    cells = [(r, c, a.copy()) for r, c, a in blend_cells(h, w, cell, ov, tile)]
    _, seen = _assemble(h, w, 2, cells)
    assert (seen == 1).all()
    assert all(r % cell == 0 and c % cell == 0 for r, c, _ in cells)   # cells start on the block grid
    # every tile has the full size the network is given elsewhere (the last one reaches back for context)
    assert set(asked) == {(min(h, cell + ov), min(w, cell + ov))}
    for n in (h, w):
        spans = cell_spans(n, cell, ov)
        assert spans[-1].cell_end == n and all(a.cell_end == b.cell for a, b in zip(spans, spans[1:]))


def test_blend_cells_is_seamless():
    """Blended tiles that disagree by a constant leave no step larger than the ramp's at any cell edge."""
    from ksdiff_qgis.engine.tiling import blend_cells

    rng, offsets = np.random.default_rng(5), {}

    def tile(r, c, h, w):
        offsets[(r, c)] = float(rng.uniform(-1, 1))
        return np.full((1, h, w), offsets[(r, c)], dtype=np.float32)

    out, _ = _assemble(300, 260, 1, blend_cells(300, 260, 64, 16, tile))
    assert out.min() >= -1 and out.max() <= 1
    steps = max(np.abs(np.diff(out, axis=1)).max(), np.abs(np.diff(out, axis=2)).max())
    assert steps <= 2 / 16 + 1e-6   # a ramp over 16 px between values 2 apart at most


def test_learned_run_finishes_block_aligned_cells(data_dir, tmp_path):
    """KSDiff with tiles spanning whole output blocks: cells, the same pixels with 1 or 2 workers, no seams."""
    if not _learned_available():
        pytest.skip("no onnxruntime or bundled model")
    pan, ms = str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif")
    log, runs = RecordingFeedback(), {}
    for workers in (1, 2):
        out = tmp_path / f"w{workers}.tif"
        pansharpen(pan, ms, str(out), "wv2", "ksdiff", tile_size=72, overlap=12, workers=workers, device="cpu",
                   create_options=["BLOCKXSIZE=64", "BLOCKYSIZE=64"], feedback=log)
        runs[workers] = _pixels(out).astype(np.float64)
    assert any("into cells of 64x64 px aligned with the output's blocks" in m for m in log.lines), log.lines
    assert np.array_equal(runs[1], runs[2])
    # against one untiled run, cells are as close as row strips of the same tiles (76 px, default blocks),
    # and no further off along the cell edges than inside the cells
    ref = {}
    for name, tile in (("whole", 512), ("strips", 76)):
        res = pansharpen(pan, ms, str(tmp_path / f"{name}.tif"), "wv2", "ksdiff", tile_size=tile, overlap=12,
                         workers=1, device="cpu")
        ref[name] = _pixels(res.output_path).astype(np.float64)
    diff = np.abs(runs[1] - ref["whole"]).mean(axis=0)
    assert diff.mean() <= 1.1 * np.abs(ref["strips"] - ref["whole"]).mean()
    edge = np.zeros(diff.shape, dtype=bool)
    for k in range(64, 256, 64):
        edge[k : k + 12, :] = edge[:, k : k + 12] = True
    assert diff[edge].mean() < 1.25 * diff[~edge].mean()


def test_learned_small_scene_keeps_balanced_strips(data_dir, tmp_path):
    """When full-size cell tiles would recompute much of a small scene, KSDiff keeps the balanced strips."""
    if not _learned_available():
        pytest.skip("no onnxruntime or bundled model")
    from ksdiff_qgis.engine.tiling import cell_pixels, strip_pixels

    assert cell_pixels(600, 600, 512, 32) > 2.9 * strip_pixels(600, 600, 316, 32)   # WV2 pair 3's size
    log = RecordingFeedback()
    pansharpen(str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), str(tmp_path / "o.tif"), "wv2", "ksdiff",
               tile_size=200, overlap=12, workers=1, device="cpu", create_options=["BLOCKXSIZE=64", "BLOCKYSIZE=64"],
               feedback=log)
    assert any("4 tiles (a 2 x 2 grid) of 134x134 px (200 at most, evened out over the output), overlap 12 px" in m
               for m in log.lines), log.lines


def test_tiled_and_photometric_options_are_not_taken_and_said(data_dir, tmp_path):
    """TILED=NO and PHOTOMETRIC=RGB in CREATE_OPTIONS: the output stays tiled with its band colours from the band
    names (PHOTOMETRIC=RGB tagged the Blue band 1 as red), and the log says the two were not used."""
    log = RecordingFeedback()
    res = pansharpen(str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), str(tmp_path / "o.tif"), "wv2",
                     "brovey", create_options="TILED=NO|PHOTOMETRIC=RGB", feedback=log)
    assert any("(CREATE_OPTIONS) TILED=NO: not used — the output is written in tiles" in line for line in log.lines)
    assert any("(CREATE_OPTIONS) PHOTOMETRIC=RGB: not used — the output's band colours" in line for line in log.lines)
    ds = gdal.Open(res.output_path)
    assert ds.GetRasterBand(1).GetColorInterpretation() == gdal.GCI_BlueBand
    assert ds.GetRasterBand(1).GetBlockSize() == [outputs.BLOCK, outputs.BLOCK]   # tiles, not strips


def test_tiled_yes_is_what_the_writer_does_and_gets_no_warning(data_dir, tmp_path):
    """TILED=YES asks for what the output is anyway: no 'not used' warning (QA: it said the option was not used and
    spoke of band colours the user had not asked about)."""
    log = RecordingFeedback()
    pansharpen(str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), str(tmp_path / "o.tif"), "wv2",
               "brovey", create_options="TILED=YES|BLOCKXSIZE=128|BLOCKYSIZE=128", feedback=log)
    assert not any("not used" in line for line in log.lines), log.lines


def _jp2_pair(data_dir, tmp_path):
    """The WV2 fixture pair upsampled (PAN 2048², MS 512² x 8) into JPEG2000 in 1024-pixel blocks, as Pléiades,
    SPOT and Sentinel-2 ship it: one PAN block is 2 MB, the MS one (512², all 4 bands) 2 MB."""
    paths = []
    for name, side in (("wv2_pan", 2048), ("wv2_ms", 512)):
        out = str(tmp_path / f"{name}.jp2")
        gdal.Translate(out, str(data_dir / f"{name}.tif"), format="JP2OpenJPEG", width=side, height=side,
                       resampleAlg="cubic", creationOptions=["REVERSIBLE=YES", "QUALITY=100", "BLOCKXSIZE=1024",
                                                            "BLOCKYSIZE=1024"])
        paths.append(out)
    return paths


def test_input_cache_budget_holds_a_row_of_large_blocks(data_dir, tmp_path):
    """JPEG2000 in 1024-pixel blocks was 4-8x slower than the same pixels in GeoTIFF: the 8 MB budget emptied GDAL's
    cache after every tile, so each block was decoded again for every tile that reads it."""
    from ksdiff_qgis.engine.blockcache import INPUT_CACHE_MB, row_budget_mb

    pan, ms = (gdal.Open(p) for p in _jp2_pair(data_dir, tmp_path))
    # a row of 566-pixel PAN windows: 2 blocks across x 2 block rows x 2 MB; the MS's one 2 MB block; a quarter more
    assert row_budget_mb([(pan, 566), (ms, 146)], None) == (2 * 2 * 2 + 2) * 1.25
    assert row_budget_mb([(pan, 566), (ms, 146)], 10) == 10              # within the memory the run may use
    assert row_budget_mb([(pan, 566), (ms, 146)], 1) == INPUT_CACHE_MB   # never below the small-block budget
    # blocks no larger than a tile (GeoTIFFs): the fixed budget, memory independent of the scene's width
    tif = gdal.Translate(str(tmp_path / "wide.tif"), str(data_dir / "wv2_pan.tif"), width=8192, height=512,
                         creationOptions=["TILED=YES"])
    assert row_budget_mb([(tif, 566)], None) == INPUT_CACHE_MB


def test_large_input_blocks_are_decoded_once_per_row(data_dir, tmp_path, monkeypatch):
    """The input cache is emptied once before the tiles, not after most of them (it was 8 times on 16 tiles)."""
    from ksdiff_qgis.engine import blockcache

    flushes = []
    real = blockcache.drop_cached_blocks
    monkeypatch.setattr(blockcache, "drop_cached_blocks", lambda ds: (flushes.append(len(ds)), real(ds)))
    pan, ms = _jp2_pair(data_dir, tmp_path)
    pansharpen(pan, ms, str(tmp_path / "o.tif"), "generic", "mtf_glp_hpm", tile_size=512, workers=1)
    # before the statistics, once as their windows pass a row of blocks, after them, before the tiles
    assert len(flushes) <= 4


def test_the_cog_copy_holds_gdals_block_cache_to_a_cap(data_dir, tmp_path):
    """The COG pass ran with GDAL's default block cache (5 % of the RAM), which filled with the output's blocks and
    overviews: peak memory grew with the scene (QA: 1,815 MB at a 12288² PAN, 388 MB without a COG). During the copy
    the cache is held to COG_CACHE_MB; after it, the setting is as before, also after a cancelled copy."""
    from osgeo import gdal

    from ksdiff_qgis.engine.blockcache import COG_CACHE_MB
    from ksdiff_qgis.engine.errors import Cancelled
    from ksdiff_qgis.engine.raster_io.outputs import write_cog

    before = gdal.GetCacheMax()
    assert before > COG_CACHE_MB * 2**20   # the default here: else the test proves nothing
    seen = []
    write_cog(str(data_dir / "wv2_ms.tif"), str(tmp_path / "c.tif"), [],
              progress=lambda f: seen.append(gdal.GetCacheMax()))
    assert seen and max(seen) <= COG_CACHE_MB * 2**20
    assert gdal.GetCacheMax() == before
    with pytest.raises(Cancelled):
        write_cog(str(data_dir / "wv2_ms.tif"), str(tmp_path / "d.tif"), [], is_cancelled=lambda: True)
    assert gdal.GetCacheMax() == before


def test_the_cells_log_line_is_plain_and_never_larger_than_the_scene():
    """QA: KSDiff on a 600x600 scene with TILE_SIZE 8192 logged 'in 1 tile(s) finishing 8192 px cells on the output
    blocks' (a cell larger than the scene, in hard words). Now it says one tile of the whole output, and cells as they
    lie on the output."""
    from ksdiff_qgis.engine.tiling import choose_layout

    one = choose_layout(600, 600, 8192, 32, (256, 256), exact=False)
    assert one.kind == "cells"
    assert one.describe(8192) == "1 tile of 600x600 px (the whole output), no overlap needed"
    many = choose_layout(256, 256, 72, 12, (64, 64), exact=False).describe(72)
    assert many == ("16 tiles (a 4 x 4 grid) of 76x76 px, blended with an overlap of 12 px into cells of 64x64 px "
                    "aligned with the output's blocks"), many
