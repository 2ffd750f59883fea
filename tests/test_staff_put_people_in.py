"""Staff put people in (issue 18): from the staff desk — GraphQL, the provider HTTP API with a `staff`
token, the CLI — invite a member with a role into any organization, and give an organization that has
no owner one (a member promoted, or an OWNER invitation that only someone proving the address turns
into ownership). The owner's invitation rules hold (one function: invitations.create_invite);
non-staff are refused at every door; the organization's audit and the provider's name the staff."""

from __future__ import annotations

import uuid

import pytest

from foundation.ids import to_global_id
from models.audit import AuditEntry
from models.events import OrganizationEvent
from models.identity import User
from models.organizations import Invite, InviteStatus, Membership, ModerationStatus, Organization, Role
from models.provider import ProviderAction
from tests import factories
from tests.processes import kabinet_cli
from tests.test_add_organization import signed_in, staff
from tests.test_invites import accept, last_message, token_sent_to
from tests.test_provider_api import bearer, new_token

STAFF_INVITE = """mutation($input: StaffInviteMemberInput!) { staffInviteMember(input: $input) {
  invitation { id email phone role status expiresAt organization { organizationId inn owner { email } } }
  userErrors { code field message } } }"""
MAKE_OWNER = """mutation($input: StaffMakeOwnerInput!) { staffMakeOwner(input: $input) {
  organization { organizationId inn owner { email } } promoted
  invitation { id email role status }
  userErrors { code field message } } }"""
OWNER_INVITES = """mutation($input: InviteMemberInput!) { inviteMember(input: $input) { invite { id } userErrors { code field } } }"""


def org_id(organization: Organization) -> str:
    return to_global_id("Organization", organization.id)


def errors(payload: dict) -> list[tuple[str, str | None]]:
    """(code, the field at fault: the input's field named last)."""
    return [(e["code"], e["field"][-1] if isinstance(e["field"], list) else e["field"]) for e in payload["userErrors"]]


async def staff_invite(gql, who: str | None, organization: Organization, **fields) -> dict:
    body = await gql.execute(STAFF_INVITE, {"input": {"organizationId": org_id(organization), "role": "ACCOUNTANT", **fields}}, as_user=who)
    assert "errors" not in body, body
    return body["data"]["staffInviteMember"]


async def make_owner(gql, who: str | None, organization: Organization, **fields) -> dict:
    body = await gql.execute(MAKE_OWNER, {"input": {"organizationId": org_id(organization), **fields}}, as_user=who)
    assert "errors" not in body, body
    return body["data"]["staffMakeOwner"]


async def ownerless_team(*roles: Role) -> tuple[Organization, dict[Role, User]]:
    """An APPROVED organization whose only owner left: the members of `roles` stay."""
    organization, team = await factories.create_team(*roles)
    await Membership.filter(organization_id=organization.id, role=Role.OWNER).delete()
    return organization, team


async def owner_of(organization: Organization) -> User | None:
    membership = await Membership.get_or_none(organization_id=organization.id, role=Role.OWNER)
    return await User.get(id=membership.user_id) if membership else None


# ---------------------------------------------------------------- GraphQL: inviting


