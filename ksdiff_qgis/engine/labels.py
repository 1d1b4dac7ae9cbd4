"""The names a dialog user sees, for the engine's messages: a parameter as 'Label' (KEY), a method by its label.

The engine is Qt-free, so these are the English labels of the Pansharpen dialog (``algorithms/pansharpen.py``;
``tests/test_messages.py`` checks they match). Advice names the label first, then the key a qgis_process user types.
"""
from __future__ import annotations

# the Pansharpen algorithm's parameter labels, as its dialog shows them: short (at most ``MAX_LABEL`` characters, as
# QGIS's own), the detail in each parameter's help (its tooltip). QA at 1366x768: labels of up to 80 characters made the
# dialog's parameter panel 626 px wide in a 376 px view, hiding the drop-down arrows and "…" buttons behind a sideways
# scroll
PARAMS = {
    "PAN": "Panchromatic (PAN) raster",
    "MS": "Multispectral (MS) raster",
    "SENSOR": "Sensor",
    "METHOD": "Method",
    "EXTENT": "Area of interest",
    "MS_BANDS": "MS bands to fuse",
    "MTF_GAINS": "MS MTF gains at Nyquist",
    "MODEL": "ONNX model overriding the bundled one",
    "DEVICE": "Device for learned models",
    "PRECISION": "Precision of a learned model on CPU",
    "CONSISTENCY": "Spectral consistency (learned methods)",
    "COREGISTER": "Co-register the MS onto the PAN",
    "TILE_SIZE": "Tile size (PAN pixels, 64–8192)",   # the range shown: QGIS's own check names none
    "OVERLAP": "Tile overlap (PAN pixels, 0 to half a tile)",
    "THREADS": "CPU threads for a learned model (0 = all)",
    "COMPRESSION": "Output compression",
    "COG": "Write a Cloud-Optimized GeoTIFF",
    "CREATE_OPTIONS": "Additional creation options",
}
MAX_LABEL = 45

# short names of the methods, as the Method list shows them (before the [key])
METHODS = {"ksdiff": "KSDiff (learned)", "exp": "EXP cubic upsampling", "brovey": "Weighted Brovey",
           "gsa": "Gram-Schmidt adaptive (GSA)", "mtf_glp_hpm": "MTF-GLP-HPM",
           "auto": "KSDiff self-checked on the scene", "mtf_glp_fs": "MTF-GLP-FS",
           "bdsd_pc": "BDSD-PC"}


def param(key: str, value: str | None = None) -> str:
    """"'Co-register the MS onto the PAN' (COREGISTER)"; with ``value``: "'Sensor' (SENSOR=wv2)"."""
    shown = key if value is None else f"{key}={value}"
    return f"'{PARAMS[key]}' ({shown})" if key in PARAMS else shown


def method(key: str) -> str:
    """A method's label for log prose: 'MTF-GLP-HPM' for mtf_glp_hpm; the key itself when it has none."""
    return METHODS.get(key, key)
