"""Update schedules of databases: the one mode each database has, and the runs it plans (when the next
run is). A one-off run beside the schedule (origin ONE_OFF, resolvers/updates/one_off.py) is not the
schedule's: nothing here cancels, counts or follows it up (`_schedule_planned`). The runs change through resolvers/updates/runs.py; releases are
resolvers/updates/releases.py's."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from tortoise.expressions import Q
from tortoise.models import Model

from foundation.clock import utcnow
from models.cloud import Database
from models.select import select
from models.updates import PLANNED_RUN_STATUSES, UpdateMode, UpdateRun, UpdateRunStatus, UpdateSchedule
from resolvers.common import audit
from resolvers.updates import runs as update_runs
from resolvers.common import validation
from resolvers.common.gates import SELECTED, check_organization_row, check_permission
from resolvers.common.context import Actor, RequestContext
from resolvers.cloud.credentials import CredentialsUnreadable, decrypt_credentials, encrypt_credentials
from resolvers.common.permissions import Permission
from resolvers.updates.releases import DEFAULT_TIMEZONE, parse_time_of_day, plan_quarantined_run, target_version_of
from resolvers.common.validation import invalid
from models.updates import UpdateRunOrigin

M = TypeVar("M", bound=Model)
CREDENTIAL_MAX_LENGTH = 200
_MODE_NAMES = {
    UpdateMode.DISABLED: "обновления отключены",
    UpdateMode.ONCE: "разовое обновление",
    UpdateMode.MONTHLY: "ежемесячное обновление",
    UpdateMode.ON_RELEASE: "обновление по выходу релиза",
}


@dataclass
class ScheduleView:
    schedule: UpdateSchedule
    next_run_at: dt.datetime | None


def next_monthly_run(day_of_month: int, time_of_day: str, timezone: str, after: dt.datetime) -> dt.datetime:
    """The first `day_of_month` at `time_of_day` local time strictly after `after`, in UTC.

    Local wall-clock times are turned into instants by the zone's rules for that date, so a
    change to or from daylight saving time between now and then is accounted for.
    """
    zone = ZoneInfo(timezone)
    local_time = parse_time_of_day(time_of_day)
    local_after = after.astimezone(zone)
    year, month = local_after.year, local_after.month
    while True:
        candidate = dt.datetime.combine(dt.date(year, month, day_of_month), local_time, zone).astimezone(dt.timezone.utc)
        if candidate > after:
            return candidate
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def next_monthly_run_sql(day_of_month: str, time_of_day: str, timezone: str, after: str) -> str:
    """`next_monthly_run` said in SQL (PostgreSQL; schema/sql_json/), over columns and a timestamptz
    parameter: the day and time this month in the zone, or next month's when that is not after
    `after`. tests/test_sql_json.py holds the two to the same answers, across changes of clocks.
    The zone and the wall-clock time are worked out once, in subqueries kept apart (OFFSET 0), so
    that the planner does not copy their expressions into every place they are read."""
    local = (
        f"date_trunc('month', {after} AT TIME ZONE zone.name) + ({day_of_month} - 1) * interval '1 day' "
        f"+ {time_of_day}::time"
    )
    this_month = _local_to_utc_sql("wall.local", "zone.name")
    next_month = _local_to_utc_sql("(wall.local + interval '1 month')", "zone.name")
    return (
        f"(SELECT CASE WHEN {this_month} > {after} THEN {this_month} ELSE {next_month} END "
        f"FROM (SELECT {timezone} AS name OFFSET 0) zone, LATERAL (SELECT {local} AS local OFFSET 0) wall)"
    )


def _local_to_utc_sql(local: str, timezone: str) -> str:
    """A wall-clock time in a zone as an instant, as Python's zoneinfo reads it (fold 0). PostgreSQL's
    AT TIME ZONE agrees for a time the clocks skip (the offset before the change) but reads a time
    they repeat with the offset after the change; Python takes the earlier instant, found an hour
    back: the instant an hour before, plus the hour, when it shows the same wall-clock time."""
    plain = f"({local} AT TIME ZONE {timezone})"
    earlier = f"(({local} - interval '1 hour') AT TIME ZONE {timezone} + interval '1 hour')"
    return f"(CASE WHEN {earlier} < {plain} AND ({earlier} AT TIME ZONE {timezone}) = {local} THEN {earlier} ELSE {plain} END)"


def next_run_of(schedule: UpdateSchedule, planned: list[UpdateRun], now: dt.datetime) -> dt.datetime | None:
    """A planned run's time if there is one, otherwise what the schedule's rule gives next."""
    if planned:
        return min(run.scheduled_for for run in planned)
    if schedule.mode == UpdateMode.ONCE:
        return schedule.run_at if schedule.run_at and schedule.run_at > now else None
    if schedule.mode == UpdateMode.MONTHLY and schedule.day_of_month and schedule.time_of_day:
        return next_monthly_run(schedule.day_of_month, schedule.time_of_day, schedule.timezone, now)
    return None  # ON_RELEASE: only a planned run has a time; DISABLED: never


async def schedule_of(ctx: RequestContext, databases: list[Database], args: dict[str, Any]) -> list:
    ids = [d.id for d in databases]
    schedules = {s.database_id: s for s in await select(UpdateSchedule, Q(database_id__in=ids))}
    planned: dict[Any, list[UpdateRun]] = {i: [] for i in ids}
    if "next_run_at" in args.get(SELECTED, ("next_run_at",)):
        for run in await select(UpdateRun, Q(database_id__in=ids, status__in=list(PLANNED_RUN_STATUSES))):
            planned[run.database_id].append(run)
    now = utcnow()
    views = []
    for database in databases:
        schedule = schedules.get(database.id) or UpdateSchedule(
            database_id=database.id, mode=UpdateMode.DISABLED, timezone=DEFAULT_TIMEZONE
        )
        views.append(ScheduleView(schedule, next_run_of(schedule, planned[database.id], now)))
    return views


# ---------------------------------------------------------------------------------------- helpers


def _require_manage_updates(ctx: RequestContext, organization_id: Any) -> None:
    check_permission(ctx, organization_id, Permission.MANAGE_UPDATES, "Only the owner or an administrator may manage database updates.")


async def _schedule_for_update(database: Database) -> UpdateSchedule:
    """The database's schedule row (created when missing), locked on PostgreSQL."""
    schedule = await UpdateSchedule.filter(database_id=database.id).select_for_update().first()
    if schedule is None:
        schedule = await UpdateSchedule.create(database=database, mode=UpdateMode.DISABLED, timezone=DEFAULT_TIMEZONE)
    return schedule


