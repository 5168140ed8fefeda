"""`snca export CHECKPOINT -o model.onnx`: the ONNX model, its model card, optionally int8."""

from __future__ import annotations

from pathlib import Path

import typer

from snca_cli.cli.support import (
    console,
    exit_on_error,
    is_interactive,
    progress_bars,
    require_train_extra,
)
from snca_cli.cli.tables import metrics_table
from snca_cli.contract.metadata import resolution_cm_from_m
from snca_cli.tasks.evaluate import DEFAULT_BATCH_SIZE


def register(app: typer.Typer) -> None:
    """Add the command to the snca app."""

    @app.command("export")
    @exit_on_error
    def export(
        checkpoint: Path = typer.Argument(..., help="A training checkpoint (.pt) of snca train."),
        output: Path = typer.Option(..., "--output", "-o", help="The ONNX file to write."),
        data: Path | None = typer.Option(
            None,
            "--data",
            help="The training scene folder: evaluates the exported model on its test split "
            "(metrics go into the metadata and card) and calibrates --int8.",
        ),
        split: Path | None = typer.Option(
            None, "--split", help="split.json to use (default: the one beside the checkpoint)."
        ),
        resolution: float | None = typer.Option(
            None,
            "--resolution",
            help="Ground resolution of the training scenes, m/px (written as the model's "
            "`resolution` in cm/px; default: that of chips cut by `snca chips --resolution`, "
            "else left out).",
        ),
        training_resolution: tuple[float, float] | None = typer.Option(
            None,
            "--training-resolution",
            help="Ground resolutions of the training scenes, MIN MAX m/px (AID: 0.5 8): written "
            "as `training_resolution_m`; classify and index warn on rasters far outside.",
        ),
        overlap_percent: float = typer.Option(
            0.0, "--overlap-percent", help="Default tile overlap for the runtime, percent."
        ),
        int8: bool = typer.Option(
            False, "--int8", help="Also write `STEM.int8.onnx` (static QDQ quantization)."
        ),
        calibration_images: int = typer.Option(
            1000, "--calibration-images", help="Training images calibrating --int8."
        ),
        tta: bool = typer.Option(
            False,
            "--tta",
            help="Average the outputs over the 8 flips and quarter turns of each tile inside "
            "the graph (orientation-invariant embeddings; 8x the cost per tile).",
        ),
        batch_size: int = typer.Option(DEFAULT_BATCH_SIZE, "--batch-size", min=1),
        force: bool = typer.Option(False, "--force", help="Overwrite existing outputs."),
    ) -> None:
        """Export a checkpoint to one ONNX file (input `image` N x bands x H x W in [0, 1];
        outputs `embedding`, `probabilities`) with snca metadata and a model card."""
        require_train_extra()
        from snca_export.quantize import SPEED_RUNS
        from snca_export.workflow import ExportOptions, export_checkpoint

        with progress_bars(is_interactive()) as progress:
            result = export_checkpoint(
                ExportOptions(
                    checkpoint=checkpoint,
                    output=output,
                    data_dir=data,
                    split_file=split,
                    resolution_cm=(
                        None if resolution is None else resolution_cm_from_m(resolution)
                    ),
                    training_resolution_m=training_resolution,
                    overlap_percent=overlap_percent,
                    int8=int8,
                    calibration_images=calibration_images,
                    orientations=8 if tta else 1,
                    batch_size=batch_size,
                    force=force,
                    progress=progress,
                )
            )
        console.print(
            f"wrote {result.model} (largest difference from the checkpoint: {result.parity:.1e})"
        )
        if result.metrics:
            report = {"metrics": result.metrics}
            console.print(metrics_table(report, f"test metrics ({result.metrics_source})"))
        if result.int8 is not None:
            q = result.int8
            console.print(
                f"wrote {result.int8_model}: {q['int8_images_per_second']:.1f} images/s int8 vs "
                f"{q['fp32_images_per_second']:.1f} fp32 (CPU, batch {q['speed_batch']}, median "
                f"of {SPEED_RUNS} runs)"
            )
            if q["knn@10_fp32"] is not None:
                change = 100 * (q["knn@10_int8"] - q["knn@10_fp32"])
                console.print(
                    f"kNN@10 accuracy: {100 * q['knn@10_fp32']:.2f} % fp32, "
                    f"{100 * q['knn@10_int8']:.2f} % int8 ({change:+.2f} points)"
                )
            else:
                console.print("kNN@10 change not measured: pass --data DATA_DIR to measure it")
        console.print(f"wrote {result.card_markdown} and {result.card_json}")
