"""Scalable Neighbourhood Component Analysis (Wu et al., ECCV 2018; Kang et al., TGRS 2020).

For a unit-length feature ``f_i`` and a memory ``m`` holding one unit vector per training sample,

    p_ij = exp(f_i . m_j / sigma) / sum_{k != i} exp(f_i . m_k / sigma)
    L_SNCA = -mean_i log sum_{j in class(i), j != i} p_ij

where ``i``'s own memory slot (its data-set index) is left out of both sums. Both sums are
evaluated with logsumexp. A sample whose class has no other member in the memory has no
neighbour to be drawn to and is left out of the mean.
"""

from __future__ import annotations

import torch
from torch import nn

DEFAULT_SIGMA = 0.05


class SNCALoss(nn.Module):
    """SNCA of a batch of features against a memory of all training samples."""

    def __init__(self, sigma: float = DEFAULT_SIGMA) -> None:
        super().__init__()
        if sigma <= 0:
            raise ValueError(f"sigma must be positive, not {sigma}")
        self.sigma = sigma

    def forward(
        self,
        features: torch.Tensor,
        labels: torch.Tensor,
        indices: torch.Tensor,
        memory: torch.Tensor,
        memory_labels: torch.Tensor,
    ) -> torch.Tensor:
        """``features`` N x D (unit length), ``labels`` and ``indices`` (memory slots) N,
        ``memory`` M x D, ``memory_labels`` M; returns the scalar loss."""
        logits = features @ memory.T / self.sigma
        rows = torch.arange(len(features), device=features.device)
        others = torch.ones_like(logits, dtype=torch.bool)
        others[rows, indices] = False
        same_class = (labels[:, None] == memory_labels[None, :]) & others
        neg_inf = torch.finfo(logits.dtype).min
        log_all = torch.logsumexp(logits.masked_fill(~others, neg_inf), dim=1)
        log_same = torch.logsumexp(logits.masked_fill(~same_class, neg_inf), dim=1)
        has_neighbour = same_class.any(dim=1)
        if not bool(has_neighbour.any()):
            return logits.sum() * 0.0
        return -(log_same - log_all)[has_neighbour].mean()
