"""The SNCA loss against hand-computed values and finite differences."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

from snca_train.losses.snca import SNCALoss  # noqa: E402


def snca_reference(features, labels, indices, memory, memory_labels, sigma):
    """The formula written out with loops: -mean_i log sum_{j same, j != i} p_ij."""
    losses = []
    for f, label, own in zip(features, labels, indices, strict=True):
        weights = [
            math.exp(float(np.dot(f, m)) / sigma) if j != own else 0.0 for j, m in enumerate(memory)
        ]
        same = sum(w for j, w in enumerate(weights) if memory_labels[j] == label and j != own)
        losses.append(-math.log(same / sum(weights)))
    return sum(losses) / len(losses)


def test_four_points_on_the_unit_circle_by_hand():
    # memory = batch = the four compass directions, classes {E, N} and {W, S}, sigma 1.
    # For E: dots with N, W, S are 0, -1, 0, so p(E -> N) = 1 / (1 + e^-1 + 1) and the loss is
    # log(2 + 1/e) for every point by symmetry. Counting the own slot would add e^1 to both sums.
    memory = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    labels = torch.tensor([0, 0, 1, 1])
    loss = SNCALoss(sigma=1.0)(memory, labels, torch.arange(4), memory, labels)
    assert loss.item() == pytest.approx(math.log(2.0 + math.exp(-1.0)), abs=1e-6)
    assert loss.item() == pytest.approx(0.8619948, abs=1e-6)


def test_batch_rows_are_matched_to_their_memory_slots_by_index():
    rng = np.random.default_rng(3)
    memory = rng.normal(size=(7, 3))
    memory /= np.linalg.norm(memory, axis=1, keepdims=True)
    memory_labels = np.array([0, 1, 2, 0, 1, 2, 0])
    indices = np.array([5, 0, 3])
    features = memory[indices] + 0.3 * rng.normal(size=(3, 3))
    features /= np.linalg.norm(features, axis=1, keepdims=True)
    labels = memory_labels[indices]
    expected = snca_reference(features, labels, indices, memory, memory_labels, sigma=0.5)
    got = SNCALoss(sigma=0.5)(
        torch.tensor(features),
        torch.tensor(labels),
        torch.tensor(indices),
        torch.tensor(memory),
        torch.tensor(memory_labels),
    )
    assert got.item() == pytest.approx(expected, rel=1e-10)


def test_gradient_matches_finite_differences():
    generator = torch.Generator().manual_seed(0)
    memory = torch.nn.functional.normalize(
        torch.randn(9, 4, generator=generator, dtype=torch.float64)
    )
    memory_labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2])
    indices = torch.tensor([1, 4, 6, 8])
    features = torch.randn(4, 4, generator=generator, dtype=torch.float64, requires_grad=True)
    loss = SNCALoss(sigma=0.3)

    def value(raw):
        unit = torch.nn.functional.normalize(raw, dim=1)
        return loss(unit, memory_labels[indices], indices, memory, memory_labels)

    assert torch.autograd.gradcheck(value, (features,), eps=1e-6, atol=1e-7)


def test_small_sigma_stays_finite_and_exact():
    # logits of +-1/0.001 = +-1000 overflow exp() in float32; logsumexp keeps the loss exact.
    memory = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    labels = torch.tensor([0, 1, 1, 0])  # E's only neighbour of its class is S (dot 0)
    loss = SNCALoss(sigma=0.001)(memory[:1], labels[:1], torch.tensor([0]), memory, labels)
    # p(E -> S) = 1 / (1 + e^-2000 + 1) -> loss = log 2
    assert loss.item() == pytest.approx(math.log(2.0), abs=1e-6)


def test_samples_without_a_class_neighbour_are_left_out():
    memory = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    memory_labels = torch.tensor([0, 0, 1, 2])  # classes 1 and 2 have a single member
    loss = SNCALoss(sigma=1.0)(memory, memory_labels, torch.arange(4), memory, memory_labels)
    # only E and N count: both have loss log(2 + 1/e)
    assert loss.item() == pytest.approx(math.log(2.0 + math.exp(-1.0)), abs=1e-6)
