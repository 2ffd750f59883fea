"""W1 many organizations: a user who sees 50 organizations, each one's products with their contract,
and documents (bench/queries.py W1_KABINET), against PostGraphile's same rows."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench import queries as Q
from bench.workloads.postgraphile import compare

if TYPE_CHECKING:
    from bench.harness import Bench


async def run(bench: Bench) -> None:
    ds = bench.dataset
    token = await bench.login(bench.base, ds.w1.email)
    bench.results["workloads"]["W1"] = await compare(
        bench, "W1", (Q.W1_KABINET, {}, token), (Q.W1_POSTGRAPHILE, {"user": ds.w1.user_pk})
    )
