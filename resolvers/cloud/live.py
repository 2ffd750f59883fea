"""What live subscriptions read: a consistent snapshot and the event log position it stands at, and
what a live session list becomes after a change (the rule; schema/subscription.py only renders it)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from resolvers.common.context import RequestContext
from resolvers.common.errors import Refusal, not_found, refusal
from events.log import latest_seq
from models.cloud import Session
from models.updates import UpdateRun
from resolvers.common.permissions import TYPE_RULES, Sight, session_scope, update_run_scope
from resolvers.cloud.sessions import LIVE, SESSION_ORDER


async def check_watched_organization(ctx: RequestContext, organization_id: uuid.UUID) -> uuid.UUID:
    """The organization a subscription may watch; as if absent (NOT_FOUND) when not the viewer's."""
    ctx.require_viewer()
    ctx.forget_memberships()  # a socket lives long: read the membership afresh
    if organization_id not in await ctx.memberships():
        raise refusal(not_found("organization"))
    return organization_id


class SessionFilter:
    """Which sessions a subscriber may see: the role table's Session rule (as it stood when they
    subscribed), and the database asked for."""

    def __init__(self, ctx: RequestContext, organization_id: uuid.UUID, database_id: uuid.UUID | None) -> None:
        narrowing = session_scope(ctx, organization_id)
        if isinstance(narrowing, Refusal):
            raise narrowing
        self.rights = ctx.narrowed_to(organization_id, as_viewer=True)  # kept: the socket's own context is re-read
        # a narrowed list is one person's: subscribers share results only with their equals (schema/subscription.py)
        self.only_user = ctx.require_viewer().user_id if narrowing is not None else None
        self.database_id = database_id
        self.query = Q(organization_id=organization_id)
        if narrowing is not None:
            self.query &= narrowing
        if database_id is not None:
            self.query &= Q(database_id=database_id)

    def admits(self, session: Session) -> bool:
        return TYPE_RULES["Session"](self.rights, session) is Sight.SEE and (
            self.database_id is None or session.database_id == self.database_id
        )


def is_live(session: Session) -> bool:
    """A live list shows the sessions that are running or being stopped."""
    return session.status in LIVE


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
        sessions = await Session.filter(session_filter.query, status__in=list(LIVE)).order_by(*SESSION_ORDER)
    return seq, sessions


class RunFilter:
    """Which update runs a subscriber may see: the role table's UpdateRun rule (runs of the
    databases the role sees, as it stood when they subscribed), and the database asked for."""

    def __init__(self, ctx: RequestContext, organization_id: uuid.UUID, database_id: uuid.UUID | None) -> None:
        narrowing = update_run_scope(ctx, organization_id)
        if isinstance(narrowing, Refusal):
            raise narrowing
        self.rights = ctx.narrowed_to(organization_id, as_viewer=True)
        self.database_id = database_id

    def admits(self, run: UpdateRun) -> bool:
        return TYPE_RULES["UpdateRun"](self.rights, run) is Sight.SEE and (
            self.database_id is None or run.database_id == self.database_id
        )
