"""Update schedules and update runs of cloud databases."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated, Any

import strawberry

from models.updates import UpdateMode, UpdateRun as UpdateRunModel, UpdateRunStatus
from resolvers import cloud as cloud_resolvers
from resolvers.updates import ScheduleView
from schema.batching import batched, loaded
from schema.relay import Node, to_global_id

if TYPE_CHECKING:
    from schema.cloud import Database

strawberry.enum(UpdateMode, description="How a database gets updated: never, once, monthly, or on each new release.")
strawberry.enum(
    UpdateRunStatus,
    description="QUARANTINE (24 h after a release), SCHEDULED, RUNNING, then SUCCEEDED or FAILED; "
    "or CANCELLED / SKIPPED.",
)


@strawberry.type(description="When a database gets updated. One mode per database.")
class UpdateSchedule:
    mode: UpdateMode = strawberry.field(description="The mode in force.")
    run_at: dt.datetime | None = strawberry.field(description="ONCE: the moment to update.")
    day_of_month: int | None = strawberry.field(description="MONTHLY: day of month, 1-28.")
    time_of_day: str | None = strawberry.field(description="MONTHLY and ON_RELEASE: local time of day, HH:MM.")
    timezone: str = strawberry.field(description="IANA zone that timeOfDay is in; Europe/Moscow unless set.")
    next_run_at: dt.datetime | None = strawberry.field(description="When the next update will run, if one is planned.")
    has_credentials: bool = strawberry.field(
        description="Whether credentials for the database are stored (they are never returned)."
    )

    @classmethod
    def from_view(cls, view: ScheduleView) -> UpdateSchedule:
        schedule = view.schedule
        return cls(
            mode=schedule.mode, run_at=schedule.run_at, day_of_month=schedule.day_of_month,
            time_of_day=schedule.time_of_day, timezone=schedule.timezone, next_run_at=view.next_run_at,
            has_credentials=schedule.credentials_encrypted is not None,
        )


def _database(model: Any) -> Any:
    from schema.cloud import Database

    return Database.from_model(model)


@strawberry.type(description="One update of one database: planned, running or done.")
class UpdateRun(Node):
    target_version: str | None = strawberry.field(description="Configuration version the run updates to.")
    status: UpdateRunStatus = strawberry.field(description="Where the run stands.")
    scheduled_for: dt.datetime = strawberry.field(description="When the run is (or was) to start.")
    started_at: dt.datetime | None = strawberry.field(description="When it started.")
    finished_at: dt.datetime | None = strawberry.field(description="When it finished.")
    progress: int = strawberry.field(description="0-100")
    message: str | None = strawberry.field(description="What happened: the reason of a failure, a skip or a cancel.")
    model: strawberry.Private[UpdateRunModel]

    @classmethod
    def from_model(cls, model: UpdateRunModel) -> UpdateRun:
        return cls(
            id=to_global_id("UpdateRun", model.id), target_version=model.target_version, status=model.status,
            scheduled_for=model.scheduled_for, started_at=model.started_at, finished_at=model.finished_at,
            progress=model.progress, message=model.message, model=model,
        )

    @strawberry.field(description="The database being updated.")
    @batched(cloud_resolvers.database_of, to=_database)
    def database(self, info: strawberry.Info) -> Annotated[Database, strawberry.lazy("schema.cloud")]:
        return loaded(self, info)
