"""The agent's sessions endpoints: a cluster's snapshot, a session started or ended, the terminations
kabinet asks for and their outcome, the limits to admit by."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from foundation.clock import utcnow
from foundation.ids import pk_of, to_global_id
from kabinet.agent_api.auth import AgentError, invalid, not_found
from kabinet.agent_api.endpoints import CLUSTER_NAME, ORGANIZATION_CODE, SNAPSHOT_PATH, AgentCall, agent_endpoint, iso
from resolvers.cloud import cluster_agent
from resolvers.cloud import cluster_limits
from resolvers.cloud import cluster_snapshot, clusters
from resolvers.cloud import sessions
from resolvers.common.context import SystemActor
from resolvers.common.errors import UserFacingError
from resolvers.common.unit_of_work import change

if TYPE_CHECKING:  # annotations only: the rows come from resolvers
    from models.cloud import Database, Session
    from models.organizations import Organization

MAX_TERMINATIONS = 500
MAX_REASON = 300  # characters: models.cloud.Session.refusal_reason
Transition = Callable[[SystemActor, "Session", dt.datetime], Awaitable[bool]]


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
        raise invalid("databaseId", "`databaseId` must be a database's id (a string).")
    pk = pk_of(database_id, "Database") if database_id else None
    return await cluster_agent.organization_and_database(
        code, pk, database_named=database_id is not None, program=call.agent
    )


async def _session_of_agent(call: AgentCall, session: Session | None, field: str, message: str) -> Session:
    """The session, when the agent's token reaches it (its organizations', or of a database on its
    clusters); else 404 as for none."""
    if session is None or not await clusters.reaches(call.agent, session.organization_id, session.database_id):
        raise not_found(field, message)
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
        raise not_found("cluster", error.message) from None
    taken_at = call.time("takenAt")
    latest = utcnow() + dt.timedelta(seconds=call.settings.agent_clock_skew_seconds)
    reports, rejected = cluster_snapshot.read_snapshot(call.value("infobases"), latest)
    actor = SystemActor("cluster agent")
    async with change(actor, call.request.app.state.broadcast):
        outcome = await cluster_snapshot.apply_snapshot(actor, call.agent, cluster, taken_at, reports, utcnow())
    cluster = outcome.cluster
    return 200, {
        "cluster": {"name": cluster.name, "connected": cluster.connected, "lastReportAt": iso(cluster.last_report_at)},
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
        raise invalid("endedAt", "`endedAt` is before the session started.")
    changed = await _report(call, sessions.ended, session, ended_at)
    return 200, {"session": session_json(session, await cluster_agent.code_of(session.organization_id)), "changed": changed}


@agent_endpoint("GET", "/cluster/terminations", query=("limit", "organizationCode", "cluster"))
async def terminations(call: AgentCall) -> tuple[int, dict[str, Any]]:
    """The sessions kabinet asked to end (TERMINATING) that the agent's token reaches, oldest request
    first, each with its cluster and infobase (?cluster= for one cluster's only)."""
    limit_text = call.query("limit", 10) or "100"
    if not limit_text.isascii() or not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_TERMINATIONS:
        raise invalid("limit", f"`limit` must be a whole number from 1 to {MAX_TERMINATIONS}.")
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
