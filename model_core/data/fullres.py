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

from ksdiff_qgis.engine.filters import upsample
from ksdiff_qgis.engine.sensors import Sensor

from .scenes import _blank_held, _block_any, _read, align_pan, mix_bands


class FullResSampler:
    """Random (pan, lms, ms) batches: PAN patches of ``patch`` pixels (a multiple of the ratio) with the
    MS pixels under them; values divided by the sensor scale; patches touching nodata are never drawn. A
    source's ``rows: [a, b]`` keeps patches (with their filter border) inside that fraction of the MS rows;
    ``ms_mix`` makes the sensor's bands from the source's (``scenes.mix_bands``)."""

    def __init__(self, root: Path, specs: list[dict], sensor: Sensor, patch: int = 64, stride: int = 16) -> None:
        self.ratio, self.patch = sensor.ratio, patch
        if patch % self.ratio:
            raise ValueError("the full-resolution patch must be a multiple of the ratio")
        self.scenes, self.index = [], []
        for spec in specs:
            base = Path(spec["root"]) if "root" in spec else root
            pan, pan_tf = _read(base / spec["pan"])
            ms, ms_tf = _read(base / spec["ms"])
            ms = mix_bands(ms, spec.get("ms_mix"))
            _blank_held(pan, spec["pan"], False)
            _blank_held(ms, spec["ms"], False)
            pan_al, ms = align_pan(pan, pan_tf, ms, ms_tf, self.ratio)
            lms = upsample(ms, self.ratio, pan_al.shape)
            bad = (ms == 0).any(0) | _block_any(pan_al == 0, self.ratio)
            s = sensor.scale
            self.scenes.append((pan_al / s, lms / s, ms / s))
            q, mp = self.ratio, patch // self.ratio
            h, w = bad.shape
            top, bottom = (round(f * h) for f in spec.get("rows", (0.0, 1.0)))   # e.g. the training rows only
            for y in range(max(1, top + 1), min(h, bottom) - mp - 1, max(1, stride // q)):   # filters' border
                for x in range(1, w - mp - 1, max(1, stride // q)):
                    if not bad[y - 1 : y + mp + 1, x - 1 : x + mp + 1].any():
                        self.index.append((len(self.scenes) - 1, y, x))
        if not self.index:
            raise ValueError("no valid full-resolution patch")

    def __len__(self) -> int:
        return len(self.index)

    def batch(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        ks = torch.randint(0, len(self.index), (n,), generator=generator).tolist()
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
