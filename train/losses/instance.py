"""Instance discrimination over the memory (Wu et al., CVPR 2018): learning without labels.

Every training image is its own class. With a unit-length feature ``f_i`` of an augmented view
of image ``i`` and the memory ``m`` holding one unit vector per image (the previous views),

    p_i = exp(f_i . m_i / sigma) / sum_j exp(f_i . m_j / sigma)
    L_instance = -mean_i log p_i

The memory is the one SNCA uses, so the same bank (or momentum encoder) keeps it; here the own
slot is the positive rather than left out. ``--loss instance`` trains on a user's unlabelled
imagery: the class folders are ignored by the loss (validation still reports kNN on them).
"""

from __future__ import annotations

import torch
from torch import nn


class InstanceDiscrimination(nn.Module):
    """Non-parametric instance discrimination of a batch against the memory."""

    def __init__(self, sigma: float) -> None:
        super().__init__()
        if sigma <= 0:
            raise ValueError(f"sigma must be positive, not {sigma}")
        self.sigma = sigma

    def forward(
        self, features: torch.Tensor, indices: torch.Tensor, memory: torch.Tensor
    ) -> torch.Tensor:
        """``features`` N x D (unit length) of the images in memory slots ``indices`` (N),
        ``memory`` M x D; returns the scalar loss."""
        logits = features @ memory.T / self.sigma
        rows = torch.arange(len(features), device=features.device)
        return (torch.logsumexp(logits, dim=1) - logits[rows, indices]).mean()
