"""A momentum encoder (He et al., MoCo 2020): a copy of the network whose parameters follow the
trained ones, ``theta' <- m * theta' + (1 - m) * theta``, and whose no-grad features of each batch
replace the batch's memory rows.

Its batch-norm layers use batch statistics; so that they cannot carry information between the
samples of a batch the way the trained network sees them, the batch is shuffled and split into
``groups`` parts normalised separately, then un-shuffled ("shuffling BN" on one device).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

DEFAULT_ENCODER_MOMENTUM = 0.999
BATCH_NORM_GROUPS = 2


class MomentumEncoder:
    """An exponential moving average copy of a :class:`snca_train.network.SceneEmbeddingNet`."""

    def __init__(
        self,
        network: nn.Module,
        momentum: float = DEFAULT_ENCODER_MOMENTUM,
        groups: int = BATCH_NORM_GROUPS,
    ) -> None:
        self.network = copy.deepcopy(network)
        self.network.requires_grad_(False)
        self.momentum = momentum
        self.groups = groups

    @torch.no_grad()
    def update(self, network: nn.Module) -> None:
        """``theta' <- m * theta' + (1 - m) * theta`` for every parameter."""
        for ema, current in zip(self.network.parameters(), network.parameters(), strict=True):
            ema.mul_(self.momentum).add_(current.detach(), alpha=1.0 - self.momentum)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().to("cpu", copy=True) for k, v in self.network.state_dict().items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.network.load_state_dict(state, strict=True)

    @torch.no_grad()
    def embed(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Unit-length embeddings of ``images`` in their order, computed in shuffled groups."""
        self.network.train()
        order = torch.randperm(len(images), generator=generator).to(images.device)
        groups = min(self.groups, len(images) // 2) or 1
        parts = [self.network(images[chunk])[0] for chunk in torch.tensor_split(order, groups)]
        shuffled = torch.cat(parts)
        embeddings = torch.empty_like(shuffled)
        embeddings[order] = shuffled
        return embeddings
