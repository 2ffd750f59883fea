"""Graceful shutdown of a real `kabinet serve` process: on SIGTERM its WebSockets close at once with
1001 (going away), its workers stop, and it exits with status 0."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import websockets

from tests.conftest import DEMO_PASSWORD
from tests.databases import migrated_sqlite
from tests.processes import free_port, wait_until_serving
from tests.live import LEGACY_WS, TRANSPORT_WS, GraphQLSocket

ROOT = Path(__file__).resolve().parent.parent
SESSIONS_LIVE = "subscription($org: ID!) { sessions(organizationId: $org) { sessions { id } } }"


@pytest.fixture
def server(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory):
    """`kabinet serve` on the embedded default (SQLite, demo data, in-process workers) in a temp folder,
    its database already migrated (a copy of the run's template: shutting down is the subject here)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KABINET_")}
    env["KABINET_DATA_DIR"] = str(tmp_path / "data")
    migrated_sqlite(tmp_path_factory, tmp_path / "data" / "kabinet.sqlite3")
    log = tmp_path / "serve.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "kabinet.cli", "serve", "--port", str(port)],
        cwd=tmp_path, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
    )
    yield process, f"127.0.0.1:{port}", log
    if process.poll() is None:
        process.kill()
        process.wait()


async def owner_token_and_organization(url: str) -> tuple[str, str]:
    async with httpx.AsyncClient(base_url=f"http://{url}") as client:
        login = await client.post("/graphql", json={
            "query": "mutation($l: String!, $p: String!) { login(input: {login: $l, password: $p}) { accessToken } }",
            "variables": {"l": "owner@romashka.example", "p": DEMO_PASSWORD},
        })
        token = login.json()["data"]["login"]["accessToken"]
        orgs = await client.post(
            "/graphql", json={"query": "{ organizations { edges { node { id } } } }"},
            headers={"Authorization": f"Bearer {token}"},
        )
    return token, orgs.json()["data"]["organizations"]["edges"][0]["node"]["id"]


async def closing_code(sock: GraphQLSocket, timeout: float) -> int:
    """Read until the server closes the socket: its close code."""
    try:
        while True:
            await sock.receive(timeout=timeout)
    except websockets.ConnectionClosed as closed:
        assert closed.rcvd is not None, "the connection dropped without a closing handshake"
        return closed.rcvd.code


async def test_on_sigterm_live_subscriptions_close_with_going_away_and_the_process_exits_cleanly(server):
    process, url, log = server
    await wait_until_serving(process, url, log)
    token, org = await owner_token_and_organization(url)
    sockets = [GraphQLSocket(url, protocol) for protocol in (TRANSPORT_WS, LEGACY_WS)]
    for sock in sockets:
        assert (await sock.connect(token))["type"] == "connection_ack"
        await sock.subscribe(SESSIONS_LIVE, {"org": org})
        assert (await sock.next_data())["data"]["sessions"]["sessions"]

    process.send_signal(signal.SIGTERM)
    codes = await asyncio.gather(*(closing_code(sock, timeout=5) for sock in sockets))
    assert codes == [1001, 1001], "going away (uvicorn alone would wait, then close with 1012)"

    exit_code = await asyncio.to_thread(process.wait, 15)
    output = log.read_text()
    assert exit_code == 0, output
    assert "closing WebSockets (1001) and stopping workers" in output
    assert "Application shutdown complete" in output
