"""The names a dialog user sees, for the engine's messages: a parameter as 'Label' (KEY), a method by its label.

The engine is Qt-free, so these are the English labels of the Pansharpen dialog (``algorithms/pansharpen.py``;
``tests/test_messages.py`` checks they match). Advice names the label first, then the key a qgis_process user types.
"""
from __future__ import annotations

# the Pansharpen algorithm's parameter labels, as its dialog shows them
PARAMS = {
    "PAN": "Panchromatic (PAN) raster",
    "MS": "Multispectral (MS) raster",
    "SENSOR": "Sensor",
    "METHOD": "Method",
    "MS_BANDS": "MS bands to fuse, in this order (default: all)",
    "MTF_GAINS": "MS MTF gains at Nyquist, separated by commas or spaces (default: the sensor's)",
    "MODEL": "ONNX model overriding the bundled one",
    "DEVICE": "Device for learned models",
    "PRECISION": "Precision of a learned model on CPU",
    "CONSISTENCY": "Project a learned output onto the MS (one spectral-consistency step)",
    "COREGISTER": "Move the MS onto the PAN by the offset measured on the scene (co-register)",
    "TILE_SIZE": "Tile size (PAN pixels, 64–8192)",   # the range shown: QGIS's own check names none
    "OVERLAP": "Tile overlap (PAN pixels, 0 to half the tile size)",
    "THREADS": "CPU threads for a learned model (0 = all cores)",
    "COMPRESSION": "Output compression",
    "COG": "Write a Cloud-Optimized GeoTIFF (with overviews)",
    "CREATE_OPTIONS": "Additional creation options",
}

# short names of the methods, as the Method list shows them (before the [key])
METHODS = {"ksdiff": "KSDiff (learned)", "exp": "EXP cubic upsampling", "brovey": "Weighted Brovey",
           "gsa": "Gram-Schmidt adaptive (GSA)", "mtf_glp_hpm": "MTF-GLP-HPM",
           "auto": "KSDiff self-checked on the scene", "mtf_glp_fs": "MTF-GLP-FS"}


def param(key: str, value: str | None = None) -> str:
    """"'Tile size (PAN pixels)' (TILE_SIZE)"; with ``value``: "'Sensor' (SENSOR=wv2)"."""
    shown = key if value is None else f"{key}={value}"
    return f"'{PARAMS[key]}' ({shown})" if key in PARAMS else shown


def method(key: str) -> str:
    """A method's label for log prose: 'MTF-GLP-HPM' for mtf_glp_hpm; the key itself when it has none."""
    return METHODS.get(key, key)
