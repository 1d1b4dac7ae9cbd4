"""Paths in the commands messages give the user (gdal_edit.py, gdalwarp, …), quoted for the running platform's shell.

``shlex.quote`` writes POSIX single quotes, which cmd.exe and PowerShell's argument passing do not understand:
``'C:\\Users\\Anna Müller\\pan 1.tif'`` reached gdalwarp as two arguments with the quotes in them. Windows gets
double quotes (the MSVCRT rules ``subprocess.list2cmdline`` follows), and only where a word needs them.
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


def shell_arg(text: str, os_name: str | None = None) -> str:
    """``text`` as one argument for the shell of the running platform (``os_name`` overrides ``os.name``):
    ``windows_arg`` on Windows, ``shlex.quote`` elsewhere."""
    return windows_arg(text) if (os_name or os.name) == "nt" else shlex.quote(text)


def command(args: list[str], os_name: str | None = None) -> str:
    """A command line from ``args``, each quoted by ``shell_arg``."""
    return " ".join(shell_arg(a, os_name) for a in args)
