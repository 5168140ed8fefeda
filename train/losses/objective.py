"""The training objective chosen with ``--loss``: one loss or SNCA + cross entropy."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from snca_cli.errors import SncaError
from snca_train.losses.contrastive import DEFAULT_NEG_MARGIN, DEFAULT_POS_MARGIN, ContrastiveLoss
from snca_train.losses.cross_entropy import CrossEntropyLoss
from snca_train.losses.snca import DEFAULT_SIGMA, SNCALoss
from snca_train.losses.triplet import DEFAULT_TRIPLET_MARGIN, MINERS, TripletLoss

LOSSES = ("snca+ce", "ce", "snca", "triplet", "contrastive")


@dataclass
class LossConfig:
    """``--loss`` and its parameters."""

    loss: str = "snca+ce"
    lambda_snca: float = 1.0
    sigma: float = DEFAULT_SIGMA
    triplet_margin: float = DEFAULT_TRIPLET_MARGIN
    miner: str = "semihard"
    pos_margin: float = DEFAULT_POS_MARGIN
    neg_margin: float = DEFAULT_NEG_MARGIN

    def validate(self) -> None:
        if self.loss not in LOSSES:
            raise SncaError(f"unknown loss {self.loss!r} (choose one of: {', '.join(LOSSES)})")
        if self.sigma <= 0:
            raise SncaError(f"--sigma must be positive, not {self.sigma}")
        if self.lambda_snca < 0:
            raise SncaError(f"--lambda-snca must not be negative, not {self.lambda_snca}")
        if self.miner not in MINERS:
            raise SncaError(f"unknown miner {self.miner!r} (choose one of: {', '.join(MINERS)})")


class Objective:
    """Loss parts of a batch: ``snca`` (over the memory), ``ce``, ``triplet`` or ``contrastive``,
    and their weighted sum ``loss`` (``lambda_snca * snca + ce`` for ``snca+ce``)."""

    def __init__(self, config: LossConfig) -> None:
        config.validate()
        self.config = config
        self.snca = SNCALoss(config.sigma) if "snca" in config.loss else None
        self.cross_entropy = CrossEntropyLoss() if "ce" in config.loss.split("+") else None
        self.triplet = (
            TripletLoss(config.triplet_margin, config.miner) if config.loss == "triplet" else None
        )
        self.contrastive = (
            ContrastiveLoss(config.pos_margin, config.neg_margin)
            if config.loss == "contrastive"
            else None
        )

    @property
    def uses_memory(self) -> bool:
        """Whether the loss needs the memory of all training samples."""
        return self.snca is not None

    def __call__(
        self,
        embedding: torch.Tensor,
        logits: torch.Tensor,
        labels: torch.Tensor,
        indices: torch.Tensor,
        memory: torch.Tensor | None = None,
        memory_labels: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        parts: dict[str, torch.Tensor] = {}
        total = embedding.new_zeros(())
        if self.snca is not None:
            if memory is None or memory_labels is None:
                raise ValueError("the SNCA loss needs the memory and its labels")
            parts["snca"] = self.snca(embedding, labels, indices, memory, memory_labels)
            weight = self.config.lambda_snca if self.cross_entropy is not None else 1.0
            total = total + weight * parts["snca"]
        if self.cross_entropy is not None:
            parts["ce"] = self.cross_entropy(logits, labels)
            total = total + parts["ce"]
        if self.triplet is not None:
            parts["triplet"] = self.triplet(embedding, labels)
            total = total + parts["triplet"]
        if self.contrastive is not None:
            parts["contrastive"] = self.contrastive(embedding, labels)
            total = total + parts["contrastive"]
        parts["loss"] = total
        return parts
