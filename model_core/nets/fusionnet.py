"""FusionNet-style backbone (Deng et al., TGRS 2021): residual CNN on (PAN replicated - LMS), predicts HRMS - LMS."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .modconv import ModConv2d, Modulation, ResBlock, scale_bands
from .prefuse import FSPrefuse, GSAPrefuse, HPMPrefuse, MixPrefuse


class FusionNet(nn.Module):
    """head conv -> ``blocks`` residual blocks -> tail conv; output = LMS + residual.

    The residual-block convolutions are the modulatable layers (``mod_layers`` of them, width x width).
    ``prefuse`` = the PAN/MS ratio: the residual goes on top of an in-graph HPM fusion instead of LMS
    (``nets/prefuse.py``; ``prefuse_kind`` "gsa" / "fs" / "mix": a per-tile GSA / MTF-GLP-FS / learned mix of HPM
    and FS instead); 0 = off (the original FusionNet).
    """

    def __init__(self, bands: int, width: int = 32, blocks: int = 4, modulate: str = "none",
                 ranks: tuple[int, int, int] = (4, 4, 3), modulate_ends: bool = False, prefuse: int = 0,
                 prefuse_kind: str = "hpm") -> None:
        super().__init__()
        self.bands, self.width = bands, width
        kinds = {"hpm": HPMPrefuse, "gsa": GSAPrefuse, "fs": FSPrefuse}
        if not prefuse:
            self.prefuse = None
        elif prefuse_kind == "mix":
            self.prefuse = MixPrefuse(prefuse, bands)
        else:
            self.prefuse = kinds[prefuse_kind](prefuse)
        # which residual-block convs KSDiff modulates: none (bare backbone), the first of each block, or both
        self.per_block = {"none": 0, "first": 1, "all": 2}[modulate]
        # also the head (what detail is extracted from PAN - LMS) and the tail (how much goes into each band)
        self.ends = bool(modulate_ends) and self.per_block > 0
        r = tuple(ranks)
        r1, r2 = (r if self.per_block >= 1 else None), (r if self.per_block == 2 else None)
        re_ = r if self.ends else None
        self.head = ModConv2d(bands, width, re_)
        self.blocks = nn.ModuleList(ResBlock(width, r1, r2) for _ in range(blocks))
        self.tail = ModConv2d(width, bands, re_)
        with torch.no_grad():  # start close to LMS: a random residual would swamp dark scenes
            self.tail.weight.mul_(0.1)
            self.tail.bias.zero_()

    @property
    def mod_layers(self) -> int:
        return self.per_block * len(self.blocks) + (2 if self.ends else 0)

    @property
    def margin(self) -> int:
        """Receptive-field radius in PAN pixels: one pixel per 3x3 conv."""
        conv = 2 + 2 * len(self.blocks)
        return max(conv, self.prefuse.margin) if self.prefuse is not None else conv

    def modconvs(self) -> list[ModConv2d]:
        inner = [c for b in self.blocks for c in (b.conv1, b.conv2)[: self.per_block]]
        return [self.head, *inner, self.tail] if self.ends else inner

    def forward(self, pan: torch.Tensor, lms: torch.Tensor, mods: list[Modulation] | None = None,
                tail_gain: torch.Tensor | None = None) -> torch.Tensor:
        m_head = m_tail = None
        if mods is not None and self.ends:
            m_head, mods, m_tail = mods[0], mods[1:-1], mods[-1]
        x = F.relu(self.head(pan - lms, m_head))  # pan broadcasts over bands: FusionNet's "PAN replicated minus LMS"
        k = self.per_block
        for i, blk in enumerate(self.blocks):
            x = blk(x, *(mods[k * i : k * i + k] if mods is not None and k else ()))
        x = F.relu(x)
        base = lms if self.prefuse is None else self.prefuse(pan, lms)
        return base + scale_bands(self.tail(x, m_tail), tail_gain)
