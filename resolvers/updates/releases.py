"""Configuration releases: versions, the newest release, publishing and recalling one, and when a
run held in quarantine after a release gets its slot. The runs themselves change in resolvers/updates/runs.py."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections import Counter
from typing import Any
from zoneinfo import ZoneInfo

from foundation.clock import utcnow
from models.cloud import Database
from models.updates import PLANNED_RUN_STATUSES, Release, UpdateMode, UpdateRun, UpdateRunStatus, UpdateSchedule
from resolvers.common import audit
from resolvers.updates import runs as update_runs
from resolvers.common import validation
from resolvers.common.context import Actor, RequestContext
from resolvers.common.errors import ErrorCode, UserFacingError, not_found
from resolvers.common.staff_rights import StaffMember, staff_for_change
from resolvers.common.validation import invalid
from models.organizations import Organization
from resolvers.common import notifications

VERSION_PATTERN = re.compile(r"^\d+(\.\d+)*$")
QUARANTINE = dt.timedelta(hours=24)
RELEASE_WINDOW = dt.timedelta(days=7)  # an ON_RELEASE run happens no later than this after the release
ANNOUNCED_FOR = dt.timedelta(days=7)  # a release published longer ago (the provider's records) is not mailed
DEFAULT_TIMEZONE = "Europe/Moscow"
DEFAULT_TIME_OF_DAY = "03:00"
# Runs that take up an update slot (a planned or a past one).
SLOT_TAKING_STATUSES = (UpdateRunStatus.SCHEDULED, UpdateRunStatus.RUNNING, UpdateRunStatus.SUCCEEDED, UpdateRunStatus.FAILED)


# ---------------------------------------------------------------------------------------- versions


def version_key(version: str) -> tuple[int, ...]:
    """Versions compare as dotted numbers: 3.0.152.15 > 3.0.150.20 (> 3.0.99.1). Non-numeric parts count as 0."""
    return tuple(int(part) if part.isdigit() else 0 for part in version.strip().split("."))


def newest_version(*versions: str | None) -> str | None:
    present = [v for v in versions if v]
    return max(present, key=version_key) if present else None


def parse_time_of_day(value: str) -> dt.time:
    hours, minutes = value.split(":")
    return dt.time(int(hours), int(minutes))


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


# ---------------------------------------------------------------------------------------- publishing and recalling


async def _require_staff(ctx: RequestContext) -> StaffMember:
    """The caller, one of the provider's staff (whose actions the provider's audit names)."""
    return await staff_for_change(ctx, "Only the provider's staff may publish or recall releases.")


async def _staff_action(staff: StaffMember, action: str, target: str, details: dict[str, Any]) -> None:
    """The provider's own audit of what its staff did, in this transaction."""
    await staff.audit(action, target, details)


async def publish_release(ctx: RequestContext, configuration: str, version: str) -> Release:
    """Staff: publish a release now (`publish`); also in the provider's own audit."""
    staff = await _require_staff(ctx)
    configuration = validation.non_empty(configuration, "configuration", "Configuration")
    version = check_version(version)
    if await Release.exists(configuration=configuration, version=version):
        raise UserFacingError(ErrorCode.CONFLICT, f"Release {version} of «{configuration}» is already published.", "version")
    release = await publish(ctx, configuration, version)
    await _staff_action(staff, "release.publish", f"{configuration} {version}", {"releaseId": str(release.id)})
    return release


def check_version(version: str) -> str:
    version = version.strip()
    if not VERSION_PATTERN.match(version) or len(version) > 50:
        raise invalid("version", "A version is dotted numbers, e.g. 3.0.152.15.")
    return version


async def publish(
    actor: Actor, configuration: str, version: str, *, published_at: dt.datetime | None = None,
    external_id: str | None = None,
) -> Release:
    """A new release of a configuration, whoever publishes it (staff, or the provider's records with
    their own id and publication time): every typical ON_RELEASE database on an older version gets a
    run in QUARANTINE until 24 hours after the publication (an older planned run is superseded); the
    worker then schedules it. The caller has checked the version and that it is not published yet."""
    now = published_at or utcnow()
    release = await Release.create(configuration=configuration, version=version, published_at=now, external_id=external_id)
    key = version_key(version)
    schedules = await UpdateSchedule.filter(
        mode=UpdateMode.ON_RELEASE, database__configuration=configuration, database__is_typical=True
    ).select_related("database")
    databases = {s.database_id: s.database for s in schedules if version_key(s.database.version) < key}
    planned: dict[Any, list[UpdateRun]] = {}
    if databases:
        for run in await UpdateRun.filter(
            update_runs.of_schedule(), database_id__in=list(databases), status__in=list(PLANNED_RUN_STATUSES)
        ):  # a member's one-off beside the schedule is neither superseded nor in the way
            planned.setdefault(run.database_id, []).append(run)
    superseded, quarantined = [], []
    for database_id, database in databases.items():
        runs = planned.get(database_id, [])
        if any(run.target_version and version_key(run.target_version) >= key for run in runs):
            continue  # already going to this version or a newer one
        superseded += [run.id for run in runs]
        quarantined.append(database)
    await audit.record(
        actor, "release.publish", organization_id=None, object_type="Release", object_id=release.id,
        details={"configuration": configuration, "version": version, "plannedRuns": len(quarantined), "supersededRuns": len(superseded)},
    )
    await update_runs.cancel(actor, superseded, f"Заменено обновлением до релиза {version}.")
    await update_runs.quarantine(actor, release, quarantined, now + QUARANTINE)
    if now >= utcnow() - ANNOUNCED_FOR:  # not the provider's history of releases
        await _announce(actor, release)
    return release


