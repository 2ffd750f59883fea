"""Members: changing roles, removing someone with a code, leaving, handing over ownership, databases."""

from __future__ import annotations

import datetime as dt
import re

from models.audit import AuditEntry
from models.cloud import Session, SessionStatus
from models.identity import CodePurpose, User, VerificationCode
from models.organizations import DatabaseGrant, Membership, Role
from models.outbox import Channel, OutboxMessage
from foundation.ids import to_global_id
from tests import factories
from tests.factories import PASSWORD

CHANGE_ROLE = """mutation($m: ID!, $r: Role!) { changeMemberRole(membershipId: $m, role: $r) {
  membership { id role user { email } } userErrors { code field message } } }"""
REQUEST_REMOVAL = """mutation($m: ID!) { requestMemberRemoval(membershipId: $m) {
  requestId expiresAt sentTo membership { user { email } } userErrors { code field message } } }"""
CONFIRM_REMOVAL = """mutation($r: ID!, $c: String!) { confirmMemberRemoval(requestId: $r, code: $c) {
  removedMembershipId terminatedSessions { id status } userErrors { code field message } } }"""
LEAVE = """mutation($o: ID!) { leaveOrganization(organizationId: $o) { ok userErrors { code field message } } }"""
TRANSFER = """mutation($o: ID!, $m: ID!) { transferOwnership(organizationId: $o, membershipId: $m) {
  owner { role user { email } } previousOwner { role user { email } } userErrors { code field message } } }"""
UPDATE_DATABASES = """mutation($m: ID!, $d: [ID!]!) { updateMemberDatabases(membershipId: $m, databaseIds: $d) {
  membership { role databases { name } } userErrors { code field message } } }"""
ORGANIZATION = """query($id: ID!) { organization(id: $id) { name } }"""


async def signed_in(gql, user: User) -> str:
    await gql.token_for_password(user.email, PASSWORD)
    return user.email


async def run(gql, query: str, variables: dict, as_user: User) -> dict:
    body = await gql.execute(query, variables, as_user=await signed_in(gql, as_user))
    assert "errors" not in body, body
    return next(iter(body["data"].values()))


async def membership_id(organization, user: User) -> str:
    return to_global_id("Membership", (await Membership.get(organization_id=organization.id, user_id=user.id)).id)


def errors(payload: dict) -> list[tuple[str, list[str] | None]]:
    return [(e["code"], e["field"]) for e in payload["userErrors"]]


async def removal_code(recipient: str) -> str:
    message = await OutboxMessage.filter(recipient=recipient, channel=Channel.EMAIL).order_by("-created_at").first()
    return re.search(r"Код подтверждения: (\d{6})", message.body).group(1)


async def request_removal(gql, actor: User, organization, member: User) -> str:
    payload = await run(gql, REQUEST_REMOVAL, {"m": await membership_id(organization, member)}, actor)
    assert payload["userErrors"] == [], payload
    return payload["requestId"]


# ---------------------------------------------------------------------------------------- roles


async def test_an_owner_makes_an_admin_an_accountant(gql):
    organization, team = await factories.create_team(Role.ADMIN)
    payload = await run(gql, CHANGE_ROLE, {"m": await membership_id(organization, team[Role.ADMIN]), "r": "ACCOUNTANT"}, team[Role.OWNER])
    assert payload["userErrors"] == [] and payload["membership"]["role"] == "ACCOUNTANT"
    entry = await AuditEntry.get(organization_id=organization.id, action="member.role_change")
    assert entry.details["from"] == "ADMIN" and entry.details["to"] == "ACCOUNTANT"


async def test_an_admin_promotes_a_user_to_admin(gql):
    organization, team = await factories.create_team(Role.ADMIN, Role.USER)
    payload = await run(gql, CHANGE_ROLE, {"m": await membership_id(organization, team[Role.USER]), "r": "ADMIN"}, team[Role.ADMIN])
    assert payload["userErrors"] == [] and payload["membership"]["role"] == "ADMIN"


