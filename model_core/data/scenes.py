"""Real scenes -> reduced-resolution training triples (PAN_d, LMS_d, GT) by Wald's protocol.

Two kinds of source:
* ``pair``: a real PAN + MS pair. The PAN is put on the PAN-resolution grid anchored at the MS origin
  (integer offsets cropped, sub-pixel offsets resampled with ``filters.upsample`` at ratio 1 -- Landsat 8
  is half a PAN pixel off), then PAN and MS are degraded by ``ratio`` (``filters.wald_degrade`` with the
  sensor's MTF gains); the original MS is the reference.
* ``simulated``: an MS image with no PAN (Sentinel-2). Its bands are matched to a reference sensor's
  statistics, a PAN is simulated as a weighted band sum plus a small blur (DATA.md's fit for
  WorldView-2), and the MS is Wald-degraded. Models trained on it say so in their card.

Held-apart test areas (``model_core.datacache``) are set to nodata *before* anything is filtered,
and patches whose filter support reaches nodata are never drawn, so training cannot see them; the
whole WorldView-2 test pair is refused outright unless a caller asks for test data explicitly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rasterio.transform import Affine

from ksdiff_qgis.engine.filters import MTF_TAPS, convolve_axis, grow_mask, mtf_sigma, upsample, wald_degrade
from ksdiff_qgis.engine.sensors import Sensor

from ..datacache import HELD_APART, validation_windows
from ..rasters import read


class NoPatchError(ValueError):
    """No patch of the asked size fits a source's valid (non-nodata) area: a caller may retry with smaller ones."""


@dataclass
class Triple:
    """Reduced-resolution sample on the GT grid, values divided by the sensor scale."""

    name: str
    pan: np.ndarray    # (H, W)
    lms: np.ndarray    # (C, H, W)
    gt: np.ndarray     # (C, H, W)
    invalid: np.ndarray  # (H, W) bool: nodata (or held-apart) anywhere in the filter support
    margin: int          # GT pixels a patch must stay away from invalid pixels
    info: dict = field(default_factory=dict)
    # training variants (domain randomisation): PANs of other sharpness / spectral response, LMS from
    # other MS MTFs; ``pan`` and ``lms`` above are the sensor's own (variant 0)
    pans: list = field(default_factory=list)
    lmss: list = field(default_factory=list)
    share: float | None = None   # fraction of training batches drawn from this triple (None: by positions)


def _read(path: Path) -> tuple[np.ndarray, Affine]:
    r = read(path)
    return r.data.astype(np.float32), r.transform


def _blank_held(arr: np.ndarray, rel: str, allow_held: bool) -> None:
    """Zero (nodata) the held-apart window of ``rel``; refuse a whole held-apart raster."""
    if allow_held or rel not in HELD_APART:
        return
    win = HELD_APART[rel]
    if win is None:
        raise ValueError(f"{rel} is a held-apart test raster: never train or tune on it")
    c, r, w, h = win
    # one extra pixel all round: immune to off-by-one conventions of cropped stacks (Sentinel-2 20 m)
    arr[..., max(0, r - 1) : r + h + 1, max(0, c - 1) : c + w + 1] = 0


def _blank_validation(arr: np.ndarray, rel: str, indices: list[int] | bool | None) -> None:
    """Zero (nodata) the validation windows ``indices`` of ``rel`` (``datacache.VALIDATION_WINDOWS``), one pixel
    wider all round like the held-apart window."""
    if not indices:
        return
    for c, r, w, h in validation_windows(rel, indices):
        arr[..., max(0, r - 1) : r + h + 1, max(0, c - 1) : c + w + 1] = 0


