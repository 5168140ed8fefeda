"""Augmentation of whole batches in torch, every random draw from one seeded generator.

Per image, in this order: a random resized crop (off by default), horizontal and vertical
flips, a rotation by a multiple of 90 degrees (scenes seen from above have no "up"), resolution
mixing (downsampled by a random factor, then resampled back: another ground resolution; off by
default), a Gaussian blur (off by default), colour jitter (brightness, contrast, saturation, in
that order) and an occasional conversion to grey. For images with other than three bands,
"grey" is the mean of the bands.

Named recipes (:data:`RECIPES`): ``transfer``, the default (:data:`DEFAULT_RECIPE`: wide crops,
resolution mixing, blur and stronger jitter, for embeddings that hold across ground resolutions
and sensors; chosen on the transfer protocols of ``benchmarks/transfer.py``), and ``classic``
(flips, turns, mild jitter: what every run before the transfer recipe trained with, and what the
field defaults of :class:`AugmentConfig` are, so configurations stored before these fields
load unchanged).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any

import torch
import torch.nn.functional as F

from snca_cli.errors import SncaError

#: ITU-R BT.601 luma weights of R, G, B.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)
#: Aspect ratios (width / height) a random resized crop draws from, log-uniformly.
CROP_ASPECT_RANGE = (3 / 4, 4 / 3)
#: The smallest blur a blurred image gets (sigma in pixels).
MIN_BLUR_SIGMA = 0.1


@dataclass
class AugmentConfig:
    """Strength of each augmentation; a jitter of ``s`` draws factors in [1 - s, 1 + s].

    ``crop_scale``: a random resized crop keeps an area fraction drawn in [crop_scale, 1]
    (1 = no crop). ``resolution_factor``: with ``resolution_probability``, an image is
    downsampled by a factor drawn in [1, resolution_factor] and resampled back (1 = off).
    ``blur_sigma``: with ``blur_probability``, a Gaussian blur with sigma drawn in
    [0.1, blur_sigma] pixels (0 = off). ``recipe`` names the recipe the values started from.
    """

    flips: bool = True
    rotations: bool = True
    brightness: float = 0.3
    contrast: float = 0.3
    saturation: float = 0.3
    grayscale_probability: float = 0.1
    crop_scale: float = 1.0
    resolution_factor: float = 1.0
    resolution_probability: float = 0.5
    blur_sigma: float = 0.0
    blur_probability: float = 0.3
    recipe: str = "classic"

    def validate(self) -> None:
        """Raise SncaError for any strength out of range."""
        for name in ("brightness", "contrast", "saturation"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise SncaError(f"--{name} must lie in [0, 1), not {value}")
        if not 0.0 < self.crop_scale <= 1.0:
            raise SncaError(f"--crop-scale must lie in (0, 1], not {self.crop_scale}")
        if self.resolution_factor < 1.0:
            raise SncaError(
                f"--resolution-factor must be at least 1 (1 = off), not {self.resolution_factor}"
            )
        if self.blur_sigma < 0.0:
            raise SncaError(f"--blur-sigma must not be negative, not {self.blur_sigma}")
        for name in ("grayscale_probability", "resolution_probability", "blur_probability"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise SncaError(f"the {name.replace('_', ' ')} must lie in [0, 1], not {value}")


#: The named recipes of ``snca train --augment``.
RECIPES: dict[str, AugmentConfig] = {
    "classic": AugmentConfig(),
    "transfer": AugmentConfig(
        brightness=0.5,
        contrast=0.5,
        saturation=0.5,
        crop_scale=0.3,
        resolution_factor=4.0,
        resolution_probability=0.5,
        blur_sigma=1.5,
        blur_probability=0.3,
        recipe="transfer",
    ),
}


#: The recipe of a run that names none.
DEFAULT_RECIPE = "transfer"


def recipe(name: str) -> AugmentConfig:
    """A copy of the named recipe; SncaError for an unknown name."""
    if name not in RECIPES:
        raise SncaError(f"unknown augmentation {name!r} (choose one of: {', '.join(RECIPES)})")
    return replace(RECIPES[name])


def recipe_label(values: dict[str, Any]) -> str:
    """The recipe a stored :class:`AugmentConfig` (as a dict) started from, with the settings
    that differ from it, e.g. ``transfer (changed: crop_scale 0.5)``; ``{}`` is ``classic``."""
    config = AugmentConfig(**values)
    named = RECIPES.get(config.recipe)
    if named is None:
        return config.recipe
    changed = [
        f"{item.name} {getattr(config, item.name)}"
        for item in fields(config)
        if getattr(config, item.name) != getattr(named, item.name)
    ]
    return f"{config.recipe} (changed: {', '.join(changed)})" if changed else config.recipe


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


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    """N values drawn uniformly in [low, high] (on the CPU)."""
    return low + torch.rand(n, generator=generator, dtype=torch.float64) * (high - low)


def random_resized_crop(
    images: torch.Tensor, min_scale: float, generator: torch.Generator
) -> torch.Tensor:
    """Each image replaced by a crop of area fraction in [min_scale, 1] and aspect ratio in
    :data:`CROP_ASPECT_RANGE` (clipped to the image), resampled bilinearly to the full size."""
    n = len(images)
    area = _uniform(n, min_scale, 1.0, generator)
    low, high = (math.log(r) for r in CROP_ASPECT_RANGE)
    aspect = torch.exp(_uniform(n, low, high, generator))
    width = torch.sqrt(area * aspect).clamp(max=1.0)
    height = torch.sqrt(area / aspect).clamp(max=1.0)
    # centres in the normalised [-1, 1] frame of affine_grid, so that the crop stays inside
    centre_x = (torch.rand(n, generator=generator, dtype=torch.float64) * 2 - 1) * (1 - width)
    centre_y = (torch.rand(n, generator=generator, dtype=torch.float64) * 2 - 1) * (1 - height)
    theta = torch.zeros(n, 2, 3, dtype=torch.float64)
    theta[:, 0, 0], theta[:, 0, 2] = width, centre_x
    theta[:, 1, 1], theta[:, 1, 2] = height, centre_y
    theta = theta.to(device=images.device, dtype=images.dtype)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", align_corners=False)


def mix_resolution(image: torch.Tensor, factor: float) -> torch.Tensor:
    """1 x B x H x W ``image`` averaged down to ``1/factor`` of its size (area averaging, as a
    coarser sensor would see it) and resampled bilinearly back to H x W."""
    height, width = image.shape[-2:]
    small = (max(1, round(height / factor)), max(1, round(width / factor)))
    down = F.interpolate(image, size=small, mode="area")
    return F.interpolate(down, size=(height, width), mode="bilinear", align_corners=False)


def gaussian_kernel(sigma: float) -> torch.Tensor:
    """The normalised 1-D Gaussian of ``sigma`` pixels, radius ``ceil(3 sigma)``."""
    radius = max(1, math.ceil(3.0 * sigma))
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    return kernel / kernel.sum()


def blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """1 x B x H x W ``image`` blurred by a separable Gaussian (edges reflected; on images
    smaller than the kernel, the kernel is cut to the image and renormalised)."""
    bands = image.shape[1]
    kernel = gaussian_kernel(sigma)
    radius = min((len(kernel) - 1) // 2, image.shape[-2] - 1, image.shape[-1] - 1)
    if radius == 0:
        return image
    middle = (len(kernel) - 1) // 2
    kernel = kernel[middle - radius : middle + radius + 1]
    kernel = (kernel / kernel.sum()).to(device=image.device, dtype=image.dtype)
    horizontal = kernel.view(1, 1, 1, -1).expand(bands, 1, 1, -1)
    vertical = kernel.view(1, 1, -1, 1).expand(bands, 1, -1, 1)
    out = F.conv2d(F.pad(image, (radius, radius, 0, 0), mode="reflect"), horizontal, groups=bands)
    return F.conv2d(F.pad(out, (0, 0, radius, radius), mode="reflect"), vertical, groups=bands)


def augment_batch(
    images: torch.Tensor, config: AugmentConfig, generator: torch.Generator
) -> torch.Tensor:
    """Augmented copy of N x B x H x W images in [0, 1] (square images for rotations). The
    random draws are made on the CPU (``generator``), so a batch gets the same augmentation on
    any device; an augmentation that is off draws nothing."""
    n, device = len(images), images.device
    out = images

    def chosen(probability: float) -> torch.Tensor:
        """N x 1 x 1 x 1 booleans on the device, each true with ``probability``."""
        return (torch.rand(n, generator=generator) < probability).to(device).view(-1, 1, 1, 1)

    if config.crop_scale < 1.0:
        out = random_resized_crop(out, config.crop_scale, generator)
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
    if config.resolution_factor > 1.0:
        picked = torch.rand(n, generator=generator) < config.resolution_probability
        factors = _uniform(n, 1.0, config.resolution_factor, generator)
        out = out.clone() if out is images else out
        for row in torch.nonzero(picked).flatten().tolist():
            out[row : row + 1] = mix_resolution(out[row : row + 1], float(factors[row]))
    if config.blur_sigma > 0.0:
        picked = torch.rand(n, generator=generator) < config.blur_probability
        sigmas = _uniform(n, MIN_BLUR_SIGMA, max(MIN_BLUR_SIGMA, config.blur_sigma), generator)
        out = out.clone() if out is images else out
        for row in torch.nonzero(picked).flatten().tolist():
            out[row : row + 1] = blur(out[row : row + 1], float(sigmas[row]))
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
