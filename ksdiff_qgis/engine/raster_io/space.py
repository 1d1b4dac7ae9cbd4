"""Will the output fit the disk? Said before any tile is fused, so that a full disk is known at the start.

A full disk was reported only when the write failed: after 30+ minutes of fusion on a whole WorldView-2 scene
(35k², ~6 GB output, 12+ GB at a COG's peak). How well a compressed output shrinks depends on its data: a fixed
share of the uncompressed size (0.8) was 1.3-1.7x the written DEFLATE/ZSTD files (8-bit data compress to half)
and 0.7-0.8x a COG's peak (QA). So the size is measured: a few output blocks spread over the region are fused
(MTF-GLP-HPM) and compressed with the output's own creation options (``estimate``). Only a size that is certain
(an uncompressed output's pixels) refuses a run before the statistics (``precheck``); a measured size that exceeds
the free space by REFUSE_MARGIN refuses it before the first tile, and one near the free space warns. A disk
that fills up all the same fails the write cleanly (``writer.GeoTiffWriter``: every GDAL call checked, the partial
file removed, an earlier output kept).
"""
from __future__ import annotations

import math
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass

import numpy as np
from osgeo import gdal, gdal_array

from ..errors import InputError, quoted
from ..gdalutil import close_dataset, gdal_try
from ..labels import param
from .writer import free_space, size_text

SAMPLE_BLOCKS = 12   # output blocks fused and compressed to measure the codec on the data
BLOCK = 256          # the output's blocks when its options name none (raster_io.outputs.BASE)
# a COG's overviews (1/4 + 1/16 + ... < 1/3 of the image's pixels; averaged pixels hold more detail and compress a
# little worse): their bytes as a share of the full-resolution image's (L8 crop, DEFLATE: 0.34)
OVERVIEW_SHARE = 0.4
# the most a codec can grow data it cannot compress (LZW on noise: 1.37x; DEFLATE, ZSTD: 1.0x): above
# ``upper_bound`` a run surely fits and nothing is measured
WORST_CODEC = 1.5
HEADER = 16 * 1024   # the TIFF's directory, tags and block tables (a few KB)
# the measured size is warned of when within this factor of the free space. Measured with MTF-GLP-HPM: a classical
# output came within 10 % of it (on a scene of 100 blocks, 36 % nodata collar, 12 sampled blocks said 4-9 % more
# than was written); a learned method's output was up to 32 % larger (WV2 pair 1: +6 % at 600², LZW; upscaled to
# 4000², DEFLATE, 45.7 MB against 34.6 MB, QA), so it is warned of from further away
WARN_MARGIN = 1.1
WARN_MARGIN_LEARNED = 1.4
# the measured size refuses the run when it exceeds the free space by this factor: the estimate overstated a written
# file by at most 9 % (and understates a learned one), so the file is then at least 1.15x the free space
REFUSE_MARGIN = 1.25
_DROPPED = ("NUM_THREADS",)   # the sample is compressed by one thread: the same size, and no burst on every core


@dataclass(frozen=True)
class SpaceNeed:
    """What a run's output takes: ``peak`` bytes in its folder while it is written (a COG's intermediate file and
    its copy at once), ``file`` the finished output's, ``temp`` a COG's overviews file in CPL_TMPDIR; ``exact``:
    uncompressed, counted; else measured on ``blocks`` sample blocks."""

    peak: int
    file: int
    temp: int
    exact: bool
    blocks: int = 0


def _key(option: str) -> str:
    return option.split("=", 1)[0].strip().upper()


def _value(options: list[str], key: str, default: str = "") -> str:
    found = [o.split("=", 1)[1].strip() for o in options if "=" in o and _key(o) == key]
    return found[-1] if found else default


def codec(compression: str, extra: list[str]) -> str:
    """The codec the output is written with: a CREATE_OPTIONS ``COMPRESS=`` replaces COMPRESSION."""
    return _value(extra, "COMPRESS", compression).lower()


def _bits(options: list[str], dtype) -> int:
    """Bits per sample in a file written with ``options`` (a GTiff ``NBITS=`` packs them)."""
    try:
        return int(_value(options, "NBITS", "0")) or np.dtype(dtype).itemsize * 8
    except ValueError:
        return np.dtype(dtype).itemsize * 8


def block_size(options: list[str], cog: bool) -> tuple[int, int]:
    """(width, height) of the blocks of a file written with ``options`` (GTiff or COG)."""
    keys = ("BLOCKSIZE", "BLOCKSIZE") if cog else ("BLOCKXSIZE", "BLOCKYSIZE")
    try:
        return int(_value(options, keys[0], str(BLOCK))), int(_value(options, keys[1], str(BLOCK)))
    except ValueError:
        return BLOCK, BLOCK


