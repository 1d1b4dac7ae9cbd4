"""A name of its own for the layer a run loads: "<method> – <MS layer>", made distinct within its project.

QA: runs of one method on one MS with other settings (MS_BANDS 1,2,3,4 then 4,3,2, another EXTENT, COG on/off) loaded
layers of the same name for temporary outputs and outputs under the temporary folder (where QGIS does not name the
layer after its file); the Raster Calculator's "name@1" then silently read the other layer.
"""
from __future__ import annotations

from qgis.core import QgsMapLayer, QgsProject


def bands_detail(bands: list[int] | None) -> str | None:
    """What MS_BANDS adds to a name: "bands 4,3,2"; None when it was not given."""
    return "bands " + ",".join(str(b) for b in bands) if bands else None


def distinct_name(project: QgsProject, layer: QgsMapLayer, name: str, detail: str | None = None) -> str:
    """``name`` when no other layer of ``project`` has it, else ``name (detail)`` when that one is free, else the
    first free of ``… (2)``, ``… (3)``, …. Compared without case, as QGIS finds a layer by name (Processing's layer
    parameters, the Raster Calculator); ``layer`` itself (already added, or reused by a run onto its file) does not
    count."""
    taken = {other.name().casefold() for other in project.mapLayers().values() if other.id() != layer.id()}
    if name.casefold() not in taken:
        return name
    base = "{} ({})".format(name, detail) if detail else name
    if base.casefold() not in taken:
        return base
    count = 2
    while "{} ({})".format(base, count).casefold() in taken:
        count += 1
    return "{} ({})".format(base, count)
