"""Logs an operator can follow (issue 21): one JSON line per request, its id sent back as
`X-Request-Id`, on every GraphQL error and on the lines of the work the request started."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
import websockets

from foundation.logs import JsonFormatter, RequestIdFilter, logging_config, request_id_from
from kabinet.request_log import HEADER
from foundation.ids import to_global_id
from tests.factories import PASSWORD, Role, create_team, create_user
from tests.live import LEGACY_WS, OPEN_TIMEOUT, TRANSPORT_WS, GraphQLSocket

DEMO_OWNER = "owner@romashka.example"
ME = "query Me { me { email } }"
LIVE = "subscription Live($org: ID!) { sessions(organizationId: $org) { sessions { id } } }"
LOGIN = "mutation SignIn($l: String!, $p: String!) { login(input: {login: $l, password: $p}) { accessToken userErrors { code } } }"


class Lines(logging.Handler):
    """What the configured stderr handler would write: the filter and the JSON formatter, kept."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.addFilter(RequestIdFilter())
        self.setFormatter(JsonFormatter())
        self.lines: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))

    def requests(self) -> list[dict]:
        return [line for line in self.lines if line["logger"] == "kabinet.request"]


def attached(handler: logging.Handler):
    """The handler on the root logger at INFO while the fixture lives (a generator a fixture yields from)."""
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield handler
    root.removeHandler(handler)
    root.setLevel(previous)


@pytest.fixture
def lines():
    yield from attached(Lines())


