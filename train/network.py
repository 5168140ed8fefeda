"""The scene-embedding network: backbone -> linear embedding (D) -> linear class prototypes (C).

``forward`` takes N x bands x H x W images in [0, 1] (the backbone's standardisation is inside,
as buffers, so the exported ONNX graph takes the same input) and returns the L2-normalised
embedding used by SNCA and the class logits of the un-normalised embedding used by the
cross-entropy term (Kang et al., 2020).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from snca_cli.errors import SncaError
from snca_train.backbones import build_backbone


@dataclass
class ModelConfig:
    """What defines a network's architecture (stored in every checkpoint).

    ``image_size`` is the square size the network takes (an exported model's tile size);
    ``backbone_size``, when set, is the size the backbone sees: the network resamples its input
    to it (bilinear), e.g. to give small tiles an ImageNet backbone's usual 224 px.
    """

    backbone: str
    num_classes: int
    embedding_dim: int = 128
    input_bands: int = 3
    image_size: int = 224
    backbone_size: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ModelConfig:
        """Build from :meth:`to_dict` output; SncaError on missing or unknown keys."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - names)
        missing = sorted(n for n in ("backbone", "num_classes") if n not in values)
        if unknown or missing:
            raise SncaError(
                f"bad model configuration (missing: {', '.join(missing) or '-'}; "
                f"unknown: {', '.join(unknown) or '-'})"
            )
        return cls(**values)


def backbone_input(
    images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, size: int | None
) -> torch.Tensor:
    """What a backbone sees of N x bands x H x W images in [0, 1]: standardised by band
    (``mean``/``std`` 1 x bands x 1 x 1) and resampled to ``size`` when that is set."""
    standardised = (images - mean) / std
    if size is not None and tuple(standardised.shape[-2:]) != (size, size):
        standardised = F.interpolate(
            standardised, size=(size, size), mode="bilinear", align_corners=False
        )
    return standardised


class SceneEmbeddingNet(nn.Module):
    """Backbone features -> ``embedding`` (Linear F -> D) -> ``classifier`` (Linear D -> C)."""

    def __init__(
        self, config: ModelConfig, pretrained: bool = True, weights: Path | None = None
    ) -> None:
        super().__init__()
        if config.num_classes < 2 or config.embedding_dim < 1:
            raise SncaError(
                f"need at least 2 classes and a positive embedding size, got "
                f"{config.num_classes} classes and {config.embedding_dim} dimensions"
            )
        self.config = config
        backbone = build_backbone(config.backbone, config.input_bands, pretrained, weights)
        self.backbone = backbone.module
        self.register_buffer("input_mean", torch.tensor(backbone.mean).view(1, -1, 1, 1))
        self.register_buffer("input_std", torch.tensor(backbone.std).view(1, -1, 1, 1))
        self.embedding = nn.Linear(backbone.feature_dim, config.embedding_dim)
        self.classifier = nn.Linear(config.embedding_dim, config.num_classes)
        #: Run the backbone under bfloat16 autocast (a training setting: not stored with the
        #: weights, off in every freshly built network and so in exports).
        self.bf16_backbone = False

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """The raw (un-normalised) N x D embedding of N x bands x H x W images in [0, 1], resampled
        to ``config.backbone_size`` when that is set; with :attr:`bf16_backbone` the backbone
        runs under bfloat16 autocast and its pooled features return to fp32 before the embedding
        layer."""
        standardised = backbone_input(
            images, self.input_mean, self.input_std, self.config.backbone_size
        )
        if self.bf16_backbone:
            with torch.autocast(images.device.type, dtype=torch.bfloat16):
                pooled = self.backbone(standardised)
            return self.embedding(pooled.float())
        return self.embedding(self.backbone(standardised))

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(embedding, logits)``: the unit-length N x D embedding and the N x C class logits."""
        raw = self.features(images)
        return F.normalize(raw, dim=1), self.classifier(raw)
