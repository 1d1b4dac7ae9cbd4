"""The batch's scene list and report (QA round 93): an output that is another row's input, the report lines of
scenes that finished during a stop and of skipped ones, outputs that are no GeoTIFF, comment lines, outputs that
differ only in case. Real GeoTIFFs: the WV2 test fixture and copies of it."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import pytest
from fixture_helpers import run_cli
from osgeo import gdal

from ksdiff_qgis import batch
from ksdiff_qgis.engine.scenes import SceneListError, read_scenes

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
PAN, MS = DATA / "wv2_pan.tif", DATA / "wv2_ms.tif"
HEADER = "pan,ms,sensor,method,output"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture()
def two_scenes(tmp_path: Path) -> Path:
    """Two scenes' inputs (copies of the WV2 fixture) in tmp_path: a_pan/a_ms, b_pan/b_ms."""
    for scene in "ab":
        shutil.copy(PAN, tmp_path / f"{scene}_pan.tif")
        shutil.copy(MS, tmp_path / f"{scene}_ms.tif")
    return tmp_path


def report_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# ------------------------------------------------------------------------- 1. an output that is a row's input
def test_an_output_that_is_another_rows_pan_stops_the_run_and_keeps_the_pan(two_scenes):
    """QA: row 3's output named row 2's PAN: '2 scene(s): 2 done', exit 0, and a_pan.tif was a 4-band fused image."""
    d = two_scenes
    before = sha256(d / "a_pan.tif")
    (d / "s.csv").write_text(f"{HEADER}\na_pan.tif,a_ms.tif,wv2,brovey,out/a.tif\n"
                             "b_pan.tif,b_ms.tif,wv2,brovey,a_pan.tif\n")
    res = run_cli(str(d / "s.csv"), "--workers", "1")
    assert res.returncode == 2, res.stdout + res.stderr
    assert (f'line 3: the output "{d / "a_pan.tif"}" is the PAN of line 2: the run would overwrite that input'
            in res.stderr), res.stderr
    assert "give line 3 another output file" in res.stderr and res.stderr.count("\n") == 1, res.stderr
    assert sha256(d / "a_pan.tif") == before and gdal.Open(str(d / "a_pan.tif")).RasterCount == 1
    assert not (d / "out").exists() and not (d / "a_pan.tif.ksdiff.json").exists()   # no scene started


@pytest.mark.parametrize("output, named", [
    ("b_ms.tif", "is this row's own MS"),                     # its own input, refused before the others run
    ("a_ms.tif", "is the MS of line 2"),
    ("linked/a_pan.tif", "is the PAN of line 2"),             # through a symlinked folder
    ("hard.tif", "is the PAN of line 2 (\"{d}/a_pan.tif\" is the same file)"),   # a hard link: same inode
    ("model.tif", "is the model file of line 2"),
])
def test_an_output_that_is_any_rows_input_file_is_refused_when_the_list_is_read(two_scenes, output, named):
    d = two_scenes
    (d / "linked").symlink_to(d, target_is_directory=True)
    os.link(d / "a_pan.tif", d / "hard.tif")
    shutil.copy(PAN, d / "model.tif")   # any file as the MODEL cell: compared as a file, never read here
    (d / "s.csv").write_text(f"{HEADER},model\na_pan.tif,a_ms.tif,wv2,ksdiff,out/a.tif,model.tif\n"
                             f"b_pan.tif,b_ms.tif,wv2,brovey,{output},\n")
    with pytest.raises(SceneListError) as e:
        read_scenes(str(d / "s.csv"))
    assert str(e.value).startswith("line 3: the output ") and named.format(d=d) in str(e.value), str(e.value)


def test_two_outputs_that_are_one_file_by_a_hard_link_are_refused(two_scenes):
    d = two_scenes
    (d / "o.tif").write_bytes(b"")
    os.link(d / "o.tif", d / "o_link.tif")
    (d / "s.csv").write_text(f"{HEADER}\na_pan.tif,a_ms.tif,wv2,gsa,o.tif\nb_pan.tif,b_ms.tif,wv2,gsa,o_link.tif\n")
    with pytest.raises(SceneListError, match=r"lines 2 and 3 write the same output .*o_link\.tif \(\".*/o\.tif\" is "
                                             r"the same file\): give each row its own output file"):
        read_scenes(str(d / "s.csv"))


