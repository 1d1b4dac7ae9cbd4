"""QGIS 3.22 … 4.x compatibility: scoped enums where they exist, per-parameter help, readable enums.

QGIS 3.36 moved Processing enums into ``Qgis`` (``Qgis.ProcessingNumberParameterType.Integer``,
``Qgis.ProcessingParameterFlag.Advanced``); QGIS 4 (Qt6) drops the old unscoped names. Each helper
picks whichever exists, so one plugin build runs on both.
"""
from __future__ import annotations

import re

from qgis.core import (
    Qgis,
    QgsCoordinateReferenceSystem,
    QgsProcessingException,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterNumber,
)
from qgis.PyQt.QtCore import QCoreApplication, QVariant


def _scoped(enum_name: str, member: str, fallback_owner, fallback_name: str):
    scoped = getattr(Qgis, enum_name, None)
    if scoped is not None and hasattr(scoped, member):
        return getattr(scoped, member)
    return getattr(fallback_owner, fallback_name)


NUMBER_INTEGER = _scoped("ProcessingNumberParameterType", "Integer", QgsProcessingParameterNumber, "Integer")
NUMBER_DOUBLE = _scoped("ProcessingNumberParameterType", "Double", QgsProcessingParameterNumber, "Double")
FLAG_ADVANCED = _scoped("ProcessingParameterFlag", "Advanced", QgsProcessingParameterDefinition, "FlagAdvanced")
FLAG_OPTIONAL = _scoped("ProcessingParameterFlag", "Optional", QgsProcessingParameterDefinition, "FlagOptional")
WKT_FOR_GDAL = _scoped("CrsWktVariant", "PreferredGdal", QgsCoordinateReferenceSystem, "WKT_PREFERRED_GDAL")
BRACKETED_KEY = re.compile(r"\[([^\[\]]+)\]\s*$")   # a label's key: "... [wv2_8]"


def advanced(param):
    """Mark ``param`` advanced (returns it)."""
    param.setFlags(param.flags() | FLAG_ADVANCED)
    return param


def set_help(param, text: str):
    """Per-parameter help (tooltip, ``qgis_process help``) where this QGIS has it (3.16+); returns ``param``."""
    if hasattr(param, "setHelp"):
        param.setHelp(text)
    return param


def copied_from(copy, original):
    """``copy``, a parameter's ``clone`` built from ``original``'s constructor arguments, given the flags (advanced,
    hidden) and help of ``original`` that no constructor takes; returns ``copy``."""
    copy.setFlags(original.flags())
    if hasattr(original, "help"):
        set_help(copy, original.help())
    return copy


