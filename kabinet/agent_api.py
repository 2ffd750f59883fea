"""The cluster agent API: a real 1C cluster's agent reports sessions, carries out terminations and
update runs.

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

Update runs (agent mode; the run's lifecycle is resolvers/update_jobs.py's, shared with the worker):

    POST /cluster/updates/claim               take a due run under a lease: its target, database and, for
                                              this run only, the database's 1C credentials ({"run": null}: none due)
    POST /cluster/updates/{id}/heartbeat      the lease extended                     (409 LEASE_LOST: stop)
    POST /cluster/updates/{id}/step           warn_users, lock, end_sessions, update, unlock, with progress
                                              and a message: each an updateRuns event (409 CONFLICT: out of order)
    POST /cluster/updates/{id}/result         succeeded (the installed version) or failed (a reason: retried,
                                              then FAILED)

Every call after the claim names the claim: `agentId` (the lease owner) and `attempt` (the fencing
token); once the lease ran out and the run was taken back or over, it is 409 LEASE_LOST and changes
nothing. Credentials are in the claim's answer only, and never logged.
"""

from __future__ import annotations

import datetime as dt
import functools
import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from tortoise.transactions import in_transaction

from kabinet.auth import bearer_token
from resolvers.tokens import hash_opaque_token
from kabinet.clock import utcnow
from resolvers.context import SystemActor
from resolvers import cluster_agent, cluster_limits, sessions, update_jobs, update_runs
from resolvers.errors import ErrorCode, UserFacingError
from resolvers.update_jobs import STEPS, Job, Policy, StepRefused
from resolvers.update_runs import Claim, LeaseLost
from kabinet.ids import pk_of, to_global_id

if TYPE_CHECKING:  # annotations only: the rows come from resolvers
    from models.cloud import Database, Session
    from models.organizations import Organization
    from models.updates import UpdateRun

log = logging.getLogger("kabinet.agent")

MAX_TERMINATIONS = 500
Transition = Callable[[SystemActor, "Session", dt.datetime], Awaitable[bool]]


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


# The domain's field names as the agent's JSON spells them.
AGENT_FIELDS = {
    "cluster_session_id": "clusterSessionId", "organization_code": "organizationCode", "database_id": "databaseId",
    "client_kind": "clientKind",
}


def _refused(error: UserFacingError) -> AgentError:
    """A resolver's refusal as the agent reads it: 409 for a conflicting state, else 400 (bad input)."""
    status = 409 if error.code == ErrorCode.CONFLICT else 400
    return AgentError(status, error.code.value, error.message, AGENT_FIELDS.get(error.field, error.field))


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
        except UserFacingError as error:
            return _refused(error).response()
        except LeaseLost:
            return AgentError(
                409, "LEASE_LOST", "This run is no longer yours: its lease ran out and it was taken back or over. "
                "Stop working on it.", "attempt",
            ).response()
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
    """The session's organization and database, named by `organizationCode`, `databaseId` or both."""
    code = _text(body, "organizationCode", 20, required=False)
    database_id = body.get("databaseId")
    pk = pk_of(database_id, "Database") if isinstance(database_id, str) else None
    return await cluster_agent.organization_and_database(code, pk, database_named=database_id is not None)


# ---------------------------------------------------------------------------------- endpoints

@agent_endpoint
async def session_started(request: Request) -> tuple[int, dict[str, Any]]:
    """A session began in the cluster: record it ACTIVE (once per clusterSessionId) with a STARTED event."""
    body = await _body(request)
    cluster_session_id = _text(body, "clusterSessionId", 100)
    user_name = _text(body, "userName", 200)
    client_kind = cluster_agent.client_kind(body.get("clientKind"))
    host = _text(body, "host", 200, required=False)
    started_at = _time(body, "startedAt")
    email = _text(body, "userEmail", 254, required=False)
    organization, database = await _organization_and_database(body)
    user = await cluster_agent.member_by_email(organization.id, email)
    actor = SystemActor("cluster agent")
    async with in_transaction():
        session, created, refusal = await sessions.reported_started(
            actor, database=database, now=utcnow(), cluster_session_id=cluster_session_id,
            organization_id=organization.id, user_id=user.id if user else None, user_name=user_name,
            client_kind=client_kind, host=host, started_at=started_at,
        )
    if not created:
        return 200, {"session": session_json(session, organization.code), "created": False}
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
    session = await sessions.by_cluster_id(cluster_session_id)
    if session is None:
        raise AgentError(404, "NOT_FOUND", "No session has this clusterSessionId.", "clusterSessionId")
    if ended_at < session.started_at:
        raise _invalid("endedAt", "`endedAt` is before the session started.")
    changed = await _report(request, sessions.ended, session, ended_at)
    return 200, {"session": session_json(session, await cluster_agent.code_of(session.organization_id)), "changed": changed}


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
    codes = await cluster_agent.codes_of({s.organization_id for s in pending})
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
    session = await sessions.by_id(pk)
    if session is None:
        raise AgentError(404, "NOT_FOUND", "No such session.", "sessionId")
    if sessions.never_asked_to_end(session):
        raise AgentError(409, "CONFLICT", "Nobody asked to end this session: it is ACTIVE, not TERMINATING.", "sessionId")
    # Already TERMINATED (a repeated report) or ENDED (the user logged off first): nothing changes.
    changed = await _report(request, sessions.confirm_terminated, session, max(ended_at, session.started_at))
    return 200, {"session": session_json(session, await cluster_agent.code_of(session.organization_id)), "changed": changed}


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


