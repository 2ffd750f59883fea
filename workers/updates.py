"""The update-run worker: claims due runs with a lease, carries them out on the cluster, and reports.

One pass (`UpdateWorker.step`, about once a second in `run_update_worker`):

1. Quarantine: ON_RELEASE runs whose 24 hours are over (`scheduled_for` = release + 24 h) become
   SCHEDULED at a free slot (`resolvers.updates.releases.plan_quarantined_run`). A recalled release's runs
   are CANCELLED already and are not looked at. On PostgreSQL these plannings are serialised by an
   advisory lock, so two workers never overfill one slot.
2. Abandoned runs: a RUNNING run whose lease ran out after its last allowed attempt is FAILED.
3. Claims: a due SCHEDULED run, or a RUNNING run whose lease ran out (its worker died), becomes
   RUNNING with `lease_owner` = this worker, `lease_expires_at` = now + lease, `attempts` + 1. On
   PostgreSQL the candidates are read with `FOR UPDATE OF update_run SKIP LOCKED` in the claiming
   transaction and the database row is locked the same way, so concurrent workers get disjoint runs
   and one database never has two runs at once; every claim is also a conditional UPDATE (status and
   lease re-checked), which is what protects SQLite (one process) as well.
4. Execution (up to `update_parallel_runs` at once per worker): lock the database against new
   sessions (`locked_for_update`), end its sessions (ACTIVE → TERMINATING, then this worker ends them
   through the Cluster interface and marks them TERMINATED itself; each change a sessions event, each
   request audited as `session.terminate` with reason "update"), ask the cluster to update, report
   progress, then SUCCEEDED with the database's new `version`, or, on an error, SCHEDULED again
   `update_retry_seconds` later until `update_max_attempts`, then FAILED with the reason. The
   database is unlocked either way.

Agent mode (resolvers/cloud/cluster_mode.py: KABINET_CLUSTER=agent, an agent token, PostgreSQL, SQLite
without the demo): the provider's cluster agent claims due runs and carries them out itself over
/cluster/updates/… (kabinet/agent_api/). This worker then only does 1 and the monthly planning, and
takes back a run whose agent's lease ran out: SCHEDULED again for an agent to claim, or FAILED after
its last attempt. It claims nothing. Simulated mode: it claims only runs of databases the simulated
cluster may act in (never one the provider sent: its runs wait for an agent, its version is never set
by a simulation).

Leases and fencing: while a run goes on, a heartbeat renews its lease every third of
`update_lease_seconds`. Every write of an execution is conditional on (status RUNNING, lease_owner,
attempts) being what this worker claimed: `attempts` is the fencing token, so a worker that lost its
lease (it stalled, another took over) changes nothing; the heartbeat notices and stops it at once.

Stopping: on `stop`, a running update finishes its current step (the cluster's next progress
report), then releases its lease (`lease_expires_at` = now, the attempt given back) and leaves the
run RUNNING with its database locked, so another worker (or this one after a restart) takes it over
at once. A worker killed outright (SIGKILL) leaves the same state once its lease runs out.

Claims, steps and the end of a run are resolvers/updates/jobs.py's, shared with the cluster agent's
endpoints; every change of a run is made by resolvers/updates/runs.py (the one owner of a run's
status), which records its updateRuns event through this worker's SystemActor; the worker announces
it after its transaction commits.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Iterable
from typing import Any

from broadcaster import Broadcast

from foundation.clock import utcnow
from foundation.settings import Settings
from models.cloud import Database, Session
from models.updates import UpdateRun, UpdateRunStatus, UpdateSchedule
from resolvers.cloud import cluster_mode
from resolvers.updates import jobs as update_jobs
from resolvers.updates import runs as update_runs
from resolvers.updates import schedules as update_schedules
from resolvers.common.context import SystemActor
from resolvers.updates.releases import plan_quarantined_run
from resolvers.updates.jobs import Job, Policy
from resolvers.updates.runs import Claim, LeaseLost
from resolvers.common.unit_of_work import change
from workers.cluster import Cluster, SimulatedCluster

log = logging.getLogger("kabinet.updates")

TICK_SECONDS = 1.0
MONTHLY_CHECK_SECONDS = 300.0  # how often MONTHLY schedules without a planned run are looked for
QUARANTINE_PLANNING_LOCK = 0x6B616275  # pg_advisory_xact_lock key: one slot planner at a time
ACTOR = "update worker"


class Interrupted(Exception):
    """The worker is stopping: the current step is done, the lease is to be given back."""


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"[-100:]


def _reason(error: BaseException) -> str:
    return str(error).strip() or type(error).__name__


class _Lease:
    """The heartbeat of one claimed run, and a guard that stops a cluster call once the lease is lost."""

    def __init__(self, worker: UpdateWorker, run: UpdateRun) -> None:
        self.worker, self.run = worker, run
        self.claim = Claim.of(run)
        self.lost = asyncio.Event()
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._beat(), name=f"lease-{self.run.id}")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)

    async def _beat(self) -> None:
        interval = max(self.worker.lease.total_seconds() / 3, 0.05)
        while True:
            await asyncio.sleep(interval)
            try:
                renewed = await update_runs.renew_lease(self.claim, utcnow() + self.worker.lease)
            except Exception:  # noqa: BLE001 — the database is away: try again; the fence protects the run
                log.warning("could not renew the lease of update run %s", self.run.id, exc_info=True)
                continue
            if not renewed:
                log.warning("update run %s: lease lost, another worker has it now", self.run.id)
                self.lost.set()
                return

    async def guard(self, awaitable: Awaitable[Any]) -> Any:
        """Await `awaitable`, cancelled (LeaseLost) as soon as the heartbeat finds the lease lost."""
        work = asyncio.ensure_future(awaitable)
        lost = asyncio.create_task(self.lost.wait())
        try:
            done, _ = await asyncio.wait({work, lost}, return_when=asyncio.FIRST_COMPLETED)
            if work in done:
                return work.result()
            raise LeaseLost
        finally:
            for task in (work, lost):
                if not task.done():
                    task.cancel()
            await asyncio.gather(work, lost, return_exceptions=True)


class UpdateWorker:
    """Claims and carries out update runs; see the module's description."""

    def __init__(
        self,
        settings: Settings,
        broadcast: Broadcast,
        stop: asyncio.Event | None = None,
        *,
        cluster: Cluster | None = None,
        worker_id: str | None = None,
        database_ids: Iterable[uuid.UUID] | None = None,
    ) -> None:
        self.settings = settings
        self.broadcast = broadcast
        self.stop = stop or asyncio.Event()
        self.cluster = cluster or SimulatedCluster(settings.update_step_seconds)
        self.worker_id = (worker_id or default_worker_id())[:100]
        # Only these databases' runs (a test's own, or an operator's manual pass); None: all.
        self.database_ids = list(database_ids) if database_ids is not None else None
        self.policy = Policy.of(settings)
        self.lease = self.policy.lease
        self.max_attempts = self.policy.max_attempts
        # Agent mode: the cluster agent claims and carries out the runs (kabinet/agent_api/), not this
        # worker. Read at every tick (read_cluster_mode): a first agent token turns a deployment to it.
        self.agent_executes = settings.cluster == "agent"

    def _scoped(self, query):
        return query.filter(database_id__in=self.database_ids) if self.database_ids is not None else query

    # ------------------------------------------------------------------ one pass

    async def read_cluster_mode(self) -> None:
        self.agent_executes = not (await cluster_mode.read(self.settings)).simulated

    async def step(self) -> int:
        """One pass, awaited to its end: quarantine, abandoned runs, then the due runs this worker can claim
        (up to `update_parallel_runs`; none in agent mode), carried out together. How many runs were carried out."""
        await self.read_cluster_mode()
        await self.release_quarantine()
        await self.fail_abandoned()
        runs = [] if self.agent_executes else await self.claim(self.settings.update_parallel_runs)
        await asyncio.gather(*(self.execute(run) for run in runs))
        return len(runs)

    async def run(self) -> None:
        """The loop: claims whenever a slot is free, housekeeping every tick, until `stop`."""
        running: set[asyncio.Task] = set()
        stopping = asyncio.create_task(self.stop.wait())
        next_tick = next_monthly = utcnow()
        try:
            while not self.stop.is_set():
                try:
                    now = utcnow()
                    if now >= next_tick:
                        next_tick = now + dt.timedelta(seconds=TICK_SECONDS)
                        await self.read_cluster_mode()
                        await self.release_quarantine()
                        await self.fail_abandoned()
                    if now >= next_monthly:
                        next_monthly = now + dt.timedelta(seconds=MONTHLY_CHECK_SECONDS)
                        await self.plan_missing_monthly_runs()
                    free = 0 if self.agent_executes else self.settings.update_parallel_runs - len(running)
                    if free > 0:
                        for run in await self.claim(free):
                            running.add(asyncio.create_task(self.execute(run), name=f"update-run-{run.id}"))
                except Exception:  # noqa: BLE001 — a worker loop outlives one bad step
                    log.exception("update worker step failed")
                done, _ = await asyncio.wait({stopping, *running}, timeout=TICK_SECONDS, return_when=asyncio.FIRST_COMPLETED)
                running -= done
        finally:
            stopping.cancel()
            # Stopping: each run finishes its current step and gives its lease back.
            if running:
                await asyncio.gather(*running, return_exceptions=True)

    # ------------------------------------------------------------------ quarantine and planning

    async def release_quarantine(self, now: dt.datetime | None = None, limit: int = 100) -> int:
        """QUARANTINE runs whose 24 hours are over → SCHEDULED at a slot with room. How many."""
        now = now or utcnow()
        due = await self._scoped(
            UpdateRun.filter(status=UpdateRunStatus.QUARANTINE, scheduled_for__lte=now)
        ).order_by("scheduled_for").limit(limit)
        moved = 0
        for run in due:
            actor = SystemActor(ACTOR)
            async with change(actor, self.broadcast) as connection:
                if connection.capabilities.dialect == "postgres":
                    await connection.execute_query("SELECT pg_advisory_xact_lock($1)", [QUARANTINE_PLANNING_LOCK])
                await Database.filter(id=run.database_id).select_for_update().first()
                current = await UpdateRun.get_or_none(id=run.id, status=UpdateRunStatus.QUARANTINE)
                if current is None:
                    continue  # recalled, skipped or planned by another worker meanwhile
                schedule = await UpdateSchedule.get_or_none(database_id=run.database_id) or UpdateSchedule(
                    database_id=run.database_id
                )
                if await plan_quarantined_run(actor, current, schedule, self.settings.update_capacity_per_slot, now=now):
                    moved += 1
        return moved

    async def plan_missing_monthly_runs(self, now: dt.datetime | None = None) -> int:
        """Plan the next run of every MONTHLY database that has none (a safety net: the mutations and the
        end of each run plan them). How many were planned."""
        now = now or utcnow()
        planned = 0
        for database_id in await update_schedules.databases_missing_a_monthly_run(self.database_ids):
            actor = SystemActor(ACTOR)
            async with change(actor, self.broadcast):
                if await update_schedules.plan_missing_monthly_run(actor, database_id, now) is not None:
                    planned += 1
        return planned

    async def fail_abandoned(self, now: dt.datetime | None = None) -> int:
        """RUNNING runs whose lease ran out on their last allowed attempt → FAILED; in agent mode also the
        ones before it → SCHEDULED again (the agent died; another claims it). How many."""
        now = now or utcnow()
        changed = 0
        # Worker mode: a run before its last attempt is claimed again by a worker (self.claim).
        last_only = None if self.agent_executes else self.max_attempts
        for run_id in await update_jobs.expired_leases(self.database_ids, now, attempts_at_least=last_only):
            actor = SystemActor(ACTOR)
            async with change(actor, self.broadcast):
                run = await update_jobs.take_back(actor, run_id, now, self.policy)
            if run is not None:
                changed += 1
        return changed

    # ------------------------------------------------------------------ claims

    async def claim(self, limit: int, now: dt.datetime | None = None) -> list[UpdateRun]:
        """Lease up to `limit` runs to this worker: due SCHEDULED ones, and RUNNING ones whose lease ran out."""
        actor = SystemActor(ACTOR)
        async with change(actor, self.broadcast):
            claimed = await update_jobs.claim_due(
                actor, self.worker_id, limit, now or utcnow(), self.policy, database_ids=self.database_ids,
                within=cluster_mode.in_simulated_databases(),  # a real database's runs wait for its agent
            )
        for run in claimed:
            log.info("update run %s claimed by %s (attempt %s)", run.id, self.worker_id, run.attempts)
        return claimed

    # ------------------------------------------------------------------ execution

    async def execute(self, run: UpdateRun) -> UpdateRunStatus | None:
        """Carry out a run this worker has claimed. Its final status, or None when the lease was lost
        or given back (the worker is stopping)."""
        lease = _Lease(self, run)
        lease.start()
        try:
            return await self._execute(run, lease)
        except LeaseLost:
            log.warning("update run %s: stopped, it is no longer this worker's", run.id)
            return None
        except Interrupted:
            await self._give_back(lease)
            return None
        except asyncio.CancelledError:
            # Cancelled while stopping (the step took too long): give the run back for another worker.
            await asyncio.shield(self._give_back(lease))
            raise
        except Exception:  # noqa: BLE001 — e.g. the database went away: the lease runs out, another worker goes on
            log.exception("update run %s: execution broke off; it is taken over when its lease runs out", run.id)
            return None
        finally:
            await lease.stop()

    async def _execute(self, run: UpdateRun, lease: _Lease) -> UpdateRunStatus:
        job = await self._prepare(run)
        if job is None:
            return UpdateRunStatus.SUCCEEDED  # nothing newer to install
        try:
            if pending := await self._request_terminations(lease, job):
                await lease.guard(asyncio.gather(*(self.cluster.end_session(s) for s in pending)))
                await self._sessions_ended(lease, pending)
            self._journal(run, job.database, job.target)
            await lease.guard(self.cluster.update_database(job.database, job.target, lambda p: self._progress(lease, p)))
        except (LeaseLost, Interrupted, asyncio.CancelledError):
            raise
        except Exception as error:  # noqa: BLE001 — the cluster (or a session end) failed: retry or fail
            log.warning("update run %s failed on attempt %s: %s", run.id, run.attempts, _reason(error))
            return await self._failed(lease, error)
        return await self._finish(lease, f"Конфигурация обновлена до версии {job.target}.", job.target)

    async def _prepare(self, run: UpdateRun) -> Job | None:
        """The target decided, the database locked against new sessions; None (SUCCEEDED) when nothing is newer."""
        actor = SystemActor(ACTOR)
        async with change(actor, self.broadcast):
            job = await update_jobs.prepare(actor, run, utcnow(), self.policy, lock=True)
        if job is None:
            await run.refresh_from_db()
            log.info("update run %s SUCCEEDED: %s", run.id, run.message)
        return job

    async def _request_terminations(self, lease: _Lease, job: Job) -> list[Session]:
        """Ask every ACTIVE session of the database to end; the sessions still to be ended."""
        actor = SystemActor(ACTOR)
        async with change(actor, self.broadcast):
            pending = await update_jobs.end_sessions(actor, lease.claim, job.database.id, job.target)
        return pending

    async def _sessions_ended(self, lease: _Lease, ended: list[Session]) -> None:
        actor = SystemActor(ACTOR)
        async with change(actor, self.broadcast):
            await update_jobs.sessions_ended(actor, lease.claim, ended, utcnow())

    async def _progress(self, lease: _Lease, progress: int) -> None:
        """The cluster's report: a higher progress (1-99) is stored and announced; then, if the worker is
        stopping, the run stops here (its step is done)."""
        actor = SystemActor(ACTOR)
        async with change(actor, self.broadcast):
            await update_runs.progressed(actor, lease.claim, progress, utcnow() + self.lease)
        if self.stop.is_set():
            raise Interrupted

    async def _finish(self, lease: _Lease, message: str, version: str | None) -> UpdateRunStatus:
        """SUCCEEDED (on `version`, when newer than the database's); then the schedule."""
        actor = SystemActor(ACTOR)
        async with change(actor, self.broadcast):
            run = await update_jobs.finish(actor, lease.claim, message, version, utcnow())
        log.info("update run %s %s: %s", run.id, run.status.value, run.message)
        return run.status

    async def _failed(self, lease: _Lease, error: BaseException) -> UpdateRunStatus:
        """A failed attempt: SCHEDULED again after a pause, or FAILED after the last allowed attempt."""
        actor = SystemActor(ACTOR)
        async with change(actor, self.broadcast):
            run = await update_jobs.attempt_failed(actor, lease.claim, _reason(error), utcnow(), self.policy)
        if run.status == UpdateRunStatus.FAILED:
            log.info("update run %s FAILED: %s", run.id, run.message)
        return run.status

    async def _give_back(self, lease: _Lease) -> None:
        """Stopping: the run stays RUNNING (its database locked) and is free for another worker at once;
        the attempt does not count."""
        try:
            if await update_runs.interrupted(lease.claim, utcnow()):
                log.info("update run %s: lease given back for another worker to go on", lease.run.id)
        except Exception:  # noqa: BLE001 — then the lease simply runs out
            log.warning("could not give back the lease of update run %s", lease.run.id, exc_info=True)

    # ------------------------------------------------------------------ helpers

    def _journal(self, run: UpdateRun, database: Database, target: str) -> None:
        """One line per update the cluster is asked for (settings.update_journal), appended atomically."""
        path = self.settings.update_journal
        if path is None:
            return
        line = json.dumps({
            "run": str(run.id), "database": str(database.id), "target": target, "attempt": run.attempts,
            "worker": self.worker_id, "pid": os.getpid(), "at": utcnow().isoformat(),
        }) + "\n"
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)


async def run_update_worker(
    settings: Settings,
    broadcast: Broadcast,
    stop: asyncio.Event,
    *,
    cluster: Cluster | None = None,
    worker_id: str | None = None,
) -> None:
    """The update-run loop of one worker process (about one pass a second) until `stop`."""
    worker = UpdateWorker(settings, broadcast, stop, cluster=cluster, worker_id=worker_id)
    log.info("update worker %s started (lease %ss)", worker.worker_id, settings.update_lease_seconds)
    await worker.run()
