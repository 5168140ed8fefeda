"""Augmentation of whole batches in torch, every random draw from one seeded generator.

Per image: horizontal and vertical flips, a rotation by a multiple of 90 degrees (scenes seen
from above have no "up"), colour jitter (brightness, contrast, saturation, in that order) and
an occasional conversion to grey. For images with other than three bands, "grey" is the mean
of the bands.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

#: ITU-R BT.601 luma weights of R, G, B.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)


@dataclass
class AugmentConfig:
    """Strength of each augmentation; a jitter of ``s`` draws factors in [1 - s, 1 + s]."""

    flips: bool = True
    rotations: bool = True
    brightness: float = 0.3
    contrast: float = 0.3
    saturation: float = 0.3
    grayscale_probability: float = 0.1


def grey(images: torch.Tensor) -> torch.Tensor:
    """N x 1 x H x W luminance (RGB) or band mean (other band counts)."""
    if images.shape[1] == 3:
        weights = images.new_tensor(LUMA_WEIGHTS).view(1, 3, 1, 1)
        return (images * weights).sum(dim=1, keepdim=True)
    return images.mean(dim=1, keepdim=True)


def _factors(
    n: int, strength: float, generator: torch.Generator, device: torch.device
) -> torch.Tensor:
    """N x 1 x 1 x 1 factors in [1 - strength, 1 + strength] on ``device``."""
    factors = 1.0 + (torch.rand(n, generator=generator) * 2.0 - 1.0) * strength
    return factors.to(device).view(-1, 1, 1, 1)


def augment_batch(
    images: torch.Tensor, config: AugmentConfig, generator: torch.Generator
) -> torch.Tensor:
    """Augmented copy of N x B x H x W images in [0, 1] (square images for rotations). The
    random draws are made on the CPU (``generator``), so a batch gets the same augmentation on
    any device."""
    n, device = len(images), images.device
    out = images

    def chosen(probability: float) -> torch.Tensor:
        """N x 1 x 1 x 1 booleans on the device, each true with ``probability``."""
        return (torch.rand(n, generator=generator) < probability).to(device).view(-1, 1, 1, 1)

    if config.flips:
        horizontal, vertical = chosen(0.5), chosen(0.5)
        out = torch.where(horizontal, out.flip(-1), out)
        out = torch.where(vertical, out.flip(-2), out)
    if config.rotations and out.shape[-1] == out.shape[-2]:
        turns = torch.randint(0, 4, (n,), generator=generator)
        rotated = out.clone()
        for k in (1, 2, 3):
            rows = torch.nonzero(turns == k).flatten()
            if len(rows):
                rows = rows.to(device)
                rotated[rows] = torch.rot90(out[rows], k, dims=(-2, -1))
        out = rotated
    if config.brightness > 0:
        out = out * _factors(n, config.brightness, generator, device)
    if config.contrast > 0:
        mean = grey(out).mean(dim=(1, 2, 3), keepdim=True)
        out = (out - mean) * _factors(n, config.contrast, generator, device) + mean
    if config.saturation > 0:
        luminance = grey(out)
        out = (out - luminance) * _factors(n, config.saturation, generator, device) + luminance
    if config.grayscale_probability > 0:
        to_grey = chosen(config.grayscale_probability)
        out = torch.where(to_grey, grey(out).expand_as(out), out)
    return out.clamp(0.0, 1.0)
