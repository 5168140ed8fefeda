"""Test configuration: markers for optional parts, and the shared real data.

* ``shared_data`` tests read ``$SNCA_SHARED_DATA`` (the folder holding ``aid150/`` and
  ``geotiff/``); they are skipped when it is unset. CI sets it, and then a missing folder fails.
* ``torch`` tests need the ``[train]`` extra; they are skipped without torch unless
  ``SNCA_REQUIRE_TORCH=1`` (set by CI), which turns the skip into a failure.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path

import pytest


def _shared_data() -> Path | None:
    value = os.environ.get("SNCA_SHARED_DATA")
    return Path(value) if value else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    shared = _shared_data()
    has_torch = importlib.util.find_spec("torch") is not None
    require_torch = os.environ.get("SNCA_REQUIRE_TORCH") == "1"
    for item in items:
        if "shared_data" in item.keywords and shared is None:
            item.add_marker(
                pytest.mark.skip(reason="set SNCA_SHARED_DATA to run shared-data tests")
            )
        if "torch" in item.keywords and not has_torch and not require_torch:
            item.add_marker(pytest.mark.skip(reason='needs torch: pip install ".[train]"'))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared real-data folder (``aid150/``, ``geotiff/RGB.byte.tif``)."""
    path = _shared_data()
    assert path is not None, "SNCA_SHARED_DATA is unset"
    assert path.is_dir(), f"SNCA_SHARED_DATA={path} is not a folder"
    return path


@pytest.fixture(scope="session")
def landsat_rgb(shared_data: Path) -> Path:
    """The real georeferenced Landsat RGB (791 x 718 px, 300 m, EPSG:32618, nodata 0)."""
    path = shared_data / "geotiff" / "RGB.byte.tif"
    assert path.is_file(), f"{path} is missing"
    return path


@pytest.fixture(scope="session")
def aid_dir(shared_data: Path) -> Path:
    """AID at 150 px: 30 class folders of real aerial scenes."""
    path = shared_data / "aid150"
    assert path.is_dir(), f"{path} is missing"
    return path


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Torch on one thread during each test, then restored: the tests' tensors are tiny, and on
    a busy 2-core machine two OpenMP threads waiting for each other make them many times slower."""
    if importlib.util.find_spec("torch") is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def exported(tmp_path_factory: pytest.TempPathFactory):
    """What `snca export` wrote for a small random-weight checkpoint (written once per run; see
    tests.helpers.export_run). Needs torch: only the export tests ask for it."""
    from tests.helpers.export_run import make_exported

    return make_exported(tmp_path_factory.mktemp("export"))
