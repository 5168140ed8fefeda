"""``snca export``: checkpoint -> ONNX model with metadata, model card, optional int8 model.

The outputs (model, cards, int8 model) are one transaction, published together only when all
of them are complete (:func:`snca_cli.runtime.atomic.atomic_outputs`).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from snca_cli import __version__
from snca_cli.contract.metadata import DEFAULT_INPUT_SCALE, ModelMetadata
from snca_cli.errors import SncaError
from snca_cli.hooks import ProgressFactory
from snca_cli.runtime.atomic import atomic_outputs, check_output_paths
from snca_cli.runtime.metrics import knn_accuracy
from snca_cli.runtime.onnx_model import file_sha256
from snca_cli.runtime.scene_images import SPLIT_FILE, scan_scene_folder
from snca_cli.tasks.chips import chips_resolution_m
from snca_cli.tasks.evaluate import (
    DEFAULT_BATCH_SIZE,
    METRICS_FILE,
    Embedder,
    EvaluationSplit,
    SplitEmbeddings,
    default_output_dir,
    embed_split,
    load_batch,
    open_onnx,
    resolve_split,
    score_embeddings,
)
from snca_export.card import build_card, card_paths, render_markdown
from snca_export.onnx_export import OPSET, check_parity, export_graph, set_metadata
from snca_export.quantize import images_per_second, quantize_int8
from snca_train.augment import recipe_label
from snca_train.checkpoint import load_model
from snca_train.network import ModelConfig

#: Images per batch of the speed measurement.
SPEED_BATCH = 32
#: Random images on which the exported graph must reproduce the checkpoint.
PARITY_IMAGES = 3


@dataclass
class ExportOptions:
    """What ``snca export`` was asked to do."""

    checkpoint: Path
    output: Path
    data_dir: Path | None = None
    split_file: Path | None = None
    resolution_cm: float | None = None
    #: Ground resolution range of the training scenes, metres per pixel (min, max); None: unknown.
    training_resolution_m: tuple[float, float] | None = None
    overlap_percent: float = 0.0
    int8: bool = False
    calibration_images: int = 1000
    orientations: int = 1  # 8: outputs averaged over the flips and quarter turns in the graph
    batch_size: int = DEFAULT_BATCH_SIZE
    force: bool = False
    progress: ProgressFactory | None = field(default=None, repr=False)


@dataclass
class ExportResult:
    """What ``snca export`` wrote and measured."""

    model: Path
    card_markdown: Path
    card_json: Path
    parity: float
    metrics: dict[str, float] | None
    metrics_source: str | None
    int8: dict[str, Any] | None
    int8_model: Path | None


def int8_path(model_path: Path) -> Path:
    """``<stem>.int8.onnx`` beside the model."""
    return Path(model_path).with_name(f"{Path(model_path).stem}.int8.onnx")


def _check_options(options: ExportOptions) -> list[Path]:
    """Refuse bad options before any work; return every output path."""
    if options.output.suffix.lower() != ".onnx":
        raise SncaError(f"the output {options.output} must end in .onnx")
    if not 0.0 <= options.overlap_percent < 100.0:
        raise SncaError(f"--overlap-percent must be in [0, 100), not {options.overlap_percent}")
    if options.resolution_cm is not None and options.resolution_cm <= 0:
        raise SncaError(f"--resolution-cm must be positive, not {options.resolution_cm}")
    trained_at = options.training_resolution_m
    if trained_at is not None and not 0 < trained_at[0] <= trained_at[1]:
        raise SncaError(
            f"--training-resolution takes MIN MAX with 0 < MIN <= MAX, not {trained_at}"
        )
    if options.calibration_images < 1:
        raise SncaError("--calibration-images must be at least 1")
    if options.data_dir is not None:
        scan_scene_folder(options.data_dir)
    outputs = [options.output, *card_paths(options.output)]
    if options.int8:
        outputs.append(int8_path(options.output))
    check_output_paths(outputs, options.force)
    return outputs


def training_summary(checkpoint: dict[str, Any], metrics: dict[str, float] | None) -> dict:
    """The ``training`` metadata: data set name, split seed, epochs, loss, validation kNN, the
    augmentation recipe (``classic`` for runs stored before recipes were recorded), the backbone
    size and the checkpoint a run started from (``--init``) when set and, when known, the test
    metrics."""
    run_config = checkpoint.get("train_config") or {}
    loss = run_config.get("loss") or {}
    summary: dict[str, Any] = {
        "dataset": Path(str(checkpoint.get("data_dir") or "")).name or None,
        "split_seed": checkpoint.get("split_seed"),
        "epochs": checkpoint.get("epoch"),
        "loss": loss.get("loss", "snca+ce"),
        "best_val_knn": checkpoint.get("best_val_knn"),
    }
    if "sigma" in loss:
        summary["sigma"] = loss["sigma"]
    summary["augment"] = recipe_label(run_config.get("augment") or {})
    backbone_size = (checkpoint.get("model_config") or {}).get("backbone_size")
    if backbone_size is not None:
        summary["backbone_size"] = backbone_size
    if run_config.get("init"):
        started = Path(run_config["init"])  # its run folder and file, never the full path
        summary["started_from"] = f"{started.parent.name}/{started.name}"
    if metrics:
        summary["test_metrics"] = metrics
    return summary


def build_metadata(
    checkpoint: dict[str, Any], config: ModelConfig, options: ExportOptions
) -> ModelMetadata:
    """The metadata of the exported model (test metrics are added once known)."""
    resolution = options.resolution_cm
    if resolution is None and checkpoint.get("resolution_cm") is not None:
        resolution = float(checkpoint["resolution_cm"])
    trained_at = options.training_resolution_m
    chips_m = chips_resolution_m(checkpoint.get("data_dir") or "")
    if chips_m is not None:  # chips of snca chips: the model takes tiles as they were cut
        resolution = 100.0 * chips_m if resolution is None else resolution
        trained_at = (chips_m, chips_m) if trained_at is None else trained_at
    return ModelMetadata(
        class_names=list(checkpoint["class_names"]),
        tile_size=config.image_size,
        embedding_dim=config.embedding_dim,
        input_bands=config.input_bands,
        input_scale=dict(DEFAULT_INPUT_SCALE),
        resolution_cm=resolution,
        tiles_overlap=options.overlap_percent,
        backbone=config.backbone,
        training=training_summary(checkpoint, None),
        snca_version=__version__,
        orientations=options.orientations,
        training_resolution_m=trained_at,
    )


def stored_metrics(checkpoint_path: Path) -> tuple[dict[str, float], str] | None:
    """The metrics of an earlier ``snca evaluate`` of the checkpoint (``<stem>-eval/``)."""
    path = default_output_dir(checkpoint_path) / METRICS_FILE
    if not path.is_file():
        return None
    try:
        metrics = dict(json.loads(path.read_text())["metrics"])
    except (OSError, ValueError, KeyError, TypeError):
        raise SncaError(f"cannot read the earlier evaluation {path}; delete or fix it") from None
    return metrics, f"snca evaluate of {checkpoint_path.name} ({path.parent.name}/{METRICS_FILE})"


def calibration_source(options: ExportOptions, checkpoint: dict[str, Any]) -> Path:
    """The scene folder of the calibration images: ``--data``, else the checkpoint's data."""
    if options.data_dir is not None:
        return options.data_dir
    stored = checkpoint.get("data_dir")
    if stored and Path(stored).is_dir():
        return Path(stored)
    raise SncaError("--int8 needs calibration images: pass --data DATA_DIR (the training scenes)")


