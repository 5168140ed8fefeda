"""The network of a checkpoint as one ONNX graph: ``image`` -> ``embedding``, ``probabilities``."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from torch import nn

from snca_cli.contract.metadata import (
    EMBEDDING_OUTPUT,
    INPUT_NAME,
    PROBABILITIES_OUTPUT,
    ModelMetadata,
)
from snca_cli.errors import SncaError
from snca_cli.runtime.onnx_graph import fold_static_dims
from snca_train.network import SceneEmbeddingNet

OPSET = 17
BATCH_AXIS = "N"
#: Largest difference between torch and onnxruntime outputs accepted after an export.
PARITY_TOLERANCE = 1e-4


#: Orientations an exported graph can average over: the image itself, or its 8 flips and
#: quarter turns (test-time augmentation inside the graph).
ORIENTATIONS = (1, 8)


class ExportedNet(nn.Module):
    """The exported computation: unit-length embedding and softmax class probabilities; with
    ``orientations=8`` both are averaged over the 8 flips and quarter turns of each image (the
    mean embedding renormalised), as ``snca evaluate --tta`` does outside the graph."""

    def __init__(self, network: SceneEmbeddingNet, orientations: int = 1) -> None:
        super().__init__()
        if orientations not in ORIENTATIONS:
            raise SncaError(f"a graph averages over 1 or 8 orientations, not {orientations}")
        self.network = network
        self.orientations = orientations

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.orientations == 1:
            embedding, logits = self.network(image)
            return embedding, F.softmax(logits, dim=1)
        views = []
        for view in (image, image.flip(3)):
            for _ in range(4):
                views.append(view)
                # a quarter turn, as torch.rot90(view, 1, (2, 3)), which ONNX cannot export
                view = view.flip(3).transpose(2, 3)
        embedding, logits = self.network(torch.cat(views))
        mean_embedding = embedding.unflatten(0, (len(views), -1)).mean(dim=0)
        probabilities = F.softmax(logits, dim=1).unflatten(0, (len(views), -1)).mean(dim=0)
        return F.normalize(mean_embedding, dim=1), probabilities


def export_graph(network: SceneEmbeddingNet, path: Path, orientations: int = 1) -> None:
    """Write ``network`` (eval mode) to ``path`` as ONNX (opset 17, dynamic batch size),
    averaging over ``orientations`` orientations of each image (see :class:`ExportedNet`)."""
    config = network.config
    example = torch.rand(2, config.input_bands, config.image_size, config.image_size)
    batch = {0: BATCH_AXIS}
    # the exporter restores the wrapper's train/eval mode on every submodule afterwards: the
    # wrapper must be in eval mode too, or ``network`` comes back in training mode
    wrapper = ExportedNet(network, orientations).eval()
    with warnings.catch_warnings():
        # the TorchScript exporter is deprecated but remains the stable path for these CNNs; its
        # tracer warns about shapes turned into constants, which is right: H and W are fixed
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(
            wrapper,
            (example,),
            str(path),
            input_names=[INPUT_NAME],
            output_names=[EMBEDDING_OUTPUT, PROBABILITIES_OUTPUT],
            dynamic_axes={INPUT_NAME: batch, EMBEDDING_OUTPUT: batch, PROBABILITIES_OUTPUT: batch},
            opset_version=OPSET,
            dynamo=False,
        )
    # the exporter leaves the embedding width symbolic (it comes out of a Shape/Expand of the
    # L2 normalisation); state the output shapes exactly
    model = onnx.load(str(path))
    widths = {EMBEDDING_OUTPUT: config.embedding_dim, PROBABILITIES_OUTPUT: config.num_classes}
    for output in model.graph.output:
        batch_dim, width_dim = output.type.tensor_type.shape.dim
        batch_dim.dim_param = BATCH_AXIS
        width_dim.dim_value = widths[output.name]
    fold_static_dims(model)  # the "same" paddings' Shape arithmetic, computed once at load
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))


def set_metadata(path: Path, metadata: ModelMetadata) -> None:
    """Replace the ``metadata_props`` of the ONNX file at ``path`` and check the model."""
    model = onnx.load(str(path))
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, metadata.to_props())
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def check_parity(
    network: SceneEmbeddingNet, path: Path, images: np.ndarray, orientations: int = 1
) -> float:
    """Largest absolute difference between torch (:class:`ExportedNet`) and onnxruntime outputs
    on ``images``; SncaError when above :data:`PARITY_TOLERANCE`."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    onnx_embedding, onnx_probabilities = session.run(
        [EMBEDDING_OUTPUT, PROBABILITIES_OUTPUT], {INPUT_NAME: images.astype(np.float32)}
    )
    with torch.inference_mode():
        embedding, probabilities = ExportedNet(network, orientations).eval()(
            torch.from_numpy(images.astype(np.float32))
        )
    difference = max(
        float(np.abs(onnx_embedding - embedding.numpy()).max()),
        float(np.abs(onnx_probabilities - probabilities.numpy()).max()),
    )
    if difference > PARITY_TOLERANCE:
        raise SncaError(
            f"the exported model differs from the checkpoint by {difference:.2e} "
            f"(more than {PARITY_TOLERANCE:.0e}); this backbone does not export faithfully"
        )
    return difference
