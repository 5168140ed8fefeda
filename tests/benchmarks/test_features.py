"""benchmarks/features.py: feature SPECs, weighted concatenation, the parts of one pass."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from features import FeatureCache, SourceNetwork, Term, parse_spec


def test_specs_parse_weights_sizes_and_checkpoint_paths():
    terms = parse_spec("runs/a/best.pt/embedding + 0.5*imagenet:efficientnet_lite1/pooled@240", 150)
    assert terms == [
        Term("runs/a/best.pt", "embedding", 150),
        Term("imagenet:efficientnet_lite1", "pooled", 240, 0.5),
    ]
    assert terms[1].frozen and not terms[0].frozen
    with pytest.raises(ValueError, match="unknown feature part"):
        parse_spec("runs/a/best.pt/logits", 150)
    with pytest.raises(ValueError, match="no embedding"):
        parse_spec("imagenet:efficientnet_lite0/embedding", 150)
    with pytest.raises(ValueError, match="no /PART"):
        parse_spec("best.pt", 150)


def test_terms_are_unit_length_then_weighted_then_concatenated(monkeypatch):
    cache = FeatureCache()
    stored = {"a": np.array([[3.0, 4.0]]), "b": np.array([[0.0, 0.0, 1.0]])}

    def parts(source, size, root, items, factor):
        return {"pooled": stored[source] / np.linalg.norm(stored[source])}

    monkeypatch.setattr(cache, "parts", parts)
    vector = cache.vectors("a/pooled+2*b/pooled", Path("."), ["x"])
    assert vector.shape == (1, 5)
    assert np.linalg.norm(vector) == pytest.approx(1.0)
    # the second term weighs twice the first
    assert np.linalg.norm(vector[0, 2:]) == pytest.approx(2 * np.linalg.norm(vector[0, :2]))


@pytest.mark.torch
def test_one_pass_gives_pooled_and_stage_features():
    pytest.importorskip("torch")
    network = SourceNetwork("imagenet:efficientnet_lite0")
    parts = network.parts(np.random.default_rng(0).random((2, 3, 64, 64), dtype=np.float32))
    assert set(parts) == {"pooled", "stages"}  # a frozen backbone has no embedding
    assert parts["pooled"].shape == (2, 1280)
    widths = [block._project_conv.out_channels for block in network.stage_features.blocks]
    assert widths == [80, 112, 192]
    assert parts["stages"].shape == (2, sum(widths) + 1280)
    # each stage's block is unit length
    assert np.linalg.norm(parts["stages"][:, :80], axis=1) == pytest.approx([1.0, 1.0])
