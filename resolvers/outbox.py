"""Queue an e-mail or SMS in the caller's transaction; the mail worker delivers it, with retries."""

from __future__ import annotations

from models.outbox import Channel, OutboxMessage
from kabinet.clock import utcnow


async def enqueue_email(to: str, subject: str, body: str) -> OutboxMessage:
    return await OutboxMessage.create(channel=Channel.EMAIL, recipient=to, subject=subject, body=body, next_attempt_at=utcnow())


async def enqueue_sms(to: str, text: str) -> OutboxMessage:
    return await OutboxMessage.create(channel=Channel.SMS, recipient=to, subject="", body=text, next_attempt_at=utcnow())
