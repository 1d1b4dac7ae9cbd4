"""Deliberately bad models with valid cards, for tests of what the plugin does with a user's MODEL."""
from __future__ import annotations

import json
from pathlib import Path


def write_scaled_model(folder: Path, name: str = "scaled", gain: float = 1.5) -> str:
    """``folder/name.onnx`` + its card (the bundled wv2 card, made to fit): the network returns ``gain`` x the
    upsampled MS (over-bright, no detail), so the self-check must reject it and the consistency step pulls it back
    onto the MS. Files of two gains have the same size."""
    import onnx
    from onnx import TensorProto, helper

    from ksdiff_qgis.engine import model_card

    io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, c, "h", "w"]) for n, c in
          (("pan", 1), ("lms", 4), ("hrms", 4))]
    gain = helper.make_tensor("gain", TensorProto.FLOAT, [], [gain])
    graph = helper.make_graph([helper.make_node("Mul", ["lms", "gain"], ["hrms"])], name, io[:2], io[2:],
                              initializer=[gain])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = Path(folder) / f"{name}.onnx"
    onnx.save(model, str(path))
    card = json.loads((model_card.MODELS_DIR / "wv2.json").read_text())
    card.pop("tile_kernels", None)   # a plain graph: no per-tile kernel path
    card.update(onnx_sha256=model_card.sha256_file(path), margin=0, size_multiple=1,
                inputs={"pan": "pan", "lms": "lms"}, output="hrms")
    path.with_suffix(".json").write_text(json.dumps(card))
    return str(path)
