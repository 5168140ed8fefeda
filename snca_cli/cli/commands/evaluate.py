"""`snca evaluate MODEL DATA_DIR`: kNN, retrieval and clustering metrics on the test split."""

from __future__ import annotations

from pathlib import Path

import typer

from snca_cli.cli.support import console, exit_on_error, is_interactive, progress_bars
from snca_cli.cli.tables import metrics_table
from snca_cli.tasks.evaluate import (
    CONFUSION_FILE,
    DEFAULT_BATCH_SIZE,
    METRICS_FILE,
    check_report_folder,
    default_output_dir,
    evaluate_model,
    open_embedder,
    resolve_split,
    write_report,
)


def register(app: typer.Typer) -> None:
    """Add the command to the snca app."""

    @app.command("evaluate")
    @exit_on_error
    def evaluate(
        model: Path = typer.Argument(
            ...,
            help="An exported .onnx model, or a training checkpoint (.pt; needs torch).",
        ),
        data_dir: Path = typer.Argument(..., help="The scene folder: `DATA_DIR/CLASS/IMAGE`."),
        split: Path | None = typer.Option(
            None,
            "--split",
            help="split.json to use (default: the one beside the model, else the model's seed).",
        ),
        output: Path | None = typer.Option(
            None,
            "--output",
            "-o",
            help="Output folder. Default: `NAME-eval/` beside the model "
            "(NAME: its file name without suffix).",
        ),
        batch_size: int = typer.Option(DEFAULT_BATCH_SIZE, "--batch-size", min=1),
        tta: bool = typer.Option(
            False, "--tta", help="Average embeddings over the 8 flips/quarter turns (8x slower)."
        ),
        provider: str = typer.Option("auto", help="onnxruntime provider for .onnx models."),
        force: bool = typer.Option(False, "--force", help="Overwrite an existing output folder."),
    ) -> None:
        """Embed the training split (database) and test split (queries) and report kNN@1/5/10,
        mAP@20/50/100, P@1/10, NMI and clustering accuracy; writes metrics.json and
        confusion.png."""
        output_dir = output if output is not None else default_output_dir(model)
        check_report_folder(output_dir, force)
        embedder = open_embedder(model, provider=provider)
        chosen = resolve_split(embedder, data_dir, split)
        if not chosen.same_classes(embedder):
            console.print(
                f"the folder's {len(chosen.classes(embedder))} classes are not the model's "
                f"{len(embedder.class_names)}: embedding metrics only (kNN against the folder's "
                "own training split, retrieval, clustering), no classifier accuracy",
                highlight=False,
            )
        with progress_bars(is_interactive()) as progress:
            report = evaluate_model(
                embedder, data_dir, chosen, batch_size=batch_size, tta=tta, progress=progress
            )
        write_report(report, output_dir, force=force)
        title = (
            f"{model.name}: {len(chosen.test)} test queries vs {len(chosen.train)} training "
            f"images ({chosen.source})"
        )
        console.print(metrics_table(report, title))
        console.print(f"wrote {output_dir / METRICS_FILE} and {output_dir / CONFUSION_FILE}")
