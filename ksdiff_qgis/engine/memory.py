"""Peak-memory estimate of a run and the tile size that keeps it within a safe share of the free RAM.

Measured on the bundled FusionNet-based KSDiff models (ONNX Runtime, CPU): about 130 float32 per pixel of
the padded tile for the network's activations, about 200 for the whole pipeline with 4 bands (a run at
4096 px tiles peaked at 14.3 GB). The classical methods need about 17 per pixel with 4 bands.
psutil is not part of QGIS's Python: free memory is read from /proc/meminfo or sysconf (Linux, other Unixes),
GlobalMemoryStatusEx (Windows) or vm_stat (macOS), and lowered to what a container's memory cgroup or ``ulimit -v``
leaves (``memlimits``).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import re
import subprocess
import sys
from typing import Callable

try:
    import resource
except ImportError:   # Windows: no ulimit
    resource = None  # type: ignore[assignment]

import numpy as np

from . import memlimits
from .errors import InputError, ModelMemoryError
from .tiling import Layout

ENV_LIMIT = "KSDIFF_MAX_MEMORY_MB"   # overrides the budget (tests, shared machines, clusters)
SAFE_SHARE = 0.5                     # of the memory available when the run starts
# of the address space left under ``ulimit -v``: a hard, exact wall (a failed allocation stops the run before any
# output is kept), and VmSize in use already holds the session and libraries (FIXED_MB is not counted again).
# Measured 2026-12-07, KSDiff on a 2048² Landsat mirror, overlap 32: the tile stage's VmSize growth was within
# 0.8-1.0x of estimate_mb - FIXED_MB per tile in flight (512 px: 279-306 MB against 310; 1024: 943-1027 vs 1015)
AS_SHARE = 0.85
FIXED_MB = 100.0                     # ONNX Runtime session, GDAL handles and caches
LEARNED_FLOATS = 170                 # activations per padded tile pixel (+ 8 per band for the pipeline)
CLASSICAL_FLOATS = 4                 # per padded tile pixel (+ 4 per band)
MIN_TILE = 64
# a batch worker's share of its Dask memory limit (MB, and how messages describe it), set by
# ``ksdiff_qgis.batch.share_memory``; unlike ENV_LIMIT it is no setting of the user's, so the messages name it for
# what it is, and a tighter container or ``ulimit -v`` still decides (QA: they named KSDIFF_MAX_MEMORY_MB=237)
_worker_share: tuple[float, str] | None = None


def _malloc_trim():
    """glibc's ``malloc_trim``, or None elsewhere (macOS, Windows, musl)."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


_TRIM = _malloc_trim()
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
TRIM_STEP_MB = 16  # resident growth over the first tile's that triggers handing free pages back (FreeMemoryKeeper)


def release_free_memory() -> None:
    """Hand memory that is free but still held by the C allocator back to the system (glibc only).

    Tile workers allocate their arrays in per-thread malloc arenas, which glibc does not shrink by
    itself: without this, the resident memory of a run creeps up with the number of tiles
    (measured: +20 % from 16 to 256 tiles of 512 px). Only free pages are returned: nothing else changes.
    """
    if _TRIM is not None:
        _TRIM(0)


M_ARENA_MAX = -8     # mallopt's parameter number (glibc malloc.h)
ARENAS_UNDER_LIMIT = 2


def cap_arenas_under_limit() -> bool:
    """Under an address-space limit (``ulimit -v``), cap glibc's malloc arenas (once, for the process; True when
    capped): each thread that allocates gets an arena of its own reserving 64 MB of address space, never given back
    while the process lives (ONNX Runtime starts threads per tile session). QA: under prlimit --as=1500000000 a
    self-check's model tiles left the address space in use at 1377 MB against 1120 MB before, and the classical run
    after it had no room left. Only the address space is saved; the C allocator spreads its threads over fewer
    arenas."""
    global _arenas_capped
    if _arenas_capped or _MALLOPT is None or memlimits.address_space_room() is None:
        return _arenas_capped
    _arenas_capped = bool(_MALLOPT(M_ARENA_MAX, ARENAS_UNDER_LIMIT))
    return _arenas_capped


def _mallopt():
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return None


_MALLOPT = _mallopt() if sys.platform.startswith("linux") else None
_arenas_capped = False


