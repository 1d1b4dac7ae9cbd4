"""A run estimates its peak memory first: it shrinks tiles that would not fit, or refuses with a reason."""
from __future__ import annotations

import os

import pytest
from osgeo import gdal

from ksdiff_qgis.engine import memory
from ksdiff_qgis.engine.errors import InputError


@pytest.fixture(scope="module")
def big_pair(data_dir, tmp_path_factory):
    """A 2048x2048 PAN and 512x512 MS made from the WV-2 crop (a scene larger than one default tile)."""
    folder = tmp_path_factory.mktemp("big")
    paths = {}
    for role, size in (("pan", 2048), ("ms", 512)):
        paths[role] = str(folder / f"{role}.tif")
        gdal.Translate(paths[role], str(data_dir / f"wv2_{role}.tif"), width=size, height=size,
                       resampleAlg="bilinear", creationOptions=["TILED=YES"])
    return paths


def _run(params, out):
    import processing
    from qgis.core import QgsProcessingFeedback

    feedback = QgsProcessingFeedback()
    processing.run("ksdiff:pansharpen", {**params, "OUTPUT": out}, feedback=feedback)
    return feedback.textLog()


def test_huge_tile_is_reduced_to_fit(qgis_app, big_pair, tmp_path, monkeypatch):
    monkeypatch.setenv(memory.ENV_LIMIT, "300")
    out = str(tmp_path / "o.tif")
    log = _run({"PAN": big_pair["pan"], "MS": big_pair["ms"], "SENSOR": "wv2", "METHOD": "exp",
                "TILE_SIZE": 8192, "OVERLAP": 32}, out)
    assert "Tiles of 8192 px would need about" in log and "KSDIFF_MAX_MEMORY_MB=300" in log
    assert gdal.Open(out).RasterXSize >= 2040   # the PAN/MS overlap


def test_run_that_cannot_fit_is_refused(qgis_app, big_pair, tmp_path, monkeypatch):
    from qgis.core import QgsProcessingException

    monkeypatch.setenv(memory.ENV_LIMIT, "80")
    out = str(tmp_path / "o.tif")
    with pytest.raises(QgsProcessingException, match="needs about .* MB even with 64-pixel tiles"):
        _run({"PAN": big_pair["pan"], "MS": big_pair["ms"], "SENSOR": "wv2", "METHOD": "mtf_glp_hpm",
              "TILE_SIZE": 8192}, out)
    assert not os.path.exists(out) and not [f for f in os.listdir(tmp_path) if "partial" in f]


def test_learned_model_tiles_are_reduced(qgis_app, data_dir, tmp_path, monkeypatch):
    """A learned model's activations count (about 200 floats per tile pixel): a small budget shrinks its tiles."""
    from test_model_validation import make_model

    from ksdiff_qgis.engine import runtime

    runtime.clear_cache()
    model = make_model(tmp_path)
    monkeypatch.setenv(memory.ENV_LIMIT, "140")
    out = str(tmp_path / "o.tif")
    log = _run({"PAN": str(data_dir / "wv2_pan.tif"), "MS": str(data_dir / "wv2_ms.tif"), "SENSOR": "wv2",
                "METHOD": "ksdiff", "MODEL": str(model), "THREADS": 1, "TILE_SIZE": 8192}, out)
    assert "Tiles of 8192 px would need about" in log
    assert gdal.Open(out).RasterCount == 4


def test_default_runs_are_untouched(qgis_app, data_dir, tmp_path, monkeypatch):
    monkeypatch.delenv(memory.ENV_LIMIT, raising=False)
    log = _run({"PAN": str(data_dir / "wv2_pan.tif"), "MS": str(data_dir / "wv2_ms.tif"), "SENSOR": "wv2",
                "METHOD": "gsa"}, str(tmp_path / "o.tif"))
    assert "would need about" not in log


def test_estimate_and_budget(monkeypatch):
    # the measured case: KSDiff, 4-band scene, 4096-pixel tiles peaked at 14.3 GB
    assert 12_000 < memory.estimate_mb(4096, 8192, 8192, 4, 10, learned=True) < 18_000
    assert memory.estimate_mb(512, 8192, 8192, 4, 10, True) < memory.estimate_mb(1024, 8192, 8192, 4, 10, True)
    assert memory.estimate_mb(8192, 256, 256, 4, 0, False) == memory.estimate_mb(256, 256, 256, 4, 0, False)
    free = memory.available_mb()
    assert free is not None and free > 0
    monkeypatch.setenv(memory.ENV_LIMIT, "lots")
    with pytest.raises(InputError, match="number of megabytes"):
        memory.budget_mb()
    monkeypatch.delenv(memory.ENV_LIMIT)
    assert memory.budget_mb()[0] == pytest.approx(memory.SAFE_SHARE * memory.available_mb(), rel=0.2)


