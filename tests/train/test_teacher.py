"""The distillation teacher's vectors: the frozen backbone's several-stage features."""

import numpy as np
import pytest
from rich.console import Console

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

from snca_train.backbones import build_backbone  # noqa: E402
from snca_train.stage_features import STAGE_ENDS, StageFeatures  # noqa: E402
from snca_train.teacher import TEACHER_BATCH, teacher_memory  # noqa: E402
from snca_train.training_data import DeviceImages, ImageCache  # noqa: E402

QUIET = Console(quiet=True)


def device_images(count: int, size: int, seed: int = 0) -> DeviceImages:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (count, size, size, 3), dtype=np.uint8)
    cache = ImageCache(pixels, np.zeros(count, dtype=np.int64), [f"{i}.png" for i in range(count)])
    return DeviceImages(cache, torch.device("cpu"))


def test_lite0_teacher_is_its_frozen_several_stage_vector():
    images = device_images(TEACHER_BATCH + 3, 48)  # two batches
    vectors = teacher_memory("efficientnet_lite0", images, QUIET)
    assert vectors.shape == (TEACHER_BATCH + 3, 80 + 112 + 192 + 1280)
    assert torch.allclose(vectors.norm(dim=1), torch.ones(len(vectors)), atol=1e-5)
    # the same vector, written out: stage outputs and pooled features of the ImageNet weights,
    # pooled, each unit length, concatenated, then unit length
    frozen = build_backbone("efficientnet_lite0", 3, pretrained=True)
    module = frozen.module.eval()
    mean = torch.tensor(frozen.mean).view(1, -1, 1, 1)
    std = torch.tensor(frozen.std).view(1, -1, 1, 1)
    captured = []
    stages = StageFeatures(module)
    for block in stages.blocks:
        block.register_forward_hook(lambda _m, _i, out: captured.append(out.mean(dim=(2, 3))))
    with torch.no_grad():
        pooled = module((images.batch(torch.arange(130, 131)) - mean) / std)
    parts = [p / p.norm(dim=1, keepdim=True) for p in [*captured, pooled]]
    expected = torch.cat(parts, dim=1)
    expected = expected / expected.norm(dim=1, keepdim=True)
    assert len(STAGE_ENDS) == 3
    assert torch.allclose(vectors[130:131], expected, atol=1e-5)


def test_a_resnet_teacher_is_its_pooled_vector(tmp_path):
    # a ResNet has no EfficientNet stages: its pooled features, here of a --weights FILE (the
    # ImageNet ones would need a download)
    import torchvision

    torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp_path / "r18.pt")
    vectors = teacher_memory("resnet18", device_images(4, 32), QUIET, weights=tmp_path / "r18.pt")
    assert vectors.shape == (4, 512)
    assert torch.allclose(vectors.norm(dim=1), torch.ones(4), atol=1e-5)


def test_a_teacher_follows_the_backbone_size():
    images = device_images(2, 32)
    small = teacher_memory("efficientnet_lite0", images, QUIET)
    resampled = teacher_memory("efficientnet_lite0", images, QUIET, backbone_size=64)
    assert small.shape == resampled.shape
    assert not torch.allclose(small, resampled, atol=1e-3)
