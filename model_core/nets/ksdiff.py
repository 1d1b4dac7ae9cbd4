"""KSDiff: kernel-space diffusion around a regressive pansharpening backbone.

Stage 1 (ground truth visible):  z = PyramidLatentFusionEncoder(PAN, LMS, GT)
Stage 2 / inference:             z = DDIM_{few steps, eta=0}(LatentDenoiser | ConditionEncoder(PAN, LMS)),
                                 starting from a fixed noise buffer (tokens x dim, independent of H, W)
Both:                            kernels = KernelGenerator(z, StructureEncoder(PAN))
                                 HRMS = backbone(PAN, LMS, kernels)  with W' = W + dW(z) per sample
                                 (optionally also W_tail' = diag(1 + g(z)) W_tail: per-band detail gain)
The prior is a tile-level (global) summary: inside a tile every output pixel depends on the whole tile
through z, while the backbone's local receptive field is ``margin`` PAN pixels.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..diffusion import T_TRAIN, ddim_step, ddim_timesteps, q_sample
from .context import ContextTokens
from .denoiser import LatentDenoiser
from .encoders import ConditionEncoder, PyramidLatentFusionEncoder, StructureEncoder
from .kernelgen import KernelGenerator
from .tilenorm import tile_normalise


class KSDiff(nn.Module):
    def __init__(self, backbone: nn.Module, bands: int, dim: int = 64, tokens: int = 8, struct_tokens: int = 8,
                 ranks=(4, 4, 3), sample_steps: int = 4, heads: int = 4, enc_widths=(16, 32, 64),
                 denoiser_depth: int = 2, noise_seed: int = 20250524, prior_norm: bool = True,
                 tail_gain: bool = False, live: bool = False, tile_norm: bool = False, context_tokens: int = 0,
                 ratio: int = 4) -> None:
        super().__init__()
        self.backbone = backbone
        self.bands, self.dim, self.tokens, self.sample_steps = bands, dim, tokens, sample_steps
        # live / tile_norm / context_tokens: the adaptive design (see module docstring); off = the first design
        self.tile_norm, self.ratio = tile_norm, ratio
        # prior_norm=False is the first design (raw encoder inputs, collapsed prior); kept to rebuild those models
        self.prior_enc = PyramidLatentFusionEncoder(bands, dim, tokens, enc_widths, heads, prior_norm)
        self.cond_enc = ConditionEncoder(bands, dim, tokens, enc_widths, heads, prior_norm)
        self.struct_enc = StructureEncoder(dim, struct_tokens, enc_widths[:2], heads)
        self.denoiser = LatentDenoiser(dim, tokens, denoiser_depth, heads)
        self.kgen = KernelGenerator(backbone.mod_layers, backbone.width, dim, tuple(ranks), heads,
                                    tail_bands=bands if tail_gain else 0, live=live)
        self.context = ContextTokens(bands, ratio, dim, context_tokens) if context_tokens else None
        g = torch.Generator().manual_seed(noise_seed)
        # fixed initial noise of the sampler: a constant of the graph, so the output is deterministic
        self.register_buffer("z_init", torch.randn(tokens, dim, generator=g))

    @property
    def margin(self) -> int:
        return self.backbone.margin

    # --- pieces -----------------------------------------------------------------------------------
    def normalise(self, pan: torch.Tensor, lms: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Tile-normalised (pan, lms) and the scale s to multiply the output by (1 without tile_norm)."""
        if not self.tile_norm:
            return pan, lms, torch.ones((), dtype=pan.dtype, device=pan.device)
        return tile_normalise(pan, lms, self.ratio)

    def kernels(self, z: torch.Tensor, pan: torch.Tensor, lms: torch.Tensor):
        """Prior tokens -> (one Modulation per modulated layer, tail gain or None) (inputs normalised)."""
        struct = self.struct_enc(pan)
        if self.context is not None:
            struct = torch.cat([struct, self.context(pan, lms)], dim=1)
        return self.kgen(z, struct)

    def decode(self, z: torch.Tensor, pan: torch.Tensor, lms: torch.Tensor) -> torch.Tensor:
        """Prior tokens -> kernels -> modulated backbone -> HRMS (inputs already normalised)."""
        mods, gain = self.kernels(z, pan, lms)
        return self.backbone(pan, lms, mods, gain)

    def sample_prior(self, cond: torch.Tensor) -> torch.Tensor:
        """Deterministic DDIM over the prior tokens, unrolled (traceable into ONNX)."""
        z = self.z_init.expand(cond.shape[0], -1, -1)
        ts = ddim_timesteps(self.sample_steps)
        for i, t in enumerate(ts):
            tt = torch.full((cond.shape[0],), t, dtype=torch.long, device=cond.device)
            z0 = self.denoiser(z, tt, cond)
            z = ddim_step(z, z0, t, ts[i + 1] if i + 1 < len(ts) else -1)
        return z

    # --- training entry points ------------------------------------------------------------------
    def forward_stage1(self, pan: torch.Tensor, lms: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        p, m, s = self.normalise(pan, lms)
        return self.decode(self.prior_enc(p, m, gt / s), p, m) * s

    def stage2_losses(self, pan: torch.Tensor, lms: torch.Tensor, gt: torch.Tensor,
                      generator: torch.Generator | None = None, sampling_t: bool = False
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(HRMS from the sampled prior, prior distillation loss, HRMS from the stage-1 prior).

        ``sampling_t``: train the denoiser on the timesteps the sampler visits (not all 1000).
        """
        p, m, s = self.normalise(pan, lms)
        with torch.no_grad():
            z_ref = self.prior_enc(p, m, gt / s)  # frozen stage-1 encoder gives the target prior
            hrms_ref = self.decode(z_ref, p, m) * s
        cond = self.cond_enc(p, m)
        n = pan.shape[0]
        if sampling_t:
            ts = torch.tensor(ddim_timesteps(self.sample_steps))
            t = ts[torch.randint(0, len(ts), (n,), generator=generator)].to(pan.device)
        else:
            t = torch.randint(0, T_TRAIN, (n,), generator=generator).to(pan.device)
        noise = torch.randn(z_ref.shape, generator=generator).to(pan.device)
        z0_hat = self.denoiser(q_sample(z_ref, t, noise), t, cond)
        prior_loss = F.mse_loss(z0_hat, z_ref)
        hrms = self.decode(self.sample_prior(cond), p, m) * s
        return hrms, prior_loss, hrms_ref

    # --- inference (what is exported) -------------------------------------------------------------
    def forward(self, pan: torch.Tensor, lms: torch.Tensor) -> torch.Tensor:
        p, m, s = self.normalise(pan, lms)
        return self.decode(self.sample_prior(self.cond_enc(p, m)), p, m) * s
