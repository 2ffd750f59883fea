"""Attacks on integrators' API tokens (issue 21), each through real requests (the test client, or a
real socket): what a `kit_` token must never reach — another organization, a domain outside its
scopes, a write with a read scope, more tokens, the creator's password, a disabled creator's open
sockets — and the shortcuts (response cache, GET, persisted queries) that must not share answers."""

from __future__ import annotations

import asyncio
import hashlib
import datetime as dt
import time

import pytest

from foundation.clock import utcnow
from models.cloud import CloudSubscription
from models.identity import User
from models.program_tokens import ProgramToken, TokenKind
from tests import factories
from tests.factories import Role
from tests.live import LEGACY_WS, TRANSPORT_WS, GraphQLSocket
from tests.processes import kabinet_cli
from tests.test_api_tokens import (
    BALANCE, CREATE, LIST, MEMBERS, NODE, ORGANIZATIONS, REVOKE, SESSIONS, access, codes, gid, make_token, team, token_for,
)
from tests.test_sign_ins import assert_closed_as_signed_out, post, sign_in, watching
from tests.test_staff import PASSWORD as STAFF_PASSWORD, new_staff

BOTH = pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
ALL_SCOPES = ["billing:write", "members:write", "cloud:write", "updates:write"]
CHANGE_PASSWORD = """mutation($p: String!) { changePassword(currentPassword: $p, newPassword: "another-password-1") {
  accessToken userErrors { code field } } }"""


# ---------------------------------------------------------------- holes found (each fixed)


async def test_a_token_is_refused_change_password_before_the_password_is_checked(client):
    """changePassword checked the creator's current password before refusing the token: a leaked
    read-only token was an oracle for its creator's password (INVALID vs FORBIDDEN) and could lock
    the creator's sign-in with wrong guesses. A token is refused first, whatever it sends."""
    org, users, _ = await team()
    token, _ = await token_for(client, users[Role.OWNER], org, ["billing:read"])
    for guess in ("wrong-guess-1", "wrong-guess-2", "wrong-guess-3", "wrong-guess-4", "wrong-guess-5", "wrong-guess-6"):
        payload = (await post(client, CHANGE_PASSWORD, {"p": guess}, token))["data"]["changePassword"]
        assert [e["code"] for e in payload["userErrors"]] == ["FORBIDDEN"], payload
        assert payload["accessToken"] is None
    # the guesses counted for nothing: the owner still signs in
    assert (await sign_in(client, users[Role.OWNER].email))["accessToken"]


@BOTH
async def test_disabling_a_creator_closes_their_tokens_open_sockets(client, settings, live_server, protocol):
    """`kabinet staff disable` (a process of its own, whose broker reaches no server) ended the
    account's sign-ins, but a socket opened with an API token the account made stayed open and kept
    receiving. Disabling an account revokes its API tokens: the server's poll reads them and closes it."""
    staff = await new_staff(settings)
    org, _ = await factories.create_team()
    await factories.add_member(org, await User.get(id=staff.id), Role.ADMIN)
    await factories.create_session(await factories.create_database(org), user_name="Бухгалтер")
    person = (await sign_in(client, staff.email, STAFF_PASSWORD))["accessToken"]
    made = await make_token(client, person, org, ["cloud:read"])
    assert made["userErrors"] == [], made
    sock = await watching(live_server, protocol, made["token"], org)
    try:
        unheard = settings.model_copy(update={"broker_url": "memory://"})
        await kabinet_cli(unheard, "staff", "disable", "--email", staff.email)
        assert codes(await post(client, ORGANIZATIONS, None, made["token"])) == ["UNAUTHENTICATED"]
        await assert_closed_as_signed_out(sock)
    finally:
        await sock.close()
    assert not await ProgramToken.exists(kind=TokenKind.INTEGRATOR, created_by_id=staff.id, revoked_at=None)


# ---------------------------------------------------------------- what held


