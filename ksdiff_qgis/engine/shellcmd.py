"""Paths in the commands messages give the user (gdal_edit.py, gdalwarp, …), quoted for the running platform's shell.

``shlex.quote`` writes POSIX single quotes, which cmd.exe and PowerShell's argument passing do not understand:
``'C:\\Users\\Anna Müller\\pan 1.tif'`` reached gdalwarp as two arguments with the quotes in them. Windows gets
double quotes (the MSVCRT rules ``subprocess.list2cmdline`` follows), and only where a word needs them.

A file name starting with "-" is read as an option whatever its quotes (``gdal_edit.py -a_nodata 0 -pan0.tif``
printed gdal_edit.py's usage; gdalwarp said "Unrecognized option"): ``shell_arg`` writes it as ``./-pan0.tif``
(``.\\-pan0.tif`` on Windows), the same file. An absolute path never starts with "-".
"""
from __future__ import annotations

import os
import re
import shlex

# characters that split a word or act as operators in cmd.exe outside double quotes
_CMD_SPECIAL = frozenset(' \t"&|<>^')


def windows_arg(text: str) -> str:
    """``text`` as one argument on a Windows command line (cmd.exe, MSVCRT parsing): unchanged when nothing in it
    needs quoting, else in double quotes (a backslash is literal except before a double quote)."""
    if text and not _CMD_SPECIAL.intersection(text):
        return text
    inner = re.sub(r'(\\*)"', lambda m: m.group(1) * 2 + '\\"', text)
    inner = re.sub(r"(\\+)$", lambda m: m.group(1) * 2, inner)   # a trailing backslash must not escape the quote
    return f'"{inner}"'


def _word(text: str, os_name: str | None = None) -> str:
    """``text`` as one word for the running platform's shell: ``windows_arg`` on Windows, ``shlex.quote`` elsewhere."""
    return windows_arg(text) if (os_name or os.name) == "nt" else shlex.quote(text)


def shell_arg(path: str, os_name: str | None = None) -> str:
    """The file ``path`` as one argument for the shell of the running platform (``os_name`` overrides ``os.name``):
    quoted as ``_word`` does, a relative path starting with "-" prefixed with the current folder so no program
    takes it for an option."""
    if path.startswith("-"):
        path = (".\\" if (os_name or os.name) == "nt" else "./") + path
    return _word(path, os_name)


def beside(path: str, suffix: str) -> str:
    """Where a command writes the file made from ``path``: its name without extension plus ``suffix``, in the same
    folder (in the current folder for a GDAL virtual file, /vsizip/…, which cannot be written). Split by os.path:
    a relative Windows path data\\ms.tif gives data\\ms_nodata.vrt. A subdataset (``GPKG:/x/a.gpkg:ms``,
    ``NETCDF:"/x/a.nc":Band1``) is written beside its file: /x/a_nodata.vrt (QA: 'GPKG:/x/a_nodata.vrt' failed)."""
    # imported here: containers quotes its own commands with this module
    from .containers import parse

    address = None if path.startswith("/vsi") else parse(path)
    path = address.file if address else path
    name = os.path.splitext(os.path.basename(path.rstrip("/\\")))[0] + suffix
    return name if path.startswith("/vsi") else os.path.join(os.path.dirname(path), name)


def command(args: list[str], os_name: str | None = None) -> str:
    """A command line from ``args`` (program, options and values), each quoted as one word; file names among them
    go through ``shell_arg`` first."""
    return " ".join(_word(a, os_name) for a in args)
