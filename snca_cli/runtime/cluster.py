"""Run work on a Dask distributed cluster: a LocalCluster of N processes or a running scheduler.

Dask (``pip install "snca[cluster]"``) is imported only when a cluster is asked for, so the
single-process path and the QGIS plugin never need it. Each worker process keeps one
onnxruntime session per model (:func:`worker_model`), loaded by its first task and reused by
every later one.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar
from urllib.parse import urlsplit

from snca_cli.errors import SncaError, debugging, first_line
from snca_cli.runtime.cores import usable_cores
from snca_cli.runtime.onnx_model import OnnxModel
from snca_cli.runtime.user_cache import cache_folder

#: Install command printed when dask is missing.
INSTALL_HINT = 'pip install "snca[cluster]"'
#: The Dask transports ``--cluster`` takes: those that reach a scheduler in another process or
#: on another machine. Dask's ``inproc`` reaches only a scheduler inside the same process (never
#: snca's), and its ``ucx`` was removed from distributed.
SCHEMES = ("tcp", "tls", "ws", "wss")
#: :data:`SCHEMES` as messages list them.
SCHEMES_TEXT = ", ".join(f"{s}://" for s in SCHEMES[:-1]) + f" or {SCHEMES[-1]}://"
#: Of :data:`SCHEMES`, those that need TLS certificates in the Dask configuration.
TLS_SCHEMES = ("tls", "wss")
#: Seconds a scheduler is given to answer once the connect timeout has passed: so a peer that
#: cannot be reached is told apart from one that accepts and says nothing.
ANSWER_GRACE_S = 1.0

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class ClusterSpec:
    """Where work runs: ``workers`` local processes, or the scheduler at ``address``
    (``tcp://HOST:PORT``, or another scheme of :data:`SCHEMES`: checked by
    :func:`check_address`); neither means this process (the default path).

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
        if self.address is not None:
            check_address(self.address)

    @property
    def distributed(self) -> bool:
        """Whether work goes to Dask rather than running in this process."""
        return bool(self.workers or self.address)


def check_address(address: str) -> None:
    """Refuse a ``--cluster`` address that is not ``SCHEME://HOST:PORT`` with a scheme of
    :data:`SCHEMES`, in one line saying what is wrong with it."""
    problem = _address_problem(address)
    if problem is not None:
        scheme = address.partition("://")[0]
        shown = scheme if scheme in SCHEMES else "tcp"
        raise SncaError(
            f"--cluster {address!r} is not a scheduler address snca can use: {problem}; give "
            f"{shown}://HOST:PORT"
        )


def _address_problem(address: str) -> str | None:
    """What makes ``address`` unusable as a scheduler address, or None."""
    scheme, sep, _ = address.partition("://")
    if not sep:
        return f"it has no scheme ({SCHEMES_TEXT})"
    if scheme == "inproc":
        return "inproc:// reaches only a scheduler inside the snca process itself"
    if scheme not in SCHEMES:
        return f"snca reaches a scheduler by {SCHEMES_TEXT}, not {scheme}://"
    try:
        parts = urlsplit(address)
    except ValueError:
        return "its host cannot be read (an IPv6 host goes in brackets: [::1]:8786)"
    if not parts.hostname:
        return "it names no host"
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is None:
        return "it names no port (a Dask scheduler listens on 8786 unless told otherwise)"
    if not 1 <= port <= 65535:
        return "its port is not a number from 1 to 65535"
    if parts.username is not None or parts.path or parts.query or parts.fragment:
        return f"it holds more than HOST:PORT after {scheme}://"
    return None


@dataclass(frozen=True)
class ModelSpec:
    """How a worker opens the model: what travels to the workers instead of a session.

    The model goes to the workers by content, not by the client's path (a worker need not see
    the client's files): :func:`model_files` are sent once to each worker, which writes them
    into a folder named after their identity (:func:`worker_model`) and opens them there.
    """

    name: str  # the file the client named (the fp32 file, or an int8 file named alone)
    identity: str  # OnnxModel.identity: the fp32 file's sha256 and the precision
    provider: str = "auto"
    threads: int = 0
    #: the precision the client chose (workers run the same copy whatever their CPU)
    precision: str = "fp32"

    @classmethod
    def of(cls, model: OnnxModel, threads: int) -> ModelSpec:
        return cls(
            model.named_path.name,
            model.identity,
            model.requested_provider,
            threads,
            model.precision,
        )


def model_files(model: OnnxModel) -> dict[str, bytes]:
    """The files a worker needs to run ``model`` as the client does, by name: the file named,
    the copy that runs and the fp32 file that re-checks (the same file counted once)."""
    paths = {model.named_path, model.choice.run_path, model.choice.check_path}
    return {path.name: path.read_bytes() for path in paths if path is not None}


