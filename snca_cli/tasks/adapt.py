"""Adapt a model to the user's classes from labelled examples, in seconds and without torch.

``snca adapt`` embeds labelled tiles (labels drawn on the map over rasters,
:mod:`snca_cli.tasks.labels`, or a ``DATA/CLASS/IMAGE`` folder) with a model, fits a
class-balanced logistic-regression head, scores it by stratified cross-validation, calibrates
the open-set rule (:mod:`snca_cli.contract.open_set`, on the embeddings) on the held-out folds,
and writes a new ONNX model: the base model's graph and ``embedding`` output unchanged, the new
head as ``probabilities`` (:func:`snca_cli.runtime.onnx_graph.replace_head`),
the new ``class_names`` with their ``class_colours`` (chosen from the names,
:mod:`snca_cli.contract.class_colours`, the base model's kept for classes it shares; written so
they can be edited), the rule, and ``embedding_sha256`` naming the base model, so indexes
built with the base model stay valid. Beside it: a model card (``.card.md`` / ``.card.json``)
recording the labels used, and a confusion-matrix PNG.

The head reads what cross-validation on the labels finds best among what the base model offers
(``head_input`` ``auto``): the unit-length pooled **backbone features** (the vector the
embedding layer of an ``snca export`` graph reads), the **several-stage features** of an
EfficientNet-Lite (three stages' pooled outputs beside them: texture and layout), and the
embedding. On AID (``benchmarks/adapt.py``), 10 labelled images per class of 10 classes a
20-class model never saw: 83.8 % on the several-stage features, 82.0 % on the pooled features,
74.9 % on the embedding; on the shipped model's own 30 classes 95.9 % on the embedding, 95.8 %
and 94.4 % on the others. Neither input is best everywhere, so the labels decide.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from snca_cli.contract.class_colours import class_colours
from snca_cli.contract.metadata import EMBEDDING_OUTPUT
from snca_cli.contract.open_set import (
    KNOWN_KEPT_QUANTILE,
    UNKNOWN_CLASS,
    OpenSetRule,
    class_prototypes,
    unit_rows,
)
from snca_cli.contract.tiling import TilingOptions
from snca_cli.errors import Cancelled, SncaError
from snca_cli.hooks import CancelHook, ProgressFactory
from snca_cli.runtime.atomic import atomic_outputs, check_output_paths
from snca_cli.runtime.default_model import resolve_model
from snca_cli.runtime.onnx_graph import (
    FEATURES_OUTPUT,
    STAGES_OUTPUT,
    load_snca_onnx,
    replace_head,
    set_metadata,
    with_features_output,
)
from snca_cli.runtime.onnx_model import OnnxModel
from snca_cli.runtime.precision import named_precision
from snca_cli.runtime.raster_tiles import RasterTiling
from snca_cli.runtime.scene_images import scan_scene_folder
from snca_cli.tasks.evaluate import load_batch, onnx_embedder
from snca_cli.tasks.labels import (
    LabelledTile,
    check_classes,
    class_counts,
    label_rasters,
    labelled_array,
    read_labels,
)
from snca_cli.tasks.output_names import adapted_model_files

#: Inverse regularisation strength of the logistic-regression head (scikit-learn's ``C``).
HEAD_C = 10.0
#: Tiles embedded per model run.
BATCH_SIZE = 32
#: ``--head-input`` choosing among what the model offers by cross-validated accuracy.
AUTO_HEAD_INPUT = "auto"
#: What the head may read: the pooled backbone features, the several-stage features (an
#: EfficientNet-Lite's), the embedding, or ``auto``; on ties ``auto`` takes the earliest.
HEAD_INPUTS = (AUTO_HEAD_INPUT, FEATURES_OUTPUT, STAGES_OUTPUT, EMBEDDING_OUTPUT)
#: How reports name each head input.
HEAD_INPUT_NAMES = {
    FEATURES_OUTPUT: "pooled backbone features",
    STAGES_OUTPUT: "several-stage backbone features",
    EMBEDDING_OUTPUT: "embeddings",
}


@dataclass
class AdaptedHead:
    """A fitted head and how well it did under cross-validation.

    ``weights`` (C x D) and ``bias`` (C) give ``softmax(x @ weights.T + bias)``, the written
    model's ``probabilities``, ``x`` the unit-length ``head_input`` (the embedding or backbone
    features). ``cv_accuracy``, ``cv_predictions``, ``precision``, ``recall`` and ``confusion``
    (rows: true class, columns: predicted) come from stratified cross-validation; None/empty
    when some class has a single example. ``candidates``: the cross-validated accuracy of a
    head on each input that was considered (None without cross-validation).
    """

    class_names: list[str]
    weights: np.ndarray
    bias: np.ndarray
    rule: OpenSetRule
    folds: int
    cv_accuracy: float | None
    cv_predictions: np.ndarray
    precision: dict[str, float] = dataclasses.field(default_factory=dict)
    recall: dict[str, float] = dataclasses.field(default_factory=dict)
    confusion: np.ndarray | None = None
    head_input: str = EMBEDDING_OUTPUT
    candidates: dict[str, float | None] = dataclasses.field(default_factory=dict)

    def probabilities(self, inputs: np.ndarray) -> np.ndarray:
        """N x C class probabilities of head inputs, as the written model computes them."""
        logits = unit_rows(np.asarray(inputs, np.float64)) @ self.weights.T + self.bias
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)


def _logistic_head(
    embeddings: np.ndarray, labels: np.ndarray, classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """(C x D weights, C biases) of a class-balanced logistic regression, as a softmax head."""
    from sklearn.linear_model import LogisticRegression

    fitted = LogisticRegression(C=HEAD_C, class_weight="balanced", max_iter=2000)
    fitted.fit(embeddings, labels)
    coef, intercept = fitted.coef_.astype(np.float64), fitted.intercept_.astype(np.float64)
    if classes == 2:  # one logit z for class 1: softmax([-z/2, z/2]) = sigmoid(z)
        coef = np.concatenate([-coef / 2, coef / 2])
        intercept = np.array([-intercept[0] / 2, intercept[0] / 2])
    return coef.astype(np.float32), intercept.astype(np.float32)


def fit_head(
    embeddings: np.ndarray,
    labels: np.ndarray,
    class_names: list[str],
    folds: int = 5,
    seed: int = 0,
    inputs: dict[str, np.ndarray] | None = None,
) -> AdaptedHead:
    """Fit the head on every example; score it and calibrate the open-set threshold (on the
    embeddings) by stratified ``folds``-fold cross-validation (fewer folds when a class has
    fewer examples). ``inputs``: what the head may read (by kind, N rows each; default: the
    embeddings); with several, each is cross-validated and the most accurate is kept (the
    first on ties, and without cross-validation).

    The threshold is the :data:`KNOWN_KEPT_QUANTILE` quantile of each held-out example's best
    similarity to prototypes built without its fold. With a one-example class there is no
    cross-validation: the threshold then comes from the examples themselves (optimistic).
    """
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support
    from sklearn.model_selection import StratifiedKFold

    embeddings = unit_rows(embeddings).astype(np.float32)
    candidates = {EMBEDDING_OUTPUT: embeddings} if inputs is None else dict(inputs)
    candidates = {kind: unit_rows(v).astype(np.float32) for kind, v in candidates.items()}
    labels = np.asarray(labels, dtype=np.int64)
    classes = len(class_names)
    present = np.bincount(labels, minlength=classes)
    if (present == 0).any():
        missing = [class_names[i] for i in np.flatnonzero(present == 0)]
        raise SncaError(f"no labelled example of {', '.join(missing)}")
    prototypes = class_prototypes(embeddings, labels, classes)
    n_folds = int(min(folds, present.min()))
    if n_folds < 2:
        chosen = next(iter(candidates))
        weights, bias = _logistic_head(candidates[chosen], labels, classes)
        best = (embeddings @ prototypes.T).max(axis=1)
        rule = OpenSetRule(prototypes, float(np.quantile(best, KNOWN_KEPT_QUANTILE)))
        predictions = np.full(len(labels), -1, dtype=np.int64)
        return AdaptedHead(
            class_names,
            weights,
            bias,
            rule,
            1,
            None,
            predictions,
            head_input=chosen,
            candidates={kind: None for kind in candidates},
        )
    splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    splits = list(splitter.split(embeddings, labels))
    held_out_best = np.zeros(len(labels), dtype=np.float64)
    for train, test in splits:
        fold_prototypes = class_prototypes(embeddings[train], labels[train], classes)
        held_out_best[test] = (embeddings[test] @ fold_prototypes.T).max(axis=1)
    rule = OpenSetRule(prototypes, float(np.quantile(held_out_best, KNOWN_KEPT_QUANTILE)))
    cv = {
        kind: _cross_validated(values, labels, classes, splits)
        for kind, values in candidates.items()
    }
    accuracy = {kind: float((p == labels).mean()) for kind, p in cv.items()}
    chosen = max(candidates, key=lambda kind: accuracy[kind])  # the first of equals
    predictions = cv[chosen]
    weights, bias = _logistic_head(candidates[chosen], labels, classes)
    precision, recall, _, _ = precision_recall_fscore_support(
        labels, predictions, labels=list(range(classes)), zero_division=0
    )
    return AdaptedHead(
        class_names=class_names,
        weights=weights,
        bias=bias,
        rule=rule,
        folds=n_folds,
        cv_accuracy=accuracy[chosen],
        cv_predictions=predictions,
        precision={n: float(p) for n, p in zip(class_names, precision, strict=True)},
        recall={n: float(r) for n, r in zip(class_names, recall, strict=True)},
        confusion=confusion_matrix(labels, predictions, labels=list(range(classes))),
        head_input=chosen,
        candidates=dict(accuracy),
    )


def _cross_validated(
    inputs: np.ndarray, labels: np.ndarray, classes: int, splits: list
) -> np.ndarray:
    """Each example's class as predicted by a head fitted without its fold."""
    predictions = np.full(len(labels), -1, dtype=np.int64)
    for train, test in splits:
        fold_weights, fold_bias = _logistic_head(inputs[train], labels[train], classes)
        predictions[test] = (inputs[test] @ fold_weights.T + fold_bias).argmax(axis=1)
    return predictions


