"""Will the output fit the disk? An estimate before any tile is fused, so that a full disk is said at the start.

A full disk was reported only when the write failed: after 30+ minutes of fusion on a whole WorldView-2 scene
(35k², ~6 GB output, 12+ GB at a COG's peak). The estimate only warns: how well the data compress varies.
"""
from __future__ import annotations

import os
import tempfile

import numpy as np
from osgeo import gdal

from ..errors import InputError, quoted
from .writer import free_space

# output size / uncompressed size of a lossless codec with the predictor: DEFLATE outputs of the QA runs of at least
# 500x500 px (453 UInt16, 36 Byte, 14 Float32) had a median of 0.59 and 95 % at or below 0.77 (0.84 for Float32, up
# to 0.95 on noisy synthetic data); the 12288² QA scene, 742 MB of 1,208 MB, 0.61. Cautious: most outputs fit in it.
COMPRESSED_RATIO = 0.8
# a COG: the intermediate file and its copy with overviews are on the disk at once (~1.6x the COG at the QA peak)
COG_FACTOR = 2.0
# a COG's overviews (1/4 + 1/16 + ... < 1/3 of the image's pixels), which GDAL's COG driver writes into a temporary
# file in CPL_TMPDIR when that is set (beside the output otherwise, counted in COG_FACTOR): half the compressed image,
# cautious, as that file's codec is GDAL's choice
OVERVIEW_SHARE = 0.5


def needed_bytes(cols: int, rows: int, bands: int, dtype, compression: str, cog: bool) -> int:
    """Bytes the output needs in its folder at the run's peak (cautious for a compressed output)."""
    raw = cols * rows * bands * np.dtype(dtype).itemsize
    size = raw * (1.0 if compression.lower() == "none" else COMPRESSED_RATIO)
    return int(size * (COG_FACTOR if cog else 1.0))


def temp_bytes(cols: int, rows: int, bands: int, dtype) -> int:
    """Bytes a COG's temporary overview file needs in GDAL's temporary folder (cautious)."""
    return int(cols * rows * bands * np.dtype(dtype).itemsize * COMPRESSED_RATIO * OVERVIEW_SHARE)


def _same_disk(a: str, b: str) -> bool:
    try:
        return os.stat(a).st_dev == os.stat(b).st_dev
    except OSError:
        return False


def temp_folder(output_folder: str) -> str | None:
    """The folder GDAL's COG driver writes its temporary overview file into when that is on another file system than
    ``output_folder``: CPL_TMPDIR (a GDAL config option or environment variable) when set; None otherwise (the
    file then lies beside the output, and the output folder's estimate counts it)."""
    folder = gdal.GetConfigOption("CPL_TMPDIR")
    if not folder:
        return None
    folder = os.path.abspath(folder)
    return None if _same_disk(folder, output_folder) else folder


def check_temp_folder(cog: bool) -> None:
    """With COG on: InputError when CPL_TMPDIR (GDAL config option or environment) names a folder that is missing or
    cannot be written — GDAL's COG driver writes its overviews there, after the whole fusion (QA: it failed only
    then). A probe file, not os.access: root is told yes on a read-only file system."""
    folder = gdal.GetConfigOption("CPL_TMPDIR") if cog else None
    if not folder:
        return
    fix = ("create it, set CPL_TMPDIR to a folder you can write to, or unset it (the Cloud-Optimized GeoTIFF's "
           "overviews are then written beside the output); nothing was written")
    if not os.path.isdir(folder):
        raise InputError(f"GDAL's temporary folder CPL_TMPDIR={folder} does not exist: {fix}.")
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".ksdiff-write-test-")
        os.close(fd)
        os.remove(probe)
    except OSError as e:
        raise InputError(f"GDAL's temporary folder CPL_TMPDIR={folder} cannot be written "
                         f"({e.strerror or e}): {fix}.") from None


def _size(n: float) -> str:
    if n >= 2**30:
        return f"{n / 2**30:.1f} GB"
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n / 1024:.0f} KB"


def codec(compression: str, extra: list[str]) -> str:
    """The codec the output is written with: a CREATE_OPTIONS ``COMPRESS=`` replaces COMPRESSION."""
    asked = [o.split("=", 1)[1].strip() for o in extra if o.split("=", 1)[0].strip().upper() == "COMPRESS"]
    return (asked[-1] if asked else compression).lower()


def space_warning(path: str, cols: int, rows: int, bands: int, dtype, compression: str, cog: bool) -> str | None:
    """One line when the output ``path`` may not fit the free space of its folder, and one when a COG's overviews may
    not fit GDAL's temporary folder (CPL_TMPDIR on another file system); None when it fits or the free space is
    unknown. ``compression``: the codec the output is written with ('none' for none)."""
    folder = os.path.dirname(os.path.abspath(path))
    lines = [_output_line(folder, cols, rows, bands, dtype, compression, cog)]
    temp = temp_folder(folder) if cog else None
    if temp:   # QA: a full CPL_TMPDIR failed the COG pass after the fusion, with room in the output folder
        need, free = temp_bytes(cols, rows, bands, dtype), free_space(temp)
        if free is not None and need > free:
            lines.append(f"The Cloud-Optimized GeoTIFF's overviews may need about {_size(need)} in GDAL's temporary "
                         f"folder CPL_TMPDIR={temp} and {_size(free)} are free there: the run may fail when writing "
                         "them; free space there, set CPL_TMPDIR to a folder with room, or unset it (they are then "
                         "written beside the output).")
    return " ".join(line for line in lines if line) or None


def temp_failure(path: str, action: str, errors: list[str], folder: str, free_before: int | None,
                 needed: int) -> str:
    """``writer.write_failure``'s message for a COG pass that filled GDAL's temporary folder ``folder``
    (CPL_TMPDIR), not the output's: where, what it needed (``temp_bytes``, as ``space_warning`` says it) and what was
    free there when the run started (measured now when unknown)."""
    free, when = (free_before, "when the run started") if free_before is not None else (free_space(folder), "now")
    had = f"; {_size(free)} were free there {when}" if free is not None else ""
    return (f"writing the output {quoted(path)} failed while {action}: no space left on device in GDAL's "
            f"temporary folder CPL_TMPDIR={folder}, where the overviews are written: they needed about "
            f"{_size(needed)}{had} (free up space there, set CPL_TMPDIR to a folder with room, or unset it to write "
            f"them beside the output); the partial file was removed and any earlier output there is unchanged "
            f"(GDAL: {'; '.join(errors[:3])})")


def _output_line(folder: str, cols: int, rows: int, bands: int, dtype, compression: str, cog: bool) -> str | None:
    free = free_space(folder)
    need = needed_bytes(cols, rows, bands, dtype, compression, cog)
    if free is None or need <= free:
        return None
    dt = np.dtype(dtype)
    how = (f"{cols}x{rows} px x {bands} bands of {dt.name}"
           + ("" if compression.lower() == "none" else f", {compression.upper()} at about {COMPRESSED_RATIO:g} of "
                                                       "the uncompressed size")
           + (", the intermediate file and the Cloud-Optimized copy at once" if cog else ""))
    return (f"The output may need about {_size(need)} in {folder} ({how}) and {_size(free)} are free: the run may fail "
            "when writing; free space or choose another output folder.")
