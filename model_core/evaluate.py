"""Score a checkpoint or an ONNX file on reduced-resolution (Wald) and full-resolution test cases.

Indices come from the shared ``ksdiff_qgis.engine.metrics`` (one implementation for the whole
project). Test cases are the config's ``test`` section: by default the held-apart areas of
``model_core.datacache`` (WorldView-2 pair 3; the Landsat 8 and Sentinel-2 corners).

The network is scored as the plugin delivers it (``fuse_as_plugin``): the case mirrored beyond its edges as the
pipeline mirrors a raster's, the plugin's one consistency step onto the MS (``engine/consistency.py``, on by
default: ``CONSISTENCY``) and its soft floor; the network alone (without the step) is reported beside it
(``network_alone``). The yardsticks are the plugin's classical methods, MTF-GLP-FS included.
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
from .say import stage

Runner = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (pan 1x1xHxW, lms 1xCxHxW) -> hrms, normalised


def torch_runner(model: torch.nn.Module) -> tuple[Runner, int]:
    """The network as a ``Runner`` (its receptive-field margin as ``run.margin``, as a card states it) and its size
    multiple."""
    model.eval()

    def run(pan: np.ndarray, lms: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(pan), torch.from_numpy(lms)).numpy()
    run.margin = int(getattr(model, "margin", 0))   # type: ignore[attr-defined]
    return run, size_multiple(model)


def onnx_runner(path: str | Path, threads: int = 2) -> tuple[Runner, int, dict]:
    """The ONNX model's whole graph on CPU, loaded as the plugin loads it: its card beside it (fields, sha256), the
    card inside it, its tensors and a probe tile checked (``engine.model_card.load_card``, ``learned.check_graph``);
    InputError says what the plugin would refuse."""
    from ksdiff_qgis.engine import runtime
    from ksdiff_qgis.engine.learned import check_graph
    from ksdiff_qgis.engine.model_card import load_card

    card = load_card(path)
    session = runtime.get_session(str(card.path), "cpu", threads, sha256=card.sha256)
    check_graph(card, session)
    (pan_name, lms_name), out_name = card.input_names, card.output_name

    def run(pan: np.ndarray, lms: np.ndarray) -> np.ndarray:
        return session.session.run([out_name], {pan_name: pan, lms_name: lms})[0]
    run.margin = card.margin   # type: ignore[attr-defined]
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
    """The config's reduced-resolution test case, cropped to its largest valid box."""
    return reduced_case_with_ms(cfg, sensor)[0]


