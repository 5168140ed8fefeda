"""An exported snca model in an onnxruntime session: metadata, provider choice, batched runs."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from snca_cli.contract.metadata import (
    EMBEDDING_OUTPUT,
    INPUT_NAME,
    PROBABILITIES_OUTPUT,
    ModelMetadata,
)
from snca_cli.errors import SncaError, check_utf8_path, first_line

#: onnxruntime session config entries: intra-op threads wait on a lock instead of spinning
#: between parallel sections, so they leave the CPU to the tile reader thread (and, in QGIS, to
#: the user interface); measured: more tiles per CPU second, end to end and raw.
SESSION_CONFIG = {"session.intra_op.allow_spinning": "0"}

#: Most intra-op threads per CPU core a session may be asked for: more only adds contention
#: (measured: 5,000 threads made a 1.3 s run take 90 s; 100,000 ran out of memory).
MAX_THREADS_PER_CPU = 4

#: Preferred onnxruntime execution providers, best first; "auto" takes the first available.
PROVIDER_PREFERENCE = (
    "TensorrtExecutionProvider",
    "CUDAExecutionProvider",
    "CoreMLExecutionProvider",
    "DmlExecutionProvider",
    "CPUExecutionProvider",
)


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_threads(threads: int) -> int:
    """Refuse a thread count outside 0 (onnxruntime's default) .. MAX_THREADS_PER_CPU x CPUs."""
    cpus = os.cpu_count() or 1
    limit = MAX_THREADS_PER_CPU * cpus
    if not 0 <= threads <= limit:
        raise SncaError(
            f"threads must be 0 (onnxruntime's default) to {limit} ({MAX_THREADS_PER_CPU} per "
            f"CPU core, {cpus} here); got {threads}"
        )
    return threads


def choose_providers(provider: str = "auto") -> list[str]:
    """The onnxruntime providers to ask for: ``auto`` = best available, else the named one."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if provider == "auto":
        best = next(p for p in PROVIDER_PREFERENCE if p in available or p.startswith("CPU"))
        return [best] if best == "CPUExecutionProvider" else [best, "CPUExecutionProvider"]
    name = provider if provider.endswith("ExecutionProvider") else f"{provider}ExecutionProvider"
    match = next((p for p in available if p.lower() == name.lower()), None)
    if match is None:
        raise SncaError(
            f"onnxruntime provider {provider!r} is not available here "
            f"(available: {', '.join(p.removesuffix('ExecutionProvider') for p in available)})"
        )
    return [match] if match == "CPUExecutionProvider" else [match, "CPUExecutionProvider"]


@dataclass
class ModelOutputs:
    """One batch of model outputs."""

    embedding: np.ndarray  # N x D, unit length
    probabilities: np.ndarray  # N x C


class OnnxModel:
    """An snca ONNX model, checked against the contract in :mod:`snca_cli.contract.metadata`."""

    def __init__(
        self, path: Path | str, provider: str = "auto", threads: int = 0, graph: bytes | None = None
    ) -> None:
        """Open the model file ``path``; ``graph``, when given, is run instead of the file's
        graph (an edited copy of it, e.g. with the backbone features as an extra output)."""
        import onnxruntime as ort

        self.path = Path(path)
        self.requested_provider = provider
        self.threads = check_threads(threads)
        check_utf8_path(self.path, "model")
        if self.path.is_dir():
            raise SncaError(f"model {self.path} is a folder, not an ONNX file")
        if not self.path.is_file():
            raise SncaError(f"model {self.path} does not exist")
        options = ort.SessionOptions()
        options.log_severity_level = 3
        for key, value in SESSION_CONFIG.items():
            options.add_session_config_entry(key, value)
        if threads > 0:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(
                graph if graph is not None else str(self.path),
                sess_options=options,
                providers=choose_providers(provider),
            )
        except SncaError:
            raise
        except Exception as exc:
            first = first_line(exc)
            raise SncaError(f"cannot load model {self.path}: {first}") from None
        props = self.session.get_modelmeta().custom_metadata_map
        self.metadata = ModelMetadata.from_props(props, source=f"model {self.path.name}")
        self._check_signature()
        self._sha256: str | None = None

    def _check_signature(self) -> None:
        inputs = [i.name for i in self.session.get_inputs()]
        outputs = [o.name for o in self.session.get_outputs()]
        if inputs != [INPUT_NAME] or outputs[:2] != [EMBEDDING_OUTPUT, PROBABILITIES_OUTPUT]:
            raise SncaError(
                f"model {self.path.name} does not follow the snca contract: inputs {inputs}, "
                f"outputs {outputs} (expected [{INPUT_NAME}] -> "
                f"[{EMBEDDING_OUTPUT}, {PROBABILITIES_OUTPUT}])"
            )
        for output in self.session.get_outputs()[:2]:
            width = output.shape[-1] if output.shape else None
            if isinstance(width, int):  # a fixed size (not a named, dynamic one)
                self._check_width(output.name, width)

    def _check_width(self, name: str, width: int) -> None:
        """Refuse an ``embedding`` or ``probabilities`` output whose width is not the one its
        metadata declares (``embedding_dim``, one per class name)."""
        declared = {
            EMBEDDING_OUTPUT: (self.metadata.embedding_dim, "embedding_dim"),
            PROBABILITIES_OUTPUT: (self.metadata.num_classes, "class names"),
        }
        if name in declared and width != declared[name][0]:
            expected, what = declared[name]
            raise SncaError(
                f"model {self.path.name} gives {width} {name} value(s) per tile but its "
                f"metadata declares {expected} ({what}); it does not follow the snca contract"
            )

    @property
    def providers(self) -> list[str]:
        """The providers the session really uses, best first."""
        return self.session.get_providers()

    @property
    def provider_name(self) -> str:
        """Short name of the provider in use, e.g. ``CPU`` or ``CUDA``."""
        return self.providers[0].removesuffix("ExecutionProvider")

    @property
    def sha256(self) -> str:
        """SHA-256 of the model file: what indexes record to refuse a different model."""
        if self._sha256 is None:
            self._sha256 = file_sha256(self.path)
        return self._sha256

    @property
    def embedding_sha256(self) -> str:
        """What indexes record to refuse a model with another embedding: the SHA-256 of the
        model file whose embedding this model computes (its base model's for an adapted model,
        which shares the graph and ``embedding`` output), else this file's own."""
        return self.metadata.embedding_sha256 or self.sha256

    def run(self, images: np.ndarray) -> ModelOutputs:
        """Run a batch (N x bands x H x W float32 in [0, 1])."""
        embedding, probabilities = self.run_outputs(
            images, [EMBEDDING_OUTPUT, PROBABILITIES_OUTPUT]
        )
        return ModelOutputs(embedding=embedding, probabilities=probabilities)

    def run_outputs(self, images: np.ndarray, names: list[str]) -> list[np.ndarray]:
        """The named outputs of a batch (N x bands x H x W float32 in [0, 1]), each checked
        finite."""
        if images.ndim != 4 or images.shape[1] != self.metadata.input_bands:
            raise SncaError(
                f"model {self.path.name} takes {self.metadata.input_bands} band(s); "
                f"got a batch of shape {tuple(images.shape)}"
            )
        outputs = self.session.run(
            names, {INPUT_NAME: np.ascontiguousarray(images, dtype=np.float32)}
        )
        for name, values in zip(names, outputs, strict=True):
            self._check_width(name, values.shape[-1] if values.ndim == 2 else -1)
            bad = ~np.isfinite(values).all(axis=tuple(range(1, values.ndim)))
            if bad.any():
                raise SncaError(
                    f"model {self.path.name} produced non-finite {name} (NaN or inf) for "
                    f"{int(bad.sum())} of {len(values)} inputs; nothing was written"
                )
        return outputs
