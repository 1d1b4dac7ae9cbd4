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
    assert "onnxruntime-gpu>=1.31,<1.32" in gpu and "nvidia-cudnn-cu13~=9.0" in gpu and "--no-deps" in gpu
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
    # QA: "imports in this interpreter (/root/.pyenv/shims/python3)", sys.executable, no interpreter inside QGIS
    py = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert f"onnxruntime 1.31.0 imports in QGIS's Python {py} ({sys.prefix})" in log.lines, log.lines
    assert not any(sys.executable in line for line in log.lines if "imports in" in line)
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
    assert not any("imports in QGIS's Python" in line for line in log.lines)
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


def test_versions_resolve_on_pypi_and_cuda_wheels_match_the_gpu_extras():
    """Portability review: onnxruntime-gpu was pinned to 1.32, which PyPI does not have (newest 1.31.1): the install
    failed on every NVIDIA machine. The CUDA wheels are what onnxruntime-gpu 1.31.1[cuda,cudnn] requires (PyPI)."""
    assert deps.pip_command("py", "/t", "onnxruntime")[-1] == "onnxruntime>=1.32,<1.33"
    assert deps.pip_command("py", "/t", "onnxruntime-gpu")[-1] == "onnxruntime-gpu>=1.31,<1.32"
    extras = {"nvidia-cuda-nvrtc~=13.0", "nvidia-cuda-runtime~=13.0", "nvidia-cufft~=12.0", "nvidia-curand~=10.0",
              "nvidia-cudnn-cu13~=9.0"}
    assert extras <= set(deps.CUDA_WHEELS)
    assert {"nvidia-cublas~=13.0", "nvidia-nvjitlink~=13.0"} <= set(deps.CUDA_WHEELS)   # their deps (--no-deps)


def _fake_pip(monkeypatch, outputs):
    """pip stubbed: each call pops (exit code, output lines); returns the list of commands run."""
    ran = []

    def run(cmd, fb, base, created, staging):
        ran.append(cmd)
        code, lines = outputs.pop(0)
        if code == 0:
            os.makedirs(os.path.join(staging, "onnxruntime"), exist_ok=True)
            with open(os.path.join(staging, "onnxruntime", "__init__.py"), "w") as f:
                f.write("__version__ = '1.32.0'\ndef get_available_providers():\n    return ['CPUExecutionProvider']\n")
        return code, lines

    monkeypatch.setattr(deps, "_run_pip", run)
    return ran


NO_MATCH = ["ERROR: Could not find a version that satisfies the requirement onnxruntime-gpu<1.33,>=1.32 "
            "(from versions: 1.31.0, 1.31.1)", "ERROR: No matching distribution found for onnxruntime-gpu<1.33,>=1.32"]


def test_gpu_build_pip_cannot_find_falls_back_to_cpu_with_a_warning(tmp_path, monkeypatch):
    _fresh(monkeypatch)
    ran = _fake_pip(monkeypatch, [(1, NO_MATCH), (0, ["Successfully installed onnxruntime-1.32.0"])])
    log = Log()
    result = deps.install(str(tmp_path / "rt"), log, package="onnxruntime-gpu")
    assert ran[0][-1].startswith("onnxruntime-gpu") and ran[1][-1] == "onnxruntime>=1.32,<1.33"
    assert result.startswith("onnxruntime 1.32.0 installed")
    assert any(m.startswith("WARNING pip found no onnxruntime-gpu build") and "CPU build" in m for m in log.lines)


def test_pip_no_matching_distribution_vs_connection_error(tmp_path, monkeypatch):
    """No wheel for this Python/platform was blamed on the network (OFFLINE_HINT)."""
    _fake_pip(monkeypatch, [(1, NO_MATCH)])
    with pytest.raises(InputError) as err:
        deps.install(str(tmp_path / "rt"), Log(), package="onnxruntime")
    assert "no onnxruntime build for Python" in str(err.value) and "proxy" not in str(err.value)
    refused = ["WARNING: Retrying (Retry(total=0...)) after connection broken by 'NewConnectionError(...: "
               "[Errno 111] Connection refused')'", *NO_MATCH]
    _fake_pip(monkeypatch, [(1, refused)])
    with pytest.raises(InputError, match="Options > Network"):
        deps.install(str(tmp_path / "rt"), Log(), package="onnxruntime")
    assert deps.pip_failure("ERROR: Read timed out.", "onnxruntime")[0] == "network"
    assert deps.pip_failure("ERROR: Could not find a version that satisfies", "onnxruntime")[0] == "no-build"


