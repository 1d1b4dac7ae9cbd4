"""Human labels for the enum options (key in brackets, so help and dialog show what scripts type)."""
from __future__ import annotations

from typing import Callable

from ..engine.numbers import decimal_comma_gains
from ..engine.pipeline import method_names
from ..engine.sensors import SENSORS


def sensor_labels(tr: Callable[[str], str]) -> list[str]:
    out = [tr("Auto-detect from the data and its metadata") + " [auto]"]
    for key, spec in SENSORS.items():
        ratio = tr("any ratio") if not spec.ratio else tr("ratio {}").format(spec.ratio)
        out.append("{}, {} [{}]".format(spec.name, ratio, key))
    return out


def method_labels(tr: Callable[[str], str]) -> list[str]:
    return ["{} [{}]".format(desc, key) for key, desc in method_names().items()]


def device_labels(tr: Callable[[str], str]) -> list[str]:
    return [tr("Automatic (NVIDIA GPU when present, else CPU)") + " [auto]", tr("NVIDIA GPU (CUDA)") + " [cuda]",
            tr("CPU") + " [cpu]"]


def precision_labels(tr: Callable[[str], str]) -> list[str]:
    return [tr("float32 throughout") + " [fp32]",
            tr("int8 on CPU, default (float32 if the model has none)") + " [int8]"]


def parse_gains(text: str) -> list[float] | None:
    """'0.3, 0.28' -> [0.3, 0.28]; empty -> None. ValueError with a readable message otherwise."""
    if not text or not text.strip():
        return None
    try:
        gains = [float(t) for t in text.replace(";", ",").split(",") if t.strip()]
    except ValueError:
        raise ValueError(f"MTF_GAINS: {text!r} is not a comma-separated list of numbers") from None
    if not gains or any(not 0.0 < g < 1.0 for g in gains):
        meant = decimal_comma_gains(text)
        if meant:
            read = ", ".join(f"{g:g}" for g in gains)
            raise ValueError(f"MTF_GAINS: {text!r} reads as the gains {read}, which must lie between 0 and 1: use a "
                             f"decimal point ({meant}); commas separate one gain per band")
        raise ValueError(f"MTF_GAINS: every gain must lie between 0 and 1 (exclusive), got {text!r}")
    return gains

