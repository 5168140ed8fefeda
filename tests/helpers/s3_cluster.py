"""A local S3-compatible server and a Dask cluster of separate processes, for the tests of runs
with no shared folder.

:func:`s3_server` starts moto's S3 server in this process (port chosen by the system) and
gives the environment that points GDAL (``/vsis3/``, ``s3://`` rasters), s3fs and botocore at
it. :class:`DaskProcesses` starts ``dask scheduler`` and ``dask worker`` as processes of their
own, each worker in its own working folder with its own model cache, as on machines that share
nothing but the scheduler and the object storage.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

#: Credentials moto accepts (any).
S3_KEYS = {"AWS_ACCESS_KEY_ID": "snca-test", "AWS_SECRET_ACCESS_KEY": "snca-test"}


@contextlib.contextmanager
def s3_server() -> Iterator[dict[str, str]]:
    """moto's S3 server on 127.0.0.1; yields the environment variables that reach it."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield {
            **S3_KEYS,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": f"http://{host}:{port}",  # botocore, s3fs
            "AWS_S3_ENDPOINT": f"{host}:{port}",  # GDAL
            "AWS_HTTPS": "NO",
            "AWS_VIRTUAL_HOSTING": "FALSE",
        }
    finally:
        server.stop()


def s3_filesystem() -> object:
    """A fresh s3fs file system (no cached listings) on the server the environment names."""
    import fsspec

    return fsspec.filesystem("s3", skip_instance_cache=True)


def use_empty_bucket(env: dict[str, str], monkeypatch: object, bucket: str) -> None:
    """Point this process (and the commands it starts) at the S3 server of ``env`` and make
    ``bucket`` there, empty."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)  # type: ignore[attr-defined]
    fs = s3_filesystem()
    if fs.exists(bucket):
        fs.rm(bucket, recursive=True)
    fs.mkdir(bucket)


class DaskProcesses:
    """A Dask scheduler and ``workers`` worker processes started as commands (``dask scheduler``,
    ``dask worker``), each worker with its own working folder and model cache under ``root``.
    """

    def __init__(self, root: Path, env: dict[str, str], workers: int = 2) -> None:
        self.root, self.env, self.workers = root, env, workers
        self.scheduler: subprocess.Popen | None = None
        self.worker_processes: list[subprocess.Popen] = []
        self.address = ""

    def start(self) -> str:
        """Start the scheduler and the workers; return the scheduler's address once every
        worker has joined."""
        file = self.root / "scheduler.json"
        file.unlink(missing_ok=True)
        self.scheduler = self._spawn(
            "dask_scheduler",
            ["--host", "127.0.0.1", "--port", "0", "--dashboard-address", ":0",
             "--scheduler-file", str(file)],
            self.root / "scheduler",
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while not file.is_file() and time.monotonic() < deadline:
            time.sleep(0.1)
        self.address = json.loads(file.read_text())["address"]
        self.worker_processes = [
            self._spawn(
                "dask_worker",
                [self.address, "--nworkers", "1", "--nthreads", "1", "--no-dashboard",
                 "--local-directory", str(self.root / f"worker-{n}" / "dask")],
                self.root / f"worker-{n}",
                {"SNCA_MODEL_CACHE": str(self.root / f"worker-{n}" / "models")},
            )
            for n in range(self.workers)
        ]  # fmt: skip
        import distributed

        with distributed.Client(self.address, timeout="30s") as client:
            client.wait_for_workers(self.workers, timeout=60)
        return self.address

    def _spawn(
        self, module: str, args: list[str], cwd: Path, extra: dict[str, str] | None = None
    ) -> subprocess.Popen:
        cwd.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.env, **(extra or {})}
        log = open(cwd / f"{module}.log", "a")  # noqa: SIM115 - closed with the process
        return subprocess.Popen(
            [sys.executable, "-m", f"distributed.cli.{module}", *args],
            cwd=cwd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill_scheduler(self) -> None:
        """SIGKILL the scheduler (the workers stay, looking for it)."""
        assert self.scheduler is not None
        self.scheduler.send_signal(signal.SIGKILL)
        self.scheduler.wait(timeout=30)

    def stop(self) -> None:
        """End every process of the cluster."""
        for process in [*self.worker_processes, self.scheduler]:
            if process is not None and process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)
        self.worker_processes, self.scheduler = [], None

    def __enter__(self) -> DaskProcesses:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
