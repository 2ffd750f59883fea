"""Inviting people into an organization, as the manuals tell it: the letter, the link, accepting."""

from __future__ import annotations

import datetime as dt
import re

from foundation import clock
from resolvers.identity.tokens import hash_opaque_token
from models.audit import AuditEntry
from models.identity import User
from models.identity import RefreshToken
from models.organizations import DatabaseGrant, Invite, InviteStatus, Membership, ModerationStatus, Organization, Role
from models.outbox import Channel, OutboxMessage
from foundation.ids import to_global_id
from tests import factories
from tests.factories import PASSWORD

INVITE = """mutation($input: InviteMemberInput!) { inviteMember(input: $input) {
  invite { id email phone role status expiresAt invitedBy { email } databases { name } }
  userErrors { code field message } } }"""
RESEND = """mutation($id: ID!) { resendInvite(inviteId: $id) { invite { id status expiresAt } userErrors { code field } } }"""
REVOKE = """mutation($id: ID!) { revokeInvite(inviteId: $id) { invite { id status } userErrors { code field } } }"""
ACCEPT = """mutation($input: AcceptInviteInput!) { acceptInvite(input: $input) {
  accessToken refreshToken user { email fullName phone } userErrors { code field message } } }"""
DEFAULT_LINK = "http://127.0.0.1:8000/invite?token="


async def signed_in(gql, user: User) -> str:
    await gql.token_for_password(user.email, PASSWORD)
    return user.email


def org_id(organization) -> str:
    return to_global_id("Organization", organization.id)


async def invite(gql, inviter: User, organization, **fields) -> dict:
    variables = {"input": {"organizationId": org_id(organization), "role": "USER", **fields}}
    body = await gql.execute(INVITE, variables, as_user=await signed_in(gql, inviter))
    assert "errors" not in body, body
    return body["data"]["inviteMember"]


async def sent_invite(gql, inviter: User, organization, **fields) -> tuple[dict, str]:
    """(the invite, the token from its letter or SMS)."""
    payload = await invite(gql, inviter, organization, **fields)
    assert payload["userErrors"] == [], payload
    return payload["invite"], token_sent_to(await last_message(fields.get("email") or fields.get("phone")))


async def last_message(recipient: str, channel: Channel | None = None) -> OutboxMessage:
    query = OutboxMessage.filter(recipient=recipient)
    if channel is not None:
        query = query.filter(channel=channel)
    message = await query.order_by("-created_at").first()
    assert message is not None, f"nothing was sent to {recipient}"
    return message


def token_sent_to(message: OutboxMessage) -> str:
    return re.search(r"/invite\?token=([\w\-]+)", message.body).group(1)


async def accept(gql, token: str, *, as_user: str | None = None, **fields) -> dict:
    """acceptInvite with no Authorization header, or with the access token of `as_user` (an e-mail)."""
    body = await gql.execute(ACCEPT, {"input": {"token": token, **fields}}, as_user=as_user)
    assert "errors" not in body, body
    return body["data"]["acceptInvite"]


def errors(payload: dict) -> list[tuple[str, list[str] | None]]:
    return [(e["code"], e["field"]) for e in payload["userErrors"]]


# ---------------------------------------------------------------------------------------- inviting


async def test_an_owner_invites_an_accountant_by_email_and_the_letter_names_everything(gql):
    organization, team = await factories.create_team()
    email = factories.unique_email("buh")
    payload = await invite(gql, team[Role.OWNER], organization, email=email, role="ACCOUNTANT")
    assert payload["userErrors"] == []
    created = payload["invite"]
    assert (created["email"], created["role"], created["status"]) == (email, "ACCOUNTANT", "PENDING")
    assert created["invitedBy"]["email"] == team[Role.OWNER].email
    expires = dt.datetime.fromisoformat(created["expiresAt"])
    assert dt.timedelta(days=6, hours=23) < expires - dt.datetime.now(dt.timezone.utc) <= dt.timedelta(days=7)
    letter = await last_message(email)
    assert letter.channel == Channel.EMAIL and letter.subject == "Подтверждение приглашения в сервис"
    assert organization.name in letter.body and organization.code in letter.body
    assert "Бухгалтер абонента" in letter.body
    assert DEFAULT_LINK in letter.body


async def test_the_invite_token_is_stored_only_as_its_hash(gql):
    organization, team = await factories.create_team()
    created, token = await sent_invite(gql, team[Role.OWNER], organization, email=factories.unique_email())
    row = await Invite.get(email=created["email"])
    assert row.token_hash == hash_opaque_token(token) and token not in row.token_hash


