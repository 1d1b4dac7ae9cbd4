"""scripts/crops.py on a scene smaller than its usual context: less context, not a crash; smaller than the crop: a
clear message."""
from __future__ import annotations

import numpy as np
import pytest


def test_context_shrinks_on_a_small_scene(load_script):
    crops = load_script("crops")
    assert crops.context_for((600, 600), 128, 4) == crops.CONTEXT
    # a 148 x 88 PAN (WorldView-2 pair 3's valid rows as a Wald case): 12 px of context around a 64 px crop
    assert crops.context_for((88, 148), 64, 4) == 12
    with pytest.raises(SystemExit, match="smaller than the 100-pixel crop"):
        crops.context_for((88, 148), 100, 4)


def test_busiest_window_stays_inside_with_the_context(load_script):
    crops = load_script("crops")
    pan = np.zeros((88, 148), np.float32)
    pan[40:60, 100:120] = np.indices((20, 20)).sum(0) % 2 * 100   # the only texture
    r, c = crops.busiest_window(pan, 32, 4, 12)
    assert r % 4 == 0 and c % 4 == 0
    assert 12 <= r <= 88 - 32 - 12 and 12 <= c <= 148 - 32 - 12
    assert r <= 40 < r + 32 and c <= 100 < c + 32
