"""An attacker's read of the statement path (schema/sql_json/, issue 22): for every query and viewer
its answer is the executor's, and it never shows another organization's rows or rows a role may not see.

Two organizations of this test's own (names full of quotes, backslashes and other characters SQL and
JSON treat specially), a member of both with a different role in each (OWNER here, USER there with
one database granted; ADMIN here, ACCOUNTANT there), integrators' API tokens with some scopes, and
queries that try aliases of one field with other arguments, fragments, directives, variables of every
kind, ids of other organizations and other types: each is run with the path off and on and the
answers (data and errors) compared (tests/both_paths.py). PostgreSQL only: on SQLite the path is
never taken.
"""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from foundation.ids import to_global_id
from models.cloud import ClientKind, Session, SessionStatus
from models.organizations import DatabaseGrant, Membership, Organization
from models.products import Contract, ContractKind, Product, ProductCategory
from models.select import is_postgres
from schema import sql_json
from tests import factories
from tests.both_paths import stable, statement_path
from tests.factories import Role
from tests.test_api_tokens import CREATE
from tests.test_sign_ins import post, sign_in

pytestmark = pytest.mark.usefixtures("app")

# text SQL, JSON and GraphQL treat specially, in every name the statement reads
ODD = "O'Brien \\\\' \"q\" $1 %s ; -- /* \u2028\u2029 \x01\x1f \\u0000 ёжик 🦔 '); DROP TABLE product; --"


@pytest.fixture
def postgres_only(app):
    if not is_postgres(Organization):
        pytest.skip("the statement path is PostgreSQL's (KABINET_TEST_DATABASE_URL)")


async def both_ways(app, client, query: str, variables: dict | None, bearer: str) -> tuple[dict, dict, bool]:
    """(executed, by the statement path when it takes it, whether it did), as the holder of `bearer`."""
    with statement_path(app, False):
        executed = await post(client, query, variables, bearer)
    answered = sql_json.STATS["answered"]
    with statement_path(app, True):
        by_statement = await post(client, query, variables, bearer)
    # the keys in the order the query asks for them (GraphQL's "ordered map"), which `stable` does not compare
    assert in_order(by_statement) == in_order(executed), (query, variables)
    return stable(executed), stable(by_statement), sql_json.STATS["answered"] > answered


def in_order(body: dict) -> list:
    """Every object's keys, in the order the answer gives them (request ids and links aside)."""
    keys: list = []

    def walk(value) -> None:
        if isinstance(value, dict):
            keys.append(tuple(k for k in value if k not in ("requestId",)))
            for key, item in value.items():
                if key != "requestId":
                    walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(body)
    return keys


def gid(type_name: str, pk) -> str:
    return to_global_id(type_name, pk)


