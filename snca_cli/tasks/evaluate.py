"""Evaluate a model (an ONNX file or a training checkpoint) on a scene folder's test split.

The test images are the queries, the training images the database: the report holds the
kNN accuracy, retrieval and clustering metrics of :mod:`snca_cli.runtime.metrics` plus the
accuracy of the model's own classifier. A folder whose classes differ from the model's (a
user's own data, to see how well the embeddings transfer) gets the embedding metrics only,
with the folder's own seeded training split as the database. ONNX models run on onnxruntime.
Other model files (training checkpoints) are opened by the opener registered under the
``snca.embedders`` entry-point group as ``checkpoint`` (``snca_train.embedder:open_checkpoint``,
which needs the [train] extra): this module never imports the training code.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import numpy as np

from snca_cli.errors import TRAIN_EXTRA_HINT, SncaError
from snca_cli.hooks import ProgressFactory, ProgressHook
from snca_cli.runtime.atomic import (
    OwnOutput,
    atomic_output,
    check_output_paths,
    read_record,
    unlisted_entry,
)
from snca_cli.runtime.image_input import image_as_model_input
from snca_cli.runtime.metrics import evaluate_embeddings, plot_confusion_matrix
from snca_cli.runtime.onnx_model import ModelOutputs, OnnxModel
from snca_cli.runtime.paths import real_path
from snca_cli.runtime.precision import named_precision
from snca_cli.runtime.scene_images import (
    SPLIT_FILE,
    load_split,
    make_split,
    scan_scene_folder,
)

METRICS_FILE = "metrics.json"
CONFUSION_FILE = "confusion.png"
DEFAULT_BATCH_SIZE = 32
#: Keys every report has (:func:`score_embeddings`): how a report snca wrote is recognised.
REPORT_KEYS = frozenset(("metrics", "confusion_matrix", "class_names", "model", "data"))


def _report_mismatch(folder: Path) -> str | None:
    """Why ``folder`` is not an evaluation report snca wrote (None when it is): its
    ``metrics.json`` has the report's keys and it holds nothing but that and the plot."""
    report, reason = read_record(folder / METRICS_FILE)
    if reason is not None:
        return reason
    if not (isinstance(report, dict) and REPORT_KEYS <= report.keys()):
        return f"its {METRICS_FILE} is not a report of snca evaluate"
    return unlisted_entry(folder, {METRICS_FILE, CONFUSION_FILE})


#: A report folder ``snca evaluate`` wrote, which ``--force`` may replace.
REPORT_OUTPUT = OwnOutput("an evaluation report", _report_mismatch)

#: How the table names each metric of the report, in display order.
METRIC_LABELS = {
    "knn@1": "kNN@1 accuracy",
    "knn@5": "kNN@5 accuracy",
    "knn@10": "kNN@10 accuracy",
    "classifier": "classifier accuracy",
    "map@20": "mAP@20",
    "map@50": "mAP@50",
    "map@100": "mAP@100",
    "p@1": "P@1",
    "p@10": "P@10",
    "nmi": "NMI (k-means)",
    "clustering_accuracy": "clustering accuracy (k-means)",
}


@dataclass
class Embedder:
    """A model as the evaluation sees it: its input contract and a batch -> outputs function."""

    path: Path
    kind: str  # "onnx" or "checkpoint"
    class_names: list[str]
    image_size: int
    input_bands: int
    input_scale: dict[str, float]
    backbone: str
    split_seed: int | None
    run: Callable[[np.ndarray], ModelOutputs] = field(repr=False)

    def describe(self) -> dict[str, Any]:
        """JSON-able facts about the model for reports."""
        return {
            "file": self.path.name,
            "kind": self.kind,
            "backbone": self.backbone,
            "image_size": self.image_size,
            "input_bands": self.input_bands,
            "num_classes": len(self.class_names),
        }


def open_onnx(path: Path, provider: str = "auto") -> Embedder:
    """An exported model run by onnxruntime (no torch) in the precision of the file named:
    evaluating ``STEM.onnx`` measures it, never its quicker int8 copy; a named ``STEM.int8.onnx``
    runs as ``snca classify`` runs it (close tiles re-checked by ``STEM.onnx`` beside it)."""
    return onnx_embedder(OnnxModel(path, provider=provider, precision=named_precision(path)))


def onnx_embedder(model: OnnxModel) -> Embedder:
    """An open ONNX model as the evaluation sees it."""
    meta = model.metadata
    seed = meta.training.get("split_seed")
    return Embedder(
        path=model.path,
        kind="onnx",
        class_names=meta.class_names,
        image_size=meta.tile_size,
        input_bands=meta.input_bands,
        input_scale=meta.input_scale,
        backbone=meta.backbone,
        split_seed=None if seed is None else int(seed),
        run=model.run,
    )