async def test_a_token_reaches_nothing_of_another_organization(client, live_server):
    org_a, users, session_a = await team()
    org_b, users_b, session_b = await team()
    creator = users[Role.OWNER]
    await factories.add_member(org_b, creator, Role.OWNER)
    token, _ = await token_for(client, creator, org_a, ALL_SCOPES)
    b = gid("Organization", org_b.id)
    body = await post(client, "query($o: ID!) { organization(id: $o) { id name } }", {"o": b}, token)
    assert body["data"]["organization"] is None
    for type_name, pk in (("Organization", org_b.id), ("Session", session_b.id), ("User", users_b[Role.OWNER].id)):
        assert (await post(client, NODE, {"id": gid(type_name, pk)}, token))["data"]["node"] is None
    me = (await post(client, "{ me { memberships { organization { id } } } }", None, token))["data"]["me"]
    assert [m["organization"]["id"] for m in me["memberships"]] == [gid("Organization", org_a.id)]
    ended = (await post(client, "mutation($id: ID!) { terminateSession(sessionId: $id) { userErrors { code } } }",
                        {"id": gid("Session", session_b.id)}, token))["data"]["terminateSession"]
    assert [e["code"] for e in ended["userErrors"]] == ["NOT_FOUND"]
    assert (await post(client, "{ myJoinRequests(first: 5) { edges { node { id } } } }", None, token)).get("data") is not None
    # a subscription on the other organization is refused
    sock = GraphQLSocket(live_server, TRANSPORT_WS)
    try:
        assert (await sock.connect(token))["type"] == "connection_ack"
        await sock.subscribe("subscription($o: ID!) { organizationData(organizationId: $o) { areas } }", {"o": b})
        message = await sock.receive()
        assert message["type"] in ("error", "next"), message
        errors = message["payload"] if message["type"] == "error" else message["payload"].get("errors", [])
        assert [e["extensions"]["code"] for e in errors] in (["NOT_FOUND"], ["FORBIDDEN"]), message
    finally:
        await sock.close()


async def test_a_token_makes_sees_and_revokes_no_tokens(client):
    org, users, _ = await team()
    owner = await access(client, users[Role.OWNER])
    token, record_id = await token_for(client, users[Role.OWNER], org, ALL_SCOPES)
    made = await make_token(client, token, org, ["billing:read"], name="child")
    assert made["token"] is None and [e["code"] for e in made["userErrors"]] == ["FORBIDDEN"]
    assert codes(await post(client, LIST, {"org": gid("Organization", org.id)}, token)) == ["FORBIDDEN"]
    assert (await post(client, NODE, {"id": record_id}, token))["data"]["node"] is None
    revoked = (await post(client, REVOKE, {"id": record_id}, token))["data"]["revokeApiToken"]
    assert [e["code"] for e in revoked["userErrors"]] == ["FORBIDDEN"]
    assert (await post(client, LIST, {"org": gid("Organization", org.id)}, owner))["data"]["organization"]["apiTokens"][0]["revokedAt"] is None
    refreshed = (await post(client, "mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken userErrors { code } } }",
                            {"t": token}, None))["data"]["refreshToken"]
    assert refreshed["accessToken"] is None and refreshed["userErrors"]


async def test_an_admins_token_never_does_more_than_an_admin(client):
    org, users, _ = await team(Role.ADMIN)
    today = utcnow().date()
    await CloudSubscription.create(organization=org, tariff="Облако", sessions_limit=5, databases_limit=5,
                                   starts_on=today - dt.timedelta(days=10), ends_on=today + dt.timedelta(days=20))
    token, _ = await token_for(client, users[Role.ADMIN], org, ALL_SCOPES)
    extended = await post(client, "mutation($o: ID!) { extendSubscription(organizationId: $o) { userErrors { code } } }",
                          {"o": gid("Organization", org.id)}, token)
    assert [e["code"] for e in extended["data"]["extendSubscription"]["userErrors"]] == ["FORBIDDEN"], extended
    body = await post(client, "mutation($o: ID!, $u: ID!) { transferOwnership(organizationId: $o, userId: $u) { userErrors { code } } }",
                      {"o": gid("Organization", org.id), "u": gid("User", users[Role.ADMIN].id)}, token)
    if "data" in body and body["data"]:
        assert [e["code"] for e in body["data"]["transferOwnership"]["userErrors"]] == ["FORBIDDEN"]


