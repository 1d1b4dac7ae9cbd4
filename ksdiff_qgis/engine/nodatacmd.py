"""The command that makes an input raster carry a nodata value (or none), for a log line to give.

``gdal_edit.py -a_nodata`` opens the file for update: GDAL refuses that for a DIMAP ("The DIMAP driver does not
support update access"), for a file inside an archive (/vsizip/: "Read-write random access not supported"), for a
driver that writes nothing (no Create nor CreateCopy) and for a file the user may not write. There a virtual copy
that declares it works for any raster GDAL reads (``gdal_translate -of VRT -a_nodata 0 in out.vrt``: checked on
GDAL 3.6 with a DIM_*.XML, a /vsizip/ GeoTIFF and a JP2; it keeps the DIMAP's NBITS), and is what to fuse then.
"""
from __future__ import annotations

import math
import os

import numpy as np
from osgeo import gdal

from .gdalutil import is_vsi, os_path
from .shellcmd import beside, shell_arg


def exact(value: float, dtype=None) -> str:
    """``value`` as text that reads back as exactly it, in a raster of type ``dtype`` (None: float64): ``:g`` when
    that does, else the shortest round trip of the type (a float32 value: 9 digits at most). ``:g`` keeps 6
    digits: a float32 fill -FLT_MAX printed as -3.40282e+38, which is not the value the pixels hold."""
    text = f"{value:g}"
    if math.isnan(value) or math.isinf(value):
        return text
    if dtype is not None and np.dtype(dtype) == np.float32 and abs(value) <= np.finfo(np.float32).max:
        v32 = np.float32(value)
        return text if np.float32(float(text)) == v32 else str(v32)
    return text if float(text) == value else repr(float(value))


def updatable(path: str) -> bool:
    """Whether ``gdal_edit.py`` can set a nodata value on ``path``: a plain file the user may write, of a driver
    that writes files (GeoTIFF, VRT, JP2OpenJPEG: the value goes into the file or its .aux.xml)."""
    if is_vsi(path) or not os.path.isfile(os_path(path)) or not os.access(os_path(path), os.W_OK):
        return False
    driver = gdal.IdentifyDriver(path)
    return driver is not None and any(driver.GetMetadataItem(c) == "YES" for c in ("DCAP_CREATE", "DCAP_CREATECOPY"))


def nodata_command(path: str, value: float | None, dtype=None) -> str:
    """A command that makes ``path`` carry ``value`` as its nodata value (None: no nodata): ``gdal_edit.py`` where
    GDAL can update the file (``updatable``), else ``gdal_translate -of VRT`` to a virtual copy beside it (in the
    current folder for a file inside an archive), with the copy named as the file to fuse. The value is written
    exactly for a raster of type ``dtype`` (``exact``)."""
    shown = "none" if value is None else exact(value, dtype)
    if updatable(path):
        return f"gdal_edit.py {'-unsetnodata' if value is None else f'-a_nodata {shown}'} {shell_arg(path)}"
    out = beside(path, "_nodata.vrt")
    return (f"gdal_translate -of VRT -a_nodata {shown} {shell_arg(path)} {shell_arg(out)} (GDAL cannot update "
            f"{os.path.basename(path)}), then fuse {os.path.basename(out)}")
