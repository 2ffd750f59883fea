"""Notification settings per user and organization, and the reminders already sent (so that each
threshold mails once)."""

from __future__ import annotations

from enum import Enum

from tortoise import fields

from models.base import Entity


class NotificationKind(str, Enum):
    NEW_DOCUMENT = "NEW_DOCUMENT"
    LOW_BALANCE = "LOW_BALANCE"
    CONTRACT_EXPIRING = "CONTRACT_EXPIRING"
    RELEASE_OUT = "RELEASE_OUT"
    UPDATE_SCHEDULED = "UPDATE_SCHEDULED"
    UPDATE_DONE = "UPDATE_DONE"
    UPDATE_FAILED = "UPDATE_FAILED"
    SESSION_TERMINATED_BY_ADMIN = "SESSION_TERMINATED_BY_ADMIN"
    INVITE_ACCEPTED = "INVITE_ACCEPTED"
    TICKET_ANSWERED = "TICKET_ANSWERED"
    MODERATION_WAITING = "MODERATION_WAITING"  # the provider's staff only


class NotificationSettings(Entity):
    """What mails one user about one organization, and when. `organization` NULL: a staff member's
    own settings for the provider's events (a moderation waiting). No row: the defaults
    (resolvers/common/notifications.py DEFAULTS)."""

    user = fields.ForeignKeyField("models.User", related_name="notification_settings", on_delete=fields.CASCADE)
    organization = fields.ForeignKeyField(
        "models.Organization", related_name="notification_settings", null=True, on_delete=fields.CASCADE
    )
    muted_kinds = fields.CharField(max_length=500, default="")  # comma-separated kinds turned off
    time_zone = fields.CharField(max_length=64, default="Europe/Moscow")  # IANA name
    window_start = fields.IntField(null=True)  # minutes after local midnight; NULL with window_end: any time
    window_end = fields.IntField(null=True)
    digest_hours = fields.IntField(null=True)  # NULL: each letter at once; else one letter per N hours
    reminders = fields.BooleanField(default=True)
    updated_at = fields.DatetimeField(null=True)

    class Meta:
        table = "notification_settings"
        unique_together = (("user", "organization"),)


class NotificationReminder(Entity):
    """One reminder sent: a threshold (30, 7, 1 days) of a subject (a contract's end on a date, the
    balance's runway) to one user of one organization. Unique, so a threshold mails once, and the balance's
    rows are dropped once it is topped up (dealt with), so a later dip reminds again."""

    organization = fields.ForeignKeyField("models.Organization", related_name="notification_reminders", on_delete=fields.CASCADE)
    user = fields.ForeignKeyField("models.User", related_name="notification_reminders", on_delete=fields.CASCADE)
    kind = fields.CharField(max_length=40)
    subject = fields.CharField(max_length=100)  # "contract:<id>:<ends_on>" or "balance"
    threshold = fields.IntField()

    class Meta:
        table = "notification_reminder"
        unique_together = (("organization", "user", "kind", "subject", "threshold"),)
