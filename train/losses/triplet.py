"""Triplet margin loss on the batch (pytorch-metric-learning), with batch-hard or semi-hard
mining."""

from __future__ import annotations

import torch
from pytorch_metric_learning import losses, miners
from torch import nn

MINERS = ("semihard", "hard")
DEFAULT_TRIPLET_MARGIN = 0.2


class TripletLoss(nn.Module):
    """``max(d(a, p) - d(a, n) + margin, 0)`` over mined triplets of the batch (Euclidean
    distance of unit-length embeddings)."""

    def __init__(self, margin: float = DEFAULT_TRIPLET_MARGIN, miner: str = "semihard") -> None:
        super().__init__()
        if miner not in MINERS:
            raise ValueError(
                f"unknown triplet miner {miner!r} (choose one of: {', '.join(MINERS)})"
            )
        self.loss = losses.TripletMarginLoss(margin=margin)
        if miner == "hard":
            self.miner: nn.Module = miners.BatchHardMiner()
        else:
            self.miner = miners.TripletMarginMiner(margin=margin, type_of_triplets="semihard")

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.loss(embeddings, labels, self.miner(embeddings, labels))
