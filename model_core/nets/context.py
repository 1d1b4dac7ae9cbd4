"""Tile descriptors of PAN sharpness and PAN/MS relationship: what KSDiff's kernels should adapt to.

A network trained by Wald's protocol sees blurred PANs; a real full-resolution PAN is sharper, and a
static network then boosts its finest detail into a one-pixel checkerboard. These few numbers, computed
at full resolution on the (tile-normalised) inputs, let the kernel generator tell the two apart:

* fine-to-coarse detail ratios of the PAN: log(mean|P - box3(P)| / mean|P - box_r(P)|) and the same with
  box5 — large for a sharp PAN, small for a blurred one;
* the PAN's checkerboard response: mean|P * [[1,-1],[-1,1]]| / mean(|dx P| + |dy P|) (aliasing, noise);
* per band, the correlation of the MS band with the PAN at the MS scale and the band's contrast relative
  to the PAN's (how much detail the band should receive).

They become context tokens for the kernel generator's structure-aware attention.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

EPS = 1e-4


def _box(x: torch.Tensor, k: int) -> torch.Tensor:
    return F.avg_pool2d(F.pad(x, (k // 2,) * 4, mode="replicate"), k, stride=1)


def _mean_abs(x: torch.Tensor) -> torch.Tensor:
    return x.abs().mean(dim=(1, 2, 3))


def descriptors(pan: torch.Tensor, lms: torch.Tensor, ratio: int) -> torch.Tensor:
    """(N, 3 + 2C) tile descriptors (see the module docstring)."""
    coarse = _mean_abs(pan - _box(pan, 2 * ratio + 1)) + EPS
    d3 = torch.log((_mean_abs(pan - _box(pan, 3)) + EPS) / coarse)
    d5 = torch.log((_mean_abs(pan - _box(pan, 5)) + EPS) / coarse)
    checker = torch.tensor([[1.0, -1.0], [-1.0, 1.0]], device=pan.device).view(1, 1, 2, 2)
    cb = _mean_abs(F.conv2d(pan, checker))
    grad = _mean_abs(pan[..., :, 1:] - pan[..., :, :-1]) + _mean_abs(pan[..., 1:, :] - pan[..., :-1, :]) + EPS
    p = F.avg_pool2d(pan, ratio)
    m = F.avg_pool2d(lms, ratio)
    p = p - p.mean(dim=(2, 3), keepdim=True)
    m = m - m.mean(dim=(2, 3), keepdim=True)
    sp = p.pow(2).mean(dim=(2, 3)).sqrt() + EPS          # (N, 1)
    sm = m.pow(2).mean(dim=(2, 3)).sqrt() + EPS          # (N, C)
    corr = (p * m).mean(dim=(2, 3)) / (sp * sm)
    contrast = torch.log(sm / sp)
    return torch.cat([d3[:, None], d5[:, None], (cb / grad)[:, None], corr, contrast], dim=1)


class ContextTokens(nn.Module):
    """Descriptors -> ``tokens`` context tokens of width ``dim``."""

    def __init__(self, bands: int, ratio: int, dim: int = 64, tokens: int = 2) -> None:
        super().__init__()
        self.ratio, self.tokens, self.dim = ratio, tokens, dim
        self.mlp = nn.Sequential(nn.Linear(3 + 2 * bands, dim), nn.GELU(), nn.Linear(dim, tokens * dim))

    def forward(self, pan: torch.Tensor, lms: torch.Tensor) -> torch.Tensor:
        d = descriptors(pan, lms, self.ratio)
        return self.mlp(d).reshape(d.shape[0], self.tokens, self.dim)
