"""The memory of SNCA: one unit-length feature per training sample.

``--memory bank`` (Wu et al., 2018): after each step the batch's rows are blended with the new
features, ``m_i <- normalize(mu * m_i + (1 - mu) * f_i)``, with ``mu`` rising in steps as
training advances (:class:`MomentumSchedule`). ``--memory momentum-encoder``: the batch's rows
are replaced by the features of a slowly moving copy of the network
(:mod:`snca_train.momentum_encoder`).

The memory starts from the network's own (eval-mode, un-augmented) embeddings of the training
set, not from random vectors: SNCA then compares each sample with meaningful neighbours from
the first step, which matters with a pretrained backbone and short trainings.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from snca_cli.errors import SncaError

MEMORY_KINDS = ("bank", "momentum-encoder")


@dataclass
class MomentumSchedule:
    """``mu`` of the bank update: ``values[i]`` from the fraction ``starts[i]`` of the epochs on.

    The default is 0.5 for the first third of training, 0.8 for the second, 0.9 for the last.
    """

    values: tuple[float, ...] = (0.5, 0.8, 0.9)
    starts: tuple[float, ...] = (0.0, 1.0 / 3.0, 2.0 / 3.0)

    def validate(self) -> None:
        if len(self.values) != len(self.starts) or not self.values:
            raise SncaError("the memory momentum schedule needs as many values as start points")
        if self.starts[0] != 0.0 or list(self.starts) != sorted(self.starts):
            raise SncaError("memory momentum start points must begin at 0 and increase")
        if not all(0.0 <= v < 1.0 for v in self.values):
            raise SncaError("memory momentum values must lie in [0, 1)")

    def value(self, epoch: int, epochs: int) -> float:
        """``mu`` during ``epoch`` (0-based) of ``epochs``."""
        progress = epoch / max(epochs, 1)
        chosen = self.values[0]
        for start, value in zip(self.starts, self.values, strict=True):
            if progress + 1e-9 >= start:
                chosen = value
        return chosen


class MemoryBank:
    """M x D unit vectors with their labels, addressed by training-sample index."""

    def __init__(self, features: torch.Tensor, labels: torch.Tensor) -> None:
        if features.ndim != 2 or len(features) != len(labels):
            raise ValueError("the memory needs M x D features and M labels")
        self.features = F.normalize(features.detach().clone(), dim=1)
        self.labels = labels.detach().clone()

    @torch.no_grad()
    def blend(self, indices: torch.Tensor, features: torch.Tensor, momentum: float) -> None:
        """``m_i <- normalize(momentum * m_i + (1 - momentum) * f_i)`` for the batch's slots."""
        mixed = momentum * self.features[indices] + (1.0 - momentum) * features.detach()
        self.features[indices] = F.normalize(mixed, dim=1)

    @torch.no_grad()
    def replace(self, indices: torch.Tensor, features: torch.Tensor) -> None:
        """``m_i <- normalize(f_i)`` for the batch's slots."""
        self.features[indices] = F.normalize(features.detach(), dim=1)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """CPU copies of the features and labels."""
        return {
            "features": self.features.to("cpu", copy=True),
            "labels": self.labels.to("cpu", copy=True),
        }

    @classmethod
    def from_state_dict(
        cls, state: dict[str, torch.Tensor], device: torch.device | str = "cpu"
    ) -> MemoryBank:
        """The bank of :meth:`state_dict`, on ``device``."""
        bank = cls.__new__(cls)
        bank.features = state["features"].to(device, copy=True)
        bank.labels = state["labels"].to(device, copy=True)
        return bank
