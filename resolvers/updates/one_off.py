"""A one-off update beside a database's schedule («разовое обновление», BIT.LK): one more run at a moment
the member chooses, while the schedule (on release, monthly) stays in force. `scheduleUpdate(mode: ONCE)`
is the contract's other thing: ONCE as the database's one mode, which ends the previous mode.

The run is an ordinary SCHEDULED run (resolvers/updates/runs.py `plan`, origin ONE_OFF): the executors
claim it as any other and install the newest release not recalled when it starts. Being the schedule's
no more than a member's choice, a change of mode, a new release and the next month's planning leave it
(`update_runs.of_schedule`); `skipUpdateRun` skips it alone."""

from __future__ import annotations

import datetime as dt
import uuid

from foundation.clock import utcnow
from models.cloud import Database
from models.updates import PLANNED_RUN_STATUSES, UpdateRun, UpdateRunOrigin
from resolvers.common import audit
from resolvers.updates import runs as update_runs
from resolvers.common import validation
from resolvers.common.gates import check_organization_row, check_permission
from resolvers.common.context import RequestContext
from resolvers.common.errors import ErrorCode, UserFacingError
from resolvers.common.permissions import Permission
from resolvers.updates.releases import target_version_of
from resolvers.common.validation import invalid

# Bounds: how many one-offs may wait per database, and how far ahead one may be set.
ONE_OFFS_PLANNED_MAX = 3
ONE_OFF_HORIZON = dt.timedelta(days=90)


async def schedule_one_off_update(ctx: RequestContext, database_id: uuid.UUID, at: dt.datetime) -> UpdateRun:
    """OWNER and ADMIN: a one-off update run of a typical database at `at` (in the future, within 90
    days), beside its schedule; at most 3 wait at a time per database."""
    database = await check_organization_row(ctx, Database, database_id, "database_id", "database", lock=True)
    check_permission(ctx, database.organization_id, Permission.MANAGE_UPDATES, "Разовое обновление назначают владелец или администратор.")
    if not database.is_typical:
        raise invalid(
            "database_id",
            f"«{database.name}» — доработанная (нетиповая) конфигурация: обновление стёрло бы её изменения. "
            "Эту базу обновляет ваш менеджер.",
        )
    now = utcnow()
    at = validation.future(at, "at", now)
    if at > now + ONE_OFF_HORIZON:
        raise invalid("at", f"Разовое обновление назначается не далее чем на {ONE_OFF_HORIZON.days} дней вперёд.")
    waiting = await UpdateRun.filter(
        database_id=database.id, origin=UpdateRunOrigin.ONE_OFF, status__in=list(PLANNED_RUN_STATUSES)
    ).count()
    if waiting >= ONE_OFFS_PLANNED_MAX:
        raise UserFacingError(
            ErrorCode.LIMIT_EXCEEDED,
            f"У базы уже назначено {waiting} разовых обновления: больше {ONE_OFFS_PLANNED_MAX} сразу нельзя. "
            "Пропустите одно из них (skipUpdateRun) или дождитесь его.",
            "database_id",
        )
    run = await update_runs.plan(ctx, database, at, await target_version_of(database), UpdateRunOrigin.ONE_OFF)
    await audit.record(
        ctx, "update_run.one_off", organization_id=database.organization_id, object_type="UpdateRun", object_id=run.id,
        details={"databaseId": str(database.id), "scheduledFor": at.isoformat(), "targetVersion": run.target_version},
    )
    return run
