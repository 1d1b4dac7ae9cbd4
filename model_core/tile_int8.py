"""The int8 (QDQ) variant of the per-tile backbone graph (``tile_graphs.py``), for CPU inference.

The bare backbone's 3x3 convolutions are ~98 % of a tile's time and already run near the CPU's float32
peak; ONNX Runtime's int8 convolutions (VNNI) halve that (a 544² tile, one thread: 0.47-0.55 -> 0.24-0.29 s). Each
tile has its own kernels, so the plugin quantizes them itself, per output channel, before loading the
tile's graph (``ksdiff_qgis.engine.learned.TileKernels``); only the activations' ranges are fixed here,
calibrated on training patches:

* every convolution's input and output range is the union over the calibration patches of each patch's
  0.1 / 99.9 percentiles (min / max over all patches spread the 8 bits over outliers: +5.5 % ERGAS on one
  fixture scene against +0.3 %);
* those ranges depend on the tile's contrast (rank correlation 0.81-0.87 between the spread of a layer's
  activations and the standard deviation of the normalised PAN, over WorldView-2 and Sentinel-2 patches;
  spreads vary 3-5x): a smooth tile used 8-24 % of ranges set by urban patches. So the patches are sorted
  into contrast classes, each spanning a factor ``CLASS_RATIO`` of contrast from the smoothest candidates
  up, and each class gets its own activation scales (the ranges of the patches up to that contrast, same
  zero points); the plugin picks the class from the tile's own normalised PAN
  (``ksdiff_qgis.engine.learned.tile_contrast``) and writes those scales per tile, like the kernels. The
  patches are drawn from many candidates so that every class has ``PER_CLASS`` of them: quartile classes
  of evenly spread patches left smooth scenes (fields, water; contrast 0.02-0.04) with the ranges of
  patches ten times more contrasted (+1.3...+1.5 % ERGAS on smooth Sentinel-2 validation windows);
* the first and last convolutions and the in-graph HPM fusion's two 13-tap filters stay float
  (``FLOAT_CONVS``, ~3 % of the work): 8 bits would round the input images, the output correction and
  the fused base themselves;
* weights symmetric per output channel (int8), activations asymmetric per tensor (uint8), biases int32
  at the scale input x weight, as ONNX Runtime's QLinearConv wants them.

The graph travels inside the model's ONNX file (metadata ``tile_backbone_int8``, base64); the card's
``tile_kernels.int8`` tells the plugin where each quantized tensor's bytes lie (``tile_graphs.patch_offsets``)
and the activation scales per contrast class. The plugin runs it by default on CPU (PRECISION=int8; fp32 asks
for float32): the quality gate, within 1 % ERGAS of float32 on every bench scene, is measured by ``make bench``
and ``scripts/robustness.py``; the class recipe was chosen on validation windows of the training areas
(``scripts/quantize_model.py``), never on those scenes.
"""
from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ksdiff_qgis.engine.learned import CONTRAST_BLOCK, tile_contrast

from .data.scenes import NoPatchError
from .tile_graphs import patch_offsets

META_INT8 = "tile_backbone_int8"
PERCENTILE = 99.9
# convolutions kept float (node-name parts): the first reads the images themselves, the last writes the
# correction, and the in-graph HPM fusion's 13-tap filters make the fused base; together ~3 % of the work.
# Measured on four WorldView-2 Wald cases (ERGAS change against float32): head, tail and HPM float
# +0.03...+0.21 %; only HPM float +0.07...+0.93 %
FLOAT_CONVS = ("/prefuse/", "/head/", "/tail/")
PATCH = CONTRAST_BLOCK    # calibration patch side: the blocks the plugin measures a tile's contrast on
CLASS_RATIO = 2.0         # contrast span of one class
MAX_CLASSES = 8           # at most (the classes stop below the 98th percentile of the candidates)
PER_CLASS = 32            # calibration patches per contrast class (fewer when the candidates have fewer)
CANDIDATES_PER_SOURCE = 256   # candidate patches drawn from each training source (and the real pair at full resolution)


def _session(graph: bytes, optimise: bool = True):
    import onnxruntime as ort

    o = ort.SessionOptions()
    o.intra_op_num_threads = 1
    if not optimise:   # intermediate tensors keep their names
        o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(graph, o, providers=["CPUExecutionProvider"])