class KeyedEnum(QgsProcessingParameterEnum):
    """An enum that shows human labels and accepts a key, a label or an index.

    The dialog needs labels and scripts need stable keys; 3.22's static-string enums show the raw keys
    and accept nothing else. So the options are the labels (value: their index, as the dialog stores it)
    and this class also accepts the key or the label (any case) from processing.run and qgis_process.
    Whatever QGIS writes out (History, a model exported to Python) and a dialog given preset values hold the
    index: QGIS's C++ code and its enum widget read a key as a failed number, i.e. the first option or the
    default. Keys are only ever appended, so a stored index keeps its meaning. ``aliases`` maps other words a
    user may type to keys (PRECISION's float32 is fp32), accepted like the keys (any case). Any text ending in a
    key in brackets is read as that key: the longer labels of 0.3.0 and before, which scripts may hold, still work.
    """

    def __init__(self, name: str, description: str, keys: list[str], labels: list[str], default_key: str,
                 optional: bool = False, aliases: dict[str, str] | None = None):
        super().__init__(name, description, options=labels, allowMultiple=False,
                         defaultValue=keys.index(default_key), optional=optional)
        self.keys, self.labels = list(keys), list(labels)
        self.aliases = {a.lower(): k for a, k in (aliases or {}).items() if k in self.keys}

    def clone(self):
        return copied_from(KeyedEnum(self.name(), self.description(), self.keys, self.labels,
                                     self.keys[self.defaultValue()] if isinstance(self.defaultValue(), int)
                                     else self.keys[0], bool(self.flags() & FLAG_OPTIONAL), self.aliases), self)

    def key_of(self, value) -> str | None:
        """The key for a value given as key, label or index (int or digit string); None when unknown."""
        if isinstance(value, bool):
            return None
        if isinstance(value, (int, float)) and float(value).is_integer():
            i = int(value)
            return self.keys[i] if 0 <= i < len(self.keys) else None
        if isinstance(value, (list, tuple)) and len(value) == 1:    # qgis_process passes repeated args as a list
            return self.key_of(value[0])
        if isinstance(value, str):
            text = value.strip()
            if text.lstrip("-").isdigit():
                return self.key_of(int(text))
            for keys in (self.keys, self.labels):
                low = [k.lower() for k in keys]
                if text.lower() in low:
                    return self.keys[low.index(text.lower())]
            bracketed = BRACKETED_KEY.search(text)
            if bracketed and bracketed.group(1).lower() in (k.lower() for k in self.keys):
                return self.key_of(bracketed.group(1))
            return self.aliases.get(text.lower())
        return None

    def index_of(self, value) -> int | None:
        """The option number for a value given as key, label or index; None when unknown."""
        key = self.key_of(value)
        return None if key is None else self.keys.index(key)

    def valueAsPythonString(self, value, context):  # noqa: N802
        # QGIS's own writes a key as 0 (History, asPythonCommand, a model exported to Python): another option;
        # an unknown text stays as it is (QGIS wrote 0, another option than the run refused or used)
        index = self.index_of(value)
        if index is None and isinstance(value, str) and value.strip():
            return repr(value)
        return super().valueAsPythonString(value if index is None else index, context)

    def valueAsPythonComment(self, value, context):  # noqa: N802
        index = self.index_of(value)
        return super().valueAsPythonComment(value if index is None else index, context)

    @staticmethod
    def is_empty(value) -> bool:
        """No value: None, an empty text, or the NULL QVariant qgis_process passes for ``SENSOR=`` (QA: refused as
        'Incorrect parameter value' where processing.run's "" took the default)."""
        return value is None or value == "" or (isinstance(value, QVariant) and value.isNull())

    def checkValueIsAcceptable(self, value, context=None):  # noqa: N802
        if self.is_empty(value):
            return bool(self.flags() & FLAG_OPTIONAL) or self.defaultValue() is not None
        if hasattr(value, "propertyType"):    # a data-defined QgsProperty (models): judged at run time
            return True
        return self.key_of(value) is not None

    def unknown_message(self, value) -> str:
        """The refusal of a value that is no key, label or option number."""
        return QCoreApplication.translate(
            "KeyedEnum", "{}: unknown value {!r}; use one of {} (or an option's whole label with its [key], or its "
                         "number)").format(self.name(), value, ", ".join(self.keys))

    def resolve(self, parameters: dict, context) -> str:
        """The key chosen in ``parameters`` (the default when absent or empty); an unknown value is refused (in a
        model QGIS 3.22 checks no child's values, and the default ran in its place: QA, 'mtf-glp-hpm' ran auto)."""
        value = parameters.get(self.name())
        if hasattr(value, "valueAsString"):     # QgsProperty
            value, _ = value.valueAsString(context.expressionContext(), "")
        if self.is_empty(value):
            return self.key_of(self.defaultValue())
        key = self.key_of(value)
        if key is None:
            raise QgsProcessingException(self.unknown_message(value))
        return key


def unknown_enum_value(algorithm, parameters: dict) -> str | None:
    """The refusal of the first KeyedEnum value in ``parameters`` that is no key, label or number, else None
    (QGIS itself only says "Incorrect parameter value")."""
    for param in algorithm.parameterDefinitions():
        value = parameters.get(param.name())
        if isinstance(param, KeyedEnum) and not param.is_empty(value) and not hasattr(value, "propertyType") \
                and param.key_of(value) is None:
            return param.unknown_message(value)
    return None


def enum_indexes(algorithm, parameters: dict) -> dict:
    """``parameters`` with each KeyedEnum value given as key or label turned into its option number."""
    fixed = dict(parameters)
    for name, value in parameters.items():
        param = algorithm.parameterDefinition(name)
        index = param.index_of(value) if isinstance(param, KeyedEnum) else None
        if index is not None:
            fixed[name] = index
    return fixed
