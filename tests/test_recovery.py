"""A user who forgot the password gets a code and sets a new one; a signed-in user changes e-mail."""

from __future__ import annotations

import datetime as dt
import re
import uuid

from foundation.clock import utcnow
from models.audit import AuditEntry
from models.identity import CodePurpose, LoginThrottle, User, VerificationCode
from models.outbox import Channel, OutboxMessage
from tests import factories

REQUEST = """mutation($l: String!) { requestPasswordReset(login: $l) { ok userErrors { code field message } } }"""
RESET = """mutation($l: String!, $c: String!, $p: String!) { resetPassword(login: $l, code: $c, newPassword: $p) {
  accessToken refreshToken user { email } userErrors { code field message } } }"""
LOGIN = """mutation($l: String!, $p: String!) { login(input: {login: $l, password: $p}) {
  accessToken refreshToken userErrors { code field message } } }"""
REFRESH = """mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken userErrors { code } } }"""
REQUEST_EMAIL = """mutation($e: String!) { requestEmailChange(newEmail: $e) {
  codeSentTo codeExpiresAt userErrors { code field message } } }"""
CONFIRM_EMAIL = """mutation($c: String!) { confirmEmailChange(code: $c) { user { email } userErrors { code field message } } }"""
NEW_PASSWORD = "a-brand-new-password"


async def last_code(recipient: str) -> str:
    message = await OutboxMessage.filter(recipient=recipient).order_by("-created_at").first()
    return re.search(r"Код подтверждения: (\d{6})", message.body).group(1)


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def errors(payload: dict) -> list[tuple[str, list[str] | None]]:
    return [(e["code"], e["field"]) for e in payload["userErrors"]]


async def user_with_phone() -> User:
    return await factories.create_user(phone=factories.unique_phone())


async def request_reset(gql, login: str) -> dict:
    return (await gql.execute(REQUEST, {"l": login}))["data"]["requestPasswordReset"]


async def reset(gql, login: str, code: str, password: str = NEW_PASSWORD) -> dict:
    return (await gql.execute(RESET, {"l": login, "c": code, "p": password}))["data"]["resetPassword"]


async def login(gql, login_name: str, password: str) -> dict:
    return (await gql.execute(LOGIN, {"l": login_name, "p": password}))["data"]["login"]


# ---------------------------------------------------------------- password recovery


async def test_a_user_recovers_the_password_with_a_code_sent_to_the_phone(gql):
    user = await user_with_phone()
    assert await request_reset(gql, "8" + user.phone[2:]) == {"ok": True, "userErrors": []}
    sms = await OutboxMessage.filter(recipient=user.phone).get()
    assert sms.channel == Channel.SMS and sms.body.startswith("Код подтверждения: ")
    signed_in = await reset(gql, user.phone, await last_code(user.phone))
    assert signed_in["userErrors"] == [] and signed_in["accessToken"] and signed_in["user"]["email"] == user.email
    assert (await login(gql, user.phone, NEW_PASSWORD))["userErrors"] == []
    assert errors(await login(gql, user.phone, factories.PASSWORD)) == [("INVALID", ["input", "password"])]
    assert (await User.get(id=user.id)).phone_verified


async def test_a_user_recovers_the_password_by_e_mail_whatever_the_case(gql):
    user = await factories.create_user()
    assert (await request_reset(gql, user.email.upper()))["ok"] is True
    mail = await OutboxMessage.filter(recipient=user.email).get()
    assert mail.channel == Channel.EMAIL and mail.subject == "Код подтверждения"
    assert (await reset(gql, user.email.upper(), await last_code(user.email)))["userErrors"] == []


async def test_recovery_signs_out_every_other_login_of_the_account(gql):
    user = await factories.create_user()
    before = await login(gql, user.email, factories.PASSWORD)
    await request_reset(gql, user.email)
    await reset(gql, user.email, await last_code(user.email))
    refused = (await gql.execute(REFRESH, {"t": before["refreshToken"]}))["data"]["refreshToken"]
    assert [e["code"] for e in refused["userErrors"]] == ["INVALID"]