def model_cache() -> Path:
    """Where workers keep the model files sent to them: ``SNCA_MODEL_CACHE``, or ``models`` in
    snca's cache folder (:func:`snca_cli.runtime.user_cache.cache_folder`)."""
    return Path(os.environ.get("SNCA_MODEL_CACHE") or cache_folder() / "models")


def _stored_model(spec: ModelSpec, files: dict[str, bytes]) -> Path:
    """The model's files written into a folder of their own (named after the model's
    identity; each file staged, then renamed, so a killed worker leaves no half file)."""
    folder = model_cache() / hashlib.sha256(spec.identity.encode()).hexdigest()[:24]
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        target = folder / name
        if target.is_file() and target.stat().st_size == len(data):
            continue
        staged = folder / f".{name}.{os.getpid()}.partial"
        staged.write_bytes(data)
        os.replace(staged, target)
    return folder / spec.name


_MODELS: dict[ModelSpec, OnnxModel] = {}
_LOADS: dict[str, int] = {}


def worker_model(spec: ModelSpec, files: dict[str, bytes] | None = None) -> OnnxModel:
    """The onnxruntime session of ``spec`` in this process, made by the first task that asks
    from ``files`` (:func:`model_files`, sent by the client); the files are checked to be the
    client's model (its identity)."""
    model = _MODELS.get(spec)
    if model is None:
        if files is None:
            raise SncaError(f"model {spec.name} was not sent to this worker")
        path = _stored_model(spec, files)
        model = OnnxModel(
            path, provider=spec.provider, threads=spec.threads, precision=spec.precision
        )
        if model.identity != spec.identity:
            raise SncaError(
                f"model {spec.name} arrived damaged on this worker (sha256 and precision "
                f"{model.identity}, sent {spec.identity})"
            )
        _MODELS[spec] = model
        _LOADS[spec.name] = _LOADS.get(spec.name, 0) + 1
    return model