async def _plan(
    actor: Actor, database: Database, scheduled_for: dt.datetime, origin: UpdateRunOrigin = UpdateRunOrigin.MONTHLY
) -> UpdateRun:
    """A SCHEDULED run of the database at `scheduled_for`, to the newest version known now."""
    return await update_runs.plan(actor, database, scheduled_for, await target_version_of(database), origin)


def _schedule_planned(database_id: Any):
    """The runs the database's schedule has planned (a one-off beside it is not one of them)."""
    return UpdateRun.filter(update_runs.of_schedule(), database_id=database_id, status__in=list(PLANNED_RUN_STATUSES))


def _credential(value: str, field: str) -> str:
    if len(value) > CREDENTIAL_MAX_LENGTH:
        raise invalid(field, f"At most {CREDENTIAL_MAX_LENGTH} characters.")
    return value


# ---------------------------------------------------------------------------------------- mutations


async def schedule_update(
    ctx: RequestContext,
    *,
    database_id: uuid.UUID,
    mode: UpdateMode,
    run_at: dt.datetime | None = None,
    day_of_month: int | None = None,
    time_of_day: str | None = None,
    timezone: str | None = None,
    base_login: str | None = None,
    base_password: str | None = None,
) -> Database:
    """Set a database's one update mode, plan its next run, keep its 1C credentials encrypted.

    Fields that do not belong to the mode are ignored (and cleared). An omitted timezone keeps the
    stored one (Europe/Moscow unless set); omitted credentials keep the stored ones. Changing the
    mode or its times cancels the runs the schedule had planned and plans the next one; saving the
    same mode and times (e.g. only new credentials) leaves the planned runs as they are.
    """
    database = await check_organization_row(ctx, Database, database_id, "database_id", "database", lock=True)
    _require_manage_updates(ctx, database.organization_id)
    if mode != UpdateMode.DISABLED and not database.is_typical:
        raise invalid(
            "mode",
            f"«{database.name}» has a modified (non-typical) configuration: an automatic update would erase its "
            "changes, so only DISABLED can be chosen. Your manager updates this database.",
        )
    schedule = await _schedule_for_update(database)
    now = utcnow()
    wanted: dict[str, Any] = {
        "mode": mode, "run_at": None, "day_of_month": None, "time_of_day": None,
        "timezone": validation.timezone(timezone, "timezone") if timezone is not None
        else schedule.timezone or DEFAULT_TIMEZONE,
    }
    if mode == UpdateMode.ONCE:
        if run_at is None:
            raise invalid("run_at", "A one-time update needs runAt: the moment to update.")
        wanted["run_at"] = validation.future(run_at, "run_at", now)
    if mode == UpdateMode.MONTHLY:
        if day_of_month is None or not 1 <= day_of_month <= 28:
            raise invalid("day_of_month", "A monthly update needs dayOfMonth from 1 to 28.")
        wanted["day_of_month"] = day_of_month
    if mode in (UpdateMode.MONTHLY, UpdateMode.ON_RELEASE):
        if time_of_day is None:
            raise invalid("time_of_day", "Choose the time of day to update at, HH:MM.")
        wanted["time_of_day"] = validation.time_of_day(time_of_day, "time_of_day")

    credentials_changed = base_login is not None or base_password is not None
    if credentials_changed:
        login, password = "", ""
        if schedule.credentials_encrypted is not None and (base_login is None or base_password is None):
            try:
                login, password = decrypt_credentials(ctx.settings, schedule.credentials_encrypted)
            except CredentialsUnreadable:
                pass  # stored with another secret key: what is not given now is empty
        login = _credential(base_login, "base_login") if base_login is not None else login
        password = _credential(base_password, "base_password") if base_password is not None else password
        schedule.credentials_encrypted = encrypt_credentials(ctx.settings, login, password)

    old_mode = schedule.mode
    timing_changed = any(getattr(schedule, name) != value for name, value in wanted.items())
    for name, value in wanted.items():
        setattr(schedule, name, value)
    await schedule.save()

    if timing_changed and old_mode == UpdateMode.ON_RELEASE and mode == UpdateMode.ON_RELEASE:
        # Same mode, another time of day: each release's scheduled run moves to the new time.
        for run in await UpdateRun.filter(
            update_runs.of_schedule(), database_id=database.id, status=UpdateRunStatus.SCHEDULED, release_id__isnull=False
        ):
            await plan_quarantined_run(ctx, run, schedule, ctx.settings.update_capacity_per_slot, now=now)
    elif timing_changed:
        await update_runs.cancel_planned(ctx, database.id, f"Отменено: расписание обновлений изменено ({_MODE_NAMES[mode]}).")
    if mode in (UpdateMode.ONCE, UpdateMode.MONTHLY) and not await _schedule_planned(database.id).exists():
        # The next run of the new times (or of unchanged times that had none planned yet).
        if mode == UpdateMode.ONCE:
            await _plan(ctx, database, wanted["run_at"], UpdateRunOrigin.ONCE)
        else:
            await _plan(ctx, database, next_monthly_run(wanted["day_of_month"], wanted["time_of_day"], wanted["timezone"], now))
    await audit.record(
        ctx, "update_schedule.change", organization_id=database.organization_id, object_type="Database",
        object_id=database.id,
        details={
            "mode": mode.value, "previousMode": old_mode.value if old_mode else None,
            "runAt": wanted["run_at"].isoformat() if wanted["run_at"] else None,
            "dayOfMonth": wanted["day_of_month"], "timeOfDay": wanted["time_of_day"], "timezone": wanted["timezone"],
            "credentialsChanged": credentials_changed,  # never the credentials themselves
        },
    )
    return database


