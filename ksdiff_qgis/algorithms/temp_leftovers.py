"""Killed runs' temporary files in QGIS's other Processing temporary folders, swept by a run onto a temporary output.

QA115: a kill -9 during a TEMPORARY_OUTPUT run left a scene-sized ``.OUTPUT.tif.<hex>.partial`` in
``processing_XXXX/<uuid>/``; every later run writes into a new ``<uuid>`` folder (and a new QGIS session into a new
``processing_XXXX``), so the writer's sweep of its own output folder never met it. The same rules as there
(``partials.sweep_folder``: the writer's exact naming, this user's regular files, over an hour old, unlocked), only in
this user's own ``processing_*`` folders and their run folders (not links, two levels deep).
"""
from __future__ import annotations

import os
import stat

from qgis.core import QgsProcessingUtils

from ..engine.gdalutil import gdal_str, os_path
from ..engine.raster_io.partials import sweep_folder


def _own_folders(parent: str, prefix: str = "") -> list[str]:
    """The folders in ``parent`` (named ``prefix``…) that are real folders of this user: never a link, never another
    user's."""
    try:
        names = [gdal_str(f) for f in os.listdir(os_path(parent))]
    except OSError:
        return []
    found = []
    for name in names:
        path = os.path.join(parent, name)
        try:
            st = os.lstat(os_path(path))
        except OSError:
            continue
        if name.startswith(prefix) and stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid():
            found.append(path)
    return sorted(found)


def processing_folders(base: str | None = None) -> list[str]:
    """This user's Processing temporary folders in ``base`` (default: where QGIS makes them), each followed by its
    run folders."""
    if not hasattr(os, "getuid"):   # Windows: the sweep needs POSIX ownership and locks
        return []
    base = base or os.path.dirname(os.path.abspath(QgsProcessingUtils.tempFolder()))
    return [f for s in _own_folders(base, "processing_") for f in (s, *_own_folders(s))]


def sweep_temp_leftovers(output: str, base: str | None = None) -> list[str]:
    """When ``output`` lies in a Processing temporary folder, remove killed runs' leftovers from the others (its own
    folder is the writer's to sweep); returns the files removed, else []."""
    folders = processing_folders(base)
    here = os.path.dirname(os.path.abspath(output))
    if here not in folders:
        return []
    return [p for f in folders if f != here for p in sweep_folder(f)]
