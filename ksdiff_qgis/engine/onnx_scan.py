"""What a model card is checked against in the ONNX file itself, read without the onnx package (the plugin has only
ONNX Runtime) and without copying tensor data: the model's metadata (where ``model_core.export`` embeds the card),
whether any tensor lives in an external-data file, and the declared element types and shapes of the graph's inputs
and outputs. One reader for all of them: the file is walked once.

The file is memory-mapped and its protobuf fields walked; tensor bytes (``raw_data``) are skipped, not read, so the
bundled 5.5 MB model is scanned in a few milliseconds after ``sha256_file`` has brought it into the page cache.
"""
from __future__ import annotations

import mmap
import os
from dataclasses import dataclass, field

FLOAT = 1   # TensorProto.FLOAT
MAX_DEPTH = 64   # nested subgraphs (If, Loop, Scan bodies): deeper is not a real model
# message kind -> {field number: child kind} for the fields that can hold a TensorProto, however deep (onnx.proto)
_CHILDREN = {
    "model": {7: "graph", 20: "training", 25: "function"},
    "training": {1: "graph", 2: "graph"},
    "graph": {1: "node", 5: "tensor", 15: "sparse"},
    "node": {5: "attr"},
    "attr": {5: "tensor", 6: "graph", 10: "tensor", 11: "graph", 22: "sparse", 23: "sparse"},
    "sparse": {1: "tensor", 2: "tensor"},
    "function": {7: "node"},
}
_EXTERNAL_DATA, _DATA_LOCATION = 13, 14   # TensorProto: external_data entries, data_location (1: EXTERNAL)
_METADATA_PROPS = 14   # ModelProto: metadata_props, StringStringEntryProto (key 1, value 2)


@dataclass
class GraphFacts:
    external: bool = False   # some tensor's data lies in another file
    # the main graph's inputs and outputs: name -> (element type, dims); a dim is an int or None (symbolic/unknown);
    # dims None: no shape declared
    inputs: dict[str, tuple[int, list | None]] = field(default_factory=dict)
    outputs: dict[str, tuple[int, list | None]] = field(default_factory=dict)
    # ModelProto's metadata_props, key -> value; None when an entry cannot be decoded (not UTF-8, malformed)
    metadata: dict[str, str] | None = field(default_factory=dict)
    graph_read: bool = True   # False: the model's own fields were read, a nested message could not be


def _varint(buf, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _fields(buf, start: int, end: int):
    """(field number, wire type, value): a varint, or the (start, end) of a length-delimited field."""
    pos = start
    while pos < end:
        tag, pos = _varint(buf, pos)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            yield number, wire, value
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        elif wire == 2:
            n, pos = _varint(buf, pos)
            if pos + n > end:
                raise ValueError("truncated field")
            yield number, wire, (pos, pos + n)
            pos += n
        else:
            raise ValueError(f"wire type {wire}")
    if pos != end:
        raise ValueError("truncated message")


def _value_info(buf, span: tuple[int, int]) -> tuple[str, int, list | None]:
    """ValueInfoProto (name 1, type 2) -> (name, elem_type, dims) of a tensor type."""
    name, elem, dims = "", 0, None
    for number, wire, value in _fields(buf, *span):
        if number == 1 and wire == 2:
            name = bytes(buf[value[0]:value[1]]).decode("utf-8", "replace")
        elif number == 2 and wire == 2:
            for n2, w2, tensor in _fields(buf, *value):   # TypeProto.tensor_type
                if n2 != 1 or w2 != 2:
                    continue
                for n3, w3, v3 in _fields(buf, *tensor):
                    if n3 == 1 and w3 == 0:
                        elem = v3
                    elif n3 == 2 and w3 == 2:   # TensorShapeProto: dim 1 -> dim_value 1 | dim_param 2
                        dims = []
                        for n4, w4, dim in _fields(buf, *v3):
                            if n4 == 1 and w4 == 2:
                                fixed = [v for n5, w5, v in _fields(buf, *dim) if n5 == 1 and w5 == 0]
                                dims.append(fixed[0] if fixed and fixed[0] > 0 else None)
    return name, elem, dims


def _metadata_entry(buf, span: tuple[int, int]) -> tuple[str, str]:
    """StringStringEntryProto (key 1, value 2) -> (key, value); ValueError or IndexError when malformed."""
    kv = {1: "", 2: ""}
    for number, wire, value in _fields(buf, *span):
        if number in kv and wire == 2:
            kv[number] = bytes(buf[value[0]:value[1]]).decode("utf-8")
    return kv[1], kv[2]


def scan(buf) -> GraphFacts:
    """The ``GraphFacts`` of a serialised ModelProto; ValueError when its own fields cannot be read (not a model).
    A nested message that cannot be read leaves ``graph_read`` False, the metadata read (the model's own fields
    are all read before any nested one)."""
    facts = GraphFacts()
    stack = [("model", 0, len(buf), 0)]
    while stack:
        kind, start, end, depth = stack.pop()
        try:
            if depth > MAX_DEPTH:
                raise ValueError("subgraphs nested too deep")
            if _scan_message(buf, kind, start, end, depth, facts, stack):
                return facts
        except (ValueError, IndexError):
            if depth == 0:
                raise ValueError("not a serialised ONNX model") from None
            facts.graph_read = False
            return facts
    return facts


def _scan_message(buf, kind: str, start: int, end: int, depth: int, facts: GraphFacts, stack: list) -> bool:
    """Walk one message into ``facts``, its children pushed on ``stack``; True once a tensor proves external data
    (nothing more to learn)."""
    children = _CHILDREN.get(kind, {})
    main_graph = kind == "graph" and depth == 1
    for number, wire, value in _fields(buf, start, end):
        if kind == "tensor":
            if number == _EXTERNAL_DATA or (number == _DATA_LOCATION and wire == 0 and value == 1):
                facts.external = True
                return True
        elif kind == "model" and number == _METADATA_PROPS and wire == 2:
            if facts.metadata is not None:
                try:
                    key, text = _metadata_entry(buf, value)
                    facts.metadata[key] = text
                except (ValueError, IndexError):   # UnicodeDecodeError is a ValueError
                    facts.metadata = None
        elif main_graph and number in (11, 12) and wire == 2:
            name, elem, dims = _value_info(buf, value)
            (facts.inputs if number == 11 else facts.outputs)[name] = (elem, dims)
        elif wire == 2 and number in children:
            stack.append((children[number], *value, depth + 1))
    return False


def graph_facts(path: str | os.PathLike) -> GraphFacts:
    """``scan`` of the ONNX file at ``path``; OSError or ValueError when it cannot be read as ONNX (an empty file,
    or its model's own fields unreadable)."""
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            raise ValueError("empty file")
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            try:
                return scan(buf)
            except IndexError:
                raise ValueError("truncated") from None
