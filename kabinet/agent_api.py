"""The cluster agent API: a real 1C cluster's agent reports sessions and carries out terminations.

An agent authenticates with `Authorization: Bearer <token>`, where the token's sha256 is one of
KABINET_CLUSTER_AGENT_TOKENS (`kabinet agent token` makes a pair). JSON in and out; a refusal is
`{"error": {"code", "message", "field"}}` with 400 (bad input), 401 (no valid token), 404 (no such
session) or 409 (a state that forbids it). Every report is idempotent: the cluster's session id
(`clusterSessionId`) names a session, and a report that changes nothing answers `changed: false`.

Each change is one transaction: the session's transition in resolvers/sessions.py (which records its
event), announced once committed, exactly as the simulated cluster does (workers/cluster.py).

    POST /cluster/sessions/started            a session began          → Session ACTIVE + STARTED
    POST /cluster/sessions/ended              a session ended          → ENDED (TERMINATED if asked to end)
    GET  /cluster/terminations                sessions asked to end (TERMINATING), oldest request first
                                              (?limit=1…500, default 100; ?organizationCode= to narrow)
    POST /cluster/terminations/{id}/done      the cluster ended it     → TERMINATED
    GET  /cluster/limits                      what to admit: per organization its concurrent-sessions limit
                                              and running sessions, per database its lock of new sessions
                                              (?organizationCode= to narrow)

A session reported beyond the organization's limit, or into a locked database, is recorded REFUSED
(with its reason, a REFUSED event) and answered 409 `{"error": {"code": "REFUSED", …}, "session": …}`:
the agent ends it in the cluster (`rac session terminate`).
"""

from __future__ import annotations

import datetime as dt
import functools
import hmac
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from tortoise.transactions import in_transaction

from kabinet.auth import bearer_token
from resolvers.tokens import hash_opaque_token
from kabinet.clock import utcnow
from resolvers.context import SystemActor
from models.cloud import ClientKind, Database, Session, SessionStatus
from models.identity import User
from models.organizations import Membership, Organization
from resolvers import cluster_limits, sessions
from kabinet.ids import pk_of, to_global_id

log = logging.getLogger("kabinet.agent")

MAX_TERMINATIONS = 500
Transition = Callable[[SystemActor, Session, dt.datetime], Awaitable[bool]]


class AgentError(Exception):
    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field

    def response(self) -> JSONResponse:
        headers = {"WWW-Authenticate": 'Bearer realm="kabinet-cluster"'} if self.status == 401 else None
        body = {"error": {"code": self.code, "message": self.message, "field": self.field}}
        return JSONResponse(body, status_code=self.status, headers=headers)


def _invalid(field: str, message: str) -> AgentError:
    return AgentError(400, "INVALID", message, field)


def authenticate(request: Request) -> None:
    """Pass when the bearer token hashes to one of the configured agent token hashes."""
    token = bearer_token(request.headers.get("authorization"))
    configured = request.app.state.settings.agent_token_hashes
    if token and configured:
        presented = hash_opaque_token(token)
        # Compare with every hash (no early exit), in constant time each.
        matches = [hmac.compare_digest(presented, known) for known in configured]
        if any(matches):
            return
    raise AgentError(401, "UNAUTHENTICATED", "A valid cluster agent token is required (Authorization: Bearer …).")


