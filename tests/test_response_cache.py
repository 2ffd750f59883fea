"""Kept answers (kabinet/response_cache.py): given again only while nothing they read has changed.

A kept answer costs one SQL statement (the data versions); an executed one costs many. Every
change below is made the way it happens in life — a mutation, a worker's or an agent's write
through the models, raw SQL — and the very next request must see it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from tortoise import connections
from tortoise.transactions import in_transaction

from kabinet.db import count_sql
from models.billing import BalanceTransaction, TransactionKind
from models.bulk import insert_rows
from models.cloud import Session, SessionStatus
from models.identity import User
from models.organizations import Organization, Role
from models.versions import SCOPE_OF_TABLE, UNVERSIONED, DataVersion
from foundation.ids import to_global_id
from tests import factories

DASHBOARD = """query($org: ID!) { organization(id: $org) {
  name viewerRole
  members(first: 20) { edges { node { role user { fullName } } } }
  sessions(status: ACTIVE, first: 50) { totalCount edges { node { userName status } } }
  databases(first: 10) { edges { node { name updateSchedule { mode dayOfMonth } } } }
} }"""
TERMINATE = """mutation($id: ID!) { terminateSession(sessionId: $id) { userErrors { code } } }"""
ME = "{ me { fullName memberships { role organization { name } } } }"


async def ask(gql, email: str, query: str, variables: dict | None = None) -> tuple[dict, int]:
    """The answer and the number of SQL statements it took."""
    await gql.token_for(email)  # signing in is not part of the count
    with count_sql() as counter:
        body = await gql.execute(query, variables, as_user=email)
    return body, len(counter.statements)


@pytest.fixture
async def team(gql):
    organization, users = await factories.create_team(Role.ADMIN, Role.ACCOUNTANT, Role.USER)
    database = await factories.create_database(organization)
    sessions = [await factories.create_session(database, user_name=f"Сеанс {i}") for i in range(3)]
    for user in users.values():
        await gql.token_for_password(user.email, factories.PASSWORD)
    return organization, users, database, sessions


def org_id(organization) -> str:
    return to_global_id("Organization", organization.id)


def active_names(body: dict) -> set[str]:
    return {e["node"]["userName"] for e in body["data"]["organization"]["sessions"]["edges"]}


async def test_the_same_query_again_is_answered_from_the_cache_with_one_statement(gql, team):
    organization, users, *_ = team
    owner = users[Role.OWNER].email
    first, executed = await ask(gql, owner, DASHBOARD, {"org": org_id(organization)})
    again, kept = await ask(gql, owner, DASHBOARD, {"org": org_id(organization)})
    assert "errors" not in first and again == first
    assert kept == 1 < executed


async def test_a_mutation_is_seen_by_the_very_next_query(gql, team):
    organization, users, _, sessions = team
    owner, admin = users[Role.OWNER].email, users[Role.ADMIN].email
    before, _ = await ask(gql, owner, DASHBOARD, {"org": org_id(organization)})
    assert "Сеанс 0" in active_names(before)
    done = await gql.execute(TERMINATE, {"id": to_global_id("Session", sessions[0].id)}, as_user=admin)
    assert done["data"]["terminateSession"]["userErrors"] == []
    after, statements = await ask(gql, owner, DASHBOARD, {"org": org_id(organization)})
    assert statements > 1
    # TERMINATING until the cluster confirms: no longer among the ACTIVE ones
    assert "Сеанс 0" not in active_names(after)


async def test_writes_outside_any_request_are_seen_too(gql, team):
    """A worker's model write, and plain SQL from another process: the triggers see both."""
    organization, users, database, sessions = team
    owner = users[Role.OWNER].email
    variables = {"org": org_id(organization)}
    await ask(gql, owner, DASHBOARD, variables)

    await Session.filter(id=sessions[1].id).update(status=SessionStatus.ENDED)
    after_model_write, _ = await ask(gql, owner, DASHBOARD, variables)
    assert "Сеанс 1" not in active_names(after_model_write)

    connection = connections.get("default")
    placeholder = "$1" if connection.capabilities.dialect == "postgres" else "?"
    schedule_sql = f"UPDATE update_schedule SET day_of_month = 17, mode = 'MONTHLY' WHERE database_id = {placeholder}"
    await connection.execute_query(schedule_sql, [database.id if placeholder == "$1" else str(database.id)])
    after_sql, _ = await ask(gql, owner, DASHBOARD, variables)
    schedule = after_sql["data"]["organization"]["databases"]["edges"][0]["node"]["updateSchedule"]
    assert schedule == {"mode": "MONTHLY", "dayOfMonth": 17}


