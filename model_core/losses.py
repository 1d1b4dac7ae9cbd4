"""Reference-free full-resolution losses (Z-PNN / lambda-PNN style) and the scale-free Wald L1.

* ``spectral_loss``: the fused patch, filtered with the sensor's MS MTF and decimated by the ratio
  exactly as Wald's protocol degrades (``ksdiff_qgis.engine.filters.decimate``), must reproduce the MS.
* ``spatial_loss``: each fused band should follow the PAN locally: 1 - local correlation coefficient on a
  window of about the ratio's size (the Drho index of Scarpa & Ciotola 2022, as a loss).
* ``sam_loss``: the mean spectral angle (radians) between fused and reference spectra, the SAM index as a loss.
* ``consistency_step``: the engine's back-projection step (``ksdiff_qgis.engine.consistency``) in torch, so a
  network can be trained on what the plugin writes rather than on its raw output.
Both are divided by the patch's mean intensity, like ``scaled_l1``, so dark and bright scenes weigh alike.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from ksdiff_qgis.engine.filters import mtf_sigma, upsample


def sample_scale(lms: torch.Tensor) -> torch.Tensor:
    """Per-sample mean intensity (N, 1, 1, 1), the unit of every loss."""
    return lms.mean(dim=(1, 2, 3), keepdim=True).abs().clamp_min(1e-4)


def scaled_l1(out: torch.Tensor, ref: torch.Tensor, lms: torch.Tensor) -> torch.Tensor:
    return ((out - ref).abs() / sample_scale(lms)).mean()


def mtf_kernels(gains, ratio: int) -> torch.Tensor:
    """(C, 1, K) 1-D Gaussian kernels matching the MTF gains, sampled half a pixel off for even ratios."""
    sig = [mtf_sigma(float(g), ratio) for g in gains]
    half = math.ceil(3 * max(sig)) + 1
    shift = 0.0 if ratio % 2 else 0.5
    x = torch.arange(-half, half + 1, dtype=torch.float64) + shift
    k = torch.stack([torch.exp(-0.5 * (x / s) ** 2) for s in sig])
    return (k / k.sum(1, keepdim=True)).float()[:, None]


def degrade(img: torch.Tensor, kernels: torch.Tensor, ratio: int) -> torch.Tensor:
    """MTF filter (reflect padding) and decimation of (N, C, H, W): coarse pixel k centred as in Wald's."""
    c, k = img.shape[1], kernels.shape[-1]
    half = k // 2
    x = F.pad(img, (half, half, half, half), mode="reflect")
    x = F.conv2d(x, kernels.to(img)[:, :, None, :], groups=c)   # along columns
    x = F.conv2d(x, kernels.to(img)[:, :, :, None], groups=c)   # along rows
    off = ratio // 2
    return x[..., off::ratio, off::ratio]


def spectral_loss(fused: torch.Tensor, ms: torch.Tensor, lms: torch.Tensor, kernels: torch.Tensor,
                  ratio: int, border: int = 1) -> torch.Tensor:
    """Scale-free L1 between the degraded fused patch and the MS (``border`` MS pixels left out)."""
    d = degrade(fused, kernels, ratio)
    b = slice(border, -border) if border else slice(None)
    return ((d - ms)[..., b, b].abs() / sample_scale(lms)).mean()


def local_corr(a: torch.Tensor, b: torch.Tensor, win: int) -> torch.Tensor:
    """Local correlation coefficient of a (N, C, H, W) with b (N, 1, H, W) on win x win windows."""
    box = lambda x: F.avg_pool2d(x, win, stride=1)  # noqa: E731
    ma, mb = box(a), box(b)
    cov = box(a * b) - ma * mb
    va, vb = (box(a * a) - ma * ma).clamp_min(0), (box(b * b) - mb * mb).clamp_min(0)
    return (cov / torch.sqrt(va * vb + 1e-12)).clamp(-1, 1)


def spatial_loss(fused: torch.Tensor, pan: torch.Tensor, ratio: int) -> torch.Tensor:
    return (1 - local_corr(fused, pan, ratio + 1 if ratio % 2 == 0 else ratio)).mean()


def sam_loss(fused: torch.Tensor, ref: torch.Tensor, floor: float = 1e-4) -> torch.Tensor:
    """Mean per-pixel spectral angle in radians of (N, C, H, W) spectra. The cosine is capped at ``1 - floor``
    because arccos' slope is infinite at 1: pixels within about 0.8 degrees of the reference get no gradient."""
    dot = (fused * ref).sum(1)
    norms = fused.norm(dim=1) * ref.norm(dim=1)
    cos = dot / norms.clamp_min(1e-8)
    return torch.arccos(cos.clamp(-1 + floor, 1 - floor)).mean()


@lru_cache(maxsize=16)
def upsample_matrix(n_in: int, ratio: int) -> torch.Tensor:
    """(n_in * ratio, n_in) matrix of the engine's cubic upsampler along one axis (``filters.upsample``, origin 0,
    edge samples repeated): the upsampled axis is ``matrix @ coarse``."""
    eye = np.eye(n_in, dtype=np.float32)[:, :, None]   # n_in one-hot coarse columns as bands
    return torch.from_numpy(np.ascontiguousarray(upsample(eye, ratio, (n_in * ratio, 1))[:, :, 0].T))


def consistency_step(fused: torch.Tensor, lms: torch.Tensor, kernels: torch.Tensor, ratio: int) -> torch.Tensor:
    """One back-projection step ``F + U(MS - D(F))`` written as ``F + LMS - U(D(F))`` (the LMS is U(MS) on the
    same grid), for (N, C, H, W) patches whose top-left pixel starts an MS pixel.

    Within about three MS pixels of the patch edge D sees reflected pixels instead of the scene, so a loss on
    the result should leave that border out (the engine has the real neighbours there).
    """
    d = degrade(fused, kernels, ratio)
    rows = upsample_matrix(d.shape[-2], ratio).to(fused)
    cols = upsample_matrix(d.shape[-1], ratio).to(fused)
    return fused + lms - torch.einsum("ih,nchw,jw->ncij", rows, d, cols)
