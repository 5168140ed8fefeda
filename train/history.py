"""The per-epoch record of a run: ``history.json`` and its plot ``history.png``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

HISTORY_JSON = "history.json"
HISTORY_PNG = "history.png"
#: Per-epoch keys that are loss parts (plotted together).
LOSS_KEYS = ("loss", "snca", "ce", "triplet", "contrastive")


def write_history(run_dir: Path, epochs: list[dict[str, Any]]) -> None:
    """Write ``history.json`` and ``history.png`` into ``run_dir`` (each atomically)."""
    tmp = run_dir / f".{HISTORY_JSON}.tmp-{os.getpid()}"
    tmp.write_text(json.dumps({"epochs": epochs}, indent=1))
    os.replace(tmp, run_dir / HISTORY_JSON)
    plot_history(epochs, run_dir / HISTORY_PNG)


def plot_history(epochs: list[dict[str, Any]], path: Path) -> None:
    """Loss parts (left) and validation kNN accuracy (right, the validated epochs) against the
    epoch."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(10, 4), layout="constrained")
    losses, accuracy = figure.subplots(1, 2)
    numbers = [record["epoch"] for record in epochs]
    for key in LOSS_KEYS:
        if any(key in record for record in epochs):
            losses.plot(numbers, [record.get(key) for record in epochs], marker="o", label=key)
    losses.set_xlabel("epoch")
    losses.set_ylabel("training loss (epoch mean)")
    losses.legend()
    knn_key = next((k for k in epochs[0] if k.startswith("val_knn")), None) if epochs else None
    if knn_key is not None:
        validated = [record for record in epochs if record[knn_key] is not None]
        accuracy.plot(
            [record["epoch"] for record in validated],
            [record[knn_key] for record in validated],
            marker="o",
            color="C3",
        )
        accuracy.set_ylabel(f"validation {knn_key.removeprefix('val_').replace('knn', 'kNN@')}")
    accuracy.set_xlabel("epoch")
    accuracy.set_ylim(0.0, 1.02)
    for axes in (losses, accuracy):
        axes.grid(alpha=0.3)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}.png")
    figure.savefig(tmp, dpi=100)
    os.replace(tmp, path)
