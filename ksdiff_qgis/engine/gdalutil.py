"""GDAL calls that behave the same whether or not GDAL exceptions are enabled."""
from __future__ import annotations

from osgeo import gdal


def gdal_call(fn, *args, **kwargs):
    """Call a GDAL function whether or not GDAL exceptions are on (QGIS or another plugin may turn them on).

    Returns ``(result, message)``; result is None on failure and message holds GDAL's error text.
    """
    gdal.ErrorReset()
    try:
        result = fn(*args, **kwargs)
    except RuntimeError as e:
        return None, str(e)
    return result, gdal.GetLastErrorMsg()