@pytest.fixture
async def world(postgres_only, client):
    """Organizations A and B; `mixed`: OWNER of A, USER of B granted one database; `both`: ADMIN of A,
    ACCOUNTANT of B; each with databases, sessions of several people, products with a contract."""
    a = await factories.create_organization(f"A {ODD}")
    b = await factories.create_organization(f"B {ODD}")
    mixed = await factories.create_user(factories.unique_email("mixed"), full_name=ODD)
    both = await factories.create_user(factories.unique_email("both"))
    owner_b = await factories.create_user(factories.unique_email("owner-b"))
    await factories.add_member(a, mixed, Role.OWNER)
    user_in_b = await factories.add_member(b, mixed, Role.USER)
    await factories.add_member(a, both, Role.ADMIN)
    await factories.add_member(b, both, Role.ACCOUNTANT)
    await factories.add_member(b, owner_b, Role.OWNER)
    now = dt.datetime.now(dt.timezone.utc)
    databases = {}
    for org in (a, b):
        contract = await Contract.create(organization=org, kind=ContractKind.ITS, number=f"№ {ODD}"[:50],
                                         starts_on=dt.date(2026, 1, 1), ends_on=dt.date.today() + dt.timedelta(days=10))
        for n, category in enumerate((ProductCategory.CLOUD_RENTAL, ProductCategory.LOCAL_1C, ProductCategory.LOCAL_1C)):
            await Product.create(organization=org, name=f"{n} {ODD}", category=category, contract=contract if n else None,
                                 registration_number=ODD[:50])
        granted = await factories.create_database(org, name=f"granted {ODD}")
        hidden = await factories.create_database(org, name=f"not granted {ODD}")
        databases[org.id] = (granted, hidden)
        for database in (granted, hidden):
            for person, status in ((mixed, SessionStatus.ACTIVE), (owner_b, SessionStatus.ENDED), (None, SessionStatus.ACTIVE)):
                await Session.create(organization_id=org.id, database=database, user=person, user_name=ODD[:200],
                                     client_kind=ClientKind.THIN_CLIENT, host=ODD[:200], started_at=now - dt.timedelta(minutes=7),
                                     ended_at=now if status is SessionStatus.ENDED else None, status=status)
    await DatabaseGrant.create(membership=user_in_b, database=databases[b.id][0])
    bearers = {}
    for name, user in (("mixed", mixed), ("both", both), ("owner-b", owner_b)):
        bearers[name] = (await sign_in(client, user.email))["accessToken"]
    yield {"a": a, "b": b, "mixed": mixed, "both": both, "owner_b": owner_b, "user_in_b": user_in_b,
           "databases": databases, "bearers": bearers}
    for org in (a, b):
        await org.delete()
    for user in (mixed, both, owner_b):
        await user.delete()


async def api_token(client, bearer: str, org, scopes: list[str]) -> str:
    body = await post(client, CREATE, {"in": {"organizationId": gid("Organization", org.id), "name": uuid.uuid4().hex[:8],
                                              "scopes": scopes}}, bearer)
    made = body["data"]["createApiToken"]
    assert made["userErrors"] == [], made
    return made["token"]


EVERYTHING = """
  id name inn code kind moderationStatus viewerRole legalName __typename
  products(first: 10) { totalCount pageInfo { hasNextPage } edges { node { id name category registrationNumber workplaces
    contract { id number kind status startsOn endsOn } } } }
  databases(first: 10) { totalCount edges { node { id name configuration version isTypical sizeMb
    updateSchedule { mode timezone nextRunAt hasCredentials } } } }
  sessions(first: 20) { totalCount edges { node { id userName host status clientKind startedAt endedAt database { id name } } } }
"""
FINANCE = "balance { amount currency prepaidServices { name remaining } } documents(first: 5) { totalCount edges { node { id number amount } } }"


