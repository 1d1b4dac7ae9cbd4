"""Model cards: find the bundled ones, load and check a card against its ONNX file and the data.

A card is the JSON beside ``<name>.onnx`` (``<name>.json``); ``model_core.export`` writes it and embeds
the same card (minus ``onnx_sha256``) in the ONNX metadata. The plugin trusts a model only when the
file's sha256 matches its card.
"""
from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from .errors import MAX_NOTE, InputError, one_line, quoted, shown_name
from .onnx_scan import FLOAT, GraphFacts, graph_facts

MODELS_DIR = Path(__file__).resolve().parent.parent / "resources" / "models"
REQUIRED = ("format_version", "sensor", "bands", "ratio", "scale", "method", "inputs", "output", "margin")
# bounds on what a card may ask for: beyond them a model is broken or would exhaust memory
MAX_MARGIN = 256          # PAN pixels of context each side of a tile
MAX_SIZE_MULTIPLE = 64    # tile sides are padded to a multiple of this
RATIOS = (2, 16)
MAX_SCALE = 65535.0 * 4
MAX_NAME = 64   # characters of a band or sensor name: longer is not a name (QA: 100 000-character bands were logged)


@dataclass(frozen=True)
class ModelCard:
    path: Path              # the ONNX file
    data: dict
    embedded: bool | None = None   # whether the ONNX file carries a copy of its card (None: not looked at)

    @property
    def sensor(self) -> str:
        return self.data["sensor"]

    @property
    def bands(self) -> list[str]:
        return list(self.data["bands"])

    @property
    def ratio(self) -> int:
        return int(self.data["ratio"])

    @property
    def scale(self) -> float:
        return float(self.data["scale"])

    @property
    def margin(self) -> int:
        return int(self.data["margin"])

    @property
    def size_multiple(self) -> int:
        return int(self.data.get("size_multiple", 1))

    @property
    def input_names(self) -> tuple[str, str]:
        return self.data["inputs"]["pan"], self.data["inputs"]["lms"]

    @property
    def output_name(self) -> str:
        return self.data["output"]

    @property
    def sha256(self) -> str | None:
        """The ONNX file's sha256, as ``load_card`` found it equal to the card's: sessions are cached by it."""
        return self.data.get("onnx_sha256")


def unfinished_note(card: ModelCard) -> str | None:
    """A warning for a model exported from a run that had not ended (its card's ``training.unfinished``: a smoke run,
    a stopped one): its scores are not those of its recipe. None for a finished run."""
    training = card.data.get("training") or {}
    what = training.get("unfinished")
    if not what:
        return None
    at = training.get("unfinished_at") or {}
    stopped = (f"stopped at step {at['step']} of {at['of']}" if at.get("step") is not None and at.get("of")
               else "stopped before its end")
    # the card's own text: a hostile card's is escaped to one line and cut (QA116: ESC sequences and 100 kB logged)
    return (f"the MODEL {one_line(card.path.name)} comes from an unfinished training run: it {stopped} "
            f"({shown_name(what, MAX_NOTE)}); its scores "
            "are not those of the finished recipe: compare with a classical method, or finish the run and export "
            "its last stage")


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_model_file(onnx_path: str | os.PathLike) -> None:
    """InputError unless ``onnx_path`` is an existing regular file: ``card_path_of`` starts with it, and
    ksdiff:pansharpen's parameter check runs it on MODEL whatever the METHOD (a classical one ignored a missing file
    silently). A FIFO, a symbolic link loop or a dangling link is named as such (QA: all "does not exist")."""
    path = Path(onnx_path)
    try:
        mode = os.stat(path).st_mode
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise InputError(f"the model {quoted(str(path))} is a symbolic link loop: give the model's .onnx file "
                             "itself") from None
        if os.path.islink(path):
            raise InputError(f"the model {quoted(str(path))} is a symbolic link to {quoted(os.readlink(path))}, "
                             "which does not exist") from None
        raise InputError(f"the model file {quoted(str(path))} does not exist") from None
    if stat.S_ISDIR(mode):
        raise InputError(f"the model {quoted(str(path))} is a folder, not an ONNX file")
    if not stat.S_ISREG(mode):
        kind = "a named pipe (FIFO)" if stat.S_ISFIFO(mode) else "a device or socket"
        raise InputError(f"the model {quoted(str(path))} is {kind}, not a regular file: give the model's .onnx file")


