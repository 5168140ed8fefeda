"""The paper's comparison on AID (Kang et al., TGRS 2020, Tables III-V), with one backbone and one
schedule for every method, through the real trainer and the real evaluator.

Methods (``--methods``, default all): SNCA+CE with a memory bank, SNCA+CE with a momentum
encoder, CE alone, SNCA alone, triplet, contrastive, and as the floor the frozen ImageNet
backbone (no training: its pooled features, L2-normalised). Each method trains into
``RUNS/<method>/`` with :class:`snca_train.trainer.Trainer`; its ``best.pt`` (best validation
kNN) is
evaluated by :mod:`snca_cli.tasks.evaluate` on the test split against the training split
(kNN@1/5/10,
mAP@20/100, P@10, NMI and clustering accuracy of k-means, the softmax classifier's accuracy).
Each method's ``result.json`` (metrics, training time and images/s from the run's history,
settings), ``embeddings.npz`` and figures (``projection.png``: t-SNE of the test embeddings by
class; ``retrieval.png``: query test scenes and their top-5 training scenes, green = right class,
red = wrong) land in its folder; ``RUNS/results.json`` and ``RUNS/results.md`` gather them.

Resumable: a method whose ``result.json`` exists (with the same settings) is skipped, an
unfinished run (``last.pt`` before the last epoch) is resumed, a finished one only evaluated. So
the same command can be stopped, continued in another session, or run on another machine.

    python benchmarks/aid_table.py --data AID --runs runs/aid-table --epochs 6 --validate-every 6
    python benchmarks/aid_table.py --data AID --runs runs/aid-table --methods imagenet-frozen
    python benchmarks/aid_table.py --data AID --only-report runs/my-run

On a GPU (``--device cuda``) each method can train in its own process at the same time
(``--methods NAME --train-only``; the test images need not be there), and the finished runs are
then evaluated by the same command without ``--train-only`` on any machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from aid_figures import (
    PROJECTIONS,
    choose_queries,
    plot_comparison,
    plot_projection,
    plot_retrieval,
    project_2d,
    top_k_neighbours,
)
from rich.console import Console
from rich.table import Table

from snca_cli.contract.metadata import DEFAULT_INPUT_SCALE
from snca_cli.errors import SncaError
from snca_cli.runtime.onnx_model import ModelOutputs
from snca_cli.runtime.scene_images import read_image
from snca_cli.tasks.evaluate import (
    Embedder,
    EvaluationSplit,
    SplitEmbeddings,
    embed_split,
    open_checkpoint,
    open_embedder,
    resolve_split,
    score_embeddings,
)

RESULT_FILE = "result.json"
PROJECTION_FILE = "projection.png"
RETRIEVAL_FILE = "retrieval.png"
EMBEDDINGS_FILE = "embeddings.npz"
RESULTS_JSON = "results.json"
RESULTS_MD = "results.md"
RESULTS_PNG = "results.png"
#: Metrics of the comparison chart: key -> shown name.
CHART_METRICS = {"knn@10": "kNN@10", "map@20": "mAP@20", "nmi": "NMI"}
FROZEN = "imagenet-frozen"
#: Queries and results per query of the retrieval panel.
PANEL_QUERIES = 6
PANEL_RESULTS = 5
PROJECTION_NAMES = {"tsne": "t-SNE", "pca": "PCA"}


@dataclass(frozen=True)
class Method:
    """A row of the table: its label and the ``snca train`` options that define it (``None``
    for the frozen floor, which is not trained)."""

    label: str
    options: dict[str, str] | None


METHODS: dict[str, Method] = {
    "snca-ce-bank": Method("SNCA+CE (memory bank)", {"loss": "snca+ce", "memory": "bank"}),
    "snca-ce-momentum": Method(
        "SNCA+CE (momentum encoder)", {"loss": "snca+ce", "memory": "momentum-encoder"}
    ),
    "ce": Method("CE", {"loss": "ce"}),
    "snca": Method("SNCA", {"loss": "snca", "memory": "bank"}),
    "triplet": Method("triplet (semi-hard)", {"loss": "triplet"}),
    "contrastive": Method("contrastive", {"loss": "contrastive"}),
    FROZEN: Method("ImageNet features, frozen (floor)", None),
}

#: Columns of the Markdown table: metric key -> header (values in percent).
TABLE_METRICS = {
    "knn@1": "kNN@1",
    "knn@5": "kNN@5",
    "knn@10": "kNN@10",
    "map@20": "mAP@20",
    "map@100": "mAP@100",
    "p@10": "P@10",
    "nmi": "NMI",
    "clustering_accuracy": "clust. acc.",
    "classifier": "softmax acc.",
}


@dataclass(frozen=True)
class Settings:
    """What every method of one table shares."""

    data_dir: str
    backbone: str = "efficientnet_lite0"
    image_size: int = 150
    epochs: int = 12
    batch_size: int = 64
    lr: float = 0.02
    augment: str = "classic"  # the paper's flips, turns and colour jitter
    seed: int = 0
    split_seed: int = 0
    threads: int = 0  # torch threads (0: every CPU); speed only, not compared on resume
    validate_every: int = 1  # validation epochs (best.pt); not compared on resume
    device: str = "cpu"  # where the runs train; not compared on resume
    weights: str | None = None  # backbone weights instead of the packaged ones; not compared
    split_file: str | None = None  # a run's split.json instead of split_seed's; not compared

    def run_options(self, method: Method) -> dict[str, Any]:
        """The :class:`snca_train.config.TrainConfig` fields that define ``method``'s run."""
        assert method.options is not None
        return {
            "backbone": self.backbone,
            "image_size": self.image_size,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "augment": self.augment,
            "seed": self.seed,
            "split_seed": self.split_seed,
            **method.options,
        }


