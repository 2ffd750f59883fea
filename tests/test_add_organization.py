"""A user adds an organization by INN; it is moderated; or, when it is already here, they ask to join."""

from __future__ import annotations

import asyncio
import random

import pytest

from models.audit import AuditEntry
from models.identity import User
from models.organizations import (
    JoinRequest,
    KnownContact,
    Membership,
    ModerationStatus,
    Organization,
    Role,
)
from models.outbox import OutboxMessage
from foundation.ids import to_global_id
from tests import factories

ADD = """mutation($input: AddOrganizationInput!) { addOrganization(input: $input) {
  organization { id name inn kind moderationStatus code viewerRole members { edges { node { role position user { email } } } } }
  joinRequest { id inn position status user { email } organization { name } }
  userErrors { code field message } } }"""
APPROVE = """mutation($id: ID!, $role: Role!) { approveJoinRequest(requestId: $id, role: $role) {
  joinRequest { status decidedAt } membership { role position user { email } organization { inn } }
  userErrors { code field message } } }"""
REJECT = """mutation($id: ID!) { rejectJoinRequest(requestId: $id) { joinRequest { status } userErrors { code field message } } }"""
JOIN_REQUESTS = """query($org: ID!) { joinRequests(organizationId: $org) {
  totalCount edges { node { id inn position status user { fullName email } organization { name } } } } }"""
MY_JOIN_REQUESTS = """{ myJoinRequests { edges { node { inn status organization { name } } } } }"""
APPROVE_ORG = """mutation($id: ID!) { approveOrganization(organizationId: $id) {
  organization { organizationId moderationStatus moderationNote owner { email } } userErrors { code field message } } }"""
REJECT_ORG = """mutation($id: ID!, $reason: String!) { rejectOrganization(organizationId: $id, reason: $reason) {
  organization { organizationId moderationStatus moderationNote } userErrors { code field message } } }"""
FOR_MODERATION = """{ organizationsForModeration(first: 100) { edges { node { organizationId inn name code owner { email } } } } }"""
MY_ORGANIZATIONS = """{ organizations { edges { node { inn moderationStatus viewerRole } } } }"""


def _digit(digits: str, weights: tuple[int, ...]) -> str:
    return str(sum(int(d) * w for d, w in zip(digits, weights)) % 11 % 10)


def legal_inn() -> str:
    """A valid, random 10-digit INN (not one of the demo's)."""
    body = "".join(random.choice("0123456789") for _ in range(9))
    return body + _digit(body, (2, 4, 10, 3, 5, 9, 4, 6, 8))


def personal_inn() -> str:
    body = "".join(random.choice("0123456789") for _ in range(10))
    body += _digit(body, (7, 2, 4, 10, 3, 5, 9, 4, 6, 8))
    return body + _digit(body, (3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8))


def errors(payload: dict) -> list[tuple[str, list[str] | None]]:
    return [(e["code"], e["field"]) for e in payload["userErrors"]]


async def signed_in(gql, user: User) -> str:
    await gql.token_for_password(user.email, factories.PASSWORD)
    return user.email


async def new_user(gql, *, phone: str | None = None, verified_phone: bool = False) -> str:
    """A signed-in account with `phone` proven, or only given (resolvers/identity/addresses.py)."""
    user = await factories.create_user(phone=phone)
    if phone and not verified_phone:
        await User.filter(id=user.id).update(phone=None, phone_verified=False, unproven_phone=phone)
    return await signed_in(gql, user)


async def add(gql, who: str, **changes) -> dict:
    data = {"inn": legal_inn(), "kind": "LEGAL_ENTITY", "name": "ООО «Новая»", "position": "Главный бухгалтер", **changes}
    return (await gql.execute(ADD, {"input": data}, as_user=who))["data"]["addOrganization"]


async def staff(gql) -> str:
    user = await factories.create_user(factories.unique_email("staff"))
    await User.filter(id=user.id).update(is_staff=True)
    return await signed_in(gql, user)