def agent_endpoint(handler: Callable[[Request], Awaitable[Any]]) -> Callable[[Request], Awaitable[Response]]:
    """Authenticate, run, answer JSON; an AgentError becomes its status and JSON error."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        try:
            authenticate(request)
            status, body = await handler(request)
        except AgentError as error:
            return error.response()
        return JSONResponse(body, status_code=status)

    return endpoint


# ---------------------------------------------------------------------------------- input

async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise _invalid(None, "The body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise _invalid(None, "The body must be a JSON object.")
    return body


def _text(body: dict[str, Any], field: str, max_length: int, *, required: bool = True) -> str | None:
    value = body.get(field)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise _invalid(field, f"`{field}` is required: a non-empty string.")
    value = value.strip()
    if len(value) > max_length:
        raise _invalid(field, f"`{field}` is longer than {max_length} characters.")
    return value


def _time(body: dict[str, Any], field: str, *, required: bool = True) -> dt.datetime | None:
    value = body.get(field)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise _invalid(field, f"`{field}` is required: an ISO 8601 date-time with its UTC offset.")
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _invalid(field, f"`{field}` is not an ISO 8601 date-time.") from None
    if moment.tzinfo is None:
        raise _invalid(field, f"`{field}` needs its UTC offset, e.g. 2026-11-20T09:30:00+03:00.")
    return moment


def _client_kind(body: dict[str, Any]) -> ClientKind:
    value = body.get("clientKind")
    try:
        return ClientKind(value)
    except ValueError:
        kinds = ", ".join(kind.value for kind in ClientKind)
        raise _invalid("clientKind", f"`clientKind` must be one of {kinds}.") from None


def session_json(session: Session, organization_code: str | None = None) -> dict[str, Any]:
    return {
        "id": to_global_id("Session", session.id),
        "clusterSessionId": session.cluster_session_id,
        "organizationCode": organization_code,
        "databaseId": to_global_id("Database", session.database_id) if session.database_id else None,
        "userName": session.user_name,
        "clientKind": session.client_kind.value,
        "host": session.host,
        "status": session.status.value,
        "refusalReason": session.refusal_reason,
        "startedAt": session.started_at.isoformat(),
        "endedAt": session.ended_at.isoformat() if session.ended_at else None,
    }


async def _organization_and_database(body: dict[str, Any]) -> tuple[Organization, Database | None]:
    code = _text(body, "organizationCode", 20, required=False)
    database_id = body.get("databaseId")
    database = None
    if database_id is not None:
        pk = pk_of(database_id, "Database") if isinstance(database_id, str) else None
        database = await Database.get_or_none(id=pk) if pk else None
        if database is None:
            raise AgentError(400, "NOT_FOUND", "No such database.", "databaseId")
    if code is not None:
        organization = await Organization.get_or_none(code=code)
        if organization is None:
            raise AgentError(400, "NOT_FOUND", "No organization has this code.", "organizationCode")
        if database is not None and database.organization_id != organization.id:
            raise _invalid("databaseId", "The database belongs to another organization.")
        return organization, database
    if database is None:
        raise _invalid("organizationCode", "Name the session's organization (`organizationCode`) or database (`databaseId`).")
    return await Organization.get(id=database.organization_id), database


async def _member_by_email(organization: Organization, email: str | None) -> User | None:
    """The cabinet user the session belongs to, when the cluster knows their e-mail and they are a member."""
    if email is None:
        return None
    user = await User.get_or_none(email=email.lower())
    if user is None or not await Membership.exists(organization_id=organization.id, user_id=user.id):
        return None
    return user


async def _code_of(organization_id: uuid.UUID) -> str | None:
    row = await Organization.filter(id=organization_id).first().values("code")
    return row["code"] if row else None


# ---------------------------------------------------------------------------------- endpoints

@agent_endpoint
async def session_started(request: Request) -> tuple[int, dict[str, Any]]:
    """A session began in the cluster: record it ACTIVE (once per clusterSessionId) with a STARTED event."""
    body = await _body(request)
    cluster_session_id = _text(body, "clusterSessionId", 100)
    user_name = _text(body, "userName", 200)
    client_kind = _client_kind(body)
    host = _text(body, "host", 200, required=False)
    started_at = _time(body, "startedAt")
    email = _text(body, "userEmail", 254, required=False)
    organization, database = await _organization_and_database(body)
    user = await _member_by_email(organization, email)
    actor = SystemActor("cluster agent")
    async with in_transaction():
        # One report of a session at a time per organization (a row lock on PostgreSQL; SQLite has one writer).
        await Organization.filter(id=organization.id).select_for_update().get()
        existing = await Session.get_or_none(cluster_session_id=cluster_session_id)
        if existing is not None:
            if existing.organization_id != organization.id or (database and existing.database_id != database.id):
                raise AgentError(
                    409, "CONFLICT", "This clusterSessionId is already a session of another organization or database.",
                    "clusterSessionId",
                )
            return 200, {"session": session_json(existing, organization.code), "created": False}
        fields = dict(
            organization_id=organization.id, database_id=database.id if database else None,
            user_id=user.id if user else None, user_name=user_name, client_kind=client_kind, host=host,
            started_at=started_at, cluster_session_id=cluster_session_id,
        )
        refusal = await sessions.admission_refusal(organization.id, database, utcnow())
        if refusal is None:
            session = await sessions.start(actor, **fields)
        else:
            session = await sessions.refuse(actor, reason=refusal, **fields)
    await actor.announcements.announce(request.app.state.broadcast)
    if refusal is not None:
        # The agent ends the 1C session it reported: it was never admitted (shown as REFUSED).
        return 409, {
            "error": {"code": "REFUSED", "message": refusal, "field": None},
            "session": session_json(session, organization.code), "created": True,
        }
    return 201, {"session": session_json(session, organization.code), "created": True}


@agent_endpoint
async def session_ended(request: Request) -> tuple[int, dict[str, Any]]:
    """A session ended in the cluster: ACTIVE → ENDED (the user logged off), TERMINATING → TERMINATED."""
    body = await _body(request)
    cluster_session_id = _text(body, "clusterSessionId", 100)
    ended_at = _time(body, "endedAt", required=False) or utcnow()
    session = await Session.get_or_none(cluster_session_id=cluster_session_id)
    if session is None:
        raise AgentError(404, "NOT_FOUND", "No session has this clusterSessionId.", "clusterSessionId")
    if ended_at < session.started_at:
        raise _invalid("endedAt", "`endedAt` is before the session started.")
    changed = await _report(request, sessions.ended, session, ended_at)
    return 200, {"session": session_json(session, await _code_of(session.organization_id)), "changed": changed}


@agent_endpoint
async def terminations(request: Request) -> tuple[int, dict[str, Any]]:
    """The sessions kabinet asked to end (TERMINATING), oldest request first, for the agent to end."""
    try:
        limit = int(request.query_params.get("limit", "100"))
    except ValueError:
        raise _invalid("limit", "`limit` must be a whole number.") from None
    if not 1 <= limit <= MAX_TERMINATIONS:
        raise _invalid("limit", f"`limit` must be between 1 and {MAX_TERMINATIONS}.")
    # ?organizationCode=: an agent that serves some organizations only
    pending = await sessions.awaiting_the_cluster(limit, request.query_params.get("organizationCode"))
    codes = dict(
        await Organization.filter(id__in={s.organization_id for s in pending}).values_list("id", "code")
    ) if pending else {}
    return 200, {
        "terminations": [
            {
                "sessionId": to_global_id("Session", s.id),
                "clusterSessionId": s.cluster_session_id,
                "databaseId": to_global_id("Database", s.database_id) if s.database_id else None,
                "organizationCode": codes.get(s.organization_id),
                "requestedAt": s.termination_requested_at.isoformat() if s.termination_requested_at else None,
            }
            for s in pending
        ]
    }


@agent_endpoint
async def termination_done(request: Request) -> tuple[int, dict[str, Any]]:
    """The cluster has ended a session it was asked to end: TERMINATING → TERMINATED."""
    body = await _body(request)
    ended_at = _time(body, "endedAt", required=False) or utcnow()
    pk = pk_of(request.path_params["session_id"], "Session")
    session = await Session.get_or_none(id=pk) if pk else None
    if session is None:
        raise AgentError(404, "NOT_FOUND", "No such session.", "sessionId")
    if session.status == SessionStatus.ACTIVE:
        raise AgentError(409, "CONFLICT", "Nobody asked to end this session: it is ACTIVE, not TERMINATING.", "sessionId")
    # Already TERMINATED (a repeated report) or ENDED (the user logged off first): nothing changes.
    changed = await _report(request, sessions.confirm_terminated, session, max(ended_at, session.started_at))
    return 200, {"session": session_json(session, await _code_of(session.organization_id)), "changed": changed}


@agent_endpoint
async def limits(request: Request) -> tuple[int, dict[str, Any]]:
    """What the cluster may admit now: each organization's concurrent-sessions limit (the extension
    included while it lasts) and running sessions, each database's lock of new sessions."""
    code = request.query_params.get("organizationCode")
    admissions = await cluster_limits.admission_limits(utcnow(), organization_code=code)
    return 200, {"organizations": [
        {
            "organizationCode": o.organization_code, "sessionsLimit": o.sessions_limit, "databasesLimit": o.databases_limit,
            "runningSessions": o.running_sessions,
            "databases": [
                {
                    "databaseId": to_global_id("Database", d.database_id), "name": d.name,
                    "admitsNewSessions": d.refusal is None, "refusal": d.refusal,
                    "lock": {
                        "message": d.lock_message, "from": d.locked_from.isoformat() if d.locked_from else None,
                        "until": d.locked_until.isoformat(),
                    } if d.locked_until else None,
                }
                for d in o.databases
            ],
        }
        for o in admissions
    ]}


async def _report(request: Request, transition: Transition, session: Session, ended_at: dt.datetime) -> bool:
    """Apply the reported transition (resolvers/sessions.py) in one transaction, announce its event
    once committed; the session object ends up as stored. False when nothing changed (a repeated report)."""
    actor = SystemActor("cluster agent")
    async with in_transaction():
        changed = await transition(actor, session, ended_at)
    await actor.announcements.announce(request.app.state.broadcast)
    if not changed:
        await session.refresh_from_db()
    return changed


routes = [
    Route("/cluster/sessions/started", session_started, methods=["POST"]),
    Route("/cluster/sessions/ended", session_ended, methods=["POST"]),
    Route("/cluster/terminations", terminations, methods=["GET"]),
    Route("/cluster/terminations/{session_id}/done", termination_done, methods=["POST"]),
    Route("/cluster/limits", limits, methods=["GET"]),
]
