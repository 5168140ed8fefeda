"""benchmarks/aid_table.py: timings from a run's history, settings checks, the Markdown table,
and (slow, torch) a real tiny table that is resumed without retraining."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from aid_table import (
    EMBEDDINGS_FILE,
    FROZEN,
    METHODS,
    PROJECTION_FILE,
    RESULT_FILE,
    RESULTS_JSON,
    RESULTS_MD,
    RESULTS_PNG,
    RETRIEVAL_FILE,
    Settings,
    format_minutes,
    load_result,
    results_markdown,
    settings_differences,
    table_metrics,
    timing_from_history,
    write_summary,
)
from PIL import Image

from snca_cli.errors import SncaError


def test_timing_adds_up_the_epochs():
    history = [
        {"epoch_seconds": 100.0, "train_seconds": 80.0, "train_images": 6400},
        {"epoch_seconds": 50.0, "train_seconds": 40.0, "train_images": 3200},
    ]
    assert timing_from_history(history) == {
        "epochs": 2,
        "wall_seconds": 150.0,
        "train_seconds": 120.0,
        "images_per_second": 80.0,
    }
    assert timing_from_history([])["images_per_second"] is None


def test_settings_differences_compare_the_data_folder_by_name():
    stored = {"data_dir": "/a/aid150", "lr": 0.02, "loss": "ce"}
    assert settings_differences(stored, {"data_dir": "/b/aid150", "lr": 0.02}) == []
    assert settings_differences(stored, {"data_dir": "/b/AID", "loss": "snca"}) == [
        "data_dir aid150 vs AID",
        "loss ce vs snca",
    ]


def test_run_options_define_each_trained_method():
    settings = Settings(data_dir="aid", epochs=3, lr=0.1)
    options = settings.run_options(METHODS["snca-ce-momentum"])
    assert options["loss"] == "snca+ce" and options["memory"] == "momentum-encoder"
    assert (options["epochs"], options["lr"], options["backbone"]) == (3, 0.1, "efficientnet_lite0")
    assert "threads" not in options  # speed only: a table may move between machines
    assert METHODS[FROZEN].options is None


def test_format_minutes():
    assert (format_minutes(90.0), format_minutes(None)) == ("1.5 min", "-")


def _result(metrics: dict[str, float], training: dict | None) -> dict:
    return {"metrics": metrics, "training": training}


def test_markdown_table_in_method_order_with_missing_values_as_dashes():
    settings = Settings(data_dir="/x/aid150", epochs=2, batch_size=32, lr=0.05)
    metrics = {
        "knn@1": 0.5,
        "knn@5": 0.25,
        "knn@10": 0.125,
        "map@20": 0.1,
        "map@100": 0.2,
        "p@10": 0.3,
        "nmi": 0.4,
        "clustering_accuracy": 0.6,
    }
    results = {
        FROZEN: _result(metrics, None),
        "ce": _result(
            {**metrics, "classifier": 0.875}, {"wall_seconds": 600.0, "images_per_second": 51.25}
        ),
    }
    lines = results_markdown(results, settings).splitlines()
    assert lines[0].startswith("AID, efficientnet_lite0 at 150 px, 2 epochs, batch 32, lr 0.05")
    assert lines[2].startswith("| method | kNN@1 | kNN@5 | kNN@10 | mAP@20 | mAP@100 | P@10 |")
    assert lines[4] == (
        "| CE | 50.00 | 25.00 | 12.50 | 10.00 | 20.00 | 30.00 | 40.00 | 60.00 | 87.50 "
        "| 10.0 min | 51.2 |"
    )
    assert lines[5] == (
        "| ImageNet features, frozen (floor) | 50.00 | 25.00 | 12.50 | 10.00 | 20.00 | 30.00 "
        "| 40.00 | 60.00 | - | - | - |"
    )
    assert len(lines) == 6


@pytest.mark.parametrize(
    ("method", "shown"),
    [
        ("ce", True),
        ("snca-ce-bank", True),
        ("snca-ce-momentum", True),
        ("snca", False),
        ("triplet", False),
        ("contrastive", False),
        (FROZEN, False),
    ],
)
def test_softmax_accuracy_only_where_the_loss_trains_the_classifier(method, shown):
    metrics = {"knn@10": 0.9, "classifier": 0.04}
    assert table_metrics(method, metrics) == (metrics if shown else {"knn@10": 0.9})


def test_a_stored_result_of_other_settings_is_refused(tmp_path):
    settings = Settings(data_dir="/data/aid150", epochs=2)
    path = tmp_path / RESULT_FILE
    assert load_result(path, settings, "ce") is None
    config = {"data_dir": "/elsewhere/aid150", **settings.run_options(METHODS["ce"])}
    config["loss"] = {"loss": "ce", "sigma": 0.05}  # nested as in TrainConfig.to_dict()
    path.write_text(json.dumps(_result({}, {"train_config": config})))
    assert load_result(path, settings, "ce") is not None
    with pytest.raises(SncaError, match="epochs 2 vs 5"):
        load_result(path, Settings(data_dir="/data/aid150", epochs=5), "ce")
    path.write_text(
        json.dumps(
            {
                "metrics": {},
                "settings": {
                    "data_dir": "aid150",
                    "backbone": "resnet18",
                    "image_size": 150,
                    "split_seed": 0,
                },
            }
        )
    )
    with pytest.raises(SncaError, match="backbone resnet18 vs efficientnet_lite0"):
        load_result(path, settings, FROZEN)


def _scene_folder(root: Path, per_class: int = 10) -> Path:
    """Three classes of 40 px JPEGs: red, green or blue dominated, with noise."""
    rng = np.random.default_rng(0)
    for label, name in enumerate(("red", "green", "blue")):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 90, (40, 40, 3))
            pixels[..., label] += 150
            Image.fromarray(pixels.astype(np.uint8)).save(root / name / f"{i}.jpg")
    return root


@pytest.mark.slow
@pytest.mark.torch
def test_a_tiny_table_is_trained_reported_and_then_skipped(tmp_path):
    pytest.importorskip("torch")
    from aid_table import run_table
    from rich.console import Console

    data = _scene_folder(tmp_path / "scenes")
    settings = Settings(data_dir=str(data), image_size=32, epochs=1, batch_size=8, threads=1)
    runs = tmp_path / "runs"
    console = Console(quiet=True)
    results = run_table(settings, runs, ["ce", FROZEN], "pca", console)
    for name in ("ce", FROZEN):
        for file in (RESULT_FILE, PROJECTION_FILE, RETRIEVAL_FILE, EMBEDDINGS_FILE):
            assert (runs / name / file).is_file()
        assert set(results[name]["metrics"]) >= {"knn@10", "map@20", "map@100", "p@10", "nmi"}
        assert results[name]["report"]["num_queries"] == 6  # 2 test scenes per class
    stored = np.load(runs / FROZEN / EMBEDDINGS_FILE)
    assert stored["test_embedding"].shape[0] == 6 and stored["train_embedding"].shape[0] == 21
    np.testing.assert_allclose(np.linalg.norm(stored["test_embedding"], axis=1), 1, atol=1e-5)
    assert "classifier" in results["ce"]["metrics"]
    assert "classifier" not in results[FROZEN]["metrics"]
    assert results["ce"]["training"]["epochs"] == 1
    assert results["ce"]["training"]["images_per_second"] > 0
    stamp = (runs / "ce" / "last.pt").stat().st_mtime_ns
    again = run_table(settings, runs, ["ce", FROZEN], "pca", console)
    assert again["ce"]["metrics"] == results["ce"]["metrics"]
    assert (runs / "ce" / "last.pt").stat().st_mtime_ns == stamp  # not trained again
    write_summary(runs, settings, again)
    summary = json.loads((runs / RESULTS_JSON).read_text())
    assert summary["results"]["ce"]["metrics"] == results["ce"]["metrics"]
    # no folder of this machine in the summary: names only
    assert str(tmp_path) not in (runs / RESULTS_JSON).read_text()
    assert summary["settings"]["data_dir"] == "scenes" and summary["results"]["ce"]["run"] == "ce"
    assert summary["results"]["ce"]["training"]["train_config"]["data_dir"] == "scenes"
    assert "| CE |" in (runs / RESULTS_MD).read_text()
    with Image.open(runs / RESULTS_PNG) as chart:
        assert chart.format == "PNG"
    with pytest.raises(SncaError, match="other settings"):
        run_table(
            Settings(data_dir=str(data), image_size=32, epochs=1, batch_size=4),
            runs,
            ["ce"],
            "pca",
            console,
        )


@pytest.mark.slow
@pytest.mark.torch
def test_an_unfinished_run_is_resumed_to_the_last_epoch(tmp_path):
    pytest.importorskip("torch")
    from aid_table import run_table
    from rich.console import Console

    from snca_train.config import TrainConfig
    from snca_train.run import apply_options
    from snca_train.trainer import Trainer

    data = _scene_folder(tmp_path / "scenes", per_class=8)
    settings = Settings(data_dir=str(data), image_size=32, epochs=2, batch_size=8, threads=1)
    console = Console(quiet=True)
    run_dir = tmp_path / "runs" / "ce"
    options = {**settings.run_options(METHODS["ce"]), "threads": 1}
    config = apply_options(TrainConfig(data_dir=str(data)), options)
    Trainer.start(config, run_dir, console).train(until_epoch=1)  # interrupted after epoch 1
    results = run_table(settings, tmp_path / "runs", ["ce"], "pca", console)
    assert results["ce"]["training"]["epochs"] == 2
    assert [r["epoch"] for r in json.loads((run_dir / "history.json").read_text())["epochs"]] == [
        1,
        2,
    ]


@pytest.mark.slow
@pytest.mark.torch
def test_train_only_needs_no_test_images_and_the_run_is_evaluated_later(tmp_path, monkeypatch):
    """The GPU workflow: train where only the train and val images are (a split file, a weights
    file), then evaluate the finished runs elsewhere without training them again."""
    torch = pytest.importorskip("torch")
    import aid_table
    from rich.console import Console

    from snca_cli.runtime.scene_images import make_split, save_split, scan_scene_folder
    from snca_train.backbones import build_backbone

    data = _scene_folder(tmp_path / "full" / "scenes")
    folder = scan_scene_folder(data)
    split = make_split(folder, 0)
    save_split(tmp_path / "split.json", folder, split, 0)
    partial = tmp_path / "partial" / "scenes"
    for item in split["train"] + split["val"]:
        (partial / item).parent.mkdir(parents=True, exist_ok=True)
        (partial / item).write_bytes((data / item).read_bytes())
    weights = tmp_path / "weights" / "lite0.pt"
    weights.parent.mkdir()
    state = build_backbone("efficientnet_lite0", pretrained=False).module.network.state_dict()
    torch.save(state, weights)
    common = ["--runs", str(tmp_path / "runs"), "--methods", "ce", "--epochs", "1"]
    common += ["--image-size", "32", "--batch-size", "8", "--threads", "1"]
    monkeypatch.setattr(
        "sys.argv",
        ["aid_table.py", "--data", str(partial), *common, "--train-only"]
        + ["--weights", str(weights), "--split", str(tmp_path / "split.json")],
    )
    aid_table.run(aid_table.parse_args(), Console(quiet=True))
    run_dir = tmp_path / "runs" / "ce"
    assert (run_dir / "last.pt").is_file() and not (run_dir / RESULT_FILE).exists()
    stamp = (run_dir / "last.pt").stat().st_mtime_ns
    monkeypatch.setattr("sys.argv", ["aid_table.py", "--data", str(data), *common])
    aid_table.run(aid_table.parse_args(), Console(quiet=True))
    assert (run_dir / "last.pt").stat().st_mtime_ns == stamp  # evaluated, not trained again
    result = json.loads((run_dir / RESULT_FILE).read_text())
    assert result["report"]["num_queries"] == len(split["test"])
    summary = (tmp_path / "runs" / RESULTS_JSON).read_text()
    config = json.loads(summary)["results"]["ce"]["training"]["train_config"]
    assert (config["weights"], config["split_file"]) == ("lite0.pt", "split.json")
    assert str(tmp_path) not in summary