#: The entry-point group of openers for model files other than ONNX, by kind.
OPENER_GROUP = "snca.embedders"


def open_checkpoint(path: Path) -> Embedder:
    """A training checkpoint, through the registered ``checkpoint`` opener (the [train] extra)."""
    found = [ep for ep in entry_points(group=OPENER_GROUP) if ep.name == "checkpoint"]
    if not found:
        raise SncaError(f"cannot open checkpoint {Path(path).name}: {TRAIN_EXTRA_HINT}")
    try:
        opener = found[0].load()
    except ImportError:
        raise SncaError(TRAIN_EXTRA_HINT) from None
    return opener(Path(path))


def open_embedder(path: Path, provider: str = "auto") -> Embedder:
    """An ``.onnx`` file through onnxruntime, anything else as a training checkpoint."""
    path = Path(path)
    if not path.exists():
        raise SncaError(f"model {path} does not exist")
    return open_onnx(path, provider) if path.suffix.lower() == ".onnx" else open_checkpoint(path)


@dataclass
class EvaluationSplit:
    """The training (database), validation and test (query) items of a scene folder."""

    train: list[str]
    test: list[str]
    seed: int | None
    source: str
    val: list[str] = field(default_factory=list)
    #: the split's classes (labels follow their order); empty: the model's
    class_names: list[str] = field(default_factory=list)

    def classes(self, embedder: Embedder) -> list[str]:
        """The class names the items' labels index."""
        return self.class_names or embedder.class_names

    def same_classes(self, embedder: Embedder) -> bool:
        """Whether the split's classes are the model's (then its classifier is scored too)."""
        return self.classes(embedder) == embedder.class_names


def resolve_split(
    embedder: Embedder, data_dir: Path, split_file: Path | None, model_dir: Path | None = None
) -> EvaluationSplit:
    """The split to evaluate on: ``split_file``; else ``split.json`` in ``model_dir`` (default:
    the model's folder, i.e. its run folder) when it is of the folder's classes; else the
    model's split seed applied to ``data_dir``. A folder of other classes than the model's is
    split with the model's seed (0 when it records none): embeddings-only evaluation."""
    beside = (model_dir if model_dir is not None else embedder.path.parent) / SPLIT_FILE
    folder = None
    if split_file is None and beside.is_file():
        folder = scan_scene_folder(data_dir)
        if list(load_split(beside)["classes"]) != folder.class_names:
            beside = None  # a run's split of other data: not this folder's
    else:
        beside = None
    if split_file is not None or beside is not None:
        chosen = Path(split_file) if split_file is not None else beside
        parts = load_split(chosen)
        classes, seed, source = list(parts["classes"]), parts["seed"], f"file {chosen.name}"
    else:
        folder = folder or scan_scene_folder(data_dir)
        classes, seed = folder.class_names, embedder.split_seed
        if seed is None and classes == embedder.class_names:
            raise SncaError(
                f"model {embedder.path.name} records no split seed and there is no "
                f"{SPLIT_FILE} beside it; pass --split FILE"
            )
        seed = 0 if seed is None else seed
        parts = make_split(folder, seed)
        source = f"seed {seed} over {data_dir}"
    train, val, test = (list(parts[name]) for name in ("train", "val", "test"))
    if not train or not test:
        raise SncaError(f"the split ({source}) has an empty train or test part")
    return EvaluationSplit(
        train=train, test=test, seed=seed, source=source, val=val, class_names=classes
    )


def load_batch(embedder: Embedder, root: Path, items: list[str]) -> np.ndarray:
    """Read, resize and scale ``root/<item>`` images to an N x bands x S x S float32 batch."""
    size = embedder.image_size
    batch = np.empty((len(items), embedder.input_bands, size, size), dtype=np.float32)
    for row, item in enumerate(items):
        batch[row] = image_as_model_input(
            root / item,
            size=size,
            input_bands=embedder.input_bands,
            input_scale=embedder.input_scale,
        )
    return batch


def run_with_tta(embedder: Embedder, batch: np.ndarray) -> ModelOutputs:
    """Outputs averaged over the 8 flips and quarter turns of each image; unit embeddings."""
    embeddings, probabilities = [], []
    for flip in (False, True):
        flipped = batch[..., ::-1] if flip else batch
        for turns in range(4):
            out = embedder.run(np.ascontiguousarray(np.rot90(flipped, turns, axes=(2, 3))))
            embeddings.append(out.embedding)
            probabilities.append(out.probabilities)
    mean = np.mean(embeddings, axis=0)
    mean /= np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12)
    return ModelOutputs(embedding=mean, probabilities=np.mean(probabilities, axis=0))