async def test_nobody_is_made_owner_by_a_role_change(gql):
    organization, team = await factories.create_team(Role.ADMIN)
    payload = await run(gql, CHANGE_ROLE, {"m": await membership_id(organization, team[Role.ADMIN]), "r": "OWNER"}, team[Role.OWNER])
    assert errors(payload) == [("INVALID", ["role"])]


async def test_the_owner_cannot_demote_themselves(gql):
    organization, team = await factories.create_team()
    payload = await run(gql, CHANGE_ROLE, {"m": await membership_id(organization, team[Role.OWNER]), "r": "ADMIN"}, team[Role.OWNER])
    assert errors(payload) == [("INVALID", ["membershipId"])]


async def test_an_admin_cannot_change_the_owners_role(gql):
    organization, team = await factories.create_team(Role.ADMIN)
    payload = await run(gql, CHANGE_ROLE, {"m": await membership_id(organization, team[Role.OWNER]), "r": "USER"}, team[Role.ADMIN])
    assert errors(payload) == [("FORBIDDEN", None)]
    assert (await Membership.get(organization_id=organization.id, user_id=team[Role.OWNER].id)).role == Role.OWNER


async def test_an_accountant_may_not_change_roles(gql):
    organization, team = await factories.create_team(Role.ACCOUNTANT, Role.USER)
    payload = await run(gql, CHANGE_ROLE, {"m": await membership_id(organization, team[Role.USER]), "r": "ADMIN"}, team[Role.ACCOUNTANT])
    assert errors(payload) == [("FORBIDDEN", None)]


async def test_a_user_may_not_change_roles(gql):
    organization, team = await factories.create_team(Role.USER)
    payload = await run(gql, CHANGE_ROLE, {"m": await membership_id(organization, team[Role.USER]), "r": "ADMIN"}, team[Role.USER])
    assert errors(payload) == [("FORBIDDEN", None)]


async def test_a_member_of_another_organization_is_not_found_for_a_role_change(gql):
    organization, team = await factories.create_team(Role.USER)
    _, stranger = await factories.create_team()
    payload = await run(gql, CHANGE_ROLE, {"m": await membership_id(organization, team[Role.USER]), "r": "ADMIN"}, stranger[Role.OWNER])
    assert errors(payload) == [("NOT_FOUND", ["membershipId"])]


# ---------------------------------------------------------------------------------------- removal


async def test_removing_a_member_asks_for_a_code_sent_to_the_acting_admin(gql):
    organization, team = await factories.create_team(Role.ADMIN, Role.USER)
    admin = team[Role.ADMIN]
    admin.phone = factories.unique_phone()
    await admin.save()
    payload = await run(gql, REQUEST_REMOVAL, {"m": await membership_id(organization, team[Role.USER])}, admin)
    assert payload["userErrors"] == [] and payload["requestId"]
    assert payload["membership"]["user"]["email"] == team[Role.USER].email
    assert len(payload["sentTo"]) == 2 and admin.email not in payload["sentTo"]
    code = await removal_code(admin.email)
    sms = await OutboxMessage.filter(recipient=admin.phone, channel=Channel.SMS).order_by("-created_at").first()
    assert code in sms.body
    row = await VerificationCode.filter(user_id=admin.id, purpose=CodePurpose.MEMBER_REMOVAL).first()
    assert code not in row.code_hash
    expires = dt.datetime.fromisoformat(payload["expiresAt"]) - dt.datetime.now(dt.timezone.utc)
    assert dt.timedelta(minutes=14) < expires <= dt.timedelta(minutes=15)
    assert await Membership.exists(organization_id=organization.id, user_id=team[Role.USER].id), "not removed yet"


