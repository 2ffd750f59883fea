"""What live subscriptions read: a consistent snapshot and the event log position it stands at, and
what a live session list becomes after a change (the rule; schema/subscription.py only renders it)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from resolvers.context import RequestContext
from resolvers.errors import Refusal
from resolvers.events import latest_seq
from models.cloud import Session, SessionStatus
from models.updates import UpdateRun
from resolvers.cloud import database_scope, session_scope
from kabinet.ids import pk_of
from resolvers.sessions import SESSION_ORDER

LIVE_STATUSES = (SessionStatus.ACTIVE, SessionStatus.TERMINATING)


async def watched_organization(ctx: RequestContext, organization_id: str) -> uuid.UUID:
    """The organization a subscription may watch; as if absent (NOT_FOUND) when not the viewer's."""
    ctx.require_viewer()
    ctx.forget_memberships()  # a socket lives long: read the membership afresh
    memberships = await ctx.memberships()
    pk = pk_of(organization_id, "Organization")
    if pk is None or pk not in memberships:
        raise Refusal("NOT_FOUND", "No such organization.")
    return pk


def watched_database(database_id: str | None) -> uuid.UUID | None:
    if database_id is None:
        return None
    pk = pk_of(database_id, "Database")
    if pk is None:
        raise Refusal("NOT_FOUND", "No such database.")
    return pk


class SessionFilter:
    """Which sessions a subscriber may see: the role's scope, and the database asked for."""

    def __init__(self, ctx: RequestContext, organization_id: uuid.UUID, database_id: uuid.UUID | None) -> None:
        scope = session_scope(ctx, organization_id)
        if isinstance(scope, Refusal):
            raise scope
        self.only_user = ctx.require_viewer().user_id if scope is not None else None
        self.database_id = database_id
        self.query = Q(organization_id=organization_id)
        if scope is not None:
            self.query &= scope
        if database_id is not None:
            self.query &= Q(database_id=database_id)

    def admits(self, session: Session) -> bool:
        return (self.only_user is None or session.user_id == self.only_user) and (
            self.database_id is None or session.database_id == self.database_id
        )


def is_live(session: Session) -> bool:
    """A live list shows the sessions that are running or being stopped."""
    return session.status in LIVE_STATUSES


def list_state(sessions: Iterable[Session]) -> frozenset:
    """What makes two live lists the same list: their sessions and statuses."""
    return frozenset((s.id, s.status) for s in sessions)


def list_after(current: dict[uuid.UUID, Session], session: Session) -> dict[uuid.UUID, Session]:
    """The live list (sessions by id) once `session` changed: in it, as it now is, while it is live;
    out of it once it is not. `current` is left as it was."""
    following = dict(current)
    if is_live(session):
        following[session.id] = session
    else:
        following.pop(session.id, None)
    return following


async def live_sessions_snapshot(organization_id: uuid.UUID, session_filter: SessionFilter) -> tuple[int, list[Session]]:
    """(event number, the ACTIVE and TERMINATING sessions as of that number).

    Read to the end even when the subscriber goes away meanwhile (a client that stops or closes
    while its first message is being made): a transaction cancelled while it opens never releases
    what it took, on SQLite the connection's lock (every later statement of the process waits
    forever), on PostgreSQL a pool connection."""
    return await asyncio.shield(asyncio.ensure_future(_read_snapshot(organization_id, session_filter)))


async def _read_snapshot(organization_id: uuid.UUID, session_filter: SessionFilter) -> tuple[int, list[Session]]:
    async with in_transaction() as connection:
        if connection.capabilities.dialect == "postgres":
            await connection.execute_query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        seq = await latest_seq(organization_id)
        sessions = await Session.filter(session_filter.query, status__in=list(LIVE_STATUSES)).order_by(*SESSION_ORDER)
    return seq, sessions


class RunFilter:
    """Which update runs a subscriber may see: databases its role sees, and the one asked for."""

    def __init__(self, ctx: RequestContext, organization_id: uuid.UUID, database_id: uuid.UUID | None) -> None:
        scope = database_scope(ctx, organization_id)
        if isinstance(scope, Refusal):
            raise scope
        self.granted = None if scope is None else ctx.granted_databases(organization_id)
        self.database_id = database_id

    def admits(self, run: UpdateRun) -> bool:
        return (self.granted is None or run.database_id in self.granted) and (
            self.database_id is None or run.database_id == self.database_id
        )