def tile_graph(prior_session, backbone: bytes, offsets: dict[str, list[int]], feed: dict) -> bytes:
    """The float backbone graph with ``feed``'s own kernels written in (what the plugin runs per tile)."""
    graph = bytearray(backbone)
    names = list(offsets)
    for name, value in zip(names, prior_session.run(names, feed)):
        at, n = offsets[name]
        graph[at : at + n] = np.ascontiguousarray(value, dtype="<f4").tobytes()
    return bytes(graph)


def _conv_tensors(model) -> list[str]:
    names = []
    for n in model.graph.node:
        if n.op_type == "Conv":
            names += [n.input[0], n.output[0]]
    return list(dict.fromkeys(names))


def patch_ranges(prior_session, backbone: bytes, offsets: dict[str, list[int]],
                 feeds: list[dict]) -> list[dict[str, tuple[float, float]]]:
    """Each feed's {tensor: (0.1, 99.9 percentile)} of every convolution input and output."""
    import onnx

    ranges = []
    for feed in feeds:
        model = onnx.load_from_string(tile_graph(prior_session, backbone, offsets, feed))
        names = _conv_tensors(model)
        known = {o.name for o in model.graph.output}
        model.graph.output.extend(onnx.ValueInfoProto(name=n) for n in names if n not in known)
        values = _session(model.SerializeToString(), optimise=False).run(names, feed)
        ranges.append({n: tuple(float(x) for x in np.percentile(v, [100 - PERCENTILE, PERCENTILE]))
                       for n, v in zip(names, values)})
    return ranges


def contrasts(prior_session, feeds: list[dict]) -> np.ndarray:
    """Each feed's contrast statistic (``tile_contrast``, with the normalisation the prior gives it)."""
    out = []
    for feed in feeds:
        a, b = (float(np.asarray(v).ravel()[0]) for v in prior_session.run(["a", "b"], feed))
        out.append(tile_contrast(feed["pan"], a, b))
    return np.asarray(out)


def class_edges(contrast: np.ndarray) -> list[float]:
    """Upper contrast edges of the classes but the last: from the 2nd percentile of the candidates' contrast
    up by ``CLASS_RATIO``, while below the 98th (at most ``MAX_CLASSES`` classes)."""
    lo, hi = (float(v) for v in np.percentile(contrast, [2, 98]))
    edges = []
    while lo > 0 and len(edges) < MAX_CLASSES - 1 and lo * CLASS_RATIO ** (len(edges) + 1) < hi:
        edges.append(lo * CLASS_RATIO ** (len(edges) + 1))
    return edges


def select_patches(contrast: np.ndarray, edges: list[float]) -> list[int]:
    """Indices of up to ``PER_CLASS`` candidates per contrast class, evenly spread over the class's contrasts."""
    order = np.argsort(contrast, kind="stable")
    cls = np.searchsorted(edges, contrast[order], side="left")
    picked = []
    for k in range(len(edges) + 1):
        members = order[cls == k]
        picked += [int(members[i]) for i in _spread(len(members), PER_CLASS)]
    return sorted(picked)


def _spread(count: int, n: int) -> np.ndarray:
    """Indices of ``min(n, count)`` items evenly spread over ``count`` (first and last included)."""
    if count == 0:
        return np.zeros(0, dtype=int)
    return np.unique(np.linspace(0, count - 1, min(n, count)).round().astype(int))


def union(ranges: list[dict[str, tuple[float, float]]]) -> dict[str, tuple[float, float]]:
    return {k: (min(r[k][0] for r in ranges), max(r[k][1] for r in ranges)) for k in ranges[0]}


def contrast_classes(contrast: np.ndarray, ranges: list[dict], edges: list[float]) -> list[dict]:
    """Each class's ranges: the union over the patches up to its upper edge (the last class: all patches)."""
    classes = []
    for e in edges:
        below = [r for c, r in zip(contrast, ranges) if c <= e]
        classes.append(union(below) if below else None)
    classes.append(union(ranges))
    for k in range(len(classes) - 2, -1, -1):   # a class without patches takes the next class's ranges
        classes[k] = classes[k] or classes[k + 1]
    return classes