async def existing_team(gql, *roles: Role) -> tuple[Organization, dict[Role, User]]:
    """A team of our own whose organization has a valid INN (others may ask to join it)."""
    organization, users = await factories.create_team(*roles)
    organization.inn = legal_inn()
    await organization.save(update_fields=["inn"])
    for user in users.values():
        await signed_in(gql, user)
    return organization, users


async def ask_to_join(gql, organization: Organization, position: str = "Менеджер") -> tuple[str, dict]:
    who = await new_user(gql)
    payload = await add(gql, who, inn=organization.inn, position=position, name=None)
    assert payload["userErrors"] == [], payload
    return who, payload["joinRequest"]


# ---------------------------------------------------------------- adding a new organization


async def test_a_user_adds_a_new_organization_and_becomes_its_owner_while_it_awaits_moderation(gql):
    who = await new_user(gql)
    payload = await add(gql, who, inn=(inn := legal_inn()))
    assert payload["userErrors"] == [] and payload["joinRequest"] is None
    org = payload["organization"]
    assert (org["name"], org["inn"], org["kind"], org["moderationStatus"], org["viewerRole"]) == (
        "ООО «Новая»", inn, "LEGAL_ENTITY", "PENDING", "OWNER"
    )
    assert org["members"]["edges"] == [{"node": {"role": "OWNER", "position": "Главный бухгалтер", "user": {"email": who}}}]
    mine = (await gql.execute(MY_ORGANIZATIONS, as_user=who))["data"]["organizations"]["edges"]
    assert [e["node"] for e in mine] == [{"inn": inn, "moderationStatus": "PENDING", "viewerRole": "OWNER"}]


async def test_a_new_organization_gets_a_six_digit_subscriber_code_of_its_own(gql):
    who = await new_user(gql)
    codes = [(await add(gql, who))["organization"]["code"] for _ in range(3)]
    assert all(len(c) == 6 and c.isdigit() for c in codes) and len(set(codes)) == 3


async def test_a_sole_proprietor_is_added_with_a_12_digit_inn_and_a_placeholder_name(gql):
    who = await new_user(gql)
    payload = await add(gql, who, inn=(inn := personal_inn()), kind="SOLE_PROPRIETOR", name=None)
    assert payload["organization"]["name"] == f"ИП, ИНН {inn}"
    assert payload["organization"]["kind"] == "SOLE_PROPRIETOR"


@pytest.mark.parametrize(
    ("kind", "inn"),
    [
        ("LEGAL_ENTITY", "7707083890"),  # the check digit is wrong
        ("LEGAL_ENTITY", "771234567859"),  # 12 digits for a legal entity
        ("SOLE_PROPRIETOR", "7707083893"),  # 10 digits for a sole proprietor
        ("INDIVIDUAL", "77123456785X"),
    ],
)
async def test_an_inn_is_checked_against_the_kind_and_its_check_digits(gql, kind, inn):
    who = await new_user(gql)
    payload = await add(gql, who, inn=inn, kind=kind)
    assert errors(payload) == [("INVALID", ["input", "inn"])] and payload["organization"] is None


async def test_a_position_is_required(gql):
    who = await new_user(gql)
    assert errors(await add(gql, who, position="  ")) == [("INVALID", ["input", "position"])]


async def test_adding_an_organization_needs_a_signed_in_user(gql):
    body = await gql.execute(ADD, {"input": {"inn": legal_inn(), "kind": "LEGAL_ENTITY", "position": "Директор"}})
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_a_known_contact_with_a_confirmed_phone_is_approved_at_once(gql):
    phone = factories.unique_phone()
    inn = legal_inn()
    await KnownContact.create(inn=inn, phone=phone)
    who = await new_user(gql, phone=phone, verified_phone=True)
    assert (await add(gql, who, inn=inn))["organization"]["moderationStatus"] == "APPROVED"