async def test_the_right_code_removes_the_member_ends_their_sessions_and_access_at_once(gql):
    organization, team = await factories.create_team(Role.ADMIN, Role.USER)
    member = team[Role.USER]
    database = await factories.create_database(organization)
    await DatabaseGrant.create(membership=await Membership.get(organization_id=organization.id, user_id=member.id), database=database)
    session = await factories.create_session(database, user=member)
    other = await factories.create_session(database, user=team[Role.ADMIN])
    await signed_in(gql, member)
    before = await gql.execute(ORGANIZATION, {"id": to_global_id("Organization", organization.id)}, as_user=member.email)
    assert before["data"]["organization"]["name"] == organization.name

    request_id = await request_removal(gql, team[Role.ADMIN], organization, member)
    payload = await run(gql, CONFIRM_REMOVAL, {"r": request_id, "c": await removal_code(team[Role.ADMIN].email)}, team[Role.ADMIN])
    assert payload["userErrors"] == []
    assert payload["terminatedSessions"] == [{"id": to_global_id("Session", session.id), "status": "TERMINATING"}]
    assert not await Membership.exists(organization_id=organization.id, user_id=member.id)
    assert not await DatabaseGrant.filter(database_id=database.id).exists()
    await session.refresh_from_db()
    assert session.status == SessionStatus.TERMINATING and session.termination_requested_by_id == team[Role.ADMIN].id
    assert session.termination_requested_at is not None
    assert (await Session.get(id=other.id)).status == SessionStatus.ACTIVE
    after = await gql.execute(ORGANIZATION, {"id": to_global_id("Organization", organization.id)}, as_user=member.email)
    assert after["data"]["organization"] is None
    assert await AuditEntry.exists(organization_id=organization.id, action="member.remove", actor_id=team[Role.ADMIN].id)


async def test_a_wrong_removal_code_is_invalid_and_counts(gql):
    organization, team = await factories.create_team(Role.USER)
    request_id = await request_removal(gql, team[Role.OWNER], organization, team[Role.USER])
    payload = await run(gql, CONFIRM_REMOVAL, {"r": request_id, "c": "000000x"}, team[Role.OWNER])
    assert errors(payload) == [("INVALID", ["code"])]
    assert (await VerificationCode.filter(user_id=team[Role.OWNER].id).first()).attempts == 1
    assert await Membership.exists(organization_id=organization.id, user_id=team[Role.USER].id)


async def test_five_wrong_codes_kill_the_code_even_for_the_right_one(gql):
    organization, team = await factories.create_team(Role.USER)
    request_id = await request_removal(gql, team[Role.OWNER], organization, team[Role.USER])
    codes = [
        errors(await run(gql, CONFIRM_REMOVAL, {"r": request_id, "c": f"wrong{i}"}, team[Role.OWNER]))[0][0]
        for i in range(5)
    ]
    assert codes == ["INVALID"] * 5
    right = await run(gql, CONFIRM_REMOVAL, {"r": request_id, "c": await removal_code(team[Role.OWNER].email)}, team[Role.OWNER])
    assert errors(right) == [("RATE_LIMITED", ["code"])]
    assert await Membership.exists(organization_id=organization.id, user_id=team[Role.USER].id)


async def test_an_old_removal_code_is_expired(gql):
    organization, team = await factories.create_team(Role.USER)
    request_id = await request_removal(gql, team[Role.OWNER], organization, team[Role.USER])
    await VerificationCode.filter(user_id=team[Role.OWNER].id).update(
        expires_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)
    )
    payload = await run(gql, CONFIRM_REMOVAL, {"r": request_id, "c": await removal_code(team[Role.OWNER].email)}, team[Role.OWNER])
    assert errors(payload) == [("EXPIRED", ["code"])]


async def test_a_removal_code_works_once(gql):
    organization, team = await factories.create_team(Role.USER)
    request_id = await request_removal(gql, team[Role.OWNER], organization, team[Role.USER])
    code = await removal_code(team[Role.OWNER].email)
    assert (await run(gql, CONFIRM_REMOVAL, {"r": request_id, "c": code}, team[Role.OWNER]))["userErrors"] == []
    assert errors(await run(gql, CONFIRM_REMOVAL, {"r": request_id, "c": code}, team[Role.OWNER])) == [("INVALID", ["requestId"])]


