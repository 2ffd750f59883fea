"""A cloud session's lifecycle, in one place: every change of a session's status is made here.

    start ──► ACTIVE ── ended ─────────────────────────────────────► ENDED (logged off)
                 │    ▲
                 │    └── termination_refused (the cluster would not) ──┐
                 └── request_termination ──► TERMINATING ──────────────┴─ confirm_terminated, ended ──► TERMINATED

Every caller uses these functions: the GraphQL mutations (`terminate`, `terminate_all`, through
resolvers/cloud/reads.py), a member losing access (`access_ended`, resolvers/organizations/memberships.py, removals.py), the update
worker (workers/updates.py), the simulated cluster (workers/cluster.py) and the real cluster's
agent (kabinet/agent_api/). Each transition is conditional on the status it starts from, so of
concurrent callers one wins and the others change nothing; it records the session's event (topic
`sessions`, kind = the new status, or STARTED) with the session as it now is, and, for a request to
terminate, the audit entry `session.terminate`.

The actor is the signed-in viewer's RequestContext (events announced when the mutation commits) or
a SystemActor (a worker, the cluster agent: no person in the audit entry; the caller announces its
events after its own transaction). Every function runs in its caller's transaction.

Demo and bulk seeding create rows as they stand, without events (`seed`, `seed_many`).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tortoise.expressions import Q

from foundation.clock import utcnow
from resolvers.common.context import Actor, RequestContext
from resolvers.common.errors import ErrorCode, Refusal, UserFacingError
from events.log import SESSIONS, session_payload
from resolvers.common.permissions import TYPE_RULES, Sight, session_scope
from models.cloud import ClientKind, Database, Session, SessionStatus
from models.organizations import Organization
from resolvers.common import audit
from resolvers.common.gates import check_member_of, check_organization_row
from resolvers.cloud import database_locks
from resolvers.cloud.subscriptions import limits_of
from resolvers.common import notifications

# Every list of sessions, newest first; of two started at the same moment the greater id first.
SESSION_ORDER = ("-started_at", "-id")

_NOT_ACTIVE = {
    SessionStatus.TERMINATING: "This session is already being terminated; the cluster will end it in a moment.",
    SessionStatus.ENDED: "This session has already ended: the user logged off.",
    SessionStatus.TERMINATED: "This session has already been terminated.",
    SessionStatus.REFUSED: "This session was never admitted: the cluster turned it away.",
}
LIVE = (SessionStatus.ACTIVE, SessionStatus.TERMINATING)  # sessions that hold a place in the cluster


def newest_first(sessions: Iterable[Session]) -> list[Session]:
    """Sessions in SESSION_ORDER, sorted here (a live list kept in memory)."""
    return sorted(sessions, key=lambda s: (s.started_at, str(s.id)), reverse=True)


# ---------------------------------------------------------------------------------------- started

async def start(
    actor: Actor,
    *,
    organization_id: uuid.UUID,
    database_id: uuid.UUID | None,
    user_id: uuid.UUID | None,
    user_name: str,
    client_kind: ClientKind,
    host: str | None,
    started_at: dt.datetime,
    cluster_session_id: str | None = None,
) -> Session:
    """A session began in the cluster: an ACTIVE row and its STARTED event."""
    session = await Session.create(
        organization_id=organization_id, database_id=database_id, user_id=user_id,
        user_name=user_name, client_kind=client_kind, host=host, started_at=started_at,
        status=SessionStatus.ACTIVE, cluster_session_id=cluster_session_id,
    )
    await actor.record_event(organization_id, SESSIONS, "STARTED", session_payload(session))
    return session


async def admission_refusal(organization_id: uuid.UUID, database: Database | None, now: dt.datetime) -> str | None:
    """Why the cluster may not admit a new session now (a locked database, the organization's
    concurrent sessions at their limit), or None. The caller holds the organization's row lock
    (`hold_admissions`), so two reports cannot both take the last place."""
    return (await Admissions.of(organization_id, now)).refusal(database, now)


@dataclass
class Admissions:
    """An organization's places as they stand: its concurrent-sessions limit (None: no subscription,
    no limit) and its running sessions, counted on as sessions are admitted (a snapshot admits many)."""

    sessions_limit: int | None
    running: int

    @classmethod
    async def of(cls, organization_id: uuid.UUID, now: dt.datetime) -> Admissions:
        limits = (await limits_of([organization_id], now)).get(organization_id)
        if limits is None:
            return cls(None, 0)
        return cls(limits.sessions, await Session.filter(organization_id=organization_id, status__in=LIVE).count())

    def refusal(self, database: Database | None, now: dt.datetime) -> str | None:
        locked = database_locks.refusal_of(database, now)
        if locked:
            return locked
        if self.sessions_limit is not None and self.running >= self.sessions_limit:
            return f"The subscription allows {self.sessions_limit} concurrent sessions and all are in use."
        return None


async def hold_admissions(organization_id: uuid.UUID) -> None:
    """One admission at a time per organization: its row locked to the end of the caller's transaction
    (PostgreSQL; SQLite has one writer)."""
    await Organization.filter(id=organization_id).select_for_update().get()


async def reported_started(
    actor: Actor, *, database: Database | None, now: dt.datetime, cluster_session_id: str, reach: Q | None, **fields: Any
) -> tuple[Session, bool, str | None]:
    """The cluster reports a session began (the legacy door of one session): (the session, created,
    why it was refused). Once per `cluster_session_id` among the sessions the reporter reaches
    (`reach`, resolvers/cloud/clusters.py; None: all): a repeated report answers the stored session, not
    created; one naming another organization's or database's session is a CONFLICT. A new one is
    admitted or refused by `admit`."""
    organization_id = fields["organization_id"]
    await hold_admissions(organization_id)
    existing = await by_cluster_id(cluster_session_id, reach)
    if existing is not None:
        if existing.organization_id != organization_id or (database and existing.database_id != database.id):
            raise UserFacingError(
                ErrorCode.CONFLICT, "This clusterSessionId is already a session of another organization or database.",
                "cluster_session_id",
            )
        return existing, False, None
    session, refusal = await admit(actor, database=database, now=now, cluster_session_id=cluster_session_id, **fields)
    return session, True, refusal


async def admit(
    actor: Actor, *, database: Database | None, now: dt.datetime, admissions: Admissions | None = None, **fields: Any
) -> tuple[Session, str | None]:
    """A session the cluster runs and kabinet does not know yet: admitted (ACTIVE, `start`) or REFUSED
    (`refuse`) by the organization's `Admissions` (read now, or the caller's, counted on here: a
    snapshot admitting many reads them once); (the session, why it was refused). The caller holds
    the organization's admissions (`hold_admissions`)."""
    fields.update(database_id=database.id if database else None)
    admissions = admissions or await Admissions.of(fields["organization_id"], now)
    refusal = admissions.refusal(database, now)
    if refusal is None:
        admissions.running += 1
        return await start(actor, **fields), None
    return await refuse(actor, reason=refusal, **fields), refusal


