"""Update schedules of databases and the runs they plan."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from tortoise.expressions import Q

from kabinet.clock import utcnow
from resolvers.context import RequestContext
from resolvers.credentials import CredentialsUnreadable, decrypt_credentials, encrypt_credentials
from resolvers.errors import ErrorCode, UserFacingError
from resolvers.events import UPDATES, run_payload
from resolvers.permissions import Permission
from models.cloud import Database
from models.identity import User
from models.select import select
from models.updates import PLANNED_RUN_STATUSES, Release, UpdateMode, UpdateRun, UpdateRunStatus, UpdateSchedule
from resolvers import audit, validation
from resolvers.common import SELECTED, not_found, organization_row, page_request, require, wants_total
from kabinet.ids import pk_of
from resolvers.validation import invalid
from resolvers.pagination import Ordering, load_pages

RUN_ORDER = Ordering(("-scheduled_for",))
DEFAULT_TIMEZONE = "Europe/Moscow"


@dataclass
class ScheduleView:
    schedule: UpdateSchedule
    next_run_at: dt.datetime | None


def parse_time_of_day(value: str) -> dt.time:
    hours, minutes = value.split(":")
    return dt.time(int(hours), int(minutes))


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


async def runs_of(ctx: RequestContext, databases: list[Database], args: dict[str, Any]) -> list:
    pages = await load_pages(
        UpdateRun, "database_id", [d.id for d in databases], RUN_ORDER, page_request(ctx, args),
        with_total=wants_total(args),
    )
    return [pages[d.id] for d in databases]


# ---------------------------------------------------------------------------------------- versions and releases

VERSION_PATTERN = re.compile(r"^\d+(\.\d+)*$")
QUARANTINE = dt.timedelta(hours=24)
RELEASE_WINDOW = dt.timedelta(days=7)  # an ON_RELEASE run happens no later than this after the release
CREDENTIAL_MAX_LENGTH = 200
# Runs that take up an update slot (a planned or a past one).
SLOT_TAKING_STATUSES = (UpdateRunStatus.SCHEDULED, UpdateRunStatus.RUNNING, UpdateRunStatus.SUCCEEDED, UpdateRunStatus.FAILED)


def version_key(version: str) -> tuple[int, ...]:
    """Versions compare as dotted numbers: 3.0.152.15 > 3.0.150.20 (> 3.0.99.1). Non-numeric parts count as 0."""
    return tuple(int(part) if part.isdigit() else 0 for part in version.strip().split("."))


def newest_version(*versions: str | None) -> str | None:
    present = [v for v in versions if v]
    return max(present, key=version_key) if present else None


async def newest_releases(configurations: set[str]) -> dict[str, Release]:
    """The newest release not recalled of each configuration (one query)."""
    newest: dict[str, Release] = {}
    if not configurations:
        return newest
    for release in await Release.filter(configuration__in=list(configurations), recalled_at__isnull=True):
        best = newest.get(release.configuration)
        if best is None or version_key(release.version) > version_key(best.version):
            newest[release.configuration] = release
    return newest


async def target_version_of(database: Database) -> str:
    """What a run planned now updates to: the newest release not recalled, or the installed version."""
    release = (await newest_releases({database.configuration})).get(database.configuration)
    return newest_version(database.version, release.version if release else None) or database.version


# ---------------------------------------------------------------------------------------- schedules

MODE_FIELDS = ("mode", "run_at", "day_of_month", "time_of_day", "timezone")
_MODE_NAMES = {
    UpdateMode.DISABLED: "обновления отключены",
    UpdateMode.ONCE: "разовое обновление",
    UpdateMode.MONTHLY: "ежемесячное обновление",
    UpdateMode.ON_RELEASE: "обновление по выходу релиза",
}


def _require_manage_updates(ctx: RequestContext, organization_id: Any) -> None:
    require(ctx, organization_id, Permission.MANAGE_UPDATES, "Only the owner or an administrator may manage database updates.")


async def _schedule_for_update(database: Database) -> UpdateSchedule:
    """The database's schedule row (created when missing), locked on PostgreSQL."""
    schedule = await UpdateSchedule.filter(database_id=database.id).select_for_update().first()
    if schedule is None:
        schedule = await UpdateSchedule.create(database=database, mode=UpdateMode.DISABLED, timezone=DEFAULT_TIMEZONE)
    return schedule


