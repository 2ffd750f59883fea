"""Several API processes on one PostgreSQL and one Redis: a change made through one reaches a
subscriber of another, and a Redis restart under a live subscription loses nothing.

Needs KABINET_TEST_DATABASE_URL (PostgreSQL) and a redis:// KABINET_TEST_BROKER_URL; the API
processes are real `kabinet serve` processes on the test session's database. The Redis restart
uses a private redis-server of its own, never the shared one.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from foundation.ids import to_global_id
from tests import factories
from tests.factories import Role
from tests.processes import free_port, stop, wait_until_serving
from tests.live import LEGACY_WS, TRANSPORT_WS, GraphQLSocket

ROOT = Path(__file__).resolve().parent.parent
BROKER = os.environ.get("KABINET_TEST_BROKER_URL", "")

pytestmark = pytest.mark.skipif(
    not os.environ.get("KABINET_TEST_DATABASE_URL") or not BROKER.startswith("redis://"),
    reason="scale-out needs PostgreSQL (KABINET_TEST_DATABASE_URL) and Redis (KABINET_TEST_BROKER_URL=redis://…)",
)

SESSIONS_LIVE = """subscription($org: ID!) { sessions(organizationId: $org) {
  sessions { id status } event { kind session { id status } } } }"""
TERMINATE = "mutation($id: ID!) { terminateSession(sessionId: $id) { session { status } userErrors { code } } }"


class Api:
    """One `kabinet serve` process."""

    def __init__(self, settings, broker_url: str, log_dir: Path, name: str, **extra_env: str) -> None:
        self.port = free_port()
        self.url = f"127.0.0.1:{self.port}"
        self.log = log_dir / f"{name}.log"
        env = {
            **os.environ,
            "KABINET_DATABASE_URL": settings.database_url,
            "KABINET_BROKER_URL": broker_url,
            "KABINET_SECRET_KEY": settings.secret_key,
            "KABINET_RUN_WORKERS": "false",
            "KABINET_MIGRATE_ON_START": "false",
            "KABINET_SEED_DEMO": "false",
            "KABINET_DATA_DIR": str(log_dir / name),
            **extra_env,
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "kabinet.cli", "serve", "--port", str(self.port)],
            cwd=ROOT, env=env, stdout=self.log.open("w"), stderr=subprocess.STDOUT,
        )

    async def ready(self, timeout: float = 90) -> None:  # a loaded CI machine starts a process slowly
        await wait_until_serving(self.process, self.url, self.log, path="/healthz", timeout=timeout)

    async def post(self, query: str, variables: dict, token: str | None = None) -> dict:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with httpx.AsyncClient() as client:
            response = await client.post(
                f"http://{self.url}/graphql", json={"query": query, "variables": variables}, headers=headers, timeout=15
            )
        return response.json()

    async def login(self, email: str) -> str:
        body = await self.post(
            "mutation($l: String!, $p: String!) { login(input: {login: $l, password: $p}) { accessToken } }",
            {"l": email, "p": factories.PASSWORD},
        )
        return body["data"]["login"]["accessToken"]

    async def readiness(self) -> dict:
        async with httpx.AsyncClient() as client:
            return (await client.get(f"http://{self.url}/readyz", timeout=5)).json()

    def stop(self) -> None:
        stop(self.process)

class PrivateRedis:
    """A throwaway redis-server on a free port, that the test may kill and start again."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [shutil.which("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if redis.Redis(port=self.port, socket_connect_timeout=0.5).ping():
                    return
            except redis.exceptions.ConnectionError:
                time.sleep(0.05)
        raise AssertionError("the private redis-server did not start")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


async def started(apis: list[Api]) -> list[Api]:
    try:
        await asyncio.gather(*(api.ready() for api in apis))
    except BaseException:
        for api in apis:
            api.stop()
        raise
    return apis


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = PrivateRedis()
    server.start()
    yield server
    server.kill()


async def team_with_a_session():
    org, users = await factories.create_team(Role.ADMIN)
    database = await factories.create_database(org)
    sessions = [await factories.create_session(database, user_name=f"Оператор {i}") for i in range(3)]
    return org, users, sessions


async def watch(api: Api, token: str, protocol: str, org) -> GraphQLSocket:
    sock = GraphQLSocket(api.url, protocol)
    assert (await sock.connect(token))["type"] == "connection_ack"
    await sock.subscribe(SESSIONS_LIVE, {"org": to_global_id("Organization", org.id)})
    first = (await sock.next_data())["data"]["sessions"]
    assert first["event"] is None
    return sock