class _PreprocessHint(logging.Filter):
    """Drops onnxruntime's "Please consider (to run) pre-processing before quantization" (root logger, twice per
    quantization): our graph is quantized from given ranges, the user can do nothing about it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


@contextlib.contextmanager
def without_preprocess_hint() -> Iterator[None]:
    """The root logger without onnxruntime's pre-processing hint, for the block; every other message stays."""
    hint = _PreprocessHint()
    logging.getLogger().addFilter(hint)
    try:
        yield
    finally:
        logging.getLogger().removeFilter(hint)


def quantize(backbone: bytes, ranges: dict[str, tuple[float, float]], feed: dict) -> bytes:
    """The QDQ graph of ``backbone`` with the activation ``ranges`` (its weights: placeholders, replaced per tile)."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class OneFeed(CalibrationDataReader):   # the ranges are given: the calibrator only needs to run
        def __init__(self):
            self.it = iter([feed])

        def get_next(self):
            return next(self.it, None)

    model = onnx.load_from_string(backbone)
    keep = [n.name for n in model.graph.node if n.op_type == "Conv" and any(k in n.name for k in FLOAT_CONVS)]
    overrides = {k: [{"rmin": np.float32(lo), "rmax": np.float32(hi)}] for k, (lo, hi) in ranges.items()}
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp, "float.onnx"), Path(tmp, "int8.onnx")
        src.write_bytes(backbone)
        with without_preprocess_hint():
            quantize_static(str(src), str(dst), OneFeed(), quant_format=QuantFormat.QDQ,
                            op_types_to_quantize=["Conv"], per_channel=True, activation_type=QuantType.QUInt8,
                            weight_type=QuantType.QInt8, nodes_to_exclude=keep,
                            extra_options={"TensorQuantOverrides": overrides})
        return dst.read_bytes()


def _producers(model) -> dict[str, object]:
    return {o: n for n in model.graph.node for o in n.output}


def _uint8_scale(lo: float, hi: float) -> tuple[float, int]:
    """ONNX Runtime's asymmetric uint8 (scale, zero point) for the range [lo, hi] (0 always inside)."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = (hi - lo) / 255.0 if hi > lo else 1.0
    return scale, int(np.clip(round(-lo / scale), 0, 255))


def class_scales(qgraph, classes: list[dict[str, tuple[float, float]]]) -> dict[str, list[float]]:
    """{activation scale initializer: its value per contrast class}. The zero points stay those of the
    QDQ graph (the last class's ranges): each class's scale is the smallest that covers its own range with them."""
    from onnx import numpy_helper

    inits = {i.name: numpy_helper.to_array(i) for i in qgraph.graph.initializer}
    out = {}
    for node in qgraph.graph.node:
        if node.op_type != "QuantizeLinear" or node.input[0] not in classes[-1] or node.input[1] in out:
            continue
        scale, zp = float(inits[node.input[1]]), int(inits[node.input[2]])
        lo_g, hi_g = classes[-1][node.input[0]]
        if abs(scale - _uint8_scale(lo_g, hi_g)[0]) > 1e-6 * max(scale, 1e-12):
            raise RuntimeError(f"the scale of {node.input[0]} is not the one its range gives: cannot rescale it")
        values = []
        for cls in classes:
            lo, hi = cls[node.input[0]]
            # the class range within [-zp, 255 - zp] steps of this scale
            need = max(hi / (255 - zp) if zp < 255 else 0.0, -lo / zp if zp > 0 else 0.0)
            values.append(float(min(scale, max(need, 1e-8))))
        out[node.input[1]] = values
    return out


