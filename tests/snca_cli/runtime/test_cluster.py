"""The Dask entry points (snca_cli.runtime.cluster): option and address checks, a missing
Dask, and peers that are not Dask schedulers."""

from __future__ import annotations

import socket
import sys
import time
import tracemalloc

import pytest

from snca_cli.errors import Cancelled, SncaError
from snca_cli.runtime.cluster import ANSWER_GRACE_S, ClusterSpec, open_cluster
from snca_cli.runtime.cores import usable_cores
from tests.helpers.peers import http_error_peer, python_http_server, silent_peer


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


def test_a_refused_port_fails_at_once_not_after_the_timeout() -> None:
    # Dask's connect retried a refused port until its timeout: 20 s for a mistyped port
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{probe.getsockname()[1]}"  # nothing listens once closed
    started = time.monotonic()
    with pytest.raises(SncaError, match=f"cannot reach the Dask scheduler at {address}: .*refused"):
        with open_cluster(ClusterSpec(address=address, connect_timeout_s=20)):
            pass
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("foo://x", "snca reaches a scheduler by tcp://, tls://, ws:// or wss://, not foo://"),
        (":notaport", "it has no scheme"),
        ("tcp://", "it names no host"),
        ("inproc://x", "inproc:// reaches only a scheduler inside the snca process itself"),
        ("ucx://h:8786", "not ucx://"),
        ("tcp://h", "it names no port"),
        ("tcp://h:notaport", "its port is not a number from 1 to 65535"),
        ("tcp://h:70000", "its port is not a number from 1 to 65535"),
        ("tcp://h:0", "its port is not a number from 1 to 65535"),
        ("tcp://[::1", "its host cannot be read"),
        ("tcp://h:8786/path", "it holds more than HOST:PORT after tcp://"),
        ("ws://user@h:8786", "it holds more than HOST:PORT after ws://"),
    ],
)
def test_a_bad_scheduler_address_is_refused_saying_why(address: str, problem: str) -> None:
    """Issue 28, item 13: each used to end in "unexpected ValueError" (or TypeError) from Dask."""
    with pytest.raises(SncaError) as raised:
        ClusterSpec(address=address)
    message = str(raised.value)
    assert message.startswith(f"--cluster {address!r} is not a scheduler address snca can use: ")
    assert problem in message and "\n" not in message


@pytest.mark.parametrize("address", ["tcp://h:8786", "tls://10.0.0.5:1", "ws://[::1]:8786"])
def test_scheduler_addresses_of_every_transport_are_taken(address: str) -> None:
    assert ClusterSpec(address=address).address == address


def test_tls_without_certificates_is_one_error() -> None:
    with pytest.raises(SncaError, match=r"tls:// needs TLS certificates in the Dask configuration"):
        with open_cluster(ClusterSpec(address="tls://127.0.0.1:9")):
            pass


@pytest.mark.parametrize("peer", [silent_peer, python_http_server])
def test_a_peer_that_accepts_and_says_nothing_is_one_error_in_time(peer) -> None:
    """Issue 28, item 12: a peer that accepted and never answered held Dask's connect for
    636 s, whatever its timeout."""
    with peer() as address:
        started = time.monotonic()
        with pytest.raises(SncaError) as raised:
            with open_cluster(ClusterSpec(address=address, connect_timeout_s=1)):
                pass
        assert time.monotonic() - started < 1 + ANSWER_GRACE_S + 2
    assert str(raised.value) == (
        f"the Dask scheduler at {address} did not answer within 1 s: it accepts connections but "
        "says nothing (is it a Dask scheduler?)"
    )


def test_an_http_server_as_the_scheduler_is_one_error() -> None:
    """Issue 28, item 13: Dask read the HTTP answer as a frame length and allocated 3 EiB."""
    with http_error_peer() as address:
        with pytest.raises(SncaError) as raised:
            with open_cluster(ClusterSpec(address=address, connect_timeout_s=5)):
                pass
    assert str(raised.value) == (
        f"{address} is not a Dask scheduler: it does not speak Dask's protocol (give the address "
        "the scheduler printed, usually port 8786)"
    )


def _sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@pytest.mark.slow  # a LocalCluster
def test_waiting_on_many_units_does_not_grow_the_clients_memory() -> None:
    """A 1,024-unit run's client grew to 16 GB in 50 minutes and was killed for memory:
    polling with distributed.wait(..., timeout) left waiters on every pending future at each
    call. Polling 1,000 pending futures for a while now allocates next to nothing."""
    import distributed

    from snca_cli.runtime.cluster import finished_in_turn

    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as local,
        distributed.Client(local) as client,
    ):
        futures = [client.submit(_sleep, 600, pure=False) for _ in range(1000)]
        traced: list[int] = []

        def stop_after_polls() -> bool:
            traced.append(tracemalloc.get_traced_memory()[0])
            return len(traced) > 55

        tracemalloc.start()
        with pytest.raises(Cancelled):
            list(finished_in_turn(futures, stop_after_polls))
        tracemalloc.stop()
        client.cancel(futures)
    grown = traced[-1] - traced[5]  # 50 polls, once the futures are registered
    assert grown < 2_000_000, grown  # distributed.wait: about 130 MB for 50 calls
