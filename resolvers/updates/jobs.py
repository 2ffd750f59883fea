"""An update run carried out: claimed under a lease, walked through its steps, finished.

Two executors share this, so they share one lifecycle: kabinet's update worker driving the simulated
cluster (workers/updates.py), and a provider's cluster agent over HTTP (kabinet/agent_api/,
/cluster/updates/…) driving a real 1C cluster. Every status change is resolvers/updates/runs.py's
(the one owner of a run's status); this decides which one, and what goes with it: the database's
sessions (resolvers/cloud/sessions.py), the schedule's follow-up, the credentials a claim hands out.

A claim is fenced: (run, status RUNNING, lease owner, attempts, fence). The fence is random per claim
(update_runs.leased), so an executor whose lease ran out (another took the run over) changes nothing
(`LeaseLost`), and an agent acts only on a claim it made: its owner is the agent's token, the fence
is in the claim's answer alone.

The agent's steps, in order (each one an updateRuns event with its message and progress):

    warn_users → lock → end_sessions (repeated until no session is left) → update (repeated with
    progress) → unlock, then the result (succeeded with the installed version, or failed with a reason)

Order is held by the database's state, not by a stored step: `end_sessions` and `update` need the
lock, `update` needs the sessions gone, `unlock` lets users in again.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass

from tortoise.expressions import Q, Subquery

from foundation.settings import Settings
from models.cloud import Database, Session, SessionStatus
from models.updates import Release, UpdateRun, UpdateRunStatus, UpdateSchedule
from resolvers.cloud import sessions
from resolvers.updates import runs as update_runs
from resolvers.updates import schedules as update_schedules
from resolvers.common.context import Actor
from resolvers.cloud.credentials import CredentialsUnreadable, decrypt_credentials
from resolvers.updates.releases import execution_target, version_key
from resolvers.updates.runs import Claim, LeaseLost

log = logging.getLogger("kabinet.updates")

STEPS = ("warn_users", "lock", "end_sessions", "update", "unlock")
STEP_MESSAGES = {
    "warn_users": "Пользователи предупреждены об обновлении.",
    "lock": "Начало новых сеансов запрещено на время обновления.",
    "end_sessions": "Сеансы базы завершаются.",
    "update": "Конфигурация обновляется.",
    "unlock": "Начало сеансов снова разрешено.",
}
AGENT_OWNER_PREFIX = "agent:"
MAX_NOTHING_TO_DO = 20  # runs with nothing to install finished in one claim, before answering "none"


class StepRefused(Exception):
    """A step out of order (e.g. `update` while sessions are left): nothing was written."""

    def __init__(self, message: str, pending: list[Session] | None = None) -> None:
        super().__init__(message)
        self.message, self.pending = message, pending or []


@dataclass(frozen=True)
class Policy:
    """How long a lease lasts, how many attempts a run gets, the pause before the next one."""

    lease: dt.timedelta
    max_attempts: int
    retry_delay: dt.timedelta

    @classmethod
    def of(cls, settings: Settings) -> Policy:
        return cls(
            lease=dt.timedelta(seconds=settings.update_lease_seconds),
            max_attempts=max(1, settings.update_max_attempts),
            retry_delay=dt.timedelta(seconds=settings.update_retry_seconds),
        )


@dataclass(frozen=True)
class Job:
    """A claimed run with something to install: what the executor needs."""

    run: UpdateRun
    claim: Claim
    database: Database
    target: str
    release: Release | None


def agent_owner(agent_name: str) -> str:
    """The lease owner an agent's claims carry: its token's name (a worker's is its own id)."""
    return f"{AGENT_OWNER_PREFIX}{agent_name}"[:100]


# ---------------------------------------------------------------------------------------- claims


async def claim_due(
    actor: Actor,
    owner: str,
    limit: int,
    now: dt.datetime,
    policy: Policy,
    *,
    database_ids: list[uuid.UUID] | None = None,
    organization_codes: list[str] | None = None,
    reach: Q | None = None,
    cluster_id: uuid.UUID | None = None,
    within: Q | None = None,
) -> list[UpdateRun]:
    """Lease up to `limit` runs to `owner`: due SCHEDULED ones, and RUNNING ones whose lease ran out.
    Run in its own transaction: on PostgreSQL the candidates are read `FOR UPDATE OF update_run SKIP
    LOCKED` and their database rows likewise, so concurrent claimers get disjoint runs and one database
    never has two runs at once; every claim is also conditional (update_runs.leased), which is what
    protects SQLite (one writer) as well. `reach`: the claimer's scope (an agent token's organizations
    or clusters, resolvers/cloud/clusters.py; None: every one), `organization_codes` and `cluster_id`
    narrowings it asks for within it; `within` a filter of runs (the simulated cluster's databases
    only: resolvers/cloud/cluster_mode.py)."""
    if limit <= 0:
        return []
    claimable = Q(status=UpdateRunStatus.SCHEDULED, scheduled_for__lte=now) | Q(
        status=UpdateRunStatus.RUNNING, lease_expires_at__lt=now, attempts__lt=policy.max_attempts
    )
    query = UpdateRun.filter(claimable)
    if database_ids is not None:
        query = query.filter(database_id__in=database_ids)
    if reach is not None:
        query = query.filter(reach)
    if cluster_id is not None:
        query = query.filter(database__cluster_id=cluster_id)
    if organization_codes is not None:
        query = query.filter(organization__code__in=organization_codes)
    if within is not None:
        query = query.filter(within)
    # Not of a database busy with another run (one whose executor holds a live lease).
    busy = Subquery(UpdateRun.filter(status=UpdateRunStatus.RUNNING, lease_expires_at__gte=now).values("database_id"))
    candidates = await query.exclude(database_id__in=busy).order_by("scheduled_for", "id").limit(limit).select_for_update(
        skip_locked=True, of=("update_run",)
    )
    claimed: list[UpdateRun] = []
    for run in candidates:
        # The database too: a database another claimer is starting a run of is skipped for now.
        if await Database.filter(id=run.database_id).select_for_update(skip_locked=True).first() is None:
            continue
        if await UpdateRun.filter(database_id=run.database_id, status=UpdateRunStatus.RUNNING).exclude(id=run.id).exists():
            continue  # one run of a database at a time
        leased = await update_runs.leased(actor, run.id, owner, now, now + policy.lease, policy.max_attempts)
        if leased is not None:
            claimed.append(leased)
    return claimed


async def prepare(actor: Actor, run: UpdateRun, now: dt.datetime, policy: Policy, *, lock: bool) -> Job | None:
    """What a claimed run installs, decided now (the newest release not recalled). None when there is
    nothing newer than the database's version: the run is SUCCEEDED at once. With `lock`, the database
    is locked against new sessions too (the worker's first step; the agent locks in its `lock` step)."""
    claim = Claim.of(run)
    database = await Database.get(id=run.database_id)
    target, release = await execution_target(run, database)
    if target is None or version_key(target) <= version_key(database.version):
        await finish(actor, claim, f"Обновлять нечего: база уже на версии {database.version}.", None, now)
        return None
    release_id = release.id if release else run.release_id
    if lock:
        await update_runs.begin(actor, claim, database.id, target, release_id, now + policy.lease)
    else:
        run = await update_runs.targeted(actor, claim, target, release_id, now + policy.lease)
    return Job(run, claim, database, target, release)


async def credentials_for(settings: Settings, database_id: uuid.UUID) -> dict[str, str] | None:
    """The database's stored 1C login and password, decrypted for the claim of one run (never logged);
    None when none are stored, or they cannot be read with this secret key."""
    blob = await UpdateSchedule.filter(database_id=database_id).first().values_list("credentials_encrypted", flat=True)
    if blob is None:
        return None
    try:
        login, password = decrypt_credentials(settings, blob)
    except CredentialsUnreadable:
        log.warning("the stored credentials of database %s cannot be decrypted with this secret key", database_id)
        return None
    return {"login": login, "password": password}


# ---------------------------------------------------------------------------------------- steps


async def renew(claim: Claim, lease_until: dt.datetime) -> bool:
    """The executor's heartbeat: False when the claim is lost."""
    return await update_runs.renew_lease(claim, lease_until)


async def lock(actor: Actor, claim: Claim, database_id: uuid.UUID) -> None:
    """The database admits no new session while the run holds it (database_locks.refusal_of)."""
    await update_runs.hold_database(claim, database_id, True)


async def end_sessions(actor: Actor, claim: Claim, database_id: uuid.UUID, target: str | None) -> list[Session]:
    """Ask every ACTIVE session of the database to end (TERMINATING, audited `session.terminate` with
    reason "update"); the sessions asked to end (by this run or earlier by someone) and not ended yet."""
    if not await update_runs.still_held(claim):
        raise LeaseLost
    await sessions.request_termination(
        actor, Q(database_id=database_id), requested_by=None,
        audit_details={"reason": "update", "updateRunId": str(claim.run_id), "targetVersion": target},
    )
    return await sessions.terminating_in(database_id)


async def sessions_ended(actor: Actor, claim: Claim, ended: list[Session], now: dt.datetime) -> None:
    """The cluster has ended these sessions the run asked to end: TERMINATED."""
    if not await update_runs.still_held(claim):
        raise LeaseLost
    for session in ended:
        await sessions.confirm_terminated(actor, session, now)


async def agent_step(
    actor: Actor, claim: Claim, step: str, progress: int, text: str | None, now: dt.datetime, policy: Policy
) -> tuple[UpdateRun, list[Session]]:
    """One step the agent reports (see the module's description): its effect, then the run's message and
    progress (an event). The run as it is now, and for `end_sessions` the sessions still to end."""
    run = await claim.fenced().first()
    if run is None:
        raise LeaseLost
    database = await Database.filter(id=run.database_id).select_for_update().first()
    pending: list[Session] = []
    if step == "lock":
        await lock(actor, claim, run.database_id)
    elif step in ("end_sessions", "update") and not database.locked_for_update:
        raise StepRefused(f"`{step}` needs the database locked first: report the `lock` step.")
    elif step == "end_sessions":
        pending = await end_sessions(actor, claim, run.database_id, run.target_version)
    elif step == "update":
        left = await Session.filter(
            database_id=run.database_id, status__in=[SessionStatus.ACTIVE, SessionStatus.TERMINATING]
        ).order_by(*sessions.SESSION_ORDER)
        if left:
            raise StepRefused(
                f"{len(left)} session(s) of the database are still open: end them (`end_sessions`) before `update`.", left
            )
    elif step == "unlock":
        await update_runs.hold_database(claim, run.database_id, False)
    run = await update_runs.stepped(actor, claim, progress, text or STEP_MESSAGES[step], now + policy.lease)
    return run, pending


# ---------------------------------------------------------------------------------------- the end of a run


async def finish(actor: Actor, claim: Claim, text: str, version: str | None, now: dt.datetime) -> UpdateRun:
    """RUNNING → SUCCEEDED: the database unlocked, and on `version` when that is newer than its own; then
    the schedule's follow-up (resolvers/updates/schedules.py)."""
    run = await claim.fenced().first()
    if run is None:
        raise LeaseLost
    database = await Database.filter(id=run.database_id).select_for_update().first()
    newer = version if version and database is not None and version_key(version) > version_key(database.version) else None
    run = await update_runs.succeeded(actor, claim, run.database_id, text, newer, now)
    await update_schedules.follow_up(actor, run, now)
    return run


async def attempt_failed(actor: Actor, claim: Claim, reason: str, now: dt.datetime, policy: Policy) -> UpdateRun:
    """A failed attempt: SCHEDULED again after `policy.retry_delay`, or FAILED (and the schedule's
    follow-up) after the last allowed attempt. The database is unlocked either way."""
    run = await claim.fenced().first()
    if run is None:
        raise LeaseLost
    attempts = claim.attempts
    if attempts >= policy.max_attempts:
        run = await update_runs.failed(
            actor, claim, run.database_id,
            f"Обновление не удалось ({attempts} попытки из {policy.max_attempts}): {reason}", now,
        )
        await update_schedules.follow_up(actor, run, now)
        return run
    return await update_runs.retry_later(
        actor, claim, run.database_id,
        f"Попытка {attempts} из {policy.max_attempts} не удалась: {reason}. Будет повторена.",
        now + policy.retry_delay,
    )


async def ended_by(claim: Claim) -> UpdateRun | None:
    """The run, when this claim's attempt already ended it (SUCCEEDED or FAILED): a result reported twice."""
    return await UpdateRun.filter(
        id=claim.run_id, lease_owner=claim.owner, attempts=claim.attempts, lease_fence=claim.fence,
        status__in=[UpdateRunStatus.SUCCEEDED, UpdateRunStatus.FAILED],
    ).first()


async def expired_leases(
    database_ids: list[uuid.UUID] | None, now: dt.datetime, *, attempts_at_least: int | None = None
) -> list[uuid.UUID]:
    """RUNNING runs whose executor's lease ran out (after `attempts_at_least` attempts, when given)."""
    query = UpdateRun.filter(status=UpdateRunStatus.RUNNING, lease_expires_at__lt=now)
    if attempts_at_least is not None:
        query = query.filter(attempts__gte=attempts_at_least)
    if database_ids is not None:
        query = query.filter(database_id__in=database_ids)
    return list(await query.values_list("id", flat=True))


async def take_back(actor: Actor, run_id: uuid.UUID, now: dt.datetime, policy: Policy) -> UpdateRun | None:
    """A run whose executor's lease ran out: FAILED after its last attempt (then the schedule's
    follow-up), otherwise SCHEDULED again for an agent to claim (agent mode; workers claim such a run
    themselves). None when it is not such a run now."""
    run = await UpdateRun.get_or_none(id=run_id)
    if run is None:
        return None
    if run.attempts >= policy.max_attempts:
        run = await update_runs.abandoned(actor, run_id, now)
        if run is not None:
            await update_schedules.follow_up(actor, run, now)
        return run
    return await update_runs.taken_back(
        actor, run_id, now, policy.max_attempts,
        f"Агент кластера перестал отвечать на попытке {run.attempts} из {policy.max_attempts}; "
        "обновление будет начато заново.",
    )
