"""snca: remote-sensing scene embeddings (SNCA+CE) for classification and similarity search.

The runtime core (this package) needs no PyTorch: it reads ONNX models exported by
``snca export`` and runs them with onnxruntime over GeoTIFF tiles.
"""

__version__ = "0.1.0"
