"""`make bench` (batch part): 8 small real scenes through ``ksdiff_qgis.batch`` on 1 vs 2 local workers.

Scenes: the WorldView-2 demo scene (512^2 PAN) and the Landsat 8 test fixture (256^2 PAN), 4 each, all
KSDiff. Configurations on a local Dask cluster, each timed from submitting the scenes to the last result
(cluster start-up reported apart), best of ``--repeats``:
* 1 worker x 1 thread per scene, 2 workers x 1 thread (the scaling ratio), and
* 1 worker x 2 threads (all cores in one process: how process parallelism compares with ONNX threads).
Also recorded: the load average (the CPU may be shared) and each run's concurrency (sum of the scenes'
own seconds / wall seconds).

Writes bench/batch_results.json. Not part of `make test`.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ksdiff_qgis import batch  # noqa: E402
from ksdiff_qgis.engine.scenes import Scene  # noqa: E402

SAMPLE = ROOT / "ksdiff_qgis" / "resources" / "sample"
CONFIGS = [(1, 1), (2, 1), (1, 2)]   # (worker processes, threads per scene)
SOURCES = [
    (SAMPLE / "demo_pan.tif", SAMPLE / "demo_ms.tif", "wv2"),
    (ROOT / "tests" / "data" / "l8_pan.tif", ROOT / "tests" / "data" / "l8_ms.tif", "landsat8"),
]
RESULTS = ROOT / "bench" / "batch_results.json"


def make_scenes(out_dir: Path, count: int = 8) -> list[Scene]:
    """``count`` scenes alternating between the sources, each with its own output."""
    scenes = []
    for i in range(count):
        pan, ms, sensor = SOURCES[i % len(SOURCES)]
        kwargs = {"pan_path": str(pan), "ms_path": str(ms), "sensor": sensor, "method": "ksdiff",
                  "output_path": str(out_dir / f"scene{i}.tif")}
        scenes.append(Scene(i + 2, kwargs))
    return scenes


def time_config(workers: int, threads: int, repeats: int) -> dict:
    """Start a local cluster, run the 8 scenes ``repeats`` times (fresh outputs), keep the best wall time."""
    t0 = time.perf_counter()
    with batch.connect(None, workers) as client:
        client.wait_for_workers(workers)
        startup = time.perf_counter() - t0
        walls, busy, mpx = [], [], 0.0
        for _ in range(repeats):
            with tempfile.TemporaryDirectory(prefix="ksdiff-bench-batch-") as d:
                records, summary = batch.run(make_scenes(Path(d)), client, threads=threads, progress=False)
            failed = [r for r in records if r["status"] != "done"]
            if failed:
                raise SystemExit(f"bench_batch: scene failed: {failed[0]['error']}")
            walls.append(summary["seconds"])
            busy.append(sum(r["seconds"] for r in records))
            mpx = summary["mpx"]
    i = walls.index(min(walls))
    # scene-seconds per wall second: how many scenes really ran at once (telling on a shared, busy CPU)
    return {"workers": workers, "threads_per_scene": threads, "startup_seconds": round(startup, 2),
            "seconds": round(walls[i], 3), "all_seconds": walls, "scene_seconds": round(busy[i], 3),
            "concurrency": round(busy[i] / walls[i], 2), "mpx": mpx, "mpx_per_s": round(mpx / walls[i], 3)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    import dask

    load_before = os.getloadavg()
    runs = [time_config(w, t, args.repeats) for w, t in CONFIGS]
    by = {(r["workers"], r["threads_per_scene"]): r["seconds"] for r in runs}
    result = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": batch.usable_cores(), "platform": platform.platform(), "dask": dask.__version__,
                    "loadavg_before": [round(x, 2) for x in load_before],
                    "loadavg_after": [round(x, 2) for x in os.getloadavg()]},
        "scenes": 8, "method": "ksdiff", "sources": [f"{p.relative_to(ROOT)} ({s})" for p, _, s in SOURCES],
        "runs": runs,
        "scaling_2_vs_1_worker": round(by[(1, 1)] / by[(2, 1)], 2),
        "two_workers_vs_one_worker_two_threads": round(by[(1, 2)] / by[(2, 1)], 2),
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    for r in runs:
        print(f"{r['workers']} worker(s) x {r['threads_per_scene']} thread(s): {r['seconds']:.2f} s for 8 scenes "
              f"({r['mpx_per_s']:.2f} Mpx/s; concurrency {r['concurrency']}; "
              f"cluster start {r['startup_seconds']:.1f} s)")
    print(f"scaling 1 -> 2 workers: {result['scaling_2_vs_1_worker']}x; wrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
