"""Real client shapes, one after another on one server (issue 10, item 4): every first message of a
live list is data, never a Python error, whatever the clients before did (their query texts,
operations side by side on one socket, stops, disconnects while the first message is being made)."""

from __future__ import annotations

import asyncio
import gc
import json
import random
import uuid

import pytest

from resolvers.common.context import RequestContext, Viewer
from tests import factories
from tests.factories import Role
from tests.live import LEGACY_WS, TRANSPORT_WS, GraphQLSocket
from tests.test_live_sessions import as_member, gid

# What each library sends for the same live list. Apollo Client adds __typename to every selection
# set and names the operation; Python gql prints the document its own way; graphql-ws sends the
# text as written; subscriptions-transport-ws sends `variables`/`operationName` as null when unset.
APOLLO = """subscription LiveSessions($organizationId: ID!) {
  sessions(organizationId: $organizationId) {
    sessions {
      id
      userName
      status
      database {
        name
        __typename
      }
      __typename
    }
    event {
      kind
      __typename
    }
    __typename
  }
}"""
GQL = """subscription LiveSessions($organizationId: ID!) {
  sessions(organizationId: $organizationId) {
    sessions {
      id
      userName
      status
      database {
        name
      }
    }
    event {
      kind
    }
  }
}"""
GRAPHQL_WS = (
    "subscription ($organizationId: ID!) { sessions(organizationId: $organizationId) "
    "{ sessions { id userName status database { name } } event { kind at } } }"
)
EVENTS = "subscription ($organizationId: ID!) { sessionEvents(organizationId: $organizationId) { kind } }"


def inline(org_id: str) -> str:
    """The list with its organization written into the text: nothing in `variables`."""
    return 'subscription { sessions(organizationId: "%s") { sessions { id status } event { kind } } }' % org_id


def clients(org_id: str) -> list[tuple[str, str, list[dict]]]:
    """(name, sub-protocol, payloads of the operations it starts on its socket)."""
    variables = {"organizationId": org_id}
    return [
        ("graphql-ws", TRANSPORT_WS, [{"query": GRAPHQL_WS, "variables": variables}]),
        ("apollo", TRANSPORT_WS, [
            {"query": APOLLO, "variables": variables, "operationName": "LiveSessions", "extensions": {}},
            {"query": EVENTS, "variables": variables, "operationName": None, "extensions": {}},
        ]),
        ("gql", LEGACY_WS, [{"query": GQL, "variables": variables, "operationName": "LiveSessions"}]),
        ("subscriptions-transport-ws", LEGACY_WS, [
            {"query": APOLLO, "variables": variables, "operationName": None},
            {"query": inline(org_id), "variables": None, "operationName": None},
            {"query": inline(org_id)},
            {"query": GQL, "variables": variables},
        ]),
    ]


async def run_client(url: str, token: str, protocol: str, payloads: list[dict], rnd: random.Random) -> list[dict]:
    """Start the operations (a few milliseconds apart at most), then, as clients do: read each live
    list's first message and stop it, or go away at once while the server is still making them.
    The first messages read."""
    sock = GraphQLSocket(url, protocol)
    try:
        assert (await sock.connect(token))["type"] == "connection_ack"
        ids = {}
        for n, payload in enumerate(payloads):
            ids[str(n)] = payload
            kind = "subscribe" if protocol == TRANSPORT_WS else "start"
            await sock.send({"id": str(n), "type": kind, "payload": payload})
            if rnd.random() < 0.5:
                await asyncio.sleep(rnd.uniform(0, 0.003))
        if rnd.random() < 0.25:
            return []  # disconnects while its first messages are being made
        lists = {n for n, payload in ids.items() if "sessionEvents" not in payload["query"]}
        firsts = []
        while lists:
            message = await sock.receive(timeout=10)
            if message.get("id") not in lists:
                continue
            lists.discard(message["id"])
            firsts.append(message)
            if rnd.random() < 0.5:
                await sock.send({"id": message["id"], "type": "complete" if protocol == TRANSPORT_WS else "stop"})
        return firsts
    finally:
        await sock.close()


