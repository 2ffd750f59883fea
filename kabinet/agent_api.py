"""The cluster agent API: a real 1C cluster's agent reports sessions, carries out terminations and
update runs.

An agent authenticates with `Authorization: Bearer <token>`: an agent token of the programs' token
store (`kabinet agent token create --name … --clusters NAME,…` or `--organizations CODE,…`,
resolvers/cloud/agent_tokens.py), or, deprecated, one whose sha256 is in KABINET_CLUSTER_AGENT_TOKENS
(acting for every organization). The token is the agent: its name owns its claims, and what it
reaches (its organizations, or the databases on its clusters: resolvers/cloud/clusters.py `reach`) is all
it sees and touches. Every endpoint checks the object against it (a cluster, a session, a run, an
organization or database named in the body); what is outside is answered as if it did not exist
(404, or absent from a list).

JSON in and out; a refusal is `{"error": {"code", "message", "field"}}` with 400 (bad input: the
field and why), 401 (no valid token), 404 (no such object, or not this agent's) or 409 (a state that
forbids it). Every report is idempotent: the cluster's session id (`clusterSessionId`) names a
session, and a report that changes nothing answers `changed: false`. A time the agent reports
(`startedAt`, `endedAt`) is an ISO 8601 date-time with its UTC offset, from 2000-01-01 to
KABINET_AGENT_CLOCK_SKEW_SECONDS (300) past kabinet's clock.

Each change is one transaction: the session's transition in resolvers/cloud/sessions.py (which records its
event), announced once committed, exactly as the simulated cluster does (workers/cluster.py).

    POST /cluster/sessions/snapshot           a cluster's sessions per infobase, each list complete: the
                                              unknown start (or are REFUSED), the missing end; idempotent;
                                              the cluster connected (resolvers/cloud/clusters.py)
    POST /cluster/sessions/started            a session began          → Session ACTIVE + STARTED
    POST /cluster/sessions/ended              a session ended          → ENDED (TERMINATED if asked to end)
    GET  /cluster/terminations                sessions asked to end (TERMINATING), oldest request first, with
                                              their cluster and infobase (?limit=1…500, default 100;
                                              ?organizationCode=, ?cluster= to narrow)
    POST /cluster/terminations/{id}/done      the cluster ended it     → TERMINATED
    POST /cluster/terminations/{id}/refused   the cluster would not    → ACTIVE again, with its reason
    GET  /cluster/limits                      what to admit: per organization its concurrent-sessions limit
                                              and running sessions, per database its lock of new sessions
                                              (?organizationCode= to narrow)

A session reported beyond the organization's limit, or into a locked database, is recorded REFUSED
(with its reason, a REFUSED event) and answered 409 `{"error": {"code": "REFUSED", …}, "session": …}`:
the agent ends it in the cluster (`rac session terminate`).

Update runs (agent mode; the run's lifecycle is resolvers/updates/jobs.py's, shared with the worker):

    POST /cluster/updates/claim               take a due run of the token's organizations under a lease: its
                                              target, database, `fencingToken` and, for this run only, the
                                              database's 1C credentials ({"run": null}: none due)
    POST /cluster/updates/{id}/heartbeat      the lease extended                     (409 LEASE_LOST: stop)
    POST /cluster/updates/{id}/step           warn_users, lock, end_sessions, update, unlock, with progress
                                              and a message: each an updateRuns event (409 CONFLICT: out of order)
    POST /cluster/updates/{id}/result         succeeded (the installed version) or failed (a reason: retried,
                                              then FAILED)

Every call after the claim names it by `fencingToken`, random per claim and given in the claim's
answer only; it counts only from the token that claimed. Once the lease ran out and the run was taken
back or over, or for any other fencing token, it is 409 LEASE_LOST and changes nothing. Credentials
are in the claim's answer only, and never logged.

Each endpoint declares the fields it reads (`agent_endpoint`): a handler reads no other
(tests/test_agent_api_fuzz.py fuzzes each one).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from kabinet.auth import bearer_token
from foundation.clock import utcnow
from kabinet.http import BodyTooLarge, bounded_body
from foundation.ids import pk_of, to_global_id
from resolvers.cloud import agent_tokens
from resolvers.cloud import cluster_agent
from resolvers.cloud import cluster_limits
from resolvers.cloud import cluster_mode
from resolvers.cloud import cluster_snapshot, clusters
from resolvers.cloud import sessions
from resolvers.updates import jobs as update_jobs
from resolvers.updates import runs as update_runs
from resolvers.common.context import SystemActor
from resolvers.common.unit_of_work import change
from resolvers.common.errors import ErrorCode, UserFacingError
from resolvers.identity.program_tokens import Program
from resolvers.updates.jobs import STEPS, Job, Policy, StepRefused
from resolvers.updates.runs import Claim, LeaseLost

if TYPE_CHECKING:  # annotations only: the rows come from resolvers
    from models.cloud import Database, Session
    from models.organizations import Organization
    from models.updates import UpdateRun

log = logging.getLogger("kabinet.agent")

MAX_TERMINATIONS = 500
SNAPSHOT_PATH = "/cluster/sessions/snapshot"  # its body has a limit of its own (agent_snapshot_max_body_bytes)
MAX_REASON = 300  # characters: models.cloud.Session.refusal_reason
CLUSTER_NAME = 100  # characters: models.cloud.Cluster.name
MAX_ORGANIZATION_CODES = 500  # in one claim's `organizationCodes`
ORGANIZATION_CODE = 20  # characters, as models.organizations.Organization.code holds
FENCING_TOKEN = 64  # characters at most (update_runs.new_fence makes 32)
Transition = Callable[[SystemActor, "Session", dt.datetime], Awaitable[bool]]


class AgentError(Exception):
    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field

    def response(self) -> JSONResponse:
        headers = {"WWW-Authenticate": 'Bearer realm="kabinet-cluster"'} if self.status == 401 else None
        body = {"error": {"code": self.code, "message": self.message, "field": self.field}}
        return JSONResponse(body, status_code=self.status, headers=headers)


def _invalid(field: str | None, message: str) -> AgentError:
    return AgentError(400, "INVALID", message, field)


def _not_found(field: str, message: str) -> AgentError:
    """No such object, or not this agent's: the same answer, so a token learns nothing of others'."""
    return AgentError(404, "NOT_FOUND", message, field)


# The domain's field names as the agent's JSON spells them.
AGENT_FIELDS = {
    "cluster_session_id": "clusterSessionId", "organization_code": "organizationCode", "database_id": "databaseId",
    "client_kind": "clientKind", "taken_at": "takenAt", "time_zone": "timeZone",
}


def _refused(error: UserFacingError) -> AgentError:
    """A resolver's refusal as the agent reads it: 409 for a conflicting state, else 400 (bad input)."""
    status = 409 if error.code == ErrorCode.CONFLICT else 400
    return AgentError(status, error.code.value, error.message, AGENT_FIELDS.get(error.field, error.field))


