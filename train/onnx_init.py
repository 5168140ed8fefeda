"""A training network started from an exported snca ONNX model (``snca train --init MODEL.onnx``,
``--init shipped``), so that a model shipped or shared without its checkpoint can be fine-tuned.

``snca export`` folds every batch norm into the convolution before it (weight ``W' = W g / s``,
bias ``b' = b - m g / s`` with ``s = sqrt(var + eps)``), so the ONNX graph no longer holds the
batch-norm statistics. The network is rebuilt exactly in evaluation mode: each convolution takes
``W'``, the batch norm after it becomes ``b'`` plus identity (mean 0, variance ``1 - eps``, scale
1, shift ``b'``). Batch statistics of training mode would drop the folded statistics, so such a
run trains with its batch norms kept in evaluation mode (``TrainConfig.freeze_batchnorm``), the
usual practice for fine-tuning on few images anyway. Without batch statistics to renormalise
them, SGD steps act on the folded weights directly, so such a run needs a small learning rate:
:data:`FINE_TUNE_LR` unless ``--lr`` is given (on 19 Landsat chips from the shipped model, 0.001
and more wrecked the network within two epochs; at 0.0003 it labelled 18 and 19 of the 19
right in two runs).

The embedding layer, the input standardisation and, when the classes are the same (same names,
same order) and its head is the exported one, the class head come from the graph's named
initialisers; other classes (or a head of ``snca adapt``) get a new head. The rebuilt network
is checked against onnxruntime on a random image before training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

from snca_cli.contract.metadata import ModelMetadata
from snca_cli.errors import SncaError
from snca_cli.runtime.default_model import resolve_model
from snca_cli.runtime.onnx_graph import load_snca_onnx
from snca_cli.runtime.onnx_model import OnnxModel
from snca_cli.runtime.precision import named_precision
from snca_train.network import ModelConfig, SceneEmbeddingNet

#: ``--init`` value naming the model that ships with snca.
SHIPPED = "shipped"
#: Operators of an int8 (quantised) export, whose weights cannot be trained.
QUANTISED_OPS = ("QLinearConv", "ConvInteger", "DequantizeLinear")
#: The learning rate of a run from an ONNX model unless ``--lr`` is given (see above).
FINE_TUNE_LR = 3e-4
#: Largest embedding difference (unit vectors) tolerated between the rebuilt network and the graph.
PARITY_TOLERANCE = 1e-3


def is_onnx_init(init: str) -> bool:
    """Whether an ``--init`` value names an ONNX model (``shipped`` or a ``.onnx`` file)."""
    return init == SHIPPED or Path(init).suffix.lower() == ".onnx"


def _conv_batch_norm_pairs(module: nn.Module) -> list[tuple[nn.Conv2d, nn.BatchNorm2d]]:
    """Every convolution with the batch norm registered after it, in registration order (which
    is the order of the forward pass in the supported backbones)."""
    pairs: list[tuple[nn.Conv2d, nn.BatchNorm2d]] = []
    pending: nn.Conv2d | None = None
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d):
            if pending is not None:
                raise SncaError("a convolution without batch norm cannot take folded weights")
            pending = layer
        elif isinstance(layer, nn.BatchNorm2d) and pending is not None:
            pairs.append((pending, layer))
            pending = None
    if pending is not None:
        raise SncaError("a convolution without batch norm cannot take folded weights")
    return pairs


def _folded_convolutions(
    graph: onnx.GraphProto, constants: dict[str, np.ndarray]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(weight, bias)`` of every Conv node, in graph order (``constants``: the initialisers)."""
    convolutions = []
    for node in graph.node:
        if node.op_type != "Conv":
            continue
        if len(node.input) < 3 or any(name not in constants for name in node.input[1:3]):
            raise SncaError("its convolutions lack constant weights and biases")
        convolutions.append((constants[node.input[1]], constants[node.input[2]]))
    return convolutions


def read_onnx_init(init: str) -> tuple[Path, onnx.ModelProto, ModelMetadata]:
    """The file, graph and metadata of the model an ONNX ``--init`` names (a path, or
    ``shipped``); SncaError when it is missing, not an snca model or quantised."""
    path = resolve_model(None if init == SHIPPED else Path(init), "pass --init FILE")
    graph_model, metadata = load_snca_onnx(path)
    if any(node.op_type in QUANTISED_OPS for node in graph_model.graph.node):
        raise SncaError(f"--init {path.name} is quantised (int8); start from the float model")
    return path, graph_model, metadata


