#!/usr/bin/env bash
# Idempotent project setup: QGIS from Debian (when missing), then .venv with the pinned requirements.
# requirements/dev.txt (what `make test` needs) pulls in training.txt, which pulls in plugin.txt; the venv is
# refreshed whenever any requirements file changes.
set -euo pipefail
cd "$(dirname "$0")/.."

SYS_PY=/usr/bin/python3
VENV=.venv
REQ=requirements/dev.txt

if ! QT_QPA_PLATFORM=offscreen "$SYS_PY" -c "import qgis.core" >/dev/null 2>&1; then
  echo "setup: QGIS Python bindings not found; installing QGIS from Debian (about 2 minutes)"
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "setup: need root to install QGIS: run 'apt-get install -y qgis python3-qgis qgis-providers gdal-bin' as root" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q qgis python3-qgis qgis-providers gdal-bin
fi

if ! "$SYS_PY" -c "import pip, venv" >/dev/null 2>&1; then
  echo "setup: installing python3-pip and python3-venv (the plugin installs ONNX Runtime with pip)"
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q python3-pip python3-venv
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV (with system site-packages so qgis and osgeo stay importable)"
  "$SYS_PY" -m venv --system-site-packages "$VENV"
fi

stamp="$VENV/.requirements.sha256"
want=$(cat requirements/*.txt | sha256sum | cut -d' ' -f1)   # every file: dev.txt includes the others
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: installing $REQ into $VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -r "$REQ"
  echo "$want" > "$stamp"
fi
QT_QPA_PLATFORM=offscreen "$VENV/bin/python" -c "import qgis.core, osgeo.gdal, numpy, onnxruntime, rasterio, torch, ruff" \
  || { echo "setup: the venv cannot import its dependencies together" >&2; exit 1; }
