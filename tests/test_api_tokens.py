"""Integrators' API tokens (issue 21): an OWNER or ADMIN makes, lists and revokes them; a token is
shown once and kept hashed; over HTTP and WebSocket it acts as its creator cut down to its one
organization, its scopes and the creator's current role; a revoked or expired one is refused at once,
and an open socket of a revoked one is closed (real sockets, both sub-protocols); the response cache
never hands the creator's answer to a token."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest

from foundation.ids import to_global_id
from models.audit import AuditEntry
from models.cloud import Session, SessionStatus
from models.organizations import Membership
from models.program_tokens import ProgramToken, TokenKind
from resolvers.identity import api_tokens
from resolvers.identity.program_tokens import PREFIXES
from resolvers.identity.sign_ins import EndedLogins
from tests import factories
from tests.factories import Role
from tests.live import LEGACY_WS, TRANSPORT_WS, GraphQLSocket
from tests.test_sign_ins import assert_closed_as_signed_out, assert_refused_at_connect, post, sign_in, watching

BOTH = pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])

CREATE = """mutation($in: CreateApiTokenInput!) { createApiToken(input: $in) {
  token apiToken { id name scopes createdAt expiresAt lastUsedAt revokedAt active createdBy { email } }
  userErrors { code field message } } }"""
REVOKE = """mutation($id: ID!) { revokeApiToken(id: $id) { apiToken { id name revokedAt active } userErrors { code field } } }"""
LIST = """query($org: ID!) { organization(id: $org) { apiTokens { id name scopes lastUsedAt revokedAt createdBy { email } } } }"""
BALANCE = """query($org: ID!) { organization(id: $org) { name balance { amount currency } documents(first: 5) { edges { node { id } } } } }"""
MEMBERS = """query($org: ID!) { organization(id: $org) { members(first: 5) { edges { node { role } } } } }"""
SESSIONS = """query($org: ID!) { organization(id: $org) { sessions(first: 20) { edges { node { id status } } } } }"""
TERMINATE = """mutation($id: ID!) { terminateSession(sessionId: $id) { session { status } userErrors { code field } } }"""
ORGANIZATIONS = "{ organizations(first: 20) { edges { node { id name } } } }"
ME = "{ me { email memberships { role organization { id } } } }"
NODE = "query($id: ID!) { node(id: $id) { id } }"
CHANGE_PASSWORD = """mutation { changePassword(currentPassword: "factory-password", newPassword: "another-password-1") {
  userErrors { code } } }"""


def gid(type_name: str, pk) -> str:
    return to_global_id(type_name, pk)


def codes(body: dict) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors", [])]


async def team(*roles: Role):
    """An organization with a member per role (and an owner), each signed in; a database with a session."""
    org, users = await factories.create_team(*roles)
    database = await factories.create_database(org)
    session = await factories.create_session(database, user=users[Role.OWNER], user_name="Директор")
    return org, users, session


async def access(client, user) -> str:
    return (await sign_in(client, user.email))["accessToken"]


async def make_token(client, access_token: str, org, scopes: list[str], name: str = "1C sync", **extra) -> dict:
    body = await post(client, CREATE, {"in": {"organizationId": gid("Organization", org.id), "name": name, "scopes": scopes, **extra}},
                      access_token)
    return body["data"]["createApiToken"]


async def token_for(client, user, org, scopes: list[str], name: str = "1C sync") -> tuple[str, str]:
    """(the token, its global id), made by `user`."""
    made = await make_token(client, await access(client, user), org, scopes, name)
    assert made["userErrors"] == [], made
    return made["token"], made["apiToken"]["id"]


# ---------------------------------------------------------------- making, listing, revoking


@pytest.mark.parametrize("maker", [Role.OWNER, Role.ADMIN])
async def test_owner_and_admin_make_list_and_revoke_tokens(client, maker):
    org, users, _ = await team(Role.ADMIN)
    maker_token = await access(client, users[maker])
    made = await make_token(client, maker_token, org, ["billing:read", "cloud:write", "cloud:read"], "Бухгалтерия 1С")
    assert made["userErrors"] == []
    token = made["token"]
    assert token.startswith("kit_") and len(token) > 40
    record = made["apiToken"]
    assert record["name"] == "Бухгалтерия 1С" and record["scopes"] == ["billing:read", "cloud:write"]  # write implies read
    assert record["createdBy"]["email"] == users[maker].email and record["active"] and record["lastUsedAt"] is None
    expires = dt.datetime.fromisoformat(record["expiresAt"])
    assert dt.timedelta(days=89) < expires - dt.datetime.now(dt.timezone.utc) <= dt.timedelta(days=90)

    # kept hashed: the text itself is nowhere in the row
    row = await ProgramToken.get(token_hash=hashlib.sha256(token.encode()).hexdigest())
    assert row.kind == TokenKind.INTEGRATOR and token not in repr(await ProgramToken.filter(id=row.id).values())

    # shown once: the list has no token, and both managers see it; used, it shows when
    assert "errors" not in await post(client, BALANCE, {"org": gid("Organization", org.id)}, token)
    for who in (Role.OWNER, Role.ADMIN):
        listed = (await post(client, LIST, {"org": gid("Organization", org.id)}, await access(client, users[who])))["data"]
        (item,) = listed["organization"]["apiTokens"]
        assert item["id"] == record["id"] and item["lastUsedAt"] is not None and "token" not in item

    other = Role.ADMIN if maker == Role.OWNER else Role.OWNER  # the other manager revokes it
    revoked = (await post(client, REVOKE, {"id": record["id"]}, await access(client, users[other])))["data"]["revokeApiToken"]
    assert revoked["userErrors"] == [] and revoked["apiToken"]["revokedAt"] and not revoked["apiToken"]["active"]
    again = (await post(client, REVOKE, {"id": record["id"]}, maker_token))["data"]["revokeApiToken"]
    assert again["userErrors"] == [{"code": "CONFLICT", "field": ["id"]}]

    actions = await AuditEntry.filter(organization_id=org.id, object_type="ApiToken").order_by("created_at").values_list(
        "action", "actor_id"
    )
    assert actions == [("api_token.create", users[maker].id), ("api_token.revoke", users[other].id)]


async def test_accountant_user_and_outsiders_are_refused(client):
    org, users, _ = await team(Role.ADMIN, Role.ACCOUNTANT, Role.USER)
    _, record_id = await token_for(client, users[Role.OWNER], org, ["billing:read"])
    stranger_org, strangers = await factories.create_team()
    for who, code in ((users[Role.ACCOUNTANT], "FORBIDDEN"), (users[Role.USER], "FORBIDDEN"), (strangers[Role.OWNER], "NOT_FOUND")):
        access_token = await access(client, who)
        made = await make_token(client, access_token, org, ["billing:read"])
        assert made["token"] is None and [e["code"] for e in made["userErrors"]] == [code], made
        revoked = (await post(client, REVOKE, {"id": record_id}, access_token))["data"]["revokeApiToken"]
        assert [e["code"] for e in revoked["userErrors"]] == [code]
        listed = await post(client, LIST, {"org": gid("Organization", org.id)}, access_token)
        if code == "FORBIDDEN":
            assert codes(listed) == ["FORBIDDEN"] and listed["data"]["organization"]["apiTokens"] is None
        else:
            assert listed["data"]["organization"] is None
    assert await ProgramToken.filter(kind=TokenKind.INTEGRATOR, revoked_at=None, organization_scope__organization_id=org.id).count() == 1
    assert stranger_org.id != org.id


async def test_what_a_token_is_made_with_is_checked(client):
    org, users, _ = await team()
    owner = await access(client, users[Role.OWNER])
    now = dt.datetime.now(dt.timezone.utc)
    cases = [
        ({"scopes": ["billing:admin"]}, ["input", "scopes"], "INVALID"),
        ({"scopes": []}, ["input", "scopes"], "INVALID"),
        ({"name": "  "}, ["input", "name"], "INVALID"),
        ({"name": "x" * (api_tokens.NAME_LENGTH + 1)}, ["input", "name"], "INVALID"),
        ({"expiresAt": (now - dt.timedelta(minutes=1)).isoformat()}, ["input", "expiresAt"], "INVALID"),
        ({"expiresAt": (now + dt.timedelta(days=400)).isoformat()}, ["input", "expiresAt"], "INVALID"),
    ]
    for change, field, code in cases:
        given = {"organizationId": gid("Organization", org.id), "name": "ok", "scopes": ["billing:read"], **change}
        made = (await post(client, CREATE, {"in": given}, owner))["data"]["createApiToken"]
        assert [(e["code"], e["field"]) for e in made["userErrors"]] == [(code, field)], (change, made)
    made = await make_token(client, owner, org, ["updates:read"], "Sync", expiresAt=(now + dt.timedelta(days=30)).isoformat())
    assert made["userErrors"] == []
    assert (await make_token(client, owner, org, ["updates:read"], "Sync"))["userErrors"][0]["code"] == "CONFLICT"
    # another organization may use the same name: names are the organization's own
    other_org, other = await factories.create_team()
    assert (await make_token(client, await access(client, other[Role.OWNER]), other_org, ["updates:read"], "Sync"))["userErrors"] == []
    for n in range(api_tokens.PER_ORGANIZATION - 1):
        assert (await make_token(client, owner, org, ["billing:read"], f"t{n}"))["userErrors"] == []
    refused = await make_token(client, owner, org, ["billing:read"], "one too many")
    assert [e["code"] for e in refused["userErrors"]] == ["LIMIT_EXCEEDED"]


# ---------------------------------------------------------------- what a token may do


async def test_a_read_only_billing_token_reads_money_and_nothing_else(client):
    org, users, session = await team(Role.ADMIN)
    token, _ = await token_for(client, users[Role.OWNER], org, ["billing:read"])
    org_id = gid("Organization", org.id)
    body = await post(client, BALANCE, {"org": org_id}, token)
    assert "errors" not in body and body["data"]["organization"]["balance"]["currency"] == "RUB"
    assert codes(await post(client, MEMBERS, {"org": org_id}, token)) == ["FORBIDDEN"]
    assert codes(await post(client, SESSIONS, {"org": org_id}, token)) == ["FORBIDDEN"]
    terminated = (await post(client, TERMINATE, {"id": gid("Session", session.id)}, token))["data"]["terminateSession"]
    assert [e["code"] for e in terminated["userErrors"]] == ["FORBIDDEN"]
    assert (await Session.get(id=session.id)).status == SessionStatus.ACTIVE
    # no token makes tokens, changes the password, or signs in as a person
    made = await make_token(client, token, org, ["billing:read"], "child")
    assert [e["code"] for e in made["userErrors"]] == ["FORBIDDEN"]
    changed = (await post(client, CHANGE_PASSWORD, None, token))["data"]["changePassword"]
    assert [e["code"] for e in changed["userErrors"]] == ["FORBIDDEN"]
    assert codes(await post(client, LIST, {"org": org_id}, token)) == ["FORBIDDEN"]


async def test_cloud_scopes_read_and_write_sessions(client):
    org, users, session = await team()
    reader, _ = await token_for(client, users[Role.OWNER], org, ["cloud:read"], "reader")
    writer, _ = await token_for(client, users[Role.OWNER], org, ["cloud:write"], "writer")
    org_id = gid("Organization", org.id)
    listed = await post(client, SESSIONS, {"org": org_id}, reader)
    assert "errors" not in listed and [e["node"]["id"] for e in listed["data"]["organization"]["sessions"]["edges"]] == [
        gid("Session", session.id)
    ]
    assert codes(await post(client, BALANCE, {"org": org_id}, reader)) == ["FORBIDDEN", "FORBIDDEN"]
    refused = (await post(client, TERMINATE, {"id": gid("Session", session.id)}, reader))["data"]["terminateSession"]
    assert [e["code"] for e in refused["userErrors"]] == ["FORBIDDEN"]
    done = (await post(client, TERMINATE, {"id": gid("Session", session.id)}, writer))["data"]["terminateSession"]
    assert done["userErrors"] == [] and done["session"]["status"] == "TERMINATING"


async def test_a_token_sees_nothing_of_another_organization_of_its_creator(client):
    org_a, users, _ = await team()
    org_b, _ = await factories.create_team()
    creator = users[Role.OWNER]
    await factories.add_member(org_b, creator, Role.OWNER)
    database_b = await factories.create_database(org_b)
    session_b = await factories.create_session(database_b, user=creator)
    token, _ = await token_for(client, creator, org_a, ["billing:write", "members:write", "cloud:write", "updates:write"])

    person = await post(client, ORGANIZATIONS, None, await access(client, creator))
    assert {e["node"]["id"] for e in person["data"]["organizations"]["edges"]} == {gid("Organization", org_a.id), gid("Organization", org_b.id)}
    listed = await post(client, ORGANIZATIONS, None, token)
    assert [e["node"]["id"] for e in listed["data"]["organizations"]["edges"]] == [gid("Organization", org_a.id)]
    assert (await post(client, BALANCE, {"org": gid("Organization", org_b.id)}, token))["data"]["organization"] is None
    for global_id in (gid("Organization", org_b.id), gid("Session", session_b.id), gid("Database", database_b.id)):
        assert (await post(client, NODE, {"id": global_id}, token))["data"]["node"] is None, global_id
    me = (await post(client, ME, None, token))["data"]["me"]
    assert [m["organization"]["id"] for m in me["memberships"]] == [gid("Organization", org_a.id)]
    terminated = (await post(client, TERMINATE, {"id": gid("Session", session_b.id)}, token))["data"]["terminateSession"]
    assert [e["code"] for e in terminated["userErrors"]] == ["NOT_FOUND"]
    assert (await Session.get(id=session_b.id)).status == SessionStatus.ACTIVE


async def test_a_token_follows_its_creators_current_role(client):
    org, users, session = await team(Role.ADMIN)
    admin = users[Role.ADMIN]
    token, _ = await token_for(client, admin, org, ["members:read", "cloud:write"])
    org_id = gid("Organization", org.id)
    assert "errors" not in await post(client, SESSIONS, {"org": org_id}, token)

    await Membership.filter(organization_id=org.id, user_id=admin.id).update(role=Role.ACCOUNTANT)
    assert codes(await post(client, SESSIONS, {"org": org_id}, token)) == ["FORBIDDEN"]
    assert "errors" not in await post(client, MEMBERS, {"org": org_id}, token)  # an accountant sees members
    refused = (await post(client, TERMINATE, {"id": gid("Session", session.id)}, token))["data"]["terminateSession"]
    assert [e["code"] for e in refused["userErrors"]] == ["FORBIDDEN"]

    await Membership.filter(organization_id=org.id, user_id=admin.id).delete()
    assert (await post(client, MEMBERS, {"org": org_id}, token))["data"]["organization"] is None
    assert (await post(client, ORGANIZATIONS, None, token))["data"]["organizations"]["edges"] == []
    assert (await Session.get(id=session.id)).status == SessionStatus.ACTIVE


async def test_a_staff_members_token_carries_no_staff_rights(client):
    """The provider's staff may be a customer's OWNER too: their token acts in that organization only."""
    from models.identity import User

    org, users, _ = await team()
    await User.filter(id=users[Role.OWNER].id).update(is_staff=True)
    queries = ("{ deliveryFailures(first: 1) { edges { node { id } } } }", "{ refusedRecords(first: 1) { edges { node { id } } } }")
    person = await access(client, users[Role.OWNER])
    token, _ = await token_for(client, users[Role.OWNER], org, ["billing:write", "members:write", "cloud:write", "updates:write"])
    for query in queries:
        assert codes(await post(client, query, None, person)) == []
        assert codes(await post(client, query, None, token)) == ["FORBIDDEN"]


async def test_a_member_who_leaves_takes_their_tokens_with_them(client):
    """Leaving (or being removed) revokes the tokens one made there: coming back does not revive them."""
    org, users, _ = await team(Role.ADMIN)
    admin = users[Role.ADMIN]
    token, record_id = await token_for(client, admin, org, ["members:read"])
    other, _ = await token_for(client, users[Role.OWNER], org, ["members:read"], "the owner's")
    left = await post(client, "mutation($org: ID!) { leaveOrganization(organizationId: $org) { userErrors { code } } }",
                      {"org": gid("Organization", org.id)}, await access(client, admin))
    assert left["data"]["leaveOrganization"]["userErrors"] == []
    await factories.add_member(org, admin, Role.ADMIN)
    assert codes(await post(client, MEMBERS, {"org": gid("Organization", org.id)}, token)) == ["UNAUTHENTICATED"]
    assert "errors" not in await post(client, MEMBERS, {"org": gid("Organization", org.id)}, other)
    listed = (await post(client, LIST, {"org": gid("Organization", org.id)}, await access(client, users[Role.OWNER])))["data"]
    assert {t["id"]: t["revokedAt"] is not None for t in listed["organization"]["apiTokens"]}[record_id]


# ---------------------------------------------------------------- revocation and expiry


async def test_a_revoked_token_is_refused_at_once(client):
    org, users, _ = await team()
    token, record_id = await token_for(client, users[Role.OWNER], org, ["billing:read"])
    assert "errors" not in await post(client, BALANCE, {"org": gid("Organization", org.id)}, token)
    revoked = await post(client, REVOKE, {"id": record_id}, await access(client, users[Role.OWNER]))
    assert revoked["data"]["revokeApiToken"]["userErrors"] == []
    assert codes(await post(client, BALANCE, {"org": gid("Organization", org.id)}, token)) == ["UNAUTHENTICATED"]
    assert codes(await post(client, ME, None, token)) == ["UNAUTHENTICATED"]


@BOTH
async def test_revoking_closes_the_tokens_open_websocket(client, live_server, protocol):
    org, users, _ = await team()
    token, record_id = await token_for(client, users[Role.OWNER], org, ["cloud:read"])
    sock = await watching(live_server, protocol, token, org)
    try:
        revoked = await post(client, REVOKE, {"id": record_id}, await access(client, users[Role.OWNER]))
        assert revoked["data"]["revokeApiToken"]["userErrors"] == []
        await assert_closed_as_signed_out(sock)
    finally:
        await sock.close()
    await assert_refused_at_connect(live_server, protocol, token)


async def test_a_billing_token_may_not_watch_sessions(client, live_server):
    org, users, _ = await team()
    token, _ = await token_for(client, users[Role.OWNER], org, ["billing:read"])
    sock = GraphQLSocket(live_server, TRANSPORT_WS)
    try:
        assert (await sock.connect(token))["type"] == "connection_ack"
        await sock.subscribe("subscription($org: ID!) { sessions(organizationId: $org) { sessions { id } } }",
                             {"org": gid("Organization", org.id)})
        message = await sock.receive()
        assert message["type"] in ("error", "next"), message
        errors = message["payload"] if message["type"] == "error" else message["payload"].get("errors", [])
        assert [e["extensions"]["code"] for e in errors] == ["FORBIDDEN"], message
    finally:
        await sock.close()


async def test_an_expired_token_is_refused(client, live_server):
    org, users, _ = await team()
    token, _ = await token_for(client, users[Role.OWNER], org, ["billing:read"])
    await ProgramToken.filter(token_hash=hashlib.sha256(token.encode()).hexdigest()).update(
        expires_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)
    )
    assert codes(await post(client, BALANCE, {"org": gid("Organization", org.id)}, token)) == ["UNAUTHENTICATED"]
    await assert_refused_at_connect(live_server, TRANSPORT_WS, token)


async def test_other_processes_learn_of_a_revocation_from_the_database(client):
    """A process the broker's notice did not reach reads revoked tokens in its poll, as ended sign-ins."""
    org, users, _ = await team()
    _, record_id = await token_for(client, users[Role.OWNER], org, ["billing:read"])
    elsewhere = EndedLogins()
    await elsewhere.load()
    row = await ProgramToken.get(name=f"{org.id}/1C sync")
    assert row.id not in elsewhere
    await post(client, REVOKE, {"id": record_id}, await access(client, users[Role.OWNER]))
    await elsewhere.catch_up()
    assert row.id in elsewhere