# OpenBLAS (NumPy's and SciPy's linear algebra) maps one work buffer at its first matrix-vector product and keeps it
# for the process: 128 MB on x86-64 (measured 2026-12-07: VmSize +128.0 MB, OpenBLAS 0.3.21). A mapping that
# ulimit -v refuses it retries forever: QA139, a run hung at 70 % CPU inside the statistics' lstsq, Ctrl-C ignored.
# With OPENBLAS_NUM_THREADS=2 the worker thread's buffer is mapped when the library loads (VmSize +140 MB at import):
# only the calling thread's is left, and after this warm-up the statistics map no other (measured, S2 8 bands).
BLAS_BUFFER_MB = 130
_blas_ready = False


def reserve_blas_buffer(optimiser: bool = False) -> None:
    """Have the linear-algebra library map its work buffer now (once per process), before the statistics' arrays
    take the room, and with ``optimiser`` import SciPy's (BDSD-PC's fit); MemoryError when the address space left
    under ``ulimit -v`` cannot hold the buffer (it would hang), ImportError when it cannot hold the optimiser's."""
    global _blas_ready
    if optimiser:
        # its shared objects need address space too: under ulimit -v the loader's ImportError ("failed to map
        # segment", ``out_of_memory``) comes here, before any window is read, rather than mid-fit
        import scipy.optimize  # noqa: F401
    if _blas_ready:
        return
    room = memlimits.address_space_room() if sys.platform.startswith("linux") else None
    if room is not None and room[0] < BLAS_BUFFER_MB:
        raise MemoryError(f"the linear-algebra library needs about {BLAS_BUFFER_MB} MB of address space for its "
                          f"work buffer, more than {room[1]}")
    # through LAPACK, as the statistics' lstsq: a product (@) binds cblas_dgemv, which QGIS's binaries take from
    # GSL's libgslcblas (loaded into the global scope before NumPy) and which then maps nothing (QA142); LAPACK's
    # dgemv_ stays OpenBLAS's. 64 rows: big enough for the heap buffer (VmSize +128 MB, measured as above)
    np.linalg.lstsq(np.arange(128.0).reshape(64, 2), np.ones(64), rcond=None)
    _blas_ready = True


# NumPy 1.24's lstsq (LAPACK gelsd) copies its design and target into one malloc'd block, and when that fails it
# prints "init_gelsd failed init" and returns uninitialised numbers without raising (QA142: GSA and Brovey scored
# alike, once a segfault). Measured 2026-12-07, 1M x 9 design (68.7 MB) + target (7.6 MB): garbage up to 76 MB of
# room, solved from 77: the copies plus LAPACK's workspace (under 1 MB for C+1 unknowns)
LSTSQ_MARGIN_MB = 2


def check_lstsq_room(design: np.ndarray, target: np.ndarray, copies: int = 1) -> None:
    """MemoryError when the address space left under ``ulimit -v`` cannot hold ``copies`` copies of ``design`` and
    ``target`` (``np.linalg.lstsq``'s; a solver that copies column subsets too needs 2) and the margin: lstsq would
    return garbage instead of raising. Nothing is checked without a limit (or off Linux)."""
    room = memlimits.address_space_room() if sys.platform.startswith("linux") else None
    need = copies * (design.nbytes + target.nbytes) / 2**20 + LSTSQ_MARGIN_MB
    if room is not None and room[0] < need:
        raise MemoryError(f"the least-squares fit needs about {need:.0f} MB of address space, more than {room[1]}")


