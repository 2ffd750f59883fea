"""A database's lock of new sessions («блокировка начала сеансов»): for a time window, with a message
for the users it turns away. The cluster agent honours it (`kabinet/agent_api/` refuses a session
that would start inside it), as it honours the lock an update run holds (`locked_for_update`).

`set_lock` and `clear_lock` are the only changes of the lock; `refusal_of` says whether a database
admits a new session now."""

from __future__ import annotations

import datetime as dt
import uuid

from foundation.clock import utcnow
from models.cloud import Database
from resolvers.common import audit
from resolvers.common import validation
from resolvers.common.gates import check_organization_row, check_permission
from resolvers.common.context import Actor, RequestContext
from resolvers.common.errors import ErrorCode, UserFacingError
from events.log import DATA
from resolvers.common.permissions import Permission

MAX_LOCK_DAYS = 31


def lock_in_force(database: Database, now: dt.datetime) -> bool:
    return (
        database.locked_until is not None and database.locked_until > now
        and (database.locked_from is None or database.locked_from <= now)
    )


def refusal_of(database: Database | None, now: dt.datetime) -> str | None:
    """Why the database admits no new session now, or None when it does."""
    if database is None:
        return None
    if database.locked_for_update:
        return "The database is being updated: new sessions are locked until the update ends."
    if lock_in_force(database, now):
        until = database.locked_until.strftime("%Y-%m-%d %H:%M UTC")
        return f"New sessions are locked until {until}: {database.lock_message}"
    return None


async def set_lock(
    ctx: RequestContext, database_id: uuid.UUID, message: str, locked_from: dt.datetime | None, locked_until: dt.datetime
) -> Database:
    """An OWNER's or ADMIN's lock of new sessions (who may change update schedules may lock for
    maintenance). The window ends in the future and lasts at most MAX_LOCK_DAYS."""
    database = await check_organization_row(ctx, Database, database_id, "database_id", "database", lock=True)
    check_permission(ctx, database.organization_id, Permission.MANAGE_UPDATES, "Only the owner or an admin may lock a database.")
    message = validation.non_empty(message, "message", "The message users see when turned away", max_length=500)
    now = utcnow()
    starts = locked_from or now
    if locked_until <= max(now, starts):
        raise UserFacingError(ErrorCode.INVALID, "The lock must end in the future and after it starts.", "ends_at")
    if locked_until - starts > dt.timedelta(days=MAX_LOCK_DAYS):
        raise UserFacingError(ErrorCode.INVALID, f"A lock lasts at most {MAX_LOCK_DAYS} days.", "ends_at")
    await _write(ctx, database, message, starts, locked_until, "database.lock")
    return database


async def clear_lock(ctx: RequestContext, database_id: uuid.UUID) -> Database:
    database = await check_organization_row(ctx, Database, database_id, "database_id", "database", lock=True)
    check_permission(ctx, database.organization_id, Permission.MANAGE_UPDATES, "Only the owner or an admin may unlock a database.")
    if database.locked_until is not None:
        await _write(ctx, database, None, None, None, "database.unlock")
    return database


async def _write(
    actor: Actor, database: Database, message: str | None, starts: dt.datetime | None, until: dt.datetime | None, action: str
) -> None:
    database.lock_message, database.locked_from, database.locked_until = message, starts, until
    await database.save(update_fields=["lock_message", "locked_from", "locked_until"])
    await audit.record(
        actor, action, organization_id=database.organization_id, object_type="Database", object_id=database.id,
        details={"message": message, "from": starts.isoformat() if starts else None, "until": until.isoformat() if until else None},
    )
    await actor.record_event(database.organization_id, DATA, "CHANGED", {"areas": ["cloud"]})
