"""Per-tile radiometric normalisation inside the network, so a model meets every product's radiometry.

Real products differ in bit depth (8 to 16 bits, reflectance floats), in the gain and offset between the
PAN and the MS bands (another spectral response) and in contrast. A network fed raw values learns the
radiometry of its training scenes and over- or under-injects elsewhere (measured: ERGAS 6.4 against
2.1 for MTF-GLP-HPM on an 8-bit scene). Classical methods estimate this per scene; here every tile does:

* the PAN is matched to the MS intensity (mean of the LMS bands) at the MS scale: mean and standard
  deviation of both, block-averaged by the ratio, are equalised (the classical histogram matching on the
  low-pass PAN, so the PAN keeps its own detail-to-structure ratio);
* all inputs are divided by the mean intensity ``s`` and the output is multiplied by it, so the network
  is invariant to a global gain of the data.

The statistics are means over the tile, computed in the graph (exported to ONNX with the model).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

EPS = 1e-3


def _mean_std(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mean = x.mean(dim=(2, 3), keepdim=True)
    std = ((x - mean) ** 2).mean(dim=(2, 3), keepdim=True).sqrt()
    return mean, std


def _match(pan: torch.Tensor, lms: torch.Tensor, ratio: int) -> tuple[torch.Tensor, ...]:
    """(PAN mean, intensity mean, PAN gain, scale s) of a tile, each (N, 1, 1, 1)."""
    inten = lms.mean(dim=1, keepdim=True)
    mp, sp = _mean_std(F.avg_pool2d(pan, ratio))
    mi, si = _mean_std(F.avg_pool2d(inten, ratio))
    s = mi.abs().clamp_min(EPS)
    # a flat tile (water, nodata fill) has no contrast to match: the floor keeps the gain finite
    gain = (si + EPS * s) / (sp + EPS * s)
    return mp, mi, gain, s


def tile_normalise(pan: torch.Tensor, lms: torch.Tensor, ratio: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(PAN matched to the LMS intensity, LMS, both divided by the scale s; s of shape (N, 1, 1, 1))."""
    mp, mi, gain, s = _match(pan, lms, ratio)
    pan_m = (pan - mp) * gain + mi
    return pan_m / s, lms / s, s


def tile_norm_affine(pan: torch.Tensor, lms: torch.Tensor, ratio: int) -> tuple[torch.Tensor, ...]:
    """(a, b, s) with ``tile_normalise``'s outputs = (pan * a + b, lms / s), each (N, 1, 1, 1)."""
    mp, mi, gain, s = _match(pan, lms, ratio)
    return gain / s, (mi - mp * gain) / s, s


class TileNormalised(torch.nn.Module):
    """A bare backbone behind the same per-tile normalisation as KSDiff (for like-for-like comparisons)."""

    def __init__(self, net: torch.nn.Module, ratio: int) -> None:
        super().__init__()
        self.net, self.ratio = net, ratio

    @property
    def margin(self) -> int:
        return self.net.margin

    def forward(self, pan: torch.Tensor, lms: torch.Tensor) -> torch.Tensor:
        p, m, s = tile_normalise(pan, lms, self.ratio)
        return self.net(p, m) * s
