"""Update schedules of databases and the runs they plan."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from kabinet.auth import utcnow
from kabinet.context import RequestContext
from models.cloud import Database
from models.updates import PLANNED_RUN_STATUSES, UpdateMode, UpdateRun, UpdateSchedule
from resolvers.common import SELECTED, page_request, wants_total
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
    schedules = {s.database_id: s for s in await UpdateSchedule.filter(database_id__in=ids)}
    planned: dict[Any, list[UpdateRun]] = {i: [] for i in ids}
    if "nextRunAt" in args.get(SELECTED, ("nextRunAt",)):
        for run in await UpdateRun.filter(database_id__in=ids, status__in=list(PLANNED_RUN_STATUSES)):
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
