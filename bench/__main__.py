"""``python -m bench`` (`make bench`): see the package docstring (``bench/__init__.py``)."""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from osgeo import gdal

from model_core.datacache import data_dir

from . import __doc__ as DOC
from .common import BASELINE_MODELS_DIR, BUNDLED_MODELS_DIR, CLASSICAL, DOCS, RESULTS
from .external import available_tools
from .learned import model_scores, onnx_models
from .quality import run_quality
from .report import environment, markdown, plots
from .scenes import full_scenes, mirrored_scene, needed_files, reduced_scenes
from .speed import run_learned, run_memory_scaling, run_speed, run_subprocess, worker


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench", description=DOC,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worker", nargs=6, help=argparse.SUPPRESS)
    ap.add_argument("--data", type=Path, default=None, help="data directory (default $KSDIFF_DATA)")
    ap.add_argument("--speed-size", type=int, default=4096, help="PAN side of the speed scene (default 4096)")
    ap.add_argument("--memory-sizes", default="2048,8192", help="PAN sides for the memory scaling runs ('' to skip)")
    ap.add_argument("--model-speed-size", type=int, default=1024,
                    help="PAN side of the scene on which KSDiff, its backbone and SSDiff are timed (default 1024)")
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument("--docs", type=Path, default=DOCS)
    ap.add_argument("--models", type=Path, default=BUNDLED_MODELS_DIR,
                    help="folder of ONNX models (default ksdiff_qgis/resources/models; read only)")
    ap.add_argument("--baselines", type=Path, default=BASELINE_MODELS_DIR,
                    help="folder of comparison backbones (default bench/models)")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    # GDAL's pansharpening runs in this process: fail loudly (process-wide, so set here, not at import)
    gdal.UseExceptions()
    if args.worker:
        return worker(args.worker)

    t_start = time.perf_counter()
    dd = args.data or data_dir()
    missing = [str(p) for p in needed_files(dd) if not p.exists()]
    if missing:
        print(f"make bench: real data missing ({', '.join(missing)}); run `make data` first", file=sys.stderr)
        return 2
    models = onnx_models(args.models, args.baselines)
    tools, tools_missing = available_tools()
    methods = [(m, None) for m in CLASSICAL] + models + [(t.method, None) for t in tools]
    if not models:
        print(f"bench: no ONNX model in {args.models}: learned methods skipped")
    for line in tools_missing:   # Orfeo ToolBox is optional: neither `make setup` nor CI installs it
        print(f"bench: {line}")
    tmp = Path(tempfile.mkdtemp(prefix="ksdiff_bench_"))
    results = {"environment": environment(), "methods": [m for m, _ in methods], "scenes": [], "quality": [],
               "speed": {}, "skipped": [], "tools_missing": tools_missing}
    quick = {"tiles": {}}
    try:
        run_quality(methods, [("reduced", reduced_scenes(dd, tmp)), ("full", full_scenes(dd, tmp))], tmp, results,
                    quick)

        size = args.speed_size
        pan, ms = mirrored_scene(dd, tmp, size)
        idle = run_subprocess("__idle__", pan, ms, "", "wv2")
        runs = run_speed(methods, pan, ms, size, tmp, results)
        sizes = [int(x) for x in args.memory_sizes.split(",") if x.strip()]
        scaling = run_memory_scaling(dd, tmp, sizes, (pan, ms), size)
        learned = run_learned(methods, dd, tmp, args.model_speed_size, sizes, runs, results)
        results["speed"] = {"scene": {"pan_size": size, "ms_size": size // 4, "ratio": 4, "sensor": "wv2",
                                      "desc": "WorldView-2 pair 1 (a training pair) mirrored to size; uint16"},
                            "idle_peak_mb": idle["peak_mb"], "runs": runs, "memory_scaling": scaling,
                            "learned": learned}
        results["bundled_models"] = model_scores(results, args.models)
        results["total_seconds"] = time.perf_counter() - t_start
        images = plots(results, quick, args.docs.parent / "img")
        args.results.parent.mkdir(parents=True, exist_ok=True)
        args.results.write_text(json.dumps(results, indent=1, default=float) + "\n")
        args.docs.parent.mkdir(parents=True, exist_ok=True)
        args.docs.write_text(markdown(results, images))
        print(f"bench: wrote {args.results} and {args.docs} in {results['total_seconds']:.0f} s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
