"""Delivering the outbox: letters as .eml files, retries when the mail server is down, leases."""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
from pathlib import Path

from models.organizations import Role
from models.outbox import DeliveryStatus, OutboxMessage
from resolvers.common import outbox
from foundation.ids import to_global_id
from tests import factories
from tests.factories import PASSWORD
from workers import mail

# The whole session shares one outbox: a round may meet other tests' messages, so rounds are big
# and the assertions look at this test's own messages only.
ALL = 100_000


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def eml_for(folder: Path, message: OutboxMessage) -> Path:
    (path,) = folder.glob(f"*-{message.id}.eml")
    return path


async def test_an_invite_letter_is_written_as_an_eml_file_naming_the_organization_and_the_link(gql, settings):
    organization, team = await factories.create_team()
    address = factories.unique_email("letter")
    await gql.token_for_password(team[Role.OWNER].email, PASSWORD)
    body = await gql.execute(
        """mutation($o: ID!, $e: String!) { inviteMember(input: {organizationId: $o, email: $e, role: ACCOUNTANT}) {
        userErrors { code } } }""",
        {"o": to_global_id("Organization", organization.id), "e": address}, as_user=team[Role.OWNER].email,
    )
    assert body["data"]["inviteMember"]["userErrors"] == []
    assert await mail.deliver_due(settings, "test-mail", batch=ALL) >= 1
    message = await OutboxMessage.get(recipient=address)
    assert message.status == DeliveryStatus.SENT and message.sent_at is not None and message.lease_owner is None
    raw = eml_for(Path(settings.mail_url.removeprefix("file://")), message).read_bytes()
    assert b"=?utf-8?" in raw.split(b"\n\n", 1)[0].lower(), "the Russian subject is RFC 2047-encoded"
    letter = email.message_from_bytes(raw, policy=email.policy.default)
    assert letter["To"] == address and letter["Subject"] == "Подтверждение приглашения в сервис"
    text = letter.get_content()
    assert organization.name in text and organization.code in text
    assert "http://127.0.0.1:8000/invite?token=" in text


async def test_an_sms_is_written_as_a_text_file(settings, tmp_path):
    phone = factories.unique_phone()
    message = await outbox.enqueue_sms(phone, "Код 123456")
    files = settings.model_copy(update={"mail_url": f"file://{tmp_path}"})
    await mail.deliver_due(files, "test-mail", batch=ALL)
    (path,) = tmp_path.glob(f"*-{message.id}.sms.txt")
    assert path.read_text(encoding="utf-8") == f"To: {phone}\n\nКод 123456\n"


async def test_a_mail_server_that_is_down_leaves_the_message_pending_for_a_later_try(settings):
    message = await outbox.enqueue_email(factories.unique_email(), "Тема", "Текст")
    down = settings.model_copy(update={"mail_url": "smtp://127.0.0.1:1"})  # nothing listens on port 1
    await mail.deliver_due(down, "test-mail", batch=ALL)
    await message.refresh_from_db()
    assert message.status == DeliveryStatus.PENDING and message.attempts == 1
    assert message.next_attempt_at > now() + dt.timedelta(seconds=20)
    assert message.last_error and message.lease_owner is None and message.lease_expires_at is None


async def test_a_message_is_given_up_as_failed_after_the_eighth_attempt(settings):
    message = await outbox.enqueue_email(factories.unique_email(), "Тема", "Текст")
    await OutboxMessage.filter(id=message.id).update(attempts=7)
    down = settings.model_copy(update={"mail_url": "smtp://127.0.0.1:1"})
    await mail.deliver_due(down, "test-mail", batch=ALL)
    await message.refresh_from_db()
    assert message.status == DeliveryStatus.FAILED and message.attempts == 8 and message.last_error


async def test_a_message_not_yet_due_waits(settings, tmp_path):
    message = await outbox.enqueue_email(factories.unique_email(), "Тема", "Текст")
    await OutboxMessage.filter(id=message.id).update(next_attempt_at=now() + dt.timedelta(minutes=5))
    await mail.deliver_due(settings.model_copy(update={"mail_url": f"file://{tmp_path}"}), "test-mail", batch=ALL)
    assert (await OutboxMessage.get(id=message.id)).status == DeliveryStatus.PENDING
    assert not list(tmp_path.glob(f"*-{message.id}.eml"))


