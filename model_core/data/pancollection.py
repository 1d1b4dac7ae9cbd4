"""PanCollection HDF5 reader (keys ``gt``, ``ms``, ``lms``, ``pan``; float64 on the raw scale, N x C x H x W)."""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import torch


class PanCollection:
    """Samples of a PanCollection file, divided by ``scale`` (2047 for WV3/WV2/QB, 1023 for GF2).

    Full-resolution test files have no ``gt``; ``has_gt`` says which kind this is.
    """

    def __init__(self, path: str | Path, scale: float) -> None:
        self.path, self.scale = Path(path), float(scale)
        with h5py.File(self.path, "r") as f:
            missing = {"ms", "lms", "pan"} - set(f.keys())
            if missing:
                raise KeyError(f"{self.path} lacks PanCollection keys {sorted(missing)}")
            self.has_gt = "gt" in f
            self.n = f["pan"].shape[0]
            self.bands = f["lms"].shape[1]

    def __len__(self) -> int:
        return self.n

    def load(self, idx) -> dict[str, torch.Tensor]:
        """A dict of float32 tensors for the sample indices ``idx`` (int, slice or sorted list)."""
        out = {}
        with h5py.File(self.path, "r") as f:
            for k in ("gt", "ms", "lms", "pan") if self.has_gt else ("ms", "lms", "pan"):
                a = np.asarray(f[k][idx], dtype=np.float32) / self.scale
                out[k] = torch.from_numpy(a if a.ndim == 4 else a[None])
        return out

    def batch(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Random (pan, lms, gt) batch, the same interface as ``PatchSampler.batch``."""
        idx = sorted(set(torch.randint(0, self.n, (n,), generator=generator).tolist()))
        d = self.load(idx)
        return d["pan"], d["lms"], d["gt"]
