"""The agent's update-run endpoints: claim a due run under a lease, keep the lease, report each step
and the result (the run's lifecycle is resolvers/updates/jobs.py's, shared with the worker)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from foundation.clock import utcnow
from foundation.ids import to_global_id
from kabinet.agent_api.auth import invalid, not_found
from kabinet.agent_api.endpoints import CLUSTER_NAME, ORGANIZATION_CODE, AgentCall, agent_endpoint, iso
from resolvers.cloud import cluster_agent
from resolvers.cloud import cluster_mode
from resolvers.cloud import clusters
from resolvers.common.context import SystemActor
from resolvers.common.unit_of_work import change
from resolvers.updates import jobs as update_jobs
from resolvers.updates import runs as update_runs
from resolvers.updates.jobs import STEPS, Job, Policy, StepRefused
from resolvers.updates.runs import Claim, LeaseLost

if TYPE_CHECKING:  # annotations only: the rows come from resolvers
    from models.cloud import Session
    from models.updates import UpdateRun

log = logging.getLogger("kabinet.agent")

MAX_ORGANIZATION_CODES = 500  # in one claim's `organizationCodes`
FENCING_TOKEN = 64  # characters at most (update_runs.new_fence makes 32)
MAX_MESSAGE = 500


def _policy(call: AgentCall) -> Policy:
    return Policy.of(call.settings)


def run_json(run: UpdateRun) -> dict[str, Any]:
    """A run as the agent sees it (never its credentials nor its fencing token: those are the claim's alone)."""
    return {
        "id": to_global_id("UpdateRun", run.id), "databaseId": to_global_id("Database", run.database_id),
        "status": run.status.value, "attempt": run.attempts, "targetVersion": run.target_version,
        "progress": run.progress, "message": run.message, "scheduledFor": iso(run.scheduled_for),
        "startedAt": iso(run.started_at), "finishedAt": iso(run.finished_at), "leaseExpiresAt": iso(run.lease_expires_at),
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
        raise not_found("runId", "No such update run.")
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
            "publishedAt": iso(release.published_at),
        } if release else None,
        "credentials": credentials,
    }


def _organization_codes(call: AgentCall) -> list[str] | None:
    codes = call.value("organizationCodes")
    if codes is None:
        return None
    if not isinstance(codes, list) or len(codes) > MAX_ORGANIZATION_CODES:
        raise invalid("organizationCodes", f"`organizationCodes` must be a list of at most {MAX_ORGANIZATION_CODES} organization codes.")
    if not all(isinstance(c, str) and 0 < len(c) <= ORGANIZATION_CODE and "\x00" not in c for c in codes):
        raise invalid("organizationCodes", f"`organizationCodes` must hold organization codes (strings of 1 to {ORGANIZATION_CODE} characters).")
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
        raise invalid("step", f"`step` must be one of {', '.join(STEPS)}.")
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
        raise invalid("outcome", "`outcome` must be `succeeded` (with `version`) or `failed` (with `reason`).")
    log.info("update run %s: the agent reports %s, now %s", run.id, outcome, run.status.value)
    return 200, {"run": run_json(run), "changed": True}
