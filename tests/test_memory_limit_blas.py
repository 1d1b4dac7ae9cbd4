"""Under a tight address-space limit (ulimit -v): the scene statistics refuse in one line instead of hanging in
OpenBLAS, and a model that does not fit says so without re-export or tile advice (QA139 D1, D4)."""
from __future__ import annotations

import ctypes.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ksdiff_qgis.engine import memory, runtime
from ksdiff_qgis.engine.errors import ModelMemoryError

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
LINUX = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc/self/status: Linux")
# the address space the child may take beyond what it holds after its imports: less than OpenBLAS's 128 MB buffer,
# enough for the fixture's reads. Before the fix every room measured (40, 80, 120, 200 MB) hung in lstsq for good
STATS_ROOM_MB = 80
# past reserve_blas_buffer's check (130 MB), short of the buffer (128 MB) plus what the statistics take
GSL_ROOM_MB = 140
# short of scipy.optimize's shared objects (about 15 MB): 10 and 14 MB failed on other allocations first
OPTIMISER_ROOM_MB = 6
# beyond what the child holds with ONNX Runtime imported: 4-16 MB gave std::bad_alloc loading wv2.onnx, 32 loaded it
LOAD_ROOM_MB = 8
LIMITED = """
import ctypes, resource, sys
{preload}
sys.path.insert(0, {root!r})
from ksdiff_qgis.engine import memlimits, pipeline, runtime
from ksdiff_qgis.engine.errors import InputError
{before}
limit = memlimits._vm_size_bytes("") + {room} * 2**20
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
try:
    {run}
    print("DONE")
except InputError as e:
    print("INPUTERROR", type(e).__name__, e)
"""
BAD_ALLOC = ("[ONNXRuntimeError] : 1 : FAIL : Load model from /x/wv2.onnx failed:Exception during loading: "
             "std::bad_alloc")   # ONNX Runtime's text under prlimit --as=1120 MB (QA139)
AS_SOURCE = ("85% of the 70 MB of address space left under this process's virtual-memory limit "
             "(ulimit -v: 1120 MB, 1050 MB in use)")


def _limited(room: int, run: str, before: str = "", preload: str = "", threads: str | None = None) -> str:
    """The child's output: ``run`` under RLIMIT_AS = its address space after ``before`` + ``room`` MB; ``preload``:
    a library loaded into the global symbol scope before NumPy; ``threads``: OPENBLAS_NUM_THREADS."""
    env = {k: v for k, v in os.environ.items() if k != memory.ENV_LIMIT}
    if threads:
        env["OPENBLAS_NUM_THREADS"] = threads
    load = f"ctypes.CDLL({preload!r}, mode=ctypes.RTLD_GLOBAL)" if preload else ""
    code = LIMITED.format(root=str(ROOT), before=before, room=room, run=run, preload=load)
    # a hang (OpenBLAS retrying its buffer, SIGINT ignored) fails the test as subprocess.TimeoutExpired
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=90, env=env)
    return r.stdout + r.stderr


@LINUX
def test_statistics_refuse_rather_than_hang_under_ulimit(tmp_path):
    out = tmp_path / "o.tif"
    said = _limited(STATS_ROOM_MB, f"pipeline.pansharpen({str(DATA / 'wv2_pan.tif')!r}, {str(DATA / 'wv2_ms.tif')!r}, "
                                   f"{str(out)!r}, sensor='wv2', method='mtf_glp_hpm')")
    assert "INPUTERROR" in said and "not enough memory to measure the scene statistics" in said, said
    assert "raise the virtual-memory limit" in said and "Traceback" not in said, said
    assert not out.exists()


GSL_CBLAS = ctypes.util.find_library("gslcblas")


def _enlarged(tmp_path, role: str) -> str:
    """The WV2 fixture's ``role`` file on 4x as many pixels: statistics arrays big enough to take the room the
    BLAS buffer would have had (the fixture's own take a few MB)."""
    from osgeo import gdal

    out = str(tmp_path / f"big_{role}.tif")
    gdal.Translate(out, str(DATA / f"wv2_{role}.tif"), widthPct=400, heightPct=400, resampleAlg="bilinear")
    return out


