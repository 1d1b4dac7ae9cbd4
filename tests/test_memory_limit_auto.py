"""Runs under an address-space limit (ulimit -v, prlimit --as): METHOD auto plans its self-check's memory as the
tiles do, cleanup never allocates, and every message says what helps under such a limit (QA: a raw ONNX Runtime
line, then "lower TILE_SIZE", then a traceback of pthread_create; a raw NumPy _ArrayMemoryError at 500 MB)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ksdiff_qgis.engine import classical, memory, pipeline, runtime
from ksdiff_qgis.engine.errors import InputError
from ksdiff_qgis.engine.learned import TileKernels

ROOT = Path(__file__).resolve().parent.parent

# the address space the child's run may take beyond what it holds once ONNX Runtime is loaded: measured on WV2 pair 1
# (600x600 PAN), the fixed 642-pixel check tile failed at this room (before the fix) while the planned tiles fit
ROOM_MB = 450
CHILD = """
import resource, sys
sys.path.insert(0, {root!r})
from ksdiff_qgis.engine import memlimits, pipeline, runtime
from ksdiff_qgis.engine.errors import InputError
pan, ms, out, room = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
runtime.import_onnxruntime()   # loaded before the limit: the room is what the run itself may take
limit = memlimits._vm_size_bytes("") + room * 2**20
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
try:
    result = pipeline.pansharpen(pan, ms, out, sensor="wv2", method="auto")
    print("RESULT", result.method)
except InputError as e:
    print("INPUTERROR", e)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc/self/status: Linux")
def test_auto_under_address_space_limit_plans_its_check(cached, tmp_path):
    pan, ms = cached("wv2/pair1_pan.tif"), cached("wv2/pair1_ms.tif")
    out = tmp_path / "auto.tif"
    env = {k: v for k, v in os.environ.items() if k != memory.ENV_LIMIT}
    r = subprocess.run([sys.executable, "-c", CHILD.format(root=str(ROOT)), str(pan), str(ms), str(out),
                        str(ROOM_MB)], capture_output=True, text=True, timeout=300, env=env)
    said = r.stdout + r.stderr
    assert r.returncode == 0, said
    assert "Traceback" not in said and "[E:onnxruntime" not in said, said   # ONNX Runtime's raw line: ours only
    assert "642x642 tile" not in said, said
    assert "RESULT" in r.stdout, said
    assert out.exists()


class _NoNewSession:
    """An ``onnxruntime`` whose sessions cannot be built (as under memory pressure) and whose runs are counted."""

    def __init__(self):
        self.built = 0

    def InferenceSession(self, *args, **kwargs):  # noqa: N802 - ONNX Runtime's name
        self.built += 1
        raise RuntimeError("pthread_create failed, error code: 12 error msg: Cannot allocate memory")

    class RunOptions:
        def add_run_config_entry(self, key, value):
            pass


class _Tile:
    def __init__(self, fail=False):
        self.runs, self.fail = 0, fail

    def run(self, names, feeds, options=None):
        self.runs += 1
        if self.fail:
            raise RuntimeError("Failed to allocate memory for requested buffer")


def _kernels(last=None):
    kernels = TileKernels.__new__(TileKernels)   # no model needed: release only touches these
    kernels.ort, kernels.threads, kernels.backbone, kernels._last = _NoNewSession(), 1, b"", last
    kernels.probe = (None, None)
    return kernels


def test_release_builds_no_session_and_never_raises():
    kernels = _kernels()
    kernels.release()   # no tile ran: nothing to shrink
    assert kernels.ort.built == 0
    tile = _Tile()
    kernels = _kernels(tile)
    kernels.release()   # the last tile's own session shrinks the arena
    assert kernels.ort.built == 0 and tile.runs == 1 and kernels._last is None
    kernels = _kernels(_Tile(fail=True))
    kernels.release()   # a failing shrink in a cleanup path must not hide the run's own error
    assert kernels.ort.built == 0


def test_onnx_runtime_logs_only_fatal_lines():
    pytest.importorskip("onnxruntime")
    assert runtime.session_options().log_severity_level == runtime.ORT_LOG_FATAL


AS_SOURCE = ("85% of the 125 MB of address space left under this process's virtual-memory limit (ulimit -v: 954 MB, "
             "829 MB in use)")


def test_tile_refusal_under_ulimit_says_raise_the_limit(monkeypatch):
    # under ulimit -v the plan leaves out FIXED_MB (VmSize in use holds it): 20 MB cannot hold a 64-px tile
    monkeypatch.setattr(memory, "budget_mb", lambda: (20.0, AS_SOURCE))
    with pytest.raises(InputError) as e:
        memory.fit_tile(512, 0, 4000, 4000, 4, 65, True)
    text = str(e.value)
    assert "free memory" not in text
    assert "raise the virtual-memory limit (ulimit -v, or prlimit --as" in text and memory.ENV_LIMIT in text


def test_advice_under_ulimit_says_raise_the_limit(monkeypatch):
    monkeypatch.setattr(memory, "budget_mb", lambda: (62.0, AS_SOURCE))
    text = memory.advice("MemoryError", 256, "TILE_SIZE", "THREADS", 2, "/o.tif")
    assert "close other programs" not in text and "raise the virtual-memory limit" in text


def test_statistics_out_of_memory_is_one_line(cached, tmp_path, monkeypatch):
    def no_memory(*args, **kwargs):
        import numpy as np
        return np.empty(2**62, dtype=np.uint8)   # NumPy's own _ArrayMemoryError, as under ulimit -v 500 MB

    monkeypatch.setattr(classical, "scene_stats", no_memory)
    out = tmp_path / "o.tif"
    with pytest.raises(InputError) as e:
        pipeline.pansharpen(str(cached("wv2/pair1_pan.tif")), str(cached("wv2/pair1_ms.tif")), str(out),
                            sensor="wv2", method="mtf_glp_hpm")
    assert "not enough memory to measure the scene statistics" in str(e.value)
    assert not out.exists()


ARENA_CHILD = """
import resource, sys
sys.path.insert(0, {root!r})
from ksdiff_qgis.engine import memory
assert not memory.cap_arenas_under_limit()   # no limit: glibc's own arenas stay
resource.setrlimit(resource.RLIMIT_AS, (8 * 2**30, resource.RLIM_INFINITY))
print("CAPPED", memory.cap_arenas_under_limit())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux")
def test_arenas_capped_only_under_an_address_space_limit():
    r = subprocess.run([sys.executable, "-c", ARENA_CHILD.format(root=str(ROOT))], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and "CAPPED True" in r.stdout, r.stdout + r.stderr
