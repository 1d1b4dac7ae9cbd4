"""Which ``<output>.qml`` default styles KSDiff wrote, and so may remove or overwrite (Qt-free: the XML text).

The plugin saves its natural-colour style with a QGIS custom property ``ksdiff/style`` (``STYLE_MARK``) whose value
is the SHA-256 of the file with that value blanked (``seal_style``). A style without it (the user's own, an input's
sharing the basename) or whose text changed since (the user saved their own default style from a layer that had
loaded ours: QGIS copies the property) is not ours: it is never removed or replaced (QA: a first run onto
``ms.tif`` deleted ``ms.qml``, the style of the input ``ms.jp2``).
"""
from __future__ import annotations

import hashlib
import os
import re

from ..gdalutil import os_path

STYLE_MARK = "ksdiff/style"          # the custom property's key (QgsMapLayer.CustomProperties in the .qml)
UNSEALED = "0" * 64                   # its value when written, before seal_style
MAX_STYLE_BYTES = 1 << 20             # a natural-colour style is ~3 KB; a larger file is not ours
# the <Option … name="ksdiff/style" … value="…"/> element; QGIS writes its attributes in any order
_MARK = re.compile(rb'<Option\b[^>]*\bname="' + re.escape(STYLE_MARK.encode()) + rb'"[^>]*>')
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


def kept_style_note(path: str) -> str:
    """The log line for a style beside the output that is not KSDiff's."""
    return f"kept your style {os.path.basename(path)}; the output opens with it"


def removed_style_note(path: str) -> str:
    """The log line for KSDiff's style ``path`` of a replaced output, removed by the commit (the plugin holds it
    back and says "replaced" when it writes the new output's style in its place)."""
    return f"removed {os.path.basename(path)}, the QGIS style of the replaced output"
