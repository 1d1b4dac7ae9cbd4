"""Scripts that write files answer --help without writing anything, and make_fixtures keeps every fixture's credit
(QA133 D4: make_fixtures/demo/icon_png --help ran the whole job; make_fixtures dropped the Landsat MTL credit)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))


def test_make_fixtures_writes_the_committed_attribution():
    import make_fixtures

    assert make_fixtures.fixture_attribution() == (ROOT / "tests" / "data" / "ATTRIBUTION.txt").read_text()
    assert "l8_mtl/LC80200392015216LGN00_MTL.txt" in make_fixtures.fixture_attribution()


@pytest.mark.parametrize("script", ["make_fixtures.py", "demo.py", "icon_png.py"])
def test_help_prints_usage_and_writes_nothing(script, tmp_path):
    # in a copy of the repository's layout: the old scripts ran their job and wrote beside ROOT
    (tmp_path / "scripts").mkdir()
    for name in (script, "fetch_data.py"):
        shutil.copy(ROOT / "scripts" / name, tmp_path / "scripts" / name)
    icons = tmp_path / "ksdiff_qgis" / "resources" / "icons"
    icons.mkdir(parents=True)
    shutil.copy(ROOT / "ksdiff_qgis" / "resources" / "icons" / "ksdiff.svg", icons)
    before = sorted(p for p in tmp_path.rglob("*") if "__pycache__" not in p.parts)
    res = subprocess.run([sys.executable, str(tmp_path / "scripts" / script), "--help"], capture_output=True,
                         text=True, timeout=300, cwd=tmp_path,
                         env={**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT)})
    assert res.returncode == 0 and res.stdout.startswith("usage:"), res.stdout + res.stderr
    assert sorted(p for p in tmp_path.rglob("*") if "__pycache__" not in p.parts) == before
