"""Which model copy runs (fp32 or its int8 copy), and the fp32 re-check of close int8 tiles.

The "int8 copy" of these tests is a band-mean model with a 10x smaller logit scale: its
probabilities are flatter, so a test can tell from a tile's probabilities which copy answered.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from snca_cli.errors import SncaError
from snca_cli.runtime.onnx_model import OnnxModel, class_margin
from snca_cli.runtime.precision import (
    RECHECK_MARGIN,
    choose_precision,
    int8_copy,
    int8_instructions,
)
from tests.helpers.onnx_models import band_mean_reference, make_band_mean_model

VNNI = "AVX-512 VNNI"


@pytest.fixture
def pair(tmp_path: Path) -> Path:
    """An fp32 band-mean model (logit scale 10) and its "int8 copy" (logit scale 1) beside it."""
    fp32 = make_band_mean_model(tmp_path / "m.onnx", tile_size=8)
    make_band_mean_model(int8_copy(fp32), tile_size=8, logit_scale=1.0)
    return fp32


def test_auto_takes_the_int8_copy_only_on_the_cpu_with_int8_instructions(pair: Path) -> None:
    choice = choose_precision(pair, "auto", "CPU", VNNI)
    assert (choice.precision, choice.run_path, choice.check_path) == ("int8", int8_copy(pair), pair)
    assert choice.describe() == (
        f"int8 (auto: this CPU has {VNNI}; tiles whose two best classes are closer than "
        f"{RECHECK_MARGIN} re-checked in fp32)"
    )
    slow_int8 = choose_precision(pair, "auto", "CPU", None)
    assert (slow_int8.precision, slow_int8.run_path) == ("fp32", pair)
    assert slow_int8.reason == "auto: this CPU has no VNNI/AMX int8 instructions"
    gpu = choose_precision(pair, "auto", "CUDA", VNNI)
    assert (gpu.precision, gpu.reason) == ("fp32", "auto: the CUDA provider runs fp32")


def test_auto_without_an_int8_copy_runs_fp32_and_int8_asks_for_one(tmp_path: Path) -> None:
    alone = make_band_mean_model(tmp_path / "alone.onnx")
    choice = choose_precision(alone, "auto", "CPU", VNNI)
    assert (choice.precision, choice.reason) == (
        "fp32",
        "auto: no int8 copy alone.int8.onnx beside it",
    )
    with pytest.raises(SncaError, match=r"has no int8 copy alone.int8.onnx beside it; write one"):
        choose_precision(alone, "int8", "CPU", VNNI)
    with pytest.raises(SncaError, match="precision must be one of auto, fp32, int8; got 'bf16'"):
        choose_precision(alone, "bf16", "CPU", VNNI)


def test_a_named_int8_copy_is_rechecked_by_its_original_or_runs_alone(pair: Path) -> None:
    named = choose_precision(int8_copy(pair), "auto", "CPU", None)
    assert (named.precision, named.run_path, named.check_path) == ("int8", int8_copy(pair), pair)
    assert choose_precision(int8_copy(pair), "fp32", "CPU", None).run_path == pair
    pair.unlink()
    alone = choose_precision(int8_copy(pair), "auto", "CPU", None)
    assert (alone.precision, alone.check_path) == ("int8", None)
    assert "re-checked" not in alone.describe()
    with pytest.raises(SncaError, match="its fp32 original m.onnx is not beside it"):
        choose_precision(int8_copy(pair), "fp32", "CPU", None)


def test_int8_tiles_with_close_classes_take_the_fp32_outputs(pair: Path) -> None:
    model = OnnxModel(pair, precision="int8")
    assert model.precision == "int8" and model.path == pair
    # band means (0.9, 0.1, 0.1): int8 margin 0.29, kept; (0.5, 0.45, 0.1): margin 0.02, re-checked
    means = np.array([[0.9, 0.1, 0.1], [0.5, 0.45, 0.1]], np.float32)
    images = np.broadcast_to(means[:, :, None, None], (2, 3, 8, 8)).copy()
    int8_embedding, int8_probabilities = band_mean_reference(images, 3, 3, logit_scale=1.0)
    fp32_embedding, fp32_probabilities = band_mean_reference(images, 3, 3, logit_scale=10.0)
    margins = class_margin(int8_probabilities)
    assert margins[0] > RECHECK_MARGIN > margins[1]
    out = model.run(images)
    np.testing.assert_allclose(out.probabilities[0], int8_probabilities[0], atol=1e-6)
    np.testing.assert_allclose(out.probabilities[1], fp32_probabilities[1], atol=1e-6)
    np.testing.assert_allclose(out.embedding, fp32_embedding, atol=1e-6)
    assert (model.tiles_run, model.tiles_rechecked) == (2, 1)
    # asked for the embedding alone, the re-check still decides by the class margin
    (embedding,) = model.run_outputs(images, ["embedding"])
    np.testing.assert_allclose(embedding, fp32_embedding, atol=1e-6)
    assert model.tiles_rechecked == 2


def test_fp32_runs_the_original_whatever_the_cpu(pair: Path) -> None:
    model = OnnxModel(pair, precision="fp32")
    images = np.full((1, 3, 8, 8), 0.5, np.float32)
    images[:, 0] = 0.52
    np.testing.assert_allclose(
        model.run(images).probabilities, band_mean_reference(images, 3, 3)[1], atol=1e-6
    )
    assert (model.precision, model.tiles_rechecked) == ("fp32", 0)
    assert model.identity != OnnxModel(pair, precision="int8").identity


def test_an_int8_copy_with_other_classes_is_refused_in_one_line(tmp_path: Path) -> None:
    fp32 = make_band_mean_model(tmp_path / "m.onnx", tile_size=8)
    make_band_mean_model(int8_copy(fp32), tile_size=8, class_names=["a", "b", "c"])
    with pytest.raises(SncaError, match=r"^int8 copy m.int8.onnx does not match m.onnx \("):
        OnnxModel(fp32, precision="int8")


def test_int8_instructions_follow_the_cpu_features(monkeypatch: pytest.MonkeyPatch) -> None:
    from numpy._core import _multiarray_umath

    features = dict.fromkeys(_multiarray_umath.__cpu_features__, False)
    monkeypatch.setattr(_multiarray_umath, "__cpu_features__", {**features, "AVX512VNNI": True})
    assert int8_instructions() == VNNI
    monkeypatch.setattr(_multiarray_umath, "__cpu_features__", {**features, "ASIMDDP": True})
    assert int8_instructions() == "Arm dot product"
    monkeypatch.setattr(_multiarray_umath, "__cpu_features__", features)
    monkeypatch.setattr("platform.system", lambda: "Windows")
    assert int8_instructions() is None
