"""W2 one dashboard: the owner's dashboard of one organization (bench/queries.py W2_KABINET), against
PostGraphile's same rows."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench import queries as Q
from bench.workloads.postgraphile import compare

if TYPE_CHECKING:
    from bench.harness import Bench


async def run(bench: Bench) -> None:
    ds = bench.dataset
    token = await bench.login(bench.base, ds.w2.email)
    bench.results["workloads"]["W2"] = await compare(
        bench, "W2", (Q.W2_KABINET, {"org": ds.w2.organization_id}, token),
        (Q.W2_POSTGRAPHILE, {"org": ds.w2.organization_pks[0]}),
    )
