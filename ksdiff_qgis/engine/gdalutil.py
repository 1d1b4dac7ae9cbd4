"""GDAL calls that behave the same whether or not GDAL exceptions are enabled."""
from __future__ import annotations

import os
import sys
import weakref
from contextlib import contextmanager
from typing import Iterator

from osgeo import gdal, osr


def gdal_call(fn, *args, **kwargs):
    """Call a GDAL function whether or not GDAL exceptions are on (QGIS or another plugin may turn them on).

    Returns ``(result, message)``; result is None on failure and message holds GDAL's error text.
    """
    gdal.ErrorReset()
    try:
        result = fn(*args, **kwargs)
    except RuntimeError as e:
        return None, str(e)
    return result, gdal.GetLastErrorMsg()


def gdal_text(value: object) -> str:
    """Text GDAL returned, as valid Unicode: bytes that are not UTF-8 replaced by U+FFFD. GDAL's bindings give a
    band description holding such bytes as a str with lone surrogates ('Bl\\udcff...', which SetDescription and a
    UTF-8 write refuse: QA116 crash) and a metadata value as bytes."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    text = str(value)
    try:
        raw = text.encode("utf-8", "surrogateescape")   # the bytes GDAL read, then decoded with replacement
    except UnicodeEncodeError:                           # a surrogate no escape makes: '?'
        raw = text.encode("utf-8", "replace")
    return raw.decode("utf-8", "replace")


# each in-memory view's (``named_view``) input file name; a view dropped takes its entry with it
_VIEW_NAMES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def named_view(view, source):
    """``view``, a virtual raster the run made in memory of ``source`` (its own description is ''), remembered under
    ``source``'s file name for messages (``dataset_name``); None stays None. Not by SetDescription: a VRT made in
    memory writes its XML to its description when it closes, over the input file itself (checked)."""
    if view is not None and view is not source:
        _VIEW_NAMES[view] = dataset_name(source)
    return view


def dataset_name(ds) -> str:
    """The file ``ds`` reads, for messages: its description, or for a view of it (``named_view``) the file's (QA132:
    a read failure through the alpha-flag view named "the input ''")."""
    return gdal_text(ds.GetDescription()) or _VIEW_NAMES.get(ds, "")


def text_metadata(obj, domain: str = "") -> dict[str, str]:
    """``obj.GetMetadata(domain)`` ({} if none) with keys and values as valid text (``gdal_text``)."""
    md, _ = gdal_call(obj.GetMetadata, domain)
    return _texts(md)


def _texts(md: object) -> dict[str, str]:
    return {gdal_text(k): gdal_text(v) for k, v in md.items()} if isinstance(md, dict) else {}


def quiet_metadata(obj, domain: str = "") -> dict[str, str]:
    """``text_metadata`` with GDAL's complaints kept off the console: a GeoTIFF's first
    metadata read makes GDAL parse the vendor files beside it (a truncated DIMAP printed "ERROR 1: Parse error at
    EOF" once per open); KSDiff reads those files itself and says what is wrong with them, once."""
    md, _errors, _warnings = gdal_try_warned(obj.GetMetadata, domain)
    return _texts(md)


def gdal_try(fn, *args, **kwargs) -> tuple[object, list[str]]:
    """Call a GDAL function and collect every failure it reports, with or without GDAL exceptions.

    Returns ``(result, errors)``; ``errors`` is empty on success. GDAL often reports a failed write only
    through its error handler (``FlushCache`` returns nothing in 3.6), and the first message usually
    names the cause ("No space left on device") while the last one is a consequence, so all are kept.
    A non-zero integer result (a CPLErr return code) counts as a failure too.
    """
    result, errors, _warnings = gdal_try_warned(fn, *args, **kwargs)
    return result, errors


def gdal_try_warned(fn, *args, **kwargs) -> tuple[object, list[str], list[str]]:
    """``gdal_try`` that also returns GDAL's warnings (``(result, errors, warnings)``): what GDAL ignores with only
    a console message, e.g. a creation option value it does not recognise."""
    gdal.ErrorReset()
    with _collected() as (errors, warnings):
        try:
            result = fn(*args, **kwargs)
        except RuntimeError as e:
            result = None
            errors.append(str(e))
    if not errors and gdal.GetLastErrorType() >= gdal.CE_Failure:
        errors.append(gdal.GetLastErrorMsg())
    if not errors and isinstance(result, int) and not isinstance(result, bool) and result != 0:
        errors.append(f"GDAL error code {result}")
    return result, list(dict.fromkeys(errors)), list(dict.fromkeys(warnings))


@contextmanager
def quiet_gdal() -> Iterator[list[str]]:
    """GDAL's (and PROJ's, through OSR) messages inside the block kept off the console and the QGIS log, the errors
    among them collected in the list it yields. A check that reprojects points it may not be able to, such as an MS
    on another continent, printed "ERROR 1: Point outside of projection domain" 20 times before its own message.
    The handler is GDAL's per-thread one: a Processing worker does not silence QGIS's other threads."""
    with _collected() as (errors, _warnings):
        yield errors


@contextmanager
def _collected() -> Iterator[tuple[list[str], list[str]]]:
    """GDAL's messages inside the block collected, errors and warnings apart, instead of printed: a handler of
    GDAL's own thread (safe in a Processing worker)."""
    errors: list[str] = []
    warnings: list[str] = []

    def handler(err_class, _err_no, msg):
        if err_class >= gdal.CE_Failure:
            errors.append(msg)
        elif err_class == gdal.CE_Warning:
            warnings.append(msg)

    gdal.PushErrorHandler(handler)
    try:
        yield errors, warnings
    finally:
        gdal.PopErrorHandler()


def close_dataset(ds: gdal.Dataset) -> list[str]:
    """Close ``ds`` now and return the errors of the close (the last blocks and the TIFF directory are
    written here). ``ds = None`` would hide them: with exceptions on, GDAL 3.6 raises them inside a
    destructor, where Python only prints "Exception ignored". The caller must drop every reference
    to ``ds`` and its bands afterwards.
    """
    close = getattr(ds, "Close", None)   # GDAL >= 3.8
    if close is None:
        # the SWIG destructor disowns the object, so the later garbage collection does not close twice
        close = lambda: gdal.Dataset.__swig_destroy__(ds)  # noqa: E731
    return gdal_try(close)[1]


# Python's os functions encode a str path in the locale's encoding, GDAL's Python bindings in UTF-8 whatever the
# locale: under a non-UTF-8 locale (LC_ALL=de_DE.ISO-8859-1) a name with "Ü" is two different files to them
_FS_UTF8 = sys.getfilesystemencoding().lower().replace("-", "").replace("_", "") == "utf8"


def os_path(path: str) -> str | bytes:
    """``path`` as Python's os functions must be given it to reach the file GDAL reads and writes by that name: the
    str itself on Windows and under a UTF-8 locale, else its UTF-8 bytes (POSIX)."""
    if _FS_UTF8 or os.name == "nt" or isinstance(path, bytes):
        return path
    return path.encode("utf-8", "surrogateescape")


def gdal_str(path: str | bytes) -> str:
    """A path from an os function given ``os_path``'s bytes, back as the str GDAL and messages take."""
    return path.decode("utf-8", "surrogateescape") if isinstance(path, bytes) else path


def real_path(path: str) -> str:
    """``os.path.realpath`` of a path GDAL names by ``path`` (through ``os_path``: under a non-UTF-8 locale a name
    with a character outside the locale's encoding, such as a CJK folder under ISO-8859-1, still resolves)."""
    return gdal_str(os.path.realpath(os_path(path)))


def from_os(path: str) -> str:
    """A path Python got from the system in the locale's encoding (a command-line argument, ``os.getcwd()``) as
    the str GDAL takes: its bytes read as UTF-8 (identity on Windows and under a UTF-8 locale)."""
    if _FS_UTF8 or os.name == "nt":
        return path
    return gdal_str(os.fsencode(path))


def is_vsi(path: str) -> bool:
    """Whether ``path`` is a GDAL virtual file name (/vsizip/, /vsimem/, /vsicurl/ ...): Python's own file calls
    (open, os.path) cannot read it, and os.path.abspath/normpath mangle it ('/vsizip//tmp/a.zip' loses a slash)."""
    return path.startswith("/vsi")


def vsi_folder(path: str) -> str:
    """The folder of a file as GDAL resolves a name relative to it: a /vsi name's text before its last '/' (kept
    as written), a plain path's absolute folder."""
    return path.rsplit("/", 1)[0] if is_vsi(path) else os.path.dirname(os.path.abspath(path))


def vsi_join(folder: str, name: str) -> str:
    """``name`` taken from ``folder`` as GDAL does (CPLFormFilename): a /vsi folder joined with '/' as it is."""
    return f"{folder.rstrip('/')}/{name}" if is_vsi(folder) else os.path.normpath(os.path.join(folder, name))


def read_bytes(path: str, limit: int) -> bytes | None:
    """Up to ``limit`` bytes of the file ``path`` — a plain file or a GDAL virtual one (inside a zip, /vsimem/ ...),
    read through GDAL's VSI layer; None when it cannot be read or is a folder."""
    stat, _ = gdal_call(gdal.VSIStatL, path)
    if stat is None or stat.IsDirectory():
        return None
    handle, _ = gdal_call(gdal.VSIFOpenL, path, "rb")
    if not handle:
        return None
    try:
        data, _ = gdal_call(gdal.VSIFReadL, 1, min(limit, stat.size), handle)
    finally:
        gdal.VSIFCloseL(handle)
    return bytes(data) if data is not None else None


def crs_name(wkt: str) -> str:
    """'EPSG:32631', else the CRS's own name, else 'the custom CRS +proj=…': a noun phrase for messages, which put it
    where a noun stands ("in {name}", "its CRS, {name}, ...", "(PAN: {name})"), never straight after the word CRS."""
    srs = osr.SpatialReference()
    if not wkt or srs.ImportFromWkt(wkt) != 0:
        return "none"
    code = srs.GetAuthorityCode(None)
    if code:
        return f"{srs.GetAuthorityName(None)}:{code}"
    name = srs.GetName() or ""
    if name and name.lower() != "unknown":
        return name
    # a custom CRS set in QGIS exports as WKT named 'unknown' (QA: "its pixels are placed in unknown"): its PROJ string,
    # said as one, outside parentheses (QA136: "(+proj=… (a custom CRS))" nested, and read as part of the CRS to type)
    proj = (srs.ExportToProj4() or "").strip()
    return f"the custom CRS {proj}" if proj else "an unnamed CRS"
