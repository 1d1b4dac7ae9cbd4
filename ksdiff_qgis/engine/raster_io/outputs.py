"""Output GeoTIFF options: compression, predictor, multi-threaded encoding and Cloud-Optimized GeoTIFF.

The default, DEFLATE level 1 with the horizontal predictor (floating-point predictor for float data),
encoded by all cores, was measured fastest among the lossless choices at about the size of DEFLATE
level 6 (docs/BENCHMARKS_SPEED.md). An MS product with fewer significant bits than its type (NBITS,
e.g. 11-bit WorldView) is written as plain samples of its type with the predictor, not bit-packed: GDAL
packs bits slowly and allows no predictor on packed samples, so packing doubles the encoding time and
makes the file ~13 % larger. The values stay within the product's range (``raster_io.to_dtype``); only
the bit depth is not recorded. ``NBITS=11`` in the creation options packs them as the input was.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np
from osgeo import gdal

from ..blockcache import capped_cache
from ..errors import Cancelled, InputError
from ..gdalutil import close_dataset, crs_name, gdal_call, gdal_text, gdal_try, gdal_try_warned, os_path, text_metadata
from ..labels import param
from ..numbers import share
from ..provenance import PREFIX
from . import space
from .dtypes import output_nodata
from .partials import total_size
from .writer import LOW_SPACE, GeoTiffWriter, write_failure

if TYPE_CHECKING:   # saturation imports raster_io: the type only
    from ..saturation import Top
    from .info import RasterInfo

CREATE = param("CREATE_OPTIONS")   # the option as the dialog names it, in the notes about it

COMPRESSIONS = {
    "deflate": "DEFLATE (lossless, readable everywhere)",
    "zstd": "ZSTD (lossless, faster to read, GDAL 2.3 or later)",
    "lzw": "LZW (lossless)",
    "none": "None (largest files)",
}
DEFAULT_COMPRESSION = "deflate"
LEVELS = {"deflate": ("ZLEVEL", 1), "zstd": ("ZSTD_LEVEL", 1)}   # speed first: ~2 % larger than level 6/9
BLOCK = 256
# PHOTOMETRIC=MINISBLACK: GTiff would store 3 or 4 Byte bands as RGB(A), and QGIS would draw a 4th band (NIR) as
# transparency; which bands are red, green and blue is set from their names afterwards (bandcolour)
BASE = ["TILED=YES", f"BLOCKXSIZE={BLOCK}", f"BLOCKYSIZE={BLOCK}", "BIGTIFF=IF_SAFER", "NUM_THREADS=ALL_CPUS",
        "PHOTOMETRIC=MINISBLACK"]


# the MS's dataset metadata the output keeps: its default domain (what gdal_translate keeps) and IMAGERY (sensor,
# acquisition); not the domains that describe the input file (IMAGE_STRUCTURE, RPC, GEOLOCATION, SUBDATASETS, xml:...)
KEPT_DOMAINS = ("", "IMAGERY")
# keys that describe the input's pixels or grid, not the output's: statistics of the MS's values, AREA_OR_POINT
# (the output lies on the PAN's grid, written as GeoTIFF's default, pixel is area), and the MS file's own TIFF
# DateTime and ImageDescription (QA: the fused file claimed the input's time and its description, e.g. "radiance x100
# crop"; TIFFTAG_SOFTWARE is replaced by ``provenance``), its document and page names and host computer (QA134: a
# local path, /home/alice/...), and NITF's corner coordinates; TIFFTAG_ARTIST and TIFFTAG_COPYRIGHT credit the data
# and are kept
_DROPPED = ("STATISTICS_", "AREA_OR_POINT", "TIFFTAG_DATETIME", "TIFFTAG_IMAGEDESCRIPTION", "TIFFTAG_DOCUMENTNAME",
            "TIFFTAG_PAGENAME", "TIFFTAG_HOSTCOMPUTER", "NITF_IGEOLO")
# a key naming the input's footprint (Sentinel-2's FOOTPRINT: the whole input tile, not the fused area) anywhere in it
_DROPPED_WORDS = ("FOOTPRINT",)
# the longest metadata value copied (characters): a NetCDF history of 200,000 characters went into every output's
# GDAL_METADATA tag (QA134); a longer one is left out and named in the log (a cut value could be broken XML or JSON)
MAX_VALUE = 4096


def _dropped(key: str) -> bool:
    key = key.upper()
    return key.startswith(_DROPPED) or any(w in key for w in _DROPPED_WORDS)


def _kept(items: dict | None, long: list[str], where: str = "") -> dict:
    """``items`` without the ``_dropped`` keys and the values longer than MAX_VALUE (named in ``long``)."""
    kept = {}
    for k, v in (items or {}).items():
        if _dropped(k):
            continue
        if len(v) > MAX_VALUE:
            long.append(f"{where}{k} ({len(v):,} characters)")
            continue
        kept[k] = v
    return kept


def copy_metadata(dst: gdal.Dataset, src: gdal.Dataset, bands: list[int]) -> list[str]:
    """Give the output ``dst`` the metadata of the MS ``src`` that still hold for the fused values: the dataset's
    default and IMAGERY domains, and per output band that of its MS band (``bands``, 1-based, in output order): unit
    type (e.g. reflectance), scale/offset (the output's values are the MS's stored numbers) and band metadata (e.g.
    WAVELENGTH), without statistics nor the keys that describe the input file (``_DROPPED``). Band names and colours
    are the writer's and ``bandcolour``'s. Returns a line for the log naming the values left out for their length."""
    long: list[str] = []
    for domain in KEPT_DOMAINS:
        # text_metadata: a value that is not UTF-8 comes back as bytes
        items = _kept(text_metadata(src, domain), long, f"{domain}:" if domain else "")
        if items:
            gdal_call(dst.SetMetadata, {**text_metadata(dst, domain), **items}, domain)
    for i, b in enumerate(bands, start=1):
        sb, db = src.GetRasterBand(b), dst.GetRasterBand(i)
        scale, offset = sb.GetScale(), sb.GetOffset()
        if (scale or 1.0) != 1.0 or (offset or 0.0) != 0.0:
            gdal_call(db.SetScale, scale or 1.0)
            gdal_call(db.SetOffset, offset or 0.0)
        if sb.GetUnitType():
            gdal_call(db.SetUnitType, sb.GetUnitType())
        items = _kept(text_metadata(sb), long, f"band {b} ")
        if items:
            gdal_call(db.SetMetadata, {**text_metadata(db), **items})
    if not long:
        return []
    return [f"not copied from the MS's metadata, longer than {MAX_VALUE} characters: {', '.join(long)}"]


def parse_options(text: str | list[str] | None) -> list[str]:
    """``KEY=VALUE`` items from QGIS's '|'-separated creation options string (or a list), validated."""
    if not text:
        return []
    items = text if isinstance(text, list) else text.split("|")
    out = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        if "=" not in item or not item.split("=", 1)[0]:
            raise InputError(f"creation option {item!r} is not of the form KEY=VALUE (e.g. ZLEVEL=9; several are "
                             "separated by |)")
        out.append(item)
    return out


