"""The checks a scene list's outputs get when the list is read, before any scene starts (``scenes.read_scenes``).

Each output must be a plain GeoTIFF file, no two rows may write one file, and no row may write a file any row
reads (its PAN, MS or model): QA found row 3's output naming row 2's PAN replaced that PAN with a fused image,
"2 done", exit 0 (the engine only refuses a row's output equal to its own inputs, and only once its scene runs).
Files compare as the list resolved them (``scenes._resolve_path``: symlinks followed, relative parts gone), as the OS
compares names (``os.path.normcase``), and, when they exist, by device and inode (a hard link under another name,
as the engine's ``check_not_input`` compares them with ``os.path.samefile``). Each check returns its message (the
caller raises it) or None; the case warning returns its lines.
"""
from __future__ import annotations

import os
from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING

from . import raster_io
from .errors import InputError, quoted
from .gdalutil import is_vsi, os_path

if TYPE_CHECKING:
    from .scenes import Scene

INPUT_ROLES = (("pan_path", "PAN"), ("ms_path", "MS"), ("model_path", "model file"))


def file_keys(path: str) -> list[Hashable]:
    """What identifies the file ``path`` names: the name as the OS compares names and, for an existing local file,
    its (device, inode): a hard link names the same file under another name."""
    keys: list[Hashable] = [os.path.normcase(path)]
    if is_vsi(path) or "://" in path:
        return keys
    try:
        st = os.stat(os_path(path))
    except OSError:
        return keys
    return keys + [("inode", st.st_dev, st.st_ino)] if st.st_ino else keys


def plain_geotiff_problem(scenes: Sequence[Scene]) -> str | None:
    """An output inside an archive or /vsi file system (each such scene failed at its writer and was retried), a
    folder, or a name that is no .tif/.tiff ('dir/', 'dir/y': refused only when its scene ran)."""
    for s in scenes:
        if not is_vsi(s.output) and os.path.isdir(os_path(s.output)):
            return (f"line {s.line}: the output {quoted(s.output)} is a folder: give a GeoTIFF file in it, such as "
                    f"{os.path.join(s.output, 'fused.tif')}")
        try:
            raster_io.refuse_virtual(s.output)
            raster_io.check_extension(s.output)
        except InputError as e:
            return f"line {s.line}: {e}"
    return None


def shared_output_problem(scenes: Sequence[Scene]) -> str | None:
    """Two rows writing one file: both would "succeed" and one result would be lost."""
    seen: dict[Hashable, Scene] = {}
    for s in scenes:
        keys = file_keys(s.output)
        first = next((seen[k] for k in keys if k in seen), None)
        if first is not None:
            other = "" if first.output == s.output else f" ({quoted(first.output)} is the same file)"
            return (f"lines {first.line} and {s.line} write the same output {s.output}{other}: give each row its "
                    "own output file")
        seen.update(dict.fromkeys(keys, s))
    return None


def overwritten_input_problem(scenes: Sequence[Scene]) -> str | None:
    """A row whose output is a row's PAN, MS or model file (its own, or another's): the run would replace an input,
    another row's before or while that row reads it."""
    readers: dict[Hashable, list[tuple[Scene, str, str]]] = {}
    for s in scenes:
        for key, role in INPUT_ROLES:
            path = s.kwargs.get(key)
            for k in file_keys(path) if path else ():
                readers.setdefault(k, []).append((s, role, path))
    for s in scenes:
        found = [r for k in file_keys(s.output) for r in readers.get(k, ())]
        if not found:
            continue
        reader, role, path = next((r for r in found if r[0] is s), found[0])   # its own input first
        named = "" if path == s.output else f" ({quoted(path)} is the same file)"
        if reader is s:
            return (f"line {s.line}: the output {quoted(s.output)} is this row's own {role}{named}: fusing would "
                    "overwrite the file it reads; give the row another output file")
        return (f"line {s.line}: the output {quoted(s.output)} is the {role} of line {reader.line}{named}: the run "
                f"would overwrite that input (scenes run in any order, several at once); give line {s.line} another "
                "output file (to fuse an output again, list it in a second run)")
    return None


def case_warnings(scenes: Sequence[Scene]) -> list[str]:
    """Outputs whose names differ only in upper/lower case ('x.tif', 'x.TIF'): two files here, one file on Windows
    and on macOS's usual disks, where the scenes would overwrite each other. A warning: the list is right here."""
    seen: dict[str, Scene] = {}
    lines = []
    for s in scenes:
        key = s.output.lower()
        first = seen.setdefault(key, s)
        if first is not s and first.output != s.output:
            lines.append(f"lines {first.line} and {s.line} write outputs whose names differ only in upper/lower case "
                         f"({quoted(first.output)}, {quoted(s.output)}): two files here, but one file on Windows and "
                         "on macOS's usual disks, where one would overwrite the other; rename one if the list is "
                         "also run there")
    return lines