# ---------------------------------------------------------------------------------- update runs

MAX_MESSAGE = 500


def _policy(request: Request) -> Policy:
    return Policy.of(request.app.state.settings)


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def run_json(run: UpdateRun) -> dict[str, Any]:
    """A run as the agent sees it (never its credentials: those are the claim's alone)."""
    return {
        "id": to_global_id("UpdateRun", run.id), "databaseId": to_global_id("Database", run.database_id),
        "status": run.status.value, "attempt": run.attempts, "targetVersion": run.target_version,
        "progress": run.progress, "message": run.message, "scheduledFor": _iso(run.scheduled_for),
        "startedAt": _iso(run.started_at), "finishedAt": _iso(run.finished_at), "leaseExpiresAt": _iso(run.lease_expires_at),
    }


def _termination_json(session: Session, organization_code: str | None) -> dict[str, Any]:
    return {
        "sessionId": to_global_id("Session", session.id), "clusterSessionId": session.cluster_session_id,
        "databaseId": to_global_id("Database", session.database_id) if session.database_id else None,
        "organizationCode": organization_code, "userName": session.user_name, "status": session.status.value,
    }


def _agent_id(body: dict[str, Any]) -> str:
    return _text(body, "agentId", 80)


async def _claim_of(request: Request, body: dict[str, Any]) -> Claim:
    """The claim a call names: the run in the path, `agentId` and `attempt` (the fencing token)."""
    agent_id = _agent_id(body)
    attempt = body.get("attempt")
    if not isinstance(attempt, int) or isinstance(attempt, bool) or attempt < 1:
        raise _invalid("attempt", "`attempt` is required: the attempt number the claim answered.")
    pk = pk_of(request.path_params["run_id"], "UpdateRun")
    if await update_runs.by_id(pk) is None:
        raise AgentError(404, "NOT_FOUND", "No such update run.", "runId")
    return Claim(pk, update_jobs.agent_owner(agent_id), attempt)


def _claim_json(job: Job, organization_code: str | None, credentials: dict[str, str] | None, lease_seconds: float) -> dict:
    database, release = job.database, job.release
    return {
        **run_json(job.run),
        "leaseSeconds": lease_seconds,
        "steps": list(STEPS),
        "database": {
            "id": to_global_id("Database", database.id), "externalId": database.external_id, "name": database.name,
            "organizationCode": organization_code, "configuration": database.configuration, "version": database.version,
        },
        "release": {
            "id": to_global_id("Release", release.id), "configuration": release.configuration, "version": release.version,
            "publishedAt": _iso(release.published_at),
        } if release else None,
        "credentials": credentials,
    }


@agent_endpoint
async def update_claim(request: Request) -> tuple[int, dict[str, Any]]:
    """The agent takes a due run under a lease (one at a time, never one another executor holds); a run with
    nothing newer to install is SUCCEEDED on the way. `{"run": null}` when none is due."""
    settings = request.app.state.settings
    if settings.cluster_mode != "agent":
        raise AgentError(409, "CONFLICT", "Update runs are carried out by kabinet's simulated cluster here (KABINET_CLUSTER=simulated).")
    body = await _body(request)
    owner = update_jobs.agent_owner(_agent_id(body))
    codes = body.get("organizationCodes")
    if codes is not None and (not isinstance(codes, list) or not all(isinstance(c, str) for c in codes)):
        raise _invalid("organizationCodes", "`organizationCodes` must be a list of organization codes.")
    policy = Policy.of(settings)
    for _ in range(update_jobs.MAX_NOTHING_TO_DO):
        actor = SystemActor("cluster agent")
        async with in_transaction():
            runs = await update_jobs.claim_due(actor, owner, 1, utcnow(), policy, organization_codes=codes)
        job = None
        if runs:
            try:
                async with in_transaction():
                    job = await update_jobs.prepare(actor, runs[0], utcnow(), policy, lock=False)
            except LeaseLost:
                job = None
        await actor.announcements.announce(request.app.state.broadcast)
        if not runs:
            break
        if job is not None:
            # Read for this answer only: never stored elsewhere, never logged.
            credentials = await update_jobs.credentials_for(settings, job.database.id)
            log.info("update run %s claimed by %s (attempt %s)", job.run.id, owner, job.run.attempts)
            code = await cluster_agent.code_of(job.database.organization_id)
            return 200, {"run": _claim_json(job, code, credentials, settings.update_lease_seconds)}
    return 200, {"run": None}


