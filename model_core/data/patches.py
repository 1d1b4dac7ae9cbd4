"""Patch sampling from Wald triples: valid positions, flips/rot90 augmentation, deterministic batches.

Batches are drawn with a ``torch.Generator`` seeded from (seed, step), so a resumed run draws exactly
the batches an uninterrupted run would have drawn.
"""
from __future__ import annotations

import numpy as np
import torch

from .scenes import NoPatchError, Triple


def valid_positions(t: Triple, patch: int, stride: int, align: int = 1) -> np.ndarray:
    """Top-left corners (K, 2) of patches whose support (+ margin) holds no invalid pixel, on multiples of
    ``align`` (the ratio, when a loss needs each patch to start an MS pixel)."""
    if stride % align:
        raise ValueError(f"patch stride {stride} is not a multiple of the alignment {align}")
    h, w = t.gt.shape[-2:]
    if h < patch or w < patch:
        return np.zeros((0, 2), dtype=np.int64)
    m = t.margin
    bad = np.pad(t.invalid.astype(np.int64), ((m + 1, m), (m + 1, m)))
    ii = bad.cumsum(0).cumsum(1)  # integral image with a leading zero row/col
    # the grid plus the last row/column position, so scenes whose valid part is near an edge keep patches
    ys = np.unique(np.append(np.arange(0, h - patch + 1, stride), (h - patch) // align * align))
    xs = np.unique(np.append(np.arange(0, w - patch + 1, stride), (w - patch) // align * align))
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    s = patch + 2 * m
    # window [y - m, y + patch + m) in original coords = [y, y + s) in padded coords (+1 for the lead row)
    cnt = ii[yy + s, xx + s] - ii[yy, xx + s] - ii[yy + s, xx] + ii[yy, xx]
    ok = cnt == 0
    return np.stack([yy[ok], xx[ok]], axis=1)


def no_patch_words(triples: list[Triple], patch: int, where: str = "") -> str:
    """Why no ``patch``² patch fits ``triples`` (``where``: the config's section and the option setting the size), in
    words: each one's size on the patch grid (the MS's pixels) when it is smaller than a patch, else that nodata or
    the Wald filters' margin leaves no patch free."""
    small = [t for t in triples if min(t.gt.shape[-2:]) < patch]
    head = f"{where}: " if where else ""
    if small:
        sizes = ", ".join(f"{t.name} is {t.gt.shape[-1]}x{t.gt.shape[-2]}" for t in small)
        return (f"{head}no {patch}x{patch} patch fits: {sizes} MS pixels (width x height); a patch needs an MS of at "
                f"least {patch}x{patch} pixels (its PAN the ratio times that): give larger rasters, or a smaller "
                "patch")
    return (f"{head}no {patch}x{patch} patch of {', '.join(t.name for t in triples)} is free of nodata (the Wald "
            f"filters keep patches {triples[0].margin} MS pixels from it); give rasters with a larger valid area, or a "
            "smaller patch")


class PatchSampler:
    """Random (pan, lms, gt) patch batches from a list of triples, weighted by their valid positions
    (or by each triple's ``share`` of the batches when the config gives shares).

    ``randomise`` (a dict, training only) turns on domain randomisation per sample: a random PAN and LMS
    variant of the triple (other PAN sharpness / spectral response, other MS MTF) and radiometric changes
    that real products show: per-band gains and offsets of the MS (``band_gain`` range, ``offset`` as a
    fraction of the mean), coarse quantisation (probability ``quantise``: a DN step of mean/U(30, 150),
    like 8-bit or dark 11-bit data) and PAN noise (std up to ``noise`` x mean). ``mirror_margin`` (a
    probability): the patch as a tile at a raster edge holds it (:meth:`_mirror_margin`).
    """

    def __init__(self, triples: list[Triple], patch: int, stride: int, augment: bool = True,
                 randomise: dict | None = None, align: int = 1, where: str = "") -> None:
        self.triples, self.patch, self.augment, self.randomise = triples, patch, augment, randomise
        self.align = max(1, align)
        self.positions = [valid_positions(t, patch, stride, align) for t in triples]
        self.index = [(i, j) for i, p in enumerate(self.positions) for j in range(len(p))]
        if not self.index:
            raise NoPatchError(no_patch_words(triples, patch, where))
        self.weights = None
        if any(t.share for t in triples):
            # each triple gets its share of the batches, spread evenly over its positions
            w = [(t.share or 0.0) / max(1, len(p)) for t, p in zip(triples, self.positions)]
            self.weights = torch.tensor([w[i] for i, _ in self.index], dtype=torch.float64)

    def __len__(self) -> int:
        return len(self.index)

    def _crop(self, k: int, pv: int = 0, lv: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        i, j = self.index[k]
        t, (y, x), p = self.triples[i], self.positions[i][j], self.patch
        pan = t.pans[pv % len(t.pans)] if t.pans else t.pan
        lms = t.lmss[lv % len(t.lmss)] if t.lmss else t.lms
        return pan[None, y : y + p, x : x + p], lms[:, y : y + p, x : x + p], t.gt[:, y : y + p, x : x + p]

    def _radiometry(self, pan: np.ndarray, lms: np.ndarray, gt: np.ndarray, g: torch.Generator):
        r = self.randomise or {}
        u = lambda *shape: torch.rand(shape or (1,), generator=g, dtype=torch.float64).numpy()  # noqa: E731
        c = lms.shape[0]
        mean = max(float(gt.mean()), 1e-4)
        lo, hi = r.get("band_gain", (1.0, 1.0))
        gain = np.exp(np.log(lo) + u(c) * (np.log(hi) - np.log(lo))).astype(np.float32)[:, None, None]
        off = ((u(c) * 2 - 1) * r.get("offset", 0.0) * mean).astype(np.float32)[:, None, None]
        lms, gt = lms * gain + off, gt * gain + off
        pan = pan + (torch.randn(pan.shape, generator=g).numpy() * float(u()[0]) * r.get("noise", 0.0) * mean)
        if float(u()[0]) < r.get("quantise", 0.0):
            step = mean / (30 + 120 * float(u()[0]))
            pan, gt = np.round(pan / step) * step, np.round(gt / step) * step
        return pan.astype(np.float32), lms.astype(np.float32), gt.astype(np.float32)

    def _mirror_margin(self, crop, g: torch.Generator, p: float):
        """With probability ``p``: the first ``w`` rows (and half the time the first ``w`` columns) replaced by the
        mirror of the next ``w``, ``w`` a multiple of the alignment (the ratio) up to a quarter of the patch —
        what the plugin's tiles hold beyond a raster edge (PAN and MS mirrored). The dihedral augmentation then
        puts the margin on any side."""
        u = torch.rand(3, generator=g, dtype=torch.float64).tolist()
        if u[0] >= p:
            return crop
        w = self.align * (1 + int(u[1] * max(1, self.patch // (4 * self.align))))
        out = []
        for arr in crop:
            a = arr.copy()
            a[:, :w] = a[:, 2 * w - 1 : w - 1 : -1]
            if u[2] < 0.5:
                a[:, :, :w] = a[:, :, 2 * w - 1 : w - 1 : -1]
            out.append(a)
        return tuple(out)

    def batch(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self.weights is not None:
            ks = torch.multinomial(self.weights, n, replacement=True, generator=generator).tolist()
        else:
            ks = torch.randint(0, len(self.index), (n,), generator=generator).tolist()
        augs = torch.randint(0, 8, (n,), generator=generator).tolist()
        out: list[list[np.ndarray]] = [[], [], []]
        for k, a in zip(ks, augs):
            crop = self._crop(k)
            if self.randomise:
                pv, lv = torch.randint(0, 1 << 20, (2,), generator=generator).tolist()
                crop = self._radiometry(*self._crop(k, pv, lv), generator)
                if self.randomise.get("mirror_margin"):
                    crop = self._mirror_margin(crop, generator, float(self.randomise["mirror_margin"]))
            for lst, arr in zip(out, crop):
                if self.augment:  # one of the 8 dihedral transforms, the same for PAN, LMS and GT
                    arr = np.rot90(arr, a % 4, axes=(1, 2))
                    if a >= 4:
                        arr = arr[:, :, ::-1]
                lst.append(np.ascontiguousarray(arr))
        return tuple(torch.from_numpy(np.stack(x)) for x in out)  # type: ignore[return-value]

    def all_batches(self, n: int, limit: int | None = None):
        """Deterministic, unaugmented batches over (up to ``limit``) positions: for validation."""
        ks = list(range(len(self.index)))[: limit or None]
        for s in range(0, len(ks), n):
            crops = [self._crop(k) for k in ks[s : s + n]]
            yield tuple(torch.from_numpy(np.stack([c[i] for c in crops]).copy()) for i in range(3))
