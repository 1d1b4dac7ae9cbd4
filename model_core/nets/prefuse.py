"""A classical fusion inside the graph for the network to correct: HPM with a fixed Gaussian low-pass.

The bundled networks add their detail to the upsampled MS. On scenes unlike their training data (another
PAN response, sharper or blurrier PAN, other radiometry) that detail can be worse than none, while
MTF-GLP-HPM stays reasonable everywhere. With ``prefuse`` the backbone adds its residual to

    HPM(P, LMS) = LMS * P / G(P)

instead (P: the PAN already matched to the MS intensity by the tile normalisation; G: a Gaussian whose
response at the MS Nyquist frequency is :data:`GAIN`, shift-invariant so tiles need no phase alignment),
and starts training as that classical method (the tail starts near zero). Its worst case is then a
perturbed MTF-GLP-HPM rather than arbitrary detail, and it keeps HPM's positivity where the residual is
small. Computed in the graph (exported to ONNX with the model): no change in the plugin.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

GAIN = 0.3          # a generic MTF gain at Nyquist (METHOD.md's table spans 0.23-0.36 for the MS sensors)
FLOOR = 0.05        # G(P) floor in tile-mean units: no blow-up in black tiles or nodata fill


def gaussian_taps(ratio: int, gain: float = GAIN) -> torch.Tensor:
    """1-D normalised Gaussian with response ``gain`` at the coarse Nyquist frequency, +-3 sigma."""
    sigma = ratio * math.sqrt(-2.0 * math.log(gain)) / math.pi
    half = max(1, math.ceil(3 * sigma))
    x = torch.arange(-half, half + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


class HPMPrefuse(nn.Module):
    """``forward(pan, lms)`` -> LMS * P / G(P) with reflect padding (same size)."""

    def __init__(self, ratio: int) -> None:
        super().__init__()
        k = gaussian_taps(ratio)
        self.half = len(k) // 2
        self.register_buffer("kx", k.view(1, 1, 1, -1), persistent=False)
        self.register_buffer("ky", k.view(1, 1, -1, 1), persistent=False)

    @property
    def margin(self) -> int:
        return self.half

    def lowpass(self, pan: torch.Tensor) -> torch.Tensor:
        h = self.half
        x = F.conv2d(F.pad(pan, (h, h, 0, 0), mode="reflect"), self.kx)
        return F.conv2d(F.pad(x, (0, 0, h, h), mode="reflect"), self.ky)

    def forward(self, pan: torch.Tensor, lms: torch.Tensor) -> torch.Tensor:
        return lms * pan / self.lowpass(pan).clamp_min(FLOOR)
