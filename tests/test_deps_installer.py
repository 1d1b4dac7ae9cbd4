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


def _fresh(monkeypatch):
    """sys.path and sys.modules restored after the test; no onnxruntime loaded in this process."""
    import onnxruntime  # noqa: F401  (loaded first, so monkeypatch puts the real one back afterwards)

    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delitem(sys.modules, "onnxruntime")


def _private_version(base) -> str:
    with open(os.path.join(deps.private_dir(str(base)), "onnxruntime", "__init__.py")) as f:
        return f.readline().split("'")[1]


def test_reinstall_in_a_session_that_loaded_onnxruntime_says_restart(tmp_path, monkeypatch):
    """QA D1: switching builds in a running QGIS said '1.32.0 installed' and '1.30.0 imports in this interpreter'
    while KSDiff kept using 1.30.0, with no word about restarting."""
    _fresh(monkeypatch)
    base = str(tmp_path / "rt")
    first = deps.install(base, Log(), wheel=str(_stub_wheel(tmp_path, "1.30.0")))
    assert "restart" not in first   # a first install takes effect at once
    assert sys.modules["onnxruntime"].__version__ == "1.30.0"   # the check imported it in this process
    log = Log()
    (tmp_path / "new").mkdir()
    result = deps.install(base, log, wheel=str(_stub_wheel(tmp_path / "new", "1.31.0")))
    assert "onnxruntime 1.31.0 installed" in result and "restart QGIS" in result
    assert "keeps onnxruntime 1.30.0" in result
    assert any(line.startswith("WARNING restart QGIS") for line in log.lines), log.lines
    assert not any("imports in this interpreter" in line for line in log.lines)
    assert _private_version(base) == "1.31.0"


def test_an_old_runtime_that_cannot_be_moved_is_left_intact(tmp_path, monkeypatch):
    """QA D2: rmtree(ignore_errors) then os.replace gave 'OSError: [Errno 39] Directory not empty', a half-deleted
    old runtime and a 79 MB py311.partial. Now the old folder is renamed aside first; if that is refused (another
    owner; Windows DLLs held by QGIS), a plain message and nothing changed."""
    _fresh(monkeypatch)
    base = str(tmp_path / "rt")
    deps.install(base, Log(), wheel=str(_stub_wheel(tmp_path, "1.30.0")))
    monkeypatch.delitem(sys.modules, "onnxruntime")
    target = deps.private_dir(base)
    real_replace = os.replace

    def locked(src, dst):
        if os.path.abspath(src) == os.path.abspath(target):
            raise PermissionError(13, "Permission denied")
        return real_replace(src, dst)

    monkeypatch.setattr(deps.os, "replace", locked)
    (tmp_path / "new").mkdir()
    with pytest.raises(InputError, match="cannot be replaced.*Restart QGIS.*left as it was"):
        deps.install(base, Log(), wheel=str(_stub_wheel(tmp_path / "new", "1.31.0")))
    assert _private_version(base) == "1.30.0"
    assert sorted(os.listdir(base)) == [os.path.basename(target)]   # no .partial beside it


def test_leftover_old_runtimes_are_removed_by_the_next_install(tmp_path, monkeypatch):
    """QA D2: an old runtime a locked QGIS kept (moved aside as .old-<pid>) is removed by the next install."""
    _fresh(monkeypatch)
    base = str(tmp_path / "rt")
    deps.install(base, Log(), wheel=str(_stub_wheel(tmp_path, "1.30.0")))
    monkeypatch.delitem(sys.modules, "onnxruntime")
    stale = deps.private_dir(base) + ".old-12345"
    os.makedirs(os.path.join(stale, "onnxruntime"))
    (tmp_path / "new").mkdir()
    deps.install(base, Log(), wheel=str(_stub_wheel(tmp_path / "new", "1.31.0")))
    assert sorted(os.listdir(base)) == [os.path.basename(deps.private_dir(base))]
    assert _private_version(base) == "1.31.0"


