"""PanCollection HDF5 reader (keys ``gt``, ``ms``, ``lms``, ``pan``; float64 on the raw scale, N x C x H x W).

A config trains on such files with ``data.pancollection: {train: train.h5, val: val.h5}`` instead of
``data.train`` / ``data.val`` rasters (``datacheck.check_pancollection`` checks them against the sensor first).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import h5py
import numpy as np
import torch

KEYS = ("gt", "ms", "lms", "pan")


def files(spec: dict[str, Any], root: Path) -> dict[str, Path]:
    """``data.pancollection``'s files by split (``train``, and ``val`` when given); a relative path is read under the
    data root, as a raster source's is."""
    return {split: Path(spec[split]) if Path(spec[split]).is_absolute() else Path(root) / spec[split]
            for split in ("train", "val") if spec.get(split)}


class PanCollection:
    """Samples of a PanCollection file, divided by ``scale`` (2047 for WV3/WV2/QB, 1023 for GF2).

    Full-resolution test files have no ``gt``; ``has_gt`` says which kind this is. ``bands``, ``ratio`` (PAN / MS
    sample side) and ``size`` (the samples' PAN side, rows and columns) describe the file. A file that is no HDF5
    file, lacks a key or whose arrays do not fit together is refused (ValueError naming it).
    """

    def __init__(self, path: str | Path, scale: float) -> None:
        self.path, self.scale = Path(path), float(scale)
        try:
            f = h5py.File(self.path, "r")
        except OSError as e:   # h5py's words: "Unable to open file (file signature not found)"
            raise ValueError(f"{self.path} is not a readable HDF5 file ({e}); a PanCollection file holds the "
                             "arrays gt, ms, lms and pan") from None
        with f:
            missing = {"ms", "lms", "pan"} - set(f.keys())
            if missing:
                raise ValueError(f"{self.path} lacks the PanCollection key(s) {', '.join(sorted(missing))} (it has "
                                 f"{', '.join(sorted(f.keys())) or 'none'}; a PanCollection file holds gt, ms, lms "
                                 "and pan, each N x C x H x W)")
            self.has_gt = "gt" in f
            shapes = {k: tuple(f[k].shape) for k in KEYS if k in f}
        self._check(shapes)
        n, self.bands, h, w = shapes["lms"]
        self.n, self.size, self.ratio = n, (h, w), h // shapes["ms"][2]

    def _check(self, shapes: dict[str, tuple[int, ...]]) -> None:
        """The arrays as PanCollection stores them: 4-D, one sample count, PAN one band, LMS / GT the PAN's size with
        the MS's bands, the MS smaller by one whole ratio."""
        words = ", ".join(f"{k} {'x'.join(map(str, s))}" for k, s in shapes.items())
        bad = f"{self.path}: the arrays ({words}) are not a PanCollection file's"
        if any(len(s) != 4 for s in shapes.values()) or len({s[0] for s in shapes.values()}) != 1:
            raise ValueError(f"{bad}: each is N x C x H x W with the same N")
        pan, ms, lms = shapes["pan"], shapes["ms"], shapes["lms"]
        if pan[1] != 1 or lms[1:] != (ms[1], *pan[2:]) or shapes.get("gt", lms) != lms:
            raise ValueError(f"{bad}: pan has 1 band, lms and gt the MS's bands at the PAN's size")
        q = pan[2] // ms[2] if ms[2] else 0
        if q < 1 or (ms[2] * q, ms[3] * q) != pan[2:]:
            raise ValueError(f"{bad}: the PAN's side is not a whole multiple of the MS's")

    def __len__(self) -> int:
        return self.n

    def load(self, idx) -> dict[str, torch.Tensor]:
        """A dict of float32 tensors for the sample indices ``idx`` (int, slice or sorted list)."""
        out = {}
        with h5py.File(self.path, "r") as f:
            for k in KEYS if self.has_gt else ("ms", "lms", "pan"):
                a = np.asarray(f[k][idx], dtype=np.float32) / self.scale
                out[k] = torch.from_numpy(a if a.ndim == 4 else a[None])
        return out

    def batch(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Random (pan, lms, gt) batch, the same interface as ``PatchSampler.batch``."""
        idx = sorted(set(torch.randint(0, self.n, (n,), generator=generator).tolist()))
        d = self.load(idx)
        return d["pan"], d["lms"], d["gt"]

    def all_batches(self, n: int, limit: int | None = None) -> Iterator[tuple[torch.Tensor, ...]]:
        """The first (up to ``limit``) samples in batches of ``n``, as ``PatchSampler.all_batches``: validation."""
        end = min(self.n, limit or self.n)
        for s in range(0, end, n):
            d = self.load(slice(s, min(end, s + n)))
            yield d["pan"], d["lms"], d["gt"]
