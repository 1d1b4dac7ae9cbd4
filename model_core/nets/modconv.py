"""Kernel-modulated 3x3 convolution: W' = W + dW(z) per sample, with dW given as a Tucker product.

dW[n] = G[n] x1 U_out[n] x2 U_in[n] x3 U_sp[n]  (core G: r_out x r_in x r_s; U_sp: 9 x r_s).
Materialising dW per sample would need a grouped convolution whose group count is the batch size,
which ONNX cannot express with a dynamic batch. The Tucker structure gives the exact same result
cheaply instead: conv(x, dW) = K . shifts(U_in^T x) with K = G x1 U_out x3 U_sp (cout x 9 r_in, built
per sample from the factors alone) -- project the input onto r_in channels, take the 9 zero-padded
3x3 shifts, apply K. Cost (cin + 9 cout) r_in MACs per pixel, ~15% of the dense 3x3 convolution
it modulates (r_in = 4), with batched MatMuls that export with a dynamic batch.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class Modulation:
    """Per-sample Tucker factors of one layer's kernel update."""

    core: torch.Tensor   # (N, r_out, r_in, r_s)
    u_out: torch.Tensor  # (N, cout, r_out)
    u_in: torch.Tensor   # (N, cin, r_in)
    u_sp: torch.Tensor   # (N, 9, r_s)  -- 3x3 positions in row-major (ky, kx) order

    def dense(self) -> torch.Tensor:
        """dW as a dense (N, cout, cin, 3, 3) tensor (reference/testing; not used on the fast path)."""
        w = torch.einsum("nabc,noa,nib,nsc->nois", self.core, self.u_out, self.u_in, self.u_sp)
        return w.reshape(w.shape[0], w.shape[1], w.shape[2], 3, 3)


def shifts3x3(t: torch.Tensor) -> torch.Tensor:
    """The 9 zero-padded 3x3 neighbourhood shifts of t (N, C, H, W) -> (N, 9, C, H, W)."""
    h, w = t.shape[-2], t.shape[-1]
    p = F.pad(t, (1, 1, 1, 1))
    return torch.stack([p[:, :, dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3)], dim=1)


class ModConv2d(nn.Conv2d):
    """3x3 convolution (zero padding 1) whose kernel can be modulated per sample by a Tucker update."""

    def __init__(self, cin: int, cout: int, bias: bool = True) -> None:
        super().__init__(cin, cout, 3, padding=1, bias=bias)

    def forward(self, x: torch.Tensor, mod: Modulation | None = None) -> torch.Tensor:  # type: ignore[override]
        y = super().forward(x)
        if mod is None:
            return y
        n, _, h, w = x.shape
        # project to r_in channels: (N, r_in, cin) @ (N, cin, HW)
        t = torch.matmul(mod.u_in.transpose(1, 2), x.reshape(n, x.shape[1], h * w)).reshape(n, -1, h, w)
        s = shifts3x3(t).reshape(n, -1, h * w)  # (N, 9 * r_in, HW), position-major
        # G x1 U_out x3 U_sp folded into one small per-sample matrix (cout, 9 * r_in): computed on
        # factors only, so the per-pixel work is a single (cout x 9 r_in) product
        k = torch.einsum("nabc,noa,nsc->nosb", mod.core, mod.u_out, mod.u_sp).reshape(n, y.shape[1], -1)
        return y + torch.matmul(k, s).reshape(n, -1, h, w)


class ResBlock(nn.Module):
    """conv-ReLU-conv with identity skip; both convs modulatable (FusionNet/PanNet residual unit)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv1 = ModConv2d(width, width)
        self.conv2 = ModConv2d(width, width)

    def forward(self, x: torch.Tensor, m1: Modulation | None = None, m2: Modulation | None = None) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x, m1)), m2)