async def test_staff_invite_an_accountant_into_an_organization_they_are_not_in_and_it_is_accepted(gql):
    organization, team = await factories.create_team()
    as_staff = await staff(gql)
    email = factories.unique_email("buh")

    payload = await staff_invite(gql, as_staff, organization, email=email)
    assert payload["userErrors"] == []
    invitation = payload["invitation"]
    assert (invitation["email"], invitation["role"], invitation["status"]) == (email, "ACCOUNTANT", "PENDING")
    assert invitation["organization"]["inn"] == organization.inn
    assert invitation["organization"]["owner"]["email"] == team[Role.OWNER].email

    letter = await last_message(email)
    assert "Вас приглашают" in letter.body and organization.name in letter.body, "the staff member's own name is not the inviter's"
    invite = await Invite.get(email=email)
    staff_user = await User.get(email=as_staff)
    assert invite.invited_by_id == staff_user.id and invite.role == Role.ACCOUNTANT
    (entry,) = await AuditEntry.filter(organization_id=organization.id, action="invite.create")
    assert entry.actor_id == staff_user.id and entry.details["byStaff"] == {"kind": "STAFF", "name": as_staff}
    (action,) = await ProviderAction.filter(action="organization.invite", target=f"INN {organization.inn}")
    assert (action.actor_kind, action.actor, action.details["inviteId"]) == ("STAFF", as_staff, str(invite.id))

    accepted = await accept(gql, token_sent_to(letter), fullName="Бухгалтерова Анна", password="Pa55word-staff")
    assert accepted["userErrors"] == [] and accepted["accessToken"]
    joined = await User.get(email=email)
    assert (await Membership.get(organization_id=organization.id, user_id=joined.id)).role == Role.ACCOUNTANT
    assert (await Invite.get(id=invite.id)).status == InviteStatus.ACCEPTED


async def test_staff_invite_with_the_owners_rules(gql):
    organization, team = await factories.create_team(Role.ADMIN)
    as_staff = await staff(gql)
    pending = await factories.create_organization()
    await Organization.filter(id=pending.id).update(moderation_status=ModerationStatus.PENDING)

    assert errors(await staff_invite(gql, as_staff, pending, email=factories.unique_email())) == [("INVALID", "organizationId")]
    assert errors(await staff_invite(gql, as_staff, organization, email=factories.unique_email(), role="OWNER")) == [("INVALID", "role")]
    assert errors(await staff_invite(gql, as_staff, organization, email=team[Role.ADMIN].email)) == [("CONFLICT", "email")]
    assert errors(await staff_invite(gql, as_staff, organization)) == [("INVALID", "email")]
    assert errors(await staff_invite(gql, as_staff, organization, email="not-an-address")) == [("INVALID", "email")]
    other_database = await factories.create_database(await factories.create_organization())
    assert errors(await staff_invite(
        gql, as_staff, organization, email=factories.unique_email(), role="USER",
        databaseIds=[to_global_id("Database", other_database.id)],
    )) == [("NOT_FOUND", "databaseIds")]
    gone = Organization(id=uuid.uuid4())
    assert errors(await staff_invite(gql, as_staff, gone, email=factories.unique_email())) == [("NOT_FOUND", "organizationId")]
    assert not await Invite.filter(organization_id__in=[organization.id, pending.id]).exists()

    email = factories.unique_email()
    first = (await staff_invite(gql, as_staff, organization, email=email))["invitation"]
    second = (await staff_invite(gql, as_staff, organization, email=email, role="ADMIN"))["invitation"]
    assert first["id"] != second["id"]
    assert [i.status for i in await Invite.filter(email=email).order_by("created_at")] == [InviteStatus.REVOKED, InviteStatus.PENDING]


async def test_non_staff_are_refused_staff_invitations_and_owners(gql):
    organization, _ = await ownerless_team(Role.ADMIN)
    _, other = await factories.create_team(Role.ADMIN)
    email = factories.unique_email()
    for who in (await signed_in(gql, other[Role.OWNER]), await signed_in(gql, other[Role.ADMIN])):
        assert errors(await staff_invite(gql, who, organization, email=email)) == [("FORBIDDEN", None)]
        assert errors(await make_owner(gql, who, organization, email=email)) == [("FORBIDDEN", None)]
    for query in (STAFF_INVITE, MAKE_OWNER):
        body = await gql.execute(query, {"input": {"organizationId": org_id(organization), "role": "USER", "email": email}
                                         if query is STAFF_INVITE else {"organizationId": org_id(organization), "email": email}})
        assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED", body
    assert not await Invite.filter(organization_id=organization.id).exists()
    assert await owner_of(organization) is None
    assert not await AuditEntry.filter(organization_id=organization.id).exists()