def int8_spec(qgraph: bytes, float_graph: bytes, replaced: list[str],
              classes: list[dict[str, tuple[float, float]]]) -> tuple[bytes, dict]:
    """(the QDQ graph with its per-tile tensors located, the card's ``tile_kernels.int8`` entry without ``graph``).

    ``replaced``: the float backbone's per-tile initializers (``tile_graphs.replaced_names``). Each
    quantized convolution whose kernel is among them is listed under ``convs`` with the byte ranges of its
    int8 kernel, kernel scales, int32 bias and bias scales, its input scale per contrast class of
    ``classes`` (each class's activation ranges), and where its float bias comes from (a per-tile tensor,
    or its fixed values); per-tile tensors left float (the normalisation a, b, s) under ``floats``; every
    activation scale with its value per class under ``activations``.
    """
    import onnx
    from onnx import numpy_helper

    q = onnx.load_from_string(qgraph)
    fixed = {i.name: numpy_helper.to_array(i) for i in onnx.load_from_string(float_graph).graph.initializer}
    inits = {i.name: i for i in q.graph.initializer}
    made_by = _producers(q)
    convs, locate = [], []
    for node in q.graph.node:
        if node.op_type != "Conv" or node.input[1] not in made_by:
            continue
        wdq = made_by[node.input[1]]
        if wdq.op_type != "DequantizeLinear":
            continue
        weight = wdq.input[0][: -len("_quantized")]
        if weight not in replaced:
            continue
        xdq = made_by[node.input[0]]
        entry = {"weight": weight, "x_scale": float(numpy_helper.to_array(inits[xdq.input[1]])),
                 "x_scale_name": xdq.input[1], "w_q": wdq.input[0], "w_scale": wdq.input[1]}
        if len(node.input) > 2 and node.input[2]:
            bdq = made_by[node.input[2]]
            bias = bdq.input[0][: -len("_quantized")]
            entry.update(b_q=bdq.input[0], b_scale=bdq.input[1])
            if bias in replaced:
                entry["bias"] = bias
            else:
                entry["bias_values"] = [float(v) for v in fixed[bias].ravel()]
        convs.append(entry)
        locate += [entry[k] for k in ("w_q", "w_scale", "b_q", "b_scale") if k in entry]
    scales = class_scales(q, classes)
    for c in convs:   # the bias is quantized at the input scale: one per contrast class
        xs = c.pop("x_scale_name")
        c["x_scale"] = scales[xs]
    locate += list(scales)
    done = {c["weight"] for c in convs} | {c.get("bias") for c in convs}
    floats = [n for n in replaced if n not in done]
    missing = [n for n in floats if n not in inits]
    if missing:
        raise RuntimeError(f"the int8 graph lost the per-tile tensors {missing}: cannot replace them per tile")
    for name in locate:   # small tensors may be stored as typed fields: raw bytes can be patched in place
        if not inits[name].raw_data:
            inits[name].CopyFrom(numpy_helper.from_array(numpy_helper.to_array(inits[name]), name))
    graph, offsets = patch_offsets(q.SerializeToString(), floats + locate)
    for c in convs:
        for k in ("w_q", "w_scale", "b_q", "b_scale"):
            if k in c:
                c[k] = offsets[c[k]]
    activations = [{"scale": offsets[name], "values": values} for name, values in scales.items()]
    return graph, {"floats": {n: offsets[n] for n in floats}, "convs": convs, "activations": activations}


def calibration_feeds(pan_path: str, ms_path: str, sensor: str, scale: float, n: int = CANDIDATES_PER_SOURCE,
                      reduced: bool = True, ms_mix: list | str | None = None, ratio: int | None = None) -> list[dict]:
    """Up to ``n`` network inputs (``PATCH``² pixels, fully valid, evenly spread) from a PAN/MS pair, at full
    (and, with ``reduced``, at Wald) resolution, fed as the pipeline feeds them (values / scale, cubic-upsampled MS);
    ``ms_mix``: the sensor's bands made from the pair's (``data.scenes.mix_bands``, a config source's option);
    ``ratio``: the PAN/MS ratio (default the sensor's; the generic sensor's is the data's)."""
    from ksdiff_qgis.engine.filters import upsample
    from ksdiff_qgis.engine.sensors import get_sensor

    from .data.scenes import mix_bands
    from .rasters import read
    from .wald import make_reduced_case

    ratio = ratio or get_sensor(sensor).ratio
    found = []   # (image, row, col) of every fully valid patch; the patches themselves only for those kept
    with tempfile.TemporaryDirectory() as tmp:
        pairs = [(pan_path, ms_path)]
        if reduced:
            case = make_reduced_case(pan_path, ms_path, tmp, sensor, prefix="calibration", ratio=ratio)
            pairs.append((case.pan, case.ms))
        images = []
        for p_path, m_path in pairs:
            p = read(p_path).data[0].astype(np.float32)
            ms = mix_bands(read(m_path).data.astype(np.float32), ms_mix)
            images.append((p, upsample(ms, ratio, p.shape)))
            found += [(len(images) - 1, r, c) for r, c in _valid_patches(p <= 0)]
    if not found:
        raise NoPatchError(f"no valid {PATCH}² calibration patch in {os.path.basename(pan_path)}")
    feeds = []
    for i in _spread(len(found), n):
        k, r, c = found[i]
        p, lms = images[k]
        feeds.append({"pan": (p[None, None, r:r + PATCH, c:c + PATCH] / scale).astype(np.float32),
                      "lms": (lms[None, :, r:r + PATCH, c:c + PATCH] / scale).astype(np.float32)})
    return feeds