async def test_an_admin_invites_a_user_to_two_databases_and_the_letter_lists_them(gql):
    organization, team = await factories.create_team(Role.ADMIN)
    buh = await factories.create_database(organization, name="Бухгалтерия")
    zup = await factories.create_database(organization, name="Зарплата")
    email = factories.unique_email()
    payload = await invite(
        gql, team[Role.ADMIN], organization, email=email,
        databaseIds=[to_global_id("Database", buh.id), to_global_id("Database", zup.id)],
    )
    assert payload["userErrors"] == []
    assert sorted(d["name"] for d in payload["invite"]["databases"]) == ["Бухгалтерия", "Зарплата"]
    body = (await last_message(email)).body
    assert "Бухгалтерия" in body and "Зарплата" in body and "Пользователь абонента" in body


async def test_an_address_that_already_has_an_account_gets_added_to_the_subscriber_letter(gql):
    organization, team = await factories.create_team()
    someone = await factories.create_user()
    await invite(gql, team[Role.OWNER], organization, email=someone.email.upper())
    letter = await last_message(someone.email)
    assert letter.subject == "Добавление к абоненту"
    assert organization.name in letter.body and DEFAULT_LINK in letter.body


async def test_an_invite_with_an_e_mail_and_a_phone_sends_the_link_by_e_mail_and_tells_the_phone(gql):
    """The link goes by e-mail only: following it proves the e-mail (resolvers/identity/addresses.py), which
    it could not if it had also gone to a phone someone else may hold."""
    organization, team = await factories.create_team()
    phone, email = factories.unique_phone(), factories.unique_email()
    payload = await invite(gql, team[Role.OWNER], organization, email=email, phone=phone)
    assert payload["userErrors"] == [] and payload["invite"]["phone"] == phone
    sms = await last_message(phone, Channel.SMS)
    assert DEFAULT_LINK not in sms.body and organization.code in sms.body and email[:1] + "***@example.com" in sms.body
    assert DEFAULT_LINK in (await last_message(email)).body


async def test_an_invite_by_phone_alone_is_fine(gql):
    organization, team = await factories.create_team()
    phone = factories.unique_phone()
    payload = await invite(gql, team[Role.OWNER], organization, phone=phone)
    assert payload["userErrors"] == [] and payload["invite"]["email"] is None
    assert not await OutboxMessage.filter(recipient=phone, channel=Channel.EMAIL).exists()


async def test_an_invite_without_email_or_phone_is_invalid(gql):
    organization, team = await factories.create_team()
    assert errors(await invite(gql, team[Role.OWNER], organization)) == [("INVALID", ["input", "email"])]


async def test_a_malformed_email_or_phone_is_invalid_on_its_field(gql):
    organization, team = await factories.create_team()
    owner = team[Role.OWNER]
    assert errors(await invite(gql, owner, organization, email="not-an-email")) == [("INVALID", ["input", "email"])]
    assert errors(await invite(gql, owner, organization, phone="12345")) == [("INVALID", ["input", "phone"])]


async def test_nobody_is_invited_as_the_owner(gql):
    organization, team = await factories.create_team()
    payload = await invite(gql, team[Role.OWNER], organization, email=factories.unique_email(), role="OWNER")
    assert errors(payload) == [("INVALID", ["input", "role"])]


async def test_a_database_of_another_organization_is_not_found(gql):
    organization, team = await factories.create_team()
    other, _ = await factories.create_team()
    foreign = await factories.create_database(other)
    payload = await invite(
        gql, team[Role.OWNER], organization, email=factories.unique_email(),
        databaseIds=[to_global_id("Database", foreign.id)],
    )
    assert errors(payload) == [("NOT_FOUND", ["input", "databaseIds"])]
    assert not await Invite.filter(organization_id=organization.id).exists(), "nothing was changed"


async def test_inviting_someone_who_is_already_a_member_is_a_conflict(gql):
    organization, team = await factories.create_team(Role.ACCOUNTANT)
    payload = await invite(gql, team[Role.OWNER], organization, email=team[Role.ACCOUNTANT].email)
    assert errors(payload) == [("CONFLICT", ["input", "email"])]


async def test_an_email_and_a_phone_of_two_different_accounts_are_sent_an_invite_refused_on_accepting(gql):
    """Inviting tells the inviter nothing about accounts; accepting decides, and refuses."""
    organization, team = await factories.create_team()
    first = await factories.create_user()
    second = await factories.create_user(phone=factories.unique_phone())
    created, token = await sent_invite(gql, team[Role.OWNER], organization, email=first.email, phone=second.phone)
    assert created["status"] == "PENDING"
    for who in (None, first.email, second.email):
        if who:
            await signed_in(gql, await User.get(email=who))
        payload = await accept(gql, token, as_user=who)
        assert errors(payload) == [("INVALID", ["input", "token"])] and payload["accessToken"] is None
    assert "one of them" in payload["userErrors"][0]["message"]
    assert not await Membership.filter(organization_id=organization.id, user_id__in=[first.id, second.id]).exists()
    assert (await Invite.get(id=created_invite_pk(created))).status == InviteStatus.PENDING