def align_pan(pan: np.ndarray, pan_tf, ms: np.ndarray, ms_tf, ratio: int) -> tuple[np.ndarray, np.ndarray]:
    """Resample PAN onto the grid of MS pixels (ratio x ratio PAN pixels each); crop both to the overlap."""
    off_r = (ms_tf.f - pan_tf.f) / pan_tf.e  # MS origin in PAN pixel units
    off_c = (ms_tf.c - pan_tf.c) / pan_tf.a
    # georeference rounding (WorldView-2: ~0.01 px) is not a real sub-pixel offset
    off_r = round(off_r) if abs(off_r - round(off_r)) < 0.05 else off_r
    off_c = round(off_c) if abs(off_c - round(off_c)) < 0.05 else off_c
    h, w = pan.shape[-2:]
    k0r, k0c = max(0, math.ceil(-off_r / ratio - 1e-6)), max(0, math.ceil(-off_c / ratio - 1e-6))
    k1r = min(ms.shape[-2], math.floor((h - off_r) / ratio + 1e-6))
    k1c = min(ms.shape[-1], math.floor((w - off_c) / ratio + 1e-6))
    shape = ((k1r - k0r) * ratio, (k1c - k0c) * ratio)
    origin = (-(off_r + k0r * ratio), -(off_c + k0c * ratio))
    p = pan[0]
    if abs(origin[0] - round(origin[0])) < 1e-6 and abs(origin[1] - round(origin[1])) < 1e-6:
        r0, c0 = -int(round(origin[0])), -int(round(origin[1]))  # integer offset: exact crop
        out = p[r0 : r0 + shape[0], c0 : c0 + shape[1]].copy()
    else:
        out = shifted_pan(p, shape, origin)
    return out, ms[:, k0r:k1r, k0c:k1c]


def shifted_pan(pan: np.ndarray, shape: tuple[int, int], origin: tuple[float, float]) -> np.ndarray:
    """``pan`` (nodata 0) resampled (cubic, ``upsample`` at ratio 1 with ``origin``) onto ``shape``; pixels the
    interpolator takes from nodata become nodata."""
    out = upsample(pan, 1.0, shape, origin)
    out[np.abs(upsample((pan == 0).astype(np.float32), 1.0, shape, origin)) > 1e-3] = 0
    return out


def pan_ms_offset(pan: np.ndarray, ms: np.ndarray, bad: np.ndarray, ratio: int) -> tuple[float, float] | None:
    """(rows, cols) in MS pixels by which a pair's PAN content lies shifted against its MS (``align_pan``'s output;
    the PAN pixel that sees what MS pixel x sees is at x + offset), measured as the plugin measures it
    (``engine.coregistration``) on the largest all-data rectangle; None when it holds too little texture."""
    from ksdiff_qgis.engine.classical import scene_stats
    from ksdiff_qgis.engine.coregistration import estimate_offset
    from ksdiff_qgis.engine.learned import largest_rectangle

    r, c, rh, rw = largest_rectangle(~bad)
    p = block_mean(pan, ratio)[r:r + rh, c:c + rw].astype(np.float64)
    m = ms[:, r:r + rh, c:c + rw].astype(np.float64)
    alpha = scene_stats(p, m, np.ones(p.shape, dtype=bool)).gsa_alpha   # the intensity that best predicts the PAN
    return estimate_offset([p], [m], alpha, [(0.0, 0.0)])


def coregistered_pan(pan: np.ndarray, ms: np.ndarray, ratio: int) -> np.ndarray:
    """The PAN (``align_pan``'s output, nodata 0) moved onto its MS by ``pan_ms_offset`` (cubic; pixels the
    interpolator takes from nodata become nodata). For Wald triples the PAN moves, not the MS: the MS is the
    reference, and an interpolated reference would teach a blur, while the PAN's interpolation blur is far below
    the MTF degradation that follows."""
    bad = (ms == 0).any(0) | _block_any(pan == 0, ratio)
    offset = pan_ms_offset(pan, ms, bad, ratio)
    if offset is None:
        return pan
    return shifted_pan(pan, pan.shape, (-offset[0] * ratio, -offset[1] * ratio))   # moved[x] = pan[x + offset]