def stored_split(checkpoint: dict[str, Any]) -> EvaluationSplit | None:
    """The split the trainer recorded in the checkpoint, if it did."""
    parts = checkpoint.get("split")
    if not isinstance(parts, dict) or not parts.get("train") or not parts.get("test"):
        return None
    return EvaluationSplit(
        train=list(parts["train"]),
        test=list(parts["test"]),
        seed=checkpoint.get("split_seed"),
        source="recorded in the checkpoint",
        val=list(parts.get("val", [])),
    )


def card_split(split: EvaluationSplit | None, seed: int | None) -> dict[str, Any] | None:
    """The ``split`` entry of the card: the exact item lists when the split is known."""
    if split is None:
        return None if seed is None else {"seed": seed, "source": "seed only"}
    return {
        "seed": split.seed,
        "source": split.source,
        "train": split.train,
        "val": split.val,
        "test": split.test,
    }


def export_checkpoint(options: ExportOptions) -> ExportResult:
    """Export, verify, evaluate (with ``data_dir``), quantize (with ``int8``) and write cards."""
    outputs = _check_options(options)
    network, checkpoint = load_model(options.checkpoint)
    config = network.config
    metadata = build_metadata(checkpoint, config, options)
    run_dir = Path(options.checkpoint).parent
    split_file = options.split_file
    if split_file is None and (run_dir / SPLIT_FILE).is_file():
        split_file = run_dir / SPLIT_FILE
    calibration_dir = calibration_source(options, checkpoint) if options.int8 else None

    with atomic_outputs(outputs, force=options.force) as staged:
        tmp = [staged.path(path) for path in outputs]
        tmp_model, tmp_md, tmp_json = tmp[:3]
        export_graph(network, tmp_model, options.orientations)
        rng = np.random.default_rng(0)
        probe = rng.random(
            (PARITY_IMAGES, config.input_bands, config.image_size, config.image_size)
        )
        parity = check_parity(network, tmp_model, probe.astype(np.float32), options.orientations)
        set_metadata(tmp_model, metadata)

        embedder = dataclasses.replace(open_onnx(tmp_model), path=Path(options.output))
        split: EvaluationSplit | None = None
        split_data = options.data_dir or calibration_dir
        if split_file is not None or split_data is not None:
            split = resolve_split(embedder, split_data or run_dir, split_file, model_dir=run_dir)
        else:
            split = stored_split(checkpoint)
        embeddings: SplitEmbeddings | None = None
        metrics: dict[str, float] | None = None
        metrics_source: str | None = None
        if options.data_dir is not None and split is not None:
            embeddings = embed_split(
                embedder,
                options.data_dir,
                split,
                batch_size=options.batch_size,
                progress=options.progress,
            )
            metrics = score_embeddings(embedder, embeddings, split, options.data_dir)["metrics"]
            metrics_source = f"{len(split.test)} test images of {options.data_dir.name}, at export"
        elif options.orientations == 1 and (earlier := stored_metrics(options.checkpoint)):
            # (an earlier evaluation of the checkpoint saw each image once: not this graph)
            metrics, metrics_source = earlier
        if metrics:
            metadata.training = training_summary(checkpoint, metrics)
            metadata.training["test_metrics_source"] = metrics_source
            set_metadata(tmp_model, metadata)

        int8_report: dict[str, Any] | None = None
        if options.int8:
            assert calibration_dir is not None and split is not None
            int8_report = make_int8(
                options, embedder, tmp_model, tmp[3], calibration_dir, split, embeddings
            )

        model_sha = file_sha256(tmp_model)
        card = build_card(
            metadata,
            model_file=options.output.name,
            model_sha256=model_sha,
            checkpoint_file=Path(options.checkpoint).name,
            split=card_split(split, checkpoint.get("split_seed")),
            metrics=metrics,
            metrics_source=metrics_source,
            int8=int8_report,
            opset=OPSET,
        )
        tmp_json.write_text(json.dumps(card, indent=1))
        tmp_md.write_text(render_markdown(card))

    md_path, json_path = card_paths(options.output)
    return ExportResult(
        model=options.output,
        card_markdown=md_path,
        card_json=json_path,
        parity=parity,
        metrics=metrics,
        metrics_source=metrics_source,
        int8=int8_report,
        int8_model=int8_path(options.output) if options.int8 else None,
    )


