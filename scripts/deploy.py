"""`make deploy`: install dist/ksdiff_qgis.zip into the current user's QGIS profile and enable it.

It then installs ONNX Runtime for that profile with the plugin's own `ksdiff:install_runtime`
algorithm (the menu action runs the same). The profile root is ``$QGIS_CUSTOM_CONFIG_PATH`` when set (QGIS's own
variable; tests use a temporary
one), else ``~/.local/share/QGIS/QGIS3``; the profile is ``default`` unless ``--profile`` says otherwise.
Afterwards ``qgis_process run ksdiff:pansharpen -- ...`` works headless (for the ``default`` profile: see below).

qgis_process (3.22) has no ``--profile`` and always opens its root's ``default`` profile (profiles.ini's
``defaultProfile`` is ignored), so for another profile both qgis_process steps run with a temporary root whose
``profiles/default`` links to the chosen profile.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QGIS_PROCESS = "/usr/bin/qgis_process.bin"   # Debian's wrapper passes an option qgis_process rejects


def profile_dir(profile: str = "default") -> Path:
    base = Path(os.environ.get("QGIS_CUSTOM_CONFIG_PATH") or Path.home() / ".local/share/QGIS/QGIS3")
    return base / "profiles" / profile


def profile_plugins_dir(profile: str = "default") -> Path:
    return profile_dir(profile) / "python" / "plugins"


@contextmanager
def profile_env(profile: str = "default") -> Iterator[dict]:
    """Environment under which qgis_process acts on ``profile`` (see the module's docstring): {} for ``default``,
    else QGIS_CUSTOM_CONFIG_PATH set to a temporary root whose ``profiles/default`` links to the profile."""
    if profile == "default":
        yield {}
        return
    target = profile_dir(profile)
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ksdiff_deploy_") as tmp:
        (Path(tmp) / "profiles").mkdir()
        os.symlink(target, Path(tmp) / "profiles" / "default", target_is_directory=True)
        yield {"QGIS_CUSTOM_CONFIG_PATH": tmp}


def install(zip_path: Path, plugins_dir: Path) -> Path:
    """Unpack the plugin, replacing an older copy only once the new one is complete."""
    plugins_dir.mkdir(parents=True, exist_ok=True)
    target = plugins_dir / "ksdiff_qgis"
    with tempfile.TemporaryDirectory(dir=plugins_dir) as tmp:
        with zipfile.ZipFile(zip_path) as zf:
            zf.extractall(tmp)
        if target.exists():
            shutil.rmtree(target)
        shutil.move(str(Path(tmp) / "ksdiff_qgis"), target)
    return target


def enable(env: dict | None = None) -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", **(env or {})}
    res = subprocess.run([QGIS_PROCESS, "plugins", "enable", "ksdiff_qgis"], capture_output=True, text=True, env=env)
    # a redeploy (an upgrade) onto a profile that has it enabled: qgis_process says so with a non-zero status
    if res.returncode != 0 and "already enabled" not in res.stdout + res.stderr:
        raise SystemExit(f"make deploy: enabling the plugin failed:\n{res.stdout}\n{res.stderr}")


def install_runtime(env: dict | None = None) -> str:
    """Install ONNX Runtime for the profile with the plugin's own algorithm (what the menu action runs)."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", **(env or {})}
    res = subprocess.run([QGIS_PROCESS, "run", "ksdiff:install_runtime", "--", "PACKAGE=auto"],
                         capture_output=True, text=True, env=env)
    if res.returncode != 0:
        raise SystemExit(f"make deploy: installing ONNX Runtime failed:\n{res.stdout[-3000:]}\n{res.stderr[-2000:]}")
    lines = [ln for ln in res.stdout.splitlines() if "installed in" in ln]
    return lines[-1] if lines else "ONNX Runtime installed"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--zip", type=Path, default=ROOT / "dist" / "ksdiff_qgis.zip")
    ap.add_argument("--profile", default="default", help="the QGIS profile to install into (default: default)")
    ap.add_argument("--no-runtime", action="store_true", help="skip installing ONNX Runtime for the profile")
    args = ap.parse_args(argv)
    if not args.zip.exists():
        raise SystemExit(f"make deploy: {args.zip} not found; run 'make package' first")
    target = install(args.zip, profile_plugins_dir(args.profile))
    with profile_env(args.profile) as env:
        enable(env)
        print(f"make deploy: installed and enabled in {target}")
        if not args.no_runtime:
            said = install_runtime(env)
            if env:   # name the profile's folder, not the temporary link to it
                said = said.replace(str(Path(env["QGIS_CUSTOM_CONFIG_PATH"]) / "profiles" / "default"),
                                    str(profile_dir(args.profile)))
            print(f"make deploy: {said}")
    print(try_line(args.profile))
    return 0


def try_line(profile: str) -> str:
    """The closing hint: a qgis_process command for ``default``; for another profile, that qgis_process (3.22) does
    not open it (QA136: the hinted command said "Algorithm ksdiff:pansharpen not found!")."""
    if profile == "default":
        return "try: qgis_process run ksdiff:pansharpen -- PAN=pan.tif MS=ms.tif SENSOR=wv2 OUTPUT=fused.tif"
    return (f"make deploy: qgis_process uses the default profile only, so the plugin in {profile!r} is for the "
            f"desktop: start QGIS with --profile {profile!r}")


if __name__ == "__main__":
    sys.exit(main())
