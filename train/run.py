"""From ``snca train`` options to a run: the configuration of a new or resumed run and its
folder."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from snca_cli.errors import SncaError
from snca_cli.runtime.atomic import (
    check_outside_output_folders,
    output_folder_kind,
    real_output,
)
from snca_cli.runtime.scene_images import SPLIT_FILE
from snca_train.augment import recipe
from snca_train.checkpoint import (
    BEST_CHECKPOINT,
    LAST_CHECKPOINT,
    check_architecture,
    read_checkpoint,
)
from snca_train.config import TrainConfig
from snca_train.history import HISTORY_JSON, HISTORY_PNG
from snca_train.memory import MomentumSchedule
from snca_train.network import ModelConfig
from snca_train.onnx_init import is_onnx_init, onnx_init_defaults

#: Files a run writes; a forced new run in an old folder removes these first.
RUN_FILES = (LAST_CHECKPOINT, BEST_CHECKPOINT, SPLIT_FILE, HISTORY_JSON, HISTORY_PNG)
#: Options that are fields of :class:`LossConfig` rather than of :class:`TrainConfig`.
LOSS_OPTIONS = (
    "loss",
    "lambda_snca",
    "sigma",
    "triplet_margin",
    "miner",
    "pos_margin",
    "neg_margin",
    "distill",
    "distill_temperature",
)
#: Options that set fields of :class:`AugmentConfig` (on top of the ``augment`` recipe).
AUGMENT_OPTIONS = (
    "crop_scale",
    "resolution_factor",
    "blur_sigma",
    "brightness",
    "contrast",
    "saturation",
)
ARCHITECTURE_OPTIONS = ("backbone", "embedding_dim", "image_size", "backbone_size")


def even_schedule(values: tuple[float, ...]) -> MomentumSchedule:
    """``values`` spread evenly over training: value ``i`` of ``n`` from fraction ``i / n`` on."""
    return MomentumSchedule(tuple(values), tuple(i / len(values) for i in range(len(values))))


def apply_options(config: TrainConfig, options: dict[str, Any]) -> TrainConfig:
    """``config`` with the given options (``None`` values are ignored) set. ``augment`` names
    a recipe whose values replace the augmentation; the :data:`AUGMENT_OPTIONS` then change
    single values of it."""
    given = {key: value for key, value in options.items() if value is not None}
    loss = replace(config.loss, **{k: v for k, v in given.items() if k in LOSS_OPTIONS})
    augment = recipe(given["augment"]) if "augment" in given else config.augment
    augment = replace(augment, **{k: v for k, v in given.items() if k in AUGMENT_OPTIONS})
    rest = {
        k: v
        for k, v in given.items()
        if k not in LOSS_OPTIONS and k not in AUGMENT_OPTIONS and k != "augment"
    }
    if "memory_momentum" in rest:
        rest["memory_momentum"] = even_schedule(tuple(rest["memory_momentum"]))
    return replace(config, loss=loss, augment=augment, **rest)


def option_value(config: TrainConfig, key: str) -> Any:
    """The value of the ``snca train`` option ``key`` in ``config``."""
    if key in LOSS_OPTIONS:
        return getattr(config.loss, key)
    if key in AUGMENT_OPTIONS:
        return getattr(config.augment, key)
    if key == "augment":
        return config.augment.recipe
    return getattr(config, key)


def init_defaults(init: str) -> dict[str, Any]:
    """The options a new run takes from its ``--init`` unless given: the architecture of the
    network it names (a checkpoint, run folder or exported model), and for an exported model
    the fine-tuning learning rate; a bad ``--init`` fails here, before any image is decoded."""
    if is_onnx_init(init):
        return onnx_init_defaults(init)
    stored = read_checkpoint(init)["model_config"]
    return {key: stored[key] for key in ARCHITECTURE_OPTIONS if key in stored}


def new_run_config(data_dir: Path, options: dict[str, Any]) -> TrainConfig:
    """The configuration of a new run: defaults overridden by the given options."""
    config = apply_options(TrainConfig(data_dir=str(Path(data_dir).resolve())), options)
    config.validate()
    return config


def resumed_config(
    stored: TrainConfig, checkpoint: dict[str, Any], options: dict[str, Any], source: Path
) -> TrainConfig:
    """The stored configuration of a resumed run; given options must agree with it, except
    ``--epochs`` (to train longer; the learning-rate schedule then stretches to the new length),
    ``--workers``/``--threads``/``--device`` (speed only) and ``--validate-every``."""
    given = {key: value for key, value in options.items() if value is not None}
    wanted_architecture = {k: given[k] for k in ARCHITECTURE_OPTIONS if k in given}
    if wanted_architecture:
        stored_model = ModelConfig.from_dict(checkpoint["model_config"])
        check_architecture(checkpoint, replace(stored_model, **wanted_architecture), str(source))
    adjustable = {
        k: given.pop(k)
        for k in ("epochs", "workers", "threads", "validate_every", "device")
        if k in given
    }
    for key in ARCHITECTURE_OPTIONS:
        given.pop(key, None)
    candidate = apply_options(stored, given)
    for key in given:
        before, after = option_value(stored, key), option_value(candidate, key)
        if before != after:
            raise SncaError(
                f"{source} was trained with {_describe(key, before)}, not "
                f"{_describe(key, after)}; a resumed run keeps its settings "
                "(start a new run to change them)"
            )
    config = apply_options(stored, adjustable)
    if config.epochs < int(checkpoint["epoch"]):
        raise SncaError(
            f"{source} has already trained {checkpoint['epoch']} epochs; --epochs "
            f"{config.epochs} is fewer"
        )
    config.validate()
    return config


def _describe(key: str, value: Any) -> str:
    """An option as the user typed it, e.g. ``--loss snca+ce`` or ``--no-pretrained``."""
    if key == "pretrained":
        return "ImageNet weights" if value else "--no-pretrained"
    if key == "skip_unreadable":
        return "--skip-unreadable" if value else "no --skip-unreadable"
    if isinstance(value, MomentumSchedule):
        value = ",".join(f"{v:g}" for v in value.values)
    return f"--{key.replace('_', '-')} {value}"


def default_run_dir() -> Path:
    """``runs/<local date-time>``."""
    return Path("runs") / time.strftime("%Y%m%d-%H%M%S")


def check_new_run_dir(output: Path | None, force: bool) -> Path:
    """The folder of a new run: a new or empty folder, or a non-empty one only with ``force``.
    Checked before the (long) decoding of the data; nothing is created yet."""
    run_dir = Path(output) if output is not None else default_run_dir()
    if run_dir.exists() and not run_dir.is_dir():
        raise SncaError(f"output {run_dir} exists and is not a folder")
    check_run_dir_placement(run_dir)
    if run_dir.is_dir() and any(run_dir.iterdir()) and not force:
        raise SncaError(
            f"output folder {run_dir} exists and is not empty; use --force to overwrite it "
            "or --resume to continue its run"
        )
    return run_dir


def check_run_dir_placement(run_dir: Path) -> None:
    """Refuse a run folder that is, or lies inside, a folder snca wrote as another output (an
    index, an evaluation report, a chips folder): its checkpoints would land among that
    output's files."""
    real = real_output(run_dir, folder=True)
    kind = output_folder_kind(real) if real.is_dir() else None
    if kind is not None:
        raise SncaError(f"output folder {run_dir} is {kind}; give the run a folder of its own")
    check_outside_output_folders(run_dir, real)


def prepare_new_run_dir(run_dir: Path) -> None:
    """Create the run folder, removing the files of an earlier run in it (other files stay)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    for name in RUN_FILES:
        (run_dir / name).unlink(missing_ok=True)


def resumed_run_dir(checkpoint_path: Path, output: Path | None) -> Path:
    """Where a resumed run writes: ``output``, or the folder of the checkpoint."""
    run_dir = Path(output) if output is not None else checkpoint_path.parent
    if run_dir.exists() and not run_dir.is_dir():
        raise SncaError(f"output {run_dir} exists and is not a folder")
    check_run_dir_placement(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir
