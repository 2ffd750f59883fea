"""The transport: GraphQL over HTTP, error codes, limits, health, metrics and GraphiQL."""

from __future__ import annotations

import pytest


async def test_health_readiness_and_metrics(client):
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": True, "broker": True}
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200 and "kabinet_http_requests_total" in metrics.text


async def test_a_syntax_error_is_graphql_parse_failed(client):
    body = (await client.post("/graphql", json={"query": "{ me { "})).json()
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"


async def test_an_unknown_field_is_graphql_validation_failed(client):
    body = (await client.post("/graphql", json={"query": "{ nothing }"})).json()
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_a_query_deeper_than_fifteen_is_refused_before_it_runs(client):
    deep = "{ me { " + "memberships { organization { " * 8 + "name" + " } }" * 8 + " } }"
    body = (await client.post("/graphql", json={"query": deep})).json()
    assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"


async def test_more_than_fifty_aliases_are_refused(client):
    query = "{ " + " ".join(f"a{i}: __typename" for i in range(51)) + " }"
    body = (await client.post("/graphql", json={"query": query})).json()
    assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"


async def test_a_variable_that_does_not_parse_is_bad_user_input(gql):
    body = await gql.execute(
        "query($d: Date) { organizations { edges { node { documents(from: $d) { totalCount } } } } }",
        {"d": "31.12.2025"}, as_user="owner@romashka.example",
    )
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def test_a_datetime_without_an_offset_is_refused_and_output_is_utc():
    import datetime as dt

    from graphql import GraphQLError

    from schema.scalars import _parse_datetime, _serialize_datetime

    with pytest.raises(GraphQLError, match="offset"):
        _parse_datetime("2026-01-01T10:00:00")
    moscow = _parse_datetime("2026-01-01T10:00:00+03:00")
    assert _serialize_datetime(moscow) == "2026-01-01T07:00:00Z"
    assert _serialize_datetime(dt.datetime(2026, 1, 1, 7, tzinfo=dt.timezone.utc)) == "2026-01-01T07:00:00Z"


async def test_a_body_over_one_mebibyte_is_413(client):
    response = await client.post("/graphql", content=b'{"query": "' + b" " * (1024 * 1024 + 10) + b'{ __typename }"}',
                                 headers={"content-type": "application/json"})
    assert response.status_code == 413


async def test_get_runs_queries_but_never_mutations(client):
    ok = await client.get("/graphql", params={"query": "{ __typename }"}, headers={"accept": "application/json"})
    assert ok.json() == {"data": {"__typename": "Query"}}
    refused = await client.get(
        "/graphql", params={"query": 'mutation { logout(refreshToken: "x") { ok } }'}, headers={"accept": "application/json"}
    )
    assert refused.status_code in (400, 405)


async def test_graphiql_opens_from_a_browser_with_no_cdn(client):
    page = await client.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200 and "<html" in page.text.lower()
    for host in ("unpkg.com", "jsdelivr", "cdnjs", "googleapis"):
        assert host not in page.text
    assets = [part.split('"')[0] for part in page.text.split('src="')[1:]]
    assert assets, "the page loads its scripts"
    for asset in assets:
        assert asset.startswith("/static/"), asset
        assert (await client.get(asset)).status_code == 200


async def test_a_client_accepting_graphql_response_json_gets_it_and_a_400_for_a_request_error(client):
    accept = {"accept": "application/graphql-response+json"}
    ok = await client.post("/graphql", json={"query": "{ __typename }"}, headers=accept)
    assert ok.status_code == 200 and ok.headers["content-type"].startswith("application/graphql-response+json")
    broken = await client.post("/graphql", json={"query": "{ me { "}, headers=accept)
    assert broken.status_code == 400 and broken.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
    refused = await client.post("/graphql", json={"query": "{ me { email } }"}, headers=accept)
    assert refused.status_code == 200, "an executed request that failed in a field is still 200"


async def test_a_body_that_is_not_json_is_400(client):
    response = await client.post("/graphql", content=b"not json", headers={"content-type": "application/json"})
    assert response.status_code == 400
