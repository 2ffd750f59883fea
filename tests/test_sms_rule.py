"""SMS go out only through a configured gateway (finding 10 of issue 17).

Before, with only SMTP configured an SMS was logged with its code and counted as SENT. Now an SMS
goes to the gateway of KABINET_SMS_URL, or (the embedded default's demo, a laptop: asked for by
KABINET_SMS_BY_MAIL_URL) to the mail URL's files or console; otherwise the mutations that would
send a code or a link by phone answer UNAVAILABLE, and an SMS queued anyway fails, visibly, its
text never logged. The test session seeds the demo with file:// mail: SMS are files there, and
each test here turns that off for itself.
"""

from __future__ import annotations

import logging

import pytest

from foundation.settings import Settings
from models.identity import User
from models.organizations import Role
from models.outbox import Channel, DeliveryStatus, OutboxMessage
from resolvers.common import outbox
from tests import factories
from tests.test_invites import INVITE, org_id, signed_in
from tests.test_recovery import REQUEST
from tests.test_signup import REGISTER, form
from workers import mail

UNAVAILABLE = "SMS are not configured on this server: use the e-mail instead."


@pytest.fixture
def no_sms(settings, monkeypatch):
    """This server as production without a gateway: SMS go nowhere."""
    monkeypatch.setattr(settings, "sms_by_mail_url", False)
    assert not settings.sms_available
    return settings


def test_sms_go_by_the_gateway_or_by_the_demo_s_files_and_else_nowhere(tmp_path):
    embedded = Settings(_env_file=None, data_dir=tmp_path)  # SQLite, the demo seeded, files in the data folder
    assert embedded.sms_available and embedded.sms_to_mail_url
    production = Settings(_env_file=None, data_dir=tmp_path, database_url="postgres://kabinet@db/kabinet")
    assert not production.sms_available, "PostgreSQL seeds no demo: no gateway, no SMS"
    assert production.model_copy(update={"sms_url": "https://sms.example/send"}).sms_available
    assert production.model_copy(update={"sms_by_mail_url": True, "mail_url": "console://"}).sms_available
    smtp = embedded.model_copy(update={"mail_url": "smtp://mail.example:25"})
    assert not smtp.sms_available, "SMTP cannot carry SMS, demo or not"
    assert not embedded.model_copy(update={"sms_by_mail_url": False}).sms_available


async def test_an_sms_with_only_smtp_configured_fails_visibly_and_its_code_is_never_logged(app, settings, caplog):
    phone = factories.unique_phone()
    message = await outbox.enqueue_sms(phone, "Код подтверждения: 604217")
    smtp_only = settings.model_copy(update={"mail_url": "smtp://127.0.0.1:1", "sms_by_mail_url": True})
    sender = mail.sender_for(smtp_only)
    assert isinstance(sender, mail.NoSms) and sender.describe() == "smtp://127.0.0.1:1, no SMS"
    caplog.set_level(logging.DEBUG, logger="kabinet")
    await mail.deliver_due(smtp_only, "test-no-sms", batch=100_000, sender=sender)
    await message.refresh_from_db()
    assert message.status == DeliveryStatus.PENDING and message.attempts == 1, "never counted as sent"
    assert message.last_error == "SmsUnavailable: SMS are not configured on this server (KABINET_SMS_URL)"
    logged = "\n".join(record.getMessage() for record in caplog.records if record.name.startswith("kabinet"))
    assert phone in logged and "604217" not in logged


async def test_without_sms_a_sign_up_by_phone_is_unavailable_and_by_e_mail_goes_on(gql, no_sms):
    data = form()
    payload = (await gql.execute(REGISTER, {"input": data}))["data"]["register"]
    assert payload["userErrors"] == [{"code": "UNAVAILABLE", "field": ["input", "confirmBy"], "message": UNAVAILABLE}]
    assert not await User.exists(phone=data["phone"]) and not await OutboxMessage.exists(recipient=data["phone"])
    payload = (await gql.execute(REGISTER, {"input": {**data, "confirmBy": "EMAIL"}}))["data"]["register"]
    assert payload["userErrors"] == [] and payload["codeSentTo"].endswith("@example.com")
    assert not await OutboxMessage.exists(recipient=data["phone"], channel=Channel.SMS)


async def test_without_sms_codes_and_links_by_phone_are_unavailable(gql, no_sms):
    user = await factories.create_user(phone=factories.unique_phone())
    reset = (await gql.execute(REQUEST, {"l": user.phone}))["data"]["requestPasswordReset"]
    assert reset["userErrors"] == [{"code": "UNAVAILABLE", "field": ["login"], "message": UNAVAILABLE}]
    assert (await gql.execute(REQUEST, {"l": user.email}))["data"]["requestPasswordReset"]["userErrors"] == []
    organization, team = await factories.create_team(Role.OWNER)
    variables = {"input": {"organizationId": org_id(organization), "role": "USER", "phone": factories.unique_phone()}}
    invited = (await gql.execute(INVITE, variables, as_user=await signed_in(gql, team[Role.OWNER])))["data"]["inviteMember"]
    assert invited["invite"] is None
    assert invited["userErrors"] == [{"code": "UNAVAILABLE", "field": ["input", "phone"], "message": UNAVAILABLE}]
    assert not await OutboxMessage.exists(recipient=user.phone) and not await OutboxMessage.exists(
        recipient=variables["input"]["phone"]
    )
