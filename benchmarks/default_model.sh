#!/usr/bin/env bash
# Rebuild the model that ships in snca_cli/models/ from a finished `snca train` run on AID,
# and check it: export (fp32 + int8, metadata, model card, test metrics), the GeoTIFF mosaic
# check, the evaluation figures, and the demo.
#   bash benchmarks/default_model.sh AID_DIR RUN_DIR [WORK_DIR]
# The run is made with (see docs/results.md for the schedule actually used):
#   snca train AID_DIR --backbone efficientnet_lite0 --image-size 150 --batch-size 64 --lr 0.02 \
#     --epochs 6 -o RUN_DIR
set -euo pipefail
data=${1:?AID folder}
run=${2:?run folder}
work=${3:-runs/default-model-checks}
model=snca_cli/models/snca-aid150-lite0.onnx
mkdir -p "$work" snca_cli/models
snca export "$run/best.pt" -o "$model" --data "$data" --int8 --force
python benchmarks/mosaic_check.py --model "$model" --data "$data" --split "$run/split.json" \
  --out "$work/mosaic" --force
python benchmarks/aid_table.py --data "$data" --only-report "$run" --model "$model" \
  --out "$work/report"
snca demo -o "$work/demo" --force