@LINUX
@pytest.mark.skipif(not GSL_CBLAS, reason="GSL's CBLAS (libgslcblas), which QGIS's binaries load, is not installed")
@pytest.mark.parametrize("threads, method", [("1", "mtf_glp_hpm"), ("2", "bdsd_pc")])
def test_statistics_refuse_rather_than_hang_with_qgis_blas_binding(tmp_path, threads, method):
    """qgis_process loads libgslcblas into the global scope before NumPy: a product (@) then runs in GSL's CBLAS and
    maps no OpenBLAS buffer, while the statistics' lstsq (LAPACK) still needs one (QA142: the warm-up did nothing,
    the room check passed and the run hung). Before the fix both cases hung (timeout), 140 and 160 MB alike."""
    out = tmp_path / "o.tif"
    said = _limited(GSL_ROOM_MB, f"pipeline.pansharpen({_enlarged(tmp_path, 'pan')!r}, {_enlarged(tmp_path, 'ms')!r}, "
                                 f"{str(out)!r}, sensor='wv2', method={method!r})", preload=GSL_CBLAS, threads=threads)
    assert "INPUTERROR" in said and "not enough memory to measure the scene statistics" in said, said
    assert "Traceback" not in said, said
    assert not out.exists()


@LINUX
@pytest.mark.skipif(not GSL_CBLAS, reason="GSL's CBLAS (libgslcblas), which QGIS's binaries load, is not installed")
@pytest.mark.parametrize("room", [OPTIMISER_ROOM_MB, GSL_ROOM_MB])
def test_bdsd_optimiser_import_refused_in_one_line(tmp_path, room):
    """Too little room for scipy.optimize's libraries: BDSD-PC's lazy import failed with the loader's ImportError
    ("failed to map segment from shared object") as a traceback past the BLAS check (QA142; here at 140 MB before
    the fix); it is imported with the warm-up now, and refused as memory."""
    out = tmp_path / "o.tif"
    said = _limited(room, f"pipeline.pansharpen({str(DATA / 'wv2_pan.tif')!r}, {str(DATA / 'wv2_ms.tif')!r}, "
                          f"{str(out)!r}, sensor='wv2', method='bdsd_pc')", preload=GSL_CBLAS, threads="1")
    assert "INPUTERROR" in said and "not enough memory to measure the scene statistics" in said, said
    assert "Traceback" not in said, said
    if room == OPTIMISER_ROOM_MB:   # the library by its file name, not its path
        assert "cpython" in said and "failed to map segment" in said and "dist-packages" not in said, said


def test_loader_refusal_is_out_of_memory():
    error = ImportError("/usr/lib/python3/dist-packages/scipy/optimize/_bglu_dense.cpython-311-x86_64-linux-gnu.so: "
                        "failed to map segment from shared object")
    assert memory.out_of_memory(error)
    assert not memory.out_of_memory(ImportError("No module named 'scipy'"))


@LINUX
def test_model_that_does_not_fit_says_memory_not_reexport():
    model = str(ROOT / "ksdiff_qgis" / "resources" / "models" / "wv2.onnx")
    said = _limited(LOAD_ROOM_MB, f"runtime.get_session({model!r}, 'cpu', 1)", before="runtime.import_onnxruntime()")
    assert "INPUTERROR ModelMemoryError not enough memory to load the model wv2.onnx" in said, said
    assert "export the model again" not in said, said


def test_load_error_out_of_memory_advice(monkeypatch):
    monkeypatch.setattr(memory, "budget_mb", lambda: (59.5, AS_SOURCE))
    error = runtime.load_error("wv2.onnx", RuntimeError(BAD_ALLOC))
    text = str(error)
    assert isinstance(error, ModelMemoryError)
    assert text.startswith("not enough memory to load the model wv2.onnx (FAIL: Exception during loading: "
                           "std::bad_alloc): raise the virtual-memory limit"), text
    assert "export the model" not in text and memory.ENV_LIMIT not in text
    # worded already: the run's tile and thread advice is not added after it (QGIS and the batch)
    assert not memory.out_of_memory(error)
    assert error.auto.endswith("std::bad_alloc)")   # METHOD auto's warning, before it falls back
    # any other load failure keeps the re-export advice
    assert "export the model again" in str(runtime.load_error("m.onnx", RuntimeError("INVALID_GRAPH : opset 99")))
