#!/usr/bin/env bash
# Set up snca for development on a Debian/Ubuntu machine (idempotent; quick when already done).
#   .venv       runtime + training and cluster extras + test tools (torch, dask, onnx, onnxruntime,
#               rasterio, hnswlib, ...)
#   .venv-qgis  QGIS's own Python (/usr/bin/python3, --system-site-packages, numpy<2) for the plugin
# Usage: bash scripts/setup.sh [--no-train] [--no-qgis]
set -euo pipefail
cd "$(dirname "$0")/.."

with_train=1
with_qgis=1
for arg in "$@"; do
  case "$arg" in
    --no-train) with_train=0 ;;
    --no-qgis) with_qgis=0 ;;
    *) echo "unknown option: $arg" >&2; exit 2 ;;
  esac
done

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
fi
extras="test,cluster"
[ "$with_train" = 1 ] && extras="train,test,cluster"
.venv/bin/python -m pip install -q -e ".[$extras]"

if [ "$with_qgis" = 1 ]; then
  if ! /usr/bin/python3 -c "import qgis.core" >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq
      apt-get install -y -qq python3-qgis qgis-providers python3-venv python3-pip python3-dev build-essential >/dev/null
    else
      echo "QGIS's Python is missing: sudo apt-get install python3-qgis qgis-providers python3-venv" >&2
      echo "(skipping the QGIS plugin environment)" >&2
      exit 0
    fi
  fi
  if [ ! -x .venv-qgis/bin/python ]; then
    /usr/bin/python3 -m venv --system-site-packages .venv-qgis
  fi
  .venv-qgis/bin/python -m pip install -q -r qgis_plugin/requirements-qgis.txt
  .venv-qgis/bin/python -m pip install -q --no-deps -e .
fi
