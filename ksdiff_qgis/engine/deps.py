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
import platform
import re
import shutil
import subprocess
import sys
from typing import Callable

from .errors import Cancelled, InputError, quoted
from .feedback import Feedback
from .ort_telemetry import quiet_events, switch_off

# The tested (major, minor) line per package; widen only after testing a release. The test suite and
# `make deploy` run onnxruntime 1.32; PyPI has no onnxruntime-gpu 1.32 (newest: 1.31.1), so a 1.32 pin for the GPU
# build failed on every NVIDIA machine. The bundled models (opset 17, IR 8) load with the 1.31.1 CPU wheel.
LINES = {"onnxruntime": (1, 32), "onnxruntime-gpu": (1, 31)}
ORT_SPEC = ">=1.32,<1.33"          # the CPU build's range (kept for callers)
TESTED_TEXT = "onnxruntime 1.32.x, onnxruntime-gpu 1.31.x"
# Both lines have wheels for CPython 3.11-3.14 only (PyPI requires_python >=3.11).
PYTHONS = ((3, 11), (3, 14))
# What onnxruntime-gpu 1.31's [cuda,cudnn] extras pull in (CUDA 13, cuDNN 9), with the wheels those need in turn
# (cudnn-cu13 -> cublas, cufft -> nvjitlink); listed explicitly so that --no-deps keeps numpy out.
CUDA_WHEELS = ("nvidia-cuda-runtime~=13.0", "nvidia-cuda-nvrtc~=13.0", "nvidia-cublas~=13.0", "nvidia-cufft~=12.0",
               "nvidia-curand~=10.0", "nvidia-nvjitlink~=13.0", "nvidia-cudnn-cu13~=9.0")
GPU_WITH_CUDA = "onnxruntime-gpu-cuda"   # package choice: onnxruntime-gpu plus the CUDA/cuDNN runtime wheels


def spec_for(package: str) -> str:
    """The pinned version range of ``package`` (onnxruntime, onnxruntime-gpu or GPU_WITH_CUDA)."""
    major, minor = LINES["onnxruntime" if package == "onnxruntime" else "onnxruntime-gpu"]
    return f">={major}.{minor},<{major}.{minor + 1}"


def tested(package: str, version: tuple[int, int]) -> bool:
    """True when (major, minor) ``version`` is the tested line of ``package``."""
    return version == LINES["onnxruntime-gpu" if package.startswith("onnxruntime-gpu") else "onnxruntime"]


def hidden_window(os_name: str | None = None) -> dict:
    """Keyword arguments for subprocess calls: on Windows no console window flashes up from the GUI qgis-bin.exe."""
    if (os_name or os.name) == "nt":
        return {"creationflags": getattr(subprocess, "CREATE_NO_WINDOW", 0x08000000)}
    return {}


def child_env() -> dict:
    """The environment for pip and the probes: UTF-8 output, decoded as such (not with the Windows code page), and
    ONNX Runtime's telemetry off (``ort_telemetry``: a probe's import alone wrote its device id and event queue)."""
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    switch_off(env)
    return env


# how subprocess output is decoded: the child writes UTF-8 (child_env); a stray byte must not raise
TEXT = {"encoding": "utf-8", "errors": "replace"}


def no_build_reason(package: str, version: tuple[int, ...] | None = None, system: str | None = None,
                    machine: str | None = None, mac_release: str | None = None) -> str | None:
    """Why PyPI has no wheel of the pinned ``package`` line for this Python/platform, or None when it has one.

    Wheels (PyPI, both lines): CPython 3.11-3.14 on Windows x64/ARM64, macOS 14+ on Apple Silicon, Linux
    x86_64/aarch64; the GPU build only on Windows x64 and Linux. Arguments default to the running interpreter."""
    major, minor = (version or sys.version_info)[:2]
    system = system or platform.system()
    machine = (machine or platform.machine() or "?").lower()
    gpu = package != "onnxruntime"
    name = "onnxruntime-gpu" if gpu else "onnxruntime"
    line = "{}.{}".format(*LINES[name])
    if not PYTHONS[0] <= (major, minor) <= PYTHONS[1]:
        return (f"{name} {line} has builds for Python 3.11 to 3.14 only, and this QGIS runs Python {major}.{minor}: "
                "use a QGIS whose Python is 3.11 or newer")
    if system == "Darwin":
        if gpu:
            return f"{name} has no build for macOS: install the CPU build (onnxruntime)"
        release = mac_release if mac_release is not None else platform.mac_ver()[0]
        if machine not in ("arm64", "aarch64"):
            return f"{name} {line} has no build for Intel Macs (none since 1.23.2): it needs Apple Silicon, macOS 14+"
        try:
            mac_major = int(release.split(".")[0])
        except ValueError:
            mac_major = 14   # unknown: let pip decide
        if mac_major < 14:
            return f"{name} {line} needs macOS 14 or newer (this Mac runs {release})"
        return None
    ok = {"Windows": ("amd64", "x86_64") + (() if gpu else ("arm64",)), "Linux": ("x86_64", "aarch64", "arm64")}
    if machine not in ok.get(system, ()):
        return f"{name} {line} has no build for {system} on {machine}"
    return None


