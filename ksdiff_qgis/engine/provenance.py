"""What an output GeoTIFF records about how it was made: the software, the method that ran, the model (and its
SHA-256), the sensor, every setting that changes pixels (``settings``) and, for METHOD auto, the self-check's decision
and figures.

Plain default-domain items named ``KSDIFF_...``, not a ``KSDIFF`` domain of their own: the default domain is the one
every copy keeps. ``gdal_translate`` copies only it (GDAL < 3.8 has no COPY_SRC_MDD), and GDAL's COG copy drops other
domains (it left IMAGERY out, ``outputs.CogWriter``), while the default domain stays inside the file (GDAL_METADATA
tag), with no .aux.xml needed. ``TIFFTAG_SOFTWARE`` is the TIFF's own Software tag, which any TIFF reader shows.
"""
from __future__ import annotations

import configparser
from pathlib import Path

from osgeo import gdal

from .gdalutil import gdal_call
from .nodatacmd import exact

PREFIX = "KSDIFF_"
SOFTWARE = "KSDiff for QGIS"


def plugin_version() -> str:
    """The plugin version from metadata.txt ("unknown" when it cannot be read)."""
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(Path(__file__).resolve().parent.parent / "metadata.txt", encoding="utf-8")
    return cfg.get("general", "version", fallback="unknown")


def _text(value) -> str:
    """A figure as metadata text: floats to 6 significant digits (enough to compare runs, no binary noise)."""
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def items(method: str, sensor: str | None, model: str | None, checked: dict | None,
          settings: dict | None = None) -> dict[str, str]:
    """The provenance items of one run: ``method`` that ran, ``sensor`` used, ``model`` file name (learned methods),
    ``checked``: the self-check's figures (``SelfCheck.outputs()``, METHOD auto), each as ``KSDIFF_SELFCHECK_...``;
    ``settings``: what else changed the pixels (``PRECISION``, ``TILE_SIZE``, ``PAN_NODATA``, ...: ``run_settings``),
    each as ``KSDIFF_<key>``. Values that are None are left out."""
    found = {"TIFFTAG_SOFTWARE": f"{SOFTWARE} {plugin_version()}", f"{PREFIX}METHOD": method}
    if sensor:
        found[f"{PREFIX}SENSOR"] = sensor
    if model:
        found[f"{PREFIX}MODEL"] = model
    for key, value in {**(settings or {}), **(checked or {})}.items():
        if value is not None:
            found[PREFIX + key] = _text(value)
    return found


def numbers(values) -> str:
    """'0.3,0.28' / '4,3,2': a list as one comma-separated item (floats to 6 significant digits)."""
    return ",".join(_text(float(v)) if isinstance(v, float) else str(v) for v in values)


def nodata_items(role: str, value: float | None, source: str) -> dict[str, str]:
    """``<role>_NODATA`` (the value used, or 'none') and ``<role>_NODATA_SOURCE``: 'file', 'layer' (a QGIS layer's
    value, not in the file: the result depends on that layer setting), 'dimap' (the NODATA special value of the
    Airbus DIMAP that describes the input, which the raster itself does not declare), 'fill' (an undeclared fill
    code such as -9999 that ``codefill`` recognised) or 'none'."""
    return {f"{role}_NODATA": "none" if value is None else exact(value), f"{role}_NODATA_SOURCE": source}


def record(ds: gdal.Dataset, found: dict[str, str]) -> None:
    """Write ``found`` (``items``) into the default metadata domain of ``ds``, over what the inputs' metadata put
    there (an MS written by another program carries its own TIFFTAG_SOFTWARE)."""
    gdal_call(ds.SetMetadata, {**(ds.GetMetadata() or {}), **found})
