"""A query's statements share one pool connection (kabinet.db.one_connection); mutations and
queries in large numbers at once still all finish (a pinned connection never waits for another)."""

from __future__ import annotations

import asyncio
from contextvars import ContextVar

import pytest
from asyncpg.pool import Pool
from tortoise import connections

from kabinet.db import KabinetAsyncpgClient
from tests.test_dashboard import DASHBOARD

OWNER = "owner@romashka.example"
LOGOUT_UNKNOWN_TOKEN = """mutation { logout(refreshToken: "not-a-token") { ok } }"""


async def test_a_dashboard_takes_one_pool_connection(gql, monkeypatch) -> None:
    client = connections.get("default")
    if not isinstance(client, KabinetAsyncpgClient):
        pytest.skip("SQLite has one connection; there is no pool")
    await gql.token_for(OWNER)
    acquired = []
    original = Pool.acquire
    # The request's own acquisitions (its context and the tasks it starts), not a background loop's
    # (the ended sign-ins' poll takes a connection every few seconds).
    in_request: ContextVar[bool] = ContextVar("in_request", default=False)

    def counted(pool, *args, **kwargs):
        if pool is client._pool and in_request.get():
            acquired.append(1)
        return original(pool, *args, **kwargs)

    monkeypatch.setattr(Pool, "acquire", counted)
    token = in_request.set(True)
    try:
        body = await gql.execute(DASHBOARD, as_user=OWNER)
    finally:
        in_request.reset(token)
    assert "errors" not in body and body["data"]["organizations"]["edges"]
    assert len(acquired) == 1


async def test_many_queries_and_mutations_at_once_all_finish(gql) -> None:
    await gql.token_for(OWNER)
    work = [gql.execute(DASHBOARD, as_user=OWNER) for _ in range(12)]
    work += [gql.execute(LOGOUT_UNKNOWN_TOKEN, as_user=OWNER) for _ in range(12)]
    bodies = await asyncio.wait_for(asyncio.gather(*work), timeout=60)
    assert all("errors" not in b for b in bodies[:12])
    assert all(b["data"]["logout"] is not None for b in bodies[12:])


async def test_a_query_cancelled_midway_gives_its_connection_back(gql) -> None:
    """A client that goes away mid-query (the request task is cancelled) leaves no connection
    taken: the pool ends up as idle as it was."""
    client = connections.get("default")
    if not isinstance(client, KabinetAsyncpgClient):
        pytest.skip("SQLite has one connection; there is no pool")
    await gql.token_for(OWNER)
    await gql.execute(DASHBOARD, as_user=OWNER)
    idle_before = client._pool.get_idle_size()
    for delay in (0, 0.002, 0.005, 0.01, 0.02):
        task = asyncio.create_task(gql.execute(DASHBOARD, as_user=OWNER))
        await asyncio.sleep(delay)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    for _ in range(100):
        if client._pool.get_idle_size() >= idle_before:
            break
        await asyncio.sleep(0.05)
    assert client._pool.get_idle_size() >= idle_before
    assert "errors" not in await gql.execute(DASHBOARD, as_user=OWNER)
