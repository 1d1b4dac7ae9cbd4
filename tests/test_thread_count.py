"""THREADS above the cores a process may use (real WV2 pair 1).

QA: THREADS 64 on a 2-core machine was accepted silently by QGIS (the batch refuses it), ran 20 % slower, and
changed 1,079,045 values of WV2 pair 1 upscaled to 4000² by up to 20 DN (ONNX Runtime's pool of 64 threads), though
the output must not depend on the thread count; and the cores were counted with ``os.cpu_count()``, which ignores
``taskset``. Now every count is the affinity's, and THREADS above it is capped to it with a warning.
"""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from osgeo import gdal

from ksdiff_qgis.engine import threadlimits

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(pair, out, threads):
    from ksdiff_qgis.engine.feedback import RecordingFeedback
    from ksdiff_qgis.engine.pipeline import pansharpen

    fb = RecordingFeedback()
    pansharpen(pair["PAN"], pair["MS"], str(out), sensor="wv2", method="ksdiff", threads=threads, feedback=fb)
    return gdal.Open(str(out)).ReadAsArray(), fb


def test_threads_above_the_cores_are_capped_with_a_warning_and_change_nothing(pair, tmp_path):
    cores = threadlimits.usable_cores()
    many = cores + 62
    base, _ = _run(pair, tmp_path / "t0.tif", 0)
    fused, fb = _run(pair, tmp_path / "many.tif", many)
    said = [w for w in fb.lines if w.startswith(f"WARNING THREADS {many} is more than the {cores} CPU core(s)")]
    assert len(said) == 1 and f"using {cores}" in said[0], fb.lines
    assert np.array_equal(base, fused)


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity on this system")
def test_the_cores_are_the_affinity_s_not_the_machine_s():
    """Under ``taskset`` to one core, the engine's defaults count one core, not ``os.cpu_count()``."""
    code = ("import os; os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]}); "
            "from ksdiff_qgis.engine import runtime, parallel, threadlimits; "
            "print(runtime.default_threads(), parallel.default_workers(), threadlimits.capped_threads(8)[0])")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": ROOT})
    assert r.stdout.split() == ["1", "1", "1"], (r.stdout, r.stderr)
