"""Updates beside the contract (issue 20): a one-off update that leaves the schedule in force, the
releases of a configuration, and why a run is planned when it is."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import strawberry

from foundation.ids import NO_SUCH_ID, pk_of
from models.updates import UpdateRunOrigin
from resolvers.updates import release_list
from resolvers.updates import one_off as one_off_updates
from resolvers.updates.reasons import RunReason
from schema.batching import expand, selected
from schema.enums import described_enum
from schema.errors import UserError, transactional
from schema.relay import After, Connection, First, connection_of
from schema.updates import Release, UpdateRun

described_enum(UpdateRunOrigin, "What planned an update run: the database's schedule (its mode) or a one-off update.", {
    "ONCE": "The schedule's ONCE mode (`scheduleUpdate`), the database's one mode.",
    "MONTHLY": "The schedule's MONTHLY mode: `dayOfMonth` at `timeOfDay`.",
    "ON_RELEASE": "The schedule's ON_RELEASE mode: a new release, after its 24-hour quarantine, in the first free slot.",
    "ONE_OFF": "A one-off update beside the schedule (`scheduleOneOffUpdate`); the schedule stays in force.",
})


@strawberry.type(description="Why an update run is planned when it is: what planned it and the rule that set its time.")
class UpdateRunReason:
    origin: UpdateRunOrigin | None = strawberry.field(
        description="What planned the run; null for a run planned before kabinet kept it."
    )
    release: Release | None = strawberry.field(description="ON_RELEASE: the release that brought the run.")
    quarantine_ends_at: dt.datetime | None = strawberry.field(
        description="ON_RELEASE: the end of the release's 24-hour quarantine; the run is not scheduled before it."
    )
    latest_at: dt.datetime | None = strawberry.field(
        description="ON_RELEASE: the run happens no later than this, 7 days after the release."
    )
    day_of_month: int | None = strawberry.field(description="MONTHLY: the schedule's day of month.")
    time_of_day: str | None = strawberry.field(
        description="MONTHLY and ON_RELEASE: the slot's local time of day, HH:MM, in `timezone`."
    )
    timezone: str = strawberry.field(description="IANA zone the schedule's times are in.")
    first_possible_slot: dt.datetime | None = strawberry.field(
        description="ON_RELEASE: the first slot after the quarantine; the run is later when that slot was full."
    )
    moved_by_capacity: bool = strawberry.field(
        description="ON_RELEASE: earlier slots already held as many updates as a slot allows, so a later day was taken."
    )
    retry: bool = strawberry.field(description="Planned again after a failed attempt.")
    explanation: str = strawberry.field(description="All of it in one sentence, in Russian, for the cabinet to show.")

    @classmethod
    def from_reason(cls, reason: RunReason) -> UpdateRunReason:
        return cls(
            origin=reason.origin, release=Release.from_model(reason.release) if reason.release else None,
            quarantine_ends_at=reason.quarantine_ends_at, latest_at=reason.latest_at, day_of_month=reason.day_of_month,
            time_of_day=reason.time_of_day, timezone=reason.timezone, first_possible_slot=reason.first_possible_slot,
            moved_by_capacity=reason.moved_by_capacity, retry=reason.retry, explanation=reason.explanation,
        )


@strawberry.type(description="The result of `scheduleOneOffUpdate`.")
class ScheduleOneOffUpdatePayload:
    update_run: UpdateRun | None = strawberry.field(default=None, description="The one-off run, SCHEDULED.")
    user_errors: list[UserError] = strawberry.field(default_factory=list, description="Why it failed; empty on success.")


@strawberry.type(description="One-off updates beside a database's schedule.")
class OneOffUpdateMutations:
    @strawberry.mutation(
        description="Update a typical database once at `at`, beside its schedule: an ON_RELEASE or MONTHLY schedule "
        "stays in force and keeps its runs (unlike `scheduleUpdate(mode: ONCE)`, which replaces the mode). The run "
        "installs the newest release not recalled when it starts. `at` in the future, within 90 days; at most 3 "
        "one-offs wait per database (LIMIT_EXCEEDED). `skipUpdateRun` skips it. OWNER and ADMIN."
    )
    @transactional(ScheduleOneOffUpdatePayload)
    async def schedule_one_off_update(
        self, info: strawberry.Info,
        database_id: Annotated[strawberry.ID, strawberry.argument(description="A typical database.")],
        at: Annotated[dt.datetime, strawberry.argument(description="When to update, in the future.")],
    ) -> ScheduleOneOffUpdatePayload:
        run = await one_off_updates.schedule_one_off_update(info.context, pk_of(database_id, "Database") or NO_SUCH_ID, at)
        return await expand(info, ScheduleOneOffUpdatePayload(update_run=UpdateRun.from_model(run)))


@strawberry.type(description="Releases of configurations.")
class ReleaseQueries:
    @strawberry.field(
        description="The releases of one configuration, newest publication first; recalled ones included (`recalledAt`). "
        "For the provider's staff and members (any role) of an organization with a database of that configuration; "
        "empty for anyone else."
    )
    async def releases(
        self, info: strawberry.Info,
        configuration: Annotated[str, strawberry.argument(description="1C configuration, e.g. «Бухгалтерия предприятия».")],
        first: First = None, after: After = None,
    ) -> Connection[Release]:
        args = {"first": first, "after": after, **selected(info)}
        page = await release_list.releases_of_configuration(info.context, configuration, args)
        return await expand(info, connection_of(Release.from_model)(page))