async def test_the_provider_s_customer_nobody_owns_yet_is_owned_by_a_known_contact_and_only_claimed_by_others(gql):
    """An organization the provider's records brought (approved, no members): a stranger does not
    take it — their claim stands beside it, PENDING, for staff (issue 17: it used to be refused
    outright); a known contact with a confirmed phone owns it at once."""
    from models.organizations import Organization

    inn, phone = legal_inn(), factories.unique_phone()
    provider = await Organization.create(
        name="ООО «Из учёта»", inn=inn, kind="LEGAL_ENTITY", moderation_status="APPROVED", code=f"P{inn[-6:]}", external_id=f"K-{inn}",
    )
    await KnownContact.create(inn=inn, phone=phone)
    stranger = await new_user(gql)
    claim = await add(gql, stranger, inn=inn)
    assert claim["userErrors"] == [] and claim["organization"]["moderationStatus"] == "PENDING"
    assert claim["organization"]["id"] != to_global_id("Organization", provider.id)
    assert not await Membership.exists(organization_id=provider.id)
    contact = await new_user(gql, phone=phone, verified_phone=True)
    claimed = await add(gql, contact, inn=inn)
    assert claimed["userErrors"] == [] and claimed["organization"]["moderationStatus"] == "APPROVED"
    assert claimed["organization"]["id"] == to_global_id("Organization", provider.id)
    mine = (await gql.execute(MY_ORGANIZATIONS, as_user=contact))["data"]["organizations"]["edges"]
    assert [(e["node"]["inn"], e["node"]["viewerRole"]) for e in mine] == [(inn, "OWNER")]
    theirs = (await gql.execute(MY_ORGANIZATIONS, as_user=stranger))["data"]["organizations"]["edges"]
    assert [(e["node"]["inn"], e["node"]["moderationStatus"]) for e in theirs] == [(inn, "PENDING")]
    # now it has an owner: the next one asks to join, as for any organization
    assert (await add(gql, await new_user(gql), inn=inn))["joinRequest"] is not None


async def test_a_known_phone_that_is_not_confirmed_still_waits_for_moderation(gql):
    phone = factories.unique_phone()
    inn = legal_inn()
    await KnownContact.create(inn=inn, phone=phone)
    who = await new_user(gql, phone=phone, verified_phone=False)
    assert (await add(gql, who, inn=inn))["organization"]["moderationStatus"] == "PENDING"


async def test_adding_an_organization_is_in_the_audit_log(gql):
    who = await new_user(gql)
    payload = await add(gql, who)
    organization = await Organization.get(inn=payload["organization"]["inn"])
    assert await AuditEntry.exists(action="organization.added", organization_id=organization.id)


async def test_two_people_adding_the_same_new_inn_at_once_make_one_organization_and_one_join_request(gql):
    first, second = await new_user(gql), await new_user(gql)
    inn = legal_inn()
    answers = await asyncio.gather(add(gql, first, inn=inn), add(gql, second, inn=inn))
    assert all(a["userErrors"] == [] for a in answers), answers
    assert sorted(bool(a["organization"]) for a in answers) == [False, True]
    assert await Organization.filter(inn=inn).count() == 1
    assert await JoinRequest.filter(organization__inn=inn).count() == 1


# ---------------------------------------------------------------- an INN already here: asking to join


async def test_adding_an_inn_that_is_already_here_asks_its_owner_and_admins_to_let_you_in(gql):
    organization, users = await existing_team(gql, Role.ADMIN, Role.ACCOUNTANT)
    who, request = await ask_to_join(gql, organization, "Кладовщик")
    assert (request["inn"], request["position"], request["status"]) == (organization.inn, "Кладовщик", "PENDING")
    assert request["user"] == {"email": who}
    notified = set(await OutboxMessage.filter(subject="Запрос на вступление в организацию", body__contains=organization.inn)
                   .values_list("recipient", flat=True))
    assert notified == {users[Role.OWNER].email, users[Role.ADMIN].email}
    assert not await Membership.exists(organization_id=organization.id, user__email=who)