async def skip_update_run(ctx: RequestContext, run_id: uuid.UUID) -> UpdateRun:
    """Skip one planned run (one release, one month, or a one-off); the schedule stays.

    MONTHLY: the following month's run is planned. ONCE: its one run is gone, so the schedule falls
    back to DISABLED, as after a run. A one-off (resolvers/updates/one_off.py) is skipped alone.
    """
    field = "update_run_id"
    run = await check_organization_row(ctx, UpdateRun, run_id, field, "update run")
    _require_manage_updates(ctx, run.organization_id)
    database = await Database.filter(id=run.database_id).select_for_update().first()
    now = utcnow()
    if not await update_runs.skip(ctx, run, "Пропущено по запросу пользователя."):
        raise invalid(field, f"Only a planned run (in quarantine or scheduled) can be skipped; this one is {run.status.value}.")
    schedule = await _schedule_for_update(database)
    if run.origin == UpdateRunOrigin.ONE_OFF:
        pass  # a one-off beside the schedule: the schedule's own runs are as they were
    elif schedule.mode == UpdateMode.MONTHLY and schedule.day_of_month and schedule.time_of_day:
        later = await _schedule_planned(database.id).filter(scheduled_for__gt=run.scheduled_for).exists()
        if not later:
            after = max(run.scheduled_for, now)
            await _plan(ctx, database, next_monthly_run(schedule.day_of_month, schedule.time_of_day, schedule.timezone, after))
    elif schedule.mode == UpdateMode.ONCE and not await _schedule_planned(database.id).exists():
        schedule.mode, schedule.run_at = UpdateMode.DISABLED, None
        await schedule.save()
    await audit.record(
        ctx, "update_run.skip", organization_id=run.organization_id, object_type="UpdateRun", object_id=run.id,
        details={"databaseId": str(database.id), "scheduledFor": run.scheduled_for.isoformat(), "targetVersion": run.target_version},
    )
    return run


