"""KSDiff kernel generator: prior tokens z + PAN structure tokens -> per-sample Tucker kernel updates.

Structure-aware multi-head attention: learned kernel-slot queries (one core slot and one factor slot
per modulated layer, plus one shared spatial slot) attend to the prior tokens and to structure tokens
(each key set tagged with a type embedding), in two attention+MLP rounds.
Low-rank core generator: one shared MLP maps each core slot to that layer's core G (r_out x r_in x r_s).
Unified factor generator: one shared MLP maps each factor slot to that layer's factor matrices
U_out = B_out R_out and U_in = B_in R_in, and the spatial slot to U_sp = B_sp R_sp (R_sp shared by all
layers); it emits the small R, B is each layer's learned factor basis (see ``modconv``).
dW_l = G_l x1 U_out_l x2 U_in_l x3 U_sp.
Tail gain (optional): one more slot emits a per-band gain g, the tail kernel becomes diag(1 + g) W_tail,
so the prior sets how much detail each band receives in this tile (what classical methods estimate per
scene as injection gains); zero at start like the core.
Runs once per tile on a few dozen tokens, so its cost is independent of the tile size.
"""
from __future__ import annotations

import torch
from torch import nn

from .attention import MultiHeadAttention
from .modconv import Modulation


class StructureAwareAttention(nn.Module):
    """Slots attend to [prior tokens + type_p ; structure tokens + type_s], then an MLP; pre-norm residual."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.type_emb = nn.Parameter(torch.randn(2, dim) * 0.02)
        self.nq, self.nkv, self.nm = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = MultiHeadAttention(dim, heads)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, slots: torch.Tensor, z: torch.Tensor, struct: torch.Tensor) -> torch.Tensor:
        kv = self.nkv(torch.cat([z + self.type_emb[0], struct + self.type_emb[1]], dim=1))
        slots = slots + self.attn(self.nq(slots), kv)
        return slots + self.mlp(self.nm(slots))


class KernelGenerator(nn.Module):
    """Produces one ``Modulation`` per modulated layer (all layers width x width, 3x3)."""

    def __init__(self, layers: int, width: int, dim: int = 64, ranks=(4, 4, 3), heads: int = 4, rounds: int = 2,
                 tail_bands: int = 0, live: bool = False) -> None:
        super().__init__()
        self.layers, self.width, self.tail_bands, self.live = layers, width, tail_bands, live
        self.ro, self.ri, self.rs = ranks
        self.slots = nn.Parameter(torch.randn(2 * layers + 1 + (1 if tail_bands else 0), dim) * 0.02)
        self.rounds = nn.ModuleList(StructureAwareAttention(dim, heads) for _ in range(rounds))
        self.norm = nn.LayerNorm(dim)
        self.core_gen = nn.Sequential(nn.Linear(dim, dim), nn.GELU(),
                                      nn.Linear(dim, self.ro * self.ri * self.rs, bias=not live))
        self.factor_gen = nn.Sequential(nn.Linear(dim, dim), nn.GELU(),
                                        nn.Linear(dim, self.ro * self.ro + self.ri * self.ri))
        self.spatial_gen = nn.Linear(dim, self.rs * self.rs)
        if live:
            # LoRA-like start: a tiny random core (not zero), so every upstream module gets a gradient
            # from step 0, no bias (a constant update belongs in W), and the core is centred over the
            # batch (running mean at inference): the kernel path can only carry what differs between tiles
            nn.init.normal_(self.core_gen[-1].weight, std=1e-3)
            self.register_buffer("core_mean", torch.zeros(layers, self.ro, self.ri, self.rs))
        else:  # the first design: zero core at start (with a bias: it collapsed to a constant update)
            nn.init.zeros_(self.core_gen[-1].weight)
            nn.init.zeros_(self.core_gen[-1].bias)
        if tail_bands:
            self.gain_gen = nn.Linear(dim, tail_bands, bias=not live)
            if live:
                nn.init.normal_(self.gain_gen.weight, std=1e-3)
                self.register_buffer("gain_mean", torch.zeros(tail_bands))
            else:
                nn.init.zeros_(self.gain_gen.weight)
                nn.init.zeros_(self.gain_gen.bias)

    def _centre(self, x: torch.Tensor, name: str) -> torch.Tensor:
        """Subtract the batch mean (training; updates the running mean) or the running mean (inference)."""
        running = getattr(self, name)
        if self.training and x.shape[0] > 1:
            mean = x.mean(dim=0)
            with torch.no_grad():
                running.mul_(0.99).add_(mean.detach(), alpha=0.01)
            return x - mean
        return x - running

    def forward(self, z: torch.Tensor, struct: torch.Tensor) -> tuple[list[Modulation], torch.Tensor | None]:
        """(one Modulation per modulated layer, per-band tail gain (N, bands) or None)."""
        n, L = z.shape[0], self.layers
        s = self.slots.expand(n, -1, -1)
        for r in self.rounds:
            s = r(s, z, struct)
        s = self.norm(s)
        core = self.core_gen(s[:, :L]).reshape(n, L, self.ro, self.ri, self.rs)
        core = self._centre(core, "core_mean") if self.live else core * 0.1
        fac = self.factor_gen(s[:, L : 2 * L]) * 0.5
        # R = I + generated: factors start at the layer's basis and rotate/scale within it per sample
        r_out = fac[..., : self.ro * self.ro].reshape(n, L, self.ro, self.ro) + torch.eye(self.ro, device=z.device)
        r_in = fac[..., self.ro * self.ro :].reshape(n, L, self.ri, self.ri) + torch.eye(self.ri, device=z.device)
        r_sp = self.spatial_gen(s[:, 2 * L]).reshape(n, self.rs, self.rs) * 0.5 + torch.eye(self.rs, device=z.device)
        gain = self.gain_gen(s[:, 2 * L + 1]) if self.tail_bands else None
        if gain is not None and self.live:
            gain = self._centre(gain, "gain_mean")
        return [Modulation(core[:, l], r_out[:, l], r_in[:, l], r_sp) for l in range(L)], gain
