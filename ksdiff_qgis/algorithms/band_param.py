"""MS_BANDS: QGIS's multiple band parameter, which also writes and presets band numbers given as text.

``processing.run`` and ``qgis_process`` take MS_BANDS as text ("3,2,1", "4 3 2 1", "4;3;2;1": ``parse_bands``).
QGIS 3.22's own band parameter writes such text unquoted (``'MS_BANDS':3,2,1`` in History and in a model exported to
Python: a SyntaxError), and its dialog widget reads it as band 0 (QA: a preset "3,2,1" ran as "band 0 does not
exist"). This parameter writes the list the text means, and ``band_lists`` turns preset text into that list.
"""
from __future__ import annotations

from qgis.core import QgsProcessingParameterBand, QgsProperty

from .compat import FLAG_OPTIONAL, copied_from
from .options import parse_bands


def _as_bands(value) -> list[int] | None:
    """The band numbers ``value`` means when it is text or a list holding text, else None (left to QGIS)."""
    if isinstance(value, str) or (isinstance(value, (list, tuple)) and any(isinstance(v, str) for v in value)):
        try:
            return parse_bands(value)
        except ValueError:
            return None
    return None


class BandList(QgsProcessingParameterBand):
    """A multiple band parameter (band numbers from 1) whose Python text (History, models exported to Python) is a
    list, however the bands were given."""

    def __init__(self, name: str, description: str, parent_layer: str, optional: bool = True):
        super().__init__(name, description, None, parent_layer, optional, True)

    def clone(self):
        return copied_from(BandList(self.name(), self.description(), self.parentLayerParameterName(),
                                    bool(self.flags() & FLAG_OPTIONAL)), self)

    def valueAsPythonString(self, value, context):  # noqa: N802
        bands = _as_bands(value)
        if bands is not None:
            return "[{}]".format(",".join(str(b) for b in bands))
        if isinstance(value, str) and value.strip():   # text that is no band list: quoted; the run refuses it
            return repr(value)
        if isinstance(value, QgsProperty) and value.propertyType() == QgsProperty.ExpressionBasedProperty:
            # QGIS writes fromExpression('…') without escaping: an expression "'3,2,1'" broke the line
            return "QgsProperty.fromExpression({!r})".format(value.expressionString())
        return super().valueAsPythonString(value, context)


def band_lists(algorithm, parameters: dict) -> dict:
    """``parameters`` with each BandList value given as text turned into its band numbers: the dialog's band widget
    reads a list of numbers, and text as band 0."""
    fixed = dict(parameters)
    for name, value in parameters.items():
        bands = _as_bands(value) if isinstance(algorithm.parameterDefinition(name), BandList) else None
        if bands is not None:
            fixed[name] = bands
    return fixed