# ---------------------------------------------------------------------------------------- what the update worker asks


async def follow_up(actor: Actor, run: UpdateRun, now: dt.datetime) -> list[UpdateRun]:
    """After a run has ended (SUCCEEDED or FAILED): a ONCE schedule falls back to DISABLED, a MONTHLY one
    gets the next month's run planned, unless another run is planned already. A one-off run (beside the
    schedule) changes nothing of it. The runs planned. Locks the database row, as the mutations do."""
    if run.origin == UpdateRunOrigin.ONE_OFF:
        return []
    database = await Database.filter(id=run.database_id).select_for_update().first()
    if database is None:
        return []
    schedule = await UpdateSchedule.filter(database_id=database.id).select_for_update().first()
    if schedule is None or await _schedule_planned(database.id).exists():
        return []
    if schedule.mode == UpdateMode.ONCE:
        schedule.mode, schedule.run_at = UpdateMode.DISABLED, None
        await schedule.save()
    elif schedule.mode == UpdateMode.MONTHLY and schedule.day_of_month and schedule.time_of_day and database.is_typical:
        after = max(run.scheduled_for, now)
        return [await _plan(actor, database, next_monthly_run(schedule.day_of_month, schedule.time_of_day, schedule.timezone, after))]
    return []


async def databases_missing_a_monthly_run(database_ids: list[Any] | None = None) -> list[Any]:
    """Typical databases updated MONTHLY with no run planned or running (e.g. seeded that way, or after a
    run was cancelled by hand): the worker plans their next run. Two queries."""
    query = UpdateSchedule.filter(mode=UpdateMode.MONTHLY, database__is_typical=True)
    if database_ids is not None:
        query = query.filter(database_id__in=list(database_ids))
    monthly = set(await query.values_list("database_id", flat=True))
    if not monthly:
        return []
    busy = set(await UpdateRun.filter(
        update_runs.of_schedule(), database_id__in=list(monthly), status__in=[*PLANNED_RUN_STATUSES, UpdateRunStatus.RUNNING]
    ).values_list("database_id", flat=True))
    return sorted(monthly - busy, key=str)


async def plan_missing_monthly_run(actor: Actor, database_id: Any, now: dt.datetime) -> UpdateRun | None:
    """Plan the next run of a MONTHLY database that has none (checked again under the database's lock)."""
    database = await Database.filter(id=database_id).select_for_update().first()
    schedule = await UpdateSchedule.filter(database_id=database_id).first() if database else None
    if (
        schedule is None or schedule.mode != UpdateMode.MONTHLY or not database.is_typical
        or not schedule.day_of_month or not schedule.time_of_day
        or await UpdateRun.filter(
            update_runs.of_schedule(), database_id=database_id, status__in=[*PLANNED_RUN_STATUSES, UpdateRunStatus.RUNNING]
        ).exists()
    ):
        return None
    return await _plan(actor, database, next_monthly_run(schedule.day_of_month, schedule.time_of_day, schedule.timezone, now))