def private_dir(base: str) -> str:
    return os.path.join(base, f"py{sys.version_info.major}{sys.version_info.minor}")


def inside(path: str, folder: str) -> bool:
    """True when ``path`` is ``folder`` or lies in it, compared as the disk does (normcase, abspath): on Windows
    Qt's forward slashes and importlib's backslashes name the same folder."""
    norm = os.path.normcase(os.path.abspath(folder))
    return bool(path) and (os.path.normcase(os.path.abspath(path)) + os.sep).startswith(norm + os.sep)


active_base: str | None = None   # the base activate() was given: runtime.probe keeps its "loads fine" verdicts there


def activate(base: str) -> bool:
    """Put the private folder on sys.path (first, so the user's chosen build wins); True if it exists."""
    global active_base
    active_base = base
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
        res = run([exe, "-L"], capture_output=True, timeout=20, env=child_env(), **TEXT, **hidden_window())
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
    return same_python(need_pip=True)


def same_python(need_pip: bool = True) -> str:
    """A Python executable of the running version, with pip when ``need_pip`` (the import probe needs none);
    InputError when there is none."""
    major, minor = sys.version_info[:2]
    names = python_candidates()
    check = "import sys, pip" if need_pip else "import sys"
    for exe in names:
        if not exe or not os.path.isfile(exe) or "python" not in os.path.basename(exe).lower():
            continue
        try:
            out = subprocess.run([exe, "-c", f"{check}; print(sys.version_info[:2])"],
                                 capture_output=True, timeout=60, env=child_env(), **TEXT, **hidden_window())
        except (OSError, subprocess.SubprocessError):
            continue
        if out.returncode == 0 and out.stdout.strip() == str((major, minor)):
            return exe
    if not need_pip:
        raise InputError(f"no Python {major}.{minor} found beside QGIS")
    raise InputError(f"no Python {major}.{minor} with pip found to install ONNX Runtime; {pip_advice()}")


def pip_advice(system: str | None = None) -> str:
    """How to get pip for QGIS's Python on this platform (``system``: platform.system(), for tests)."""
    system = system or platform.system()
    if system == "Windows":
        return ("QGIS's installer ships pip with its Python: repair or reinstall QGIS, or run "
                "python -m ensurepip in the OSGeo4W Shell")
    if system == "Darwin":
        return ("the QGIS.app bundle ships pip with its Python: reinstall QGIS from qgis.org, or run "
                "QGIS.app's own python3 with -m ensurepip")
    return "install your distribution's pip for Python 3 (Debian/Ubuntu: sudo apt install python3-pip)"


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
        return cmd + [f"onnxruntime-gpu{spec_for(package)}", *CUDA_WHEELS]
    return cmd + [f"{package}{spec_for(package)}"]


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


NETWORK_WORDS = ("connection", "proxy", "timed out", "timeout", "name resolution", "getaddrinfo",
                 "network is unreachable", "max retries", "ssl", "certificate")
NO_MATCH_WORDS = ("no matching distribution", "could not find a version")


INSTALL_MB = 300        # room an install needs in the runtime and temporary folders (download, unpacked, staged)
WHEEL_ROOM_FACTOR = 3   # ... or, from a local wheel, this many times its size
DISK_FULL_WORDS = ("no space left on device", "errno 28", "disk quota exceeded")


def _existing(folder: str) -> str:
    """``folder`` or its nearest existing parent (a runtime folder not created yet lies on its parent's disk)."""
    folder = os.path.abspath(folder)
    while not os.path.isdir(folder) and os.path.dirname(folder) != folder:
        folder = os.path.dirname(folder)
    return folder


