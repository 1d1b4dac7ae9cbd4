"""The peer tools the bench compares with, each run exactly as a user runs it from the command line.

* ``gdal_pansharp``: GDAL's pansharpening as QGIS's ``gdal:pansharp`` runs it (weighted Brovey, GDAL's default
  weights). Its Python main runs in the calling process (the speed bench's worker), with the same argv.
* ``otb_rcs``, ``otb_bayes``: Orfeo ToolBox's ``BundleToPerfectSensor`` (the MS superimposed onto the PAN grid from
  the georeferencing with OTB's bicubic interpolator, then fused: OTB's own Superimpose + Pansharpening in one
  command), when ``otbcli_BundleToPerfectSensor`` is on PATH (Debian/Ubuntu: ``apt-get install otb-bin``). Its
  third method, LMVM, is left out: 50 s and 0.87 GB on the 4096² speed scene, against 14 s for RCS.

Stdlib only at import: ``python -m bench.external METHOD PAN MS OUT`` is the speed bench's launcher for a
command-line tool, so the peak RSS it reports is the tool's own process's (not a Python worker's carried over).
"""
from __future__ import annotations

import importlib
import json
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Tool:
    """One peer tool's method: its exact command line (``{pan}``, ``{ms}``, ``{out}`` filled in per run)."""

    method: str                     # the bench's method name
    label: str                      # what the report calls it
    argv: tuple[str, ...]           # the command a user types; argv[0] is the program
    note: str                       # how it runs, for the report
    package: str                    # what installs it, for the one line when it is missing
    python_main: str | None = None  # run this module's main(argv) in this process instead of a subprocess
    quiet: tuple[str, ...] = ()     # appended to the argv when the bench runs it (progress output off)

    @property
    def program(self) -> str:
        return self.argv[0]

    def command(self, pan: str = "PAN", ms: str = "MS", out: str = "OUT") -> list[str]:
        return [a.format(pan=pan, ms=ms, out=out) for a in self.argv]

    def available(self) -> bool:
        """In-process tools come with the bench's own GDAL; a command-line tool must be on PATH."""
        return self.python_main is not None or shutil.which(self.program) is not None


def _otb(method: str, name: str) -> Tool:
    return Tool(f"otb_{method}", f"Orfeo ToolBox BundleToPerfectSensor, {name}",
                ("otbcli_BundleToPerfectSensor", "-inp", "{pan}", "-inxs", "{ms}", "-method", method,
                 "-out", "{out}", "uint16"),
                f"Orfeo ToolBox superimposes the MS onto the PAN grid from the georeferencing, bicubic, then fuses "
                f"with {name}; its defaults otherwise", "otb-bin")


TOOLS: dict[str, Tool] = {t.method: t for t in (
    # exactly QGIS's processing/algs/gdal/pansharp.py defaults: -r cubic -of GTiff, no weights
    Tool("gdal_pansharp", "GDAL pansharpening (QGIS gdal:pansharp)",
         ("gdal_pansharpen.py", "{pan}", "{ms}", "{out}", "-r", "cubic", "-of", "GTiff"),
         "as QGIS's `gdal:pansharp` runs it: weighted Brovey with GDAL's default weights", "GDAL",
         python_main="osgeo_utils.gdal_pansharpen", quiet=("-q",)),
    _otb("rcs", "RCS"),
    _otb("bayes", "Bayesian fusion"),
)}


def available_tools() -> tuple[list[Tool], list[str]]:
    """(the tools this machine has, one line per missing program saying how to include it)."""
    have = [t for t in TOOLS.values() if t.available()]
    missing = {t.program: t.package for t in TOOLS.values() if not t.available()}
    lines = [f"{prog} not on PATH: its rows ({', '.join(t.method for t in TOOLS.values() if t.program == prog)}) "
             f"are left out (apt-get install {pkg} to include them)" for prog, pkg in missing.items()]
    return have, lines


def run_tool(tool: Tool, pan: str, ms: str, out: str) -> float:
    """Fuse with a peer tool; returns seconds. Raises RuntimeError with the tool's own message when it fails."""
    argv = tool.command(pan, ms, out) + list(tool.quiet)
    t0 = time.perf_counter()
    if tool.python_main:
        rc, err = importlib.import_module(tool.python_main).main(argv), ""
    else:
        res = subprocess.run(argv, capture_output=True, text=True)
        rc, err = res.returncode, (res.stderr + res.stdout).strip()
    secs = time.perf_counter() - t0
    if rc != 0:
        # OTB prints its reason as "(FATAL) ..." lines among its INFO log: those first, else the last lines
        fatal = [ln for ln in err.splitlines() if "FATAL" in ln or "ERROR" in ln] or err.splitlines()[-5:]
        raise RuntimeError(f"{' '.join(argv)} failed (exit {rc}): " + " | ".join(fatal)[-1000:])
    return secs


def main(argv: list[str]) -> int:
    """Launcher: run one command-line tool, print its seconds and its process's peak RSS as JSON."""
    method, pan, ms, out = argv
    secs = run_tool(TOOLS[method], pan, ms, out)
    # the child's ru_maxrss: its own high-water mark, floored at this small launcher's RSS when it was spawned
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    print(json.dumps({"seconds": secs, "session_seconds": 0.0, "peak_mb": peak, "ru_maxrss_mb": peak}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
