"""Neighbourhood distillation: keep each sample's neighbours where a frozen teacher sees them.

SNCA draws every sample toward its own class over the memory and so forgets how the ImageNet
backbone ordered everything else, which is what carries over to classes never trained on. This
term asks the student's SNCA neighbourhood of sample ``i`` over the memory ``m``,

    q_ij = exp(f_i . m_j / sigma) / sum_{k != i} exp(f_i . m_k / sigma),

to stay close to the teacher's neighbourhood over the teacher's memory ``t`` (one frozen vector
per training sample, :mod:`snca_train.teacher`),

    p_ij = exp(t_i . t_j / tau) / sum_{k != i} exp(t_i . t_k / tau),

    L_distill = mean_i KL(p_i || q_i) = mean_i sum_{j != i} p_ij (log p_ij - log q_ij).

Both sums leave out ``i``'s own slot, as SNCA does. It compares neighbourhoods, not vectors, so
the teacher's width (1,664-d) and the embedding's (128-d) need not agree.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

#: Temperature of the teacher's neighbourhood.
DEFAULT_TEACHER_TEMPERATURE = 0.05


class NeighbourhoodDistillation(nn.Module):
    """KL divergence from the teacher's neighbourhood of each sample to the student's."""

    def __init__(self, sigma: float, teacher_temperature: float = DEFAULT_TEACHER_TEMPERATURE):
        super().__init__()
        if sigma <= 0 or teacher_temperature <= 0:
            raise ValueError(
                f"temperatures must be positive, not {sigma} and {teacher_temperature}"
            )
        self.sigma = sigma
        self.teacher_temperature = teacher_temperature

    def forward(
        self,
        features: torch.Tensor,
        indices: torch.Tensor,
        memory: torch.Tensor,
        teacher_memory: torch.Tensor,
    ) -> torch.Tensor:
        """``features`` N x D (unit length) of the samples in memory slots ``indices`` (N),
        ``memory`` M x D, ``teacher_memory`` M x T (unit length); returns the scalar loss."""
        rows = torch.arange(len(features), device=features.device)
        teacher = teacher_memory[indices] @ teacher_memory.T / self.teacher_temperature
        student = features @ memory.T / self.sigma
        own = torch.zeros_like(student, dtype=torch.bool)
        own[rows, indices] = True
        # the own slot: the lowest finite number rather than -inf, so that no 0 * inf (NaN)
        # reaches a gradient; its p is exactly 0 and it is left out of the sum besides
        log_p = F.log_softmax(teacher.masked_fill(own, torch.finfo(teacher.dtype).min), dim=1)
        log_q = F.log_softmax(student.masked_fill(own, torch.finfo(student.dtype).min), dim=1)
        kl = (log_p.exp() * (log_p - log_q)).masked_fill(own, 0.0).sum(dim=1)
        return kl.mean()
