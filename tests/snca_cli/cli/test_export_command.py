"""`snca export` through the CLI: evaluation parity, refused outputs, earlier evaluations, bad
inputs, a backbone size and a TTA export."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from typer.testing import CliRunner  # noqa: E402

from snca_cli.cli import app  # noqa: E402
from snca_cli.runtime.onnx_model import OnnxModel, file_sha256  # noqa: E402
from snca_cli.runtime.scene_images import load_split  # noqa: E402
from tests.helpers.export_run import (  # noqa: E402
    IMAGE_SIZE,
    Exported,
    torch_outputs,
    write_checkpoint,
    write_scenes,
)
from tests.helpers.model_readers import deepness_reads, geodeep_reads  # noqa: E402

pytestmark = pytest.mark.torch
runner = CliRunner()


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
    # an unknown resolution is left out, never written as null (Deepness and GeoDeep float() it)
    assert "resolution" not in OnnxModel(target).session.get_modelmeta().custom_metadata_map
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


@pytest.mark.slow
def test_a_tta_export_averages_the_8_orientations_in_the_graph(
    exported: Exported, tmp_path: Path
) -> None:
    from snca_cli.tasks.evaluate import open_checkpoint, run_with_tta

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


def test_export_resolution_in_m_is_written_in_cm_per_px(exported: Exported, tmp_path: Path) -> None:
    target = tmp_path / "res.onnx"
    args = ["export", str(exported.checkpoint), "-o", str(target), "--resolution", "0.5"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    props = OnnxModel(target).session.get_modelmeta().custom_metadata_map
    assert deepness_reads(props)["resolution"] == geodeep_reads(props)["resolution"] == 50.0
