"""KSDiff as two small graphs for CPU inference: per-tile kernels, then a plain backbone with those kernels.

The exported KSDiff graph runs each modulated convolution as the backbone's convolution plus a low-rank
side path (``nets/modconv.py``): about 5 % of the multiply-adds, but ten narrow full-resolution tensors per
layer that ONNX Runtime's blocked CPU kernels handle badly (a 560² tile: 2.2 s against 1.24 s for the bare
backbone, one thread). A tile's kernels are constant over the tile, so the same result comes from:

* the **prior graph** (PAN, LMS -> every modulated layer's merged kernel W + dW, the tail's bias, and the
  tile normalisation as pan * a + b, lms / s): the condition encoder, sampler and kernel generator only;
* the **backbone graph**: the bare backbone behind that normalisation, whose kernels and normalisation
  are initializers the plugin overwrites per tile in a copy of the graph's bytes (``patch_offsets``)
  before ONNX Runtime loads and optimises it (about 20 ms), so every convolution runs as a plain,
  pre-packed one.

Both graphs travel inside the model's ONNX file (metadata ``tile_prior`` / ``tile_backbone``, base64), so a
model stays one file with one hash; the full graph stays the reference (CUDA, the probe, older plugins).
"""
from __future__ import annotations

import base64
import io
import warnings

import torch
from torch import nn

from .nets.ksdiff import KSDiff
from .nets.tilenorm import tile_norm_affine

OPSET = 17
META_PRIOR, META_BACKBONE = "tile_prior", "tile_backbone"


class PlainBackbone(nn.Module):
    """The bare backbone behind the tile normalisation; ``a``, ``b``, ``s`` and the modulated layers' kernels
    (and the tail's bias) are replaced per tile."""

    def __init__(self, model: KSDiff) -> None:
        super().__init__()
        self.net = model.backbone
        # placeholders, replaced per tile; distinct, or the exporter would merge them into one initializer
        self.a, self.b, self.s = (nn.Parameter(torch.full((1, 1, 1, 1), v)) for v in (1.2345678, -0.8765432, 2.3456789))

    def forward(self, pan: torch.Tensor, lms: torch.Tensor) -> torch.Tensor:
        return self.net(pan * self.a + self.b, lms / self.s) * self.s


def replaced_names(model: KSDiff) -> list[str]:
    """Initializer names of ``PlainBackbone`` that the prior graph outputs, in its output order."""
    bb = model.backbone
    index = {id(p): n for n, p in bb.named_parameters()}
    names = [f"net.{index[id(c.weight)]}" for c in bb.modconvs()]
    tail_w = f"net.{index[id(bb.tail.weight)]}"
    if model.kgen.tail_bands and tail_w not in names:
        names.append(tail_w)
    if model.kgen.tail_bands:
        names.append(f"net.{index[id(bb.tail.bias)]}")
    return names + ["a", "b", "s"]


class PriorGraph(nn.Module):
    """PAN, LMS -> the tensors named by ``replaced_names`` for one tile (N = 1)."""

    def __init__(self, model: KSDiff) -> None:
        super().__init__()
        self.model = model

    def forward(self, pan: torch.Tensor, lms: torch.Tensor) -> tuple[torch.Tensor, ...]:
        m = self.model
        if m.tile_norm:
            a, b, s = tile_norm_affine(pan, lms, m.ratio)
        else:
            a, b, s = torch.ones(1, 1, 1, 1), torch.zeros(1, 1, 1, 1), torch.ones(1, 1, 1, 1)
        p, x = pan * a + b, lms / s   # what the backbone graph computes from the same a, b, s
        mods, gain = m.kernels(m.sample_prior(m.cond_enc(p, x)), p, x)
        bb = m.backbone
        convs = bb.modconvs()
        out = [c.weight + c.dense_update(mod)[0] for c, mod in zip(convs, mods)]   # replaced_names' order
        if gain is not None:   # diag(1 + g) on the tail's output = on its kernel and bias
            g = (1 + gain[0])[:, None, None, None]
            if bb.tail in convs:
                out[convs.index(bb.tail)] = out[convs.index(bb.tail)] * g
            else:
                out.append(bb.tail.weight * g)
            out.append(bb.tail.bias * g[:, 0, 0, 0])
        return (*out, a, b, s)


