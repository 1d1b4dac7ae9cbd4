"""Human labels for the enum options: short, with the key in brackets, so help and dialog show what scripts type.

QGIS's batch panel sizes its columns to the longest label and its autofill names output files after the chosen label
(QA: a 570 px Sensor column; ``batch_KSDiff, checked on this scene (the best classical method when the model loses the
self-check) [auto].tif``): a label is at most ``MAX_LABEL`` characters, without commas, slashes or colons; the detail
is in the parameter's help (``*_help``).
"""
from __future__ import annotations

import re
from typing import Callable

from ..engine import labels
from ..engine.numbers import decimal_comma_gains
from ..engine.pipeline import method_names
from ..engine.raster_io import outputs
from ..engine.sensors import SENSORS

MAX_LABEL = 40
# short names of the methods; a method added without one shows its description up to the first " ("
METHOD_NAMES = labels.METHODS   # the engine's log prose uses the same names


def sensor_name(key: str) -> str:
    """'WorldView-2 4 bands', 'Pléiades 1A-1B': the sensor's name without its details, its band count where two
    sensors share the name, '-' for '/' (a path separator in a file name)."""
    def short(k: str) -> str:
        return SENSORS[k].name.split(" (")[0].replace("/", "-")

    name = short(key)
    shared = sum(short(k) == name for k in SENSORS) > 1
    return f"{name} {SENSORS[key].n_bands} bands" if shared else name


def sensor_labels(tr: Callable[[str], str]) -> list[str]:
    """The SENSOR options: auto, then every sensor, '<name> [key]'."""
    return [tr("Auto-detect from the data") + " [auto]"] + [f"{sensor_name(k)} [{k}]" for k in SENSORS]


def sensor_help(tr: Callable[[str], str]) -> str:
    """Each sensor's band layout and ratio, which its short label leaves out."""
    def ratio(key: str) -> str:
        return tr("any ratio") if not SENSORS[key].ratio else tr("ratio {}").format(SENSORS[key].ratio)

    return tr("Sensors: {}.").format("; ".join(f"{k}: {s.name}, {ratio(k)}" for k, s in SENSORS.items()))


def method_labels(tr: Callable[[str], str]) -> list[str]:
    return ["{} [{}]".format(tr(METHOD_NAMES.get(key, desc.split(" (")[0])), key)
            for key, desc in method_names().items()]


def method_help(tr: Callable[[str], str]) -> str:
    """What each method does, which its short label leaves out."""
    return tr("Methods: {}.").format("; ".join(f"{k}: {d}" for k, d in method_names().items()))


def device_labels(tr: Callable[[str], str]) -> list[str]:
    return [tr("Automatic (GPU if present)") + " [auto]", tr("NVIDIA GPU (CUDA)") + " [cuda]", tr("CPU") + " [cpu]"]


def precision_labels(tr: Callable[[str], str]) -> list[str]:
    return [tr("float32 throughout") + " [fp32]", tr("int8 on CPU") + " [int8]"]


def compression_labels(tr: Callable[[str], str]) -> list[str]:
    return ["{} [{}]".format(tr(desc.split(" (")[0]), key) for key, desc in outputs.COMPRESSIONS.items()]


def compression_help(tr: Callable[[str], str]) -> str:
    return "; ".join(f"{k}: {tr(d)}" for k, d in outputs.COMPRESSIONS.items()) + "."


# what separates the items of a list typed as text (MS_BANDS, MTF_GAINS), as the batch's list columns
LIST_SEPARATORS = r"[,;\s]+"
BAND_FORMS = "4,3,2,1 or 4 3 2 1 or 4;3;2;1 (qgis_process: MS_BANDS=4,3,2,1, or MS_BANDS repeated)"


def parse_bands(value) -> list[int] | None:
    """MS_BANDS as given: band numbers (1-based) in a list, or text separated by commas, spaces or ';' (as MTF_GAINS
    is), or a mix; None when empty. ValueError naming the accepted forms for
    anything else (QGIS's own reading turned '4,3,2,1' into band 0)."""
    items = value if isinstance(value, (list, tuple)) else [value]
    bands = []
    for item in items:
        if item is None:
            continue
        if isinstance(item, int) and not isinstance(item, bool):
            bands.append(item)
            continue
        if isinstance(item, float) and item.is_integer():
            bands.append(int(item))
            continue
        for token in re.split(LIST_SEPARATORS, str(item).strip()):
            if not token:
                continue
            if not re.fullmatch(r"\d+", token):
                raise ValueError(f"MS_BANDS: {str(value if not isinstance(value, (list, tuple)) else item)!r} is not "
                                 f"a list of band numbers (1 for the first band): give them as {BAND_FORMS}")
            bands.append(int(token))
    return bands or None


def parse_gains(text: str) -> list[float] | None:
    """'0.3, 0.28', '0.3 0.28' or '0.3; 0.28' -> [0.3, 0.28] (separated as MS_BANDS and the batch's mtf_gains
    column are: ``LIST_SEPARATORS``); empty -> None. ValueError with a readable message otherwise; a decimal
    comma ('0,35 0,32') is refused with the value meant."""
    if not text or not text.strip():
        return None
    try:
        gains = [float(t) for t in re.split(LIST_SEPARATORS, text.strip()) if t]
    except ValueError:
        meant = decimal_comma_gains(text)
        hint = f"; with a decimal point: {meant}" if meant else ""
        raise ValueError(f"MTF_GAINS: {text!r} is not a list of numbers separated by commas or spaces (e.g. 0.34, "
                         f"0.32 or 0.34 0.32){hint}") from None
    if not gains or any(not 0.0 < g < 1.0 for g in gains):
        meant = decimal_comma_gains(text)
        if meant:
            read = ", ".join(f"{g:g}" for g in gains)
            raise ValueError(f"MTF_GAINS: {text!r} reads as the gains {read}, which must lie between 0 and 1: use a "
                             f"decimal point ({meant}); commas or spaces separate one gain per band")
        raise ValueError(f"MTF_GAINS: every gain must lie between 0 and 1 (exclusive), got {text!r}")
    return gains