async def test_an_admin_of_the_organization_is_no_staff_either(gql):
    organization, team = await ownerless_team(Role.ADMIN)
    as_admin = await signed_in(gql, team[Role.ADMIN])
    assert errors(await make_owner(gql, as_admin, organization, email=team[Role.ADMIN].email)) == [("FORBIDDEN", None)]
    assert (await Membership.get(organization_id=organization.id, user_id=team[Role.ADMIN].id)).role == Role.ADMIN
    body = await gql.execute(OWNER_INVITES, {"input": {"organizationId": org_id(organization), "email": factories.unique_email(), "role": "OWNER"}}, as_user=as_admin)
    assert errors(body["data"]["inviteMember"]) == [("INVALID", "role")], "nobody but staff invites an OWNER"


# ---------------------------------------------------------------- GraphQL: an owner where there is none


async def test_staff_promote_the_member_whose_address_it_is_when_the_only_owner_left(gql):
    organization, team = await ownerless_team(Role.ADMIN, Role.ACCOUNTANT)
    accountant = team[Role.ACCOUNTANT]
    as_staff = await staff(gql)
    seq_before = await OrganizationEvent.filter(organization_id=organization.id).count()

    payload = await make_owner(gql, as_staff, organization, email=accountant.email)
    assert payload["userErrors"] == [] and payload["promoted"] is True and payload["invitation"] is None
    assert payload["organization"]["owner"]["email"] == accountant.email
    assert (await owner_of(organization)).id == accountant.id
    assert (await Membership.get(organization_id=organization.id, user_id=team[Role.ADMIN].id)).role == Role.ADMIN
    (entry,) = await AuditEntry.filter(organization_id=organization.id, action="organization.owner_made")
    assert entry.details["ownerId"] == str(accountant.id) and entry.details["byStaff"]["name"] == as_staff
    assert entry.details["fromRole"] == "ACCOUNTANT"
    assert await ProviderAction.exists(action="organization.make_owner", actor=as_staff, target=f"INN {organization.inn}")
    topics = await OrganizationEvent.filter(organization_id=organization.id).order_by("seq").values_list("topic", flat=True)
    assert len(topics) > seq_before and {"data", "access"} <= set(topics), "published: the organization changed, the member's rights too"

    again = await make_owner(gql, as_staff, organization, email=team[Role.ADMIN].email)
    assert errors(again) == [("CONFLICT", "organizationId")], "it has an owner now: the owner acts"
    assert (await owner_of(organization)).id == accountant.id


async def test_an_address_of_no_member_gets_an_owner_invitation_that_only_its_holder_turns_into_ownership(gql):
    organization = await factories.create_organization()  # the provider sent it; nobody owns it
    as_staff = await staff(gql)
    email = factories.unique_email("director")

    payload = await make_owner(gql, as_staff, organization, email=email)
    assert payload["userErrors"] == [] and payload["promoted"] is False
    assert (payload["invitation"]["email"], payload["invitation"]["role"]) == (email, "OWNER")
    assert payload["organization"]["owner"] is None, "nobody is the owner until the address is proven"
    assert await owner_of(organization) is None

    other = factories.unique_email("other")
    await make_owner(gql, as_staff, organization, email=other)  # a second person asked to take it over
    first_token = token_sent_to(await last_message(email))
    second_token = token_sent_to(await last_message(other))

    accepted = await accept(gql, first_token, fullName="Директоров Пётр", password="Pa55word-owner")
    assert accepted["userErrors"] == [] and accepted["accessToken"]
    director = await User.get(email=email)
    assert (await owner_of(organization)).id == director.id
    (made,) = await AuditEntry.filter(organization_id=organization.id, action="organization.owner_made")
    assert made.details["by"] == "invitation"
    assert await AuditEntry.exists(organization_id=organization.id, action="invite.accept", actor_id=director.id)

    late = await accept(gql, second_token, fullName="Опоздавший", password="Pa55word-late")
    assert errors(late) == [("INVALID", "token")], "its OWNER invitation was withdrawn once the organization had an owner"
    assert (await Invite.get(email=other)).status == InviteStatus.REVOKED
    assert await Membership.filter(organization_id=organization.id).count() == 1


