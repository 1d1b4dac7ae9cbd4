"""The bench's test cases on `make data`'s real imagery: reduced resolution (Wald), full resolution, speed scenes."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ksdiff_qgis.engine.filters import convolve_axis, wald_degrade
from ksdiff_qgis.engine.sensors import get_sensor
from model_core.datacache import HELD_APART
from model_core.rasters import crop, read, write_geotiff
from model_core.wald import make_reduced_case

S2_PAN_WEIGHTS = (0.177, 0.194, 0.416, 0.182)
S2_PAN_OFFSET = -4.8
S2_PAN_BLUR = 0.8


def needed_files(dd: Path) -> list[Path]:
    """The cached rasters the bench cannot run without."""
    return [dd / "wv2" / "pair3_pan.tif", dd / "landsat8" / "pan.tif", dd / "sentinel2" / "s2_10m.tif"]


def wv2_valid_ms_window(ms_path: str, ratio: int) -> tuple[int, int, int, int]:
    """Largest block of MS rows without nodata (pair 3: rows 60-149), trimmed to the ratio."""
    ms = read(ms_path).data
    good_rows = np.where(np.all(ms != 0, axis=(0, 2)))[0]
    r0, r1 = int(good_rows.min()), int(good_rows.max()) + 1
    w, h = ms.shape[2] // ratio * ratio, (r1 - r0) // ratio * ratio
    return (0, r0, w, h)


def wv2_stats(dd: Path) -> tuple[np.ndarray, np.ndarray]:
    """Per-band 1st percentile and mean of the WV2 training pairs' MS (1 and 2)."""
    lo, mean = [], []
    for i in (1, 2):
        ms = read(dd / "wv2" / f"pair{i}_ms.tif").data
        valid = np.all(ms != 0, axis=0)
        lo.append([np.percentile(b[valid], 1) for b in ms])
        mean.append([b[valid].mean() for b in ms])
    return np.mean(lo, axis=0), np.mean(mean, axis=0)


def build_s2_case(dd: Path, tmp: Path) -> tuple[str, str, str, list[str]]:
    """Sentinel-2 held-apart 10 m crop -> (PAN, MS, REF) paths of a reduced-resolution case (WV2 sensor)."""
    sens = get_sensor("wv2")
    win = HELD_APART["sentinel2/s2_10m.tif"]
    whole = read(dd / "sentinel2" / "s2_10m.tif").data
    crop_ = read(dd / "sentinel2" / "s2_10m.tif", win)
    s2, gt, srs = crop_.data.astype(np.float64), crop_.gt, crop_.crs
    wlo, wmean = wv2_stats(dd)
    # one linear map per band from whole-scene statistics (the crop itself is mostly water)
    slo = np.array([np.percentile(b, 1) for b in whole])
    smean = whole.reshape(4, -1).mean(axis=1)
    gains_b = (wmean - wlo) / (smean - slo)
    del whole
    ref = np.empty_like(s2)
    for b in range(4):
        ref[b] = (s2[b] - slo[b]) * gains_b[b] + wlo[b]
    ref = np.clip(np.round(ref), 1, 2047)
    pan = np.tensordot(np.asarray(S2_PAN_WEIGHTS), ref, axes=1) + S2_PAN_OFFSET
    x = np.arange(-3, 4, dtype=np.float64)
    k = np.exp(-0.5 * (x / S2_PAN_BLUR) ** 2)
    pan = convolve_axis(convolve_axis(pan.astype(np.float32), k / k.sum(), 0), k / k.sum(), 1)
    ms_lr = wald_degrade(ref.astype(np.float32), sens.mtf_ms, sens.ratio)
    lr_gt = (gt[0], gt[1] * 4, 0.0, gt[3], 0.0, gt[5] * 4)
    names = ["B02", "B03", "B04", "B08"]
    p = write_geotiff(str(tmp / "s2_pan.tif"), np.clip(np.round(pan), 1, 2047).astype(np.uint16)[None], gt, srs, 0,
                      ["PAN (simulated)"])
    m = write_geotiff(str(tmp / "s2_ms.tif"), np.clip(np.round(ms_lr), 1, 2047).astype(np.uint16), lr_gt, srs, 0, names)
    r = write_geotiff(str(tmp / "s2_ref.tif"), ref.astype(np.uint16), gt, srs, 0, names)
    gains = ", ".join(f"{g:.2f}" for g in gains_b)
    notes = [f"S2 bands mapped linearly so that the whole S2 scene's 1st percentile and mean match WV2 pairs 1-2 "
             f"(gains {gains}); PAN simulated as "
             f"{' + '.join(f'{w} {n}' for w, n in zip(S2_PAN_WEIGHTS, 'BGRN'))} {S2_PAN_OFFSET} DN, "
             f"Gaussian blur sigma {S2_PAN_BLUR} px; MS degraded with the WV2 MTF gains, ratio 4"]
    return p, m, r, notes


