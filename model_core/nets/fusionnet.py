"""FusionNet-style backbone (Deng et al., TGRS 2021): residual CNN on (PAN replicated - LMS), predicts HRMS - LMS."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .modconv import ModConv2d, Modulation, ResBlock, scale_bands


class FusionNet(nn.Module):
    """head conv -> ``blocks`` residual blocks -> tail conv; output = LMS + residual.

    The residual-block convolutions are the modulatable layers (``mod_layers`` of them, width x width).
    """

    def __init__(self, bands: int, width: int = 32, blocks: int = 4, modulate: str = "none",
                 ranks: tuple[int, int, int] = (4, 4, 3)) -> None:
        super().__init__()
        self.bands, self.width = bands, width
        # which residual-block convs KSDiff modulates: none (bare backbone), the first of each block, or both
        self.per_block = {"none": 0, "first": 1, "all": 2}[modulate]
        r = tuple(ranks)
        r1, r2 = (r if self.per_block >= 1 else None), (r if self.per_block == 2 else None)
        self.head = nn.Conv2d(bands, width, 3, padding=1)
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
        """Receptive-field radius in PAN pixels: one pixel per 3x3 conv."""
        return 2 + 2 * len(self.blocks)

    def modconvs(self) -> list[ModConv2d]:
        return [c for b in self.blocks for c in (b.conv1, b.conv2)[: self.per_block]]

    def forward(self, pan: torch.Tensor, lms: torch.Tensor, mods: list[Modulation] | None = None,
                tail_gain: torch.Tensor | None = None) -> torch.Tensor:
        x = F.relu(self.head(pan - lms))  # pan broadcasts over bands: FusionNet's "PAN replicated minus LMS"
        k = self.per_block
        for i, blk in enumerate(self.blocks):
            x = blk(x, *(mods[k * i : k * i + k] if mods is not None and k else ()))
        x = F.relu(x)
        return lms + scale_bands(self.tail(x), tail_gain)
