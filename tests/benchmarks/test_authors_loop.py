"""The re-implementation of the authors' loop: its loss matches the hand-computed NCA loss and
our SNCA loss, its memory update, and a real (tiny) run of its steps."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

from authors_loop import (  # noqa: E402
    EmbeddingNet,
    LinearAverage,
    nca_loss,
    sklearn_knn_accuracy,
    time_steps,
)
from PIL import Image  # noqa: E402

from snca_train.losses.snca import SNCALoss  # noqa: E402


def test_nca_loss_by_hand():
    # sample 0 (slot 0, class 0): others are slot 1 (class 0, e^ln3 = 3) and slot 2 (class 1, 1)
    # -> p0 = 3 / 4; sample 1 (slot 1, class 0): slot 0 (class 0, 1), slot 2 (class 1, 3)
    # -> p1 = 1 / 4
    similarities = torch.tensor([[5.0, math.log(3.0), 0.0], [0.0, 7.0, math.log(3.0)]])
    loss = nca_loss(similarities, torch.tensor([0, 1]), torch.tensor([0, 0, 1]))
    assert float(loss) == pytest.approx(-(math.log(0.75) + math.log(0.25)) / 2, rel=1e-6)


def test_nca_loss_equals_our_snca_loss():
    generator = torch.Generator().manual_seed(0)
    memory = torch.nn.functional.normalize(torch.randn(40, 16, generator=generator), dim=1)
    memory_labels = torch.arange(40) % 4
    indices = torch.tensor([3, 17, 22, 39, 8])
    features = torch.nn.functional.normalize(torch.randn(5, 16, generator=generator), dim=1)
    ours = SNCALoss(0.05)(features, memory_labels[indices], indices, memory, memory_labels)
    theirs = nca_loss(features @ memory.T / 0.05, indices, memory_labels)
    assert float(theirs) == pytest.approx(float(ours), rel=1e-5)


def test_memory_rows_are_blended_and_renormalised():
    memory = LinearAverage(3, 2, temperature=0.05, momentum=0.5)
    memory.memory = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    memory.update(torch.tensor([[0.0, 1.0]]), torch.tensor([0]))
    expected = [[math.sqrt(0.5), math.sqrt(0.5)], [0.0, 1.0], [1.0, 0.0]]
    np.testing.assert_allclose(memory.memory.numpy(), expected, atol=1e-6)


def test_sklearn_knn_votes_by_inverse_distance():
    memory = np.array([[0.0, 0.0], [0.0, 0.1], [1.0, 0.0], [1.0, 0.1]] + [[5.0, 5.0]] * 8)
    labels = np.array([0, 0, 1, 1] + [2] * 8)
    # k = 10 takes six class-2 points too, but votes weigh 1 / distance: the two points
    # 0.05 away outvote six points about 7 away
    assert sklearn_knn_accuracy(memory, labels, np.array([[0.0, 0.05], [1.0, 0.05]]), [0, 1]) == 1


def scene_files(folder, per_class: int = 4) -> list[tuple[str, int]]:
    """Random 40 x 40 JPEGs, ``per_class`` of each of two classes."""
    rng = np.random.default_rng(0)
    files = []
    for label in range(2):
        for i in range(per_class):
            path = folder / f"{label}_{i}.jpg"
            Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(path)
            files.append((str(path), label))
    return files


def test_steps_run_and_update_the_memory(tmp_path):
    files = scene_files(tmp_path)
    seconds, memory, model = time_steps(
        files, num_classes=2, image_size=32, batch_size=4, steps=3, workers=0, lr=0.01
    )
    assert len(seconds) == 3 and all(s > 0 for s in seconds)
    # every row was visited (3 steps of 4 over 8 files) and is now of unit length
    np.testing.assert_allclose(memory.memory.norm(dim=1).numpy(), np.ones(8), atol=1e-5)
    assert model.fc2.out_features == 2


def test_both_backbones_give_unit_embeddings_and_logits():
    images = torch.rand(2, 3, 32, 32)
    for backbone in ("resnet18", "efficientnet_lite0"):
        embedding, logits = EmbeddingNet(5, backbone).eval()(images)
        assert embedding.shape == (2, 128) and logits.shape == (2, 5)
        np.testing.assert_allclose(embedding.norm(dim=1).detach().numpy(), [1, 1], atol=1e-5)
    with pytest.raises(ValueError, match="unknown backbone"):
        EmbeddingNet(5, "vgg16")


def test_run_times_the_backbone_it_is_given(tmp_path, monkeypatch):
    import authors_loop

    from snca_train.efficientnet_lite import EfficientNetLite0

    networks = []

    def recording_time_steps(*args, **kwargs):
        result = time_steps(*args, **kwargs)
        networks.append(result[2])
        return result

    monkeypatch.setattr(authors_loop, "time_steps", recording_time_steps)
    files = scene_files(tmp_path, per_class=6)  # the validation kNN needs 10 neighbours
    times = authors_loop.run(files, 2, 32, 4, 2, 0, 1, 0.01, 4, "efficientnet_lite0")
    assert len(times.step_seconds) == 2 and times.memory_size == 12
    network = networks[0].encoder.network  # Lite0: its 16 blocks, not Lite1's or Lite2's
    assert len(network._blocks) == len(EfficientNetLite0(num_classes=2)._blocks) == 16