# available memory per platform: without it no guard at all (tiles never shrink, workers never capped)

class _FakeKernel32:
    """kernel32.GlobalMemoryStatusEx as Windows answers it: checks dwLength, fills ullAvailPhys."""

    def __init__(self, avail: int):
        self.avail = avail

    def GlobalMemoryStatusEx(self, ref):  # noqa: N802
        status = ref._obj
        assert status.dwLength == 64   # sizeof(MEMORYSTATUSEX): Windows refuses any other
        status.ullTotalPhys, status.ullAvailPhys = 4 * self.avail, self.avail
        return 1


def test_windows_available_memory_from_kernel32(monkeypatch):
    """Windows has no /proc/meminfo nor os.sysconf: available_mb() was None there and the memory guard off."""
    import ctypes
    import types

    monkeypatch.setattr(memory.sys, "platform", "win32")
    monkeypatch.setattr(ctypes, "windll", types.SimpleNamespace(kernel32=_FakeKernel32(6 * 2**30)), raising=False)
    assert memory.available_mb() == pytest.approx(6 * 1024)
    monkeypatch.setenv(memory.ENV_LIMIT, "")
    assert memory.budget_mb()[0] == pytest.approx(memory.SAFE_SHARE * 6 * 1024)


VM_STAT = """Mach Virtual Memory Statistics: (page size of 16384 bytes)
Pages free:                                3000.
Pages active:                            400000.
Pages inactive:                          100000.
Pages speculative:                         1000.
Pages throttled:                              0.
Pages wired down:                        150000.
Pages purgeable:                           5000.
"Translation faults":                 123456789.
"""


def test_macos_available_memory_from_vm_stat(monkeypatch):
    """macOS: os.sysconf has no SC_AVPHYS_PAGES there, so available_mb() was None; now free + speculative +
    inactive pages of vm_stat at its page size (purgeable pages are among the others already)."""
    calls = []

    def command(args):
        calls.append(args[0])
        return VM_STAT if args == ["vm_stat"] else None

    monkeypatch.setattr(memory.sys, "platform", "darwin")
    monkeypatch.setattr(memory, "_command", command)
    assert memory.available_mb() == pytest.approx((3000 + 100000 + 1000) * 16384 / 2**20)
    assert calls == ["vm_stat"]


def test_macos_falls_back_to_a_share_of_the_installed_memory(monkeypatch):
    answers = {"vm_stat": None, "sysctl": "17179869184\n"}   # 16 GB
    monkeypatch.setattr(memory.sys, "platform", "darwin")
    monkeypatch.setattr(memory, "_command", lambda args: answers[args[0]])
    assert memory.available_mb() == pytest.approx(memory.MACOS_TOTAL_SHARE * 16 * 1024)
    answers["sysctl"] = None
    assert memory.available_mb() is None


def test_linux_available_memory_is_meminfo(monkeypatch):
    if not os.path.exists("/proc/meminfo"):
        pytest.skip("no /proc/meminfo")
    with open("/proc/meminfo") as f:
        avail = next(int(line.split()[1]) for line in f if line.startswith("MemAvailable:")) / 1024
    monkeypatch.setattr(memory.sys, "platform", "linux")
    assert memory.available_mb() == pytest.approx(avail, rel=0.2)


def test_out_of_memory_advice_names_threads_only_for_a_learned_method():
    """QA: a classical run out of memory was told to set 'CPU threads for a learned model' (THREADS), which it never
    reads (its tiles run on default_workers); the tile clause read "(now 512, e.g. to 256)"."""
    tile, threads = "'Tile size (PAN pixels, 64–8192)' (TILE_SIZE)", "'CPU threads for a learned model' (THREADS)"
    classical = memory.advice("Unable to allocate 1 GiB", 512, tile, threads, 4, "/o.tif", learned=False)
    assert "THREADS" not in classical and "cores" not in classical, classical
    assert f"To use less: lower {tile} from 512 to e.g. 256; or close other programs. No output" in classical
    learned = memory.advice("Unable to allocate 1 GiB", 512, tile, threads, 4, "/o.tif", learned=True)
    assert f"lower {tile} from 512 to e.g. 256; set {threads} to the number of cores (4)" in learned, learned
    assert memory.advice("x", 64, tile, threads, 4, "/o.tif", learned=False).endswith(
        "To use less: close other programs. No output was written (a file already at /o.tif is unchanged).")


def test_a_thread_that_cannot_start_is_memory_running_out():
    """QA: under ``ulimit -v`` the tile pool's submit raised RuntimeError("can't start new thread"), reported as an
    internal error; it is memory (a thread's stack and arena) and gets the memory advice."""
    assert memory.out_of_memory(RuntimeError("can't start new thread"))
    assert not memory.out_of_memory(RuntimeError("cannot schedule new futures after shutdown"))
    assert not memory.out_of_memory(ValueError("can't start new thread"))