def created_invite_pk(created: dict):
    from foundation.ids import pk_of

    return pk_of(created["id"], "Invite")


async def test_the_letter_depends_only_on_the_e_mails_own_account_never_on_the_phones(gql):
    """The inviter's own mailbox must not learn that the invited phone has an account."""
    organization, team = await factories.create_team()
    phone_owner = await factories.create_user(phone=factories.unique_phone())
    email = factories.unique_email("inviter-own")
    payload = await invite(gql, team[Role.OWNER], organization, email=email, phone=phone_owner.phone)
    assert payload["userErrors"] == []
    assert (await last_message(email)).subject == "Подтверждение приглашения в сервис"


async def test_a_pending_organization_cannot_invite(gql):
    organization, team = await factories.create_team(Role.ADMIN)
    await Organization.filter(id=organization.id).update(moderation_status=ModerationStatus.PENDING)
    email = factories.unique_email()
    for inviter in (team[Role.OWNER], team[Role.ADMIN]):
        payload = await invite(gql, inviter, organization, email=email)
        assert errors(payload) == [("INVALID", ["input", "organizationId"])] and payload["invite"] is None
        assert "moderation" in payload["userErrors"][0]["message"]
    assert not await Invite.filter(organization_id=organization.id).exists()
    assert not await OutboxMessage.exists(recipient=email)


async def test_a_rejected_organization_cannot_invite(gql):
    organization, team = await factories.create_team()
    await Organization.filter(id=organization.id).update(moderation_status=ModerationStatus.REJECTED)
    payload = await invite(gql, team[Role.OWNER], organization, email=factories.unique_email())
    assert errors(payload) == [("INVALID", ["input", "organizationId"])]
    assert not await Invite.filter(organization_id=organization.id).exists()


async def test_a_pending_organization_cannot_resend_an_invite_or_have_one_accepted(gql):
    """An invitation sent before the organization went back to moderation brings nobody in meanwhile."""
    organization, team = await factories.create_team()
    email = factories.unique_email()
    created, token = await sent_invite(gql, team[Role.OWNER], organization, email=email)
    await Organization.filter(id=organization.id).update(moderation_status=ModerationStatus.PENDING)
    body = await gql.execute(RESEND, {"id": created["id"]}, as_user=team[Role.OWNER].email)
    assert errors(body["data"]["resendInvite"]) == [("INVALID", ["inviteId"])]
    assert errors(await accept(gql, token, fullName="Иван", password="long-password")) == [("INVALID", ["input", "token"])]
    assert not await User.exists(email=email)
    await Organization.filter(id=organization.id).update(moderation_status=ModerationStatus.APPROVED)
    assert (await accept(gql, token, fullName="Иван", password="long-password"))["userErrors"] == [], "the link still works"


async def test_inviting_the_same_address_again_replaces_the_pending_invite(gql):
    organization, team = await factories.create_team()
    email = factories.unique_email()
    first, old_token = await sent_invite(gql, team[Role.OWNER], organization, email=email)
    second, new_token = await sent_invite(gql, team[Role.OWNER], organization, email=email, role="ACCOUNTANT")
    assert (await Invite.get(email=email, status=InviteStatus.REVOKED)).role == Role.USER
    assert await Invite.filter(email=email, status=InviteStatus.PENDING).count() == 1
    assert errors(await accept(gql, old_token, fullName="Иван", password="long-password")) == [("INVALID", ["input", "token"])]
    assert (await accept(gql, new_token, fullName="Иван", password="long-password"))["userErrors"] == []


async def test_an_accountant_may_not_invite(gql):
    organization, team = await factories.create_team(Role.ACCOUNTANT)
    payload = await invite(gql, team[Role.ACCOUNTANT], organization, email=factories.unique_email())
    assert errors(payload) == [("FORBIDDEN", None)]


async def test_a_user_may_not_invite(gql):
    organization, team = await factories.create_team(Role.USER)
    payload = await invite(gql, team[Role.USER], organization, email=factories.unique_email())
    assert errors(payload) == [("FORBIDDEN", None)]


async def test_an_owner_of_another_organization_cannot_invite_into_this_one(gql):
    organization, _ = await factories.create_team()
    _, stranger = await factories.create_team()
    payload = await invite(gql, stranger[Role.OWNER], organization, email=factories.unique_email())
    assert errors(payload) == [("NOT_FOUND", ["input", "organizationId"])]