def install_folders(base: str) -> list[tuple[str, str]]:
    """(what, folder) of the folders an install writes into: the runtime folder and pip's temporary folder."""
    import tempfile

    temp = tempfile.gettempdir()
    why = "TMPDIR" if os.environ.get("TMPDIR") else "the system's"
    return [("the runtime folder", base), (f"the temporary folder ({why})", temp)]


def free_mb(folder: str) -> float | None:
    """MB free for this user on the disk of ``folder`` (or its nearest existing parent), None when unknown."""
    try:
        return shutil.disk_usage(_existing(folder)).free / 2**20
    except OSError:
        return None


def _space_list(folders: list[tuple[str, str]]) -> str:
    said = []
    for what, folder in folders:
        free = free_mb(folder)
        said.append(f"{what} {folder}: {'unknown' if free is None else f'{free:.1f} MB'} free")
    return "; ".join(said)


def check_space(base: str, wheel: str | None = None) -> None:
    """Before pip: InputError when the runtime or the temporary folder has less room than an install needs
    (``INSTALL_MB``, or ``WHEEL_ROOM_FACTOR`` times a local wheel's size)."""
    need = (WHEEL_ROOM_FACTOR * os.path.getsize(wheel) / 2**20) if wheel else INSTALL_MB
    free = {folder: free_mb(folder) for _, folder in install_folders(base)}
    short = [(what, folder) for what, folder in install_folders(base)
             if free[folder] is not None and free[folder] < need]   # unknown: let pip try
    if short:
        raise InputError(f"cannot install ONNX Runtime: it needs about {need:.0f} MB of free space, and "
                         f"{_space_list(short)}. Free some space there (or set TMPDIR to a folder on a disk with "
                         "room) and install again; nothing was downloaded.")


def pip_failure(output: str, package: str, folders: list[tuple[str, str]] | None = None) -> tuple[str, str]:
    """(kind, hint) for a failed pip run from its output: "disk-full", "network", "no-build" or "other".

    ``folders``: (what, folder) pip wrote into, named with their free space when the disk was full.
    pip says "Could not find a version" also when the index was unreachable, so the network is checked first;
    "(from versions: none)" without a network word is either (pip retried silently, or no build at all)."""
    low = output.lower()
    if any(w in low for w in DISK_FULL_WORDS):
        where = f" ({_space_list(folders)})" if folders else ""
        return "disk-full", (f"The disk ran out of space while pip installed {package}{where}. Free some space "
                             "there (or set TMPDIR to a folder on a disk with room) and install again.")
    if any(w in low for w in NETWORK_WORDS):
        return "network", OFFLINE_HINT
    if any(w in low for w in NO_MATCH_WORDS):
        none = ("There is no {} build for Python {}.{} on this platform ({} {}) in the tested range {}; the classical "
                "methods work without it.").format(package, *sys.version_info[:2], platform.system(),
                                                   platform.machine(), spec_for(package))
        if "from versions: none" in low:
            return "no-build", (f"pip found no {package} at all: either the package index is unreachable "
                                f"({OFFLINE_HINT}) or {none[0].lower()}{none[1:]}")
        return "no-build", none
    return "other", "See pip's last lines below."


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


def locked_by_this_session(base: str, os_name: str | None = None, loaded=None) -> str | None:
    """The restart message when a reinstall cannot work, else None: on Windows the DLLs of an onnxruntime this
    session loaded from the private folder cannot be moved, so pip would download everything for nothing."""
    loaded = sys.modules.get("onnxruntime") if loaded is None else loaded
    if (os_name or os.name) != "nt" or loaded is None:
        return None
    where = os.path.dirname(getattr(loaded, "__file__", "") or "")
    folder = private_dir(base)
    if inside(where, folder):
        return (f"restart QGIS first, then install again before running KSDiff: this QGIS session has loaded "
                f"onnxruntime {getattr(loaded, '__version__', '?')} from {folder}, and Windows does not let its "
                "files be replaced while QGIS runs; nothing was downloaded")
    return None


def _run_pip(cmd: list[str], fb: Feedback, base: str, created: bool, staging: str) -> tuple[int, list[str]]:
    """Run pip, streaming its output to ``fb``; (exit code, all output lines). Cancelling removes what it made."""
    lines: list[str] = []
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=child_env(), **TEXT,
                          **hidden_window()) as proc:
        for line in proc.stdout:
            line = line.rstrip()
            lines.append(line)
            fb.info(line)
            fb.progress(min(0.9, len(lines) / 20))
            if fb.is_cancelled():
                proc.kill()
                proc.wait()
                _discard(base, created, staging)
                raise Cancelled("installation cancelled")
    return proc.returncode, lines