def settings_differences(stored: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """``key stored vs wanted`` for every key of ``wanted`` whose stored value differs (the data
    folder is compared by name only, so a table can move between machines)."""
    differences = []
    for key, value in wanted.items():
        before = stored.get(key)
        if key == "data_dir":
            before, value = Path(str(before)).name, Path(str(value)).name
        if key == "augment":  # a recipe name against the stored augmentation (classic before)
            before = (before or {}).get("recipe", "classic") if isinstance(before, dict) else before
        if before != value:
            differences.append(f"{key} {before} vs {value}")
    return differences


def timing_from_history(history: list[dict[str, Any]]) -> dict[str, Any]:
    """Training time of a run from its per-epoch history: ``wall_seconds`` (training and
    validation of every epoch), ``train_seconds`` (the SGD steps only) and
    ``images_per_second`` (training images over train seconds)."""
    train_seconds = sum(record["train_seconds"] for record in history)
    images = sum(record["train_images"] for record in history)
    return {
        "epochs": len(history),
        "wall_seconds": sum(record["epoch_seconds"] for record in history),
        "train_seconds": train_seconds,
        "images_per_second": images / train_seconds if train_seconds else None,
    }


# ----------------------------------------------------------------------------- training


def train_method(
    name: str, settings: Settings, run_dir: Path, console: Console, data_cache: dict[str, Any]
) -> None:
    """Train (or resume, or leave as it is when finished) ``name``'s run in ``run_dir``; the
    decoded data of a new run are kept in ``data_cache`` for the next method."""
    from snca_train.checkpoint import LAST_CHECKPOINT, read_checkpoint
    from snca_train.config import TrainConfig
    from snca_train.run import apply_options
    from snca_train.speed import configure_for_training
    from snca_train.trainer import Trainer, load_training_data

    options = settings.run_options(METHODS[name])
    last = run_dir / LAST_CHECKPOINT
    if last.is_file():
        checkpoint = read_checkpoint(last)
        stored = dict(checkpoint.get("train_config") or {})
        stored.update(stored.pop("loss", {}) or {})
        differences = settings_differences(stored, {"data_dir": settings.data_dir, **options})
        if differences:
            raise SncaError(
                f"{run_dir} holds a run with other settings ({'; '.join(differences)}); "
                "use another --runs folder"
            )
        if int(checkpoint["epoch"]) >= settings.epochs:
            return
        console.print(f"[bold]{name}[/]: resuming after epoch {checkpoint['epoch']}")
        checkpoint["train_config"].update(
            data_dir=settings.data_dir,
            threads=settings.threads,
            validate_every=settings.validate_every,
            device=settings.device,
        )
        Trainer.resume(checkpoint, run_dir, console).train()
        return
    uncompared = {
        "threads": settings.threads,
        "validate_every": settings.validate_every,
        "device": settings.device,
        "weights": settings.weights,
        "split_file": settings.split_file,
    }
    config = apply_options(TrainConfig(data_dir=settings.data_dir), {**options, **uncompared})
    config.validate()
    configure_for_training(config.threads, config.device)
    if "data" not in data_cache:
        data_cache["data"] = load_training_data(config, console)
    console.print(f"[bold]{name}[/]: training {settings.epochs} epochs")
    run_dir.mkdir(parents=True, exist_ok=True)
    Trainer.start(config, run_dir, console, data_cache["data"]).train()


# ----------------------------------------------------------------------------- evaluation


def frozen_embedder(settings: Settings, class_names: list[str]) -> Embedder:
    """The ImageNet backbone, untrained: its pooled features, L2-normalised, as embeddings (no
    classifier: the probabilities have no columns)."""
    import torch
    import torch.nn.functional as F

    from snca_train.backbones import build_backbone

    backbone = build_backbone(settings.backbone, 3, pretrained=True)
    network = backbone.module.eval().to(memory_format=torch.channels_last)
    mean = torch.tensor(backbone.mean).view(1, -1, 1, 1)
    std = torch.tensor(backbone.std).view(1, -1, 1, 1)

    def run(images: np.ndarray) -> ModelOutputs:
        with torch.inference_mode():
            standardised = (torch.from_numpy(np.ascontiguousarray(images)) - mean) / std
            features = network(standardised.contiguous(memory_format=torch.channels_last))
        embedding = F.normalize(features, dim=1).numpy()
        return ModelOutputs(embedding=embedding, probabilities=np.zeros((len(images), 0)))

    return Embedder(
        path=Path(FROZEN),
        kind="frozen backbone",
        class_names=class_names,
        image_size=settings.image_size,
        input_bands=3,
        input_scale=dict(DEFAULT_INPUT_SCALE),
        backbone=settings.backbone,
        split_seed=settings.split_seed,
        run=run,
    )


def write_figures(
    out_dir: Path,
    label: str,
    embeddings: SplitEmbeddings,
    split: EvaluationSplit,
    data_dir: Path,
    class_names: list[str],
    projection: str,
) -> None:
    """``projection.png`` and ``retrieval.png`` of an evaluated model in ``out_dir``."""
    points = project_2d(embeddings.test.embedding, projection)
    plot_projection(
        points,
        embeddings.test_labels,
        class_names,
        f"{label}: {PROJECTION_NAMES[projection]} of {len(points)} test embeddings",
        out_dir / PROJECTION_FILE,
    )
    queries = choose_queries(embeddings.test_labels, PANEL_QUERIES)
    neighbours = top_k_neighbours(
        embeddings.test.embedding[queries], embeddings.train.embedding, PANEL_RESULTS
    )
    plot_retrieval(
        [read_image(Path(data_dir) / split.test[q]) for q in queries],
        [int(embeddings.test_labels[q]) for q in queries],
        [[read_image(Path(data_dir) / split.train[j]) for j in row] for row in neighbours],
        [[int(embeddings.train_labels[j]) for j in row] for row in neighbours],
        class_names,
        f"{label}: test queries and their top-{PANEL_RESULTS} training scenes",
        out_dir / RETRIEVAL_FILE,
    )


def evaluated_result(
    label: str, report: dict[str, Any], started: float, **facts: Any
) -> dict[str, Any]:
    """A method's ``result.json`` content: its label, the run ``facts`` (``run``, ``training``,
    ...), the headline metrics, the whole report and the seconds since ``started``."""
    return {
        "label": label,
        **facts,
        "metrics": report["metrics"],
        "report": report,
        "evaluation_seconds": time.perf_counter() - started,
    }


def report_run(
    run_dir: Path,
    data_dir: Path,
    out_dir: Path,
    label: str,
    projection: str = "tsne",
    console: Console | None = None,
    model: Path | None = None,
) -> dict[str, Any]:
    """Evaluate one finished run (its ``best.pt``, or ``model``: its ONNX export, which
    onnxruntime embeds several times faster on a CPU) on its test split and write
    ``result.json`` and the figures into ``out_dir``; return the result. Usable on any
    ``snca train`` run."""
    from snca_train.checkpoint import BEST_CHECKPOINT, LAST_CHECKPOINT, read_checkpoint

    console = console or Console()
    best = run_dir / BEST_CHECKPOINT
    if not best.is_file():
        raise SncaError(f"{run_dir} has no {BEST_CHECKPOINT} (train it first)")
    started = time.perf_counter()
    embedder = open_checkpoint(best) if model is None else open_embedder(model)
    split = resolve_split(embedder, data_dir, None, model_dir=run_dir)
    embeddings = embed_split(embedder, data_dir, split)
    report = score_embeddings(embedder, embeddings, split, data_dir)
    source = run_dir / LAST_CHECKPOINT if (run_dir / LAST_CHECKPOINT).is_file() else best
    checkpoint = read_checkpoint(source)
    best_checkpoint = read_checkpoint(best) if source != best else checkpoint
    training = {
        **timing_from_history(list(checkpoint.get("history") or [])),
        "best_epoch": int(best_checkpoint["epoch"]),
        "train_config": checkpoint.get("train_config"),
    }
    result = evaluated_result(label, report, started, run=str(run_dir), training=training)
    write_result(out_dir, result, embeddings, split, data_dir, embedder.class_names, projection)
    console.print(metrics_line(label, result["metrics"]))
    return result


def report_frozen(
    settings: Settings, out_dir: Path, projection: str, console: Console
) -> dict[str, Any]:
    """Evaluate the frozen ImageNet features and write ``result.json`` and the figures."""
    from snca_cli.runtime.scene_images import scan_scene_folder

    data_dir = Path(settings.data_dir)
    started = time.perf_counter()
    embedder = frozen_embedder(settings, scan_scene_folder(data_dir).class_names)
    split = resolve_split(embedder, data_dir, None, model_dir=out_dir)
    embeddings = embed_split(embedder, data_dir, split)
    report = score_embeddings(embedder, embeddings, split, data_dir, classifier=False)
    label = METHODS[FROZEN].label
    result = evaluated_result(
        label, report, started, run=None, training=None, settings=asdict(settings)
    )
    write_result(out_dir, result, embeddings, split, data_dir, embedder.class_names, projection)
    console.print(metrics_line(label, result["metrics"]))
    return result


# ----------------------------------------------------------------------------- output


def write_result(
    out_dir: Path,
    result: dict[str, Any],
    embeddings: SplitEmbeddings,
    split: EvaluationSplit,
    data_dir: Path,
    class_names: list[str],
    projection: str,
) -> None:
    """Write a method's embeddings, figures and ``result.json`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    save_embeddings(out_dir / EMBEDDINGS_FILE, embeddings)
    write_figures(out_dir, result["label"], embeddings, split, data_dir, class_names, projection)
    write_json(out_dir / RESULT_FILE, result)


def save_embeddings(path: Path, embeddings: SplitEmbeddings) -> None:
    """The test and training embeddings, labels and probabilities (``.npz``, atomically), so
    that figures and other metrics can be redone without embedding the images again."""
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}.npz")
    np.savez(
        tmp,
        test_embedding=embeddings.test.embedding,
        test_probabilities=embeddings.test.probabilities,
        test_labels=embeddings.test_labels,
        train_embedding=embeddings.train.embedding,
        train_labels=embeddings.train_labels,
    )
    os.replace(tmp, path)


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` as JSON, atomically."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(payload, indent=1))
    os.replace(tmp, path)


def metrics_line(label: str, metrics: dict[str, float]) -> str:
    """One line of the headline metrics in percent."""
    shown = " ".join(
        f"{header} {100 * metrics[key]:.2f}"
        for key, header in TABLE_METRICS.items()
        if key in metrics
    )
    return f"{label}: {shown}"


def table_metrics(name: str, metrics: dict[str, float]) -> dict[str, float]:
    """``metrics`` as the table shows them for method ``name``: the softmax accuracy only where
    the loss trains the classifier (CE is a term of it); elsewhere that head stays random."""
    options = METHODS[name].options
    trains_head = options is not None and "ce" in options["loss"].split("+")
    return {key: value for key, value in metrics.items() if key != "classifier" or trains_head}


def format_minutes(seconds: float | None) -> str:
    """``12.3 min``, or ``-`` when unknown."""
    return "-" if seconds is None else f"{seconds / 60:.1f} min"


def results_markdown(results: dict[str, dict[str, Any]], settings: Settings) -> str:
    """The Markdown table of the results (metrics in percent), in :data:`METHODS` order."""
    headers = ["method", *TABLE_METRICS.values(), "training time", "train img/s"]
    lines = [
        f"AID, {settings.backbone} at {settings.image_size} px, {settings.epochs} epochs, batch "
        f"{settings.batch_size}, lr {settings.lr:g}; test split vs training split "
        "(metrics in %).",
        "",
        "| " + " | ".join(headers) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(headers) - 1)) + "|",
    ]
    for name in METHODS:
        if name not in results:
            continue
        result = results[name]
        metrics, training = table_metrics(name, result["metrics"]), result.get("training") or {}
        cells = [METHODS[name].label]
        cells += [f"{100 * metrics[key]:.2f}" if key in metrics else "-" for key in TABLE_METRICS]
        speed = training.get("images_per_second")
        cells += [
            format_minutes(training.get("wall_seconds")),
            "-" if speed is None else f"{speed:.1f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def results_table(results: dict[str, dict[str, Any]]) -> Table:
    """The results as a rich table."""
    table = Table(title="AID comparison (test vs train, %)")
    table.add_column("method")
    for header in TABLE_METRICS.values():
        table.add_column(header, justify="right")
    table.add_column("training", justify="right")
    for name in METHODS:
        if name in results:
            metrics = table_metrics(name, results[name]["metrics"])
            training = results[name].get("training") or {}
            table.add_row(
                METHODS[name].label,
                *(f"{100 * metrics[k]:.2f}" if k in metrics else "-" for k in TABLE_METRICS),
                format_minutes(training.get("wall_seconds")),
            )
    return table


def load_result(path: Path, settings: Settings, name: str) -> dict[str, Any] | None:
    """A method's stored result, or None when there is none; SncaError when it was made with
    other settings."""
    if not path.is_file():
        return None
    result = json.loads(path.read_text())
    if name == FROZEN:
        stored = result.get("settings") or {}
        wanted = {k: v for k, v in asdict(settings).items() if k in ("data_dir", "backbone")}
        wanted |= {"image_size": settings.image_size, "split_seed": settings.split_seed}
    else:
        stored = dict((result.get("training") or {}).get("train_config") or {})
        stored.update(stored.pop("loss", {}) or {})
        wanted = {"data_dir": settings.data_dir, **settings.run_options(METHODS[name])}
    differences = settings_differences(stored, wanted)
    if differences:
        raise SncaError(
            f"{path} was made with other settings ({'; '.join(differences)}); "
            "use another --runs folder"
        )
    return result


def run_table(
    settings: Settings, runs: Path, methods: list[str], projection: str, console: Console
) -> dict[str, dict[str, Any]]:
    """Train, evaluate and report every method not done yet; return all results."""
    results: dict[str, dict[str, Any]] = {}
    data_cache: dict[str, Any] = {}
    for name in methods:
        run_dir = runs / name
        result = load_result(run_dir / RESULT_FILE, settings, name)
        if result is not None:
            console.print(f"[bold]{name}[/]: done already ({run_dir / RESULT_FILE})")
        elif name == FROZEN:
            result = report_frozen(settings, run_dir, projection, console)
        else:
            train_method(name, settings, run_dir, console, data_cache)
            result = report_run(
                run_dir, Path(settings.data_dir), run_dir, METHODS[name].label, projection, console
            )
        results[name] = result
    return results


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="The AID scene folder.")
    parser.add_argument("--runs", type=Path, help="Folder of the runs (one per method).")
    parser.add_argument("--methods", help=f"Comma-separated subset of: {', '.join(METHODS)}.")
    parser.add_argument("--backbone", default=Settings.backbone)
    parser.add_argument("--epochs", type=int, default=Settings.epochs)
    parser.add_argument("--image-size", type=int, default=Settings.image_size)
    parser.add_argument("--batch-size", type=int, default=Settings.batch_size)
    parser.add_argument("--lr", type=float, default=Settings.lr)
    parser.add_argument(
        "--device", choices=["cpu", "cuda"], default="cpu", help="Where the runs train."
    )
    parser.add_argument("--weights", help="Backbone weights file instead of ImageNet's package.")
    parser.add_argument(
        "--split", dest="split_file", help="A run's split.json instead of --split-seed 0's split."
    )
    parser.add_argument(
        "--train-only",
        action="store_true",
        help="Train the methods and stop (no evaluation: the test images need not be there).",
    )
    parser.add_argument("--threads", type=int, default=0, help="Torch threads; 0 = all CPUs.")
    parser.add_argument(
        "--validate-every",
        type=int,
        default=1,
        help="Validate every N epochs and after the last (best.pt: the best validated epoch).",
    )
    parser.add_argument("--projection", choices=PROJECTIONS, default="tsne")
    parser.add_argument(
        "--only-report",
        type=Path,
        metavar="RUN_DIR",
        help="Only evaluate this finished run (its best.pt) and draw its figures.",
    )
    parser.add_argument("--out", type=Path, help="With --only-report: [default: RUN_DIR/report].")
    parser.add_argument(
        "--model", type=Path, help="With --only-report: embed with this ONNX export of the run."
    )
    return parser.parse_args()


def portable_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """Table settings or a run's training configuration with its files (the data folder, the
    weights, the split file) named without their folders."""
    return {
        key: Path(value).name if key in ("data_dir", "weights", "split_file") and value else value
        for key, value in settings.items()
    }


def portable_result(result: dict[str, Any]) -> dict[str, Any]:
    """A method's result for ``results.json``, without the long report and without this
    machine's folders: the data folder by name, the run folder by its own name."""
    portable = {key: value for key, value in result.items() if key != "report"}
    if portable.get("run"):
        portable["run"] = Path(portable["run"]).name
    if portable.get("settings"):
        portable["settings"] = portable_settings(portable["settings"])
    training = portable.get("training")
    if training and training.get("train_config"):
        portable["training"] = {
            **training,
            "train_config": portable_settings(training["train_config"]),
        }
    return portable


