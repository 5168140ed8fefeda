#!/usr/bin/env bash
# Set up the snca runtime (no PyTorch) in .venv and run the offline demo into ./snca-demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
fi
.venv/bin/python -m pip install -q -e ".[demo]"
.venv/bin/snca demo --force "$@"
