"""A streamed GeoTIFF writer that never leaves half a file, and the checks on an output path."""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import uuid
from typing import Callable

import numpy as np
from osgeo import gdal

from ..errors import Cancelled, InputError, OutputBusy, OutputTaken, quoted
from ..gdalutil import close_dataset, gdal_text, gdal_try, is_vsi, os_path
from .info import RasterInfo
from .partials import (
    SIDECARS,
    Signature,
    files_of,
    gdal_temp_files,
    hold,
    live_partials,
    remove_stale_partials,
    removed_on_sigterm,
    signature,
    sweep_folder,
    total_size,
)
from .stylemark import belongs_to, is_ksdiff_style, kept_style_note, owner_of, removed_style_note, shared_style_note

try:                  # POSIX only: Windows has no file size limit to report
    import resource
except ImportError:   # pragma: no cover
    resource = None

OUTPUT_EXTENSIONS = (".tif", ".tiff")       # the writer makes GeoTIFF and nothing else (partials.LEFTOVER_NAME)
# SIDECARS (partials.py, shared with the leftovers' naming): still imported from here


def style_sidecar(path: str) -> str:
    """The QGIS default style of the raster ``path`` (QGIS loads ``<name>.qml`` with the file): the plugin writes a
    natural-colour one after each commit (``algorithms/colour_style.py``); a replaced output's would draw the new
    bands with the old layout's. Only a style KSDiff wrote is removed or replaced (``stylemark``)."""
    return os.path.splitext(path)[0] + ".qml"
UNCHECKED = object()   # GeoTiffWriter(found=...) left out: the output is replaced whatever is there at the commit
LOW_SPACE = 1 << 20                          # bytes: a failed write with less free space is a full disk


def _missing_folder(path: str) -> str | None:
    """The first folder on the way to ``path`` that is not a folder, as the OS resolves the path, else None.

    Not the normalised path: the OS walks 'a/nodir/../o.tif' through 'a/nodir', so a missing 'nodir' makes the
    final rename fail after the whole scene was fused (QA), although 'a/o.tif' could be written."""
    raw = os.path.dirname(path)
    if not raw or os.path.isdir(os_path(raw)):
        return None
    anchor, rest = os.path.splitdrive(raw)[0], os.path.splitdrive(raw)[1]
    prefix = anchor + (os.sep if rest.startswith(("/", os.sep)) else "")
    for part in [p for p in rest.replace(os.sep, "/").split("/") if p]:
        prefix = os.path.join(prefix, part) if prefix else part
        if not os.path.isdir(os_path(prefix)):
            return os.path.abspath(prefix) if part not in (os.curdir, os.pardir) else prefix
    return os.path.abspath(raw)


def _folder_id(folder: str) -> tuple[int, int] | None:
    """(device, inode) of ``folder``, None when it is gone: a folder moved or deleted mid-run changes it."""
    try:
        st = os.stat(os_path(folder))
    except OSError:
        return None
    return st.st_dev, st.st_ino


def check_writable(path: str, extensions: tuple[str, ...] | None = OUTPUT_EXTENSIONS, what: str = "output") -> None:
    """Raise InputError unless a file can be created at ``path`` (by default a GeoTIFF: ``extensions``; None: any
    name); ``what`` names the file in the messages."""
    if not path:
        raise InputError(f"no {what} file was given")
    refuse_virtual(path, what)
    refuse_provider_uri(path, what, extensions)
    if os.path.isdir(os_path(path)):
        raise InputError(f"the {what} path {quoted(path)} is a folder")
    folder = os.path.dirname(os.path.abspath(path))
    missing = _missing_folder(path)
    if missing is not None and os.path.isfile(os_path(missing)):
        raise InputError(f"the {what} folder {quoted(missing)} is a file, not a folder")
    if missing is not None:
        raise InputError(f"the {what} folder {quoted(missing)} does not exist")
    if not os.access(os_path(folder), os.W_OK):
        raise InputError(f"the {what} folder {quoted(folder)} is not writable")
    if os.path.exists(os_path(path)) and not os.access(os_path(path), os.W_OK):
        raise InputError(f"the {what} file {quoted(path)} exists and cannot be overwritten")
    if extensions:
        check_extension(path, extensions)