# the NBITS a GTiff of each unsigned integer width takes (GDAL keeps a narrower request at the type's own floor)
NBITS_RANGE = {1: (1, 8), 2: (9, 16), 4: (17, 32)}
# an NBITS above which more than this share of the MS's sampled values lie is refused (``clipping.WARN_FRACTION``:
# the share whose clipping the run warns of); fewer, a few saturated or hot pixels, are clipped and counted
NBITS_CLIP_SHARE = 0.001


def asked_nbits(extra: list[str]) -> int | None:
    """The ``NBITS=`` of the creation options ``extra`` (the last one given), None without one; InputError when it
    is no whole number (ksdiff:pansharpen's parameter check runs it; ``output_nbits`` checks it against the data)."""
    asked = [o.split("=", 1)[1] for o in extra if _key(o) == "NBITS"]
    if not asked:
        return None
    try:
        return int(asked[-1])
    except ValueError:
        raise InputError(f"creation option NBITS={asked[-1]} is not a whole number") from None


def output_nbits(extra: list[str], dtype, nbits: int | None, top: Top | None = None,
                 band: Callable[[int], str] | None = None) -> int | None:
    """The significant bits of the output: a ``NBITS=`` creation option, checked against the data (InputError
    when the type cannot take it (float or signed: GDAL writes NBITS for unsigned types only), when it is narrower
    than the product's own NBITS, or, given the MS's sampled ``top`` (``SceneStats.ms_top``), when more than
    ``NBITS_CLIP_SHARE`` of any band's values lie above it: values would be lost), else the product's ``nbits``.
    ``band``: names a 0-based MS band in that refusal ('MS band 4 (NIR)'; None: 'MS band 4')."""
    value = asked_nbits(extra)
    if value is None:
        return nbits
    dt = np.dtype(dtype)
    if dt.kind == "f":
        raise InputError("creation option NBITS applies to integer outputs; this output is floating point")
    if dt.kind == "i":   # GDAL drops NBITS on signed types, while value_range would still clip at 2**n-1 (QA136)
        raise InputError(f"creation option NBITS applies to unsigned integer outputs (GDAL writes it for those only); "
                         f"this output is {dt} (signed): leave NBITS out")
    lo, hi = NBITS_RANGE.get(dt.itemsize, (1, dt.itemsize * 8))
    if not lo <= value <= hi:
        raise InputError(f"creation option NBITS={value} does not fit a {dt} output ({lo} to {hi})")
    if nbits and value < nbits:
        raise InputError(f"creation option NBITS={value} is narrower than the product's {nbits} bits (values up to "
                         f"{2 ** nbits - 1}): they would be clipped at {2 ** value - 1}")
    shares = [] if top is None else top.shares_above(value)
    worst = int(np.argmax(shares)) if shares else 0
    if shares and shares[worst] > NBITS_CLIP_SHARE:   # a product that declares no NBITS (QA134)
        need = int(top.value).bit_length()
        use = f"Use NBITS={need} or leave NBITS out" if need < hi else "Leave NBITS out"
        name = band(worst) if band is not None else f"MS band {worst + 1}"
        widths = top.widths[worst]
        raise InputError(f"creation option NBITS={value} holds values up to {2 ** value - 1}, but "
                         f"{share(sum(widths[value + 1:]), sum(widths))} of the values sampled in {name} lie above it "
                         f"(the MS's up to {top.value:g}): they would be written as {2 ** value - 1}. {use}")
    return value


