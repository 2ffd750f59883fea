"""A visitor signs up: fills in the form, gets a code by SMS (or e-mail), confirms and is signed in."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import uuid

import httpx
import pytest

from foundation.clock import utcnow
from models.audit import AuditEntry
from models.identity import CodePurpose, User, VerificationCode
from models.outbox import Channel, OutboxMessage
from tests import factories

REGISTER = """mutation($input: RegisterInput!) { register(input: $input) {
  registrationId codeSentTo codeExpiresAt userErrors { code field message } } }"""
CONFIRM = """mutation($id: ID!, $code: String!) { confirmRegistration(registrationId: $id, code: $code) {
  accessToken refreshToken user { fullName email phone unprovenEmail unprovenPhone } userErrors { code field message } } }"""
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
    # The SMS proved the phone; the e-mail is given, not proven: no login yet (resolvers/identity/addresses.py).
    assert signed_in["user"] == {
        "fullName": "Иванов Иван Иванович", "email": None, "phone": data["phone"],
        "unprovenEmail": "new.person@example.com", "unprovenPhone": None,
    }
    user = await User.get(phone=data["phone"])
    assert (user.is_active, user.phone_verified, user.email, user.unproven_email) == (True, True, None, "new.person@example.com")


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
    assert (user.phone, user.unproven_phone, user.email_verified) == (None, data["phone"], True)


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


def shape(payload: dict) -> tuple:
    """What a sign-up answer tells apart from the values themselves."""
    return (
        payload["userErrors"], payload["registrationId"] is not None, payload["codeSentTo"] is not None,
        payload["codeExpiresAt"] is not None,
    )


async def test_an_e_mail_that_already_has_an_account_is_answered_like_any_other_and_its_phone_gets_a_notice(gql):
    existing = await factories.create_user()
    data, taken = await sign_up(gql, email=existing.email.upper())
    _, free = await sign_up(gql)
    assert shape(taken) == shape(free) and taken["codeSentTo"] == f"+7 *** ***-**-{data['phone'][-2:]}"
    sms = await OutboxMessage.filter(recipient=data["phone"]).get()
    assert "Код подтверждения" not in sms.body and "уже привязан к другой учётной записи" in sms.body
    assert not await OutboxMessage.exists(recipient=existing.email), "the account's owner is not bothered"
    answer = await confirm(gql, taken["registrationId"], "123456")
    assert [(e["code"], e["field"]) for e in answer["userErrors"]] == [("INVALID", ["code"])]
    assert await User.filter(email=existing.email).count() == 1
    assert not await User.exists(phone=data["phone"], is_active=True)


async def test_a_phone_that_already_has_an_account_is_answered_like_any_other_and_gets_a_notice_not_a_code(gql):
    existing = await factories.create_user(phone=factories.unique_phone())
    data, payload = await sign_up(gql, phone=existing.phone)
    assert payload["codeSentTo"] == f"+7 *** ***-**-{existing.phone[-2:]}"
    sms = await OutboxMessage.filter(recipient=existing.phone).get()
    assert "Код подтверждения" not in sms.body and "Этот номер уже привязан" in sms.body
    assert (await User.get(id=existing.id)).email == existing.email
    assert not await User.exists(email=data["email"], is_active=True)


async def test_a_sign_up_at_a_taken_address_answers_every_step_exactly_like_one_at_a_free_address(gql):
    """register, an early resend, wrong codes, a late resend, the lockout: the same answers."""
    existing = await factories.create_user(phone=factories.unique_phone())
    answers = {}
    for label, changes in (("taken", {"phone": existing.phone}), ("free", {})):
        data, payload = await sign_up(gql, **changes)
        steps = [shape(payload)]
        resent = (await gql.execute(RESEND, {"id": payload["registrationId"]}))["data"]["resendRegistrationCode"]
        steps.append([(e["code"], e["message"]) for e in resent["userErrors"]])
        await VerificationCode.filter(target=data["phone"]).update(created_at=utcnow() - dt.timedelta(minutes=2))
        resent = (await gql.execute(RESEND, {"id": payload["registrationId"]}))["data"]["resendRegistrationCode"]
        steps.append((resent["userErrors"], resent["registrationId"] == payload["registrationId"], resent["codeSentTo"]))
        code = "000000" if label == "taken" else wrong(await last_code(data["phone"]))
        for _ in range(6):
            answer = await confirm(gql, payload["registrationId"], code)
            steps.append([(e["code"], e["field"], e["message"]) for e in answer["userErrors"]])
        answers[label] = steps
    assert answers["taken"][:2] == answers["free"][:2] and answers["taken"][3:] == answers["free"][3:]
    assert answers["taken"][2][:2] == answers["free"][2][:2] == ([], True)


async def test_a_sign_up_at_a_taken_address_is_never_confirmed_even_with_the_right_code(gql, settings):
    from resolvers.identity import codes
    from types import SimpleNamespace

    existing = await factories.create_user()
    data, payload = await sign_up(gql, email=existing.email)
    row = await VerificationCode.get(target=data["phone"], purpose=CodePurpose.SIGN_UP)
    await VerificationCode.filter(id=row.id).update(code_hash=codes.code_hash(SimpleNamespace(settings=settings), row.id, "123456"))
    answer = await confirm(gql, payload["registrationId"], "123456")
    assert [(e["code"], e["field"]) for e in answer["userErrors"]] == [("INVALID", ["code"])] and answer["accessToken"] is None
    assert not await User.exists(phone=data["phone"], is_active=True)
    assert (await VerificationCode.get(id=row.id)).used_at is None, "nothing was changed"


async def test_signing_up_again_replaces_a_sign_up_at_a_taken_address_as_it_would_any_other(gql):
    existing = await factories.create_user(phone=factories.unique_phone())
    _, first = await sign_up(gql, phone=existing.phone)
    await VerificationCode.filter(target=existing.phone).update(created_at=utcnow() - dt.timedelta(minutes=2))
    await sign_up(gql, phone=existing.phone)
    stale = await confirm(gql, first["registrationId"], "123456")
    assert [(e["code"], e["field"]) for e in stale["userErrors"]] == [("INVALID", ["registrationId"])]


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
    assert not (await User.get(unproven_email=data["email"])).is_active


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
    from foundation.ids import to_global_id

    for registration_id in ("nonsense", to_global_id("Registration", user.id)):
        answer = await confirm(gql, registration_id, "123456")
        assert [(e["code"], e["field"]) for e in answer["userErrors"]] == [("INVALID", ["registrationId"])]


async def test_a_confirmed_sign_up_is_in_the_audit_log(gql):
    data, payload = await sign_up(gql)
    await confirm(gql, payload["registrationId"], await last_code(data["phone"]))
    user = await User.get(phone=data["phone"])
    assert await AuditEntry.exists(action="user.signed_up", object_id=str(user.id), actor_id=user.id)


async def test_the_confirmation_answers_as_the_new_user_at_once(gql):
    data, payload = await sign_up(gql)
    body = await gql.execute(
        "mutation($id: ID!, $code: String!) { confirmRegistration(registrationId: $id, code: $code) "
        "{ user { phone memberships { role } } userErrors { code } } }",
        {"id": payload["registrationId"], "code": await last_code(data["phone"])},
    )
    assert "errors" not in body, body["errors"]
    assert body["data"]["confirmRegistration"]["user"] == {"phone": data["phone"], "memberships": []}


# ---------------------------------------------------------------- sending limits per client address


@pytest.fixture
async def from_address(app, settings, monkeypatch):
    """post(query, variables, source=0): requests from client addresses of the test's own (one per
    `source`), with at most 3 codes an hour from each."""
    monkeypatch.setattr(settings, "codes_per_client_hour", 3)
    addresses = [f"2001:db8::{uuid.uuid4().hex[:4]}:{n}" for n in range(2)]

    async def post(query: str, variables: dict, source: int = 0) -> dict:
        transport = httpx.ASGITransport(app=app, client=(addresses[source], 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://kabinet.test") as client:
            response = await client.post("/graphql", json={"query": query, "variables": variables})
        return response.json()["data"]

    return post


RESET = """mutation($l: String!) { requestPasswordReset(login: $l) { ok userErrors { code field message } } }"""


async def test_one_client_address_gets_at_most_the_limit_of_codes_an_hour_whatever_the_phones(from_address):
    """No SMS pumping: codes to many numbers from one source stop at the limit, recovery included."""
    answers = [[e["code"] for e in (await from_address(REGISTER, {"input": form()}))["register"]["userErrors"]] for _ in range(3)]
    assert answers == [[], [], []]
    refused_form = form()
    refused = (await from_address(REGISTER, {"input": refused_form}))["register"]
    assert [e["code"] for e in refused["userErrors"]] == ["RATE_LIMITED"] and refused["registrationId"] is None
    assert "network" in refused["userErrors"][0]["message"]
    assert not await User.exists(email=refused_form["email"])
    assert not await OutboxMessage.exists(recipient=refused_form["phone"])
    known = await factories.create_user(phone=factories.unique_phone())
    for login in (known.phone, factories.unique_phone()):  # the same answer for a login with or without an account
        reset = (await from_address(RESET, {"l": login}))["requestPasswordReset"]
        assert [e["code"] for e in reset["userErrors"]] == ["RATE_LIMITED"] and reset["ok"] is False
    assert not await OutboxMessage.exists(recipient=known.phone)
    other_source = (await from_address(REGISTER, {"input": form()}, source=1))["register"]
    assert other_source["userErrors"] == [], "another client address is not held back"


async def test_the_per_client_limit_counts_codes_that_went_nowhere_too(from_address):
    """Sign-ups at taken addresses and recoveries of unknown logins count like any others."""
    existing = await factories.create_user(phone=factories.unique_phone())
    assert (await from_address(REGISTER, {"input": form(phone=existing.phone)}))["register"]["userErrors"] == []
    assert (await from_address(RESET, {"l": factories.unique_phone()}))["requestPasswordReset"]["userErrors"] == []
    assert (await from_address(REGISTER, {"input": form()}))["register"]["userErrors"] == []
    answer = (await from_address(REGISTER, {"input": form()}))["register"]
    assert [e["code"] for e in answer["userErrors"]] == ["RATE_LIMITED"]


async def test_concurrent_requests_from_one_client_address_pass_the_limit_no_more_than_it_allows(from_address):
    forms = [form() for _ in range(8)]
    answers = await asyncio.gather(*(from_address(REGISTER, {"input": f}) for f in forms))
    outcomes = sorted(tuple(e["code"] for e in a["register"]["userErrors"]) for a in answers)
    assert outcomes == [()] * 3 + [("RATE_LIMITED",)] * 5
    assert await OutboxMessage.filter(recipient__in=[f["phone"] for f in forms]).count() == 3


async def test_the_limits_are_settings(gql, settings, monkeypatch):
    monkeypatch.setattr(settings, "code_resend_seconds", 0)
    data, payload = await sign_up(gql)
    resent = (await gql.execute(RESEND, {"id": payload["registrationId"]}))["data"]["resendRegistrationCode"]
    assert resent["userErrors"] == [], "no pause between two codes when the setting says so"
    monkeypatch.setattr(settings, "codes_per_address_hour", 2)
    resent = (await gql.execute(RESEND, {"id": payload["registrationId"]}))["data"]["resendRegistrationCode"]
    assert [e["code"] for e in resent["userErrors"]] == ["RATE_LIMITED"]
    assert await OutboxMessage.filter(recipient=data["phone"]).count() == 2
