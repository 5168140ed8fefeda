"""The runtime: onnxruntime sessions, rasterio tiling, hnswlib search, vector and atomic file
output. No typer, rich or torch here."""
