"""The statement path (schema/sql_json.py) answers exactly what the executor answers.

On PostgreSQL a query the statement path can say in SQL is answered by one statement building its
JSON; here every such read — the bench's W1 and W2, a query of every field the path knows with
its arguments varied, the docs' examples — runs both ways as every demo viewer, and the answers
(data and errors, as parsed JSON) must be equal. The isolation matrix (tests/test_isolation_matrix.py)
does the same for each of its queries the statement answered. The rules said twice (a contract's
status, a schedule's next run: Python and SQL) are held to the same answers over many inputs.
On SQLite the path is never taken: the tests that need it are skipped there.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from zoneinfo import ZoneInfo

import pytest
from graphql import GraphQLObjectType, get_named_type
from tortoise import connections

from bench.queries import W1_KABINET, W2_KABINET
from models.select import is_postgres
from models.organizations import Organization
from resolvers.updates.schedules import next_monthly_run, next_monthly_run_sql
from schema import sql_json
from schema.products import contract_status, contract_status_sql
from tests.both_paths import stable, statement_path
from tests.test_docs_examples import all_examples
from tests.test_isolation_matrix import DEMO_VIEWERS

pytestmark = pytest.mark.usefixtures("app")


@pytest.fixture
def postgres_only(app):
    if not is_postgres(Organization):
        pytest.skip("the statement path is PostgreSQL's (KABINET_TEST_DATABASE_URL)")


async def both_ways(app, gql, query: str, variables: dict | None, user: str | None) -> tuple[dict, dict, bool]:
    """(executed, by the statement path when it takes it, whether it did)."""
    with statement_path(app, False):
        executed = await gql.execute(query, variables, as_user=user)
    answered = sql_json.STATS["answered"]
    with statement_path(app, True):
        by_statement = await gql.execute(query, variables, as_user=user)
    return stable(executed), stable(by_statement), sql_json.STATS["answered"] > answered


async def romashka_ids(gql) -> dict[str, str]:
    body = await gql.execute(
        "{ organizations { edges { node { id name databases { edges { node { id } } } } } } }",
        as_user="owner@romashka.example",
    )
    nodes = [e["node"] for e in body["data"]["organizations"]["edges"]]
    romashka = next(n for n in nodes if "Ромашка" in n["name"])
    return {"org": romashka["id"], "db": romashka["databases"]["edges"][0]["node"]["id"]}


@pytest.mark.parametrize("user", DEMO_VIEWERS)
async def test_the_bench_reads_answer_the_same(app, gql, postgres_only, user):
    ids = await romashka_ids(gql)
    for query, variables in ((W1_KABINET, None), (W2_KABINET, {"org": ids["org"]})):
        executed, by_statement, _ = await both_ways(app, gql, query, variables, user)
        assert by_statement == executed, query


async def test_the_owner_s_bench_reads_are_one_statement(app, gql, postgres_only, sql_counter):
    """W1 and W2 as the owner are answered by the statement: the viewer's memberships, then one SELECT."""
    ids = await romashka_ids(gql)
    await gql.token_for("owner@romashka.example")
    for query, variables in ((W1_KABINET, None), (W2_KABINET, {"org": ids["org"]})):
        answered = sql_json.STATS["answered"]
        with statement_path(app, True), sql_counter() as statements:
            body = await gql.execute(query, variables, as_user="owner@romashka.example")
        assert "errors" not in body, body
        assert sql_json.STATS["answered"] == answered + 1
        built = [s for s in statements.statements if "json_build_object" in s]
        assert len(built) == 1, statements


def every_known_field(schema, type_name: str, depth: int, arguments: dict[str, str]) -> str:
    """A selection of every field the statement path knows on a type, down to `depth` levels."""
    otype = schema.get_type(type_name)
    parts = ["__typename"]
    for name in sql_json.FIELDS[type_name]:
        field_def = otype.fields[name]
        named = get_named_type(field_def.type)
        if not isinstance(named, GraphQLObjectType):
            parts.append(name)
            continue
        if depth == 0:
            continue
        args = arguments.get(f"{type_name}.{name}", "")
        parts.append(f"{name}{args} {{ {_inner(schema, named, depth - 1, arguments)} }}")
    return " ".join(parts)


