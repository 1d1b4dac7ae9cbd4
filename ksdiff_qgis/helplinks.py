"""Where the plugin's help lives: the README on the project homepage (metadata.txt's ``homepage``), one section per
algorithm, and the bundled models' README (model cards, training data and its licences) inside the plugin folder,
which opens offline. No Qt here: the algorithms' ``helpUrl`` runs under qgis_process too."""
from __future__ import annotations

import configparser
from pathlib import Path

PLUGIN_DIR = Path(__file__).resolve().parent
MODELS_README = PLUGIN_DIR / "resources" / "models" / "README.md"
# GitHub's anchor of the README's top heading "# KSDiff for QGIS": the project page scrolls to the README
README_TOP = "ksdiff-for-qgis"


def homepage() -> str:
    """The project homepage from the plugin's metadata.txt ("" when it cannot be read)."""
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(PLUGIN_DIR / "metadata.txt", encoding="utf-8")
    return cfg.get("general", "homepage", fallback="").strip().rstrip("/")


def readme_url(anchor: str = README_TOP) -> str:
    """The README's section ``anchor`` (a GitHub heading slug) on the project homepage ("" without a homepage)."""
    base = homepage()
    return f"{base}#{anchor}" if base and anchor else base
