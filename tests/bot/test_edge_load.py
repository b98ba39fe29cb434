"""Issue 14, points 1 and 2 under load, at a tenth of the issue's figures: the kept benchmark
(``pte-bot bench --edge``) against a real ``pte-bot serve`` process on 127.0.0.1. The full
run (2,000 connections of 1 MB, 5,000 slow ones) is in the README's Reliability table."""

from __future__ import annotations

from pathlib import Path

from bot.bench.edge import edge_bench


async def test_bad_signatures_and_slow_clients_cost_little_and_health_answers(
    tmp_path: Path,
) -> None:
    result = await edge_bench(
        connections=200, body_bytes=1_000_000, slow=500, hold=13, settle=6, workdir=tmp_path
    )
    bad, slow = result["bad_signatures"], result["slow_clients"]
    assert sum(bad["answers"].values()) == 200
    assert set(bad["answers"]) <= {"403", "503", "reset"}
    assert bad["rss_growth_mb"] < 100
    assert bad["rss_after_vs_before"] <= 1.2
    assert bad["healthz_failures"] == slow["healthz_failures"] == 0
    assert bad["healthz_worst_s"] < 1
    assert slow["healthz_worst_s"] < 1
    assert slow["closed_by_server"] == 500  # none sent its headers in time
    # Counted, not logged one by one: start-up lines, no traceback.
    assert result["server_log_tracebacks"] == 0
    assert result["server_log_lines"] < 30
