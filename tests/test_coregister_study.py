"""scripts/coregister_study.py reads how far the MS moved from the engine's own COREGISTER log line (QA133 D5: every
moved_pan_px was null once the line named the parameter's label)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from ksdiff_qgis.engine.coregistration import WARN_PAN_PIXELS, moved_note  # noqa: E402


@pytest.mark.parametrize("error_ms", [0.0, WARN_PAN_PIXELS])   # the second adds ", measured to within about …"
def test_moved_by_reads_the_engine_log_line(error_ms):
    import coregister_study

    line, _ = moved_note((0.15, -0.2), (0.01, 0.0), 4, error_ms=error_ms)
    assert ("measured to within" in line) == bool(error_ms)
    assert coregister_study.moved_by(["Self-check on …", line]) == pytest.approx(1.0)
    assert coregister_study.moved_by(["nothing moved"]) is None
