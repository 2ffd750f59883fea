"""The per-organization event log: what changed, numbered in commit order.

Events are rows written in the same transaction as the change; the broker only says "there is
something new". A subscriber reads the log from the number it has seen, so it misses nothing and
sees nothing twice, even when a broker message is lost.
"""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class EventCounter(Model):
    """The last event number of an organization: the row lock that orders its writers."""

    # A plain key, not a relation: Tortoise's migrator keeps re-detecting a one-to-one primary key.
    organization_id = fields.UUIDField(primary_key=True)
    last_seq = fields.BigIntField(default=0)

    class Meta:
        table = "event_counter"


class OrganizationEvent(Model):
    id = fields.BigIntField(primary_key=True)
    organization = fields.ForeignKeyField("models.Organization", related_name="events", on_delete=fields.CASCADE)
    seq = fields.BigIntField()
    topic = fields.CharField(max_length=20)  # sessions | updates
    kind = fields.CharField(max_length=20)
    payload = fields.JSONField()
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "organization_event"
        unique_together = (("organization", "seq"),)
        indexes = (("created_at",),)
