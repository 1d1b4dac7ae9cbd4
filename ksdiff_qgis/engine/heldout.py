"""The held-apart test areas, defined once: `make bench` scores on them, training never sees them.

Windows are (col_off, row_off, width, height) in pixels of the named raster under `make data`'s
cache (``$KSDIFF_DATA``). For Sentinel-2 the 20 m window covers the same ground as the 10 m one.
"""
from __future__ import annotations

# WorldView-2 pair 3 is held apart whole (DATA.md: never train or tune on it).
WV2_TEST_PAIR = 3

HELD_APART: dict[str, tuple[int, int, int, int] | None] = {
    "wv2/pair3_pan.tif": None,            # None = the whole raster
    "wv2/pair3_ms.tif": None,
    "landsat8/pan.tif": (742, 695, 512, 512),   # bottom-right corner, outside the cloud band
    "landsat8/ms.tif": (370, 347, 257, 256),    # MS pixels covering that PAN window (grids are half a PAN pixel apart)
    "sentinel2/s2_10m.tif": (1421, 1435, 512, 512),
    "sentinel2/s2_20m.tif": (710, 718, 256, 256),   # the 20 m stack starts at the first fully covered column
}


def held_apart_window(relpath: str) -> tuple[int, int, int, int] | None:
    """The held-apart window of a cached raster, ``None`` for a whole held-apart raster; KeyError if none."""
    return HELD_APART[relpath]


def overlaps_held_apart(relpath: str, window: tuple[int, int, int, int], raster_size: tuple[int, int]) -> bool:
    """True when ``window`` (col, row, w, h) of the raster ``relpath`` touches its held-apart area."""
    if relpath not in HELD_APART:
        return False
    held = HELD_APART[relpath] or (0, 0, raster_size[0], raster_size[1])
    c, r, w, h = window
    hc, hr, hw, hh = held
    return c < hc + hw and hc < c + w and r < hr + hh and hr < r + h
