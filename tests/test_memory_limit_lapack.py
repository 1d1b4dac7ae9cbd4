"""Under a tight address-space limit (ulimit -v) with GSL's CBLAS loaded as qgis_process does: NumPy's lstsq refused
in one line instead of returning garbage, and GDAL's encoding threads capped instead of hanging (QA142)."""
from __future__ import annotations

import ctypes.util

import numpy as np
import pytest

from ksdiff_qgis.engine import classical, memlimits, memory
from tests.test_memory_limit_blas import LINUX, _limited

GSL_CBLAS = ctypes.util.find_library("gslcblas")
NEEDS_GSL = pytest.mark.skipif(not GSL_CBLAS, reason="GSL's CBLAS (libgslcblas), which QGIS's binaries load, is not "
                               "installed")
# beyond what the child holds with its 8-band 1000² scene: enough for the statistics' copies and design, short of
# lstsq's copy of the design (69 MB) and target; before the fix every room from 150 to 216 MB printed
# "init_gelsd failed init" and went on with uninitialised coefficients
LSTSQ_ROOM_MB = 180
STATS = """classical.scene_stats(pan, ms, np.ones(pan.shape, bool))
    print("GSA", s.gsa_alpha)
except MemoryError as e:
    print("MEMORYERROR", e)"""
SCENE = """import numpy as np
from ksdiff_qgis.engine import classical, memory
memory.reserve_blas_buffer()
rng = np.random.default_rng(0)
ms = (rng.random((8, 1000, 1000)) * 1000).astype(np.float32)
pan = ms.mean(axis=0) + rng.random((1000, 1000), dtype=np.float32)"""
# (a whole run at a fixed room, e.g. 160 MB over the enlarged WV2 fixture, depends on the process's allocator state:
# it refused on one machine and crashed silently in a C library on a clean clone, so the two parts are tested apart)
# a 4-band 1024² DEFLATE GeoTIFF with NUM_THREADS=2 hung at 10 and 24 MB of room (GDAL 3.6), finished at 32
ENCODE_ROOM_MB = 16
ENCODE = """import numpy as np
from osgeo import gdal
from ksdiff_qgis.engine.feedback import Feedback
from ksdiff_qgis.engine.raster_io import outputs
options = outputs.OutputOptions(outputs._merge(outputs.gtiff_options("u"), ["NUM_THREADS=2"]), None, [])
data = (np.random.default_rng(0).random((1024, 1024)) * 1000).astype(np.uint16)


class Said(Feedback):
    def info(self, message):
        print("INFO", message)"""


@LINUX
@NEEDS_GSL
def test_lstsq_without_room_refuses_rather_than_returning_garbage():
    said = _limited(LSTSQ_ROOM_MB, "s = " + STATS, before=SCENE, preload=GSL_CBLAS, threads="2")
    assert "init_gelsd failed init" not in said, said
    assert "MEMORYERROR the least-squares fit needs about" in said, said


def _room(monkeypatch, mb: float) -> None:
    monkeypatch.setattr(memlimits, "address_space_room", lambda root="": (mb, f"the {mb:.0f} MB of address space left"))


def test_lstsq_guard(monkeypatch):
    design, target = np.ones((1000, 3)), np.ones(1000)
    _room(monkeypatch, 1.0)
    with pytest.raises(MemoryError, match="least-squares fit needs about 2 MB"):
        memory.lstsq(design, target)
    _room(monkeypatch, 100.0)
    assert np.allclose(memory.lstsq(design, target), np.linalg.lstsq(design, target, rcond=None)[0])


def test_bdsd_full_design_fallback_guarded(monkeypatch):
    """A band of zeros makes the Gram matrix singular: BDSD-PC then fits the full design, whose lstsq is guarded."""
    rng = np.random.default_rng(1)
    ms, lms, p = rng.random((3, 400)), rng.random((3, 400)), rng.random((3, 400))
    lms[1] = 0.0
    _room(monkeypatch, 1.0)
    with pytest.raises(MemoryError):
        classical.bdsd_pc_coef(ms, lms, p)


def test_encoding_threads_fit(monkeypatch):
    _room(monkeypatch, 30.0)   # QA142: about this much was left when GDAL hung
    threads, note = memory.encoding_threads_fit(2)
    assert threads == 1 and note.startswith("Output: encoded with 1 GDAL thread(s), not 2"), note
    _room(monkeypatch, 4000.0)
    assert memory.encoding_threads_fit(8) == (8, None)
    monkeypatch.setattr(memlimits, "address_space_room", lambda root="": None)
    assert memory.encoding_threads_fit(8) == (8, None)


@LINUX
@NEEDS_GSL
def test_encoding_threads_capped_under_limit(tmp_path):
    """GDAL's encoding threads are fitted to the room when the writer is made: the write finishes (before the fix
    GDAL waited forever for the threads it could not start)."""
    out = str(tmp_path / "o.tif")
    said = _limited(ENCODE_ROOM_MB, f"""fitted = pipeline._fit_encoding_memory(options, Said())
    ds = gdal.GetDriverByName("GTiff").Create({out!r}, 1024, 1024, 4, gdal.GDT_UInt16, fitted.gtiff)
    for b in range(4):
        ds.GetRasterBand(b + 1).WriteArray(data)
    ds = None""", before=ENCODE, preload=GSL_CBLAS, threads="2")
    assert "DONE" in said and "CPLCreateJoinableThread" not in said, said
    assert "INFO Output: encoded with 1 GDAL thread(s), not 2" in said, said