async def test_tokens_from_other_doors_open_nothing_here(client):
    """A kit_ token on the provider API, anything kps_/kca_-shaped on /graphql: refused."""
    org, users, _ = await team()
    token, _ = await token_for(client, users[Role.OWNER], org, ALL_SCOPES)
    for path in ("/provider/v1/organizations", "/cluster/v1/sessions"):
        response = await client.get(path, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code in (401, 403, 404, 405), (path, response.status_code)
    for fake in ("kps_" + token[4:], "kca_" + token[4:]):
        assert codes(await post(client, ORGANIZATIONS, None, fake)) == ["UNAUTHENTICATED"]
    assert codes(await post(client, ORGANIZATIONS, None, token + "x")) == ["UNAUTHENTICATED"]
    assert codes(await post(client, ORGANIZATIONS, None, "kit_" + "a" * 5000)) == ["UNAUTHENTICATED"]


async def test_names_are_per_organization_and_say_nothing_of_others(client):
    org_a, users_a, _ = await team()
    org_b, users_b, _ = await team()
    await token_for(client, users_a[Role.OWNER], org_a, ["billing:read"], name="sync")
    await token_for(client, users_b[Role.OWNER], org_b, ["billing:read"], name="sync")  # no CONFLICT across organizations
    forged = await make_token(client, await access(client, users_b[Role.OWNER]), org_b, ["billing:read"], name=f"{org_a.id}/x")
    assert [e["code"] for e in forged["userErrors"]] == ["INVALID"]
    listed = (await post(client, LIST, {"org": gid("Organization", org_b.id)}, await access(client, users_b[Role.OWNER])))
    assert [t["name"] for t in listed["data"]["organization"]["apiTokens"]] == ["sync"]


async def test_a_naive_or_absurd_expiry_and_huge_inputs_are_refused_not_crashes(client):
    org, users, _ = await team()
    owner = await access(client, users[Role.OWNER])
    naive = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=3)).replace(tzinfo=None).isoformat()
    for extra in ({"expiresAt": naive}, {"expiresAt": "9999-12-31T00:00:00+00:00"}, {"expiresAt": "2000-01-01T00:00:00+00:00"}):
        body = await post(client, CREATE, {"in": {"organizationId": gid("Organization", org.id), "name": "n", "scopes": ["billing:read"], **extra}}, owner)
        assert "errors" not in body or all(c != "INTERNAL" for c in codes(body)), body
    made = await make_token(client, owner, org, ["billing:read"] * 1000 + ["billing:write"] * 1000, name="many")
    assert made["apiToken"]["scopes"] == ["billing:write"]
    made = await make_token(client, owner, org, ["billing:read"], name="x" * 61)
    assert [e["code"] for e in made["userErrors"]] == ["INVALID"]


async def test_at_most_twenty_in_force(client):
    org, users, _ = await team()
    owner = await access(client, users[Role.OWNER])
    for i in range(20):
        assert (await make_token(client, owner, org, ["billing:read"], name=f"t{i}"))["userErrors"] == []
    assert [e["code"] for e in (await make_token(client, owner, org, ["billing:read"], name="t20"))["userErrors"]] == ["LIMIT_EXCEEDED"]