def attempts(ids: dict[str, str]) -> list[tuple[str, dict]]:
    """(query, variables): what tries to make the statement say something else than the executor."""
    return [
        (f"{{ organizations {{ totalCount edges {{ node {{ {EVERYTHING} }} }} }} }}", {}),
        (f"{{ organizations {{ edges {{ node {{ {EVERYTHING} {FINANCE} }} }} }} }}", {}),
        # aliases of one field with other arguments, at the root and under a list of parents
        ("""{ a: organizations(first: 1) { totalCount edges { node { name } } }
              b: organizations(first: 2) { totalCount pageInfo { hasNextPage } edges { node { name
                x: products(first: 1) { totalCount edges { node { name } } }
                y: products(first: 2, category: LOCAL_1C) { totalCount pageInfo { hasNextPage } edges { node { name } } }
                s1: sessions(status: ACTIVE, first: 1) { totalCount edges { node { status } } }
                s2: sessions(status: ENDED) { totalCount edges { node { status } } } } } } }""", {}),
        ("""query($a: ID!, $b: ID!) { a: organization(id: $a) { name p: products(first: 0) { totalCount pageInfo { hasNextPage } edges { node { name } } }
              q: products { pageInfo { hasNextPage hasPreviousPage } } }
              b: organization(id: $b) { name viewerRole } }""", {"a": ids["a"], "b": ids["b"]}),
        # the same field twice, by fragments and inline fragments, and directives with variables
        ("""query($yes: Boolean!, $no: Boolean!) { organizations { ...O ... on OrganizationConnection { edges { node { id ...P } } } } }
            fragment O on OrganizationConnection { edges { node { name products(first: 3) { edges @include(if: $yes) { node { name } } totalCount @skip(if: $yes) } } } }
            fragment P on Organization { products(first: 3) { edges { node { id contract @skip(if: $no) { number } } } }
              sessions @include(if: $no) { totalCount } __typename t: __typename }""", {"yes": True, "no": False}),
        ("""query($yes: Boolean!) { __typename organizations { __typename t: __typename pageInfo { __typename } edges { __typename node {
              ... on Organization @include(if: $yes) { name } } } } }""", {"yes": False}),
        ("""query($e: Boolean!) { ...Q } fragment Q on Query { organizations { edges { node { products(first: 2) {
              edges @include(if: $e) { __typename node { name } } pageInfo { __typename hasNextPage } totalCount } } } } }""", {"e": False}),
        ("""query($e: Boolean!) { organizations { edges { node { products(first: 2) { edges @include(if: $e) { node { id } }
              edges @skip(if: $e) { node { name } } } } } } }""", {"e": True}),
        # variables of every kind, null, negative, huge, of another type
        ("query($f: Int) { organizations { edges { node { products(first: $f) { totalCount edges { node { name } } } } } } }", {"f": None}),
        ("query($f: Int) { organizations { edges { node { products(first: $f) { totalCount } } } } }", {"f": -1}),
        ("query($f: Int) { organizations { edges { node { products(first: $f) { totalCount } } } } }", {"f": 10 ** 6}),
        ("query($f: Int) { organizations { edges { node { products(first: $f) { totalCount } } } } }", {"f": "3"}),
        ("query($f: Int) { organizations(first: $f) { totalCount } }", {"f": 2 ** 40}),
        ("query($c: ProductCategory) { organizations { edges { node { products(category: $c) { totalCount } } } } }", {"c": None}),
        ("query($c: ProductCategory) { organizations { edges { node { products(category: $c) { totalCount } } } } }", {"c": "LOCAL_1C'; --"}),
        ("query($s: SessionStatus, $d: ID) { organizations { edges { node { sessions(status: $s, databaseId: $d) { totalCount edges { node { id } } } } } } }",
         {"s": "ACTIVE", "d": ids["db_a"]}),
        ("query($d: ID) { organizations { edges { node { sessions(databaseId: $d) { totalCount edges { node { id } } } } } } }", {"d": ids["db_b"]}),
        ("query($d: ID) { organizations { edges { node { sessions(databaseId: $d) { totalCount } } } } }", {"d": ids["db_hidden_b"]}),
        ("query($d: ID) { organizations { edges { node { sessions(databaseId: $d) { totalCount } } } } }", {"d": ids["product"]}),
        ("query($d: ID) { organizations { edges { node { sessions(databaseId: $d) { totalCount } } } } }", {"d": "not an id'--"}),
        ("query($d: ID) { organizations { edges { node { sessions(databaseId: $d) { totalCount } } } } }", {"d": None}),
        ('query($f: Date, $t: Date) { organizations { edges { node { documents(from: $f, to: $t) { totalCount } } } } }',
         {"f": "2026-12-31", "t": "2026-01-01"}),
        ('query($f: Date) { organizations { edges { node { documents(from: $f) { totalCount } } } } }', {"f": "2026-02-30"}),
        # organization(id:) with another organization, a malformed id, an id of another type
        ("query($o: ID!) { organization(id: $o) { name sessions { totalCount } } }", {"o": ids["other"]}),
        ("query($o: ID!) { organization(id: $o) { name } }", {"o": "'; SELECT 1; --"}),
        ("query($o: ID!) { organization(id: $o) { name } }", {"o": ids["db_a"]}),
        ("query($o: ID!) { organization(id: $o) { name } }", {"o": to_global_id("Organization", "not-a-uuid")}),
        # what the statement cannot say, or what makes it fail: the executor answers
        ("{ organizations { edges { node { name } } } __schema { queryType { name } } }", {}),
        ("{ organizations { edges { node { name } } } me { email } }", {}),
        ("{ organizations { edges { node { a: products(first: 1) { edges { node { name } } } b: products(first: 1) { e: edges { node { id } } edges { node { id } } } } } } }", {}),
    ]


