"""What Windows and macOS users are shown and compared, checked on Linux: commands in messages quoted for cmd.exe,
Windows paths taken apart with ntpath, the private runtime folder compared as the disk does, pip advice per
platform, and a case-folding disk's two spellings of one file (os.path swapped for ntpath, os.name set to "nt",
os.path.samefile made to fold case)."""
from __future__ import annotations

import ntpath
import os
import shlex
import shutil
import subprocess
import sys
import types

import pytest

from ksdiff_qgis.engine import deps, grid, nodatacmd, placement, shellcmd
from ksdiff_qgis.engine.errors import InputError

WIN_PAN = r"C:\Users\Anna Müller\data\pan 1.tif"


def cmd_split(line: str) -> list[str]:
    """How cmd.exe + the MSVCRT (CommandLineToArgvW) split a command line: only double quotes group, ' is a plain
    character; the operators > < | & outside double quotes are reported as such (a redirection, a pipe)."""
    out, cur, inq, started = [], "", False, False
    for ch in line:
        if ch == '"':
            inq, started = not inq, True
            continue
        if ch in "<>|&" and not inq:
            raise AssertionError(f"cmd.exe operator {ch!r} outside double quotes in {line!r}")
        if ch in " \t" and not inq:
            if started or cur:
                out.append(cur)
            cur, started = "", False
            continue
        cur += ch
    if started or cur:
        out.append(cur)
    return out


def _windows(monkeypatch, *modules) -> None:
    """The ``modules`` see Windows: os.path is ntpath, os.name "nt" (the real os module is left alone)."""
    fake = types.SimpleNamespace(**{k: getattr(os, k) for k in dir(os) if not k.startswith("__")})
    fake.path, fake.sep, fake.name = ntpath, "\\", "nt"
    for module in modules:
        monkeypatch.setattr(module, "os", fake)


def test_windows_arg_uses_double_quotes_only_where_needed():
    assert shellcmd.windows_arg(WIN_PAN) == '"C:\\Users\\Anna Müller\\data\\pan 1.tif"'
    assert shellcmd.windows_arg(r"C:\data\pan.tif") == r"C:\data\pan.tif"
    assert shellcmd.shell_arg(WIN_PAN, "nt") == f'"{WIN_PAN}"'
    for word in (WIN_PAN, r"C:\data\pan.tif", r"C:\a&b\ms.tif", "dask[distributed]>=2024.1", ""):
        assert cmd_split(f"gdalinfo {shellcmd.windows_arg(word)}") == ["gdalinfo", word]
    for word in ("C:\\x y\\", 'a b"c', WIN_PAN):   # with a space: as subprocess writes it (MSVCRT backslash rules)
        assert shellcmd.windows_arg(word) == subprocess.list2cmdline([word])
    # POSIX output unchanged: shlex.quote
    for word in ("/data/pan 1.tif", "/data/pan.tif", "/d/it's.tif"):
        assert shellcmd.shell_arg(word, "posix") == shlex.quote(word)
    assert shellcmd.command(["gdal_edit.py", "-a_nodata", "0", WIN_PAN], "nt") == (
        f'gdal_edit.py -a_nodata 0 "{WIN_PAN}"')


