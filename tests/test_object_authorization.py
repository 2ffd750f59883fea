"""Authorization belongs to the object: a role reaches nothing its role forbids through another path
(a link, node(id:), a payload), and shared subscription results never cross viewers (issue 10)."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from models.cloud import Database, Session
from models.organizations import DatabaseGrant, Invite, InviteDatabase, InviteStatus, Organization
from foundation.ids import to_global_id
from tests import factories
from tests.factories import Role
from tests.live import LEGACY_WS, TRANSPORT_WS, GraphQLSocket

BOTH = pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
ROMASHKA_INN = "7707083893"


def gid(type_name: str, pk: uuid.UUID) -> str:
    return to_global_id(type_name, pk)


def codes_at(body: dict, last: str) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors", []) if e.get("path") and e["path"][-1] == last]


async def romashka_id() -> str:
    return gid("Organization", (await Organization.get(inn=ROMASHKA_INN)).id)


async def as_factory_user(gql, email: str) -> str:
    if email not in gql.tokens:
        await gql.token_for_password(email, factories.PASSWORD)
    return email


# ------------------------------------------------------------------ reproduction 3: links from visible objects


async def test_an_accountant_reaches_no_database_through_a_charge(gql):
    body = await gql.execute(
        """query($org: ID!) { organization(id: $org) { charges(first: 100) { edges { node { id kind
             database { name updateSchedule { mode hasCredentials } updateRuns(first: 5) { edges { node { id } } } } } } } } }""",
        {"org": await romashka_id()}, as_user="buh@romashka.example",
    )
    charges = [e["node"] for e in body["data"]["organization"]["charges"]["edges"]]
    with_database = [c for c in charges if c["kind"] == "CLOUD_RENTAL"]
    assert with_database, "the demo data set has cloud rental charges of databases"
    assert all(c["database"] is None for c in charges), body["data"]
    assert codes_at(body, "database") and set(codes_at(body, "database")) == {"FORBIDDEN"}
    assert "Бухгалтерия" not in str(body["data"])


async def test_an_owner_still_sees_the_database_of_a_charge(gql):
    body = await gql.execute(
        """query($org: ID!) { organization(id: $org) { charges(first: 100, kind: CLOUD_RENTAL) { edges { node {
             database { name updateSchedule { mode } } } } } } }""",
        {"org": await romashka_id()}, as_user="owner@romashka.example",
    )
    assert "errors" not in body, body
    assert all(e["node"]["database"]["name"] for e in body["data"]["organization"]["charges"]["edges"])


async def test_invite_databases_follow_the_database_rule(gql):
    org, users = await factories.create_team(Role.ACCOUNTANT, Role.ADMIN)
    database = await factories.create_database(org)
    invite = await Invite.create(
        organization=org, email=factories.unique_email("invitee"), role=Role.USER, status=InviteStatus.PENDING,
        token_hash=uuid.uuid4().hex, invited_by=users[Role.ADMIN],
        expires_at=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=7),
    )
    await InviteDatabase.create(invite=invite, database=database)
    query = """query($org: ID!) { organization(id: $org) { invites(first: 5) { edges { node { email
                 databases { name } invitedBy { email } } } } } }"""
    accountant = await as_factory_user(gql, users[Role.ACCOUNTANT].email)
    body = await gql.execute(query, {"org": gid("Organization", org.id)}, as_user=accountant)
    node = body["data"]["organization"]["invites"]["edges"][0]["node"]
    assert node["databases"] == [], "a list holds only what the role may see (the field is non-null)"
    assert node["invitedBy"]["email"] == users[Role.ADMIN].email  # a member: the accountant sees members
    admin = await as_factory_user(gql, users[Role.ADMIN].email)
    body = await gql.execute(query, {"org": gid("Organization", org.id)}, as_user=admin)
    assert body["data"]["organization"]["invites"]["edges"][0]["node"]["databases"] == [{"name": database.name}]


async def test_a_user_sees_their_own_session_but_not_a_database_not_granted_to_them(gql):
    org, users = await factories.create_team(Role.USER)
    granted = await factories.create_database(org, name="Открытая")
    other = await factories.create_database(org, name="Закрытая")
    membership = await users[Role.USER].memberships.all().first()
    await DatabaseGrant.create(membership=membership, database=granted)
    own_elsewhere = await factories.create_session(other, user=users[Role.USER], user_name="Я")
    await factories.create_session(granted, user=users[Role.USER], user_name="Я")
    await factories.create_session(granted, user=users[Role.OWNER], user_name="Другой")
    user = await as_factory_user(gql, users[Role.USER].email)
    body = await gql.execute(
        """query($org: ID!) { organization(id: $org) { sessions(first: 10) { edges { node { userName
             database { name } } } } } }""",
        {"org": gid("Organization", org.id)}, as_user=user,
    )
    assert "errors" not in body, body
    seen = sorted((e["node"]["userName"], (e["node"]["database"] or {}).get("name", "")) for e in body["data"]["organization"]["sessions"]["edges"])
    assert seen == [("Я", ""), ("Я", "Открытая")]
    for type_name, pk in (("Database", other.id), ("Session", (await Session.filter(user_name="Другой", organization_id=org.id).first()).id)):
        body = await gql.execute("query($id: ID!) { node(id: $id) { id } }", {"id": gid(type_name, pk)}, as_user=user)
        assert body["data"]["node"] is None, (type_name, body)
    body = await gql.execute("query($id: ID!) { node(id: $id) { ... on Session { userName database { name } } } }",
                             {"id": gid("Session", own_elsewhere.id)}, as_user=user)
    assert body["data"]["node"] == {"userName": "Я", "database": None}


async def test_an_accountant_reaches_no_session_or_update_run_by_id(gql):
    romashka = await Organization.get(inn=ROMASHKA_INN)
    session = await Session.filter(organization_id=romashka.id).first()
    database = await Database.filter(organization_id=romashka.id).first()
    for type_name, pk in (("Session", session.id), ("Database", database.id)):
        body = await gql.execute("query($id: ID!) { node(id: $id) { id } }", {"id": gid(type_name, pk)},
                                 as_user="buh@romashka.example")
        assert body["data"]["node"] is None and "errors" not in body, body


async def test_another_organizations_member_is_not_visible_through_memberships(gql):
    """`User.memberships` of a member shows the organizations where the viewer sees members, and
    the viewer's own; never another organization's name and INN."""
    org, users = await factories.create_team(Role.ADMIN, Role.USER)
    elsewhere = await factories.create_organization()
    await factories.add_member(elsewhere, users[Role.USER], Role.ACCOUNTANT)
    admin = await as_factory_user(gql, users[Role.ADMIN].email)
    body = await gql.execute(
        """query($org: ID!) { organization(id: $org) { members(first: 10) { edges { node {
             user { email memberships { organization { name inn } } } } } } } }""",
        {"org": gid("Organization", org.id)}, as_user=admin,
    )
    assert elsewhere.inn not in str(body), body
    member = await as_factory_user(gql, users[Role.USER].email)
    body = await gql.execute("{ me { memberships { organization { inn } } } }", as_user=member)
    assert {m["organization"]["inn"] for m in body["data"]["me"]["memberships"]} == {org.inn, elsewhere.inn}


# ------------------------------------------------------------------ reproduction 2: shared results between equals

DEEP_LIVE = """subscription($org: ID!) { sessions(organizationId: $org) { sessions { id userName
  user { email memberships { organization { name inn balance { amount } } } } } } }"""


async def _first_message(gql, live_server: str, protocol: str, email: str, query: str, variables: dict) -> dict:
    sock = GraphQLSocket(live_server, protocol)
    try:
        assert (await sock.connect(gql.tokens[email]))["type"] == "connection_ack"
        await sock.subscribe(query, variables)
        return await sock.next_data()
    finally:
        await sock.close()


@BOTH
async def test_two_admins_with_different_other_memberships_get_each_their_own_first_message(gql, live_server, protocol):
    org, users = await factories.create_team(Role.ADMIN)
    second_admin = await factories.create_user(factories.unique_email("admin2"))
    await factories.add_member(org, second_admin, Role.ADMIN)
    vasilek = await factories.create_organization("ИП Другой")
    await factories.add_member(vasilek, users[Role.ADMIN], Role.OWNER)  # the first admin also owns another
    database = await factories.create_database(org)
    await factories.create_session(database, user=users[Role.ADMIN], user_name="Первый")
    variables = {"org": gid("Organization", org.id)}
    first = await as_factory_user(gql, users[Role.ADMIN].email)
    second = await as_factory_user(gql, second_admin.email)
    # The first admin (who belongs to the other organization too) subscribes first; both keep the
    # same text, organization and role.
    mine = await _first_message(gql, live_server, protocol, first, DEEP_LIVE, variables)
    theirs = await _first_message(gql, live_server, protocol, second, DEEP_LIVE, variables)
    assert vasilek.inn in str(mine), "the admin sees their own memberships elsewhere, as over HTTP"
    assert vasilek.inn not in str(theirs) and "ИП Другой" not in str(theirs), theirs
    assert "errors" not in theirs and "errors" not in mine
    over_http = await gql.execute(
        """query($org: ID!) { organization(id: $org) { sessions(first: 10, status: ACTIVE) { edges { node { id userName
             user { email memberships { organization { name inn balance { amount } } } } } } } } }""",
        variables, as_user=second,
    )
    http_sessions = [e["node"] for e in over_http["data"]["organization"]["sessions"]["edges"]]
    assert theirs["data"]["sessions"]["sessions"] == http_sessions


@BOTH
async def test_subscribers_with_the_same_text_but_other_variables_get_their_own_results(gql, live_server, protocol):
    org, users = await factories.create_team(Role.ADMIN)
    database = await factories.create_database(org)
    for n in range(3):
        await factories.create_session(database, user_name=f"Сеанс {n}")
    query = """subscription($org: ID!, $n: Int) { sessions(organizationId: $org) { sessions { id
      database { sessions(first: $n, status: ACTIVE) { edges { node { id } } } } } } }"""
    owner = await as_factory_user(gql, users[Role.OWNER].email)
    admin = await as_factory_user(gql, users[Role.ADMIN].email)
    one = await _first_message(gql, live_server, protocol, owner, query, {"org": gid("Organization", org.id), "n": 1})
    two = await _first_message(gql, live_server, protocol, admin, query, {"org": gid("Organization", org.id), "n": 2})
    assert {len(s["database"]["sessions"]["edges"]) for s in one["data"]["sessions"]["sessions"]} == {1}
    assert {len(s["database"]["sessions"]["edges"]) for s in two["data"]["sessions"]["sessions"]} == {2}


@BOTH
async def test_two_users_with_other_grants_see_each_their_own_sessions_and_databases(gql, live_server, protocol):
    org, users = await factories.create_team(Role.USER)
    other_user = await factories.create_user(factories.unique_email("user2"))
    other_membership = await factories.add_member(org, other_user, Role.USER)
    first_db = await factories.create_database(org, name="Первая")
    second_db = await factories.create_database(org, name="Вторая")
    membership = await users[Role.USER].memberships.all().first()
    await DatabaseGrant.create(membership=membership, database=first_db)
    await DatabaseGrant.create(membership=other_membership, database=second_db)
    await factories.create_session(first_db, user=users[Role.USER], user_name="Один")
    await factories.create_session(second_db, user=other_user, user_name="Два")
    query = """subscription($org: ID!) { sessions(organizationId: $org) { sessions { userName database { name } } } }"""
    variables = {"org": gid("Organization", org.id)}
    one = await _first_message(gql, live_server, protocol, await as_factory_user(gql, users[Role.USER].email), query, variables)
    two = await _first_message(gql, live_server, protocol, await as_factory_user(gql, other_user.email), query, variables)
    assert one["data"]["sessions"]["sessions"] == [{"userName": "Один", "database": {"name": "Первая"}}]
    assert two["data"]["sessions"]["sessions"] == [{"userName": "Два", "database": {"name": "Вторая"}}]


async def test_kept_answers_are_not_handed_to_another_viewer_of_the_same_role(gql):
    """The response cache keeps answers per user: a second admin asking the very same query right
    after the first does not get the first admin's answer (which shows their other organization)."""
    org, users = await factories.create_team(Role.ADMIN)
    second_admin = await factories.create_user(factories.unique_email("admin2"))
    await factories.add_member(org, second_admin, Role.ADMIN)
    elsewhere = await factories.create_organization("ИП Ещё один")
    await factories.add_member(elsewhere, users[Role.ADMIN], Role.OWNER)
    query = """query($org: ID!) { organization(id: $org) { members(first: 10) { edges { node {
                 user { email memberships { organization { name inn } } } } } } } }"""
    variables = {"org": gid("Organization", org.id)}
    first = await gql.execute(query, variables, as_user=await as_factory_user(gql, users[Role.ADMIN].email))
    again = await gql.execute(query, variables, as_user=users[Role.ADMIN].email)
    assert elsewhere.inn in str(first) and again == first
    second = await gql.execute(query, variables, as_user=await as_factory_user(gql, second_admin.email))
    assert elsewhere.inn not in str(second), second
