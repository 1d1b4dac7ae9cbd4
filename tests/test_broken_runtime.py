"""A damaged private ONNX Runtime (QA 55): a truncated native library and a folder without __init__.py.

Each case runs in a child QGIS Python with a damaged copy of the real runtime first on ``sys.path``, so that a crash
(the truncated library killed QGIS with SIGBUS) fails the test instead of killing pytest."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
NATIVE = "onnxruntime_pybind11_state"
HINT = "reinstall it with Raster > KSDiff > Install ONNX Runtime… (ksdiff:install_runtime)"

# Runs ksdiff:pansharpen through Processing for each step of argv[2] (a JSON list): ["pre-import"] imports onnxruntime
# first (another plugin did), ["run", METHOD] runs it (["run", METHOD, "refused"]: with no scene statistics allowed),
# ["repair", src, dst] puts a good copy of a file back. Prints one JSON line per run: what it returned or raised, its
# warnings, and what onnxruntime was loaded afterwards.
DRIVER = textwrap.dedent("""
    import json, os, shutil, sys, time
    # the venv's own onnxruntime hidden (in QGIS the private one is the only one: a regular package anywhere on the
    # path wins over a folder without __init__.py), the damaged runtime first, as deps.activate puts the private one
    site = json.loads(sys.argv[6])
    sys.path[:] = [sys.argv[1], sys.argv[3]] + [site.get(p, p) for p in sys.path]
    from qgis.testing import start_app
    app = start_app()
    sys.path.append("/usr/share/qgis/python/plugins")
    from processing.core.Processing import Processing
    Processing.initialize()
    import ksdiff_qgis, processing
    from qgis.core import QgsProcessingFeedback
    plugin = ksdiff_qgis.classFactory(None)   # kept: its provider goes with it
    plugin.initProcessing()
    from ksdiff_qgis.engine import pipeline

    class Fb(QgsProcessingFeedback):
        warnings = []
        def pushWarning(self, msg):
            self.warnings.append(msg)

    def no_statistics(*a, **k):
        raise AssertionError("scene statistics computed before the refusal")

    for n, step in enumerate(json.loads(sys.argv[2])):
        if step[0] == "pre-import":
            import onnxruntime
            continue
        if step[0] == "repair":
            os.remove(step[2])
            shutil.copy(step[1], step[2])
            continue
        fb, out = Fb(), os.path.join(sys.argv[4], f"o{n}.tif")
        keep = pipeline.estimate_scene_stats
        if step[2:] == ["refused"]:
            pipeline.estimate_scene_stats = no_statistics
        said = {"method": step[1]}
        t0 = time.perf_counter()
        try:
            res = processing.run("ksdiff:pansharpen", {"PAN": sys.argv[5] + "/wv2_pan.tif",
                                 "MS": sys.argv[5] + "/wv2_ms.tif", "SENSOR": "wv2", "METHOD": step[1],
                                 "OUTPUT": out}, feedback=fb)
            said["used"] = res.get("SELFCHECK_METHOD") or step[1]
        except Exception as e:
            said["error"] = str(e)
        pipeline.estimate_scene_stats = keep
        said.update(seconds=time.perf_counter() - t0, warnings=Fb.warnings[:], written=os.path.exists(out),
                    loaded=None if "onnxruntime" not in sys.modules else
                    getattr(sys.modules["onnxruntime"], "__file__", None) or "an empty namespace package")
        Fb.warnings.clear()
        print("RUN " + json.dumps(said), flush=True)
