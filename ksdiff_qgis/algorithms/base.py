"""What every ``ksdiff`` Processing algorithm shares: translation, group, icon, help URL and ``createInstance``.

Translatable strings: ``tr("… {} …").format(…)``, never ``tr(f"…")`` (the translation is looked up by the
literal source text, which an f-string has already replaced).
"""
from __future__ import annotations

import functools
import os
import traceback
from typing import Callable

from qgis.core import QgsProcessingAlgorithm, QgsProcessingException, QgsProcessingParameterRasterLayer
from qgis.PyQt import sip
from qgis.PyQt.QtCore import QCoreApplication, QThread
from qgis.PyQt.QtGui import QIcon

from ..engine.errors import Cancelled, InputError
from ..helplinks import readme_url
from .compat import unknown_enum_value
from .console_echo import quiet_log_echo
from .running import registered

ICONS = os.path.join(os.path.dirname(os.path.dirname(__file__)), "resources", "icons")
ICON = os.path.join(ICONS, "ksdiff.svg")
GROUPS = {"pansharpening": "Pansharpening", "setup": "Setup"}   # group id -> display name (translated in group())


def translator(context: str) -> Callable[[str], str]:
    """A ``tr(text)`` that translates in ``context`` (one context per algorithm module)."""
    def tr(text: str) -> str:
        return QCoreApplication.translate(context, text)

    return tr


def _dropped(error: BaseException) -> str:
    """``error``'s message, after its traceback and those of its causes and contexts let go of their frames: the
    engine's frames hold the run's open input datasets and arrays."""
    seen, pending = set(), [error]
    while pending:
        e = pending.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        traceback.clear_frames(e.__traceback__)   # frames still running (this one) are left as they are
        e.__traceback__ = None
        pending += [e.__cause__, e.__context__]
    return str(error) or type(error).__name__


def _same_file(a: str, b: str) -> bool:
    return a == b or (os.path.exists(a) and os.path.exists(b) and os.path.samefile(a, b))


# context (its C++ address) -> the ids of the layers its temporary store held when the run started. Module-level:
# QGIS checks the parameters on one instance of the algorithm and runs another (QgsProcessingAlgorithm::run);
# never the context itself (see releases_on_failure). Entries go when the run ends; a few of checks never run stay
_STORE_BEFORE: dict[int, set[str]] = {}
_MAX_SNAPSHOTS = 16


def _context_key(context) -> int:
    return sip.unwrapinstance(context)


def _snapshot_store(context, fresh: bool) -> None:
    """Remember which layers the context's temporary store holds as the run starts: they are the caller's
    (QgsProcessingUtils.mapLayerFromString puts the layers a script holds there). ``fresh``: at
    ``checkParameterValues``, which already loads the inputs into that store; else (``prepareAlgorithm``) only when
    no check came first."""
    if context is None or (not fresh and _context_key(context) in _STORE_BEFORE):
        return
    if len(_STORE_BEFORE) >= _MAX_SNAPSHOTS:
        _STORE_BEFORE.clear()
    _STORE_BEFORE[_context_key(context)] = set(context.temporaryLayerStore().mapLayers())


def _drop_loaded_inputs(alg: QgsProcessingAlgorithm, parameters: dict, context) -> None:
    """Takes the raster layers QGIS loaded for this run's inputs given as file names out of the context's temporary
    layer store (they are deleted, closing their files; a later use loads the file again). Only layers this run
    added: one the store held before (``_snapshot_store``) may be held by the caller (QA: a script's layer from
    mapLayerFromString raised "wrapped C/C++ object … has been deleted" after a failed run); none without a
    snapshot.

    Only on the context's own thread (``processing.run`` from Python: there the raised exception, which QGIS keeps,
    holds the caller's frames and with them this context). The dialog runs the algorithm on a worker thread, where
    the context's layers are not ours to touch and nothing holds the context."""
    if context is None or context.thread() != QThread.currentThread():
        return
    before = _STORE_BEFORE.pop(_context_key(context), None)
    if before is None:
        return
    names = [value for p in alg.parameterDefinitions() if isinstance(p, QgsProcessingParameterRasterLayer)
             for value in [parameters.get(p.name())] if isinstance(value, str) and value]
    store = context.temporaryLayerStore()
    for layer_id, layer in list(store.mapLayers().items()):
        if layer_id not in before and any(_same_file(layer.source(), name) for name in names):
            store.removeMapLayer(layer)


