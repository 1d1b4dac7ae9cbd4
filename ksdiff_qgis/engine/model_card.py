"""Model cards: find the bundled ones, load and check a card against its ONNX file and the data.

A card is the JSON beside ``<name>.onnx`` (``<name>.json``); ``model_core.export`` writes it and embeds
the same card (minus ``onnx_sha256``) in the ONNX metadata. The plugin trusts a model only when the
file's sha256 matches its card.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError

MODELS_DIR = Path(__file__).resolve().parent.parent / "resources" / "models"
REQUIRED = ("format_version", "sensor", "bands", "ratio", "scale", "method", "inputs", "output", "margin")


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


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_card(onnx_path: str | os.PathLike) -> ModelCard:
    """Read and check the card beside ``onnx_path``; InputError explains what is wrong."""
    path = Path(onnx_path)
    if not path.is_file():
        raise InputError(f"the model file {str(path)!r} does not exist")
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
        raise InputError(f"the model card {card_path.name} has format version {data['format_version']}; this plugin reads 1")
    if not (isinstance(data["ratio"], int) and data["ratio"] >= 2 and float(data["scale"]) > 0):
        raise InputError(f"the model card {card_path.name} has an invalid ratio or scale")
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
