"""ONNX Runtime sessions: device choice (CUDA only when it really works), one cached session per model.

ONNX Runtime is the plugin's only extra dependency. It may be missing (the classical methods still
work) or live in a plugin-private folder put on ``sys.path`` by ``deps.activate``.
"""
from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import sys
import threading
from dataclasses import dataclass

from . import memory
from .errors import InputError, ModelMemoryError
from .feedback import Feedback
from .model_card import sha256_file
from .ort_telemetry import quiet_events, switch_off

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
DEVICES = ("auto", "cuda", "cpu")   # the DEVICE values (the batch command checks --device against them)
INSTALL_HINT = (
    "ONNX Runtime is not installed for this QGIS profile. Use Raster > KSDiff > Install ONNX Runtime… "
    "(or run the Processing algorithm 'ksdiff:install_runtime'); the classical methods work without it."
)
NO_INIT = "its folder has no __init__.py: the install is incomplete"
VERDICT_FILE = "import-probe.json"   # in the runtime folder: the states of ONNX Runtime's files that loaded fine
KEEP_VERDICTS = 8                    # a few runtimes (one per Python of the profile, reinstalls) kept at once
PROBE_TIMEOUT = 120   # s: a first import from a cold disk (or under a virus scanner) takes a few seconds, not minutes


class RuntimeUnavailable(InputError):
    """ONNX Runtime is missing or does not load: no fault of the model, so METHOD auto uses a classical method."""


def broken_runtime(where: str, why: str) -> str:
    """The refusal of an ONNX Runtime that is there but does not load, with the way to repair it."""
    return (f"ONNX Runtime at {where} does not load ({why}): reinstall it with Raster > KSDiff > "
            "Install ONNX Runtime… (ksdiff:install_runtime)")


def import_onnxruntime():
    """The onnxruntime module, or RuntimeUnavailable: how to install it, or that the installed one is broken.

    Before the first import in this process, the import is tried in a child Python (``probe``): a damaged native
    library (a truncated copy: full disk, interrupted sync) kills the process that loads it with SIGBUS, and in
    QGIS that is the desktop with the user's unsaved work. ONNX Runtime's telemetry is switched off before the
    probe and the import (``ort_telemetry``): its import alone wrote a device id and an event queue under ~/.cache."""
    switch_off()
    loaded = sys.modules.get("onnxruntime")
    if loaded is None:
        spec = _find_spec()
        if spec is None:
            raise RuntimeUnavailable(INSTALL_HINT)
        # a folder without __init__.py has nothing to probe: said as the module check below says it
        why = NO_INIT if spec.origin is None else probe(_spec_folder(spec))
        if why:
            raise RuntimeUnavailable(broken_runtime(_spec_folder(spec), why))
    try:
        import onnxruntime
    except Exception as e:   # noqa: BLE001 - a broken build also fails with OSError (its native library)
        spec = _find_spec()
        if spec is None:
            raise RuntimeUnavailable(INSTALL_HINT) from None
        raise RuntimeUnavailable(broken_runtime(_spec_folder(spec), short_error(e))) from None
    why = not_a_runtime(onnxruntime)
    if why == NO_INIT:   # an empty module loaded nothing native: forgotten, so a reinstalled one is imported next
        for name in [n for n in sys.modules if n == "onnxruntime" or n.startswith("onnxruntime.")]:
            del sys.modules[name]
    if why:
        raise RuntimeUnavailable(broken_runtime(_module_folder(onnxruntime), why))
    quiet_events(onnxruntime)
    return onnxruntime


def not_a_runtime(module) -> str | None:
    """Why ``module`` is not a usable onnxruntime, or None. A folder left without __init__.py (a half-removed
    install) imports as an empty namespace package, and the first call into it raised AttributeError."""
    if getattr(module, "__file__", None) is None:
        return NO_INIT
    missing = [a for a in ("InferenceSession", "get_available_providers") if not hasattr(module, a)]
    return f"the module has no {' or '.join(missing)}" if missing else None


def _find_spec():
    import importlib.util

    try:
        return importlib.util.find_spec("onnxruntime")
    except (ImportError, ValueError):
        return None