# ------------------------------------------------------------------------- 2./3. report lines from the sidecar
@pytest.fixture(scope="module")
def fused(tmp_path_factory):
    """One METHOD auto scene run by the CLI: (its list, its report line)."""
    d = tmp_path_factory.mktemp("fused")
    (d / "s.csv").write_text(f"{HEADER}\n{PAN},{MS},wv2,auto,out/a.tif\n")
    res = run_cli(str(d / "s.csv"), "--workers", "1", "--report", str(d / "r.jsonl"))
    assert res.returncode == 0, res.stdout + res.stderr
    (line, _summary) = report_lines(d / "r.jsonl")
    assert line["status"] == "done" and line["method_used"] == "ksdiff", line
    return d, line


def test_a_scene_finished_during_a_stop_is_reported_like_a_done_one(fused):
    """QA: a scene that finished while Ctrl-C closed the cluster was reported from its sidecar with "workers",
    "threads", "mpx_per_s" and "selfcheck" null and no "worker", although its self-check had run."""
    d, done = fused
    records: list[dict] = []
    batch.interrupted(read_scenes(str(d / "s.csv")), records, None, since=0.0, local=False)
    assert records == [done]
    assert done["selfcheck"]["SELFCHECK_METHOD"] == "ksdiff" and done["worker"].startswith("tcp://")


def test_a_skipped_scene_keeps_its_outputs_self_check_and_warnings(fused):
    """QA: a re-run's 'skipped' lines had "selfcheck": null and "warnings": [] though the output's run gave them.
    They are its output's: not printed again on the console."""
    d, done = fused
    assert done["warnings"], done   # the fixture's PAN and MS are 1.3 PAN pixels apart: said
    res = run_cli(str(d / "s.csv"), "--workers", "1", "--report", str(d / "again.jsonl"))
    assert res.returncode == 0, res.stdout + res.stderr
    (skipped, _summary) = report_lines(d / "again.jsonl")
    assert skipped["status"] == "skipped" and skipped["seconds"] == 0.0, skipped
    for key in ("method_used", "sensor_used", "device", "width", "height", "warnings", "coregistration", "selfcheck"):
        assert skipped[key] == done[key], key
    assert "warning" not in res.stderr, res.stderr


# ------------------------------------------------------------------------- 4. an output that is no GeoTIFF
@pytest.mark.parametrize("cell, message", [
    ("folder/", 'line 3: the output "{d}/folder" is a folder: give a GeoTIFF file in it, such as {d}/folder/fused.tif'),
    ("folder/y", 'line 3: the output "{d}/folder/y" must be a GeoTIFF file ending in .tif or .tiff'),
    ("new/y.png", 'line 3: the output "{d}/new/y.png" must be a GeoTIFF file ending in .tif or .tiff'),
])
def test_an_output_that_is_no_geotiff_stops_the_run_before_any_scene(two_scenes, cell, message):
    """QA: 'dir/' or 'dir/y' as an output was refused only when its scene ran, after the scenes above it."""
    d = two_scenes
    (d / "folder").mkdir()
    (d / "s.csv").write_text(f"{HEADER}\na_pan.tif,a_ms.tif,wv2,brovey,out/a.tif\nb_pan.tif,b_ms.tif,wv2,brovey,"
                             f"{cell}\n")
    res = run_cli(str(d / "s.csv"), "--workers", "1")
    assert res.returncode == 2 and message.format(d=d) in res.stderr, res.stdout + res.stderr
    assert not (d / "out").exists()