def _inner(schema, otype: GraphQLObjectType, depth: int, arguments: dict[str, str]) -> str:
    if otype.name.endswith("Connection"):
        node = get_named_type(get_named_type(otype.fields["edges"].type).fields["node"].type)
        return (
            "__typename totalCount pageInfo { hasNextPage hasPreviousPage __typename } "
            f"edges {{ __typename node {{ {_inner(schema, node, depth, arguments)} }} }}"
        )
    if otype.name in sql_json.FIELDS:
        return every_known_field(schema, otype.name, depth, arguments)
    # an object the path builds whole (Balance, UpdateSchedule): its fields, one level deeper where they are objects
    parts = []
    for name, field_def in otype.fields.items():
        named = get_named_type(field_def.type)
        if isinstance(named, GraphQLObjectType):
            parts.append(f"{name} {{ {_inner(schema, named, depth, arguments)} }}")
        else:
            parts.append(name)
    return " ".join(parts)


# who sees every field the path knows in all their organizations (a USER's sessions and databases narrowed)
ANSWERED_ALL = ("owner@romashka.example", "admin@romashka.example")
SMALL_PAGES = {  # within the cost limit (schema/limits.py) for a query of every field
    "Query.organizations": "(first: 5)", "Organization.products": "(first: 10)", "Organization.documents": "(first: 5)",
    "Organization.databases": "(first: 5)", "Organization.sessions": "(first: 10)",
}
VARIANTS = [
    SMALL_PAGES,
    {**SMALL_PAGES, "Query.organizations": "(first: 1)", "Organization.products": "(first: 0)",
     "Organization.sessions": "(status: ACTIVE, first: 2)"},
    {**SMALL_PAGES, "Organization.products": "(category: CLOUD_RENTAL, first: 1)", "Organization.documents": "(kind: INVOICE, first: 1)",
     "Organization.sessions": "(status: ENDED, first: 3)", "Organization.databases": "(first: 1)"},
    {**SMALL_PAGES, "Organization.documents": '(from: "2026-01-01", to: "2026-12-31", first: 3)',
     "Organization.sessions": "(first: 30)"},
]


@pytest.mark.parametrize("user", DEMO_VIEWERS)
async def test_every_field_it_knows_answers_the_same(app, gql, postgres_only, user):
    """A query of every field the path knows (FIELDS: a field added there is covered here), with
    its arguments varied, as every demo viewer; as the owner the statement must answer it."""
    schema = app.state.graphql.schema._schema
    ids = await romashka_ids(gql)
    for variant in VARIANTS:
        organizations = variant["Query.organizations"]
        selection = every_known_field(schema, "Organization", 3, variant)
        query = (
            f"query($org: ID!) {{ organizations{organizations} {{ totalCount edges {{ node {{ {selection} }} }} }} "
            f"one: organization(id: $org) {{ {selection} }} __typename }}"
        )
        executed, by_statement, answered = await both_ways(app, gql, query, {"org": ids["org"]}, user)
        assert by_statement == executed, (variant, executed.get("errors"))
        if user in ANSWERED_ALL:
            assert answered, (variant, executed.get("errors"))
            assert "errors" not in executed, executed["errors"]


async def test_a_user_s_narrowed_lists_are_one_statement(app, gql, postgres_only):
    """A USER sees their own sessions and the databases granted to them: the statement narrows the
    same way (the role table's narrowing as SQL), and answers as the executor does."""
    query = """{ organizations { edges { node { name viewerRole
      products(first: 5) { totalCount edges { node { name contract { number status } } } }
      databases { totalCount edges { node { name updateSchedule { mode nextRunAt } } } }
      sessions(first: 20) { totalCount edges { node { userName status database { name } } } }
    } } } }"""
    executed, by_statement, answered = await both_ways(app, gql, query, None, "user@romashka.example")
    assert answered and by_statement == executed
    sessions = executed["data"]["organizations"]["edges"][0]["node"]["sessions"]
    assert sessions["totalCount"] >= 1, executed


async def test_a_kept_statement_follows_the_viewer_s_rights(app, gql, postgres_only):
    """A statement is kept per query and rights (schema/sql_json STATEMENTS): when an ADMIN becomes a
    USER, the same query of the same token answers what a USER sees, as the executor does."""
    from models.identity import User
    from models.organizations import Membership, Role

    query = """{ organizations { edges { node { name viewerRole
      databases { totalCount } sessions { totalCount edges { node { userName } } } } } } }"""
    admin = await User.get(email="admin@romashka.example")
    membership = await Membership.filter(user_id=admin.id).first()
    as_admin, _, answered = await both_ways(app, gql, query, None, "admin@romashka.example")
    assert answered
    try:
        await Membership.filter(id=membership.id).update(role=Role.USER)
        executed, by_statement, answered = await both_ways(app, gql, query, None, "admin@romashka.example")
    finally:
        await Membership.filter(id=membership.id).update(role=membership.role)
    assert answered and by_statement == executed
    assert by_statement != as_admin


