"""SQL statements per request, counted in-process at two data sizes (the constant-SQL check).

The app runs in this process (the same create_app, on the bench database) and Tortoise's DEBUG
log of every statement is counted, as tests/conftest.py `count_sql` does. For HTTP operations:
one request each at the small and the large size. For subscriptions: the statements one change
costs with few and with many subscribers attached (a real uvicorn socket, real WebSockets).
"""

from __future__ import annotations

import asyncio

import httpx
import orjson
import uvicorn
import websockets

from bench import queries as Q
from bench.changes import SessionChanges
from bench.data import Dataset
from bench.infra import free_port
from kabinet.app import create_app
from kabinet.db import count_sql
from foundation.settings import Settings
from foundation.ids import pk_of


async def _execute(client: httpx.AsyncClient, token: str | None, query: str, variables: dict | None = None) -> tuple[dict, list[str]]:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    with count_sql() as counter:
        response = await client.post("/graphql", json={"query": query, "variables": variables or {}}, headers=headers)
    body = response.json()
    if body.get("errors"):
        raise RuntimeError(f"GraphQL errors: {str(body['errors'])[:500]}")
    for payload in body.get("data", {}).values():
        if isinstance(payload, dict) and payload.get("userErrors"):
            raise RuntimeError(f"userErrors: {payload['userErrors']}")
    return body, counter.statements


async def _login(client: httpx.AsyncClient, email: str, password: str) -> str:
    body = (await client.post("/graphql", json={"query": Q.LOGIN, "variables": {"login": email, "password": password}})).json()
    return body["data"]["login"]["accessToken"]


async def _subscribers(url: str, token: str, org: str, count: int) -> list:
    sockets = []
    for _ in range(count):
        socket = await websockets.connect(url, subprotocols=["graphql-transport-ws"], open_timeout=30)
        await socket.send(orjson.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}).decode())
        await socket.recv()
        await socket.send(orjson.dumps({"id": "1", "type": "subscribe",
                                        "payload": {"query": Q.W4_SUBSCRIPTION, "variables": {"org": org}}}).decode())
        first = orjson.loads(await socket.recv())
        if first.get("type") != "next" or first["payload"].get("errors"):
            raise RuntimeError(f"subscription failed: {str(first)[:300]}")
        sockets.append(socket)
    return sockets


async def _statements_per_change(changes: SessionChanges, sockets: list, tries: int = 3) -> list[str]:
    """The fewest statements one change and its delivery to every socket cost, over a few tries
    (the event hub's 2-second poll may fall into a window)."""
    best = None
    for _ in range(tries):
        with count_sql(every_task=True) as counter:  # the hub's delivery runs in its own tasks
            key, _ = await changes.next()
            for socket in sockets:
                while True:
                    message = orjson.loads(await asyncio.wait_for(socket.recv(), 15))
                    event = message.get("payload", {}).get("data", {}).get("sessions", {}).get("event")
                    if event and f"{event['kind']}:{event['session']['id']}" == key:
                        break
            await asyncio.sleep(0.05)
        if best is None or len(counter.statements) < len(best):
            best = counter.statements
    return best