def card_path_of(onnx_path: str | os.PathLike) -> Path:
    """The model card beside ``onnx_path`` (``<name>.json``); InputError when the model is a folder or missing, or
    has no card (everything that reads a model's card says it in these words: ``python -m model_core int8`` gave a
    raw "[Errno 2] No such file")."""
    path = Path(onnx_path)
    check_model_file(path)
    card_path = path.with_suffix(".json")
    if not card_path.is_file():
        # the copy inside the file is not used in its place: the JSON's sha256 is what proves the file unchanged
        raise InputError(f"the model {path.name} has no model card ({card_path.name} beside it): copy the "
                         f"{card_path.name} exported with it into the same folder, or export the model again")
    return card_path


def load_card(onnx_path: str | os.PathLike) -> ModelCard:
    """Read and check the card beside ``onnx_path``; InputError explains what is wrong."""
    path = Path(onnx_path)
    card_path = card_path_of(path)
    try:
        data = json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InputError(f"the model card {card_path.name} is not valid JSON: {e}") from None
    except RecursionError:   # "[[[[...]]]]" nested deeper than Python's stack: no card is
        raise InputError(f"the model card {card_path.name} is not a valid card: its JSON is nested too deep") from None
    facts = scan_file(path)   # one walk of the file: the embedded card now, the graph's declarations below
    inside = embedded_card(path, facts)
    if inside is not None and (not isinstance(data, dict)
                               or inside != {k: v for k, v in data.items() if k != "onnx_sha256"}):
        # before any field is read: an edited ratio or sensor was acted on (refused for the wrong reason, a false
        # sensor warning) before the run's later comparison (``learned.check_graph``) found the edit
        raise InputError(edited_card(path))
    if not isinstance(data, dict):
        raise InputError(f"the model card {card_path.name} is not a valid card (not a JSON object): copy the "
                         f"{card_path.name} exported with the model, or export it again")
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise InputError(f"the model card {card_path.name} lacks {', '.join(missing)}")
    if data["format_version"] != 1:
        raise InputError(f"the model card {card_path.name} has format version {data['format_version']}; "
                         "this plugin reads 1")
    check_fields(data, card_path.name)
    want = data.get("onnx_sha256")
    if not want:
        raise InputError(f"the model card {card_path.name} has no onnx_sha256: the model file cannot be verified")
    got = sha256_file(path)
    if got != want:
        raise InputError(
            f"the model file {path.name} does not match its card (sha256 {got[:12]}… instead of {want[:12]}…): "
            "it is corrupt or was modified"
        )
    check_graph_file(path, data, facts)
    return ModelCard(path=path, data=data, embedded=inside is not None)


def check_graph_file(path: Path, data: dict, facts: GraphFacts | None) -> None:
    """The ONNX file holds all its tensors (the sha256 covers nothing else) and its inputs and output take what the
    card says, checked on the file's declarations (``facts``, its ``scan_file``) before ONNX Runtime loads it; a file
    that cannot be scanned is left to ONNX Runtime, which says why it cannot load it."""
    if facts is None or not (facts.external or facts.graph_read):
        return
    if facts.external:
        raise InputError(f"the model {path.name} keeps tensors in a separate file (ONNX external data), which its "
                         "card's sha256 does not cover: export the model as a single .onnx file (onnx.save without "
                         "save_as_external_data)")
    check_declared_shapes(path.name, data, facts)


