"""`python -m ksdiff_qgis.batch` on a 2-worker local Dask cluster over the real fixtures.

One CLI run (module fixture) covers mixed sensors and methods and two bad scenes; further tests compare
its outputs with processing.run, re-run it (skips), and kill a worker process in the middle of a scene.
"""
from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
from osgeo import gdal

from ksdiff_qgis.batch import usable_cores

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
SAMPLE = ROOT / "ksdiff_qgis" / "resources" / "sample"   # the plugin folder holds resources/
HEADER = ["pan", "ms", "sensor", "method", "output", "tile_size", "overlap"]
GOOD = [  # (pan, ms, sensor, method, output, tile_size, overlap): both sensors, learned and classical
    (DATA / "wv2_pan.tif", DATA / "wv2_ms.tif", "wv2", "ksdiff", "out/wv2_ksdiff.tif", "", ""),
    (DATA / "wv2_pan.tif", DATA / "wv2_ms.tif", "wv2", "gsa", "out/wv2_gsa.tif", "128", "16"),
    (DATA / "l8_pan.tif", DATA / "l8_ms.tif", "landsat8", "ksdiff", "out/l8_ksdiff.tif", "", ""),
    (DATA / "l8_pan.tif", DATA / "l8_ms.tif", "landsat8", "mtf_glp_hpm", "out/l8/mtf.tif", "", ""),
]
BAD = [
    # bad input: reported at once (retrying cannot fix it)
    (DATA / "missing_pan.tif", DATA / "wv2_ms.tif", "wv2", "gsa", "out/missing.tif", "", ""),
    # the output folder cannot be created (a file is in the way): an OSError, retried, then reported
    (DATA / "wv2_pan.tif", DATA / "wv2_ms.tif", "wv2", "brovey", "blocker/sub/brovey.tif", "", ""),
    # a truncated MS (written by the fixture beside the list): one clear message, no raw GDAL lines on the console
    (DATA / "wv2_pan.tif", "truncated_ms.tif", "wv2", "mtf_glp_hpm", "out/truncated.tif", "", ""),
]


def write_csv(path: Path, rows) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        w.writerows([str(c) for c in row] for row in rows)
    return path