async def record_run_events(ctx: RequestContext, runs: list[UpdateRun]) -> None:
    """One updateRuns event per run, with the run as it is now, in the run's organization."""
    for run in runs:
        await ctx.record_event(run.organization_id, UPDATES, "CHANGED", run_payload(run))


async def _runs_now(ids: list[Any]) -> list[UpdateRun]:
    """The runs as they are after a bulk change (for their events)."""
    return list(await UpdateRun.filter(id__in=list(ids)).order_by("scheduled_for", "id")) if ids else []


async def _cancel_planned(database_id: Any, message: str, statuses=PLANNED_RUN_STATUSES) -> list[UpdateRun]:
    """Cancel the database's planned runs; those cancelled, as they are now."""
    ids = await UpdateRun.filter(database_id=database_id, status__in=list(statuses)).values_list("id", flat=True)
    if ids:
        await UpdateRun.filter(id__in=list(ids), status__in=list(statuses)).update(
            status=UpdateRunStatus.CANCELLED, message=message
        )
    return await _runs_now(list(ids))


async def plan_run(database: Database, scheduled_for: dt.datetime) -> UpdateRun:
    """A SCHEDULED run of the database at `scheduled_for`, to the newest version known now."""
    return await UpdateRun.create(
        organization_id=database.organization_id, database=database, status=UpdateRunStatus.SCHEDULED,
        scheduled_for=scheduled_for, target_version=await target_version_of(database),
    )


def _credential(value: str, field: list[str]) -> str:
    if len(value) > CREDENTIAL_MAX_LENGTH:
        raise invalid(field, f"At most {CREDENTIAL_MAX_LENGTH} characters.")
    return value