async def count_statements(settings: Settings, ds: Dataset, broadcast_url: str, log) -> dict:
    """{operation: {"small": n, "large": n, "constant": bool, ...}} for every workload."""
    app = create_app(settings)
    results: dict[str, dict] = {}

    def record(name: str, small_sql: list[str], large_sql: list[str], small_label: str, large_label: str) -> None:
        small, large = len(small_sql), len(large_sql)
        results[name] = {"small": small, "large": large, "small_is": small_label, "large_is": large_label,
                         "constant": small == large}
        if small != large:  # what each sent, to see which statement repeats
            results[name]["statements_small"] = [s[:300] for s in small_sql]
            results[name]["statements_large"] = [s[:300] for s in large_sql]
        log(f"  {name}: {small} statements ({small_label}) vs {large} ({large_label})")

    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            tokens = {name: await _login(client, getattr(ds, name).email, ds.password)
                      for name in ("w1", "w1_small", "w2", "w2_small", "w3", "w3_small", "w4", "w5")}
            for name in tokens:  # warm: the first request of a kind may load something once
                await client.post("/graphql", json={"query": "{ me { id } }"}, headers={"authorization": f"Bearer {tokens[name]}"})

            _, small = await _execute(client, tokens["w1_small"], Q.W1_KABINET)
            _, large = await _execute(client, tokens["w1"], Q.W1_KABINET)
            record("W1 organizations→products→contract+documents", small, large,
                   f"{len(ds.w1_small.organization_ids)} orgs", f"{len(ds.w1.organization_ids)} orgs")

            _, small = await _execute(client, tokens["w2_small"], Q.W2_KABINET, {"org": ds.w2_small.organization_id})
            _, large = await _execute(client, tokens["w2"], Q.W2_KABINET, {"org": ds.w2.organization_id})
            record("W2 dashboard", small, large, "2 rows each", "20 rows each")

            org = ds.w3.organization_id
            _, first_page = await _execute(client, tokens["w3"], Q.W3_KABINET, {"org": org})
            _, small_page = await _execute(client, tokens["w3_small"], Q.W3_KABINET, {"org": ds.w3_small.organization_id})
            record("W3 ledger page (data size)", small_page, first_page, "small ledger, page 1", "large ledger, page 1")
            # a cursor deep in the ledger: page through the last pages only
            body, _ = await _execute(client, tokens["w3"], Q.W3_KABINET, {"org": org})
            after = body["data"]["organization"]["balanceTransactions"]["pageInfo"]["endCursor"]
            pages = 1
            while True:
                body, deep = await _execute(client, tokens["w3"], Q.W3_KABINET, {"org": org, "after": after})
                pages += 1
                info = body["data"]["organization"]["balanceTransactions"]["pageInfo"]
                if not info["hasNextPage"]:
                    break
                after = info["endCursor"]
            record("W3 ledger page (page number)", first_page, deep, "page 1", f"page {pages}")

            session = (await client.post("/graphql", json={
                "query": "query($o: ID!) { organization(id: $o) { sessions(status: ACTIVE, first: 1) { edges { node { id } } } } }",
                "variables": {"o": ds.w2_small.organization_id}}, headers={"authorization": f"Bearer {tokens['w2_small']}"})).json()
            small_session = session["data"]["organization"]["sessions"]["edges"][0]["node"]["id"]
            _, small = await _execute(client, tokens["w2_small"], Q.W5_TERMINATE, {"id": small_session})
            _, large = await _execute(client, tokens["w5"], Q.W5_TERMINATE, {"id": ds.w5_session_ids[-1]})
            record("W5 terminateSession", small, large, "org of 2 sessions", f"org of {len(ds.w5_session_ids):,} sessions")
            # both databases first get a schedule (and so a planned run), then the measured change replaces it
            await _execute(client, tokens["w2_small"], Q.W5_SCHEDULE, {"db": ds.w2_small.database_ids[0], "day": 6})
            await _execute(client, tokens["w5"], Q.W5_SCHEDULE, {"db": ds.w5.database_ids[0], "day": 6})
            _, small = await _execute(client, tokens["w2_small"], Q.W5_SCHEDULE, {"db": ds.w2_small.database_ids[0], "day": 7})
            _, large = await _execute(client, tokens["w5"], Q.W5_SCHEDULE, {"db": ds.w5.database_ids[0], "day": 7})
            record("W5 scheduleUpdate", small, large, "org of 1 database", f"org of {len(ds.w5.database_ids)} databases")

        # subscriptions: statements per change with 5 and with 50 subscribers
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning"))
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.02)
        sockets: list = []
        try:
            url = f"ws://127.0.0.1:{port}/graphql"
            changes = SessionChanges(app.state.broadcast, pk_of(ds.w4.organization_id, "Organization"))
            sockets = await _subscribers(url, tokens["w4"], ds.w4.organization_id, 5)
            few = await _statements_per_change(changes, sockets)
            sockets += await _subscribers(url, tokens["w4"], ds.w4.organization_id, 45)
            many = await _statements_per_change(changes, sockets)
            record("W4 one session change, delivered", few, many, "5 subscribers", "50 subscribers")
            results["W4 one session change, delivered"]["per_extra_subscriber"] = (len(many) - len(few)) / 45
        finally:
            await asyncio.gather(*(s.close() for s in sockets), return_exceptions=True)
            server.should_exit = True
            await asyncio.wait_for(task, timeout=15)
    return results
