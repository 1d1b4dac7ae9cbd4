"""PanNet-style backbone (Yang et al., ICCV 2017): high-pass PAN and LMS in, residual CNN, predicts HRMS - LMS."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .modconv import ModConv2d, Modulation, ResBlock, scale_bands

BOX = 5  # PanNet's high-pass: image minus its 5x5 box mean


def highpass(x: torch.Tensor) -> torch.Tensor:
    """x minus its 5x5 box average (reflect padding, as in PanNet's pre-processing)."""
    r = BOX // 2
    return x - F.avg_pool2d(F.pad(x, (r, r, r, r), mode="reflect"), BOX, stride=1)


class PanNet(nn.Module):
    """concat(hp(PAN), hp(LMS)) -> head conv -> residual blocks -> tail conv; output = LMS + residual.

    PanNet feeds the high-pass of the *upsampled* MS; here that is hp(LMS), which is what the shared
    two-input contract provides.
    """

    def __init__(self, bands: int, width: int = 32, blocks: int = 4, modulate: str = "none",
                 ranks: tuple[int, int, int] = (4, 4, 3)) -> None:
        super().__init__()
        self.bands, self.width = bands, width
        # which residual-block convs KSDiff modulates: none (bare backbone), the first of each block, or both
        self.per_block = {"none": 0, "first": 1, "all": 2}[modulate]
        r = tuple(ranks)
        r1, r2 = (r if self.per_block >= 1 else None), (r if self.per_block == 2 else None)
        self.head = nn.Conv2d(bands + 1, width, 3, padding=1)
        self.blocks = nn.ModuleList(ResBlock(width, r1, r2) for _ in range(blocks))
        self.tail = nn.Conv2d(width, bands, 3, padding=1)
        with torch.no_grad():  # start close to LMS: a random residual would swamp dark scenes
            self.tail.weight.mul_(0.1)
            self.tail.bias.zero_()

    @property
    def mod_layers(self) -> int:
        return self.per_block * len(self.blocks)

    @property
    def margin(self) -> int:
        """Receptive-field radius: the 5x5 high-pass plus one pixel per 3x3 conv."""
        return BOX // 2 + 2 + 2 * len(self.blocks)

    def modconvs(self) -> list[ModConv2d]:
        return [c for b in self.blocks for c in (b.conv1, b.conv2)[: self.per_block]]

    def forward(self, pan: torch.Tensor, lms: torch.Tensor, mods: list[Modulation] | None = None,
                tail_gain: torch.Tensor | None = None) -> torch.Tensor:
        x = F.relu(self.head(torch.cat([highpass(pan), highpass(lms)], dim=1)))
        k = self.per_block
        for i, blk in enumerate(self.blocks):
            x = blk(x, *(mods[k * i : k * i + k] if mods is not None and k else ()))
        x = F.relu(x)
        return lms + scale_bands(self.tail(x), tail_gain)
