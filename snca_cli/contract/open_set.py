"""The open-set rule of adapted models: a tile unlike every labelled class is ``unknown``.

An adapted model (``snca adapt``) stores one prototype per class, the renormalised mean of the
unit embeddings of that class's labelled tiles, and a threshold. A tile whose embedding has a
cosine similarity below the threshold to *every* prototype is ``unknown``: it looks like none
of the examples, so the head's best class would be a guess. The threshold is calibrated on
labelled tiles held out of the prototypes (cross-validation), as the quantile
:data:`KNOWN_KEPT_QUANTILE` of their best similarity: about 95 % of tiles like the labelled
ones keep their class.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from snca_cli.errors import SncaError

#: The class name written for tiles the rule rejects.
UNKNOWN_CLASS = "unknown"
#: The calibrated threshold is this quantile of held-out labelled tiles' best similarity.
KNOWN_KEPT_QUANTILE = 0.05


@dataclass
class OpenSetRule:
    """Class prototypes (C x D, unit rows, in the model's class order) and the threshold."""

    prototypes: np.ndarray
    threshold: float

    def best_similarity(self, embeddings: np.ndarray) -> np.ndarray:
        """Each embedding's largest cosine similarity to a prototype (N)."""
        embeddings = np.asarray(embeddings, dtype=np.float32).reshape(-1, self.prototypes.shape[1])
        if not len(embeddings):
            return np.zeros(0, np.float32)
        return (embeddings @ self.prototypes.T).max(axis=1)

    def decide(self, embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each embedding's best similarity to a prototype, and whether it is unknown (below
        the threshold): the one open-set decision."""
        similarity = self.best_similarity(embeddings)
        return similarity, similarity < self.threshold

    def is_unknown(self, embeddings: np.ndarray, threshold: float | None = None) -> np.ndarray:
        """True where the best similarity is below ``threshold`` (None: the stored one)."""
        rule = self if threshold is None else replace(self, threshold=threshold)
        return rule.decide(embeddings)[1]

    def to_json(self) -> dict[str, Any]:
        """The ``open_set`` metadata value."""
        return {
            "rule": "max cosine to class prototypes",
            "threshold": float(self.threshold),
            "prototypes": [[round(float(v), 6) for v in row] for row in self.prototypes],
        }

    @classmethod
    def from_json(cls, value: dict[str, Any], classes: int, dim: int) -> OpenSetRule:
        """Parse the ``open_set`` metadata value; SncaError when it does not fit the model."""
        prototypes = np.asarray(value["prototypes"], dtype=np.float32)
        threshold = float(value["threshold"])
        if prototypes.shape != (classes, dim):
            raise SncaError(
                f"open_set prototypes are {prototypes.shape}, the model has {classes} classes "
                f"of {dim}-d embeddings"
            )
        if not math.isfinite(threshold):
            raise SncaError(f"open_set threshold {threshold} is not a number")
        return cls(prototypes=prototypes, threshold=threshold)


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    vectors = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def class_prototypes(embeddings: np.ndarray, labels: np.ndarray, classes: int) -> np.ndarray:
    """C x D float32: each class's renormalised mean unit embedding."""
    unit = unit_rows(embeddings)
    means = np.stack([unit[labels == c].mean(axis=0) for c in range(classes)])
    return unit_rows(means).astype(np.float32)


def check_threshold(threshold: float) -> float:
    """``threshold`` if it is a cosine similarity in [-1, 1]; SncaError otherwise."""
    if not (math.isfinite(threshold) and -1.0 <= threshold <= 1.0):
        raise SncaError(
            f"the unknown threshold must be a cosine similarity in [-1, 1], not {threshold}"
        )
    return threshold
