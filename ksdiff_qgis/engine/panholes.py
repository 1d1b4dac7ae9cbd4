"""Output pixels that are nodata only because the PAN has nodata there (the MS holds data): counted while tiling, said
once after the run.

Every method takes its detail from the PAN, so such a pixel stays nodata; a dead PAN column declared as nodata (or a
PAN footprint smaller than the MS's) then shows as holes through data without a word (QA: one zero column of WV2 pair
1's PAN became a full-height nodata line). The usual case, both inputs nodata along one scene edge, is not counted:
a PAN hole within one MS pixel of the MS's own nodata is that edge's (the two grids' edges differ by up to one MS
pixel).
"""
from __future__ import annotations

import os
import threading

import numpy as np
from scipy.ndimage import binary_erosion, binary_propagation

from .lossy import Lossy, hole_words
from .nodatacmd import exact, nodata_command
from .raster_io import RasterInfo
from .tiling import Ownership

Tile = tuple[int, int, int, int]   # row, col, rows, cols of the output region
SCATTER_REACH = 2   # PAN pixels: a hole no wider than twice this is filled from data close on every side


def eroded(valid: np.ndarray) -> np.ndarray:
    """(H, W) bool: ``valid`` without the pixels beside an invalid one (3 x 3; the array's edge repeated)."""
    h, w = valid.shape
    padded = np.pad(valid, 1, mode="edge")
    out = valid.copy()
    for dy in range(3):
        for dx in range(3):
            out &= padded[dy:dy + h, dx:dx + w]
    return out


def scattered(valid: np.ndarray, reach: int = SCATTER_REACH) -> np.ndarray:
    """(H, W) bool: the holes of ``valid`` that lie wholly within ``reach`` pixels of data: isolated pixels, specks and
    thin lines, as a lossy compression leaves in dark areas when it rounds them to a nodata value of 0 (QA: 408 such
    pixels, 1.86 % of a WV2 PAN in JPEG 2000 QUALITY=5). A hole that holds a pixel farther from data (a scene edge, a
    gap; beyond the array counts as hole) is not, nor any pixel of it."""
    holes = ~valid
    if not holes.any():
        return holes
    far = binary_erosion(holes, np.ones((2 * reach + 1, 2 * reach + 1), dtype=bool), border_value=1)
    wide = binary_propagation(far, structure=np.ones((3, 3), dtype=bool), mask=holes)
    return holes & ~wide


class PanOnlyHoles:
    """Counts the output pixels that are nodata only because of the PAN, each once although tiles overlap."""

    def __init__(self, tiles: list[Tile], rows: int, cols: int):
        """``tiles``: the tiles the run computes (its layout); ``rows`` x ``cols``: the output's size."""
        self.owner = Ownership(tiles)
        self.pixels = rows * cols
        self.count = 0
        self._lock = threading.Lock()

    def add(self, row: int, col: int, pan_only: np.ndarray) -> None:
        """``pan_only`` (rows, cols): the tile's output pixels where the PAN has nodata and the MS data."""
        r0, c0 = self.owner.skip(row, col, *pan_only.shape)
        n = int(np.count_nonzero(pan_only[r0:, c0:]))
        if n:
            with self._lock:
                self.count += n

    def note(self, pan: RasterInfo, dimap: str | None = None, compressed: Lossy | None = None) -> str | None:
        """The run's warning, or None when no pixel was nodata because of the PAN alone. ``dimap``: the DIMAP whose
        NODATA special value is the PAN's nodata (``dimap_values``), None when the PAN or its layer declares it.
        ``compressed``: the PAN's lossy compression (``lossy.find``), whose rounding of dark pixels to a nodata value of
        0 the warning names."""
        if not self.count:
            return None
        if pan.mask:
            why, real = f"the PAN's {pan.mask} hides them", "remove the mask"
        elif pan.nodata is None or np.isnan(pan.nodata):
            why, real = "the PAN holds NaN or infinite values there", None
        elif dimap:
            why, real = f"the PAN holds its nodata value {pan.nodata:g} there", _instead_of_dimap(pan, dimap)
        else:
            why = f"the PAN holds its nodata value {pan.nodata:g} there"
            real = ("declare no nodata value on the PAN: on its QGIS layer (Layer Properties > Transparency) untick "
                    "'No data value' and remove it from 'Additional no data value', or unset it in the file "
                    "(gdal_edit.py -unsetnodata)")
        return (f"{self.count} output pixels ({self.count / max(self.pixels, 1):.2%} of the output) are nodata only "
                f"because of the PAN ({why}) where the MS holds data: a dead PAN line or column, a hole, or a PAN "
                "footprint smaller than the MS's. Every method takes its detail from the PAN, so they are left as "
                "nodata. To fuse them, fill the PAN's holes first (Raster > Analysis > Fill nodata, or gdal_fillnodata)"
                + (f", or, if those pixels hold real values, {real}." if real else ".")
                + (hole_words(compressed, pan.nodata) if compressed is not None and not pan.mask else ""))


def _instead_of_dimap(pan: RasterInfo, dimap: str) -> str:
    """How to fuse the pixels a DIMAP's NODATA special value hides. It applies while the PAN declares no nodata of
    its own, and gdal_edit.py cannot unset it: the DIMAP driver refuses update access, and a VRT copy without nodata
    names the DIMAP's files, so the value is found again. Declaring a value the PAN never holds in its place works."""
    source = ("give the PAN a nodata value it never holds in place of the NODATA special value of "
              f"{os.path.basename(dimap)} ({exact(pan.nodata, pan.dtype)}: it applies while the PAN declares no "
              "nodata value of its own, and a copy without one takes it up again)")
    bits = pan.dtype.itemsize * 8
    if pan.dtype.kind != "u" or not pan.nbits or pan.nbits >= bits:
        return f"{source}, on its QGIS layer (Layer Properties > Transparency > Additional no data value)"
    spare = float(2 ** bits - 1)   # above the product's NBITS: no pixel holds it
    return (f"{source}, e.g. {exact(spare)} (above its {pan.nbits} bits): on its QGIS layer (Layer Properties > "
            f"Transparency > Additional no data value), or {nodata_command(pan.path, spare, pan.dtype)}")
