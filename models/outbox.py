"""Outgoing e-mail and SMS, written in the same transaction as the change that causes them."""

from __future__ import annotations

from enum import Enum

from tortoise import fields

from models.base import Entity


class Channel(str, Enum):
    EMAIL = "EMAIL"
    SMS = "SMS"


class DeliveryStatus(str, Enum):
    PENDING = "PENDING"
    SENT = "SENT"
    FAILED = "FAILED"  # gave up after the last retry


class OutboxMessage(Entity):
    channel = fields.CharEnumField(Channel, max_length=5)
    recipient = fields.CharField(max_length=254)
    subject = fields.CharField(max_length=300, default="")
    body = fields.TextField()
    status = fields.CharEnumField(DeliveryStatus, max_length=8, default=DeliveryStatus.PENDING)
    attempts = fields.IntField(default=0)
    next_attempt_at = fields.DatetimeField()
    sent_at = fields.DatetimeField(null=True)
    last_error = fields.CharField(max_length=1000, null=True)
    failed_at = fields.DatetimeField(null=True)  # when it was given up on (FAILED)
    template = fields.CharField(max_length=60, null=True)  # resolvers/messages/<template>.txt, when written from one
    lease_owner = fields.CharField(max_length=100, null=True)
    lease_expires_at = fields.DatetimeField(null=True)
    # Letters of one digest (resolvers/common/notifications.py): the mail worker sends the due ones of a key
    # as one letter. `next_attempt_at` is also the not-before time a send window sets.
    digest_key = fields.CharField(max_length=100, null=True, db_index=True)

    class Meta:
        table = "outbox_message"
        indexes = (("status", "next_attempt_at"), ("status", "failed_at"))