# ------------------------------------------------------------------------- 5. comment lines
def test_comment_lines_are_skipped_and_rows_keep_their_physical_line_numbers(tmp_path):
    """QA: '# my scenes' above the header gave "unknown column(s) '# my scenes'", one below it "line 2: no ms,
    output given"."""
    text = (f"# my scenes, \"from the archive\n\n{HEADER}\n# wv2 scenes\n"
            f"{PAN},{MS},wv2,brovey,a.tif\n  # not this one: {PAN},{MS},wv2,brovey,c.tif\n{PAN},{MS},wv2,gsa,b.tif\n")
    (tmp_path / "s.csv").write_text(text, encoding="utf-8")
    scenes = read_scenes(str(tmp_path / "s.csv"))
    assert [(s.line, Path(s.output).name) for s in scenes] == [(5, "a.tif"), (7, "b.tif")]
    (tmp_path / "bad.csv").write_text(f"# notes\n{HEADER.replace(',', ';')}\n# x\n{PAN};{MS};wv9;gsa;a.tif\n")
    with pytest.raises(SceneListError, match=r"^line 4: column 'sensor': \"wv9\" is not known"):
        read_scenes(str(tmp_path / "bad.csv"))   # semicolons: told by the header below the note


def test_a_line_inside_a_quoted_cell_is_no_comment():
    from ksdiff_qgis.engine.scenes import blank_comments

    text = 'pan,ms\n"a\n# b",c\n# d, "e\nf,g\n'
    assert blank_comments(text, ",") == 'pan,ms\n"a\n# b",c\n\nf,g\n'


# ------------------------------------------------------------------------- 6. outputs that differ only in case
def test_outputs_that_differ_only_in_case_run_with_a_warning(two_scenes):
    """Two files on Linux (right here), one on Windows and macOS: QA asked for a warning, not a refusal."""
    from ksdiff_qgis.engine.scene_outputs import case_warnings

    d = two_scenes
    (d / "s.csv").write_text(f"{HEADER}\na_pan.tif,a_ms.tif,wv2,brovey,dup/x.tif\n"
                             "b_pan.tif,b_ms.tif,wv2,brovey,dup/x.TIF\n")
    (scene_a, scene_b) = read_scenes(str(d / "s.csv"))
    assert case_warnings([scene_a]) == [] and len(case_warnings([scene_a, scene_b])) == 1
    res = run_cli(str(d / "s.csv"), "--workers", "1")
    assert res.returncode == 0, res.stdout + res.stderr
    assert (f'ksdiff batch: warning: lines 2 and 3 write outputs whose names differ only in upper/lower case '
            f'("{d}/dup/x.tif", "{d}/dup/x.TIF"): two files here, but one file on Windows') in res.stderr, res.stderr
    assert "2 scene(s): 2 done" in res.stdout


# ------------------------------------------------------------------------- two batches on one list at once
@pytest.mark.parametrize("same_list", [True, False])
def test_a_scene_another_batch_finished_meanwhile_is_skipped_not_failed(two_scenes, monkeypatch, same_list):
    """QA: two batch runs on the same list at once: the loser reported its scenes "failed ... another run wrote the
    output" (exit 1) though the outputs were valid. When the other run's output is complete and its record names the
    same inputs and parameters, the row is skipped ("another run finished it"); another list's output still fails."""
    from ksdiff_qgis.engine import scenes
    from ksdiff_qgis.engine.raster_io import writer

    d = two_scenes
    (d / "s.csv").write_text(f"{HEADER}\na_pan.tif,a_ms.tif,wv2,gsa,o.tif\n", encoding="utf-8")
    (scene,) = read_scenes(str(d / "s.csv"))
    first = scenes.run_scene(scene)   # the other run's earlier result, and what it records
    assert first["status"] == "done", first
    record = scenes.read_record(str(d / "o.tif"))
    commit = writer.GeoTiffWriter.commit

    def other_run_commits_first(self, *args, **kwargs):
        shutil.copy(d / "o.tif", d / "other.tif")
        os.replace(d / "other.tif", d / "o.tif")   # its rename: a new file there
        if same_list:   # and then its record, as run_scene writes it
            scenes.write_record(str(d / "o.tif"), {**record, "output": scenes.file_identity(str(d / "o.tif"))})
        return commit(self, *args, **kwargs)

    monkeypatch.setattr(writer.GeoTiffWriter, "commit", other_run_commits_first)
    monkeypatch.setattr(scenes, "RECORD_WAIT", 0.3)
    row = scenes.run_scene(scene, force=True)
    if same_list:
        assert row["status"] == "skipped" and row["note"] == scenes.ANOTHER_RUN, row
        assert row["method_used"] == first["method_used"]
    else:
        assert row["status"] == "failed" and "another run wrote the output" in row["error"], row
    assert gdal.Open(str(d / "o.tif")).RasterCount == 4
    assert not [f for f in os.listdir(d) if "partial" in f]


