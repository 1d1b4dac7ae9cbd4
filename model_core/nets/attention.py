"""Small attention pieces: multi-head attention (hand-written so ONNX export stays plain MatMul/Softmax),
attention pooling of a feature map into a fixed number of tokens, and a pre-norm transformer block."""
from __future__ import annotations

import torch
from torch import nn


class MultiHeadAttention(nn.Module):
    """Multi-head attention of queries (N, Q, d) over keys/values (N, K, d)."""

    def __init__(self, dim: int, heads: int = 4) -> None:
        super().__init__()
        assert dim % heads == 0
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        n, nq, d = q.shape
        h = self.heads
        qh = self.q(q).reshape(n, nq, h, d // h).transpose(1, 2)
        k, v = self.kv(kv).reshape(n, -1, 2, h, d // h).permute(2, 0, 3, 1, 4)
        att = torch.softmax(qh @ k.transpose(-1, -2) * (d // h) ** -0.5, dim=-1)
        return self.out((att @ v).transpose(1, 2).reshape(n, nq, d))


class AttnPool(nn.Module):
    """Learned queries attend over all pixels of a feature map: (N, C, H, W) -> (N, tokens, dim).

    Unlike adaptive pooling to a fixed grid this works (and exports) for any H, W.
    """

    def __init__(self, cin: int, dim: int, tokens: int, heads: int = 4) -> None:
        super().__init__()
        self.heads, self.dim = heads, dim
        self.queries = nn.Parameter(torch.randn(tokens, dim) * 0.02)
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Conv2d(cin, 2 * dim, 1)  # keys/values stay channel-first: no big transposes
        self.out = nn.Linear(dim, dim)

    def forward(self, fmap: torch.Tensor) -> torch.Tensor:
        n, h, d = fmap.shape[0], self.heads, self.dim
        k, v = self.kv(fmap).reshape(n, 2, h, d // h, -1).unbind(1)        # (N, h, dh, HW)
        q = self.q(self.queries).reshape(-1, h, d // h).transpose(0, 1)     # (h, Q, dh)
        att = torch.softmax(torch.matmul(q, k) * (d // h) ** -0.5, dim=-1)  # (N, h, Q, HW)
        o = torch.matmul(v, att.transpose(-1, -2))                          # (N, h, dh, Q)
        return self.out(o.permute(0, 3, 1, 2).reshape(n, -1, d))


class Block(nn.Module):
    """Pre-norm block: self-attention, optional cross-attention to a context, MLP."""

    def __init__(self, dim: int, heads: int = 4, cross: bool = False) -> None:
        super().__init__()
        self.n1 = nn.LayerNorm(dim)
        self.sa = MultiHeadAttention(dim, heads)
        self.cross = cross
        if cross:
            self.n2 = nn.LayerNorm(dim)
            self.ca = MultiHeadAttention(dim, heads)
        self.n3 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, x: torch.Tensor, ctx: torch.Tensor | None = None) -> torch.Tensor:
        y = self.n1(x)
        x = x + self.sa(y, y)
        if self.cross:
            x = x + self.ca(self.n2(x), ctx)
        return x + self.mlp(self.n3(x))


def conv_pyramid(cin: int, widths: tuple[int, ...]) -> nn.ModuleList:
    """Stride-2 3x3 conv + GELU per level: the cheap feature pyramid used by the encoders."""
    layers, c = [], cin
    for w in widths:
        layers.append(nn.Sequential(nn.Conv2d(c, w, 3, stride=2, padding=1), nn.GELU()))
        c = w
    return nn.ModuleList(layers)


def pyramid_tokens(x: torch.Tensor, levels: nn.ModuleList, pools: nn.ModuleList) -> list[torch.Tensor]:
    """Run the pyramid and attention-pool every level into tokens."""
    out = []
    for lev, pool in zip(levels, pools):
        x = lev(x)
        out.append(pool(x))
    return out
