"""GDAL's block cache during a run: cached input blocks are dropped once they pass a budget.

GDAL keeps every block it decodes (up to 5 % of the RAM by default) although a run needs only the
blocks of the tiles in flight. Dropping them at a budget, rather than at the end of every row of
tiles, keeps memory independent of the scene's width and lets a small scene decode each block once.

The budget is INPUT_CACHE_MB for inputs whose blocks are no larger than a tile (GeoTIFFs of 256- or 512-pixel
blocks: a flush costs the re-read of a margin). Inputs with blocks larger than a tile (JPEG2000 as Pléiades, SPOT
and Sentinel-2 ship it, in 1024-pixel or larger blocks; stripped GeoTIFFs) share each block between the tiles of a
row and the next rows: the budget then holds a row of tiles' worth of their blocks (``row_budget_mb``), within the
memory the run may use. At 8 MB a 1024² 4-band JP2 block (8 MB) was decoded again for every tile that reads it.

A VRT mosaic of JPEG2000 tiles (or a DIMAP, GDAL's own mosaic of them) reports its own 128-pixel blocks, yet a read
through it decodes its sources' blocks, and flushing it drops those too: the blocks counted are the sources'
(``decoded_block``). QA: a VRT of a Pléiades delivery's 1024-block JP2 tiles, budgeted as 128-pixel blocks, was
flushed after nearly every tile and decoded each JP2 block about four times (MTF-GLP-HPM, 3200² PAN: 7-9 s
against 3 s through its DIM_*.XML).
"""
from __future__ import annotations

import contextlib
import math
import threading
from typing import Iterator

from osgeo import gdal

from .gdalutil import gdal_call

INPUT_CACHE_MB = 8   # about a row of 512-pixel tiles of a 2048-pixel wide PAN and its MS
# a budget of exactly a row's blocks was passed by GDAL's bookkeeping and flushed within the row (5 flushes on 16
# tiles of a 2048² JP2 PAN); the quarter more also keeps the next row's first blocks
ROW_SLACK = 1.25
CONTAINERS = ("VRT", "DIMAP")   # drivers that read their pixels from other files, in those files' blocks
MAX_SOURCE_FILES = 4   # a mosaic's first tiles say its blocks: a delivery's tiles share one layout
MAX_DEPTH = 3          # a VRT over a VRT over a DIMAP (the run's own views of an input are VRTs too)


def decoded_block(ds: gdal.Dataset, depth: int = 0) -> tuple[int, int]:
    """The block (width, height) GDAL decodes to read ``ds``: its own, or for a VRT or DIMAP the largest (by area)
    of its own and its first source files' (``MAX_SOURCE_FILES``)."""
    best = tuple(ds.GetRasterBand(1).GetBlockSize())
    driver = ds.GetDriver()
    if depth >= MAX_DEPTH or driver is None or driver.ShortName not in CONTAINERS:
        return best
    own = ds.GetDescription()
    files = [f for f in (ds.GetFileList() or []) if f != own][:MAX_SOURCE_FILES]
    for path in files:
        src = gdal_call(gdal.OpenEx, path, gdal.OF_RASTER | gdal.OF_READONLY)[0]
        if src is None or src.RasterCount < 1:
            continue   # a sidecar (.aux.xml, a DIMAP's other XML), not a raster
        found = decoded_block(src, depth + 1)
        if found[0] * found[1] > best[0] * best[1]:
            best = found
    return best


def drop_cached_blocks(datasets: list[gdal.Dataset]) -> None:
    """Drop the datasets' blocks from GDAL's cache (read-only inputs: nothing to write back)."""
    for ds in datasets:
        ds.FlushCache()


def row_budget_mb(inputs: list[tuple[gdal.Dataset, int]], room_mb: float | None) -> float:
    """Cache budget (MB) for reading ``inputs`` — (dataset, side in its pixels of the windows read from it: a tile
    and its margin) — a row of windows at a time.

    INPUT_CACHE_MB when every input's blocks fit a window; otherwise the blocks a row of windows touches across the
    whole width (all bands: JPEG2000 decodes them together) and a quarter more (ROW_SLACK), at most ``room_mb`` (the
    run's memory left for it; None: unknown) and never below INPUT_CACHE_MB. A VRT or DIMAP is counted in its
    sources' blocks (``decoded_block``) and its own, which GDAL caches both."""
    need, large = 0, False
    for ds, side in inputs:
        band = ds.GetRasterBand(1)
        own = tuple(band.GetBlockSize())
        decoded = decoded_block(ds)
        for bw, bh in {own, decoded}:
            large |= bw > side or bh > side
            across = math.ceil(ds.RasterXSize / bw)
            down = min(math.ceil(ds.RasterYSize / bh), math.ceil(side / bh) + 1)   # a window straddles block rows
            need += across * down * bw * bh * ds.RasterCount * gdal.GetDataTypeSize(band.DataType) // 8
    if not large:
        return INPUT_CACHE_MB
    mb = need / 2**20 * ROW_SLACK
    return max(INPUT_CACHE_MB, mb if room_mb is None else min(mb, room_mb))


class InputCache:
    """Flushes the input datasets' cached blocks when the cache grew by more than ``budget_mb`` since the start.

    GDAL's cache is shared with the rest of the process (QGIS renders through it too): its growth, not its
    size, is what this run added. Another thread filling it only makes the flushes earlier.
    """

    def __init__(self, datasets: list[gdal.Dataset], lock: threading.Lock | None = None,
                 budget_mb: float = INPUT_CACHE_MB):
        self.datasets, self.lock = datasets, lock or contextlib.nullcontext()
        self.budget_mb = budget_mb
        # blocks read before the tiles (scene statistics, the self-check's sample) scale with the scene:
        # dropped first, or the budget would start above them
        self.flush()
        self.limit = gdal.GetCacheUsed() + int(budget_mb * 2**20)

    def trim(self) -> None:
        """Drop the cached input blocks if the cache passed the budget (call between tiles)."""
        if gdal.GetCacheUsed() > self.limit:
            self.flush()

    def flush(self) -> None:
        # a dataset must not be read while its cache is flushed: readers hold the same lock
        with self.lock:
            drop_cached_blocks(self.datasets)


# GDAL's block cache during the Cloud-Optimized GeoTIFF copy: GDAL's default (5 % of the RAM) filled with the whole
# output's blocks and overviews (QA, MTF-GLP-HPM, COG=true: peak RSS 498 / 843 / 1,815 MB at 3k² / 6k² / 12k² PAN
# against 367-388 MB without a COG; 581 MB and the same time with 128 MB)
COG_CACHE_MB = 128
_cap_lock = threading.Lock()
_cap_users = 0
_cap_restore = 0


@contextlib.contextmanager
def capped_cache(mb: int = COG_CACHE_MB) -> Iterator[None]:
    """GDAL's block cache held to at most ``mb`` MB while inside (process-wide, as GDAL's cache is: runs side by
    side share the cap, the first in saves the setting and the last out restores it)."""
    global _cap_users, _cap_restore
    with _cap_lock:
        if _cap_users == 0:
            _cap_restore = gdal.GetCacheMax()
            gdal.SetCacheMax(min(_cap_restore, mb * 2**20))
        _cap_users += 1
    try:
        yield
    finally:
        with _cap_lock:
            _cap_users -= 1
            if _cap_users == 0:
                gdal.SetCacheMax(_cap_restore)