async def start_if_admitted(actor: Actor, *, database: Database | None, now: dt.datetime, **fields: Any) -> Session | None:
    """Start a session only if `admission_refusal` lets it in, else None and nothing written: the
    simulated cluster, whose made-up users do not knock on a full subscription or a locked database."""
    await hold_admissions(fields["organization_id"])
    if await admission_refusal(fields["organization_id"], database, now) is not None:
        return None
    return await start(actor, database_id=database.id if database else None, **fields)


async def refuse(
    actor: Actor,
    *,
    organization_id: uuid.UUID,
    database_id: uuid.UUID | None,
    user_id: uuid.UUID | None,
    user_name: str,
    client_kind: ClientKind,
    host: str | None,
    started_at: dt.datetime,
    reason: str,
    cluster_session_id: str | None = None,
) -> Session:
    """A session the cluster asked to admit and may not: a REFUSED row (it never ran) and its REFUSED
    event, so the dashboard shows who was turned away and why."""
    session = await Session.create(
        organization_id=organization_id, database_id=database_id, user_id=user_id, user_name=user_name,
        client_kind=client_kind, host=host, started_at=started_at, ended_at=started_at,
        status=SessionStatus.REFUSED, cluster_session_id=cluster_session_id, refusal_reason=reason[:300],
    )
    await actor.record_event(organization_id, SESSIONS, "REFUSED", session_payload(session))
    return session


async def seed(**fields: Any) -> Session:
    """A session row as it stands (any status, its own times), with no event: for seeding an empty
    database (the demo), where nobody is subscribed yet and the history is made up."""
    return await Session.create(**fields)


async def seed_many(rows: list[dict[str, Any]]) -> list[Session]:
    """Many made-up rows (their fields) at once, with no events: bulk data for benchmarks."""
    sessions = [Session(**fields) for fields in rows]
    await Session.bulk_create(sessions)
    return sessions


# ---------------------------------------------------------------------------------------- termination requested

