"""Feature kinds for the transfer and adapt protocols: frozen ImageNet backbones, a trained
checkpoint's parts, several backbone stages, and weighted concatenations of them.

A feature SPEC is ``TERM[+TERM...]``, each term ``[WEIGHT*]SOURCE/PART[@SIZE]``:

* SOURCE: ``imagenet:BACKBONE`` (e.g. ``imagenet:efficientnet_lite1``, frozen ImageNet weights)
  or the path of a training checkpoint (``best.pt``);
* PART: ``embedding`` (a checkpoint's unit embedding), ``pooled`` (the pooled backbone features
  the embedding layer reads; what ``snca adapt``'s head reads), ``stages`` (several stages'
  pooled outputs and the pooled features, each L2-normalised, then concatenated: texture and
  layout for the head; see :mod:`snca_train.stage_features`);
* SIZE: the square input size in pixels (default: the protocol's, 150).

Every term is L2-normalised and multiplied by its weight (default 1) before the terms are
concatenated, so ``best.pt/embedding+imagenet:efficientnet_lite0/pooled`` weighs the trained
embedding and the frozen features 1:1. One forward pass per source and size gives all parts;
with a cache folder the vectors are kept on disk, so combinations and the other protocol script
reuse them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from snca_train.stage_features import StageFeatures

PARTS = ("embedding", "pooled", "stages")
IMAGENET = "imagenet:"
BATCH = 64


@dataclass(frozen=True)
class Term:
    """One weighted part of a feature."""

    source: str
    part: str
    size: int
    weight: float = 1.0

    @property
    def frozen(self) -> bool:
        """Whether the source is a frozen ImageNet backbone."""
        return self.source.startswith(IMAGENET)


def parse_spec(spec: str, default_size: int) -> list[Term]:
    """The terms of a feature SPEC (see the module docstring); ValueError when malformed."""
    terms = []
    for text in spec.split("+"):
        text = text.strip()
        weight = 1.0
        if "*" in text:
            number, text = text.split("*", 1)
            weight = float(number)
        size = default_size
        if "@" in text.rsplit("/", 1)[-1]:
            text, size_text = text.rsplit("@", 1)
            size = int(size_text)
        if "/" not in text:
            raise ValueError(f"feature term {text!r} has no /PART ({', '.join(PARTS)})")
        source, part = text.rsplit("/", 1)
        if part not in PARTS:
            raise ValueError(f"unknown feature part {part!r} (choose one of: {', '.join(PARTS)})")
        if part == "embedding" and source.startswith(IMAGENET):
            raise ValueError("a frozen ImageNet backbone has no embedding: use /pooled")
        terms.append(Term(source, part, size, weight))
    return terms


def unit(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length."""
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


class SourceNetwork:
    """A frozen ImageNet backbone or a training checkpoint, giving every part in one pass."""

    def __init__(self, source: str) -> None:
        import torch

        from snca_train.backbones import build_backbone
        from snca_train.checkpoint import load_model

        self.embedding_layer = None
        if source.startswith(IMAGENET):
            backbone = build_backbone(source.removeprefix(IMAGENET), 3, pretrained=True)
            self.backbone = backbone.module.eval()
            self.mean = torch.tensor(backbone.mean).view(1, -1, 1, 1)
            self.std = torch.tensor(backbone.std).view(1, -1, 1, 1)
        else:
            network, _ = load_model(Path(source))
            if network.config.backbone_size is not None:
                raise ValueError(f"{source}: a run with --backbone-size is not supported here")
            self.backbone = network.backbone.eval()
            self.mean, self.std = network.input_mean, network.input_std
            self.embedding_layer = network.embedding.eval()
        try:
            self.stage_features = StageFeatures(self.backbone)
        except ValueError as exc:
            raise ValueError(f"{source}: {exc}") from None

    def parts(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Every part of N x 3 x H x W images in [0, 1]: unit ``pooled``, ``stages`` and (for a
        checkpoint) ``embedding`` vectors."""
        import torch

        with torch.inference_mode():
            standardised = (torch.from_numpy(np.ascontiguousarray(images)) - self.mean) / self.std
            pooled, stages = self.stage_features(standardised)
            out = {"pooled": unit(pooled.numpy()), "stages": stages.numpy()}
            if self.embedding_layer is not None:
                out["embedding"] = unit(self.embedding_layer(pooled).numpy())
        return out

    def gflops(self, size: int) -> float:
        """Floating-point operations (10^9, two per multiply-add) of one ``size`` px tile."""
        import torch
        from torch.utils.flop_counter import FlopCounterMode

        counter = FlopCounterMode(display=False)
        with torch.inference_mode(), counter:
            self.backbone(torch.zeros(1, 3, size, size))
        return counter.get_total_flops() / 1e9


class FeatureCache:
    """Vectors of (source, size, degradation factor, items), computed once per source and size
    for all parts, kept in memory and (with ``folder``) on disk as ``.npz``."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder
        self.networks: dict[str, SourceNetwork] = {}
        self.memory: dict[str, dict[str, np.ndarray]] = {}

    def parts(self, source: str, size: int, root: Path, items: list[str], factor: int) -> dict:
        """Every part's vectors of ``root/<item>`` images at ``size``, degraded by ``factor``."""
        from transfer import degraded

        from snca_cli.runtime.scene_images import read_image

        digest = hashlib.sha1("\n".join(items).encode()).hexdigest()[:12]
        key = f"{hashlib.sha1(source.encode()).hexdigest()[:8]}-{size}px-{factor}x-{digest}"
        if key in self.memory:
            return self.memory[key]
        path = None if self.folder is None else self.folder / f"{key}.npz"
        if path is not None and path.exists():
            with np.load(path) as stored:
                self.memory[key] = dict(stored)
            return self.memory[key]
        network, chunks = self.network(source), []
        for start in range(0, len(items), BATCH):
            batch = np.stack(
                [
                    np.moveaxis(degraded(read_image(root / i), size, factor), -1, 0)
                    for i in items[start : start + BATCH]
                ]
            ).astype(np.float32) / np.float32(255.0)
            chunks.append(network.parts(batch))
        result = {part: np.concatenate([c[part] for c in chunks]) for part in chunks[0]}
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            np.savez(path, **result)
        self.memory[key] = result
        return result

    def network(self, source: str) -> SourceNetwork:
        """The network of ``source``, loaded once."""
        if source not in self.networks:
            self.networks[source] = SourceNetwork(source)
        return self.networks[source]

    def gflops(self, spec: str) -> float:
        """Backbone GFLOPs per tile of a feature SPEC: one pass per distinct source and size."""
        passes = {(term.source, term.size) for term in parse_spec(spec, 150)}
        return sum(self.network(source).gflops(size) for source, size in sorted(passes))

    def vectors(self, spec: str, root: Path, items: list[str], factor: int = 1) -> np.ndarray:
        """Unit vectors of a feature SPEC (default size 150 px) for ``root/<item>`` images."""
        terms = parse_spec(spec, 150)
        parts = [
            term.weight * self.parts(term.source, term.size, root, items, factor)[term.part]
            for term in terms
        ]
        return unit(np.concatenate(parts, axis=1))
