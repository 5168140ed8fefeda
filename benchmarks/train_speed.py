"""Training images/s of our trainer's step against a plain re-implementation of the authors'
loop (``authors_loop.py``), in the same run on the same machine.

Both sides train the same network shape (torchvision ResNet-18, as in the authors' code, or with
``--backbone efficientnet_lite0`` our default backbone -> 128-D embedding -> class logits, random
initial weights: only speed is measured), on the same training split, with the
same batch, image size, loss (SNCA over a memory bank of every training image + cross entropy)
and torch threads. What differs is the loop:

* ours (:class:`snca_train.trainer.Trainer`, its actual ``train_step``): every image decoded once
into
  a uint8 RAM cache, augmentation of the whole batch in torch, channels-last tensors, glibc
  allocator tuned by :mod:`snca_train.speed`, the memory bank blended in place; timed once per
  ``--precisions`` entry (``fp32``, and ``bf16``: the backbone under bfloat16 autocast, as
  ``snca train --precision bf16``);
* the authors': a ``DataLoader`` decoding JPEGs from disk at every step with torchvision PIL
  transforms, fp32 NCHW, glibc's default allocator.

Each side runs in its own fresh process (the allocator setting is process-wide; the authors'
process gets an environment without ``MALLOC_*`` variables). A step is timed from asking for the
batch to the end of the memory update; the first ``--warmup`` steps are left out and the median
of the others gives images/s. The validation kNN of each side (our numpy kNN vs scikit-learn's
``KNeighborsClassifier``) is timed on the side's memory bank against 1000 queries. Our one-off
cost, decoding the training split into RAM, is reported apart.

On a machine busy with other work, ``--threads 1 --loader-workers 1`` gives steadier figures:
torch's threads waiting for each other on shared cores slow both sides erratically.

    python benchmarks/train_speed.py --data AID --steps 10 --warmup 2 --json speed.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

AUTHORS_LOOP = Path(__file__).with_name("authors_loop.py")
#: The backbones both loops can train: the authors' ResNet-18 and our default.
BACKBONES = ("resnet18", "efficientnet_lite0")
#: Queries of the timed validation kNN (about the size of AID's validation split).
VALIDATION_QUERIES = 1000
#: The ratio of images/s (ours / authors') the trainer is meant to reach.
TARGET_RATIO = 2.0


@dataclass
class SideSpeed:
    """One loop's measured speed."""

    name: str
    images_per_second: float
    median_step_seconds: float
    timed_steps: int
    validation_knn_seconds: float


def median_images_per_second(
    step_seconds: list[float], batch_size: int, warmup: int
) -> tuple[float, float, int]:
    """``(images/s, median step seconds, steps used)`` of the steps after the first ``warmup``."""
    timed = step_seconds[warmup:]
    if not timed:
        raise ValueError(f"no step left to time after {warmup} warm-up step(s)")
    median = statistics.median(timed)
    return batch_size / median, median, len(timed)


def glibc_default_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` without the ``MALLOC_*`` variables that tune glibc's allocator."""
    return {key: value for key, value in env.items() if not key.startswith("MALLOC_")}


def as_arguments(options: dict[str, Any]) -> list[str]:
    """Command-line arguments ``[flag, value, ...]`` of ``options``, in order."""
    return [text for flag, value in options.items() for text in (flag, str(value))]


def side_speed(name: str, times: dict[str, Any], warmup: int) -> SideSpeed:
    """Summarise the timings a side wrote to its JSON file."""
    ips, median, count = median_images_per_second(
        times["step_seconds"], times["batch_size"], warmup
    )
    return SideSpeed(name, ips, median, count, times["validation_knn_seconds"])


# ----------------------------------------------------------------------------- our side


def run_ours(args: argparse.Namespace) -> dict[str, Any]:
    """Time our trainer's step (in this process, after :func:`configure_for_training`)."""
    import torch
    import torch.nn.functional as F

    from snca_cli.runtime.metrics import knn_accuracy
    from snca_cli.runtime.scene_images import scan_scene_folder
    from snca_train.config import TrainConfig
    from snca_train.memory import MemoryBank
    from snca_train.network import ModelConfig, SceneEmbeddingNet
    from snca_train.speed import configure_for_training
    from snca_train.trainer import Trainer, epoch_batches, seed_everything
    from snca_train.training_data import ImageCache, TrainingData, decode_images

    console = Console(stderr=True)
    threads = configure_for_training(args.threads)
    seed_everything(0)
    listing = json.loads(args.items.read_text())
    folder = scan_scene_folder(args.data)
    items: list[str] = listing["items"]
    started = time.perf_counter()
    images, failed, reasons = decode_images(folder, items, args.image_size, 4, console)
    decode_seconds = time.perf_counter() - started
    if failed:
        raise SystemExit(f"unreadable training images: {reasons[0]}")
    index = {name: i for i, name in enumerate(folder.class_names)}
    labels = np.array([index[item.split("/", 1)[0]] for item in items], dtype=np.int64)
    train = ImageCache(images, labels, items)
    split = {"train": items, "val": items[:2], "test": []}
    data = TrainingData(folder, split, 0, train, ImageCache(images[:2], labels[:2], items[:2]), [])
    config = TrainConfig(
        data_dir=str(args.data),
        backbone=args.backbone,
        image_size=args.image_size,
        batch_size=args.batch_size,
        lr=args.lr,
        epochs=1,
        pretrained=False,
        threads=threads,
        precision=args.precision,
    )
    model_config = ModelConfig(args.backbone, len(folder.class_names), 128, 3, args.image_size)
    model = SceneEmbeddingNet(model_config, pretrained=False)
    with tempfile.TemporaryDirectory(prefix="snca-speed-") as run_dir:
        trainer = Trainer(config, Path(run_dir), data, model, console)
        initial = F.normalize(
            torch.randn(len(items), 128, generator=torch.Generator().manual_seed(0))
        )
        trainer.bank = MemoryBank(initial, trainer.labels)
        mu = config.memory_momentum.value(0, config.epochs)
        batches = epoch_batches(len(items), args.batch_size, trainer.generators["sampling"])
        seconds: list[float] = []
        for rows in batches[: args.steps]:
            step_started = time.perf_counter()
            trainer.train_step(rows, mu)
            seconds.append(time.perf_counter() - step_started)
    bank = trainer.bank.features.numpy()
    rng = np.random.default_rng(0)
    chosen = rng.integers(0, len(bank), VALIDATION_QUERIES)
    queries = bank[chosen] + rng.normal(0, 0.05, (VALIDATION_QUERIES, bank.shape[1]))
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    started = time.perf_counter()
    knn_accuracy(queries.astype(np.float32), labels[chosen], bank, labels, 10, len(index))
    knn_seconds = time.perf_counter() - started
    return {
        "step_seconds": seconds,
        "batch_size": args.batch_size,
        "threads": threads,
        "precision": args.precision,
        "validation_knn_seconds": knn_seconds,
        "validation_queries": VALIDATION_QUERIES,
        "memory_size": len(bank),
        "cache_images": len(items),
        "cache_decode_seconds": decode_seconds,
    }


# ----------------------------------------------------------------------------- driver


def run_side(command: list[str], env: dict[str, str], output: Path) -> dict[str, Any]:
    """Run one side in a fresh process and read the timings it wrote."""
    completed = subprocess.run(command, env=env, check=False)
    if completed.returncode != 0:
        raise SystemExit(f"{' '.join(command[:2])} failed with exit status {completed.returncode}")
    return json.loads(output.read_text())


def speed_table(sides: list[SideSpeed], ratios: dict[str, float]) -> Table:
    """The comparison as a rich table (``ratios``: our side's name -> ours / authors')."""
    shown = ", ".join(f"{name} {ratio:.2f}x" for name, ratio in ratios.items())
    table = Table(title=f"training speed / authors' loop: {shown} (target >= {TARGET_RATIO:g}x)")
    table.add_column("loop")
    table.add_column("images/s", justify="right")
    table.add_column("median step (s)", justify="right")
    table.add_column("timed steps", justify="right")
    table.add_column(f"validation kNN, {VALIDATION_QUERIES} queries (s)", justify="right")
    for side in sides:
        table.add_row(
            side.name,
            f"{side.images_per_second:.1f}",
            f"{side.median_step_seconds:.2f}",
            str(side.timed_steps),
            f"{side.validation_knn_seconds:.3f}",
        )
    return table


def compare(args: argparse.Namespace) -> dict[str, Any]:
    """Run both sides and return the JSON report."""
    from snca_cli.runtime.scene_images import make_split, scan_scene_folder

    console = Console()
    folder = scan_scene_folder(args.data)
    items = make_split(folder, 0)["train"]
    steps = args.warmup + args.steps
    with tempfile.TemporaryDirectory(prefix="snca-speed-") as folder_name:
        work = Path(folder_name)
        listing = work / "items.json"
        listing.write_text(json.dumps({"classes": folder.class_names, "items": items}))
        common = {
            "--items": listing,
            "--data": args.data,
            "--image-size": args.image_size,
            "--batch-size": args.batch_size,
            "--steps": steps,
            "--threads": args.threads or len(os.sched_getaffinity(0)),
            "--lr": args.lr,
            "--backbone": args.backbone,
        }
        console.print(f"authors' loop: {steps} steps of {args.batch_size} images ...")
        authors_json = work / "authors.json"
        authors = run_side(
            [
                sys.executable,
                str(AUTHORS_LOOP),
                *as_arguments({**common, "--workers": args.loader_workers, "--json": authors_json}),
            ],
            glibc_default_env(dict(os.environ)),
            authors_json,
        )
        ours_by_precision: dict[str, dict[str, Any]] = {}
        for precision in args.precisions.split(","):
            console.print(
                f"our trainer, {precision}: {steps} steps of {args.batch_size} images ..."
            )
            ours_json = work / f"ours-{precision}.json"
            ours_by_precision[precision] = run_side(
                [
                    sys.executable,
                    __file__,
                    *as_arguments(
                        {**common, "--side": "ours", "--precision": precision, "--json": ours_json}
                    ),
                ],
                dict(os.environ),
                ours_json,
            )
    authors_side = side_speed("authors'", authors, args.warmup)
    ours_sides = [
        side_speed(f"ours, {precision}", times, args.warmup)
        for precision, times in ours_by_precision.items()
    ]
    ratios = {
        side.name: side.images_per_second / authors_side.images_per_second for side in ours_sides
    }
    console.print(speed_table([*ours_sides, authors_side], ratios))
    ours = next(iter(ours_by_precision.values()))
    console.print(
        f"ours also decoded the {ours['cache_images']} training images into RAM once: "
        f"{ours['cache_decode_seconds']:.1f} s "
        f"({ours['cache_images'] / ours['cache_decode_seconds']:.0f} images/s), once per run, "
        "not per epoch"
    )
    return {
        "backbone": args.backbone,
        "image_size": args.image_size,
        "batch_size": args.batch_size,
        "warmup_steps": args.warmup,
        "loader_workers": args.loader_workers,
        "cpu_count": len(os.sched_getaffinity(0)),
        "sides": [asdict(side) for side in [*ours_sides, authors_side]],
        "ratios": ratios,
        "target_ratio": TARGET_RATIO,
        "ours_raw": ours_by_precision,
        "authors_raw": authors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="AID-like scene folder.")
    parser.add_argument("--steps", type=int, default=10, help="Timed steps per side.")
    parser.add_argument("--warmup", type=int, default=2, help="Untimed first steps per side.")
    parser.add_argument("--image-size", type=int, default=150)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--backbone", choices=BACKBONES, default="resnet18")
    parser.add_argument("--threads", type=int, default=0, help="Torch threads; 0 = all CPUs.")
    parser.add_argument(
        "--loader-workers",
        type=int,
        default=len(os.sched_getaffinity(0)),
        help="DataLoader workers of the authors' loop [default: the CPU count].",
    )
    parser.add_argument(
        "--precisions",
        default="fp32,bf16",
        help="Comma-separated precisions to time our trainer in (fp32, bf16).",
    )
    parser.add_argument("--json", type=Path, help="Write the report here.")
    parser.add_argument("--precision", default="fp32", help=argparse.SUPPRESS)
    parser.add_argument("--side", choices=["ours"], help=argparse.SUPPRESS)
    parser.add_argument("--items", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side == "ours":
        args.json.write_text(json.dumps(run_ours(args), indent=1))
        return
    report = compare(args)
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