async def authenticate(request: Request) -> Program:
    """The agent the bearer token belongs to (resolvers/cloud/agent_tokens.py), or 401."""
    agent = await agent_tokens.authenticate(request.app.state.settings, bearer_token(request.headers.get("authorization")))
    if agent is None:
        raise AgentError(401, "UNAUTHENTICATED", "A valid cluster agent token is required (Authorization: Bearer …).")
    return agent


# ---------------------------------------------------------------------------------- input


@dataclass(frozen=True)
class Fields:
    """What an endpoint reads: the names the agent may send in the JSON body, the query and the path."""

    body: tuple[str, ...] = ()
    query: tuple[str, ...] = ()
    path: tuple[str, ...] = ()


class UndeclaredField(LookupError):
    """A handler read a field its endpoint does not declare (a programming error, caught by the tests)."""


class AgentCall:
    """One request to the agent API: the agent, and its input read through the endpoint's `Fields`
    only, each value checked by the reader that takes it (a 400 naming the field and why)."""

    def __init__(self, request: Request, agent: Program, fields: Fields, body: dict[str, Any]) -> None:
        self.request, self.agent, self.fields, self._body = request, agent, fields, body
        self.settings = request.app.state.settings

    def value(self, name: str) -> Any:
        """A body field as sent (None when absent)."""
        if name not in self.fields.body:
            raise UndeclaredField(name)
        return self._body.get(name)

    def query(self, name: str, max_length: int) -> str | None:
        if name not in self.fields.query:
            raise UndeclaredField(name)
        return _checked_text(name, self.request.query_params.get(name), max_length, required=False)

    def path(self, name: str, type_name: str):
        """The primary key a path's global id names (None when it names nothing of `type_name`)."""
        if name not in self.fields.path:
            raise UndeclaredField(name)
        return pk_of(self.request.path_params[name], type_name)

    def text(self, name: str, max_length: int, *, required: bool = True) -> str | None:
        return _checked_text(name, self.value(name), max_length, required=required)

    def whole_number(self, name: str, low: int, high: int, default: int) -> int:
        value = self.value(name)
        if value is None:
            return default
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise _invalid(name, f"`{name}` must be a whole number from {low} to {high}.")
        return value

    def time(self, name: str, *, required: bool = True) -> dt.datetime | None:
        """A moment the cluster saw (resolvers/cloud/clusters.py `reported_time`): with its UTC offset, up to
        the clock-skew allowance past now."""
        value = self.value(name)
        if value is None and not required:
            return None
        moment = cluster_snapshot.reported_time(value, utcnow() + dt.timedelta(seconds=self.settings.agent_clock_skew_seconds))
        if isinstance(moment, str):
            raise _invalid(name, f"`{name}`: {moment}.")
        return moment