async def ids_of(world) -> dict[str, str]:
    product = await Product.filter(organization_id=world["a"].id).first()
    return {
        "a": gid("Organization", world["a"].id), "b": gid("Organization", world["b"].id),
        "db_a": gid("Database", world["databases"][world["a"].id][0].id),
        "db_b": gid("Database", world["databases"][world["b"].id][0].id),
        "db_hidden_b": gid("Database", world["databases"][world["b"].id][1].id),
        "product": gid("Product", product.id),
        "other": gid("Organization", (await Organization.exclude(id__in=[world["a"].id, world["b"].id]).first()).id),
    }


async def test_every_attempt_answers_as_the_executor(app, client, world):
    """As each two-organization member, the owner of one, and API tokens of some scopes."""
    ids = await ids_of(world)
    viewers = dict(world["bearers"])
    viewers["token a: cloud"] = await api_token(client, viewers["mixed"], world["a"], ["cloud:read"])
    viewers["token b: billing+updates"] = await api_token(client, viewers["owner-b"], world["b"], ["billing:read", "updates:read"])
    answered = []
    for who, bearer in viewers.items():
        for query, variables in attempts(ids):
            executed, by_statement, took = await both_ways(app, client, query, variables, bearer)
            assert by_statement == executed, (who, query, variables, executed, by_statement)
            if took:
                answered.append((who, query))
    assert len(answered) >= 10, answered


NARROWED = """{ organizations { edges { node { name viewerRole
  databases { totalCount edges { node { name } } }
  sessions { totalCount edges { node { userName status database { name } } } } } } } }"""


async def test_a_kept_statement_never_outlives_a_token_s_rights(app, client, world):
    """One API token (`cloud:read`, made by the OWNER of A), the same query again and again while its
    creator's role and grants change between the requests: each answer is what the executor gives
    with the rights of that moment, never a statement kept (STATEMENTS) for the rights before."""
    a, mixed = world["a"], world["mixed"]
    token = await api_token(client, world["bearers"]["mixed"], a, ["cloud:read"])
    membership = await Membership.get(organization_id=a.id, user_id=mixed.id)
    granted, hidden = world["databases"][a.id]

    async def answer() -> tuple[int, int]:
        executed, by_statement, answered = await both_ways(app, client, NARROWED, None, token)
        assert answered and by_statement == executed, (executed, by_statement)
        [organization] = [e["node"] for e in executed["data"]["organizations"]["edges"]]
        return organization["databases"]["totalCount"], organization["sessions"]["totalCount"]

    assert await answer() == (2, 6)  # as the OWNER: every database and session of A, and only of A
    await Membership.filter(id=membership.id).update(role=Role.USER)
    assert await answer() == (0, 2)  # a USER granted nothing: no database, their own sessions
    grant = await DatabaseGrant.create(membership=membership, database=granted)
    assert await answer() == (1, 2)
    await DatabaseGrant.create(membership=membership, database=hidden)
    assert await answer() == (2, 2)
    await grant.delete()
    assert await answer() == (1, 2)
    await Membership.filter(id=membership.id).update(role=Role.ACCOUNTANT)
    executed, by_statement, answered = await both_ways(app, client, NARROWED, None, token)
    assert not answered and by_statement == executed  # an ACCOUNTANT's databases: FORBIDDEN, said by the executor
    assert {e["extensions"]["code"] for e in executed["errors"]} == {"FORBIDDEN"}
    await Membership.filter(id=membership.id).update(role=Role.OWNER)
    assert await answer() == (2, 6)