async def terminate_through(api: Api, token: str, session) -> None:
    body = await api.post(TERMINATE, {"id": to_global_id("Session", session.id)}, token)
    assert body["data"]["terminateSession"]["userErrors"] == [], body


async def test_a_subscriber_of_one_process_sees_a_termination_made_through_another(app, settings, log_dir):
    # B reads the event log only once a minute on its own: within the wait below, the change can
    # only reach B's subscribers through the broker's notice.
    a, b = await started([
        Api(settings, BROKER, log_dir, "a"), Api(settings, BROKER, log_dir, "b", KABINET_EVENT_POLL_SECONDS="60"),
    ])
    sockets: list[GraphQLSocket] = []
    try:
        org, users, sessions = await team_with_a_session()
        admin_token = await a.login(users[Role.ADMIN].email)
        owner_token = await b.login(users[Role.OWNER].email)
        sockets = [await watch(b, owner_token, protocol, org) for protocol in (TRANSPORT_WS, LEGACY_WS)]

        await terminate_through(a, admin_token, sessions[0])
        for sock in sockets:
            update = (await sock.next_data(timeout=5))["data"]["sessions"]
            assert update["event"] == {
                "kind": "TERMINATING", "session": {"id": to_global_id("Session", sessions[0].id), "status": "TERMINATING"},
            }
    finally:
        for sock in sockets:
            await sock.close()
        a.stop()
        b.stop()


async def test_a_redis_restart_under_a_live_subscription_loses_nothing(app, settings, log_dir, private_redis):
    a, b = await started([Api(settings, private_redis.url, log_dir, "a"), Api(settings, private_redis.url, log_dir, "b")])
    sock = None
    try:
        org, users, sessions = await team_with_a_session()
        admin_token = await a.login(users[Role.ADMIN].email)
        owner_token = await b.login(users[Role.OWNER].email)
        sock = await watch(b, owner_token, TRANSPORT_WS, org)
        assert (await a.readiness())["checks"]["broker"] is True

        private_redis.kill()
        # A change while the broker is down: its notice is lost, the event is not (B's hub polls).
        await terminate_through(a, admin_token, sessions[0])
        during = (await sock.next_data(timeout=8))["data"]["sessions"]
        assert during["event"]["session"]["id"] == to_global_id("Session", sessions[0].id)
        assert (await a.readiness())["checks"]["broker"] is False

        private_redis.start()  # the same port
        for _ in range(100):
            if (await a.readiness())["checks"]["broker"]:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("A's broker connection did not come back")

        await terminate_through(a, admin_token, sessions[1])
        after = (await sock.next_data(timeout=5))["data"]["sessions"]
        assert after["event"]["session"]["id"] == to_global_id("Session", sessions[1].id)
        assert {s["id"]: s["status"] for s in after["sessions"]} == {
            to_global_id("Session", s.id): "TERMINATING" if s in sessions[:2] else "ACTIVE" for s in sessions
        }
    finally:
        if sock is not None:
            await sock.close()
        a.stop()
        b.stop()


async def test_deployments_sharing_one_redis_hear_only_their_own_notices(private_redis: PrivateRedis) -> None:
    """Redis pub/sub is one space per server: each deployment's channels carry its namespace (by
    default its database's name), so staging beside production, or parallel test runs, never cross."""
    from events.broker import create_broadcast
    from foundation.settings import Settings

    namespaces = [Settings(_env_file=None, database_url=f"postgres://root@127.0.0.1/{name}").resolved_broker_namespace
                  for name in ("kabinet_production", "kabinet_staging")]
    assert namespaces == ["kabinet_production", "kabinet_staging"]
    production, staging, production_too = (create_broadcast(private_redis.url, namespace)
                                           for namespace in (*namespaces, namespaces[0]))
    for broadcast in (production, staging, production_too):
        await broadcast.connect()
    try:
        async with production.subscribe("events.hub") as heard_by_production, \
                staging.subscribe("events.hub") as heard_by_staging:
            await asyncio.sleep(0.3)  # both listening
            await staging.publish("events.hub", "staging's notice")
            await production_too.publish("events.hub", "production's notice")
            first = await asyncio.wait_for(heard_by_production.get(), timeout=5)
            assert (first.channel, first.message) == ("events.hub", "production's notice")
            only = await asyncio.wait_for(heard_by_staging.get(), timeout=5)
            assert only.message == "staging's notice"
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(heard_by_staging.get(), timeout=0.5)
    finally:
        for broadcast in (production, staging, production_too):
            await broadcast.disconnect()
