"""The batch under a low open-file limit (``ulimit -n``), real WV2 scenes.

QA: ``ulimit -n 40`` with --workers 2 ended "8 done", exit 0, after writing 393,268 lines (26 MB in 10 s) of "OSError:
[Errno 24] Too many open files"; ``ulimit -n 32`` exited 1 after 172 lines of Dask tracebacks ending "Nanny failed
to start". Now the limit is checked before the cluster starts: one line, exit 2, nothing written.
"""
from __future__ import annotations

import resource

import pytest
from fixture_helpers import run_cli

pytestmark = pytest.mark.skipif(not hasattr(resource, "RLIMIT_NOFILE"), reason="no open-file limit here")


def _limit(files: int):
    def set_it():
        resource.setrlimit(resource.RLIMIT_NOFILE, (files, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    return set_it


@pytest.mark.parametrize("files, workers, fix", [(32, 2, "or use --workers 1"), (40, 2, "or use --workers 1"),
                                                  (24, 1, "")])
def test_too_few_open_files_for_the_workers_is_one_line_and_exit_2(data_dir, tmp_path, files, workers, fix):
    pair = (data_dir / "wv2_pan.tif", data_dir / "wv2_ms.tif")
    rows = [f"{pair[0]},{pair[1]},wv2,mtf_glp_hpm,{tmp_path / f'o{i}.tif'}" for i in range(4)]
    scenes = tmp_path / "scenes.csv"
    scenes.write_text("pan,ms,sensor,method,output\n" + "\n".join(rows) + "\n")
    r = run_cli(str(scenes), "--workers", str(workers), preexec_fn=_limit(files))
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert len(lines) == 1 and f"open-file limit {files} too low for {workers} worker(s)" in lines[0], lines[:5]
    assert lines[0].endswith("raise ulimit -n" + (" " + fix if fix else "")), lines[0]
    assert not list(tmp_path.glob("o*.tif"))
