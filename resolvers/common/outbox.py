"""The outbox: e-mail and SMS queued in the caller's transaction, and every change of a message's
delivery status (one owner: the mail worker and the staff's retry both go through here).

Domain functions send a message by its template (`email`, `sms`: resolvers/messages/<name>.txt,
filled with exactly the variables it names); `enqueue_*` take a text already written.

A message is PENDING until the mail worker (workers/mail.py) sends it (`sent` → SENT) or fails to
(`attempt_failed`: PENDING again with a later try, or FAILED after the last one); staff put a
FAILED one back (`retry` → PENDING, its attempts counted anew).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timedelta

from models.outbox import Channel, DeliveryStatus, OutboxMessage
from foundation.clock import utcnow
from foundation.settings import Settings
from resolvers import messages
from resolvers.common.errors import ErrorCode, UserFacingError

MAX_ATTEMPTS = 8  # the 8th failure makes the message FAILED
BACKOFF_FIRST = timedelta(seconds=30)  # then 1, 2, 4, … minutes
BACKOFF_MAX = timedelta(hours=1)


# (not before, digest key) of the e-mails queued inside `deferred` (resolvers/common/notifications.py)
_DEFERRED: ContextVar[tuple[datetime, str | None] | None] = ContextVar("kabinet_outbox_deferred", default=None)


@contextmanager
def deferred(not_before: datetime, digest_key: str | None = None) -> Iterator[None]:
    """E-mails queued in the block wait until `not_before` (a send window's start, a digest's end),
    and with `digest_key` the mail worker sends the due ones of that key as one letter."""
    token = _DEFERRED.set((not_before, digest_key))
    try:
        yield
    finally:
        _DEFERRED.reset(token)


async def enqueue_email(to: str, subject: str, body: str, template: str | None = None) -> OutboxMessage:
    not_before, digest_key = _DEFERRED.get() or (utcnow(), None)
    return await OutboxMessage.create(
        channel=Channel.EMAIL, recipient=to, subject=subject, body=body, next_attempt_at=not_before, template=template,
        digest_key=digest_key,
    )


async def enqueue_sms(to: str, text: str, template: str | None = None) -> OutboxMessage:
    return await OutboxMessage.create(
        channel=Channel.SMS, recipient=to, subject="", body=text, next_attempt_at=utcnow(), template=template,
    )


async def email(to: str, template: str, **values: str | int) -> OutboxMessage:
    """The e-mail `template` (it must have a subject) filled with `values`."""
    message = messages.render(template, **values)
    if message.subject is None:
        raise messages.MessageError(f"{template} is an SMS (no «Тема:»), not an e-mail.")
    return await enqueue_email(to, message.subject, message.text, template)


async def sms(to: str, template: str, **values: str | int) -> OutboxMessage:
    """The SMS `template` (it must have no subject) filled with `values`."""
    message = messages.render(template, **values)
    if message.subject is not None:
        raise messages.MessageError(f"{template} is an e-mail (it has «Тема:»), not an SMS.")
    return await enqueue_sms(to, message.text, template)


def require_sms(settings: Settings, field: str) -> None:
    """UNAVAILABLE, naming `field`, where no SMS can reach a phone (`Settings.sms_available`: no gateway,
    and not the demo's files): a code or link by phone is refused, never queued to go nowhere."""
    if not settings.sms_available:
        raise UserFacingError(
            ErrorCode.UNAVAILABLE, "SMS are not configured on this server: use the e-mail instead.", field
        )


# ---------------------------------------------------------------- delivery status: its one owner


def backoff(attempts: int) -> timedelta:
    """Wait before the next try after `attempts` failures: 30 s, 1 min, 2 min, … at most an hour."""
    return min(BACKOFF_FIRST * (2 ** max(attempts - 1, 0)), BACKOFF_MAX)


async def sent(message: OutboxMessage, lease_owner: str) -> bool:
    """PENDING → SENT, by the worker holding the message's lease (False: the lease was lost)."""
    return bool(await OutboxMessage.filter(id=message.id, lease_owner=lease_owner).update(
        status=DeliveryStatus.SENT, sent_at=utcnow(), attempts=message.attempts + 1, last_error=None,
        lease_owner=None, lease_expires_at=None,
    ))


class DigestLeaseLost(Exception):
    """A letter of a digest left the worker's lease meanwhile: the digest's transaction rolls back."""


async def folded(messages: list[OutboxMessage], lease_owner: str, into: OutboxMessage) -> None:
    """PENDING → SENT for the letters of a digest, by the worker holding their lease, once their text
    is in the digest letter `into` (queued in the same transaction), which is then leased to that
    worker as they were. DigestLeaseLost when any of them is no longer the worker's: their text
    must not go out twice (the caller's transaction rolls back)."""
    marked = await OutboxMessage.filter(id__in=[m.id for m in messages], lease_owner=lease_owner).update(
        status=DeliveryStatus.SENT, sent_at=utcnow(), last_error=None,
        lease_owner=None, lease_expires_at=None,
    )
    if marked != len(messages):
        raise DigestLeaseLost
    await OutboxMessage.filter(id=into.id).update(lease_owner=lease_owner, lease_expires_at=messages[0].lease_expires_at)
    await into.refresh_from_db()


async def attempt_failed(message: OutboxMessage, lease_owner: str, reason: str) -> DeliveryStatus:
    """A try that failed: PENDING again after the backoff, or FAILED after the last of MAX_ATTEMPTS.
    `reason` is kept as `last_error` (the sender keeps secrets out of it: workers/sms.py)."""
    attempts = message.attempts + 1
    now = utcnow()
    status = DeliveryStatus.FAILED if attempts >= MAX_ATTEMPTS else DeliveryStatus.PENDING
    await OutboxMessage.filter(id=message.id, lease_owner=lease_owner).update(
        status=status, attempts=attempts, last_error=reason[:1000], next_attempt_at=now + backoff(attempts),
        failed_at=now if status is DeliveryStatus.FAILED else None, lease_owner=None, lease_expires_at=None,
    )
    return status


async def retry(message_id: uuid.UUID) -> OutboxMessage | None:
    """FAILED → PENDING, due now, its attempts counted from 0 again (the last error stays until a
    try succeeds); None when no FAILED message has that id. Conditional: of two retries, one counts."""
    changed = await OutboxMessage.filter(id=message_id, status=DeliveryStatus.FAILED).update(
        status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=utcnow(), failed_at=None,
        lease_owner=None, lease_expires_at=None,
    )
    return await OutboxMessage.get(id=message_id) if changed else None