def portable_errors(func: F) -> F:
    """Make a task run on a Dask worker raise its :class:`SncaError` on the client as itself.

    Dask pickles a task's error with the errors behind it, and GDAL's do not unpickle: Dask
    then sent a bare ``Exception`` (shown as "unexpected"). Only the message travels.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SncaError as exc:
            exc.__cause__ = exc.__context__ = None
            raise

    return wrapper  # type: ignore[return-value]


#: Seconds between two checks of the cancel hook while waiting on the cluster.
POLL_S = 0.2


def finished_in_turn(
    futures: list[Any], cancelled: Callable[[], bool] | None = None
) -> Iterator[Any]:
    """Yield ``futures`` as they finish (those finishing together in the given order),
    checking ``cancelled`` every :data:`POLL_S` (True: :class:`snca_cli.errors.Cancelled`).

    Dask's ``as_completed`` is told of each future once; ``distributed.wait(...,
    timeout=...)`` in a polling loop left waiters on every pending future at each call (2.6 MB
    per call with 1,000 pending units): a 1,024-unit run's client grew to 16 GB in 50 minutes.
    """
    import distributed

    from snca_cli.errors import Cancelled

    def check() -> None:
        if cancelled is not None and cancelled():
            raise Cancelled()

    order = {future.key: n for n, future in enumerate(futures)}
    finished = distributed.as_completed(futures)
    while not finished.is_empty():
        check()
        if not finished.has_ready():
            with finished.thread_condition:  # notified as each future finishes
                finished.thread_condition.wait(timeout=POLL_S)
            continue
        for future in sorted(finished.next_batch(block=False), key=lambda f: order[f.key]):
            check()
            yield future


def cancel_all(client: Any) -> None:
    """Cancel what is left of the run on the cluster, if the cluster is still there."""
    with contextlib.suppress(Exception):
        if client.status == "running":
            client.cancel(list(client.futures.values()), force=True)


def cluster_lost(cluster: ClusterSpec, exc: Exception, kept: str) -> SncaError:
    """The one line for a cluster gone mid-run (its scheduler killed or out of reach): what
    was kept and how to go on (Dask's own words with ``SNCA_DEBUG``)."""
    where = f"the Dask scheduler at {cluster.address}" if cluster.address else "the Dask cluster"
    cause = f" ({type(exc).__name__}: {first_line(exc)})" if debugging() else ""
    return SncaError(
        f"lost {where} mid-run{cause}; {kept}: start the cluster again and run the same "
        "command to go on from them"
    )


def worker_address() -> str:
    """The address of the Dask worker running the calling task ("this process" elsewhere)."""
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return "this process"


def model_loads() -> dict[str, int]:
    """How many times this process loaded each model file (once per worker, however many
    units it runs)."""
    return dict(_LOADS)


def dask_log_level() -> int:
    """The level from which Dask's own log lines reach stderr, here and in the workers: none
    (a failure reaches the user as snca's one line), warnings and errors with ``SNCA_DEBUG``."""
    return logging.WARNING if debugging() else logging.CRITICAL + 1


@contextlib.contextmanager
def open_cluster(spec: ClusterSpec) -> Iterator[object]:
    """A ``distributed.Client`` on a new LocalCluster or on the scheduler of ``spec``; the
    LocalCluster is shut down on exit. Dask's own log lines are kept off stderr meanwhile
    (:func:`dask_log_level`)."""
    try:
        import distributed
    except ImportError:
        raise SncaError(f"--workers/--cluster need Dask distributed: {INSTALL_HINT}") from None
    level = dask_log_level()
    with distributed.utils.silence_logging_cmgr(level):
        if spec.address:
            with _scheduler_client(distributed, spec) as client:
                yield client
            return
        with (
            distributed.LocalCluster(
                n_workers=spec.workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",
                silence_logs=level,
            ) as cluster,
            distributed.Client(cluster) as client,
        ):
            yield client


@contextlib.contextmanager
def _scheduler_client(distributed: ModuleType, spec: ClusterSpec) -> Iterator[object]:
    """A client of the running scheduler at ``spec.address``, once it has answered as one."""
    assert spec.address is not None
    security = distributed.Security()  # TLS settings from the Dask configuration
    connection = security.get_connection_args("client")
    scheme = spec.address.partition("://")[0]
    if scheme in TLS_SCHEMES and connection["ssl_context"] is None:
        raise SncaError(
            f"--cluster {spec.address}: {scheme}:// needs TLS certificates in the Dask "
            "configuration (distributed.comm.tls.client.cert and .key, "
            "distributed.comm.tls.ca-file); none are set"
        )
    _check_scheduler(spec.address, spec.connect_timeout_s, connection)
    try:
        client = distributed.Client(
            spec.address, timeout=f"{spec.connect_timeout_s}s", security=security
        )
    except OSError as exc:
        raise _unreachable(spec.address, exc) from None
    with client:
        yield client


def _check_scheduler(address: str, timeout_s: float, connection: dict) -> None:
    """Ask ``address`` who it is, within ``timeout_s`` (and :data:`ANSWER_GRACE_S`) in all:
    Dask's own connect bounds the connection, not its handshake, so a peer that accepted and
    said nothing held a run for ten minutes, and another server's answer (an HTTP server's)
    made Dask allocate exabytes."""
    _check_listening(address, timeout_s)
    asked = _identity(address, timeout_s, connection)
    try:
        identity = asyncio.run(asyncio.wait_for(asked, timeout_s + ANSWER_GRACE_S))
    except TimeoutError:
        raise SncaError(
            f"the Dask scheduler at {address} did not answer within {timeout_s:g} s: it accepts "
            "connections but says nothing (is it a Dask scheduler?)"
        ) from None
    except OSError as exc:
        raise _unreachable(address, exc) from None
    except Exception:  # Dask could not read its answer: another protocol (HTTP, the dashboard)
        identity = None
    kind = identity.get("type") if isinstance(identity, dict) else None
    if kind == "Scheduler":
        return
    what = f"it is a Dask {kind}" if isinstance(kind, str) else "it does not speak Dask's protocol"
    raise SncaError(
        f"{address} is not a Dask scheduler: {what} (give the address the scheduler printed, "
        "usually port 8786)"
    )


def _check_listening(address: str, timeout_s: float) -> None:
    """Fail at once when nothing listens at ``address`` (a refused port, an unknown host):
    Dask's connect retries those until its timeout, 20 s for a mistyped port."""
    parts = urlsplit(address)
    try:
        socket.create_connection((parts.hostname, parts.port), timeout=timeout_s).close()
    except (ConnectionRefusedError, socket.gaierror) as exc:
        raise _unreachable(address, exc) from None
    except OSError:
        return  # unreachable for now (a timeout, no route): Dask's connect says so in time


def _unreachable(address: str, exc: OSError) -> SncaError:
    """The one line for a scheduler address nothing answers at (refused, unknown host)."""
    return SncaError(f"cannot reach the Dask scheduler at {address}: {exc}")


async def _identity(address: str, timeout_s: float, connection: dict) -> object:
    """What the Dask server at ``address`` says it is (its ``identity``)."""
    from distributed.comm import connect

    comm = await connect(address, timeout=timeout_s, **connection)
    try:
        await comm.write({"op": "identity", "reply": True})
        return await comm.read()
    finally:
        comm.abort()