def check_extension(path: str, extensions: tuple[str, ...] = OUTPUT_EXTENSIONS) -> None:
    """Raise InputError unless ``path`` names a GeoTIFF (``extensions``). The batch checks every row's output with
    it when the list is read: a name such as 'dir/' or 'dir/y' failed only when its scene ran."""
    refuse_provider_uri(path, "output", extensions)
    if not path.lower().endswith(extensions):
        raise InputError(
            f"the output {quoted(path)} must be a GeoTIFF file ending in .tif or .tiff: pansharpening writes "
            "GeoTIFF only (convert it afterwards with gdal_translate or Raster > Conversion)"
        )


# a QGIS data source URI: "ogr:dbname='/d/g.gpkg' table="fused" (geom)" is how QGIS names a GeoPackage output
_PROVIDER_URI = re.compile(r"^(ogr|postgres|postgis|spatialite|memory|mssql|oracle|hana|delimitedtext|virtual):",
                           re.IGNORECASE)
# dbname='...' (QGIS's own), dbname="..." (typed by hand; QA: the quotes showed in the message), or bare
_URI_FILE = re.compile(r"dbname='((?:[^'\\]|\\.)*)'|dbname=\"((?:[^\"\\]|\\.)*)\"|dbname=(\S+)")
_URI_TABLE = re.compile(r"table=\"?([^\"\s]+)")


def refuse_provider_uri(path: str, what: str = "output",
                        extensions: tuple[str, ...] | None = OUTPUT_EXTENSIONS) -> None:
    """Raise InputError when ``path`` is a QGIS data source URI (a GeoPackage table, a PostGIS one, a memory
    layer) rather than a file path: QA saw "the output folder "<cwd>/ogr:dbname='" does not exist" for the URI QGIS
    gives a GeoPackage output. Said as the GeoTIFF-only refusal a '.gpkg' path gets, naming the database."""
    match = _PROVIDER_URI.match(path)
    if not match:
        return
    found = _URI_FILE.search(path)
    db = next((g for g in found.groups() if g), "").strip("'\"") if found else ""
    table = _URI_TABLE.search(path)
    kind = "GeoPackage" if db.lower().endswith(".gpkg") else "database" if db else f"{match.group(1)} data source"
    where = (f"a table{' ' + quoted(table.group(1)) if table else ''} in the {kind} {quoted(db)}" if db
             else f"a QGIS {kind}")
    stem = os.path.splitext(db)[0] if db and not is_vsi(db) else os.path.join("/path/to", what)
    if extensions:
        need = (f"must be a GeoTIFF file ending in .tif or .tiff: pansharpening writes GeoTIFF only (give a file "
                f"path such as {stem}.tif, then convert it with gdal_translate or Raster > Conversion if needed)")
    else:
        need = f"must be a file path (such as {stem}{'.html' if what == 'report' else ''})"
    raise InputError(f"the {what} {quoted(path)} is {where}, not a file: the {what} {need}")


def refuse_virtual(path: str, what: str = "output") -> None:
    """Raise InputError when ``path`` lies inside an archive or a GDAL virtual file system (/vsizip/, /vsimem/,
    /vsis3/ ...): the writer commits by renaming a temporary file within the output folder, which none of them
    allow (a zip is written in one go; /vsimem/ is gone when the run ends). Said before anything runs, with a
    plain path to give instead."""
    if not is_vsi(path):
        return
    prefix = path[:path.index("/", 1) + 1]
    name = os.path.basename(path.rstrip("/")) or "fused.tif"
    # the deepest local folder the name passes through (the zip's own folder), where the output would be kept
    folder = next((f for f in _local_paths(path)[1:] if f and os.path.isdir(os_path(f))), "/path/to")
    raise InputError(f"the {what} {quoted(path)} cannot be written: outputs cannot be written into an archive or a "
                     f"GDAL virtual file system ({prefix}…): give a plain file path such as "
                     f"{os.path.join(folder, name)}")


