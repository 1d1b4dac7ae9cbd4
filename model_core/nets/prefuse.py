"""A classical fusion inside the graph for the network to correct: HPM with a fixed Gaussian low-pass.

The bundled networks add their detail to the upsampled MS. On scenes unlike their training data (another
PAN response, sharper or blurrier PAN, other radiometry) that detail can be worse than none, while
MTF-GLP-HPM stays reasonable everywhere. With ``prefuse`` the backbone adds its residual to

    HPM(P, LMS) = LMS * P / G(P)

instead (P: the PAN already matched to the MS intensity by the tile normalisation; G: a Gaussian whose
response at the MS Nyquist frequency is :data:`GAIN`, shift-invariant so tiles need no phase alignment),
and starts training as that classical method (the tail starts near zero). Its worst case is then a
perturbed MTF-GLP-HPM rather than arbitrary detail, and it keeps HPM's positivity where the residual is
small. Computed in the graph (exported to ONNX with the model): no change in the plugin.

:class:`GSAPrefuse` is another classical start (``model.prefuse: gsa``): Gram-Schmidt adaptive fitted on
the tile itself (the intensity regressed on the low-passed PAN, band gains cov(MS_b, I)/var(I)), which
follows a PAN whose spectral response differs from the training sensor's. :class:`FSPrefuse`
(``model.prefuse: fs``) is MTF-GLP-FS fitted on the tile: additive details with regression gains, and
:class:`MixPrefuse` (``model.prefuse: mix``) mixes HPM and that FS per tile and band with a learned weight.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

GAIN = 0.3          # a generic MTF gain at Nyquist (METHOD.md's table spans 0.23-0.36 for the MS sensors)
FLOOR = 0.05        # G(P) floor in tile-mean units: no blow-up in black tiles or nodata fill


def gaussian_taps(ratio: int, gain: float = GAIN) -> torch.Tensor:
    """1-D normalised Gaussian with response ``gain`` at the coarse Nyquist frequency, +-3 sigma."""
    sigma = ratio * math.sqrt(-2.0 * math.log(gain)) / math.pi
    half = max(1, math.ceil(3 * sigma))
    x = torch.arange(-half, half + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


class HPMPrefuse(nn.Module):
    """``forward(pan, lms)`` -> LMS * P / G(P) with reflect padding (same size)."""

    def __init__(self, ratio: int) -> None:
        super().__init__()
        k = gaussian_taps(ratio)
        self.half = len(k) // 2
        self.register_buffer("kx", k.view(1, 1, 1, -1), persistent=False)
        self.register_buffer("ky", k.view(1, 1, -1, 1), persistent=False)

    @property
    def margin(self) -> int:
        return self.half

    def lowpass(self, pan: torch.Tensor) -> torch.Tensor:
        h = self.half
        x = F.conv2d(F.pad(pan, (h, h, 0, 0), mode="reflect"), self.kx)
        return F.conv2d(F.pad(x, (0, 0, h, h), mode="reflect"), self.ky)

    def forward(self, pan: torch.Tensor, lms: torch.Tensor) -> torch.Tensor:
        return self.hpm(pan, lms, self.lowpass(pan))

    @staticmethod
    def hpm(pan: torch.Tensor, lms: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
        """LMS * P / G(P) given G(P) = ``low``."""
        return lms * pan / low.clamp_min(FLOOR)


class GSAPrefuse(HPMPrefuse):
    """``forward(pan, lms)`` -> GSA fitted per tile: LMS_b + g_b (P_eq - I).

    I = sum_b a_b LMS_b regressed (centred, ridge 1e-3) on G(P), the low-passed PAN, by a fixed number of
    conjugate-gradient steps (exportable: matmuls only); P_eq = the PAN centred and scaled to I's standard
    deviation; g_b = cov(LMS_b, I) / var(I). As :class:`HPMPrefuse` without the division by G(P).
    """

    RIDGE = 1e-3
    EPS = 1e-6   # variance floor in tile-mean units: flat tiles get no detail instead of 0/0

    def forward(self, pan: torch.Tensor, lms: torch.Tensor) -> torch.Tensor:
        n, c = lms.shape[:2]
        low = self.lowpass(pan).flatten(2)                     # (n, 1, N)
        x = lms.flatten(2)                                     # (n, c, N)
        xc = x - x.mean(2, keepdim=True)
        pc = low - low.mean(2, keepdim=True)
        cov = xc @ xc.transpose(1, 2) / xc.shape[2]            # (n, c, c)
        ridge = self.RIDGE * cov.diagonal(dim1=1, dim2=2).mean(1).view(n, 1, 1) + 1e-12
        b = xc @ pc.transpose(1, 2) / xc.shape[2]              # (n, c, 1)
        alpha = _conjugate_gradient(cov + ridge * torch.eye(c, dtype=cov.dtype, device=cov.device), b, c + 2)
        i0 = alpha.transpose(1, 2) @ xc                        # (n, 1, N) centred intensity
        var_i = (i0 * i0).mean(2, keepdim=True)
        gain = cov @ alpha / (var_i + self.EPS)                # cov(LMS_b, I) / var(I)
        p = pan.flatten(2)
        p_eq = (p - low.mean(2, keepdim=True)) * torch.sqrt(var_i / ((pc * pc).mean(2, keepdim=True) + self.EPS))
        return (x + gain * (p_eq - i0)).view_as(lms)


class FSPrefuse(HPMPrefuse):
    """``forward(pan, lms)`` -> MTF-GLP-FS fitted per tile: LMS_b + g_b (P - G(P)).

    g_b = cov(LMS_b, G(P)) / var(G(P)) over the tile: the full-scale regression gains of Vivone et al. (2018),
    as the plugin's ``mtf_glp_fs`` estimates them per scene. Additive, so a PAN as sharp as the MS gets its
    detail injected once, not amplified by a ratio.
    """

    EPS = 1e-6   # variance floor in tile-mean units: flat tiles get no detail instead of 0/0

    def forward(self, pan: torch.Tensor, lms: torch.Tensor) -> torch.Tensor:
        low, _, cov, var_l = self.regression(pan, lms)
        return lms + cov / (var_l + self.EPS) * (pan - low)

    def regression(self, pan: torch.Tensor, lms: torch.Tensor):
        """(G(P), LMS centred per tile, cov(LMS_b, G(P)), var(G(P))); the last two (n, c | 1, 1, 1)."""
        low = self.lowpass(pan)
        lc = low - low.mean((2, 3), keepdim=True)
        xc = lms - lms.mean((2, 3), keepdim=True)
        return low, xc, (xc * lc).mean((2, 3), keepdim=True), (lc * lc).mean((2, 3), keepdim=True)


class MixPrefuse(FSPrefuse):
    """``forward(pan, lms)`` -> HPM + a (FS - HPM): the two in-graph fusions mixed per tile and band.

    HPM is the better start on the real WorldView-2 pairs, MTF-GLP-FS on PANs as sharp as the MS or of other
    spectral responses (docs/VALIDATION.md). The weight a = sigmoid(b + w . f) is learned from three tile statistics
    per band f = (FS gain, correlation of the band with G(P), log PAN detail-to-low-pass energy); it starts at 1/2.
    """

    def __init__(self, ratio: int, bands: int = 4) -> None:
        super().__init__(ratio)
        self.weight = nn.Parameter(torch.zeros(bands, 3))
        self.bias = nn.Parameter(torch.zeros(bands))

    def forward(self, pan: torch.Tensor, lms: torch.Tensor) -> torch.Tensor:
        low, xc, cov, var_l = self.regression(pan, lms)
        gain = cov / (var_l + self.EPS)                                  # (n, c, 1, 1)
        corr = cov / torch.sqrt((xc * xc).mean((2, 3), keepdim=True) * var_l + self.EPS)
        detail = pan - low
        rel = torch.log(((detail * detail).mean((2, 3), keepdim=True) + self.EPS) / (var_l + self.EPS))
        feats = torch.stack([gain, corr, rel.expand_as(gain)], -1).flatten(2)   # (n, c, 3)
        a = torch.sigmoid(self.bias + (feats * self.weight).sum(-1))[..., None, None]
        hpm = self.hpm(pan, lms, low)
        return hpm + a * (lms + gain * detail - hpm)


def _conjugate_gradient(a: torch.Tensor, b: torch.Tensor, steps: int) -> torch.Tensor:
    """Solve the batched SPD systems a x = b (n, c, c)(n, c, 1) with ``steps`` CG iterations."""
    x = torch.zeros_like(b)
    r = b
    d = r
    rs = (r * r).sum(1, keepdim=True)
    for _ in range(steps):
        ad = a @ d
        step = rs / ((d * ad).sum(1, keepdim=True) + 1e-30)
        x = x + step * d
        r = r - step * ad
        rs_new = (r * r).sum(1, keepdim=True)
        d = r + rs_new / (rs + 1e-30) * d
        rs = rs_new
    return x
