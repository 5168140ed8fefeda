"""Contrastive loss over all pairs of the batch (pytorch-metric-learning): positives pulled
within ``pos_margin``, negatives pushed beyond ``neg_margin`` (Euclidean distances)."""

from __future__ import annotations

import torch
from pytorch_metric_learning import losses
from torch import nn

DEFAULT_POS_MARGIN = 0.0
DEFAULT_NEG_MARGIN = 0.5


class ContrastiveLoss(nn.Module):
    """pytorch-metric-learning's ContrastiveLoss on every positive and negative pair."""

    def __init__(
        self, pos_margin: float = DEFAULT_POS_MARGIN, neg_margin: float = DEFAULT_NEG_MARGIN
    ) -> None:
        super().__init__()
        self.loss = losses.ContrastiveLoss(pos_margin=pos_margin, neg_margin=neg_margin)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.loss(embeddings, labels)
