"""Append-only record of who changed access, sessions, schedules or the subscription."""

from __future__ import annotations

from tortoise import fields

from models.base import Entity


class AuditEntry(Entity):
    organization = fields.ForeignKeyField("models.Organization", related_name="audit_entries", null=True, on_delete=fields.CASCADE)
    actor = fields.ForeignKeyField("models.User", related_name="audit_entries", null=True, on_delete=fields.SET_NULL)
    action = fields.CharField(max_length=100)
    object_type = fields.CharField(max_length=50)
    object_id = fields.CharField(max_length=64, null=True)
    details = fields.JSONField(default=dict)
    ip_address = fields.CharField(max_length=64, null=True)

    class Meta:
        table = "audit_entry"
        indexes = (("organization_id", "created_at"),)