async def schedule_update(
    ctx: RequestContext,
    *,
    database_id: str,
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
    database = await organization_row(ctx, Database, database_id, ["input", "databaseId"], "database", lock=True)
    _require_manage_updates(ctx, database.organization_id)
    if mode != UpdateMode.DISABLED and not database.is_typical:
        raise invalid(
            ["input", "mode"],
            f"«{database.name}» has a modified (non-typical) configuration: an automatic update would erase its "
            "changes, so only DISABLED can be chosen. Your manager updates this database.",
        )
    schedule = await _schedule_for_update(database)
    now = utcnow()
    wanted: dict[str, Any] = {
        "mode": mode, "run_at": None, "day_of_month": None, "time_of_day": None,
        "timezone": validation.timezone(timezone, ["input", "timezone"]) if timezone is not None
        else schedule.timezone or DEFAULT_TIMEZONE,
    }
    if mode == UpdateMode.ONCE:
        if run_at is None:
            raise invalid(["input", "runAt"], "A one-time update needs runAt: the moment to update.")
        wanted["run_at"] = validation.future(run_at, ["input", "runAt"], now)
    if mode == UpdateMode.MONTHLY:
        if day_of_month is None or not 1 <= day_of_month <= 28:
            raise invalid(["input", "dayOfMonth"], "A monthly update needs dayOfMonth from 1 to 28.")
        wanted["day_of_month"] = day_of_month
    if mode in (UpdateMode.MONTHLY, UpdateMode.ON_RELEASE):
        if time_of_day is None:
            raise invalid(["input", "timeOfDay"], "Choose the time of day to update at, HH:MM.")
        wanted["time_of_day"] = validation.time_of_day(time_of_day, ["input", "timeOfDay"])

    credentials_changed = base_login is not None or base_password is not None
    if credentials_changed:
        login, password = "", ""
        if schedule.credentials_encrypted is not None and (base_login is None or base_password is None):
            try:
                login, password = decrypt_credentials(ctx.settings, schedule.credentials_encrypted)
            except CredentialsUnreadable:
                pass  # stored with another secret key: what is not given now is empty
        login = _credential(base_login, ["input", "baseLogin"]) if base_login is not None else login
        password = _credential(base_password, ["input", "basePassword"]) if base_password is not None else password
        schedule.credentials_encrypted = encrypt_credentials(ctx.settings, login, password)

    old_mode = schedule.mode
    timing_changed = any(getattr(schedule, name) != value for name, value in wanted.items())
    for name, value in wanted.items():
        setattr(schedule, name, value)
    await schedule.save()

    changed_runs: list[UpdateRun] = []
    if timing_changed and old_mode == UpdateMode.ON_RELEASE and mode == UpdateMode.ON_RELEASE:
        # Same mode, another time of day: each release's scheduled run moves to the new time.
        for run in await UpdateRun.filter(database_id=database.id, status=UpdateRunStatus.SCHEDULED, release_id__isnull=False):
            if await plan_quarantined_run(run, schedule, ctx.settings.update_capacity_per_slot, now=now):
                changed_runs.append(run)
    elif timing_changed:
        changed_runs += await _cancel_planned(database.id, f"Отменено: расписание обновлений изменено ({_MODE_NAMES[mode]}).")
    if mode in (UpdateMode.ONCE, UpdateMode.MONTHLY) and not await UpdateRun.filter(
        database_id=database.id, status__in=list(PLANNED_RUN_STATUSES)
    ).exists():
        # The next run of the new times (or of unchanged times that had none planned yet).
        if mode == UpdateMode.ONCE:
            changed_runs.append(await plan_run(database, wanted["run_at"]))
        else:
            changed_runs.append(await plan_run(
                database, next_monthly_run(wanted["day_of_month"], wanted["time_of_day"], wanted["timezone"], now)
            ))
    await record_run_events(ctx, changed_runs)
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


async def skip_update_run(ctx: RequestContext, run_global_id: str) -> UpdateRun:
    """Skip one planned run (one release, one month); the schedule stays.

    MONTHLY: the following month's run is planned. ONCE: its one run is gone, so the schedule falls
    back to DISABLED, as after a run.
    """
    field = ["updateRunId"]
    run = await organization_row(ctx, UpdateRun, run_global_id, field, "update run")
    _require_manage_updates(ctx, run.organization_id)
    database = await Database.filter(id=run.database_id).select_for_update().first()
    now = utcnow()
    changed = await UpdateRun.filter(id=run.id, status__in=list(PLANNED_RUN_STATUSES)).update(
        status=UpdateRunStatus.SKIPPED, message="Пропущено по запросу пользователя."
    )
    if not changed:
        await run.refresh_from_db()
        raise invalid(field, f"Only a planned run (in quarantine or scheduled) can be skipped; this one is {run.status.value}.")
    await run.refresh_from_db()
    changed_runs = [run]
    schedule = await _schedule_for_update(database)
    if schedule.mode == UpdateMode.MONTHLY and schedule.day_of_month and schedule.time_of_day:
        later = await UpdateRun.filter(
            database_id=database.id, status__in=list(PLANNED_RUN_STATUSES), scheduled_for__gt=run.scheduled_for
        ).exists()
        if not later:
            after = max(run.scheduled_for, now)
            changed_runs.append(await plan_run(
                database, next_monthly_run(schedule.day_of_month, schedule.time_of_day, schedule.timezone, after)
            ))
    elif schedule.mode == UpdateMode.ONCE and not await UpdateRun.filter(
        database_id=database.id, status__in=list(PLANNED_RUN_STATUSES)
    ).exists():
        schedule.mode, schedule.run_at = UpdateMode.DISABLED, None
        await schedule.save()
    await audit.record(
        ctx, "update_run.skip", organization_id=run.organization_id, object_type="UpdateRun", object_id=run.id,
        details={"databaseId": str(database.id), "scheduledFor": run.scheduled_for.isoformat(), "targetVersion": run.target_version},
    )
    await record_run_events(ctx, changed_runs)
    return run


# ---------------------------------------------------------------------------------------- releases (provider staff)


async def _require_staff(ctx: RequestContext) -> None:
    viewer = ctx.require_viewer()
    if not await User.filter(id=viewer.user_id, is_staff=True).exists():
        raise UserFacingError(ErrorCode.FORBIDDEN, "Only the provider's staff may publish or recall releases.")


async def publish_release(ctx: RequestContext, configuration: str, version: str) -> Release:
    """A new release of a configuration: every typical ON_RELEASE database on an older version gets a run
    in QUARANTINE for 24 hours (an older planned run is superseded); the worker then schedules it."""
    await _require_staff(ctx)
    configuration = validation.non_empty(configuration, ["configuration"], "Configuration")
    version = version.strip()
    if not VERSION_PATTERN.match(version) or len(version) > 50:
        raise invalid(["version"], "A version is dotted numbers, e.g. 3.0.152.15.")
    if await Release.exists(configuration=configuration, version=version):
        raise UserFacingError(ErrorCode.CONFLICT, f"Release {version} of «{configuration}» is already published.", ["version"])
    now = utcnow()
    release = await Release.create(configuration=configuration, version=version, published_at=now)
    key = version_key(version)
    schedules = await UpdateSchedule.filter(
        mode=UpdateMode.ON_RELEASE, database__configuration=configuration, database__is_typical=True
    ).select_related("database")
    databases = {s.database_id: s.database for s in schedules if version_key(s.database.version) < key}
    planned: dict[Any, list[UpdateRun]] = {}
    if databases:
        for run in await UpdateRun.filter(database_id__in=list(databases), status__in=list(PLANNED_RUN_STATUSES)):
            planned.setdefault(run.database_id, []).append(run)
    superseded, new_runs = [], []
    for database_id, database in databases.items():
        runs = planned.get(database_id, [])
        if any(run.target_version and version_key(run.target_version) >= key for run in runs):
            continue  # already going to this version or a newer one
        superseded += [run.id for run in runs]
        new_runs.append(UpdateRun(
            organization_id=database.organization_id, database_id=database_id, release=release, target_version=version,
            status=UpdateRunStatus.QUARANTINE, scheduled_for=now + QUARANTINE,
        ))
    if superseded:
        await UpdateRun.filter(id__in=superseded, status__in=list(PLANNED_RUN_STATUSES)).update(
            status=UpdateRunStatus.CANCELLED, message=f"Заменено обновлением до релиза {version}."
        )
    if new_runs:
        await UpdateRun.bulk_create(new_runs)
    await audit.record(
        ctx, "release.publish", organization_id=None, object_type="Release", object_id=release.id,
        details={"configuration": configuration, "version": version, "plannedRuns": len(new_runs), "supersededRuns": len(superseded)},
    )
    await record_run_events(ctx, await _runs_now(superseded) + new_runs)
    return release


async def recall_release(ctx: RequestContext, release_global_id: str) -> Release:
    """Recall a release: its runs not yet started are CANCELLED (a recalled release is never installed),
    and other planned runs that targeted it fall back to the newest release still out."""
    await _require_staff(ctx)
    field = ["releaseId"]
    pk = pk_of(release_global_id, "Release")
    release = await Release.get_or_none(id=pk) if pk else None
    if release is None:
        raise not_found(field, "release")
    now = utcnow()
    if not await Release.filter(id=release.id, recalled_at__isnull=True).update(recalled_at=now):
        raise invalid(field, f"Release {release.version} of «{release.configuration}» has already been recalled.")
    await release.refresh_from_db()
    cancelled = await UpdateRun.filter(release_id=release.id, status__in=list(PLANNED_RUN_STATUSES)).values_list("id", flat=True)
    if cancelled:
        await UpdateRun.filter(id__in=list(cancelled), status__in=list(PLANNED_RUN_STATUSES)).update(
            status=UpdateRunStatus.CANCELLED, message=f"Отменено: релиз {release.version} отозван."
        )
    retargeted = await UpdateRun.filter(
        status__in=list(PLANNED_RUN_STATUSES), target_version=release.version,
        database__configuration=release.configuration,
    ).select_related("database")
    if retargeted:
        newest = (await newest_releases({release.configuration})).get(release.configuration)
        for run in retargeted:
            run.target_version = newest_version(run.database.version, newest.version if newest else None)
            await run.save(update_fields=["target_version"])
    await record_run_events(ctx, await _runs_now(list(cancelled)) + list(retargeted))
    await audit.record(
        ctx, "release.recall", organization_id=None, object_type="Release", object_id=release.id,
        details={"configuration": release.configuration, "version": release.version, "cancelledRuns": len(cancelled)},
    )
    return release


async def plan_quarantined_run(
    run: UpdateRun, schedule: UpdateSchedule, capacity_per_slot: int, now: dt.datetime | None = None
) -> UpdateRun | None:
    """Move a run out of quarantine: SCHEDULED at the schedule's time of day (in its zone) on the first
    day whose slot has room, from the end of the quarantine on and no later than 7 days after the release.

    A slot is one moment; its load is every run planned or done at that moment (all organizations).
    When every slot up to the 7th day is full, the least loaded one is taken (the earliest of equals).
    When the worker comes so late that the 7 days are over, the next slot is taken. The worker calls
    this for QUARANTINE runs whose `scheduled_for` (release + 24 h) has come, with the database row
    locked; None when the run is no longer planned.
    """
    now = now or utcnow()
    release = await Release.get_or_none(id=run.release_id) if run.release_id else None
    released_at = release.published_at if release else run.scheduled_for - QUARANTINE
    earliest = max(released_at + QUARANTINE, now)
    deadline = released_at + RELEASE_WINDOW
    zone = ZoneInfo(schedule.timezone or DEFAULT_TIMEZONE)
    local_time = parse_time_of_day(schedule.time_of_day or "03:00")
    day = earliest.astimezone(zone).date()
    slots: list[dt.datetime] = []
    while not slots or slots[-1] < deadline:
        slot = dt.datetime.combine(day, local_time, zone).astimezone(dt.timezone.utc)
        if slot >= earliest:
            if slot > deadline and slots:
                break
            slots.append(slot)
        day += dt.timedelta(days=1)
    taken = await UpdateRun.filter(scheduled_for__in=slots, status__in=list(SLOT_TAKING_STATUSES)).exclude(
        id=run.id
    ).values_list("scheduled_for", flat=True)
    load = Counter(moment.astimezone(dt.timezone.utc) for moment in taken)
    chosen = next((slot for slot in slots if load[slot] < capacity_per_slot), None)
    if chosen is None:
        chosen = min(slots, key=lambda slot: (load[slot], slot))
    changed = await UpdateRun.filter(id=run.id, status__in=list(PLANNED_RUN_STATUSES)).update(
        status=UpdateRunStatus.SCHEDULED, scheduled_for=chosen
    )
    if not changed:
        return None
    run.status, run.scheduled_for = UpdateRunStatus.SCHEDULED, chosen
    return run  # the caller records its updateRuns event (a mutation via ctx, the worker after its commit)


# ---------------------------------------------------------------------------------------- what the update worker asks


async def execution_target(run: UpdateRun, database: Database) -> tuple[str | None, Release | None]:
    """What a run installs when it starts, and the release that is: the newest release of the database's
    configuration that is not recalled, or the run's own target when that is newer (a version no release
    names, e.g. set by the provider by hand). A recalled version is never a target. None: nothing known."""
    newest = (await newest_releases({database.configuration})).get(database.configuration)
    own = run.target_version
    if own and await Release.exists(configuration=database.configuration, version=own, recalled_at__isnull=False):
        own = None
    target = newest_version(own, newest.version if newest else None)
    if newest is not None and target == newest.version:
        return target, newest
    release = await Release.get_or_none(configuration=database.configuration, version=target) if target else None
    return target, release


async def follow_up_schedule(run: UpdateRun, now: dt.datetime) -> list[UpdateRun]:
    """After a run has ended (SUCCEEDED or FAILED): a ONCE schedule falls back to DISABLED, a MONTHLY one
    gets the next month's run planned, unless another run is planned already. The runs planned (for their
    events). Locks the database row, as the mutations do."""
    database = await Database.filter(id=run.database_id).select_for_update().first()
    if database is None:
        return []
    schedule = await UpdateSchedule.filter(database_id=database.id).select_for_update().first()
    if schedule is None or await UpdateRun.filter(database_id=database.id, status__in=list(PLANNED_RUN_STATUSES)).exists():
        return []
    if schedule.mode == UpdateMode.ONCE:
        schedule.mode, schedule.run_at = UpdateMode.DISABLED, None
        await schedule.save()
    elif schedule.mode == UpdateMode.MONTHLY and schedule.day_of_month and schedule.time_of_day and database.is_typical:
        after = max(run.scheduled_for, now)
        return [await plan_run(database, next_monthly_run(schedule.day_of_month, schedule.time_of_day, schedule.timezone, after))]
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
        database_id__in=list(monthly), status__in=[*PLANNED_RUN_STATUSES, UpdateRunStatus.RUNNING]
    ).values_list("database_id", flat=True))
    return sorted(monthly - busy, key=str)


async def plan_missing_monthly_run(database_id: Any, now: dt.datetime) -> UpdateRun | None:
    """Plan the next run of a MONTHLY database that has none (checked again under the database's lock)."""
    database = await Database.filter(id=database_id).select_for_update().first()
    schedule = await UpdateSchedule.filter(database_id=database_id).first() if database else None
    if (
        schedule is None or schedule.mode != UpdateMode.MONTHLY or not database.is_typical
        or not schedule.day_of_month or not schedule.time_of_day
        or await UpdateRun.filter(
            database_id=database_id, status__in=[*PLANNED_RUN_STATUSES, UpdateRunStatus.RUNNING]
        ).exists()
    ):
        return None
    return await plan_run(database, next_monthly_run(schedule.day_of_month, schedule.time_of_day, schedule.timezone, now))
