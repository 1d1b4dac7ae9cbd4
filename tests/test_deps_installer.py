"""The ONNX Runtime installer: pinned range, nothing extra, proxy, offline wheel, macOS interpreter, import check."""
from __future__ import annotations

import os
import sys
import zipfile

import pytest

from ksdiff_qgis.engine import deps
from ksdiff_qgis.engine.errors import InputError
from ksdiff_qgis.engine.feedback import Feedback


def test_pip_command_is_pinned_and_installs_nothing_else():
    cmd = deps.pip_command("py", "/t", "onnxruntime")
    assert cmd[-1] == "onnxruntime" + deps.ORT_SPEC and "--no-deps" in cmd
    assert not any("protobuf" in c or "flatbuffers" in c for c in cmd)
    gpu = deps.pip_command("py", "/t", deps.GPU_WITH_CUDA)
    assert "onnxruntime-gpu" + deps.ORT_SPEC in gpu and "nvidia-cudnn-cu12" in gpu and "--no-deps" in gpu
    assert not any("numpy" in c for c in gpu)
    offline = deps.pip_command("py", "/t", "onnxruntime", wheel="/w/onnxruntime-1.32.0-cp311-none-any.whl")
    assert offline[-2:] == ["--no-index", "/w/onnxruntime-1.32.0-cp311-none-any.whl"]


def test_proxy_from_qgis_settings_values():
    assert deps.proxy_url(False, "HttpProxy", "proxy.lan", 3128) is None
    assert deps.proxy_url(True, "DefaultProxy", "proxy.lan", 3128) is None      # system proxy: pip's env already
    assert deps.proxy_url(True, "HttpProxy", "proxy.lan", 3128) == "http://proxy.lan:3128"
    url = deps.proxy_url(True, "HttpCachingProxy", "proxy.lan", "8080", "me", "p@ss:word")
    assert url == "http://me:p%40ss%3Aword@proxy.lan:8080"
    assert deps.proxy_url(True, "Socks5Proxy", "s", 1080).startswith("socks5://")
    cmd = deps.pip_command("py", "/t", "onnxruntime", proxy=url)
    assert cmd[cmd.index("--proxy") + 1] == url
    assert "p%40ss" not in deps._masked(cmd) and "me:***@proxy.lan" in deps._masked(cmd)


def test_macos_bundle_interpreter_is_a_candidate(monkeypatch, tmp_path):
    macos = tmp_path / "QGIS.app" / "Contents" / "MacOS"
    macos.mkdir(parents=True)
    (macos / "QGIS").write_text("")
    os.symlink(sys.executable, macos / "python")      # the bundle's interpreter beside the QGIS binary
    monkeypatch.setattr(sys, "executable", str(macos / "QGIS"))
    assert deps.python_candidates()[1] == str(macos / "python")
    assert deps.python_for_pip() == str(macos / "python")


def _stub_wheel(folder, version="1.32.0"):
    """A minimal onnxruntime wheel (no network): enough for pip --no-index and the import check."""
    path = folder / f"onnxruntime-{version}-py3-none-any.whl"
    dist = f"onnxruntime-{version}.dist-info"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("onnxruntime/__init__.py",
                    f"__version__ = '{version}'\ndef get_available_providers():\n    return ['CPUExecutionProvider']\n")
        zf.writestr(f"{dist}/METADATA", f"Metadata-Version: 2.1\nName: onnxruntime\nVersion: {version}\n")
        zf.writestr(f"{dist}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr(f"{dist}/RECORD", "")
    return path


class Log(Feedback):
    def __init__(self):
        self.lines = []

    def info(self, m):
        self.lines.append(m)

    def warning(self, m):
        self.lines.append("WARNING " + m)


def test_offline_install_from_a_local_wheel(tmp_path, monkeypatch):
    import onnxruntime  # noqa: F401  (loaded first, so monkeypatch puts the real one back afterwards)

    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delitem(sys.modules, "onnxruntime")   # so the check imports the private copy
    log = Log()
    result = deps.install(str(tmp_path / "rt"), log, wheel=str(_stub_wheel(tmp_path, "1.31.0")))
    assert "onnxruntime 1.31.0 installed in" in result
    assert any("--no-index" in line for line in log.lines)
    assert any(line.startswith("WARNING") and "tested" in line for line in log.lines)   # 1.31 is outside the pin
    assert any("imports in this interpreter" in line for line in log.lines)
    assert os.path.isfile(os.path.join(deps.private_dir(str(tmp_path / "rt")), "onnxruntime", "__init__.py"))
    with pytest.raises(InputError, match="does not exist"):
        deps.install(str(tmp_path / "rt"), log, wheel=str(tmp_path / "missing.whl"))


def test_install_algorithm_accepts_a_wheel_and_labels(qgis_app):
    from qgis.core import QgsApplication

    alg = QgsApplication.processingRegistry().algorithmById("ksdiff:install_runtime")
    assert alg.parameterDefinition("WHEEL") is not None
    package = alg.parameterDefinition("PACKAGE")
    assert package.key_of("auto") == "auto" and package.key_of(3) == deps.GPU_WITH_CUDA
    assert "<" not in alg.shortHelpString()
