"""Fixtures: one real database per test session (SQLite, or PostgreSQL when asked), the app on it.

`KABINET_TEST_DATABASE_URL=postgres://root@127.0.0.1:5432/test` runs the suite on a fresh
PostgreSQL database made for this run (and dropped after it); `KABINET_TEST_BROKER_URL` picks the
broker. Without them: a SQLite file in a temporary folder and the in-process broker. Either is a
copy of the run's migrated template (tests/databases.py).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from kabinet.app import create_app
from kabinet.db import count_sql
from foundation.settings import Settings
from tests.databases import drop_the_runs_template, migrated_database

DEMO_PASSWORD = "kabinet-demo"

# The simulated cluster, said, here and in every kabinet process a test starts (they inherit the
# environment): on PostgreSQL, or once a test issues an agent token, the deployment would otherwise be
# in agent mode (resolvers/cloud/cluster_mode.py), and the tests of the workers' own execution need the
# simulator. Tests of agent mode say so; tests of the default mode (test_doctor.py, test_deployment.py)
# take the variable out of their processes' environment.
os.environ["KABINET_CLUSTER"] = "simulated"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """This worker's database, migrated: a copy of the run's template (tests/databases.py). The app's
    start still migrates it (nothing is left to do) and seeds the demo."""
    return migrated_database(tmp_path_factory, tmp_path_factory.mktemp("db") / "kabinet.sqlite3")


def pytest_sessionfinish(session: pytest.Session) -> None:
    if not os.environ.get("PYTEST_XDIST_WORKER"):  # the run's controlling process, after its workers
        drop_the_runs_template(session.config._tmp_path_factory.getbasetemp())


@pytest.fixture(scope="session")
def settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        _env_file=None,
        database_url=database_url,
        broker_url=os.environ.get("KABINET_TEST_BROKER_URL", "memory://"),
        data_dir=tmp_path_factory.mktemp("data"),
        secret_key="test-secret-key-that-is-long-enough-for-hs256",
        mail_url=f"file://{tmp_path_factory.mktemp('mail')}",
        seed_demo=True,
        migrate_on_start=True,
        run_workers=False,
        cluster_churn=0,
        cluster="simulated",  # as KABINET_CLUSTER above
        # Every test request comes from 127.0.0.1: the per-client code limit is tested on addresses of its own.
        codes_per_client_hour=1_000_000,
        # every test's wrong passwords come from the one test client address: the tests of the
        # per-address limit lower it and use addresses of their own (tests/test_login_limits.py)
        login_address_max_failures=1_000_000,
    )


@pytest_asyncio.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[Any]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest_asyncio.fixture(scope="session")
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://kabinet.test") as http_client:
        yield http_client


class GraphQLClient:
    """Posts GraphQL to the app as a given demo user; remembers each user's access token."""

    def __init__(self, http_client: httpx.AsyncClient, app: Any = None) -> None:
        self.http = http_client
        self.app = app  # for tests that change how the app answers (tests/both_paths.py)
        self.tokens: dict[str, str] = {}

    async def token_for(self, email: str) -> str:
        if email not in self.tokens:
            await self.token_for_password(email, DEMO_PASSWORD)
        return self.tokens[email]

    async def token_for_password(self, email: str, password: str) -> str:
        body = await self.execute(
            "mutation($l: String!, $p: String!) { login(input: {login: $l, password: $p}) "
            "{ accessToken userErrors { code message } } }",
            {"l": email, "p": password},
        )
        assert body["data"]["login"]["userErrors"] == [], body
        self.tokens[email] = body["data"]["login"]["accessToken"]
        return self.tokens[email]

    async def execute(self, query: str, variables: dict | None = None, *, as_user: str | None = None) -> dict:
        headers = {"Authorization": f"Bearer {await self.token_for(as_user)}"} if as_user else {}
        response = await self.http.post("/graphql", json={"query": query, "variables": variables or {}}, headers=headers)
        assert response.headers["content-type"].startswith("application/"), response.text
        return response.json()


@pytest_asyncio.fixture(scope="session")
async def gql(client: httpx.AsyncClient, app: Any) -> GraphQLClient:
    return GraphQLClient(client, app)


@pytest.fixture
def sql_counter():
    return count_sql


ROOT = Path(__file__).resolve().parent.parent


@pytest_asyncio.fixture(scope="session")
async def live_server(app: Any) -> AsyncIterator[str]:
    """The app on a real socket (127.0.0.1, a free port), for WebSocket clients: its base URL."""
    import asyncio
    import socket

    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    from kabinet.transport import LeanWebSocketProtocol

    # the WebSocket protocol `kabinet serve` runs (kabinet/cli/serving.py)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning",
                                           ws=LeanWebSocketProtocol))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    yield f"127.0.0.1:{port}"
    server.should_exit = True
    await asyncio.wait_for(task, timeout=10)