def _levels(cols: int, rows: int, block: tuple[int, int]) -> list[tuple[int, int]]:
    """(cols, rows) of a COG's full-resolution image and of each overview GDAL makes (down to one block)."""
    levels = [(cols, rows)]
    while cols > block[0] or rows > block[1]:
        cols, rows = math.ceil(cols / 2), math.ceil(rows / 2)
        levels.append((cols, rows))
    return levels


def _padded(cols: int, rows: int, bands: int, bits: int, block: tuple[int, int]) -> int:
    """Bytes of an uncompressed tiled image: whole blocks, each row of samples padded to a byte."""
    bx, by = block
    return math.ceil(cols / bx) * math.ceil(rows / by) * by * math.ceil(bx * bands * bits / 8)


def raw_bytes(cols: int, rows: int, bands: int, bits: int) -> int:
    """The pixels' own bytes: no file of them can be smaller uncompressed."""
    return math.ceil(cols * rows * bands * bits / 8)


def certain_bytes(cols: int, rows: int, bands: int, dtype, gtiff: list[str], cog: list[str] | None) -> int:
    """Bytes the finished output surely needs: its pixels when it is written uncompressed, else 0 (a compressed
    size is never certain)."""
    final = gtiff if cog is None else cog
    if _value(final, "COMPRESS", "none").lower() != "none":
        return 0
    return raw_bytes(cols, rows, bands, _bits(final, dtype) if cog is None else np.dtype(dtype).itemsize * 8)


def upper_bound(cols: int, rows: int, bands: int, dtype, gtiff: list[str], cog: list[str] | None) -> tuple[int, int]:
    """(bytes in the output folder, bytes of a COG's overviews file) no codec can exceed: with at least that much
    free the run fits, and nothing is measured."""
    bits = np.dtype(dtype).itemsize * 8
    if cog is None:
        return int(_padded(cols, rows, bands, bits, block_size(gtiff, False)) * WORST_CODEC) + HEADER, 0
    block = block_size(cog, True)
    levels = [_padded(c, r, bands, bits, block) for c, r in _levels(cols, rows, block)]
    inter = _padded(cols, rows, bands, bits, block_size(gtiff, False))
    overviews = sum(levels[1:])
    return int((inter + sum(levels) + overviews) * WORST_CODEC) + 3 * HEADER, int(overviews * WORST_CODEC) + HEADER


def sample_blocks(rows: int, cols: int, count: int = SAMPLE_BLOCKS) -> list[tuple[int, int, int, int]]:
    """(row, col, rows, cols) of up to ``count`` output blocks spread evenly over a ``rows`` x ``cols`` output (its
    edge blocks and nodata as often as the scene has them)."""
    grid = [(r, c, min(BLOCK, rows - r), min(BLOCK, cols - c))
            for r in range(0, rows, BLOCK) for c in range(0, cols, BLOCK)]
    if len(grid) > count:
        grid = [grid[int(i)] for i in np.linspace(0, len(grid) - 1, count).round()]
    return grid


def _compressed(blocks: list[np.ndarray], fill: float, options: list[str], driver: str) -> float:
    """Bytes per pixel of ``blocks`` (bands, h, w) in the output's type, laid side by side in BLOCK x BLOCK cells
    (the rest ``fill``, as GDAL pads a partial block) and written with ``options`` by ``driver``."""
    bands, dtype = blocks[0].shape[0], blocks[0].dtype
    mosaic = np.full((bands, BLOCK, BLOCK * len(blocks)), fill, dtype=dtype)
    for i, b in enumerate(blocks):
        mosaic[:, : b.shape[1], i * BLOCK : i * BLOCK + b.shape[2]] = b
    src = gdal.GetDriverByName("MEM").Create("", mosaic.shape[2], BLOCK, bands,
                                             gdal_array.NumericTypeCodeToGDALTypeCode(dtype))
    for i in range(bands):
        src.GetRasterBand(i + 1).WriteArray(mosaic[i])
    name = f"/vsimem/ksdiff-size-{uuid.uuid4().hex}.tif"
    opts = [o for o in options if _key(o) not in _DROPPED] + (["OVERVIEWS=NONE"] if driver == "COG" else [])
    try:
        dst, errors = gdal_try(gdal.GetDriverByName(driver).CreateCopy, name, src, 0, opts)
        if dst is not None:
            errors += close_dataset(dst)
        size = gdal.VSIStatL(name).size if gdal.VSIStatL(name) is not None else 0
    finally:
        gdal.Unlink(name)
    if errors or not size:   # the options were checked on a tiny copy: this is not expected; count it uncompressed
        return mosaic.dtype.itemsize * bands
    return size / sum(b.shape[1] * b.shape[2] for b in blocks)


