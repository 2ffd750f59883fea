"""An attacker's read of issue 21's two doors: Apollo persisted queries (kabinet/persisted_queries.py)
and the request logs (kabinet/request_log.py, foundation/logs.py). One test per attack: a hole that
was found is fixed and its test holds it shut."""

from __future__ import annotations

import hashlib
import json
import logging
import sys

import pytest

from foundation.ids import to_global_id
from foundation.logs import TEXT_FORMAT, RequestIdFilter, logging_config, request_id_from
from kabinet.persisted_queries import PersistedQueries
from tests.factories import PASSWORD, Role, create_team
from tests.live import LEGACY_WS, TRANSPORT_WS, GraphQLSocket
from tests.test_request_logs import Lines, attached, lines  # noqa: F401 — the fixture

ROMASHKA = "owner@romashka.example"
VASILEK = "owner@vasilek.example"


def sha(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()


def persisted(query: str) -> dict:
    return {"persistedQuery": {"version": 1, "sha256Hash": sha(query)}}


def store(app) -> PersistedQueries:
    return app.state.graphql.persisted_queries


def deep(name: str, depth: int) -> str:
    """A query nested past `depth`: me → memberships → user → memberships → …"""
    body = "memberships { user { " * depth + "email" + " } }" * depth
    return f"query {name} {{ me {{ {body} }} }}"


async def auth(gql, email: str) -> dict:
    return {"Authorization": f"Bearer {await gql.token_for(email)}"}


# --- persisted queries --------------------------------------------------------------------------

@pytest.mark.parametrize("shape", ["depth", "aliases", "cost"])
async def test_a_text_over_depth_aliases_or_cost_is_not_registered_and_its_hash_runs_nothing(client, app, settings, shape):
    if shape == "depth":
        query = deep("Deep", settings.max_query_depth)
    elif shape == "aliases":
        query = "query Aliased { " + " ".join(f"a{i}: __typename" for i in range(settings.max_aliases + 1)) + " }"
    else:  # nested pages multiply: 100 × 100 × 100 sessions' fields
        query = ("query Costly { organizationsForModeration(first: 100) { edges { node { id } } } "
                 + " ".join(f"o{i}: organizationsForModeration(first: 100) {{ edges {{ node {{ id }} }} }}" for i in range(40))
                 + " }")
    response = await client.post("/graphql", json={"query": query, "extensions": persisted(query)})
    assert response.json()["data"] is None and response.json()["errors"]
    assert store(app).texts.get(sha(query)) is None
    again = await client.post("/graphql", json={"extensions": persisted(query)})
    assert again.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"


async def test_a_text_registered_over_websocket_still_meets_every_limit_when_run_by_hash(live_server, gql, client, settings):
    """Over WebSocket a text is kept once it parses; run by its hash over HTTP it meets validation and depth again."""
    query = deep("DeepOverSocket", settings.max_query_depth)
    socket = GraphQLSocket(live_server, TRANSPORT_WS)
    try:
        assert (await socket.connect(await gql.token_for(ROMASHKA)))["type"] == "connection_ack"
        await socket.send({"id": "deep", "type": "subscribe", "payload": {"query": query, "extensions": persisted(query)}})
        refused = await socket.receive()
        assert refused["type"] == "error" or refused["payload"].get("errors")
    finally:
        await socket.close()
    by_hash = await client.post("/graphql", json={"extensions": persisted(query)}, headers=await auth(gql, ROMASHKA))
    body = by_hash.json()
    assert body["data"] is None and body["errors"][0]["extensions"]["code"] in (
        "PERSISTED_QUERY_NOT_FOUND", "GRAPHQL_VALIDATION_FAILED", "QUERY_TOO_DEEP", "QUERY_TOO_COMPLEX")


async def test_a_registered_text_runs_with_the_rights_of_whoever_sends_the_hash(client, gql):
    org, users = await create_team()
    other_org, other_users = await create_team()
    query = f'query TheirOrganization {{ organization(id: "{to_global_id("Organization", org.id)}") {{ id name }} }}'
    owner = {"Authorization": f"Bearer {await gql.token_for_password(users[Role.OWNER].email, PASSWORD)}"}
    registered = await client.post("/graphql", json={"query": query, "extensions": persisted(query)}, headers=owner)
    assert registered.json()["data"]["organization"]["name"] == org.name
    stranger = {"Authorization": f"Bearer {await gql.token_for_password(other_users[Role.OWNER].email, PASSWORD)}"}
    for headers in (stranger, {}):
        answer = await client.post("/graphql", json={"extensions": persisted(query)}, headers=headers)
        assert org.name not in answer.text and (answer.json().get("data") or {}).get("organization") is None


@pytest.mark.parametrize("document", [
    "query Harmless { __typename } mutation Sneaky { __typename }",
    "mutation Sneaky { __typename } query Harmless { __typename }",
])
async def test_get_never_runs_a_mutation_picked_by_operation_name_in_a_persisted_document(client, app, document):
    registered = await client.post("/graphql", json={"query": document, "operationName": "Harmless", "extensions": persisted(document)})
    assert registered.json() == {"data": {"__typename": "Query"}}
    assert store(app).texts.get(sha(document)) == document
    params = {"extensions": json.dumps(persisted(document))}
    sneaky = await client.get("/graphql", params={**params, "operationName": "Sneaky"})
    assert sneaky.status_code == 405 and "data" not in sneaky.json()
    harmless = await client.get("/graphql", params={**params, "operationName": "Harmless"})
    assert harmless.json() == {"data": {"__typename": "Query"}}
    unnamed = await client.get("/graphql", params=params)  # two operations, none picked: never the mutation
    assert unnamed.status_code in (200, 400, 405) and (unnamed.json().get("data") or {}).get("__typename") != "Mutation"


async def test_a_hash_only_request_never_gets_another_viewers_kept_answer(client, gql, app):
    query = "query KeptByHash { me { email } }"
    romashka, vasilek = await auth(gql, ROMASHKA), await auth(gql, VASILEK)
    await client.post("/graphql", json={"query": query}, headers=romashka)  # now in the response cache
    await client.post("/graphql", json={"query": query, "extensions": persisted(query)}, headers=romashka)
    for _ in range(2):
        assert (await client.post("/graphql", json={"extensions": persisted(query)}, headers=romashka)).json()["data"]["me"]["email"] == ROMASHKA
        other = await client.post("/graphql", json={"extensions": persisted(query)}, headers=vasilek)
        assert other.json()["data"]["me"]["email"] == VASILEK
        anonymous = await client.post("/graphql", json={"extensions": persisted(query)})
        assert ROMASHKA not in anonymous.text and anonymous.json()["data"] is None


def test_the_store_counts_what_a_text_takes_in_memory_not_its_utf8_bytes():
    """One character beyond Latin-1 makes CPython keep every character of a str in 2 or 4 bytes: a text of
    ASCII and one emoji takes four times its UTF-8 length. The budget must hold against that."""
    budget = 100_000
    kept = PersistedQueries(budget)
    for i in range(20):
        text = f'query Q{i} {{ node(id: "{"A" * 20_000}😀") {{ id }} }}'
        kept.register(sha(text), text)
    in_memory = sum(sys.getsizeof(kept.texts.get(key)) for key in list(kept.texts._entries))
    assert in_memory <= budget and kept.texts.bytes <= budget


async def test_register_the_same_text_again_is_charged_once(client, app):
    query = "query Twice { __typename }"
    before = store(app).texts.bytes
    for _ in range(5):
        await client.post("/graphql", json={"query": query, "extensions": persisted(query)})
    assert store(app).texts.get(sha(query)) == query
    assert store(app).texts.bytes - before <= sys.getsizeof(query) + 400


@pytest.mark.parametrize("extensions", [
    "not json", "[" * 10_000 + "]" * 10_000, '{"persistedQuery": ' * 1_000 + "1" + "}" * 1_000,
    "[1, 2]", '"persistedQuery"', '{"persistedQuery": null}', '{"persistedQuery": {"version": 1, "sha256Hash": ' + '"' + "é" * 64 + '"}}',
    json.dumps({"persistedQuery": {"version": 1, "sha256Hash": "a" * 64}, "junk": "x" * 30_000}),
])
async def test_a_malformed_or_huge_extensions_parameter_over_get_is_a_coded_refusal(client, extensions):
    response = await client.get("/graphql", params={"extensions": extensions})
    assert response.status_code in (200, 400)
    body = response.json()
    assert body.get("data") is None and body["errors"][0]["extensions"]["code"] in (
        "BAD_USER_INPUT", "PERSISTED_QUERY_NOT_FOUND", "GRAPHQL_PARSE_FAILED")


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_websocket_subscribe_with_extensions_on_both_protocols(live_server, gql, app, records, protocol):
    query = f"query OverBoth{protocol.replace('-', '')} {{ me {{ email }} }}"
    start = "subscribe" if protocol == TRANSPORT_WS else "start"
    socket = GraphQLSocket(live_server, protocol)
    try:
        assert (await socket.connect(await gql.token_for(ROMASHKA)))["type"] == "connection_ack"
        expected = ["PERSISTED_QUERY_NOT_FOUND" if protocol == TRANSPORT_WS else "PERSISTED_QUERY_NOT_SUPPORTED",
                    "BAD_USER_INPUT" if protocol == TRANSPORT_WS else "PERSISTED_QUERY_NOT_SUPPORTED", None]
        payloads = [{"extensions": persisted(query)},
                    {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": ["not", "a", "hash"]}}},
                    {"query": query, "extensions": {"persistedQuery": None}}]
        if protocol == LEGACY_WS:  # graphql-transport-ws closes the socket (4400) for a malformed message
            payloads.append({"extensions": "x" * 10_000})
            expected.append("BAD_USER_INPUT")
        for i, (payload, code) in enumerate(zip(payloads, expected)):
            await socket.send({"id": f"x{i}", "type": start, "payload": payload})
            answer = await socket.receive()
            while answer["type"] == "complete":
                answer = await socket.receive()
            if code is None and protocol == TRANSPORT_WS:
                assert answer["type"] == "next" and answer["payload"]["data"]["me"]["email"] == ROMASHKA
            elif code is None:  # the legacy protocol runs subscriptions only: a query is refused, as without extensions
                assert answer["type"] == "error" and answer["payload"]["extensions"]["code"] == "BAD_USER_INPUT"
            else:
                assert answer["type"] == "error" and answer["id"] == f"x{i}", answer
                errors = answer["payload"] if isinstance(answer["payload"], list) else [answer["payload"]]
                assert errors[0]["extensions"]["code"] == code
        # the socket still serves
        await socket.send({"id": "y", "type": start, "payload": {"query": query}})
        answer = await socket.receive()
        while answer.get("id") != "y":
            answer = await socket.receive()
        assert answer["type"] == ("next" if protocol == TRANSPORT_WS else "error")
    finally:
        await socket.close()
    # a client's malformed or refused message is not an incident: no ERROR line, no traceback
    assert not [r for r in records.records if r.levelno >= logging.ERROR]


# --- request logs -------------------------------------------------------------------------------

def text_lines(records: list[logging.LogRecord]) -> list[str]:
    """What the configured text handler writes for these records."""
    factory = logging_config("text")["formatters"]["kabinet"]
    module, _, name = factory.get("class", "logging.Formatter").rpartition(".")
    formatter = getattr(sys.modules[module], name)(factory["format"])
    return [formatter.format(r) for r in records]


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.addFilter(RequestIdFilter())
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def records():
    yield from attached(Records())


@pytest.mark.parametrize("header", ["abc\nINFO forged", "abc\r\nx", "a" * 65, "тест", "a b", "", "ok.id_1-2\n"])
def test_an_insane_request_id_is_replaced(header):
    made = request_id_from(header)
    assert made != header and len(made) == 32 and made.isalnum()
    assert request_id_from(header.encode("utf-8")) != header


async def test_an_operation_name_cannot_forge_or_flood_a_log_line(client, records):
    forged = "A\n2026-12-07 00:00:00,000 INFO kabinet.request [x]: POST /graphql Admin user:1 200"
    await client.post("/graphql", json={"query": "query A { __typename }", "operationName": forged})
    await client.post("/graphql", json={"query": "query A { __typename }", "operationName": "B" * 500_000})
    await client.get("/graphql", params={"query": "query A { __typename }", "operationName": "A\rforged"})
    written = text_lines([r for r in records.records if r.name == "kabinet.request"])
    assert len(written) == 3
    for line in written:
        assert "\n" not in line and "\r" not in line and len(line) < 2_000, line[:300]


async def test_a_path_cannot_forge_a_text_log_line(client, records):
    await client.get("/nothing%0A2026-12-07%20INFO%20kabinet.request%20forged%0D")
    written = text_lines([r for r in records.records if r.name == "kabinet.request"])
    assert written and all("\n" not in line and "\r" not in line for line in written)


def test_a_traceback_keeps_its_lines_in_the_text_format():
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("kabinet", logging.ERROR, __file__, 1, "failed\nforged", (), sys.exc_info())
    record.request_id = "-"
    (line,) = text_lines([record])
    head, _, trace = line.partition("\n")
    assert "failed\\nforged" in head and "Traceback" in trace and "ValueError: boom" in trace
    assert TEXT_FORMAT  # the format itself is unchanged


async def test_secrets_never_reach_a_log_line(client, gql, lines):
    secret, token = "Hunter2-Parol!", await gql.token_for(ROMASHKA)
    headers = {"Authorization": f"Bearer {token}"}
    login = "mutation Secret($l: String!, $p: String!) { login(input: {login: $l, password: $p}) { accessToken } }"
    await client.post("/graphql", json={"query": login, "variables": {"l": ROMASHKA, "p": [secret]}}, headers=headers)
    await client.post("/graphql", json={"query": login, "variables": {"l": ROMASHKA, "p": secret}})
    inline = f'mutation {{ login(input: {{login: "{ROMASHKA}", password: "{secret}"}}) {{ accessToken }} '  # no closing brace
    await client.post("/graphql", json={"query": inline}, headers=headers)
    await client.get("/graphql", params={"query": inline + "}", "variables": json.dumps({"p": secret})}, headers=headers)
    await client.post("/graphql", json={"query": login, "variables": {"l": ROMASHKA, "p": secret},
                                        "extensions": persisted(login)}, headers=headers)
    written = json.dumps(lines.lines)
    assert lines.requests() and secret not in written and token not in written and token.split(".")[-1] not in written