def _local_paths(name: str) -> list[str]:
    """The local paths a GDAL virtual file name passes through, deepest first: '/vsizip//d/a.zip/x.tif' ->
    ['/d/a.zip/x.tif', '/d/a.zip', '/d']."""
    parts = name.split("/", 2)[-1].split("/")     # ['', 'd', 'a.zip', 'x.tif']
    return ["/".join(parts[:i]) for i in range(len(parts), 1, -1)]


def local_file(name: str) -> str | None:
    """The local file behind a GDAL file name: the name itself, or the archive a /vsizip/-style name reads."""
    if not is_vsi(name):
        return name
    # a remote or in-memory file (none is local) cannot be the output
    return next((c for c in _local_paths(name) if os.path.isfile(os_path(c))), None)


def check_not_input(output_path: str, inputs: dict[str, gdal.Dataset]) -> None:
    """Refuse an output that is an input file or a file an input reads (the sources of a VRT, an archive)."""
    if not os.path.exists(os_path(output_path)):
        return
    for role, ds in inputs.items():
        files = ds.GetFileList() or []
        for i, name in enumerate(files):
            real = local_file(name)
            if real is None or not os.path.exists(os_path(real)) or \
                    not os.path.samefile(os_path(real), os_path(output_path)):
                continue
            if i == 0:
                raise InputError(f"the output file is the {role} input: choose another output path")
            raise InputError(
                f"the output file {quoted(output_path)} is read by the {role} input {quoted(files[0])}: "
                "choose another output path"
            )


def _fsize_limit() -> int | None:
    """The process's file size limit in bytes (``ulimit -f``), or None when there is none."""
    if resource is None:
        return None
    soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    return None if soft == resource.RLIM_INFINITY else soft


def free_space(folder: str) -> int | None:
    """Bytes free for this user in ``folder``; None when unknown (a pseudo file system such as /proc has no space
    at all: its 0 bytes free is not a full disk)."""
    try:
        usage = shutil.disk_usage(os_path(folder))
    except OSError:
        return None
    return usage.free if usage.total else None


def size_text(n: float) -> str:
    """'1.2 GB', '3.4 MB' or '56 KB': as the free-space warning and a full disk's message say a size."""
    if n >= 2**30:
        return f"{n / 2**30:.1f} GB"
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n / 1024:.0f} KB"


def write_failure(path: str, action: str, errors: list[str], written: int | None = None,
                  free_before: int | None = None, needed: int | None = None) -> str:
    """A message that says why writing failed (full disk, file size limit) and that nothing was lost.

    Called before the temporary files go: ``written`` is the bytes they hold, ``needed`` what the output needs when
    known, ``free_before`` the free space when the run started (measured now, at the failure, when not given). After
    the cleanup the folder's free space said neither what the output needed nor what was there (QA: "1363968 bytes
    free" on a COG that did not fit)."""
    text = " ".join(errors)
    folder = os.path.dirname(os.path.abspath(path))
    free = free_space(folder)
    if "no space left" in text.lower() or (free is not None and free < LOW_SPACE):
        if needed:
            need = f"the output needed about {size_text(needed)}; "
        elif written:
            need = f"the output needed more than the {size_text(written)} written when the disk filled up; "
        else:
            need = ""
        if free_before is not None:
            had = f"{size_text(free_before)} were free in {folder} when the run started"
        else:
            had = f"{size_text(free or 0)} were free in {folder} at the failure"
        cause = f"no space left on device: {need}{had} (free up space there or write the output to another disk)"
    elif "file too large" in text.lower():      # EFBIG: the process's file size limit
        cause = f"the file size limit of this process was reached (ulimit -f: {_fsize_limit()} bytes)"
    else:
        cause = "GDAL reported an error"
    return (f"writing the output {quoted(path)} failed while {action}: {cause}; the partial file was removed and "
            f"any earlier output there is unchanged (GDAL: {'; '.join(errors[:3])})")


def free_name(path: str) -> str:
    """``path`` with the first free ``_1``, ``_2``, ... before its extension: no file and no sidecar of one there."""
    stem, ext = os.path.splitext(path)
    n = 1
    while any(os.path.exists(os_path(f"{stem}_{n}{ext}{s}")) for s in ("", *SIDECARS)):
        n += 1
    return f"{stem}_{n}{ext}"