def onnx_init_defaults(init: str) -> dict[str, Any]:
    """The training options an ONNX ``--init`` fixes unless given: backbone, embedding size,
    image size (the model's tile size) and the learning rate :data:`FINE_TUNE_LR`."""
    _, _, metadata = read_onnx_init(init)
    return {
        "backbone": metadata.backbone,
        "embedding_dim": metadata.embedding_dim,
        "image_size": metadata.tile_size,
        "lr": FINE_TUNE_LR,
    }


def network_from_onnx(
    init: str, config: ModelConfig, class_names: list[str]
) -> tuple[SceneEmbeddingNet, bool]:
    """A new network of ``config`` holding the weights of the exported model ``init`` (a path,
    or ``shipped``), and whether its class head is the model's (else it is new); see the module
    docstring. SncaError when the model is not an snca float export of the same backbone,
    embedding size and bands."""
    path, graph_model, metadata = read_onnx_init(init)
    source = f"--init {path.name}"
    stored = {
        "backbone": metadata.backbone,
        "embedding_dim": metadata.embedding_dim,
        "input_bands": metadata.input_bands,
    }
    differences = [
        f"{key} {value} vs {getattr(config, key)}"
        for key, value in stored.items()
        if value != getattr(config, key)
    ]
    if differences:
        raise SncaError(f"{source} holds another network ({'; '.join(differences)})")
    model = SceneEmbeddingNet(config, pretrained=False)
    pairs = _conv_batch_norm_pairs(model.backbone)
    named = {t.name: numpy_helper.to_array(t) for t in graph_model.graph.initializer}
    convolutions = _folded_convolutions(graph_model.graph, named)
    if len(pairs) != len(convolutions):
        raise SncaError(
            f"{source} has {len(convolutions)} convolutions, the {config.backbone} network "
            f"{len(pairs)}"
        )
    with torch.no_grad():
        for (conv, norm), (weight, bias) in zip(pairs, convolutions, strict=True):
            if tuple(conv.weight.shape) != weight.shape:
                raise SncaError(
                    f"{source}: a convolution of shape {weight.shape} where the {config.backbone} "
                    f"network has {tuple(conv.weight.shape)}"
                )
            conv.weight.copy_(torch.tensor(weight))
            norm.weight.fill_(1.0)
            norm.bias.copy_(torch.tensor(bias))
            norm.running_mean.zero_()
            norm.running_var.fill_(1.0 - norm.eps)
        layers = {
            "network.input_mean": model.input_mean,
            "network.input_std": model.input_std,
            "network.embedding.weight": model.embedding.weight,
            "network.embedding.bias": model.embedding.bias,
        }
        for name, target in layers.items():
            if name not in named or named[name].size != target.numel():
                raise SncaError(f"{source} lacks {name} of {tuple(target.shape)}")
            target.copy_(torch.tensor(named[name]).reshape(target.shape))
        head = {
            "network.classifier.weight": model.classifier.weight,
            "network.classifier.bias": model.classifier.bias,
        }
        head_kept = list(metadata.class_names) == list(class_names) and all(
            name in named and named[name].size == target.numel() for name, target in head.items()
        )
        if head_kept:
            for name, target in head.items():
                target.copy_(torch.tensor(named[name]).reshape(target.shape))
    _check_parity(model, path, source)
    return model, head_kept


def _check_parity(model: SceneEmbeddingNet, path: Path, source: str) -> None:
    """Refuse a rebuilt network whose embedding differs from the graph's on a random image."""
    exported = OnnxModel(path, provider="cpu", precision=named_precision(path))
    metadata = exported.metadata
    image = np.random.default_rng(0).random(
        (1, metadata.input_bands, metadata.tile_size, metadata.tile_size), dtype=np.float32
    )
    expected = exported.run(image).embedding
    model.eval()
    with torch.no_grad():
        embedding, _ = model(torch.from_numpy(image))
    difference = float(np.abs(embedding.numpy() - expected).max())
    if difference > PARITY_TOLERANCE:
        raise SncaError(
            f"the network rebuilt from {source} differs from it (embedding by {difference:.3g}); "
            "give the --backbone-size it was trained with"
        )
