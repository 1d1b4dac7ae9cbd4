"""Killed runs' temporary files (``.<output>.<hex>.partial*``) are swept from the output folder by the next run there,
whatever output they were for, and said (QA115: only a run onto the same output name removed them); a live run's
file, locked by another process, stays."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from fixture_helpers import run_cli

DATA = Path(__file__).resolve().parent / "data"
HOLD = ("import fcntl, sys\nf = open(sys.argv[1], 'rb')\nfcntl.flock(f, fcntl.LOCK_SH)\nprint('held', flush=True)\n"
        "sys.stdin.read()\n")   # a live writer elsewhere: holds its temporary file's lock until stdin closes

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file locks tell a live writer's file")


def _leftovers(folder: Path) -> tuple[list[Path], list[Path]]:
    """A killed COG run's files onto another output (real naming), and files of other names that must stay."""
    stale = [folder / ".c.tif.a40a3e90.partial", folder / ".c.tif.a40a3e90.partial.cog.ovr.tmp"]
    foreign = [folder / ".c.tif.partial", folder / "c.tif.a40a3e90.partial", folder / ".c.tif.A40A3E90.partial",
               folder / ".c.tif.a40a3e9.partial", folder / "notes.partial"]
    for p in (*stale, *foreign):
        p.write_bytes(b"half a file")
    return stale, foreign


def _run(params, feedback):
    import processing

    return processing.run("ksdiff:pansharpen", params, feedback=feedback)


def _feedback():
    from qgis.core import QgsProcessingFeedback

    class Fb(QgsProcessingFeedback):
        def __init__(self):
            super().__init__()
            self.infos: list[str] = []

        def pushInfo(self, msg):  # noqa: N802
            self.infos.append(msg)
            super().pushInfo(msg)

    return Fb()


def test_a_run_sweeps_killed_runs_leftovers_of_other_outputs(qgis_app, pair, tmp_path):
    stale, foreign = _leftovers(tmp_path)
    fb = _feedback()
    _run({**pair, "OUTPUT": str(tmp_path / "b.tif")}, fb)
    assert not any(p.exists() for p in stale)
    assert all(p.exists() for p in foreign)
    for p in stale:
        assert any(f"removed {p.name}, left in the output folder by an interrupted earlier run" in m
                   for m in fb.infos), fb.infos


def test_a_live_writers_file_of_another_output_is_kept(qgis_app, pair, tmp_path):
    live = [tmp_path / ".c.tif.0badcafe.partial", tmp_path / ".c.tif.0badcafe.partial.cog.ovr.tmp"]
    for p in live:
        p.write_bytes(b"being written")
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(live[0])], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        fb = _feedback()
        _run({**pair, "OUTPUT": str(tmp_path / "b.tif")}, fb)
        assert all(p.exists() for p in live)
        assert not any("0badcafe" in m for m in fb.infos), fb.infos
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


def _scene_list(folder: Path, outputs: list[str]) -> Path:
    path = folder / "scenes.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["pan", "ms", "sensor", "method", "output"])
        for out in outputs:
            w.writerow([DATA / "wv2_pan.tif", DATA / "wv2_ms.tif", "wv2", "mtf_glp_hpm", out])
    return path


def _report(path: Path) -> tuple[list[dict], dict]:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return lines[:-1], lines[-1]["summary"]


def test_a_batch_scene_sweeps_and_says_leftovers_of_other_outputs(tmp_path):
    """A scene's run sweeps its output folder: said on the console and in its record's 'removed'."""
    out = tmp_path / "out"
    out.mkdir()
    scenes = _scene_list(tmp_path, [str(out / "a.tif")])
    stale, foreign = _leftovers(out)
    res = run_cli(str(scenes), "--workers", "1", "--report", str(tmp_path / "r1.jsonl"))
    assert res.returncode == 0, res.stderr
    assert not any(p.exists() for p in stale) and all(p.exists() for p in foreign)
    records, _ = _report(tmp_path / "r1.jsonl")
    assert sorted(records[0]["removed"]) == [str(p) for p in stale]
    for p in stale:
        assert f"removed {p}, left in the output folder by an interrupted earlier run" in res.stderr, res.stderr


def test_the_batch_cleanup_says_which_leftovers_it_removed(tmp_path):
    """QA115: the final cleanup removed killed writers' files without a word; now said on the console and in the
    report's summary ('removed')."""
    out = tmp_path / "out"
    out.mkdir()
    scenes = _scene_list(tmp_path, [str(out / "a.tif")])
    assert run_cli(str(scenes), "--workers", "1").returncode == 0
    killed = out / ".a.tif.0123abcd.partial"   # a killed rerun onto a.tif; the next run skips a.tif
    killed.write_bytes(b"half a file")
    res = run_cli(str(scenes), "--workers", "1", "--report", str(tmp_path / "r2.jsonl"))
    assert res.returncode == 0, res.stderr
    assert not killed.exists()
    records, summary = _report(tmp_path / "r2.jsonl")
    assert records[0]["status"] == "skipped" and summary["removed"] == [str(killed)]
    assert f"removed {killed}, left in the output folder" in res.stderr, res.stderr


def test_a_temporary_output_run_sweeps_earlier_processing_folders(qgis_app, pair, tmp_path):
    """QA115: a killed TEMPORARY_OUTPUT run's file stayed in processing_XXXX/<uuid>/ for good (each run writes into a
    new folder); a temporary-output run now sweeps this user's Processing folders, two levels deep, our files only."""
    import shutil
    import tempfile

    from qgis.core import QgsProcessingUtils

    base = Path(QgsProcessingUtils.tempFolder()).parent
    earlier = Path(tempfile.mkdtemp(prefix="processing_", dir=base))   # an earlier session's, kept after a crash
    try:
        (earlier / "e3378171").mkdir()
        stale = [earlier / "e3378171" / ".OUTPUT.tif.88dc1169.partial",
                 earlier / "e3378171" / ".OUTPUT.tif.88dc1169.partial.cog.ovr.tmp"]
        live = earlier / "e3378171" / ".OUTPUT.tif.0badcafe.partial"
        deep = earlier / "e3378171" / "sub" / ".OUTPUT.tif.88dc1169.partial"   # deeper than two levels: not ours
        foreign = earlier / "e3378171" / "OUTPUT.tif.88dc1169.partial"
        deep.parent.mkdir()
        for p in (*stale, live, deep, foreign):
            p.write_bytes(b"half a file")
        holder = subprocess.Popen([sys.executable, "-c", HOLD, str(live)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        try:
            assert holder.stdout.readline().strip() == "held"
            fb = _feedback()
            _run({**pair, "OUTPUT": "TEMPORARY_OUTPUT"}, fb)
        finally:
            holder.stdin.close()
            holder.wait(timeout=30)
        assert not any(p.exists() for p in stale)
        assert live.exists() and deep.exists() and foreign.exists()
        for p in stale:
            assert any(m.startswith(f"removed {p}, left in QGIS's Processing temporary folder") for m in fb.infos), \
                fb.infos
    finally:
        shutil.rmtree(earlier, ignore_errors=True)