async def test_every_first_message_of_a_sequence_of_clients_is_data(gql, live_server):
    org, users = await factories.create_team(Role.ADMIN, Role.USER)
    database = await factories.create_database(org)
    own = await factories.create_session(database, user=users[Role.USER], user_name="Пользователь")
    await factories.create_session(database, user_name="Бухгалтер")
    tokens = {}
    for role in (Role.OWNER, Role.ADMIN, Role.USER):
        tokens[role] = gql.tokens[await as_member(gql, users[role].email)]
    org_id = gid("Organization", org.id)
    rnd = random.Random(10)
    broken = []
    for run in range(15):
        for name, protocol, payloads in clients(org_id):
            role = rnd.choice(list(tokens))
            firsts = await asyncio.wait_for(run_client(live_server, tokens[role], protocol, payloads, rnd), timeout=30)
            for message in firsts:
                payload = message.get("payload") or {}
                sessions = ((payload.get("data") or {}).get("sessions") or {}).get("sessions")
                expected = 1 if role == Role.USER else 2
                if message["type"] not in ("next", "data") or payload.get("errors") or len(sessions or ()) != expected:
                    broken.append((run, name, role.value, json.dumps(message, ensure_ascii=False)[:300]))
            if rnd.random() < 0.5:
                gc.collect()
    assert not broken, broken
    # and the server still answers: nobody who went away took the database with them
    body = await asyncio.wait_for(
        gql.execute("query($id: ID!) { node(id: $id) { id } }", {"id": gid("Session", own.id)}, as_user=users[Role.USER].email),
        timeout=10,
    )
    assert body["data"]["node"] == {"id": gid("Session", own.id)}, body


async def test_memberships_read_side_by_side_and_forgotten_meanwhile_are_never_missing(app, settings):
    """Operations sharing one context (as strawberry's WebSocket handlers share a socket's) each
    forget and read the memberships: every reader gets them. A reader used to get None when
    another forgot them between the load's end and the reader's turn, and then failed with
    "argument of type 'NoneType' is not iterable"."""
    org, users = await factories.create_team()
    owner = users[Role.OWNER]
    ctx = RequestContext(settings, Viewer(owner.id, owner.id))
    rnd = random.Random(4)
    outcomes: list[object] = []

    async def operation() -> None:
        for _ in range(rnd.randrange(5)):
            await asyncio.sleep(0)
        ctx.forget_memberships()
        try:
            outcomes.append(org.id in await ctx.memberships())
        except Exception as error:  # noqa: BLE001 — what a subscriber would have been sent
            outcomes.append(repr(error))

    for _ in range(20):
        await asyncio.gather(*(operation() for _ in range(5)))
    assert outcomes == [True] * 100, [o for o in outcomes if o is not True][:3]


async def test_a_waiter_that_goes_away_does_not_cancel_the_others_load(app, settings):
    org, users = await factories.create_team()
    owner = users[Role.OWNER]
    ctx = RequestContext(settings, Viewer(owner.id, owner.id))
    leaving = asyncio.ensure_future(ctx.memberships())
    staying = asyncio.ensure_future(ctx.memberships())
    await asyncio.sleep(0)
    leaving.cancel()
    assert org.id in await staying


def test_each_operation_of_a_socket_gets_a_context_of_its_own(settings):
    socket_context = RequestContext(settings, Viewer(uuid.uuid4(), uuid.uuid4()), request_id="r1")
    first, second = socket_context.for_operation(), socket_context.for_operation()
    assert first is not second and first is not socket_context
    assert first.viewer is socket_context.viewer and first.request_id == "r1"
    first._memberships = {}
    assert second._memberships is None and socket_context._memberships is None


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_an_unexpected_error_in_a_subscription_reaches_the_client_as_internal_server_error(
    gql, live_server, monkeypatch, protocol
):
    from resolvers.cloud import live

    async def broken(*args, **kwargs):
        raise TypeError("argument of type 'NoneType' is not iterable")

    monkeypatch.setattr(live, "live_sessions_snapshot", broken)
    org, users = await factories.create_team()
    token = gql.tokens[await as_member(gql, users[Role.OWNER].email)]
    sock = GraphQLSocket(live_server, protocol)
    try:
        assert (await sock.connect(token))["type"] == "connection_ack"
        await sock.subscribe(GRAPHQL_WS, {"organizationId": gid("Organization", org.id)})
        frame = await asyncio.wait_for(sock.socket.recv(), timeout=10)
        while json.loads(frame)["type"] in ("ka", "ping", "pong"):
            frame = await asyncio.wait_for(sock.socket.recv(), timeout=10)
        assert "NoneType" not in frame and "TypeError" not in frame
        message = json.loads(frame)
        [error] = message["payload"]["errors"]
        assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
        assert error["message"] == "Internal server error; quote the request id when you report it."
    finally:
        await sock.close()