async def test_a_message_leased_by_another_worker_is_left_alone_until_the_lease_ends(settings, tmp_path):
    message = await outbox.enqueue_email(factories.unique_email(), "Тема", "Текст")
    await OutboxMessage.filter(id=message.id).update(lease_owner="other", lease_expires_at=now() + dt.timedelta(minutes=1))
    files = settings.model_copy(update={"mail_url": f"file://{tmp_path}"})
    await mail.deliver_due(files, "test-mail", batch=ALL)
    assert (await OutboxMessage.get(id=message.id)).status == DeliveryStatus.PENDING
    await OutboxMessage.filter(id=message.id).update(lease_expires_at=now() - dt.timedelta(seconds=1))
    await mail.deliver_due(files, "test-mail", batch=ALL)
    assert (await OutboxMessage.get(id=message.id)).status == DeliveryStatus.SENT


class Recorder:
    """A sender that takes its time, to let two workers overlap."""

    def __init__(self) -> None:
        self.sent: list = []

    async def send_email(self, message: OutboxMessage) -> None:
        await asyncio.sleep(0.01)
        self.sent.append(message.id)

    async def send_sms(self, message: OutboxMessage) -> None:
        await self.send_email(message)

    def describe(self) -> str:
        return "recorder"


async def test_two_workers_at_once_send_each_message_once(settings):
    ours = [await outbox.enqueue_email(factories.unique_email(), "Тема", f"Письмо {i}") for i in range(10)]
    first, second = Recorder(), Recorder()
    await asyncio.gather(
        mail.deliver_due(settings, "worker-a", batch=ALL, sender=first),
        mail.deliver_due(settings, "worker-b", batch=ALL, sender=second),
    )
    ids = {m.id for m in ours}
    sent = [i for i in first.sent + second.sent if i in ids]
    assert sorted(sent) == sorted(ids)
    assert await OutboxMessage.filter(id__in=list(ids), status=DeliveryStatus.SENT).count() == 10


async def test_the_worker_loop_delivers_and_stops_when_told(settings, tmp_path):
    message = await outbox.enqueue_sms(factories.unique_phone(), "Привет")
    stop = asyncio.Event()
    worker = asyncio.create_task(mail.run_mail_worker(settings.model_copy(update={"mail_url": f"file://{tmp_path}"}), stop))
    for _ in range(100):
        if list(tmp_path.glob(f"*-{message.id}.sms.txt")):
            break
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(worker, timeout=5)
    assert (await OutboxMessage.get(id=message.id)).status == DeliveryStatus.SENT


def test_the_mail_url_chooses_the_sender(settings):
    default = mail.sender_for(settings.model_copy(update={"mail_url": None}))
    assert isinstance(default, mail.FileSender) and default.folder == (settings.data_dir / "outbox").resolve()
    smtp = mail.mail_sender_for(settings.model_copy(update={"mail_url": "smtp://bot%40corp:p%40ss@mail.corp:587?starttls=true"}))
    assert (smtp.host, smtp.port, smtp.username, smtp.password, smtp.starttls) == ("mail.corp", 587, "bot@corp", "p@ss", True)
    assert isinstance(mail.sender_for(settings.model_copy(update={"mail_url": "console://"})), mail.ConsoleSender)


def test_backoff_doubles_up_to_an_hour():
    assert [mail.backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert mail.backoff(20) == dt.timedelta(hours=1)


class TinySmtpServer:
    """Just enough SMTP (no auth, no TLS) to receive messages, for the SMTP sender to talk to."""

    def __init__(self) -> None:
        self.received: list[bytes] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 tiny ESMTP\r\n")
        while line := await reader.readline():
            verb = line[:4].upper()
            if verb == b"EHLO":
                writer.write(b"250-tiny\r\n250 8BITMIME\r\n")
            elif verb == b"DATA":
                writer.write(b"354 go on\r\n")
                await writer.drain()
                data = b""
                while (chunk := await reader.readline()) != b".\r\n":
                    data += chunk
                self.received.append(data)
                writer.write(b"250 queued\r\n")
            elif verb == b"QUIT":
                writer.write(b"221 bye\r\n")
                await writer.drain()
                break
            else:
                writer.write(b"250 ok\r\n")
            await writer.drain()
        writer.close()


async def test_an_smtp_server_receives_the_letter_and_the_message_is_sent(settings):
    server = TinySmtpServer()
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    address = factories.unique_email("smtp")
    message = await outbox.enqueue_email(address, "Добавление к абоненту", "Вас добавили к абоненту.")
    try:
        smtp = settings.model_copy(update={"mail_url": f"smtp://127.0.0.1:{port}?from=kabinet@example.com"})
        await mail.deliver_due(smtp, "test-mail", batch=ALL)
    finally:
        listener.close()
    assert (await OutboxMessage.get(id=message.id)).status == DeliveryStatus.SENT
    raw = next(r for r in server.received if address.encode() in r)
    letter = email.message_from_bytes(raw, policy=email.policy.default)
    assert letter["Subject"] == "Добавление к абоненту" and letter["From"] == "kabinet@example.com"
    assert letter.get_content().strip() == "Вас добавили к абоненту."