def estimate(blocks: list[np.ndarray], cols: int, rows: int, fill: float | None, gtiff: list[str],
             cog: list[str] | None) -> SpaceNeed:
    """What the output takes, from ``blocks`` (``sample_blocks``' windows, fused and in the output's type) written
    with the output's options: ``gtiff`` the streamed GeoTIFF's (with COG, the intermediate's), ``cog`` the COG
    copy's. An uncompressed output is counted, not measured."""
    bands, dtype = blocks[0].shape[0], blocks[0].dtype
    fill = 0 if fill is None or (isinstance(fill, float) and math.isnan(fill) and dtype.kind != "f") else fill
    pixels = cols * rows

    def measured(options: list[str], driver: str) -> int:
        if _value(options, "COMPRESS", "none").lower() == "none":
            block = block_size(options, driver == "COG")
            bits = _bits(options, dtype) if driver == "GTiff" else dtype.itemsize * 8
            return _padded(cols, rows, bands, bits, block) + HEADER
        return int(_compressed(blocks, fill, options, driver) * pixels) + HEADER

    inter = measured(gtiff, "GTiff")
    if cog is None:
        return SpaceNeed(inter, inter, 0, codec("", gtiff) == "none", len(blocks))
    if codec("", cog) == "none":
        block = block_size(cog, True)
        final = sum(_padded(c, r, bands, dtype.itemsize * 8, block) for c, r in _levels(cols, rows, block)) + HEADER
    else:
        final = int(measured(cog, "COG") * (1 + OVERVIEW_SHARE))
    temp = int(inter * OVERVIEW_SHARE)   # GDAL writes the overviews' temporary file fast-compressed, as ``gtiff``
    return SpaceNeed(inter + final + temp, final, temp, False, len(blocks))


def _same_disk(a: str, b: str) -> bool:
    try:
        return os.stat(a).st_dev == os.stat(b).st_dev
    except OSError:
        return False


def temp_folder(output_folder: str) -> str | None:
    """The folder GDAL's COG driver writes its temporary overview file into when that is on another file system than
    ``output_folder``: CPL_TMPDIR (a GDAL config option or environment variable) when set; None otherwise (the
    file then lies beside the output, and the output folder's figure counts it)."""
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
        # QA: a file (/etc/hostname) was said not to exist
        state = "is a file, not a folder" if os.path.isfile(folder) else \
            "is not a folder" if os.path.exists(folder) else "does not exist"
        if state != "does not exist":
            fix = fix.replace("create it, set", "set")
        raise InputError(f"GDAL's temporary folder CPL_TMPDIR={folder} {state}: {fix}.")
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".ksdiff-write-test-")
        os.close(fd)
        os.remove(probe)
    except OSError as e:
        # QA: /proc said "No such file or directory": a pseudo file system (no blocks at all) holds no files
        pseudo = _total_blocks(folder) == 0
        why = "it is a pseudo file system such as /proc, where no file can be created" if pseudo else \
            e.strerror or str(e)
        raise InputError(f"GDAL's temporary folder CPL_TMPDIR={folder} cannot be written ({why}): "
                         f"{fix.replace('create it, set', 'set')}.") from None


def _total_blocks(folder: str) -> int | None:
    """The size of the file system holding ``folder`` (0 for /proc, /sys); None when unknown."""
    try:
        return shutil.disk_usage(folder).total
    except OSError:
        return None


def _grid_words(cols: int, rows: int, bands: int, dtype) -> str:
    return f"{cols}x{rows} px x {bands} bands of {np.dtype(dtype).name}"


def precheck(path: str, cols: int, rows: int, bands: int, dtype, gtiff: list[str], cog: list[str] | None) -> bool:
    """Before any pixel is read: InputError when the output surely cannot fit the free space of its folder (an
    uncompressed output's pixels alone exceed it); True when it may not fit (its folder, or a COG's CPL_TMPDIR, has
    less free than ``upper_bound``), so that ``estimate`` is worth its sample; False when it surely fits or the free
    space is unknown."""
    folder = os.path.dirname(os.path.abspath(path))
    free = free_space(folder)
    sure = certain_bytes(cols, rows, bands, dtype, gtiff, cog)
    if free is not None and sure > free:
        what = "the Cloud-Optimized GeoTIFF" if cog is not None else "the output"
        raise InputError(
            f"{what} needs {size_text(sure)} in {folder} ({_grid_words(cols, rows, bands, dtype)}, uncompressed) "
            f"and {size_text(free)} are free there: it cannot fit. Free space there, choose another output folder, "
            f"or write it compressed: {param('COMPRESSION', 'deflate')}. Nothing was written.")
    top, temp_top = upper_bound(cols, rows, bands, dtype, gtiff, cog)
    temp = temp_folder(folder) if cog is not None else None
    temp_free = free_space(temp) if temp else None
    return (free is not None and top > free) or (temp_free is not None and temp_top > temp_free)


