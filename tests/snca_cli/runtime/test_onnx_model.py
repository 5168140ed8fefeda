"""OnnxModel: a real onnxruntime session checked against the snca contract."""

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from snca_cli.errors import SncaError
from snca_cli.runtime.onnx_model import OnnxModel, choose_providers
from tests.helpers.onnx_models import band_mean_reference, make_band_mean_model


def test_runs_and_matches_reference(tmp_path: Path) -> None:
    path = make_band_mean_model(tmp_path / "m.onnx", bands=3, tile_size=8, embedding_dim=5)
    model = OnnxModel(path)
    assert model.metadata.tile_size == 8 and model.metadata.embedding_dim == 5
    assert model.provider_name == "CPU"
    images = np.random.default_rng(0).random((4, 3, 8, 8), dtype=np.float32)
    out = model.run(images)
    embedding, probabilities = band_mean_reference(images, classes=3, embedding_dim=5)
    np.testing.assert_allclose(out.embedding, embedding, atol=1e-6)
    np.testing.assert_allclose(out.probabilities, probabilities, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(out.embedding, axis=1), 1.0, atol=1e-6)
    assert len(model.sha256) == 64


def test_session_threads_do_not_spin(tmp_path: Path) -> None:
    model = OnnxModel(make_band_mean_model(tmp_path / "m.onnx"), threads=1)
    options = model.session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert options.intra_op_num_threads == 1


def test_wrong_band_count_is_refused(tmp_path: Path) -> None:
    model = OnnxModel(make_band_mean_model(tmp_path / "m.onnx", bands=4, tile_size=8))
    with pytest.raises(SncaError, match="takes 4 band"):
        model.run(np.zeros((1, 3, 8, 8), dtype=np.float32))


def test_model_without_metadata_names_keys(tmp_path: Path) -> None:
    path = make_band_mean_model(tmp_path / "bare.onnx", with_metadata=False)
    with pytest.raises(SncaError, match="lacks the snca metadata keys: model_type, class_names"):
        OnnxModel(path)


def test_not_a_model(tmp_path: Path) -> None:
    path = tmp_path / "junk.onnx"
    path.write_bytes(b"\x00junk")
    with pytest.raises(SncaError, match="cannot load model"):
        OnnxModel(path)
    with pytest.raises(SncaError, match="does not exist"):
        OnnxModel(tmp_path / "missing.onnx")


def test_unknown_provider() -> None:
    with pytest.raises(SncaError, match="not available"):
        choose_providers("NoSuchThing")
    assert choose_providers("auto")[-1] == "CPUExecutionProvider"


def test_non_finite_model_outputs_are_refused(tmp_path: Path) -> None:
    # an infinite logit scale makes softmax(inf - inf) = NaN for every tile
    model = OnnxModel(make_band_mean_model(tmp_path / "m.onnx", logit_scale=float("inf")))
    with pytest.raises(SncaError, match="non-finite probabilities .* for 2 of 2 inputs"):
        model.run(np.full((2, 3, 32, 32), 0.5, np.float32))


def _edited(path: Path, class_names: dict[str, str], dynamic: bool) -> Path:
    """The model at ``path`` with other class names in its metadata and, with ``dynamic``, its
    outputs' widths declared dynamic (named), as some exporters write them: then only a run
    shows the real width."""
    model = onnx.load(path)
    for prop in model.metadata_props:
        if prop.key == "class_names":
            prop.value = json.dumps(class_names)
    if dynamic:
        for output in model.graph.output:
            output.type.tensor_type.shape.dim[1].dim_param = "width"
    onnx.save(model, path)
    return path


@pytest.mark.parametrize("dynamic", [False, True], ids=["fixed width", "dynamic width"])
def test_class_names_that_do_not_match_the_probabilities_are_refused(
    tmp_path: Path, dynamic: bool
) -> None:
    # three probabilities per tile, two class names: tiles of the third class would have no name
    path = make_band_mean_model(tmp_path / "m.onnx", class_names=["a", "b", "c"])
    _edited(path, {"0": "water", "1": "forest"}, dynamic)
    message = "gives 3 probabilities value.s. per tile but its metadata declares 2 .class names."
    with pytest.raises(SncaError, match=message):
        OnnxModel(path).run(np.full((2, 3, 32, 32), 0.5, np.float32))
