"""`make data`'s cache of real imagery: where it is, and the held-apart test areas, each defined once.

``data_dir()`` is ``$KSDIFF_DATA``, else ``DEFAULT_DATA_ROOT`` (the Makefile exports the same default);
`make data` (scripts/fetch_data.py), model_core and the bench all ask here.

Held-apart areas: `make bench` and ``python -m model_core evaluate`` score on them, training never sees
them. Windows are (col_off, row_off, width, height) in pixels of the named raster under the cache. For
Sentinel-2 the 20 m window covers the same ground as the 10 m one. No torch, no QGIS: the bench and the
data fetcher import this without the training stack.
"""
from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "KSDIFF_DATA"
DEFAULT_DATA_ROOT = Path.home() / ".cache" / "ksdiff" / "data"   # Makefile: KSDIFF_DATA ?= $(HOME)/.cache/ksdiff/data


def data_dir() -> Path:
    """Where `make data` caches real imagery: ``$KSDIFF_DATA`` when set, else ``~/.cache/ksdiff/data``."""
    return Path(os.environ.get(DATA_ENV) or DEFAULT_DATA_ROOT)


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


# Sentinel-2 validation windows (col, row, width, height) of the 10 m and 20 m stacks, outside the held-apart
# corner: three spread over the stack, two the smoothest 512² windows (least high-pass energy relative to the mean).
# ``scripts/robustness.py`` builds the validation cases on them; a training source may leave some of them out
# (``exclude_validation``) so that a choice made on those cases measures ground the candidates never saw.
VALIDATION_WINDOWS: dict[str, tuple[tuple[int, int, int, int], ...]] = {
    "sentinel2/s2_10m.tif": ((0, 0, 512, 512), (700, 300, 512, 512), (200, 1100, 512, 512), (1280, 896, 512, 512),
                             (1408, 512, 512, 512)),
    "sentinel2/s2_20m.tif": ((0, 0, 256, 256), (350, 150, 256, 256), (100, 550, 256, 256), (640, 448, 256, 256),
                             (704, 256, 256, 256)),
}


def validation_windows(relpath: str, indices: list[int] | bool) -> list[tuple[int, int, int, int]]:
    """The validation windows ``indices`` of a cached raster (``True``: all of them); KeyError if it has none."""
    wins = VALIDATION_WINDOWS[relpath]
    return list(wins) if indices is True else [wins[i] for i in indices]


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
