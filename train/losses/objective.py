"""The training objective chosen with ``--loss``: one loss or SNCA + cross entropy."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from snca_cli.errors import SncaError
from snca_train.losses.contrastive import DEFAULT_NEG_MARGIN, DEFAULT_POS_MARGIN, ContrastiveLoss
from snca_train.losses.cross_entropy import CrossEntropyLoss
from snca_train.losses.distillation import DEFAULT_TEACHER_TEMPERATURE, NeighbourhoodDistillation
from snca_train.losses.instance import InstanceDiscrimination
from snca_train.losses.snca import DEFAULT_SIGMA, SNCALoss
from snca_train.losses.triplet import DEFAULT_TRIPLET_MARGIN, MINERS, TripletLoss

LOSSES = ("snca+ce", "ce", "snca", "triplet", "contrastive", "instance")
#: The losses that compare each sample with the memory of all training samples.
MEMORY_LOSSES = ("snca+ce", "snca", "instance")


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
    #: Weight of the neighbourhood distillation toward the frozen ImageNet backbone (0: off).
    distill: float = 0.0
    distill_temperature: float = DEFAULT_TEACHER_TEMPERATURE

    def validate(self) -> None:
        if self.loss not in LOSSES:
            raise SncaError(f"unknown loss {self.loss!r} (choose one of: {', '.join(LOSSES)})")
        if self.sigma <= 0:
            raise SncaError(f"--sigma must be positive, not {self.sigma}")
        if self.lambda_snca < 0:
            raise SncaError(f"--lambda-snca must not be negative, not {self.lambda_snca}")
        if self.distill < 0:
            raise SncaError(f"--distill must not be negative, not {self.distill}")
        if self.distill_temperature <= 0:
            raise SncaError(
                f"--distill-temperature must be positive, not {self.distill_temperature}"
            )
        if self.distill > 0 and self.loss not in MEMORY_LOSSES:
            raise SncaError(
                "--distill compares neighbourhoods over the memory: use it with "
                f"--loss {', '.join(MEMORY_LOSSES)}"
            )
        if self.miner not in MINERS:
            raise SncaError(f"unknown miner {self.miner!r} (choose one of: {', '.join(MINERS)})")


class Objective:
    """Loss parts of a batch: ``snca`` (over the memory), ``ce``, ``triplet``, ``contrastive`` or
    ``instance`` (over the memory, no labels); ``distill`` when its weight is set; and their
    weighted sum ``loss`` (``lambda_snca * snca + ce + distill * distill`` for ``snca+ce``)."""

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
        self.instance = InstanceDiscrimination(config.sigma) if config.loss == "instance" else None
        self.distillation = (
            NeighbourhoodDistillation(config.sigma, config.distill_temperature)
            if config.distill > 0
            else None
        )

    @property
    def uses_memory(self) -> bool:
        """Whether the loss needs the memory of all training samples."""
        return self.config.loss in MEMORY_LOSSES

    def __call__(
        self,
        embedding: torch.Tensor,
        logits: torch.Tensor,
        labels: torch.Tensor,
        indices: torch.Tensor,
        memory: torch.Tensor | None = None,
        memory_labels: torch.Tensor | None = None,
        teacher_memory: torch.Tensor | None = None,
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
        if self.instance is not None:
            if memory is None:
                raise ValueError("instance discrimination needs the memory")
            parts["instance"] = self.instance(embedding, indices, memory)
            total = total + parts["instance"]
        if self.distillation is not None:
            if memory is None or teacher_memory is None:
                raise ValueError("distillation needs the memory and the teacher's memory")
            parts["distill"] = self.distillation(embedding, indices, memory, teacher_memory)
            total = total + self.config.distill * parts["distill"]
        parts["loss"] = total
        return parts
