"""The scene-embedding network: the resampling to ``backbone_size`` and its configuration."""

import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

import torch.nn.functional as F  # noqa: E402

from snca_train.network import ModelConfig, SceneEmbeddingNet  # noqa: E402


def network(backbone_size: int | None) -> SceneEmbeddingNet:
    torch.manual_seed(0)
    config = ModelConfig(
        "resnet18", num_classes=3, embedding_dim=8, image_size=32, backbone_size=backbone_size
    )
    return SceneEmbeddingNet(config, pretrained=False).eval()


def test_the_backbone_sees_images_resampled_to_its_size() -> None:
    resampling, plain = network(48), network(None)
    plain.load_state_dict(resampling.state_dict())
    images = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    upsampled = F.interpolate(images, size=(48, 48), mode="bilinear", align_corners=False)
    with torch.inference_mode():
        embedding, logits = resampling(images)
        expected_embedding, expected_logits = plain(upsampled)
        unresampled, _ = plain(images)
    # standardising then resampling equals resampling then standardising (weights sum to 1)
    torch.testing.assert_close(embedding, expected_embedding, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(logits, expected_logits, atol=1e-5, rtol=1e-4)
    assert (embedding - unresampled).abs().max() > 1e-2


def test_images_already_at_the_backbone_size_pass_unchanged() -> None:
    resampling, plain = network(32), network(None)
    plain.load_state_dict(resampling.state_dict())
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        assert torch.equal(resampling(images)[0], plain(images)[0])


def test_configurations_stored_before_backbone_size_still_load() -> None:
    stored = {"backbone": "resnet18", "num_classes": 3, "embedding_dim": 8, "image_size": 32}
    assert ModelConfig.from_dict(stored).backbone_size is None
    assert ModelConfig.from_dict(stored | {"backbone_size": 64}).backbone_size == 64