def write_summary(runs: Path, settings: Settings, results: dict[str, dict[str, Any]]) -> None:
    """``results.json``, ``results.md`` and the chart ``results.png`` of every method done so
    far in ``runs``."""
    every = {}
    for name in METHODS:
        stored = results.get(name) or load_result(runs / name / RESULT_FILE, settings, name)
        if stored is not None:
            every[name] = stored
    summary = {
        "settings": portable_settings(asdict(settings)),
        "results": {name: portable_result(r) for name, r in every.items()},
    }
    write_json(runs / RESULTS_JSON, summary)
    tmp = runs / f".{RESULTS_MD}.tmp-{os.getpid()}"
    tmp.write_text(results_markdown(every, settings))
    os.replace(tmp, runs / RESULTS_MD)
    plot_comparison(
        {
            METHODS[name].label: {k: 100 * r["metrics"][k] for k in CHART_METRICS}
            for name, r in every.items()
        },
        CHART_METRICS,
        f"AID test split vs training split: {settings.backbone}, {settings.image_size} px, "
        f"{settings.epochs} epochs",
        runs / RESULTS_PNG,
    )
    Console().print(results_table(every))


def run(args: argparse.Namespace, console: Console) -> None:
    """Do what the command line asks."""
    if args.only_report is not None:
        out = args.out or args.only_report / "report"
        report_run(
            args.only_report,
            args.data,
            out,
            args.only_report.name,
            args.projection,
            model=args.model,
        )
        console.print(f"wrote {out / RESULT_FILE}, {out / PROJECTION_FILE}, {out / RETRIEVAL_FILE}")
        return
    if args.runs is None:
        raise SncaError("give --runs DIR (or --only-report RUN_DIR)")
    methods = list(METHODS) if args.methods is None else args.methods.split(",")
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise SncaError(f"unknown method(s) {', '.join(unknown)}; known: {', '.join(METHODS)}")
    settings = Settings(
        data_dir=str(args.data.resolve()),
        backbone=args.backbone,
        image_size=args.image_size,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        threads=args.threads,
        validate_every=args.validate_every,
        device=args.device,
        weights=args.weights,
        split_file=args.split_file,
    )
    args.runs.mkdir(parents=True, exist_ok=True)
    if args.train_only:
        data_cache: dict[str, Any] = {}
        for name in (m for m in methods if m != FROZEN):
            train_method(name, settings, args.runs / name, console, data_cache)
        return
    results = run_table(settings, args.runs, methods, args.projection, console)
    write_summary(args.runs, settings, results)
    written = ", ".join(str(args.runs / name) for name in (RESULTS_JSON, RESULTS_MD, RESULTS_PNG))
    console.print(f"wrote {written}")


def main() -> None:
    try:
        run(parse_args(), Console())
    except SncaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
