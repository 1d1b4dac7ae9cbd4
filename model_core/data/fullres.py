"""Native-resolution patches (real PAN, real MS, LMS) for the reference-free full-resolution stage.

Networks trained only by Wald's protocol learn to amplify a degraded PAN and over-sharpen a real one
(METHOD.md, "scale shift"). The full-resolution stage (Z-PNN / lambda-PNN, Ciotola et al.) fine-tunes on
the real pairs at their own scale, where no reference exists: its losses compare the fused patch with
the MS (spectral consistency) and the PAN (spatial consistency), see ``model_core.losses``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ksdiff_qgis.engine.filters import MTF_TAPS, grow_mask, upsample, wald_degrade
from ksdiff_qgis.engine.sensors import Sensor

from .scenes import NoPatchError, _block_any, align_pan, pan_ms_offset, read_source


def coregistered_ms(pan: np.ndarray, ms: np.ndarray, bad: np.ndarray, ratio: int) -> tuple[np.ndarray, np.ndarray]:
    """(MS shifted onto the PAN, its bad pixels): the offset ``scenes.pan_ms_offset`` measures, the MS moved by it
    (cubic); bad pixels grow by the interpolator's reach."""
    offset = pan_ms_offset(pan, ms, bad, ratio)
    if offset is None:
        return ms, bad
    h, w = ms.shape[1:]
    moved = upsample(ms.astype(np.float32), 1, (h, w), offset)   # the content at x now at x + offset
    return moved, grow_mask(bad, 3)


class FullResSampler:
    """Random (pan, lms, ms) batches: PAN patches of ``patch`` pixels (a multiple of the ratio) with the
    MS pixels under them; values divided by the sensor scale; patches touching nodata are never drawn. A
    source's ``rows: [a, b]`` keeps patches (with their filter border) inside that fraction of the MS rows;
    ``ms_mix``, ``match`` / ``match_pan`` as for Wald pairs (``scenes.read_source``); ``pan_ratio``: the source's
    own PAN/MS ratio when it divides the sensor's (Landsat 8's 2 in a ratio-4 stage: the real PAN kept, the MS
    Wald-degraded by the rest, 2, with the sensor's MTF); ``share``: the fraction of patches drawn from the source
    (when every source gives one; else patches are drawn uniformly over all positions)."""

    def __init__(self, root: Path, specs: list[dict], sensor: Sensor, patch: int = 64, stride: int = 16) -> None:
        self.ratio, self.patch = sensor.ratio, patch
        if patch % self.ratio:
            raise ValueError("the full-resolution patch must be a multiple of the ratio")
        self.scenes, self.index = [], []
        shares = [spec.get("share") for spec in specs]
        self.shares = torch.tensor(shares, dtype=torch.float64) if all(x is not None for x in shares) else None
        self.by_scene: list[list[int]] = []
        for spec in specs:
            base = Path(spec["root"]) if "root" in spec else root
            pan, pan_tf, ms, ms_tf = read_source(base, spec["pan"], spec["ms"], sensor, match=spec.get("match"),
                                                 match_pan=spec.get("match_pan"), ms_mix=spec.get("ms_mix"))
            pan_ratio = int(spec.get("pan_ratio", self.ratio))
            if self.ratio % pan_ratio:
                raise ValueError(f"pan_ratio {pan_ratio} does not divide the sensor's ratio {self.ratio}")
            pan_al, ms = align_pan(pan, pan_tf, ms, ms_tf, pan_ratio)
            bad = (ms == 0).any(0) | _block_any(pan_al == 0, pan_ratio)
            if spec.get("coregister"):   # the MS moved onto the PAN by the offset the plugin measures
                ms, bad = coregistered_ms(pan_al, ms, bad, pan_ratio)
            if pan_ratio != self.ratio:
                f = self.ratio // pan_ratio
                ms = wald_degrade(ms, sensor.mtf_ms, f)
                # a coarse pixel is bad when nodata lies anywhere under its MTF filter's support
                bad = _block_any(grow_mask(bad, MTF_TAPS // 2 + f), f)[: ms.shape[1], : ms.shape[2]]
                pan_al = pan_al[: ms.shape[1] * self.ratio, : ms.shape[2] * self.ratio]
            lms = upsample(ms, self.ratio, pan_al.shape)
            s = sensor.scale
            self.scenes.append((pan_al / s, lms / s, ms / s))
            q, mp = self.ratio, patch // self.ratio
            h, w = bad.shape
            top, bottom = (round(f * h) for f in spec.get("rows", (0.0, 1.0)))   # e.g. the training rows only
            for y in range(max(1, top + 1), min(h, bottom) - mp - 1, max(1, stride // q)):   # filters' border
                for x in range(1, w - mp - 1, max(1, stride // q)):
                    if not bad[y - 1 : y + mp + 1, x - 1 : x + mp + 1].any():
                        self.index.append((len(self.scenes) - 1, y, x))
            self.by_scene.append([k for k, (i, _, _) in enumerate(self.index) if i == len(self.scenes) - 1])
        if not self.index:
            raise NoPatchError("no valid full-resolution patch")
        if self.shares is not None and not all(self.by_scene):
            raise NoPatchError("no valid full-resolution patch in a source with a share")

    def __len__(self) -> int:
        return len(self.index)

    def draw(self, n: int, generator: torch.Generator) -> list[int]:
        """``n`` patch numbers (into ``index``): by the sources' shares when they have them, else uniformly."""
        if self.shares is None:
            return torch.randint(0, len(self.index), (n,), generator=generator).tolist()
        src = torch.multinomial(self.shares, n, replacement=True, generator=generator).tolist()
        return [self.by_scene[i][int(torch.randint(0, len(self.by_scene[i]), (1,), generator=generator))]
                for i in src]

    def batch(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        ks = self.draw(n, generator)
        augs = torch.randint(0, 4, (n,), generator=generator).tolist()
        q, mp, p = self.ratio, self.patch // self.ratio, self.patch
        out: list[list[np.ndarray]] = [[], [], []]
        for k, a in zip(ks, augs):
            i, y, x = self.index[k]
            pan, lms, ms = self.scenes[i]
            crops = (pan[None, y * q : y * q + p, x * q : x * q + p], lms[:, y * q : y * q + p, x * q : x * q + p],
                     ms[:, y : y + mp, x : x + mp])
            for lst, arr in zip(out, crops):
                # flips only: a rotation would move the MS sampling phase against the PAN for even ratios
                arr = arr[:, ::-1] if a & 1 else arr
                arr = arr[:, :, ::-1] if a & 2 else arr
                lst.append(np.ascontiguousarray(arr, dtype=np.float32))
        return tuple(torch.from_numpy(np.stack(x)) for x in out)  # type: ignore[return-value]