async def test_what_it_cannot_say_is_executed(app, gql, postgres_only):
    """A cursor, a field it does not know, an organization not the viewer's: the executor answers."""
    ids = await romashka_ids(gql)
    other = "T3JnYW5pemF0aW9uOjAwMDAwMDAwLTAwMDAtMDAwMC0wMDAwLTAwMDAwMDAwMDAwMA"
    for query, variables in (
        ("{ organizations(first: 1) { edges { cursor node { name } } } }", None),
        ('{ organizations(first: 1, after: "WyJaIl0") { edges { node { name } } } }', None),
        ("query($org: ID!) { organization(id: $org) { name members { totalCount } } }", {"org": ids["org"]}),
        ("query($org: ID!) { organization(id: $org) { name } }", {"org": other}),
        ("{ organizations(first: 1000) { totalCount } }", None),
    ):
        executed, by_statement, answered = await both_ways(app, gql, query, variables, "owner@romashka.example")
        assert not answered, query
        assert by_statement == executed


DEMO_LOGINS = frozenset(DEMO_VIEWERS)


async def test_the_docs_examples_answer_the_same(app, gql, postgres_only):
    """Every query example of README.md and docs/*.md run as a demo viewer, with its variables when
    they need no value an earlier example kept: both ways; those the statement answers, compared."""
    ids = await romashka_ids(gql)
    names = {"romashka": ids["org"], "accounting": ids["db"]}
    compared = answered_any = 0
    for example in all_examples():
        if example.skip or example.login not in DEMO_LOGINS or not re.match(r"\s*(query\b|\{)", example.query):
            continue
        text = example.variables or "{}"
        wanted = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", text))
        if not wanted <= names.keys():
            continue
        for name in wanted:
            text = re.sub(r"\{\{\s*" + name + r"\s*\}\}", names[name], text)
        executed, by_statement, answered = await both_ways(app, gql, example.query, json.loads(text), example.login)
        if answered:  # otherwise both were executed (and what moves with the clock may differ between them)
            assert by_statement == executed, example.query
            answered_any += 1
        compared += 1
    assert compared >= 5 and answered_any >= 1, (compared, answered_any)


# ------------------------------------------------------------------ the rules said twice


async def scalar(sql: str, *params):
    _, rows = await connections.get("default").execute_query(sql, list(params))
    return rows[0][0]


async def test_contract_status_is_said_the_same_in_sql(postgres_only):
    today = dt.date(2026, 12, 7)
    for days in (None, -400, -1, 0, 1, 29, 30, 31, 400):
        ends_on = None if days is None else today + dt.timedelta(days=days)
        sql = f"SELECT {contract_status_sql('$1::date', '$2')}"
        assert await scalar(sql, ends_on, today) == contract_status(ends_on, today).name, days


ZONES = ["Europe/Moscow", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "UTC", "Pacific/Chatham"]


async def test_next_monthly_run_is_said_the_same_in_sql(postgres_only):
    """Days, times and zones around changes of clocks (a skipped hour, a repeated one), month ends."""
    sql = f"SELECT {next_monthly_run_sql('$1::int', '$2::text', '$3::text', '$4::timestamptz')}"
    afters = [
        dt.datetime(2026, 3, 29, 0, 30, tzinfo=dt.timezone.utc),  # Europe's spring change day
        dt.datetime(2026, 10, 24, 23, 0, tzinfo=dt.timezone.utc),  # the night before Europe's autumn change
        dt.datetime(2026, 11, 1, 5, 30, tzinfo=dt.timezone.utc),  # New York's autumn change
        dt.datetime(2026, 3, 8, 6, 59, 59, 999999, tzinfo=dt.timezone.utc),
        dt.datetime(2026, 4, 4, 14, 0, tzinfo=dt.timezone.utc),  # Lord Howe's half-hour change
        dt.datetime(2026, 12, 31, 23, 59, tzinfo=dt.timezone.utc),
        dt.datetime(2026, 1, 28, 21, 0, tzinfo=dt.timezone.utc),
    ]
    days = [1, 4, 8, 24, 25, 28]
    times = ["00:00", "01:30", "01:45", "02:00", "02:30", "03:00", "03:30", "23:59"]
    checked = 0
    for zone in ZONES:
        for after in afters:
            local_day = after.astimezone(ZoneInfo(zone)).day
            for day in {*days, min(28, local_day), min(28, local_day + 1)}:
                for time_of_day in times:
                    expected = next_monthly_run(day, time_of_day, zone, after)
                    got = await scalar(sql, day, time_of_day, zone, after)
                    assert got == expected, (zone, after, day, time_of_day, got, expected)
                    checked += 1
    assert checked > 1000
