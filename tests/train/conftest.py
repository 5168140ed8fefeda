"""Training tests run torch on one thread: their tensors are tiny, and on a busy 2-core machine
two OpenMP threads waiting for each other make them tens of times slower."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Set torch's intra-op threads to 1 for the test, then restore them."""
    if importlib.util.find_spec("torch") is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
