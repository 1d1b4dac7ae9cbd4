"""Kernel-modulated 3x3 convolution: W' = W + dW(z) per sample, with dW a Tucker product.

dW[n] = G[n] x1 U_out[n] x2 U_in[n] x3 U_sp[n]   (core G: r_out x r_in x r_s; U_sp: 9 x r_s)

The generated factor matrices live in a learned subspace of each layer: U_out[n] = B_out R_out[n],
U_in[n] = B_in R_in[n], U_sp[n] = B_sp R_sp[n], where B_out (cout x r_out), B_in (cin x r_in) and
B_sp (9 x r_s, spatial basis kernels) are weights of the layer and the small square R[n] are emitted
per sample by the unified factor generator. (Equivalent to a factor generator whose last linear
layer is factorised; it lets every wide or spatial operation run as an ordinary convolution.)

Materialising dW per sample would need a grouped convolution with one group per sample, which ONNX
cannot express with a dynamic batch. The Tucker structure gives the identical result cheaply:

    conv(x, dW[n]) = B_out * ( K[n] . (B_sp (*) (B_in^T * x)) )
    K[n][a, b, c]  = sum R_out[n][a, a'] G[n][a', b', c'] R_in[n][b, b'] R_sp[n][c, c']

a static 1x1 projection to r_in channels, the r_s static spatial basis kernels on each (a grouped
3x3 convolution, zero padding as in the modulated convolution), one small per-sample
(r_out x r_in r_s) matrix product, and a static 1x1 lift back to cout channels: about
(cin + 9 r_s + r_out r_s + cout) r_in MACs per pixel, ~5% of the 3x3 convolution it modulates,
with only narrow tensors outside the runtime's blocked convolution layout.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

# the low-rank factors a ModConv2d adds to a plain convolution (the kernel path's own weights)
MODULATION_FACTORS = ("b_in", "b_out", "b_sp")


def is_modulation_factor(name: str) -> bool:
    """True for a parameter name (``head.b_in.weight``, ``body.0.b_sp``) inside a ModConv2d's low-rank factors."""
    return any(part in MODULATION_FACTORS for part in name.split("."))


@dataclass
class Modulation:
    """Per-sample Tucker core and factor coefficients of one layer's kernel update (generator output)."""

    core: torch.Tensor   # (N, r_out, r_in, r_s)
    r_out: torch.Tensor  # (N, r_out, r_out): U_out = B_out @ r_out
    r_in: torch.Tensor   # (N, r_in, r_in):   U_in  = B_in  @ r_in
    r_sp: torch.Tensor   # (N, r_s, r_s):     U_sp  = B_sp  @ r_sp

    def small_matrix(self) -> torch.Tensor:
        """K (N, r_out, r_in * r_s), columns ordered (b, c): all per-sample work, on the factors only."""
        k = torch.einsum("nAa,nabc,nBb,nCc->nABC", self.r_out, self.core, self.r_in, self.r_sp)
        return k.reshape(k.shape[0], k.shape[1], -1)


class ModConv2d(nn.Conv2d):
    """3x3 convolution (zero padding 1) whose kernel can be modulated per sample by a Tucker update."""

    def __init__(self, cin: int, cout: int, ranks: tuple[int, int, int] | None = None, bias: bool = True) -> None:
        super().__init__(cin, cout, 3, padding=1, bias=bias)
        self.modulatable = ranks is not None
        if ranks is None:  # a plain convolution (bare backbone, or a layer KSDiff leaves alone)
            return
        r_out, r_in, r_s = ranks
        self.r_in, self.r_s = r_in, r_s
        self.b_in = nn.Conv2d(cin, r_in, 1, bias=False)     # B_in^T as a 1x1 convolution
        self.b_sp = nn.Parameter(torch.randn(9, r_s) / 3.0)  # B_sp: r_s basis 3x3 kernels
        self.b_out = nn.Conv2d(r_out, cout, 1, bias=False)   # B_out as a 1x1 convolution
        nn.init.normal_(self.b_in.weight, std=cin ** -0.5)
        nn.init.normal_(self.b_out.weight, std=r_out ** -0.5)

    def _sp_weight(self) -> torch.Tensor:
        # the same r_s basis kernels for every projected channel: (r_in * r_s, 1, 3, 3), ordered (b, c)
        return self.b_sp.t().reshape(self.r_s, 1, 3, 3).repeat(self.r_in, 1, 1, 1)

    def factors(self, mod: Modulation) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The per-sample factor matrices U_out (N, cout, r_out), U_in (N, cin, r_in), U_sp (N, 9, r_s)."""
        u_out = torch.einsum("oa,naA->noA", self.b_out.weight[:, :, 0, 0], mod.r_out)
        u_in = torch.einsum("bi,nbB->niB", self.b_in.weight[:, :, 0, 0], mod.r_in)
        u_sp = torch.einsum("sc,ncC->nsC", self.b_sp, mod.r_sp)
        return u_out, u_in, u_sp

    def dense_update(self, mod: Modulation) -> torch.Tensor:
        """dW as a dense (N, cout, cin, 3, 3) tensor (reference/testing; not used on the fast path)."""
        u_out, u_in, u_sp = self.factors(mod)
        w = torch.einsum("nabc,noa,nib,nsc->nois", mod.core, u_out, u_in, u_sp)
        return w.reshape(w.shape[0], w.shape[1], w.shape[2], 3, 3)

    def forward(self, x: torch.Tensor, mod: Modulation | None = None) -> torch.Tensor:  # type: ignore[override]
        y = super().forward(x)
        if mod is None:
            return y
        n, _, h, w = x.shape
        t = F.conv2d(self.b_in(x), self._sp_weight(), padding=1, groups=self.r_in)  # (N, r_in * r_s, H, W)
        v = torch.matmul(mod.small_matrix(), t.reshape(n, -1, h * w)).reshape(n, -1, h, w)  # (N, r_out, H, W)
        return y + self.b_out(v)


class ResBlock(nn.Module):
    """conv-ReLU-conv with identity skip (FusionNet/PanNet residual unit); ``ranks`` per conv, None = plain."""

    def __init__(self, width: int, ranks1: tuple[int, int, int] | None = None,
                 ranks2: tuple[int, int, int] | None = None) -> None:
        super().__init__()
        self.conv1 = ModConv2d(width, width, ranks1)
        self.conv2 = ModConv2d(width, width, ranks2)

    def forward(self, x: torch.Tensor, m1: Modulation | None = None, m2: Modulation | None = None) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x, m1)), m2)


def scale_bands(residual: torch.Tensor, gain: torch.Tensor | None) -> torch.Tensor:
    """The tail kernel's per-sample update diag(1 + gain) W_tail, applied to its output (N, bands, H, W)."""
    return residual if gain is None else residual * (1 + gain[:, :, None, None])