def features_model(path: Path, graph: onnx.ModelProto) -> tuple[OnnxModel, list[str]] | None:
    """The model file ``path`` (its graph: ``graph``) run with its backbone features as extra
    outputs, and their kinds (:data:`FEATURES_OUTPUT`, :data:`STAGES_OUTPUT`); None for a graph
    without them."""
    exposed = with_features_output(graph)
    if exposed is None:
        return None
    kinds = [o.name for o in exposed.graph.output[len(graph.graph.output) :]]
    return OnnxModel(path, graph=exposed.SerializeToString()), kinds


def _output_names(head_inputs: list[str]) -> list[str]:
    """The model outputs adapting reads: the embedding, and the other head inputs."""
    return [EMBEDDING_OUTPUT] + [kind for kind in head_inputs if kind != EMBEDDING_OUTPUT]


def _store(
    outputs: list[np.ndarray] | None, rows: list[int] | slice, values: list[np.ndarray], n: int
) -> list[np.ndarray]:
    """``values`` (one batch per output) written at ``rows`` of N-row arrays made at the first
    batch."""
    if outputs is None:
        outputs = [np.zeros((n, v.shape[1]), np.float32) for v in values]
    for out, batch in zip(outputs, values, strict=True):
        out[rows] = batch
    return outputs


