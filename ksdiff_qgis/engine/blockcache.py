"""GDAL's block cache during a run: cached input blocks are dropped once they pass a small budget.

GDAL keeps every block it decodes (up to 5 % of the RAM by default) although a run needs only the
blocks of the tiles in flight. Dropping them at a fixed budget, rather than at the end of every row of
tiles, keeps memory independent of the scene's width and lets a small scene decode each block once.
"""
from __future__ import annotations

import threading

from osgeo import gdal

INPUT_CACHE_MB = 8   # about a row of 512-pixel tiles of a 2048-pixel wide PAN and its MS


def drop_cached_blocks(datasets: list[gdal.Dataset]) -> None:
    """Drop the datasets' blocks from GDAL's cache (read-only inputs: nothing to write back)."""
    for ds in datasets:
        ds.FlushCache()


class InputCache:
    """Flushes the input datasets' cached blocks when the cache grew by more than ``budget_mb`` since the start.

    GDAL's cache is shared with the rest of the process (QGIS renders through it too): its growth, not its
    size, is what this run added. Another thread filling it only makes the flushes earlier.
    """

    def __init__(self, datasets: list[gdal.Dataset], lock: threading.Lock, budget_mb: float = INPUT_CACHE_MB):
        self.datasets, self.lock = datasets, lock
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
