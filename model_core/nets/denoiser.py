"""KSDiff latent denoiser: predicts the clean prior z0 from noisy prior tokens z_t, the timestep and the
condition tokens (self-attention over prior tokens, cross-attention to the condition)."""
from __future__ import annotations

import torch
from torch import nn

from ..diffusion import timestep_embedding
from .attention import Block


class LatentDenoiser(nn.Module):
    def __init__(self, dim: int = 64, tokens: int = 8, depth: int = 2, heads: int = 4) -> None:
        super().__init__()
        self.dim = dim
        self.pos = nn.Parameter(torch.randn(tokens, dim) * 0.02)
        self.t_mlp = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, dim))
        self.inp = nn.Linear(dim, dim)
        self.blocks = nn.ModuleList(Block(dim, heads, cross=True) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, z_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        temb = self.t_mlp(timestep_embedding(t, self.dim))[:, None]
        x = self.inp(z_t) + self.pos + temb
        for b in self.blocks:
            x = b(x, cond + temb)
        return self.out(self.norm(x))