def _onnx_bytes(module: nn.Module, bands: int, size: int, output_names: list[str] | None, dynamic_out: bool) -> bytes:
    pan, lms = torch.rand(1, 1, size, size), torch.rand(1, bands, size, size)
    dyn = {2: "H", 3: "W"}
    axes = {"pan": dyn, "lms": dyn}
    if dynamic_out:
        axes["hrms"] = dyn
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        # no constant folding: the replaced parameters must stay initializers under their own names
        torch.onnx.export(module, (pan, lms), buf, input_names=["pan", "lms"], output_names=output_names or ["hrms"],
                          dynamic_axes=axes, opset_version=OPSET, dynamo=False, do_constant_folding=False)
    return buf.getvalue()


def supported(model: nn.Module) -> bool:
    """A KSDiff whose backbone has modulated convolutions (every KSDiff model this project trains)."""
    return isinstance(model, KSDiff) and hasattr(model.backbone, "modconvs") and bool(model.backbone.modconvs())


def patch_offsets(graph: bytes, names: list[str]) -> tuple[bytes, dict[str, list[int]]]:
    """(the same graph, {name: [byte offset, byte length]} of each named initializer's raw data in it).

    The plugin writes a tile's kernels straight into a copy of the bytes: ONNX Runtime's blocked (NCHWc)
    layout pass reads convolution weights from the file, ignoring ``SessionOptions.add_initializer``
    (measured with onnxruntime 1.32: the overridden head kernel changed nothing under ORT_ENABLE_ALL), and
    the plugin has no ``onnx`` package to rewrite protobufs with. The offsets are found by serialising
    the graph with random markers in place of those initializers (real values may repeat, e.g. a zero
    bias), then the real values go back in at the markers' places: same length, same layout.
    """
    import numpy as np
    import onnx

    model = onnx.load_from_string(graph)
    inits = {i.name: i for i in model.graph.initializer}
    rng = np.random.default_rng(20251204)
    real = {}
    for name in names:
        if name not in inits or not inits[name].raw_data:
            raise RuntimeError(f"the backbone graph has no raw initializer {name!r}: cannot replace it per tile")
        real[name] = inits[name].raw_data
        inits[name].raw_data = rng.standard_normal(max(4, len(real[name]) // 4)).astype("<f4").tobytes()[
            : len(real[name])]
    marked = bytearray(model.SerializeToString())
    offsets = {}
    for name in names:
        marker = inits[name].raw_data
        at = marked.find(marker)
        if len(marker) < 4 or at < 0 or marked.find(marker, at + 1) >= 0:
            raise RuntimeError(f"the marker of {name!r} is not found exactly once in the backbone graph")
        marked[at : at + len(marker)] = real[name]
        offsets[name] = [at, len(marker)]
    return bytes(marked), offsets


def tile_graphs(model: KSDiff, bands: int, size: int = 64) -> tuple[dict[str, str], dict[str, list[int]]]:
    """(metadata entries holding both graphs as base64, {replaced initializer: [offset, length]} in the backbone
    graph's bytes, in the prior graph's output order)."""
    model = model.eval().cpu()
    names = replaced_names(model)
    prior = _onnx_bytes(PriorGraph(model), bands, size, names, dynamic_out=False)
    backbone = _onnx_bytes(PlainBackbone(model), bands, size, None, dynamic_out=True)
    backbone, offsets = patch_offsets(backbone, names)
    meta = {META_PRIOR: base64.b64encode(prior).decode("ascii"),
            META_BACKBONE: base64.b64encode(backbone).decode("ascii")}
    return meta, offsets