def test_python_and_platform_without_a_build_are_said_before_pip(tmp_path, monkeypatch):
    """QGIS 3.22-3.34 on Windows run Python 3.9; Intel Macs have no wheel since 1.23.2: pip ran and failed."""
    assert deps.no_build_reason("onnxruntime", (3, 12), "Linux", "x86_64") is None
    assert deps.no_build_reason("onnxruntime", (3, 11), "Darwin", "arm64", "14.2") is None
    assert deps.no_build_reason("onnxruntime", (3, 11), "Windows", "ARM64") is None
    assert "QGIS whose Python is 3.11 or newer" in deps.no_build_reason("onnxruntime", (3, 9), "Windows", "AMD64")
    assert "Apple Silicon" in deps.no_build_reason("onnxruntime", (3, 12), "Darwin", "x86_64", "13.6")
    assert "macOS 14" in deps.no_build_reason("onnxruntime", (3, 12), "Darwin", "arm64", "13.6")
    assert deps.no_build_reason("onnxruntime-gpu", (3, 12), "Windows", "ARM64")
    ran = _fake_pip(monkeypatch, [])
    class Version(tuple):   # sys.version_info of QGIS 3.22-3.34 on Windows
        major = property(lambda self: self[0])
        minor = property(lambda self: self[1])

    monkeypatch.setattr(sys, "version_info", Version((3, 9, 13, "final", 0)))
    monkeypatch.setattr(deps, "python_for_pip", lambda: "py")
    with pytest.raises(InputError, match=r"Python 3\.9.*3\.11 or newer.*classical methods work.*nothing was"):
        deps.install(str(tmp_path / "rt"), Log(), package="onnxruntime")
    monkeypatch.undo()
    monkeypatch.setattr(deps.platform, "system", lambda: "Darwin")
    monkeypatch.setattr(deps.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(deps, "python_for_pip", lambda: "py")
    ran = _fake_pip(monkeypatch, [])
    with pytest.raises(InputError, match="Intel Macs"):
        deps.install(str(tmp_path / "rt"), Log(), package="onnxruntime")
    assert not ran and not os.path.exists(tmp_path / "rt")


def test_windows_reinstall_over_a_loaded_private_runtime_asks_for_restart_before_pip(tmp_path, monkeypatch):
    """Windows: pip downloaded everything, then the rename failed on the loaded DLLs."""
    base = str(tmp_path / "rt")

    class Loaded:
        __version__ = "1.32.0"
        __file__ = os.path.join(deps.private_dir(base), "onnxruntime", "__init__.py")

    msg = deps.locked_by_this_session(base, "nt", Loaded)
    assert "restart QGIS first" in msg and "nothing was downloaded" in msg
    assert deps.locked_by_this_session(base, "posix", Loaded) is None
    Loaded.__file__ = os.path.join(str(tmp_path), "site-packages", "onnxruntime", "__init__.py")
    assert deps.locked_by_this_session(base, "nt", Loaded) is None   # QGIS's own copy: the private one is not loaded


def test_subprocesses_hide_the_console_window_and_decode_utf8():
    """Windows: pip/probes opened console windows from qgis-bin.exe, and pip's output was decoded with the code page."""
    assert deps.hidden_window("nt") == {"creationflags": 0x08000000}   # CREATE_NO_WINDOW
    assert deps.hidden_window("posix") == {}
    assert deps.child_env()["PYTHONIOENCODING"] == "utf-8" and deps.TEXT == {"encoding": "utf-8", "errors": "replace"}


def test_the_tested_build_already_installed_is_kept_without_downloading(tmp_path, monkeypatch):
    """QA: `make deploy` and the menu action re-downloaded the same 80 MB build and asked for a restart."""
    _fresh(monkeypatch)
    base = str(tmp_path / "rt")
    deps.install(base, Log(), wheel=str(_stub_wheel(tmp_path, "1.32.0")))   # the tested line, as pip would fetch
    ran = _fake_pip(monkeypatch, [(0, ["Successfully installed onnxruntime-1.32.0"])] * 3)
    log = Log()
    result = deps.install(base, log, package="onnxruntime")
    assert ran == [] and "onnxruntime 1.32.0 already installed in" in result and "nothing was downloaded" in result
    assert not any("restart" in line for line in log.lines), log.lines
    # the algorithm logs the result it returns: the log said it twice (QA133)
    assert not any("already installed" in line for line in log.lines), log.lines
    assert deps.install(base, Log(), package="onnxruntime", reinstall=True).startswith("onnxruntime 1.32.0 installed")
    assert len(ran) == 1
    deps.install(base, Log(), package="onnxruntime-gpu")   # another build is another install
    assert ran[-1][-1].startswith("onnxruntime-gpu") and len(ran) == 2


def test_an_untested_or_broken_private_build_is_installed_again(tmp_path, monkeypatch):
    _fresh(monkeypatch)
    base = str(tmp_path / "rt")
    deps.install(base, Log(), wheel=str(_stub_wheel(tmp_path, "1.30.0")))
    assert deps.already_installed(base, "onnxruntime") is None        # outside the tested line
    (tmp_path / "new").mkdir()
    deps.install(base, Log(), wheel=str(_stub_wheel(tmp_path / "new", "1.32.0")))
    assert deps.already_installed(base, "onnxruntime") == "1.32.0"
    with open(os.path.join(deps.private_dir(base), "onnxruntime", "__init__.py"), "w") as f:
        f.write("raise ImportError('damaged')\n")
    assert deps.already_installed(base, "onnxruntime") is None        # does not import: reinstall
    assert deps.already_installed(base, deps.GPU_WITH_CUDA) is None


PIP_DISK_FULL = ["Processing /wheels/onnxruntime-1.32.0-cp311-cp311-manylinux_2_28_x86_64.whl",
                 "Installing collected packages: onnxruntime",
                 "ERROR: Could not install packages due to an OSError: [Errno 28] No space left on device"]


def _disk(free_by_folder: dict[str, float]):
    """shutil.disk_usage with the free MB given per folder (others: plenty)."""
    import collections

    usage = collections.namedtuple("usage", "total used free")

    def disk_usage(path):
        mb = next((v for k, v in free_by_folder.items() if os.path.abspath(path).startswith(k)), 100_000)
        return usage(200_000 * 2**20, 0, int(mb * 2**20))
    return disk_usage


def test_a_full_disk_during_pip_is_said_with_the_folders_and_their_free_space(tmp_path, monkeypatch):
    """QA: TMPDIR on a full disk gave "pip could not install onnxruntime (exit 1). Is …whl an onnxruntime wheel for
    Python 3.11 on this system?": the wheel was blamed. Now the disk is, with each folder's free space."""
    import tempfile

    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    monkeypatch.setattr(tempfile, "tempdir", None)   # gettempdir() reads TMPDIR again
    _fake_pip(monkeypatch, [(1, PIP_DISK_FULL)])
    wheel = _stub_wheel(tmp_path, "1.32.0")
    monkeypatch.setattr(deps.shutil, "disk_usage", _disk({str(temp): 1.5}))
    monkeypatch.setattr(deps, "WHEEL_ROOM_FACTOR", 0)   # the pre-check passes: pip meets the full disk
    base = tmp_path / "rt"
    with pytest.raises(InputError) as err:
        deps.install(str(base), Log(), wheel=str(wheel))
    said = str(err.value)
    assert "an onnxruntime wheel for Python" not in said, said
    assert (f"The disk ran out of space while pip installed onnxruntime (the runtime folder {base}: 100000.0 MB "
            f"free; the temporary folder (TMPDIR) {temp}: 1.5 MB free). Free some space there (or set TMPDIR") in said
    assert deps.pip_failure("OSError: [Errno 28] No space left on device", "onnxruntime")[0] == "disk-full"
    assert not base.exists()


def test_too_little_space_is_refused_before_pip(tmp_path, monkeypatch):
    """Before anything is downloaded: about 300 MB (or 3× a local wheel) in the runtime and the temporary folder."""
    import tempfile

    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    monkeypatch.setattr(tempfile, "tempdir", None)
    ran = _fake_pip(monkeypatch, [(0, [])])
    monkeypatch.setattr(deps, "python_for_pip", lambda: "py")
    monkeypatch.setattr(deps.shutil, "disk_usage", _disk({str(temp): 120}))
    base = tmp_path / "profile" / "rt"   # not created yet: its parent's disk counts
    with pytest.raises(InputError) as err:
        deps.install(str(base), Log(), package="onnxruntime")
    assert str(err.value) == (
        f"cannot install ONNX Runtime: it needs about 300 MB of free space, and the temporary folder (TMPDIR) {temp}: "
        "120.0 MB free. Free some space there (or set TMPDIR to a folder on a disk with room) and install again; "
        "nothing was downloaded.")
    assert ran == [] and not base.exists()
    wheel = _stub_wheel(tmp_path, "1.32.0")   # a few KB: 3× fits in 120 MB
    monkeypatch.setattr(deps.shutil, "disk_usage", _disk({str(tmp_path): 0.001}))
    with pytest.raises(InputError, match=r"the runtime folder .*rt: 0\.0 MB free; the temporary folder"):
        deps.install(str(base), Log(), wheel=str(wheel))
    assert ran == []
