"""Helpers shared by the test modules: tiny ONNX models, generated rasters and scenes, readers."""
