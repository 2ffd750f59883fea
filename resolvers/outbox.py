"""Queue an e-mail or SMS in the caller's transaction; the mail worker delivers it, with retries.

Domain functions send a message by its template (`email`, `sms`: resolvers/messages/<name>.txt,
filled with exactly the variables it names); `enqueue_*` take a text already written.
"""

from __future__ import annotations

from models.outbox import Channel, OutboxMessage
from kabinet.clock import utcnow
from resolvers import messages


async def enqueue_email(to: str, subject: str, body: str) -> OutboxMessage:
    return await OutboxMessage.create(channel=Channel.EMAIL, recipient=to, subject=subject, body=body, next_attempt_at=utcnow())


async def enqueue_sms(to: str, text: str) -> OutboxMessage:
    return await OutboxMessage.create(channel=Channel.SMS, recipient=to, subject="", body=text, next_attempt_at=utcnow())


async def email(to: str, template: str, **values: str | int) -> OutboxMessage:
    """The e-mail `template` (it must have a subject) filled with `values`."""
    message = messages.render(template, **values)
    if message.subject is None:
        raise messages.MessageError(f"{template} is an SMS (no «Тема:»), not an e-mail.")
    return await enqueue_email(to, message.subject, message.text)


async def sms(to: str, template: str, **values: str | int) -> OutboxMessage:
    """The SMS `template` (it must have no subject) filled with `values`."""
    message = messages.render(template, **values)
    if message.subject is not None:
        raise messages.MessageError(f"{template} is an e-mail (it has «Тема:»), not an SMS.")
    return await enqueue_sms(to, message.text)