@pytest.mark.parametrize("other", ["same_list", "other_list", "left_nothing"])
def test_a_scene_another_batch_is_writing_right_now_waits_for_it(two_scenes, monkeypatch, other):
    """QA: two batch runs on one list: a row whose output the other run was writing at that moment failed at once
    ("another run is writing the output ... right now", exit 1), though that run then finished a valid output. The
    row now waits for the other run's (locked) temporary file to go away: the same inputs and parameters recorded ->
    'skipped' ("another run finished it"); another list's output -> kept, the row fails; nothing left -> it runs."""
    import threading

    from ksdiff_qgis.engine import other_runs, scenes
    from ksdiff_qgis.engine.raster_io import partials

    d = two_scenes
    (d / "s.csv").write_text(f"{HEADER}\na_pan.tif,a_ms.tif,wv2,gsa,o.tif\n", encoding="utf-8")
    (scene,) = read_scenes(str(d / "s.csv"))
    first = scenes.run_scene(scene)   # what the other run makes, and what it records
    record = scenes.read_record(str(d / "o.tif"))
    made = d / "made.tif"
    os.replace(d / "o.tif", made)
    os.remove(d / "o.tif.ksdiff.json")
    # the other run's state as the writer detects it: its temporary file beside the output, locked while it writes
    partial = d / ".o.tif.0123abcd.partial"
    shutil.copy(made, partial)
    lock = partials.hold(str(partial))
    assert partials.live_partials(str(d / "o.tif")) == [str(partial)]

    def other_run_finishes():
        time.sleep(1.0)
        if other == "left_nothing":   # it failed: its abort deletes the file
            os.remove(partial)
        else:   # its commit renames the file into place, then writes the record
            os.replace(partial, d / "o.tif")
            time.sleep(0.2)
            theirs = record if other == "same_list" else {**record, "fingerprint": {"other": "list"}}
            scenes.write_record(str(d / "o.tif"), {**theirs, "output": scenes.file_identity(str(d / "o.tif"))})
        lock.close()

    monkeypatch.setattr(other_runs, "BUSY_POLL", 0.1)
    monkeypatch.setattr(scenes, "RECORD_WAIT", 1.0)
    other_run = threading.Thread(target=other_run_finishes)
    other_run.start()
    try:
        row = scenes.run_scene(scene)
    finally:
        other_run.join()
    if other == "same_list":
        assert row["status"] == "skipped" and row["note"] == scenes.ANOTHER_RUN, row
        assert row["method_used"] == first["method_used"]
        assert sha256(d / "o.tif") == sha256(made)
    elif other == "other_list":
        assert row["status"] == "failed" and "while this row waited for it" in row["error"], row
        assert sha256(d / "o.tif") == sha256(made)   # the other run's result is kept
    else:
        assert row["status"] == "done", row
        assert scenes.up_to_date(scene.kwargs) is not None
    assert gdal.Open(str(d / "o.tif")).RasterCount == 4
    assert not [f for f in os.listdir(d) if "partial" in f]


def test_a_wait_for_another_runs_output_ends_at_a_stop_or_the_limit(tmp_path):
    """The wait for another run writing the same output is bounded and a stop of the batch ends it at once."""
    from ksdiff_qgis.engine import other_runs
    from ksdiff_qgis.engine.raster_io import partials

    partial = tmp_path / ".o.tif.0123abcd.partial"
    shutil.copy(MS, partial)
    with partials.hold(str(partial)):
        t0 = time.monotonic()
        assert not other_runs.wait_for_writer(str(tmp_path / "o.tif"), stopped=lambda: True)
        assert not other_runs.wait_for_writer(str(tmp_path / "o.tif"), limit=0.3)
        assert time.monotonic() - t0 < 2.0
    assert other_runs.wait_for_writer(str(tmp_path / "o.tif"), stopped=lambda: True)   # nobody writes it