# ---------------------------------------------------------------- shortcuts


async def test_the_response_cache_never_gives_the_creators_answer_to_a_token(client):
    org_a, users, _ = await team()
    org_b, _ = await factories.create_team()
    creator = users[Role.OWNER]
    await factories.add_member(org_b, creator, Role.ADMIN)
    person = await access(client, creator)
    token, _ = await token_for(client, creator, org_a, ["billing:read"])
    for _ in range(2):  # the second is the kept answer
        assert len((await post(client, ORGANIZATIONS, None, person))["data"]["organizations"]["edges"]) == 2
    for _ in range(2):
        assert [e["node"]["id"] for e in (await post(client, ORGANIZATIONS, None, token))["data"]["organizations"]["edges"]] == [
            gid("Organization", org_a.id)
        ]
    assert len((await post(client, ORGANIZATIONS, None, person))["data"]["organizations"]["edges"]) == 2


def test_the_prefix_is_the_stores():
    assert api_tokens.PREFIX == PREFIXES[TokenKind.INTEGRATOR]
    assert set(api_tokens.SCOPES) == {f"{d}:{m}" for d in ("billing", "members", "cloud", "updates") for m in ("read", "write")}


def test_the_mutations_a_token_may_call_are_real_and_write_a_domain():
    """TOKEN_MUTATIONS names served mutations (a renamed one would silently become FORBIDDEN to tokens),
    each with a domain a scope writes; the tokens' own mutations are never among them."""
    from foundation.settings import Settings
    from resolvers.common.permissions import TOKEN_DOMAINS, TOKEN_MUTATIONS
    from schema.build import build_schema

    served = set(build_schema(Settings(_env_file=None))._schema.mutation_type.fields)
    assert set(TOKEN_MUTATIONS) <= served, set(TOKEN_MUTATIONS) - served
    assert set(TOKEN_MUTATIONS.values()) <= set(TOKEN_DOMAINS)
    assert not {"createApiToken", "revokeApiToken", "changePassword", "transferOwnership", "login", "logout"} & set(TOKEN_MUTATIONS)