def nbits_nodata_note(pan: RasterInfo, ms: RasterInfo, nbits: int | None) -> str:
    """A warning when the output's NBITS (``output_nbits``) cannot hold the nodata value the output would otherwise
    take: GDAL cut 65535 to 4095 at NBITS=12 and the holes read as bright data (QA134); '' when it holds it."""
    kept = output_nodata(pan, ms)[0]
    value, why = output_nodata(pan, ms, nbits)
    if nbits is None or kept is None or value == kept:
        return ""
    return f"{CREATE} NBITS={nbits} holds values up to {2 ** nbits - 1}, not the nodata value {kept:g}: the output's " \
           f"nodata is {why}."


def _key(option: str) -> str:
    """The key of a ``KEY=VALUE`` creation option, as GDAL compares them (case-insensitive)."""
    return option.split("=", 1)[0].strip().upper()


# keys the streamed writer sets itself: tiles (it writes tile by tile) and PHOTOMETRIC (band colours follow the
# band names; PHOTOMETRIC=RGB tagged band 1 red whatever it held)
FIXED_KEYS = ("TILED", "PHOTOMETRIC")


def fixed_key_notes(extra: list[str]) -> list[str]:
    """Warnings for CREATE_OPTIONS keys a GeoTIFF output does not take from the user (``FIXED_KEYS``), each with its
    own reason; TILED=YES asks for what the writer does anyway and gets none."""
    notes = []
    for o in extra:
        key, value = _key(o), o.split("=", 1)[1].strip().upper() if "=" in o else ""
        if key == "TILED" and value not in ("YES", "TRUE", "ON", "1"):
            notes.append(f"{CREATE} {o}: not used — the output is written in tiles.")
        elif key == "PHOTOMETRIC":
            notes.append(f"{CREATE} {o}: not used — the output's band colours follow its band names.")
    return notes


def _merge(base: list[str], extra: list[str]) -> list[str]:
    """``base`` with every key given in ``extra`` replaced by ``extra``'s value (case-insensitive keys)."""
    keys = {_key(e) for e in extra}
    return [o for o in base if _key(o) not in keys] + extra


def _predictor(dtype_kind: str) -> str:
    return "3" if dtype_kind == "f" else "2"


def gtiff_options(dtype_kind: str, compression: str = DEFAULT_COMPRESSION, extra: list[str] | None = None,
                  nbits: int | None = None) -> list[str]:
    """GTiff creation options for a streamed, tiled output of data kind ``dtype_kind`` ('u', 'i' or 'f');
    ``nbits``: significant bits of an integer product narrower than its type (bit-packed)."""
    if compression not in COMPRESSIONS:
        raise InputError(f"unknown compression {compression!r}; choose one of {', '.join(COMPRESSIONS)}")
    opts = list(BASE)
    if compression != "none":
        opts += [f"COMPRESS={compression.upper()}", f"PREDICTOR={_predictor(dtype_kind)}"]
        if compression in LEVELS:
            key, level = LEVELS[compression]
            opts.append(f"{key}={level}")
    else:
        opts.append("COMPRESS=NONE")
    if nbits:
        opts.append(f"NBITS={nbits}")
    opts = _merge(opts, [o for o in extra or [] if _key(o) not in FIXED_KEYS])
    packed = [o for o in opts if o.upper().startswith("NBITS=") and o.split("=", 1)[1] not in ("8", "16", "32", "64")]
    if packed:   # GDAL refuses a predictor on bit-packed samples
        opts = [o for o in opts if not o.upper().startswith("PREDICTOR=")]
    return opts


def cog_options(dtype_kind: str, compression: str = DEFAULT_COMPRESSION, extra: list[str] | None = None) -> list[str]:
    """COG driver creation options matching ``gtiff_options``."""
    opts = [f"BLOCKSIZE={BLOCK}", "BIGTIFF=IF_SAFER", "NUM_THREADS=ALL_CPUS", "OVERVIEW_RESAMPLING=AVERAGE",
            f"COMPRESS={compression.upper()}"]
    if compression != "none":
        opts.append("PREDICTOR=" + ("FLOATING_POINT" if dtype_kind == "f" else "STANDARD"))
        if compression in LEVELS:
            opts.append(f"LEVEL={LEVELS[compression][1]}")
    return _merge(opts, list(extra or []))