async def test_recovery_lifts_the_lockout_of_wrong_passwords(gql):
    user = await factories.create_user()
    for i in range(5):
        await login(gql, user.email, f"wrong-{i}")
    assert errors(await login(gql, user.email, factories.PASSWORD)) == [("RATE_LIMITED", None)]
    await request_reset(gql, user.email)
    await reset(gql, user.email, await last_code(user.email))
    assert (await login(gql, user.email, NEW_PASSWORD))["userErrors"] == []
    assert (await LoginThrottle.get(login=user.email)).locked_until is None


async def test_an_unknown_login_gets_the_same_answer_and_no_message(gql):
    login_name = f"nobody-{uuid.uuid4().hex[:8]}@example.com"
    assert await request_reset(gql, login_name) == {"ok": True, "userErrors": []}
    assert not await OutboxMessage.exists(recipient=login_name)


async def test_an_unknown_login_locks_after_five_wrong_codes_exactly_like_a_known_one(gql):
    known = await factories.create_user()
    unknown = f"nobody-{uuid.uuid4().hex[:8]}@example.com"
    answers = {}
    for login_name in (known.email, unknown):
        await request_reset(gql, login_name)
        answers[login_name] = [errors(await reset(gql, login_name, "000000")) for _ in range(6)]
    codes_sent = await last_code(known.email)
    if codes_sent == "000000":  # one in a million: the "wrong" code was right
        return
    assert answers[known.email] == answers[unknown]
    assert answers[unknown] == [[("INVALID", ["code"])]] * 5 + [[("RATE_LIMITED", ["code"])]]


async def test_an_unconfirmed_sign_up_gets_no_recovery_code(gql):
    user = await factories.create_user()
    await User.filter(id=user.id).update(is_active=False)
    assert (await request_reset(gql, user.email))["ok"] is True
    assert not await OutboxMessage.exists(recipient=user.email)


async def test_a_login_that_is_neither_an_e_mail_nor_a_phone_is_invalid(gql):
    assert errors(await request_reset(gql, "just-a-name")) == [("INVALID", ["login"])]


async def test_a_wrong_recovery_code_is_invalid_on_the_code(gql):
    user = await factories.create_user()
    await request_reset(gql, user.email)
    answer = await reset(gql, user.email, wrong(await last_code(user.email)))
    assert errors(answer) == [("INVALID", ["code"])] and answer["accessToken"] is None
    assert (await login(gql, user.email, factories.PASSWORD))["userErrors"] == []


async def test_a_recovery_code_older_than_15_minutes_has_expired(gql):
    user = await factories.create_user()
    await request_reset(gql, user.email)
    await VerificationCode.filter(target=user.email).update(expires_at=utcnow() - dt.timedelta(seconds=1))
    assert errors(await reset(gql, user.email, await last_code(user.email))) == [("EXPIRED", ["code"])]


async def test_five_wrong_recovery_codes_kill_it(gql):
    user = await factories.create_user()
    await request_reset(gql, user.email)
    code = await last_code(user.email)
    for _ in range(5):
        await reset(gql, user.email, wrong(code))
    assert errors(await reset(gql, user.email, code)) == [("RATE_LIMITED", ["code"])]


async def test_a_recovery_code_works_once(gql):
    user = await factories.create_user()
    await request_reset(gql, user.email)
    code = await last_code(user.email)
    assert (await reset(gql, user.email, code))["userErrors"] == []
    assert errors(await reset(gql, user.email, code, "yet-another-password")) == [("INVALID", ["code"])]


async def test_a_code_sent_to_the_e_mail_does_not_work_with_the_phone_as_login(gql):
    user = await user_with_phone()
    await request_reset(gql, user.email)
    assert errors(await reset(gql, user.phone, await last_code(user.email))) == [("INVALID", ["code"])]


async def test_a_too_short_new_password_is_invalid_and_does_not_use_up_an_attempt(gql):
    user = await factories.create_user()
    await request_reset(gql, user.email)
    assert errors(await reset(gql, user.email, await last_code(user.email), "short")) == [("INVALID", ["newPassword"])]
    assert (await VerificationCode.get(target=user.email, purpose=CodePurpose.PASSWORD_RESET)).attempts == 0


async def test_asking_again_within_a_minute_is_rate_limited_and_the_first_code_still_works(gql):
    user = await factories.create_user()
    await request_reset(gql, user.email)
    code = await last_code(user.email)
    assert errors(await request_reset(gql, user.email)) == [("RATE_LIMITED", None)]
    assert await OutboxMessage.filter(recipient=user.email).count() == 1
    assert (await reset(gql, user.email, code))["userErrors"] == []