# named band mixes (``ms_mix: <name>`` in a config): one place for a matrix several configs and tools use
BAND_MIXES: dict[str, list[list[float]]] = {
    # WorldView-2's B, G, R, NIR spread over WorldView-3's eight bands: coastal 0.9 B, blue B, green G,
    # yellow (G+R)/2, red R, red edge (R+NIR)/2, NIR1 NIR, NIR2 0.95 NIR
    "bgrn_to_wv3": [[0.9, 0, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0.5, 0.5, 0], [0, 0, 1, 0], [0, 0, 0.5, 0.5],
                    [0, 0, 0, 1], [0, 0, 0, 0.95]],
}


def mix_bands(ms: np.ndarray, mix: list | str | None) -> np.ndarray:
    """``mix @ ms`` over bands: another sensor's bands made from a real pair's (a real PAN for a sensor
    with no reachable imagery, e.g. WorldView-2's B, G, R, NIR spread over WorldView-3's eight bands);
    ``mix`` is a matrix or a name in ``BAND_MIXES``. No offset, so nodata (0) stays 0."""
    if mix is None:
        return ms
    m = np.asarray(BAND_MIXES[mix] if isinstance(mix, str) else mix, dtype=np.float32)
    if m.ndim != 2 or m.shape[1] != ms.shape[0] or (m < 0).any():
        raise ValueError(f"ms_mix must be a non-negative (bands x {ms.shape[0]}) matrix, got shape {m.shape}")
    return np.einsum("oc,chw->ohw", m, ms).astype(np.float32)


def read_source(root: Path, pan_rel: str, ms_rel: str, sensor: Sensor, allow_held: bool = False,
                value_gain: float = 1.0, match: list[str] | None = None, match_pan: list[str] | None = None,
                ms_mix: list | str | None = None) -> tuple[np.ndarray, Affine, np.ndarray, Affine]:
    """(PAN, its transform, MS, its transform) of a real pair as every data source prepares it: bands mixed
    (``mix_bands``), values rescaled, the held-apart window blanked, radiometry matched to reference rasters
    (``match_statistics``)."""
    pan, pan_tf = _read(root / pan_rel)
    ms, ms_tf = _read(root / ms_rel)
    ms = mix_bands(ms, ms_mix)
    pan, ms = pan * value_gain, ms * value_gain
    _blank_held(pan, pan_rel, allow_held)
    _blank_held(ms, ms_rel, allow_held)
    if match:
        ms = match_statistics(ms, *band_stats(root, match), sensor.scale)
    if match_pan:
        pan = match_statistics(pan, *band_stats(root, match_pan), sensor.scale)
    return pan, pan_tf, ms, ms_tf


def _block_any(mask: np.ndarray, ratio: int) -> np.ndarray:
    h, w = mask.shape[0] // ratio, mask.shape[1] // ratio
    return mask[: h * ratio, : w * ratio].reshape(h, ratio, w, ratio).any(axis=(1, 3))


def wald_margin(sensor: Sensor, ratio: int) -> int:
    """GT pixels of filter support: 3 sigma of the MS and PAN MTF Gaussians plus the cubic upsampler."""
    s_ms = max(mtf_sigma(g, ratio) for g in sensor.mtf_ms)
    s_pan = mtf_sigma(sensor.mtf_pan, ratio) / ratio
    return math.ceil(3 * s_ms) + math.ceil(3 * s_pan) + 2 * ratio + 1


def block_mean(img: np.ndarray, ratio: int) -> np.ndarray:
    """Plain ratio x ratio block average (the sharpest possible 'degradation': no MTF blur)."""
    h, w = img.shape[-2] // ratio, img.shape[-1] // ratio
    a = img[..., : h * ratio, : w * ratio]
    return a.reshape(a.shape[:-2] + (h, ratio, w, ratio)).mean(axis=(-3, -1)).astype(np.float32)


def degrade_variant(img: np.ndarray, gain, ratio: int) -> np.ndarray:
    """Wald degradation with MTF ``gain`` (a number or one per band), or a block average for ``"box"``."""
    return block_mean(img, ratio) if gain == "box" else wald_degrade(img, gain, ratio)