def reduced_scenes(dd: Path, tmp: Path) -> list[dict]:
    out = []
    wv2_ms = dd / "wv2" / "pair3_ms.tif"
    win = wv2_valid_ms_window(str(wv2_ms), 4)
    case = make_reduced_case(str(dd / "wv2" / "pair3_pan.tif"), str(wv2_ms), str(tmp), "wv2", window=win,
                             prefix="wv2p3")
    out.append(dict(name="wv2_pair3", sensor="wv2", pan=case.pan, ms=case.ms, ref=case.ref, ratio=4,
                    desc=f"WorldView-2 pair 3, valid MS window {case.ms_window} (col, row, w, h), ratio 4",
                    notes=case.notes))
    # the same scene as delivered: its MS is 39 % nodata (a strip along the top), so tiles hold filled holes
    case = make_reduced_case(str(dd / "wv2" / "pair3_pan.tif"), str(wv2_ms), str(tmp), "wv2", prefix="wv2p3nd")
    out.append(dict(name="wv2_pair3_nodata", sensor="wv2", pan=case.pan, ms=case.ms, ref=case.ref, ratio=4,
                    desc="WorldView-2 pair 3 as delivered (the whole MS, 39 % of it a nodata strip), ratio 4",
                    notes=case.notes))
    l8win = HELD_APART["landsat8/ms.tif"]
    case = make_reduced_case(str(dd / "landsat8" / "pan.tif"), str(dd / "landsat8" / "ms.tif"), str(tmp), "landsat8",
                             window=l8win, prefix="l8")
    out.append(dict(name="landsat8", sensor="landsat8", pan=case.pan, ms=case.ms, ref=case.ref, ratio=2,
                    desc=f"Landsat 8 held-apart crop, MS window {case.ms_window}, ratio 2", notes=case.notes))
    p, m, r, notes = build_s2_case(dd, tmp)
    out.append(dict(name="sentinel2_simpan", sensor="wv2", pan=p, ms=m, ref=r, ratio=4,
                    desc=f"Sentinel-2 held-apart 10 m crop {HELD_APART['sentinel2/s2_10m.tif']}, simulated PAN, "
                         "ratio 4",
                    notes=notes))
    return out


def full_scenes(dd: Path, tmp: Path) -> list[dict]:
    out = []
    win = wv2_valid_ms_window(str(dd / "wv2" / "pair3_ms.tif"), 4)
    pan_win = (win[0] * 4, win[1] * 4, win[2] * 4, win[3] * 4)
    out.append(dict(name="wv2_pair3", sensor="wv2",
                    pan=crop(dd / "wv2" / "pair3_pan.tif", str(tmp / "wv2p3_fr_pan.tif"), pan_win),
                    ms=crop(dd / "wv2" / "pair3_ms.tif", str(tmp / "wv2p3_fr_ms.tif"), win),
                    desc=f"WorldView-2 pair 3, PAN window {pan_win}, MS window {win}"))
    out.append(dict(name="landsat8", sensor="landsat8",
                    pan=crop(dd / "landsat8" / "pan.tif", str(tmp / "l8_fr_pan.tif"), HELD_APART["landsat8/pan.tif"]),
                    ms=crop(dd / "landsat8" / "ms.tif", str(tmp / "l8_fr_ms.tif"), HELD_APART["landsat8/ms.tif"]),
                    desc=f"Landsat 8 held-apart crop, PAN window {HELD_APART['landsat8/pan.tif']}, "
                         f"MS window {HELD_APART['landsat8/ms.tif']}"))
    return out


def mirrored_scene(dd: Path, tmp: Path, size: int) -> tuple[str, str]:
    """A size x size PAN (+ MS) scene mirrored from real WorldView-2 pair 1 (training pair)."""
    pan_r, ms_r = read(dd / "wv2" / "pair1_pan.tif"), read(dd / "wv2" / "pair1_ms.tif")
    pan, pgt, srs = pan_r.data, pan_r.gt, pan_r.crs
    ms, mgt = ms_r.data, ms_r.gt
    ph, pw = pan.shape[1:]
    P = np.pad(pan[0], ((0, max(0, size - ph)), (0, max(0, size - pw))), mode="symmetric")[:size, :size]
    m = size // 4
    Ms = np.pad(ms, ((0, 0), (0, max(0, m - ms.shape[1])), (0, max(0, m - ms.shape[2]))), mode="symmetric")[:, :m, :m]
    p = write_geotiff(str(tmp / f"speed{size}_pan.tif"), P[None], pgt, srs, 0, ["PAN"])
    q = write_geotiff(str(tmp / f"speed{size}_ms.tif"), Ms, mgt, srs, 0, ["Blue", "Green", "Red", "NIR"])
    return p, q