async def test_the_sending_limits_answer_the_same_for_a_login_with_or_without_an_account(gql):
    known = await user_with_phone()
    unknown = factories.unique_phone()
    answers = {}
    for login_name in (known.phone, unknown):
        steps = [await request_reset(gql, login_name), await request_reset(gql, login_name)]
        for _ in range(5):
            await VerificationCode.filter(target=login_name).update(created_at=utcnow() - dt.timedelta(minutes=2))
            steps.append(await request_reset(gql, login_name))
        answers[login_name] = steps
    assert answers[known.phone] == answers[unknown]
    assert [errors(a) for a in answers[unknown]] == [[], [("RATE_LIMITED", None)], [], [], [], [], [("RATE_LIMITED", None)]]


async def test_a_password_reset_is_in_the_audit_log(gql):
    user = await factories.create_user()
    await request_reset(gql, user.email)
    await reset(gql, user.email, await last_code(user.email))
    assert await AuditEntry.exists(action="user.password_reset", object_id=str(user.id))


# ---------------------------------------------------------------- e-mail change


async def signed_in_user() -> User:
    return await factories.create_user()


async def as_user(gql, user: User) -> str:
    await gql.token_for_password(user.email, factories.PASSWORD)
    return user.email


async def test_a_user_changes_the_e_mail_with_a_code_sent_to_the_new_address(gql):
    user = await signed_in_user()
    who = await as_user(gql, user)
    new_email = factories.unique_email("changed")
    asked = (await gql.execute(REQUEST_EMAIL, {"e": new_email.upper()}, as_user=who))["data"]["requestEmailChange"]
    assert asked["userErrors"] == [] and asked["codeSentTo"] == f"c***@{new_email.split('@')[1]}"
    done = (await gql.execute(CONFIRM_EMAIL, {"c": await last_code(new_email)}, as_user=who))["data"]["confirmEmailChange"]
    assert done == {"user": {"email": new_email}, "userErrors": []}
    assert (await login(gql, new_email, factories.PASSWORD))["userErrors"] == []
    assert (await User.get(id=user.id)).email_verified


async def test_the_old_address_is_told_about_the_change(gql):
    user = await signed_in_user()
    who = await as_user(gql, user)
    new_email = factories.unique_email("changed")
    await gql.execute(REQUEST_EMAIL, {"e": new_email}, as_user=who)
    await gql.execute(CONFIRM_EMAIL, {"c": await last_code(new_email)}, as_user=who)
    notice = await OutboxMessage.filter(recipient=user.email).get()
    assert notice.subject == "Смена адреса электронной почты" and new_email in notice.body
    assert await AuditEntry.exists(action="user.email_changed", object_id=str(user.id))


async def test_nothing_changes_until_the_code_comes_back(gql):
    user = await signed_in_user()
    who = await as_user(gql, user)
    await gql.execute(REQUEST_EMAIL, {"e": factories.unique_email("changed")}, as_user=who)
    assert (await User.get(id=user.id)).email == user.email


async def test_an_e_mail_of_another_account_is_answered_like_a_free_one_and_never_changes_hands(gql):
    user, other = await signed_in_user(), await factories.create_user()
    who = await as_user(gql, user)
    taken = (await gql.execute(REQUEST_EMAIL, {"e": other.email}, as_user=who))["data"]["requestEmailChange"]
    free = (await gql.execute(REQUEST_EMAIL, {"e": factories.unique_email("u")}, as_user=who))["data"]["requestEmailChange"]
    assert (taken["userErrors"], bool(taken["codeSentTo"]), bool(taken["codeExpiresAt"])) == (
        free["userErrors"], bool(free["codeSentTo"]), bool(free["codeExpiresAt"])) == ([], True, True)
    notice = await OutboxMessage.filter(recipient=other.email).get()
    assert "Код подтверждения" not in notice.body and "другой учётной записи" in notice.body
    await VerificationCode.filter(target=other.email).update(created_at=utcnow() - dt.timedelta(minutes=2))
    await gql.execute(REQUEST_EMAIL, {"e": other.email}, as_user=who)  # the latest code is the taken address's again
    done = (await gql.execute(CONFIRM_EMAIL, {"c": "123456"}, as_user=who))["data"]["confirmEmailChange"]
    assert errors(done) == [("INVALID", ["code"])]
    assert (await User.get(id=user.id)).email == user.email and (await User.get(id=other.id)).email == other.email