async def test_an_existing_account_accepts_an_owner_invitation_only_signed_in_as_itself(gql):
    organization, team = await ownerless_team(Role.USER)
    person = await factories.create_user(factories.unique_email("existing"))
    as_staff = await staff(gql)
    await make_owner(gql, as_staff, organization, email=person.email)
    token = token_sent_to(await last_message(person.email))

    refused = await accept(gql, token)
    assert errors(refused) == [("FORBIDDEN", None)]
    stranger = await signed_in(gql, await factories.create_user())
    assert errors(await accept(gql, token, as_user=stranger)) == [("FORBIDDEN", None)]
    assert await owner_of(organization) is None

    accepted = await accept(gql, token, as_user=await signed_in(gql, person))
    assert accepted["userErrors"] == [] and accepted["accessToken"] is None, "no tokens for an account found by an address"
    assert (await owner_of(organization)).id == person.id


async def test_an_owner_invitation_is_refused_once_someone_else_became_the_owner(gql):
    organization, team = await ownerless_team(Role.ADMIN)
    as_staff = await staff(gql)
    email = factories.unique_email()
    await make_owner(gql, as_staff, organization, email=email)
    token = token_sent_to(await last_message(email))
    # meanwhile the admin is promoted (e.g. by the operator): the invitation is withdrawn with it
    await make_owner(gql, as_staff, organization, email=team[Role.ADMIN].email)
    assert errors(await accept(gql, token, fullName="Поздний", password="Pa55word-late")) == [("INVALID", "token")]
    assert (await owner_of(organization)).id == team[Role.ADMIN].id


async def test_make_owner_refuses_what_it_must(gql):
    organization, team = await factories.create_team(Role.ADMIN)
    as_staff = await staff(gql)
    assert errors(await make_owner(gql, as_staff, organization, email=factories.unique_email())) == [("CONFLICT", "organizationId")]
    ownerless, members = await ownerless_team(Role.ADMIN, Role.USER)
    assert errors(await make_owner(gql, as_staff, ownerless)) == [("INVALID", "email")]
    # an e-mail and a phone of two different members: which one is meant?
    phone = factories.unique_phone()
    await User.filter(id=members[Role.USER].id).update(phone=phone, phone_verified=True)
    assert errors(await make_owner(gql, as_staff, ownerless, email=members[Role.ADMIN].email, phone=phone)) == [("INVALID", "email")]
    await Organization.filter(id=ownerless.id).update(moderation_status=ModerationStatus.REJECTED)
    assert errors(await make_owner(gql, as_staff, ownerless, email=members[Role.ADMIN].email)) == [("INVALID", "organizationId")]
    assert await owner_of(ownerless) is None and not await Invite.filter(organization_id=ownerless.id).exists()


# ---------------------------------------------------------------- the provider HTTP API with a `staff` token


