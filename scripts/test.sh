#!/usr/bin/env bash
# Set up (idempotent) and run every test: runtime + training in .venv, the plugin in real headless QGIS.
# Shared real data is used when SNCA_SHARED_DATA names the folder holding aid150/ and geotiff/.
# Arguments go to both pytest runs: `bash scripts/test.sh -m "not slow"` is the fast lane, no
# argument runs everything (CI). A selection of no test fails either run (tests/conftest.py).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m ruff check .
.venv/bin/python -m pytest -q "$@"
if [ -x .venv-qgis/bin/python ]; then
  QT_QPA_PLATFORM=offscreen .venv-qgis/bin/python -m pytest -q -p no:cacheprovider tests/qgis "$@"
elif [ "${SNCA_REQUIRE_QGIS:-0}" = 1 ]; then
  echo "QGIS tests required but .venv-qgis is missing" >&2
  exit 1
fi