# COG options that make GDAL warp the output onto another grid than the PAN's (GDAL's own reprojection: it adds an
# alpha band when the output has no nodata value, and drops the band names)
REGRID_KEYS = ("TARGET_SRS", "TILING_SCHEME", "RES", "EXTENT")
TILE_LAYOUT = PREFIX + "TILE_LAYOUT"   # the pipeline's tiling tag (``provenance``)


def regrids(options: list[str]) -> bool:
    """``options`` (a COG's) make GDAL warp the output (TILING_SCHEME=CUSTOM, the default, does not)."""
    return any(_key(o) in REGRID_KEYS and not (_key(o) == "TILING_SCHEME" and o.split("=", 1)[1].strip().upper()
                                               == "CUSTOM") for o in options)


def intermediate_options(dtype_kind: str) -> list[str]:
    """Options of the temporary GeoTIFF a COG is copied from: fast to write and to read back."""
    return gtiff_options(dtype_kind, "zstd")


def write_cog(src_path: str, dst_path: str, options: list[str],
              is_cancelled: Callable[[], bool] = lambda: False, output: str | None = None,
              failure: Callable[[str, list[str]], str] | None = None,
              progress: Callable[[float], None] | None = None) -> None:
    """Copy the finished GeoTIFF ``src_path`` to a Cloud-Optimized GeoTIFF (with overviews) at ``dst_path``;
    ``output`` (the user's file, default ``dst_path``) is the one a failure message names; ``failure(action,
    errors)`` words it (default ``write_failure`` with what the copy had written), before the copy is removed.
    ``progress``: told GDAL's fraction done of the copy."""
    src, msg = gdal_call(gdal.OpenEx, src_path, gdal.OF_RASTER | gdal.OF_READONLY)
    if src is None:
        raise OSError(f"reading back the output failed: {msg}")
    stop = []

    def callback(fraction, _message, _data):
        # the run's progress bar checks cancel too (``progress.RunProgress``): a Cancelled must not escape into GDAL
        try:
            if is_cancelled():
                raise Cancelled("cancelled by the user")
            if progress is not None:
                progress(fraction)
        except Cancelled:
            stop.append(True)
            return 0
        return 1

    # every error of the copy is kept: a full disk shows first as "No space left on device" there, and the
    # copy may still return a dataset whose close then only says the TIFF directory could not be written
    with capped_cache():   # else the copy's blocks and overviews grow the cache with the scene
        dst, errors = gdal_try(gdal.GetDriverByName("COG").CreateCopy, dst_path, src, 0, options, callback=callback)
        if dst is not None:
            errors += close_dataset(dst)
        elif not errors:
            errors = ["no dataset"]
        del dst
    close_dataset(src)
    del src
    if errors or stop:
        action = "writing the Cloud-Optimized GeoTIFF"
        message = "" if stop else (failure(action, errors) if failure else
                                   write_failure(output or dst_path, action, errors, total_size([dst_path])))
        if os.path.exists(os_path(dst_path)):
            os.remove(os_path(dst_path))
        if stop:
            raise Cancelled("cancelled by the user")
        raise OSError(message)


