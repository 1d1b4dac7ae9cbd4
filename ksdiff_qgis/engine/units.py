"""Whether a PAN and an MS hold their values in the same units, judged by their scene means."""
from __future__ import annotations

import math

UNITS_TOLERANCE = 4.0   # PAN and MS scene means further apart than this are in different units


def same_units(ms_mean: float, pan_mean: float) -> bool:
    """Scene means (measured from where the data end) no further apart than ``UNITS_TOLERANCE``."""
    return (math.isfinite(ms_mean) and math.isfinite(pan_mean) and ms_mean > 0 and pan_mean > 0
            and 1 / UNITS_TOLERANCE <= ms_mean / pan_mean <= UNITS_TOLERANCE)
