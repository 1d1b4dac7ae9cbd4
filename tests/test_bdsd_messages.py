"""QA119's messages around BDSD-PC: its refusal says the sample's count and cause, the
self-check says when it was left out, a kept band at the output's nodata is said as written, singular counts, and
scripts/package.py answers --help."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from ksdiff_qgis.engine import selfcheck
from ksdiff_qgis.engine.clipping import ClipCounter
from ksdiff_qgis.engine.errors import InputError
from ksdiff_qgis.engine.feedback import RecordingFeedback
from ksdiff_qgis.engine.pipeline import pansharpen

ROOT = Path(__file__).resolve().parents[1]


def _crop(src: Path, dst: Path, win: list[int]) -> str:
    gdal.Translate(str(dst), str(src), srcWin=win)
    return str(dst)


def test_a_scene_too_small_for_the_fit_says_its_count_and_cause(data_dir, tmp_path):
    """QA119: a 10 x 10 MS was refused for 'too few pixels away from nodata', which it has none of."""
    pan = _crop(data_dir / "wv2_pan.tif", tmp_path / "pan.tif", [0, 0, 40, 40])
    ms = _crop(data_dir / "wv2_ms.tif", tmp_path / "ms.tif", [0, 0, 10, 10])
    with pytest.raises(InputError) as e:
        pansharpen(pan, ms, str(tmp_path / "o.tif"), "wv2", "bdsd_pc")
    msg = str(e.value)
    assert re.search(r"sample has \d+ usable MS pixels and the fit needs 80: the scene is too small", msg), msg
    assert "nodata" not in msg and "\n" not in msg and "Choose another method" in msg, msg
    assert "clear of the sample windows' edges" not in msg, msg   # QA122: the same count said twice


def test_an_extent_too_small_for_the_fit_says_to_enlarge_it(data_dir, tmp_path):
    """8 x 8 MS pixels: 64, all clear of the filters' reach (the pixels around the EXTENT give it, QA123), fewer
    than the fit's 80: the EXTENT's size limits it, not the filters (QA128 6: 'too small for the fit's filters')."""
    x0, y1, px = 593370.290605396847241 + 64 * 0.499993455098410, 5747557.417181138880551 - 64 * 0.5, 0.5
    with pytest.raises(InputError) as e:
        pansharpen(str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), str(tmp_path / "o.tif"), "wv2",
                   "bdsd_pc", extent=(x0, y1 - 32 * px, x0 + 32 * px, y1))
    msg = str(e.value)
    assert "the EXTENT holds only 64 MS pixels, fewer than the fit's least sample" in msg, msg
    assert "filters" not in msg and "Enlarge the EXTENT or choose another method" in msg, msg
    assert "has 64 usable MS pixels and the fit needs 80" in msg and "\n" not in msg, msg


def test_a_scene_mostly_nodata_says_how_much_nodata_took(data_dir, tmp_path):
    """The refusal's nodata cause, with the share of the sample it took (a 16 x 16 block of data amid nodata), before
    anything is written."""
    ms = str(tmp_path / "ms.tif")
    gdal.Translate(ms, str(data_dir / "wv2_ms.tif"))
    ds = gdal.Open(ms, gdal.GA_Update)
    for b in range(1, 5):
        band = ds.GetRasterBand(b)
        arr = band.ReadAsArray()
        keep = arr[24:40, 24:40].copy()
        arr[:] = 0
        arr[24:40, 24:40] = keep
        band.WriteArray(arr)
    ds = None
    out = tmp_path / "o.tif"
    with pytest.raises(InputError) as e:
        pansharpen(str(data_dir / "wv2_pan.tif"), ms, str(out), "wv2", "bdsd_pc")
    assert not out.exists()
    msg = str(e.value)
    assert re.search(r"has 0 usable MS pixels and the fit needs 80: nodata and the filters' reach around it took "
                     r"\d+ \(100(\.0)?%\) of the \d+ pixels", msg), msg


