"""benchmarks/aid_ensemble.py: the ensemble's arithmetic, its input checks, and a whole run on
generated scenes with models of exactly known outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from aid_ensemble import ensemble, main

from snca_cli.contract.metadata import DEFAULT_INPUT_SCALE
from snca_cli.errors import SncaError
from snca_cli.runtime.onnx_model import ModelOutputs
from snca_cli.runtime.scene_images import make_split, save_split, scan_scene_folder
from snca_cli.tasks.evaluate import Embedder, evaluate_model, open_onnx, resolve_split
from tests.helpers.onnx_models import make_band_mean_model
from tests.helpers.scenes import make_scene_folder


def fixed(name: str, embedding, probabilities, image_size: int = 8) -> Embedder:
    """An embedder that returns the same outputs for any one-image batch."""
    out = ModelOutputs(
        embedding=np.array([embedding], dtype=np.float32),
        probabilities=np.array([probabilities], dtype=np.float32),
    )
    return Embedder(
        path=Path(f"{name}.onnx"),
        kind="onnx",
        class_names=["a", "b"],
        image_size=image_size,
        input_bands=3,
        input_scale=dict(DEFAULT_INPUT_SCALE),
        backbone="test",
        split_seed=0,
        run=lambda images: out,
    )


def test_unit_embeddings_are_averaged_and_renormalised():
    both = ensemble([fixed("a", [3.0, 4.0], [0.2, 0.8]), fixed("b", [2.0, 0.0], [0.6, 0.4])])
    out = both.run(np.zeros((1, 3, 8, 8), dtype=np.float32))
    # (0.6, 0.8) and (1, 0) -> mean (0.8, 0.4) -> unit (2, 1) / sqrt(5)
    np.testing.assert_allclose(out.embedding, [[2 / 5**0.5, 1 / 5**0.5]], rtol=1e-6)
    np.testing.assert_allclose(out.probabilities, [[0.4, 0.6]], rtol=1e-6)
    assert both.kind == "ensemble" and both.path.name == "a+b"


def test_members_must_take_the_same_input():
    with pytest.raises(SncaError, match="at least two"):
        ensemble([fixed("a", [1.0, 0.0], [1.0, 0.0])])
    with pytest.raises(SncaError, match="b.onnx and a.onnx differ in image size"):
        ensemble([fixed("a", [1.0, 0.0], [1.0, 0.0]), fixed("b", [1.0, 0.0], [1.0, 0.0], 16)])


def test_an_ensemble_of_one_model_twice_scores_as_the_model(tmp_path):
    data = make_scene_folder(tmp_path / "scenes", per_class=10)
    folder = scan_scene_folder(data)
    save_split(tmp_path / "split.json", folder, make_split(folder, 0), 0)
    names = folder.class_names
    model = make_band_mean_model(tmp_path / "m.onnx", tile_size=16, class_names=names)
    single = open_onnx(model)
    split = resolve_split(single, data, tmp_path / "split.json")
    expected = evaluate_model(single, data, split, tta=True)["metrics"]
    main(
        [str(model), str(model), "--data", str(data), "--split", str(tmp_path / "split.json")]
        + ["--tta", "-o", str(tmp_path / "out")]
    )
    report = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert report["members"] == ["m.onnx", "m.onnx"] and report["tta"] is True
    assert report["metrics"] == pytest.approx(expected, abs=1e-9)
    assert expected["knn@10"] > 0.9  # the colours tell the classes apart


def test_bad_input_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main(
            [str(tmp_path / "x.onnx"), str(tmp_path / "y.onnx")]
            + ["--data", str(tmp_path), "--split", str(tmp_path / "s.json")]
        )
    assert stop.value.code == 2
    assert capsys.readouterr().err.strip() == f"error: model {tmp_path / 'x.onnx'} does not exist"
