"""The contract: what an snca model promises (ONNX metadata), how raw values become its input,
and how rasters are tiled for it. Pure rules, shared by every layer above."""
