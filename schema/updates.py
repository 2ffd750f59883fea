"""Update schedules and update runs of cloud databases."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated, Any

import strawberry

from models.updates import Release as ReleaseModel, UpdateMode, UpdateRun as UpdateRunModel, UpdateRunStatus
from resolvers.cloud import reads as cloud_resolvers
from resolvers.updates import releases
from resolvers.updates import schedules as update_schedules
from resolvers.updates.schedules import ScheduleView
from resolvers.updates import reasons as update_reasons
from schema.batching import batched, expand, loaded
from schema.enums import described_enum
from schema.errors import UserError, transactional
from foundation.ids import NO_SUCH_ID, pk_of, to_global_id
from schema.relay import Node

if TYPE_CHECKING:
    from schema.cloud import Database
    from schema.update_extras import UpdateRunReason

described_enum(UpdateMode, "How a database gets updated: never, once, monthly, or on each new release.", {
    "DISABLED": "Never updated automatically.",
    "ONCE": "Once, at `runAt`.",
    "MONTHLY": "Every month on `dayOfMonth` at `timeOfDay` in `timezone`.",
    "ON_RELEASE": "After each new release of its configuration, once the release's quarantine is over.",
})
described_enum(
    UpdateRunStatus,
    "QUARANTINE (24 h after a release), SCHEDULED, RUNNING, then SUCCEEDED or FAILED; or CANCELLED / SKIPPED.",
    {
        "QUARANTINE": "Planned after a new release, held for its first 24 hours in case it is withdrawn.",
        "SCHEDULED": "Planned for `scheduledFor`.",
        "RUNNING": "Being updated now; `progress` moves.",
        "SUCCEEDED": "Updated to the target version.",
        "FAILED": "Not updated; `message` says why.",
        "CANCELLED": "Called off before it started: the schedule changed, a newer release replaced it, or the release was recalled.",
        "SKIPPED": "Skipped at a member's request (skipUpdateRun).",
    },
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


def _reason(reason: Any) -> Any:
    from schema.update_extras import UpdateRunReason

    return UpdateRunReason.from_reason(reason)


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

    @strawberry.field(description="Why the run is planned when it is: the mode or one-off, the release, its quarantine, the slot.")
    @batched(update_reasons.reasons_of, to=_reason)
    def scheduled_because(self, info: strawberry.Info) -> Annotated[UpdateRunReason, strawberry.lazy("schema.update_extras")]:
        return loaded(self, info)


@strawberry.type(description="A release of a 1C configuration, as the provider publishes it.")
class Release(Node):
    configuration: str = strawberry.field(description="1C configuration, e.g. «Бухгалтерия предприятия».")
    version: str = strawberry.field(description="Version, dotted numbers (3.0.152.15); compared number by number.")
    published_at: dt.datetime = strawberry.field(description="When it was published; ON_RELEASE runs wait 24 hours after it.")
    recalled_at: dt.datetime | None = strawberry.field(
        description="When it was recalled; a recalled release is never installed."
    )
    model: strawberry.Private[ReleaseModel]

    @classmethod
    def from_model(cls, model: ReleaseModel) -> Release:
        return cls(
            id=to_global_id("Release", model.id), configuration=model.configuration, version=model.version,
            published_at=model.published_at, recalled_at=model.recalled_at, model=model,
        )


@strawberry.input(description="How one database gets updated: one mode and what that mode needs.")
class ScheduleUpdateInput:
    database_id: strawberry.ID = strawberry.field(description="The database.")
    mode: UpdateMode = strawberry.field(
        description="DISABLED, ONCE (needs runAt), MONTHLY (needs dayOfMonth and timeOfDay) or ON_RELEASE (needs "
        "timeOfDay). Only DISABLED for a non-typical database."
    )
    run_at: dt.datetime | None = strawberry.field(default=None, description="ONCE: the moment to update, in the future.")
    day_of_month: int | None = strawberry.field(default=None, description="MONTHLY: day of month, 1-28.")
    time_of_day: str | None = strawberry.field(
        default=None, description="MONTHLY and ON_RELEASE: local time of day, HH:MM, in `timezone`."
    )
    timezone: str | None = strawberry.field(
        default=None, description="IANA zone of timeOfDay; omitted keeps the stored one (Europe/Moscow unless set)."
    )
    base_login: str | None = strawberry.field(
        default=None,
        description="Login and password of a user of the 1C database; both may be empty strings. "
        "Omitted keeps the stored one. Stored encrypted, never returned.",
    )
    base_password: str | None = strawberry.field(
        default=None, description="Password of that 1C user; may be empty. Omitted keeps the stored one."
    )


def _database_payload_field() -> Any:
    return strawberry.field(default=None, description="The database with its new schedule.")


@strawberry.type(description="The result of `scheduleUpdate`.")
class ScheduleUpdatePayload:
    database: Annotated[Database, strawberry.lazy("schema.cloud")] | None = _database_payload_field()
    user_errors: list[UserError] = strawberry.field(default_factory=list, description="Why it failed; empty on success.")


@strawberry.type(description="The result of `skipUpdateRun`.")
class SkipUpdatePayload:
    update_run: UpdateRun | None = strawberry.field(default=None, description="The run, now SKIPPED.")
    user_errors: list[UserError] = strawberry.field(default_factory=list, description="Why it failed; empty on success.")


@strawberry.type(description="The result of `publishRelease`.")
class PublishReleasePayload:
    release: Release | None = strawberry.field(default=None, description="The release published.")
    user_errors: list[UserError] = strawberry.field(default_factory=list, description="Why it failed; empty on success.")


@strawberry.type(description="The result of `recallRelease`.")
class RecallReleasePayload:
    release: Release | None = strawberry.field(default=None, description="The release, now recalled.")
    user_errors: list[UserError] = strawberry.field(default_factory=list, description="Why it failed; empty on success.")


@strawberry.type(description="Update schedules of databases, and releases (provider staff).")
class UpdatesMutations:
    @strawberry.mutation(
        description="Set how a database gets updated (one mode per database); changing the mode cancels the runs the "
        "old one had planned. OWNER and ADMIN."
    )
    @transactional(ScheduleUpdatePayload)
    async def schedule_update(
        self, info: strawberry.Info,
        input: Annotated[ScheduleUpdateInput, strawberry.argument(description="The database and its new schedule.")],
    ) -> ScheduleUpdatePayload:
        database = await update_schedules.schedule_update(
            info.context, database_id=pk_of(input.database_id, "Database") or NO_SUCH_ID, mode=input.mode, run_at=input.run_at,
            day_of_month=input.day_of_month, time_of_day=input.time_of_day, timezone=input.timezone,
            base_login=input.base_login, base_password=input.base_password,
        )
        return await expand(info, ScheduleUpdatePayload(database=_database(database)))

    @strawberry.mutation(
        description="Skip the next planned run of a database's schedule (one release or one month); the schedule stays."
    )
    @transactional(SkipUpdatePayload)
    async def skip_update_run(
        self, info: strawberry.Info,
        update_run_id: Annotated[strawberry.ID, strawberry.argument(description="A QUARANTINE or SCHEDULED run.")],
    ) -> SkipUpdatePayload:
        run = await update_schedules.skip_update_run(info.context, pk_of(update_run_id, "UpdateRun") or NO_SUCH_ID)
        return await expand(info, SkipUpdatePayload(update_run=UpdateRun.from_model(run)))

    @strawberry.mutation(
        description="Provider staff: publish a release of a configuration. Databases of it updated ON_RELEASE get a "
        "run that waits 24 hours in QUARANTINE."
    )
    @transactional(PublishReleasePayload)
    async def publish_release(
        self,
        info: strawberry.Info,
        configuration: Annotated[str, strawberry.argument(description="1C configuration, e.g. «Бухгалтерия предприятия».")],
        version: Annotated[str, strawberry.argument(description="Version, dotted numbers, e.g. 3.0.152.15.")],
    ) -> PublishReleasePayload:
        release = await releases.publish_release(info.context, configuration, version)
        return await expand(info, PublishReleasePayload(release=Release.from_model(release)))

    @strawberry.mutation(
        description="Provider staff: recall a release; its runs not yet started are CANCELLED."
    )
    @transactional(RecallReleasePayload)
    async def recall_release(
        self,
        info: strawberry.Info,
        release_id: Annotated[strawberry.ID, strawberry.argument(description="The release.")],
    ) -> RecallReleasePayload:
        release = await releases.recall_release(info.context, pk_of(release_id, "Release") or NO_SUCH_ID)
        return await expand(info, RecallReleasePayload(release=Release.from_model(release)))