def pair_triple(root: Path, pan_rel: str, ms_rel: str, sensor: Sensor, ratio: int | None = None,
                rows: tuple[float, float] = (0.0, 1.0), allow_held: bool = False, value_gain: float = 1.0,
                pan_gains: list | None = None, ms_gains: list | None = None, pan_ratio: int | None = None,
                match: list[str] | None = None, match_pan: list[str] | None = None,
                ms_mix: list | str | None = None, coregister: bool = False) -> Triple:
    """Wald triple from a real PAN+MS pair; ``rows`` keeps a fraction band of MS rows (split inside a scene);
    ``value_gain`` rescales raw values (e.g. 0.5 to present 11-bit data as a 10-bit sensor's).
    ``pan_gains`` / ``ms_gains``: further degradations (MTF gains or "box") kept as training variants.
    ``pan_ratio``: the pair's own PAN/MS resolution ratio when it is not ``ratio`` (Landsat 8's real PAN,
    ratio 2, in a ratio-4 triple: the PAN is degraded by 2 onto the MS grid, the MS by 4).
    ``match`` / ``match_pan``: reference MS / PAN rasters whose per-band 1st percentile and mean the
    pair's MS / PAN are mapped to (another product's radiometry, e.g. Landsat's haze offset removed).
    ``ms_mix``: a (sensor bands x pair bands) matrix, or its name in ``BAND_MIXES``, making the sensor's bands
    from the pair's (``mix_bands``). ``coregister``: the PAN moved onto the MS by the offset the plugin measures
    (``coregistered_pan``), before the split into rows."""
    ratio = ratio or sensor.ratio
    pan_ratio = pan_ratio or ratio
    pan, pan_tf, ms, ms_tf = read_source(root, pan_rel, ms_rel, sensor, allow_held, value_gain, match, match_pan,
                                         ms_mix)
    pan_al, ms = align_pan(pan, pan_tf, ms, ms_tf, pan_ratio)
    if coregister:
        pan_al = coregistered_pan(pan_al, ms, pan_ratio)
    h = ms.shape[1]
    r0, r1 = int(round(rows[0] * h)), int(round(rows[1] * h))
    ms[:, :r0], ms[:, r1:] = 0, 0  # rows of the other split are nodata for this one
    invalid = (ms == 0).any(0) | _block_any(pan_al == 0, pan_ratio)
    pan_d = wald_degrade(pan_al, sensor.mtf_pan, pan_ratio)
    ms_d = wald_degrade(ms, sensor.mtf_ms, ratio)
    if pan_ratio != ratio:  # the MS decimated by ``ratio``: keep the whole multiples on both grids
        hh, ww = ms_d.shape[-2] * ratio, ms_d.shape[-1] * ratio
        ms, pan_d, invalid = ms[:, :hh, :ww], pan_d[:hh, :ww], invalid[:hh, :ww]
        pan_al = pan_al[: hh * pan_ratio, : ww * pan_ratio]
    lms = upsample(ms_d, ratio, ms.shape[-2:])
    s = sensor.scale
    pans = [pan_d / s] + [degrade_variant(pan_al, g, pan_ratio) / s for g in pan_gains or []]
    lmss = [lms / s] + [upsample(degrade_variant(ms, g, ratio), ratio, ms.shape[-2:]) / s for g in ms_gains or []]
    return Triple(f"{pan_rel}+{ms_rel}", pan_d / s, lms / s, ms / s, invalid, wald_margin(sensor, ratio),
                  {"kind": "pair", "pan": pan_rel, "ms": ms_rel, "rows": list(rows)}, pans, lmss)


def gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0:
        return img
    r = max(1, math.ceil(3 * sigma))
    x = np.arange(-r, r + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    k /= k.sum()
    return convolve_axis(convolve_axis(img, k, -2), k, -1)


def band_stats(root: Path, refs: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per-band 1st percentile and mean over the valid pixels of reference MS rasters."""
    vals = []
    for rel in refs:
        ms, _ = _read(root / rel)
        ok = (ms > 0).all(0)
        vals.append(ms[:, ok])
    v = np.concatenate(vals, axis=1)
    return np.percentile(v, 1, axis=1), v.mean(axis=1)


def match_statistics(img: np.ndarray, lo_t: np.ndarray, mean_t: np.ndarray, top: float) -> np.ndarray:
    """``img`` (C, H, W) with each band's 1st percentile and mean (over pixels valid in every band) mapped
    linearly to ``lo_t`` / ``mean_t``, clipped to [1, ``top``]; nodata (0) stays 0. A reference with
    another band count gives every band the reference's average statistics."""
    if len(lo_t) != img.shape[0]:
        lo_t, mean_t = np.full(img.shape[0], lo_t.mean()), np.full(img.shape[0], mean_t.mean())
    bad = (img == 0).any(0)
    v = img[:, ~bad]
    lo_s, mean_s = np.percentile(v, 1, axis=1), v.mean(axis=1)
    gain = (mean_t - lo_t) / (mean_s - lo_s)
    out = np.clip((img - lo_s[:, None, None]) * gain[:, None, None] + lo_t[:, None, None], 1.0, top)
    out[:, bad] = 0
    return out.astype(np.float32)


def simulated_triple(root: Path, ms_rel: str, sensor: Sensor, pan_weights: list[float], pan_offset: float = 0.0,
                     pan_blur: float = 0.8, match_refs: list[str] | None = None, crop_first: bool = False,
                     rows: tuple[float, float] = (0.0, 1.0), ratio: int | None = None,
                     allow_held: bool = False, value_gain: float = 1.0, pan_variants: list | None = None,
                     ms_gains: list | None = None, prereduce: int = 1,
                     exclude_validation: list[int] | bool | None = None) -> Triple:
    """Wald triple from an MS image alone, with a simulated PAN (weighted band sum, blurred).

    ``pan_variants``: further PANs as ``{weights, blur}`` (other spectral responses and sharpness);
    ``ms_gains``: further MS degradations (MTF gains or "box"); both kept as training variants.
    ``prereduce``: the simulated product is first Wald-degraded by this factor (PANs with the sensor's PAN
    MTF, MS with its MS MTF), so the reference is itself a degraded product: the scale at which the
    plugin's self-check scores a network (one more reduction of the user's scene).
    ``exclude_validation``: indices of the raster's validation windows left out (``True``: all)."""
    ratio = ratio or sensor.ratio
    ms, _ = _read(root / ms_rel)
    _blank_held(ms, ms_rel, allow_held)
    _blank_validation(ms, ms_rel, exclude_validation)
    if crop_first:  # Sentinel-2 20 m stack: first row/column only partly covered
        ms = ms[:, 1:, 1:]
    bad = (ms == 0).any(0)
    if match_refs:
        ms = match_statistics(ms, *band_stats(root, match_refs), sensor.scale)
    ms = ms * value_gain
    ms[:, bad] = 0
    h = ms.shape[1]
    r0, r1 = int(round(rows[0] * h)), int(round(rows[1] * h))
    ms[:, :r0], ms[:, r1:] = 0, 0
    bad = (ms == 0).any(0)
    w = np.asarray(pan_weights, dtype=np.float32)[:, None, None]
    full_pans = [np.clip(gaussian_blur((w * ms).sum(0) + pan_offset, pan_blur), 1.0, sensor.scale)]
    blur_max = pan_blur
    for v in pan_variants or []:
        wv = np.asarray(v["weights"], dtype=np.float32)[:, None, None]
        full_pans.append(np.clip(gaussian_blur((wv * ms).sum(0) + v.get("offset", pan_offset), v.get("blur", 0.0)),
                                 1.0, None))
        blur_max = max(blur_max, v.get("blur", 0.0))
    if prereduce > 1:
        f = int(prereduce)
        # a reduced pixel is bad when nodata lies anywhere under its MTF filter's support
        bad = _block_any(grow_mask(bad, MTF_TAPS // 2 + f), f)
        ms = wald_degrade(ms, sensor.mtf_ms, f)
        bad = bad[: ms.shape[1], : ms.shape[2]]
        ms[:, bad] = 0
        full_pans = [wald_degrade(p, sensor.mtf_pan, f) for p in full_pans]
        blur_max = blur_max / f
    ms_d = wald_degrade(ms, sensor.mtf_ms, ratio)
    hh, ww = ms_d.shape[-2] * ratio, ms_d.shape[-1] * ratio
    lms = upsample(ms_d, ratio, (hh, ww))
    s = sensor.scale
    pans = [p[:hh, :ww] / s for p in full_pans]
    lmss = [lms / s] + [upsample(degrade_variant(ms, g, ratio), ratio, (hh, ww)) / s for g in ms_gains or []]
    info = {"kind": "simulated", "ms": ms_rel, "rows": list(rows), "pan_weights": list(map(float, pan_weights))}
    if exclude_validation:
        info["exclude_validation"] = exclude_validation
    if prereduce > 1:
        info["prereduce"] = int(prereduce)
    name = f"{ms_rel} (simulated PAN)" + (f", reduced by {prereduce}" if prereduce > 1 else "")
    return Triple(name, pans[0], lms / s, ms[:, :hh, :ww] / s, bad[:hh, :ww],
                  wald_margin(sensor, ratio) + math.ceil(3 * blur_max), info, pans, lmss)


def full_resolution_pair(root: Path, pan_rel: str, ms_rel: str, sensor: Sensor, allow_held: bool = True,
                         value_gain: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(PAN aligned to the MS grid, MS, LMS) for full-resolution scoring, raw values (not normalised)."""
    pan, pan_tf = _read(root / pan_rel)
    ms, ms_tf = _read(root / ms_rel)
    pan, ms = pan * value_gain, ms * value_gain
    _blank_held(pan, pan_rel, allow_held)
    _blank_held(ms, ms_rel, allow_held)
    pan_al, ms = align_pan(pan, pan_tf, ms, ms_tf, sensor.ratio)
    lms = upsample(ms, sensor.ratio, pan_al.shape)
    return pan_al, ms, lms


def build_triple(root: Path, spec: dict, sensor: Sensor, allow_held: bool = False) -> Triple:
    """A triple from a config data-source entry (``kind: pair`` or ``kind: simulated``)."""
    rows = tuple(spec.get("rows", (0.0, 1.0)))
    base = Path(spec["root"]) if "root" in spec else root
    gain = float(spec.get("value_gain", 1.0))
    if spec["kind"] == "pair":
        t = pair_triple(base, spec["pan"], spec["ms"], sensor, rows=rows, allow_held=allow_held, value_gain=gain,
                        pan_gains=spec.get("pan_gains"), ms_gains=spec.get("ms_gains"),
                        pan_ratio=spec.get("pan_ratio"), match=spec.get("match"), match_pan=spec.get("match_pan"),
                        ms_mix=spec.get("ms_mix"), coregister=bool(spec.get("coregister")))
    elif spec["kind"] == "simulated":
        t = simulated_triple(base, spec["ms"], sensor, spec["pan_weights"], spec.get("pan_offset", 0.0),
                             spec.get("pan_blur", 0.8), spec.get("match"), spec.get("crop_first", False),
                             rows=rows, allow_held=allow_held, value_gain=gain,
                             pan_variants=spec.get("pan_variants"), ms_gains=spec.get("ms_gains"),
                             prereduce=int(spec.get("prereduce", 1)),
                             exclude_validation=spec.get("exclude_validation"))
    else:
        raise ValueError(f"unknown data source kind {spec['kind']!r}")
    t.share = spec.get("share")
    return t