def lstsq(design: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``np.linalg.lstsq(design, target, rcond=None)``'s solution, after ``check_lstsq_room``."""
    check_lstsq_room(design, target)
    return np.linalg.lstsq(design, target, rcond=None)[0]


# GDAL's encoding threads (NUM_THREADS) under ``ulimit -v``: when one cannot be started GDAL prints
# "CPLCreateJoinableThread() failed" and waits forever in CPLJobQueue::WaitCompletion (QA142, 160 MB of room, GSL
# loaded, 2 cores; here from 24 MB of room down). Measured 2026-12-07, GDAL 3.6, arenas capped: a 1024² 4-band DEFLATE
# write grew VmSize by 10 MB with 1 thread, 91 with 2 (a malloc arena of 64 MB, then a stack of 8 MB and about
# 2 MB of buffers each), 110 with 4
ARENA_MB = 64
THREAD_BUFFERS_MB = 2
DEFAULT_STACK_MB = 8   # glibc's thread stack is RLIMIT_STACK's soft limit; unlimited: a smaller default


def thread_stack_mb() -> float:
    """A new thread's stack (MB): ``ulimit -s`` when set, else DEFAULT_STACK_MB."""
    soft = resource.getrlimit(resource.RLIMIT_STACK)[0] if resource is not None else -1
    return soft / 2**20 if soft > 0 and soft != resource.RLIM_INFINITY else DEFAULT_STACK_MB   # Linux: -1


def encoding_threads_fit(threads: int) -> tuple[int, str | None]:
    """GDAL's encoding threads for a run asking ``threads``, and the log line when fewer: under ``ulimit -v`` they
    must fit the share of the address space left that the tiles' budget leaves (1 - AS_SHARE): an arena and each
    thread's stack and buffers. One thread starts none (GDAL encodes in the writing thread)."""
    room = memlimits.address_space_room() if threads > 1 and sys.platform.startswith("linux") else None
    if room is None:
        return threads, None
    spare = (1 - AS_SHARE) * room[0] - ARENA_MB
    fit = max(1, min(threads, int(spare // (thread_stack_mb() + THREAD_BUFFERS_MB))))
    if fit >= threads:
        return threads, None
    return fit, (f"Output: encoded with {fit} GDAL thread(s), not {threads}: their stacks might not fit in "
                 f"{room[1]}, and GDAL waits forever for a thread it cannot start. Raise the limit for a faster write.")


def resident_mb() -> float | None:
    """This process's resident memory (MB) from /proc (Linux), or None where it cannot be read cheaply."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * PAGE_BYTES / 2**20
    except (OSError, ValueError, IndexError):
        return None


class FreeMemoryKeeper:
    """Calls ``release_free_memory`` between tiles when resident memory passed the first tile's by ``step_mb``.

    Free pages kept by the allocator grow with the tiles computed until they saturate (GSA, 2048² -> 8192²,
    nothing released: 181 -> 190 MB); released after every tile the run stays flat but pays ~10 ms per call
    plus faulting the pages back in (256 tiles: 6.9 s -> 9.1 s). The mark is the working set of the first
    tile, never lowered by a release: releases happen only when memory really crept up.
    """

    def __init__(self, step_mb: float = TRIM_STEP_MB):
        self.step = step_mb
        self.mark: float | None = None

    def after_tile(self) -> None:
        now = resident_mb()
        if now is None:   # cannot watch it: release every time (the safe, slower way)
            release_free_memory()
        elif self.mark is None:
            self.mark = now
        elif now > self.mark + self.step:
            release_free_memory()


def _linux_available_mb() -> float | None:
    """MemAvailable from /proc/meminfo (Linux), else the free physical pages (other Unixes: an underestimate,
    caches are not counted), else None."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (AttributeError, ValueError, OSError):
        return None


class _MemoryStatusEx(ctypes.Structure):
    """Windows' MEMORYSTATUSEX (GlobalMemoryStatusEx fills it; dwLength must be set to its size first)."""
    _fields_ = [("dwLength", ctypes.c_uint32), ("dwMemoryLoad", ctypes.c_uint32),
                ("ullTotalPhys", ctypes.c_uint64), ("ullAvailPhys", ctypes.c_uint64),
                ("ullTotalPageFile", ctypes.c_uint64), ("ullAvailPageFile", ctypes.c_uint64),
                ("ullTotalVirtual", ctypes.c_uint64), ("ullAvailVirtual", ctypes.c_uint64),
                ("ullAvailExtendedVirtual", ctypes.c_uint64)]


def _windows_available_mb() -> float | None:
    """Available physical memory (ullAvailPhys: free plus standby cache) from kernel32, or None."""
    status = _MemoryStatusEx()
    status.dwLength = ctypes.sizeof(_MemoryStatusEx)
    try:
        if not ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(status)):
            return None
    except (AttributeError, OSError):   # no windll: not Windows
        return None
    return status.ullAvailPhys / 2**20


def _command(args: list[str]) -> str | None:
    """The output of a short system command, or None when it cannot run or fails."""
    try:
        r = subprocess.run(args, capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout if r.returncode == 0 else None


MACOS_TOTAL_SHARE = 0.5   # of hw.memsize, when vm_stat cannot be read (see _macos_available_mb)


def _macos_available_mb() -> float | None:
    """Memory macOS can give a process now: free + speculative + inactive pages (``vm_stat``, the kernel's
    host_statistics64) times its page size (16 KB on Apple Silicon, printed in its header).

    Purgeable pages are not added: they are counted among the active/inactive ones already, and adding them would
    overstate. When vm_stat cannot be read: half of the installed RAM (``sysctl hw.memsize``) — macOS keeps most
    RAM in use as cache and compressed memory, so the total alone would let a run plan for memory that is taken;
    half of it (and the run takes SAFE_SHARE of that) still shrinks tiles that could never fit.
    """
    text = _command(["vm_stat"])
    if text:
        page = re.search(r"page size of (\d+) bytes", text)
        counts = dict(re.findall(r"^Pages (free|inactive|speculative):\s+(\d+)\.?\s*$", text, re.M))
        if page and "free" in counts and "inactive" in counts:
            pages = sum(int(v) for v in counts.values())
            return pages * int(page.group(1)) / 2**20
    total = _command(["sysctl", "-n", "hw.memsize"])
    try:
        return MACOS_TOTAL_SHARE * int(total.strip()) / 2**20 if total else None
    except ValueError:
        return None


def _system_available_mb() -> float | None:
    """Free RAM of the machine (MB), or None when it cannot be told."""
    if sys.platform == "win32":
        return _windows_available_mb()
    if sys.platform == "darwin":
        return _macos_available_mb()
    return _linux_available_mb()


def available() -> tuple[float, str] | None:
    """(MB this process can get now, which limit that is): the machine's free RAM or, when tighter, what its
    container's memory cgroup or its virtual-memory limit leaves; None when none can be told."""
    free = _system_available_mb()
    found = [] if free is None else [(free, f"the {free:.0f} MB of RAM available")]
    if sys.platform.startswith("linux"):   # cgroups and /proc/self/status: Linux only
        found += memlimits.process_limits()
    return min(found, key=lambda f: f[0]) if found else None


def available_mb() -> float | None:
    """Memory this process can get now (MB), or None when it cannot be told (see ``available``)."""
    found = available()
    return None if found is None else found[0]


def set_worker_share(mb: float | None, description: str = "") -> None:
    """Limit this process's runs to ``mb`` (None: no share), described in messages as ``description``; the budget is
    the smaller of it and half of what the machine, container or ``ulimit -v`` leaves (``budget_mb``)."""
    global _worker_share
    _worker_share = None if mb is None else (float(mb), description or f"this process's share: {mb:.0f} MB")


def budget_mb() -> tuple[float, str] | None:
    """(MB this run may use, where that number comes from), or None when unknown."""
    override = os.environ.get(ENV_LIMIT, "").strip()
    if override:
        try:
            return float(override), f"{ENV_LIMIT}={override}"
        except ValueError:
            raise InputError(f"{ENV_LIMIT} must be a number of megabytes, not {override!r}") from None
    found = available()
    share = _worker_share
    if found is None:
        return share
    rate = AS_SHARE if "virtual-memory limit" in found[1] else SAFE_SHARE
    if share is not None and share[0] < rate * found[0]:
        return share
    return rate * found[0], (f"half of {found[1]}" if rate == SAFE_SHARE else f"{rate:.0%} of {found[1]}")


def counts_fixed(source: str) -> bool:
    """False under an address-space limit: the VmSize in use it was measured from holds the session already."""
    return "virtual-memory limit" not in source


def limit_note() -> str | None:
    """A line for the log when a container or process limit, not the machine's free RAM, sets the run's memory."""
    budget = budget_mb()
    if budget is None or "RAM available" in budget[1]:
        return None
    if budget[1].startswith(ENV_LIMIT):
        # the setting overrides the plan, but a tighter ulimit -v or cgroup still decides what the run can get
        # (QA: KSDIFF_MAX_MEMORY_MB=700 under prlimit --as=1.5 GB logged no line about memory at all)
        found = available() if sys.platform.startswith("linux") else None
        if found is None or "RAM available" in found[1] or found[0] >= budget[0]:
            return None
        return (f"Memory: this run plans for {budget[0]:.0f} MB ({budget[1]}), more than {found[1]}: that limit "
                "governs, and the run stops with a message (no output written) if it is reached.")
    return f"Memory: this run plans for {budget[0]:.0f} MB ({budget[1]})."


def more_memory_way(source: str | None = None, budget: bool = True) -> str:
    """What gives this run more memory, by where its budget came from (``source``: ``budget_mb``'s words; None: read
    now): under an address-space limit (``ulimit -v``) or a container's cgroup, freeing memory does not help (QA:
    "free memory" was the advice under ulimit -v); a lowercase clause for a message. ``budget``: the run plans its
    tiles within the budget, so raising ENV_LIMIT towards what the limit leaves helps too (not for a step that
    plans nothing, as the scene statistics)."""
    if source is None:
        found = budget_mb()
        source = "" if found is None else found[1]
    part = "half" if "cgroup" in source else f"{AS_SHARE:.0%}"
    share = f", or set {ENV_LIMIT} higher (the run plans for {part} of what the limit leaves)" if budget else ""
    if source.startswith(ENV_LIMIT):
        return f"set {ENV_LIMIT} higher"
    if "virtual-memory limit" in source:
        return ("raise the virtual-memory limit (ulimit -v, or prlimit --as for one command; freeing memory does not "
                f"help under it){share}")
    if "cgroup" in source:
        return f"raise the container's memory limit (freeing memory outside it does not help){share}"
    return "close other programs"


def more_memory_hint() -> str:
    """``more_memory_way`` as a sentence of its own."""
    way = more_memory_way()
    return f"To give the model the memory it needs: {way}."


def room_mb(in_use_mb: float) -> float | None:
    """MB the run may still use beyond ``in_use_mb`` (its estimate: ``estimate_mb``), or None when the budget is
    unknown; what GDAL may cache of the inputs beyond INPUT_CACHE_MB (``blockcache.row_budget_mb``)."""
    budget = budget_mb()
    return None if budget is None else max(0.0, budget[0] - in_use_mb)


def estimate_mb(tile: int, rows: int, cols: int, bands: int, margin: int, learned: bool,
                size_multiple: int = 1) -> float:
    """Peak memory (MB) of a run: one padded tile in flight plus the row strip being blended."""
    th, tw = min(tile, rows), min(tile, cols)
    k = max(1, size_multiple)
    side_h = -(-(th + 2 * margin) // k) * k
    side_w = -(-(tw + 2 * margin) // k) * k
    per_px = (LEARNED_FLOATS + 8 * bands) if learned else (CLASSICAL_FLOATS + 4 * bands)
    tile_bytes = side_h * side_w * 4 * per_px
    strip_bytes = 2 * bands * th * cols * 4        # the strip and the rows carried to the next one
    return FIXED_MB + (tile_bytes + strip_bytes) / 2**20


def computed_tile(tile: int, overlap: int, learned: bool) -> int:
    """The largest tile side a run of ``tile`` and ``overlap`` computes: a learned model's tiles finish cells of
    ``tile`` px and see ``overlap`` px more (``tiling.cell_spans``: 513 px at 512 with an overlap of 1 on a 513 px
    output); the classical methods' tiles have no overlap."""
    return tile + overlap if learned else tile


def fit_tile(tile: int, overlap: int, rows: int, cols: int, bands: int, margin: int, learned: bool,
             size_multiple: int = 1, layout: Callable[[int, int], Layout] | None = None) -> tuple[int, int, str | None]:
    """(tile, overlap, warning): ``tile`` if the run fits the budget, else a smaller one and why. The estimate is of
    the tiles as computed (``computed_tile``: a learned model's with their overlap), not of ``tile`` alone.
    ``layout``: the run's tiling for a tile size and overlap (``tiling.choose_layout`` on its output), whose tile
    size and count the warning names: block-aligned tiles round the shrunk size down to whole blocks (QA126: "tiles
    of 384 px ... about 2x as many tiles" for a run of 25 tiles of 256 px instead of 9).

    InputError when even the smallest tile does not fit (a very wide scene or very little memory).
    """
    budget = budget_mb()
    if budget is None:
        return tile, overlap, None
    limit, source = budget
    fixed = 0.0 if counts_fixed(source) else FIXED_MB

    def need_mb(side: int) -> float:
        return estimate_mb(computed_tile(side, min(overlap, side // 2), learned), rows, cols, bands, margin, learned,
                           size_multiple) - fixed

    need = need_mb(tile)
    if need <= limit:
        return tile, overlap, None
    smaller = tile
    while smaller > MIN_TILE and need_mb(smaller) > limit:
        smaller = max(MIN_TILE, smaller * 3 // 4 // 16 * 16)   # multiples of 16 keep GDAL reads aligned
    least = need_mb(smaller)
    if least > limit:
        raise InputError(
            f"this run needs about {least:.0f} MB even with {smaller}-pixel tiles, more than the "
            f"{limit:.0f} MB it may use ({source}): {more_memory_way(source)}; or process a smaller area"
        )
    fitted = min(overlap, smaller // 2)
    if layout is None:
        used, before, after = smaller, tile_count(tile, rows, cols), tile_count(smaller, rows, cols)
    else:
        run = layout(smaller, fitted)
        used, before, after = _side(run), layout(tile, overlap).count, run.count
        least = need_mb(used)
    return smaller, fitted, (
        f"Tiles of {tile} px would need about {need:.0f} MB, more than the {limit:.0f} MB this run may use "
        f"({source}); using tiles of {used} px (about {least:.0f} MB): {slowdown(before, after)}; "
        f"to keep {tile} px: {_keep_way(source)}."
    )


def _side(layout: Layout) -> int:
    """The tile size a run of ``layout`` has, in TILE_SIZE's terms: a blended cell's, else its largest tile's."""
    return layout.cell if layout.kind == "cells" and layout.cell else layout.tile


def tile_count(side: int, rows: int, cols: int) -> int:
    """Tiles of ``side`` px on a ``rows`` x ``cols`` output, without a layout to ask."""
    return -(-rows // side) * -(-cols // side)


def _keep_way(source: str) -> str:
    way = more_memory_way(source)
    return way if ENV_LIMIT in way else f"{way}, or set {ENV_LIMIT} if you know more is available"


def slowdown(before: int, after: int) -> str:
    """What shrinking the tiles costs: ``after`` tiles instead of ``before`` (each pays its overlap and a model
    call)."""
    times = after / before
    if times < 1.5:
        return f"{after} tiles instead of {before}, the run takes a little longer"
    return (f"{after} tiles instead of {before}, expect the run to take "
            + ("several times longer" if times >= 3 else "longer"))


# what a failed allocation says in an exception's text (ONNX Runtime's arena, C++ std::bad_alloc, GDAL, NumPy)
# "failed to map segment": the dynamic loader's, a lazy import's shared object refused under ulimit -v (QA142)
ALLOCATION_FAILED = ("failed to allocate memory", "bad_alloc", "bad allocation", "out of memory", "alloc_failed",
                     "unable to allocate", "failed to map segment")
# a thread's stack and malloc arena could not be reserved: Python's RuntimeError under a virtual-memory cap (ulimit -v);
# the same words under a thread limit (ulimit -u) are told apart first (``threadlimits.failure_message``)
THREAD_FAILED = ("can't start new thread", "can't create new thread")


def out_of_memory(error: BaseException) -> bool:
    """True for a MemoryError or an error whose text says an allocation failed (ONNX Runtime raises its own) or that
    a thread could not be started (its stack and arena are memory too); False for a ``ModelMemoryError``, whose own
    message says what helps (the run's advice of smaller tiles cannot)."""
    if isinstance(error, ModelMemoryError):
        return False
    text = str(error).lower()
    return (isinstance(error, MemoryError) or any(t in text for t in ALLOCATION_FAILED)
            or (isinstance(error, RuntimeError) and any(t in text for t in THREAD_FAILED)))


def advice(detail: str, tile: int | None, tile_option: str, threads_option: str, cores: int, output: str,
           limit_option: str | None = None, learned: bool = True) -> str:
    """Out of memory mid-run: what to change and that no output was written, worded once for QGIS (its parameter
    names) and the batch (``--tile-size``, ``KSDIFF_MAX_MEMORY_MB``). ``tile``: the tile size of the run;
    ``learned``: the method may run a model (KSDiff, auto) — only then do threads change the memory used."""
    first = (detail.strip().splitlines() or ["MemoryError"])[0]
    smaller = (f"lower {tile_option} from {tile} to e.g. {max(64, tile // 2)}" if tile and tile > 64 else "")
    limit = (f"set {limit_option} lower (the engine then picks smaller tiles)" if limit_option else "")
    # THREADS = the core count means one tile at a time (runtime.balance_threads), which "set it to 2" on a
    # 2-core machine did not say; a classical method ignores THREADS (its tiles run on default_workers)
    threads = (f"set {threads_option} to the number of cores ({cores}): tiles are then fused one at a time with "
               f"all cores, instead of several at once" if learned else "")
    ways = [w for w in (smaller, limit, threads) if w]
    other = more_memory_way()
    ways.append(f"or {other}" if ways else other)
    return (f"Not enough memory for this run ({first}). To use less: {'; '.join(ways)}. No output was written "
            f"(a file already at {output} is unchanged).")
