"""SQL statements per request of every workload at a small and a large data size, counted in-process
(bench/sqlcount.py): they must be equal."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench import infra
from bench.common import log

if TYPE_CHECKING:
    from bench.harness import Bench


async def run(bench: Bench) -> None:
    from bench.sqlcount import count_statements

    counts = await count_statements(bench.settings, bench.dataset, infra.REDIS_URL, log)
    bench.results["workloads"]["SQL"] = counts