class GeoTiffWriter:
    """Tiled, compressed GeoTIFF written row-strip by row-strip into a temporary file.

    Every GDAL call is checked (a full disk often shows only in GDAL's error handler, at a flush or the
    close). ``commit()`` renames the file onto the destination (an existing file there is replaced only
    then, and loses its stale sidecars); ``abort()`` deletes it, so a failed or cancelled run leaves
    nothing behind. When the rename is refused (PermissionError: on Windows, the old output open in QGIS), the
    finished result is kept beside it under a free name (``free_name``) and the OSError says so.
    """

    def __init__(self, path: str, width: int, height: int, ms: RasterInfo, gt, wkt: str,
                 band_names: list[str], nodata: float | None, options: list[str] | None = None,
                 found: Signature | None | object = UNCHECKED, needed: int | None = None):
        """``found``: ``signature`` of the output when the run started (None: there was none); another run that wrote
        there since is not silently replaced at the commit. Left out: not checked. ``needed``: the bytes the run's
        free-space warning said the output needs (``space.estimate``), for a full disk's message; None: not measured."""
        check_writable(path)
        busy = live_partials(path)
        if busy:   # both would report success and the later rename would silently replace the other's result
            raise OutputBusy(f"another run is writing the output {quoted(path)} right now (its temporary file "
                             f"{os.path.basename(busy[0])} is in use): choose another OUTPUT, or run again once "
                             "that run has finished")
        self.path, self.found, self.needed = path, found, needed
        folder, name = os.path.split(os.path.abspath(path))
        # other outputs' too: a TEMPORARY_OUTPUT or a renamed output never meets its own again (QA115)
        self.removed_partials = remove_stale_partials(path) + sweep_folder(folder)
        self.free_at_start = free_space(folder)   # for a full disk's message: what there was to write into
        self.folder, self.folder_id = folder, _folder_id(folder)
        self.tmp_path = os.path.join(folder, f".{name}.{uuid.uuid4().hex[:8]}.partial")
        self.prefix = self.tmp_path   # this run's files are named after it (a COG copy, sidecars)
        # a SIGTERM (timeout, systemd, a batch scheduler) deletes them before the process ends
        self._scope = contextlib.ExitStack()
        self._scope.enter_context(removed_on_sigterm(self.files_to_remove))
        self.dtype = ms.dtype
        opts = ["TILED=YES", "BLOCKXSIZE=256", "BLOCKYSIZE=256", "COMPRESS=DEFLATE", "BIGTIFF=IF_SAFER",
                "PHOTOMETRIC=MINISBLACK"]   # not RGB(A) for 3-4 Byte bands (outputs.BASE)
        if ms.nbits and ms.nbits < ms.dtype.itemsize * 8:
            opts.append(f"NBITS={ms.nbits}")
        else:
            opts.append("PREDICTOR=3" if ms.dtype.kind == "f" else "PREDICTOR=2")
        if options is not None:   # the caller's full list of GTiff creation options (raster_io.outputs)
            opts = list(options)
        self._lock = None
        self.ds, errors = gdal_try(gdal.GetDriverByName("GTiff").Create, self.tmp_path, width, height,
                                   ms.bands, ms.gdal_type, opts)
        if self.ds is None or errors:
            message = self.failure("creating it", errors)
            self.abort()
            raise OSError(message)
        try:
            self._lock = hold(self.tmp_path)   # tells a concurrent run onto this output it is not stale
            self._describe(gt, wkt, band_names, nodata)
        except BaseException:
            self.abort()
            raise

    def own_files(self) -> list[str]:
        """This run's temporary files that exist now."""
        return files_of(self.prefix)

    def files_to_remove(self) -> list[str]:
        """``own_files`` and GDAL's temporary files of this run's COG copy in CPL_TMPDIR (``gdal_temp_files``): what a
        finished, failed or killed run deletes."""
        return self.own_files() + gdal_temp_files(self.prefix)

    def failure(self, action: str, errors: list[str]) -> str:
        """``write_failure`` for this output, while its temporary files still exist."""
        return write_failure(self.path, action, errors, total_size(self.own_files()), self.free_at_start,
                             self.needed)

    def _checked(self, action: str, fn, *args, **kwargs):
        result, errors = gdal_try(fn, *args, **kwargs)
        if errors:
            raise OSError(self.failure(action, errors))
        return result

    def _describe(self, gt, wkt: str, band_names: list[str], nodata: float | None) -> None:
        self._checked("setting its georeferencing", self.ds.SetGeoTransform, gt)
        self._checked("setting its georeferencing", self.ds.SetProjection, wkt)
        for i, name in enumerate(band_names, start=1):
            band = self.ds.GetRasterBand(i)
            self._checked("naming its bands", band.SetDescription, gdal_text(name))   # last guard: valid text only
            if nodata is not None:
                self._checked("setting its nodata value", band.SetNoDataValue, nodata)

    def write(self, arr: np.ndarray, row: int, col: int = 0) -> None:
        """Write (bands, h, w) already in the output data type at (row, col), all bands in one call.

        One dataset-level write fills each pixel-interleaved block with all its bands before GDAL may evict it.
        Band by band, a tile whose blocks of all bands outgrew GDAL's block cache (many bands, a small
        GDAL_CACHEMAX) had half-filled blocks encoded, read back and appended again: QA126, 230 bands, 667 MB
        became 3.78 GB at GDAL_CACHEMAX=32, or failed past 4 GB."""
        self._checked("writing pixels", self.ds.WriteArray, arr, col, row)

    def block_size(self) -> tuple[int, int]:
        """(width, height) of the output's GeoTIFF blocks (tiles, or strips of full rows)."""
        bx, by = self.ds.GetRasterBand(1).GetBlockSize()
        return bx, by

    def flush(self) -> None:
        """Hand finished blocks to disk (this is where a full disk usually shows)."""
        self._checked("writing pixels", self.ds.FlushCache)

    def close_checked(self) -> None:
        """Flush and close the dataset; OSError when GDAL reports any failure (e.g. a full disk)."""
        self.flush()
        ds, self.ds = self.ds, None
        errors = close_dataset(ds)
        del ds
        if errors:
            raise OSError(self.failure("closing it", errors))

    def commit(self, cancelled: Callable[[], bool] | None = None,
               progress: Callable[[float], None] | None = None) -> list[str]:
        """Flush and close (checked), then, unless ``cancelled()`` says stop, rename onto the destination
        and drop the sidecars of the raster it replaces. Returns what to tell the user about sidecars.
        ``progress``: told the fraction done of a pass of its own (a COG's copy); a plain GeoTIFF has none."""
        self.close_checked()
        if cancelled is not None and cancelled():
            raise Cancelled("cancelled by the user")
        if _folder_id(self.folder) != self.folder_id:   # before blaming another run for the output's change
            raise InputError(f"the output folder {quoted(self.folder)} disappeared or was moved during the run: this "
                             "run's result was not written; run again once the folder is back (or choose another "
                             "OUTPUT)")
        now = UNCHECKED if self.found is UNCHECKED else signature(self.path)
        # an output deleted meanwhile (the user removed the old one) is no other run's result: nothing to keep
        vanished = now is None and self.found is not None and self.found is not UNCHECKED
        if now is not UNCHECKED and now != self.found and not vanished:
            raise OutputTaken(f"another run wrote the output {quoted(self.path)} while this one was fusing: that "
                              "result is kept and this run's was not written; choose another OUTPUT for one of them")
        try:
            os.replace(os_path(self.tmp_path), os_path(self.path))
        except PermissionError as e:   # Windows: a program (QGIS showing it as a layer) holds the old output open
            if os.name != "nt" and not os.access(os_path(self.folder), os.W_OK):   # POSIX: the folder refuses
                raise OSError(self._folder_refused(e)) from e
            raise OSError(self._keep_beside(e)) from e
        self._release()
        notes = self._replace_sidecars()
        self._finish()
        if vanished:
            notes.insert(0, f"the earlier output {quoted(self.path)} had been removed during the run: this run's "
                            "result was written there")
        return notes

    def _keep_beside(self, error: OSError) -> str:
        """The finished result could not replace the output: keep it (and its sidecars) under a free name beside it
        instead of deleting it with the partial; the message says where it is, why, and how to finish."""
        name = os.path.basename(self.path)
        why = (f"the finished result could not replace {quoted(self.path)} ({error.strerror or error}): that file is "
               "probably open in QGIS (a layer of the project) or in another program, which on Windows stops it "
               "from being replaced")
        kept = free_name(self.path)
        try:
            os.rename(os_path(self.tmp_path), os_path(kept))   # never onto an existing file on Windows
        except OSError as e:
            self.abort()
            left = self.own_files()
            gone = (f"its temporary file {quoted(left[0])} could not be removed: delete it by hand" if left
                    else "so it was removed")
            return f"{why}; keeping the result as {quoted(kept)} failed too ({e.strerror or e}), {gone}"
        self._release()
        for suffix in SIDECARS:   # a COG's IMAGERY metadata lives in its .aux.xml: it goes with the pixels
            if os.path.exists(os_path(self.tmp_path + suffix)):
                with contextlib.suppress(OSError):
                    os.replace(os_path(self.tmp_path + suffix), os_path(kept + suffix))
        self._finish()
        return (f"{why}. The result was kept as {quoted(kept)}; {name} is unchanged. To finish: remove that layer from "
                f"the project (or close the program), then delete {name} and rename {os.path.basename(kept)} "
                f"to {name}, or run again")

    def _folder_refused(self, error: OSError) -> str:
        """The output folder became read-only (chmod, chattr +i) during the run: say so, and whether this run's
        temporary file could be removed (else where it is)."""
        self.abort()
        left = self.own_files()
        where = (f"its temporary file {quoted(left[0])} could not be removed either: delete it once the folder is "
                 "writable" if left else "the temporary file was removed")
        return (f"the output folder {quoted(self.folder)} is not writable ({error.strerror or error}) since the run "
                f"started: the finished result could not be written to {quoted(self.path)} and any earlier output "
                f"there is unchanged; {where}; make the folder writable and run again")

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def _finish(self) -> None:
        """Delete what is left of this run's files (a COG's intermediate), then drop the SIGTERM cleanup."""
        for p in self.files_to_remove():
            try:
                os.remove(os_path(p))
            except OSError:
                pass
        self._scope.close()

    def _replace_sidecars(self) -> list[str]:
        """Sidecars of the old raster (statistics, overviews, mask) describe other pixels: remove them."""
        notes = []
        for suffix in SIDECARS:
            old, new = self.path + suffix, self.tmp_path + suffix
            try:
                if os.path.exists(os_path(new)):
                    os.replace(os_path(new), os_path(old))
                elif os.path.exists(os_path(old)):
                    os.remove(os_path(old))
                    notes.append(f"removed the stale {os.path.basename(old)} of the replaced output")
            except OSError as e:
                notes.append(f"could not remove the stale {os.path.basename(old)}: {e}; delete it by hand")
        style = style_sidecar(self.path)
        if os.path.exists(os_path(style)) and not is_ksdiff_style(style):
            notes.append(kept_style_note(style))   # the user's or an input's (ms.jp2's ms.qml): never ours to remove
        elif os.path.exists(os_path(style)) and not belongs_to(style, self.path):
            # KSDiff's style of o.tif beside this o.tiff: QGIS reads it for both, but it is o.tif's (QA)
            notes.append(shared_style_note(style, owner_of(style, self.path)))
        elif os.path.exists(os_path(style)):
            try:
                os.remove(os_path(style))
                notes.append(removed_style_note(style))
            except OSError as e:
                notes.append(f"could not remove {os.path.basename(style)}, the QGIS style of the replaced output: "
                             f"{e}; delete it by hand (QGIS would draw this output with it)")
        return notes

    def abort(self) -> None:
        ds, self.ds = self.ds, None
        if ds is not None:
            close_dataset(ds)   # its errors do not matter: the file goes
        del ds
        self._release()
        self._finish()