def _checked_text(name: str, value: Any, max_length: int, *, required: bool) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise _invalid(name, f"`{name}` is required: a non-empty string.")
    value = value.strip()
    if len(value) > max_length:
        raise _invalid(name, f"`{name}` is longer than {max_length} characters.")
    if "\x00" in value:
        raise _invalid(name, f"`{name}` holds a NUL character.")
    return value


async def _body(request: Request, limit: int) -> dict[str, Any]:
    """The JSON object sent, refused (413) beyond `limit` bytes, declared or streamed."""
    try:
        raw = await bounded_body(request, limit)
    except BodyTooLarge:
        raise AgentError(413, "TOO_LARGE", f"The body exceeds {limit} bytes.") from None
    if not raw.strip():
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise _invalid(None, "The body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise _invalid(None, "The body must be a JSON object.")
    return body


def snapshot_slot(app: Any) -> asyncio.Semaphore:
    """One snapshot at a time per process, its body read only once it has the slot: a snapshot's body
    may be 8 MiB, and parsed JSON takes many times its bytes, so the memory agents can make a process
    hold stays one body's. (Snapshots of one cluster wait for each other on its row anyway.)"""
    slot = getattr(app.state, "snapshot_slot", None)
    if slot is None:
        slot = app.state.snapshot_slot = asyncio.Semaphore(1)
    return slot


# ---------------------------------------------------------------------------------- endpoints

ENDPOINTS: dict[tuple[str, str], Fields] = {}  # (method, path) → the fields it reads
routes: list[Route] = []
Handler = Callable[[AgentCall], Awaitable[tuple[int, dict[str, Any]]]]


def agent_endpoint(method: str, path: str, *, body: tuple[str, ...] = (), query: tuple[str, ...] = ()) -> Callable[[Handler], Handler]:
    """Route `path` to the handler: authenticate, read the body, run, answer JSON; an AgentError becomes
    its status and JSON error. The handler reads the declared fields only (`AgentCall`)."""
    fields = Fields(body, query, tuple(re.findall(r"{(\w+)}", path)))

    def register(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            try:
                agent = await authenticate(request)
                settings = request.app.state.settings
                limit = settings.agent_snapshot_max_body_bytes if path == SNAPSHOT_PATH else settings.max_body_bytes
                async with snapshot_slot(request.app) if path == SNAPSHOT_PATH else contextlib.nullcontext():
                    call = AgentCall(request, agent, fields, await _body(request, limit) if method == "POST" else {})
                    status, answer = await handler(call)
            except AgentError as error:
                return error.response()
            except UserFacingError as error:
                return _refused(error).response()
            except LeaseLost:
                return AgentError(
                    409, "LEASE_LOST", "This run is not this claim's: its lease ran out and it was taken back or over, "
                    "or the fencing token is not the claim's. Stop working on it.", "fencingToken",
                ).response()
            return JSONResponse(answer, status_code=status)

        ENDPOINTS[(method, path)] = fields
        routes.append(Route(path, endpoint, methods=[method]))
        return handler

    return register


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


async def _organization_and_database(call: AgentCall) -> tuple[Organization, Database | None]:
    """The session's organization and database, named by `organizationCode`, `databaseId` or both,
    among the agent's organizations."""
    code = call.text("organizationCode", ORGANIZATION_CODE, required=False)
    database_id = call.value("databaseId")
    if database_id is not None and not isinstance(database_id, str):
        raise _invalid("databaseId", "`databaseId` must be a database's id (a string).")
    pk = pk_of(database_id, "Database") if database_id else None
    return await cluster_agent.organization_and_database(
        code, pk, database_named=database_id is not None, program=call.agent
    )


async def _session_of_agent(call: AgentCall, session: Session | None, field: str, message: str) -> Session:
    """The session, when the agent's token reaches it (its organizations', or of a database on its
    clusters); else 404 as for none."""
    if session is None or not await clusters.reaches(call.agent, session.organization_id, session.database_id):
        raise _not_found(field, message)
    return session


@agent_endpoint("POST", "/cluster/sessions/started", body=(
    "clusterSessionId", "userName", "clientKind", "host", "startedAt", "userEmail", "organizationCode", "databaseId",
))
async def session_started(call: AgentCall) -> tuple[int, dict[str, Any]]:
    """A session began in the cluster: record it ACTIVE (once per clusterSessionId) with a STARTED event."""
    cluster_session_id = call.text("clusterSessionId", 100)
    user_name = call.text("userName", 200)
    client_kind = cluster_agent.client_kind(call.value("clientKind"))
    host = call.text("host", 200, required=False)
    started_at = call.time("startedAt")
    email = call.text("userEmail", 254, required=False)
    organization, database = await _organization_and_database(call)
    user = await cluster_agent.member_by_email(organization.id, email)
    actor = SystemActor("cluster agent")
    async with change(actor, call.request.app.state.broadcast):
        session, created, refusal = await sessions.reported_started(
            actor, database=database, now=utcnow(), cluster_session_id=cluster_session_id, reach=clusters.reach(call.agent),
            organization_id=organization.id, user_id=user.id if user else None, user_name=user_name,
            client_kind=client_kind, host=host, started_at=started_at,
        )
    if not created:
        return 200, {"session": session_json(session, organization.code), "created": False}
    if refusal is not None:
        # The agent ends the 1C session it reported: it was never admitted (shown as REFUSED).
        return 409, {
            "error": {"code": "REFUSED", "message": refusal, "field": None},
            "session": session_json(session, organization.code), "created": True,
        }
    return 201, {"session": session_json(session, organization.code), "created": True}


@agent_endpoint("POST", SNAPSHOT_PATH, body=("cluster", "takenAt", "infobases"))
async def sessions_snapshot(call: AgentCall) -> tuple[int, dict[str, Any]]:
    """A cluster's sessions as the agent saw them at `takenAt`: each listed infobase's list is complete
    (resolvers/cloud/clusters.py `apply_snapshot`). One transaction, its events announced once committed;
    the same snapshot twice changes nothing the second time."""
    try:
        cluster = await cluster_snapshot.reported_cluster(call.agent, call.value("cluster"))
    except UserFacingError as error:  # none, or out of the token's reach: the same answer
        raise _not_found("cluster", error.message) from None
    taken_at = call.time("takenAt")
    latest = utcnow() + dt.timedelta(seconds=call.settings.agent_clock_skew_seconds)
    reports, rejected = cluster_snapshot.read_snapshot(call.value("infobases"), latest)
    actor = SystemActor("cluster agent")
    async with change(actor, call.request.app.state.broadcast):
        outcome = await cluster_snapshot.apply_snapshot(actor, call.agent, cluster, taken_at, reports, utcnow())
    cluster = outcome.cluster
    return 200, {
        "cluster": {"name": cluster.name, "connected": cluster.connected, "lastReportAt": _iso(cluster.last_report_at)},
        "started": outcome.started, "ended": outcome.ended, "refused": outcome.refused,
        "unknownInfobases": outcome.unknown_infobases,
        "rejected": [{"path": r.path, "field": r.field, "reason": r.reason} for r in rejected],
    }


@agent_endpoint("POST", "/cluster/sessions/ended", body=("clusterSessionId", "endedAt"))
async def session_ended(call: AgentCall) -> tuple[int, dict[str, Any]]:
    """A session ended in the cluster: ACTIVE → ENDED (the user logged off), TERMINATING → TERMINATED."""
    cluster_session_id = call.text("clusterSessionId", 100)
    ended_at = call.time("endedAt", required=False) or utcnow()
    session = await _session_of_agent(
        call, await sessions.by_cluster_id(cluster_session_id, clusters.reach(call.agent)), "clusterSessionId",
        "No session has this clusterSessionId.",
    )
    if ended_at < session.started_at:
        raise _invalid("endedAt", "`endedAt` is before the session started.")
    changed = await _report(call, sessions.ended, session, ended_at)
    return 200, {"session": session_json(session, await cluster_agent.code_of(session.organization_id)), "changed": changed}


@agent_endpoint("GET", "/cluster/terminations", query=("limit", "organizationCode", "cluster"))
async def terminations(call: AgentCall) -> tuple[int, dict[str, Any]]:
    """The sessions kabinet asked to end (TERMINATING) that the agent's token reaches, oldest request
    first, each with its cluster and infobase (?cluster= for one cluster's only)."""
    limit_text = call.query("limit", 10) or "100"
    if not limit_text.isascii() or not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_TERMINATIONS:
        raise _invalid("limit", f"`limit` must be a whole number from 1 to {MAX_TERMINATIONS}.")
    cluster_name = call.query("cluster", CLUSTER_NAME)
    cluster = await clusters.by_name(cluster_name) if cluster_name else None
    if cluster_name and cluster is None:
        return 200, {"terminations": []}  # a narrowing to nothing, as for a cluster out of reach
    # ?organizationCode=, ?cluster=: an agent that serves some of what it reaches
    pending = await sessions.awaiting_the_cluster(
        int(limit_text), call.query("organizationCode", ORGANIZATION_CODE), clusters.reach(call.agent),
        cluster.id if cluster else None,
    )
    codes = await cluster_agent.codes_of({s.organization_id for s in pending})
    places = await clusters.names_of(s.database_id for s in pending if s.database_id)
    return 200, {
        "terminations": [
            {
                "sessionId": to_global_id("Session", s.id),
                "clusterSessionId": s.cluster_session_id,
                "databaseId": to_global_id("Database", s.database_id) if s.database_id else None,
                "organizationCode": codes.get(s.organization_id),
                "cluster": places.get(s.database_id, (None, None))[0],
                "infobase": places.get(s.database_id, (None, None))[1],
                "requestedAt": s.termination_requested_at.isoformat() if s.termination_requested_at else None,
            }
            for s in pending
        ]
    }


@agent_endpoint("POST", "/cluster/terminations/{sessionId}/done", body=("endedAt",))
async def termination_done(call: AgentCall) -> tuple[int, dict[str, Any]]:
    """The cluster has ended a session it was asked to end: TERMINATING → TERMINATED."""
    ended_at = call.time("endedAt", required=False) or utcnow()
    session = await _session_of_agent(call, await sessions.by_id(call.path("sessionId", "Session")), "sessionId", "No such session.")
    if sessions.never_asked_to_end(session):
        raise AgentError(409, "CONFLICT", "Nobody asked to end this session: it is ACTIVE, not TERMINATING.", "sessionId")
    # Already TERMINATED (a repeated report) or ENDED (the user logged off first): nothing changes.
    changed = await _report(call, sessions.confirm_terminated, session, max(ended_at, session.started_at))
    return 200, {"session": session_json(session, await cluster_agent.code_of(session.organization_id)), "changed": changed}


@agent_endpoint("POST", "/cluster/terminations/{sessionId}/refused", body=("reason",))
async def termination_refused(call: AgentCall) -> tuple[int, dict[str, Any]]:
    """The cluster would not end a session it was asked to end (other than "already gone", which is
    done): TERMINATING → ACTIVE again, with the cluster's `reason` for whoever asked."""
    reason = call.text("reason", MAX_REASON)
    session = await _session_of_agent(call, await sessions.by_id(call.path("sessionId", "Session")), "sessionId", "No such session.")
    if sessions.never_asked_to_end(session) and session.refusal_reason is None:
        raise AgentError(409, "CONFLICT", "Nobody asked to end this session: it is ACTIVE, not TERMINATING.", "sessionId")
    actor = SystemActor("cluster agent")
    async with change(actor, call.request.app.state.broadcast):
        changed = await sessions.termination_refused(actor, session, reason)
    if not changed:
        await session.refresh_from_db()
    return 200, {"session": session_json(session, await cluster_agent.code_of(session.organization_id)), "changed": changed}


@agent_endpoint("GET", "/cluster/limits", query=("organizationCode",))
async def limits(call: AgentCall) -> tuple[int, dict[str, Any]]:
    """What the cluster may admit now, for the agent's organizations: each one's concurrent-sessions limit
    (the extension included while it lasts) and running sessions, each database's lock of new sessions."""
    admissions = await cluster_limits.admission_limits(
        utcnow(), organization_code=call.query("organizationCode", ORGANIZATION_CODE),
        organization_ids=call.agent.organization_ids,
    )
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


async def _report(call: AgentCall, transition: Transition, session: Session, ended_at: dt.datetime) -> bool:
    """Apply the reported transition (resolvers/cloud/sessions.py) in one transaction, announce its event
    once committed; the session object ends up as stored. False when nothing changed (a repeated report)."""
    actor = SystemActor("cluster agent")
    async with change(actor, call.request.app.state.broadcast):
        changed = await transition(actor, session, ended_at)
    if not changed:
        await session.refresh_from_db()
    return changed


# ---------------------------------------------------------------------------------- update runs

MAX_MESSAGE = 500


def _policy(call: AgentCall) -> Policy:
    return Policy.of(call.settings)


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def run_json(run: UpdateRun) -> dict[str, Any]:
    """A run as the agent sees it (never its credentials nor its fencing token: those are the claim's alone)."""
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


async def _claim_of(call: AgentCall) -> Claim:
    """The claim a call names: the run in the path (one of the agent's organizations'), this agent as
    its owner, and the claim's `fencingToken`."""
    fence = call.text("fencingToken", FENCING_TOKEN)
    run = await update_runs.by_id(call.path("runId", "UpdateRun"))
    if run is None or not await clusters.reaches(call.agent, run.organization_id, run.database_id):
        raise _not_found("runId", "No such update run.")
    return Claim(run.id, update_jobs.agent_owner(call.agent.name), run.attempts, fence)


def _claim_json(
    job: Job, organization_code: str | None, place: tuple[str | None, str | None], credentials: dict[str, str] | None,
    lease_seconds: float, agent: str,
) -> dict:
    database, release = job.database, job.release
    return {
        **run_json(job.run),
        "fencingToken": job.run.lease_fence,
        "agentId": agent,
        "leaseSeconds": lease_seconds,
        "steps": list(STEPS),
        "database": {
            "id": to_global_id("Database", database.id), "externalId": database.external_id, "name": database.name,
            "organizationCode": organization_code, "configuration": database.configuration, "version": database.version,
            "cluster": place[0], "infobase": place[1],
        },
        "release": {
            "id": to_global_id("Release", release.id), "configuration": release.configuration, "version": release.version,
            "publishedAt": _iso(release.published_at),
        } if release else None,
        "credentials": credentials,
    }


def _organization_codes(call: AgentCall) -> list[str] | None:
    codes = call.value("organizationCodes")
    if codes is None:
        return None
    if not isinstance(codes, list) or len(codes) > MAX_ORGANIZATION_CODES:
        raise _invalid("organizationCodes", f"`organizationCodes` must be a list of at most {MAX_ORGANIZATION_CODES} organization codes.")
    if not all(isinstance(c, str) and 0 < len(c) <= ORGANIZATION_CODE and "\x00" not in c for c in codes):
        raise _invalid("organizationCodes", f"`organizationCodes` must hold organization codes (strings of 1 to {ORGANIZATION_CODE} characters).")
    return codes


@agent_endpoint("POST", "/cluster/updates/claim", body=("organizationCodes", "cluster"))
async def update_claim(call: AgentCall) -> tuple[int, dict[str, Any]]:
    """The agent takes a due run of its organizations under a lease (one at a time, never one another
    executor holds); a run with nothing newer to install is SUCCEEDED on the way. `{"run": null}` when none is due."""
    settings = call.settings
    # In the simulated mode the simulator keeps its own databases' runs; the provider's and those on a
    # cluster kabinet knows (resolvers/cloud/cluster_mode.py) are still a real agent's to claim.
    within = ~cluster_mode.in_simulated_databases() if (await cluster_mode.read(settings)).simulated else None
    codes = _organization_codes(call)
    cluster_name = call.text("cluster", CLUSTER_NAME, required=False)
    cluster = await clusters.by_name(cluster_name) if cluster_name else None
    if cluster_name and cluster is None:
        return 200, {"run": None}  # a narrowing to nothing, as for a cluster out of reach
    owner = update_jobs.agent_owner(call.agent.name)
    policy = Policy.of(settings)
    for _ in range(update_jobs.MAX_NOTHING_TO_DO):
        actor = SystemActor("cluster agent")
        async with change(actor, call.request.app.state.broadcast):
            runs = await update_jobs.claim_due(
                actor, owner, 1, utcnow(), policy, organization_codes=codes, reach=clusters.reach(call.agent),
                cluster_id=cluster.id if cluster else None, within=within,
            )
        job = None
        if runs:
            try:
                async with change(actor, call.request.app.state.broadcast):
                    job = await update_jobs.prepare(actor, runs[0], utcnow(), policy, lock=False)
            except LeaseLost:
                job = None
        if not runs:
            break
        if job is not None:
            # Read for this answer only: never stored elsewhere, never logged.
            credentials = await update_jobs.credentials_for(settings, job.database.id)
            log.info("update run %s claimed by %s (attempt %s)", job.run.id, owner, job.run.attempts)
            code = await cluster_agent.code_of(job.database.organization_id)
            place = (await clusters.names_of([job.database.id])).get(job.database.id, (None, None))
            return 200, {"run": _claim_json(job, code, place, credentials, settings.update_lease_seconds, call.agent.name)}
    return 200, {"run": None}


@agent_endpoint("POST", "/cluster/updates/{runId}/heartbeat", body=("fencingToken",))
async def update_heartbeat(call: AgentCall) -> tuple[int, dict[str, Any]]:
    """The lease extended by `update_lease_seconds`; 409 LEASE_LOST when it is not this claim's any more."""
    claim = await _claim_of(call)
    if not await update_jobs.renew(claim, utcnow() + _policy(call).lease):
        raise LeaseLost
    return 200, {"run": run_json(await update_runs.by_id(claim.run_id))}


@agent_endpoint("POST", "/cluster/updates/{runId}/step", body=("fencingToken", "step", "progress", "message"))
async def update_step(call: AgentCall) -> tuple[int, dict[str, Any]]:
    """One step of the run (its effect, message and progress, an updateRuns event); for `end_sessions`
    the sessions still to end (end each in the cluster, report it done, repeat until none is left)."""
    claim = await _claim_of(call)
    step = call.value("step")
    if not isinstance(step, str) or step not in STEPS:
        raise _invalid("step", f"`step` must be one of {', '.join(STEPS)}.")
    progress = call.whole_number("progress", 0, 100, 0)
    text = call.text("message", MAX_MESSAGE, required=False)
    actor = SystemActor("cluster agent")
    try:
        async with change(actor, call.request.app.state.broadcast):
            run, pending = await update_jobs.agent_step(actor, claim, step, progress, text, utcnow(), _policy(call))
    except StepRefused as refused:
        code = await cluster_agent.code_of((await update_runs.by_id(claim.run_id)).organization_id)
        return 409, {
            "error": {"code": "CONFLICT", "message": refused.message, "field": "step"},
            "sessions": [_termination_json(s, code) for s in refused.pending],
        }
    answer: dict[str, Any] = {"run": run_json(run)}
    if step == "end_sessions":
        code = await cluster_agent.code_of(run.organization_id)
        answer["sessions"] = [_termination_json(s, code) for s in pending]
    return 200, answer


@agent_endpoint("POST", "/cluster/updates/{runId}/result", body=("fencingToken", "outcome", "version", "message", "reason"))
async def update_result(call: AgentCall) -> tuple[int, dict[str, Any]]:
    """The end of the agent's attempt: `succeeded` (the `version` installed: SUCCEEDED, the database on it)
    or `failed` (a `reason`: SCHEDULED again after a pause, FAILED after the last attempt)."""
    claim = await _claim_of(call)
    outcome = call.value("outcome")
    actor = SystemActor("cluster agent")
    ended = await update_jobs.ended_by(claim)
    if ended is not None:  # a repeated report of this attempt's end (the answer was lost): nothing changes
        return 200, {"run": run_json(ended), "changed": False}
    if outcome == "succeeded":
        version = call.text("version", 50)
        text = call.text("message", MAX_MESSAGE, required=False) or f"Конфигурация обновлена до версии {version}."
        async with change(actor, call.request.app.state.broadcast):
            run = await update_jobs.finish(actor, claim, text, version, utcnow())
    elif outcome == "failed":
        reason = call.text("reason", 400)
        async with change(actor, call.request.app.state.broadcast):
            run = await update_jobs.attempt_failed(actor, claim, reason, utcnow(), _policy(call))
    else:
        raise _invalid("outcome", "`outcome` must be `succeeded` (with `version`) or `failed` (with `reason`).")
    log.info("update run %s: the agent reports %s, now %s", run.id, outcome, run.status.value)
    return 200, {"run": run_json(run), "changed": True}
