"""Apollo's automatic persisted queries (kabinet/persisted_queries.py) and the cache headers of
GraphQL answers."""

from __future__ import annotations

import hashlib
import json

import pytest

from kabinet.persisted_queries import PersistedQueries
from tests.live import TRANSPORT_WS, GraphQLSocket

ME = "query PersistedMe { me { email } }"


def sha(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()


def persisted(query: str, *, version: int = 1, digest: str | None = None) -> dict:
    return {"persistedQuery": {"version": version, "sha256Hash": digest or sha(query)}}


async def auth(gql, email: str) -> dict:
    return {"Authorization": f"Bearer {await gql.token_for(email)}"}


async def test_round_trip_not_found_then_registered_then_answered_by_hash(client, gql, app):
    query = "query RoundTrip { me { email } __typename }"
    headers = await auth(gql, "owner@romashka.example")
    missing = await client.post("/graphql", json={"extensions": persisted(query)}, headers=headers)
    error = missing.json()["errors"][0]
    assert error["message"] == "PersistedQueryNotFound"
    assert error["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"

    registered = await client.post("/graphql", json={"query": query, "extensions": persisted(query)}, headers=headers)
    assert registered.json()["data"]["me"]["email"] == "owner@romashka.example"
    assert app.state.graphql.persisted_queries.texts.get(sha(query)) == query

    answered = await client.post("/graphql", json={"extensions": persisted(query)}, headers=headers)
    assert answered.json() == registered.json()


async def test_get_with_a_persisted_query(client, gql):
    query = "query PersistedOverGet { __typename }"
    params = {"extensions": json.dumps(persisted(query))}
    missing = await client.get("/graphql", params=params)
    assert missing.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    registered = await client.get("/graphql", params={**params, "query": query})
    assert registered.json() == {"data": {"__typename": "Query"}}
    answered = await client.get("/graphql", params=params)
    assert answered.status_code == 200 and answered.json() == {"data": {"__typename": "Query"}}


async def test_a_persisted_mutation_is_never_run_over_get(client, app):
    mutation = "mutation PersistedMutation { __typename }"
    assert (await client.post("/graphql", json={"query": mutation, "extensions": persisted(mutation)})).status_code == 200
    assert app.state.graphql.persisted_queries.texts.get(sha(mutation)) == mutation
    refused = await client.get("/graphql", params={"extensions": json.dumps(persisted(mutation))})
    assert refused.status_code == 405 and refused.headers["allow"] == "POST"
    assert refused.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    # nor registered through GET
    other = "mutation PersistedOverGetOnly { __typename }"
    refused = await client.get("/graphql", params={"query": other, "extensions": json.dumps(persisted(other))})
    assert refused.status_code == 405
    assert app.state.graphql.persisted_queries.texts.get(sha(other)) is None


async def test_a_hash_that_does_not_match_the_query_is_refused(client, app):
    query = "query Mismatch { __typename }"
    wrong = sha("query Other { __typename }")
    response = await client.post("/graphql", json={"query": query, "extensions": persisted(query, digest=wrong)})
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["message"] == "provided sha does not match query"
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert app.state.graphql.persisted_queries.texts.get(wrong) is None


@pytest.mark.parametrize("extensions", [
    {"persistedQuery": {"version": 2, "sha256Hash": sha("{ __typename }")}},
    {"persistedQuery": {"sha256Hash": sha("{ __typename }")}},
    {"persistedQuery": "yes"},
    {"persistedQuery": {"version": 1, "sha256Hash": "short"}},
])
async def test_an_unsupported_version_or_a_malformed_hash_is_refused(client, extensions):
    response = await client.post("/graphql", json={"query": "{ __typename }", "extensions": extensions})
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "version" in error["message"] or "sha256Hash" in error["message"]


async def test_a_query_over_the_limits_is_not_registered(client, app, settings):
    query = "query TooLong { " + " ".join("__typename" for _ in range(settings.max_query_tokens)) + " }"
    response = await client.post("/graphql", json={"query": query, "extensions": persisted(query)})
    assert response.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
    assert app.state.graphql.persisted_queries.texts.get(sha(query)) is None
    invalid = "query Invalid { nothing }"
    await client.post("/graphql", json={"query": invalid, "extensions": persisted(invalid)})
    assert app.state.graphql.persisted_queries.texts.get(sha(invalid)) is None


def test_the_store_is_bounded_by_bytes():
    store = PersistedQueries(1_000)
    queries = [f"query Q{i} {{ {'__typename ' * 20}}}" for i in range(10)]  # ~430 bytes charged each
    for query in queries:
        assert store.resolve(query, persisted(query)) == (query, sha(query))
        store.register(sha(query), query)
        assert store.texts.bytes <= 1_000
    assert len(store.texts) == 2
    assert store.texts.get(sha(queries[0])) is None and store.texts.get(sha(queries[-1])) == queries[-1]
    assert not store.register("f" * 64, "{ __typename }" + " " * 2_000)  # larger than the whole budget


async def test_a_tiny_budget_evicts_over_http(client, app):
    view = app.state.graphql
    kept = view.persisted_queries
    view.persisted_queries = PersistedQueries(400)
    try:
        first, second = "query Tiny1 { __typename }", "query Tiny2 { __typename  }"
        for query in (first, second):
            await client.post("/graphql", json={"query": query, "extensions": persisted(query)})
        assert view.persisted_queries.texts.bytes <= 400
        evicted = await client.post("/graphql", json={"extensions": persisted(first)})
        assert evicted.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
        assert (await client.post("/graphql", json={"extensions": persisted(second)})).json() == {"data": {"__typename": "Query"}}
    finally:
        view.persisted_queries = kept


async def test_a_budget_of_zero_turns_them_off(client, app):
    view = app.state.graphql
    kept = view.persisted_queries
    view.persisted_queries = PersistedQueries(0)
    try:
        response = await client.post("/graphql", json={"query": ME, "extensions": persisted(ME)})
        assert response.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_SUPPORTED"
        plain = await client.post("/graphql", json={"query": "{ __typename }"})  # a request without the extension runs
        assert plain.json() == {"data": {"__typename": "Query"}}
    finally:
        view.persisted_queries = kept


async def test_a_signed_in_answer_is_private_and_varies_by_authorization(client, gql):
    signed_in = await client.post("/graphql", json={"query": ME}, headers=await auth(gql, "owner@romashka.example"))
    assert signed_in.json()["data"]["me"]["email"] == "owner@romashka.example"
    assert "private" in signed_in.headers["cache-control"] and "no-store" in signed_in.headers["cache-control"]
    assert "authorization" in signed_in.headers["vary"].lower()
    kept = await client.post("/graphql", json={"query": ME}, headers=await auth(gql, "owner@romashka.example"))
    assert kept.headers["cache-control"] == "private, no-store"  # also an answer from the response cache
    over_get = await client.get("/graphql", params={"query": ME}, headers=await auth(gql, "owner@romashka.example"))
    assert over_get.headers["cache-control"] == "private, no-store" and "Authorization" in over_get.headers["vary"]
    anonymous = await client.get("/graphql", params={"query": "{ __typename }"})
    assert anonymous.headers["cache-control"] == "no-store" and "Authorization" in anonymous.headers["vary"]
    refused = await client.get("/graphql", params={"query": "mutation { __typename }"}, headers=await auth(gql, "owner@romashka.example"))
    assert refused.status_code == 405 and refused.headers["cache-control"] == "private, no-store"


async def test_the_store_keeps_query_texts_never_answers(client, gql, app):
    query = "query WhoAmI { me { email } }"
    owner = await client.post("/graphql", json={"query": query, "extensions": persisted(query)},
                              headers=await auth(gql, "owner@romashka.example"))
    assert owner.json()["data"]["me"]["email"] == "owner@romashka.example"
    other = await client.post("/graphql", json={"extensions": persisted(query)}, headers=await auth(gql, "owner@vasilek.example"))
    assert other.json()["data"]["me"]["email"] == "owner@vasilek.example"
    anonymous = await client.post("/graphql", json={"extensions": persisted(query)})
    assert anonymous.json()["data"] is None and "owner@" not in anonymous.text
    texts = app.state.graphql.persisted_queries.texts
    values = [texts.get(key) for key in list(texts._entries)]
    assert values and all(isinstance(v, str) for v in values)
    assert all("owner@" not in v for v in values)
    assert all(sha(v) == key for key, v in zip(list(texts._entries), values))


async def test_persisted_queries_over_graphql_transport_ws(live_server, gql):
    query = "query OverSocket { me { email } }"
    socket = GraphQLSocket(live_server, TRANSPORT_WS)
    try:
        assert (await socket.connect(await gql.token_for("owner@romashka.example")))["type"] == "connection_ack"
        await socket.send({"id": "a", "type": "subscribe", "payload": {"extensions": persisted(query)}})
        missing = await socket.receive()
        assert missing["type"] == "error" and missing["id"] == "a"
        assert missing["payload"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
        await socket.send({"id": "b", "type": "subscribe", "payload": {"query": query, "extensions": persisted(query)}})
        assert (await socket.next_data())["data"]["me"]["email"] == "owner@romashka.example"
        assert (await socket.receive())["type"] == "complete"
        await socket.send({"id": "c", "type": "subscribe", "payload": {"extensions": persisted(query)}})
        assert (await socket.next_data())["data"]["me"]["email"] == "owner@romashka.example"
        assert (await socket.receive())["type"] == "complete"
        await socket.send({"id": "d", "type": "subscribe", "payload": {
            "query": query, "extensions": persisted(query, digest=sha("{ other }"))}})
        mismatch = await socket.receive()
        assert mismatch["type"] == "error" and mismatch["payload"][0]["message"] == "provided sha does not match query"
    finally:
        await socket.close()
