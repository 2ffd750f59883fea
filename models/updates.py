"""Configuration releases, per-database update schedules and the runs they plan."""

from __future__ import annotations

from enum import Enum

from tortoise import fields

from models.base import Entity
from models.provider import external_id


class UpdateMode(str, Enum):
    DISABLED = "DISABLED"
    ONCE = "ONCE"
    MONTHLY = "MONTHLY"
    ON_RELEASE = "ON_RELEASE"


class UpdateRunStatus(str, Enum):
    QUARANTINE = "QUARANTINE"
    SCHEDULED = "SCHEDULED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    SKIPPED = "SKIPPED"


class UpdateRunOrigin(str, Enum):
    """What planned a run: the schedule's mode, or a member's one-off update beside the schedule."""

    ONCE = "ONCE"
    MONTHLY = "MONTHLY"
    ON_RELEASE = "ON_RELEASE"
    ONE_OFF = "ONE_OFF"


# Origins of the runs a schedule plans: the schedule's own runs (a run of no origin was planned before
# kabinet kept it, by a schedule). A ONE_OFF run is beside the schedule: a change of mode leaves it.
SCHEDULE_ORIGINS = (UpdateRunOrigin.ONCE, UpdateRunOrigin.MONTHLY, UpdateRunOrigin.ON_RELEASE)
PLANNED_RUN_STATUSES = (UpdateRunStatus.QUARANTINE, UpdateRunStatus.SCHEDULED)


class UpdateSchedule(Entity):
    database = fields.OneToOneField("models.Database", related_name="update_schedule", on_delete=fields.CASCADE)
    mode = fields.CharEnumField(UpdateMode, max_length=12, default=UpdateMode.DISABLED)
    run_at = fields.DatetimeField(null=True)
    day_of_month = fields.IntField(null=True)
    time_of_day = fields.CharField(max_length=5, null=True)  # HH:MM
    timezone = fields.CharField(max_length=64, default="Europe/Moscow")
    credentials_encrypted = fields.BinaryField(null=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "update_schedule"


class Release(Entity):
    configuration = fields.CharField(max_length=200)
    version = fields.CharField(max_length=50)
    published_at = fields.DatetimeField()
    recalled_at = fields.DatetimeField(null=True)
    external_id = external_id()  # the provider's own id (models/provider.py)

    class Meta:
        table = "release"
        unique_together = (("configuration", "version"),)
        indexes = (("configuration", "published_at"),)


class UpdateRun(Entity):
    organization = fields.ForeignKeyField("models.Organization", related_name="update_runs", on_delete=fields.CASCADE)
    database = fields.ForeignKeyField("models.Database", related_name="update_runs", on_delete=fields.CASCADE)
    release = fields.ForeignKeyField("models.Release", related_name="update_runs", null=True, on_delete=fields.SET_NULL)
    target_version = fields.CharField(max_length=50, null=True)
    status = fields.CharEnumField(UpdateRunStatus, max_length=12)
    scheduled_for = fields.DatetimeField()
    started_at = fields.DatetimeField(null=True)
    finished_at = fields.DatetimeField(null=True)
    progress = fields.IntField(default=0)
    message = fields.CharField(max_length=500, null=True)
    attempts = fields.IntField(default=0, db_default=0)
    lease_owner = fields.CharField(max_length=100, null=True)
    lease_expires_at = fields.DatetimeField(null=True)
    # The claim's fencing token: random per claim, so that no executor can act on a claim it did not make.
    lease_fence = fields.CharField(max_length=64, null=True)
    # What planned it (null: planned before kabinet kept that); a ONE_OFF run is not the schedule's.
    origin = fields.CharEnumField(UpdateRunOrigin, max_length=12, null=True)

    class Meta:
        table = "update_run"
        indexes = (("database_id", "scheduled_for"), ("status", "scheduled_for"), ("organization_id", "scheduled_for"))
