"""`make package`: build dist/ksdiff_qgis.zip, the archive QGIS's plugin installer accepts.

One top folder ``ksdiff_qgis/`` holding the plugin code, metadata.txt, LICENSE, the icon and the bundled
models (all real files inside the plugin folder). Caches and the demo scene stay out.

The plugin folder holds the authoritative ``metadata.txt`` and ``LICENSE``; the copies at the repository
root (for the design card and for code hosts) are refreshed here (``sync_root_copies``) and a test checks
that they agree.

The zip also holds ``ksdiff_qgis/build.txt``: the git commit it was built from (``-dirty`` with uncommitted changes)
and the build date, which every output's TIFFTAG_SOFTWARE and KSDIFF_BUILD then name (``engine/provenance.py``):
the version in metadata.txt alone named an old zip and newer code alike. It is written straight into the zip, never
into the repository.
"""
from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = ROOT / "ksdiff_qgis"
DIST = ROOT / "dist" / "ksdiff_qgis.zip"
EXCLUDE_DIRS = {"__pycache__", "sample"}
EXCLUDE_SUFFIXES = {".pyc", ".pyo", ".aux.xml"}
ROOT_COPIES = ("metadata.txt", "LICENSE")   # ksdiff_qgis/<name> is the original, <root>/<name> a copy


def sync_root_copies(root: Path = ROOT) -> list[str]:
    """Copy the plugin folder's metadata.txt and LICENSE to the repository root when they differ."""
    changed = []
    for name in ROOT_COPIES:
        src, dst = root / "ksdiff_qgis" / name, root / name
        if not dst.exists() or dst.read_bytes() != src.read_bytes():
            dst.write_bytes(src.read_bytes())
            changed.append(name)
    return changed


def plugin_files() -> list[tuple[Path, str]]:
    """(file on disk, name in the archive) for every file the plugin ships."""
    files = []
    walked = (Path(d) / f for d, _, names in os.walk(PLUGIN) for f in names)
    for path in sorted(walked):
        rel = path.relative_to(PLUGIN)
        if any(part in EXCLUDE_DIRS for part in rel.parts):
            continue
        if "".join(path.suffixes[-2:]) in EXCLUDE_SUFFIXES or path.suffix in EXCLUDE_SUFFIXES:
            continue
        files.append((path, f"ksdiff_qgis/{rel.as_posix()}"))
    return files


def _git(*args: str) -> str | None:
    """``git args`` in the repository, or None without git or a repository."""
    try:
        out = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def build_text(today: datetime.date | None = None) -> str:
    """``build.txt``: 'commit=1a2b3c4' ('-dirty' when tracked files differ from it; 'source' without git) and
    'date=2026-12-07'."""
    commit = _git("rev-parse", "--short", "HEAD")
    if commit and _git("status", "--porcelain", "--untracked-files=no"):
        commit += "-dirty"
    date = (today or datetime.datetime.now(datetime.timezone.utc).date()).isoformat()
    return f"commit={commit or 'source'}\ndate={date}\n"


def build(dest: Path = DIST) -> Path:
    """Write the plugin zip to ``dest`` (complete or not at all), with its ``build.txt``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".zip.partial")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path, name in plugin_files():
            if name != "ksdiff_qgis/build.txt":   # a stray one in the tree would name another build
                zf.write(path, name)
        zf.writestr("ksdiff_qgis/build.txt", build_text())
    tmp.replace(dest)
    return dest


def main(argv: list[str] | None = None) -> int:
    # no options: argparse answers --help (and refuses anything else) before anything is built (QA119: --help built)
    argparse.ArgumentParser(prog="scripts/package.py", description=(__doc__ or "").split("\n\n")[0]).parse_args(argv)
    for name in sync_root_copies():
        print(f"make package: refreshed the root copy of {name} from ksdiff_qgis/{name}")
    dest = build()
    with zipfile.ZipFile(dest) as zf:
        names = zf.namelist()
    for required in ("ksdiff_qgis/metadata.txt", "ksdiff_qgis/__init__.py", "ksdiff_qgis/LICENSE",
                     "ksdiff_qgis/build.txt"):
        if required not in names:
            raise SystemExit(f"make package: {required} missing from {dest}")
    with zipfile.ZipFile(dest) as zf:
        built = zf.read("ksdiff_qgis/build.txt").decode().split()
    print(f"make package: {dest} ({dest.stat().st_size / 1e6:.2f} MB, {len(names)} files; {', '.join(built)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
