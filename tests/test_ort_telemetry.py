"""ONNX Runtime's telemetry stays off (QA 56 #1): the plugin works offline and leaves no Microsoft device id behind.

onnxruntime 1.29+ (the pinned 1.32 here) wrote ``$TMPDIR/.ses`` and ``~/.cache/Microsoft/DeveloperTools/.onnxruntime/``
(a device id and an SQLite queue of events for mobile.events.data.microsoft.com) as soon as it was imported, in QGIS
and in the child Python that probes the import. The run below is a real KSDiff run through Processing in a child QGIS
Python whose HOME and TMPDIR are empty folders of the test."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
# ONNX Runtime 1.32 keeps its telemetry quiet under CI (strings in its library): cleared, so the test sees what a
# user's machine does whether or not it runs in CI
CI_VARIABLES = ("ORT_DISABLE_TELEMETRY", "ORT_RUNNING_UNIT_TESTS", "CI", "TF_BUILD", "GITHUB_ACTIONS", "GITLAB_CI",
                "CIRCLECI", "TRAVIS", "JENKINS_URL", "CODEBUILD_BUILD_ID", "BUILDKITE", "TEAMCITY_VERSION",
                "APPVEYOR", "BITBUCKET_BUILD_NUMBER", "XDG_CACHE_HOME")

DRIVER = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, sys.argv[1])
    from qgis.testing import start_app
    app = start_app()
    sys.path.append("/usr/share/qgis/python/plugins")
    from processing.core.Processing import Processing
    Processing.initialize()
    import ksdiff_qgis, processing
    plugin = ksdiff_qgis.classFactory(None)   # kept: its provider goes with it
    plugin.initProcessing()
    from ksdiff_qgis.engine import runtime
    res = processing.run("ksdiff:pansharpen", {"PAN": sys.argv[2] + "/wv2_pan.tif", "MS": sys.argv[2] + "/wv2_ms.tif",
                         "SENSOR": "wv2", "METHOD": "ksdiff", "OUTPUT": sys.argv[3]})
    print("RUN " + json.dumps({"probed": list(runtime._verdicts.values()), "output": res["OUTPUT"],
                               "loaded": "onnxruntime" in sys.modules}), flush=True)
""")


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_a_ksdiff_run_leaves_no_telemetry_files(tmp_path):
    """A KSDiff run (the import probe in a child Python, the import, sessions) writes no ``.ses`` in TMPDIR and nothing
    under ``~/.cache/Microsoft``; onnxruntime does load and the probe did run (both are covered)."""
    home, tmp = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    tmp.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in CI_VARIABLES}
    env.update(HOME=str(home), TMPDIR=str(tmp), QT_QPA_PLATFORM="offscreen")
    out = tmp_path / "fused.tif"
    res = subprocess.run([sys.executable, "-c", DRIVER, str(ROOT), str(DATA), str(out)], capture_output=True,
                         text=True, timeout=600, cwd=tmp_path, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    said = json.loads(next(line[4:] for line in res.stdout.splitlines() if line.startswith("RUN ")))
    assert said["loaded"] and said["probed"] == [None] and out.exists(), said
    ses = [f for f in _files(tmp) if Path(f).name == ".ses"]
    microsoft = [f for f in _files(home) if "Microsoft" in f or "onnxruntime" in f]
    assert not ses and not microsoft, (ses, microsoft)


def test_the_switch_respects_a_user_who_set_it(monkeypatch):
    """Unset or empty: set to 1 (for this process and every child Python); a user's own 0 is kept, as is their 1."""
    from ksdiff_qgis.engine import deps, ort_telemetry

    for before, after in ((None, "1"), ("", "1"), ("1", "1"), ("yes", "1"), ("0", "0"), ("false", "false")):
        env = {} if before is None else {"ORT_DISABLE_TELEMETRY": before}
        ort_telemetry.switch_off(env)
        assert env["ORT_DISABLE_TELEMETRY"] == after, before
    monkeypatch.delenv("ORT_DISABLE_TELEMETRY", raising=False)
    assert deps.child_env()["ORT_DISABLE_TELEMETRY"] == "1"
    monkeypatch.setenv("ORT_DISABLE_TELEMETRY", "0")
    assert deps.child_env()["ORT_DISABLE_TELEMETRY"] == "0"

    class Ort:
        calls = 0

        def disable_telemetry_events(self):
            Ort.calls += 1

    ort_telemetry.quiet_events(Ort())   # opted in: left alone
    monkeypatch.delenv("ORT_DISABLE_TELEMETRY")
    ort_telemetry.quiet_events(Ort())
    assert Ort.calls == 1