async def test_an_address_taken_after_the_code_was_sent_is_a_conflict_on_confirming(gql):
    user = await signed_in_user()
    who = await as_user(gql, user)
    new_email = factories.unique_email("changed")
    await gql.execute(REQUEST_EMAIL, {"e": new_email}, as_user=who)
    code = await last_code(new_email)
    await factories.create_user(new_email)
    done = (await gql.execute(CONFIRM_EMAIL, {"c": code}, as_user=who))["data"]["confirmEmailChange"]
    assert [e["code"] for e in done["userErrors"]] == ["CONFLICT"]
    assert (await User.get(id=user.id)).email == user.email


async def test_the_address_of_an_unconfirmed_sign_up_can_be_taken(gql):
    user = await signed_in_user()
    who = await as_user(gql, user)
    pending = await factories.create_pending_sign_up(factories.unique_email(), factories.unique_phone())
    await gql.execute(REQUEST_EMAIL, {"e": pending.unproven_email}, as_user=who)
    code = await last_code(pending.unproven_email)
    done = (await gql.execute(CONFIRM_EMAIL, {"c": code}, as_user=who))["data"]["confirmEmailChange"]
    assert done["userErrors"] == [] and done["user"]["email"] == pending.unproven_email
    assert not await User.exists(id=pending.id)


async def test_the_current_address_is_invalid_as_a_new_one(gql):
    user = await signed_in_user()
    who = await as_user(gql, user)
    asked = (await gql.execute(REQUEST_EMAIL, {"e": user.email}, as_user=who))["data"]["requestEmailChange"]
    assert errors(asked) == [("INVALID", ["newEmail"])]


async def test_a_malformed_address_is_invalid(gql):
    who = await as_user(gql, await signed_in_user())
    asked = (await gql.execute(REQUEST_EMAIL, {"e": "nope"}, as_user=who))["data"]["requestEmailChange"]
    assert errors(asked) == [("INVALID", ["newEmail"])]


async def test_a_wrong_e_mail_change_code_is_invalid_on_the_code(gql):
    user = await signed_in_user()
    who = await as_user(gql, user)
    new_email = factories.unique_email("changed")
    await gql.execute(REQUEST_EMAIL, {"e": new_email}, as_user=who)
    done = (await gql.execute(CONFIRM_EMAIL, {"c": wrong(await last_code(new_email))}, as_user=who))["data"]["confirmEmailChange"]
    assert errors(done) == [("INVALID", ["code"])] and done["user"] is None


async def test_an_e_mail_change_code_works_only_for_the_user_who_asked(gql):
    asker, other = await signed_in_user(), await signed_in_user()
    await as_user(gql, asker)
    new_email = factories.unique_email("changed")
    await gql.execute(REQUEST_EMAIL, {"e": new_email}, as_user=asker.email)
    done = (await gql.execute(CONFIRM_EMAIL, {"c": await last_code(new_email)}, as_user=await as_user(gql, other)))
    assert errors(done["data"]["confirmEmailChange"]) == [("INVALID", ["code"])]


async def test_an_expired_e_mail_change_code_has_expired(gql):
    user = await signed_in_user()
    who = await as_user(gql, user)
    new_email = factories.unique_email("changed")
    await gql.execute(REQUEST_EMAIL, {"e": new_email}, as_user=who)
    await VerificationCode.filter(target=new_email).update(expires_at=utcnow() - dt.timedelta(seconds=1))
    done = (await gql.execute(CONFIRM_EMAIL, {"c": await last_code(new_email)}, as_user=who))["data"]["confirmEmailChange"]
    assert errors(done) == [("EXPIRED", ["code"])]


async def test_changing_the_e_mail_needs_a_signed_in_user(gql):
    body = await gql.execute(REQUEST_EMAIL, {"e": factories.unique_email()})
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    body = await gql.execute(CONFIRM_EMAIL, {"c": "123456"})
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
