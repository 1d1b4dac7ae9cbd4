"""Diffusion utilities shared by KSDiff (latent tokens) and SSDiff (pixels).

x0-parameterised denoisers, the cosine schedule (Nichol & Dhariwal), deterministic DDIM (eta = 0)
unrolled over a fixed list of timesteps so it can be traced into one ONNX graph, sinusoidal
timestep embeddings, and shape-deterministic Gaussian noise computed with integer hashing (ONNX has
no seeded random generator, and a constant noise image large enough for any tile would be huge).
"""
from __future__ import annotations

import math

import torch

T_TRAIN = 1000


def cosine_alpha_bar(t: torch.Tensor | float, steps: int = T_TRAIN, s: float = 0.008) -> torch.Tensor:
    """Cumulative signal fraction alpha_bar(t) of the cosine schedule, t in [0, steps); alpha_bar(-1) = 1."""
    t = torch.as_tensor(t, dtype=torch.float64)
    f = lambda x: torch.cos((x / steps + s) / (1 + s) * math.pi / 2) ** 2  # noqa: E731
    ab = f(t + 1) / f(torch.zeros(()))
    return ab.clamp(1e-5, 1.0)


def ddim_timesteps(n_steps: int, steps: int = T_TRAIN) -> list[int]:
    """Evenly spaced descending timesteps, e.g. 10 -> [999, 899, ..., 99]."""
    stride = steps // n_steps
    return [steps - 1 - i * stride for i in range(n_steps)]


def q_sample(x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Forward diffusion x_t = sqrt(ab) x0 + sqrt(1 - ab) eps, t of shape (N,)."""
    ab = cosine_alpha_bar(t).to(x0.dtype).view(-1, *([1] * (x0.dim() - 1)))
    return ab.sqrt() * x0 + (1 - ab).sqrt() * noise


def ddim_step(x_t: torch.Tensor, x0: torch.Tensor, t: int, t_next: int) -> torch.Tensor:
    """One deterministic DDIM update from t to t_next (t_next = -1 returns x0)."""
    ab = float(cosine_alpha_bar(t))
    ab_next = float(cosine_alpha_bar(t_next)) if t_next >= 0 else 1.0
    eps = (x_t - math.sqrt(ab) * x0) / math.sqrt(1.0 - ab)
    return math.sqrt(ab_next) * x0 + math.sqrt(1.0 - ab_next) * eps


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding (N, dim) of integer timesteps t (N,)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)


_M = 2147483647  # 2^31 - 1: products of two values below it fit in int64


def _hash(h: torch.Tensor) -> torch.Tensor:
    # two rounds of the Park-Miller / MINSTD generator (multipliers 48271, 69621): exact in int64
    h = (h * 48271) % _M
    return (h * 69621) % _M


def hash_noise(n: int | torch.Tensor, c: int, h: int | torch.Tensor, w: int | torch.Tensor,
               seed: int = 0, device: torch.device | None = None) -> torch.Tensor:
    """Standard-normal noise (n, c, h, w) that depends only on (seed, sample, band, row, col).

    Integer hashing (exact in both PyTorch and ONNX Runtime) gives two uniforms per element,
    Box-Muller turns them into a Gaussian. Same shape => same noise, in every runtime.
    """
    ii = torch.arange(n, dtype=torch.int64, device=device).view(-1, 1, 1, 1)
    cc = torch.arange(c, dtype=torch.int64, device=device).view(1, -1, 1, 1)
    yy = torch.arange(h, dtype=torch.int64, device=device).view(1, 1, -1, 1)
    xx = torch.arange(w, dtype=torch.int64, device=device).view(1, 1, 1, -1)
    key = (yy * 4099 + xx * 7 + cc * 1000003 + ii * 15485863 + seed * 179424673 + 1) % _M
    h1 = _hash(key + 1)
    h2 = _hash(_hash(key + 2) + 7)
    u1 = (h1.to(torch.float64) + 0.5) / _M
    u2 = (h2.to(torch.float64) + 0.5) / _M
    z = torch.sqrt(-2.0 * torch.log(u1)) * torch.cos(2.0 * math.pi * u2)
    return z.to(torch.float32)