def _distributions(folder: str) -> dict[str, str]:
    """The distributions pip installed in ``folder``: normalised name -> version."""
    from importlib import metadata

    return {re.sub(r"[-_.]+", "-", (d.metadata["Name"] or "")).lower(): d.version
            for d in metadata.distributions(path=[folder])}


def already_installed(base: str, package: str) -> str | None:
    """The version of ``package`` in the private folder when installing it again would download the same tested
    build (and it imports), else None. ``make deploy`` and the menu action re-downloaded 80 MB and asked for a
    restart when nothing had changed."""
    folder = private_dir(base)
    if not os.path.isdir(folder):
        return None
    have = _distributions(folder)
    name = "onnxruntime" if package == "onnxruntime" else "onnxruntime-gpu"
    other = "onnxruntime-gpu" if name == "onnxruntime" else "onnxruntime"
    version = have.get(name)
    if version is None or other in have:
        return None
    parts = tuple(int(p) for p in re.findall(r"\d+", version)[:2])
    if len(parts) < 2 or not tested(name, parts):
        return None
    with_cuda = [re.sub(r"[-_.]+", "-", w.split("~=")[0]).lower() for w in CUDA_WHEELS]
    if (package == GPU_WITH_CUDA) != all(w in have for w in with_cuda):
        return None   # the system-CUDA build and the one with the runtime wheels are different installs
    try:
        python = python_for_pip()
    except InputError:
        return None   # the install path says what is missing
    return version if _imports(python, folder)[0] else None


def _imports(python: str, *folders: str, timeout: float = 300) -> tuple[bool, str]:
    """(True, "version providers") when onnxruntime imports with ``python`` and ``folders`` first on its path, else
    (False, stderr ending with a line that says why: a crash is named by its signal, a hang by the timeout).

    A child process, because a damaged native library (a truncated .so) kills the process that loads it (SIGBUS):
    ``runtime.import_onnxruntime`` asks here before QGIS imports it. OSError when ``python`` cannot be started."""
    try:
        check = subprocess.run(
            [python, "-c", "import sys; sys.path[:0] = sys.argv[1:]; import onnxruntime as o; "
             "print(o.__version__, ','.join(o.get_available_providers()))", *folders],
            capture_output=True, timeout=timeout, env=child_env(), **TEXT, **hidden_window(),
        )
    except subprocess.TimeoutExpired:
        return False, f"importing it did not finish within {timeout:.0f} s"
    if check.returncode == 0:
        return True, check.stdout
    if check.returncode == 1:   # a Python exception: its traceback ends with what went wrong
        return False, check.stderr
    return False, f"{check.stderr.rstrip()}\n{crash_text(check.returncode)}".lstrip()


def crash_text(code: int) -> str:
    """How a child process that did not exit with a Python error ended: the signal that killed it, or its code."""
    import signal

    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = "unknown signal"
        return f"importing it kills Python with signal {-code}, {name}"
    return f"importing it ended Python with exit code {code:#x}" if code > 255 else \
        f"importing it ended Python with exit code {code}"


def check_wheel(wheel: str) -> None:
    """InputError unless ``wheel`` is an existing .whl file: ``install`` starts with it, and ksdiff:install_runtime's
    parameter check runs it before anything starts."""
    if not os.path.isfile(wheel) or not wheel.endswith(".whl"):
        raise InputError(f"the wheel {quoted(wheel)} does not exist or is not a .whl file: give a downloaded "
                         "onnxruntime .whl, or none to install from the package index")


