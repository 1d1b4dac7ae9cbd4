"""`scripts/deploy.py --profile NAME` enables the plugin and installs ONNX Runtime in that profile (QA133 D2)."""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import deploy  # noqa: E402
import package  # noqa: E402


def test_deploy_into_a_named_profile(tmp_path, monkeypatch, capsys):
    """QA133: deploy unpacked into profiles/qa but ran `qgis_process plugins enable` on `default`: "No matching plugins
    found!", exit 1, a stray profiles/default, and the runtime would have gone to `default` too."""
    root = tmp_path / "config"
    zip_path = package.build(tmp_path / "ksdiff_qgis.zip")
    monkeypatch.setenv("QGIS_CUSTOM_CONFIG_PATH", str(root))
    assert deploy.main(["--zip", str(zip_path), "--profile", "qa"]) == 0
    said = capsys.readouterr().out
    qa = root / "profiles" / "qa"
    assert "ksdiff_qgis=true" in (qa / "QGIS" / "QGIS3.ini").read_text()
    assert (qa / "python" / "ksdiff_runtime").is_dir() and f"installed in {qa / 'python' / 'ksdiff_runtime'}" in said
    assert not (root / "profiles" / "default").exists(), said
    # QA136: "try: qgis_process run ..." named a command that cannot find the plugin (qgis_process opens `default`)
    assert "try: qgis_process" not in said and "qgis_process uses the default profile only" in said, said
    assert "try: qgis_process run" in deploy.try_line("default")
