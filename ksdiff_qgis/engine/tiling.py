"""Tile layout over the output grid and seam-free blending of overlapping tiles, one row strip at a time.

Overlaps are blended with linear ramps written as ``a + (b - a) * t``: where neighbouring tiles agree
(every classical method) the blend returns their value exactly, so tiled output equals untiled output.
"""
from __future__ import annotations

import math
from typing import Callable, Iterator

import numpy as np


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering ``length`` with at least ``overlap`` between them."""
    if tile >= length:
        return [0]
    stride = max(1, tile - overlap)
    starts = list(range(0, length - tile + 1, stride))
    if starts[-1] + tile < length:
        starts.append(length - tile)
    return starts


def _ramp(n: int) -> np.ndarray:
    """Weights of the incoming tile across an overlap of ``n`` pixels."""
    return ((np.arange(n, dtype=np.float32) + 0.5) / n).astype(np.float32)


def _lerp(dst: np.ndarray, new: np.ndarray, t: np.ndarray, old: np.ndarray | None = None) -> None:
    """dst[...] = old + (new - old) * t, with ``old`` defaulting to dst's current values (in place)."""
    base = dst if old is None else old
    dst[...] = base + (new - base) * t


def blend_strips(
    height: int,
    width: int,
    tile: int,
    overlap: int,
    run_tile: Callable[[int, int, int, int], np.ndarray],
) -> Iterator[tuple[int, np.ndarray]]:
    """Run ``run_tile(row, col, rows, cols) -> (C, rows, cols)`` over the grid; yield finished strips.

    Yields ``(row, strip)`` with strips in top-to-bottom order, each final (blended with the tiles
    around it) and covering whole rows of the grid. Memory holds one tile row, never the grid.
    """
    th, tw = min(tile, height), min(tile, width)
    rows, cols = tile_starts(height, th, overlap), tile_starts(width, tw, overlap)
    carry: np.ndarray | None = None
    carry_row = 0
    strip: np.ndarray | None = None
    for i, r in enumerate(rows):
        strip = None   # drop the previous strip before the next one is allocated
        prev_end = 0
        for c in cols:
            out = run_tile(r, c, th, tw)
            if strip is None:
                strip = np.empty((out.shape[0], th, width), dtype=np.float32)
            ov = max(0, prev_end - c)
            if ov:
                _lerp(strip[:, :, c:prev_end], out[:, :, :ov], _ramp(ov)[None, None, :])
            strip[:, :, c + ov : c + tw] = out[:, :, ov:]
            prev_end = c + tw
        if carry is not None:
            ov = carry_row + carry.shape[1] - r
            # the carried rows are the old values, this strip's top rows the new ones
            _lerp(strip[:, :ov], strip[:, :ov].copy(), _ramp(ov)[None, :, None], old=carry)
        if i + 1 < len(rows):
            keep = rows[i + 1] - r
            yield r, strip[:, :keep]
            carry, carry_row = strip[:, keep:].copy(), rows[i + 1]
        else:
            yield r, strip


def _aligned_side(length: int, tile: int, block: int) -> int | None:
    """Tile side along one axis whose tile edges fall on block edges: ``tile`` rounded down to whole blocks."""
    if length <= tile:
        return length
    return tile // block * block if tile >= block else None


def aligned_tiles(height: int, width: int, tile: int, block: tuple[int, int]) -> list[tuple[int, int, int, int]] | None:
    """Non-overlapping tiles (row, col, rows, cols), row by row, whose edges fall on the output's
    ``block`` = (block width, block height) grid, or None when ``tile`` is smaller than a block.

    For methods that are exact per pixel (every classical one: the margin gives each tile its whole
    context) tiles need no overlap, and each finished tile completes whole GeoTIFF blocks: they are
    encoded at once, and memory does not grow with the scene's width. The last row and column of tiles
    are shorter.
    """
    th, tw = _aligned_side(height, tile, block[1]), _aligned_side(width, tile, block[0])
    if th is None or tw is None:
        return None
    return [(r, c, min(th, height - r), min(tw, width - c)) for r in range(0, height, th) for c in range(0, width, tw)]


def tile_count(height: int, width: int, tile: int, overlap: int) -> int:
    return len(tile_starts(height, min(tile, height), overlap)) * len(tile_starts(width, min(tile, width), overlap))


def balanced_tile(height: int, width: int, tile: int, overlap: int) -> int:
    """The smallest tile size (at most ``tile``) that needs no more tiles than ``tile`` on either axis.

    ``tile_starts`` pads the last tile back into the grid, so a scene that is not a multiple of the
    stride re-computes most of a tile; spreading the same number of tiles evenly does the same job
    with less redundant area (fewer pixels through a learned model), and never more tiles.
    """
    counts = [len(tile_starts(n, min(tile, n), overlap)) for n in (height, width)]
    size = max(math.ceil((n - overlap) / k) + overlap if k > 1 else n for n, k in zip((height, width), counts))
    size = max(size, 2 * overlap)
    while size < tile and any(len(tile_starts(n, min(size, n), overlap)) > k for n, k in zip((height, width), counts)):
        size += 1
    return min(size, tile)
