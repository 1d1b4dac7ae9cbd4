"""Which ``<output>.qml`` default styles KSDiff wrote, and so may remove or overwrite (Qt-free: the XML text).

The plugin saves its natural-colour style with a QGIS custom property ``ksdiff/style`` (``STYLE_MARK``) whose value
is the SHA-256 of the file with that value blanked (``seal_style``). A style without it (the user's own, an input's
sharing the basename) or whose text changed since (the user saved their own default style from a layer that had
loaded ours: QGIS copies the property) is not ours: it is never removed or replaced (QA: a first run onto
``ms.tif`` deleted ``ms.qml``, the style of the input ``ms.jp2``).

QGIS reads ``<stem>.qml`` for every file of that stem: ``o.tif``, ``o.tiff``, ``o.TIF``, ``o.vrt``. So the style also
records the name of the output it was written for (``STYLE_FOR``, sealed with the rest): only that output's run
removes or replaces it (``belongs_to``), and none is written while another raster of the stem is beside the output
(``namesakes``), which would open with it (QA: a run onto ``o.tiff`` deleted ``o.tif``'s style, and a re-run onto
``o.tif`` gave the 1-band ``o.tiff`` a red/green/blue style of bands 3, 2, 1). A style written before the name was
recorded belongs to another raster of the stem beside the output when there is one (``<stem>.tif``, the name the
plugin proposes, first: QA, a first run onto ``o.tif`` deleted ``o.tiff``'s), else to the output run.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import re
import xml.etree.ElementTree as ET

from osgeo import gdal

from ..gdalutil import os_path

STYLE_MARK = "ksdiff/style"          # the custom property's key (QgsMapLayer.CustomProperties in the .qml)
STYLE_FOR = "ksdiff/style-for"      # the output file name (no folder) the style was written for
UNSEALED = "0" * 64                   # its value when written, before seal_style
MAX_STYLE_BYTES = 1 << 20             # a natural-colour style is ~3 KB; a larger file is not ours
# the <Option … name="ksdiff/style" … value="…"/> element; QGIS writes its attributes in any order, and ">" raw
# inside a value (an output named a>b<c.tif): attributes are matched whole, quotes to quotes, not up to a ">"
_ATTR = rb'(?:\s+[^\s=/>]+="[^"]*")*'
_MARK = re.compile(rb'<Option' + _ATTR + rb'\s+name="' + re.escape(STYLE_MARK.encode()) + rb'"' + _ATTR + rb'\s*/?>')
_VALUE = re.compile(rb'\bvalue="([0-9a-f]{64})"')


def _mark_value(text: bytes) -> tuple[int, int] | None:
    """The span of the marker's value in ``text``, or None without one."""
    tag = _MARK.search(text)
    value = _VALUE.search(tag.group(0)) if tag else None
    return (tag.start() + value.start(1), tag.start() + value.end(1)) if value else None


def _digest(text: bytes, span: tuple[int, int]) -> bytes:
    return hashlib.sha256(text[:span[0]] + UNSEALED.encode() + text[span[1]:]).hexdigest().encode()


def seal_style(path: str) -> bool:
    """Set the marker of the style ``path`` (written with ``STYLE_MARK`` = ``UNSEALED``) to the file's digest;
    False when the file has no marker."""
    with open(os_path(path), "rb") as fh:
        text = fh.read()
    span = _mark_value(text)
    if span is None:
        return False
    with open(os_path(path), "wb") as fh:
        fh.write(text[:span[0]] + _digest(text, span) + text[span[1]:])
    return True


def is_ksdiff_style(path: str) -> bool:
    """True when the file ``path`` is a style KSDiff wrote and nobody changed since."""
    try:
        if os.path.getsize(os_path(path)) > MAX_STYLE_BYTES:
            return False
        with open(os_path(path), "rb") as fh:
            text = fh.read()
    except OSError:
        return False
    span = _mark_value(text)
    return span is not None and text[span[0]:span[1]] == _digest(text, span)


