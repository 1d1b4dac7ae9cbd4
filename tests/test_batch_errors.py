"""A failed scene's unexpected error is one line on the console and in the report (QA133 D3)."""
from __future__ import annotations

import json

from ksdiff_qgis import batch
from ksdiff_qgis.engine.scenes import Scene

# Dask's own text, as a scheduler without ksdiff_qgis on its path gave it (QA133)
DASK = ("Error during deserialization of the task graph. This frequently\noccurs if the Scheduler and Client have "
        "different environments.\nFor more information, see\nhttps://docs.dask.org/en/stable/deployment-considerations.html#consistent-software-environments\n")


class FailedFuture:
    status = "error"

    def exception(self):
        return RuntimeError(DASK)


def test_a_multi_line_exception_is_one_line_without_escapes(capsys):
    scene = Scene(2, {"pan_path": "p.tif", "ms_path": "m.tif", "output_path": "o.tif"})
    rec = batch.outcome(FailedFuture(), scene)
    assert rec["status"] == "failed" and "\n" not in rec["error"]
    assert rec["error"].startswith("RuntimeError: Error during deserialization of the task graph. This frequently "
                                   "occurs if the Scheduler")
    assert "\\n" not in json.dumps(rec)   # the report line
    progress = batch.Progress(1, True)
    progress.update(rec)
    said = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("line 2:")]
    assert len(said) == 1 and "\\n" not in said[0] and "frequently occurs" in said[0], said


def test_error_line_keeps_the_whitespace_inside_a_path():
    """QA136: every whitespace run was collapsed, so '/data/scene  A/ms.tif' was reported as a path that does not
    exist; only line breaks (\\r\\n, \\n, \\r) become a space."""
    line = batch.error_line(FileNotFoundError(2, "No such file", "/data/scene  A/ms.tif\tx"))
    assert line == "FileNotFoundError: [Errno 2] No such file: '/data/scene  A/ms.tif\\tx'", line
    assert batch.error_line(RuntimeError("a\r\nb\rc\n\n  d  e\n")) == "RuntimeError: a b c d  e"