async def test_a_member_of_two_organizations_sees_each_with_its_role(app, client, world):
    """OWNER of A and USER of B: every row of A, only the granted database and own sessions of B;
    ADMIN of A and ACCOUNTANT of B: no statement for databases (FORBIDDEN in B), but one for products."""
    executed, by_statement, answered = await both_ways(app, client, NARROWED, None, world["bearers"]["mixed"])
    assert answered and by_statement == executed
    seen = {e["node"]["viewerRole"]: e["node"] for e in executed["data"]["organizations"]["edges"]}
    assert seen["OWNER"]["databases"]["totalCount"] == 2 and seen["OWNER"]["sessions"]["totalCount"] == 6
    assert seen["USER"]["databases"]["totalCount"] == 1 and seen["USER"]["sessions"]["totalCount"] == 2
    assert {e["node"]["database"]["name"] if e["node"]["database"] else None for e in seen["USER"]["sessions"]["edges"]} == {
        f"granted {ODD}", None}  # their own session in a database not granted to them: the link is null
    executed, by_statement, answered = await both_ways(app, client, NARROWED, None, world["bearers"]["both"])
    assert not answered and by_statement == executed
    products = "{ organizations { edges { node { viewerRole products { totalCount edges { node { name contract { number } } } } } } } }"
    executed, by_statement, answered = await both_ways(app, client, products, None, world["bearers"]["both"])
    assert answered and by_statement == executed
    assert {n["node"]["products"]["edges"][1]["node"]["name"] for n in executed["data"]["organizations"]["edges"]} == {f"1 {ODD}"}
    assert {n["node"]["products"]["edges"][1]["node"]["contract"]["number"] for n in executed["data"]["organizations"]["edges"]} == {
        f"№ {ODD}"[:50]}


async def test_limits_refusals_and_failures_are_the_executor_s(app, client, world):
    """Over the cost limit, more keys than one JSON object of the statement takes, every root field
    skipped, a viewer who must change their password, a statement PostgreSQL refuses (a schedule's
    zone it does not know): the same answer both ways, and never a 500."""
    from models.identity import User
    from models.updates import UpdateMode, UpdateSchedule

    bearer = world["bearers"]["mixed"]
    products = "products(first: 100) { edges { node { id name category workplaces contract { id number kind status } } } }"
    too_costly = "{ organizations(first: 100) { edges { node { " + " ".join(f"p{i}: {products}" for i in range(4)) + " } } } }"
    fields = "id name inn code kind moderationStatus viewerRole legalName "  # 8 keys, and aliases within max_aliases (50)
    many_keys = "{ organizations { edges { node { " + fields + " ".join(f"n{i}: name" for i in range(43)) + " } } } }"
    fifty_keys = "{ organizations { edges { node { " + fields + " ".join(f"n{i}: name" for i in range(42)) + " } } } }"
    for query, variables, may_answer in (
        (too_costly, None, False),
        (many_keys, None, False),  # 51 keys: more than json_build_object takes (MAX_KEYS)
        (fifty_keys, None, True),
        ("query($s: Boolean!) { organizations @skip(if: $s) { totalCount } }", {"s": True}, True),
        ("{ __typename t: __typename }", None, True),
    ):
        executed, by_statement, answered = await both_ways(app, client, query, variables, bearer)
        assert by_statement == executed, (query, executed, by_statement)
        assert answered == may_answer, query
        if query is too_costly:
            assert [e["extensions"]["code"] for e in executed["errors"]] == ["QUERY_TOO_COMPLEX"], executed
    # a zone PostgreSQL does not know: the statement fails, the executor answers (its own error)
    database = world["databases"][world["a"].id][0]
    await UpdateSchedule.filter(database_id=database.id).update(mode=UpdateMode.MONTHLY, day_of_month=5, time_of_day="03:00",
                                                               timezone="Nowhere/Atlantis")
    query = "{ organizations { edges { node { databases { edges { node { name updateSchedule { mode timezone nextRunAt } } } } } } } }"
    failed = sql_json.STATS["executed"]
    response = await client.post("/graphql", json={"query": query}, headers={"Authorization": f"Bearer {bearer}"})
    assert response.status_code == 200
    executed, by_statement, answered = await both_ways(app, client, query, None, bearer)
    assert not answered and by_statement == executed and sql_json.STATS["executed"] > failed
    # someone who must change their password: refused both ways, the path not taken
    user = world["both"]
    await User.filter(id=user.id).update(must_change_password=True)
    changing = (await sign_in(client, user.email))["accessToken"]
    executed, by_statement, answered = await both_ways(app, client, "{ organizations { totalCount } }", None, changing)
    assert not answered and by_statement == executed and executed["errors"], executed



