"""ONNX Runtime's own telemetry, switched off: the plugin works offline and sends nothing anywhere.

The official onnxruntime wheels from 1.29 on (PyPI; the plugin pins 1.32 / GPU 1.31) carry Microsoft's 1DS telemetry
on Linux and macOS (microsoft/onnxruntime#27379, release notes of v1.29.0). Measured with 1.32.0 on Linux, the
*import* alone writes ``$TMPDIR/.ses`` and ``~/.cache/Microsoft/DeveloperTools/.onnxruntime/`` (``deviceid``,
``onnxruntime.db`` with -wal/-shm, an SQLite queue of events naming the executable's path, the OS and each session),
holds them open while the process lives, and looks up ``mobile.events.data.microsoft.com`` to upload them.
``onnxruntime.disable_telemetry_events()`` comes too late for that (the files are written at import) and only
drops "non-essential" events. ONNX Runtime's documented switch (docs/Privacy.md, *Disabling Telemetry*) is the
variable ``ORT_DISABLE_TELEMETRY=1``, read once when the library loads: then no uploader, device id or event
queue is created. It must be in the environment before the first ``import onnxruntime`` of a process, so it is
set here, for QGIS's own process and for every child Python (the import probe, pip's import check).
"""
from __future__ import annotations

import os
from typing import MutableMapping

VARIABLE = "ORT_DISABLE_TELEMETRY"
_OFF = {"1", "true", "yes", "on"}   # the values ONNX Runtime 1.32 takes as "off" (case-insensitive)


def opted_in(environ: MutableMapping[str, str] | None = None) -> bool:
    """True when the user set ``ORT_DISABLE_TELEMETRY`` to something else than an "off" value (e.g. 0): their
    choice is kept. Unset or empty: not opted in, and the plugin switches telemetry off."""
    value = (os.environ if environ is None else environ).get(VARIABLE, "").strip()
    return bool(value) and value.lower() not in _OFF


def switch_off(environ: MutableMapping[str, str] | None = None) -> None:
    """Set ``ORT_DISABLE_TELEMETRY=1`` in ``environ`` (this process's environment by default: os.environ also
    sets it for the C library, where ONNX Runtime reads it), unless the user chose otherwise (``opted_in``)."""
    environ = os.environ if environ is None else environ
    if not opted_in(environ):
        environ[VARIABLE] = "1"


def quiet_events(ort) -> None:
    """``ort.disable_telemetry_events()``: the runtime API's switch, the only one on Windows (ETW events, recorded
    when a trace session collects them), and a second guard where the variable came too late (another plugin
    imported onnxruntime first). Not called when the user opted in."""
    if opted_in():
        return
    try:
        ort.disable_telemetry_events()
    except Exception:   # noqa: BLE001 - a build without the API, or a stub: nothing to switch off
        pass
