#!/usr/bin/env bash
# Rebuild the model that ships in snca_cli/models/ from a finished `snca train` run on AID,
# and check it: export (fp32 + int8, metadata, model card, test metrics), the GeoTIFF mosaic
# check, the evaluation figures, and the demo.
#   bash benchmarks/default_model.sh AID_DIR RUN_DIR [WORK_DIR]
# The shipped model is the SNCA+CE (memory bank) run of benchmarks/aid_table.py (docs/results.md):
#   python benchmarks/aid_table.py --data AID_DIR --runs runs/aid-table --epochs 28 --validate-every 28
#   (trained on a GPU, one process per method: see the Reproduce section of docs/results.md)
#   bash benchmarks/default_model.sh AID_DIR runs/aid-table/snca-ce-bank
set -euo pipefail
data=${1:?AID folder}
run=${2:?run folder}
work=${3:-runs/default-model-checks}
model=snca_cli/models/snca-aid150-lite0.onnx
mkdir -p "$work" snca_cli/models
# AID's scenes are 0.5-8 m/px: classify and index warn on rasters far outside that
snca export "$run/best.pt" -o "$model" --data "$data" --int8 --training-resolution 0.5 8 --force
python benchmarks/mosaic_check.py --model "$model" --data "$data" --split "$run/split.json" \
  --out "$work/mosaic" --force
python benchmarks/aid_table.py --data "$data" --only-report "$run" --model "$model" \
  --out "$work/report"
snca demo -o "$work/demo" --force