def test_fix_it_commands_on_windows_are_double_quoted_and_beside_the_input(monkeypatch):
    """QA: gdal_translate/gdalwarp advice showed 'C:\\Users\\Anna Müller\\…' (POSIX single quotes: two arguments in
    cmd.exe), and the VRT copy of a relative data\\ms.tif was named data\\data\\ms_nodata.vrt."""
    _windows(monkeypatch, shellcmd, nodatacmd)   # the commands and their paths are made there
    line = nodatacmd.nodata_command(WIN_PAN, 0.0)
    copy = r"C:\Users\Anna Müller\data\pan 1_nodata.vrt"
    assert line == (f'gdal_translate -of VRT -a_nodata 0 "{WIN_PAN}" "{copy}" (GDAL cannot update pan 1.tif), then '
                    "fuse pan 1_nodata.vrt"), line
    assert cmd_split(line.split(" (")[0])[-2:] == [WIN_PAN, copy]
    line = nodatacmd.nodata_command(r"data\ms.tif", 0.0)
    assert line.startswith(r"gdal_translate -of VRT -a_nodata 0 data\ms.tif data\ms_nodata.vrt "), line

    pan = types.SimpleNamespace(path=WIN_PAN, gt=(0, 0.5, 0, 0, 0, -0.5), wkt="")
    ms_path = r"C:\Users\Anna Müller\data\ms 1.tif"
    ms = types.SimpleNamespace(path=ms_path, gt=(0, 0.5, 0, 0, 0, -0.5), wkt="")
    advice = grid.too_close_ratio(1.0, 1.0, pan, ms, (4, "WorldView-2's ratio"))
    native = r"C:\Users\Anna Müller\data\ms 1_native.tif"   # beside the input, not in the current folder
    assert advice.endswith(f'gdalwarp -tr 2 2 -r average "{ms_path}" "{native}"'), advice
    assert cmd_split(advice.split("gdalwarp ", 1)[1])[-2:] == [ms_path, native]
    info = types.SimpleNamespace(path=WIN_PAN, rpc=False, gt=(0, 1, 0, 0, 0, -1))
    warp = placement.orthorectify_commands({"FUSED": info}, role="FUSED")
    assert warp.endswith(f'-dstnodata 0 "{WIN_PAN}" "C:\\Users\\Anna Müller\\data\\pan 1_ortho.tif"'), warp


def test_fix_it_commands_on_posix_are_unchanged_and_run(data_dir, tmp_path):
    """Linux/macOS: shlex.quote as before; the gdal_edit.py line runs as shown on a real GeoTIFF with a space."""
    from osgeo import gdal

    ms = str(tmp_path / "my ms.tif")
    shutil.copy(data_dir / "wv2_ms.tif", ms)
    line = nodatacmd.nodata_command(ms, 0.0)
    assert line == f"gdal_edit.py -a_nodata 0 {shlex.quote(ms)}"
    tool = shutil.which("gdal_edit.py") or shutil.which("gdal_edit")
    if tool:
        subprocess.run([tool, *shlex.split(line)[1:]], check=True, capture_output=True)
        assert gdal.Open(ms).GetRasterBand(1).GetNoDataValue() == 0


def test_batch_dask_hint_survives_cmd_exe(monkeypatch, capsys, tmp_path):
    """QA: 'dask[distributed]>=2024.1' in single quotes: cmd.exe sent pip's output to a file named 2024.1'."""
    from ksdiff_qgis import batch

    monkeypatch.setitem(sys.modules, "distributed", None)   # import distributed: ImportError
    assert batch.main([str(tmp_path / "scenes.csv")]) == batch.EXIT_USAGE
    hint = capsys.readouterr().err.split("needs Dask: ", 1)[1].strip()
    assert cmd_split(hint) == ["python", "-m", "pip", "install", "dask[distributed]>=2024.1"]
    assert shlex.split(hint)[-1] == "dask[distributed]>=2024.1"   # and in a POSIX shell


def _win_importlib_join(*parts: str) -> str:
    """CPython 3.11+ importlib's _path_join on Windows: the path a module's __file__ gets from a sys.path entry
    (backslashes, whatever the entry had)."""
    return "\\".join(p.replace("/", "\\").rstrip("\\") for p in parts)


