"""Install ONNX Runtime into a plugin-private folder for the running Python, never touching QGIS's numpy.

``pip install --target <folder> --no-deps "onnxruntime[-gpu]<tested range>"`` into
``<base>/py<major><minor>``; ``activate`` puts that folder on ``sys.path``. The GPU build is chosen
only when an NVIDIA GPU answers ``nvidia-smi -L``. Nothing else is installed: onnxruntime needs neither
protobuf nor flatbuffers to run a model, and a private protobuf first on ``sys.path`` would shadow
QGIS's own for every plugin. Options: a local wheel (offline), a proxy (QGIS's settings), and, on
request only, the CUDA/cuDNN runtime wheels (gigabytes) for machines without a system CUDA.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from typing import Callable

from .errors import Cancelled, InputError
from .feedback import Feedback

# the range the test suite and `make deploy` run (1.32); widen it only after testing a release
ORT_SPEC = ">=1.32,<1.33"
TESTED = ((1, 32), (1, 33))      # [low, high) of (major, minor)
TESTED_TEXT = "1.32.x"
# what onnxruntime-gpu[cuda,cudnn] pulls in; listed explicitly so that --no-deps keeps numpy out
CUDA_WHEELS = ("nvidia-cuda-runtime-cu12", "nvidia-cuda-nvrtc-cu12", "nvidia-cublas-cu12", "nvidia-cufft-cu12",
               "nvidia-curand-cu12", "nvidia-cudnn-cu12")
GPU_WITH_CUDA = "onnxruntime-gpu-cuda"   # package choice: onnxruntime-gpu plus the CUDA/cuDNN runtime wheels


def private_dir(base: str) -> str:
    return os.path.join(base, f"py{sys.version_info.major}{sys.version_info.minor}")


def activate(base: str) -> bool:
    """Put the private folder on sys.path (first, so the user's chosen build wins); True if it exists."""
    folder = private_dir(base)
    if not os.path.isdir(folder):
        return False
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return True


def has_nvidia_gpu(run: Callable = subprocess.run) -> bool:
    exe = shutil.which("nvidia-smi")
    if not exe:
        return False
    try:
        res = run([exe, "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return False
    return res.returncode == 0 and "GPU" in res.stdout


def package_for_machine(gpu: bool | None = None) -> str:
    return "onnxruntime-gpu" if (has_nvidia_gpu() if gpu is None else gpu) else "onnxruntime"


def python_candidates() -> list[str]:
    """Where a Python of the running version may live, most specific first.

    Inside QGIS ``sys.executable`` is QGIS itself; the macOS bundle keeps its interpreter beside it
    (``QGIS.app/Contents/MacOS/python``), Windows (OSGeo4W) under ``sys.exec_prefix``.
    """
    major, minor = sys.version_info[:2]
    here = os.path.dirname(sys.executable or "")
    return [sys.executable, os.path.join(here, "python"), os.path.join(here, f"python{major}"),
            os.path.join(here, "bin", f"python{major}"), os.path.join(here, "bin", f"python{major}.{minor}"),
            os.path.join(sys.exec_prefix, "bin", f"python{major}.{minor}"),
            os.path.join(sys.exec_prefix, "bin", f"python{major}"),
            os.path.join(sys.exec_prefix, "python.exe"), os.path.join(sys.exec_prefix, "python3.exe"),
            shutil.which(f"python{major}.{minor}") or "", shutil.which("python3") or ""]


def python_for_pip() -> str:
    """A Python executable of the running version (inside QGIS, sys.executable may be QGIS itself)."""
    major, minor = sys.version_info[:2]
    names = python_candidates()
    for exe in names:
        if not exe or not os.path.isfile(exe) or "python" not in os.path.basename(exe).lower():
            continue
        try:
            out = subprocess.run([exe, "-c", "import sys, pip; print(sys.version_info[:2])"],
                                 capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.SubprocessError):
            continue
        if out.returncode == 0 and out.stdout.strip() == str((major, minor)):
            return exe
    raise InputError(f"no Python {major}.{minor} with pip found to install ONNX Runtime; install python3-pip")


def wheel_version(path: str) -> tuple[int, int] | None:
    """(major, minor) from a wheel file name (``onnxruntime-1.32.0-cp311-…whl``), or None."""
    parts = os.path.basename(path).split("-")
    try:
        major, minor = parts[1].split(".")[:2]
        return int(major), int(minor)
    except (IndexError, ValueError):
        return None


def pip_command(python: str, staging: str, package: str, wheel: str | None = None,
                proxy: str | None = None) -> list[str]:
    """The pip call: always --no-deps into ``staging``; a local wheel offline (--no-index), else the pinned spec."""
    cmd = [python, "-m", "pip", "install", "--no-deps", "--upgrade", "--disable-pip-version-check",
           "--no-input", "--target", staging]
    if proxy:
        cmd += ["--proxy", proxy]
    if wheel:
        return cmd + ["--no-index", wheel]
    if package == GPU_WITH_CUDA:
        return cmd + [f"onnxruntime-gpu{ORT_SPEC}", *CUDA_WHEELS]
    return cmd + [f"{package}{ORT_SPEC}"]


def proxy_url(enabled: bool, kind: str, host: str, port: int | str | None, user: str = "",
              password: str = "") -> str | None:
    """pip's ``--proxy`` value from QGIS's proxy settings; None when QGIS uses none or the system's.

    The system proxy (``DefaultProxy``) already reaches pip through HTTP(S)_PROXY in the environment.
    """
    if not enabled or not host or kind in ("DefaultProxy", "NoProxy"):
        return None
    from urllib.parse import quote

    scheme = "socks5" if "socks" in (kind or "").lower() else "http"
    auth = f"{quote(user, safe='')}:{quote(password, safe='')}@" if user else ""
    return f"{scheme}://{auth}{host}{f':{port}' if port else ''}"


def _masked(cmd: list[str]) -> str:
    """The command for the log, without a proxy password."""
    import re

    return " ".join(re.sub(r"//([^:/@]+):[^@/]+@", r"//\1:***@", c) for c in cmd)


OFFLINE_HINT = ("Is the Python package index (pypi.org) reachable? Set a proxy in QGIS's Settings > Options > "
                "Network, or install offline from a downloaded onnxruntime wheel with the option "
                "'Local onnxruntime wheel' (WHEEL=…whl in qgis_process).")


def _prepare(base: str, staging: str) -> bool:
    """Create ``base`` and an empty ``staging`` folder, or InputError naming the folder that must be writable.

    Runs before pip downloads anything. Returns True when ``base`` was created here (removed again if the
    install fails, so a failed first install leaves nothing behind)."""
    import tempfile

    created = not os.path.isdir(base)
    try:
        os.makedirs(base, exist_ok=True)
        # a probe file: os.access says yes to root on a read-only file system
        fd, probe = tempfile.mkstemp(dir=base, prefix=".write-test-")
        os.close(fd)
        os.remove(probe)
        shutil.rmtree(staging, ignore_errors=True)   # left by an interrupted install
        os.makedirs(staging)
    except OSError as e:
        _discard(base, created)
        raise InputError(f"cannot install ONNX Runtime: the folder {base} must be writable by you "
                         f"({e.strerror or e}). Check its permissions (it lies in your QGIS profile) "
                         "and try again; nothing was downloaded.") from None
    return created


def _discard(base: str, created: bool, staging: str | None = None) -> None:
    """Remove what a failed install created: its staging folder, and ``base`` if it was new and is empty."""
    if staging:
        shutil.rmtree(staging, ignore_errors=True)
    if created:
        try:
            os.rmdir(base)
        except OSError:
            pass


def _swap_in(staging: str, target: str) -> str | None:
    """Put ``staging`` in place of ``target``: the old runtime is moved aside first, then removed best-effort (its
    folder returned when it could not be removed).

    ``shutil.rmtree(target)`` before the move half-deleted a runtime it could not fully remove (a folder of
    another owner; on Windows DLLs a running QGIS holds) and left the new one as ``.partial``; a rename either
    works or changes nothing. ``.old-*`` folders a locked earlier runtime left behind are removed here too."""
    import glob

    for leftover in glob.glob(glob.escape(target) + ".old-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    old = None
    if os.path.lexists(target):
        old = f"{target}.old-{os.getpid()}"
        try:
            os.replace(target, old)
        except OSError as e:
            shutil.rmtree(staging, ignore_errors=True)
            raise InputError(
                f"the ONNX Runtime already installed in {target} cannot be replaced ({e.strerror or e}). "
                "Restart QGIS (a running QGIS may hold its files open) and check that you may write to "
                f"{os.path.dirname(target)}, then install again; the installed runtime was left as it was."
            ) from None
    try:
        os.replace(staging, target)
    except OSError as e:
        shutil.rmtree(staging, ignore_errors=True)
        if old:
            os.replace(old, target)   # put the old runtime back: never a missing one
        raise InputError(f"cannot put the new ONNX Runtime in {target} ({e.strerror or e}); "
                         "the installed runtime was left as it was") from None
    if old:
        shutil.rmtree(old, ignore_errors=True)   # may fail on locked files: the next install retries
        if os.path.lexists(old):
            return old
    return None


def install(base: str, feedback: Feedback | None = None, package: str | None = None, wheel: str | None = None,
            proxy: str | None = None) -> str:
    """Install ONNX Runtime into ``private_dir(base)``; returns a line saying what was installed.

    ``wheel``: a local onnxruntime wheel (offline install); ``proxy``: passed to pip (``--proxy``).
    A failed install changes nothing: the old runtime stays, and no folder it created is left behind.
    """
    fb = feedback or Feedback()
    package = package or package_for_machine()
    if wheel:
        if not os.path.isfile(wheel) or not wheel.endswith(".whl"):
            raise InputError(f"the wheel {wheel!r} does not exist or is not a .whl file")
        version = wheel_version(wheel)
        if version is None or not TESTED[0] <= version < TESTED[1]:
            fb.warning(f"{os.path.basename(wheel)} is outside the tested onnxruntime range {ORT_SPEC}")
        package = os.path.basename(wheel).split("-")[0].replace("_", "-")
    # a module imported in this process stays loaded whatever happens to its folder (native code cannot unload)
    loaded_before = sys.modules.get("onnxruntime")
    target = private_dir(base)
    staging = target + ".partial"
    python = python_for_pip()   # before anything is created: no pip, nothing on disk
    created = _prepare(base, staging)
    cmd = pip_command(python, staging, package, wheel, proxy)
    fb.info(f"Installing {package} for Python {sys.version_info.major}.{sys.version_info.minor} into {target}")
    fb.info(_masked(cmd))
    tail: list[str] = []
    steps = 0
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        for line in proc.stdout:
            line = line.rstrip()
            tail = (tail + [line])[-15:]
            fb.info(line)
            steps += 1
            fb.progress(min(0.9, steps / 20))
            if fb.is_cancelled():
                proc.kill()
                proc.wait()
                _discard(base, created, staging)
                raise Cancelled("installation cancelled")
    if proc.returncode != 0:
        _discard(base, created, staging)
        hint = (f"Is {wheel} an onnxruntime wheel for Python {sys.version_info.major}.{sys.version_info.minor} "
                "on this system?" if wheel else OFFLINE_HINT)
        raise InputError(f"pip could not install {package} (exit {proc.returncode}). {hint} Last lines of pip:\n"
                         + "\n".join(tail))
    check = subprocess.run(
        [python, "-c", "import sys; sys.path.insert(0, sys.argv[1]); import onnxruntime as o; "
         "print(o.__version__, ','.join(o.get_available_providers()))", staging],
        capture_output=True, text=True, timeout=300,
    )
    if check.returncode != 0:
        _discard(base, created, staging)
        raise InputError(f"{package} installed but does not import with this Python:\n{check.stderr[-2000:]}")
    stuck = _swap_in(staging, target)
    fb.progress(1.0)
    version, providers = check.stdout.split()
    done = f"{package} {version} installed in {target} (providers: {providers})"
    if stuck:   # QA: a 79 MB folder stayed beside the new runtime without a word
        left = (f"the previous runtime, moved to {stuck}, could not be deleted (it belongs to another user, or a "
                "running QGIS holds its files): delete that folder by hand")
        fb.warning(left)
        done = f"{done}; {left}"
    if loaded_before is not None:
        note = restart_note(loaded_before)
        fb.warning(note)
        return f"{done}; {note}"
    fb.info(verify_here(base))
    return done


def restart_note(loaded) -> str:
    """What to say when an onnxruntime ``loaded`` in this process was replaced on disk."""
    where = os.path.dirname(getattr(loaded, "__file__", "") or "") or "?"
    return (f"restart QGIS to use the new build: this QGIS session keeps onnxruntime "
            f"{getattr(loaded, '__version__', '?')} (loaded from {where}) until it is restarted")


def verify_here(base: str) -> str:
    """Import onnxruntime in *this* interpreter (QGIS's own, not the pip Python) and say what loaded."""
    import importlib

    activate(base)
    loaded = sys.modules.get("onnxruntime")
    if loaded is not None:
        where = os.path.dirname(getattr(loaded, "__file__", "") or "")
        if not where.startswith(private_dir(base)):
            return (f"onnxruntime {getattr(loaded, '__version__', '?')} from {where} is already loaded in this "
                    "QGIS session; restart QGIS to use the new one")
    else:   # submodules a failed import of a broken runtime left would shadow the new ones
        for name in [n for n in sys.modules if n.startswith("onnxruntime.")]:
            del sys.modules[name]
    try:
        ort = importlib.import_module("onnxruntime")
    except Exception as e:   # noqa: BLE001 - any import failure must be reported, not raised
        raise InputError(f"onnxruntime was installed but does not import in QGIS's Python: {e}") from None
    return f"onnxruntime {ort.__version__} imports in this interpreter ({sys.executable})"


def preload_cuda(ort) -> None:
    """Load the CUDA/cuDNN libraries of the nvidia-* wheels before a CUDA session (onnxruntime >= 1.21)."""
    fn = getattr(ort, "preload_dlls", None)
    if fn is not None:
        try:
            fn()
        except Exception:   # noqa: BLE001 - a system CUDA may still work; the session reports the outcome
            pass
