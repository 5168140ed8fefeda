"""benchmarks/serving.py: LanceDB's approximate search of a real snca export of clustered 128-d
vectors finds the true neighbours (recall@10 against snca's exact search), with and without a
class filter, and the report compares it with hnswlib measured in the same run."""

from __future__ import annotations

from pathlib import Path

import pytest
from serving import report, run

COUNT = 4000


@pytest.mark.slow
def test_lancedb_recall_and_report(tmp_path: Path) -> None:
    figures = run(COUNT, classes=4, queries=40, work=tmp_path)
    load, lance, hnsw = figures["load"], figures["lancedb"], figures["snca_hnswlib"]
    assert load["rows"] == COUNT and load["table_bytes"] > COUNT * 128 * 4
    for name in ("plain", "filtered"):
        assert lance[name]["recall_at_10"] >= 0.95, name
        assert hnsw[name]["recall_at_10"] >= 0.95, name
        assert 0 < lance[name]["p50_ms"] <= lance[name]["p99_ms"]
    text = report(figures)
    assert f"{COUNT:,} clustered 128-d unit vectors, 4 classes; 40 single queries" in text
    assert "LanceDB / hnswlib, filtered: p50 " in text
