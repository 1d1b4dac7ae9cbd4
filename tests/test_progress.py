"""The run's progress bar spans the whole run (QA under Xvfb: it stood at 0 through the statistics and the self-check,
1.1-1.3 s of a 3 s run on WorldView-2 pair 1, then jumped with the tiles)."""
from __future__ import annotations

import pytest

from ksdiff_qgis.engine import selfcheck
from ksdiff_qgis.engine.feedback import RecordingFeedback
from ksdiff_qgis.engine.pipeline import pansharpen
from ksdiff_qgis.engine.progress import FINAL_SHARE, RunProgress


def _line(fb: RecordingFeedback, start: str) -> int:
    return next(i for i, line in enumerate(fb.lines) if line.startswith(start))


def test_auto_run_reports_through_statistics_self_check_tiles_and_write(data_dir, tmp_path):
    fb = RecordingFeedback()
    res = pansharpen(str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), str(tmp_path / "o.tif"), "wv2",
                     "auto", tile_size=64, overlap=8, feedback=fb)
    assert res.selfcheck is not None and res.selfcheck.learned is not None   # the model was scored
    fractions = [f for f, _ in fb.progress_calls]
    assert fractions == sorted(fractions) and len(set(fractions)) == len(fractions)   # only ever forward
    assert 0.0 < fractions[0] < 0.1 and fractions[-1] == 1.0
    # before the self-check's log line: the statistics' window, the model's session and every candidate scored on
    # the check's window (the learned model and the classical ones), each a step of the bar
    checked = _line(fb, "Self-check on")
    before = [f for f, said in fb.progress_calls if said <= checked]
    assert len(before) >= 2 + len(selfcheck.CLASSICAL_CANDIDATES) + 1, fb.progress_calls
    assert before[-1] < 0.95   # the tiles still have their share
    tiles = [f for f, said in fb.progress_calls if said > checked]
    assert len(tiles) >= res.tiles   # one step per tile, then the final write's 1.0


def test_cog_run_keeps_its_share_for_the_copy(data_dir, tmp_path):
    fb = RecordingFeedback()
    pansharpen(str(data_dir / "l8_pan.tif"), str(data_dir / "l8_ms.tif"), str(tmp_path / "o.tif"), "landsat8",
               "mtf_glp_hpm", cog=True, feedback=fb)
    copy = _line(fb, "writing the Cloud-Optimized GeoTIFF")
    tiles_done = max(f for f, said in fb.progress_calls if said <= copy)
    assert tiles_done < 1.0 - FINAL_SHARE   # the copy with overviews is more than a rename
    assert fb.progress_calls[-1][0] == 1.0 and fb.progress_calls[-1][1] > copy


def test_shares_follow_the_estimates_and_never_move_back():
    fb = RecordingFeedback()
    bar = RunProgress(fb, {"stats": 1.0, "check": 3.0, "tiles": 6.0, "write": 0.0})
    stats = bar.stage("stats")
    assert (stats.start, stats.end) == (0.0, pytest.approx(0.099))   # a tenth of what is left before the write
    stats(0.5)
    stats(1.0)
    bar.estimate("check", 0.0)   # e.g. nothing to check after all
    tiles = bar.stage("tiles")   # "check" not started: skipped
    assert tiles.start == stats.end and tiles.end == 1.0 - FINAL_SHARE
    tiles(1.0)
    tiles(0.5)   # below what was shown: not reported
    bar.stage("write")(0.5)
    bar.finish()
    fractions = [f for f, _ in fb.progress_calls]
    assert fractions == [pytest.approx(0.0495), stats.end, 1.0 - FINAL_SHARE, pytest.approx(0.995), 1.0]
