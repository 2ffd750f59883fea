"""SMS through an HTTP gateway: a stand-in gateway on 127.0.0.1 receives what real mutations send.

The session shares one outbox, so a delivery round may carry other tests' SMS to the stand-in
too: it answers them like ours and the assertions look at this test's own phone only.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import re
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import SecretStr

from foundation.ids import to_global_id
from models.organizations import Membership, Role
from models.identity import User
from models.outbox import DeliveryStatus, OutboxMessage
from resolvers.common import outbox
from tests import factories
from tests.factories import PASSWORD
from workers import mail
from workers.sms import GatewaySender, phone_for

ALL = 100_000
TOKEN = "tok-3f9a_SECRET"
PASSWORD_SECRET = "p@ss word/SECRET"

REGISTER = """mutation($input: RegisterInput!) { register(input: $input) { registrationId userErrors { code } } }"""
CONFIRM = """mutation($id: ID!, $code: String!) { confirmRegistration(registrationId: $id, code: $code) {
  accessToken userErrors { code } } }"""
REQUEST_REMOVAL = """mutation($m: ID!) { requestMemberRemoval(membershipId: $m) { requestId userErrors { code } } }"""


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    @property
    def form(self) -> dict[str, str]:
        return {k: v[-1] for k, v in parse_qs(self.body.decode()).items()}

    @property
    def json(self) -> dict:
        return json.loads(self.body)


class Gateway:
    """A stand-in SMS gateway: records every request and answers with `answer(request)`."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.answer: Callable[[Received], tuple[int, str]] = lambda request: (200, "OK")
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._handle()

            def do_POST(self) -> None:
                self._handle()

            def _handle(self) -> None:
                parts = urlsplit(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                request = Received(
                    self.command, parts.path, {k: v[-1] for k, v in parse_qs(parts.query).items()},
                    {k.lower(): v for k, v in self.headers.items()}, body,
                )
                gateway.received.append(request)
                status, text = gateway.answer(request)
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json" if text.startswith("{") else "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def to(self, key: str, phone: str, where: str = "query") -> list[Received]:
        """The requests whose parameter `key` (in the query, form or JSON body) is `phone`."""
        def value(request: Received) -> object:
            return getattr(request, where).get(key)

        return [request for request in self.received if value(request) == phone]


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    server = Gateway()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


def sms_ru(settings, gateway: Gateway, **changes):
    """SMS.ru style: GET with the key, phone and text in the query; the answer says per number whether it went."""
    return settings.model_copy(update={
        "sms_url": f"{gateway.url}/sms/send?json=1", "sms_method": "GET", "sms_params_in": "query",
        "sms_params": {"api_id": "{token}", "to": "{phone}", "msg": "{text}", "from": "{sender}"},
        "sms_token": SecretStr(TOKEN), "sms_ok_json": "sms.{phone}.status=OK", **changes,
    })


def sms_ru_answer(status: str = "OK") -> Callable[[Received], tuple[int, str]]:
    def answer(request: Received) -> tuple[int, str]:
        phone = request.query.get("to", "")
        return 200, json.dumps({"status": "OK", "sms": {phone: {"status": status, "status_code": 100 if status == "OK" else 207}}})

    return answer


async def sign_up(gql) -> tuple[str, str]:
    phone = factories.unique_phone()
    payload = (await gql.execute(REGISTER, {"input": {
        "fullName": "Смсов Семён", "phone": phone, "email": factories.unique_email("sms"), "password": PASSWORD,
    }}))["data"]["register"]
    assert payload["userErrors"] == [], payload
    return phone, payload["registrationId"]


def logged_by_us(caplog) -> str:
    """What kabinet logs, and anything at INFO or above. (The database driver's DEBUG lines echo
    query parameters, an outbox row's text included: DEBUG is not run in production.)"""
    return "\n".join(
        record.getMessage() for record in caplog.records
        if record.levelno >= logging.INFO or record.name.startswith("kabinet")
    )


def no_secrets_in(text: str, *secrets: str) -> bool:
    return not any(secret and secret in text for secret in secrets)


async def test_a_sign_up_code_reaches_an_sms_ru_style_gateway_by_get_and_confirms_the_account(gql, settings, gateway, caplog):
    gateway.answer = sms_ru_answer()
    phone, registration_id = await sign_up(gql)
    caplog.set_level(logging.DEBUG)
    await mail.deliver_due(sms_ru(settings, gateway), "test-sms", batch=ALL)

    (request,) = gateway.to("to", phone_for(phone, "digits"))
    assert request.method == "GET" and request.path == "/sms/send"
    assert request.query["to"] == phone[1:] and request.query["api_id"] == TOKEN
    assert request.query["json"] == "1", "the URL's own query is kept"
    assert "from" not in request.query, "no empty sender"
    code = re.search(r"Код подтверждения: (\d{6})", request.query["msg"]).group(1)
    message = await OutboxMessage.get(recipient=phone)
    assert message.status == DeliveryStatus.SENT and message.body == request.query["msg"]
    assert (await gql.execute(CONFIRM, {"id": registration_id, "code": code}))["data"]["confirmRegistration"]["userErrors"] == []
    logged = logged_by_us(caplog)
    assert no_secrets_in(logged, TOKEN, code), "neither the key nor the code is logged"


async def test_a_removal_code_goes_by_post_with_a_json_body_a_token_header_and_the_sender(gql, settings, gateway):
    organization, team = await factories.create_team(Role.USER)
    owner = team[Role.OWNER]
    phone = factories.unique_phone()
    await User.filter(id=owner.id).update(phone=phone)
    gateway.answer = lambda request: (200, '{"success": true, "data": {"id": 1}}')
    membership = await Membership.get(organization_id=organization.id, user_id=team[Role.USER].id)
    await gql.token_for_password(owner.email, PASSWORD)
    body = await gql.execute(REQUEST_REMOVAL, {"m": to_global_id("Membership", membership.id)}, as_user=owner.email)
    assert body["data"]["requestMemberRemoval"]["userErrors"] == [], body

    aero = settings.model_copy(update={
        "sms_url": f"{gateway.url}/v2/sms/send", "sms_method": "POST", "sms_params_in": "json",
        "sms_params": {"messages": [{"number": "{phone}", "text": "{text}"}], "sign": "{sender}", "ref": "{id}"},
        "sms_headers": {"Authorization": "Bearer {token}"}, "sms_token": SecretStr(TOKEN), "sms_sender": "KABINET",
        "sms_phone_format": "plus", "sms_ok_json": "success=true",
    })
    await mail.deliver_due(aero, "test-sms", batch=ALL)

    (request,) = [r for r in gateway.received if r.json["messages"][0]["number"] == phone]
    message = await OutboxMessage.get(recipient=phone)
    assert request.method == "POST" and request.headers["content-type"] == "application/json"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.json == {"messages": [{"number": phone, "text": message.body}], "sign": "KABINET", "ref": str(message.id)}
    assert re.match(r"Код \d{6}: удаление пользователя", message.body)
    assert message.status == DeliveryStatus.SENT


async def test_a_form_post_with_basic_auth_counts_as_sent_only_when_the_answer_says_ok(settings, gateway):
    phone = factories.unique_phone()
    message = await outbox.enqueue_sms(phone, "Код 482913")
    smsc = settings.model_copy(update={
        "sms_url": f"{gateway.url}/sys/send.php", "sms_method": "POST", "sms_params_in": "form",
        "sms_params": {"phones": "{phone}", "mes": "{text}", "charset": "utf-8"},
        "sms_login": "kabinet", "sms_password": SecretStr(PASSWORD_SECRET), "sms_basic_auth": True, "sms_ok_text": "OK - ",
    })
    gateway.answer = lambda request: (200, "ERROR = 2 (bad login)" if request.form.get("phones") == phone[1:] else "OK - 1 SMS")
    await mail.deliver_due(smsc, "test-sms", batch=ALL)
    await message.refresh_from_db()
    assert message.status == DeliveryStatus.PENDING and message.attempts == 1
    assert "ERROR = 2 (bad login)" in message.last_error and "OK - " in message.last_error

    gateway.answer = lambda request: (200, "OK - 1 SMS, ID - 7")
    await OutboxMessage.filter(id=message.id).update(next_attempt_at=dt.datetime.now(dt.timezone.utc))
    await mail.deliver_due(smsc, "test-sms", batch=ALL)
    await message.refresh_from_db()
    assert message.status == DeliveryStatus.SENT and message.last_error is None
    request = gateway.to("phones", phone[1:], "form")[-1]
    assert request.form == {"phones": phone[1:], "mes": "Код 482913", "charset": "utf-8"}
    assert request.headers["authorization"].startswith("Basic ")
    import base64
    assert base64.b64decode(request.headers["authorization"][6:]).decode() == f"kabinet:{PASSWORD_SECRET}"


async def test_a_gateway_answering_500_is_retried_and_the_message_finally_failed_with_the_error_kept(settings, gateway, caplog):
    phone = factories.unique_phone()
    message = await outbox.enqueue_sms(phone, "Код 715302: вход в кабинет")
    digits = phone[1:]

    def answer(request: Received) -> tuple[int, str]:
        if request.query.get("to") != digits:
            return sms_ru_answer()(request)
        return 500, f"Internal error at {request.path}?api_id={TOKEN}&msg={request.query['msg']}"

    gateway.answer = answer
    caplog.set_level(logging.DEBUG)
    gateway_settings = sms_ru(settings, gateway)
    await mail.deliver_due(gateway_settings, "test-sms", batch=ALL)
    await message.refresh_from_db()
    assert message.status == DeliveryStatus.PENDING and message.attempts == 1
    assert message.next_attempt_at > dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=20)
    assert message.last_error.startswith("SmsGatewayError: HTTP 500: Internal error at /sms/send")
    assert no_secrets_in(message.last_error, TOKEN, "715302", message.body)

    await OutboxMessage.filter(id=message.id).update(attempts=mail.MAX_ATTEMPTS - 1, next_attempt_at=dt.datetime.now(dt.timezone.utc))
    await mail.deliver_due(gateway_settings, "test-sms", batch=ALL)
    await message.refresh_from_db()
    assert message.status == DeliveryStatus.FAILED and message.attempts == mail.MAX_ATTEMPTS
    assert "HTTP 500" in message.last_error
    assert len(gateway.to("to", digits)) == 2
    logged = logged_by_us(caplog)
    assert phone in logged and "HTTP 500" in logged, "the failure itself is logged"
    assert no_secrets_in(logged, TOKEN, "715302")

    failed = await OutboxMessage.filter(status=DeliveryStatus.FAILED)
    listed = [mail.failure_line(m) for m in failed if m.id == message.id]
    assert len(listed) == 1 and phone in listed[0] and "HTTP 500" in listed[0] and "715302" not in listed[0]


async def test_an_error_in_a_200_answer_is_a_failure_kept_on_the_message(settings, gateway):
    phone = factories.unique_phone()
    message = await outbox.enqueue_sms(phone, "Код 640028")
    gateway.answer = lambda request: (200, '{"status": "ERROR", "status_code": 200, "status_text": "Неправильный api_id"}') \
        if request.query.get("to") == phone[1:] else sms_ru_answer()(request)
    await mail.deliver_due(sms_ru(settings, gateway), "test-sms", batch=ALL)
    await message.refresh_from_db()
    assert message.status == DeliveryStatus.PENDING and message.attempts == 1
    assert f"the answer has no sms.{phone[1:]}.status" in message.last_error and "Неправильный api_id" in message.last_error

    gateway.answer = sms_ru_answer("ERROR")  # SMS.ru: the request went through, this number did not
    await OutboxMessage.filter(id=message.id).update(attempts=mail.MAX_ATTEMPTS - 1, next_attempt_at=dt.datetime.now(dt.timezone.utc))
    await mail.deliver_due(sms_ru(settings, gateway), "test-sms", batch=ALL)
    await message.refresh_from_db()
    assert message.status == DeliveryStatus.FAILED
    assert f"sms.{phone[1:]}.status is 'ERROR', not 'OK'" in message.last_error


async def test_a_gateway_that_cannot_be_reached_leaves_the_sms_pending(settings):
    message = await outbox.enqueue_sms(factories.unique_phone(), "Код 120394")
    down = settings.model_copy(update={
        "sms_url": "http://127.0.0.1:1/send", "sms_params": {"to": "{phone}", "text": "{text}", "key": "{token}"},
        "sms_token": SecretStr(TOKEN), "sms_timeout_seconds": 2.0,
    })
    await mail.deliver_due(down, "test-sms", batch=ALL)
    await message.refresh_from_db()
    assert message.status == DeliveryStatus.PENDING and message.attempts == 1
    assert message.last_error.startswith("SmsGatewayError: ConnectError")
    assert no_secrets_in(message.last_error, TOKEN, "120394")


async def test_with_a_gateway_sms_go_to_it_and_e_mail_still_by_the_mail_url(settings, gateway, tmp_path):
    gateway.answer = sms_ru_answer()
    phone, address = factories.unique_phone(), factories.unique_email("routed")
    sms = await outbox.enqueue_sms(phone, "Привет")
    letter = await outbox.enqueue_email(address, "Тема", "Текст")
    routed = sms_ru(settings, gateway, mail_url=f"file://{tmp_path}")
    await mail.deliver_due(routed, "test-sms", batch=ALL)
    assert len(gateway.to("to", phone[1:])) == 1
    assert list(tmp_path.glob(f"*-{letter.id}.eml")) and not list(tmp_path.glob(f"*-{sms.id}.sms.txt"))
    assert {m.status for m in await OutboxMessage.filter(id__in=[sms.id, letter.id])} == {DeliveryStatus.SENT}


def test_the_gateway_settings_choose_the_sender_and_a_get_carries_no_body(settings):
    assert isinstance(mail.sender_for(settings), mail.FileSender), "without a gateway nothing changes"
    routed = mail.sender_for(settings.model_copy(update={
        "sms_url": "https://sms.example/send?api_id=SECRET", "mail_url": "console://", "sms_method": "GET", "sms_params_in": "query",
    }))
    assert isinstance(routed, mail.SmsByGateway) and isinstance(routed.mail, mail.ConsoleSender)
    assert routed.describe() == "console://, SMS to GET https://sms.example/send", "the query (credentials) is not shown"
    with pytest.raises(ValueError, match="GET"):
        GatewaySender(url="https://sms.example/send", method="GET", params_in="json")
    with pytest.raises(ValueError, match="http"):
        GatewaySender(url="ftp://sms.example/send")
    assert phone_for("+7 916 123-45-67", "digits") == "79161234567" and phone_for("+79161234567", "plus") == "+79161234567"


def test_the_gateway_is_configured_by_kabinet_sms_environment_variables(monkeypatch):
    from foundation.settings import Settings

    monkeypatch.setenv("KABINET_SMS_URL", "https://sms.ru/sms/send?json=1")
    monkeypatch.setenv("KABINET_SMS_METHOD", "GET")
    monkeypatch.setenv("KABINET_SMS_PARAMS_IN", "query")
    monkeypatch.setenv("KABINET_SMS_PARAMS", '{"api_id": "{token}", "to": "{phone}", "msg": "{text}"}')
    monkeypatch.setenv("KABINET_SMS_TOKEN", TOKEN)
    monkeypatch.setenv("KABINET_SMS_OK_JSON", "sms.{phone}.status=OK")
    configured = Settings(_env_file=None)
    assert configured.sms_params == {"api_id": "{token}", "to": "{phone}", "msg": "{text}"}
    assert configured.sms_token.get_secret_value() == TOKEN and TOKEN not in repr(configured)
    sender = GatewaySender.from_settings(configured)
    assert (sender.method, sender.params_in, sender.token) == ("GET", "query", TOKEN)


async def test_staff_list_the_failed_messages_with_kabinet_outbox_failed(settings):
    message = await outbox.enqueue_sms(factories.unique_phone(), "Код 900417")
    await OutboxMessage.filter(id=message.id).update(
        status=DeliveryStatus.FAILED, attempts=8, last_error="SmsGatewayError: HTTP 503: busy"
    )
    environment = {
        **os.environ, "KABINET_DATABASE_URL": settings.resolved_database_url, "KABINET_DATA_DIR": str(settings.data_dir),
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "kabinet.cli", "outbox", "failed", "--limit", "1000", env=environment,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, err.decode()
    (line,) = [line for line in out.decode().splitlines() if str(message.id) in line]
    assert message.recipient in line and "attempts=8" in line and "HTTP 503: busy" in line and "900417" not in line
