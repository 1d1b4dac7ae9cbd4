"""Input values above the range an input declares (NBITS): read as the range's top, counted, said once.

An 11-bit product (NBITS=11) holds 0-2047: a value above that (a hot pixel of 60000, a bit error) is no data. Read
as it is, one such PAN pixel changed a learned model's output over its whole tile (WorldView-2 pair 1, a PAN pixel at
60000: 75,544 pixels by more than 2 DN; the network's per-tile normalisation takes the tile's PAN spread) and the
scene statistics every classical method fits. Unsigned integer data only: signed and floating-point data keep every
value.

A PAN that declares no bit depth, of the same unsigned type as an MS that does (or the other way round), is taken to
be the product's bit depth too, unless the scene sample says otherwise (``BORROW_SHARE``): GDAL's GeoTIFF driver
cannot store a value above NBITS (it clips it when writing) and a VRT that declares NBITS clips it when reading, so a
hot pixel above the range reaches the pipeline in an input that lost its NBITS on the way (a copy written by a tool
that drops it). An MS resampled on the fly (``grid.plan_grid``) is left as it is: its cubic overshoot passes the range
beside bright edges of ordinary scenes.
"""
from __future__ import annotations

import threading

import numpy as np

from .raster_io import RasterInfo

BORROW_SHARE = 1e-4     # an input takes the other's bit depth unless more of its sampled pixels lie above that range
MAX_TRACKED = 1_000_000  # positions kept to count each pixel once (tiles and margins read some twice); beyond: "over"
WRONG_NBITS_SHARE = 1e-3  # this share of an input above its range: the declared bit depth itself is probably wrong


def _bits(info: RasterInfo) -> int | None:
    """The bit depth an unsigned integer raster declares below its type's (NBITS=11 on UInt16), else None."""
    if info.dtype.kind != "u" or not info.nbits or info.nbits >= info.dtype.itemsize * 8:
        return None
    return info.nbits


class RangeGuard:
    """Clamps one input's values above ``2**bits - 1`` as windows are read, and counts them (each pixel once)."""

    def __init__(self, role: str, bits: int, nodata: float | None = None, borrowed_from: str | None = None):
        self.role, self.bits, self.borrowed_from = role, bits, borrowed_from
        self.top = float(2 ** bits - 1)
        # a nodata value above the range (65535 on 11-bit data) stays nodata
        self.nodata = None if nodata is None or not nodata > self.top else np.float32(nodata)
        self.sampled = 0         # scene-statistics sample: pixels read, and how many lay above the range
        self.sample_above = 0
        self.maximum = -np.inf
        self.pixels = 0          # raster size (bands x rows x cols), for the share
        self._seen: set[int] = set()
        self._over = False
        self._lock = threading.Lock()

    def sample(self, arr: np.ndarray, ok: np.ndarray) -> np.ndarray:
        """A scene-statistics window (full resolution, float64; ``ok``: its valid pixels) clamped, tallied for the
        bit-depth check (``drop_unfit``)."""
        above = (arr > self.top) & ok
        self.sampled += int(ok.sum())
        n = int(above.sum())
        if not n:
            return arr
        self.sample_above += n
        return np.minimum(arr, self.top)

    def clamp(self, arr: np.ndarray, row: int, col: int, shape: tuple[int, int], count: bool = True) -> None:
        """Clamp ``arr`` (C, h, w), the raster's window at (``row``, ``col``) of a raster of ``shape`` (rows, cols), in
        place; ``count``: remember the pixels for the run's warning (the self-check's reads are not counted)."""
        peak = arr.max()
        if not peak > self.top and not np.isnan(peak):   # the usual window: one max, nothing else
            return
        above = arr > self.top
        if self.nodata is not None:
            above &= arr != self.nodata
        if not above.any():
            return
        if count:
            b, r, c = np.nonzero(above)
            keys = ((b * shape[0] + r + row) * shape[1] + c + col).tolist()
            with self._lock:
                self.maximum = max(self.maximum, float(arr[above].max()))
                self.pixels = max(self.pixels, arr.shape[0] * shape[0] * shape[1])
                if len(self._seen) + len(keys) > MAX_TRACKED:
                    self._over = True
                else:
                    self._seen.update(keys)
        arr[above] = self.top

    def quiet(self, arr: np.ndarray, row: int, col: int, shape: tuple[int, int]) -> None:
        """``clamp`` without counting (the self-check's windows)."""
        self.clamp(arr, row, col, shape, count=False)

    def note(self) -> str | None:
        """'PAN: 1 pixel above its 11-bit range (max 60000) read as 2047', or None when none was."""
        n = len(self._seen)
        if not n and not self._over:
            return None
        what = "pixel value" if self.role == "MS" else "pixel"
        count = f"more than {MAX_TRACKED}" if self._over else f"{n}"
        rng = f"the {self.borrowed_from}'s" if self.borrowed_from else "its"
        own = f"; the {self.role} declares no bit depth of its own" if self.borrowed_from else ""
        text = (f"{self.role}: {count} {what}{'s' if self._over or n != 1 else ''} above {rng} {self.bits}-bit range "
                f"(max {self.maximum:g}{own}) read as {self.top:g}")
        if self._over or n > WRONG_NBITS_SHARE * max(self.pixels, 1):
            text += (f": so many that the {self.bits}-bit range itself may be wrong: if the data are wider, declare "
                     "their bit depth (gdal_translate -co NBITS=16)")
        return text


def guards(pan: RasterInfo, ms: RasterInfo, resampled_ms: bool = False) -> dict[str, RangeGuard]:
    """The inputs' guards by role: each unsigned input with a declared bit depth, and one without it of the same type as
    the other input that declares one (taken as the product's; ``drop_unfit`` checks it on the scene sample).
    ``resampled_ms``: the MS is read resampled onto the PAN's grid (cubic, ``grid.plan_grid``), whose overshoot beside
    bright edges passes the range on ordinary scenes: it gets no guard (its values are fused as before)."""
    out = {}
    infos = {"PAN": pan, "MS": ms} if not resampled_ms else {"PAN": pan}
    for role, info in infos.items():
        other_role, other = ("MS", ms) if role == "PAN" else ("PAN", pan)
        if _bits(info):
            out[role] = RangeGuard(role, info.nbits, info.nodata)
        elif info.dtype == other.dtype and not info.nbits and _bits(other):
            out[role] = RangeGuard(role, other.nbits, info.nodata, borrowed_from=other_role)
    return out


def drop_unfit(found: dict[str, RangeGuard]) -> list[str]:
    """Remove the borrowed ranges the scene sample contradicts (more than ``BORROW_SHARE`` of the input's sampled
    pixels above it: the input is wider than the other's bit depth); the roles removed, whose sample was clamped."""
    unfit = [role for role, g in found.items()
             if g.borrowed_from and g.sample_above > BORROW_SHARE * max(g.sampled, 1)]
    for role in unfit:
        del found[role]
    return unfit


def report(found: dict[str, RangeGuard]) -> str | None:
    """The run's one warning about values above a declared range, or None."""
    notes = [n for n in (g.note() for g in found.values()) if n]
    if not notes:
        return None
    return ("Values above an input's declared bit depth cannot be data (a hot pixel, a bit error) and were clamped "
            "before fusing, so they do not disturb their neighbourhood: " + "; ".join(notes) + ".")