def _spec_folder(spec) -> str:
    return os.path.dirname(spec.origin or "") or ", ".join(spec.submodule_search_locations or [])


def _module_folder(module) -> str:
    where = os.path.dirname(getattr(module, "__file__", None) or "")
    return where or ", ".join(getattr(module, "__path__", None) or []) or "?"


_verdicts: dict[tuple, str | None] = {}   # (folder, _signature(folder)) -> why it does not load, None when it does
_probe_python: list[str | None] = []      # the Python that probes (found once: each candidate costs a process)
_probe_lock = threading.Lock()


def probe(folder: str) -> str | None:
    """Why the onnxruntime in ``folder`` does not load, tried in a child Python with this process's sys.path
    (``deps._imports``), or None when it loads or cannot be tried. Asked once per session and per state of the
    folder's files (``_signature``), so a repair (Install ONNX Runtime…) is seen without a restart; a state that
    loaded is remembered on disk across processes too (``_known_good``: qgis_process paid 0.3 s per scene)."""
    key = (folder, _signature(folder))
    with _probe_lock:
        if key not in _verdicts:
            _verdicts[key] = None if _known_good(key) else _probe_now(key)
        return _verdicts[key]


def _verdict_file() -> str | None:
    """The file of "loads fine" verdicts: in the plugin's runtime folder of the QGIS profile (``deps.activate``),
    only when that folder exists (it is private to the plugin and the profile); None: nothing is kept."""
    from . import deps

    base = deps.active_base
    return os.path.join(base, VERDICT_FILE) if base and os.path.isdir(base) else None


def _entry(key: tuple) -> str:
    # the same file state as the session's cache, for this Python and platform only
    return json.dumps([*key, sys.version, sys.platform])


