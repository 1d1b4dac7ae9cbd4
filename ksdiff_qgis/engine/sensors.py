"""Sensor table: band layout, PAN/MS ratio, MTF gains at Nyquist and value scale.

Gains come from ``shared/design/METHOD.md``; a 4-band B, G, R, NIR product of an 8-band sensor uses
those bands' gains.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sensor:
    key: str
    name: str
    band_names: tuple[str, ...]
    ratio: int
    mtf_ms: tuple[float, ...]   # MS gain at the low-resolution Nyquist frequency, per band
    mtf_pan: float              # PAN gain at its own Nyquist frequency
    scale: float                # maximum raw value (2**bits - 1) the sensor delivers

    @property
    def n_bands(self) -> int:
        return len(self.band_names)


BGRN = ("Blue", "Green", "Red", "NIR")

SENSORS: dict[str, Sensor] = {
    s.key: s
    for s in (
        Sensor("wv2", "WorldView-2 (4 bands: B, G, R, NIR)", BGRN, 4, (0.35, 0.35, 0.35, 0.35), 0.11, 2047.0),
        Sensor(
            "wv3",
            "WorldView-3 (8 bands)",
            ("Coastal", "Blue", "Green", "Yellow", "Red", "Red Edge", "NIR1", "NIR2"),
            4,
            (0.325, 0.355, 0.360, 0.350, 0.365, 0.360, 0.335, 0.315),
            0.14,
            2047.0,
        ),
        Sensor("qb", "QuickBird (4 bands: B, G, R, NIR)", BGRN, 4, (0.34, 0.32, 0.30, 0.22), 0.15, 2047.0),
        Sensor("gf2", "GaoFen-2 (4 bands: B, G, R, NIR)", BGRN, 4, (0.3, 0.3, 0.3, 0.3), 0.15, 1023.0),
        Sensor(
            "landsat8",
            "Landsat 8/9 OLI (B2, B3, B4, B5; PAN B8)",
            ("B2 Blue", "B3 Green", "B4 Red", "B5 NIR"),
            2,
            (0.3, 0.3, 0.3, 0.3),
            0.15,
            65535.0,
        ),
    )
}


def get_sensor(key: str) -> Sensor:
    """Return the sensor for ``key`` or raise KeyError listing the known keys."""
    try:
        return SENSORS[key]
    except KeyError:
        raise KeyError(f"unknown sensor {key!r}; known sensors: {', '.join(SENSORS)}") from None