def test_unwritable_runtime_folder_is_a_clear_message_before_pip(tmp_path, monkeypatch):
    """QA D3: a read-only profile python folder gave a raw PermissionError traceback at os.makedirs(staging)."""
    ran = []
    monkeypatch.setattr(deps, "pip_command", lambda *a, **k: ran.append(a))
    blocker = tmp_path / "python"
    blocker.write_text("")   # a file where the folder should be: refused even to root (tests run as root)
    base = str(blocker / "ksdiff_runtime")
    with pytest.raises(InputError, match=r"the folder .*ksdiff_runtime must be writable.*nothing was downloaded"):
        deps.install(base, Log(), wheel=str(_stub_wheel(tmp_path, "1.32.0")))
    assert not ran   # pip never started
    if os.geteuid() != 0:   # a read-only folder (root may write anywhere)
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o555)
        with pytest.raises(InputError, match="must be writable"):
            deps.install(str(ro / "ksdiff_runtime"), Log(), wheel=str(_stub_wheel(tmp_path, "1.32.0")))


def test_no_pip_creates_nothing(tmp_path, monkeypatch):
    """QA D9: without pip an empty ksdiff_runtime/py311.partial was left behind."""
    def no_pip():
        raise InputError("no Python 3.11 with pip found")

    monkeypatch.setattr(deps, "python_for_pip", no_pip)
    base = tmp_path / "profile" / "python" / "ksdiff_runtime"
    base.parent.mkdir(parents=True)
    with pytest.raises(InputError, match="pip"):
        deps.install(str(base), Log(), package="onnxruntime")
    assert os.listdir(base.parent) == []


def test_offline_failure_points_to_qgis_proxy_and_the_local_wheel_and_leaves_nothing(tmp_path, monkeypatch):
    """QA D7 + D9: the offline failure named PIP_PROXY / HTTPS_PROXY (not QGIS's proxy settings) and not the
    'Local onnxruntime wheel' option, and left an empty ksdiff_runtime/ in a fresh profile."""
    for key, value in {"PIP_CONFIG_FILE": os.devnull, "PIP_INDEX_URL": "http://127.0.0.1:9/simple", "PIP_RETRIES": "0",
                       "PIP_DEFAULT_TIMEOUT": "5", "PIP_FIND_LINKS": "", "PIP_EXTRA_INDEX_URL": ""}.items():
        monkeypatch.setenv(key, value)
    base = tmp_path / "profile" / "python" / "ksdiff_runtime"
    base.parent.mkdir(parents=True)
    with pytest.raises(InputError) as err:
        deps.install(str(base), Log(), package="onnxruntime")
    msg = str(err.value)
    assert "Options > Network" in msg and "Local onnxruntime wheel" in msg and "PIP_PROXY" not in msg
    assert os.listdir(base.parent) == []


def test_install_closes_the_pip_output(tmp_path, monkeypatch):
    """QA D8: every install printed 'ResourceWarning: unclosed file <_io.TextIOWrapper name=13…>'."""
    import gc
    import warnings

    _fresh(monkeypatch)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        deps.install(str(tmp_path / "rt"), Log(), wheel=str(_stub_wheel(tmp_path, "1.32.0")))
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)], [str(w.message) for w in caught]


def test_an_old_runtime_that_cannot_be_deleted_is_said(tmp_path, monkeypatch):
    """QA (after D2's fix): the old runtime moved aside but not deletable (another user's files) stayed as a 79 MB
    .old-<pid> folder beside the new one while the install said plain success. It is named, with what to do."""
    _fresh(monkeypatch)
    base = str(tmp_path / "rt")
    deps.install(base, Log(), wheel=str(_stub_wheel(tmp_path, "1.30.0")))
    monkeypatch.delitem(sys.modules, "onnxruntime")
    monkeypatch.setattr(deps.shutil, "rmtree", lambda path, ignore_errors=False: None)   # nothing can be deleted
    (tmp_path / "new").mkdir()
    log = Log()
    result = deps.install(base, log, wheel=str(_stub_wheel(tmp_path / "new", "1.31.0")))
    assert _private_version(base) == "1.31.0"
    assert "could not be deleted" in result and ".old-" in result and "delete that folder by hand" in result
    assert any(line.startswith("WARNING the previous runtime") for line in log.lines), log.lines