def make_int8(
    options: ExportOptions,
    embedder: Embedder,
    fp32_model: Path,
    int8_model: Path,
    data_dir: Path,
    split: EvaluationSplit,
    fp32_embeddings: SplitEmbeddings | None,
) -> dict[str, Any]:
    """Quantize ``fp32_model`` calibrated on training images of ``split``; measure both models'
    speed and, when ``fp32_embeddings`` are given, the kNN@10 accuracy of both."""
    rng = np.random.default_rng(0)
    count = min(options.calibration_images, len(split.train))
    chosen = sorted(rng.choice(len(split.train), size=count, replace=False).tolist())
    calibration = load_batch(embedder, data_dir, [split.train[i] for i in chosen])
    quantize_int8(fp32_model, int8_model, calibration)
    speed_batch = calibration[:SPEED_BATCH]
    report: dict[str, Any] = {
        "file": int8_path(options.output).name,
        "sha256": file_sha256(int8_model),
        "calibration_images": count,
        "fp32_images_per_second": images_per_second(fp32_model, speed_batch),
        "int8_images_per_second": images_per_second(int8_model, speed_batch),
        "speed_batch": len(speed_batch),
        "knn@10_fp32": None,
        "knn@10_int8": None,
    }
    if fp32_embeddings is not None:
        quantized = dataclasses.replace(open_onnx(int8_model), path=int8_path(options.output))
        int8_embeddings = embed_split(
            quantized,
            data_dir,
            split,
            batch_size=options.batch_size,
            progress=options.progress,
        )
        classes = len(embedder.class_names)
        for name, result in (("fp32", fp32_embeddings), ("int8", int8_embeddings)):
            report[f"knn@10_{name}"] = knn_accuracy(
                result.test.embedding,
                result.test_labels,
                result.train.embedding,
                result.train_labels,
                10,
                classes,
            )
    return report
