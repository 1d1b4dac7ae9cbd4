"""The plugin repository's checklist (README "Publishing on plugins.qgis.org"), checked on the built zip."""
from __future__ import annotations

import configparser
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import package  # noqa: E402

REQUIRED = ("name", "qgisMinimumVersion", "qgisMaximumVersion", "description", "about", "version", "author",
            "email", "repository", "tracker", "homepage", "icon", "category", "hasProcessingProvider")


def test_zip_meets_the_plugin_site_rules(tmp_path):
    dest = package.build(tmp_path / "ksdiff_qgis.zip")
    with zipfile.ZipFile(dest) as zf:
        names = zf.namelist()
        meta = configparser.ConfigParser()
        meta.read_string(zf.read("ksdiff_qgis/metadata.txt").decode("utf-8"))
        icon = meta["general"]["icon"]
        png = zf.read(f"ksdiff_qgis/{icon}")
    general = meta["general"]
    assert all(general.get(k) for k in REQUIRED), [k for k in REQUIRED if not general.get(k)]
    assert {n.split("/")[0] for n in names} == {"ksdiff_qgis"}            # one top folder = the module name
    assert "ksdiff_qgis/LICENSE" in names and "GNU" in (ROOT / "LICENSE").read_text()
    assert not [n for n in names if "__pycache__" in n or n.endswith((".pyc", ".pyo", ".so", ".dll", ".dylib"))]
    assert icon.endswith(".png") and png[:8] == b"\x89PNG\r\n\x1a\n"
    assert dest.stat().st_size < 20e6                                     # the site's upload limit is 25 MB
    assert "pip" in general["about"]                                       # says what gets installed
