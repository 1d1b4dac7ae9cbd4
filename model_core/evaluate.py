"""Score a checkpoint or an ONNX file on reduced-resolution (Wald) and full-resolution test cases.

Indices come from the shared ``ksdiff_qgis.engine.metrics`` (one implementation for the whole
project). Test cases are the config's ``test`` section: by default the held-apart areas of
``model_core.datacache`` (WorldView-2 pair 3; the Landsat 8 and Sentinel-2 corners).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ksdiff_qgis.engine.sensors import Sensor

from .config import data_root, sensor_spec
from .data.scenes import Triple, _block_any, build_triple, full_resolution_pair
from .nets import size_multiple

Runner = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (pan 1x1xHxW, lms 1xCxHxW) -> hrms, normalised


def torch_runner(model: torch.nn.Module) -> tuple[Runner, int]:
    model.eval()

    def run(pan: np.ndarray, lms: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(pan), torch.from_numpy(lms)).numpy()
    return run, size_multiple(model)


def onnx_runner(path: str | Path, threads: int = 2) -> tuple[Runner, int, dict]:
    """The ONNX model's whole graph on CPU, loaded as the plugin loads it: its card beside it (fields, sha256), the
    card inside it, its tensors and a probe tile checked (``engine.model_card.load_card``, ``learned.check_graph``);
    InputError says what the plugin would refuse."""
    from ksdiff_qgis.engine import runtime
    from ksdiff_qgis.engine.learned import check_graph
    from ksdiff_qgis.engine.model_card import load_card

    card = load_card(path)
    session = runtime.get_session(str(card.path), "cpu", threads)
    check_graph(card, session)
    (pan_name, lms_name), out_name = card.input_names, card.output_name

    def run(pan: np.ndarray, lms: np.ndarray) -> np.ndarray:
        return session.session.run([out_name], {pan_name: pan, lms_name: lms})[0]
    return run, card.size_multiple, card.data


def fuse(run: Runner, mult: int, pan: np.ndarray, lms: np.ndarray) -> np.ndarray:
    """Fuse a whole (normalised) image: reflect-pad to the size multiple, run, crop."""
    h, w = pan.shape[-2:]
    ph, pw = (-h) % mult, (-w) % mult
    p = np.pad(pan, ((0, ph), (0, pw)), mode="reflect")[None, None].astype(np.float32)
    l = np.pad(lms, ((0, 0), (0, ph), (0, pw)), mode="reflect")[None].astype(np.float32)
    return run(p, l)[0, :, :h, :w]


def _good_run(bad: np.ndarray) -> tuple[int, int]:
    """Longest run of False in a 1-D mask."""
    best, start = (0, 0), None
    for i, b in enumerate(list(bad) + [True]):
        if not b and start is None:
            start = i
        if b and start is not None:
            if i - start > best[1] - best[0]:
                best = (start, i)
            start = None
    return best


def valid_box(invalid: np.ndarray, margin: int) -> tuple[slice, slice]:
    """Largest row band, then column band, whose pixels are at least ``margin`` from any invalid one."""
    def dil(v):
        k = np.convolve(v.astype(float), np.ones(2 * margin + 1), mode="same")
        return k > 0
    r0, r1 = _good_run(dil(invalid.any(1)))
    c0, c1 = _good_run(dil(invalid[r0:r1].any(0)))
    return slice(r0, r1), slice(c0, c1)


def reduced_case(cfg: dict[str, Any], sensor: Sensor) -> Triple:
    spec = cfg["test"]["reduced"]
    t = build_triple(data_root(cfg), spec, sensor, allow_held=True)
    if spec.get("window"):
        c, r, w, h = spec["window"]
        t = Triple(t.name, t.pan[r : r + h, c : c + w], t.lms[:, r : r + h, c : c + w],
                   t.gt[:, r : r + h, c : c + w], t.invalid[r : r + h, c : c + w], t.margin, t.info)
    rs, cs = valid_box(t.invalid, t.margin)
    return Triple(t.name, t.pan[rs, cs], t.lms[:, rs, cs], t.gt[:, rs, cs], t.invalid[rs, cs], t.margin,
                  dict(t.info, rows=[rs.start, rs.stop], cols=[cs.start, cs.stop]))


def _block_mean(a: np.ndarray, q: int) -> np.ndarray:
    h, w = a.shape[-2] // q * q, a.shape[-1] // q * q
    a = a[..., :h, :w]
    return a.reshape(a.shape[:-2] + (h // q, q, w // q, q)).mean(axis=(-3, -1))


def classical_yardsticks(t: Triple, sensor: Sensor) -> dict[str, dict[str, float]]:
    """Reduced-resolution indices of the plugin's classical methods on the same case (what a model must beat)."""
    from ksdiff_qgis.engine import classical, metrics

    s, q = sensor.scale, sensor.ratio
    pan, lms = (t.pan * s).astype(np.float32), (t.lms * s).astype(np.float32)
    pan_lr, ms_lr = _block_mean(pan, q), _block_mean(lms, q)
    stats = classical.scene_stats(pan_lr, ms_lr, np.ones(pan_lr.shape, dtype=bool))
    ctx = classical.TileContext(stats=stats, ratio=q, gains=sensor.mtf_ms, origin=(0, 0))
    # reflect-pad like the pipeline's tile margin: the MTF-GLP filters need context beyond the case's edges
    pad = -(-classical.margin("mtf_glp_hpm", q) // q) * q
    pan_p = np.pad(pan, pad, mode="reflect")
    lms_p = np.pad(lms, ((0, 0), (pad, pad), (pad, pad)), mode="reflect")
    out = {}
    for name in ("brovey", "gsa", "mtf_glp_hpm"):
        f = classical.FUSERS[name](pan_p, lms_p, ctx)[:, pad:-pad, pad:-pad]
        idx = metrics.reduced_resolution(f, t.gt * s, q, s)
        out[name] = {k: idx[k] for k in metrics.REDUCED}
    return out


def evaluate(run: Runner, mult: int, cfg: dict[str, Any]) -> dict[str, Any]:
    """Reduced- and full-resolution indices (and fusion time) for the config's test cases."""
    from ksdiff_qgis.engine import metrics

    if cfg.get("sensor") == "generic" and "data_layout" not in cfg:   # its layout comes from the data
        from .datacheck import checked

        cfg = checked(cfg, parts=("test.",))
    sensor = sensor_spec(cfg)
    s, out = sensor.scale, {"sensor": sensor.key}
    test = cfg.get("test", {})
    if test.get("reduced"):
        t = reduced_case(cfg, sensor)
        t0 = time.perf_counter()
        f = fuse(run, mult, t.pan, t.lms)
        dt = time.perf_counter() - t0
        r = metrics.reduced_resolution(f * s, t.gt * s, sensor.ratio, s)
        r.update(case=t.name, shape=list(t.gt.shape), seconds=round(dt, 3), window=t.info)
        exp = metrics.reduced_resolution(t.lms * s, t.gt * s, sensor.ratio, s)  # EXP (upsampling) yardstick
        r["EXP"] = {k: exp[k] for k in metrics.REDUCED}
        r["classical"] = classical_yardsticks(t, sensor)
        out["reduced"] = r
    if test.get("full"):
        spec = test["full"]
        pan, ms, lms = full_resolution_pair(data_root(cfg), spec["pan"], spec["ms"], sensor,
                                            value_gain=float(spec.get("value_gain", 1.0)))
        q = sensor.ratio
        if spec.get("window"):
            c, r0, w, h = spec["window"]
            ms, pan = ms[:, r0 : r0 + h, c : c + w], pan[r0 * q : (r0 + h) * q, c * q : (c + w) * q]
            lms = lms[:, r0 * q : (r0 + h) * q, c * q : (c + w) * q]
        invalid = (ms == 0).any(0) | _block_any(pan == 0, q)
        rs, cs = valid_box(invalid, 3)
        pan = pan[rs.start * q : rs.stop * q, cs.start * q : cs.stop * q]
        lms = lms[:, rs.start * q : rs.stop * q, cs.start * q : cs.stop * q]
        ms = ms[:, rs, cs]   # on the MS grid, the same origin: the reprojection indices (R-Q2n, R-SAM, R-ERGAS)
        t0 = time.perf_counter()
        f = fuse(run, mult, pan / s, lms / s) * s
        dt = time.perf_counter() - t0
        fr = metrics.full_resolution(f, pan, lms, sensor.mtf_ms, sensor.mtf_pan, q, ms=ms)
        fr.update(case=f"{spec['pan']}+{spec['ms']}", shape=list(f.shape), seconds=round(dt, 3))
        out["full"] = fr
    return out


def card_metrics(res: dict[str, Any], sensor: str, measured_by: str) -> dict[str, Any]:
    """The ``metrics`` of a model card from an ``evaluate`` result: per test case the indices, EXP's ERGAS
    and the best classical ERGAS, rounded to 4 digits."""
    from ksdiff_qgis.engine import metrics as M

    scenes: dict[str, dict[str, float]] = {}
    for mode, keys in (("reduced", M.REDUCED), ("full", M.FULL)):
        if mode in res:
            r = res[mode]
            name = f"{mode}/{r.get('case', sensor)}"
            scenes[name] = {k: round(float(r[k]), 4) for k in keys if r.get(k) is not None}
            if "EXP" in r:
                scenes[name]["EXP_ERGAS"] = round(float(r["EXP"]["ERGAS"]), 4)
            if r.get("classical"):
                scenes[name]["best_classical_ERGAS"] = round(min(float(c["ERGAS"]) for c in r["classical"].values()), 4)
    return {"measured_by": measured_by, "scenes": scenes}