async def test_inviting_needs_a_signed_in_caller(gql):
    organization, _ = await factories.create_team()
    body = await gql.execute(INVITE, {"input": {"organizationId": org_id(organization), "role": "USER", "email": "x@y.ru"}})
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_an_invite_is_audited(gql):
    organization, team = await factories.create_team()
    created, _ = await sent_invite(gql, team[Role.OWNER], organization, email=factories.unique_email())
    entry = await AuditEntry.get(organization_id=organization.id, action="invite.create")
    assert entry.actor_id == team[Role.OWNER].id and entry.details["email"] == created["email"]
    assert entry.details["role"] == "USER"


# ---------------------------------------------------------------------------------------- resending


async def test_resending_an_invite_sends_a_new_link_and_the_old_one_stops_working(gql):
    organization, team = await factories.create_team()
    email = factories.unique_email()
    created, old_token = await sent_invite(gql, team[Role.OWNER], organization, email=email)
    await Invite.filter(email=email).update(expires_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1))
    body = await gql.execute(RESEND, {"id": created["id"]}, as_user=team[Role.OWNER].email)
    payload = body["data"]["resendInvite"]
    assert payload["userErrors"] == [] and payload["invite"]["status"] == "PENDING"
    assert dt.datetime.fromisoformat(payload["invite"]["expiresAt"]) > dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=6)
    new_token = token_sent_to(await last_message(email))
    assert new_token != old_token
    assert errors(await accept(gql, old_token, fullName="Иван", password="long-password")) == [("INVALID", ["input", "token"])]
    assert (await accept(gql, new_token, fullName="Иван", password="long-password"))["userErrors"] == []


async def test_a_revoked_invite_is_not_resent(gql):
    organization, team = await factories.create_team()
    created, _ = await sent_invite(gql, team[Role.OWNER], organization, email=factories.unique_email())
    await gql.execute(REVOKE, {"id": created["id"]}, as_user=team[Role.OWNER].email)
    body = await gql.execute(RESEND, {"id": created["id"]}, as_user=team[Role.OWNER].email)
    assert errors(body["data"]["resendInvite"]) == [("INVALID", ["inviteId"])]


async def test_an_accountant_may_not_resend_an_invite(gql):
    organization, team = await factories.create_team(Role.ACCOUNTANT)
    created, _ = await sent_invite(gql, team[Role.OWNER], organization, email=factories.unique_email())
    body = await gql.execute(RESEND, {"id": created["id"]}, as_user=await signed_in(gql, team[Role.ACCOUNTANT]))
    assert errors(body["data"]["resendInvite"]) == [("FORBIDDEN", None)]


async def test_an_invite_of_another_organization_is_not_found_for_resending(gql):
    organization, team = await factories.create_team()
    _, stranger = await factories.create_team()
    created, _ = await sent_invite(gql, team[Role.OWNER], organization, email=factories.unique_email())
    body = await gql.execute(RESEND, {"id": created["id"]}, as_user=await signed_in(gql, stranger[Role.OWNER]))
    assert errors(body["data"]["resendInvite"]) == [("NOT_FOUND", ["inviteId"])]


# ---------------------------------------------------------------------------------------- revoking


async def test_an_admin_revokes_a_pending_invite_and_its_link_stops_working(gql):
    organization, team = await factories.create_team(Role.ADMIN)
    created, token = await sent_invite(gql, team[Role.OWNER], organization, email=factories.unique_email())
    body = await gql.execute(REVOKE, {"id": created["id"]}, as_user=await signed_in(gql, team[Role.ADMIN]))
    assert body["data"]["revokeInvite"] == {"invite": {"id": created["id"], "status": "REVOKED"}, "userErrors": []}
    assert errors(await accept(gql, token, fullName="Иван", password="long-password")) == [("INVALID", ["input", "token"])]
    assert await AuditEntry.exists(organization_id=organization.id, action="invite.revoke", actor_id=team[Role.ADMIN].id)


async def test_an_accepted_invite_cannot_be_revoked(gql):
    organization, team = await factories.create_team()
    created, token = await sent_invite(gql, team[Role.OWNER], organization, email=factories.unique_email())
    await accept(gql, token, fullName="Иван", password="long-password")
    body = await gql.execute(REVOKE, {"id": created["id"]}, as_user=team[Role.OWNER].email)
    assert errors(body["data"]["revokeInvite"]) == [("INVALID", ["inviteId"])]


async def test_an_expired_invite_cannot_be_revoked(gql):
    organization, team = await factories.create_team()
    created, _ = await sent_invite(gql, team[Role.OWNER], organization, email=(email := factories.unique_email()))
    await Invite.filter(email=email).update(expires_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=1))
    body = await gql.execute(REVOKE, {"id": created["id"]}, as_user=team[Role.OWNER].email)
    assert errors(body["data"]["revokeInvite"]) == [("INVALID", ["inviteId"])]


INVITES = """query($org: ID!, $status: InviteStatus) { organization(id: $org) {
  invites(first: 10, status: $status) { edges { node { email status } } } } }"""