def _read_verdicts(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8") as f:
            known = json.load(f)
    except (OSError, ValueError):   # missing, unreadable or corrupt: probe again
        return []
    return [k for k in known if isinstance(k, str)] if isinstance(known, list) else []


def _known_good(key: tuple) -> bool:
    path = _verdict_file()
    return bool(path) and _entry(key) in _read_verdicts(path)


def _remember_good(key: tuple) -> None:
    """Add ``key`` to the verdict file, atomically (a temporary file replaced in one step: a reader sees the old
    list or the new one). Only successes are kept: a failing state is probed again each time, so a repair is seen.
    Not writable: nothing is kept, the next process probes again."""
    path = _verdict_file()
    if not path:
        return
    known = [k for k in _read_verdicts(path) if k != _entry(key)][-(KEEP_VERDICTS - 1):] + [_entry(key)]
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(known, f)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.remove(tmp)


def _probe_now(key: tuple) -> str | None:
    from . import deps

    if not _probe_python:
        try:   # inside QGIS sys.executable may be QGIS itself: the Python the installer would use, pip or not
            _probe_python.append(deps.same_python(need_pip=False))
        except InputError:
            _probe_python.append(None)
    python = _probe_python[0]
    if python is None:   # no Python beside QGIS to ask: import as before (an unprobed runtime may still crash)
        return None
    try:
        ok, said = deps._imports(python, *sys.path, timeout=PROBE_TIMEOUT)
    except OSError:
        return None
    if ok:
        if _signature(key[0]) == key[1]:   # the files the child loaded are the ones the key describes
            _remember_good(key)
        return None
    lines = [line.strip() for line in said.splitlines() if line.strip()]
    return short_error(Exception(lines[-1] if lines else "no error message"))


def _signature(folder: str) -> tuple:
    """(time, size) of the package folder, its __init__.py, capi/ and capi's native libraries: an in-place copy
    over a truncated .so changes only that file, a removed __init__.py only the folder."""
    def stat(path: str) -> tuple | None:
        try:
            st = os.stat(path)
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    capi = os.path.join(folder, "capi")
    native = []
    try:
        with os.scandir(capi) as entries:
            native = sorted((e.name, stat(e.path)) for e in entries
                            if e.name.endswith((".so", ".pyd", ".dll", ".dylib")) or ".so." in e.name)
    except OSError:
        pass
    return (stat(folder), stat(os.path.join(folder, "__init__.py")), stat(capi), tuple(native))


@dataclass(frozen=True)
class DeviceChoice:
    providers: tuple[str, ...]
    reason: str


# the plugin's own installer and the option to pick, as its dialog lists it less the package key
# (algorithms/install_runtime.py)
GPU_INSTALL = "Raster > KSDiff > Install ONNX Runtime…, Package 'NVIDIA GPU build'"


@functools.lru_cache(maxsize=1)
def gpu_present() -> bool:
    """Whether an NVIDIA GPU answers ``nvidia-smi -L`` (the installer's own test, ``deps.has_nvidia_gpu``); asked
    once per QGIS session."""
    from .deps import has_nvidia_gpu

    return has_nvidia_gpu()


def choose_providers(device: str, available: list[str], gpu: bool | None = None) -> DeviceChoice:
    """Execution providers to ask for, given the user's DEVICE and what this ONNX Runtime build offers. ``gpu``:
    whether the machine has an NVIDIA GPU (None: ask ``gpu_present``, only when the build has no CUDA provider); the
    reason advises the GPU build only then (QA: that advice came on every CPU run of a machine without a GPU)."""
    if device not in DEVICES:
        raise InputError(f"unknown device {device!r}: use auto, cuda or cpu")
    if device == "cpu":
        return DeviceChoice((CPU,), "")
    if CUDA in available:
        return DeviceChoice((CUDA, CPU), "")
    if gpu if gpu is not None else gpu_present():
        why = ("an NVIDIA GPU is present, but this ONNX Runtime build has no CUDA provider: to use the GPU, install "
               f"the GPU build with {GPU_INSTALL}")
    else:
        why = "no NVIDIA GPU was found (nvidia-smi)" if device == "cuda" else ""
    return DeviceChoice((CPU,), why)


def device_line(model: str, session: Session) -> str:
    """The run's line on where ``model`` runs: the device, and why not the GPU only when that is worth saying."""
    where = "the GPU (CUDA)" if session.device == "cuda" else "the CPU"
    return f"Model {model}: running on {where}" + (f"; {session.reason}" if session.reason else "") + "."


@dataclass
class Session:
    session: object
    device: str      # "cuda" or "cpu": what the session really runs on
    reason: str
    probed: tuple | None = None   # the card fields the graph passed learned.check_graph with
    threads: int = 0
    tile_kernels: object = None   # learned.TileKernels when built and checked on the probe, else None
    tile_int8: object = None      # its int8 variant (learned.TileKernels(int8=True)), checked when first asked for;
    #                               False when that check failed
    optimised: bool = True        # False: a CPU reference graph created without graph optimisations (get_session)


_cache: dict[tuple, Session] = {}
_lock = threading.Lock()


def default_threads() -> int:
    """The CPU cores this process may use (``threadlimits.usable_cores``)."""
    from .threadlimits import usable_cores

    return usable_cores()


def balance_threads(workers: int, threads: int) -> tuple[int, int]:
    """(tile workers, ONNX Runtime intra-op threads per session run) sharing the cores; 0 means choose.

    Measured on 2 cores (docs/BENCHMARKS_SPEED.md): two tiles at a time with one intra-op thread each
    beat one tile with two threads, because reading, cubic upsampling and blending stay single-threaded
    inside a tile while ONNX Runtime's own threads would idle through them.
    """
    cores = default_threads()
    if not workers:
        workers = max(1, cores // threads) if threads else min(cores, 4)
    if not threads:
        threads = max(1, cores // workers)
    return workers, threads


_shared_arena: list[bool] = []
SAME_AS_REQUESTED = 1   # ONNX Runtime's arena_extend_strategy kSameAsRequested


def _register_shared_arena(ort) -> bool:
    """One CPU memory arena for the whole process, registered once; False when ONNX Runtime refuses it."""
    with _lock:
        if not _shared_arena:
            try:
                info = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
                # extended by what is asked, not the next power of two: two tile workers share it, and
                # doubling made the peak depend on their timing (8192² pool: 716 MB, 610 MB this way)
                ort.create_and_register_allocator(info, ort.OrtArenaCfg(0, SAME_AS_REQUESTED, -1, -1))
                _shared_arena.append(True)
            except Exception:  # noqa: BLE001 - an older or unusual build: each session keeps its own arena
                _shared_arena.append(False)
        return _shared_arena[0]


ORT_LOG_FATAL = 4   # ONNX Runtime's severities: 0 verbose, 1 info, 2 warning, 3 error, 4 fatal


def session_options(threads: int = 0, shared_arena: bool = False):
    """ONNX Runtime options of every session the plugin creates.

    ``shared_arena``: the session takes its memory from one process-wide arena, for the short-lived per-tile
    sessions (``learned.TileKernels``): each new session otherwise faults its activations' pages in
    afresh (measured, int8 backbone on a 564² tile: first run 0.32-0.37 s, 0.26-0.30 s from the shared arena).
    """
    ort = import_onnxruntime()
    opts = ort.SessionOptions()
    if shared_arena and _register_shared_arena(ort):
        opts.add_session_config_entry("session.use_env_allocators", "1")
    opts.intra_op_num_threads = threads or default_threads()
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # several tile workers run this session at once: idle ORT threads must sleep, not spin on the
    # cores the other tiles need (denormals-as-zero is not set: it would leak into QGIS's thread)
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # no pre-planned memory pattern: it reserves one block per shape for every intermediate at once
    # (measured on a 532² tile of the bundled model: peak RSS 473 -> 310 MB, no slower)
    opts.enable_mem_pattern = False
    # fatal only: a failed run raises, and the engine reports that in its own words (QA: ONNX Runtime's raw red
    # "[E:onnxruntime:, sequential_executor.cc ...] Failed to allocate memory" line came before the engine's message)
    opts.log_severity_level = ORT_LOG_FATAL
    return opts


def get_session(model_path: str, device: str = "auto", threads: int = 0, reference_on_cpu: bool = False,
                sha256: str | None = None) -> Session:
    """A session for ``model_path`` on the chosen device, created once and reused across tiles and runs.

    Sessions are keyed on the file's content (``sha256``: its hash as the model card's check computed it; hashed
    here when not given), not on its time and size: a retrained model copied over the old one with its time kept
    (cp -p, rsync -t, unzip, FAT's 2 s times) and the same size kept running the old one for the session.

    ``reference_on_cpu``: on CPU the graph only gives the probe tile's reference for a per-tile path that runs
    the tiles (``learned.TileKernels``), so ONNX Runtime skips its graph optimisations: they take about 60 % of
    the bundled KSDiff graph's creation time (0.15 s against 0.06 s) and nothing runs on that graph afterwards.
    On CUDA the graph runs every tile and is optimised as usual."""
    ort = import_onnxruntime()
    digest = sha256 or sha256_file(model_path)
    key = (os.path.abspath(model_path), digest, device, threads, reference_on_cpu)
    with _lock:
        if key in _cache:
            return _cache[key]
        choice = choose_providers(device, ort.get_available_providers())
        if CUDA in choice.providers:   # CUDA/cuDNN from the nvidia-* wheels, when those were installed
            from .deps import preload_cuda

            preload_cuda(ort)
        opts = session_options(threads)
        if reference_on_cpu and CUDA not in choice.providers:
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        sess, reason = _create(ort, model_path, opts, choice)
        ran_on = "cuda" if sess.get_providers()[0] == CUDA else "cpu"
        if CUDA in choice.providers and ran_on != "cuda" and reason == choice.reason:
            reason = "the CUDA provider is installed but could not create the session (driver/CUDA libraries?)"
        session = Session(sess, ran_on, reason, threads=threads,
                          optimised=opts.graph_optimization_level != ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
        if len(_cache) >= 4:
            _cache.pop(next(iter(_cache)))
        _cache[key] = session
        return session


def warn_cpu_fallback(asked: str, session: Session, fb: Feedback) -> None:
    """A warning on ``fb`` when DEVICE cuda was asked for and ``session`` runs on the CPU: the reason
    alone sits inside the long model line. DEVICE auto's CPU is expected: said there only."""
    if asked == "cuda" and session.device != "cuda":
        fb.warning(f"DEVICE cuda was asked for, but the model runs on the CPU (slower): {session.reason}")


def short_error(error: Exception, limit: int = 300) -> str:
    """First line of an ONNX Runtime error, shortened: enough to tell which library is missing."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


_ORT_CODE = re.compile(r"\[ONNXRuntimeError\]\s*:\s*\d+\s*:\s*(\w+)\s*:\s*")
_LOAD_FROM = re.compile(r"Load model from .*? failed:\s*")
# "/onnxruntime_src/.../model_load_utils.h:46 void onnxruntime::...::ValidateOpsetForDomain(const std::...&, int) "
# or "tensorprotoutils.cc:619 ValidateExternalDataPathFromDir ": where in ONNX Runtime's C++ it failed
_CXX_WHERE = re.compile(r"\S+\.(?:h|hpp|cc|cpp):\d+\s+(?:[^()\s]+(?:\s[^()\s]+)*?\([^()]*\)\s*(?:const\s+)?|\w+\s+)")
_FIX_EITHER = re.compile(r"\s*Please fix either the inputs/outputs or the model\.?")


def ort_words(error: BaseException, limit: int = 200) -> str:
    """ONNX Runtime's error text on one short line: its status code word kept, the C++ source location and
    signature, the "Load model from <path> failed:" prefix and the line breaks dropped (QA: a 770-character C++
    signature for an opset-99 model; "Got invalid dimensions ..." over four lines)."""
    text = str(error).strip() or type(error).__name__
    text = _ORT_CODE.sub(lambda m: f"{m.group(1)}: ", text, count=1)
    text = _FIX_EITHER.sub("", _CXX_WHERE.sub("", _LOAD_FROM.sub("", text)))
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit]
    end = cut.rfind(". ")   # whole sentences when they fit
    return cut[:end + 1] if end > limit // 3 else cut[:-1] + "…"


def load_error(name: str, error: BaseException) -> InputError:
    """ONNX Runtime failed to load the model ``name``: one line, and what to do."""
    if memory.out_of_memory(error):   # a std::bad_alloc: re-exporting or a smaller tile cannot help (QA139)
        short = f"not enough memory to load the model {name} ({ort_words(error).rstrip('.')})"
        refused = ModelMemoryError(f"{short}: {memory.more_memory_way(budget=False)}. No output was written")
        refused.auto = short   # METHOD auto's warning: it falls back to a classical method instead
        return refused
    ort = sys.modules.get("onnxruntime")
    version = f" {ort.__version__}" if getattr(ort, "__version__", None) else ""
    return InputError(f"ONNX Runtime cannot load the model {name}: {ort_words(error).rstrip('.')}; export the model "
                      f"again as a single .onnx file with standard operators and an opset this ONNX Runtime{version} "
                      "supports, or use a classical method")


def _create(ort, model_path: str, opts, choice: DeviceChoice) -> tuple[object, str]:
    """An InferenceSession and the device reason; a CUDA session that fails to start falls back to CPU."""
    name = os.path.basename(model_path)
    try:
        return ort.InferenceSession(model_path, sess_options=opts, providers=list(choice.providers)), choice.reason
    except Exception as e:  # ONNX Runtime raises its own exception types (corrupt file, missing CUDA/cuDNN)
        if CUDA not in choice.providers:
            raise load_error(name, e) from None
        cuda_error = short_error(e)
    try:
        sess = ort.InferenceSession(model_path, sess_options=opts, providers=[CPU])
    except Exception as e:  # noqa: BLE001 - the CPU error says what is wrong with the model itself
        raise load_error(name, e) from None
    return sess, f"the CUDA session failed to start ({cuda_error})"


def cpu_fallback(session: Session, model_path: str, threads: int, why: str, sha256: str | None = None) -> Session:
    """A CPU session replacing a CUDA ``session`` that failed on its first run (e.g. cuDNN missing)."""
    with _lock:
        for key in [k for k, v in _cache.items() if v is session]:
            del _cache[key]   # do not hand the broken session to the next run
    cpu = get_session(model_path, "cpu", threads, sha256=sha256)
    return Session(cpu.session, "cpu", f"the CUDA session failed on its first run ({why})", cpu.probed,
                   threads, cpu.tile_kernels, cpu.tile_int8, cpu.optimised)


def clear_cache() -> None:
    with _lock:
        _cache.clear()