async def test_a_request_has_one_line_with_its_fields_and_the_id_is_sent_back(client, gql, lines):
    token = await gql.token_for(DEMO_OWNER)
    lines.lines.clear()
    response = await client.post("/graphql", json={"query": ME}, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200 and response.json()["data"]["me"]["email"] == DEMO_OWNER
    (line,) = lines.requests()
    request_id = response.headers["x-request-id"]
    assert len(request_id) == 32 and line["request_id"] == request_id
    assert line["kind"] == "http" and line["method"] == "POST" and line["path"] == "/graphql"
    assert line["operation"] == "Me" and line["status"] == 200 and line["outcome"] == "ok"
    assert line["viewer"].startswith("user:") and line["level"] == "INFO"
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert isinstance(line["sql"], int)
    # the token is nowhere in any line
    assert token not in json.dumps(lines.lines) and token.split(".")[-1] not in json.dumps(lines.lines)


async def test_statements_are_counted_for_the_request(client, gql, lines):
    """A first query of a new user reads rows (its memberships at least): the count is not zero."""
    user = await create_user()
    token = await gql.token_for_password(user.email, PASSWORD)
    lines.lines.clear()
    query = "{ me { email } organizations { edges { node { name } } } }"
    await client.post("/graphql", json={"query": query}, headers={"Authorization": f"Bearer {token}"})
    (line,) = lines.requests()
    assert line["sql"] >= 1 and line["operation"] is None


async def test_a_sane_incoming_id_is_kept_an_insane_one_replaced(client, lines):
    kept = await client.post("/graphql", json={"query": "{ __typename }"}, headers={"X-Request-Id": "lb-7f3a.01_x"})
    assert kept.headers["x-request-id"] == "lb-7f3a.01_x"
    for insane in ("a b", "x" * 65, "id\u00e9", "<script>", "a;b"):
        response = await client.post("/graphql", json={"query": "{ __typename }"}, headers={"X-Request-Id": insane.encode("utf-8")})
        assert response.headers["x-request-id"] != insane and len(response.headers["x-request-id"]) == 32
    assert [line["request_id"] for line in lines.requests()][0] == "lb-7f3a.01_x"
    assert request_id_from(None) != request_id_from(None) and request_id_from("ok-1") == "ok-1" and request_id_from("") != ""


async def test_every_error_carries_the_request_id_and_the_line_its_codes(client, lines):
    response = await client.post("/graphql", json={"query": "{ me { email } }"}, headers={"X-Request-Id": "req-unauth-1"})
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "UNAUTHENTICATED" and error["extensions"]["requestId"] == "req-unauth-1"
    parse = await client.post("/graphql", json={"query": "{ me { "}, headers={"X-Request-Id": "req-parse-1"})
    assert parse.json()["errors"][0]["extensions"]["requestId"] == "req-parse-1"
    by_id = {line["request_id"]: line for line in lines.requests()}
    assert by_id["req-unauth-1"]["outcome"] == "graphql errors" and by_id["req-unauth-1"]["codes"] == ["UNAUTHENTICATED"]
    assert by_id["req-unauth-1"]["viewer"] is None
    assert by_id["req-parse-1"]["codes"] == ["GRAPHQL_PARSE_FAILED"]


async def test_a_resolvers_lines_and_the_tasks_it_starts_carry_the_request_id(client, gql, lines, monkeypatch):
    from resolvers.identity import logins as identity_resolvers  # what Query.me calls

    original = identity_resolvers.viewer_user
    work = logging.getLogger("kabinet.test.work")

    async def logging_viewer_user(ctx):
        work.info("reading the viewer")
        await asyncio.create_task(_in_a_task(work))
        return await original(ctx)

    monkeypatch.setattr(identity_resolvers, "viewer_user", logging_viewer_user)
    user = await create_user()  # a new user: no answer of the response cache to give
    token = await gql.token_for_password(user.email, PASSWORD)
    response = await client.post("/graphql", json={"query": ME}, headers={"Authorization": f"Bearer {token}"})
    request_id = response.headers["x-request-id"]
    mine = [line for line in lines.lines if line["logger"] == "kabinet.test.work"]
    assert [line["message"] for line in mine] == ["reading the viewer", "in a task the request started"]
    assert all(line["request_id"] == request_id for line in mine)


async def _in_a_task(work: logging.Logger) -> None:
    work.info("in a task the request started")


async def test_user_errors_are_an_outcome_and_no_password_is_logged(client, lines):
    secret = "very-secret-password-42"
    # an account of its own: a wrong password counts towards its login's lockout, and the demo's
    # logins are every other test file's (tests/test_auth.py expects INVALID, not RATE_LIMITED)
    user = await create_user()
    response = await client.post("/graphql", json={"query": LOGIN, "variables": {"l": user.email, "p": secret}},
                                 headers={"Authorization": "Bearer not-a-token-at-all-xyz"})
    assert response.json()["data"]["login"]["userErrors"]
    (line,) = lines.requests()
    assert line["operation"] == "SignIn" and line["outcome"] == "user errors" and line["status"] == 200
    written = json.dumps(lines.lines)
    assert secret not in written and "not-a-token-at-all-xyz" not in written and "Bearer" not in written


async def test_a_refusal_before_graphql_is_logged_as_refused(client, lines):
    response = await client.post("/graphql", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400 and response.headers["x-request-id"]
    assert response.json()["errors"][0]["extensions"]["requestId"] == response.headers["x-request-id"]
    (line,) = lines.requests()
    assert line["outcome"] == "refused" and line["status"] == 400


async def test_an_agent_api_request_names_the_token_not_its_secret(client, lines):
    response = await client.post("/cluster/sessions/ended", json={}, headers={"Authorization": "Bearer kca_nope"})
    assert response.headers["x-request-id"]
    line = lines.requests()[-1]
    assert line["status"] == 401 and line["outcome"] == "refused" and line["viewer"] is None
    assert "kca_nope" not in json.dumps(lines.lines)


def test_the_formats_an_operator_picks():
    assert logging_config("json")["formatters"]["kabinet"] == {"()": "foundation.logs.JsonFormatter"}
    assert "request_id" in logging_config("text")["formatters"]["kabinet"]["format"]
    assert logging_config("auto")["handlers"]["stderr"]["filters"] == ["request_id"]
    record = logging.LogRecord("kabinet.x", logging.WARNING, __file__, 1, "a %s", ("b",), None)
    RequestIdFilter().filter(record)
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "a b" and line["level"] == "WARNING" and "request_id" not in line
    assert HEADER == b"x-request-id"


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_each_websocket_operation_has_a_line_with_its_own_id_and_the_sockets(gql, live_server, lines, protocol):
    org, users = await create_team()
    user = users[Role.OWNER]
    token = await gql.token_for_password(user.email, PASSWORD)
    socket = GraphQLSocket(live_server, protocol)
    socket.socket = await websockets.connect(f"ws://{live_server}/graphql", subprotocols=[protocol],
                                             open_timeout=OPEN_TIMEOUT, additional_headers={"X-Request-Id": f"sock-{protocol}"})
    try:
        await socket.send({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}})
        assert (await socket.receive())["type"] == "connection_ack"
        live = await socket.subscribe(LIVE, {"org": to_global_id("Organization", org.id)})
        assert (await socket.next_data())["data"]["sessions"]["sessions"] == []
        await socket.send({"id": live, "type": "complete" if protocol == TRANSPORT_WS else "stop"})
        broken = await socket.subscribe("subscription Broken { nothing }")
        error = await socket.receive()
        while error.get("id") != broken:
            error = await socket.receive()
        payload = error["payload"]
        first = payload[0] if isinstance(payload, list) else payload.get("errors", [payload])[0]
        assert first["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    finally:
        await socket.close()
    for _ in range(100):
        if any(line.get("kind") == "websocket" for line in lines.requests()):
            break
        await asyncio.sleep(0.02)
    operations = {line["operation"]: line for line in lines.requests() if line["kind"] == "operation"}
    assert set(operations) == {"Live", "Broken"}, operations
    ids = {line["request_id"] for line in operations.values()}
    assert len(ids) == 2 and f"sock-{protocol}" not in ids
    assert all(line["socket_id"] == f"sock-{protocol}" and line["viewer"] == f"user:{user.id}" for line in operations.values())
    assert operations["Live"]["outcome"] == "ok" and operations["Live"]["sql"] >= 1
    assert operations["Broken"]["outcome"] == "graphql errors"
    (sock,) = [line for line in lines.requests() if line["kind"] == "websocket"]
    assert sock["request_id"] == f"sock-{protocol}" and sock["viewer"] == f"user:{user.id}"
    assert token not in json.dumps(lines.lines)
