"""The PyTorch weights of the bundled models, shipped so ``adapt`` can start from a bundled model without training.

The plugin carries ONNX files only; fine-tuning needs the network's weights. ``python -m model_core export --sensor
X`` (what ``make train`` runs) writes them here beside the ONNX export, named after the config that trained them
(the bundled card's ``training.config``): the EMA weights, the config and the revision, without optimiser state.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


def weights_path(config_name: str, folder: Path = WEIGHTS_DIR) -> Path:
    """Where the weights trained by ``config_name`` (a config file name) are shipped."""
    return folder / f"{Path(config_name).stem}.pt"


def save_weights(ck: dict[str, Any], path: str | Path) -> Path:
    """A checkpoint reduced to what ``adapt`` and ``train.model_from_checkpoint`` read (about a third of its size)."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    keep = {k: ck[k] for k in ("config", "step", "stage", "seconds", "git_revision", "done") if k in ck}
    torch.save({**keep, "model": ck["ema"] if ck.get("ema") else ck["model"], "ema": None}, path)
    return path


def bundled_checkpoint(sensor: str, folder: Path = WEIGHTS_DIR, repo: Path | None = None) -> Path:
    """The weights of the bundled model of ``sensor``: the shipped file, else the final checkpoint of the run that
    trained it (``make train SENSOR=sensor``) under ``repo``."""
    from ksdiff_qgis.engine.model_card import bundled_cards, load_card

    from .config import CONFIG_DIR, final_checkpoint, load_config

    cards = bundled_cards()
    if sensor not in cards:
        raise SystemExit(f"no bundled model for sensor {sensor!r} (bundled: {', '.join(sorted(cards))})")
    name = load_card(cards[sensor]).data["training"]["config"]
    shipped = weights_path(name, folder)
    if shipped.exists():
        return shipped
    final = final_checkpoint(load_config(CONFIG_DIR / name), repo or Path(__file__).resolve().parent.parent)
    if not final.exists():
        raise SystemExit(f"the weights of the bundled {sensor} model are neither shipped ({shipped}) nor trained "
                         f"({final}); run `make train SENSOR={sensor}`")
    return final


def starting_model(sensor: str, shape: tuple[int, int] | None = None) -> tuple[str, str | None]:
    """The bundled model ``adapt --sensor`` starts from: the sensor's own, else the one the plugin's sensor table
    serves it with (``sensors.model_for``: the nearest sensor's, Pléiades -> QuickBird; a generic scene the network
    of its ``shape``, (MS bands, ratio)); with a note saying so (None for its own). SystemExit when there is none."""
    from ksdiff_qgis.engine.model_card import bundled_cards
    from ksdiff_qgis.engine.sensors import get_sensor, model_for

    cards = bundled_cards()
    if sensor in cards:
        return sensor, None
    spec = get_sensor(sensor)
    key, _ = model_for(sensor, *(shape or (None, None)))
    if key is None or key not in cards:
        raise SystemExit(f"no bundled model for sensor {sensor!r} nor a nearest one for this scene (bundled: "
                         f"{', '.join(sorted(cards))}); give --checkpoint, or --sensor one of those")
    return key, (f"no bundled model was trained for {spec.name}; adapting the one the plugin uses for it, "
                 f"{key} ({cards[key].name}: the nearest sensor in the plugin's sensor table)")
