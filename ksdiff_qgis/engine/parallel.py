"""Pipelined execution: tiles fused ahead of the blender in a bounded thread pool, output rows grouped
into whole GeoTIFF block rows.

numpy, GDAL and ONNX Runtime release the GIL in their heavy loops, so a few threads overlap reading,
fusing and writing. Each tile is a pure function of its position, so results are handed to
``tiling.blend_strips`` in exactly the order it asks for them and the output is byte-identical to a
sequential run, whatever the number of workers.
"""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Iterable, Iterator

import numpy as np

from .threadlimits import usable_cores
from .tiling import tile_starts

TileFn = Callable[[int, int, int, int], np.ndarray]
Tile = tuple[int, int, int, int]   # row, col, rows, cols


def default_workers() -> int:
    """Tile workers when the caller says 0: one per core, at most 4 (memory grows with in-flight tiles)."""
    return max(1, min(4, usable_cores()))


class TilePool:
    """Calls ``run_tile`` ahead of time for the tiles ``blend_strips`` will ask for, at most ``depth`` in flight.

    Use it in place of ``run_tile``: ``blend_strips(h, w, tile, overlap, pool)`` (or any layout given as
    ``order``). With ``workers <= 1``
    it calls ``run_tile`` directly (the sequential engine). ``close()`` drops tiles not yet started
    and waits for running ones, so a cancel or an error stops within one tile per worker.
    """

    def __init__(self, run_tile: TileFn, height: int, width: int, tile: int, overlap: int, workers: int,
                 depth: int | None = None, on_result: Callable[[], None] = lambda: None,
                 order: list[Tile] | None = None):
        self.run_tile, self.workers, self.on_result = run_tile, workers, on_result
        th, tw = min(tile, height), min(tile, width)
        # the call order of blend_strips (row by row, left to right, always full-size tiles), unless given
        self.order = order if order is not None else [
            (r, c, th, tw) for r in tile_starts(height, th, overlap) for c in tile_starts(width, tw, overlap)]
        self.depth = max(1, depth or 2 * workers)
        self.next = 0
        self.pending: dict[tuple[int, int, int, int], Future] = {}
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ksdiff-tile") if workers > 1 else None

    def _fill(self) -> None:
        while self.next < len(self.order) and len(self.pending) < self.depth:
            key = self.order[self.next]
            self.pending[key] = self.pool.submit(self.run_tile, *key)
            self.next += 1

    def __call__(self, row: int, col: int, rows: int, cols: int) -> np.ndarray:
        result = self._result(row, col, rows, cols)
        self.on_result()   # in the caller's thread: progress and cancel checks belong there
        return result

    def _result(self, row: int, col: int, rows: int, cols: int) -> np.ndarray:
        if self.pool is None:
            return self.run_tile(row, col, rows, cols)
        key = (row, col, rows, cols)
        self._fill()
        fut = self.pending.pop(key, None)
        if fut is None:   # not a tile of the planned layout: compute it in the caller's thread
            return self.run_tile(row, col, rows, cols)
        result = fut.result()
        self._fill()      # keep the workers busy while the caller blends and writes
        return result

    def close(self) -> None:
        if self.pool is None:
            return
        for fut in self.pending.values():
            fut.cancel()
        self.pending.clear()
        self.pool.shutdown(wait=True)
        self.pool = None

    def __enter__(self) -> "TilePool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class BlockRowWriter:
    """Writes blended strips so that every GeoTIFF block row is complete before it is flushed.

    A block row flushed half-written is compressed twice (and its first copy stays in the file as dead
    bytes). Rows past the last complete block row are held back, converted to the output type (at
    most ``block - 1`` rows), and written in the same calls as the next strip's rows of their blocks
    (GDAL may evict a half-filled block between two calls when its cache is small: QA126); everything
    goes to GDAL a column chunk at a time, so no full-width copy of a strip is made.
    """

    def __init__(self, write: Callable[[np.ndarray, int, int], None], flush: Callable[[], None],
                 convert: Callable[[np.ndarray], np.ndarray], block: int, height: int, chunk: int):
        self.write, self.flush, self.convert = write, flush, convert
        self.block, self.height, self.chunk = block, height, chunk
        self.held: tuple[int, np.ndarray] | None = None

    def _hold(self, row: int, rows: np.ndarray) -> None:
        if self.held is None:
            self.held = (row, rows)
        else:
            self.held = (self.held[0], np.concatenate([self.held[1], rows], axis=1))

    def add(self, row: int, strip: np.ndarray) -> None:
        """Take the blended rows [row, row + strip height) of the grid (C, h, W), float."""
        end = row + strip.shape[1]
        cut = end if end >= self.height else max(row, end // self.block * self.block)
        if cut == row:   # nothing completes a block row yet
            self._hold(row, self.convert(strip))
            return
        start, held = self.held if self.held is not None else (row, None)
        self.held = None
        for c in range(0, strip.shape[2], self.chunk):   # bounded temporaries for wide scenes
            part = self.convert(strip[:, : cut - row, c : c + self.chunk])
            if held is not None:   # with the rows that complete its blocks: no half-filled block between writes
                part = np.concatenate([held[:, :, c : c + self.chunk], part], axis=1)
            self.write(part, start, c)
        self.flush()
        if cut < end:
            self._hold(cut, self.convert(strip[:, cut - row :]))

    def finish(self) -> None:
        if self.held is not None:
            self.write(self.held[1], self.held[0], 0)
            self.held = None
            self.flush()


def write_cells(cells: Iterable[tuple[int, int, np.ndarray]], write: Callable[[np.ndarray, int, int], None],
                convert: Callable[[np.ndarray], np.ndarray], inspect: Callable[[np.ndarray], None],
                after_tile: Callable[[], None]) -> None:
    """Write finished ``(row, col, pixels)`` cells that each complete their GeoTIFF blocks.

    The cells come from block-aligned tiles (``tiling.aligned_tiles`` through the pool, or
    ``tiling.blend_cells``), so ``after_tile()`` may flush (encode) them at once: nothing of the
    scene's width is held, in our arrays or in GDAL's cache.
    """
    for r, c, out in cells:
        inspect(out)
        write(convert(out), r, c)
        after_tile()
        del out


def aligned_cells(tiles: list[Tile], pool: TilePool) -> Iterator[tuple[int, int, np.ndarray]]:
    """The non-overlapping ``tiles`` of ``tiling.aligned_tiles``, fused through ``pool``, as cells."""
    for r, c, h, w in tiles:
        yield r, c, pool(r, c, h, w)