async def test_an_invite_is_expired_after_seven_days_alike_in_its_status_the_filter_and_its_link(gql):
    """One rule (resolvers/organizations/invitations.py) read by the field, the list's filter and acceptInvite."""
    organization, team = await factories.create_team()
    owner, email = team[Role.OWNER], factories.unique_email()

    async def listed(status: str | None) -> list[tuple[str, str]]:
        body = await gql.execute(INVITES, {"org": org_id(organization), "status": status}, as_user=await signed_in(gql, owner))
        assert "errors" not in body, body
        return [(e["node"]["email"], e["node"]["status"]) for e in body["data"]["organization"]["invites"]["edges"]]

    with clock.advanced(-dt.timedelta(days=7, minutes=1)):  # sent a week and a minute ago
        _, token = await sent_invite(gql, owner, organization, email=email)
        assert await listed(None) == await listed("PENDING") == [(email, "PENDING")]
        assert await listed("EXPIRED") == []
    assert await listed(None) == await listed("EXPIRED") == [(email, "EXPIRED")]
    assert await listed("PENDING") == []
    assert errors(await accept(gql, token, fullName="Иван", password="long-password")) == [("EXPIRED", ["input", "token"])]
    assert (await Invite.get(email=email)).status == InviteStatus.PENDING, "the row is not rewritten: it is read as EXPIRED"


async def test_an_accountant_may_not_revoke_an_invite(gql):
    organization, team = await factories.create_team(Role.ACCOUNTANT)
    created, _ = await sent_invite(gql, team[Role.OWNER], organization, email=factories.unique_email())
    body = await gql.execute(REVOKE, {"id": created["id"]}, as_user=await signed_in(gql, team[Role.ACCOUNTANT]))
    assert errors(body["data"]["revokeInvite"]) == [("FORBIDDEN", None)]


async def test_a_user_may_not_revoke_an_invite(gql):
    organization, team = await factories.create_team(Role.USER)
    created, _ = await sent_invite(gql, team[Role.OWNER], organization, email=factories.unique_email())
    body = await gql.execute(REVOKE, {"id": created["id"]}, as_user=await signed_in(gql, team[Role.USER]))
    assert errors(body["data"]["revokeInvite"]) == [("FORBIDDEN", None)]


async def test_an_invite_of_another_organization_is_not_found_for_revoking(gql):
    organization, team = await factories.create_team()
    _, stranger = await factories.create_team()
    created, _ = await sent_invite(gql, team[Role.OWNER], organization, email=factories.unique_email())
    body = await gql.execute(REVOKE, {"id": created["id"]}, as_user=await signed_in(gql, stranger[Role.OWNER]))
    assert errors(body["data"]["revokeInvite"]) == [("NOT_FOUND", ["inviteId"])]
    assert (await Invite.get(email=created["email"])).status == InviteStatus.PENDING


# ---------------------------------------------------------------------------------------- accepting


async def test_a_new_person_accepts_sets_name_and_password_and_is_signed_in_at_once(gql, client):
    organization, team = await factories.create_team()
    database = await factories.create_database(organization, name="Торговля")
    email = factories.unique_email("new")
    _, token = await sent_invite(
        gql, team[Role.OWNER], organization, email=email, databaseIds=[to_global_id("Database", database.id)]
    )
    payload = await accept(gql, token, fullName="Иванов Иван Иванович", password="a-good-password")
    assert payload["userErrors"] == [] and payload["accessToken"] and payload["refreshToken"]
    assert payload["user"] == {"email": email, "fullName": "Иванов Иван Иванович", "phone": None}
    response = await client.post(
        "/graphql", json={"query": "{ me { memberships { role organization { name databases { edges { node { name } } } } } } }"},
        headers={"Authorization": f"Bearer {payload['accessToken']}"},
    )
    (membership,) = response.json()["data"]["me"]["memberships"]
    assert membership["role"] == "USER" and membership["organization"]["name"] == organization.name
    assert [e["node"]["name"] for e in membership["organization"]["databases"]["edges"]] == ["Торговля"]
    user = await User.get(email=email)
    assert user.email_verified and user.is_active
    assert (await Invite.get(email=email)).status == InviteStatus.ACCEPTED
    await gql.token_for_password(email, "a-good-password")


async def test_a_new_person_may_give_a_phone_when_accepting(gql):
    organization, team = await factories.create_team()
    email, phone = factories.unique_email(), factories.unique_phone()
    _, token = await sent_invite(gql, team[Role.OWNER], organization, email=email)
    payload = await accept(gql, token, fullName="Пётр", password="a-good-password", phone=phone)
    # the link proved the e-mail; the phone typed here is given, not proven: no login yet
    assert payload["userErrors"] == [] and payload["user"]["phone"] is None
    assert (await User.get(email=email)).unproven_phone == phone