class CogWriter(GeoTiffWriter):
    """Streams tile rows into a temporary tiled GeoTIFF like ``GeoTiffWriter``; ``commit()`` copies that to
    a Cloud-Optimized GeoTIFF (overviews, COG layout) beside it and commits the copy in its place."""

    def __init__(self, path: str, width: int, height: int, ms, gt, wkt: str, band_names: list[str],
                 nodata: float | None, *args, cog_options: list[str], is_cancelled: Callable[[], bool] = lambda: False,
                 temp_needed: int | None = None, **kwargs):
        """``needed`` (the output folder's, at the peak) and ``temp_needed`` (a CPL_TMPDIR's): what the run's
        free-space warning measured (``space.estimate``), so that a full disk's message agrees; None: not measured."""
        # its options were checked before any work (``checked_options``)
        super().__init__(path, width, height, ms, gt, wkt, band_names, nodata, *args, **kwargs)
        if nodata is not None and regrids(cog_options):   # GDAL's warp marks outside the scene with it: no alpha band
            cog_options = _merge(["ADD_ALPHA=NO"], cog_options)   # (unless the user's ADD_ALPHA says otherwise)
        self.cog_options, self.is_cancelled = cog_options, is_cancelled
        self.staged = self.tmp_path
        # GDAL writes the overviews' temporary file into CPL_TMPDIR when set: its disk may fill, not the output's
        self.temp_folder = space.temp_folder(self.folder)
        self.temp_needed = temp_needed
        self.temp_free_at_start = space.free_space(self.temp_folder) if self.temp_folder else None

    def _output_had_room(self) -> bool:
        """The output folder had the room the run needed at the start (not measured: there was room) and still has
        some."""
        free_now = space.free_space(self.folder)
        needed = self.needed and self.needed - (self.temp_needed or 0)   # the overviews' file was not to lie here
        return ((self.free_at_start is None or not needed or self.free_at_start >= needed)
                and (free_now is None or free_now >= LOW_SPACE))

    def _cog_failure(self, action: str, errors: list[str]) -> str:
        """``failure`` of the COG pass: it needs room for the intermediate file and the COG at once (the figure the
        free-space warning said), and, with CPL_TMPDIR on another disk, room there for the overviews: a full disk
        there is said there (QA: a full CPL_TMPDIR was reported as the output folder's, with 58 GB free)."""
        full = "no space left" in " ".join(errors).lower()
        if full and self.temp_folder and self._output_had_room():
            return space.temp_failure(self.path, action, errors, self.temp_folder, self.temp_free_at_start,
                                      self.temp_needed)
        needed = self.needed and self.needed - ((self.temp_needed or 0) if self.temp_folder else 0)
        return write_failure(self.path, action, errors, total_size(self.own_files()), self.free_at_start, needed)

    def commit(self, cancelled: Callable[[], bool] | None = None,
               progress: Callable[[float], None] | None = None) -> list[str]:
        if self.ds is not None and regrids(self.cog_options):
            # the tiles lay on the PAN's grid, the file GDAL writes on another: the tag says both, in the file itself
            layout = self.ds.GetMetadataItem(TILE_LAYOUT)
            if layout:
                self.ds.SetMetadataItem(TILE_LAYOUT, regridded_layout(layout, self.ds, self.cog_options))
        self.close_checked()
        cog = self.staged + ".cog"
        write_cog(self.staged, cog, self.cog_options, cancelled or self.is_cancelled, output=self.path,
                  failure=self._cog_failure, progress=progress)
        # the base class renames tmp_path into place; the staged file keeps its lock until then
        self.tmp_path = cog
        self.ds = gdal.OpenEx(cog, gdal.OF_RASTER | gdal.OF_READONLY)
        # GDAL's copy leaves the IMAGERY domain out (and a warping one the band names), and writing them into the COG
        # would move its directory to the end (no longer a COG): they go to the .aux.xml beside it, which the commit
        # moves along; written here, not by GDAL's PAM, which would repeat there what the COG holds (QA134)
        staged = gdal.OpenEx(self.staged, gdal.OF_RASTER | gdal.OF_READONLY)
        notes = []
        if staged is not None:
            lost = lost_bands(staged, self.ds)
            write_sidecar(cog + ".aux.xml", text_metadata(staged, "IMAGERY"), lost)
            notes = [n for n in [regrid_note(staged, self.ds, self.cog_options, bool(lost))] if n]
        staged = None
        return notes + super().commit(cancelled)   # which also deletes the staged file (it is one of ``own_files``)


def lost_bands(staged: gdal.Dataset, cog: gdal.Dataset) -> dict[int, tuple[str, int | None]]:
    """{band: (name, colour interpretation or None)} of the bands of ``staged`` whose name or colour the COG copy
    ``cog`` lost (GDAL 3.6's warp with an added alpha band drops the names)."""
    lost = {}
    for b in range(1, staged.RasterCount + 1):
        s, c = staged.GetRasterBand(b), cog.GetRasterBand(b)
        name, colour = gdal_text(s.GetDescription()), s.GetColorInterpretation()
        if gdal_text(c.GetDescription()) != name or c.GetColorInterpretation() != colour:
            lost[b] = (name, colour if c.GetColorInterpretation() != colour else None)
    return lost


def write_sidecar(path: str, imagery: dict[str, str], bands: dict[int, tuple[str, int | None]]) -> None:
    """The PAM ``.aux.xml`` of a COG at ``path``: its IMAGERY metadata and the band names (and colours) ``bands``
    the COG lacks, nothing else; none when there is nothing to keep. GDAL's serializer escapes the text."""
    def attr(key: str, value: str) -> list:
        return [gdal.CXT_Attribute, key, [gdal.CXT_Text, value]]

    tree: list = [gdal.CXT_Element, "PAMDataset"]
    if imagery:
        tree.append([gdal.CXT_Element, "Metadata", attr("domain", "IMAGERY"),
                     *[[gdal.CXT_Element, "MDI", attr("key", k), [gdal.CXT_Text, v]] for k, v in imagery.items()]])
    for b, (name, colour) in bands.items():
        items = [[gdal.CXT_Element, "Description", [gdal.CXT_Text, name]]] if name else []
        if colour is not None:
            items.append([gdal.CXT_Element, "ColorInterp", [gdal.CXT_Text, gdal.GetColorInterpretationName(colour)]])
        tree.append([gdal.CXT_Element, "PAMRasterBand", attr("band", str(b)), *items])
    if len(tree) > 2:
        with open(os_path(path), "w", encoding="utf-8") as f:
            f.write(gdal.SerializeXMLTree(tree))


