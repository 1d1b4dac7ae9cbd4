"""Model cards: find the bundled ones, load and check a card against its ONNX file and the data.

A card is the JSON beside ``<name>.onnx`` (``<name>.json``); ``model_core.export`` writes it and embeds
the same card (minus ``onnx_sha256``) in the ONNX metadata. The plugin trusts a model only when the
file's sha256 matches its card.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError, quoted

MODELS_DIR = Path(__file__).resolve().parent.parent / "resources" / "models"
REQUIRED = ("format_version", "sensor", "bands", "ratio", "scale", "method", "inputs", "output", "margin")
# bounds on what a card may ask for: beyond them a model is broken or would exhaust memory
MAX_MARGIN = 256          # PAN pixels of context each side of a tile
MAX_SIZE_MULTIPLE = 64    # tile sides are padded to a multiple of this
RATIOS = (2, 16)
MAX_SCALE = 65535.0 * 4


@dataclass(frozen=True)
class ModelCard:
    path: Path              # the ONNX file
    data: dict

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
    return (f"the MODEL {card.path.name} comes from an unfinished training run: it {stopped} ({what}); its scores "
            "are not those of the finished recipe: compare with a classical method, or finish the run and export "
            "its last stage")


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_card(onnx_path: str | os.PathLike) -> ModelCard:
    """Read and check the card beside ``onnx_path``; InputError explains what is wrong."""
    path = Path(onnx_path)
    if path.is_dir():
        raise InputError(f"the model {quoted(str(path))} is a folder, not an ONNX file")
    if not path.is_file():
        raise InputError(f"the model file {quoted(str(path))} does not exist")
    card_path = path.with_suffix(".json")
    if not card_path.is_file():
        raise InputError(f"the model {path.name} has no model card ({card_path.name} beside it)")
    try:
        data = json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InputError(f"the model card {card_path.name} is not valid JSON: {e}") from None
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
    return ModelCard(path=path, data=data)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _bad(name: str, field: str, value, want: str) -> InputError:
    return InputError(f"the model card {name} has an invalid {field} ({value!r}): it must be {want}")


def _check_int(data: dict, name: str, field: str, lo: int, hi: int, default: int | None = None) -> None:
    value = data.get(field, default)
    if not (_is_int(value) and lo <= value <= hi):
        raise _bad(name, field, value, f"a whole number from {lo} to {hi}")


def _check_names(data: dict, name: str) -> None:
    """bands: a non-empty list of names; inputs.pan, inputs.lms and output: tensor names."""
    bands = data["bands"]
    if not (isinstance(bands, list) and bands and all(isinstance(b, str) and b.strip() for b in bands)):
        raise _bad(name, "bands", bands, "a non-empty list of band names")
    inputs = data["inputs"]
    if not (isinstance(inputs, dict) and all(isinstance(inputs.get(k), str) and inputs[k] for k in ("pan", "lms"))):
        raise _bad(name, "inputs", inputs, 'an object naming the "pan" and "lms" input tensors')
    if not (isinstance(data["output"], str) and data["output"]):
        raise _bad(name, "output", data["output"], "the name of the output tensor")
    if data.get("layout", "NCHW") != "NCHW":
        raise _bad(name, "layout", data["layout"], "NCHW")


def check_fields(data: dict, name: str) -> None:
    """Every field the plugin uses has the right type and lies within bounds; InputError says which not."""
    _check_names(data, name)
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
