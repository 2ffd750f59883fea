"""Delivery of the outbox: e-mail and SMS written by mutations, sent here, with retries.

A mutation writes an `OutboxMessage` in its own transaction (resolvers/common/outbox.py), so a message
exists exactly when the change that caused it committed. This worker claims due messages with a
lease, sends them, and marks them SENT; a failure is retried with exponential backoff and the
message becomes FAILED after 8 attempts. Nothing is lost while the sender is down: the message
stays PENDING. Delivery is at least once: a worker that dies after sending but before marking
leaves the message to be sent again when its lease expires.

Where messages go is `KABINET_MAIL_URL`:
- `smtp://user:pass@host:port` (`smtps://` for implicit TLS, `?starttls=true` to upgrade;
  `?from=` the sender address). SMTP cannot carry SMS.
- `file:///dir`: one RFC 5322 `.eml` file per e-mail and one `.sms.txt` per SMS, for a laptop
  or a test to read. The embedded default when unset: `file://<data_dir>/outbox`.
- `console://`: written to the log.

SMS go to the HTTP gateway of `KABINET_SMS_URL` when it is set (workers/sms.py), whatever the
mail URL; e-mail still goes by the mail URL. Without a gateway they go to the mail URL's files or
console only where `Settings.sms_to_mail_url` says (a laptop, the demo); otherwise an SMS is never
sent: the mutations that would send one answer UNAVAILABLE (`resolvers/common/outbox.py` `require_sms`),
and one queued anyway fails (`NoSms`), visibly, with its retries, never counted as sent or logged.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from foundation.clock import utcnow
from foundation.settings import Settings
from models.outbox import Channel, DeliveryStatus, OutboxMessage
from resolvers.common import outbox
from resolvers.common.outbox import MAX_ATTEMPTS, backoff  # noqa: F401 (the worker's policy, read by tests)
from resolvers.common import notifications
from resolvers.common.notifications import DIGEST_MAX_LETTERS
from workers.loop import every
from workers.sms import GatewaySender

log = logging.getLogger("kabinet.mail")

LEASE = timedelta(minutes=5)  # longer than any one send may take (SMTP timeout below)
SMTP_TIMEOUT_SECONDS = 30
POLL_SECONDS = 1.0
DEFAULT_FROM = "Личный кабинет <noreply@kabinet.local>"


class MailSender(Protocol):
    """Sends one message or raises; `describe` names where messages go (for the log)."""

    async def send_email(self, message: OutboxMessage) -> None: ...

    async def send_sms(self, message: OutboxMessage) -> None: ...

    def describe(self) -> str: ...


def build_email(message: OutboxMessage, sender: str, transfer_encoding: str = "8bit") -> EmailMessage:
    """An RFC 5322 message: UTF-8 text, the Cyrillic subject and sender name RFC 2047-encoded.

    8bit keeps a file readable as it is; over SMTP base64 passes servers without 8BITMIME."""
    email = EmailMessage()
    email["From"] = sender
    email["To"] = message.recipient
    email["Subject"] = message.subject
    email["Date"] = format_datetime(message.created_at or utcnow())
    email["Message-ID"] = make_msgid(idstring=str(message.id).replace("-", ""), domain="kabinet.local")
    email.set_content(message.body, charset="utf-8", cte=transfer_encoding)
    return email


@dataclass
class SmtpSender:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    implicit_tls: bool = False
    starttls: bool = False
    sender: str = DEFAULT_FROM

    async def send_email(self, message: OutboxMessage) -> None:
        email = build_email(message, self.sender, "base64")
        await asyncio.to_thread(self._send_blocking, email)

    def _send_blocking(self, email: EmailMessage) -> None:
        context = ssl.create_default_context()
        if self.implicit_tls:
            client: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port, timeout=SMTP_TIMEOUT_SECONDS, context=context)
        else:
            client = smtplib.SMTP(self.host, self.port, timeout=SMTP_TIMEOUT_SECONDS)
        with client:
            if self.starttls:
                client.starttls(context=context)
            if self.username:
                client.login(self.username, self.password or "")
            client.send_message(email)

    async def send_sms(self, message: OutboxMessage) -> None:
        raise SmsUnavailable(SMS_UNAVAILABLE)  # never reached: sender_for puts NoSms in front of SMTP

    def describe(self) -> str:
        return f"smtp{'s' if self.implicit_tls else ''}://{self.host}:{self.port}"


@dataclass
class FileSender:
    folder: Path
    sender: str = DEFAULT_FROM

    async def send_email(self, message: OutboxMessage) -> None:
        data = build_email(message, self.sender).as_bytes()
        await asyncio.to_thread(self._write, self._name(message, ".eml"), data)

    async def send_sms(self, message: OutboxMessage) -> None:
        text = f"To: {message.recipient}\n\n{message.body}\n"
        await asyncio.to_thread(self._write, self._name(message, ".sms.txt"), text.encode("utf-8"))

    def _name(self, message: OutboxMessage, suffix: str) -> str:
        created = message.created_at or utcnow()
        return f"{created:%Y%m%dT%H%M%S}-{message.id}{suffix}"

    def _write(self, name: str, data: bytes) -> None:
        """Whole files only: a reader never sees half a message."""
        self.folder.mkdir(parents=True, exist_ok=True)
        partial = self.folder / f".{name}.{uuid.uuid4().hex[:8]}.part"
        partial.write_bytes(data)
        partial.replace(self.folder / name)

    def describe(self) -> str:
        return f"file://{self.folder}"


class ConsoleSender:
    async def send_email(self, message: OutboxMessage) -> None:
        log.info("e-mail to %s\nSubject: %s\n\n%s", message.recipient, message.subject, message.body)

    async def send_sms(self, message: OutboxMessage) -> None:
        log.info("SMS to %s: %s", message.recipient, message.body)

    def describe(self) -> str:
        return "console://"


@dataclass
class SmsByGateway:
    """E-mail by the mail URL's sender, SMS by the HTTP gateway."""

    mail: MailSender
    gateway: GatewaySender

    async def send_email(self, message: OutboxMessage) -> None:
        await self.mail.send_email(message)

    async def send_sms(self, message: OutboxMessage) -> None:
        await self.gateway.send_sms(message)

    def describe(self) -> str:
        return f"{self.mail.describe()}, SMS to {self.gateway.describe()}"


