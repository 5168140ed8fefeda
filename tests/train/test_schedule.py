"""Learning-rate schedules."""

import math

import pytest

from snca_train.schedule import learning_rate

pytestmark = pytest.mark.torch


def test_cosine_schedule():
    assert learning_rate(0.1, 0, 100, "cosine") == pytest.approx(0.1)
    assert learning_rate(0.1, 50, 100, "cosine") == pytest.approx(0.05)
    assert learning_rate(0.1, 25, 100, "cosine") == pytest.approx(
        0.05 * (1 + math.cos(math.pi / 4))
    )
    assert learning_rate(0.1, 99, 100, "cosine") == pytest.approx(
        0.05 * (1 + math.cos(0.99 * math.pi))
    )


def test_step_schedule_divides_by_ten_at_half_and_three_quarters():
    rates = [learning_rate(1.0, step, 8, "step") for step in range(8)]
    assert rates == pytest.approx([1, 1, 1, 1, 0.1, 0.1, 0.01, 0.01])