def check_declared_shapes(name: str, data: dict, facts: GraphFacts) -> None:
    """The graph's declared element types and fixed dimensions fit the tiles KSDiff gives it: (1, 1, H, W) and
    (1, bands, H, W) float32 of any H, W, and (1, bands, H, W) back. Undeclared or symbolic dimensions pass (the probe
    tile checks what the graph really does). QA: ONNX Runtime's multi-line "Got invalid dimensions" mid-run."""
    n = len(data["bands"])
    tensors = [("pan input", facts.inputs.get(data["inputs"]["pan"]), 1),
               ("lms input", facts.inputs.get(data["inputs"]["lms"]), n),
               ("output", facts.outputs.get(data["output"]), n)]
    for role, declared, channels in tensors:
        if declared is None:
            continue   # a missing name is check_graph's to say, with the graph's real names
        elem, dims = declared
        if role != "output" and elem not in (0, FLOAT):
            raise InputError(f"the model {name}'s {role} takes {_ELEM.get(elem, f'type {elem}')} values; KSDiff "
                             "gives float32: export the model with float32 inputs")
        if dims is None:
            continue
        if len(dims) != 4:
            raise InputError(f"the model {name}'s {role} has {len(dims)} dimensions; KSDiff's tiles have 4 (1, "
                             f"{channels}, height, width): export the model with NCHW inputs and output")
        if dims[1] is not None and dims[1] != channels:
            what = "the PAN has 1" if role == "pan input" else f"its card lists {n} MS band{'s' if n != 1 else ''}"
            raise InputError(f"the model {name}'s {role} has {dims[1]} bands, but {what}: the card does not fit "
                             "this graph; export the model again with its own card")
        if dims[0] not in (None, 1) or dims[2] is not None or dims[3] is not None:
            fixed = "x".join("?" if d is None else str(d) for d in dims)
            raise InputError(f"the model {name}'s {role} has a fixed shape ({fixed}); KSDiff gives tiles of any "
                             "size, one at a time: export the model with dynamic height and width (dynamic_axes)")


_ELEM = {2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64", 10: "float16", 11: "float64",
         16: "bfloat16"}


def not_onnx_words(value: str) -> str | None:
    """Why ``value`` cannot be MODEL (the parameter takes .onnx files only; QGIS itself says just "Incorrect
    parameter value"): a card given in place of its model, or another file. None for an .onnx name."""
    path = Path(value)
    if path.suffix.lower() == ".onnx":
        return None
    if path.suffix.lower() == ".json":
        return (f"MODEL {path.name} is a model card: MODEL is the model's .onnx file ({path.stem}.onnx), with this "
                "card beside it")
    return (f"MODEL {path.name} is not an ONNX model: MODEL is the model's .onnx file, with its model card (the .json "
            "exported with it) beside it")


def edited_card(path: Path) -> str:
    """The refusal of a card that differs from the copy ``model_core.export`` embedded in the ONNX file."""
    return (f"the model card {path.with_suffix('.json').name} differs from the card inside {path.name}: it was "
            "edited; restore it (or export the model again)")


def scan_file(path: Path) -> GraphFacts | None:
    """The file's metadata and graph declarations (``onnx_scan``), read in one walk; None when it cannot be read
    as ONNX (ONNX Runtime says why, later)."""
    try:
        return graph_facts(path)
    except (OSError, ValueError):
        return None


def embedded_card(onnx_path: str | os.PathLike, facts: GraphFacts | None = None) -> dict | None:
    """The card ``model_core.export`` embedded in the ONNX file's metadata (``model_card``, without
    ``onnx_sha256``); None when the file has none, holds text there that is not JSON (another exporter's notes under
    that key), or cannot be read as ONNX (the session says why, later). InputError when the copy is JSON but not a
    card (not an object, or nested deeper than Python's stack). ``facts``: the file's ``scan_file``, when read."""
    path = Path(onnx_path)
    facts = scan_file(path) if facts is None else facts
    text = None if facts is None or facts.metadata is None else facts.metadata.get("model_card")
    return None if text is None else parse_embedded(text, path)


def parse_embedded(text: str, path: Path) -> dict | None:
    """The card embedded in ``path`` from its metadata ``text``; None for text that is not JSON at all (Markdown
    notes another exporter put under the key: no card of ours); InputError for JSON that is not an object or is
    nested too deep."""
    try:
        inside = json.loads(text)
    except RecursionError:
        raise InputError(f"the card inside {path.name} is not a valid card: its JSON is nested too deep; export the "
                         "model again") from None
    except ValueError:
        return None
    if not isinstance(inside, dict):
        raise InputError(f"the card inside {path.name} is not a valid card (not a JSON object): export the model "
                         "again")
    return inside


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _bad(name: str, field: str, value, want: str) -> InputError:
    shown = repr(value)   # a hostile card's value can be megabytes long: a line shows its start
    shown = shown if len(shown) <= MAX_NAME else shown[:MAX_NAME - 1] + "…"
    return InputError(f"the model card {name} has an invalid {field} ({shown}): it must be {want}")


