#!/usr/bin/env bash
# Set up snca for development on a Debian/Ubuntu machine (idempotent; quick when already done).
#   .venv       runtime + training and cluster extras + test tools (torch, dask, onnx, onnxruntime,
#               rasterio, hnswlib, ...)
#   .venv-qgis  QGIS's own Python (/usr/bin/python3, --system-site-packages) with this checkout's
#               snca under the constraints of the plugin's runtime installer (QGIS's packages at
#               their versions) and hnswlib (the exact search is tested too), then the test tools on top without changing anything it installed
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
extras="hnsw,test,cluster,release"
[ "$with_train" = 1 ] && extras="hnsw,train,test,cluster,release"
.venv/bin/python -m pip install -q -e ".[$extras]"

if [ "$with_qgis" = 1 ]; then
  # qgis (the full package) brings qgis_process, which the Processing tests run too
  if ! /usr/bin/python3 -c "import qgis.core" >/dev/null 2>&1 || ! command -v qgis_process.bin >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq
      apt-get install -y -qq qgis python3-qgis qgis-providers xvfb xauth python3-venv python3-pip python3-dev build-essential >/dev/null
    elif ! /usr/bin/python3 -c "import qgis.core" >/dev/null 2>&1; then
      echo "QGIS's Python is missing: sudo apt-get install qgis python3-qgis qgis-providers python3-venv" >&2
      echo "(skipping the QGIS plugin environment)" >&2
      exit 0
    else
      echo "qgis_process is missing (sudo apt-get install qgis): its tests will be skipped" >&2
    fi
  fi
  if [ ! -x .venv-qgis/bin/python ]; then
    /usr/bin/python3 -m venv --system-site-packages .venv-qgis
  fi
  # snca from this checkout, with every package QGIS's Python has kept at its version: the
  # constraints the plugin's Install runtime button applies (snca_qgis/installer.py)
  PYTHONPATH=qgis_plugin /usr/bin/python3 -c 'from snca_qgis.installer import constraints_for, present_distributions; print("\n".join(constraints_for(present_distributions())))' > .venv-qgis/qgis-constraints.txt
  .venv-qgis/bin/python -m pip install -q -c .venv-qgis/qgis-constraints.txt ".[hnsw]"
  # test tools, constrained to what is installed so they cannot change the plugin's runtime
  .venv-qgis/bin/python -m pip freeze --exclude-editable | grep -v ' @ ' > .venv-qgis/constraints.txt
  .venv-qgis/bin/python -m pip install -q -c .venv-qgis/constraints.txt \
      pytest "opencv-python-headless>=4.5.5.64,<=4.9.0.80"  # Deepness's own range (its tests)
fi
