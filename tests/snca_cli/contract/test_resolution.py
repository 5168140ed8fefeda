"""The resolution sanity rule: a warning beyond 4x the training resolutions, none within."""

from __future__ import annotations

import pytest

from snca_cli.contract.metadata import ModelMetadata
from snca_cli.contract.resolution import FACTOR, resolution_warning
from snca_cli.errors import SncaError


def _metadata(trained_at: tuple[float, float] | None) -> ModelMetadata:
    return ModelMetadata(
        class_names=["a"], tile_size=8, embedding_dim=2, training_resolution_m=trained_at
    )


@pytest.mark.parametrize("pixel", [0.125, 0.5, 2.0, 8.0, 32.0])
def test_no_warning_within_four_times_the_training_range(pixel: float) -> None:
    assert resolution_warning(_metadata((0.5, 8.0)), pixel) is None


def test_warning_names_side_range_and_rule() -> None:
    coarse = resolution_warning(_metadata((0.5, 8.0)), 300.0)
    assert coarse == (
        "the raster's 300 m/px is far coarser than the 0.5-8 m/px the model was trained on "
        "(more than 4x outside): its classes and similarities will mean little"
    )
    fine = resolution_warning(_metadata((0.5, 8.0)), 0.5 / FACTOR * 0.99)
    assert fine is not None and "far finer" in fine
    assert resolution_warning(_metadata((0.5, 8.0)), 8.0 * FACTOR * 1.01) is not None


def test_models_without_training_resolution_get_no_warning() -> None:
    assert resolution_warning(_metadata(None), 300.0) is None


def test_training_resolution_round_trips_and_is_checked() -> None:
    props = _metadata((0.5, 8.0)).to_props()
    assert props["training_resolution_m"] == "[0.5, 8.0]"
    assert ModelMetadata.from_props(props).training_resolution_m == (0.5, 8.0)
    assert "training_resolution_m" not in _metadata(None).to_props()
    with pytest.raises(SncaError, match="training_resolution_m"):
        ModelMetadata.from_props({**props, "training_resolution_m": "[8, 0.5]"})


def test_the_shipped_model_records_aid_resolutions() -> None:
    from snca_cli.runtime.default_model import default_model_path
    from snca_cli.runtime.onnx_model import OnnxModel

    assert OnnxModel(default_model_path()).metadata.training_resolution_m == (0.5, 8.0)