def _regrid_asked(options: list[str]) -> str:
    """The COG options that make GDAL warp the output, as the user gave them ('TARGET_SRS=EPSG:4326')."""
    return "|".join(o for o in options if _key(o) in REGRID_KEYS)


def regridded_layout(layout: str, staged: gdal.Dataset, options: list[str]) -> str:
    """KSDIFF_TILE_LAYOUT of a COG GDAL warps (``regrids``): the tiling ``layout``, on the fused grid of ``staged``
    (the PAN's), and that the file's grid is GDAL's (QA: it said '1 tile of 256x256 px (the whole output)' of a
    275x237 px EPSG:4326 file)."""
    return (f"{layout}, on the PAN's grid ({staged.RasterXSize}x{staged.RasterYSize} px in "
            f"{crs_name(staged.GetProjection())}); GDAL's COG driver then warped it onto this file's grid "
            f"({_regrid_asked(options)})")


def regrid_note(staged: gdal.Dataset, cog: gdal.Dataset, options: list[str], names_kept: bool) -> str | None:
    """The log line for a COG that GDAL warped (``regrids``) onto another grid than the fused file ``staged``'s: its
    size, CRS and any alpha band GDAL added (QA134: the log and KSDIFF_TILE_LAYOUT described the PAN's 256x256 px grid
    of a 275x237 px EPSG:4326 file with 5 bands)."""
    def grid(ds: gdal.Dataset) -> tuple:
        return ds.RasterXSize, ds.RasterYSize, ds.GetGeoTransform(), ds.RasterCount

    if grid(staged) == grid(cog):
        return None
    same_crs = staged.GetSpatialRef() is not None and cog.GetSpatialRef() is not None and bool(
        staged.GetSpatialRef().IsSame(cog.GetSpatialRef()))
    line = (f"GDAL's COG driver {'resampled' if same_crs else 'reprojected'} the output ({_regrid_asked(options)}): "
            f"the file is {cog.RasterXSize}x{cog.RasterYSize} px in {crs_name(cog.GetProjection())}, not on the PAN's "
            f"grid the lines above describe (its {TILE_LAYOUT} says so)")
    added = [b for b in range(staged.RasterCount + 1, cog.RasterCount + 1)]
    alpha = [b for b in added if cog.GetRasterBand(b).GetColorInterpretation() == gdal.GCI_AlphaBand]
    if alpha:
        line += (f"; it added band {alpha[0]}, an alpha band (transparent outside the fused area: the output has no "
                 "nodata value)")
    if names_kept:
        line += "; GDAL dropped the band names: they are kept in its .aux.xml"
    return line + "."


def _listing(driver: str) -> str:
    return gdal.GetDriverByName(driver).GetMetadataItem(gdal.DMD_CREATIONOPTIONLIST) or ""


def driver_keys(driver: str) -> set[str]:
    """The creation option names ``driver`` documents (its DMD_CREATIONOPTIONLIST)."""
    return {m.upper() for m in re.findall(r"<Option[^>]*\bname=['\"]([^'\"]+)['\"]", _listing(driver))}


def option_choices(driver: str, key: str) -> tuple[list[str], str]:
    """What ``driver``'s creation option ``key`` takes, from its DMD_CREATIONOPTIONLIST: ``(values, about)``, the
    values of an enumerated option (a value's alias bracketed: 'STANDARD (2)') and the type and description of the
    option ('int: DEFLATE compression level 1-12'); empty when the driver does not document it."""
    for m in re.finditer(r"<Option\b([^>]*?)(/>|>(.*?)</Option>)", _listing(driver), re.S):
        attrs = dict(re.findall(r"(\w+)=['\"]([^'\"]*)['\"]", m.group(1)))
        if attrs.get("name", "").upper() != key:
            continue
        values = [(dict(re.findall(r"(\w+)=['\"]([^'\"]*)['\"]", a)), v.strip())
                  for a, v in re.findall(r"<Value\b([^>]*)>([^<]*)</Value>", m.group(3) or "")]
        # an alias of another value (ALPHA=YES) is left out
        shown = [v + (f" ({a['alias']})" if "alias" in a else "") for a, v in values if "aliasOf" not in a]
        return shown, ": ".join(x for x in (attrs.get("type", ""), attrs.get("description", "")) if x) + _bounds(attrs)
    return [], ""