def reduced_case_with_ms(cfg: dict[str, Any], sensor: Sensor) -> tuple[Triple, np.ndarray, tuple[int, int]]:
    """``reduced_case``, with the degraded MS the case's LMS was upsampled from (normalised, the MS pixels covering
    the cropped case) and where its pixel [0, 0]'s corner lies in the case's pixels: what the plugin's consistency
    step projects onto."""
    from ksdiff_qgis.engine.filters import wald_degrade

    spec = cfg["test"]["reduced"]
    t = build_triple(data_root(cfg), spec, sensor, allow_held=True)
    ms_lr = wald_degrade(t.gt, sensor.mtf_ms, sensor.ratio)   # as the triple's LMS was made (scale-free filter)
    r0 = c0 = 0
    if spec.get("window"):
        c0, r0, w, h = spec["window"]
        t = Triple(t.name, t.pan[r0 : r0 + h, c0 : c0 + w], t.lms[:, r0 : r0 + h, c0 : c0 + w],
                   t.gt[:, r0 : r0 + h, c0 : c0 + w], t.invalid[r0 : r0 + h, c0 : c0 + w], t.margin, t.info)
    rs, cs = valid_box(t.invalid, t.margin)
    case = Triple(t.name, t.pan[rs, cs], t.lms[:, rs, cs], t.gt[:, rs, cs], t.invalid[rs, cs], t.margin,
                  dict(t.info, rows=[rs.start, rs.stop], cols=[cs.start, cs.stop]))
    q, top, left = sensor.ratio, r0 + rs.start, c0 + cs.start   # the case's first pixel on the triple's grid
    k0, l0 = top // q, left // q
    k1, l1 = -(-(top + case.gt.shape[1]) // q), -(-(left + case.gt.shape[2]) // q)
    return case, ms_lr[:, k0:k1, l0:l1], (k0 * q - top, l0 * q - left)


def fuse_as_plugin(run: Runner, mult: int, pan: np.ndarray, ms: np.ndarray, origin: tuple[int, int],
                   sensor: Sensor) -> tuple[np.ndarray, np.ndarray]:
    """(the network alone, the network as the plugin delivers it) on a whole case (normalised), fused as the pipeline
    fuses a tile at a raster's edge with its defaults: PAN and MS mirrored beyond the case by the model's margin plus
    the consistency step's halo (``run.margin``; symmetric, the MS at its own scale), the MS cubic-upsampled onto
    that grid, the network run, one consistency step onto the mirrored MS (``engine/consistency.py``, CONSISTENCY's
    default; not for the network alone), the soft floor (``engine.learned.soft_floor``), cropped to the case. ``ms``:
    the MS pixels covering the case, pixel [0, 0]'s corner at ``origin`` (<= 0) in case pixels. The pipeline cuts a
    scene into tiles of 512 PAN pixels; a case is fused in one piece."""
    from ksdiff_qgis.engine.consistency import halo, project
    from ksdiff_qgis.engine.filters import upsample
    from ksdiff_qgis.engine.learned import soft_floor

    q, gains = sensor.ratio, sensor.mtf_ms
    m, (h, w) = int(getattr(run, "margin", 0)) + halo(q, gains), pan.shape   # the pipeline's tile margin
    k = -(-m // q) + 2   # MS pixels of margin: the PAN's, and the cubic interpolator's reach
    pan_p = np.pad(pan, m, mode="symmetric")
    ms_p = np.pad(ms, ((0, 0), (k, k), (k, k)), mode="symmetric")
    o = (origin[0] + m - k * q, origin[1] + m - k * q)   # the mirrored MS's corner on the mirrored PAN
    lms_p = upsample(ms_p, q, pan_p.shape, o)
    raw = fuse(run, mult, pan_p, lms_p)
    stepped = project(raw, ms_p, o, gains, q)
    inner = (slice(None), slice(m, m + h), slice(m, m + w))
    return soft_floor(raw, lms_p)[0][inner], soft_floor(stepped, lms_p)[0][inner]


def _block_mean(a: np.ndarray, q: int) -> np.ndarray:
    h, w = a.shape[-2] // q * q, a.shape[-1] // q * q
    a = a[..., :h, :w]
    return a.reshape(a.shape[:-2] + (h // q, q, w // q, q)).mean(axis=(-3, -1))


# the plugin's classical methods a network is compared with (EXP, the plain upsampling, is reported apart)
YARDSTICKS = ("brovey", "gsa", "mtf_glp_hpm", "mtf_glp_fs")


def classical_yardsticks(t: Triple, sensor: Sensor, ms: np.ndarray | None = None) -> dict[str, dict[str, float]]:
    """Reduced-resolution indices of the plugin's classical methods on the same case (what a model must beat).
    ``ms``: the case's MS (normalised, on the MS grid from the case's first pixel): the scene statistics then come
    from it and the PAN averaged onto its grid, as the plugin's (``pipeline.estimate_scene_stats``); else from the
    LMS averaged, whose blur lowers MTF-GLP-FS's regression gains (11 % higher ERGAS on a Pléiades-like case)."""
    from ksdiff_qgis.engine import classical, metrics

    s, q = sensor.scale, sensor.ratio
    pan, lms = (t.pan * s).astype(np.float32), (t.lms * s).astype(np.float32)
    pan_lr = _block_mean(pan, q)
    ms_lr = _block_mean(lms, q) if ms is None else (ms[:, : pan_lr.shape[0], : pan_lr.shape[1]] * s)
    # MTF-GLP-FS's gains on each band's MTF-matched low-pass PAN, as the plugin's (mirrored past the case's edges)
    reach = classical.lowpass_margin(q)
    pan_low = classical.lowpass_on_ms_grid(np.pad(pan[: pan_lr.shape[0] * q, : pan_lr.shape[1] * q], reach,
                                                  mode="symmetric"), sensor.mtf_ms, q, pan_lr.shape)
    stats = classical.scene_stats(pan_lr, ms_lr, np.ones(pan_lr.shape, dtype=bool), pan_low)
    ctx = classical.TileContext(stats=stats, ratio=q, gains=sensor.mtf_ms, origin=(0, 0))
    # reflect-pad like the pipeline's tile margin: the MTF-GLP filters need context beyond the case's edges
    pad = -(-max(classical.margin(m, q) for m in YARDSTICKS) // q) * q
    pan_p = np.pad(pan, pad, mode="reflect")
    lms_p = np.pad(lms, ((0, 0), (pad, pad), (pad, pad)), mode="reflect")
    out = {}
    for name in YARDSTICKS:
        f = classical.FUSERS[name](pan_p, lms_p, ctx)[:, pad:-pad, pad:-pad]
        idx = metrics.reduced_resolution(f, t.gt * s, q, s)
        out[name] = {k: idx[k] for k in metrics.REDUCED}
    return out


def evaluate(run: Runner, mult: int, cfg: dict[str, Any]) -> dict[str, Any]:
    """Reduced- and full-resolution indices (and fusion time) for the config's test cases, of the network's output
    as the plugin delivers it (``fuse_as_plugin``); ``network_alone``: the same indices of its raw output."""
    from ksdiff_qgis.engine import metrics

    if cfg.get("sensor") == "generic" and "data_layout" not in cfg:   # its layout comes from the data
        from .datacheck import checked

        cfg = checked(cfg, parts=("test.",))
    sensor = sensor_spec(cfg)
    s, out = sensor.scale, {"sensor": sensor.key, "scored": SCORED}
    test = cfg.get("test", {})
    if test.get("reduced"):
        stage("scoring the reduced-resolution (Wald) test case: the network, then the classical yardsticks")
        t, ms_lr, origin = reduced_case_with_ms(cfg, sensor)
        t0 = time.perf_counter()
        raw, f = fuse_as_plugin(run, mult, t.pan, ms_lr, origin, sensor)
        dt = time.perf_counter() - t0
        r = metrics.reduced_resolution(f * s, t.gt * s, sensor.ratio, s)
        alone = metrics.reduced_resolution(raw * s, t.gt * s, sensor.ratio, s)
        r["network_alone"] = {k: alone[k] for k in metrics.REDUCED}
        r.update(case=t.name, shape=list(t.gt.shape), seconds=round(dt, 3), window=t.info)
        exp = metrics.reduced_resolution(t.lms * s, t.gt * s, sensor.ratio, s)  # EXP (upsampling) yardstick
        r["EXP"] = {k: exp[k] for k in metrics.REDUCED}
        r["classical"] = classical_yardsticks(t, sensor, ms_lr if origin == (0, 0) else None)
        out["reduced"] = r
    if test.get("full"):
        stage("scoring the full-resolution test case")
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
        raw, f = fuse_as_plugin(run, mult, pan / s, ms / s, (0, 0), sensor)   # the case starts on an MS pixel's corner
        dt = time.perf_counter() - t0
        f = f * s
        fr = metrics.full_resolution(f, pan, lms, sensor.mtf_ms, sensor.mtf_pan, q, ms=ms)
        alone = metrics.full_resolution(raw * s, pan, lms, sensor.mtf_ms, sensor.mtf_pan, q, ms=ms)
        fr["network_alone"] = {k: alone[k] for k in metrics.FULL if alone.get(k) is not None}
        fr.update(case=f"{spec['pan']}+{spec['ms']}", shape=list(f.shape), seconds=round(dt, 3))
        out["full"] = fr
    return out


def card_metrics(res: dict[str, Any], sensor: str, measured_by: str) -> dict[str, Any]:
    """The ``metrics`` of a model card from an ``evaluate`` result: per test case the indices (of the output as the
    plugin delivers it when the result says so: ``scored``), the network alone's ERGAS, EXP's ERGAS and the best
    classical method's ERGAS and name, rounded to 4 digits."""
    from ksdiff_qgis.engine import metrics as M

    scenes: dict[str, dict[str, float | str]] = {}
    for mode, keys in (("reduced", M.REDUCED), ("full", M.FULL)):
        if mode in res:
            r = res[mode]
            # a case of absolute paths (a user's own config) read "reduced//tmp/…": one slash after the mode
            name = f"{mode}/{str(r.get('case', sensor)).lstrip('/')}"
            scenes[name] = {k: round(float(r[k]), 4) for k in keys if r.get(k) is not None}
            if r.get("network_alone", {}).get("ERGAS") is not None:
                scenes[name]["network_alone_ERGAS"] = round(float(r["network_alone"]["ERGAS"]), 4)
            if "EXP" in r:
                scenes[name]["EXP_ERGAS"] = round(float(r["EXP"]["ERGAS"]), 4)
            if r.get("classical"):
                best = min(r["classical"], key=lambda m: float(r["classical"][m]["ERGAS"]))
                scenes[name]["best_classical_ERGAS"] = round(float(r["classical"][best]["ERGAS"]), 4)
                scenes[name]["best_classical_method"] = best
    scored = f"; scored: {res['scored']}" if res.get("scored") else ""
    return {"measured_by": measured_by + scored, "scenes": scenes}


SCORED = ("the output as the plugin delivers it (the case mirrored beyond its edges, one consistency step onto the MS, "
          "CONSISTENCY's default, and the soft floor); network_alone: without the consistency step; classical "
          "yardsticks: " + ", ".join(YARDSTICKS))
