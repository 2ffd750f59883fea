"""People (issue 20): job titles, names, a phone changed only by the member's own code, and a member the
owner creates with a login and a generated password (an invitation accepted by signing in)."""

from __future__ import annotations

import re

from models.audit import AuditEntry
from models.identity import User
from models.organizations import Invite, InviteStatus, Membership, Role
from models.outbox import Channel, OutboxMessage
from foundation.ids import to_global_id
from tests import factories
from tests.test_members import errors, membership_id, run

UPDATE = """mutation($m: ID!, $n: String, $t: String) { updateMember(membershipId: $m, fullName: $n, jobTitle: $t) {
  membership { jobTitle position user { fullName } } userErrors { code field message } } }"""
REQUEST_PHONE = """mutation($p: String!, $m: ID) { requestPhoneChange(phone: $p, membershipId: $m) {
  sentTo expiresAt userErrors { code field message } } }"""
CONFIRM_PHONE = """mutation($c: String!) { confirmPhoneChange(code: $c) { user { phone } userErrors { code field message } } }"""
CREATE = """mutation($i: CreateMemberInput!) { createMember(input: $i) {
  invite { id status email phone role } userErrors { code field message } } }"""
LOGIN = """mutation($l: String!, $p: String!) { login(input: {login: $l, password: $p}) {
  accessToken mustChangePassword user { fullName email } userErrors { code field message } } }"""
CHANGE_PASSWORD = """mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) {
  accessToken mustChangePassword userErrors { code field message } } }"""
REVOKE = """mutation($i: ID!) { revokeInvite(inviteId: $i) { invite { status } userErrors { code field } } }"""
MY_ORGANIZATIONS = """{ me { memberships { role jobTitle organization { name } } } }"""


async def post(gql, query: str, variables: dict, token: str | None = None) -> dict:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await gql.http.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    return response.json()


async def last_message(recipient: str, channel: Channel) -> OutboxMessage:
    return await OutboxMessage.filter(recipient=recipient, channel=channel).order_by("-created_at").first()


# ---------------------------------------------------------------------------------------- job title and name


async def test_an_owner_sets_a_members_job_title_and_name(gql):
    organization, team = await factories.create_team(Role.USER)
    member = team[Role.USER]
    payload = await run(gql, UPDATE, {"m": await membership_id(organization, member), "n": "Петров Пётр", "t": " Главный бухгалтер "}, team[Role.OWNER])
    assert payload["userErrors"] == []
    assert payload["membership"] == {"jobTitle": "Главный бухгалтер", "position": "Главный бухгалтер", "user": {"fullName": "Петров Пётр"}}
    entry = await AuditEntry.get(organization_id=organization.id, action="member.update")
    assert entry.details["fullName"]["to"] == "Петров Пётр" and entry.details["jobTitle"]["to"] == "Главный бухгалтер"
    cleared = await run(gql, UPDATE, {"m": await membership_id(organization, member), "t": ""}, team[Role.OWNER])
    assert cleared["membership"]["jobTitle"] is None


async def test_a_member_sets_their_own_job_title_and_name_but_nobody_elses(gql):
    organization, team = await factories.create_team(Role.ADMIN, Role.USER, Role.ACCOUNTANT)
    user = team[Role.USER]
    own = await run(gql, UPDATE, {"m": await membership_id(organization, user), "t": "Кладовщик", "n": "Иванов И."}, user)
    assert own["userErrors"] == [] and own["membership"]["jobTitle"] == "Кладовщик"
    other = await run(gql, UPDATE, {"m": await membership_id(organization, team[Role.ACCOUNTANT]), "t": "Директор"}, user)
    assert errors(other) == [("FORBIDDEN", None)]
    accountant = await run(gql, UPDATE, {"m": await membership_id(organization, user), "t": "Директор"}, team[Role.ACCOUNTANT])
    assert errors(accountant) == [("FORBIDDEN", None)]
    body = await gql.execute(MY_ORGANIZATIONS, as_user=user.email)
    assert body["data"]["me"]["memberships"][0]["jobTitle"] == "Кладовщик"


