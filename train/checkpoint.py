"""Checkpoints: plain dicts of tensors and Python primitives, readable with
``torch.load(path, weights_only=True)``.

Every checkpoint holds at least ``format`` (:data:`CHECKPOINT_FORMAT`), ``model_config``,
``class_names``, ``model_state``, ``image_size``, ``input_bands``, ``split_seed``, ``data_dir``
and ``epoch`` (epochs completed). The trainer adds its state (optimizer, memory, random states,
history) so that ``--resume`` continues exactly like an uninterrupted run.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from snca_cli import __version__
from snca_cli.errors import SncaError, first_line
from snca_train.network import ModelConfig, SceneEmbeddingNet

CHECKPOINT_FORMAT = "snca-checkpoint-v1"
LAST_CHECKPOINT = "last.pt"
BEST_CHECKPOINT = "best.pt"
REQUIRED_KEYS = ("model_config", "class_names", "model_state", "epoch")


def make_checkpoint(
    model: SceneEmbeddingNet,
    class_names: list[str],
    split_seed: int,
    data_dir: str,
    epoch: int,
    **training_state: Any,
) -> dict[str, Any]:
    """The checkpoint dict of ``model`` after ``epoch`` completed epochs, plus training state."""
    return {
        "format": CHECKPOINT_FORMAT,
        "snca_version": __version__,
        "model_config": model.config.to_dict(),
        "class_names": list(class_names),
        "model_state": {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()},
        "image_size": model.config.image_size,
        "input_bands": model.config.input_bands,
        "split_seed": split_seed,
        "data_dir": data_dir,
        "epoch": epoch,
        **training_state,
    }


def save_checkpoint(path: Path, checkpoint: dict[str, Any]) -> None:
    """Write ``checkpoint`` atomically (temporary sibling, then rename)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        torch.save(checkpoint, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def resolve_checkpoint(path: Path | str) -> Path:
    """A checkpoint file: ``path`` itself, or ``path/last.pt`` for a run folder."""
    path = Path(path)
    if path.is_dir():
        path = path / LAST_CHECKPOINT
    if not path.is_file():
        raise SncaError(f"checkpoint {path} does not exist")
    return path


def read_checkpoint(path: Path | str) -> dict[str, Any]:
    """Load a checkpoint (a file or a run folder) safely; SncaError for anything else."""
    path = resolve_checkpoint(path)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for foreign or corrupt files
        first = first_line(exc)
        raise SncaError(f"{path} is not a readable snca checkpoint: {first}") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise SncaError(f"{path} is not an snca checkpoint (no format {CHECKPOINT_FORMAT!r})")
    missing = [key for key in REQUIRED_KEYS if key not in checkpoint]
    if missing:
        raise SncaError(f"checkpoint {path} lacks {', '.join(missing)}")
    return checkpoint


def load_model(path: Path | str) -> tuple[SceneEmbeddingNet, dict[str, Any]]:
    """The network of a checkpoint (file or run folder), in eval mode, and the checkpoint dict."""
    checkpoint = read_checkpoint(path)
    config = ModelConfig.from_dict(checkpoint["model_config"])
    model = SceneEmbeddingNet(config, pretrained=False)
    try:
        model.load_state_dict(checkpoint["model_state"], strict=True)
    except RuntimeError as exc:
        first = first_line(exc)
        raise SncaError(
            f"checkpoint {path} does not match its model configuration: {first}"
        ) from None
    model.eval()
    return model, checkpoint


def architecture_differences(
    checkpoint: dict[str, Any], config: ModelConfig, ignore: tuple[str, ...] = ()
) -> list[str]:
    """``"key stored vs wanted"`` for each setting of ``config`` (but ``ignore``) that the
    checkpoint's network has otherwise (a setting it lacks counts as ``None``)."""
    stored = checkpoint["model_config"]
    wanted = config.to_dict()
    return [
        f"{key} {stored.get(key)} vs {wanted[key]}"
        for key in wanted
        if key not in ignore and stored.get(key) != wanted[key]
    ]


#: What a network started from another run's checkpoint (``--init``) may change.
RESIZABLE_OPTIONS = ("image_size", "backbone_size")
#: The class head's parameters in a network's state dict (new for other classes).
HEAD_PREFIX = "classifier."


def network_from_checkpoint(
    path: Path | str, config: ModelConfig, class_names: list[str]
) -> tuple[SceneEmbeddingNet, bool]:
    """A new network of ``config`` holding the weights of the checkpoint ``path`` (a file or a
    run folder): backbone and embedding, and the classifier when its classes are
    ``class_names`` in order (other classes get a new head); and whether the head is the
    checkpoint's. Only the input and backbone sizes may differ from the checkpoint's network."""
    checkpoint = read_checkpoint(path)
    differences = architecture_differences(
        checkpoint, config, ignore=(*RESIZABLE_OPTIONS, "num_classes")
    )
    if differences:
        raise SncaError(f"--init {path} holds another network ({'; '.join(differences)})")
    model = SceneEmbeddingNet(config, pretrained=False)
    state = dict(checkpoint["model_state"])
    head_kept = list(checkpoint["class_names"]) == list(class_names)
    if not head_kept:
        state = {k: v for k, v in state.items() if not k.startswith(HEAD_PREFIX)}
        state.update({f"{HEAD_PREFIX}{k}": v for k, v in model.classifier.state_dict().items()})
    model.load_state_dict(state, strict=True)
    return model, head_kept


def check_architecture(checkpoint: dict[str, Any], config: ModelConfig, source: str) -> None:
    """Refuse to resume a checkpoint whose architecture differs from ``config``."""
    differences = architecture_differences(checkpoint, config)
    if differences:
        raise SncaError(
            f"{source} holds another architecture ({'; '.join(differences)}); "
            "resume it with its own settings or start a new run"
        )


def capture_random_state() -> dict[str, Any]:
    """The global Python, NumPy and torch random states, as checkpoint-safe values."""
    kind, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
        "torch": torch.get_rng_state(),
    }


def restore_random_state(state: dict[str, Any]) -> None:
    """Restore what :func:`capture_random_state` captured."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy_state = state["numpy"]
    np.random.set_state(
        (
            numpy_state["kind"],
            numpy_state["keys"].numpy().astype(np.uint32),
            numpy_state["position"],
            numpy_state["has_gauss"],
            numpy_state["cached_gaussian"],
        )
    )
    torch.set_rng_state(state["torch"])