async def test_only_the_one_who_asked_may_confirm_a_removal(gql):
    organization, team = await factories.create_team(Role.ADMIN, Role.USER)
    request_id = await request_removal(gql, team[Role.OWNER], organization, team[Role.USER])
    payload = await run(
        gql, CONFIRM_REMOVAL, {"r": request_id, "c": await removal_code(team[Role.OWNER].email)}, team[Role.ADMIN]
    )
    assert errors(payload) == [("NOT_FOUND", ["requestId"])]


async def test_an_admin_cannot_remove_the_owner(gql):
    organization, team = await factories.create_team(Role.ADMIN)
    payload = await run(gql, REQUEST_REMOVAL, {"m": await membership_id(organization, team[Role.OWNER])}, team[Role.ADMIN])
    assert errors(payload) == [("FORBIDDEN", None)]


async def test_removing_yourself_is_leaving_not_removal(gql):
    organization, team = await factories.create_team(Role.ADMIN)
    payload = await run(gql, REQUEST_REMOVAL, {"m": await membership_id(organization, team[Role.ADMIN])}, team[Role.ADMIN])
    assert errors(payload) == [("INVALID", ["membershipId"])]


async def test_an_accountant_may_not_remove_members(gql):
    organization, team = await factories.create_team(Role.ACCOUNTANT, Role.USER)
    payload = await run(gql, REQUEST_REMOVAL, {"m": await membership_id(organization, team[Role.USER])}, team[Role.ACCOUNTANT])
    assert errors(payload) == [("FORBIDDEN", None)]


async def test_a_user_may_not_remove_members(gql):
    organization, team = await factories.create_team(Role.ACCOUNTANT, Role.USER)
    payload = await run(gql, REQUEST_REMOVAL, {"m": await membership_id(organization, team[Role.ACCOUNTANT])}, team[Role.USER])
    assert errors(payload) == [("FORBIDDEN", None)]


async def test_a_member_of_another_organization_is_not_found_for_removal(gql):
    organization, team = await factories.create_team(Role.USER)
    _, stranger = await factories.create_team()
    payload = await run(gql, REQUEST_REMOVAL, {"m": await membership_id(organization, team[Role.USER])}, stranger[Role.OWNER])
    assert errors(payload) == [("NOT_FOUND", ["membershipId"])]


async def test_an_admin_demoted_after_asking_can_no_longer_confirm(gql):
    organization, team = await factories.create_team(Role.ADMIN, Role.USER)
    request_id = await request_removal(gql, team[Role.ADMIN], organization, team[Role.USER])
    await Membership.filter(organization_id=organization.id, user_id=team[Role.ADMIN].id).update(role=Role.ACCOUNTANT)
    payload = await run(
        gql, CONFIRM_REMOVAL, {"r": request_id, "c": await removal_code(team[Role.ADMIN].email)}, team[Role.ADMIN]
    )
    assert errors(payload) == [("FORBIDDEN", None)]


# ---------------------------------------------------------------------------------------- leaving


async def test_an_accountant_leaves_and_their_sessions_end(gql):
    organization, team = await factories.create_team(Role.ACCOUNTANT)
    session = await factories.create_session(await factories.create_database(organization), user=team[Role.ACCOUNTANT])
    payload = await run(gql, LEAVE, {"o": to_global_id("Organization", organization.id)}, team[Role.ACCOUNTANT])
    assert payload == {"ok": True, "userErrors": []}
    assert not await Membership.exists(organization_id=organization.id, user_id=team[Role.ACCOUNTANT].id)
    assert (await Session.get(id=session.id)).status == SessionStatus.TERMINATING
    assert await AuditEntry.exists(organization_id=organization.id, action="member.leave", actor_id=team[Role.ACCOUNTANT].id)


