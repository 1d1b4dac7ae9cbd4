"""When a geotransform's rotation/shear terms count: the one definition of "north-up" (no osgeo, no numpy, so that
``model_core`` uses it too)."""
from __future__ import annotations

from collections.abc import Sequence

# pixels: rotation/shear terms that move a raster's far corner by less than this, across the whole raster, are float
# noise some tools write (1e-12 beside a 0.5 m pixel), not a rotation: the raster is read as north-up, as it is
NORTH_UP_TOLERANCE = 1e-3


def is_rotated(gt: Sequence[float], width: int, height: int) -> bool:
    """Whether the geotransform ``gt`` of a ``width`` x ``height`` raster is rotated or sheared: its row term
    (``gt[2]``) moves x by more than ``NORTH_UP_TOLERANCE`` of a pixel width down all its rows, or its column term
    (``gt[4]``) moves y by more than that of a pixel height along all its columns. Smaller terms are noise: the
    raster is north-up (a zero pixel size leaves no room for any)."""
    return (abs(gt[2]) * max(height, 1) > NORTH_UP_TOLERANCE * abs(gt[1])
            or abs(gt[4]) * max(width, 1) > NORTH_UP_TOLERANCE * abs(gt[5]))