async def test_a_staff_token_invites_and_makes_an_owner_by_inn(app, client, gql):
    name = f"service-manager-{uuid.uuid4().hex[:6]}"
    token = await new_token("staff", name=name)
    organization, team = await ownerless_team(Role.ACCOUNTANT)
    database = await factories.create_database(organization)
    database.external_id = f"db-{uuid.uuid4().hex[:8]}"
    await database.save(update_fields=["external_id"])
    email = factories.unique_email("user")

    invited = await client.post("/provider/v1/staff/organizations/invite", headers=bearer(token), json={
        "inn": organization.inn, "email": email, "role": "user", "databases": [database.external_id],
    })
    assert invited.status_code == 200, invited.text
    assert (invited.json()["invitation"]["role"], invited.json()["invitation"]["status"]) == ("USER", "PENDING")
    invite = await Invite.get(email=email)
    assert invite.invited_by_id is None
    assert await ProviderAction.exists(actor_kind="SERVICE", actor=name, action="organization.invite", target=f"INN {organization.inn}")
    entry = await AuditEntry.get(organization_id=organization.id, action="invite.create")
    assert entry.actor_id is None and entry.details["byStaff"] == {"kind": "SERVICE", "name": name}

    for body, status, field in [
        ({"inn": organization.inn, "email": factories.unique_email(), "role": "boss"}, 400, "role"),
        ({"inn": organization.inn, "email": factories.unique_email(), "role": "OWNER"}, 400, "role"),
        ({"inn": organization.inn, "email": factories.unique_email(), "role": "USER", "databases": ["nope"]}, 404, "databases"),
        ({"inn": organization.inn, "email": factories.unique_email(), "role": "USER", "databases": "db"}, 400, "databases"),
        ({"inn": organization.inn, "email": team[Role.ACCOUNTANT].email, "role": "USER"}, 409, "email"),
        ({"inn": "0000000000", "email": factories.unique_email(), "role": "USER"}, 404, "inn"),
    ]:
        response = await client.post("/provider/v1/staff/organizations/invite", headers=bearer(token), json=body)
        assert response.status_code == status and response.json()["error"]["field"] == field, (body, response.text)

    promoted = await client.post("/provider/v1/staff/organizations/make-owner", headers=bearer(token),
                                 json={"inn": organization.inn, "email": team[Role.ACCOUNTANT].email})
    assert promoted.status_code == 200, promoted.text
    assert promoted.json()["promoted"] is True and promoted.json()["invitation"] is None
    assert (await owner_of(organization)).id == team[Role.ACCOUNTANT].id
    assert await ProviderAction.exists(actor_kind="SERVICE", actor=name, action="organization.make_owner")
    again = await client.post("/provider/v1/staff/organizations/make-owner", headers=bearer(token),
                              json={"inn": organization.inn, "email": factories.unique_email()})
    assert again.status_code == 409 and again.json()["error"]["field"] == "inn"

    nobodys = await factories.create_organization()
    newcomer = factories.unique_email("owner")
    sent = await client.post("/provider/v1/staff/organizations/make-owner", headers=bearer(token), json={"inn": nobodys.inn, "email": newcomer})
    assert sent.status_code == 200 and sent.json()["promoted"] is False and sent.json()["invitation"]["role"] == "OWNER"
    accepted = await accept(gql, token_sent_to(await last_message(newcomer)), fullName="Новый Владелец", password="Pa55word-new")
    assert accepted["userErrors"] == []
    assert (await owner_of(nobodys)).email == newcomer


async def test_the_invite_endpoints_pick_the_customer_beside_a_claim(app, client):
    token = await new_token("staff")
    customer = await factories.create_organization()
    await Organization.create(name="ООО «Заявка»", inn=customer.inn, kind=customer.kind, code=f"T{uuid.uuid4().hex[:10]}",
                              moderation_status=ModerationStatus.PENDING)
    email = factories.unique_email()
    response = await client.post("/provider/v1/staff/organizations/invite", headers=bearer(token),
                                 json={"inn": customer.inn, "email": email, "role": "ADMIN"})
    assert response.status_code == 200, response.text
    assert (await Invite.get(email=email)).organization_id == customer.id


@pytest.mark.parametrize("path", ["/provider/v1/staff/organizations/invite", "/provider/v1/staff/organizations/make-owner"])
async def test_a_token_without_staff_or_none_is_refused(app, client, path):
    organization, _ = await ownerless_team(Role.ADMIN)
    name = f"accounting-{uuid.uuid4().hex[:6]}"
    token = await new_token("catalog:write", "billing:write", "cloud:write", name=name)
    body = {"inn": organization.inn, "email": factories.unique_email(), "role": "ADMIN"}
    refused = await client.post(path, headers=bearer(token), json=body)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "FORBIDDEN", refused.text
    assert await ProviderAction.exists(actor=name, details={"denied": "needs the scope staff"})
    assert (await client.post(path, json=body)).status_code == 401
    assert (await client.post(path, json=body, headers=bearer("kps_" + "x" * 40))).status_code == 401
    assert not await Invite.filter(organization_id=organization.id).exists() and await owner_of(organization) is None


