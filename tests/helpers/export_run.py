"""A small exported model for the export tests: a random-weight ResNet-18 checkpoint (32 px)
over generated scenes, run through `snca export` with a split, an int8 variant and a card."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from PIL import Image  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from snca_cli.cli import app  # noqa: E402
from snca_cli.runtime.scene_images import make_split, save_split, scan_scene_folder  # noqa: E402
from snca_train.checkpoint import load_model, make_checkpoint, save_checkpoint  # noqa: E402
from snca_train.network import ModelConfig, SceneEmbeddingNet  # noqa: E402

IMAGE_SIZE = 32
EMBEDDING_DIM = 16
COLOURS = {"field": (115, 130, 105), "river": (105, 115, 130), "roof": (130, 110, 105)}
SPLIT_SEED = 4


runner = CliRunner()


@dataclass
class Exported:
    """A run folder (checkpoint + split.json), its scenes, and what `snca export` wrote."""

    run: Path
    scenes: Path
    checkpoint: Path
    model: Path
    int8: Path
    output: str


def write_scenes(root: Path) -> Path:
    """3 classes x 10 textured 40 x 40 scenes around each class colour."""
    rng = np.random.default_rng(0)
    for name, colour in COLOURS.items():
        (root / name).mkdir(parents=True)
        for i in range(10):
            texture = rng.integers(-60, 61, (40, 40, 3))
            pixels = np.clip(np.array(colour) + texture, 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i:02d}.png")
    return root


def write_checkpoint(run: Path, scenes: Path, **config: int | str) -> Path:
    """A random-weight ResNet-18 checkpoint through the trainer's own helpers."""
    torch.manual_seed(0)
    values = {"backbone": "resnet18", "num_classes": 3, "embedding_dim": EMBEDDING_DIM}
    values |= {"image_size": IMAGE_SIZE} | config
    network = SceneEmbeddingNet(ModelConfig(**values), pretrained=False).eval()
    path = run / "best.pt"
    folder = scan_scene_folder(scenes)
    save_checkpoint(path, make_checkpoint(network, folder.class_names, SPLIT_SEED, str(scenes), 1))
    return path


def make_exported(base: Path) -> Exported:
    """Write scenes, a checkpoint and its split.json under ``base`` and run `snca export` on them
    (with ``--int8``); the body of the ``exported`` fixtures."""
    scenes = write_scenes(base / "scenes")
    run = base / "run"
    run.mkdir()
    checkpoint = write_checkpoint(run, scenes)
    folder = scan_scene_folder(scenes)
    save_split(run / "split.json", folder, make_split(folder, SPLIT_SEED), SPLIT_SEED)
    model = run / "model.onnx"
    args = ["export", str(checkpoint), "-o", str(model), "--data", str(scenes), "--int8"]
    args += ["--calibration-images", "8", "--resolution", "0.3", "--overlap-percent", "25"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return Exported(run, scenes, checkpoint, model, run / "model.int8.onnx", result.output)


def torch_outputs(checkpoint: Path, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    network, _ = load_model(checkpoint)
    with torch.inference_mode():
        embedding, logits = network(torch.from_numpy(images))
    return embedding.numpy(), torch.softmax(logits, dim=1).numpy()