def cli(*args: str, progress: bool = False, **popen) -> subprocess.Popen:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT)}
    flags = [] if progress else ["--no-progress"]
    return subprocess.Popen([sys.executable, "-m", "ksdiff_qgis.batch", *args, *flags], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def run_cli(*args: str) -> tuple[int, str]:
    proc = cli(*args)
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out + err


def read_report(path: Path) -> tuple[dict[str, dict], dict]:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert "summary" in lines[-1]
    return {Path(r["output"]).name: r for r in lines[:-1]}, lines[-1]["summary"]


def sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    """The scene list run once on 2 local workers: (folder, report records, summary, exit code, log)."""
    d = tmp_path_factory.mktemp("batch")
    (d / "blocker").write_text("a file where a folder should be")
    whole = (DATA / "wv2_ms.tif").read_bytes()
    (d / "truncated_ms.tif").write_bytes(whole[: len(whole) * 2 // 3])
    write_csv(d / "scenes.csv", GOOD + BAD)
    rc, log = run_cli(str(d / "scenes.csv"), "--workers", "2", "--retries", "1", "--report", str(d / "report.jsonl"))
    records, summary = read_report(d / "report.jsonl")
    return d, records, summary, rc, log


def test_batch_runs_mixed_scenes_and_reports_bad_ones(first_run):
    d, records, summary, rc, log = first_run
    assert rc == 1, log                                  # some scenes failed
    assert summary["scenes"] == 7 and summary["done"] == 4 and summary["failed"] == 3, log
    for row in GOOD:
        rec = records[Path(row[4]).name]
        assert rec["status"] == "done" and rec["error"] is None
        assert (rec["sensor"], rec["method"], rec["device"]) == (row[2], row[3], "cpu")
        assert rec["sensor_used"] == row[2]
        assert rec["width"] == rec["height"] == 256 and rec["seconds"] > 0 and rec["mpx_per_s"] > 0
        assert rec["workers"] * rec["threads"] == max(1, usable_cores() // 2)   # 2 Dask workers share the cores
        assert gdal.Open(str(d / row[4])).RasterCount == 4
        assert (d / (row[4] + ".ksdiff.json")).exists()
    # Landsat's standard half-PAN-pixel grid layout is an info line, not a warning of the scene
    assert not any("shifted" in w for w in records["l8_ksdiff.tif"]["warnings"])
    assert "cannot open the PAN raster" in records["missing.tif"]["error"]
    assert "Error" in records["brovey.tif"]["error"]      # e.g. NotADirectoryError, after its retry
    assert "missing.tif: cannot open the PAN raster" in log
    assert "unreadable or truncated" in records["truncated.tif"]["error"]
    assert "ERROR 1" not in log   # GDAL's own lines (TIFFReadEncodedStrip...) stay off the console
    assert not list(d.rglob("*.partial")) and not (d / "out" / "missing.tif").exists()


def test_batch_outputs_equal_processing_run(first_run, qgis_app, tmp_path):
    import processing

    d, records, *_ = first_run
    for pan, ms, sensor, method, output, tile, overlap in GOOD:
        params = {"PAN": str(pan), "MS": str(ms), "SENSOR": sensor, "METHOD": method, "OUTPUT": str(tmp_path / "p.tif"),
                  "THREADS": records[Path(output).name]["threads"]}   # the output does not depend on it
        params.update({k: int(v) for k, v in (("TILE_SIZE", tile), ("OVERLAP", overlap)) if v})
        processing.run("ksdiff:pansharpen", params)
        assert sha256(tmp_path / "p.tif") == sha256(d / output), output


def test_batch_rerun_skips_what_is_up_to_date(first_run, tmp_path):
    """The re-run goes to a cluster that is already running (--scheduler), as on a real cluster."""
    from dask.distributed import LocalCluster

    d, *_ = first_run
    before = {row[4]: os.stat(d / row[4]).st_mtime_ns for row in GOOD}
    rows = [list(r) for r in GOOD]
    rows[1][6] = "32"                                     # wv2_gsa: another overlap -> redone
    os.remove(d / GOOD[3][4])                             # l8/mtf.tif deleted -> redone
    write_csv(d / "scenes.csv", rows)
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster:
        rc, log = run_cli(str(d / "scenes.csv"), "--scheduler", cluster.scheduler_address,
                          "--report", str(tmp_path / "again.jsonl"))
    records, summary = read_report(tmp_path / "again.jsonl")
    assert rc == 0, log
    assert {k: r["status"] for k, r in records.items()} == {
        "wv2_ksdiff.tif": "skipped", "wv2_gsa.tif": "done", "l8_ksdiff.tif": "skipped", "mtf.tif": "done"}
    assert (summary["done"], summary["skipped"]) == (2, 2)
    for name in ("out/wv2_ksdiff.tif", "out/l8_ksdiff.tif"):
        assert os.stat(d / name).st_mtime_ns == before[name]  # not rewritten
    assert "2 skipped" in log


def _holder_of(partials: list[Path], root: psutil.Process) -> psutil.Process | None:
    """The process (below ``root``) that has one of ``partials`` open: the worker writing it."""
    wanted = {str(p) for p in partials}
    for proc in root.children(recursive=True):
        try:
            if any(f.path in wanted for f in proc.open_files()):
                return proc
        except psutil.Error:
            continue
    return None


def _kill_writer(out_dir: Path, root: psutil.Process, timeout: float = 60) -> int:
    """Wait until a worker is writing a temporary output, SIGKILL it; returns its pid."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        partials = list(out_dir.glob(".*.partial"))
        holder = _holder_of(partials, root) if partials else None
        if holder is not None:
            holder.send_signal(signal.SIGKILL)
            return holder.pid
        time.sleep(0.01)
    raise AssertionError("no worker was seen writing an output")


def test_batch_survives_a_worker_killed_mid_scene(tmp_path):
    from ksdiff_qgis.engine.pipeline import pansharpen

    out = tmp_path / "out"
    out.mkdir()
    slow = (SAMPLE / "demo_pan.tif", SAMPLE / "demo_ms.tif", "wv2", "ksdiff", "out/demo.tif", "128", "32")
    write_csv(tmp_path / "scenes.csv", [slow])
    proc = cli(str(tmp_path / "scenes.csv"), "--workers", "2", "--report", str(tmp_path / "r.jsonl"))
    try:
        killed = _kill_writer(out, psutil.Process(proc.pid))
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert not psutil.pid_exists(killed) or psutil.Process(killed).status() == psutil.STATUS_ZOMBIE
    records, summary = read_report(tmp_path / "r.jsonl")
    assert records["demo.tif"]["status"] == "done" and summary["done"] == 1
    assert not list(out.glob(".*.partial"))   # the killed writer's temporary file is gone
    ref = str(tmp_path / "ref.tif")
    pansharpen(str(slow[0]), str(slow[1]), ref, sensor="wv2", method="ksdiff", tile_size=128, overlap=32,
               threads=records["demo.tif"]["threads"])
    np.testing.assert_array_equal(gdal.Open(str(out / "demo.tif")).ReadAsArray(), gdal.Open(ref).ReadAsArray())


def test_ctrl_c_leaves_no_temporary_files_and_reports_what_finished(tmp_path):
    """Ctrl-C while a scene is being written: no temporary file is left (it stayed until the next full run), and the
    report lists every scene whose output is complete (one that finished while the cluster closed was missing)."""
    from ksdiff_qgis.batch import EXIT_INTERRUPTED

    out = tmp_path / "out"
    out.mkdir()
    fast = (DATA / "wv2_pan.tif", DATA / "wv2_ms.tif", "wv2", "gsa", "out/fast.tif", "", "")
    slow = (SAMPLE / "demo_pan.tif", SAMPLE / "demo_ms.tif", "wv2", "ksdiff", "out/slow.tif", "128", "32")
    write_csv(tmp_path / "scenes.csv", [fast, slow])
    proc = cli(str(tmp_path / "scenes.csv"), "--workers", "1", "--report", str(tmp_path / "r.jsonl"))
    try:
        deadline = time.monotonic() + 120
        while not list(out.glob(".slow.tif.*.partial")) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert (out / "fast.tif").exists(), "the fast scene runs first on the one worker"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == EXIT_INTERRUPTED, err
    assert not list(out.glob(".*.partial*"))
    # the slow scene may still have finished while the cluster closed: then it is complete and reported too
    lines = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    reported = sorted(Path(r["output"]).name for r in lines if r.get("status") == "done")
    assert reported == sorted(p.name for p in out.glob("*.tif")) and "fast.tif" in reported, (reported, err)
    if (out / "slow.tif").exists():
        assert gdal.Open(str(out / "slow.tif")).RasterCount == 4


def test_plugin_and_batch_module_do_not_import_dask():
    code = (
        "import sys\n"
        "from qgis.core import QgsApplication\n"
        "app = QgsApplication([], False); app.initQgis()\n"
        "import ksdiff_qgis, ksdiff_qgis.batch\n"
        "plugin = ksdiff_qgis.classFactory(None); plugin.initProcessing()\n"
        "assert QgsApplication.processingRegistry().algorithmById('ksdiff:pansharpen') is not None\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))\n"
    )
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("header, rows, message", [
    ("pan,ms,sensor,method,output,colour", [], "unknown column"),
    ("pan,sensor,method,output", [], "lacks the column(s) ms"),
    ("pan,ms,sensor,method,output",
     [["a.tif", "b.tif", "wv2", "gsa", "o.tif"], ["c.tif", "d.tif", "wv2", "gsa", "o.tif"]], "write the same output"),
    ("pan,ms,sensor,method,output,tile_size", [["a.tif", "b.tif", "wv2", "gsa", "o.tif", "big"]], "tile_size"),
    # a row longer than the header (a traceback before 2026-12-06) and a switch nobody can read (it was taken as
    # false: a scene ran without its consistency step)
    ("pan,ms,sensor,method,output", [["a.tif", "b.tif", "wv2", "gsa", "o.tif", "extra"]], "more cells than the header"),
    ("pan,ms,method,output,consistency", [["a.tif", "b.tif", "ksdiff", "o.tif", "ture"]], "consistency.*ture"),
    # the engine's tiling rule, checked for every row before any scene (each scene failed alike, once per scene)
    ("pan,ms,method,output,tile_size,overlap", [["a.tif", "b.tif", "gsa", "o.tif", "128", "100"]],
     "line 2: --overlap (or the row's overlap) is 100; with --tile-size (or the row's tile_size) 128 it must be 0 to "
     "64 (tile_size 128 in the list, "
     "overlap 100 in"),
])
def test_bad_scene_lists_are_refused_before_any_work(tmp_path, header, rows, message):
    from ksdiff_qgis.engine.scenes import SceneListError, read_scenes

    path = tmp_path / "s.csv"
    path.write_text("\n".join([header, *(",".join(r) for r in rows)]) + "\n")
    with pytest.raises(SceneListError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_scenes(str(path))


def test_scene_list_maps_columns_to_engine_keywords(tmp_path):
    from ksdiff_qgis.engine.scenes import read_scenes

    path = tmp_path / "s.csv"
    path.write_text("pan,ms,sensor,method,output,TILE_SIZE,model\npan.tif,/vsis3/b/ms.tif,,gsa,o/x.tif,256,m.onnx\n")
    (scene,) = read_scenes(str(path), {"sensor": "landsat8", "tile_size": 64})
    assert scene.kwargs == {"pan_path": str(tmp_path / "pan.tif"), "ms_path": "/vsis3/b/ms.tif", "sensor": "landsat8",
                            "method": "gsa", "output_path": str(tmp_path / "o" / "x.tif"), "tile_size": 256,
                            "model_path": str(tmp_path / "m.onnx")}
    # option keys are case-insensitive, as in QGIS
    path.write_text("pan,ms,sensor,method,output\npan.tif,ms.tif,WV2,GSA,y.tif\n")
    (scene,) = read_scenes(str(path))
    assert (scene.kwargs["sensor"], scene.kwargs["method"]) == ("wv2", "gsa")


def test_scene_list_saved_by_german_or_french_excel(tmp_path):
    """A CSV as German/French Excel saves it ("CSV UTF-8": BOM, ';' between cells, CRLF) or tab-separated runs
    like the comma one (QA: "unknown column(s) 'pan;ms;sensor;method;output'"); the CLI fuses its scene."""
    from ksdiff_qgis.engine.scenes import read_scenes

    rows = [["pan", "ms", "sensor", "method", "output", "mtf_gains", "pan_nodata"],
            [str(DATA / "wv2_pan.tif"), str(DATA / "wv2_ms.tif"), "wv2", "brovey", "o.tif", "0.35 0.3 0.3 0.25", "0"]]
    read = {}
    for name, delimiter, start in (("comma", ",", ""), ("excel", ";", "\ufeff"), ("tab", "\t", "")):
        path = tmp_path / f"{name}.csv"
        path.write_text(start + "".join(delimiter.join(r) + "\r\n" for r in rows), encoding="utf-8")
        (scene,) = read_scenes(str(path))
        read[name] = scene.kwargs
    assert read["excel"] == read["tab"] == read["comma"]
    assert read["comma"]["mtf_gains"] == [0.35, 0.3, 0.3, 0.25] and read["comma"]["pan_nodata"] == 0.0
    rc, log = run_cli(str(tmp_path / "excel.csv"), "--workers", "1")
    assert rc == 0 and gdal.Open(str(tmp_path / "o.tif")).RasterCount == 4, log


@pytest.mark.parametrize("column, cell, message", [
    ("pan_nodata", "0,5", "a decimal comma? Write 0.5 (a decimal point)"),
    ("mtf_gains", "0,35", "separate the items with spaces: 0.35"),
    ("mtf_gains", "0,34 0,32 0,3 0,22", "separate the items with spaces: 0.34 0.32 0.3 0.22"),
    ("mtf_gains", '"0,34,0,32"', "separate the items with spaces: 0.34 0.32"),
    ("extent", '"0,5 1,5 2 3"', "separate the items with spaces: 0.5 1.5 2 3"),
])
def test_decimal_commas_in_a_scene_list_are_refused_with_the_value_meant(tmp_path, column, cell, message):
    """A number written with a decimal comma (a German/French Excel's cells) stops the list before any work and says
    what to write (mtf_gains '0,35' was read as the gains 0 and 35)."""
    from ksdiff_qgis.engine.scenes import SceneListError, read_scenes

    path = tmp_path / "s.csv"
    path.write_text(f"pan;ms;sensor;method;output;{column}\na.tif;b.tif;wv2;gsa;o.tif;{cell}\n")
    with pytest.raises(SceneListError, match=f"line 2: column '{column}'.*decimal comma") as err:
        read_scenes(str(path))
    assert message in str(err.value)


def test_scene_list_in_another_encoding_is_refused_clearly(tmp_path):
    """Excel's plain "CSV" is the Windows code page (cp1252): the message says to save it as UTF-8."""
    from ksdiff_qgis.engine.scenes import SceneListError, read_scenes

    path = tmp_path / "s.csv"
    path.write_bytes("pan;ms;output\nÜbersicht_pan.tif;ms.tif;o.tif\n".encode("cp1252"))
    with pytest.raises(SceneListError, match="not UTF-8 text.*CSV UTF-8"):
        read_scenes(str(path))


def test_a_batch_record_goes_when_another_run_replaces_its_output(qgis_app, tmp_path):
    """A batch output's <output>.ksdiff.json stayed when QGIS (or qgis_process) wrote another method's result onto
    the output (QA: the record said mtf_glp_hpm of a Brovey file): the replacing run removes it, like the .aux.xml;
    a batch run onto it writes its new record after the commit, and the one after skips."""
    import processing

    from ksdiff_qgis.engine.scenes import Scene, read_record, run_scene, sidecar_path

    out = tmp_path / "p1.tif"
    kwargs = {"pan_path": str(DATA / "wv2_pan.tif"), "ms_path": str(DATA / "wv2_ms.tif"), "sensor": "wv2",
              "method": "mtf_glp_hpm", "output_path": str(out)}
    assert run_scene(Scene(2, kwargs), cores=1)["status"] == "done"
    assert read_record(str(out))["fingerprint"]["parameters"]["method"] == "mtf_glp_hpm"
    processing.run("ksdiff:pansharpen", {"PAN": kwargs["pan_path"], "MS": kwargs["ms_path"], "SENSOR": "wv2",
                                         "METHOD": "brovey", "OUTPUT": str(out)})
    assert not os.path.exists(sidecar_path(str(out)))
    assert run_scene(Scene(2, kwargs), cores=1)["status"] == "done"     # redone: the output is not its result
    assert read_record(str(out))["output"]["size"] == out.stat().st_size
    assert run_scene(Scene(2, kwargs), cores=1)["status"] == "skipped"


def test_one_onnx_session_per_model_across_scenes(tmp_path):
    from ksdiff_qgis.engine import runtime
    from ksdiff_qgis.engine.scenes import Scene, run_scene

    runtime.clear_cache()
    for i in range(2):   # what one worker process does with two scenes of the same sensor
        kwargs = {"pan_path": str(DATA / "wv2_pan.tif"), "ms_path": str(DATA / "wv2_ms.tif"), "sensor": "wv2",
                  "method": "ksdiff", "output_path": str(tmp_path / f"s{i}.tif")}
        assert run_scene(Scene(i + 2, kwargs), cores=1)["status"] == "done"
    assert len(runtime._cache) == 1


def test_list_columns_follow_the_engine_annotation():
    import inspect

    from ksdiff_qgis.engine.scenes import _convert

    def p(annotation: str) -> inspect.Parameter:
        return inspect.Parameter("x", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation)

    assert _convert("1 2 3", p("list[int] | None")) == [1, 2, 3]
    assert _convert("[1, 2]", p("list[int] | None")) == [1, 2]
    assert _convert("0;1.5;2;3", p("tuple[float, float, float, float] | None")) == (0.0, 1.5, 2.0, 3.0)
    assert _convert("EPSG:32631", p("str | None")) == "EPSG:32631"


def test_a_coregistered_scene_keeps_the_move_in_its_record(tmp_path):
    """A scene list's coregister column: the report record and the output's sidecar say how far the MS moved (the
    log line is info, which a batch run does not print)."""
    from ksdiff_qgis.engine.scenes import read_record, read_scenes, run_scene

    path = tmp_path / "s.csv"
    path.write_text(f"pan,ms,sensor,method,output,coregister\n{DATA / 'wv2_pan.tif'},{DATA / 'wv2_ms.tif'},wv2,"
                    "mtf_glp_hpm,o.tif,yes\n")
    (scene,) = read_scenes(str(path))
    record = run_scene(scene, cores=1)
    assert record["status"] == "done" and "coregister=yes: the MS moved onto the PAN" in record["coregistration"]
    assert read_record(scene.output)["result"]["coregistration"] == record["coregistration"]


def test_the_coregistration_advice_names_the_scene_list_column(tmp_path):
    """QA: the batch's warning (and its report record and sidecar) said to tick 'Move the MS onto the PAN…'
    (COREGISTER) under Advanced Parameters, which a scene list has not: it names the row's coregister column. The
    fixture pair lies 1.3 PAN pixels apart."""
    from ksdiff_qgis.engine.scenes import read_record, read_scenes, run_scene

    path = tmp_path / "s.csv"
    path.write_text(f"pan,ms,sensor,method,output\n{DATA / 'wv2_pan.tif'},{DATA / 'wv2_ms.tif'},wv2,exp,o.tif\n")
    (scene,) = read_scenes(str(path))
    record = run_scene(scene, cores=1)
    said = [w for w in record["warnings"] if "PAN pixels apart" in w]
    assert len(said) == 1 and "set the row's coregister column to yes" in said[0], record["warnings"]
    assert not [w for w in record["warnings"] if "Advanced Parameters" in w or "(COREGISTER)" in w]
    assert read_record(scene.output)["result"]["warnings"] == record["warnings"]


def test_report_and_record_keep_non_ascii_names_readable(tmp_path):
    """QA: the report .jsonl and the .ksdiff.json record wrote 'Überflug März' as '\\u00dcberflug M\\u00e4rz', so
    grep found no 'März': both are UTF-8 text with the names as written."""
    lists = tmp_path / "Überflug März 北京"
    lists.mkdir()
    (lists / "s.csv").write_text(f"pan,ms,sensor,method,output\n{DATA / 'wv2_pan.tif'},{DATA / 'wv2_ms.tif'},wv2,"
                                 "exp,Ergebnis ü/o.tif\n", encoding="utf-8")
    report = lists / "Bericht März.jsonl"
    p = cli(str(lists / "s.csv"), "--workers", "1", "--report", str(report))
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, out + err
    sidecar = (lists / "Ergebnis ü" / "o.tif.ksdiff.json").read_bytes()
    for text in (report.read_bytes(), sidecar):
        assert "Überflug März 北京/Ergebnis ü/o.tif".encode() in text and b"\\u00" not in text, text[:300]
    assert json.loads(report.read_text(encoding="utf-8").splitlines()[0])["status"] == "done"


def test_precision_float32_in_a_scene_list_runs(tmp_path):
    """README and the help call float32 PRECISION's other name; QGIS took it, a batch list's cell failed every scene
    with "unknown precision 'float32'" (docs QA): the engine takes the alias too."""
    from ksdiff_qgis.engine.scenes import read_scenes, run_scene

    path = tmp_path / "s.csv"
    row = f"{DATA / 'wv2_pan.tif'},{DATA / 'wv2_ms.tif'},wv2,gsa,o.tif,float32"
    path.write_text(f"pan,ms,sensor,method,output,precision\n{row}\n")
    (scene,) = read_scenes(str(path))
    record = run_scene(scene)
    assert record["status"] == "done", record


def test_an_output_through_a_missing_folder_is_the_path_the_list_resolves(tmp_path):
    """QA: Processing took OUTPUT 'e/nodir/../o3.tif' with no 'nodir', fused the scene, then failed at the final
    rename (the OS walks through 'nodir'). A scene list's paths are resolved when it is read (relative to its
    folder, '..' included), so the batch writes the resolved 'out/o3.tif' in one go and makes no 'nodir'."""
    row = (DATA / "wv2_pan.tif", DATA / "wv2_ms.tif", "wv2", "brovey", "out/nodir/../o3.tif", "", "")
    rc, log = run_cli(str(write_csv(tmp_path / "s.csv", [row])), "--workers", "1", "--retries", "0", "--report",
                      str(tmp_path / "report.jsonl"))
    records, summary = read_report(tmp_path / "report.jsonl")
    assert rc == 0 and summary["done"] == 1, log
    assert records["o3.tif"]["output"] == str(tmp_path / "out" / "o3.tif")
    assert gdal.Open(str(tmp_path / "out" / "o3.tif")).RasterCount == 4
    assert not (tmp_path / "out" / "nodir").exists() and not list(tmp_path.rglob("*.partial"))


# ------------------------------------------------------------------------- command line checks, stopping
FAST = (DATA / "wv2_pan.tif", DATA / "wv2_ms.tif", "wv2", "gsa", "out/fast.tif", "", "")
# about 10 s on one core (KSDiff, float32, 64-pixel tiles): still being written when the run is stopped
SLOW = (SAMPLE / "demo_pan.tif", SAMPLE / "demo_ms.tif", "wv2", "ksdiff", "out/slow.tif", "64", "32")


def _finish(proc: subprocess.Popen, timeout: float) -> tuple[str, str]:
    """stdout and stderr of ``proc``; on a timeout its whole process group (Dask workers too) is killed first."""
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(f"no answer within {timeout} s: {err[-2000:]}") from None


@pytest.mark.parametrize("args, message", [
    (["--workers", "-1"], "--workers must be 0 (one per core) or more"),          # hung forever
    (["--threads", "-1"], "--threads must be 0 (a worker's share of the cores) or more"),
    (["--threads", "1000"], "--threads 1000 is more than the"),                    # 1000 tile workers per scene
    (["--retries", "-1"], "--retries must be 0 (no retry) or more"),
    # each scene failed alike once the cluster had started (10k scenes: 10k identical errors, exit 1)
    (["--tile-size", "0"], "the tile size must be at least 64 pixels (tile_size 0 given on the command line"),
    (["--overlap", "-5"], "--overlap (or the row's overlap) is -5; with --tile-size (or the row's tile_size) 512 it "
                          "must be 0 to 256 (tile_size 512 "
                          "by default, "
                          "overlap -5 given on the command line)"),
    (["--scheduler", "{tmp}/missing.json"], "the scheduler file {tmp}/missing.json does not exist"),   # "missing port"
    (["--scheduler", "tcp://127.0.0.1:1"], "cannot reach the Dask scheduler at tcp://127.0.0.1:1: "),  # 60 lines, 30 s
])
def test_bad_options_are_refused_in_one_line_before_any_work(tmp_path, args, message):
    write_csv(tmp_path / "scenes.csv", [FAST])
    args = [a.format(tmp=tmp_path) for a in args]
    t0 = time.monotonic()
    proc = cli(str(tmp_path / "scenes.csv"), *args, start_new_session=True)
    out, err = _finish(proc, timeout=20)
    assert proc.returncode == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("ksdiff batch: "), err
    assert message.format(tmp=tmp_path) in err
    assert not (tmp_path / "out").exists() and time.monotonic() - t0 < 15


def test_too_many_workers_are_capped_with_a_warning(tmp_path, monkeypatch):
    """--workers 1000 on 2 cores started hundreds of processes (408 leaked semaphores at the end): at most
    MAX_WORKERS_PER_CORE per core and WORKER_MB of available RAM each."""
    from ksdiff_qgis import batch
    from ksdiff_qgis.engine import memory

    cores = usable_cores()
    write_csv(tmp_path / "scenes.csv", [FAST])
    too_many = 4 * cores + 1   # few enough to run here on the old code, which started them all
    rc, log = run_cli(str(tmp_path / "scenes.csv"), "--workers", str(too_many))
    assert rc == 0 and f"ksdiff batch: --workers {too_many} is more than this machine's" in log, log
    per_core = batch.MAX_WORKERS_PER_CORE
    assert (f"ksdiff batch: --workers {too_many} is more than this machine's {cores} core(s) can use: using "
            f"{per_core * cores} (at most {per_core} per core)") in log
    monkeypatch.setattr(memory, "available_mb", lambda: 3.5 * batch.WORKER_MB)
    monkeypatch.setattr(batch, "usable_cores", lambda: 8)
    assert batch.local_workers(2) == (2, None)
    assert batch.local_workers(0)[0] == batch.local_workers(6)[0] == 3       # one per core would not fit either
    assert "would not fit in the 896 MB of available RAM: using 3" in batch.local_workers(6)[1]


class _Lines:
    """stderr of a running process, line by line with the time each arrived."""

    def __init__(self, stream):
        import threading

        self.lines: list[tuple[float, str]] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            self.lines.append((time.monotonic(), line))

    def first(self, text: str, timeout: float) -> float | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for t, line in list(self.lines):
                if text in line:
                    return t
            time.sleep(0.02)
        return None

    def text(self) -> str:
        self._thread.join(10)
        return "".join(line for _, line in self.lines)


def _kill_group(proc: subprocess.Popen) -> None:
    """Whatever of the command's process group is still there (a test that failed halfway)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def _start_stoppable(tmp_path: Path) -> tuple[subprocess.Popen, _Lines, Path]:
    """The CLI on the fast and the slow scene (one worker, one core), returned once the slow one is being written."""
    out = tmp_path / "out"
    out.mkdir()
    write_csv(tmp_path / "scenes.csv", [FAST, SLOW])
    proc = cli(str(tmp_path / "scenes.csv"), "--workers", "1", "--threads", "1", "--report", str(tmp_path / "r.jsonl"),
               start_new_session=True)   # its own process group, as a terminal's job
    err = _Lines(proc.stderr)
    deadline = time.monotonic() + 60
    while not list(out.glob(".slow.tif.*.partial")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
    assert list(out.glob(".slow.tif.*.partial")), err.text()
    return proc, err, out


def _check_stopped_run(tmp_path: Path, out: Path, log: str, stdout: str, signame: str) -> None:
    """No temporary file left, and the report and console say so truthfully: every complete output is in the
    report, whose last line is the summary (also printed)."""
    assert not list(out.glob(".*.partial*")), log
    assert "terminate called" not in log and "Traceback" not in log, log
    lines = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    summary = lines[-1]["summary"]
    reported = sorted(Path(r["output"]).name for r in lines[:-1] if r["status"] == "done")
    assert reported == sorted(p.name for p in out.glob("*.tif")) and "fast.tif" in reported, (reported, log)
    # also a scene that finished while the cluster closed (reported from its sidecar): the fields of any 'done' line
    assert all(r["worker"] and r["workers"] and r["threads"] and r["mpx_per_s"] for r in lines[:-1]
               if r["status"] == "done"), lines
    assert summary["stopped_by"] == signame and summary["scenes"] == 2
    assert summary["done"] + summary["not_run"] == 2 and summary["done"] == len(reported)
    assert f"(stopped by {signame})" in stdout and f"{summary['not_run']} not run" in stdout
    assert "the scenes that finished are kept and listed in the report, no temporary file is left" in log


@pytest.mark.skipif(sys.platform == "win32", reason="process groups, SIGINT")
def test_second_ctrl_c_hurries_the_cleanup_instead_of_breaking_it(tmp_path):
    """Ctrl-C in a terminal (SIGINT to the whole process group): nothing was printed for ~4.5 s while the cluster
    closed, and a second Ctrl-C then broke the cleanup: a partial file stayed, a finished scene was missing from the
    report, "terminate called without an active exception", yet the last line said the temporary files were removed.
    Now the first says at once what happens; the second kills the running scenes and the cleanup still runs."""
    from ksdiff_qgis.batch import EXIT_INTERRUPTED

    proc, err, out = _start_stoppable(tmp_path)
    try:
        sent = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)
        said = err.first("ksdiff batch: stopping (Ctrl-C): no new scene starts", timeout=5)
        assert said is not None and said - sent < 2.0, err.text()   # it was silent for ~4.5 s
        time.sleep(0.3)
        again = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=30)
        ended = time.monotonic()
    finally:
        _kill_group(proc)
    stdout, log = proc.stdout.read(), err.text()
    assert proc.returncode == EXIT_INTERRUPTED, log
    assert "stopping the running scenes now (1 worker process(es) killed)" in log
    assert ended - again < 3.5, log   # not the 4 s the running scene would otherwise get
    _check_stopped_run(tmp_path, out, log, stdout, "SIGINT")


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM, SIGHUP")
@pytest.mark.parametrize("name", ["SIGTERM", "SIGHUP"])
def test_sigterm_stops_the_run_like_ctrl_c_and_exits_143(tmp_path, name):
    """SIGTERM to the command (timeout, Slurm, systemd, docker stop) killed it at once: the running scene's partial
    file stayed and no summary was written. Now it stops like Ctrl-C and exits 128 + 15. SIGHUP (the terminal
    closed) likewise, exit 129 (QA: it ended the run silently, no 'stopping' line, no summary)."""
    signum = getattr(signal, name)
    proc, err, out = _start_stoppable(tmp_path)
    workers = psutil.Process(proc.pid).children(recursive=True)
    try:
        proc.send_signal(signum)   # to the driver only, as timeout(1) or systemd's main-process kill
        proc.wait(timeout=30)
        _, alive = psutil.wait_procs(workers, timeout=5)
    finally:
        _kill_group(proc)
    stdout, log = proc.stdout.read(), err.text()
    assert proc.returncode == 128 + signum, (proc.returncode, log)   # 143 for SIGTERM, as documented
    assert not list(out.glob(".*.partial*")), log
    assert f"ksdiff batch: stopping ({name})" in log and f"stopped by {name}" in log
    _check_stopped_run(tmp_path, out, log, stdout, name)
    assert not alive   # no worker process outlives the command


@pytest.mark.skipif(sys.platform == "win32", reason="process groups")
def test_ctrl_c_while_the_command_starts_says_one_line(tmp_path):
    """Ctrl-C in the first half second (the engine's and Dask's imports, before the clean-stop handler): QA saw a
    20-line KeyboardInterrupt traceback. Now one line and exit 130."""
    write_csv(tmp_path / "scenes.csv", [FAST])
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "ksdiff_qgis.batch", str(tmp_path / "scenes.csv"), "--workers",
                             "1", "--no-progress"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True,
                            # as from a terminal: a background job (CI, make &) inherits SIGINT ignored
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(0.25)   # Python is up, the imports are under way
    os.killpg(proc.pid, signal.SIGINT)   # as a terminal sends it: to the whole group
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (proc.returncode, err)
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert "ksdiff batch: stopped by Ctrl-C" in err, err
    assert not (tmp_path / "out").exists() or not os.listdir(tmp_path / "out")


def test_a_logged_run_prints_plain_progress_lines_and_opens_no_dashboard(tmp_path):
    """stderr to a log file: tqdm wrote one huge line of carriage-return updates; now a plain line per tenth of the
    scenes. The local cluster served Dask's dashboard routes on port 8787 (dashboard_address=None): a second run
    warned "Port 8787 is already in use"."""
    import socket

    write_csv(tmp_path / "scenes.csv", [FAST])
    with socket.socket() as taken:
        with contextlib.suppress(OSError):   # already taken by something else: the same situation
            taken.bind(("127.0.0.1", 8787))
            taken.listen()
        proc = cli(str(tmp_path / "scenes.csv"), "--workers", "1", progress=True)
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "\r" not in err and "8787" not in err and "already in use" not in err, err
    assert "ksdiff batch: 1/1 scenes, 0 failed" in err and "1 scene(s): 1 done" in out


def test_leftover_a_process_holds_open_does_not_stop_the_cleanup(tmp_path, monkeypatch):
    """Windows refuses to delete a file another process holds open: one such leftover raised PermissionError out
    of the batch's cleanup; it is now left where it is and the others still go."""
    from ksdiff_qgis.engine import scenes
    from ksdiff_qgis.engine.scenes import remove_partials, sidecar_path

    out = tmp_path / "fused.tif"
    held = Path(sidecar_path(str(out)) + ".111.partial")
    free = Path(sidecar_path(str(out)) + ".222.partial")
    for p in (held, free):
        p.write_text("{}")
    real_remove = os.remove

    def remove(path, *args, **kwargs):
        if os.fspath(path) == str(held):
            raise PermissionError(32, "The process cannot access the file because it is being used", str(path))
        return real_remove(path, *args, **kwargs)

    monkeypatch.setattr(scenes.os, "remove", remove)
    assert remove_partials(str(out)) == [str(free)]
    assert held.exists() and not free.exists()


def test_a_check_only_row_reports_its_self_check_and_leaves_no_record(tmp_path):
    """QA: a check_only row was reported 'done' with width 0 and no figures, and left a .ksdiff.json beside an output
    never written. Now it is 'checked' with the self-check's SELFCHECK_* figures (as the Processing outputs carry
    them), writes nothing, and a later real run of the row fuses the scene (not skipped)."""
    from ksdiff_qgis.batch import summarize
    from ksdiff_qgis.engine.scenes import read_scenes, run_scene, sidecar_path

    path = tmp_path / "s.csv"
    path.write_text(f"pan,ms,sensor,method,output,check_only\n{DATA / 'wv2_pan.tif'},{DATA / 'wv2_ms.tif'},wv2,"
                    "auto,o.tif,true\n")
    (scene,) = read_scenes(str(path))
    record = run_scene(scene, cores=1)
    assert record["status"] == "checked" and record["error"] is None, record
    figures = record["selfcheck"]
    assert figures["SELFCHECK_METHOD"] == record["method_used"], record
    assert figures["SELFCHECK_KSDIFF_ERGAS"] > 0 and figures["SELFCHECK_CLASSICAL_ERGAS"] > 0, figures
    assert not os.path.exists(scene.output) and not os.path.exists(sidecar_path(scene.output))
    assert summarize([record], 1.0)["checked"] == 1 and summarize([record], 1.0)["done"] == 0

    path.write_text(f"pan,ms,sensor,method,output\n{DATA / 'wv2_pan.tif'},{DATA / 'wv2_ms.tif'},wv2,auto,o.tif\n")
    (real,) = read_scenes(str(path))
    done = run_scene(real, cores=1)
    assert done["status"] == "done" and done["width"] > 0 and os.path.exists(real.output), done
    assert done["selfcheck"]["SELFCHECK_METHOD"] == done["method_used"], done
