"""EXTENT given as text, 'xmin,xmax,ymin,ymax [CRS]', with a CRS in any form QGIS reads: an authority code
(EPSG:32631), a WKT, or a PROJ string with or without its proj4: prefix.

QGIS's own parsing hands the text in brackets to ``QgsCoordinateReferenceSystem(text)``, which reads a bare PROJ
string as a WKT (and fails), and takes an extent whose CRS it cannot read as one in the project's CRS: the rectangle
is built here instead, with the CRS read by every means QGIS has, and QGIS reprojects it as usual.
"""
from __future__ import annotations

import re

from qgis.core import QgsCoordinateReferenceSystem, QgsProperty, QgsRectangle, QgsReferencedRectangle

from .base import translator

tr = translator("KsdiffPansharpen")

# QgsProcessingParameters::parameterAsExtent's own pattern: the CRS is everything between the first '[' after the
# four numbers and the last ']' (a WKT holds brackets of its own)
EXTENT_TEXT = re.compile(r"^(.*?)\s*,\s*(.*?),\s*(.*?),\s*(.*?)\s*(?:\[(.*)\])?\s*$", re.DOTALL)
MAX_QUOTED = 160   # characters of an unreadable CRS text quoted in the error (a WKT runs to a thousand)


class UnreadableCrs(ValueError):
    """The text in an EXTENT's brackets is no CRS QGIS can read; ``quoted``: that text for the message."""

    def __init__(self, text: str):
        text = " ".join(text.split())   # a pretty-printed WKT's indentation says nothing
        self.quoted = text if len(text) <= MAX_QUOTED else text[:MAX_QUOTED] + " …"
        super().__init__(self.quoted)


def read_crs(text: str) -> QgsCoordinateReferenceSystem | None:
    """The CRS ``text`` names (an authority code, a WKT, a PROJ string, a proj4:/wkt: prefixed one), or None."""
    text = text.strip()
    if not text:
        return None
    crs = QgsCoordinateReferenceSystem(text)   # AUTH:CODE, a WKT, proj4:/proj:/wkt: prefixed
    if crs.isValid():
        return crs
    crs = QgsCoordinateReferenceSystem()
    # GDAL's reading of user input: a bare PROJ string, an OGC URN, an ESRI WKT
    return crs if crs.createFromUserInput(text) and crs.isValid() else None


def referenced_extent(value) -> QgsReferencedRectangle | None:
    """An EXTENT value of the form 'xmin,xmax,ymin,ymax [CRS]' as a rectangle in that CRS; None for any other value
    (a rectangle without a CRS, a layer, a QGIS object), which QGIS parses itself. Raises ``UnreadableCrs`` when the
    text in brackets is no CRS."""
    if not isinstance(value, str):
        return None
    match = EXTENT_TEXT.match(value.strip())
    if not match or match.group(5) is None or not match.group(5).strip():
        return None
    try:
        xmin, xmax, ymin, ymax = (float(match.group(i)) for i in range(1, 5))
    except ValueError:
        return None   # not four numbers: QGIS's own check words it
    crs = read_crs(match.group(5))
    if crs is None:
        raise UnreadableCrs(match.group(5).strip())
    return QgsReferencedRectangle(QgsRectangle(xmin, ymin, xmax, ymax), crs)


def unreadable_extent(value) -> str:
    """The refusal of an EXTENT that was given but gives no rectangle (text that is no extent, an expression whose
    value is none, e.g. 1/0, a geometry or a point): it names what was given and what to give instead."""
    if isinstance(value, QgsProperty):
        shown = tr("the expression {}").format(value.expressionString() or value.asExpression() or value.field())
    elif isinstance(value, str):
        shown = '"{}"'.format(value if len(value) <= MAX_QUOTED else value[:MAX_QUOTED] + " …")
    else:
        shown = tr("a {}").format(type(value).__name__)
    return tr("EXTENT: {} gives no rectangle, so the area of interest is unknown. Give 'xmin,xmax,ymin,ymax [CRS]' "
              "(e.g. '593300,593400,5747500,5747600 [EPSG:32631]'), a layer, or a rectangle drawn on the map "
              "canvas; an expression must give such a text or a rectangle. Leave EXTENT empty for the whole PAN/MS "
              "overlap. Nothing was written").format(shown)
