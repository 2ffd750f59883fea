"""A visitor signs up: fills in the form, gets a code by SMS (or e-mail), confirms and is signed in."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from kabinet.auth import utcnow
from models.audit import AuditEntry
from models.identity import CodePurpose, User, VerificationCode
from models.outbox import Channel, OutboxMessage
from tests import factories

REGISTER = """mutation($input: RegisterInput!) { register(input: $input) {
  registrationId codeSentTo codeExpiresAt userErrors { code field message } } }"""
CONFIRM = """mutation($id: ID!, $code: String!) { confirmRegistration(registrationId: $id, code: $code) {
  accessToken refreshToken user { fullName email phone } userErrors { code field message } } }"""
RESEND = """mutation($id: ID!) { resendRegistrationCode(registrationId: $id) {
  registrationId codeSentTo userErrors { code field message } } }"""
LOGIN = """mutation($l: String!, $p: String!) { login(input: {login: $l, password: $p}) {
  accessToken userErrors { code field message } } }"""
PASSWORD = "new-user-password"


def form(**changes) -> dict:
    return {
        "fullName": "Иванов Иван Иванович", "phone": factories.unique_phone(),
        "email": factories.unique_email("signup"), "password": PASSWORD, **changes,
    }


async def last_code(recipient: str) -> str:
    message = await OutboxMessage.filter(recipient=recipient).order_by("-created_at").first()
    return re.search(r"Код подтверждения: (\d{6})", message.body).group(1)


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


async def sign_up(gql, **changes) -> tuple[dict, dict]:
    data = form(**changes)
    payload = (await gql.execute(REGISTER, {"input": data}))["data"]["register"]
    assert payload["userErrors"] == [], payload
    return data, payload


async def confirm(gql, registration_id: str, code: str) -> dict:
    return (await gql.execute(CONFIRM, {"id": registration_id, "code": code}))["data"]["confirmRegistration"]


async def test_a_visitor_signs_up_and_confirms_with_the_code_from_the_sms(gql):
    data, payload = await sign_up(gql, email="New.Person@Example.com")
    assert payload["codeSentTo"] == f"+7 *** ***-**-{data['phone'][-2:]}"
    sms = await OutboxMessage.filter(recipient=data["phone"]).get()
    assert sms.channel == Channel.SMS and sms.body.startswith("Код подтверждения: ")
    signed_in = await confirm(gql, payload["registrationId"], await last_code(data["phone"]))
    assert signed_in["userErrors"] == [] and signed_in["accessToken"] and signed_in["refreshToken"]
    assert signed_in["user"] == {"fullName": "Иванов Иван Иванович", "email": "new.person@example.com", "phone": data["phone"]}
    user = await User.get(email="new.person@example.com")
    assert (user.is_active, user.phone_verified, user.email_verified) == (True, True, False)


async def test_a_confirmed_account_signs_in_with_its_phone_and_password(gql):
    data, payload = await sign_up(gql)
    await confirm(gql, payload["registrationId"], await last_code(data["phone"]))
    body = await gql.execute(LOGIN, {"l": data["phone"], "p": PASSWORD})
    assert body["data"]["login"]["userErrors"] == [] and body["data"]["login"]["accessToken"]


async def test_an_account_not_yet_confirmed_cannot_sign_in_and_is_told_only_wrong_login_or_password(gql):
    data, _ = await sign_up(gql)
    refused = (await gql.execute(LOGIN, {"l": data["email"], "p": PASSWORD}))["data"]["login"]
    wrong_password = (await gql.execute(LOGIN, {"l": data["email"], "p": "not-the-password"}))["data"]["login"]
    assert refused["accessToken"] is None
    assert refused["userErrors"] == wrong_password["userErrors"]


async def test_a_visitor_may_ask_for_the_code_by_e_mail_instead(gql):
    data, payload = await sign_up(gql, confirmBy="EMAIL")
    assert payload["codeSentTo"] == f"s***@{data['email'].split('@')[1]}"
    mail = await OutboxMessage.filter(recipient=data["email"]).get()
    assert mail.channel == Channel.EMAIL and mail.subject == "Код подтверждения"
    assert not await OutboxMessage.exists(recipient=data["phone"])
    assert (await confirm(gql, payload["registrationId"], await last_code(data["email"])))["userErrors"] == []
    user = await User.get(email=data["email"])
    assert (user.phone_verified, user.email_verified) == (False, True)


@pytest.mark.parametrize(
    ("field", "value"),
    [("fullName", "  "), ("phone", "12345"), ("email", "not-an-address"), ("password", "short")],
)
async def test_each_field_of_the_form_is_checked(gql, field, value):
    data = form(**{field: value})
    payload = (await gql.execute(REGISTER, {"input": data}))["data"]["register"]
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("INVALID", ["input", field])]
    assert payload["registrationId"] is None
    assert not await User.exists(email=data["email"])


async def test_an_e_mail_that_already_has_an_account_is_a_conflict_on_the_e_mail(gql):
    existing = await factories.create_user()
    data = form(email=existing.email.upper())
    payload = (await gql.execute(REGISTER, {"input": data}))["data"]["register"]
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("CONFLICT", ["input", "email"])]
    assert not await OutboxMessage.exists(recipient=data["phone"])


async def test_a_phone_that_already_has_an_account_is_a_conflict_on_the_phone(gql):
    existing = await factories.create_user(phone=factories.unique_phone())
    payload = (await gql.execute(REGISTER, {"input": form(phone=existing.phone)}))["data"]["register"]
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("CONFLICT", ["input", "phone"])]


async def test_a_sign_up_never_confirmed_does_not_hold_the_address_back(gql):
    first_data, first = await sign_up(gql)
    await VerificationCode.filter(target=first_data["phone"]).update(created_at=utcnow() - dt.timedelta(minutes=2))
    _, second = await sign_up(gql, email=first_data["email"], phone=first_data["phone"], fullName="Пётр Петров")
    assert second["registrationId"] != first["registrationId"]
    stale = await confirm(gql, first["registrationId"], await last_code(first_data["phone"]))
    assert [(e["code"], e["field"]) for e in stale["userErrors"]] == [("INVALID", ["registrationId"])]
    signed_in = await confirm(gql, second["registrationId"], await last_code(first_data["phone"]))
    assert signed_in["user"]["fullName"] == "Пётр Петров"


async def test_a_wrong_code_is_invalid_on_the_code(gql):
    data, payload = await sign_up(gql)
    answer = await confirm(gql, payload["registrationId"], wrong(await last_code(data["phone"])))
    assert [(e["code"], e["field"]) for e in answer["userErrors"]] == [("INVALID", ["code"])]
    assert answer["accessToken"] is None
    assert not (await User.get(email=data["email"])).is_active


async def test_five_wrong_codes_kill_the_code_even_for_the_right_one(gql):
    data, payload = await sign_up(gql)
    code = await last_code(data["phone"])
    codes = [(await confirm(gql, payload["registrationId"], wrong(code)))["userErrors"][0]["code"] for _ in range(5)]
    assert codes == ["INVALID"] * 5
    right = await confirm(gql, payload["registrationId"], code)
    assert [(e["code"], e["field"]) for e in right["userErrors"]] == [("RATE_LIMITED", ["code"])]


async def test_a_code_older_than_15_minutes_has_expired(gql):
    data, payload = await sign_up(gql)
    await VerificationCode.filter(target=data["phone"]).update(expires_at=utcnow() - dt.timedelta(seconds=1))
    answer = await confirm(gql, payload["registrationId"], await last_code(data["phone"]))
    assert [(e["code"], e["field"]) for e in answer["userErrors"]] == [("EXPIRED", ["code"])]


async def test_the_code_lasts_15_minutes(gql):
    data, payload = await sign_up(gql)
    expires_at = dt.datetime.fromisoformat(payload["codeExpiresAt"])
    assert dt.timedelta(minutes=14) < expires_at - utcnow() <= dt.timedelta(minutes=15)


async def test_a_code_works_only_once(gql):
    data, payload = await sign_up(gql)
    code = await last_code(data["phone"])
    assert (await confirm(gql, payload["registrationId"], code))["userErrors"] == []
    again = await confirm(gql, payload["registrationId"], code)
    assert [(e["code"], e["field"]) for e in again["userErrors"]] == [("INVALID", ["registrationId"])]


async def test_the_code_is_stored_hashed(gql):
    data, _ = await sign_up(gql)
    row = await VerificationCode.get(target=data["phone"], purpose=CodePurpose.SIGN_UP)
    assert await last_code(data["phone"]) not in row.code_hash and len(row.code_hash) == 64


async def test_a_resent_code_works_and_the_previous_one_stops(gql):
    data, payload = await sign_up(gql)
    old = await last_code(data["phone"])
    await VerificationCode.filter(target=data["phone"]).update(created_at=utcnow() - dt.timedelta(minutes=2))
    resent = (await gql.execute(RESEND, {"id": payload["registrationId"]}))["data"]["resendRegistrationCode"]
    assert resent["userErrors"] == [] and resent["registrationId"] == payload["registrationId"]
    new = await last_code(data["phone"])
    if new != old:
        stale = await confirm(gql, payload["registrationId"], old)
        assert [(e["code"], e["field"]) for e in stale["userErrors"]] == [("INVALID", ["code"])]
    assert (await confirm(gql, payload["registrationId"], new))["userErrors"] == []


async def test_a_code_is_resent_at_most_once_a_minute(gql):
    _, payload = await sign_up(gql)
    resent = (await gql.execute(RESEND, {"id": payload["registrationId"]}))["data"]["resendRegistrationCode"]
    assert [e["code"] for e in resent["userErrors"]] == ["RATE_LIMITED"]


async def test_at_most_five_codes_an_hour_go_to_one_phone(gql):
    data, payload = await sign_up(gql)
    answers = []
    for _ in range(5):
        await VerificationCode.filter(target=data["phone"]).update(created_at=utcnow() - dt.timedelta(minutes=2))
        answer = (await gql.execute(RESEND, {"id": payload["registrationId"]}))["data"]["resendRegistrationCode"]
        answers.append([e["code"] for e in answer["userErrors"]])
    assert answers == [[], [], [], [], ["RATE_LIMITED"]]
    assert await OutboxMessage.filter(recipient=data["phone"]).count() == 5


async def test_signing_up_again_with_the_same_phone_counts_towards_its_limit(gql):
    data, _ = await sign_up(gql)
    again = (await gql.execute(REGISTER, {"input": form(phone=data["phone"])}))["data"]["register"]
    assert [e["code"] for e in again["userErrors"]] == ["RATE_LIMITED"]


async def test_an_unknown_registration_id_is_invalid(gql):
    user = await factories.create_user()
    from resolvers.ids import to_global_id

    for registration_id in ("nonsense", to_global_id("Registration", user.id)):
        answer = await confirm(gql, registration_id, "123456")
        assert [(e["code"], e["field"]) for e in answer["userErrors"]] == [("INVALID", ["registrationId"])]


async def test_a_confirmed_sign_up_is_in_the_audit_log(gql):
    data, payload = await sign_up(gql)
    await confirm(gql, payload["registrationId"], await last_code(data["phone"]))
    user = await User.get(email=data["email"])
    assert await AuditEntry.exists(action="user.signed_up", object_id=str(user.id), actor_id=user.id)


async def test_the_confirmation_answers_as_the_new_user_at_once(gql):
    data, payload = await sign_up(gql)
    body = await gql.execute(
        "mutation($id: ID!, $code: String!) { confirmRegistration(registrationId: $id, code: $code) "
        "{ user { email memberships { role } } userErrors { code } } }",
        {"id": payload["registrationId"], "code": await last_code(data["phone"])},
    )
    assert "errors" not in body, body["errors"]
    assert body["data"]["confirmRegistration"]["user"] == {"email": data["email"], "memberships": []}