def _unit_outputs(
    outputs: list[np.ndarray] | None, names: list[str], width: int
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(unit embeddings, unit head inputs by kind, the embeddings among them) of the stored
    outputs of ``names`` (empty when nothing ran)."""
    if outputs is None:
        outputs = [np.zeros((0, width if i == 0 else 0), np.float32) for i in range(len(names))]
    unit = {
        name: unit_rows(out).astype(np.float32) for name, out in zip(names, outputs, strict=True)
    }
    return unit[EMBEDDING_OUTPUT], unit


def embed_labelled_tiles(
    model: OnnxModel,
    tiles: list[LabelledTile],
    options: TilingOptions,
    progress=None,
    cancelled: CancelHook | None = None,
    head_inputs: list[str] | None = None,
) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """N x D unit embeddings of labelled tiles, read as ``snca classify`` reads them, their
    unit head inputs by kind (the embeddings, and the ``head_inputs`` backbone features of a
    ``model`` opened with them as outputs) and the tiles' valid fractions (N)."""
    names = _output_names(head_inputs or [])
    outputs: list[np.ndarray] | None = None
    fractions = np.zeros(len(tiles), np.float64)
    by_raster: dict[Path, list[int]] = {}
    for i, tile in enumerate(tiles):
        by_raster.setdefault(tile.raster, []).append(i)
    done = 0
    for raster, rows in by_raster.items():
        with RasterTiling.open(raster, model.metadata, options) as tiling:
            for start in range(0, len(rows), BATCH_SIZE):
                if cancelled is not None and cancelled():
                    raise Cancelled("adapting cancelled")
                chunk = rows[start : start + BATCH_SIZE]
                batch, fractions[chunk] = tiling.read([tiles[i].tile for i in chunk])
                outputs = _store(outputs, chunk, model.run_outputs(batch, names), len(tiles))
                done += len(chunk)
                if progress is not None:
                    progress(done, len(tiles))
    embeddings, inputs = _unit_outputs(outputs, names, model.metadata.embedding_dim)
    return embeddings, inputs, fractions


@dataclass
class AdaptConfig:
    """What ``snca adapt`` was asked: labels over rasters, or an image folder."""

    output: Path
    model: Path | None = None  # None: the shipped model
    rasters: list[Path] = dataclasses.field(default_factory=list)
    labels: Path | None = None
    field: str | None = None
    images: Path | None = None
    tiling: TilingOptions = dataclasses.field(default_factory=TilingOptions)
    folds: int = 5
    force: bool = False
    #: What the head reads (:data:`HEAD_INPUTS`); ``auto`` (the default) cross-validates a head
    #: on each input the model offers and keeps the best.
    head_input: str = AUTO_HEAD_INPUT
    #: What the card records as the labels (e.g. a QGIS layer's name); default: the file name.
    labels_name: str | None = None


@dataclass
class AdaptReport:
    """What :func:`adapt_model` wrote and measured."""

    model: Path
    card: Path
    card_json: Path
    report_json: Path
    confusion_png: Path
    head: AdaptedHead
    counts: dict[str, int]
    warnings: list[str]
    seconds: float

    def summary_line(self) -> str:
        """One line: examples, classes, cross-validated accuracy, what the head reads, the
        unknown threshold."""
        head = self.head
        accuracy = "-" if head.cv_accuracy is None else f"{head.cv_accuracy:.1%}"
        return (
            f"{sum(self.counts.values())} labelled tiles, {len(self.counts)} classes: "
            f"cross-validated accuracy {accuracy} ({head.folds} folds), head on the "
            f"{HEAD_INPUT_NAMES[head.head_input]}; unknown below similarity "
            f"{head.rule.threshold:.3f}; {self.seconds:.1f} s"
        )


def _check_config(config: AdaptConfig) -> None:
    if config.output.suffix.lower() != ".onnx":
        raise SncaError(f"the adapted model must be an .onnx file, not {config.output.name}")
    if config.images is not None and (config.rasters or config.labels is not None):
        raise SncaError("give labels over rasters (--labels, --field) or --images, not both")
    if config.images is None:
        if not config.rasters:
            raise SncaError("give the rasters the labels lie on (or --images DIR)")
        if config.labels is None or not config.field:
            raise SncaError("--labels FILE and --field NAME are needed with rasters")
    if config.folds < 2:
        raise SncaError(f"--folds must be at least 2, not {config.folds}")
    if config.head_input not in HEAD_INPUTS:
        raise SncaError(f"the head reads {', '.join(HEAD_INPUTS)}, not {config.head_input!r}")


@dataclass
class Examples:
    """The labelled examples of one adapting: unit embeddings (N x D), the unit head inputs by
    kind (the embeddings, and the backbone features read), class indices and names, the labels
    record for the card, and warnings."""

    embeddings: np.ndarray
    head_inputs: dict[str, np.ndarray]
    labels: np.ndarray
    class_names: list[str]
    record: dict[str, Any]
    warnings: list[str]


def embed_images(
    model: OnnxModel,
    root: Path,
    items: list[str],
    head_inputs: list[str] | None = None,
    progress=None,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Unit embeddings and unit head inputs by kind (:func:`embed_labelled_tiles`) of
    ``root/<item>`` images, read as ``snca evaluate`` reads them."""
    embedder = onnx_embedder(model)
    names = _output_names(head_inputs or [])
    outputs: list[np.ndarray] | None = None
    for start in range(0, len(items), BATCH_SIZE):
        chunk = items[start : start + BATCH_SIZE]
        values = model.run_outputs(load_batch(embedder, root, chunk), names)
        outputs = _store(outputs, slice(start, start + len(chunk)), values, len(items))
        if progress is not None:
            progress(start + len(chunk), len(items))
    return _unit_outputs(outputs, names, model.metadata.embedding_dim)


def collect_examples(
    config: AdaptConfig,
    model: OnnxModel,
    progress: ProgressFactory | None = None,
    cancelled: CancelHook | None = None,
    head_inputs: list[str] | None = None,
) -> Examples:
    """The configured examples, embedded by ``model`` (opened with the ``head_inputs``
    backbone features as outputs)."""
    hook = progress("embedding labelled examples") if progress is not None else None
    if config.images is not None:
        folder = scan_scene_folder(config.images)
        embeddings, inputs = embed_images(model, folder.root, folder.items, head_inputs, hook)
        counts = {n: int((folder.labels == i).sum()) for i, n in enumerate(folder.class_names)}
        warnings = check_classes(counts, str(folder.root))
        record = {"images": folder.root.name, "counts": counts}
        return Examples(embeddings, inputs, folder.labels, folder.class_names, record, warnings)
    assert config.labels is not None and config.field is not None
    labels = read_labels(config.labels, config.field)
    tiles, warnings = label_rasters(labels, config.rasters, model.metadata, config.tiling)
    embeddings, inputs, fractions = embed_labelled_tiles(
        model, tiles, config.tiling, hook, cancelled, head_inputs
    )
    min_valid = config.tiling.for_model(model.metadata).min_valid
    kept = fractions >= max(min_valid, 1e-9)
    if not kept.all():
        warnings.append(
            f"{int((~kept).sum())} labelled tile(s) have too few valid pixels "
            f"(< {min_valid:.0%}; snca classify skips them): ignored"
        )
    tiles = [t for t, keep in zip(tiles, kept, strict=True) if keep]
    embeddings, inputs = embeddings[kept], {kind: v[kept] for kind, v in inputs.items()}
    counts = class_counts(tiles)
    for name in labels.class_names:
        if name not in counts:
            warnings.append(f"class {name!r} has no usable labelled tile")
    warnings += check_classes(counts, labels.path.name)
    class_names = sorted(counts)
    record = {
        "file": config.labels_name or labels.path.name,
        "field": labels.field,
        "rasters": [Path(r).name for r in config.rasters],
        "counts": counts,
        "points_or_polygons": len(labels.geometries),
    }
    labelled = labelled_array(tiles, class_names)
    return Examples(embeddings, inputs, labelled, class_names, record, warnings)


def adapt_model(
    config: AdaptConfig,
    progress: ProgressFactory | None = None,
    cancelled: CancelHook | None = None,
) -> AdaptReport:
    """Adapt ``config.model`` (default: the shipped one) to the configured labels; write the
    new model, its card, the report and the confusion matrix together (all or nothing)."""
    start = time.perf_counter()
    config.output = Path(config.output)
    _check_config(config)
    paths = adapted_model_files(config.output)
    check_output_paths(list(paths.values()), config.force)
    base_path = resolve_model(config.model)
    onnx_model, metadata = load_snca_onnx(base_path)
    with_features = (
        features_model(base_path, onnx_model) if config.head_input != EMBEDDING_OUTPUT else None
    )
    offered = [EMBEDDING_OUTPUT] if with_features is None else [*with_features[1], EMBEDDING_OUTPUT]
    if config.head_input == AUTO_HEAD_INPUT:
        head_inputs = offered
    elif config.head_input in offered:
        head_inputs = [config.head_input]
    else:
        raise SncaError(
            f"{base_path.name} has no {HEAD_INPUT_NAMES[config.head_input]} for the head to "
            f"read (it offers: {', '.join(offered)}); use --head-input auto"
        )
    # the head is fitted on, and written onto, the file named (the int8 copy's adapted twin
    # is not written yet)
    if with_features is not None:
        model = with_features[0]
    else:
        model = OnnxModel(base_path, precision=named_precision(base_path))
    if UNKNOWN_CLASS in model.metadata.class_names:
        raise SncaError(f"{base_path.name} has a class named {UNKNOWN_CLASS!r}; rename it")
    examples = collect_examples(config, model, progress, cancelled, head_inputs)
    class_names, record, warnings = examples.class_names, examples.record, examples.warnings
    if UNKNOWN_CLASS in class_names:
        raise SncaError(f"{UNKNOWN_CLASS!r} is the name snca gives rejected tiles: rename it")
    head = fit_head(
        examples.embeddings,
        examples.labels,
        class_names,
        config.folds,
        inputs={kind: examples.head_inputs[kind] for kind in head_inputs},
    )
    if cancelled is not None and cancelled():
        raise Cancelled("adapting cancelled")
    report = _report(base_path, model, head, record, warnings)
    replace_head(onnx_model, head.weights, head.bias, head.head_input)
    kept = {n: c for n, c in (metadata.class_colours or {}).items() if n in class_names}
    metadata.class_names = list(class_names)
    metadata.class_colours = class_colours(class_names, kept)
    metadata.open_set = head.rule
    metadata.embedding_sha256 = model.embedding_sha256
    if not isinstance(config.tiling.resolution, str):  # tiled at a chosen ground resolution
        metadata.resolution_cm = 100.0 * float(config.tiling.resolution)
        metadata.training_resolution_m = (metadata.resolution_m, metadata.resolution_m)
    metadata.training = {
        "adapted_from": report["base_model"],
        "labels": record,
        "head": report["head"],
    }
    set_metadata(onnx_model, metadata, {})
    with atomic_outputs(list(paths.values()), config.force) as staged:
        onnx.save(onnx_model, str(staged.path(paths["model"])))
        staged.path(paths["report_json"]).write_text(json.dumps(report, indent=2) + "\n")
        staged.path(paths["card_json"]).write_text(json.dumps(report, indent=2) + "\n")
        staged.path(paths["card"]).write_text(card_markdown(config.output.name, report))
        plot_confusion(staged.path(paths["confusion_png"]), head)
    return AdaptReport(
        model=paths["model"],
        card=paths["card"],
        card_json=paths["card_json"],
        report_json=paths["report_json"],
        confusion_png=paths["confusion_png"],
        head=head,
        counts=record["counts"],
        warnings=warnings,
        seconds=time.perf_counter() - start,
    )


def _report(
    base_path: Path,
    model: OnnxModel,
    head: AdaptedHead,
    record: dict[str, Any],
    warnings: list[str],
) -> dict[str, Any]:
    return {
        "base_model": {"name": base_path.name, "embedding_sha256": model.embedding_sha256},
        "labels": record,
        "class_names": head.class_names,
        "head": {
            "kind": f"logistic regression on unit {HEAD_INPUT_NAMES[head.head_input]}, "
            "class-balanced",
            "input": head.head_input,
            "inputs_cv_accuracy": head.candidates,
            "C": HEAD_C,
            "cross_validation_folds": head.folds,
            "cv_accuracy": head.cv_accuracy,
            "precision": head.precision,
            "recall": head.recall,
            "confusion": None if head.confusion is None else head.confusion.tolist(),
        },
        "unknown": {
            "rule": "max cosine to class prototypes below the threshold",
            "threshold": head.rule.threshold,
            "calibration": f"{KNOWN_KEPT_QUANTILE:.0%} quantile of held-out labelled tiles",
        },
        "warnings": warnings,
    }


def card_markdown(name: str, report: dict[str, Any]) -> str:
    """The model card of an adapted model."""
    head, labels = report["head"], report["labels"]
    accuracy = head["cv_accuracy"]
    lines = [
        f"# {name}",
        "",
        f"Adapted from **{report['base_model']['name']}** by `snca adapt`: the base model's "
        "embedding (graph and `embedding` output unchanged; indexes built with the base model "
        "stay valid) with a new classification head.",
        "",
        "## Labels used",
        "",
        *(
            [
                f"- file `{labels['file']}`, field `{labels['field']}`, rasters "
                f"{', '.join(labels['rasters'])}"
            ]
            if "file" in labels
            else [f"- image folder `{labels['images']}`"]
        ),
        "",
        "| class | labelled tiles | precision | recall |",
        "|---|---:|---:|---:|",
    ]
    for cls, count in labels["counts"].items():
        precision = _cell(head["precision"].get(cls))
        lines.append(f"| {cls} | {count} | {precision} | {_cell(head['recall'].get(cls))} |")
    lines += [
        "",
        "## Head and checks",
        "",
        f"- {head['kind']} (C = {head['C']})",
        *_candidates_line(head["inputs_cv_accuracy"]),
        "- cross-validated accuracy: "
        + ("-" if accuracy is None else f"{accuracy:.1%} ({head['cross_validation_folds']} folds)"),
        f"- `unknown` when a tile's best cosine similarity to the class prototypes is below "
        f"{report['unknown']['threshold']:.3f} ({report['unknown']['calibration']}); "
        "`snca classify --unknown-threshold` overrides it",
        "",
        "## Intended use",
        "",
        "Tiles like the labelled ones, on imagery like the labelled rasters. Scene kinds absent "
        "from the labels come out `unknown` when they look like none of them, and as the "
        "nearest class otherwise.",
        "",
    ]
    for warning in report["warnings"]:
        lines.insert(-1, f"- warning: {warning}")
    return "\n".join(lines)


def _candidates_line(candidates: dict[str, float | None]) -> list[str]:
    """The card's line on the head inputs that were compared (none when only one was)."""
    if len(candidates) < 2:
        return []
    scores = ", ".join(
        f"{kind} {'-' if accuracy is None else f'{accuracy:.1%}'}"
        for kind, accuracy in candidates.items()
    )
    return [f"- head input chosen by cross-validated accuracy: {scores}"]


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


#: The confusion matrix picture's largest side (inches, at 110 dpi), and up to how many classes
#: it writes each cell's count and names the classes on its axes.
MAX_CONFUSION_INCHES = 16.0
MAX_COUNTED_CLASSES = 30
MAX_NAMED_CLASSES = 80


def plot_confusion(path: Path, head: AdaptedHead) -> None:
    """The cross-validated confusion matrix as a PNG (an empty note without one)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    classes = len(head.class_names)
    # the picture grows with the classes up to a bound: its memory and time may not grow with
    # their square (200 classes once took 4.5 GiB and 106 s)
    size = min(MAX_CONFUSION_INCHES, max(4.0, 0.45 * classes + 2.5))
    figure, axes = plt.subplots(figsize=(size, size))
    if head.confusion is None:
        axes.text(0.5, 0.5, "too few examples per class\nfor cross-validation", ha="center")
        axes.set_axis_off()
    else:
        axes.imshow(head.confusion, cmap="Blues")
        if classes <= MAX_COUNTED_CLASSES:  # beyond, the counts are in the report's JSON
            for (row, col), value in np.ndenumerate(head.confusion):
                axes.text(col, row, str(value), ha="center", va="center", fontsize=8)
        if classes <= MAX_NAMED_CLASSES:
            axes.set_xticks(range(classes), head.class_names, rotation=90)
            axes.set_yticks(range(classes), head.class_names)
        axes.set_xlabel("predicted")
        axes.set_ylabel("labelled")
        title = f"cross-validated accuracy {head.cv_accuracy:.1%}"
        axes.set_title(title if math.isfinite(head.cv_accuracy or math.nan) else "")
    figure.tight_layout()
    figure.savefig(path, format="png", dpi=110)
    plt.close(figure)