async def test_a_phone_that_belongs_to_another_account_is_a_conflict_when_accepting(gql):
    organization, team = await factories.create_team()
    taken = await factories.create_user(phone=factories.unique_phone())
    _, token = await sent_invite(gql, team[Role.OWNER], organization, email=factories.unique_email())
    payload = await accept(gql, token, fullName="Пётр", password="a-good-password", phone=taken.phone)
    assert errors(payload) == [("CONFLICT", ["input", "phone"])]


async def test_an_unconfirmed_sign_up_does_not_hold_back_the_phone_given_when_accepting(gql):
    organization, team = await factories.create_team()
    pending = await factories.create_pending_sign_up(factories.unique_email(), factories.unique_phone())
    email = factories.unique_email()
    _, token = await sent_invite(gql, team[Role.OWNER], organization, email=email)
    payload = await accept(gql, token, fullName="Пётр", password="a-good-password", phone=pending.unproven_phone)
    assert payload["userErrors"] == []
    assert (await User.get(email=email)).unproven_phone == pending.unproven_phone
    assert await User.exists(id=pending.id), "neither holds it: whoever proves it first has it"


async def test_a_new_person_must_give_a_full_name(gql):
    organization, team = await factories.create_team()
    _, token = await sent_invite(gql, team[Role.OWNER], organization, email=factories.unique_email())
    assert errors(await accept(gql, token, password="a-good-password")) == [("INVALID", ["input", "fullName"])]


async def test_a_new_person_must_give_a_long_enough_password(gql):
    organization, team = await factories.create_team()
    _, token = await sent_invite(gql, team[Role.OWNER], organization, email=factories.unique_email())
    assert errors(await accept(gql, token, fullName="Иван", password="short")) == [("INVALID", ["input", "password"])]
    assert (await accept(gql, token, fullName="Иван", password="long-enough"))["userErrors"] == [], "the token survived"


async def test_an_existing_user_signed_in_accepts_joins_a_second_organization_and_gets_no_new_tokens(gql):
    first, _ = await factories.create_team()
    someone = await factories.create_user()
    await factories.add_member(first, someone, Role.USER)
    organization, team = await factories.create_team()
    _, token = await sent_invite(gql, team[Role.OWNER], organization, email=someone.email, role="ADMIN")
    who = await signed_in(gql, someone)
    logins_before = await RefreshToken.filter(user_id=someone.id).count()
    body = await gql.execute(
        "mutation($input: AcceptInviteInput!) { acceptInvite(input: $input) { accessToken refreshToken "
        "accessTokenExpiresAt user { fullName memberships { role organization { name } } } userErrors { code } } }",
        {"input": {"token": token, "fullName": "Ignored", "password": "ignored-password"}}, as_user=who,
    )
    payload = body["data"]["acceptInvite"]
    assert payload["userErrors"] == [] and (payload["accessToken"], payload["refreshToken"], payload["accessTokenExpiresAt"]) == (None, None, None)
    assert payload["user"]["fullName"] == someone.full_name
    assert {"role": "ADMIN", "organization": {"name": organization.name}} in payload["user"]["memberships"]
    roles = {m.organization_id: m.role for m in await Membership.filter(user_id=someone.id)}
    assert roles == {first.id: Role.USER, organization.id: Role.ADMIN}
    assert await RefreshToken.filter(user_id=someone.id).count() == logins_before, "no new login was started"
    await gql.token_for_password(someone.email, PASSWORD)


async def test_an_invite_by_phone_is_accepted_by_the_account_with_that_phone_signed_in(gql):
    organization, team = await factories.create_team()
    someone = await factories.create_user(phone=factories.unique_phone())
    _, token = await sent_invite(gql, team[Role.OWNER], organization, phone=someone.phone)
    payload = await accept(gql, token, as_user=await signed_in(gql, someone))
    assert payload["userErrors"] == [] and payload["user"]["email"] == someone.email and payload["accessToken"] is None
    assert await Membership.exists(organization_id=organization.id, user_id=someone.id)


async def refused_takeover(gql, organization, token: str, victim: User, *, as_user: str | None = None) -> None:
    """The invitation was refused without a token or a membership, and still works."""
    payload = await accept(gql, token, as_user=as_user, fullName="Злоумышленник", password="attacker-password")
    assert errors(payload) == [("FORBIDDEN", None)]
    assert "sign in" in payload["userErrors"][0]["message"]
    assert (payload["accessToken"], payload["refreshToken"], payload["user"]) == (None, None, None)
    assert not await Membership.exists(organization_id=organization.id, user_id=victim.id)
    assert (await Invite.get(token_hash=hash_opaque_token(token))).status == InviteStatus.PENDING
    assert not await AuditEntry.exists(organization_id=organization.id, action="invite.accept")