def embed_items(
    embedder: Embedder,
    root: Path,
    items: list[str],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    tta: bool = False,
    progress: ProgressHook | None = None,
) -> ModelOutputs:
    """Model outputs of every ``root/<item>`` image, in order; ``progress(done, total)``."""
    if batch_size < 1:
        raise SncaError(f"batch size must be at least 1, not {batch_size}")
    embeddings, probabilities = [], []
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        batch = load_batch(embedder, Path(root), chunk)
        out = run_with_tta(embedder, batch) if tta else embedder.run(batch)
        embeddings.append(out.embedding)
        probabilities.append(out.probabilities)
        if progress is not None:
            progress(start + len(chunk), len(items))
    return ModelOutputs(
        embedding=np.concatenate(embeddings).astype(np.float32),
        probabilities=np.concatenate(probabilities).astype(np.float32),
    )


@dataclass
class SplitEmbeddings:
    """Outputs and labels of the training (database) and test (query) images."""

    train: ModelOutputs
    train_labels: np.ndarray
    test: ModelOutputs
    test_labels: np.ndarray


def labels_of(items: list[str], class_names: list[str]) -> np.ndarray:
    """Class index of each ``Class/file`` item."""
    index = {name: i for i, name in enumerate(class_names)}
    try:
        return np.array([index[item.split("/", 1)[0]] for item in items], dtype=np.int64)
    except KeyError as exc:
        raise SncaError(f"split item of unknown class {exc.args[0]!r}") from None


def embed_split(
    embedder: Embedder,
    data_dir: Path,
    split: EvaluationSplit,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    tta: bool = False,
    progress: ProgressFactory | None = None,
) -> SplitEmbeddings:
    """Embed the training and test images of ``split`` under ``data_dir``; ``progress(label)``
    gives the progress hook of each part."""

    def hook(label: str) -> ProgressHook | None:
        return progress(label) if progress is not None else None

    options = {"batch_size": batch_size, "tta": tta}
    train = embed_items(embedder, data_dir, split.train, progress=hook("train images"), **options)
    test = embed_items(embedder, data_dir, split.test, progress=hook("test images"), **options)
    return SplitEmbeddings(
        train=train,
        train_labels=labels_of(split.train, split.classes(embedder)),
        test=test,
        test_labels=labels_of(split.test, split.classes(embedder)),
    )


def score_embeddings(
    embedder: Embedder,
    embeddings: SplitEmbeddings,
    split: EvaluationSplit,
    data_dir: Path,
    classifier: bool = True,
) -> dict[str, Any]:
    """The JSON-able evaluation report of embedded split images; ``classifier=False`` leaves
    out the accuracy of the model's probabilities (for features without a trained head), as
    does a split of other classes than the model's."""
    report = evaluate_embeddings(
        embeddings.test.embedding,
        embeddings.test_labels,
        embeddings.train.embedding,
        embeddings.train_labels,
        split.classes(embedder),
    )
    if classifier and split.same_classes(embedder):
        predicted = embeddings.test.probabilities.argmax(axis=1)
        report["metrics"]["classifier"] = float(np.mean(predicted == embeddings.test_labels))
    report["model"] = embedder.describe()
    report["data"] = {
        "dataset": real_path(data_dir).name,
        "split": split.source,
        "split_seed": split.seed,
        "num_train": len(split.train),
        "num_test": len(split.test),
        "classes_of_the_model": split.same_classes(embedder),
    }
    return report


def evaluate_model(
    embedder: Embedder,
    data_dir: Path,
    split: EvaluationSplit,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    tta: bool = False,
    progress: ProgressFactory | None = None,
) -> dict[str, Any]:
    """Embed the split and score it: the report written to ``metrics.json``."""
    embeddings = embed_split(
        embedder, data_dir, split, batch_size=batch_size, tta=tta, progress=progress
    )
    report = score_embeddings(embedder, embeddings, split, data_dir)
    report["tta"] = tta
    return report


def default_output_dir(model_path: Path) -> Path:
    """``<model stem>-eval/`` beside the model."""
    model_path = Path(model_path)
    return model_path.with_name(f"{model_path.stem}-eval")


def check_report_folder(output_dir: Path, force: bool) -> None:
    """Refuse an output folder before any work unless it is new, empty, or (with ``force``)
    a report snca wrote (:data:`REPORT_OUTPUT`)."""
    check_output_paths([output_dir], force, folders=[output_dir], own={output_dir: REPORT_OUTPUT})


def write_report(report: dict[str, Any], output_dir: Path, force: bool = False) -> None:
    """Write ``metrics.json`` and ``confusion.png`` into ``output_dir``, atomically; an
    existing folder is replaced only when it is a report snca wrote (:data:`REPORT_OUTPUT`)."""
    with atomic_output(output_dir, force, directory=True, own=REPORT_OUTPUT) as tmp:
        (tmp / METRICS_FILE).write_text(json.dumps(report, indent=1))
        plot_confusion_matrix(
            np.array(report["confusion_matrix"]), report["class_names"], tmp / CONFUSION_FILE
        )
