"""Batch augmentation: geometry keeps the pixels, colour jitter follows its formulas, every draw
comes from the given generator."""

import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

from snca_cli.errors import SncaError  # noqa: E402
from snca_train.augment import (  # noqa: E402
    DEFAULT_RECIPE,
    AugmentConfig,
    augment_batch,
    blur,
    gaussian_kernel,
    grey,
    mix_resolution,
    random_resized_crop,
    recipe,
)

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


# ------------------------------------------------------------------ the transfer augmentations

NO_JITTER = dict(
    flips=False,
    rotations=False,
    brightness=0.0,
    contrast=0.0,
    saturation=0.0,
    grayscale_probability=0.0,
)


def test_classic_recipe_is_the_old_augmentation_and_draws_the_same():
    """The field defaults are the classic recipe; its new augmentations are off and draw
    nothing: old runs resume unchanged."""
    assert recipe("classic") == AugmentConfig()
    images = torch.rand(8, 3, 12, 12)
    old_style = AugmentConfig(crop_scale=1.0, resolution_factor=1.0, blur_sigma=0.0)
    generator = torch.Generator().manual_seed(3)
    augment_batch(images, old_style, generator)
    # the old code drew: 2 x n flips, n turns, 3 x n jitter factors, n grey choices
    reference = torch.Generator().manual_seed(3)
    for _ in range(2):
        torch.rand(8, generator=reference)
    torch.randint(0, 4, (8,), generator=reference)
    for _ in range(4):
        torch.rand(8, generator=reference)
    assert torch.equal(generator.get_state(), reference.get_state())


def test_transfer_recipe_shapes_ranges_and_seeded_determinism():
    images = torch.rand(16, 3, 32, 32)
    config = recipe("transfer")
    first = augment_batch(images, config, torch.Generator().manual_seed(1))
    again = augment_batch(images, config, torch.Generator().manual_seed(1))
    other = augment_batch(images, config, torch.Generator().manual_seed(2))
    assert first.shape == images.shape and first.dtype == images.dtype
    assert torch.equal(first, again) and not torch.equal(first, other)
    assert float(first.min()) >= 0.0 and float(first.max()) <= 1.0
    four_bands = augment_batch(torch.rand(4, 4, 20, 20), config, torch.Generator().manual_seed(0))
    assert four_bands.shape == (4, 4, 20, 20)


def test_unknown_recipe_and_out_of_range_knobs_are_refused():
    with pytest.raises(SncaError, match="unknown augmentation 'strong'"):
        recipe("strong")
    for bad in (
        AugmentConfig(crop_scale=0.0),
        AugmentConfig(resolution_factor=0.5),
        AugmentConfig(blur_sigma=-1.0),
        AugmentConfig(brightness=1.0),
    ):
        with pytest.raises(SncaError):
            bad.validate()


def test_random_resized_crop_zooms_into_a_ramp():
    """On a horizontal ramp 0..1 a crop of width fraction w is a ramp of range about w, inside
    the original range, still increasing; constant images stay constant."""
    size = 64
    ramp = ((torch.arange(size) + 0.5) / size).view(1, 1, 1, size).expand(32, 3, size, size)
    out = random_resized_crop(ramp.contiguous(), 0.25, torch.Generator().manual_seed(0))
    rows = out[:, 0, size // 2, :]
    assert bool((rows[:, 1:] >= rows[:, :-1] - 1e-6).all())  # still increasing
    spans = rows[:, -1] - rows[:, 0]
    # widths are sqrt(area x aspect) with area >= 0.25, aspect in [3/4, 4/3]
    assert float(spans.min()) > 0.25 * (size - 1) / size * 0.85
    assert float(spans.max()) <= 1.0
    assert float(spans.max() - spans.min()) > 0.2  # the crops differ
    constant = torch.full((4, 3, 16, 16), 0.4)
    cropped = random_resized_crop(constant, 0.3, torch.Generator().manual_seed(0))
    assert torch.allclose(cropped, constant)


def test_resolution_mixing_removes_detail_finer_than_the_factor():
    """A one-pixel checkerboard averaged down by 2 is uniform grey: resampled back, it is 0.5
    everywhere; 2 x 2 blocks survive a factor of 1."""
    checker = ((torch.arange(8).view(-1, 1) + torch.arange(8).view(1, -1)) % 2).float()
    image = checker.view(1, 1, 8, 8).expand(1, 3, 8, 8)
    assert torch.allclose(mix_resolution(image, 2.0), torch.full((1, 3, 8, 8), 0.5))
    assert torch.allclose(mix_resolution(image, 1.0), image)


def test_resolution_mixing_in_the_batch_touches_about_half_the_images():
    images = torch.rand(64, 3, 16, 16)
    config = AugmentConfig(**NO_JITTER, resolution_factor=4.0, resolution_probability=0.5)
    out = augment_batch(images, config, torch.Generator().manual_seed(0))
    changed = (out - images).abs().amax(dim=(1, 2, 3)) > 1e-6
    assert 20 <= int(changed.sum()) <= 44
    # a mixed image is smoother: less pixel-to-pixel variation than the noise it came from
    step = (out[:, :, :, 1:] - out[:, :, :, :-1]).abs().mean(dim=(1, 2, 3))
    original = (images[:, :, :, 1:] - images[:, :, :, :-1]).abs().mean(dim=(1, 2, 3))
    assert bool((step[changed] < original[changed] * 0.9).all())


def test_blur_kernel_and_an_impulse():
    """Sigma 1: the kernel is exp(-x^2/2) normalised over radius 3; a centred impulse spreads
    into the outer product of the kernel and keeps its sum."""
    kernel = gaussian_kernel(1.0)
    raw = torch.exp(-0.5 * torch.arange(-3, 4, dtype=torch.float64) ** 2)
    assert torch.allclose(kernel, raw / raw.sum())
    assert float(kernel[3]) == pytest.approx(0.39905, abs=1e-5)
    impulse = torch.zeros(1, 1, 15, 15, dtype=torch.float64)
    impulse[0, 0, 7, 7] = 1.0
    out = blur(impulse, 1.0)
    assert float(out.sum()) == pytest.approx(1.0)
    assert torch.allclose(out[0, 0, 4:11, 4:11], torch.outer(kernel, kernel))
    constant = torch.full((1, 3, 5, 5), 0.7)
    assert torch.allclose(blur(constant, 1.5), constant)  # kernel cut to the 5 px image


def test_training_configurations_stored_before_the_transfer_recipe_still_load():
    """A checkpoint's train_config from before these fields: the new augmentations are off."""
    from snca_train.config import TrainConfig

    old = TrainConfig(data_dir="scenes").to_dict()
    old["augment"] = {
        "flips": True,
        "rotations": True,
        "brightness": 0.3,
        "contrast": 0.3,
        "saturation": 0.3,
        "grayscale_probability": 0.1,
    }
    config = TrainConfig.from_dict(old)
    assert config.augment == recipe("classic")
    assert (config.augment.crop_scale, config.augment.resolution_factor) == (1.0, 1.0)
    assert config.augment.blur_sigma == 0.0


def test_new_runs_train_with_the_transfer_recipe_and_configs_without_augment_load_classic():
    from snca_train.config import TrainConfig

    assert DEFAULT_RECIPE == "transfer"
    assert TrainConfig(data_dir="scenes").augment == recipe("transfer")
    stored = TrainConfig(data_dir="scenes").to_dict()
    assert TrainConfig.from_dict(stored).augment == recipe("transfer")
    del stored["augment"]  # stored before the augmentation was configurable
    assert TrainConfig.from_dict(stored).augment == recipe("classic")