SMS_UNAVAILABLE = "SMS are not configured on this server (KABINET_SMS_URL)"


class SmsUnavailable(Exception):
    """No way to send an SMS is configured: the message fails (and is retried, should one appear)."""


@dataclass
class NoSms:
    """E-mail by the mail URL's sender; every SMS fails: no gateway, and not the demo's files."""

    mail: MailSender

    async def send_email(self, message: OutboxMessage) -> None:
        await self.mail.send_email(message)

    async def send_sms(self, message: OutboxMessage) -> None:
        raise SmsUnavailable(SMS_UNAVAILABLE)

    def describe(self) -> str:
        return f"{self.mail.describe()}, no SMS"


def sender_for(settings: Settings) -> MailSender:
    """E-mail to where `KABINET_MAIL_URL` says; SMS to the gateway of `KABINET_SMS_URL` when set, to
    the mail URL's files or console where `Settings.sms_to_mail_url` says, else nowhere (`NoSms`)."""
    mail = mail_sender_for(settings)
    if settings.sms_url:
        return SmsByGateway(mail, GatewaySender.from_settings(settings))
    return mail if settings.sms_to_mail_url else NoSms(mail)


def mail_sender_for(settings: Settings) -> MailSender:
    """The sender `KABINET_MAIL_URL` names; files in `<data_dir>/outbox` when it is unset."""
    url = settings.mail_url or f"file://{(settings.data_dir / 'outbox').resolve()}"
    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    sender = query.get("from", DEFAULT_FROM)
    scheme = parts.scheme.lower()
    if scheme in ("smtp", "smtps"):
        if not parts.hostname:
            raise ValueError(f"KABINET_MAIL_URL names no SMTP host: {url!r}")
        return SmtpSender(
            host=parts.hostname,
            port=parts.port or (465 if scheme == "smtps" else 25),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            implicit_tls=scheme == "smtps",
            starttls=query.get("starttls", "").lower() in ("1", "true", "yes"),
            sender=sender,
        )
    if scheme == "file":
        return FileSender(Path(unquote(parts.netloc + parts.path)), sender=sender)
    if scheme == "console":
        return ConsoleSender()
    raise ValueError(f"KABINET_MAIL_URL must be smtp://, smtps://, file:// or console://, not {url!r}")


