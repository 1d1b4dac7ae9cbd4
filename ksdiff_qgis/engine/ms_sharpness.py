"""How sharp the MS really is: its MTF gain at the MS Nyquist frequency, measured against the PAN.

Wald's protocol (the self-check) degrades the scene with the MS's MTF. The sensor table gives nominal gains; a
product whose MS is sharper than that (a Sentinel-2 20 m band made by 2 x 2 averaging: gain ~0.7 against the
0.3 assumed; a reduced-resolution case made with a box or bicubic filter) gets a check that is degraded too
softly, which rewards over-injection: the learned model won a Wald check it lost against the real 10 m bands
(ERGAS 2.01 against GSA's 0.98).

The measurement: the PAN, filtered with a Gaussian MTF of gain ``g`` and decimated by the ratio as the check
degrades it, is fitted to the MS intensity (the scene's regression of the PAN on the MS bands) on every window;
the ``g`` whose fit leaves the least residual is the MS's gain. On Sentinel-2 10 m bands degraded with known
gains 0.2 / 0.35 / 0.6 it returns them exactly with a PAN that is one of the bands or their mean; with a PAN of
another spectral range (NIR against visible bands) 0.05-0.1 lower (a flat curve: the spectral misfit dominates),
so a measured gain is never sharper than the truth by that error.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .filters import wald_degrade

CANDIDATE_GAINS = tuple(round(0.10 + 0.05 * i, 2) for i in range(14))   # 0.10 ... 0.75
# the check degrades with the measured gain only when it is this much sharper than the sensor's (the estimate's
# own error with a PAN of another spectral range is 0.05-0.1, always towards softer) ...
MIN_SHARPER = 0.15
# ... and the fit with it leaves this much less residual than with the sensor's gain (a flat curve says nothing)
MIN_BETTER_FIT = 1.05


@dataclass
class SharpnessFit:
    """Residuals of the PAN-to-MS-intensity fit per candidate gain, pooled over the check's windows."""

    alpha: np.ndarray                       # (C+1,) the scene's regression of the low-resolution PAN on the MS
    ratio: int
    rss: np.ndarray = field(default_factory=lambda: np.zeros(len(CANDIDATE_GAINS)))
    pixels: int = 0

    def add(self, pan: np.ndarray, ms: np.ndarray, valid: np.ndarray | None = None, border: int = 2) -> None:
        """One window: ``pan`` (H*k, W*k) and ``ms`` (C, H, W) on the same grid; ``valid`` (H, W) MS pixels to use."""
        k = self.ratio
        h, w = ms.shape[1], ms.shape[2]
        intensity = np.tensordot(self.alpha[:-1], ms.astype(np.float64), axes=1) + self.alpha[-1]
        ok = np.zeros((h, w), dtype=bool)
        ok[border:h - border, border:w - border] = True     # the filters' edge effects left out
        if valid is not None:
            ok &= valid
        n = int(ok.sum())
        if n < 16:
            return
        y = intensity[ok]
        for i, g in enumerate(CANDIDATE_GAINS):
            x = wald_degrade(pan[:h * k, :w * k], [g], k)[ok].astype(np.float64)
            design = np.stack([x, np.ones_like(x)], axis=1)
            coef, *_ = np.linalg.lstsq(design, y, rcond=None)
            self.rss[i] += float(((y - design @ coef) ** 2).sum())
        self.pixels += n

    def measured(self) -> float | None:
        """The gain whose fit leaves the least residual, or None without data."""
        return CANDIDATE_GAINS[int(np.argmin(self.rss))] if self.pixels else None

    def fit_at(self, gain: float) -> float:
        """Pooled residual at the candidate nearest ``gain``."""
        return float(self.rss[int(np.argmin([abs(g - gain) for g in CANDIDATE_GAINS]))])


def check_gains(fit: SharpnessFit, gains: tuple[float, ...]) -> tuple[tuple[float, ...], str | None]:
    """The MS MTF gains the Wald check should degrade with, and a warning when they are not ``gains`` (the
    sensor's, or the user's MTF_GAINS): the measured gain for every band when the MS is clearly sharper."""
    measured = fit.measured()
    nominal = float(np.mean(gains))
    if measured is None or measured < nominal + MIN_SHARPER:
        return gains, None
    if fit.fit_at(nominal) < MIN_BETTER_FIT * fit.fit_at(measured):
        return gains, None
    note = (f"the MS is sharper than the MTF assumed for it: gain {measured:.2f} at its Nyquist frequency, measured "
            f"against the PAN, against {nominal:.2f} assumed (a resampled or averaged product?). The self-check "
            f"degrades with {measured:.2f}, so it does not reward over-sharpening; if the product is so, set MTF "
            f"gains (MTF_GAINS) to {measured:.2f} for the fusion too")
    return (measured,) * len(gains), note
