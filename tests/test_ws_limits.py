"""WebSocket limits on both sub-protocols, with real clients on a real socket: message size, the
`connection_init` timeout, and errors shaped as over HTTP (a code, no driver, SQL or Python text)."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets

from foundation.ids import to_global_id
from tests import factories
from tests.live import LEGACY_WS, OPEN_TIMEOUT, TRANSPORT_WS, GraphQLSocket

SESSIONS = "subscription($org: ID!) { sessions(organizationId: $org) { sessions { id } } }"
BOTH = pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
LEAK = 'relation "organization_event" does not exist: SELECT seq FROM organization_event WHERE …'


async def _owner(gql) -> tuple[str, str]:
    org, users = await factories.create_team()
    token = await gql.token_for_password(users[factories.Role.OWNER].email, factories.PASSWORD)
    return token, to_global_id("Organization", org.id)


async def _closed_with(socket: GraphQLSocket) -> int:
    with pytest.raises(websockets.ConnectionClosed) as closed:
        while True:
            await socket.receive(timeout=15)
    return closed.value.rcvd.code


@BOTH
async def test_a_message_over_the_size_limit_closes_the_socket_with_1009(gql, live_server, settings, monkeypatch, protocol):
    token, org = await _owner(gql)
    monkeypatch.setattr(settings, "ws_max_message_bytes", 4096)
    socket = GraphQLSocket(live_server, protocol)
    try:
        assert (await socket.connect(token))["type"] == "connection_ack", "a message under the limit is read"
        padding = " " * 5000
        await socket.subscribe(SESSIONS + padding, {"org": org})
        assert await _closed_with(socket) == 1009
    finally:
        await socket.close()


@BOTH
async def test_a_socket_without_connection_init_is_closed_with_4408(live_server, settings, monkeypatch, protocol):
    monkeypatch.setattr(settings, "ws_connection_init_seconds", 0.3)
    socket = GraphQLSocket(live_server, protocol)
    socket.socket = await websockets.connect(f"ws://{live_server}/graphql", subprotocols=[protocol], open_timeout=OPEN_TIMEOUT)
    try:
        assert await _closed_with(socket) == 4408
    finally:
        await socket.close()


@BOTH
async def test_an_initialised_socket_outlives_the_init_timeout(gql, live_server, settings, monkeypatch, protocol):
    token, org = await _owner(gql)
    monkeypatch.setattr(settings, "ws_connection_init_seconds", 0.2)
    socket = GraphQLSocket(live_server, protocol)
    try:
        assert (await socket.connect(token))["type"] == "connection_ack"
        await asyncio.sleep(0.5)  # past the timeout: the timer was for the first message only
        await socket.subscribe(SESSIONS, {"org": org})
        assert (await socket.next_data())["data"]["sessions"]["sessions"] == []
    finally:
        await socket.close()


def _errors(message: dict) -> list[dict]:
    if message["type"] == "error":
        payload = message["payload"]
        return payload if isinstance(payload, list) else [payload]
    return message["payload"]["errors"]


@BOTH
async def test_an_internal_error_of_a_subscription_reaches_the_client_shaped_as_over_http(gql, app, live_server, monkeypatch, protocol):
    token, org = await _owner(gql)

    def broken_subscribe(organization_id):
        raise RuntimeError(LEAK)

    monkeypatch.setattr(app.state.event_hub, "subscribe", broken_subscribe)
    socket = GraphQLSocket(live_server, protocol)
    try:
        await socket.connect(token)
        await socket.subscribe(SESSIONS, {"org": org})
        message = await socket.receive()
        errors = _errors(message)
        assert errors and all(e["extensions"]["code"] == "INTERNAL_SERVER_ERROR" for e in errors), message
        text = json.dumps(message)
        for leak in ("relation", "SELECT", "RuntimeError", "organization_event", "Traceback"):
            assert leak not in text, text
    finally:
        await socket.close()


async def test_an_internal_error_of_a_query_over_websocket_is_shaped_too(gql, live_server, monkeypatch):
    from resolvers.identity import logins as identity

    token, _ = await _owner(gql)

    async def broken_viewer(ctx):
        raise RuntimeError(LEAK)

    monkeypatch.setattr(identity, "viewer_user", broken_viewer)
    socket = GraphQLSocket(live_server, TRANSPORT_WS)
    try:
        await socket.connect(token)
        await socket.subscribe("{ me { email } }")
        message = await socket.receive()
        error = _errors(message)[0]
        assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR" and error["path"] == ["me"]
        assert error["extensions"]["requestId"] and "relation" not in json.dumps(message)
    finally:
        await socket.close()


@BOTH
async def test_a_refused_subscription_over_websocket_keeps_its_code(gql, live_server, protocol):
    token, _ = await _owner(gql)
    socket = GraphQLSocket(live_server, protocol)
    try:
        await socket.connect(token)
        await socket.subscribe("subscription { sessions(organizationId: \"T3JnYW5pemF0aW9uOjA=\") { sessions { id } } }")
        errors = _errors(await socket.receive())
        assert errors[0]["extensions"]["code"] in ("NOT_FOUND", "FORBIDDEN", "BAD_USER_INPUT"), errors
    finally:
        await socket.close()


async def test_a_refused_legacy_connection_says_why_with_a_code(live_server):
    socket = GraphQLSocket(live_server, LEGACY_WS)
    try:
        message = await socket.connect("not-a-token")
        assert message["type"] == "connection_error"
        assert message["payload"]["extensions"]["code"] == "UNAUTHENTICATED"
    finally:
        await socket.close()