# ---------------------------------------------------------------- the operator at the CLI


async def test_the_operator_invites_and_makes_an_owner_from_the_cli(app, settings, gql):
    organization, team = await ownerless_team(Role.ADMIN)
    email = factories.unique_email("cli")
    out = await kabinet_cli(settings, "staff", "invite", "--inn", organization.inn, "--email", email, "--role", "accountant")
    assert email in out and "ACCOUNTANT" in out
    invite = await Invite.get(email=email)
    assert invite.role == Role.ACCOUNTANT and invite.status == InviteStatus.PENDING
    (action,) = await ProviderAction.filter(action="organization.invite", target=f"INN {organization.inn}")
    assert action.actor_kind == "CLI"
    assert (await AuditEntry.get(organization_id=organization.id, action="invite.create")).details["byStaff"]["kind"] == "CLI"

    assert await kabinet_cli(settings, "staff", "invite", "--inn", organization.inn, "--email", team[Role.ADMIN].email,
                             "--role", "USER", status=1) == "", "a member's address is refused, exit 1"
    assert await kabinet_cli(settings, "staff", "invite", "--inn", organization.inn, "--email", email, "--role", "OWNER", status=2) == ""

    out = await kabinet_cli(settings, "staff", "make-owner", "--inn", organization.inn, "--email", team[Role.ADMIN].email)
    assert "now the OWNER" in out
    assert (await owner_of(organization)).id == team[Role.ADMIN].id
    assert await ProviderAction.exists(action="organization.make_owner", actor_kind="CLI", target=f"INN {organization.inn}")
    assert await kabinet_cli(settings, "staff", "make-owner", "--inn", organization.inn, "--email", factories.unique_email(), status=1) == ""

    accepted = await accept(gql, token_sent_to(await last_message(email)), fullName="Клиева Ольга", password="Pa55word-cli")
    assert accepted["userErrors"] == []
    assert (await Membership.get(organization_id=organization.id, user__email=email)).role == Role.ACCOUNTANT


@pytest.mark.parametrize(("path", "body", "field"), [
    ("invite", {"role": ["USER"], "email": "a@example.com"}, "role"),
    ("invite", {"role": "USER", "email": "a" * 30_000 + "@example.com"}, "email"),
    ("invite", {"role": "USER", "email": {"a": 1}}, "email"),
    ("invite", {"role": "USER", "email": "a\x00b@example.com"}, "email"),
    ("invite", {"role": "USER", "phone": "+7" + "9" * 5000}, "phone"),
    ("invite", {"role": "USER", "email": "a@example.com", "databases": [1, 2]}, "databases"),
    ("invite", {"role": "USER", "email": "a@example.com", "databases": [f"db-{i}" for i in range(101)]}, "databases"),
    ("make-owner", {"phone": ["+79161234567"]}, "phone"),
    ("make-owner", {"email": True}, "email"),
    ("make-owner", {"email": "я" * 20_000}, "email"),
    ("make-owner", {}, "email"),
])
async def test_the_staff_doors_answer_a_wrong_type_or_an_oversized_value_with_a_400_naming_the_field(app, client, path, body, field):
    token = await new_token("staff")
    organization = await factories.create_organization()
    response = await client.post(f"/provider/v1/staff/organizations/{path}", json={"inn": organization.inn, **body}, headers=bearer(token))
    assert response.status_code == 400, response.text
    assert (response.json()["error"]["code"], response.json()["error"]["field"]) == ("INVALID", field), response.text
    assert not await Invite.filter(organization_id=organization.id).exists()