def install(base: str, feedback: Feedback | None = None, package: str | None = None, wheel: str | None = None,
            proxy: str | None = None, reinstall: bool = False) -> str:
    """Install ONNX Runtime into ``private_dir(base)``; returns a line saying what was installed.

    ``wheel``: a local onnxruntime wheel (offline install); ``proxy``: passed to pip (``--proxy``).
    A GPU build pip finds no wheel for falls back to the CPU build, with a warning.
    A failed install changes nothing: the old runtime stays, and no folder it created is left behind.
    The tested build already installed (and importing) is kept without downloading, unless ``reinstall``.
    """
    fb = feedback or Feedback()
    package = package or package_for_machine()
    py = "{}.{}".format(*sys.version_info[:2])
    if wheel:
        check_wheel(wheel)
        package = os.path.basename(wheel).split("-")[0].replace("_", "-")
        version = wheel_version(wheel)
        if version is None or not tested(package, version):
            fb.warning(f"{os.path.basename(wheel)} is outside the tested onnxruntime range {spec_for(package)}")
    else:
        reason = no_build_reason(package)
        if reason and package != "onnxruntime" and no_build_reason("onnxruntime") is None:
            fb.warning(f"{reason}; installing the CPU build (onnxruntime) instead")
            package = "onnxruntime"
        elif reason:
            raise InputError(f"cannot install ONNX Runtime: {reason}. The classical methods work without it; "
                             "nothing was downloaded.")
    target = private_dir(base)
    kept = None if wheel or reinstall else already_installed(base, package)
    if kept:
        fb.progress(1.0)
        done = (f"{package} {kept} already installed in {target}: nothing was downloaded; to replace it, install "
                "again with 'Reinstall even if already installed' (REINSTALL) ticked")
        fb.info(verify_here(base))   # ``done`` is the caller's to say, as a fresh install's is (QA133: said twice)
        return done
    # a module imported in this process stays loaded whatever happens to its folder (native code cannot unload)
    loaded_before = sys.modules.get("onnxruntime")
    locked = locked_by_this_session(base)
    if locked:
        raise InputError(locked)
    staging = target + ".partial"
    python = python_for_pip()   # before anything is created: no pip, nothing on disk
    check_space(base, wheel)
    created = _prepare(base, staging)
    while True:
        cmd = pip_command(python, staging, package, wheel, proxy)
        fb.info(f"Installing {package} for Python {py} into {target}")
        fb.info(_masked(cmd))
        code, lines = _run_pip(cmd, fb, base, created, staging)
        if code == 0:
            break
        kind, hint = pip_failure("\n".join(lines), package, install_folders(base))
        if not wheel and kind == "no-build" and package != "onnxruntime":
            fb.warning(f"pip found no {package} build for Python {py} on this platform; installing the CPU build "
                       "(onnxruntime) instead: KSDiff runs on the CPU")
            package = "onnxruntime"
            shutil.rmtree(staging, ignore_errors=True)
            os.makedirs(staging)
            continue
        _discard(base, created, staging)
        if wheel and kind != "disk-full":   # (a full disk is no fault of the wheel)
            hint = f"Is {wheel} an onnxruntime wheel for Python {py} on this system?"
        raise InputError(f"pip could not install {package} (exit {code}). {hint} Last lines of pip:\n"
                         + "\n".join(lines[-15:]))
    ok, said = _imports(python, staging)
    if not ok:
        _discard(base, created, staging)
        raise InputError(f"{package} installed but does not import with this Python:\n{said[-2000:]}")
    stuck = _swap_in(staging, target)
    fb.progress(1.0)
    version, providers = said.split()
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
        if not inside(where, private_dir(base)):   # not str.startswith: C:/…/QGIS3 vs C:\…\QGIS3 on Windows
            return (f"onnxruntime {getattr(loaded, '__version__', '?')} from {where} is already loaded in this "
                    "QGIS session; restart QGIS to use the new one")
    else:   # submodules a failed import of a broken runtime left would shadow the new ones
        for name in [n for n in sys.modules if n.startswith("onnxruntime.")]:
            del sys.modules[name]
    switch_off()   # before the first import of this process (ort_telemetry)
    try:
        ort = importlib.import_module("onnxruntime")
    except Exception as e:   # noqa: BLE001 - any import failure must be reported, not raised
        raise InputError(f"onnxruntime was installed but does not import in QGIS's Python: {e}") from None
    quiet_events(ort)
    # not sys.executable: inside QGIS (and qgis_process) that is the qgis binary, or on Linux a shim on PATH that is
    # no interpreter of QGIS at all (QA: "in this interpreter (/root/.pyenv/shims/python3)")
    return (f"onnxruntime {ort.__version__} imports in QGIS's Python {sys.version_info.major}.{sys.version_info.minor} "
            f"({sys.prefix})")


def preload_cuda(ort) -> None:
    """Load the CUDA/cuDNN libraries of the nvidia-* wheels before a CUDA session (onnxruntime >= 1.21)."""
    fn = getattr(ort, "preload_dlls", None)
    if fn is not None:
        try:
            fn()
        except Exception:   # noqa: BLE001 - a system CUDA may still work; the session reports the outcome
            pass