async def test_the_requester_does_not_see_the_organization_until_let_in(gql):
    organization, _ = await existing_team(gql)
    who, request = await ask_to_join(gql, organization)
    assert request["organization"] is None
    mine = (await gql.execute(MY_JOIN_REQUESTS, as_user=who))["data"]["myJoinRequests"]["edges"]
    assert [e["node"] for e in mine] == [{"inn": organization.inn, "status": "PENDING", "organization": None}]
    assert (await gql.execute(MY_ORGANIZATIONS, as_user=who))["data"]["organizations"]["edges"] == []


async def test_asking_twice_to_join_is_a_conflict(gql):
    organization, _ = await existing_team(gql)
    who, _ = await ask_to_join(gql, organization)
    again = await add(gql, who, inn=organization.inn)
    assert errors(again) == [("CONFLICT", ["input", "inn"])]
    assert await JoinRequest.filter(organization_id=organization.id).count() == 1


async def test_adding_an_organization_you_already_belong_to_is_a_conflict(gql):
    organization, users = await existing_team(gql, Role.USER)
    assert errors(await add(gql, users[Role.USER].email, inn=organization.inn)) == [("CONFLICT", ["input", "inn"])]


async def test_the_owner_lists_the_pending_join_requests(gql):
    organization, users = await existing_team(gql, Role.ADMIN)
    who, request = await ask_to_join(gql, organization)
    for role in (Role.OWNER, Role.ADMIN):
        body = await gql.execute(JOIN_REQUESTS, {"org": to_global_id("Organization", organization.id)}, as_user=users[role].email)
        listed = body["data"]["joinRequests"]
        assert listed["totalCount"] == 1
        node = listed["edges"][0]["node"]
        assert (node["id"], node["user"]["email"], node["organization"]["name"]) == (request["id"], who, organization.name)


@pytest.mark.parametrize("role", [Role.ACCOUNTANT, Role.USER])
async def test_an_accountant_or_a_user_may_not_see_join_requests(gql, role):
    organization, users = await existing_team(gql, role)
    body = await gql.execute(JOIN_REQUESTS, {"org": to_global_id("Organization", organization.id)}, as_user=users[role].email)
    assert body["data"]["joinRequests"] is None
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_join_requests_of_another_organization_do_not_exist_for_you(gql):
    organization, _ = await existing_team(gql)
    await ask_to_join(gql, organization)
    other, other_users = await existing_team(gql)
    body = await gql.execute(
        JOIN_REQUESTS, {"org": to_global_id("Organization", organization.id)}, as_user=other_users[Role.OWNER].email
    )
    assert body == {"data": {"joinRequests": None}}


async def test_the_owner_lets_the_requester_in_as_an_accountant(gql):
    organization, users = await existing_team(gql)
    who, request = await ask_to_join(gql, organization, "Бухгалтер по зарплате")
    payload = (await gql.execute(APPROVE, {"id": request["id"], "role": "ACCOUNTANT"}, as_user=users[Role.OWNER].email))
    decided = payload["data"]["approveJoinRequest"]
    assert decided["userErrors"] == [] and decided["joinRequest"]["status"] == "APPROVED" and decided["joinRequest"]["decidedAt"]
    assert decided["membership"] == {
        "role": "ACCOUNTANT", "position": "Бухгалтер по зарплате", "user": {"email": who},
        "organization": {"inn": organization.inn},
    }
    mine = (await gql.execute(MY_ORGANIZATIONS, as_user=who))["data"]["organizations"]["edges"]
    assert [e["node"]["viewerRole"] for e in mine] == ["ACCOUNTANT"]
    mail = await OutboxMessage.filter(recipient=who, subject="Добавление к абоненту").get()
    assert organization.name in mail.body and organization.code in mail.body
    assert await AuditEntry.exists(action="join_request.approved", organization_id=organization.id)


