"""Will the output fit the disk? An estimate before any tile is fused, so that a full disk is said at the start.

A full disk was reported only when the write failed: after 30+ minutes of fusion on a whole WorldView-2 scene
(35k², ~6 GB output, 12+ GB at a COG's peak). The estimate only warns: how well the data compress varies.
"""
from __future__ import annotations

import os

import numpy as np

from .writer import free_space

# output size / uncompressed size of a lossless codec with the predictor: DEFLATE outputs of the QA runs of at least
# 500x500 px (453 UInt16, 36 Byte, 14 Float32) had a median of 0.59 and 95 % at or below 0.77 (0.84 for Float32, up
# to 0.95 on noisy synthetic data); the 12288² QA scene, 742 MB of 1,208 MB, 0.61. Cautious: most outputs fit in it.
COMPRESSED_RATIO = 0.8
# a COG: the intermediate file and its copy with overviews are on the disk at once (~1.6x the COG at the QA peak)
COG_FACTOR = 2.0


def needed_bytes(cols: int, rows: int, bands: int, dtype, compression: str, cog: bool) -> int:
    """Bytes the output needs in its folder at the run's peak (cautious for a compressed output)."""
    raw = cols * rows * bands * np.dtype(dtype).itemsize
    size = raw * (1.0 if compression.lower() == "none" else COMPRESSED_RATIO)
    return int(size * (COG_FACTOR if cog else 1.0))


def _size(n: float) -> str:
    if n >= 2**30:
        return f"{n / 2**30:,.1f} GB"
    return f"{n / 2**20:,.1f} MB" if n >= 2**20 else f"{n / 1024:,.0f} KB"


def codec(compression: str, extra: list[str]) -> str:
    """The codec the output is written with: a CREATE_OPTIONS ``COMPRESS=`` replaces COMPRESSION."""
    asked = [o.split("=", 1)[1].strip() for o in extra if o.split("=", 1)[0].strip().upper() == "COMPRESS"]
    return (asked[-1] if asked else compression).lower()


def space_warning(path: str, cols: int, rows: int, bands: int, dtype, compression: str, cog: bool) -> str | None:
    """One line when the output ``path`` may not fit the free space of its folder; None when it fits or the free
    space is unknown. ``compression``: the codec the output is written with ('none' for none)."""
    folder = os.path.dirname(os.path.abspath(path))
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
