"""Batch augmentation: geometry keeps the pixels, colour jitter follows its formulas, every draw
comes from the given generator."""

import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

from snca_train.augment import AugmentConfig, augment_batch, grey  # noqa: E402

GEOMETRY_ONLY = AugmentConfig(brightness=0.0, contrast=0.0, saturation=0.0, grayscale_probability=0)


def dihedral_images(image):
    """The 8 flips/rotations of one C x H x W image."""
    out = []
    for flipped in (image, image.flip(-1)):
        out.extend(torch.rot90(flipped, k, dims=(-2, -1)) for k in range(4))
    return out


def test_geometry_gives_flips_and_rotations_of_each_image():
    images = torch.rand(32, 3, 6, 6)
    out = augment_batch(images, GEOMETRY_ONLY, torch.Generator().manual_seed(0))
    seen = set()
    for original, augmented in zip(images, out, strict=True):
        matches = [i for i, v in enumerate(dihedral_images(original)) if torch.equal(v, augmented)]
        assert matches
        seen.add(matches[0])
    assert len(seen) >= 6  # the 32 images got many of the 8 orientations


def test_same_seed_same_batch_and_other_seed_other_batch():
    images = torch.rand(8, 3, 10, 10)
    config = AugmentConfig()
    first = augment_batch(images, config, torch.Generator().manual_seed(5))
    again = augment_batch(images, config, torch.Generator().manual_seed(5))
    other = augment_batch(images, config, torch.Generator().manual_seed(6))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    assert float(first.min()) >= 0.0 and float(first.max()) <= 1.0


def test_brightness_scales_each_image_by_one_factor():
    images = torch.full((64, 3, 4, 4), 0.5)
    config = AugmentConfig(
        flips=False,
        rotations=False,
        brightness=0.4,
        contrast=0.0,
        saturation=0.0,
        grayscale_probability=0.0,
    )
    out = augment_batch(images, config, torch.Generator().manual_seed(0))
    factors = out[:, 0, 0, 0] / 0.5
    assert torch.allclose(out, factors.view(-1, 1, 1, 1) * 0.5)
    assert float(factors.min()) >= 0.6 and float(factors.max()) <= 1.4
    assert float(factors.max() - factors.min()) > 0.5


def test_saturation_zero_factor_limit_and_grayscale():
    images = torch.rand(16, 3, 5, 5) * 0.5 + 0.25
    config = AugmentConfig(
        flips=False,
        rotations=False,
        brightness=0.0,
        contrast=0.0,
        saturation=0.0,
        grayscale_probability=1.0,
    )
    out = augment_batch(images, config, torch.Generator().manual_seed(0))
    assert torch.allclose(out, grey(images).expand_as(images))
    # luma weights: a pure red pixel of value 1 has luminance 0.299
    assert grey(torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)).item() == pytest.approx(0.299)


def test_contrast_keeps_the_mean_grey_level():
    images = torch.rand(16, 3, 8, 8) * 0.4 + 0.3
    config = AugmentConfig(
        flips=False,
        rotations=False,
        brightness=0.0,
        contrast=0.5,
        saturation=0.0,
        grayscale_probability=0.0,
    )
    out = augment_batch(images, config, torch.Generator().manual_seed(0))
    before = grey(images).mean(dim=(1, 2, 3))
    after = grey(out).mean(dim=(1, 2, 3))
    assert torch.allclose(before, after, atol=1e-6)
    assert not torch.allclose(images, out)


def test_four_band_images_use_the_band_mean_as_grey():
    images = torch.rand(4, 4, 6, 6)
    config = AugmentConfig(
        flips=False,
        rotations=False,
        brightness=0.0,
        contrast=0.0,
        saturation=0.0,
        grayscale_probability=1.0,
    )
    out = augment_batch(images, config, torch.Generator().manual_seed(0))
    assert torch.allclose(out, images.mean(dim=1, keepdim=True).expand_as(images))