async def test_an_organization_awaiting_moderation_lets_nobody_in_until_approved(gql):
    """Like inviting: a PENDING organization is anybody's unchecked claim to an INN, so it brings nobody
    in; the request waits and is decided once the provider approves the organization."""
    claimant = await new_user(gql)
    claimed = (await add(gql, claimant))["organization"]
    assert claimed["moderationStatus"] == "PENDING"
    organization = await Organization.get(inn=claimed["inn"])
    who, request = await ask_to_join(gql, organization)
    payload = (await gql.execute(APPROVE, {"id": request["id"], "role": "USER"}, as_user=claimant))["data"]["approveJoinRequest"]
    assert errors(payload) == [("INVALID", ["requestId"])] and payload["membership"] is None
    assert "moderation" in payload["userErrors"][0]["message"]
    assert not await Membership.exists(organization_id=organization.id, user__email=who)
    assert (await JoinRequest.get(organization_id=organization.id)).status.value == "PENDING"
    await Organization.filter(id=organization.id).update(moderation_status=ModerationStatus.APPROVED)
    payload = (await gql.execute(APPROVE, {"id": request["id"], "role": "USER"}, as_user=claimant))["data"]["approveJoinRequest"]
    assert payload["userErrors"] == [] and payload["membership"]["user"] == {"email": who}


async def test_an_admin_lets_the_requester_in_too(gql):
    organization, users = await existing_team(gql, Role.ADMIN)
    _, request = await ask_to_join(gql, organization)
    payload = (await gql.execute(APPROVE, {"id": request["id"], "role": "USER"}, as_user=users[Role.ADMIN].email))
    assert payload["data"]["approveJoinRequest"]["membership"]["role"] == "USER"


async def test_a_requester_cannot_be_made_owner(gql):
    organization, users = await existing_team(gql)
    _, request = await ask_to_join(gql, organization)
    payload = (await gql.execute(APPROVE, {"id": request["id"], "role": "OWNER"}, as_user=users[Role.OWNER].email))
    assert errors(payload["data"]["approveJoinRequest"]) == [("INVALID", ["role"])]


@pytest.mark.parametrize("role", [Role.ACCOUNTANT, Role.USER])
async def test_an_accountant_or_a_user_may_not_decide_on_join_requests(gql, role):
    organization, users = await existing_team(gql, role)
    _, request = await ask_to_join(gql, organization)
    approve = (await gql.execute(APPROVE, {"id": request["id"], "role": "USER"}, as_user=users[role].email))
    reject = (await gql.execute(REJECT, {"id": request["id"]}, as_user=users[role].email))
    assert errors(approve["data"]["approveJoinRequest"]) == [("FORBIDDEN", None)]
    assert errors(reject["data"]["rejectJoinRequest"]) == [("FORBIDDEN", None)]


async def test_an_owner_of_another_organization_finds_no_such_join_request(gql):
    organization, _ = await existing_team(gql)
    _, request = await ask_to_join(gql, organization)
    _, other_users = await existing_team(gql)
    approve = (await gql.execute(APPROVE, {"id": request["id"], "role": "USER"}, as_user=other_users[Role.OWNER].email))
    reject = (await gql.execute(REJECT, {"id": request["id"]}, as_user=other_users[Role.OWNER].email))
    assert errors(approve["data"]["approveJoinRequest"]) == [("NOT_FOUND", ["requestId"])]
    assert errors(reject["data"]["rejectJoinRequest"]) == [("NOT_FOUND", ["requestId"])]


async def test_the_requester_cannot_approve_their_own_request(gql):
    organization, _ = await existing_team(gql)
    who, request = await ask_to_join(gql, organization)
    approve = (await gql.execute(APPROVE, {"id": request["id"], "role": "ADMIN"}, as_user=who))
    assert errors(approve["data"]["approveJoinRequest"]) == [("NOT_FOUND", ["requestId"])]


async def test_a_decided_request_cannot_be_decided_again(gql):
    organization, users = await existing_team(gql)
    _, request = await ask_to_join(gql, organization)
    owner = users[Role.OWNER].email
    await gql.execute(APPROVE, {"id": request["id"], "role": "USER"}, as_user=owner)
    again = (await gql.execute(APPROVE, {"id": request["id"], "role": "ADMIN"}, as_user=owner))["data"]["approveJoinRequest"]
    reject = (await gql.execute(REJECT, {"id": request["id"]}, as_user=owner))["data"]["rejectJoinRequest"]
    assert errors(again) == [("CONFLICT", ["requestId"])] and errors(reject) == [("CONFLICT", ["requestId"])]