def _how(need: SpaceNeed, cols: int, rows: int, bands: int, dtype, compression: str, cog: bool) -> str:
    grid = _grid_words(cols, rows, bands, dtype)
    if need.exact:
        return f"{grid}, uncompressed"
    sample = f"{need.blocks} fused sample block" + ("s" if need.blocks != 1 else "")
    if cog:
        return (f"{grid}: the Cloud-Optimized GeoTIFF about {size_text(need.file)} ({compression.upper()}), on the "
                f"disk with its intermediate file and overviews while it is written; measured on {sample}")
    return f"{grid}, {compression.upper()} as measured on {sample}"


def _shortfalls(path: str, need: SpaceNeed, cog: bool) -> list[tuple[str, int, int, str]]:
    """(where, bytes needed, bytes free, folder) for the output's folder and, for a COG whose CPL_TMPDIR is on
    another file system, GDAL's temporary folder; a folder whose free space is unknown is left out."""
    folder = os.path.dirname(os.path.abspath(path))
    temp = temp_folder(folder) if cog else None
    found = []
    free = free_space(folder)
    if free is not None:   # the overviews' file lies in CPL_TMPDIR when that is another disk
        found.append(("output", need.peak - (need.temp if temp else 0), free, folder))
    temp_free = free_space(temp) if temp else None
    if temp_free is not None:
        found.append(("temp", need.temp, temp_free, temp))
    return found


def space_warning(path: str, need: SpaceNeed, cols: int, rows: int, bands: int, dtype, compression: str,
                  cog: bool, learned: bool = False) -> str | None:
    """Before the first tile: InputError when the output ``path`` (``need``, from ``estimate``) or a COG's overviews
    (GDAL's temporary folder, CPL_TMPDIR on another file system) exceed the free space there by REFUSE_MARGIN: it
    cannot fit. Else one line for each that may not fit (within WARN_MARGIN, WARN_MARGIN_LEARNED when ``learned``
    may fuse: its output compresses worse than the MTF-GLP-HPM sample); None when it fits or the free space is
    unknown. ``compression``: the codec the output is written with."""
    warn = WARN_MARGIN_LEARNED if learned else WARN_MARGIN
    lines, refused = [], []
    for where, needed, free, folder in _shortfalls(path, need, cog):
        if needed * warn <= free:
            continue
        sure = needed > free * REFUSE_MARGIN
        if where == "output":
            lines.append(f"The output {'needs' if sure else 'may need'} about {size_text(needed)} in {folder} "
                         f"({_how(need, cols, rows, bands, dtype, compression, cog)}) and {size_text(free)} are free"
                         + (": it cannot fit. Free space there or choose another output folder." if sure else
                            ": the run may fail when writing; free space or choose another output folder."))
        else:   # QA: a full CPL_TMPDIR failed the COG pass after the fusion, with room in the output folder
            fix = ("set CPL_TMPDIR to a folder with room, or unset it (they are then written beside the "
                   "output)")
            lines.append(f"The Cloud-Optimized GeoTIFF's overviews {'need' if sure else 'may need'} about "
                         f"{size_text(needed)} in GDAL's temporary folder CPL_TMPDIR={folder} and {size_text(free)} "
                         "are free there" + (f": they cannot fit. Free space there, {fix}." if sure else
                                             f": the run may fail when writing them; free space there, {fix}."))
        refused.append(sure)
    if any(refused):
        raise InputError(" ".join(ln for ln, sure in zip(lines, refused) if sure)
                         + " A run is refused when the measured size exceeds the free space by more than "
                           f"{round((REFUSE_MARGIN - 1) * 100)} %, beyond the measurement's error. "
                           "Nothing was written.")
    return " ".join(lines) or None


def temp_failure(path: str, action: str, errors: list[str], folder: str, free_before: int | None,
                 needed: int | None) -> str:
    """``writer.write_failure``'s message for a COG pass that filled GDAL's temporary folder ``folder``
    (CPL_TMPDIR), not the output's: where, what it needed (``SpaceNeed.temp``, as ``space_warning`` says it, when
    measured) and what was free there when the run started (measured now when unknown)."""
    free, when = (free_before, "when the run started") if free_before is not None else (free_space(folder), "now")
    had = f"; {size_text(free)} were free there {when}" if free is not None else ""
    need = f": they needed about {size_text(needed)}" if needed else ""
    return (f"writing the output {quoted(path)} failed while {action}: no space left on device in GDAL's "
            f"temporary folder CPL_TMPDIR={folder}, where the overviews are written{need}{had} (free up space there, "
            "set CPL_TMPDIR to a folder with room, or unset it to write them beside the output); the partial file was "
            f"removed and any earlier output there is unchanged (GDAL: {'; '.join(errors[:3])})")