async def test_odd_shapes_of_one_query_answer_as_the_executor(app, client, world):
    """Interfaces, defaults of variables, several operations in one document, literals in place of
    variables: the statement kept for one shape (STATEMENTS) is never handed to another."""
    ids = await ids_of(world)
    bearer = world["bearers"]["mixed"]
    document = """
      query One { organizations { edges { node { ... on Node { id } name } } } }
      query Two($s: Boolean = true) { organizations(first: 1) { pageInfo { hasNextPage } edges { node { name
        ...F @skip(if: $s) } } } }
      fragment F on Organization { products(category: CLOUD_RENTAL) { totalCount } }"""
    seen = set()
    for operation, variables in (("One", {}), ("Two", {}), ("Two", {"s": False}), ("One", {}), ("Two", {"s": True})):
        bodies = []
        for on in (False, True):
            with statement_path(app, on):
                response = await client.post("/graphql", json={"query": document, "operationName": operation, "variables": variables},
                                             headers={"Authorization": f"Bearer {bearer}"})
                bodies.append(stable(response.json()))
        assert bodies[0] == bodies[1], (operation, variables, bodies)
        seen.add(repr(bodies[0]))
    assert len(seen) == 3  # One, Two without the products, Two with them
    for query in (
        f'{{ a: organization(id: "{ids["a"]}") {{ name }} b: organization(id: "{ids["other"]}") {{ name }} }}',
        f'{{ a: organization(id: "{ids["a"]}") {{ name }} b: organization(id: "{ids["b"]}") {{ name viewerRole }} }}',
        "query($f: Int = 0) { organizations(first: $f) { totalCount pageInfo { hasNextPage } edges { node { name } } } }",
        "{ organizations { edges { node { sessions(status: REFUSED, first: 0) { totalCount pageInfo { hasNextPage } } } } } }",
    ):
        executed, by_statement, _ = await both_ways(app, client, query, None, bearer)
        assert by_statement == executed, query


async def test_the_response_cache_on_top_sees_a_change(app, client, world):
    """With the response cache and the statement path both on: an answer is kept, and a change to
    what it read (a product renamed, a role changed) is seen on the next request."""
    bearer = world["bearers"]["mixed"]
    query = "{ organizations { edges { node { viewerRole products(first: 1) { edges { node { name } } } databases { totalCount } } } } }"
    graphql = app.state.graphql
    assert graphql.response_cache is not None
    previous = graphql.settings.sql_json_reads
    graphql.settings.sql_json_reads = True
    try:
        first = await post(client, query, None, bearer)
        answered = sql_json.STATS["answered"]
        assert await post(client, query, None, bearer) == first
        assert sql_json.STATS["answered"] == answered  # the kept answer
        product = await Product.filter(organization_id=world["a"].id, name=f"0 {ODD}").get()
        await Product.filter(id=product.id).update(name=f"0 renamed {ODD}")
        again = await post(client, query, None, bearer)
        names = {e["node"]["products"]["edges"][0]["node"]["name"] for e in again["data"]["organizations"]["edges"]}
        assert f"0 renamed {ODD}" in names and sql_json.STATS["answered"] == answered + 1, again
        await Membership.filter(organization_id=world["a"].id, user_id=world["mixed"].id).update(role=Role.USER)
        demoted = await post(client, query, None, bearer)
        seen = sorted((e["node"]["viewerRole"], e["node"]["databases"]["totalCount"]) for e in demoted["data"]["organizations"]["edges"])
        assert seen == [("USER", 0), ("USER", 1)], demoted  # A: granted nothing; B: one granted database
    finally:
        graphql.settings.sql_json_reads = previous