async def test_an_invite_to_an_existing_account_without_its_token_signs_nobody_in(gql):
    organization, team = await factories.create_team()
    victim = await factories.create_user(phone=factories.unique_phone())
    logins_before = await RefreshToken.filter(user_id=victim.id).count()
    _, token = await sent_invite(gql, team[Role.OWNER], organization, phone=victim.phone)
    await refused_takeover(gql, organization, token, victim)
    assert await RefreshToken.filter(user_id=victim.id).count() == logins_before
    assert (await User.get(id=victim.id)).password_hash == victim.password_hash
    payload = await accept(gql, token, as_user=await signed_in(gql, victim))
    assert payload["userErrors"] == [], "the rightful person accepts the same link after signing in"


async def test_an_invite_to_an_existing_account_accepted_as_another_user_is_refused(gql):
    organization, team = await factories.create_team()
    victim, intruder = await factories.create_user(), await factories.create_user()
    _, token = await sent_invite(gql, team[Role.OWNER], organization, email=victim.email)
    await refused_takeover(gql, organization, token, victim, as_user=await signed_in(gql, intruder))
    assert not await Membership.exists(organization_id=organization.id, user_id=intruder.id)


async def test_the_reported_takeover_of_a_demo_account_by_its_phone_fails(gql):
    """Issue 10: owner@vasilek.example invites evil@attacker.example with user@romashka.example's phone,
    and accepts with the link's token and no Authorization: no token, no membership, the link stays."""
    vasilek = await Organization.get(inn="771234567859")
    victim = await User.get(email="user@romashka.example")
    assert victim.phone == "+79161234504"
    body = await gql.execute(INVITE, {"input": {
        "organizationId": org_id(vasilek), "role": "USER", "email": "evil@attacker.example", "phone": "+79161234504",
    }}, as_user="owner@vasilek.example")  # a demo user: the demo password
    created = body["data"]["inviteMember"]["invite"]
    token = token_sent_to(await last_message("evil@attacker.example"))
    try:
        assert (await last_message("evil@attacker.example")).subject == "Подтверждение приглашения в сервис"
        logins_before = await RefreshToken.filter(user_id=victim.id).count()
        response = await gql.http.post("/graphql", json={"query": ACCEPT, "variables": {"input": {
            "token": token, "fullName": "Evil", "password": "evil-password"}}})
        payload = response.json()["data"]["acceptInvite"]
        assert errors(payload) == [("INVALID", ["input", "token"])]
        assert (payload["accessToken"], payload["refreshToken"], payload["user"]) == (None, None, None)
        assert not await Membership.exists(organization_id=vasilek.id, user_id=victim.id)
        assert await RefreshToken.filter(user_id=victim.id).count() == logins_before
        assert not await User.exists(email="evil@attacker.example")
        assert (await Invite.get(token_hash=hash_opaque_token(token))).status == InviteStatus.PENDING
    finally:  # the demo data set stays as it was
        await gql.execute(REVOKE, {"id": created["id"]}, as_user="owner@vasilek.example")


async def test_an_invite_whose_phone_got_an_account_after_it_was_sent_is_refused(gql):
    """Decided when accepting: a phone of nobody then, of an account now, with an e-mail of nobody."""
    organization, team = await factories.create_team()
    email, phone = factories.unique_email(), factories.unique_phone()
    _, token = await sent_invite(gql, team[Role.OWNER], organization, email=email, phone=phone)
    await factories.create_user(phone=phone)
    payload = await accept(gql, token, fullName="Пётр", password="a-good-password")
    assert errors(payload) == [("INVALID", ["input", "token"])] and payload["accessToken"] is None
    assert not await User.exists(email=email)
    assert (await Invite.get(email=email)).status == InviteStatus.PENDING


async def test_an_unknown_token_is_invalid(gql):
    assert errors(await accept(gql, "no-such-token", fullName="Иван", password="long-password")) == [("INVALID", ["input", "token"])]


async def test_a_used_token_is_invalid(gql):
    organization, team = await factories.create_team()
    _, token = await sent_invite(gql, team[Role.OWNER], organization, email=factories.unique_email())
    assert (await accept(gql, token, fullName="Иван", password="long-password"))["userErrors"] == []
    assert errors(await accept(gql, token, fullName="Иван", password="long-password")) == [("INVALID", ["input", "token"])]


async def test_an_expired_token_is_expired(gql):
    organization, team = await factories.create_team()
    email = factories.unique_email()
    _, token = await sent_invite(gql, team[Role.OWNER], organization, email=email)
    await Invite.filter(email=email).update(expires_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1))
    assert errors(await accept(gql, token, fullName="Иван", password="long-password")) == [("EXPIRED", ["input", "token"])]
    assert not await User.exists(email=email)


