"""The model card written beside an exported model: ``<stem>.card.json`` and ``<stem>.card.md``.

The JSON card is the complete record (input contract, training data, the exact split when known,
test metrics, the int8 variant); the Markdown card renders it for people.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from snca_cli.contract.metadata import (
    EMBEDDING_OUTPUT,
    INPUT_NAME,
    PROBABILITIES_OUTPUT,
    ModelMetadata,
)
from snca_cli.tasks.evaluate import METRIC_LABELS

INTENDED_USE = (
    "Classifying remote-sensing image tiles into the training classes and finding similar tiles "
    "by cosine similarity of the embeddings (snca classify / index / search, QGIS)."
)
LIMITATIONS = [
    "Trained on one data set: imagery from other sensors, seasons, regions or ground resolutions "
    "than the training scenes can be scored poorly without warning.",
    "Tiles must match the input contract: the band order, the data type scale and roughly the "
    "ground resolution of the training scenes.",
    "Probabilities cover the training classes only; a tile of an unseen kind still gets one of "
    "them. Low top probabilities and low similarities are the only signs of it.",
    "Test metrics come from a held-out split of the same data set, not from independent imagery.",
]


def card_paths(model_path: Path) -> tuple[Path, Path]:
    """``(<stem>.card.md, <stem>.card.json)`` beside the model."""
    model_path = Path(model_path)
    return (
        model_path.with_name(f"{model_path.stem}.card.md"),
        model_path.with_name(f"{model_path.stem}.card.json"),
    )


def build_card(
    metadata: ModelMetadata,
    model_file: str,
    model_sha256: str,
    checkpoint_file: str,
    split: dict[str, Any] | None,
    metrics: dict[str, float] | None,
    metrics_source: str | None,
    int8: dict[str, Any] | None,
    opset: int,
) -> dict[str, Any]:
    """The JSON card: ``split`` is ``{"seed", "source", and "train"/"val"/"test" item lists when
    known}``, ``metrics`` the test metrics (from ``metrics_source``), ``int8`` the quantized
    model's file, speed and accuracy change."""
    size, bands = metadata.tile_size, metadata.input_bands
    return {
        "model": {
            "file": model_file,
            "sha256": model_sha256,
            "format": f"ONNX, opset {opset}",
            "backbone": metadata.backbone,
            "embedding_dim": metadata.embedding_dim,
            "class_names": metadata.class_names,
            "source_checkpoint": checkpoint_file,
            "orientations_averaged": metadata.orientations,
            "snca_version": metadata.snca_version,
        },
        "input": {
            "name": INPUT_NAME,
            "shape": ["N", bands, size, size],
            "dtype": "float32",
            "range": [0.0, 1.0],
            "input_scale": metadata.input_scale,
            "resolution_cm_per_px": metadata.resolution_cm,
            "training_resolution_m": (
                None
                if metadata.training_resolution_m is None
                else list(metadata.training_resolution_m)
            ),
            "tiles_overlap_percent": metadata.tiles_overlap,
            "normalisation": "inside the graph; feed raw values divided by input_scale",
        },
        "outputs": [
            {"name": EMBEDDING_OUTPUT, "shape": ["N", metadata.embedding_dim], "unit_length": True},
            {"name": PROBABILITIES_OUTPUT, "shape": ["N", metadata.num_classes], "softmax": True},
        ],
        "training": metadata.training,
        "split": split,
        "test_metrics": metrics,
        "test_metrics_source": metrics_source,
        "int8": int8,
        "intended_use": INTENDED_USE,
        "limitations": LIMITATIONS,
    }


def _percent(value: float) -> str:
    return f"{100 * value:.2f} %"


def _resolution(value: float | None) -> str:
    return "not recorded" if value is None else f"{value:g} cm/px"


def render_markdown(card: dict[str, Any]) -> str:
    """The Markdown model card of a JSON card."""
    model, contract, training = card["model"], card["input"], card["training"]
    names = model["class_names"]
    orientations = model.get("orientations_averaged", 1)
    averaging = (
        [
            f"- both outputs are means over the {orientations} flips and quarter turns of each "
            "tile, computed in the graph (that many forward passes)"
        ]
        if orientations > 1
        else []
    )
    lines = [
        f"# Model card: {model['file']}",
        "",
        f"SNCA+CE scene-embedding model ({model['backbone']} backbone, "
        f"{model['embedding_dim']}-dimensional embedding, {len(names)} classes), exported "
        f"from `{model['source_checkpoint']}` by snca {model['snca_version']}.",
        "",
        f"SHA-256: `{model['sha256']}`",
        "",
        "## Intended use",
        "",
        card["intended_use"],
        "",
        "## Input contract",
        "",
        f"- input `{contract['name']}`: float32, shape {contract['shape']}, values in [0, 1] "
        "(normalisation is inside the graph)",
        f"- raw values are divided by: {json.dumps(contract['input_scale'])}",
        f"- ground resolution: {_resolution(contract['resolution_cm_per_px'])}; "
        f"tile overlap {contract['tiles_overlap_percent']} %",
        f"- training scenes' ground resolution: {_training_resolution(contract)}",
        f"- outputs: `{EMBEDDING_OUTPUT}` (N x {model['embedding_dim']}, unit length), "
        f"`{PROBABILITIES_OUTPUT}` (N x {len(names)}, softmax)",
        f"- classes: {', '.join(names)}",
        *averaging,
        "",
        "## Training data",
        "",
    ]
    lines += [f"- {key}: {value}" for key, value in training.items() if "metrics" not in key]
    split = card["split"]
    if split is not None:
        counts = ", ".join(f"{len(split[p])} {p}" for p in ("train", "val", "test") if p in split)
        lines.append(
            f"- split: seed {split['seed']} ({split['source']}){': ' + counts if counts else ''}"
        )
    lines += ["", "## Test metrics", ""]
    metrics = card["test_metrics"]
    if metrics:
        lines += [f"From {card['test_metrics_source']}.", "", "| metric | value |", "| --- | --- |"]
        lines += [
            f"| {METRIC_LABELS.get(key, key)} | {_percent(value)} |"
            for key, value in metrics.items()
        ]
    else:
        lines.append("Not evaluated (export with `--data DATA_DIR` or run `snca evaluate` first).")
    int8 = card["int8"]
    if int8 is not None:
        lines += [
            "",
            "## int8 model",
            "",
            f"`{int8['file']}` (SHA-256 `{int8['sha256']}`): static QDQ quantization calibrated "
            f"on {int8['calibration_images']} training images.",
            f"- speed on this CPU: {int8['fp32_images_per_second']:.1f} images/s fp32, "
            f"{int8['int8_images_per_second']:.1f} images/s int8",
        ]
        if int8.get("knn@10_fp32") is not None:
            lines.append(
                f"- kNN@10 accuracy: {_percent(int8['knn@10_fp32'])} fp32, "
                f"{_percent(int8['knn@10_int8'])} int8"
            )
    lines += ["", "## Limitations", ""]
    lines += [f"- {item}" for item in card["limitations"]]
    return "\n".join(lines) + "\n"


def _training_resolution(contract: dict[str, Any]) -> str:
    """The card's text for ``training_resolution_m`` (absent from older cards)."""
    trained_at = contract.get("training_resolution_m")
    if trained_at is None:
        return "not recorded (no resolution warning)"
    return (
        f"{trained_at[0]:g}-{trained_at[1]:g} m/px (classify and index warn on rasters more "
        "than 4x outside)"
    )