async def test_a_requester_who_meanwhile_became_a_member_is_a_conflict(gql):
    organization, users = await existing_team(gql)
    who, request = await ask_to_join(gql, organization)
    await Membership.create(organization=organization, user=await User.get(email=who), role=Role.USER)
    approve = (await gql.execute(APPROVE, {"id": request["id"], "role": "ADMIN"}, as_user=users[Role.OWNER].email))
    assert errors(approve["data"]["approveJoinRequest"]) == [("CONFLICT", ["requestId"])]


async def test_the_owner_turns_a_request_down_and_the_requester_may_ask_again(gql):
    organization, users = await existing_team(gql)
    who, request = await ask_to_join(gql, organization)
    rejected = (await gql.execute(REJECT, {"id": request["id"]}, as_user=users[Role.OWNER].email))["data"]["rejectJoinRequest"]
    assert rejected == {"joinRequest": {"status": "REJECTED"}, "userErrors": []}
    assert not await Membership.exists(organization_id=organization.id, user__email=who)
    assert await OutboxMessage.exists(recipient=who, subject="Запрос на вступление отклонён")
    again = await add(gql, who, inn=organization.inn)
    assert again["userErrors"] == [] and again["joinRequest"]["status"] == "PENDING"


# ---------------------------------------------------------------- moderation by the provider's staff


async def pending_organization(gql) -> tuple[str, dict]:
    who = await new_user(gql)
    payload = await add(gql, who)
    return who, payload["organization"]


async def test_staff_see_the_organizations_awaiting_moderation(gql):
    who, org = await pending_organization(gql)
    listed = (await gql.execute(FOR_MODERATION, as_user=await staff(gql)))["data"]["organizationsForModeration"]["edges"]
    assert {"organizationId": org["id"], "inn": org["inn"], "name": org["name"], "code": org["code"], "owner": {"email": who}} in [
        e["node"] for e in listed
    ]


async def test_only_staff_see_the_moderation_queue(gql):
    body = await gql.execute(FOR_MODERATION, as_user="owner@romashka.example")
    assert body["data"] is None and body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_staff_approve_an_organization_and_its_owner_is_told(gql):
    who, org = await pending_organization(gql)
    payload = (await gql.execute(APPROVE_ORG, {"id": org["id"]}, as_user=await staff(gql)))["data"]["approveOrganization"]
    assert payload["userErrors"] == [] and payload["organization"]["moderationStatus"] == "APPROVED"
    assert payload["organization"]["owner"] == {"email": who}
    mine = (await gql.execute(MY_ORGANIZATIONS, as_user=who))["data"]["organizations"]["edges"]
    assert mine[0]["node"]["moderationStatus"] == "APPROVED"
    assert await OutboxMessage.exists(recipient=who, subject="Организация прошла модерацию")


async def test_staff_reject_an_organization_saying_why(gql):
    who, org = await pending_organization(gql)
    payload = (await gql.execute(REJECT_ORG, {"id": org["id"], "reason": "ИНН не совпадает с данными ФНС"}, as_user=await staff(gql)))
    rejected = payload["data"]["rejectOrganization"]
    assert rejected["organization"]["moderationStatus"] == "REJECTED"
    assert rejected["organization"]["moderationNote"] == "ИНН не совпадает с данными ФНС"
    mail = await OutboxMessage.filter(recipient=who, subject="Организация не прошла модерацию").get()
    assert "ИНН не совпадает с данными ФНС" in mail.body
    assert await AuditEntry.exists(action="organization.rejected", object_id=str((await Organization.get(inn=org["inn"])).id))


async def test_a_rejection_needs_a_reason(gql):
    _, org = await pending_organization(gql)
    payload = (await gql.execute(REJECT_ORG, {"id": org["id"], "reason": " "}, as_user=await staff(gql)))
    assert errors(payload["data"]["rejectOrganization"]) == [("INVALID", ["reason"])]


