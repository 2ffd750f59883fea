"""The compiled completion of loaded objects (`schema/execution.py`) answers exactly what
graphql-core's own field-by-field execution answers: data, errors and their paths, for every role."""

from __future__ import annotations

import json
import re

import pytest
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from schema.execution import KabinetExecutionContext
from tests.both_paths import every_request_executed, stable
from tests.test_dashboard import DASHBOARD

USERS = ["owner@romashka.example", "admin@romashka.example", "buh@romashka.example", "user@romashka.example"]

FRAGMENTS = """
fragment Money on Balance { amount currency }
fragment Doc on Document { __typename id kind number amount currency }
query Fragments($withSessions: Boolean!, $skipProducts: Boolean!) {
  organizations(first: 5) { edges { cursor node {
    __typename id
    ... on Organization { title: name inn }
    balance { ...Money prepaidServices { name remaining } }
    cheapest: documents(first: 2) { edges { node { ...Doc } } pageInfo { hasNextPage endCursor } }
    latest: documents(first: 1) { edges { node { ...Doc issuedOn } } }
    products(first: 3) @skip(if: $skipProducts) { edges { node { name contract { number } } } }
    sessions(first: 5) @include(if: $withSessions) { edges { node { userName database { name } user { fullName } } } }
    members(first: 10) { totalCount edges { node { role user { email } } } }
    invites(first: 10) { edges { node { email status role invitedBy { fullName } databases { name } } } }
    databases(first: 5) { edges { node { __typename name updateSchedule { mode } updateRuns(first: 3) { edges { node { status } } } } } }
  } } }
}
"""

NODES = """
fragment Seen on Node { __typename id ... on Organization { name products(first: 2) { totalCount } } ... on Database { name } }
query Nodes($a: ID!, $b: ID!, $c: ID!) { a: node(id: $a) { ...Seen } b: node(id: $b) { ...Seen } c: node(id: $c) { ...Seen } }
"""

ME = """{ me { id fullName email memberships { role organization { id name viewerRole } } } }"""


def executed_by(app, execution_context_class):
    """Every request executed (none answered from the response cache) by this execution context."""
    return every_request_executed(app, app.state.graphql.schema, "execution_context_class", execution_context_class)


async def _both_ways(app, gql, query: str, variables: dict | None, user: str) -> tuple[dict, dict]:
    with executed_by(app, StrawberryGraphQLCoreExecutionContext):
        plain = await gql.execute(query, variables, as_user=user)
    with executed_by(app, KabinetExecutionContext):
        compiled = await gql.execute(query, variables, as_user=user)
    return stable(plain), stable(compiled)


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize(
    ("query", "variables"),
    [
        (DASHBOARD, None),
        (FRAGMENTS, {"withSessions": True, "skipProducts": False}),
        (FRAGMENTS, {"withSessions": False, "skipProducts": True}),
        (ME, None),
    ],
    ids=["dashboard", "fragments-on", "fragments-off", "me"],
)
async def test_compiled_completion_answers_what_graphql_core_answers(app, gql, user, query, variables):
    plain, compiled = await _both_ways(app, gql, query, variables, user)
    assert compiled == plain
    assert plain.get("data"), plain


async def test_errors_kept_for_fields_are_reported_at_the_same_paths(app, gql):
    """An accountant's dashboard has FORBIDDEN fields deep inside it: the same errors, the same nulls."""
    plain, compiled = await _both_ways(app, gql, DASHBOARD, None, "buh@romashka.example")
    assert plain.get("errors"), "the accountant should meet FORBIDDEN fields"
    assert compiled == plain


async def test_abstract_types_and_unknown_ids(app, gql):
    me = await gql.execute(ME, as_user="owner@romashka.example")
    organization = me["data"]["me"]["memberships"][0]["organization"]["id"]
    variables = {"a": organization, "b": "bm9wZQ", "c": "T3JnYW5pemF0aW9uOjE"}
    plain, compiled = await _both_ways(app, gql, NODES, variables, "owner@romashka.example")
    assert plain["data"]["a"]["name"]
    assert compiled == plain


async def test_a_loaded_dashboard_is_not_executed_field_by_field(app, gql, monkeypatch):
    """The point of the plan: below the root, graphql-core resolves a handful of fields, not thousands."""
    calls = {"n": 0}
    original = KabinetExecutionContext.execute_field

    def counting(self, *args, **kwargs):
        calls["n"] += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(KabinetExecutionContext, "execute_field", counting)
    with executed_by(app, KabinetExecutionContext):
        body = await gql.execute(DASHBOARD, as_user="owner@romashka.example")
    assert "errors" not in body
    fields = len(re.findall(r'":', json.dumps(body)))
    assert calls["n"] < 10 < fields / 10, (calls["n"], fields)