async def test_a_colleagues_new_name_is_seen_in_the_members_list(gql, team):
    organization, users, *_ = team
    owner = users[Role.OWNER].email
    variables = {"org": org_id(organization)}
    await ask(gql, owner, DASHBOARD, variables)
    await User.filter(id=users[Role.ACCOUNTANT].id).update(full_name="Новая Фамилия Бухгалтера")
    body, _ = await ask(gql, owner, DASHBOARD, variables)
    names = {e["node"]["user"]["fullName"] for e in body["data"]["organization"]["members"]["edges"]}
    assert "Новая Фамилия Бухгалтера" in names


async def test_a_new_membership_and_a_changed_role_are_seen(gql, team):
    organization, users, *_ = team
    user = users[Role.USER]
    body, _ = await ask(gql, user.email, ME, None)
    assert [m["role"] for m in body["data"]["me"]["memberships"]] == ["USER"]

    other, _ = await factories.create_team()
    await factories.add_member(other, user, Role.ACCOUNTANT)
    body, _ = await ask(gql, user.email, ME, None)
    assert sorted(m["role"] for m in body["data"]["me"]["memberships"]) == ["ACCOUNTANT", "USER"]

    from models.organizations import Membership
    await Membership.filter(organization_id=organization.id, user_id=user.id).update(role=Role.ADMIN)
    body, _ = await ask(gql, user.email, ME, None)
    assert sorted(m["role"] for m in body["data"]["me"]["memberships"]) == ["ACCOUNTANT", "ADMIN"]


async def test_changes_elsewhere_leave_the_kept_answer_alone(gql, team):
    organization, users, *_ = team
    owner = users[Role.OWNER].email
    variables = {"org": org_id(organization)}
    await ask(gql, owner, DASHBOARD, variables)
    stranger, _ = await factories.create_team()
    await factories.create_database(stranger)
    _, statements = await ask(gql, owner, DASHBOARD, variables)
    assert statements == 1


async def test_users_never_get_each_others_answers(gql, team):
    """Same query, same variables: an owner's answer is not a user's (roles see different things)."""
    organization, users, *_ = team
    variables = {"org": org_id(organization)}
    owner_body, _ = await ask(gql, users[Role.OWNER].email, DASHBOARD, variables)
    user_body, statements = await ask(gql, users[Role.USER].email, DASHBOARD, variables)
    assert statements > 1
    assert owner_body["data"]["organization"]["viewerRole"] == "OWNER"
    assert user_body["data"]["organization"]["viewerRole"] == "USER"


async def test_answers_with_errors_and_mutations_are_not_kept(gql, team):
    organization, users, *_ = team
    accountant = users[Role.ACCOUNTANT].email
    variables = {"org": org_id(organization)}
    first, _ = await ask(gql, accountant, DASHBOARD, variables)
    assert {e["extensions"]["code"] for e in first["errors"]} == {"FORBIDDEN"}  # databases, sessions
    again, statements = await ask(gql, accountant, DASHBOARD, variables)
    assert statements > 1  # executed again: its errors carry this request's own id
    assert [e["extensions"]["requestId"] for e in again["errors"]] != [e["extensions"]["requestId"] for e in first["errors"]]
    for body in (first, again):
        for error in body["errors"]:
            error["extensions"].pop("requestId")
    assert again == first

    missing = {"id": to_global_id("Session", uuid.uuid4())}
    for _ in range(2):
        body, statements = await ask(gql, users[Role.ADMIN].email, TERMINATE, missing)
        assert body["data"]["terminateSession"]["userErrors"][0]["code"] == "NOT_FOUND"
        assert statements > 1


async def test_staff_answers_are_not_kept(gql):
    staff = await factories.create_user()
    await User.filter(id=staff.id).update(is_staff=True)
    await gql.token_for_password(staff.email, factories.PASSWORD)
    query = "{ organizationsForModeration(first: 5) { totalCount } }"
    await ask(gql, staff.email, query)
    _, statements = await ask(gql, staff.email, query)
    assert statements > 1


