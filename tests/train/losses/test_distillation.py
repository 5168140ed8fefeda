"""Neighbourhood distillation against hand-computed values and finite differences."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

from snca_train.losses.distillation import NeighbourhoodDistillation  # noqa: E402


def neighbourhood(vector, own, memory, temperature):
    """p_j over the memory slots j != own, written out."""
    weights = [
        math.exp(float(np.dot(vector, m)) / temperature) if j != own else 0.0
        for j, m in enumerate(memory)
    ]
    total = sum(weights)
    return [w / total for w in weights]


def distillation_reference(features, indices, memory, teacher, sigma, tau):
    """mean_i sum_{j != i} p_ij log(p_ij / q_ij), with loops."""
    losses = []
    for f, own in zip(features, indices, strict=True):
        p = neighbourhood(teacher[own], own, teacher, tau)
        q = neighbourhood(f, own, memory, sigma)
        pairs = enumerate(zip(p, q, strict=True))
        losses.append(sum(pj * math.log(pj / qj) for j, (pj, qj) in pairs if j != own))
    return sum(losses) / len(losses)


def unit_rows(rng, rows, columns):
    values = rng.normal(size=(rows, columns))
    return values / np.linalg.norm(values, axis=1, keepdims=True)


def test_three_points_by_hand():
    # the teacher sees slot 0 equally close to 1 and 2: p = (1/2, 1/2). The student's feature
    # for slot 0 is E, its memory holds N and W at slots 1 and 2 (dots 0 and -1, sigma 1):
    # q = (1, e^-1) / (1 + e^-1). KL = 1/2 log(1/2 / q1) + 1/2 log(1/2 / q2)
    #    = log(1/2) + log(1 + e^-1) + 1/2 (0 + 1) = log((1 + e^-1) / 2) + 1/2.
    teacher = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, -1.0]], dtype=torch.float64)
    memory = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]], dtype=torch.float64)
    loss = NeighbourhoodDistillation(sigma=1.0, teacher_temperature=1.0)(
        memory[:1], torch.tensor([0]), memory, teacher
    )
    expected = math.log((1.0 + math.exp(-1.0)) / 2.0) + 0.5
    assert loss.item() == pytest.approx(expected, abs=1e-12)
    assert loss.item() == pytest.approx(0.1201145, abs=1e-6)


def test_random_batch_matches_the_loops():
    rng = np.random.default_rng(5)
    memory, teacher = unit_rows(rng, 9, 4), unit_rows(rng, 9, 6)
    indices = np.array([7, 2, 4])
    features = unit_rows(rng, 3, 4)
    expected = distillation_reference(features, indices, memory, teacher, 0.3, 0.2)
    got = NeighbourhoodDistillation(0.3, 0.2)(
        torch.tensor(features), torch.tensor(indices), torch.tensor(memory), torch.tensor(teacher)
    )
    assert got.item() == pytest.approx(expected, rel=1e-10)


def test_zero_when_the_student_sees_what_the_teacher_sees():
    rng = np.random.default_rng(1)
    shared = torch.tensor(unit_rows(rng, 6, 3))
    indices = torch.tensor([0, 3, 5])
    loss = NeighbourhoodDistillation(0.1, 0.1)(shared[indices], indices, shared, shared)
    assert loss.item() == pytest.approx(0.0, abs=1e-12)
    # a student that ranks the neighbours otherwise pays
    flipped = NeighbourhoodDistillation(0.1, 0.1)(-shared[indices], indices, shared, shared)
    assert flipped.item() > 1.0


def test_the_own_slot_does_not_count():
    rng = np.random.default_rng(2)
    memory, teacher = unit_rows(rng, 5, 3), unit_rows(rng, 5, 3)
    loss = NeighbourhoodDistillation(0.5, 0.5)
    indices = torch.tensor([1])
    features = torch.tensor(unit_rows(rng, 1, 3))
    before = loss(features, indices, torch.tensor(memory), torch.tensor(teacher))
    memory[1] = -memory[1]  # the student's own slot moves (the teacher's row is the query)
    after = loss(features, indices, torch.tensor(memory), torch.tensor(teacher))
    assert after.item() == pytest.approx(before.item(), abs=1e-12)


def test_gradient_matches_finite_differences():
    generator = torch.Generator().manual_seed(0)
    unit = torch.nn.functional.normalize
    memory = unit(torch.randn(8, 4, generator=generator, dtype=torch.float64))
    teacher = unit(torch.randn(8, 5, generator=generator, dtype=torch.float64))
    indices = torch.tensor([0, 3, 6])
    raw = torch.randn(3, 4, generator=generator, dtype=torch.float64, requires_grad=True)
    loss = NeighbourhoodDistillation(0.3, 0.2)

    def value(features):
        return loss(torch.nn.functional.normalize(features, dim=1), indices, memory, teacher)

    assert torch.autograd.gradcheck(value, (raw,), eps=1e-6, atol=1e-7)


def test_a_sharp_student_stays_finite():
    # logits of +-1/0.001 overflow exp() in float32; log_softmax keeps the term finite
    memory = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    raw = memory[:2].clone().requires_grad_(True)
    loss = NeighbourhoodDistillation(0.001, 0.05)(raw, torch.tensor([0, 1]), memory, memory)
    loss.backward()
    assert math.isfinite(loss.item()) and torch.isfinite(raw.grad).all()


def test_temperatures_must_be_positive():
    with pytest.raises(ValueError, match="positive"):
        NeighbourhoodDistillation(0.05, 0.0)