async def test_a_kept_statement_is_the_day_s(app, client, world):
    """A statement is kept per day (STATEMENTS): yesterday's, whose documents and contract statuses
    were yesterday's, is not given today. The clock moves back a day (a token issued now stays valid)."""
    from foundation import clock
    from models.billing import Document, DocumentKind

    b, bearer = world["b"], world["bearers"]["owner-b"]
    today = clock.today()
    await Contract.filter(organization_id=b.id).update(ends_on=today - dt.timedelta(days=1))
    await Document.create(organization=b, kind=DocumentKind.ACT, number=f"A-{ODD}"[:50], issued_on=today, period=None,
                          amount="-0.10", visible_from=today)
    await Document.create(organization=b, kind=DocumentKind.INVOICE, number="withdrawn", issued_on=today, period=None,
                          amount="1.00", visible_from=today - dt.timedelta(days=3), withdrawn_at=clock.utcnow())
    query = """{ organizations { edges { node { documents { totalCount edges { node { number amount issuedOn } } }
      products { edges { node { contract { status endsOn } } } } } } } }"""
    answers = []
    for moment in (clock.utcnow() - dt.timedelta(days=1), None, clock.utcnow() - dt.timedelta(days=1)):
        if moment is None:
            executed, by_statement, answered = await both_ways(app, client, query, None, bearer)
        else:
            with clock.frozen_at(moment):
                executed, by_statement, answered = await both_ways(app, client, query, None, bearer)
        assert answered and by_statement == executed, (moment, executed, by_statement)
        [organization] = [e["node"] for e in executed["data"]["organizations"]["edges"]]
        statuses = {e["node"]["contract"]["status"] for e in organization["products"]["edges"] if e["node"]["contract"]}
        answers.append((organization["documents"]["totalCount"], statuses))
    assert answers == [(0, {"EXPIRING"}), (1, {"EXPIRED"}), (0, {"EXPIRING"})], answers


async def test_a_zone_postgresql_reads_as_an_abbreviation_answers_as_the_executor(app, client, world):
    """"CET", "EET", "MET", "WET" are IANA zones with summer time (the executor's zoneinfo, and the zone
    list `scheduleUpdate` accepts) but, to PostgreSQL's AT TIME ZONE, abbreviations of a fixed offset
    (looked up before the zone names): a monthly run's next time in summer must still be the executor's."""
    from foundation import clock
    from models.updates import UpdateMode, UpdateSchedule

    bearer = world["bearers"]["owner-b"]
    database = world["databases"][world["b"].id][0]
    query = "{ organizations { edges { node { databases { edges { node { name updateSchedule { timezone nextRunAt } } } } } } } }"
    runs = {}
    for zone, statement_answers in (("CET", False), ("EET", False), ("MET", False), ("WET", False), ("Europe/Berlin", True),
                                    ("EST5EDT", True), ("UTC", True), ("EST", True)):
        await UpdateSchedule.filter(database_id=database.id).update(mode=UpdateMode.MONTHLY, day_of_month=4, time_of_day="02:30",
                                                                   timezone=zone)
        with clock.frozen_at(dt.datetime(2026, 6, 10, 12, 0)):
            executed, by_statement, answered = await both_ways(app, client, query, None, bearer)
        assert by_statement == executed, zone
        assert answered == statement_answers, zone  # a zone both read alike keeps the statement
        [organization] = [e["node"] for e in executed["data"]["organizations"]["edges"]]
        runs[zone] = {e["node"]["updateSchedule"]["nextRunAt"] for e in organization["databases"]["edges"]} - {None}
    assert runs["CET"] == runs["Europe/Berlin"] == {"2026-07-04T00:30:00Z"}, runs  # summer time: UTC+2, not CET's +1