def test_the_self_check_says_when_bdsd_pc_was_left_out(data_dir):
    """QA119: METHOD auto ranked four candidates where it had ranked five elsewhere, with no word why."""
    from ksdiff_qgis.engine.grid import plan_grid
    from ksdiff_qgis.engine.pipeline import estimate_scene_stats
    from ksdiff_qgis.engine.raster_io import open_raster
    from ksdiff_qgis.engine.sensors import get_sensor

    pan_ds, pan = open_raster(str(data_dir / "wv2_pan.tif"), "PAN")
    ms_ds, ms = open_raster(str(data_dir / "wv2_ms.tif"), "MS")
    plan = plan_grid(pan, ms, ms_ds)
    sensor = get_sensor("wv2")
    stats = estimate_scene_stats(pan_ds, ms_ds, pan, ms, plan, gains=tuple(sensor.mtf_ms))
    area = (0, 0, ms.width, ms.height)
    res = selfcheck.run_check(pan_ds, ms_ds, pan, ms, plan, sensor, None, stats, area)
    assert not [n for n in res.notes if "BDSD-PC was left out" in n]
    res = selfcheck.run_check(pan_ds, ms_ds, pan, ms, plan, sensor, None, replace(stats, bdsd_coef=None), area)
    said = [n for n in res.notes if "BDSD-PC" in n]
    assert len(said) == 1 and re.fullmatch(r"BDSD-PC was left out of the candidates: its coefficients could not be "
                                           r"fitted \(the scene statistics' sample has \d+ usable MS pixels, the fit "
                                           r"needs 80\)", said[0]), res.notes


def test_one_value_moved_off_nodata_is_said_in_the_singular():
    fb = RecordingFeedback()
    cc = ClipCounter(65535, ["Blue"], nodata=0.0, type_name="UInt16")
    cc.add(np.array([[[0.2, 500.0, 600.0]]], np.float32))
    cc.report(fb, "BDSD-PC")
    assert "1 value that rounded to 0, the output's nodata value, was written as 1" in fb.lines[0], fb.lines
    assert "so that it does not read as nodata" in fb.lines[0], fb.lines


@pytest.mark.parametrize("method", ["bdsd_pc", "mtf_glp_fs", "mtf_glp_hpm"])
def test_a_band_of_zeros_at_the_outputs_nodata_is_said_as_written(data_dir, tmp_path, method):
    """QA119: 'BDSD-PC keeps it at 0' beside a band written as all 1s (0 is the output's nodata value)."""
    pan = str(tmp_path / "pan.tif")
    gdal.Translate(pan, str(data_dir / "wv2_pan.tif"), noData=0)
    ms = str(tmp_path / "ms.tif")
    gdal.Translate(ms, str(data_dir / "wv2_ms.tif"), noData="none")   # nodata is the PAN's (QA119's ms_zero case)
    ds = gdal.Open(ms, gdal.GA_Update)
    ds.GetRasterBand(2).WriteArray(np.zeros((ds.RasterYSize, ds.RasterXSize), np.uint16))
    ds = None
    fb = RecordingFeedback()
    res = pansharpen(pan, ms, str(tmp_path / "o.tif"), "wv2", method, feedback=fb)
    (line,) = [m for m in fb.lines if "0 everywhere on the scene" in m]
    assert "keeps it at 0 (0 is the output's nodata value: written as 1)" in line, line
    out = gdal.Open(res.output_path)
    band = out.GetRasterBand(2).ReadAsArray()
    assert set(np.unique(band)) <= {0, 1} and (band == 1).any()   # what the line says: 1 where there are data


def test_package_help_prints_help_and_builds_nothing(tmp_path):
    """QA119: `scripts/package.py --help` built dist/ksdiff_qgis.zip. A copy of the script in an empty tree: were it to
    build, it would fail there (no plugin folder) and leave files behind."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "package.py", tmp_path / "scripts" / "package.py")
    out = subprocess.run([sys.executable, str(tmp_path / "scripts" / "package.py"), "--help"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.startswith("usage:"), (out.stdout, out.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scripts"]
