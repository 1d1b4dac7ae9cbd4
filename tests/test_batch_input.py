"""The batch command's inputs and its report file (QA round 49): a full disk under --report, upper-case option
values, the memory share's wording, unclosed quotes, Excel's unnamed columns, duplicate columns, row thread counts."""
from __future__ import annotations

import errno
import json
import os
import re
from pathlib import Path

import pytest
from fixture_helpers import run_cli

from ksdiff_qgis import batch
from ksdiff_qgis.engine import memory
from ksdiff_qgis.engine.scenes import SceneListError, read_scenes

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
PAN, MS = DATA / "wv2_pan.tif", DATA / "wv2_ms.tif"


def scene_list(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------------- 1. a full disk under --report
class FillsUp:
    """A raw file that takes ``room`` bytes, then fails with ENOSPC (after writing what fitted, as a disk does)."""

    def __init__(self, raw, room: int):
        self.raw, self.room = raw, room

    def write(self, data) -> int:
        if len(data) > self.room:
            self.raw.write(bytes(data[:self.room]))
            self.room = 0
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= len(data)
        return self.raw.write(data)

    def __getattr__(self, name):
        return getattr(self.raw, name)


def test_a_full_report_disk_keeps_whole_records_and_says_so(tmp_path, capsys):
    path = tmp_path / "r.jsonl"
    report = batch.Report(str(path))
    first = {"line": 2, "status": "done", "output": "Überflug/a.tif"}
    report.file = FillsUp(report.file, len(json.dumps(first, ensure_ascii=False).encode()) + 1 + 10)
    report.add(first)
    report.add({"line": 3, "status": "done", "output": "b.tif"})   # 10 bytes of it fit, then the disk is full
    report.add({"summary": {"scenes": 2}})                          # the report has stopped: nothing more
    report.close()
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    assert [json.loads(x) for x in lines] == [first] and lines[0].endswith("\n")
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "disk full" in err and f'"{path}"' in err and "keeps its first 1 line" in err
    assert "the run goes on without it" in err


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs Linux's /dev/full")
def test_a_report_that_cannot_be_written_ends_with_the_summary_not_a_traceback(tmp_path):
    """QA: the OSError of report.flush() killed the run (30-line traceback, no summary, running scenes cancelled).
    /dev/full fails every write with ENOSPC."""
    lst = scene_list(tmp_path / "s.csv", f"pan,ms,sensor,method,output\n{PAN},{MS},wv2,brovey,o/a.tif\n"
                                         f"{PAN},{MS},wv2,exp,o/b.tif\n")
    p = run_cli(str(lst), "--workers", "1", "--report", "/dev/full")
    assert "Traceback" not in p.stderr, p.stderr[-3000:]
    assert "2 scene(s): 2 done" in p.stdout, p.stdout + p.stderr
    assert 'the report file "/dev/full" cannot be written (disk full' in p.stderr
    assert p.returncode == batch.EXIT_FAILED   # BATCH.md: the report the user asked for is incomplete
    assert (tmp_path / "o" / "a.tif").exists() and (tmp_path / "o" / "b.tif").exists()


# ------------------------------------------------------------------------- 2. --sensor/--method/--device
def test_command_line_option_keys_are_case_insensitive_and_checked_first():
    args = batch.parse_args(["s.csv", "--sensor", "WV2", "--method", "BROVEY", "--device", "CPU"])
    assert batch.defaults_from(args) == {"sensor": "wv2", "method": "brovey", "device": "cpu"}
    for option, value in (("--sensor", "wv9"), ("--method", "brovy"), ("--device", "gpu")):
        with pytest.raises(batch.UsageError, match=rf"^{option} \"{value}\" is not known: give one of .*auto"):
            batch.defaults_from(batch.parse_args(["s.csv", option, value]))


def test_upper_case_options_run_and_a_bad_one_stops_before_any_scene(tmp_path):
    lst = scene_list(tmp_path / "s.csv", f"pan;ms;sensor;method;output\n{PAN};{MS};;;o/a.tif\n")
    p = run_cli(str(lst), "--workers", "1", "--sensor", "WV2", "--method", "BROVEY")
    assert p.returncode == 0 and "1 scene(s): 1 done" in p.stdout, p.stdout + p.stderr
    p = run_cli(str(lst), "--workers", "1", "--method", "Browey", "--force")
    assert p.returncode == batch.EXIT_USAGE and "--method \"Browey\" is not known" in p.stderr, p.stderr
    assert "scene(s)" not in p.stdout


# ------------------------------------------------------------------------- 3. the memory share's wording
def test_the_worker_share_is_not_passed_off_as_the_users_setting(monkeypatch):
    """QA: share_memory wrote KSDIFF_MAX_MEMORY_MB=237 into the worker's environment and the messages named it as if
    the user had set it, dropping the ulimit -v / container wording the engine alone gives."""
    monkeypatch.delenv(memory.ENV_LIMIT, raising=False)
    monkeypatch.setattr(memory, "_worker_share", None)
    monkeypatch.setattr(memory, "available", lambda: (100_000.0, "the 100000 MB of RAM available"))
    batch.share_memory(8 * 2**30, 2)                        # 8 GB worker running 2 scenes at once
    assert memory.ENV_LIMIT not in os.environ
    mb, source = memory.budget_mb()
    assert mb == pytest.approx(2048) and source.startswith("this worker's share of the batch's memory: half of its "
                                                           "8192 MB Dask memory limit"), source
    monkeypatch.setattr(memory, "available", lambda: (900.0, "the 900 MB the virtual-memory limit (ulimit -v) leaves"))
    assert memory.budget_mb() == (765.0, "85% of the 900 MB the virtual-memory limit (ulimit -v) leaves")   # AS_SHARE
    monkeypatch.setenv(memory.ENV_LIMIT, "300")            # a user's own setting wins, and is named
    assert memory.budget_mb() == (300.0, f"{memory.ENV_LIMIT}=300")
    batch.share_memory(None, 1)
    monkeypatch.delenv(memory.ENV_LIMIT)
    assert memory.budget_mb()[1].startswith("85% of")


# ------------------------------------------------------------------------- 4. quotes that swallow rows
def test_an_unclosed_quote_stops_the_run_naming_its_line(tmp_path):
    """QA: a 4-row list with a quote never closed ran as '3 scene(s)'."""
    lst = scene_list(tmp_path / "s.csv", f"pan,ms,sensor,method,output\n{PAN},{MS},wv2,brovey,a.tif\n"
                                         f"{PAN},{MS},wv2,\"brovey,b.tif\n{PAN},{MS},wv2,exp,c.tif\n"
                                         f"{PAN},{MS},wv2,exp,d.tif\n")
    with pytest.raises(SceneListError, match=r"^line 3: a quoted cell starting on line 3 is never closed"):
        read_scenes(str(lst))


def test_a_quote_closed_rows_later_is_refused(tmp_path):
    lst = scene_list(tmp_path / "s.csv", f"pan,ms,sensor,method,output\n{PAN},{MS},wv2,\"brovey,a.tif\n"
                                         f"{PAN},{MS},wv2,exp,c.tif\n{PAN},{MS},wv2,\"exp\",d.tif\n")
    with pytest.raises(SceneListError, match=r"^line 2: a quoted cell starting on line 2 spans lines that look like "
                                             r"rows"):
        read_scenes(str(lst))
    ok = scene_list(tmp_path / "ok.csv", f"pan,ms,sensor,method,output\n{PAN},{MS},wv2,brovey,\"a\"\"b.tif\"\n")
    assert read_scenes(str(ok))[0].output.endswith('a"b.tif')   # '""' inside a quoted cell is a quote


@pytest.mark.parametrize("column, cell", [
    ("method", "mtf_glp\nhpm"),
    ("sensor", "wv2\r\nwv3"),
    ("compression", "lzw\tzstd"),
    ("create_options", "COMPRESS=LZW\nNBITS=11"),
])
def test_a_line_break_in_an_option_cell_stops_the_run_before_any_scene(tmp_path, column, cell):
    """QA: a method or sensor cell written on two lines (a quoted multi-line cell, Excel's Alt+Enter) was read; its
    scene failed only when it ran ("unknown method"), after the scenes above it. Now it is refused with the list,
    naming the row's line and the column, like a path cell with a line break."""
    good = {"method": "brovey", "sensor": "wv2", column: "deflate" if column == "compression" else ""}
    bad = {**good, column: cell}
    header = "pan,ms,output," + ",".join(good)
    rows = [f"{PAN},{MS},{out}," + ",".join(f'"{v}"' for v in cells.values())
            for out, cells in (("a.tif", good), ("b.tif", bad))]
    lst = scene_list(tmp_path / "s.csv", "\n".join([header, *rows]) + "\n")
    shown = cell.encode("unicode_escape").decode()   # the message shows it on one line: mtf_glp\nhpm
    with pytest.raises(SceneListError, match=rf'^line 3: column {column!r}: "{re.escape(shown)}" holds a control '
                                             r"character \(a line break"):
        read_scenes(str(lst))
    if column == "method":   # the command: exit 2 before any scene, the first row's output not written
        p = run_cli(str(lst), "--workers", "1")
        assert p.returncode == batch.EXIT_USAGE and "line 3: column 'method'" in p.stderr, p.stdout + p.stderr
        assert "scene(s)" not in p.stdout and not (tmp_path / "a.tif").exists()
    ok = scene_list(tmp_path / "ok.csv", f'pan,ms,output,method\n{PAN},{MS},a.tif,"brovey\n"\n')
    assert read_scenes(str(ok))[0].kwargs["method"] == "brovey"   # a line break after the value is white space


@pytest.mark.parametrize("column, cell, choice", [
    ("method", "foo", "brovey"),
    ("sensor", "WV9", "wv2"),
    ("device", "gpu", "cuda"),
    ("precision", "fp16", "float32"),
    ("compression", "jpeg", "zstd"),
])
def test_an_unknown_option_value_stops_the_run_before_any_scene(tmp_path, column, cell, choice):
    """QA: method foo, sensor wv9 ... in a cell were read; the scene failed only when it ran ("unknown method 'foo'"),
    after the scenes above it, while --method foo was refused before any. Now the list's cells are checked against
    the values the command-line options are checked against (``option_values``), naming line, column and value."""
    good = {"method": "BROVEY", "sensor": "WV2", "device": "CPU", "precision": "FLOAT32", "compression": "LZW"}
    header = "pan,ms,output," + ",".join(good)
    rows = [f"{PAN},{MS},{out}," + ",".join(cells.values())
            for out, cells in (("a.tif", good), ("b.tif", {**good, column: cell}))]
    lst = scene_list(tmp_path / "s.csv", "\n".join([header, *rows]) + "\n")
    known = batch.option_values(column)   # what --method, --sensor, --device are checked against
    with pytest.raises(SceneListError, match=rf'^line 3: column {column!r}: "{cell}" is not known: give one of '
                                             rf"{re.escape(', '.join(known))} \(upper or lower case\)$"):
        read_scenes(str(lst))
    assert choice in known
    ok = read_scenes(str(scene_list(tmp_path / "ok.csv", "\n".join([header, rows[0]]) + "\n")))
    assert {k: ok[0].kwargs[k] for k in good} == {k: v.lower() for k, v in good.items()}   # upper case still reads
    if column == "method":   # the command: exit 2 before any scene, the first row's output not written
        p = run_cli(str(lst), "--workers", "1")
        assert p.returncode == batch.EXIT_USAGE, p.stdout + p.stderr
        assert p.stderr.strip().splitlines() == [f"ksdiff batch: line 3: column 'method': \"foo\" is not known: give "
                                                 f"one of {', '.join(known)} (upper or lower case)"], p.stderr
        assert "scene(s)" not in p.stdout and not (tmp_path / "a.tif").exists()


def test_layer_crs_columns_read_an_epsg_code_and_refuse_bad_text_when_the_list_is_read(tmp_path):
    """QA: pan_crs / ms_crs EPSG:32632 was assigned, but the warning said "The PAN layer's CRS none ... placed in
    none" (the cell went to the engine as if it were WKT); unreadable text failed its scene only when it ran. Now the
    cells are read as extent_wkt is (``aoi.crs_wkt``, SetFromUserInput)."""
    lst = scene_list(tmp_path / "s.csv", f"pan,ms,sensor,method,output,pan_crs,MS_CRS\n"
                                         f"{PAN},{MS},wv2,brovey,a.tif,EPSG:32632,EPSG:32632\n"
                                         f"{PAN},{MS},wv2,brovey,b.tif,EPSG:32631,\n")
    scenes = read_scenes(str(lst))
    assert 'AUTHORITY["EPSG","32632"]]' in scenes[0].kwargs["pan_crs"] and "ms_crs" not in scenes[1].kwargs
    p = run_cli(str(lst), "--workers", "1", "--report", str(tmp_path / "r.jsonl"))
    assert p.returncode == 0 and "2 scene(s): 2 done" in p.stdout, p.stdout + p.stderr
    lines = [json.loads(t) for t in (tmp_path / "r.jsonl").read_text().splitlines()]
    warned = {r["line"]: [w for w in r["warnings"] if "'s CRS" in w] for r in lines if "line" in r}
    # said in the list's terms: the column that set it, not QGIS
    assert warned[2] == [f"The {role}'s CRS set in the row's {role.lower()}_crs column, EPSG:32632, replaces its "
                         "file's, EPSG:32631: its pixels are placed in EPSG:32632." for role in ("PAN", "MS")], warned
    assert warned[3] == []   # the file's own CRS: nothing to say

    bad = scene_list(tmp_path / "bad.csv", f"pan,ms,sensor,method,output,pan_crs\n{PAN},{MS},wv2,brovey,c.tif,\n"
                                           f"{PAN},{MS},wv2,brovey,d.tif,UTM 31N\n")
    said = ('line 3: pan_crs "UTM 31N" is no CRS: give the CRS the PAN\'s coordinates are in as EPSG:32631, a WKT or a '
            "PROJ string (+proj=utm +zone=31 +datum=WGS84), or nothing for the PAN file's own")
    with pytest.raises(SceneListError, match=f"^{re.escape(said)}$"):
        read_scenes(str(bad))
    p = run_cli(str(bad), "--workers", "1")
    assert p.returncode == batch.EXIT_USAGE and p.stderr.strip().splitlines() == [f"ksdiff batch: {said}"], p.stderr
    assert "scene(s)" not in p.stdout and not (tmp_path / "c.tif").exists()
    with pytest.raises(SceneListError, match=r'^line 2: ms_crs "POLYGON \(\(0 0, 1 0, 1 1, 0 0\)\)" is a geometry, '
                                             r"not a CRS: give the CRS the MS's coordinates are in as EPSG:32631"):
        read_scenes(str(scene_list(tmp_path / "geom.csv", f'pan,ms,output,ms_crs\n{PAN},{MS},e.tif,'
                                                          f'"POLYGON ((0 0, 1 0, 1 1, 0 0))"\n')))


# ------------------------------------------------------------------------- 5. columns and row counts
def test_excels_unnamed_empty_columns_are_ignored_but_not_their_values(tmp_path):
    lst = scene_list(tmp_path / "s.csv", f"pan;ms;method;output;;\n{PAN};{MS};brovey;a.tif;;\n;;;;;\n")
    (scene,) = read_scenes(str(lst))
    assert scene.kwargs["method"] == "brovey"
    bad = scene_list(tmp_path / "b.csv", f"pan;ms;method;output;;\n{PAN};{MS};brovey;a.tif;;256\n")
    with pytest.raises(SceneListError, match=r'^line 2: column 6 has no name in the header but holds "256"'):
        read_scenes(str(bad))


def test_two_columns_for_one_keyword_are_refused(tmp_path):
    lst = scene_list(tmp_path / "s.csv", f"pan,ms,method,output,METHOD\n{PAN},{MS},brovey,a.tif,ksdiff\n")
    with pytest.raises(SceneListError, match=r"the columns 'method' and 'METHOD' both set method: keep one"):
        read_scenes(str(lst))


def test_row_thread_counts_are_checked_like_the_option(tmp_path):
    neg = scene_list(tmp_path / "n.csv", f"pan,ms,method,output,threads\n{PAN},{MS},brovey,a.tif,-1\n")
    with pytest.raises(SceneListError, match=r"^line 2: column 'threads': -1 is below 0"):
        read_scenes(str(neg))
    big = scene_list(tmp_path / "b.csv", f"pan,ms,method,output,workers\n{PAN},{MS},brovey,a.tif,64\n")
    scenes = read_scenes(str(big))
    with pytest.raises(batch.UsageError, match=r"^line 2: workers 64 is more than the 2 core\(s\) of this machine"):
        batch.check_threads(0, 2, "this machine", scenes)
    p = run_cli(str(big), "--workers", "1")
    assert p.returncode == batch.EXIT_USAGE and "line 2: workers 64 is more than" in p.stderr, p.stderr


# ------------------------------------------------------------------------- 6. wording
def test_messages_name_the_file_and_show_invisible_characters(tmp_path, capsys):
    from ksdiff_qgis.engine.coregistration import in_batch_terms
    from ksdiff_qgis.engine.errors import has_control, one_line
    from ksdiff_qgis.engine.labels import param

    assert in_batch_terms(f"check it, or tick {param('COREGISTER')})") == "check it, or set coregister=yes)"
    assert one_line("wv2\u200b") == "wv2\\u200b" and not has_control("a\u200d.tif") and has_control("a\n.tif")
    assert one_line("👩\u200d👩 🏴\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f") == \
        "👩\u200d👩 🏴\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f"   # emoji sequences stay whole
    assert batch.main([str(tmp_path / "nope.csv")]) == batch.EXIT_USAGE
    said = capsys.readouterr().err
    assert f'the scene list "{tmp_path / "nope.csv"}" cannot be read: No such file or directory' in said
    lst = scene_list(tmp_path / "s.csv", f"pan,ms,method,output\n{PAN},{MS},brovey,a.tif\n")
    assert batch.main([str(lst), "--report", str(tmp_path / "no" / "r.jsonl")]) == batch.EXIT_USAGE
    assert f'the report file "{tmp_path / "no" / "r.jsonl"}" cannot be created' in capsys.readouterr().err


def test_a_local_clusters_workers_keep_dasks_shutdown_noise_off_the_console():
    """QA: after Ctrl-C a worker of the batch's own cluster printed Dask's heartbeat traceback and "Async instruction
    … ended with CancelledError" between "stopping" and the summary; those loggers are quieted in its workers."""
    import logging

    from ksdiff_qgis.batch import quiet_dask_shutdown

    names = ("distributed.worker", "distributed.core", "distributed.comm", "distributed.nanny")
    before = {n: logging.getLogger(n).level for n in names}
    try:
        quiet_dask_shutdown()
        for name in ("distributed.worker", "distributed.worker.state_machine", "distributed.core"):
            assert logging.getLogger(name).getEffectiveLevel() == logging.CRITICAL, name
    finally:   # this test process is not a batch worker
        for n, level in before.items():
            logging.getLogger(n).setLevel(level)