async def test_the_owner_cannot_leave(gql):
    organization, team = await factories.create_team()
    payload = await run(gql, LEAVE, {"o": to_global_id("Organization", organization.id)}, team[Role.OWNER])
    assert errors(payload) == [("INVALID", ["organizationId"])]


async def test_leaving_an_organization_you_are_not_in_is_not_found(gql):
    organization, _ = await factories.create_team()
    _, stranger = await factories.create_team()
    payload = await run(gql, LEAVE, {"o": to_global_id("Organization", organization.id)}, stranger[Role.OWNER])
    assert errors(payload) == [("NOT_FOUND", ["organizationId"])]


# ---------------------------------------------------------------------------------------- ownership


async def test_the_owner_hands_the_organization_to_an_admin_and_becomes_an_admin(gql):
    organization, team = await factories.create_team(Role.ADMIN)
    variables = {"o": to_global_id("Organization", organization.id), "m": await membership_id(organization, team[Role.ADMIN])}
    payload = await run(gql, TRANSFER, variables, team[Role.OWNER])
    assert payload["userErrors"] == []
    assert payload["owner"] == {"role": "OWNER", "user": {"email": team[Role.ADMIN].email}}
    assert payload["previousOwner"] == {"role": "ADMIN", "user": {"email": team[Role.OWNER].email}}
    owners = await Membership.filter(organization_id=organization.id, role=Role.OWNER).values_list("user_id", flat=True)
    assert owners == [team[Role.ADMIN].id]
    assert await AuditEntry.exists(organization_id=organization.id, action="organization.transfer_ownership")


async def test_an_admin_may_not_hand_the_organization_over(gql):
    organization, team = await factories.create_team(Role.ADMIN, Role.USER)
    variables = {"o": to_global_id("Organization", organization.id), "m": await membership_id(organization, team[Role.USER])}
    assert errors(await run(gql, TRANSFER, variables, team[Role.ADMIN])) == [("FORBIDDEN", None)]


async def test_an_accountant_may_not_hand_the_organization_over(gql):
    organization, team = await factories.create_team(Role.ACCOUNTANT)
    variables = {"o": to_global_id("Organization", organization.id), "m": await membership_id(organization, team[Role.ACCOUNTANT])}
    assert errors(await run(gql, TRANSFER, variables, team[Role.ACCOUNTANT])) == [("FORBIDDEN", None)]


async def test_the_owner_cannot_hand_the_organization_to_themselves(gql):
    organization, team = await factories.create_team()
    variables = {"o": to_global_id("Organization", organization.id), "m": await membership_id(organization, team[Role.OWNER])}
    assert errors(await run(gql, TRANSFER, variables, team[Role.OWNER])) == [("INVALID", ["membershipId"])]


async def test_ownership_goes_only_to_a_member_of_the_organization(gql):
    organization, team = await factories.create_team()
    other, other_team = await factories.create_team(Role.ADMIN)
    variables = {"o": to_global_id("Organization", organization.id), "m": await membership_id(other, other_team[Role.ADMIN])}
    assert errors(await run(gql, TRANSFER, variables, team[Role.OWNER])) == [("NOT_FOUND", ["membershipId"])]


async def test_handing_over_another_organization_is_not_found(gql):
    organization, team = await factories.create_team(Role.ADMIN)
    _, stranger = await factories.create_team()
    variables = {"o": to_global_id("Organization", organization.id), "m": await membership_id(organization, team[Role.ADMIN])}
    assert errors(await run(gql, TRANSFER, variables, stranger[Role.OWNER])) == [("NOT_FOUND", ["organizationId"])]


# ---------------------------------------------------------------------------------------- databases


