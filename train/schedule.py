"""Learning-rate schedules, as pure functions of the global step (so resuming needs only the
step count)."""

from __future__ import annotations

import math

SCHEDULES = ("cosine", "step")
#: The step schedule divides the rate by 10 at these fractions of training.
STEP_MILESTONES = (0.5, 0.75)
STEP_FACTOR = 0.1


def learning_rate(base: float, step: int, total_steps: int, schedule: str) -> float:
    """The rate of ``step`` (0-based) of ``total_steps``: cosine decay from ``base`` towards 0,
    or ``base`` divided by 10 at half and again at three quarters of training."""
    progress = step / max(total_steps, 1)
    if schedule == "cosine":
        return base * 0.5 * (1.0 + math.cos(math.pi * progress))
    if schedule == "step":
        return base * STEP_FACTOR ** sum(progress >= m for m in STEP_MILESTONES)
    raise ValueError(f"unknown schedule {schedule!r}")