async def _announce(actor: Actor, release: Release) -> None:
    """RELEASE_OUT (resolvers/common/notifications.py) to each organization with a database of the
    configuration on an older version: the letter that the release is out (BIT.LK)."""
    key = version_key(release.version)
    names: dict[uuid.UUID, list[str]] = {}
    for database in await Database.filter(configuration=release.configuration).order_by("name"):
        if version_key(database.version) < key:
            names.setdefault(database.organization_id, []).append(database.name)
    organizations = {o.id: o for o in await Organization.filter(id__in=list(names))} if names else {}
    for organization_id, databases in names.items():
        await notifications.release_out(actor, organizations[organization_id], release, databases)


async def recall_release(ctx: RequestContext, release_id: uuid.UUID) -> Release:
    """Staff: recall a release (`recall`); also in the provider's own audit."""
    staff = await _require_staff(ctx)
    field = "release_id"
    release = await Release.get_or_none(id=release_id)
    if release is None:
        raise not_found("release", field)
    cancelled = await recall(ctx, release)
    if cancelled is None:
        raise invalid(field, f"Release {release.version} of «{release.configuration}» has already been recalled.")
    await _staff_action(
        staff, "release.recall", f"{release.configuration} {release.version}", {"releaseId": str(release.id), "cancelledRuns": len(cancelled)},
    )
    return release


async def recall(actor: Actor, release: Release) -> list[UpdateRun] | None:
    """The one way a release is recalled, whoever decides (staff, or the provider's records): it is
    offered no more (`newest_releases`), its runs not yet started are CANCELLED (a recalled release is
    never installed) and other planned runs that targeted it fall back to the newest release still
    out. The cancelled runs; None when it was recalled already (nothing changed). `release` is re-read."""
    if not await Release.filter(id=release.id, recalled_at__isnull=True).update(recalled_at=utcnow()):
        return None
    await release.refresh_from_db()
    planned = await UpdateRun.filter(release_id=release.id, status__in=list(PLANNED_RUN_STATUSES)).values_list("id", flat=True)
    cancelled = await update_runs.cancel(actor, planned, f"Отменено: релиз {release.version} отозван.")
    retargeted = await UpdateRun.filter(
        status__in=list(PLANNED_RUN_STATUSES), target_version=release.version,
        database__configuration=release.configuration,
    ).select_related("database")
    if retargeted:
        newest = (await newest_releases({release.configuration})).get(release.configuration)
        for run in retargeted:
            await update_runs.retarget(actor, run, newest_version(run.database.version, newest.version if newest else None))
    await audit.record(
        actor, "release.recall", organization_id=None, object_type="Release", object_id=release.id,
        details={"configuration": release.configuration, "version": release.version, "cancelledRuns": len(cancelled)},
    )
    return cancelled


# ---------------------------------------------------------------------------------------- leaving quarantine


def release_slots(released_at: dt.datetime, earliest: dt.datetime, schedule: UpdateSchedule) -> list[dt.datetime]:
    """The slots an ON_RELEASE run may take: the schedule's time of day (in its zone) on each day from
    `earliest` on, up to 7 days after the release (at least one slot, should those days be over)."""
    deadline = released_at + RELEASE_WINDOW
    zone = ZoneInfo(schedule.timezone or DEFAULT_TIMEZONE)
    local_time = parse_time_of_day(schedule.time_of_day or DEFAULT_TIME_OF_DAY)
    day = earliest.astimezone(zone).date()
    slots: list[dt.datetime] = []
    while not slots or slots[-1] < deadline:
        slot = dt.datetime.combine(day, local_time, zone).astimezone(dt.timezone.utc)
        if slot >= earliest:
            if slot > deadline and slots:
                break
            slots.append(slot)
        day += dt.timedelta(days=1)
    return slots


async def plan_quarantined_run(
    actor: Actor, run: UpdateRun, schedule: UpdateSchedule, capacity_per_slot: int, now: dt.datetime | None = None
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
    slots = release_slots(released_at, max(released_at + QUARANTINE, now), schedule)
    taken = await UpdateRun.filter(scheduled_for__in=slots, status__in=list(SLOT_TAKING_STATUSES)).exclude(
        id=run.id
    ).values_list("scheduled_for", flat=True)
    load = Counter(moment.astimezone(dt.timezone.utc) for moment in taken)
    chosen = next((slot for slot in slots if load[slot] < capacity_per_slot), None)
    if chosen is None:
        chosen = min(slots, key=lambda slot: (load[slot], slot))
    return await update_runs.schedule_at(actor, run, chosen)