""")


def _runtime_copy(folder: Path) -> Path:
    """A copy of the venv's real onnxruntime package under ``folder`` (files linked, __pycache__ left out)."""
    import importlib.util

    real = Path(importlib.util.find_spec("onnxruntime").origin).parent
    copy = folder / "onnxruntime"
    shutil.copytree(real, copy, copy_function=os.symlink, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def _native(package: Path) -> Path:
    return next(p for p in (package / "capi").iterdir() if p.name.startswith(NATIVE))


def _site_without_onnxruntime(folder: Path) -> dict[str, str]:
    """{folder of sys.path holding onnxruntime: a folder of links to all it holds but onnxruntime}."""
    hidden = {}
    for entry in sys.path:
        if entry and (Path(entry) / "onnxruntime").is_dir():
            overlay = folder / f"site{len(hidden)}"
            if not overlay.exists():   # made by an earlier run of the test
                overlay.mkdir(parents=True)
                for item in Path(entry).iterdir():
                    if not item.name.startswith("onnxruntime"):
                        os.symlink(item, overlay / item.name)
            hidden[entry] = str(overlay)
    return hidden


def _drive(runtime: Path, steps: list, tmp_path: Path) -> tuple[subprocess.CompletedProcess, list[dict]]:
    site = _site_without_onnxruntime(tmp_path / "site")
    res = subprocess.run([sys.executable, "-c", DRIVER, str(runtime), json.dumps(steps), str(ROOT), str(tmp_path),
                          str(DATA), json.dumps(site)], capture_output=True, text=True, timeout=600, cwd=tmp_path,
                         env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    runs = [json.loads(line[4:]) for line in res.stdout.splitlines() if line.startswith("RUN ")]
    return res, runs


def _clean_exit(res: subprocess.CompletedProcess) -> None:
    assert res.returncode == 0, f"the QGIS Python ended with {res.returncode} (-7: SIGBUS):\n{res.stderr[-3000:]}"


@pytest.mark.skipif(sys.platform != "linux", reason="a truncated ELF library raises SIGBUS on Linux")
def test_a_truncated_native_library_does_not_kill_qgis(tmp_path):
    """QA 55 #1: a truncated onnxruntime_pybind11_state .so (interrupted copy, full disk) killed QGIS with SIGBUS
    (unsaved work lost) on the first METHOD auto or ksdiff run. The import is tried in a child Python first: auto
    falls back with a warning that says how to repair, ksdiff is refused before any scene work, onnxruntime is never
    loaded into QGIS; the repaired file is seen in the same session."""
    package = _runtime_copy(tmp_path / "rt")
    native = _native(package)
    good = os.path.realpath(native)
    native.unlink()
    with open(good, "rb") as src, open(native, "wb") as dst:
        dst.write(src.read(os.path.getsize(good) // 2))
    res, runs = _drive(tmp_path / "rt", [["run", "auto"], ["run", "ksdiff", "refused"], ["run", "mtf_glp_hpm"],
                                         ["repair", good, str(native)], ["run", "ksdiff"]], tmp_path)
    _clean_exit(res)
    auto, ksdiff, hpm, repaired = runs
    said = (f"ONNX Runtime at {package} does not load (importing it kills Python with signal 7, SIGBUS): {HINT}")
    assert auto["used"] in ("mtf_glp_hpm", "mtf_glp_fs", "gsa", "brovey", "exp") and auto["written"], auto
    broken = [w for w in auto["warnings"] if said in w]
    assert len(broken) == 1 and "\n" not in broken[0] and "classical method" in broken[0], auto["warnings"]
    assert ksdiff["error"] == said and not ksdiff["written"] and not ksdiff["warnings"], ksdiff
    assert hpm["used"] == "mtf_glp_hpm" and hpm["written"]
    assert auto["loaded"] is None and ksdiff["loaded"] is None   # never loaded into the QGIS process
    # the repair (Install ONNX Runtime… replaces the file) is seen without a restart
    assert repaired["used"] == "ksdiff" and repaired["written"], repaired
    assert repaired["loaded"] == str(package / "__init__.py")


def test_a_runtime_folder_without_init_is_refused_clearly(tmp_path):
    """QA 55 #2: an onnxruntime folder without __init__.py (half-removed) imported as an empty namespace package and
    METHOD auto/ksdiff stopped with "Internal error (AttributeError …); please report it". Whether the child probe
    sees it or the empty module was imported earlier in the session (by another plugin: no probe then), auto falls
    back and ksdiff is refused with how to repair it."""
    package = _runtime_copy(tmp_path / "rt")
    (package / "__init__.py").unlink()
    said = f"ONNX Runtime at {package} does not load ("
    for steps in ([["run", "auto"], ["run", "ksdiff", "refused"]],
                  [["pre-import"], ["run", "auto"], ["pre-import"], ["run", "ksdiff", "refused"]]):
        res, runs = _drive(tmp_path / "rt", steps, tmp_path)
        _clean_exit(res)
        auto, ksdiff = runs
        assert "Internal error" not in json.dumps(runs) and "AttributeError" not in json.dumps(runs), runs
        assert auto["used"] != "ksdiff" and auto["written"], auto
        assert [w for w in auto["warnings"] if said in w and HINT in w], auto["warnings"]
        assert ksdiff["error"].startswith(said) and ksdiff["error"].endswith(HINT) and not ksdiff["written"], ksdiff
        assert ksdiff["loaded"] is None   # the empty module is forgotten: a reinstall is imported next time


def test_the_probe_runs_once_per_state_of_the_files_and_not_after_the_import(tmp_path, monkeypatch):
    """The child import costs 0.1-0.4 s: once per session and per state of the runtime's files (a repair is seen),
    never once onnxruntime is loaded in this process."""
    from ksdiff_qgis.engine import deps, runtime

    calls = []
    real = deps._imports
    monkeypatch.setattr(deps, "_imports", lambda *a, **k: calls.append(a) or real(*a, **k))
    import onnxruntime  # noqa: F401 - loaded in this process: never probed again
    assert runtime.import_onnxruntime() is sys.modules["onnxruntime"] and not calls
    package = tmp_path / "py311" / "onnxruntime"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("raise ImportError('half a runtime')\n")
    monkeypatch.setattr(sys, "path", [str(tmp_path / "py311"), *sys.path])
    monkeypatch.delitem(sys.modules, "onnxruntime")
    for _ in range(2):
        with pytest.raises(runtime.RuntimeUnavailable, match=r"does not load \(ImportError: half a runtime\)"):
            runtime.import_onnxruntime()
    assert len(calls) == 1 and calls[0][1] == str(tmp_path / "py311")   # this process's sys.path, in order
    (package / "__init__.py").write_text("raise ImportError('still half a runtime')\n")
    os.utime(package / "__init__.py", ns=(1, 1))   # another time: a copy that kept its source's time is seen too
    with pytest.raises(runtime.RuntimeUnavailable, match="still half a runtime"):
        runtime.import_onnxruntime()
    assert len(calls) == 2


# A fresh Python per run, as qgis_process starts one per scene: the runtime copy argv[1] first on the path (the venv's
# own hidden, argv[3]), deps.activate(argv[4]) as the plugin does, then one import_onnxruntime(). Prints how many child
# probes it ran, the refusal if any, and the file onnxruntime was loaded from.
FRESH = textwrap.dedent("""
    import json, sys
    site = json.loads(sys.argv[3])
    sys.path[:] = [sys.argv[1], sys.argv[2]] + [site.get(p, p) for p in sys.path]
    from ksdiff_qgis.engine import deps, runtime
    deps.activate(sys.argv[4])
    probes, real = [], deps._imports
    deps._imports = lambda *a, **k: probes.append(a) or real(*a, **k)
    try:
        runtime.import_onnxruntime()
        error = None
    except runtime.RuntimeUnavailable as e:
        error = str(e)
    print("RUN " + json.dumps({"probes": len(probes), "error": error,
                               "loaded": getattr(sys.modules.get("onnxruntime"), "__file__", None)}))
""")


@pytest.mark.skipif(sys.platform != "linux", reason="a truncated ELF library raises SIGBUS on Linux")
def test_a_runtime_that_loaded_is_not_probed_again_by_the_next_process(tmp_path):
    """QA 61: the child probe cost 0.33 s of a 1.8 s learned run, in every qgis_process (one per scene). A state of
    the runtime's files that loaded fine is kept in the plugin's runtime folder: the next process imports without a
    probe; a changed file (touched .so), a corrupt verdict file or a failing state is probed again, and a truncated
    library still never reaches the process."""
    from ksdiff_qgis.engine import runtime

    package = _runtime_copy(tmp_path / "rt")
    native = _native(package)
    good = os.path.realpath(native)
    native.unlink()
    shutil.copy2(good, native)   # a file of its own: touched and truncated below, the venv's left alone
    base = tmp_path / "ksdiff_runtime"
    base.mkdir()
    site = json.dumps(_site_without_onnxruntime(tmp_path / "site"))

    def fresh() -> dict:
        res = subprocess.run([sys.executable, "-c", FRESH, str(tmp_path / "rt"), str(ROOT), site, str(base)],
                             capture_output=True, text=True, timeout=300, cwd=tmp_path)
        _clean_exit(res)
        return json.loads(res.stdout.splitlines()[-1][4:])

    loaded = {"probes": 1, "error": None, "loaded": str(package / "__init__.py")}
    assert fresh() == loaded
    assert fresh() == {**loaded, "probes": 0}   # the second process: no child Python
    os.utime(native, ns=(1_000_000_000, 1_000_000_000))   # same size, another time: probed again
    assert fresh() == loaded and fresh() == {**loaded, "probes": 0}
    (base / runtime.VERDICT_FILE).write_text("{not json")
    assert fresh() == loaded and fresh() == {**loaded, "probes": 0}
    native.unlink()
    with open(good, "rb") as src, open(native, "wb") as dst:
        dst.write(src.read(os.path.getsize(good) // 2))
    for _ in range(2):   # a failure is never kept: each process probes, none loads the library
        said = fresh()
        assert said["probes"] == 1 and said["loaded"] is None and "SIGBUS" in said["error"], said
    assert [json.loads(k)[0] for k in json.loads((base / runtime.VERDICT_FILE).read_text())] == [str(package)]


def test_auto_with_a_model_falls_back_when_the_runtime_does_not_load(data_dir, tmp_path, monkeypatch):
    """METHOD auto with the user's MODEL stopped on a broken runtime (only a missing one fell back): the runtime is
    no fault of the model."""
    from test_runtime import identity_model

    from ksdiff_qgis.engine import runtime, selfcheck
    from ksdiff_qgis.engine.feedback import Feedback
    from ksdiff_qgis.engine.pipeline import pansharpen

    said = runtime.broken_runtime("/p/onnxruntime", "importing it kills Python with signal 7, SIGBUS")

    def broken():
        raise runtime.RuntimeUnavailable(said)

    class Log(Feedback):
        warnings: list = []

        def warning(self, msg):
            self.warnings.append(msg)

    model = identity_model(tmp_path / "m.onnx")
    monkeypatch.setattr(runtime, "import_onnxruntime", broken)
    res = pansharpen(str(data_dir / "wv2_pan.tif"), str(data_dir / "wv2_ms.tif"), str(tmp_path / "o.tif"), "wv2",
                     "auto", model_path=str(model), feedback=Log())
    assert res.method in selfcheck.CLASSICAL_CANDIDATES
    assert [w for w in Log.warnings if said in w and "classical method" in w], Log.warnings
