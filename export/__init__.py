"""Export training checkpoints to the snca ONNX contract (:mod:`snca_cli.contract.metadata`).

Installed as ``snca_export`` (the repository folder is ``export/``). Needs the [train] extra
(torch, onnx). :mod:`snca_export.onnx_export` writes the graph and its
metadata, :mod:`snca_export.card` the model card, :mod:`snca_export.quantize` the int8 variant and
:mod:`snca_export.workflow` ties them together for ``snca export``.
"""
