"""QGIS 4 / Qt6 readiness: a scan in the spirit of QGIS's ``pyqt5_to_pyqt6.py`` (not shipped by Debian's 3.22).

It flags what breaks or hides the plugin on QGIS 4: direct PyQt5 imports, unscoped Qt / Processing
enums, untranslatable ``tr(f"...")`` strings, and metadata without ``qgisMaximumVersion`` 4.x.
"""
from __future__ import annotations

import ast
import configparser
import re
from pathlib import Path

PLUGIN = Path(__file__).resolve().parent.parent / "ksdiff_qgis"

# Processing enum members that QGIS 3.36 moved into Qgis.* and QGIS 4 removes from the classes
UNSCOPED_PROCESSING = re.compile(
    r"\bQgsProcessing(?:ParameterDefinition|ParameterNumber|ParameterField|ParameterFile|Algorithm|Provider)?"
    r"\.(?:Flag\w+|Integer|Double|Type\w+|Numeric|String|DateTime|Any|Folder|File)\b"
)
# Qt enum members used through the class (Qt.AlignLeft) instead of their enum (Qt.AlignmentFlag.AlignLeft);
# Qt.AlignmentFlag.X is scoped
UNSCOPED_QT = re.compile(r"\bQt\.(?:Align\w+|Key_\w+|Checked|Unchecked|Horizontal|Vertical|\w+Role|Window\w+|"
                         r"ItemIs\w+|[A-Z]\w*Cursor|NoPen|NoBrush|SolidLine|Wait\w*)\b(?!\.)")


def _findings(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    out = []
    tree = ast.parse(text)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            module = [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            # qgis.PyQt re-exports sip for both Qt 5 and 6: importing it from there is the portable way
            names = ([] if module == ["qgis.PyQt"] else [a.name for a in node.names]) + module
            if any(n and (n == "PyQt5" or n.startswith("PyQt5.") or n.startswith("sip")) for n in names):
                out.append(f"{path.name}:{node.lineno}: import PyQt5/sip directly (use qgis.PyQt)")
        called = getattr(node.func, "id", getattr(node.func, "attr", "")) if isinstance(node, ast.Call) else ""
        if called in ("tr", "translate"):
            if any(isinstance(a, ast.JoinedStr) for a in node.args):
                out.append(f"{path.name}:{node.lineno}: tr(f'...') can never be translated "
                           "(use tr('... {}').format())")
            if any(isinstance(a, ast.BinOp) for a in node.args):
                out.append(f"{path.name}:{node.lineno}: tr() of a computed string can never be translated")
    for i, line in enumerate(text.splitlines(), start=1):
        code = line.split("#", 1)[0]
        for pat in (UNSCOPED_PROCESSING, UNSCOPED_QT):
            for m in pat.finditer(code):
                out.append(f"{path.name}:{i}: unscoped enum {m.group(0)} (use the compat helper / scoped enum)")
    return out


def test_plugin_has_no_qt6_blockers():
    findings = [f for p in sorted(PLUGIN.rglob("*.py")) for f in _findings(p)]
    assert not findings, "\n".join(findings)


def test_scan_catches_what_it_should(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from PyQt5.QtCore import QCoreApplication\n"
        "x = QgsProcessingParameterNumber.Integer\n"
        "y = p.flags() | QgsProcessingParameterDefinition.FlagAdvanced\n"
        "z = Qt.AlignLeft\n"
        "w = tr(f'{x} pixels')\n"
        "ok = Qt.AlignmentFlag.AlignLeft\n"
        "import sip\n"
        "from qgis.PyQt import sip as portable_sip\n"
    )
    assert len(_findings(bad)) == 6


def test_metadata_allows_qgis4():
    cfg = configparser.ConfigParser()
    cfg.read(PLUGIN / "metadata.txt", encoding="utf-8")
    general = cfg["general"]
    assert general["qgisMinimumVersion"] == "3.22"
    assert general["qgisMaximumVersion"].startswith("4.")


def test_compat_helpers_pick_an_existing_enum(qgis_app):
    from qgis.core import QgsProcessingParameterNumber

    from ksdiff_qgis.algorithms import compat

    p = compat.advanced(QgsProcessingParameterNumber("N", "n", compat.NUMBER_INTEGER))
    assert p.dataType() == compat.NUMBER_INTEGER and p.flags() & compat.FLAG_ADVANCED
    compat.set_help(p, "some help")
    assert not hasattr(p, "help") or p.help() == "some help"


def test_metadata_icon_is_a_shipped_png():
    """The plugin site shows metadata's icon: a PNG (rendered from the SVG by scripts/icon_png.py) in the zip."""
    import sys

    sys.path.insert(0, str(PLUGIN.parent / "scripts"))
    import package

    cfg = configparser.ConfigParser()
    cfg.read(PLUGIN / "metadata.txt", encoding="utf-8")
    icon = cfg["general"]["icon"]
    assert icon.endswith(".png")
    assert (PLUGIN / icon).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"ksdiff_qgis/{icon}" in {name for _, name in package.plugin_files()}
    assert "pip" in cfg["general"]["about"] and "onnxruntime" in cfg["general"]["about"]