async def _claim(worker_id: str, batch: int, now: datetime) -> tuple[str, list[OutboxMessage]]:
    """Lease up to `batch` due PENDING messages to this call; other workers skip them until the lease ends."""
    lease_owner = f"{worker_id}/{uuid.uuid4().hex[:12]}"[-100:]
    free = Q(lease_expires_at=None) | Q(lease_expires_at__lt=now)
    async with in_transaction():
        # PostgreSQL: rows another worker is claiming right now are skipped, not waited for.
        # SQLite drops the lock clause; its single writer and the conditional UPDATE keep claims apart.
        ids = list(
            await OutboxMessage.filter(free, status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
            .order_by("next_attempt_at", "id").limit(batch)
            .select_for_update(skip_locked=True).values_list("id", flat=True)
        )
        if not ids:
            return lease_owner, []
        # A digest goes whole: the other due letters of its keys are claimed with it.
        keys = list(await OutboxMessage.filter(id__in=ids, digest_key__isnull=False).distinct().values_list("digest_key", flat=True))
        if keys:
            ids += list(
                await OutboxMessage.filter(
                    free, status=DeliveryStatus.PENDING, next_attempt_at__lte=now, digest_key__in=keys,
                ).exclude(id__in=ids).limit(DIGEST_MAX_LETTERS * len(keys))
                .select_for_update(skip_locked=True).values_list("id", flat=True)
            )
        await OutboxMessage.filter(free, id__in=ids, status=DeliveryStatus.PENDING).update(
            lease_owner=lease_owner, lease_expires_at=now + LEASE
        )
    claimed = await OutboxMessage.filter(id__in=ids, lease_owner=lease_owner).order_by("next_attempt_at", "id")
    return lease_owner, list(claimed)


async def deliver_due(settings: Settings, worker_id: str, batch: int = 20, *, sender: MailSender | None = None) -> int:
    """Send the messages that are due, at most `batch`; how many were sent.

    Each is marked SENT, or on failure keeps PENDING with `attempts` + 1, `last_error` and a later
    `next_attempt_at` (FAILED after the 8th failure).
    """
    sender = sender or sender_for(settings)
    lease_owner, messages = await _claim(worker_id, batch, utcnow())
    messages = await _fold_digests(messages, lease_owner)
    sent = 0
    for message in messages:
        try:
            if message.channel == Channel.SMS:
                await sender.send_sms(message)
            else:
                await sender.send_email(message)
        except Exception as error:  # noqa: BLE001 — any failure of the sender is retried later
            await _failed(message, lease_owner, error)
        else:
            await outbox.sent(message, lease_owner)
            sent += 1
    return sent


async def _fold_digests(messages: list[OutboxMessage], lease_owner: str) -> list[OutboxMessage]:
    """The claimed letters of each digest key and address become one letter (resolvers/common/notifications.py
    `fold_digest`, in one transaction); the others as they are. By address too: a user who changed
    their e-mail meanwhile never gets the new address's letters at the old one."""
    single, digests = [], {}
    for message in messages:
        if message.digest_key:
            digests.setdefault((message.digest_key, message.recipient), []).append(message)
        else:
            single.append(message)
    chunks = [group[i:i + DIGEST_MAX_LETTERS] for group in digests.values() for i in range(0, len(group), DIGEST_MAX_LETTERS)]
    for letters in chunks:  # a digest holds DIGEST_MAX_LETTERS at most: a longer one is another letter
        try:
            async with in_transaction():
                digest = await notifications.fold_digest(letters, lease_owner)
        except outbox.DigestLeaseLost:
            continue  # another worker holds them now: it folds and sends them
        if digest is not None:
            single.append(digest)
    return single


async def _failed(message: OutboxMessage, lease_owner: str, error: Exception) -> None:
    reason = f"{type(error).__name__}: {error}"[:1000]
    gave_up = message.attempts + 1 >= MAX_ATTEMPTS
    log.log(
        logging.ERROR if gave_up else logging.WARNING, "%s to %s failed (attempt %d of %d): %s",
        message.channel.value, message.recipient, message.attempts + 1, MAX_ATTEMPTS, reason,
    )
    await outbox.attempt_failed(message, lease_owner, reason)


def failure_line(message: OutboxMessage) -> str:
    """One failed message for a listing: when, channel, to whom, tries and the last error (never the text)."""
    return (
        f"{message.created_at:%Y-%m-%d %H:%M:%S} {message.channel.value:<5} {message.recipient} "
        f"attempts={message.attempts} id={message.id}: {message.last_error or ''}"
    )


async def run_mail_worker(settings: Settings, stop: asyncio.Event) -> None:
    """Deliver due messages about every second until `stop` is set; a full batch goes on at once."""
    sender = sender_for(settings)
    worker_id = f"mail-{uuid.uuid4().hex[:8]}"
    batch = 20
    log.info("mail worker %s delivers to %s", worker_id, sender.describe())
    await every(
        POLL_SECONDS, lambda: deliver_due(settings, worker_id, batch, sender=sender), stop, log=log,
        failed="mail delivery round failed", pause=lambda sent: 0 if sent >= batch else POLL_SECONDS,
    )