def _is_name(v) -> bool:
    """A band or sensor name the log can show: a printable, non-blank string of at most ``MAX_NAME`` characters."""
    return isinstance(v, str) and bool(v.strip()) and len(v) <= MAX_NAME and v.isprintable()


def _check_int(data: dict, name: str, field: str, lo: int, hi: int, default: int | None = None) -> None:
    value = data.get(field, default)
    if not (_is_int(value) and lo <= value <= hi):
        raise _bad(name, field, value, f"a whole number from {lo} to {hi}")


def _check_names(data: dict, name: str) -> None:
    """bands: a non-empty list of names; inputs.pan, inputs.lms and output: tensor names."""
    bands = data["bands"]
    if not (isinstance(bands, list) and bands and all(_is_name(b) for b in bands)):
        raise _bad(name, "bands", bands, f"a non-empty list of band names (printable, at most {MAX_NAME} characters)")
    if not _is_name(data["sensor"]):
        raise _bad(name, "sensor", data["sensor"], f"a sensor key such as \"wv2\" (at most {MAX_NAME} characters)")
    inputs = data["inputs"]
    if not (isinstance(inputs, dict) and all(isinstance(inputs.get(k), str) and inputs[k] for k in ("pan", "lms"))
            and inputs["pan"] != inputs["lms"]):
        raise _bad(name, "inputs", inputs, 'an object naming the "pan" and "lms" input tensors (two different ones)')
    if not (isinstance(data["output"], str) and data["output"]):
        raise _bad(name, "output", data["output"], "the name of the output tensor")
    if data.get("layout", "NCHW") != "NCHW":
        raise _bad(name, "layout", data["layout"], "NCHW")


def _check_training(data: dict, name: str) -> None:
    """training: an object whose fields the plugin reads (``unfinished_note``, METHOD auto's ``adapted_from``)
    have their types. QA: "training": "yes" ended in an AttributeError traceback, "Internal error"."""
    training = data.get("training")
    if training is None:
        return
    if not isinstance(training, dict):
        raise _bad(name, "'training'", training, "an object (as model_core.export writes it)")
    for key in ("unfinished", "adapted_from"):
        if training.get(key) is not None and not isinstance(training[key], str):
            raise _bad(name, f"'training' {key}", training[key], "a text")
    at = training.get("unfinished_at")
    if at is not None and not (isinstance(at, dict) and all(at.get(k) is None or _is_int(at[k])
                                                            for k in ("step", "of"))):
        raise _bad(name, "'training' unfinished_at", at, 'an object of whole numbers "step" and "of"')


def check_fields(data: dict, name: str) -> None:
    """Every field the plugin uses has the right type and lies within bounds; InputError says which not."""
    _check_names(data, name)
    _check_training(data, name)
    if data.get("tile_kernels") is not None and not isinstance(data["tile_kernels"], dict):
        raise _bad(name, "tile_kernels", data["tile_kernels"], "an object (as model_core.export writes it)")
    _check_int(data, name, "ratio", *RATIOS)
    _check_int(data, name, "margin", 0, MAX_MARGIN)
    _check_int(data, name, "size_multiple", 1, MAX_SIZE_MULTIPLE, default=1)
    scale = data["scale"]
    # json reads NaN and Infinity: a scale must be a real, finite, positive number
    if not (isinstance(scale, (int, float)) and not isinstance(scale, bool) and math.isfinite(scale)
            and 0 < scale <= MAX_SCALE):
        raise _bad(name, "scale", scale, f"a finite number above 0 and at most {MAX_SCALE:g}")


def bundled_cards(models_dir: Path = MODELS_DIR) -> dict[str, Path]:
    """Sensor key -> bundled ONNX file, for every ``<sensor>.onnx`` with a card beside it."""
    if not models_dir.is_dir():
        return {}
    return {p.stem: p for p in sorted(models_dir.glob("*.onnx")) if p.with_suffix(".json").is_file()}


def check_against_data(card: ModelCard, n_bands: int, ratio: int) -> None:
    """The model must fit the MS band count and the PAN/MS ratio of the data."""
    if len(card.bands) != n_bands:
        raise InputError(
            f"the model {card.path.name} expects {len(card.bands)} MS bands ({', '.join(card.bands)}); "
            f"the MS raster has {n_bands}"
        )
    if card.ratio != ratio:
        raise InputError(f"the model {card.path.name} was trained for ratio {card.ratio}; the data has ratio {ratio}")