async def test_an_admin_chooses_a_users_databases_and_sessions_in_the_one_taken_away_end(gql):
    organization, team = await factories.create_team(Role.ADMIN, Role.USER)
    kept = await factories.create_database(organization, name="Бухгалтерия")
    taken = await factories.create_database(organization, name="Зарплата")
    added = await factories.create_database(organization, name="Торговля")
    membership = await Membership.get(organization_id=organization.id, user_id=team[Role.USER].id)
    for database in (kept, taken):
        await DatabaseGrant.create(membership=membership, database=database)
    in_taken = await factories.create_session(taken, user=team[Role.USER])
    in_kept = await factories.create_session(kept, user=team[Role.USER])
    variables = {
        "m": to_global_id("Membership", membership.id),
        "d": [to_global_id("Database", kept.id), to_global_id("Database", added.id)],
    }
    payload = await run(gql, UPDATE_DATABASES, variables, team[Role.ADMIN])
    assert payload["userErrors"] == []
    assert payload["membership"]["databases"] == [{"name": "Бухгалтерия"}, {"name": "Торговля"}]
    assert (await Session.get(id=in_taken.id)).status == SessionStatus.TERMINATING
    assert (await Session.get(id=in_kept.id)).status == SessionStatus.ACTIVE
    entry = await AuditEntry.get(organization_id=organization.id, action="member.databases_change")
    assert entry.details["removed"] == [str(taken.id)] and entry.details["added"] == [str(added.id)]


async def test_only_a_users_databases_are_chosen(gql):
    organization, team = await factories.create_team(Role.ADMIN)
    variables = {"m": await membership_id(organization, team[Role.ADMIN]), "d": []}
    assert errors(await run(gql, UPDATE_DATABASES, variables, team[Role.OWNER])) == [("INVALID", ["membershipId"])]


async def test_a_database_of_another_organization_cannot_be_granted(gql):
    organization, team = await factories.create_team(Role.USER)
    other, _ = await factories.create_team()
    foreign = await factories.create_database(other)
    variables = {"m": await membership_id(organization, team[Role.USER]), "d": [to_global_id("Database", foreign.id)]}
    assert errors(await run(gql, UPDATE_DATABASES, variables, team[Role.OWNER])) == [("NOT_FOUND", ["databaseIds"])]


async def test_an_accountant_may_not_choose_databases(gql):
    organization, team = await factories.create_team(Role.ACCOUNTANT, Role.USER)
    variables = {"m": await membership_id(organization, team[Role.USER]), "d": []}
    assert errors(await run(gql, UPDATE_DATABASES, variables, team[Role.ACCOUNTANT])) == [("FORBIDDEN", None)]


async def test_a_user_may_not_choose_their_own_databases(gql):
    organization, team = await factories.create_team(Role.USER)
    database = await factories.create_database(organization)
    variables = {"m": await membership_id(organization, team[Role.USER]), "d": [to_global_id("Database", database.id)]}
    assert errors(await run(gql, UPDATE_DATABASES, variables, team[Role.USER])) == [("FORBIDDEN", None)]


async def test_choosing_databases_of_another_organizations_member_is_not_found(gql):
    organization, team = await factories.create_team(Role.USER)
    _, stranger = await factories.create_team()
    variables = {"m": await membership_id(organization, team[Role.USER]), "d": []}
    assert errors(await run(gql, UPDATE_DATABASES, variables, stranger[Role.OWNER])) == [("NOT_FOUND", ["membershipId"])]


async def test_an_accountant_sees_members_but_not_their_databases(gql):
    organization, team = await factories.create_team(Role.ACCOUNTANT, Role.USER)
    query = """query($id: ID!) { organization(id: $id) { members { edges { node { role databases { name } } } } } }"""
    body = await gql.execute(query, {"id": to_global_id("Organization", organization.id)}, as_user=await signed_in(gql, team[Role.ACCOUNTANT]))
    assert {e["extensions"]["code"] for e in body["errors"]} == {"FORBIDDEN"}
    assert len(body["data"]["organization"]["members"]["edges"]) == 3
