"""The distillation teacher: what the frozen ImageNet backbone says about every training image.

``--distill`` keeps the embedding from collapsing onto the training classes by asking each
sample's neighbourhood over the memory to stay close to the neighbourhood the frozen ImageNet
backbone sees (:mod:`snca_train.losses.distillation`). The teacher's vectors are computed once
per run (and again on ``--resume``: the same weights and images give the same vectors) from the
un-augmented training images: for an EfficientNet-Lite the several-stage features of
:mod:`snca_train.stage_features`, for a ResNet its pooled features; unit length.
"""

from __future__ import annotations

from pathlib import Path

import torch
from rich.console import Console
from torch.nn import functional as F

from snca_train.backbones import build_backbone
from snca_train.network import backbone_input
from snca_train.progress import make_progress
from snca_train.stage_features import StageFeatures
from snca_train.training_data import DeviceImages

#: Images per forward pass of the teacher (no gradients).
TEACHER_BATCH = 128


@torch.no_grad()
def teacher_memory(
    backbone: str,
    images: DeviceImages,
    console: Console,
    backbone_size: int | None = None,
    weights: Path | None = None,
) -> torch.Tensor:
    """Unit-length N x T teacher vectors of ``images`` from the frozen ``backbone`` with its
    ImageNet weights (or ``weights``), the images resampled to ``backbone_size`` when set."""
    bands = int(images.images.shape[-1])
    frozen = build_backbone(backbone, bands, pretrained=True, weights=weights)
    module = frozen.module.to(images.device).eval()
    mean = torch.tensor(frozen.mean, device=images.device).view(1, -1, 1, 1)
    std = torch.tensor(frozen.std, device=images.device).view(1, -1, 1, 1)
    try:
        stages: StageFeatures | None = StageFeatures(module)
    except ValueError:
        stages = None
    parts: list[torch.Tensor] = []
    with make_progress(console, transient=True) as progress:
        task = progress.add_task("teacher features", total=len(images), info="")
        for start in range(0, len(images), TEACHER_BATCH):
            rows = torch.arange(start, min(start + TEACHER_BATCH, len(images)))
            standardised = backbone_input(images.batch(rows), mean, std, backbone_size)
            vectors = stages(standardised)[1] if stages is not None else module(standardised)
            parts.append(F.normalize(vectors.float(), dim=1))
            progress.advance(task, len(rows))
    return torch.cat(parts)
