"""Run work on a Dask distributed cluster: a LocalCluster of N processes or a running scheduler.

Dask (``pip install "snca[cluster]"``) is imported only when a cluster is asked for, so the
single-process path and the QGIS plugin never need it. Each worker process keeps one
onnxruntime session per model (:func:`worker_model`), loaded by its first task and reused by
every later one.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from snca_cli.errors import SncaError
from snca_cli.runtime.onnx_model import OnnxModel

#: Install command printed when dask is missing.
INSTALL_HINT = 'pip install "snca[cluster]"'


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity where the system says)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # no affinity on this system (macOS, Windows)
        return os.cpu_count() or 1


@dataclass(frozen=True)
class ClusterSpec:
    """Where work runs: ``workers`` local processes, or the scheduler at ``address``
    (``tcp://HOST:PORT``); neither means this process (the default path).

    ``threads_per_worker`` onnxruntime threads per worker process (0: onnxruntime's default);
    ``connect_timeout_s`` how long to try reaching the scheduler at ``address``.
    """

    workers: int = 0
    address: str | None = None
    threads_per_worker: int = 1
    connect_timeout_s: float = 20.0

    def __post_init__(self) -> None:
        if self.workers and self.address:
            raise SncaError("give --workers or --cluster, not both")
        cpus = usable_cores()
        if not 0 <= self.workers <= cpus:
            # each worker is a process with its own model session: more than the cores only
            # costs memory and time (32 workers on 2 cores: 6.4 GiB and 8x slower)
            raise SncaError(
                f"--workers must be 1 to {cpus}, the cores this machine gives snca; got "
                f"{self.workers} (for more, start workers on other machines: --cluster)"
            )
        if self.address is not None and "://" not in self.address:
            raise SncaError(
                f"--cluster takes a scheduler address tcp://HOST:PORT; got {self.address!r}"
            )

    @property
    def distributed(self) -> bool:
        """Whether work goes to Dask rather than running in this process."""
        return bool(self.workers or self.address)


@dataclass(frozen=True)
class ModelSpec:
    """How a worker opens the model: what travels to the workers instead of a session."""

    path: str
    provider: str = "auto"
    threads: int = 0

    @classmethod
    def of(cls, model: OnnxModel, threads: int) -> ModelSpec:
        return cls(str(Path(model.path).resolve()), model.requested_provider, threads)


_MODELS: dict[ModelSpec, OnnxModel] = {}
_LOADS: dict[str, int] = {}


def worker_model(spec: ModelSpec) -> OnnxModel:
    """The onnxruntime session of ``spec`` in this process, made by the first task that asks."""
    model = _MODELS.get(spec)
    if model is None:
        model = _MODELS[spec] = OnnxModel(spec.path, provider=spec.provider, threads=spec.threads)
        _LOADS[spec.path] = _LOADS.get(spec.path, 0) + 1
    return model


def model_loads() -> dict[str, int]:
    """How many times this process loaded each model file (once per worker, however many
    units it runs)."""
    return dict(_LOADS)


@contextlib.contextmanager
def open_cluster(spec: ClusterSpec) -> Iterator[object]:
    """A ``distributed.Client`` on a new LocalCluster or on the scheduler of ``spec``; the
    LocalCluster is shut down on exit."""
    try:
        import distributed
    except ImportError:
        raise SncaError(f"--workers/--cluster need Dask distributed: {INSTALL_HINT}") from None
    if spec.address:
        try:
            client = distributed.Client(spec.address, timeout=f"{spec.connect_timeout_s}s")
        except OSError as exc:
            raise SncaError(f"cannot reach the Dask scheduler at {spec.address}: {exc}") from None
        with client:
            yield client
        return
    with (
        distributed.LocalCluster(
            n_workers=spec.workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            silence_logs=logging.ERROR,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client
