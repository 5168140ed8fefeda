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
from snca_cli.runtime.precision import (
    RECHECK_MARGIN,
    PrecisionChoice,
    choose_precision,
    int8_instructions,
)

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
        self,
        path: Path | str,
        provider: str = "auto",
        threads: int = 0,
        graph: bytes | None = None,
        precision: str = "auto",
    ) -> None:
        """Open the model file ``path``, or the copy ``precision`` chooses
        (:func:`snca_cli.runtime.precision.choose_precision`: ``auto``, ``fp32`` or ``int8``);
        ``graph``, when given, is run instead of the file's graph (an edited copy of it, e.g.
        with the backbone features as an extra output), in fp32."""
        named = self.named_path = Path(path)
        self.requested_provider = provider
        self.requested_precision = precision
        self.threads = check_threads(threads)
        _check_file(named)
        providers = choose_providers(provider)
        if graph is None:
            self.choice = choose_precision(
                named, precision, _short(providers[0]), int8_instructions()
            )
        else:
            self.choice = PrecisionChoice("fp32", named, None, "an edited graph")
        #: the model's identity (indexes and work units record it): the fp32 file when there is one
        self.path = self.choice.check_path or self.choice.run_path
        _check_file(self.choice.run_path)
        self.session = self._open(graph if graph is not None else self.choice.run_path, providers)
        props = self.session.get_modelmeta().custom_metadata_map
        self.metadata = ModelMetadata.from_props(props, source=f"model {self.path.name}")
        self._check_signature()
        self._checker: OnnxModel | None = None
        if self.choice.check_path is not None:
            self._checker = OnnxModel(self.choice.check_path, provider, threads, precision="fp32")
            self._check_same_model(self._checker)
        #: tiles run, and tiles re-checked in fp32 (int8 runs), since the model was opened
        self.tiles_run = 0
        self.tiles_rechecked = 0
        self._sha256: str | None = None

    def count_elsewhere(self, tiles_run: int, tiles_rechecked: int) -> None:
        """Count as this model's the tiles its copies ran elsewhere (a cluster's workers), so
        that a run's totals cover them."""
        self.tiles_run += tiles_run
        self.tiles_rechecked += tiles_rechecked

    def _open(self, source: Path | bytes, providers: list[str]):
        """An onnxruntime session of ``source`` (a file or a serialized graph)."""
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        for key, value in SESSION_CONFIG.items():
            options.add_session_config_entry(key, value)
        if self.threads > 0:
            options.intra_op_num_threads = self.threads
        try:
            return ort.InferenceSession(
                source if isinstance(source, bytes) else str(source),
                sess_options=options,
                providers=providers,
            )
        except Exception as exc:
            name = "model" if isinstance(source, bytes) else f"model {source}"
            raise SncaError(f"cannot load {name}: {first_line(exc)}") from None

    def _check_same_model(self, original: OnnxModel) -> None:
        """Refuse an int8 copy whose classes or embedding differ from its fp32 original's."""
        mine, theirs = self.metadata, original.metadata
        if (mine.class_names, mine.embedding_dim, mine.tile_size, mine.input_bands) != (
            theirs.class_names,
            theirs.embedding_dim,
            theirs.tile_size,
            theirs.input_bands,
        ):
            raise SncaError(
                f"int8 copy {self.choice.run_path.name} does not match {original.path.name} "
                "(other classes, embedding size, tile size or bands); write it again with "
                "`snca export --int8`, or use --precision fp32"
            )

    @property
    def precision(self) -> str:
        """``fp32`` or ``int8``: the copy of the model that runs."""
        return self.choice.precision

    def following(self, precision: str) -> OnnxModel:
        """This model, or its file opened in ``precision`` when this one's precision was chosen
        automatically and differs: an index's embeddings decide the precision of the tiles added
        to it and of its queries."""
        if self.requested_precision != "auto" or precision == self.precision:
            return self
        return OnnxModel(
            self.named_path, self.requested_provider, self.threads, precision=precision
        )

    @property
    def identity(self) -> str:
        """What a run's results depend on: the model file and the precision it runs in."""
        return f"{self.sha256}:{self.precision}"

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
        return _short(self.providers[0])

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
        feed = np.ascontiguousarray(images, dtype=np.float32)
        outputs = self._run_checked(feed, names)
        for name, values in zip(names, outputs, strict=True):
            self._check_width(name, values.shape[-1] if values.ndim == 2 else -1)
            bad = ~np.isfinite(values).all(axis=tuple(range(1, values.ndim)))
            if bad.any():
                raise SncaError(
                    f"model {self.path.name} produced non-finite {name} (NaN or inf) for "
                    f"{int(bad.sum())} of {len(values)} inputs; nothing was written"
                )
        return outputs

    def _run_checked(self, feed: np.ndarray, names: list[str]) -> list[np.ndarray]:
        """The named outputs; in an int8 run, those of the tiles whose two best classes are
        closer than :data:`RECHECK_MARGIN` come from the fp32 model instead."""
        self.tiles_run += len(feed)
        if self._checker is None:
            return self.session.run(names, {INPUT_NAME: feed})
        wanted = names if PROBABILITIES_OUTPUT in names else [*names, PROBABILITIES_OUTPUT]
        outputs = self.session.run(wanted, {INPUT_NAME: feed})
        close = np.flatnonzero(
            class_margin(outputs[wanted.index(PROBABILITIES_OUTPUT)]) < RECHECK_MARGIN
        )
        if close.size:
            exact = self._checker.session.run(wanted, {INPUT_NAME: feed[close]})
            for values, checked in zip(outputs, exact, strict=True):
                values[close] = checked
            self.tiles_rechecked += int(close.size)
        return outputs[: len(names)]


def class_margin(probabilities: np.ndarray) -> np.ndarray:
    """Per row, the best class probability minus the second best (1 with a single class)."""
    if probabilities.shape[1] < 2:
        return np.ones(len(probabilities), np.float32)
    top = np.partition(probabilities, -2, axis=1)[:, -2:]
    return top[:, 1] - top[:, 0]


def _short(provider: str) -> str:
    """``CPU`` for ``CPUExecutionProvider``."""
    return provider.removesuffix("ExecutionProvider")


def _check_file(path: Path) -> None:
    """Refuse a model path that is not a readable file name."""
    check_utf8_path(path, "model")
    if path.is_dir():
        raise SncaError(f"model {path} is a folder, not an ONNX file")
    if not path.is_file():
        raise SncaError(f"model {path} does not exist")
