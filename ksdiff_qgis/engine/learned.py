"""A learned network (ONNX) as a tile fuser, with the same interface as the classical methods."""
from __future__ import annotations

import numpy as np

from .classical import TileContext
from .grid import RasterInfo
from .model_card import ModelCard
from .runtime import Session


def value_scale(card: ModelCard, ms: RasterInfo) -> float:
    """The raw value that maps to 1.0 for the network: the raster's NBITS (or 8-bit range), else the card's scale.

    A 12-bit product fed to an 11-bit model is normalised by its own range, so the network sees the
    value distribution it was trained on.
    """
    if ms.nbits and ms.dtype.kind in "iu":
        return float(2 ** ms.nbits - 1)
    if ms.dtype == np.uint8:
        return 255.0
    return card.scale


class OnnxFuser:
    """Runs the model on one tile: normalise, pad to the model's size multiple, infer, crop, de-normalise."""

    def __init__(self, card: ModelCard, session: Session, scale: float):
        self.card, self.session, self.scale = card, session, np.float32(scale)
        self.pan_name, self.lms_name = card.input_names

    def __call__(self, pan: np.ndarray, lms: np.ndarray, ctx: TileContext) -> np.ndarray:
        h, w = pan.shape
        m = self.card.size_multiple
        ph, pw = (-h) % m, (-w) % m
        p = pan[None, None] / self.scale
        x = lms[None] / self.scale
        if ph or pw:
            p = np.pad(p, ((0, 0), (0, 0), (0, ph), (0, pw)), mode="symmetric")
            x = np.pad(x, ((0, 0), (0, 0), (0, ph), (0, pw)), mode="symmetric")
        out = self.session.session.run(
            [self.card.output_name],
            {self.pan_name: np.ascontiguousarray(p, dtype=np.float32), self.lms_name: np.ascontiguousarray(x, dtype=np.float32)},
        )[0]
        return out[0, :, :h, :w] * self.scale