def test_verify_here_compares_the_private_folder_as_windows_does(monkeypatch):
    """QA: on Windows the runtime just installed into C:/Users/…/python\\ksdiff_runtime\\py312 was reported as
    "already loaded in this QGIS session; restart QGIS" (str.startswith against __file__'s backslashes)."""
    _windows(monkeypatch, deps)
    settings = "C:/Users/Anna Müller/AppData/Roaming/QGIS/QGIS3/profiles/default/"   # qgisSettingsDirPath()
    base = ntpath.join(settings, "python", "ksdiff_runtime")                          # mixed separators
    folder = deps.private_dir(base)
    loaded = types.ModuleType("onnxruntime")
    loaded.__file__ = _win_importlib_join(folder, "onnxruntime", "__init__.py")
    loaded.__version__ = "1.32.0"
    monkeypatch.setitem(sys.modules, "onnxruntime", loaded)
    assert deps.verify_here(base).startswith("onnxruntime 1.32.0 imports in QGIS's Python ")
    assert deps.locked_by_this_session(base, "nt") is not None
    elsewhere = types.ModuleType("onnxruntime")
    elsewhere.__file__, elsewhere.__version__ = r"C:\OSGeo4W\apps\Python312\Lib\onnxruntime\__init__.py", "1.31"
    monkeypatch.setitem(sys.modules, "onnxruntime", elsewhere)
    assert "already loaded in this QGIS session" in deps.verify_here(base)


def test_runtime_base_has_one_kind_of_separator(monkeypatch, qgis_app):
    from ksdiff_qgis.algorithms import install_runtime

    _windows(monkeypatch, install_runtime)
    profile = "C:/Users/Anna Müller/AppData/Roaming/QGIS/QGIS3/profiles/default/"
    monkeypatch.setattr(install_runtime, "QgsApplication",
                        types.SimpleNamespace(qgisSettingsDirPath=lambda: profile))
    assert install_runtime.runtime_base() == (
        r"C:\Users\Anna Müller\AppData\Roaming\QGIS\QGIS3\profiles\default\python\ksdiff_runtime")


@pytest.mark.parametrize("system", ["Windows", "Darwin", "Linux"])
def test_no_pip_advice_fits_the_platform(monkeypatch, system):
    """QA: Windows and macOS users were told to "install python3-pip" (a Debian package)."""
    monkeypatch.setattr(deps, "python_candidates", lambda: [])
    monkeypatch.setattr(deps.platform, "system", lambda: system)
    with pytest.raises(InputError) as err:
        deps.python_for_pip()
    said = str(err.value)
    assert ("python3-pip" in said) == (system == "Linux"), said
    if system == "Windows":
        assert "python -m ensurepip in the OSGeo4W Shell" in said and "reinstall QGIS" in said
    if system == "Darwin":
        assert "reinstall QGIS" in said


def _case_folding_samefile(a, b) -> bool:
    """os.path.samefile on a case-insensitive disk (macOS APFS default): a name finds the file of any case."""
    def find(p):
        p = os.fsdecode(p)
        folder, name = os.path.split(os.path.abspath(p))
        for entry in os.listdir(folder):
            if entry.lower() == name.lower():
                return os.stat(os.path.join(folder, entry))
        raise FileNotFoundError(p)
    sa, sb = find(a), find(b)
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def test_style_namesakes_and_owner_on_a_case_folding_disk(monkeypatch, data_dir, tmp_path):
    """macOS folds case but os.path.normcase does not: O.tiff beside o.tif opens with o.qml there (a namesake), and
    a style written for o.TIF belongs to the output o.tif, the same file. On a case-sensitive disk neither."""
    from ksdiff_qgis.engine.raster_io import stylemark

    out = str(tmp_path / "o.tif")
    shutil.copy(data_dir / "wv2_ms.tif", out)
    shutil.copy(data_dir / "wv2_ms.tif", tmp_path / "O.tiff")
    qml = tmp_path / "o.qml"
    qml.write_text('<qgis><customproperties><Option type="Map">'
                   f'<Option name="{stylemark.STYLE_MARK}" type="QString" value="{stylemark.UNSEALED}"/>'
                   f'<Option name="{stylemark.STYLE_FOR}" type="QString" value="o.TIF"/>'
                   "</Option></customproperties></qgis>")
    assert stylemark.seal_style(str(qml))
    assert stylemark.namesakes(out) == [] and not stylemark.belongs_to(str(qml), out)   # Linux
    monkeypatch.setattr(os.path, "samefile", _case_folding_samefile)
    assert stylemark.namesakes(out) == ["O.tiff"]
    assert stylemark.belongs_to(str(qml), out)