async def test_the_cache_keeps_a_read_tokens_answers_apart_from_a_write_tokens(client):
    org, users, _ = await team()
    read_token, _ = await token_for(client, users[Role.OWNER], org, ["billing:read"], name="read")
    wide_token, _ = await token_for(client, users[Role.OWNER], org, ALL_SCOPES, name="wide")
    person = await access(client, users[Role.OWNER])
    variables = {"org": gid("Organization", org.id)}
    for _ in range(2):
        assert codes(await post(client, MEMBERS, variables, wide_token)) == []
        assert codes(await post(client, MEMBERS, variables, person)) == []
    for _ in range(2):
        assert codes(await post(client, MEMBERS, variables, read_token)) == ["FORBIDDEN"]
    # and over GET
    response = await client.get("/graphql", params={"query": "{ organizations(first: 5) { edges { node { id } } } }"},
                                headers={"Authorization": f"Bearer {read_token}"})
    assert response.headers["cache-control"] == "private, no-store"


async def test_a_read_scope_writes_nothing(client):
    org, users, session = await team()
    token, _ = await token_for(client, users[Role.OWNER], org, ["cloud:read", "members:read", "billing:read", "updates:read"])
    ended = (await post(client, "mutation($id: ID!) { terminateSession(sessionId: $id) { userErrors { code } } }",
                        {"id": gid("Session", session.id)}, token))["data"]["terminateSession"]
    assert [e["code"] for e in ended["userErrors"]] == ["FORBIDDEN"]
    assert codes(await post(client, SESSIONS, {"org": gid("Organization", org.id)}, token)) == []


def test_every_mutation_refuses_tokens_before_its_work():
    """Tokens are refused in `transactional`; a mutation outside it must refuse them itself before
    any work (changePassword: token_refusal first). `login` reads no viewer at all. A new mutation
    outside `transactional` has to be looked at for tokens, and added here."""
    from foundation.settings import Settings
    from schema.build import build_schema

    outside = set()
    for field in build_schema(Settings(_env_file=None)).get_type_by_name("Mutation").fields:
        code = getattr(field.base_resolver.wrapped_func, "__code__", None)
        if code is None or "transactional" not in code.co_qualname:
            outside.add(field.name)
    assert outside == {"login", "change_password"}, outside


async def test_a_name_with_a_nul_or_control_characters_is_refused_not_a_crash(client):
    org, users, _ = await team()
    owner = await access(client, users[Role.OWNER])
    body = await post(client, CREATE, {"in": {"organizationId": gid("Organization", org.id), "name": "a\u0000b", "scopes": ["billing:read"]}}, owner)
    assert "INTERNAL" not in codes(body), body


async def test_many_creations_at_once_stay_within_the_limit(client):
    """Twenty-five creations racing: never more than twenty tokens in force, and one name once. On
    PostgreSQL 23 were made: the count of tokens in force was read by each before any committed."""
    org, users, _ = await team()
    owner = await access(client, users[Role.OWNER])
    await asyncio.gather(*(make_token(client, owner, org, ["billing:read"], name=f"r{i}") for i in range(25)))
    assert await ProgramToken.filter(kind=TokenKind.INTEGRATOR, name__startswith=f"{org.id}/", revoked_at=None).count() <= 20


async def test_a_billing_token_reaches_no_database_through_its_creators_own_membership(client):
    """`Membership.databases` lets a member see their own databases whatever the role (the field's
    `own`); through a token without cloud or updates, the databases behind that link stay refused."""
    org, users, _ = await team(Role.USER)
    database = await factories.create_database(org, name="Секретная")
    from models.organizations import DatabaseGrant, Membership

    membership = await Membership.get(organization_id=org.id, user_id=users[Role.USER].id)
    await DatabaseGrant.create(membership_id=membership.id, database_id=database.id)
    token, _ = await token_for(client, users[Role.OWNER], org, ["billing:read"])
    body = await post(client, "{ me { memberships { databases { id name } } } }", None, token)
    names = [d["name"] for m in (body.get("data") or {}).get("me", {}).get("memberships", []) for d in (m.get("databases") or [])]
    assert names == [], body
    body = await post(client, NODE, {"id": gid("Database", database.id)}, token)
    assert not (body.get("data") or {}).get("node"), body