async def request_termination(
    actor: Actor, query: Q, *, requested_by: uuid.UUID | None, audit_details: dict[str, Any] | None
) -> list[Session]:
    """ACTIVE → TERMINATING for the sessions `query` selects: the ones this call changed, in SESSION_ORDER.

    The rows are locked first (PostgreSQL; SQLite runs one writer at a time) and changed only while
    still ACTIVE, so each is asked to end once however many ask. Each gets its TERMINATING event
    and, unless `audit_details` is None, a `session.terminate` audit entry with those details."""
    ids = list(
        await Session.filter(query, status=SessionStatus.ACTIVE).order_by("id").select_for_update().values_list("id", flat=True)
    )
    if not ids:
        return []
    now = utcnow()
    await Session.filter(id__in=ids, status=SessionStatus.ACTIVE).update(
        status=SessionStatus.TERMINATING, termination_requested_by_id=requested_by, termination_requested_at=now,
        refusal_reason=None,  # why the cluster refused an earlier request, if it did
    )
    sessions = list(
        await Session.filter(id__in=ids, status=SessionStatus.TERMINATING, termination_requested_at=now)
        .order_by(*SESSION_ORDER)
    )
    for session in sessions:
        if audit_details is not None:
            await audit.record(
                actor, "session.terminate", organization_id=session.organization_id, object_type="Session",
                object_id=session.id,
                details={"userName": session.user_name, "databaseId": str(session.database_id), **audit_details},
            )
        await actor.record_event(session.organization_id, SESSIONS, "TERMINATING", session_payload(session))
    if audit_details is not None:  # someone's termination (not a member's access taken away): tell the users
        await notifications.sessions_terminated(actor, sessions)
    return sessions


def check_termination_scope(ctx: RequestContext, organization_id: uuid.UUID) -> Q | None:
    """Which of an organization's sessions the viewer may terminate: the ones they see (the role
    table's Session rule: all for OWNER, ADMIN, None here; their own for a USER); FORBIDDEN for a
    role that sees no sessions (ACCOUNTANT)."""
    seen = session_scope(ctx, organization_id)
    if isinstance(seen, Refusal):
        raise UserFacingError(ErrorCode.FORBIDDEN, "Your role may not terminate sessions.")
    return seen


async def terminate(ctx: RequestContext, session_id: uuid.UUID, *, field: str) -> Session:
    """The viewer asks the cluster to end one session of one of their organizations (the mutation):
    ACTIVE → TERMINATING now, TERMINATED when the cluster confirms. NOT_FOUND for a session of no
    organization of theirs; a session in any other status is INVALID (`field` names the argument),
    with what became of it."""
    viewer = ctx.require_viewer()
    session = await check_organization_row(ctx, Session, session_id, field, "session")
    check_termination_scope(ctx, session.organization_id)  # FORBIDDEN for a role that sees no sessions
    if TYPE_RULES["Session"](ctx, session) is not Sight.SEE:
        raise UserFacingError(ErrorCode.FORBIDDEN, "You may terminate only your own sessions.")
    changed = await request_termination(ctx, Q(id=session.id), requested_by=viewer.user_id, audit_details={})
    if not changed:
        await session.refresh_from_db()
        raise UserFacingError(
            ErrorCode.INVALID, _NOT_ACTIVE.get(session.status, "Only an active session can be terminated."), field
        )
    return changed[0]


async def terminate_all(
    ctx: RequestContext, organization_id: uuid.UUID, database_id: uuid.UUID | None, *, database_field: str
) -> list[Session]:
    """The viewer asks the cluster to end every ACTIVE session they may terminate in one of their
    organizations, or in one database of it they see (NOT_FOUND otherwise, at `database_field`).
    The sessions asked to end; none is not an error."""
    viewer = ctx.require_viewer()
    await check_member_of(ctx, organization_id, "organization_id")
    narrowing = check_termination_scope(ctx, organization_id)
    query = Q(organization_id=organization_id)
    if narrowing is not None:
        query &= narrowing
    if database_id is not None:
        database = await Database.get_or_none(id=database_id, organization_id=organization_id)
        if database is None or TYPE_RULES["Database"](ctx, database) is not Sight.SEE:
            raise UserFacingError(ErrorCode.NOT_FOUND, "No such database.", database_field)
        query &= Q(database_id=database.id)
    return await request_termination(
        ctx, query, requested_by=viewer.user_id,
        audit_details={"all": True, "scope": "organization" if database_id is None else "database"},
    )