async def test_an_admin_never_touches_the_owner_and_titles_are_bounded(gql):
    organization, team = await factories.create_team(Role.ADMIN)
    owner_membership = await membership_id(organization, team[Role.OWNER])
    refused = await run(gql, UPDATE, {"m": owner_membership, "t": "Никто"}, team[Role.ADMIN])
    assert errors(refused) == [("FORBIDDEN", None)]
    too_long = await run(gql, UPDATE, {"m": owner_membership, "t": "x" * 101}, team[Role.OWNER])
    assert errors(too_long) == [("INVALID", ["jobTitle"])]
    nothing = await run(gql, UPDATE, {"m": owner_membership}, team[Role.OWNER])
    assert errors(nothing) == [("INVALID", ["fullName"])]
    assert (await Membership.get(organization_id=organization.id, user_id=team[Role.OWNER].id)).position is None


async def test_a_name_shared_with_another_organization_is_the_persons_own(gql):
    organization, team = await factories.create_team(Role.USER)
    other, _ = await factories.create_team()
    await factories.add_member(other, team[Role.USER], Role.USER)
    payload = await run(gql, UPDATE, {"m": await membership_id(organization, team[Role.USER]), "n": "Чужое Имя"}, team[Role.OWNER])
    assert errors(payload) == [("FORBIDDEN", ["fullName"])]
    titled = await run(gql, UPDATE, {"m": await membership_id(organization, team[Role.USER]), "t": "Менеджер"}, team[Role.OWNER])
    assert titled["userErrors"] == []  # the job title is this organization's


async def test_another_organizations_member_is_not_found(gql):
    organization, team = await factories.create_team(Role.USER)
    stranger_org, strangers = await factories.create_team()
    payload = await run(gql, UPDATE, {"m": await membership_id(stranger_org, strangers[Role.OWNER]), "t": "Шпион"}, team[Role.OWNER])
    assert errors(payload) == [("NOT_FOUND", ["membershipId"])]


# ---------------------------------------------------------------------------------------- phone


async def phone_code(phone: str) -> str:
    message = await last_message(phone, Channel.SMS)
    return re.search(r"(\d{6})", message.body).group(1)


async def test_a_member_changes_their_phone_with_the_code_sent_to_it(gql):
    organization, team = await factories.create_team(Role.USER)
    old_phone = factories.unique_phone()
    user = team[Role.USER]
    await User.filter(id=user.id).update(phone=old_phone, phone_verified=True)
    new_phone = factories.unique_phone()
    started = await run(gql, REQUEST_PHONE, {"p": new_phone}, user)
    assert started["userErrors"] == [] and started["sentTo"].endswith(new_phone[-2:])
    wrong = await run(gql, CONFIRM_PHONE, {"c": "000000" if await phone_code(new_phone) != "000000" else "111111"}, user)
    assert errors(wrong) == [("INVALID", ["code"])]
    done = await run(gql, CONFIRM_PHONE, {"c": await phone_code(new_phone)}, user)
    assert done["userErrors"] == [] and done["user"]["phone"] == new_phone
    assert "сменён" in (await last_message(old_phone, Channel.SMS)).body
    again = await run(gql, CONFIRM_PHONE, {"c": await phone_code(new_phone)}, user)
    assert errors(again) == [("INVALID", ["code"])]


async def test_an_admin_starts_it_but_only_the_members_own_entry_changes_anything(gql):
    organization, team = await factories.create_team(Role.ADMIN, Role.USER)
    admin, user = team[Role.ADMIN], team[Role.USER]
    new_phone = factories.unique_phone()
    started = await run(gql, REQUEST_PHONE, {"p": new_phone, "m": await membership_id(organization, user)}, admin)
    assert started["userErrors"] == []
    code = await phone_code(new_phone)
    notice = await last_message(user.email, Channel.EMAIL)
    assert notice.template == "phone_change_started" and code not in notice.body
    by_admin = await run(gql, CONFIRM_PHONE, {"c": code}, admin)  # the admin's own latest code: none
    assert errors(by_admin) == [("INVALID", ["code"])]
    assert (await User.get(id=user.id)).phone is None
    by_member = await run(gql, CONFIRM_PHONE, {"c": code}, user)
    assert by_member["userErrors"] == [] and by_member["user"]["phone"] == new_phone
    assert await AuditEntry.exists(organization_id=organization.id, action="member.phone_change_started")