def releases_on_failure(method: Callable) -> Callable:
    """Wraps ``prepareAlgorithm``/``processAlgorithm``: a failure reaches QGIS as a bare QgsProcessingException.

    QGIS never releases the exception a Python algorithm raises (its SIP error handler keeps it), and with it the
    traceback's frames: the run's context (its layers of the inputs), the engine's open PAN/MS datasets and its
    arrays stayed until QGIS closed (QA: 2-4 open files per failed or cancelled run, 380 MB after 6 cancels on a
    4800x4800 scene). The exception raised here carries one frame, whose locals are gone by then.

    An expected refusal (QgsProcessingException, the engine's InputError and Cancelled) keeps its message; any
    other exception is a bug, said as one (QA: KeyError('band_names') reached the user as "'band_names'"). Raised
    as QGIS's own algorithms do, never also reported on ``feedback`` (QGIS reports it); under qgis_process it is
    said once (``console_echo``)."""
    @functools.wraps(method)
    def wrapper(self, parameters, context, feedback):
        if method.__name__ == "prepareAlgorithm":
            _snapshot_store(context, fresh=False)
        try:
            if method.__name__ == "processAlgorithm":   # known to the plugin's unload until the run is over
                with registered(self, feedback):
                    result = method(self, parameters, context, feedback)
            else:
                result = method(self, parameters, context, feedback)
            if method.__name__ == "processAlgorithm" and context is not None:
                _STORE_BEFORE.pop(_context_key(context), None)   # the run is over
            return result
        except (QgsProcessingException, InputError, Cancelled) as e:
            message = _dropped(e)
        except Exception as e:   # a bug: its traceback goes to the log, the exception itself is dropped as above
            if feedback is not None:
                feedback.reportError(traceback.format_exc())
            kind = type(e).__name__
            message = QCoreApplication.translate(
                "Ksdiff", "Internal error ({}: {}); please report it with the log above").format(kind, _dropped(e))
        _drop_loaded_inputs(self, parameters, context)
        del self, parameters, context, feedback   # this frame is in the traceback QGIS keeps
        quiet_log_echo(message)   # qgis_process printed it three times
        raise QgsProcessingException(message)

    return wrapper


class KsdiffAlgorithm(QgsProcessingAlgorithm):
    """Base of the provider's algorithms: a subclass sets ``GROUP_ID`` (a key of ``GROUPS``) and defines
    name, displayName, shortHelpString, initAlgorithm and processAlgorithm."""

    GROUP_ID = "pansharpening"
    ICON_FILE = "ksdiff.svg"   # in resources/icons: each algorithm shows its own icon in the toolbox
    HELP_ANCHOR = "algorithms"   # the README section (GitHub heading slug) the dialog's Help button opens

    def checkParameterValues(self, parameters, context):  # noqa: N802
        _snapshot_store(context, fresh=True)   # before QGIS loads the inputs into the context's temporary store
        ok, msg = super().checkParameterValues(parameters, context)
        if not ok:
            msg = unknown_enum_value(self, parameters) or msg
        else:
            # QGIS accepts any text in a string, extent, band or file parameter: the algorithm's own reading says
            # what is wrong here, where processing.run raises it and the dialog shows it before the run (raised in
            # prepareAlgorithm, QGIS kept only "There were errors executing the algorithm.")
            refusal = self.refusal(parameters, context)
            if refusal:
                ok, msg = False, refusal
        if not ok:
            _drop_loaded_inputs(self, parameters, context)   # no run follows to let go of the layers loaded here
        return ok, msg

    def refusal(self, parameters: dict, context) -> str | None:
        """Why the values of ``parameters`` cannot run, read by the code the run reads them with; None when they can.
        Checked after QGIS's own check, by ``checkParameterValues``."""
        return None

    @staticmethod
    def refusal_of(*readers: Callable[[], object]) -> str | None:
        """The message of the first of ``readers`` that refuses its value (QgsProcessingException, or the engine's
        InputError), else None; any other exception is a bug, and is raised."""
        for read in readers:
            try:
                read()
            except (QgsProcessingException, InputError) as e:
                return str(e)
        return None

    def group(self) -> str:
        return QCoreApplication.translate("Ksdiff", GROUPS[self.GROUP_ID])

    def groupId(self) -> str:  # noqa: N802
        return self.GROUP_ID

    def helpUrl(self) -> str:  # noqa: N802
        """The algorithm's README section on the project homepage: QGIS's dialog shows a Help button only with one."""
        return readme_url(self.HELP_ANCHOR)

    def icon(self) -> QIcon:
        return QIcon(self.svgIconPath())

    def svgIconPath(self) -> str:  # noqa: N802
        return os.path.join(ICONS, self.ICON_FILE)

    def createInstance(self):  # noqa: N802
        return type(self)()

    def createCustomParametersWidget(self, parent=None):  # noqa: N802
        """QGIS's dialog, reading preset enum values given by key (imported here: qgis_process has no GUI)."""
        from .dialog import KeyedEnumDialog

        return KeyedEnumDialog(self, parent=parent)
