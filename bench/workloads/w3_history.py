"""W3 deep history: `balanceTransactions(first: 100, after:)` through the whole ledger, walked once
for the cursors, then its first and last pages interleaved: keyset pagination keeps them alike."""

from __future__ import annotations

import statistics
import time
from typing import TYPE_CHECKING

import httpx

from bench import queries as Q
from bench.common import BenchError, bearer, log, spread

if TYPE_CHECKING:
    from bench.harness import Bench


async def run(bench: Bench) -> None:
    ds = bench.dataset
    token = await bench.login(bench.base_uncached, ds.w3.email)
    org = ds.w3.organization_id
    headers = bearer(token)
    # the server without response cache: pages are read again and again, W3 measures the SQL
    async with httpx.AsyncClient(base_url=bench.base_uncached, headers=headers, timeout=60) as client:

        async def page(after: str | None) -> tuple[float, dict]:
            started = time.perf_counter()
            response = await client.post("/graphql", json={"query": Q.W3_KABINET, "variables": {"org": org, "after": after}})
            elapsed = (time.perf_counter() - started) * 1000
            body = response.json()
            if body.get("errors"):
                raise BenchError(f"ledger page failed: {str(body['errors'])[:300]}")
            return elapsed, body["data"]["organization"]["balanceTransactions"]

        cursors: list[str | None] = [None]
        walk: list[float] = []
        rows = 0
        walk_started = time.monotonic()
        while True:
            elapsed, connection = await page(cursors[-1])
            walk.append(elapsed)
            rows += len(connection["edges"])
            if not connection["pageInfo"]["hasNextPage"]:
                break
            cursors.append(connection["pageInfo"]["endCursor"])
        walk_s = time.monotonic() - walk_started
        if rows != bench.scale.ledger_rows:
            raise BenchError(f"paged {rows} ledger rows, expected {bench.scale.ledger_rows}")
        n = min(50, len(cursors) // 2) or 1
        first, last = cursors[:n], cursors[-n:]
        firsts, lasts, ratios = [], [], []
        for _ in range(bench.args.runs):
            f, l = [], []
            for a, b in zip(first, last):  # interleaved: drift hits both ends alike
                f.append((await page(a))[0])
                l.append((await page(b))[0])
            firsts.append(statistics.median(f))
            lasts.append(statistics.median(l))
            ratios.append(lasts[-1] / firsts[-1])
    result = {
        "rows": rows, "pages": len(cursors), "page_size": 100, "pages_measured_each_end": n,
        "walk_s": walk_s, "walk_first_pages_ms": statistics.median(walk[:n]), "walk_last_pages_ms": statistics.median(walk[-n:]),
        "first_pages_ms": spread(firsts), "last_pages_ms": spread(lasts), "ratio_last_first": spread(ratios),
    }
    log(f"  {len(cursors)} pages in {walk_s:.1f} s; first {n} pages {result['first_pages_ms']['median']:.1f} ms, "
        f"last {n} {result['last_pages_ms']['median']:.1f} ms (ratio {result['ratio_last_first']['median']:.2f})")
    bench.results["workloads"]["W3"] = result
