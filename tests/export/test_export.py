"""`snca export` of a small ResNet-18 checkpoint (32 px, random weights): the ONNX graph, its
agreement with torch, metadata, model card, int8 variant, and evaluation parity."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from PIL import Image  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from snca_cli.cli import app  # noqa: E402
from snca_cli.dataset import (  # noqa: E402
    load_split,
    make_split,
    read_image,
    resize_image,
    save_split,
    scan_scene_folder,
)
from snca_cli.model import OnnxModel, file_sha256  # noqa: E402
from train.checkpoint import load_model, make_checkpoint, save_checkpoint  # noqa: E402
from train.model import ModelConfig, SceneEmbeddingNet  # noqa: E402

pytestmark = pytest.mark.torch

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


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    base = tmp_path_factory.mktemp("export")
    scenes = write_scenes(base / "scenes")
    run = base / "run"
    run.mkdir()
    checkpoint = write_checkpoint(run, scenes)
    folder = scan_scene_folder(scenes)
    save_split(run / "split.json", folder, make_split(folder, SPLIT_SEED), SPLIT_SEED)
    model = run / "model.onnx"
    args = ["export", str(checkpoint), "-o", str(model), "--data", str(scenes), "--int8"]
    args += ["--calibration-images", "8", "--resolution-cm", "30", "--overlap-percent", "25"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return Exported(run, scenes, checkpoint, model, run / "model.int8.onnx", result.output)


def torch_outputs(checkpoint: Path, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    network, _ = load_model(checkpoint)
    with torch.inference_mode():
        embedding, logits = network(torch.from_numpy(images))
    return embedding.numpy(), torch.softmax(logits, dim=1).numpy()


def test_graph_follows_the_contract(exported: Exported) -> None:
    model = onnx.load(str(exported.model))
    onnx.checker.check_model(model, full_check=True)
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [17]
    (image,) = model.graph.input
    dims = [d.dim_param or d.dim_value for d in image.type.tensor_type.shape.dim]
    assert image.name == "image" and dims == ["N", 3, IMAGE_SIZE, IMAGE_SIZE]
    outputs = [
        (o.name, [d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim])
        for o in model.graph.output
    ]
    assert outputs == [("embedding", ["N", EMBEDDING_DIM]), ("probabilities", ["N", 3])]


@pytest.mark.parametrize("batch", [1, 5])
def test_onnx_matches_torch_on_generated_images(exported: Exported, batch: int) -> None:
    images = np.random.default_rng(batch).random((batch, 3, IMAGE_SIZE, IMAGE_SIZE), np.float32)
    out = OnnxModel(exported.model).run(images)
    embedding, probabilities = torch_outputs(exported.checkpoint, images)
    assert out.embedding.shape == (batch, EMBEDDING_DIM)
    np.testing.assert_allclose(out.embedding, embedding, atol=1e-4)
    np.testing.assert_allclose(out.probabilities, probabilities, atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(out.embedding, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(out.probabilities.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.shared_data
def test_onnx_matches_torch_on_real_aid_images(exported: Exported, aid_dir: Path) -> None:
    paths = [sorted((aid_dir / name).glob("*.jpg"))[0] for name in ("Airport", "Beach", "Forest")]
    images = (
        np.stack(
            [np.moveaxis(resize_image(read_image(p), IMAGE_SIZE), -1, 0) for p in paths]
        ).astype(np.float32)
        / 255
    )
    out = OnnxModel(exported.model).run(images)
    embedding, probabilities = torch_outputs(exported.checkpoint, images)
    np.testing.assert_allclose(out.embedding, embedding, atol=1e-4)
    np.testing.assert_allclose(out.probabilities, probabilities, atol=1e-4)


def test_metadata_round_trips(exported: Exported) -> None:
    meta = OnnxModel(exported.model).metadata
    assert meta.class_names == ["field", "river", "roof"]
    assert (meta.tile_size, meta.embedding_dim, meta.input_bands) == (IMAGE_SIZE, EMBEDDING_DIM, 3)
    assert meta.input_scale["uint8"] == 255.0
    assert (meta.resolution_cm, meta.tiles_overlap, meta.backbone) == (30.0, 25.0, "resnet18")
    assert meta.training["split_seed"] == SPLIT_SEED and meta.training["dataset"] == "scenes"
    assert meta.training["epochs"] == 1
    card = json.loads(exported.model.with_name("model.card.json").read_text())
    assert meta.training["test_metrics"] == card["test_metrics"]
    assert set(card["test_metrics"]) >= {"knn@1", "knn@10", "map@20", "p@1", "nmi", "classifier"}


def test_model_card_records_the_exact_split(exported: Exported) -> None:
    card = json.loads(exported.model.with_name("model.card.json").read_text())
    split = load_split(exported.run / "split.json")
    assert card["split"]["seed"] == SPLIT_SEED
    assert (card["split"]["train"], card["split"]["test"]) == (split["train"], split["test"])
    assert card["model"]["sha256"] == file_sha256(exported.model)
    assert card["input"]["shape"] == ["N", 3, IMAGE_SIZE, IMAGE_SIZE]
    assert card["int8"]["sha256"] == file_sha256(exported.int8)
    markdown = exported.model.with_name("model.card.md").read_text()
    for heading in ("## Intended use", "## Input contract", "## Test metrics", "## Limitations"):
        assert heading in markdown
    assert f"seed {SPLIT_SEED}" in markdown and "21 train, 3 val, 6 test" in markdown


def test_int8_model_loads_and_stays_close(exported: Exported) -> None:
    quantized, full = OnnxModel(exported.int8), OnnxModel(exported.model)
    assert quantized.metadata == full.metadata
    ops = {node.op_type for node in onnx.load(str(exported.int8)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    images = np.random.default_rng(9).random((4, 3, IMAGE_SIZE, IMAGE_SIZE), np.float32)
    a, b = full.run(images).embedding, quantized.run(images).embedding
    np.testing.assert_allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-4)
    assert (a * b).sum(axis=1).min() > 0.9
    printed = " ".join(exported.output.split())
    assert "images/s int8 vs" in printed and "kNN@10 accuracy:" in printed
    card = json.loads(exported.model.with_name("model.card.json").read_text())
    assert card["int8"]["calibration_images"] == 8
    assert 0.0 <= card["int8"]["knn@10_int8"] <= 1.0


def test_evaluate_checkpoint_and_onnx_agree(exported: Exported, tmp_path: Path) -> None:
    reports = []
    for model in (exported.checkpoint, exported.model):
        out = tmp_path / f"{model.suffix[1:]}-eval"
        result = runner.invoke(app, ["evaluate", str(model), str(exported.scenes), "-o", str(out)])
        assert result.exit_code == 0, result.output
        reports.append(json.loads((out / "metrics.json").read_text()))
    checkpoint_report, onnx_report = reports
    assert checkpoint_report["data"]["num_test"] == onnx_report["data"]["num_test"] == 6
    for key, value in checkpoint_report["metrics"].items():
        assert onnx_report["metrics"][key] == pytest.approx(value, abs=1e-3), key
    assert checkpoint_report["confusion_matrix"] == onnx_report["confusion_matrix"]
    card = json.loads(exported.model.with_name("model.card.json").read_text())
    assert card["test_metrics"] == pytest.approx(onnx_report["metrics"], abs=1e-9)


def test_existing_outputs_are_refused_without_force(exported: Exported) -> None:
    before = file_sha256(exported.model)
    result = runner.invoke(app, ["export", str(exported.checkpoint), "-o", str(exported.model)])
    assert result.exit_code == 2 and "exists; use --force" in result.output
    assert file_sha256(exported.model) == before
    assert not [p for p in exported.run.iterdir() if p.name.startswith(".")]


def test_export_without_data_uses_an_earlier_evaluation(exported: Exported, tmp_path: Path) -> None:
    evaluation = exported.run / "best-eval" / "metrics.json"
    evaluation.parent.mkdir(exist_ok=True)
    evaluation.write_text(json.dumps({"metrics": {"knn@10": 0.75}}))
    try:
        target = tmp_path / "plain.onnx"
        result = runner.invoke(app, ["export", str(exported.checkpoint), "-o", str(target)])
        assert result.exit_code == 0, result.output
    finally:
        evaluation.unlink()
        evaluation.parent.rmdir()
    meta = OnnxModel(target).metadata
    assert meta.training["test_metrics"] == {"knn@10": 0.75}
    assert meta.resolution_cm is None and meta.tiles_overlap == 0.0
    card = json.loads((tmp_path / "plain.card.json").read_text())
    # the split.json beside the checkpoint is recorded even without --data
    assert card["split"]["test"] == load_split(exported.run / "split.json")["test"]
    assert card["int8"] is None and not (tmp_path / "plain.int8.onnx").exists()


def test_bad_inputs_are_one_line_errors(exported: Exported, tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    result = runner.invoke(app, ["export", str(foreign), "-o", str(tmp_path / "a.onnx")])
    assert result.exit_code == 2 and "is not an snca checkpoint" in result.output

    other = tmp_path / "other"
    other.mkdir()
    checkpoint = torch.load(exported.checkpoint, weights_only=True)
    checkpoint["model_config"]["embedding_dim"] = 8  # the stored weights have 16
    torch.save(checkpoint, other / "best.pt")
    result = runner.invoke(app, ["export", str(other / "best.pt"), "-o", str(tmp_path / "b.onnx")])
    assert result.exit_code == 2 and "does not match its model configuration" in result.output

    result = runner.invoke(app, ["export", str(exported.checkpoint), "-o", str(tmp_path / "c.pt")])
    assert result.exit_code == 2 and "must end in .onnx" in result.output

    checkpoint = torch.load(exported.checkpoint, weights_only=True)
    checkpoint["data_dir"] = str(tmp_path / "gone")
    torch.save(checkpoint, other / "moved.pt")
    args = ["export", str(other / "moved.pt"), "-o", str(tmp_path / "d.onnx"), "--int8"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "--int8 needs calibration images" in result.output
    assert not list(tmp_path.glob("*.onnx"))


def test_split_recorded_in_the_checkpoint_is_used_for_the_card() -> None:
    from export.pipeline import stored_split

    assert stored_split({"split_seed": 3}) is None
    split = stored_split(
        {"split_seed": 3, "split": {"train": ["a/1.png"], "val": [], "test": ["a/2.png"]}}
    )
    assert split is not None
    assert (split.train, split.test, split.seed) == (["a/1.png"], ["a/2.png"], 3)


def test_a_backbone_size_exports_its_resampling(tmp_path: Path) -> None:
    """A 32 px network whose backbone sees 48 px: the ONNX graph takes 32 px tiles, resamples
    inside and agrees with torch; the card records the backbone size."""
    scenes = write_scenes(tmp_path / "scenes")
    run = tmp_path / "run"
    run.mkdir()
    checkpoint = write_checkpoint(run, scenes, backbone_size=48)
    model = run / "model.onnx"
    result = runner.invoke(app, ["export", str(checkpoint), "-o", str(model)])
    assert result.exit_code == 0, result.output
    images = np.random.default_rng(3).random((4, 3, IMAGE_SIZE, IMAGE_SIZE), np.float32)
    onnx_model = OnnxModel(model)
    out = onnx_model.run(images)
    embedding, probabilities = torch_outputs(checkpoint, images)
    np.testing.assert_allclose(out.embedding, embedding, atol=1e-4)
    np.testing.assert_allclose(out.probabilities, probabilities, atol=1e-4)
    assert onnx_model.metadata.tile_size == IMAGE_SIZE
    assert any(node.op_type == "Resize" for node in onnx.load(str(model)).graph.node)
    card = json.loads(model.with_suffix(".card.json").read_text())
    assert card["input"]["shape"] == ["N", 3, IMAGE_SIZE, IMAGE_SIZE]
    assert card["training"]["backbone_size"] == 48


def test_the_card_names_the_checkpoint_a_run_started_from() -> None:
    from export.pipeline import training_summary

    checkpoint = {
        "train_config": {"init": "/data/runs/aid-table/snca-ce-bank/last.pt", "loss": {}},
        "model_config": {"backbone_size": 224},
        "epoch": 6,
    }
    summary = training_summary(checkpoint, None)
    assert summary["started_from"] == "snca-ce-bank/last.pt"
    assert summary["backbone_size"] == 224 and summary["epochs"] == 6
    assert "started_from" not in training_summary({"train_config": {"loss": {}}}, None)


def test_a_tta_export_averages_the_8_orientations_in_the_graph(
    exported: Exported, tmp_path: Path
) -> None:
    from snca_cli.evaluate import open_checkpoint, run_with_tta

    model = tmp_path / "tta.onnx"
    args = ["export", str(exported.checkpoint), "-o", str(model), "--tta"]
    result = runner.invoke(app, [*args, "--data", str(exported.scenes)])
    assert result.exit_code == 0, result.output
    onnx_model = OnnxModel(model)
    assert onnx_model.metadata.orientations == 8
    assert OnnxModel(exported.model).metadata.orientations == 1
    images = np.random.default_rng(5).random((3, 3, IMAGE_SIZE, IMAGE_SIZE), np.float32)
    out = onnx_model.run(images)
    # the same as `snca evaluate --tta` computes outside the graph, from the checkpoint
    expected = run_with_tta(open_checkpoint(exported.checkpoint), images)
    np.testing.assert_allclose(out.embedding, expected.embedding, atol=1e-4)
    np.testing.assert_allclose(out.probabilities, expected.probabilities, atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(out.embedding, axis=1), 1.0, atol=1e-5)
    # so a turned or mirrored tile has the same embedding; without --tta it has not
    turned = np.ascontiguousarray(np.rot90(images[..., ::-1], 1, axes=(2, 3)))
    np.testing.assert_allclose(onnx_model.run(turned).embedding, out.embedding, atol=1e-5)
    plain = OnnxModel(exported.model)
    assert np.abs(plain.run(turned).embedding - plain.run(images).embedding).max() > 1e-3
    # and the card's test metrics are those of `snca evaluate CHECKPOINT --tta`
    out_dir = tmp_path / "tta-eval"
    args = ["evaluate", str(exported.checkpoint), str(exported.scenes), "--tta", "-o"]
    result = runner.invoke(app, [*args, str(out_dir)])
    assert result.exit_code == 0, result.output
    evaluated = json.loads((out_dir / "metrics.json").read_text())["metrics"]
    card = json.loads(model.with_name("tta.card.json").read_text())
    assert card["test_metrics"] == pytest.approx(evaluated, abs=1e-3)
    assert card["model"]["orientations_averaged"] == 8
    assert "means over the 8 flips and quarter turns" in model.with_name("tta.card.md").read_text()
