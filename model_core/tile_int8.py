"""The int8 (QDQ) variant of the per-tile backbone graph (``tile_graphs.py``), for CPU inference.

The bare backbone's 3x3 convolutions are ~98 % of a tile's time and already run near the CPU's float32
peak; ONNX Runtime's int8 convolutions (VNNI) halve that (a 544² tile, one thread: 0.47-0.55 -> 0.24-0.29 s). Each
tile has its own kernels, so the plugin quantizes them itself, per output channel, before loading the
tile's graph (``ksdiff_qgis.engine.learned.TileKernels``); only the activations' ranges are fixed here,
calibrated on training patches:

* every convolution's input and output range is the union over the calibration patches of each patch's
  0.1 / 99.9 percentiles (min / max over all patches spread the 8 bits over outliers: +5.5 % ERGAS on one
  fixture scene against +0.3 %);
* the first and last convolutions and the in-graph HPM fusion's two 13-tap filters stay float
  (``FLOAT_CONVS``, ~3 % of the work): 8 bits would round the input images, the output correction and
  the fused base themselves;
* weights symmetric per output channel (int8), activations asymmetric per tensor (uint8), biases int32
  at the scale input x weight, as ONNX Runtime's QLinearConv wants them.

The graph travels inside the model's ONNX file (metadata ``tile_backbone_int8``, base64); the card's
``tile_kernels.int8`` tells the plugin where each quantized tensor's bytes lie (``tile_graphs.patch_offsets``)
and the activation scale of each convolution's input. The quality gate (within 1 % ERGAS of float32 on
every bench scene, issue 13) is measured by ``scripts/quantize_model.py`` and ``make bench``.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from .tile_graphs import patch_offsets

META_INT8 = "tile_backbone_int8"
PERCENTILE = 99.9
# convolutions kept float (node-name parts): the first reads the images themselves, the last writes the
# correction, and the in-graph HPM fusion's 13-tap filters make the fused base; together ~3 % of the work.
# Measured on four WorldView-2 Wald cases (ERGAS change against float32): head, tail and HPM float
# +0.03...+0.21 %; only HPM float +0.07...+0.93 %
FLOAT_CONVS = ("/prefuse/", "/head/", "/tail/")
PATCH = 128


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


def activation_ranges(prior: bytes, backbone: bytes, offsets: dict[str, list[int]],
                      feeds: list[dict]) -> dict[str, tuple[float, float]]:
    """{tensor: (low, high)}: every convolution input and output, over the patches of ``feeds``."""
    import onnx

    prior_session = _session(prior)
    ranges: dict[str, tuple[float, float]] = {}
    for feed in feeds:
        model = onnx.load_from_string(tile_graph(prior_session, backbone, offsets, feed))
        names = _conv_tensors(model)
        known = {o.name for o in model.graph.output}
        model.graph.output.extend(onnx.ValueInfoProto(name=n) for n in names if n not in known)
        values = _session(model.SerializeToString(), optimise=False).run(names, feed)
        for name, v in zip(names, values):
            lo, hi = np.percentile(v, [100 - PERCENTILE, PERCENTILE])
            old = ranges.get(name, (np.inf, -np.inf))
            ranges[name] = (min(old[0], float(lo)), max(old[1], float(hi)))
    return ranges


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
        quantize_static(str(src), str(dst), OneFeed(), quant_format=QuantFormat.QDQ, op_types_to_quantize=["Conv"],
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        nodes_to_exclude=keep, extra_options={"TensorQuantOverrides": overrides})
        return dst.read_bytes()


def _producers(model) -> dict[str, object]:
    return {o: n for n in model.graph.node for o in n.output}


def int8_spec(qgraph: bytes, float_graph: bytes, replaced: list[str]) -> tuple[bytes, dict]:
    """(the QDQ graph with its per-tile tensors located, the card's ``tile_kernels.int8`` entry without ``graph``).

    ``replaced``: the float backbone's per-tile initializers (``tile_graphs.replaced_names``). Each
    quantized convolution whose kernel is among them is listed under ``convs`` with the byte ranges of its
    int8 kernel, kernel scales, int32 bias and bias scales, its input scale, and where its float bias
    comes from (a per-tile tensor, or its fixed values); per-tile tensors left float (the normalisation
    a, b, s) under ``floats``.
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
                 "w_q": wdq.input[0], "w_scale": wdq.input[1]}
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
    return graph, {"floats": {n: offsets[n] for n in floats}, "convs": convs}


def calibration_feeds(pan_path: str, ms_path: str, sensor: str, scale: float, n: int = 48) -> list[dict]:
    """Up to ``n`` network inputs (``PATCH``² pixels, fully valid, evenly spread) from a training pair, at full
    and at reduced (Wald) resolution, fed as the pipeline feeds them (values / scale, cubic-upsampled MS)."""
    from ksdiff_qgis.engine.filters import upsample

    from .rasters import read
    from .wald import make_reduced_case

    feeds = []
    with tempfile.TemporaryDirectory() as tmp:
        case = make_reduced_case(pan_path, ms_path, tmp, sensor, prefix="calibration")
        for p_path, m_path in ((pan_path, ms_path), (case.pan, case.ms)):
            p = read(p_path).data[0].astype(np.float32)
            m = read(m_path).data.astype(np.float32)
            lms = upsample(m, case.ratio, p.shape)
            step = PATCH // 2
            for r in range(0, p.shape[0] - PATCH + 1, step):
                for c in range(0, p.shape[1] - PATCH + 1, step):
                    if (p[r:r + PATCH, c:c + PATCH] > 0).all():
                        feeds.append({"pan": (p[None, None, r:r + PATCH, c:c + PATCH] / scale).astype(np.float32),
                                      "lms": (lms[None, :, r:r + PATCH, c:c + PATCH] / scale).astype(np.float32)})
    if not feeds:
        raise ValueError(f"no valid {PATCH}² calibration patch in {os.path.basename(pan_path)}")
    return [feeds[int(i)] for i in np.linspace(0, len(feeds) - 1, min(n, len(feeds))).round()]


def int8_graph(prior: bytes, backbone: bytes, offsets: dict[str, list[int]], feeds: list[dict]) -> tuple[bytes, dict]:
    """(the int8 backbone graph, its card entry) calibrated on ``feeds``."""
    ranges = activation_ranges(prior, backbone, offsets, feeds)
    first = tile_graph(_session(prior), backbone, offsets, feeds[0])
    graph, spec = int8_spec(quantize(first, ranges, feeds[0]), backbone, list(offsets))
    spec["calibration"] = {"patches": len(feeds), "percentile": PERCENTILE}
    return graph, spec
