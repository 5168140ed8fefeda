"""Export training checkpoints to the snca ONNX contract (:mod:`snca_cli.metadata`).

Needs the [train] extra (torch, onnx). :mod:`export.onnx_export` writes the graph and its
metadata, :mod:`export.card` the model card, :mod:`export.quantize` the int8 variant and
:mod:`export.pipeline` ties them together for ``snca export``.
"""