async def test_phone_change_refusals(gql):
    organization, team = await factories.create_team(Role.ADMIN, Role.USER, Role.ACCOUNTANT)
    taken = factories.unique_phone()
    await factories.create_user(phone=taken)
    # another account's phone: answered the same; the code goes nowhere and the phone is told
    same = await run(gql, REQUEST_PHONE, {"p": taken}, team[Role.USER])
    assert same["userErrors"] == [] and same["sentTo"]
    assert "уже привязан" in (await last_message(taken, Channel.SMS)).body
    assert errors(await run(gql, REQUEST_PHONE, {"p": "12345"}, team[Role.USER])) == [("INVALID", ["phone"])]
    member = await membership_id(organization, team[Role.USER])
    assert errors(await run(gql, REQUEST_PHONE, {"p": factories.unique_phone(), "m": member}, team[Role.ACCOUNTANT])) == [("FORBIDDEN", None)]
    owner = await membership_id(organization, team[Role.OWNER])
    assert errors(await run(gql, REQUEST_PHONE, {"p": factories.unique_phone(), "m": owner}, team[Role.ADMIN])) == [("FORBIDDEN", None)]
    stranger_org, strangers = await factories.create_team()
    foreign = await membership_id(stranger_org, strangers[Role.OWNER])
    assert errors(await run(gql, REQUEST_PHONE, {"p": factories.unique_phone(), "m": foreign}, team[Role.OWNER])) == [("NOT_FOUND", ["membershipId"])]
    # a second code at once to the same phone: the sending limits of resolvers/identity/codes.py
    phone = factories.unique_phone()
    assert (await run(gql, REQUEST_PHONE, {"p": phone}, team[Role.OWNER]))["userErrors"] == []
    assert errors(await run(gql, REQUEST_PHONE, {"p": phone}, team[Role.OWNER])) == [("RATE_LIMITED", None)]


async def test_five_wrong_codes_kill_a_phone_code(gql):
    organization, team = await factories.create_team(Role.USER)
    phone = factories.unique_phone()
    await run(gql, REQUEST_PHONE, {"p": phone}, team[Role.USER])
    right = await phone_code(phone)
    wrong = "000000" if right != "000000" else "111111"
    for _ in range(5):
        assert errors(await run(gql, CONFIRM_PHONE, {"c": wrong}, team[Role.USER])) == [("INVALID", ["code"])]
    assert errors(await run(gql, CONFIRM_PHONE, {"c": right}, team[Role.USER])) == [("RATE_LIMITED", ["code"])]


# ---------------------------------------------------------------------------------------- created members


def password_in(body: str) -> str:
    return re.search(r"Пароль: (\S+)", body).group(1)


