"""The Dask entry points (snca_cli.runtime.cluster): option checks and a missing Dask."""

from __future__ import annotations

import sys

import pytest

from snca_cli.errors import SncaError
from snca_cli.runtime.cluster import ClusterSpec, open_cluster, usable_cores


def test_without_dask_the_install_command_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed fails
    with pytest.raises(SncaError, match=r'need Dask distributed: pip install "snca\[cluster\]"'):
        with open_cluster(ClusterSpec(workers=2)):
            pass


def test_cluster_options_are_checked() -> None:
    assert not ClusterSpec().distributed
    assert ClusterSpec(workers=2).distributed and ClusterSpec(address="tcp://h:8786").distributed
    with pytest.raises(SncaError, match="not both"):
        ClusterSpec(workers=2, address="tcp://h:8786")
    with pytest.raises(SncaError, match="--workers must be"):
        ClusterSpec(workers=-1)
    cores = usable_cores()
    assert ClusterSpec(workers=cores).workers == cores
    with pytest.raises(SncaError, match=rf"^--workers must be 1 to {cores}, the cores"):
        ClusterSpec(workers=cores + 1)  # 128 on 2 cores was accepted and took 6.4 GiB
    with pytest.raises(SncaError, match="tcp://HOST:PORT"):
        ClusterSpec(address="h:8786")


def test_an_unreachable_scheduler_is_one_error() -> None:
    with pytest.raises(SncaError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        with open_cluster(ClusterSpec(address="tcp://127.0.0.1:9", connect_timeout_s=1)):
            pass
