"""The ``exported`` model of the export tests, written once for the whole package."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="package")
def exported(tmp_path_factory: pytest.TempPathFactory):
    """What `snca export` wrote for a small random-weight checkpoint (tests.helpers.export_run)."""
    from tests.helpers.export_run import make_exported  # needs torch: imported once it is there

    return make_exported(tmp_path_factory.mktemp("export"))