# GDAL's warnings for a value it does not recognise: the option is then dropped, and with it the default it replaced
# (QA: COMPRESS=FOO replaced our DEFLATE and the file was written uncompressed, 4.85x larger)
_BAD_VALUE = (re.compile(r"'(?P<value>.*)' is an unexpected value for (?P<key>\w+) creation option", re.S),
              re.compile(r"^(?P<key>\w+)=(?P<value>.*?) (value )?(not recognised|unsupported|is not supported)", re.S))
# GDAL's warning for an option name the driver does not know: ``check_options`` names those itself
_UNKNOWN_KEY = re.compile(r"does not support (the )?creation option", re.I)


def _bad_values(messages: list[str], options: list[str]) -> dict[str, str]:
    """{KEY: the option as the user wrote it} for every option whose value GDAL's ``messages`` reject."""
    given = {_key(o): o for o in options}
    bad = {}
    for msg in messages:
        for pattern in _BAD_VALUE:
            m = pattern.search(msg)
            if m and m.group("key").upper() in given:
                bad[m.group("key").upper()] = given[m.group("key").upper()]
                break
    return bad


def _separator_hint(options: list[str]) -> str:
    """The corrected text when a ``;`` or ``,`` inside a value is the likely cause of a rejected value (QA, de_DE:
    ``COMPRESS=LZW;NBITS=11``)."""
    joined = [o for o in options if re.search(r"[;,]\s*[A-Za-z_]\w*=", o.split("=", 1)[1])]
    if not joined:
        return ""
    fixed = ["|".join(p.strip() for p in re.split(r"[;,]\s*(?=[A-Za-z_]\w*=)", o)) for o in joined]
    return (f" A ; or , inside a value is the likely cause: {', '.join(joined)} — write {', '.join(fixed)} "
            "(creation options are separated by |).")


def _bounds(attrs: dict[str, str]) -> str:
    """', at least 128' for an option's documented min (and max): GDAL's own reason for refusing a value (QA134:
    BLOCKSIZE=64 was refused with "Tile size in pixels", GDAL's 'should be >= 128' left out)."""
    low, high = attrs.get("min"), attrs.get("max")
    if low and high:
        return f", {low} to {high}"
    return f", at least {low}" if low else f", at most {high}" if high else ""


def _value_refusal(driver: str, key: str, option: str) -> str:
    """'COMPRESS=FOO: GDAL's GTiff driver does not take this value; choose one of NONE, LZW, ...'."""
    values, about = option_choices(driver, key)
    return (f"{option}: GDAL's {driver} driver does not take this value"
            + (f"; choose one of {', '.join(values)}" if values else f" ({about})" if about else ""))


@dataclass(frozen=True)
class OutputGrid:
    """Where the output lies: its CRS (WKT, '' when none), geotransform and size in pixels."""

    wkt: str
    gt: tuple[float, ...]
    cols: int
    rows: int


TRIAL = 32   # pixels per side of the trial copy ``check_options`` writes


def _georeference(ds: gdal.Dataset, grid: OutputGrid | None) -> None:
    """The trial copy ``ds`` placed over the output's extent in its CRS (its pixels TRIAL/cols and TRIAL/rows as large):
    options that need georeferencing (COG TARGET_SRS, TILING_SCHEME) are tried as the output will meet them (QA:
    without it GDAL refused TARGET_SRS=EPSG:3857 with 'Unable to compute a transformation ... no affine transformation
    and no GCPs')."""
    if grid is None or not grid.wkt:
        return   # an output without a CRS: GDAL's refusal of such options is then the truth
    sx, sy = grid.cols / TRIAL, grid.rows / TRIAL
    gt = grid.gt
    ds.SetGeoTransform((gt[0], gt[1] * sx, gt[2] * sy, gt[3], gt[4] * sx, gt[5] * sy))
    ds.SetProjection(grid.wkt)