def _valid_patches(invalid: np.ndarray) -> list[tuple[int, int]]:
    """(row, col) of every ``PATCH``² patch at half-patch steps without an invalid pixel."""
    step = PATCH // 2
    return [(r, c) for r in range(0, invalid.shape[0] - PATCH + 1, step)
            for c in range(0, invalid.shape[1] - PATCH + 1, step) if not invalid[r:r + PATCH, c:c + PATCH].any()]


def training_feeds(cfg: dict, n: int = CANDIDATES_PER_SOURCE) -> list[dict]:
    """Calibration inputs from every training source of a config, as training feeds them (Wald-protocol
    patches, values / sensor scale, the PAN and MS variants of domain randomisation in turn), plus the
    first real pair at full resolution (how the plugin runs the network); [] when `make data` was not run."""
    from .config import data_root, sensor_spec
    from .data.scenes import build_triple

    sensor = sensor_spec(cfg)
    # the config's data root, as training reads it (the cache's alone found no source of a config with data.root:
    # its model was exported without int8, and `int8` said "no calibration pair")
    root = data_root(cfg) if "data" in cfg else Path()
    feeds, pair = [], None
    for spec in cfg.get("data", {}).get("train", []):
        try:
            t = build_triple(root, spec, sensor)
        except (OSError, FileNotFoundError):
            continue
        pans, lmss = t.pans or [t.pan], t.lmss or [t.lms]
        found = _valid_patches(t.invalid)
        for i, k in enumerate(_spread(len(found), n)):
            r, c = found[k]
            p, x = pans[i % len(pans)], lmss[i % len(lmss)]
            feeds.append({"pan": np.ascontiguousarray(p[None, None, r:r + PATCH, c:c + PATCH], dtype=np.float32),
                          "lms": np.ascontiguousarray(x[None, :, r:r + PATCH, c:c + PATCH], dtype=np.float32)})
        if spec.get("kind") == "pair" and pair is None:
            pair = spec
    if pair:
        base = Path(pair["root"]) if "root" in pair else root
        feeds += calibration_feeds(str(base / pair["pan"]), str(base / pair["ms"]), cfg["sensor"],
                                   sensor.scale, n, reduced=False, ms_mix=pair.get("ms_mix"), ratio=sensor.ratio)
    return feeds


def int8_graph(prior: bytes, backbone: bytes, offsets: dict[str, list[int]], feeds: list[dict]) -> tuple[bytes, dict]:
    """(the int8 backbone graph, its card entry) calibrated on patches of ``feeds`` chosen per contrast class,
    with per-class activation scales."""
    prior_session = _session(prior)
    candidates = contrasts(prior_session, feeds)
    edges = class_edges(candidates)
    picked = select_patches(candidates, edges)
    feeds = [feeds[i] for i in picked]
    classes = contrast_classes(candidates[picked], patch_ranges(prior_session, backbone, offsets, feeds), edges)
    first = tile_graph(prior_session, backbone, offsets, feeds[0])
    graph, spec = int8_spec(quantize(first, classes[-1], feeds[0]), backbone, list(offsets), classes)
    spec["contrast_edges"] = edges
    spec["calibration"] = {"candidates": len(candidates), "patches": len(feeds), "percentile": PERCENTILE,
                           "classes": len(classes), "class_ratio": CLASS_RATIO}
    return graph, spec