async def test_a_kept_answer_is_given_for_a_limited_time_only(app, gql, team):
    organization, users, *_ = team
    owner = users[Role.OWNER].email
    cache = app.state.graphql.response_cache
    variables = {"org": org_id(organization)}
    await ask(gql, owner, DASHBOARD, variables)
    previous, cache.max_age = cache.max_age, 0.0
    try:
        _, statements = await ask(gql, owner, DASHBOARD, variables)
    finally:
        cache.max_age = previous
    assert statements > 1


async def test_every_table_is_versioned_or_said_to_be_unread(app):
    """A new table must say which scope its rows belong to (or that no query reads it), and have its trigger."""
    connection = connections.get("default")
    if connection.capabilities.dialect == "postgres":
        _, rows = await connection.execute_query("SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public'")
        _, triggers = await connection.execute_query("SELECT tgname AS name FROM pg_trigger WHERE NOT tgisinternal")
    else:
        _, rows = await connection.execute_query("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        _, triggers = await connection.execute_query("SELECT name FROM sqlite_master WHERE type = 'trigger'")
    tables = {row["name"] for row in rows}
    assert tables - set(SCOPE_OF_TABLE) - UNVERSIONED == set()
    assert set(SCOPE_OF_TABLE) <= tables
    trigger_names = {row["name"] for row in triggers}
    untriggered = {t for t in SCOPE_OF_TABLE if not {f"data_version_{t}", f"data_version_{t}_insert"} & trigger_names}
    assert untriggered == set()


async def _versions(*scopes: uuid.UUID) -> dict[uuid.UUID, int]:
    rows = await DataVersion.filter(scope__in=list(scopes)).values("scope", "version")
    return {scope: 0 for scope in scopes} | {row["scope"]: row["version"] for row in rows}


def _moved(before: dict, after: dict) -> set:
    return {scope for scope in before if after[scope] != before[scope]}


async def test_every_changed_row_moves_its_organizations_version(app):
    """PostgreSQL moves a version once per statement (transition tables), SQLite once per row: either
    way every organization a statement's rows belong to, before or after it, moves on, and no other."""
    a, b, c = [await factories.create_organization() for _ in range(3)]
    when = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
    before = await _versions(a.id, b.id, c.id)
    await insert_rows(BalanceTransaction, [
        {"organization_id": organization.id, "seq": seq, "kind": TransactionKind.TOP_UP, "amount": Decimal("1.00"),
         "balance_after": Decimal(seq), "description": "", "occurred_at": when}
        for seq in range(1, 4) for organization in (a, b)
    ])  # one statement on PostgreSQL
    after_insert = await _versions(a.id, b.id, c.id)
    assert _moved(before, after_insert) == {a.id, b.id}

    await BalanceTransaction.filter(organization_id=a.id, seq=1).update(organization_id=c.id)  # changes hands
    after_move = await _versions(a.id, b.id, c.id)
    assert _moved(after_insert, after_move) == {a.id, c.id}

    await BalanceTransaction.filter(organization_id=a.id, seq=99).update(description="nothing matches")
    assert await _versions(a.id, b.id, c.id) == after_move

    await BalanceTransaction.filter(organization_id=b.id).delete()
    after_delete = await _versions(a.id, b.id, c.id)
    assert _moved(after_move, after_delete) == {b.id}

    await Organization.filter(id=c.id).delete()  # its entry goes with it, by the foreign key's cascade
    assert _moved(after_delete, await _versions(a.id, b.id, c.id)) == {c.id}


async def test_a_truncated_table_moves_every_version(app):
    """PostgreSQL: TRUNCATE fires no row's trigger, so every scope moves on (in a transaction rolled back)."""
    connection = connections.get("default")
    if connection.capabilities.dialect != "postgres":
        pytest.skip("SQLite has no TRUNCATE (a DELETE without WHERE fires the row triggers)")
    organization = await factories.create_organization()
    before = await _versions(organization.id)

    class RolledBack(Exception):
        pass

    with pytest.raises(RolledBack):
        async with in_transaction() as transaction:
            await transaction.execute_script("TRUNCATE invite_database")
            rows = await transaction.execute_query_dict(
                "SELECT version FROM data_version WHERE scope = $1", [organization.id]
            )
            assert rows[0]["version"] == before[organization.id] + 1
            raise RolledBack
