"""GDAL drivers the user switched off: QGIS's Settings > Options > GDAL sets GDAL_SKIP for the unticked drivers.

QA: with COG skipped, COG=true blamed 'Additional creation options' the user never gave ("Output driver `COG' not
recognised"); with GTiff skipped, a valid GeoTIFF PAN was "not a raster GDAL can read". Checked before any input is
read, and named as what it is, with how to turn the driver back on."""
from __future__ import annotations

import re

from osgeo import gdal

from .errors import InputError

# QGIS lists the drivers by their GDAL short names (GTiff, COG) in that dialog
_ENABLE = ("tick it again in QGIS's Settings > Options > GDAL (the driver list) and restart QGIS; outside QGIS, "
           "remove it from the GDAL_SKIP environment variable or configuration option")


def skipped() -> list[str]:
    """The driver names GDAL_SKIP (config option or environment variable) lists, as written."""
    return [n for n in re.split(r"[\s,]+", gdal.GetConfigOption("GDAL_SKIP") or "") if n]


def disabled(driver: str, purpose: str) -> str | None:
    """Why GDAL's ``driver`` cannot be used for ``purpose`` ("writes the output"), None when it is there."""
    if gdal.GetDriverByName(driver) is not None:
        return None
    if driver.lower() in (n.lower() for n in skipped()):
        return (f"GDAL's {driver} driver, which {purpose}, is disabled: GDAL_SKIP lists it, as QGIS does for a "
                f"driver unticked in its GDAL settings. To run, {_ENABLE}; nothing was written")
    return f"this GDAL has no {driver} driver, which {purpose}: use a GDAL build with it; nothing was written"


def require(driver: str, purpose: str) -> None:
    """InputError when ``driver`` is missing or switched off (``disabled``)."""
    why = disabled(driver, purpose)
    if why:
        raise InputError(why)


def open_hint() -> str:
    """For a file GDAL cannot open: the drivers GDAL_SKIP switches off (one of them may be the file's), else ""."""
    names = skipped()
    if not names:
        return ""
    return (f" (GDAL_SKIP disables the GDAL driver(s) {', '.join(names)}, as QGIS does for drivers unticked in its "
            f"GDAL settings: if one of them reads this file, {_ENABLE})")
