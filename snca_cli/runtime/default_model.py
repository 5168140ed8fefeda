"""The model that ships inside the package: snca's default for every ``--model`` option."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from snca_cli.errors import SncaError

#: File name of the shipped fp32 model (SNCA+CE, EfficientNet-Lite0, trained on AID at 150 px).
DEFAULT_MODEL_NAME = "snca-aid150-lite0.onnx"


def default_model_path() -> Path:
    """Where the shipped model lives inside the installed package."""
    return Path(str(resources.files("snca_cli") / "models" / DEFAULT_MODEL_NAME))


def resolve_model(path: Path | str | None, hint: str = "pass --model FILE") -> Path:
    """``path`` when given, else the shipped default model; a missing default is a one-line
    error ending in ``hint`` (how this command takes a model)."""
    if path is not None:
        return Path(path)
    model = default_model_path()
    if not model.is_file():
        raise SncaError(f"the default model {DEFAULT_MODEL_NAME} is not installed; {hint}")
    return model
