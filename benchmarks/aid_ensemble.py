"""An ensemble of exported models evaluated like one: each image's unit embeddings averaged over
the models and renormalised (probabilities averaged), database and queries alike, optionally
with test-time augmentation (``--tta``: the 8 flips and quarter turns of each image).

An experiment for docs/results.md, not a model snca ships (the runtime embeds each tile once,
with one network):

    python benchmarks/aid_ensemble.py --data AID --split runs/aid-table/snca-ce-bank/split.json \\
        --tta -o runs/ensemble model_a.onnx model_b.onnx
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from rich.console import Console

from snca_cli.cli.tables import metrics_table
from snca_cli.errors import SncaError
from snca_cli.runtime.onnx_model import ModelOutputs
from snca_cli.tasks.evaluate import (
    Embedder,
    evaluate_model,
    open_embedder,
    resolve_split,
    write_report,
)


def unit(rows: np.ndarray) -> np.ndarray:
    """``rows`` scaled to unit length."""
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


def ensemble(members: list[Embedder]) -> Embedder:
    """One embedder running every member on each batch: the mean of their unit embeddings,
    renormalised, and the mean of their probabilities. The members must take the same input."""
    if len(members) < 2:
        raise SncaError("an ensemble needs at least two models")
    first = members[0]
    for other in members[1:]:
        for what in ("class_names", "image_size", "input_bands", "input_scale"):
            if getattr(other, what) != getattr(first, what):
                raise SncaError(
                    f"{other.path.name} and {first.path.name} differ in {what.replace('_', ' ')}"
                )

    def run(images: np.ndarray) -> ModelOutputs:
        outputs = [member.run(images) for member in members]
        embedding = unit(np.mean([unit(out.embedding) for out in outputs], axis=0))
        probabilities = np.mean([out.probabilities for out in outputs], axis=0)
        return ModelOutputs(embedding=embedding.astype(np.float32), probabilities=probabilities)

    return Embedder(
        path=Path("+".join(member.path.stem for member in members)),
        kind="ensemble",
        class_names=first.class_names,
        image_size=first.image_size,
        input_bands=first.input_bands,
        input_scale=first.input_scale,
        backbone="+".join(member.backbone for member in members),
        split_seed=first.split_seed,
        run=run,
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", type=Path, help="Two or more .onnx files.")
    parser.add_argument("--data", type=Path, required=True, help="The scene folder.")
    parser.add_argument("--split", type=Path, required=True, help="The split.json to evaluate.")
    parser.add_argument("--tta", action="store_true", help="Average over 8 flips/turns too.")
    parser.add_argument("-o", "--output", type=Path, help="Folder for metrics.json.")
    parser.add_argument("--force", action="store_true", help="Overwrite --output.")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    console = Console()
    try:
        embedder = ensemble([open_embedder(path) for path in args.models])
        split = resolve_split(embedder, args.data, args.split)
        report = evaluate_model(embedder, args.data, split, tta=args.tta)
        report["members"] = [path.name for path in args.models]
        if args.output is not None:
            write_report(report, args.output, force=args.force)
    except SncaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    title = f"ensemble of {len(args.models)}{' with TTA' if args.tta else ''}"
    console.print(metrics_table(report, f"{title}: {len(split.test)} test queries"))


if __name__ == "__main__":
    main()
