"""SSDiff baseline (Zhong et al., NeurIPS 2024): pixel-space diffusion over the residual HRMS - LMS.

Following the released configuration summarised in METHOD.md: x0-predicting network, 1000-step cosine
schedule, L1 loss, deterministic 10-step DDIM. Network: a spatial branch (residual blocks, fed with
the noisy residual and PAN) and a spectral branch (channel-attention blocks, fed with the noisy
residual and LMS) in a 3-level U shape of widths 32/64/128; at every level the branch outputs multiply
(alternating-projection fusion) and the fused feature is fed back to both branches through a fixed
frequency modulation (low frequencies scaled 0.9/0.6/0.3 by level, half the channels boosted
1.2/1.4/1.6). ``branch_parameters`` supports SSDiff's branch-wise alternating fine-tuning.

Deviations, so every network shares the plugin's two inputs: (1) the prediction is added to LMS (the
bicubic-upsampled MS) instead of a pixel-shuffle-upsampled MS; (2) the frequency split uses a fixed
5x5 box low-pass instead of an FFT mask (FFT does not export to plain ONNX and would make the result
depend on the tile size); (3) the initial noise of the sampler is ``hash_noise``: deterministic for
a given shape, so the same input gives the same output in PyTorch and ONNX Runtime.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..diffusion import T_TRAIN, ddim_step, ddim_timesteps, hash_noise, q_sample, timestep_embedding

LOW_SCALE = (0.9, 0.6, 0.3)
BOOST = (1.2, 1.4, 1.6)


def box_lowpass(x: torch.Tensor, k: int = 5) -> torch.Tensor:
    r = k // 2
    return F.avg_pool2d(F.pad(x, (r, r, r, r), mode="replicate"), k, stride=1)


def freq_modulate(x: torch.Tensor, level: int) -> torch.Tensor:
    """Boost the first half of the channels, then scale the low-frequency part (fixed, not learned)."""
    c = x.shape[1] // 2
    x = torch.cat([x[:, :c] * BOOST[level], x[:, c:]], dim=1)
    low = box_lowpass(x)
    return LOW_SCALE[level] * low + (x - low)


class SpatialBlock(nn.Module):
    """Residual block with an additive timestep embedding (spatial branch)."""

    def __init__(self, c: int, tdim: int) -> None:
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(c, c, 3, padding=1), nn.Conv2d(c, c, 3, padding=1)
        self.t = nn.Linear(tdim, c)

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = F.silu(self.c1(x) + self.t(temb)[:, :, None, None])
        return x + self.c2(h)


class SpectralBlock(nn.Module):
    """Channel ("transposed") self-attention + 1x1 feed-forward (spectral branch); cost linear in H*W."""

    def __init__(self, c: int, tdim: int, heads: int = 4) -> None:
        super().__init__()
        self.heads = heads
        self.t = nn.Linear(tdim, c)
        self.qkv = nn.Conv2d(c, 3 * c, 1)
        self.temp = nn.Parameter(torch.ones(heads, 1, 1))
        self.proj = nn.Conv2d(c, c, 1)
        self.ffn = nn.Sequential(nn.Conv2d(c, 2 * c, 1), nn.GELU(), nn.Conv2d(2 * c, c, 1))

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        y = x + self.t(temb)[:, :, None, None]
        q, k, v = self.qkv(y).reshape(n, 3, self.heads, c // self.heads, h * w).unbind(1)
        q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        att = torch.softmax(q @ k.transpose(-1, -2) * self.temp, dim=-1)
        x = x + self.proj((att @ v).reshape(n, c, h, w))
        return x + self.ffn(x)


class SSDiffNet(nn.Module):
    """x0 predictor: (x_t, t, PAN, LMS) -> residual estimate."""

    def __init__(self, bands: int, widths=(32, 64, 128), tdim: int = 128) -> None:
        super().__init__()
        self.widths = tuple(widths)
        self.tdim = tdim
        self.t_mlp = nn.Sequential(nn.Linear(32, tdim), nn.SiLU(), nn.Linear(tdim, tdim))
        w0 = widths[0]
        self.spa_stem = nn.Conv2d(bands + 1, w0, 3, padding=1)
        self.spe_stem = nn.Conv2d(2 * bands, w0, 3, padding=1)
        self.spa_blocks = nn.ModuleList(SpatialBlock(w, tdim) for w in widths)
        self.spe_blocks = nn.ModuleList(SpectralBlock(w, tdim) for w in widths)
        self.fuse = nn.ModuleList(nn.Conv2d(w, w, 1) for w in widths)
        self.spa_down = nn.ModuleList(nn.Conv2d(a, b, 3, stride=2, padding=1) for a, b in zip(widths, widths[1:]))
        self.spe_down = nn.ModuleList(nn.Conv2d(a, b, 3, stride=2, padding=1) for a, b in zip(widths, widths[1:]))
        self.up = nn.ModuleList(nn.ConvTranspose2d(b, a, 2, stride=2) for a, b in zip(widths, widths[1:]))
        self.dec_merge = nn.ModuleList(nn.Conv2d(2 * a, a, 1) for a in widths[:-1])
        self.dec_blocks = nn.ModuleList(SpatialBlock(a, tdim) for a in widths[:-1])
        self.out = nn.Conv2d(w0, bands, 3, padding=1)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, pan: torch.Tensor, lms: torch.Tensor) -> torch.Tensor:
        temb = self.t_mlp(timestep_embedding(t, 32))
        s = self.spa_stem(torch.cat([x_t, pan], 1))
        p = self.spe_stem(torch.cat([x_t, lms], 1))
        skips = []
        for lvl in range(len(self.widths)):
            s = self.spa_blocks[lvl](s, temb)
            p = self.spe_blocks[lvl](p, temb)
            f = self.fuse[lvl](s * p)            # alternating-projection fusion: the branches multiply
            m = freq_modulate(f, lvl)            # fixed frequency modulation fed back to both branches
            s, p = s + m, p + m
            skips.append(f)
            if lvl + 1 < len(self.widths):
                s, p = self.spa_down[lvl](s), self.spe_down[lvl](p)
        h = skips[-1]
        for lvl in reversed(range(len(self.widths) - 1)):
            h = self.up[lvl](h)
            h = self.dec_merge[lvl](torch.cat([h, skips[lvl]], 1))
            h = self.dec_blocks[lvl](h, temb)
        return self.out(F.silu(h))

    def branch_parameters(self, branch: str) -> list[nn.Parameter]:
        """Parameters of the 'spatial' or 'spectral' branch (for alternating fine-tuning)."""
        prefix = {"spatial": "spa_", "spectral": "spe_"}[branch]
        return [p for n, p in self.named_parameters() if n.startswith(prefix)]


class SSDiff(nn.Module):
    """Sampler wrapper: forward(pan, lms) runs the deterministic 10-step DDIM and returns HRMS."""

    def __init__(self, bands: int, widths=(32, 64, 128), sample_steps: int = 10, noise_seed: int = 0) -> None:
        super().__init__()
        self.bands = bands
        self.net = SSDiffNet(bands, widths)
        self.sample_steps, self.noise_seed = sample_steps, noise_seed

    @property
    def size_multiple(self) -> int:
        return 2 ** (len(self.net.widths) - 1)

    @property
    def margin(self) -> int:
        """Conv receptive-field radius (PAN px). The channel attention adds tile-global context on top."""
        r, scale = 1, 1  # stem
        for lvl in range(len(self.net.widths)):
            r += 2 * scale + 2 * scale  # spatial block (2 convs) + box low-pass (radius 2)
            if lvl + 1 < len(self.net.widths):
                r += scale  # stride-2 conv, radius 1 at this scale
                scale *= 2
        for _lvl in reversed(range(len(self.net.widths) - 1)):
            scale //= 2
            r += scale + 2 * scale  # transposed conv + decoder block
        return r + 1  # output conv

    def loss(self, pan: torch.Tensor, lms: torch.Tensor, gt: torch.Tensor,
             generator: torch.Generator | None = None) -> torch.Tensor:
        """L1 between the predicted and true residual x0 at a random timestep."""
        x0 = gt - lms
        t = torch.randint(0, T_TRAIN, (x0.shape[0],), generator=generator).to(x0.device)
        noise = torch.randn(x0.shape, generator=generator).to(x0.device)
        return F.l1_loss(self.net(q_sample(x0, t, noise), t, pan, lms), x0)

    def forward(self, pan: torch.Tensor, lms: torch.Tensor) -> torch.Tensor:
        n, c, h, w = lms.shape
        x = hash_noise(n, c, h, w, self.noise_seed, lms.device)
        ts = ddim_timesteps(self.sample_steps)
        for i, t in enumerate(ts):
            tt = torch.full((n,), t, dtype=torch.long, device=lms.device)
            x0 = self.net(x, tt, pan, lms)
            x = ddim_step(x, x0, t, ts[i + 1] if i + 1 < len(ts) else -1)
        return lms + x
