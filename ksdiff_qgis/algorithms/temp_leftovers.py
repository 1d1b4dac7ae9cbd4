"""Killed runs' temporary files in QGIS's Processing temporary folders, swept by a run onto a temporary output.

QA115: a kill -9 during a TEMPORARY_OUTPUT run left a scene-sized ``.OUTPUT.tif.<hex>.partial`` in
``processing_XXXX/<uuid>/``; every later run writes into a new ``<uuid>`` folder (and a new QGIS session into a new
``processing_XXXX``), so the writer's sweep of its own output folder never met it. Safe: only files of the writer's
exact naming are touched, only those no live run holds (``partials.remove_stale_in_folder``: a lock taken and kept
while deleting), only in this user's own ``processing_*`` folders (not links), and at most two levels deep.
"""
from __future__ import annotations

import glob
import os

from qgis.core import QgsProcessingUtils

from ..engine.raster_io.partials import remove_stale_in_folder


def _own_folder(path: str) -> bool:
    """A real folder (not a link) of this user: another user's or a planted link is never swept."""
    try:
        return os.path.isdir(path) and not os.path.islink(path) and \
            (not hasattr(os, "getuid") or os.stat(path).st_uid == os.getuid())
    except OSError:
        return False


def processing_folders() -> list[str]:
    """This user's Processing temporary folders (this session's and earlier ones'), each with its run folders."""
    base = os.path.dirname(os.path.abspath(QgsProcessingUtils.tempFolder()))
    sessions = [f for f in glob.glob(os.path.join(glob.escape(base), "processing_*")) if _own_folder(f)]
    runs = [f for s in sessions for f in glob.glob(os.path.join(glob.escape(s), "*")) if _own_folder(f)]
    return sorted(sessions + runs)


def sweep_temp_leftovers(output: str) -> list[str]:
    """When ``output`` lies in a Processing temporary folder, remove killed runs' temporary files from all of them
    (its own folder is the writer's to sweep); returns the files removed, else []."""
    folders = processing_folders()
    here = os.path.dirname(os.path.abspath(output))
    if here not in folders:
        return []
    return [p for f in folders if f != here for p in remove_stale_in_folder(f)]


def leftover_line(path: str) -> str:
    """The log line of one removed file."""
    return f"removed {path}, left in QGIS's Processing temporary folder by an interrupted earlier run"
