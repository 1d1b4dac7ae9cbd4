"""Install ONNX Runtime into a plugin-private folder for the running Python, never touching QGIS's numpy.

``pip install --target <folder> --no-deps onnxruntime[-gpu] flatbuffers protobuf`` into
``<base>/py<major><minor>``; ``activate`` puts that folder on ``sys.path``. The GPU build is chosen
only when an NVIDIA GPU answers ``nvidia-smi -L``.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from typing import Callable

from .errors import Cancelled, InputError
from .feedback import Feedback

EXTRA_PACKAGES = ("flatbuffers", "protobuf")


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


def python_for_pip() -> str:
    """A Python executable of the running version (inside QGIS, sys.executable may be QGIS itself)."""
    major, minor = sys.version_info[:2]
    names = [sys.executable, os.path.join(sys.exec_prefix, "bin", f"python{major}.{minor}"),
             os.path.join(sys.exec_prefix, "python.exe"), os.path.join(sys.exec_prefix, "python3.exe"),
             shutil.which(f"python{major}.{minor}") or "", shutil.which("python3") or ""]
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


def install(base: str, feedback: Feedback | None = None, package: str | None = None) -> str:
    """Install ONNX Runtime into ``private_dir(base)``; returns a line saying what was installed."""
    fb = feedback or Feedback()
    package = package or package_for_machine()
    target = private_dir(base)
    staging = target + ".partial"
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    python = python_for_pip()
    cmd = [python, "-m", "pip", "install", "--no-deps", "--upgrade", "--disable-pip-version-check",
           "--no-input", "--target", staging, package, *EXTRA_PACKAGES]
    fb.info(f"Installing {package} for Python {sys.version_info.major}.{sys.version_info.minor} into {target}")
    fb.info(" ".join(cmd))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    tail: list[str] = []
    steps = 0
    for line in proc.stdout:
        line = line.rstrip()
        tail = (tail + [line])[-15:]
        fb.info(line)
        steps += 1
        fb.progress(min(0.9, steps / 20))
        if fb.is_cancelled():
            proc.kill()
            shutil.rmtree(staging, ignore_errors=True)
            raise Cancelled("installation cancelled")
    if proc.wait() != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise InputError(
            f"pip could not install {package} (exit {proc.returncode}). Is the Python package index reachable "
            "(proxy settings: PIP_PROXY / HTTPS_PROXY)? Last lines:\n" + "\n".join(tail)
        )
    check = subprocess.run(
        [python, "-c", "import sys; sys.path.insert(0, sys.argv[1]); import onnxruntime as o; "
         "print(o.__version__, ','.join(o.get_available_providers()))", staging],
        capture_output=True, text=True, timeout=300,
    )
    if check.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise InputError(f"{package} installed but does not import with this Python:\n{check.stderr[-2000:]}")
    shutil.rmtree(target, ignore_errors=True)
    os.replace(staging, target)
    fb.progress(1.0)
    version, providers = check.stdout.split()
    return f"{package} {version} installed in {target} (providers: {providers})"
