"""A training network rebuilt from an exported ONNX model (``snca train --init MODEL.onnx``):
the folded batch norms give back the exported network's outputs, the head follows the classes,
and such a run keeps its batch norms in evaluation mode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

from snca_cli.cli import app  # noqa: E402
from snca_cli.errors import SncaError  # noqa: E402
from snca_cli.runtime.onnx_model import OnnxModel  # noqa: E402
from snca_cli.runtime.scene_images import scan_scene_folder  # noqa: E402
from snca_train.checkpoint import make_checkpoint, read_checkpoint, save_checkpoint  # noqa: E402
from snca_train.config import TrainConfig  # noqa: E402
from snca_train.network import ModelConfig, SceneEmbeddingNet  # noqa: E402
from snca_train.onnx_init import FINE_TUNE_LR, network_from_onnx, onnx_init_defaults  # noqa: E402
from snca_train.trainer import Trainer  # noqa: E402
from tests.helpers.export_run import EMBEDDING_DIM, IMAGE_SIZE, write_scenes  # noqa: E402
from tests.helpers.scenes import make_scene_folder  # noqa: E402

QUIET = Console(quiet=True)
runner = CliRunner()
CONFIG = ModelConfig("resnet18", 3, EMBEDDING_DIM, 3, IMAGE_SIZE)


def _network_with_batch_statistics() -> SceneEmbeddingNet:
    """A random network whose batch norms hold statistics far from the identity (as a trained
    one does), so that folding them changes every convolution."""
    torch.manual_seed(1)
    network = SceneEmbeddingNet(CONFIG, pretrained=False)
    with torch.no_grad():
        for layer in network.modules():
            if isinstance(layer, torch.nn.BatchNorm2d):
                layer.running_mean.uniform_(-0.5, 0.5)
                layer.running_var.uniform_(0.3, 3.0)
                layer.weight.uniform_(0.5, 1.5)
                layer.bias.uniform_(-0.3, 0.3)
    return network.eval()


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[SceneEmbeddingNet, Path, Path, list[str]]:
    """The network, its `snca export` model, its scenes and its class names."""
    base = tmp_path_factory.mktemp("onnx_init")
    scenes = write_scenes(base / "scenes")
    network = _network_with_batch_statistics()
    names = scan_scene_folder(scenes).class_names
    checkpoint = base / "best.pt"
    save_checkpoint(checkpoint, make_checkpoint(network, names, 0, str(scenes), 1))
    model = base / "model.onnx"
    args = ["export", str(checkpoint), "-o", str(model), "--data", str(scenes), "--int8"]
    args += ["--calibration-images", "8", "--resolution", "0.3"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return network, model, scenes, names


def _first_conv_and_norm(network: SceneEmbeddingNet):
    layers = [m for m in network.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.BatchNorm2d)]
    return layers[0], layers[1]


def _outputs(network: SceneEmbeddingNet, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    network.eval()
    with torch.inference_mode():
        embedding, logits = network(torch.from_numpy(images))
    return embedding.numpy(), torch.softmax(logits, dim=1).numpy()


def test_the_rebuilt_network_gives_the_exported_outputs(exported) -> None:
    network, model, _, names = exported
    rebuilt, head_kept = network_from_onnx(str(model), CONFIG, names)
    assert head_kept
    images = np.random.default_rng(3).random((4, 3, IMAGE_SIZE, IMAGE_SIZE), np.float32)
    embedding, probabilities = _outputs(rebuilt, images)
    original_embedding, original_probabilities = _outputs(network, images)
    np.testing.assert_allclose(embedding, original_embedding, atol=1e-5)
    np.testing.assert_allclose(probabilities, original_probabilities, atol=1e-5)
    onnx_out = OnnxModel(model).run(images)
    np.testing.assert_allclose(embedding, onnx_out.embedding, atol=1e-5)
    # folded: the first convolution holds W g / sqrt(var + eps), its batch norm only the shift
    conv, norm = _first_conv_and_norm(network)
    rebuilt_conv, rebuilt_norm = _first_conv_and_norm(rebuilt)
    scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
    torch.testing.assert_close(rebuilt_conv.weight, conv.weight * scale[:, None, None, None])
    torch.testing.assert_close(rebuilt_norm.bias, norm.bias - norm.running_mean * scale)
    torch.testing.assert_close(rebuilt.classifier.weight, network.classifier.weight)


def test_other_classes_get_a_new_head_on_the_same_embedding(exported) -> None:
    network, model, _, names = exported
    four = ModelConfig("resnet18", 4, EMBEDDING_DIM, 3, IMAGE_SIZE)
    rebuilt, head_kept = network_from_onnx(str(model), four, [*names, "extra"])
    assert not head_kept
    images = np.random.default_rng(4).random((2, 3, IMAGE_SIZE, IMAGE_SIZE), np.float32)
    np.testing.assert_allclose(
        _outputs(rebuilt, images)[0], _outputs(network, images)[0], atol=1e-5
    )
    assert rebuilt.classifier.weight.shape == (len(names) + 1, EMBEDDING_DIM)
    reordered, _ = network_from_onnx(str(model), CONFIG, names[::-1])
    assert not torch.equal(reordered.classifier.weight, network.classifier.weight)


def test_a_model_of_another_network_is_refused(exported, tmp_path) -> None:
    _, model, _, names = exported
    wider = ModelConfig("resnet18", 3, 8, 3, IMAGE_SIZE)
    with pytest.raises(SncaError, match=r"holds another network \(embedding_dim 16 vs 8\)"):
        network_from_onnx(str(model), wider, names)
    with pytest.raises(SncaError, match="quantised"):
        network_from_onnx(str(model.with_suffix(".int8.onnx")), CONFIG, names)
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(SncaError, match="junk.onnx is not an ONNX model"):
        network_from_onnx(str(tmp_path / "junk.onnx"), CONFIG, names)
    assert onnx_init_defaults(str(model)) == {
        "backbone": "resnet18",
        "embedding_dim": EMBEDDING_DIM,
        "image_size": IMAGE_SIZE,
        "lr": FINE_TUNE_LR,
    }


def test_a_run_from_an_onnx_model_keeps_its_batch_norms(exported, tmp_path) -> None:
    network, model, scenes, _ = exported
    config = TrainConfig(
        data_dir=str(scenes),
        backbone="resnet18",
        image_size=IMAGE_SIZE,
        embedding_dim=EMBEDDING_DIM,
        epochs=1,
        batch_size=8,
        pretrained=False,
        threads=1,
        workers=2,
        init=str(model),
        lr=0.001,
    )
    trainer = Trainer.start(config, tmp_path / "run", QUIET)
    assert trainer.config.freeze_batchnorm
    trainer.train()
    stored = read_checkpoint(tmp_path / "run")
    assert stored["train_config"]["freeze_batchnorm"] is True
    eps = _first_conv_and_norm(network)[1].eps
    for key, value in stored["model_state"].items():
        if key.endswith("running_mean"):
            assert torch.equal(value, torch.zeros_like(value)), key
        elif key.endswith("running_var"):
            torch.testing.assert_close(value, torch.full_like(value, 1 - eps))
    changed = stored["model_state"]["embedding.weight"] - network.embedding.weight
    assert changed.abs().max() > 0  # it trained


def test_train_cli_starts_from_an_onnx_model_with_its_architecture(exported, tmp_path) -> None:
    _, model, _, _ = exported
    data = make_scene_folder(tmp_path / "two", per_class=8, classes=2)
    out = tmp_path / "run"
    args = ["train", str(data), "--init", str(model), "--epochs", "1", "--batch-size", "8"]
    args += ["--workers", "2", "--threads", "1", "--output", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "batch norms are folded, so they stay in evaluation mode" in said
    assert "a new class head for 2 classes, fitted as a linear probe" in said
    checkpoint = read_checkpoint(out)
    assert checkpoint["model_config"] | {"num_classes": 0} == {
        "backbone": "resnet18",
        "num_classes": 0,
        "embedding_dim": EMBEDDING_DIM,
        "input_bands": 3,
        "image_size": IMAGE_SIZE,
        "backbone_size": None,
    }
    assert checkpoint["class_names"] == scan_scene_folder(data).class_names
    assert checkpoint["train_config"]["init"] == str(model.resolve())
    result = runner.invoke(
        app, ["train", str(data), "--init", "gone.onnx", "-o", str(tmp_path / "x")]
    )
    assert result.exit_code != 0 and "gone.onnx does not exist" in result.output
    assert not (tmp_path / "x").exists()


def test_the_shipped_model_is_rebuilt_exactly() -> None:
    architecture = onnx_init_defaults("shipped")
    assert architecture.pop("lr") == FINE_TUNE_LR
    assert architecture == {
        "backbone": "efficientnet_lite0",
        "embedding_dim": 128,
        "image_size": 150,
    }
    config = ModelConfig(num_classes=2, input_bands=3, **architecture)
    # raises unless the rebuilt network's embedding matches the shipped graph's (1e-3)
    network, head_kept = network_from_onnx("shipped", config, ["sea", "land"])
    assert not head_kept
    assert network.classifier.weight.shape == (2, 128)