def style_owner(path: str) -> str | None:
    """The output file name the KSDiff style ``path`` was written for; "" for a style written before the name was
    recorded; None when ``path`` is not a style KSDiff wrote (``is_ksdiff_style``)."""
    if not is_ksdiff_style(path):
        return None
    # parsed as XML: a regex up to the tag's first ">" read "a" from value="a>b&lt;c.tif" (QGIS writes ">" raw), so a
    # run onto a>b<c.tiff took the style of a>b<c.tif for its own (QA)
    try:
        with open(os_path(path), "rb") as fh:
            root = ET.parse(fh).getroot()   # the DOCTYPE's external DTD is never fetched
    except (ET.ParseError, OSError):
        return ""
    for option in root.iter("Option"):
        if option.get("name") == STYLE_FOR:
            return option.get("value") or ""
    return ""


def namesakes(output: str) -> list[str]:
    """The other rasters beside ``output`` with its stem (``o.tiff``, ``o.TIF``, ``o.vrt`` for ``o.tif``), whose
    QGIS default style is the same ``<stem>.qml``; their file names, sorted."""
    folder, name = os.path.split(os.path.abspath(output))
    name_stem = os.path.splitext(name)[0]
    stem = os.path.normcase(name_stem)
    try:
        entries = os.listdir(os_path(folder))
    except OSError:
        return []
    found = []
    for entry in entries:
        path = os.path.join(folder, entry)
        entry_stem, ext = os.path.splitext(entry)
        if (entry_stem.lower() != stem.lower() or os.path.normcase(entry) == os.path.normcase(name)
                or entry.lower().endswith(".qml") or not os.path.isfile(os_path(path))):
            continue
        if os.path.normcase(entry_stem) != stem and not _same_file(path, os.path.join(folder, name_stem + ext)):
            continue   # O.tiff beside o.tif: its own O.qml, unless the disk folds case (macOS: the same file)
        with contextlib.suppress(OSError):
            if os.path.exists(os_path(output)) and os.path.samefile(os_path(path), os_path(output)):
                continue   # o.TIF is o.tif on a case-insensitive disk
        if gdal.IdentifyDriverEx(os_path(path), gdal.OF_RASTER) is not None:
            found.append(entry)
    return sorted(found)


def owner_of(path: str, output: str) -> str | None:
    """The file name of the raster the KSDiff style ``path`` beside ``output`` was written for. An older style
    without a name is another raster's of the stem beside ``output`` when there is one (``namesakes``;
    ``<stem>.tif``, the name the plugin proposes, first), else ``output``'s. None: not a style KSDiff wrote."""
    owner = style_owner(path)
    if owner == "":
        # the same answer before and after the run writes ``output`` (the plugin asks before, the commit after): QA,
        # a first run onto o.tif took o.tiff's older style as its own and deleted it
        others = namesakes(output)
        stem_tif = os.path.normcase(os.path.splitext(os.path.basename(output))[0] + ".tif")
        tifs = [other for other in others if os.path.normcase(other) == stem_tif]
        owner = (tifs or others or [os.path.basename(output)])[0]
    return owner


def belongs_to(path: str, output: str) -> bool:
    """True when ``path`` is a style KSDiff wrote for the raster ``output`` (its file name, compared as the disk
    does: ``owner_of``)."""
    owner = owner_of(path, output)
    if owner is None:
        return False
    # normcase does not fold case on macOS, whose disks do: there o.TIF is o.tif when both names find one file
    return (os.path.normcase(owner) == os.path.normcase(os.path.basename(output))
            or _same_file(os.path.join(os.path.dirname(os.path.abspath(output)), owner), output))


def _same_file(a: str, b: str) -> bool:
    """True when both paths exist and are one file (two spellings of a name on a case-insensitive disk)."""
    try:
        return os.path.samefile(os_path(a), os_path(b))
    except OSError:
        return False


def shared_style_note(path: str, owner: str) -> str:
    """The log line for KSDiff's style ``path`` of the raster ``owner`` beside the output, kept: QGIS reads it for
    both files."""
    return (f"kept {os.path.basename(path)}, the QGIS style KSDiff wrote for '{owner}', which shares this output's "
            "name: QGIS opens this output with it too; give the output a name of its own for a style of its own")


def kept_style_note(path: str) -> str:
    """The log line for a style beside the output that is not KSDiff's."""
    return f"kept your style {os.path.basename(path)}; the output opens with it"


def removed_style_note(path: str) -> str:
    """The log line for KSDiff's style ``path`` of a replaced output, removed by the commit (the plugin holds it
    back and says "replaced" when it writes the new output's style in its place)."""
    return f"removed {os.path.basename(path)}, the QGIS style of the replaced output"
