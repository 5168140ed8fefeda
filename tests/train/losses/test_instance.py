"""Instance discrimination against hand-computed values, finite differences and a learning task."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

from snca_train.losses.instance import InstanceDiscrimination  # noqa: E402
from snca_train.losses.objective import LossConfig, Objective  # noqa: E402
from snca_train.memory import MemoryBank  # noqa: E402


def test_four_points_on_the_unit_circle_by_hand():
    # memory = batch = the compass directions, sigma 1: each point's own slot has dot 1, the
    # others 0, -1, 0, so p_i = e / (e + 1 + e^-1 + 1) for every point
    memory = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    loss = InstanceDiscrimination(sigma=1.0)(memory, torch.arange(4), memory)
    expected = -math.log(math.e / (math.e + 2.0 + math.exp(-1.0)))
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    assert loss.item() == pytest.approx(0.6265234, abs=1e-6)


def test_batch_rows_meet_their_own_slots():
    rng = np.random.default_rng(4)
    memory = rng.normal(size=(6, 3))
    memory /= np.linalg.norm(memory, axis=1, keepdims=True)
    indices = np.array([4, 1])
    features = memory[[0, 5]]  # the batch's features sit on other slots' vectors
    expected = 0.0
    for f, own in zip(features, indices, strict=True):
        weights = np.exp(memory @ f / 0.5)
        expected -= math.log(weights[own] / weights.sum()) / 2
    got = InstanceDiscrimination(0.5)(
        torch.tensor(features), torch.tensor(indices), torch.tensor(memory)
    )
    assert got.item() == pytest.approx(expected, rel=1e-10)


def test_gradient_matches_finite_differences():
    generator = torch.Generator().manual_seed(1)
    memory = torch.nn.functional.normalize(
        torch.randn(7, 4, generator=generator, dtype=torch.float64)
    )
    raw = torch.randn(3, 4, generator=generator, dtype=torch.float64, requires_grad=True)
    loss = InstanceDiscrimination(0.2)

    def value(features):
        unit = torch.nn.functional.normalize(features, dim=1)
        return loss(unit, torch.tensor([2, 0, 6]), memory)

    assert torch.autograd.gradcheck(value, (raw,), eps=1e-6, atol=1e-7)


def test_without_labels_the_views_of_one_image_come_together():
    # 30 "images" whose two augmented views differ by noise in 2 of 8 input dimensions: trained
    # with wrong labels (all one class), instance discrimination still makes each image's
    # second view find its first as nearest neighbour, which the raw inputs mostly do not.
    rng = np.random.default_rng(0)
    images = rng.normal(size=(30, 8)).astype(np.float32)

    def view() -> torch.Tensor:
        noise = np.zeros_like(images)
        noise[:, :2] = rng.normal(0.0, 3.0, (30, 2))
        return torch.from_numpy(images + noise)

    torch.manual_seed(0)
    net = torch.nn.Linear(8, 8)

    def embed(x):
        raw = net(x)
        return torch.nn.functional.normalize(raw, dim=1), raw

    def matched(a, b) -> float:
        with torch.no_grad():
            first, second = embed(a)[0], embed(b)[0]
        return float((torch.argmax(second @ first.T, dim=1) == torch.arange(30)).float().mean())

    a, b = view(), view()
    before = matched(a, b)
    objective = Objective(LossConfig(loss="instance", sigma=0.1))
    assert objective.uses_memory
    labels = torch.zeros(30, dtype=torch.int64)
    with torch.no_grad():
        bank = MemoryBank(embed(view())[0], labels)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    for _ in range(150):
        rows = torch.arange(30)
        embedding, logits = embed(view())
        parts = objective(embedding, logits, labels, rows, bank.features, bank.labels)
        optimizer.zero_grad()
        parts["loss"].backward()
        optimizer.step()
        bank.blend(rows, embedding, 0.5)
    assert set(parts) == {"instance", "loss"}
    after = matched(a, b)
    assert before < 0.8 and after >= 0.95, (before, after)
