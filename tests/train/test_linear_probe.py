"""The linear probe that a run on new classes starts its class head from: the minimiser of the
class-balanced, L2-penalised cross-entropy on the frozen network's features."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

from torch.nn import functional as F  # noqa: E402

from snca_train.linear_probe import PROBE_L2, fit_linear_probe, raw_features  # noqa: E402
from snca_train.network import ModelConfig, SceneEmbeddingNet  # noqa: E402
from snca_train.training_data import DeviceImages, ImageCache  # noqa: E402

COLOURS = np.array([(60, 170, 60), (180, 70, 60), (40, 70, 170)])


def _images(per_class: tuple[int, ...]) -> tuple[DeviceImages, torch.Tensor]:
    """Noisy 32 px images of each class's colour, ``per_class[c]`` of class c."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(len(per_class)), per_class)
    noise = rng.normal(0, 30, (len(labels), 32, 32, 3))
    pixels = np.clip(COLOURS[labels][:, None, None, :] + noise, 0, 255).astype(np.uint8)
    cache = ImageCache(pixels, labels, [f"{i}.png" for i in range(len(labels))])
    return DeviceImages(cache, torch.device("cpu")), torch.from_numpy(labels)


def _network() -> SceneEmbeddingNet:
    torch.manual_seed(0)
    return SceneEmbeddingNet(ModelConfig("resnet18", 3, 16, 3, 32), pretrained=False)


def _objective(network, features, labels, weights) -> torch.Tensor:
    logits = network.classifier(features)
    loss = F.cross_entropy(logits, labels, weight=weights)
    return loss + PROBE_L2 * network.classifier.weight.pow(2).sum()


def test_the_probe_minimises_the_balanced_penalised_cross_entropy() -> None:
    images, labels = _images((12, 4, 2))  # unbalanced: weights 18/36, 18/12, 18/6
    network = _network()
    backbone_before = {
        k: v.clone() for k, v in network.state_dict().items() if "classifier" not in k
    }
    accuracy = fit_linear_probe(network, images, labels)
    assert accuracy == 1.0
    features = raw_features(network, images)
    weights = torch.tensor([18 / 36, 18 / 12, 18 / 6])
    network.classifier.zero_grad()
    loss = _objective(network, features, labels, weights)
    loss.backward()
    # a minimum: the gradient vanishes and any small step raises the objective
    assert network.classifier.weight.grad.abs().max() < 1e-3
    assert network.classifier.bias.grad.abs().max() < 1e-3
    with torch.no_grad():
        for scale in (1e-2, -1e-2):
            step = scale * torch.randn_like(network.classifier.weight)
            network.classifier.weight.add_(step)
            assert _objective(network, features, labels, weights) > loss
            network.classifier.weight.sub_(step)
    for key, value in network.state_dict().items():  # only the head changed
        if key in backbone_before:
            assert torch.equal(value, backbone_before[key]), key


def test_the_probe_is_deterministic() -> None:
    images, labels = _images((5, 5, 5))
    first, second = _network(), _network()
    fit_linear_probe(first, images, labels)
    fit_linear_probe(second, images, labels)
    assert torch.equal(first.classifier.weight, second.classifier.weight)