@agent_endpoint
async def update_heartbeat(request: Request) -> tuple[int, dict[str, Any]]:
    """The lease extended by `update_lease_seconds`; 409 LEASE_LOST when it is not this claim's any more."""
    claim = await _claim_of(request, await _body(request))
    if not await update_jobs.renew(claim, utcnow() + _policy(request).lease):
        raise LeaseLost
    return 200, {"run": run_json(await update_runs.by_id(claim.run_id))}


@agent_endpoint
async def update_step(request: Request) -> tuple[int, dict[str, Any]]:
    """One step of the run (its effect, message and progress, an updateRuns event); for `end_sessions`
    the sessions still to end (end each in the cluster, report it done, repeat until none is left)."""
    body = await _body(request)
    claim = await _claim_of(request, body)
    step = body.get("step")
    if step not in STEPS:
        raise _invalid("step", f"`step` must be one of {', '.join(STEPS)}.")
    progress = body.get("progress", 0)
    if not isinstance(progress, int) or isinstance(progress, bool) or not 0 <= progress <= 100:
        raise _invalid("progress", "`progress` must be a whole number from 0 to 100.")
    text = _text(body, "message", MAX_MESSAGE, required=False)
    actor = SystemActor("cluster agent")
    try:
        async with in_transaction():
            run, pending = await update_jobs.agent_step(actor, claim, step, progress, text, utcnow(), _policy(request))
    except StepRefused as refused:
        code = await cluster_agent.code_of((await update_runs.by_id(claim.run_id)).organization_id)
        return 409, {
            "error": {"code": "CONFLICT", "message": refused.message, "field": "step"},
            "sessions": [_termination_json(s, code) for s in refused.pending],
        }
    await actor.announcements.announce(request.app.state.broadcast)
    answer: dict[str, Any] = {"run": run_json(run)}
    if step == "end_sessions":
        code = await cluster_agent.code_of(run.organization_id)
        answer["sessions"] = [_termination_json(s, code) for s in pending]
    return 200, answer


@agent_endpoint
async def update_result(request: Request) -> tuple[int, dict[str, Any]]:
    """The end of the agent's attempt: `succeeded` (the `version` installed: SUCCEEDED, the database on it)
    or `failed` (a `reason`: SCHEDULED again after a pause, FAILED after the last attempt)."""
    body = await _body(request)
    claim = await _claim_of(request, body)
    outcome = body.get("outcome")
    actor = SystemActor("cluster agent")
    ended = await update_jobs.ended_by(claim)
    if ended is not None:  # a repeated report of this attempt's end (the answer was lost): nothing changes
        return 200, {"run": run_json(ended), "changed": False}
    if outcome == "succeeded":
        version = _text(body, "version", 50)
        text = _text(body, "message", MAX_MESSAGE, required=False) or f"Конфигурация обновлена до версии {version}."
        async with in_transaction():
            run = await update_jobs.finish(actor, claim, text, version, utcnow())
    elif outcome == "failed":
        reason = _text(body, "reason", 400)
        async with in_transaction():
            run = await update_jobs.attempt_failed(actor, claim, reason, utcnow(), _policy(request))
    else:
        raise _invalid("outcome", "`outcome` must be `succeeded` (with `version`) or `failed` (with `reason`).")
    await actor.announcements.announce(request.app.state.broadcast)
    log.info("update run %s: the agent reports %s, now %s", run.id, outcome, run.status.value)
    return 200, {"run": run_json(run), "changed": True}


routes = [
    Route("/cluster/sessions/started", session_started, methods=["POST"]),
    Route("/cluster/sessions/ended", session_ended, methods=["POST"]),
    Route("/cluster/terminations", terminations, methods=["GET"]),
    Route("/cluster/terminations/{session_id}/done", termination_done, methods=["POST"]),
    Route("/cluster/limits", limits, methods=["GET"]),
    Route("/cluster/updates/claim", update_claim, methods=["POST"]),
    Route("/cluster/updates/{run_id}/heartbeat", update_heartbeat, methods=["POST"]),
    Route("/cluster/updates/{run_id}/step", update_step, methods=["POST"]),
    Route("/cluster/updates/{run_id}/result", update_result, methods=["POST"]),
]