async def test_an_approved_organization_cannot_be_rejected_or_approved_again(gql):
    _, org = await pending_organization(gql)
    moderator = await staff(gql)
    await gql.execute(APPROVE_ORG, {"id": org["id"]}, as_user=moderator)
    again = (await gql.execute(APPROVE_ORG, {"id": org["id"]}, as_user=moderator))["data"]["approveOrganization"]
    reject = (await gql.execute(REJECT_ORG, {"id": org["id"], "reason": "нет"}, as_user=moderator))["data"]["rejectOrganization"]
    assert errors(again) == [("CONFLICT", ["organizationId"])] and errors(reject) == [("CONFLICT", ["organizationId"])]


async def test_staff_may_approve_an_organization_they_rejected(gql):
    _, org = await pending_organization(gql)
    moderator = await staff(gql)
    await gql.execute(REJECT_ORG, {"id": org["id"], "reason": "Не дозвонились"}, as_user=moderator)
    payload = (await gql.execute(APPROVE_ORG, {"id": org["id"]}, as_user=moderator))["data"]["approveOrganization"]
    assert payload["organization"]["moderationStatus"] == "APPROVED" and payload["organization"]["moderationNote"] is None


async def test_an_owner_who_is_not_staff_may_not_moderate_even_their_own_organization(gql):
    who, org = await pending_organization(gql)
    approve = (await gql.execute(APPROVE_ORG, {"id": org["id"]}, as_user=who))["data"]["approveOrganization"]
    reject = (await gql.execute(REJECT_ORG, {"id": org["id"], "reason": "x"}, as_user=who))["data"]["rejectOrganization"]
    assert errors(approve) == [("FORBIDDEN", None)] and errors(reject) == [("FORBIDDEN", None)]
    assert (await Organization.get(inn=org["inn"])).moderation_status == ModerationStatus.PENDING


async def test_staff_moderating_an_unknown_organization_find_nothing(gql):
    import uuid

    missing = to_global_id("Organization", uuid.uuid4())
    payload = (await gql.execute(APPROVE_ORG, {"id": missing}, as_user=await staff(gql)))["data"]["approveOrganization"]
    assert errors(payload) == [("NOT_FOUND", ["organizationId"])]


async def test_the_owner_of_a_rejected_organization_may_submit_it_again(gql):
    who, org = await pending_organization(gql)
    await gql.execute(REJECT_ORG, {"id": org["id"], "reason": "Опечатка в названии"}, as_user=await staff(gql))
    again = await add(gql, who, inn=org["inn"], name="ООО «Новая-2»")
    assert again["userErrors"] == [] and again["organization"]["id"] == org["id"]
    assert (again["organization"]["moderationStatus"], again["organization"]["name"]) == ("PENDING", "ООО «Новая-2»")


async def test_someone_else_adding_a_rejected_inn_takes_over_the_claim(gql):
    first, org = await pending_organization(gql)
    await gql.execute(REJECT_ORG, {"id": org["id"], "reason": "Телефон не из контактов организации"}, as_user=await staff(gql))
    second = await new_user(gql)
    taken = await add(gql, second, inn=org["inn"])
    assert taken["userErrors"] == [] and taken["organization"]["viewerRole"] == "OWNER"
    assert taken["organization"]["moderationStatus"] == "PENDING"
    owners = await Membership.filter(organization__inn=org["inn"]).values_list("user__email", "role")
    assert owners == [(second, Role.OWNER)]
    assert (await gql.execute(MY_ORGANIZATIONS, as_user=first))["data"]["organizations"]["edges"] == []


async def test_a_known_contact_takes_an_organization_out_of_the_rejected_state_at_once(gql):
    _, org = await pending_organization(gql)
    await gql.execute(REJECT_ORG, {"id": org["id"], "reason": "нет"}, as_user=await staff(gql))
    phone = factories.unique_phone()
    await KnownContact.create(inn=org["inn"], phone=phone)
    who = await new_user(gql, phone=phone, verified_phone=True)
    assert (await add(gql, who, inn=org["inn"]))["organization"]["moderationStatus"] == "APPROVED"