async def access_ended(
    ctx: RequestContext, organization_id: uuid.UUID, user_id: uuid.UUID, database_ids: list[uuid.UUID] | None = None
) -> list[Session]:
    """A member lost access to the organization (or to `database_ids` of it): their ACTIVE sessions
    there are asked to end, by whoever took the access away (the membership change is audited, not
    each session)."""
    query = Q(organization_id=organization_id, user_id=user_id)
    if database_ids is not None:
        query &= Q(database_id__in=database_ids)
    return await request_termination(ctx, query, requested_by=ctx.require_viewer().user_id, audit_details=None)


async def by_id(session_id: uuid.UUID | None) -> Session | None:
    return await Session.get_or_none(id=session_id) if session_id else None


async def by_cluster_id(cluster_session_id: str, reach: Q | None) -> Session | None:
    """The session the cluster knows by this id, among those `reach` selects (an agent token's, None:
    all): the legacy doors' lookup. A cluster names a session within its infobase (one per database
    and id), so the newest of several."""
    query = Session.filter(cluster_session_id=cluster_session_id)
    if reach is not None:
        query = query.filter(reach)
    return await query.order_by(*SESSION_ORDER).first()


def never_asked_to_end(session: Session) -> bool:
    """ACTIVE: nobody asked the cluster to end it."""
    return session.status == SessionStatus.ACTIVE


async def awaiting_the_cluster(
    limit: int, organization_code: str | None = None, reach: Q | None = None, cluster_id: uuid.UUID | None = None,
    *, within: Q | None = None,
) -> list[Session]:
    """Sessions asked to end (TERMINATING) that the cluster has yet to end, oldest request first; of
    `reach` only (an agent token's, resolvers/cloud/clusters.py) when given, of one cluster's databases
    when `cluster_id` is; matching `within` when given (the simulated cluster's databases:
    resolvers/cloud/cluster_mode.py)."""
    query = Session.filter(status=SessionStatus.TERMINATING)
    if within is not None:
        query = query.filter(within)
    if reach is not None:
        query = query.filter(reach)
    if organization_code:
        query = query.filter(organization__code=organization_code)
    if cluster_id is not None:
        query = query.filter(database__cluster_id=cluster_id)
    return list(await query.order_by("termination_requested_at", "id").limit(limit))


async def terminating_in(database_id: uuid.UUID) -> list[Session]:
    """The database's sessions asked to end (by anyone) and not ended yet, in SESSION_ORDER."""
    return list(await Session.filter(database_id=database_id, status=SessionStatus.TERMINATING).order_by(*SESSION_ORDER))


# ---------------------------------------------------------------------------------------- terminated, ended

async def _finish(actor: Actor, session: Session, before: SessionStatus, after: SessionStatus, at: dt.datetime) -> bool:
    """`before` → `after` (ended at `at`) only if the session is `before` now; the object follows, the event is recorded."""
    if not await Session.filter(id=session.id, status=before).update(status=after, ended_at=at):
        return False
    session.status, session.ended_at = after, at
    await actor.record_event(session.organization_id, SESSIONS, after.value, session_payload(session))
    return True


async def confirm_terminated(actor: Actor, session: Session, ended_at: dt.datetime) -> bool:
    """The cluster has ended a session asked to end: TERMINATING → TERMINATED, once. False when it
    was not TERMINATING (a repeated report, or the user logged off first): nothing changed."""
    return await _finish(actor, session, SessionStatus.TERMINATING, SessionStatus.TERMINATED, ended_at)


async def termination_refused(actor: Actor, session: Session, reason: str) -> bool:
    """The cluster would not end a session asked to end: TERMINATING → ACTIVE again, once, with why
    (`refusal_reason`, shown to whoever asked) and its TERMINATION_REFUSED event. False when it was not
    TERMINATING (a repeated report, or it ended meanwhile): nothing changed."""
    reason = reason[:300]
    if not await Session.filter(id=session.id, status=SessionStatus.TERMINATING).update(
        status=SessionStatus.ACTIVE, refusal_reason=reason,
    ):
        return False
    session.status, session.refusal_reason = SessionStatus.ACTIVE, reason
    await actor.record_event(session.organization_id, SESSIONS, "TERMINATION_REFUSED", session_payload(session))
    return True


async def ended(actor: Actor, session: Session, ended_at: dt.datetime) -> bool:
    """The session is over in the cluster: ACTIVE → ENDED (the user logged off), or TERMINATED if it
    had been asked to end. False when it was over already: nothing changed."""
    for before, after in ((SessionStatus.ACTIVE, SessionStatus.ENDED), (SessionStatus.TERMINATING, SessionStatus.TERMINATED)):
        if await _finish(actor, session, before, after, ended_at):
            return True
    return False
