"""Limits a request meets before it runs: the cost estimate, the parser's token limit, nesting that
would exhaust a recursive parser, GET carrying a mutation; and readiness on an unmigrated database."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from schema.limits import query_cost, parse_document
from tests.databases import run_admin_sql
from tests.processes import free_port, stop, wait_until_serving

GRAPHQL_RESPONSE = {"accept": "application/graphql-response+json"}
ROOT = Path(__file__).resolve().parent.parent


def _orgs(first: str) -> str:
    head = "query($n: Int) " if "$n" in first else ""
    return head + "{ organizations" + first + " { edges { node { name } } } }"


async def test_first_multiplies_what_is_below_it_and_its_absence_counts_as_the_maximum(gql, settings, monkeypatch):
    # organizations (1) + first × (edges 1 + node 1 + name 1): 7 for 2 items, 16 for 5, 301 for 100
    await gql.token_for("owner@romashka.example")
    monkeypatch.setattr(settings, "max_query_cost", 15)
    ok = await gql.execute(_orgs("(first: 2)"), as_user="owner@romashka.example")
    assert "errors" not in ok and ok["data"]["organizations"]["edges"]
    assert (await gql.execute(_orgs("(first: $n)"), {"n": 4}, as_user="owner@romashka.example"))["data"]
    for first, variables, cost in (("(first: 5)", {}, 16), ("(first: $n)", {"n": 5}, 16), ("", {}, 301),
                                   ("(first: $n)", {}, 301), ("(first: $n)", {"n": None}, 301), ("(first: null)", {}, 301)):
        body = await gql.execute(_orgs(first), variables, as_user="owner@romashka.example")
        assert body["data"] is None, first
        error = body["errors"][0]
        assert error["extensions"].pop("requestId")  # every error carries its request's id (tests/test_request_logs.py)
        assert error["extensions"] == {"code": "QUERY_TOO_COMPLEX", "cost": cost, "maximum": 15}, first


async def test_nested_connections_without_first_are_refused_before_they_run(client, gql, sql_counter):
    query = """{ organizations { edges { node { databases { edges { node { sessions { edges { node {
      userName user { memberships { organization { name } } } } } } } } } } } } }"""
    token = await gql.token_for("owner@romashka.example")
    with sql_counter() as counter:
        response = await client.post("/graphql", json={"query": query},
                                     headers={**GRAPHQL_RESPONSE, "Authorization": f"Bearer {token}"})
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert error["extensions"]["cost"] > error["extensions"]["maximum"] == 250_000
    assert not [s for s in counter.statements if "session" in s.lower()], "nothing was executed"


def test_the_bench_and_dashboard_queries_fit_the_default_maximum(settings):
    from bench import queries
    from schema.build import build_schema

    schema = build_schema(settings)._schema
    for name in ("W1_KABINET", "W2_KABINET", "W3_KABINET", "W4_SUBSCRIPTION", "W5_SUBSCRIPTION", "LOGIN"):
        cost = query_cost(schema, parse_document(getattr(queries, name), settings.max_query_tokens), None, {}, 100)
        assert 0 < cost <= settings.max_query_cost, name


def test_fragments_count_where_they_are_spread_and_a_cycle_does_not_hang(settings):
    from schema.build import build_schema

    schema = build_schema(settings)._schema
    spread = parse_document("{ organizations(first: 3) { edges { node { ...F } } } } fragment F on Organization { name inn }", 1000)
    inline = parse_document("{ organizations(first: 3) { edges { node { name inn } } } }", 1000)
    assert query_cost(schema, spread, None, {}, 100) == query_cost(schema, inline, None, {}, 100) == 13
    cyclic = parse_document("{ organizations { edges { node { ...A } } } } fragment A on Organization { ...A name }", 1000)
    assert query_cost(schema, cyclic, None, {}, 100) > 0


async def test_a_document_over_the_token_limit_is_refused_by_the_parser(client, settings):
    many = "{ " + " ".join(f"a{i}: __typename" for i in range(settings.max_query_tokens // 3 + 10)) + " }"
    commented = "{ __typename }" + "\n#" * (settings.max_query_tokens + 10)
    for query in (many, commented):
        response = await client.post("/graphql", json={"query": query}, headers=GRAPHQL_RESPONSE)
        assert response.status_code == 400
        error = response.json()["errors"][0]
        assert error["extensions"]["code"] == "GRAPHQL_PARSE_FAILED" and "more than" in error["message"]


DEEP = 10_000


@pytest.mark.parametrize("body", [
    {"query": "{" * DEEP},
    {"query": "{ a " * DEEP + "}" * DEEP},
    {"query": "{ node(id: " + "[" * DEEP + "]" * DEEP + ") { id } }"},
    {"query": "{ node(id: " + "{a: " * DEEP + "1" + "}" * DEEP + ") { id } }"},
    {"query": "{ " + "... on Query { " * DEEP + "__typename" + " }" * DEEP + " }"},
    {"query": "query($x: ID!) { node(id: $x) { id } }", "variables": "LISTS"},
    {"query": "query($x: ID!) { node(id: $x) { id } }", "variables": "OBJECTS"},
], ids=["braces", "fields", "list literal", "object literal", "inline fragments", "variable lists", "variable objects"])
async def test_deep_nesting_answers_400_with_a_graphql_error_never_500(client, body):
    text = json.dumps(body)
    text = text.replace('"LISTS"', '{"x": ' + "[" * DEEP + "]" * DEEP + "}")
    text = text.replace('"OBJECTS"', '{"x": ' + '{"a": ' * DEEP + "1" + "}" * DEEP + "}")
    for accept, status in (("application/graphql-response+json", 400), ("application/json", None)):
        response = await client.post("/graphql", content=text, headers={"content-type": "application/json", "accept": accept})
        assert response.status_code != 500 and (status is None or response.status_code == status), response.text[:300]
        errors = response.json()["errors"]
        assert errors and errors[0]["extensions"]["code"] in ("GRAPHQL_PARSE_FAILED", "BAD_USER_INPUT"), errors[0]
        assert "Recursion" not in errors[0]["message"]


async def test_a_body_that_is_not_json_is_a_graphql_error_too(client):
    response = await client.post("/graphql", content=b"not json", headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_get_carrying_a_mutation_is_405_with_allow_post(client):
    for accept in ("application/json", "application/graphql-response+json"):
        response = await client.get(
            "/graphql", params={"query": 'mutation { logout(refreshToken: "x") { ok } }'}, headers={"accept": accept}
        )
        assert response.status_code == 405 and response.headers["allow"] == "POST"
        assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    query = await client.get("/graphql", params={"query": "{ __typename }"}, headers={"accept": "application/json"})
    assert query.status_code == 200 and query.json() == {"data": {"__typename": "Query"}}


# --- readiness on a database without the schema: a real `kabinet serve` on a fresh, empty database


async def _empty_database(tmp_path: Path) -> tuple[str, object]:
    """A fresh database with no tables: SQLite, or PostgreSQL when the suite runs on it; and its cleanup."""
    admin_url = os.environ.get("KABINET_TEST_DATABASE_URL")
    if not admin_url:
        return f"sqlite://{tmp_path / 'empty.sqlite3'}", None
    name = f"kabinet_empty_{uuid.uuid4().hex[:10]}"

    await run_admin_sql(admin_url, f'CREATE DATABASE "{name}"')
    return urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}")), lambda: run_admin_sql(
        admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
    )


async def test_readyz_is_503_while_the_database_lacks_the_schema_and_200_once_migrated(tmp_path, settings):
    database_url, drop = await _empty_database(tmp_path)
    port, log = free_port(), tmp_path / "serve.log"
    env = {
        **os.environ, "KABINET_DATABASE_URL": database_url, "KABINET_BROKER_URL": "memory://",
        "KABINET_SECRET_KEY": settings.secret_key, "KABINET_RUN_WORKERS": "false", "KABINET_MIGRATE_ON_START": "false",
        "KABINET_SEED_DEMO": "false", "KABINET_DATA_DIR": str(tmp_path / "data"),
    }
    process = subprocess.Popen([sys.executable, "-m", "kabinet.cli", "serve", "--port", str(port)],
                               cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    try:
        await wait_until_serving(process, f"127.0.0.1:{port}", log, path="/healthz")
        async with httpx.AsyncClient() as http:
            unready = await http.get(f"http://127.0.0.1:{port}/readyz")
            assert unready.status_code == 503 and unready.json()["checks"]["database"] is False
            migrate = await asyncio.to_thread(
                subprocess.run, [sys.executable, "-m", "kabinet.cli", "migrate"], cwd=ROOT, env=env,
                capture_output=True, text=True, timeout=180,
            )
            assert migrate.returncode == 0, migrate.stdout + migrate.stderr
            ready = await http.get(f"http://127.0.0.1:{port}/readyz")
            assert ready.status_code == 200, ready.text
    finally:
        stop(process)
        if drop is not None:
            await drop()