def check_options(info, options: list[str], driver: str = "COG", grid: OutputGrid | None = None) -> list[str]:
    """The ``driver`` (GTiff or COG) takes ``options`` for data like ``info``'s (its bands and type): tried on a 32x32
    copy in memory before any work (a rejected option — COMPRESS=JPEG on 16-bit data, PREDICTOR=3 on integers,
    BLOCKXSIZE=100 — used to fail after the fusion, or at its first block, as a write error). InputError when it
    refuses, or when it does not recognise a value (COMPRESS=FOO, BIGTIFF=MAYBE, ZLEVEL=13: GDAL drops it with a
    console warning, and with it the default it replaced), naming the values the option takes; returns warnings for
    option names the driver does not know (GDAL drops them, saying so only on the console: e.g. ZLEVEL or NBITS with
    the COG driver) and for GDAL's other warnings. ``grid``: the output's, given to the copy (``_georeference``)."""
    src = gdal.GetDriverByName("MEM").Create("", TRIAL, TRIAL, info.bands, info.gdal_type)
    _georeference(src, grid)
    for b in range(info.bands):
        src.GetRasterBand(b + 1).Fill(1)   # blocks of zeros may be skipped, and with them the encoder's checks
    target = f"/vsimem/ksdiff_{driver.lower()}_check_{os.getpid()}_{id(src)}.tif"
    # one thread: the encoder's complaints then reach this thread's error handler (NUM_THREADS encodes elsewhere)
    single = _merge(options, ["NUM_THREADS=1"])
    out, errors, warned = gdal_try_warned(gdal.Translate, target, src, format=driver, creationOptions=single)
    if out is not None:
        errors += close_dataset(out)   # the last blocks are encoded when it closes
    elif not errors:
        errors = ["GDAL refused them"]
    out = None
    gdal_call(gdal.Unlink, target)   # raises under GDAL exceptions when the copy never made it
    what = "Cloud-Optimized GeoTIFF" if driver == "COG" else "GeoTIFF"
    # the trial copy is no one's file; the encoder repeats itself per block
    errors = list(dict.fromkeys(re.sub(rf"{re.escape(target)}:?\s*", "", e) for e in errors if e))
    bad = _bad_values(errors + warned, options)
    if errors or bad:
        said = [e for e in errors if not _bad_values([e], list(bad.values()))]   # a rejected value once
        data = f"{info.bands} band(s) of {gdal.GetDataTypeName(info.gdal_type)}"
        raise InputError(f"the {what} ({data}) cannot be written with these creation options ({CREATE}): "
                         + "; ".join([_value_refusal(driver, k, o) for k, o in bad.items()] + said).rstrip(".")
                         + "." + _separator_hint(list(bad.values())))
    known = driver_keys(driver)
    unknown = sorted({o.split("=", 1)[0].upper() for o in options} - known) if known else []
    notes = [f"{CREATE}: the {what} driver does not know {', '.join(unknown)}: "
             + ("ignored" if len(unknown) > 1 else "it is ignored")
             + (" (with COG ticked, GeoTIFF-only options such as ZLEVEL, NBITS or TILED do not apply)."
                if driver == "COG" else ".")] if unknown else []
    other = [w for w in warned if not _UNKNOWN_KEY.search(w)]
    if other:
        notes.append(f"{CREATE}: GDAL warned while trying the creation options on a small copy: "
                     + " ".join(w if w.endswith(".") else w + "." for w in other))
    return notes


@dataclass(frozen=True)
class OutputOptions:
    """The creation options of a run's output, checked (``checked_options``)."""

    gtiff: list[str]          # the streamed GeoTIFF's (with COG ticked: the intermediate's)
    cog: list[str] | None     # the COG copy's; None for a plain GeoTIFF
    notes: list[str]          # warnings for options that are not used


def checked_options(info, compression: str, cog: bool, extra: list[str],
                    grid: OutputGrid | None = None) -> OutputOptions:
    """The options a run's output is written with, tried on a tiny copy with the output's data type and band count
    (``info``), CRS and extent (``grid``) before any work: InputError when GDAL refuses them or does not recognise a
    value (README promises a refusal before the statistics; QA: COMPRESS=JPEG on 16-bit data was refused after 8.8 s
    of statistics and self-check on a 4200x4200 mosaic). Ours alone are known to work for a GeoTIFF: then nothing is
    tried."""
    kind = info.dtype.kind
    if cog:
        options = cog_options(kind, compression, extra)
        return OutputOptions(intermediate_options(kind), options, check_options(info, options, "COG", grid))
    options = gtiff_options(kind, compression, extra)
    notes = fixed_key_notes(extra) + check_options(info, options, "GTiff", grid) if extra else []
    return OutputOptions(options, None, notes)


def _threads_of(options: list[str], cores: int) -> int:
    """GDAL's encoding threads for ``options``' NUM_THREADS (ALL_CPUS: ``cores``; absent or unreadable: 1)."""
    value = next((o.split("=", 1)[1].strip() for o in options if _key(o) == "NUM_THREADS"), "1")
    if value.upper() == "ALL_CPUS":
        return cores
    return int(value) if value.isdigit() else 1


def encoding_threads(options: OutputOptions, cores: int) -> int:
    """The most threads GDAL encodes the output with (the GeoTIFF's or the COG copy's NUM_THREADS)."""
    return max(_threads_of(o, cores) for o in (options.gtiff, options.cog) if o is not None)


def with_encoding_threads(options: OutputOptions, threads: int, cores: int) -> OutputOptions:
    """``options`` with no NUM_THREADS above ``threads`` (``threadlimits.fit`` lowered it to a thread limit)."""
    def capped(opts: list[str] | None) -> list[str] | None:
        if opts is None or _threads_of(opts, cores) <= threads:
            return opts
        return _merge(opts, [f"NUM_THREADS={threads}"])
    return OutputOptions(capped(options.gtiff), capped(options.cog), options.notes)