async def test_an_owner_creates_a_member_who_signs_in_and_must_change_the_password(gql):
    organization, team = await factories.create_team()
    database = await factories.create_database(organization)
    email = factories.unique_email("created")
    payload = await run(gql, CREATE, {"i": {
        "organizationId": to_global_id("Organization", organization.id), "email": email, "fullName": "Сидоров Семён",
        "role": "USER", "databaseIds": [to_global_id("Database", database.id)],
    }}, team[Role.OWNER])
    assert payload["userErrors"] == [] and payload["invite"]["status"] == "PENDING" and payload["invite"]["email"] == email
    assert "password" not in str(payload).lower()
    letter = await last_message(email, Channel.EMAIL)
    assert letter.template == "member_created" and f"Логин: {email}" in letter.body and "/invite?token=" in letter.body
    password = password_in(letter.body)
    assert password not in str(await AuditEntry.filter(organization_id=organization.id).values_list("details", flat=True))

    signed = (await post(gql, LOGIN, {"l": email, "p": password}))["data"]["login"]
    assert signed["userErrors"] == [] and signed["mustChangePassword"] is True
    assert signed["user"] == {"fullName": "Сидоров Семён", "email": email}  # the address is proven: a login
    token = signed["accessToken"]
    user = await User.get(email=email)
    assert user.must_change_password
    membership = await Membership.get(organization_id=organization.id, user_id=user.id)
    assert membership.role == Role.USER
    assert (await Invite.get(id=(await Invite.filter(email=email).first()).id)).status == InviteStatus.ACCEPTED
    assert await AuditEntry.exists(organization_id=organization.id, action="invite.accept", actor_id=user.id)

    # nothing else until the password is changed
    refused = await post(gql, MY_ORGANIZATIONS, {}, token)
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    other = await post(gql, UPDATE, {"m": to_global_id("Membership", membership.id), "t": "x"}, token)
    assert "errors" in other or other["data"]["updateMember"]["userErrors"]
    wrong = (await post(gql, CHANGE_PASSWORD, {"c": "not-the-password", "n": "my-own-secret"}, token))["data"]["changePassword"]
    assert errors(wrong) == [("INVALID", ["currentPassword"])]
    same = (await post(gql, CHANGE_PASSWORD, {"c": password, "n": password}, token))["data"]["changePassword"]
    assert errors(same) == [("INVALID", ["newPassword"])]
    changed = (await post(gql, CHANGE_PASSWORD, {"c": password, "n": "my-own-secret"}, token))["data"]["changePassword"]
    assert changed["userErrors"] == [] and changed["mustChangePassword"] is False
    assert (await post(gql, MY_ORGANIZATIONS, {}, token))["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    mine = await post(gql, MY_ORGANIZATIONS, {}, changed["accessToken"])
    assert mine["data"]["me"]["memberships"][0]["organization"]["name"] == organization.name
    assert not (await User.get(id=user.id)).must_change_password
    # the generated password no longer opens anything
    assert (await post(gql, LOGIN, {"l": email, "p": password}))["data"]["login"]["userErrors"][0]["code"] == "INVALID"
    assert (await post(gql, LOGIN, {"l": email, "p": "my-own-secret"}))["data"]["login"]["mustChangePassword"] is False


async def test_a_member_created_by_phone_gets_the_password_by_sms(gql):
    organization, team = await factories.create_team(Role.ADMIN)
    phone = factories.unique_phone()
    payload = await run(gql, CREATE, {"i": {
        "organizationId": to_global_id("Organization", organization.id), "phone": phone, "fullName": "Козлов К.", "role": "ACCOUNTANT",
    }}, team[Role.ADMIN])
    assert payload["userErrors"] == []
    sms = await last_message(phone, Channel.SMS)
    password = re.search(r"пароль: (\S+?)\.", sms.body).group(1)
    signed = (await post(gql, LOGIN, {"l": phone, "p": password}))["data"]["login"]
    assert signed["userErrors"] == [] and signed["mustChangePassword"] is True
    user = await User.get(phone=phone)
    assert (await Membership.get(organization_id=organization.id, user_id=user.id)).role == Role.ACCOUNTANT


async def test_an_address_with_an_account_gets_the_ordinary_invitation(gql):
    organization, team = await factories.create_team()
    existing = await factories.create_user()
    payload = await run(gql, CREATE, {"i": {
        "organizationId": to_global_id("Organization", organization.id), "email": existing.email, "fullName": "Кто-то", "role": "USER",
    }}, team[Role.OWNER])
    assert payload["userErrors"] == [] and payload["invite"]["status"] == "PENDING"
    letter = await last_message(existing.email, Channel.EMAIL)
    assert letter.template == "invite_existing_user" and "Пароль:" not in letter.body


async def test_create_member_refusals(gql):
    organization, team = await factories.create_team(Role.ACCOUNTANT, Role.USER)
    org_id = to_global_id("Organization", organization.id)
    base = {"organizationId": org_id, "fullName": "Новый Сотрудник", "role": "USER"}
    email = factories.unique_email()
    for role in (Role.ACCOUNTANT, Role.USER):
        assert errors(await run(gql, CREATE, {"i": {**base, "email": email}}, team[role])) == [("FORBIDDEN", None)]
    owner = team[Role.OWNER]
    both = await run(gql, CREATE, {"i": {**base, "email": email, "phone": factories.unique_phone()}}, owner)
    assert errors(both) == [("INVALID", ["input", "email"])]
    assert errors(await run(gql, CREATE, {"i": {**base, "email": email, "role": "OWNER"}}, owner)) == [("INVALID", ["input", "role"])]
    assert errors(await run(gql, CREATE, {"i": {**base, "email": email, "fullName": " "}}, owner)) == [("INVALID", ["input", "fullName"])]
    assert errors(await run(gql, CREATE, {"i": {**base, "email": team[Role.USER].email}}, owner)) == [("CONFLICT", ["input", "email"])]
    stranger_org, _ = await factories.create_team()
    foreign = {**base, "organizationId": to_global_id("Organization", stranger_org.id), "email": email}
    assert errors(await run(gql, CREATE, {"i": foreign}, owner)) == [("NOT_FOUND", ["input", "organizationId"])]
    assert not await Invite.exists(email=email)


async def test_a_revoked_or_replaced_created_member_cannot_sign_in(gql):
    organization, team = await factories.create_team()
    email = factories.unique_email("revoked")
    variables = {"i": {"organizationId": to_global_id("Organization", organization.id), "email": email, "fullName": "А Б", "role": "USER"}}
    await run(gql, CREATE, variables, team[Role.OWNER])
    first = password_in((await last_message(email, Channel.EMAIL)).body)
    replacing = await run(gql, CREATE, variables, team[Role.OWNER])  # replaces the first invitation: its password dies
    second = password_in((await last_message(email, Channel.EMAIL)).body)
    assert (await post(gql, LOGIN, {"l": email, "p": first}))["data"]["login"]["userErrors"][0]["code"] == "INVALID"
    revoked = await run(gql, REVOKE, {"i": replacing["invite"]["id"]}, team[Role.OWNER])
    assert revoked["userErrors"] == []
    assert (await post(gql, LOGIN, {"l": email, "p": second}))["data"]["login"]["userErrors"][0]["code"] == "INVALID"
    assert not await User.exists(email=email)


RESEND = """mutation($i: ID!) { resendInvite(inviteId: $i) { invite { status } userErrors { code field } } }"""
ACCEPT = """mutation($t: String!, $p: String) { acceptInvite(input: {token: $t, password: $p}) {
  accessToken user { fullName } userErrors { code field } } }"""


async def test_resending_sends_a_new_password_and_the_old_one_dies(gql):
    organization, team = await factories.create_team()
    email = factories.unique_email("resent")
    created = await run(gql, CREATE, {"i": {"organizationId": to_global_id("Organization", organization.id), "email": email,
                                              "fullName": "В Г", "role": "USER"}}, team[Role.OWNER])
    old = password_in((await last_message(email, Channel.EMAIL)).body)
    assert (await run(gql, RESEND, {"i": created["invite"]["id"]}, team[Role.OWNER]))["userErrors"] == []
    new = password_in((await last_message(email, Channel.EMAIL)).body)
    assert new != old
    assert (await post(gql, LOGIN, {"l": email, "p": old}))["data"]["login"]["userErrors"][0]["code"] == "INVALID"
    assert (await post(gql, LOGIN, {"l": email, "p": new}))["data"]["login"]["mustChangePassword"] is True


async def test_the_link_of_a_created_member_works_and_keeps_the_owners_name(gql):
    organization, team = await factories.create_team()
    email = factories.unique_email("linked")
    await run(gql, CREATE, {"i": {"organizationId": to_global_id("Organization", organization.id), "email": email,
                                  "fullName": "Данилов Д.", "role": "USER"}}, team[Role.OWNER])
    letter = (await last_message(email, Channel.EMAIL)).body
    token = re.search(r"/invite\?token=(\S+)", letter).group(1)
    accepted = (await post(gql, ACCEPT, {"t": token, "p": "chosen-by-me"}))["data"]["acceptInvite"]
    assert accepted["userErrors"] == [] and accepted["user"]["fullName"] == "Данилов Д."
    assert not (await User.get(email=email)).must_change_password
    # the letter's password opens nothing now: the account has its own
    assert (await post(gql, LOGIN, {"l": email, "p": password_in(letter)}))["data"]["login"]["userErrors"][0]["code"] == "INVALID"