async def test_a_claims_api_token_does_not_outlive_or_block_its_approval(gql, client):
    """A stranger's claim on the provider's customer (PENDING, the stranger its OWNER): a token made
    on the claim must neither block the staff's approval (the claim is folded into the customer) nor
    survive it. It did block it: the fold refused a claim holding "program tokens of its own", and
    staff have no way to move them. Folding revokes the claim's tokens."""
    from models.organizations import Organization
    from tests.test_add_organization import APPROVE_ORG, add, legal_inn, new_user, staff

    inn = legal_inn()
    await Organization.create(
        name="ООО «Из учёта»", inn=inn, kind="LEGAL_ENTITY", moderation_status="APPROVED", code=f"P{inn[-6:]}", external_id=f"K-{inn}",
    )
    stranger = await new_user(gql)
    claim = await add(gql, stranger, inn=inn)
    assert claim["organization"]["moderationStatus"] == "PENDING"
    made = (await gql.execute(CREATE, {"in": {"organizationId": claim["organization"]["id"], "name": "sync", "scopes": ["billing:read"]}},
                              as_user=stranger))["data"]["createApiToken"]
    approved = (await gql.execute(APPROVE_ORG, {"id": claim["organization"]["id"]}, as_user=await staff(gql)))["data"]["approveOrganization"]
    assert made["userErrors"] == [], made
    assert approved["userErrors"] == [], approved
    row = await ProgramToken.get(token_hash=hashlib.sha256(made["token"].encode()).hexdigest())
    assert row.revoked_at is not None
    assert codes(await post(client, ORGANIZATIONS, None, made["token"])) == ["UNAUTHENTICATED"]


async def test_one_name_made_at_once_twice_is_one_token_and_a_conflict(client):
    org, users, _ = await team()
    owner = await access(client, users[Role.OWNER])
    answers = await asyncio.gather(*(make_token(client, owner, org, ["billing:read"], name="same") for _ in range(4)))
    assert sorted(tuple(e["code"] for e in a["userErrors"]) for a in answers) == [(), ("CONFLICT",), ("CONFLICT",), ("CONFLICT",)], answers


async def test_a_create_and_revoke_loop_stops_at_the_stored_limit_and_housekeeping_frees_it(client, settings, monkeypatch):
    """Revoked tokens are kept (listed, their names taken) but not without end: an organization keeps
    at most STORED_PER_ORGANIZATION, ended ones included, and housekeeping removes those ended over
    KEPT_AFTER_END ago — after which the organization makes tokens again."""
    from resolvers.common import housekeeping
    from resolvers.identity import api_tokens

    monkeypatch.setattr(api_tokens, "STORED_PER_ORGANIZATION", 3)
    org, users, _ = await team()
    owner = await access(client, users[Role.OWNER])
    for i in range(3):
        made = await make_token(client, owner, org, ["billing:read"], name=f"loop {i}")
        assert made["userErrors"] == [], made
        assert (await post(client, REVOKE, {"id": made["apiToken"]["id"]}, owner))["data"]["revokeApiToken"]["userErrors"] == []
    refused = await make_token(client, owner, org, ["billing:read"], name="one more")
    assert [e["code"] for e in refused["userErrors"]] == ["LIMIT_EXCEEDED"], refused
    ours = ProgramToken.filter(kind=TokenKind.INTEGRATOR, name__startswith=f"{org.id}/")
    assert await ours.count() == 3
    # one of them ended long ago, one just now: only the old one goes
    old = await ours.order_by("created_at").first()
    await ProgramToken.filter(id=old.id).update(revoked_at=utcnow() - api_tokens.KEPT_AFTER_END - dt.timedelta(days=1))
    assert await housekeeping.prune_api_tokens(settings) >= 1
    assert await ours.count() == 2
    again = await make_token(client, owner, org, ["billing:read"], name="loop 0")  # its name is free again
    assert again["userErrors"] == [], again
