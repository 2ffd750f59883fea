"""Why an update run is planned when it is (`UpdateRun.scheduledBecause`): what planned it (the
schedule's mode or a one-off), the release and its quarantine, the slot's time of day and zone, and
whether fuller slots or a failed attempt moved it. Read off the same rules that decided it: the
schedule (resolvers/updates/schedules.py), the release's quarantine and slots
(resolvers/updates/releases.py `release_slots`, QUARANTINE, RELEASE_WINDOW). Two queries for any number of runs."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from tortoise.expressions import Q

from models.select import select
from models.updates import PLANNED_RUN_STATUSES, Release, UpdateRun, UpdateRunOrigin, UpdateRunStatus, UpdateSchedule
from resolvers.common.context import RequestContext
from resolvers.updates.releases import DEFAULT_TIMEZONE, QUARANTINE, RELEASE_WINDOW, release_slots


@dataclass
class RunReason:
    origin: UpdateRunOrigin | None  # None: planned before kabinet kept it
    release: Release | None
    quarantine_ends_at: dt.datetime | None
    latest_at: dt.datetime | None  # ON_RELEASE: no later than this (7 days after the release)
    day_of_month: int | None
    time_of_day: str | None
    timezone: str
    first_possible_slot: dt.datetime | None  # ON_RELEASE: the first slot after the quarantine
    moved_by_capacity: bool  # ON_RELEASE: earlier slots were full
    retry: bool  # planned again after a failed attempt
    explanation: str


def _local(moment: dt.datetime, timezone: str) -> str:
    return moment.astimezone(ZoneInfo(timezone)).strftime("%d.%m.%Y %H:%M")


def reason(run: UpdateRun, schedule: UpdateSchedule | None, release: Release | None) -> RunReason:
    """The reason of one run, given its database's schedule and the release it belongs to."""
    timezone = (schedule.timezone if schedule else None) or DEFAULT_TIMEZONE
    origin = run.origin
    planned = run.status in PLANNED_RUN_STATUSES
    retry = run.status == UpdateRunStatus.SCHEDULED and run.attempts > 0
    at = _local(run.scheduled_for, timezone)
    quarantine_ends_at = latest_at = first_slot = None
    day_of_month = time_of_day = None
    moved = False
    if origin == UpdateRunOrigin.ON_RELEASE and release is not None:
        quarantine_ends_at = release.published_at + QUARANTINE
        latest_at = release.published_at + RELEASE_WINDOW
        time_of_day = schedule.time_of_day if schedule else None
        if schedule is not None:
            first_slot = release_slots(release.published_at, quarantine_ends_at, schedule)[0]
            moved = run.status == UpdateRunStatus.SCHEDULED and not retry and run.scheduled_for > first_slot
        text = f"Обновление по выходу релиза {release.version} ({release.configuration}), опубликованного {_local(release.published_at, timezone)}"
        if run.status == UpdateRunStatus.QUARANTINE:
            text += (
                f": релиз на карантине до {_local(quarantine_ends_at, timezone)}; затем обновление назначится "
                f"на {time_of_day or '—'} ({timezone}) первого дня со свободным слотом, не позже {_local(latest_at, timezone)}."
            )
        elif moved:
            text += (
                f": после карантина (до {_local(quarantine_ends_at, timezone)}) слоты в {time_of_day} до {at} были заняты, "
                f"назначено на {at} ({timezone}), не позже {_local(latest_at, timezone)}."
            )
        else:
            text += f": после карантина (до {_local(quarantine_ends_at, timezone)}) — ближайший слот, {at} ({timezone})."
    elif origin == UpdateRunOrigin.ON_RELEASE:
        text = f"Обновление по выходу релиза: {at} ({timezone})."
    elif origin == UpdateRunOrigin.MONTHLY:
        day_of_month = schedule.day_of_month if schedule else None
        time_of_day = schedule.time_of_day if schedule else None
        text = f"Ежемесячное обновление: {day_of_month or '—'}-го числа в {time_of_day or '—'} ({timezone}), {at}."
    elif origin == UpdateRunOrigin.ONCE:
        text = f"Разовое обновление по расписанию (режим ONCE): {at} ({timezone})."
    elif origin == UpdateRunOrigin.ONE_OFF:
        text = f"Разовое обновление, назначенное дополнительно к расписанию: {at} ({timezone})."
    else:
        text = f"Обновление назначено на {at} ({timezone})."
    if retry:
        text += f" Повтор после неудачной попытки ({run.attempts})."
    if not planned and run.status != UpdateRunStatus.RUNNING:
        text += f" Статус: {run.status.value}."
    return RunReason(
        origin, release, quarantine_ends_at, latest_at, day_of_month, time_of_day, timezone, first_slot, moved, retry, text
    )


async def reasons_of(ctx: RequestContext, runs: list[UpdateRun], args: dict[str, Any]) -> list[RunReason]:
    """`UpdateRun.scheduledBecause` of many runs: their schedules and releases in two queries."""
    database_ids = list({run.database_id for run in runs})
    release_ids = list({run.release_id for run in runs if run.release_id})
    schedules = {s.database_id: s for s in await select(UpdateSchedule, Q(database_id__in=database_ids))} if database_ids else {}
    releases = {r.id: r for r in await select(Release, Q(id__in=release_ids))} if release_ids else {}
    return [reason(run, schedules.get(run.database_id), releases.get(run.release_id)) for run in runs]