async def test_accepting_when_already_a_member_meanwhile_is_a_conflict(gql):
    organization, team = await factories.create_team()
    someone = await factories.create_user()
    _, token = await sent_invite(gql, team[Role.OWNER], organization, email=someone.email)
    await factories.add_member(organization, someone, Role.ACCOUNTANT)
    assert errors(await accept(gql, token, as_user=await signed_in(gql, someone))) == [("CONFLICT", ["input", "token"])]
    assert (await Invite.get(email=someone.email)).status == InviteStatus.PENDING, "nothing was changed"


async def test_accepting_grants_the_invites_databases(gql):
    organization, team = await factories.create_team()
    database = await factories.create_database(organization)
    email = factories.unique_email()
    _, token = await sent_invite(
        gql, team[Role.OWNER], organization, email=email, databaseIds=[to_global_id("Database", database.id)]
    )
    await accept(gql, token, fullName="Иван", password="long-password")
    membership = await Membership.get(user__email=email, organization_id=organization.id)
    assert await DatabaseGrant.filter(membership_id=membership.id).values_list("database_id", flat=True) == [database.id]


async def test_accepting_is_audited_with_the_newcomer_as_the_actor(gql):
    organization, team = await factories.create_team()
    email = factories.unique_email()
    _, token = await sent_invite(gql, team[Role.OWNER], organization, email=email)
    await accept(gql, token, fullName="Иван", password="long-password")
    entry = await AuditEntry.get(organization_id=organization.id, action="invite.accept")
    assert entry.actor_id == (await User.get(email=email)).id


async def test_an_unfinished_sign_up_at_the_address_is_taken_over_by_the_invitee(gql):
    organization, team = await factories.create_team()
    squatter = await factories.create_pending_sign_up(factories.unique_email(), factories.unique_phone())
    squatter.email = squatter.unproven_email  # the address in question, for the assertions below
    _, token = await sent_invite(gql, team[Role.OWNER], organization, email=squatter.email)
    assert (await last_message(squatter.email)).subject == "Подтверждение приглашения в сервис"
    payload = await accept(gql, token, fullName="Настоящий Владелец Адреса", password="the-real-password")
    assert payload["userErrors"] == [] and payload["user"]["fullName"] == "Настоящий Владелец Адреса"
    assert payload["accessToken"], "a new account is signed in at once"
    assert not await User.exists(id=squatter.id), "the unconfirmed sign-up is gone"
    user = await User.get(email=squatter.email)
    assert user.is_active and user.email_verified and user.phone is None
    await gql.token_for_password(squatter.email, "the-real-password")


async def test_an_invited_phone_held_by_an_unconfirmed_sign_up_goes_to_the_invitee(gql):
    """Between the invite and its acceptance two sign-ups were started and never confirmed, one
    with the invited e-mail, one with the invited phone: the link proves the e-mail (the invitee
    gets it, that sign-up is gone); the phone beside it stays given, not proven, on both."""
    organization, team = await factories.create_team()
    email, phone = factories.unique_email(), factories.unique_phone()
    _, token = await sent_invite(gql, team[Role.OWNER], organization, email=email, phone=phone)
    by_email = await factories.create_pending_sign_up(email, factories.unique_phone())
    by_phone = await factories.create_pending_sign_up(factories.unique_email(), phone)
    payload = await accept(gql, token, fullName="Пётр", password="a-good-password")
    assert payload["userErrors"] == [] and payload["user"] == {"email": email, "fullName": "Пётр", "phone": None}
    assert (await User.get(email=email)).unproven_phone == phone
    assert not await User.exists(id=by_email.id) and await User.exists(id=by_phone.id)


async def test_an_invited_phone_whose_account_was_confirmed_meanwhile_is_refused_even_to_that_account(gql):
    """The invited e-mail has only an unconfirmed sign-up (nobody), the invited phone a confirmed
    account: an account and nobody, refused whoever accepts (the link may have come by e-mail)."""
    organization, team = await factories.create_team()
    email, phone = factories.unique_email(), factories.unique_phone()
    _, token = await sent_invite(gql, team[Role.OWNER], organization, email=email, phone=phone)
    pending = await factories.create_user(email)
    await User.filter(id=pending.id).update(is_active=False)
    owner_of_phone = await factories.create_user(phone=phone)
    for who in (None, await signed_in(gql, owner_of_phone)):
        payload = await accept(gql, token, as_user=who, fullName="Пётр", password="a-good-password")
        assert errors(payload) == [("INVALID", ["input", "token"])]
    assert not await Membership.exists(organization_id=organization.id, user_id=owner_of_phone.id)
    assert await User.exists(id=pending.id, is_active=False), "nothing was changed"
