"""The update-run worker: claims due runs with a lease, carries them out on the cluster, and reports.

One pass (`UpdateWorker.step`, about once a second in `run_update_worker`):

1. Quarantine: ON_RELEASE runs whose 24 hours are over (`scheduled_for` = release + 24 h) become
   SCHEDULED at a free slot (`resolvers.releases.plan_quarantined_run`). A recalled release's runs
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
   sessions (`locked_for_update`), end its sessions, ask the cluster to update, report progress,
   then SUCCEEDED with the database's new `version`, or, on an error, SCHEDULED again
   `update_retry_seconds` later until `update_max_attempts`, then FAILED with the reason. The
   database is unlocked either way. Ending the sessions (each change a sessions event, each
   request audited as `session.terminate` with reason "update"):
   - simulated cluster (the default): ACTIVE → TERMINATING, then this worker ends them through the
     Cluster interface and marks them TERMINATED itself, so an update never waits for another loop;
   - agent mode (`KABINET_CLUSTER=agent` or agent tokens set): ACTIVE → TERMINATING, and the real
     cluster agent ends them (GET /cluster/terminations, kabinet/agent_api.py); the update waits
     until the database has no session left, at most `update_sessions_timeout_seconds`, or the
     attempt fails. A session reported meanwhile is asked to end too.

Leases and fencing: while a run goes on, a heartbeat renews its lease every third of
`update_lease_seconds`. Every write of an execution is conditional on (status RUNNING, lease_owner,
attempts) being what this worker claimed: `attempts` is the fencing token, so a worker that lost its
lease (it stalled, another took over) changes nothing; the heartbeat notices and stops it at once.

Stopping: on `stop`, a running update finishes its current step (the cluster's next progress
report), then releases its lease (`lease_expires_at` = now, the attempt given back) and leaves the
run RUNNING with its database locked, so another worker (or this one after a restart) takes it over
at once. A worker killed outright (SIGKILL) leaves the same state once its lease runs out.

Every change of a run is made by resolvers/update_runs.py (the one owner of a run's status), which
records its updateRuns event through this worker's SystemActor; the worker announces it after its
transaction commits. Sessions end through resolvers/sessions.py, schedules follow up through
resolvers/update_schedules.py.
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
from tortoise.expressions import Q, Subquery
from tortoise.transactions import in_transaction

from kabinet.clock import utcnow
from kabinet.settings import Settings
from models.cloud import Database, Session
from models.updates import UpdateRun, UpdateRunStatus, UpdateSchedule
from resolvers import sessions, update_runs, update_schedules
from resolvers.context import SystemActor
from resolvers.releases import execution_target, plan_quarantined_run, version_key
from resolvers.update_runs import Claim, LeaseLost
from workers.cluster import Cluster, SimulatedCluster

log = logging.getLogger("kabinet.updates")

TICK_SECONDS = 1.0
MONTHLY_CHECK_SECONDS = 300.0  # how often MONTHLY schedules without a planned run are looked for
QUARANTINE_PLANNING_LOCK = 0x6B616275  # pg_advisory_xact_lock key: one slot planner at a time
AGENT_POLL_SECONDS = 0.5  # agent mode: how often an update looks whether the agent has ended the sessions
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
        self.lease = dt.timedelta(seconds=settings.update_lease_seconds)
        self.max_attempts = max(1, settings.update_max_attempts)
        self.retry_delay = dt.timedelta(seconds=settings.update_retry_seconds)
        # Agent mode: a real cluster agent ends sessions (kabinet/agent_api.py); the update waits for it.
        self.agent_ends_sessions = settings.cluster_mode == "agent"

    def _scoped(self, query):
        return query.filter(database_id__in=self.database_ids) if self.database_ids is not None else query

    # ------------------------------------------------------------------ one pass

    async def step(self) -> int:
        """One pass, awaited to its end: quarantine, abandoned runs, then the due runs this worker can claim
        (up to `update_parallel_runs`), carried out together. How many runs were carried out."""
        await self.release_quarantine()
        await self.fail_abandoned()
        runs = await self.claim(self.settings.update_parallel_runs)
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
                        await self.release_quarantine()
                        await self.fail_abandoned()
                    if now >= next_monthly:
                        next_monthly = now + dt.timedelta(seconds=MONTHLY_CHECK_SECONDS)
                        await self.plan_missing_monthly_runs()
                    free = self.settings.update_parallel_runs - len(running)
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
            async with in_transaction() as connection:
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
            await actor.announcements.announce(self.broadcast)
        return moved

    async def plan_missing_monthly_runs(self, now: dt.datetime | None = None) -> int:
        """Plan the next run of every MONTHLY database that has none (a safety net: the mutations and the
        end of each run plan them). How many were planned."""
        now = now or utcnow()
        planned = 0
        for database_id in await update_schedules.databases_missing_a_monthly_run(self.database_ids):
            actor = SystemActor(ACTOR)
            async with in_transaction():
                if await update_schedules.plan_missing_monthly_run(actor, database_id, now) is not None:
                    planned += 1
            await actor.announcements.announce(self.broadcast)
        return planned

    async def fail_abandoned(self, now: dt.datetime | None = None) -> int:
        """RUNNING runs whose lease ran out on their last allowed attempt → FAILED. How many."""
        now = now or utcnow()
        candidates = await self._scoped(UpdateRun.filter(
            status=UpdateRunStatus.RUNNING, lease_expires_at__lt=now, attempts__gte=self.max_attempts
        )).values_list("id", flat=True)
        failed = 0
        for run_id in candidates:
            actor = SystemActor(ACTOR)
            async with in_transaction():
                run = await update_runs.abandoned(actor, run_id, now)
                if run is None:
                    continue
                await update_schedules.follow_up(actor, run, now)
                failed += 1
            await actor.announcements.announce(self.broadcast)
        return failed

    # ------------------------------------------------------------------ claims

    async def claim(self, limit: int, now: dt.datetime | None = None) -> list[UpdateRun]:
        """Lease up to `limit` runs to this worker: due SCHEDULED ones, and RUNNING ones whose lease ran out."""
        if limit <= 0:
            return []
        now = now or utcnow()
        claimable = Q(status=UpdateRunStatus.SCHEDULED, scheduled_for__lte=now) | Q(
            status=UpdateRunStatus.RUNNING, lease_expires_at__lt=now, attempts__lt=self.max_attempts
        )
        actor = SystemActor(ACTOR)
        claimed: list[UpdateRun] = []
        async with in_transaction():
            # Not of a database busy with another run (one whose worker holds a live lease).
            busy = Subquery(UpdateRun.filter(status=UpdateRunStatus.RUNNING, lease_expires_at__gte=now).values("database_id"))
            candidates = await self._scoped(UpdateRun.filter(claimable)).exclude(database_id__in=busy).order_by(
                "scheduled_for", "id"
            ).limit(limit).select_for_update(skip_locked=True, of=("update_run",))
            for run in candidates:
                # The database too: a database another worker is starting a run of is skipped for now.
                if await Database.filter(id=run.database_id).select_for_update(skip_locked=True).first() is None:
                    continue
                if await UpdateRun.filter(database_id=run.database_id, status=UpdateRunStatus.RUNNING).exclude(
                    id=run.id
                ).exists():
                    continue  # one run of a database at a time
                leased = await update_runs.leased(
                    actor, run.id, self.worker_id, now, now + self.lease, self.max_attempts
                )
                if leased is not None:
                    claimed.append(leased)
        await actor.announcements.announce(self.broadcast)
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
        database = await Database.get(id=run.database_id)
        target, release = await execution_target(run, database)
        if target is None or version_key(target) <= version_key(database.version):
            return await self._finish(
                lease, UpdateRunStatus.SUCCEEDED, f"Обновлять нечего: база уже на версии {database.version}.", None
            )

        await self._lock(lease, database, target, release)
        try:
            if self.agent_ends_sessions:
                await lease.guard(self._wait_for_the_agent(lease, database, target))
            elif pending := await self._request_terminations(lease, database, target):
                await lease.guard(asyncio.gather(*(self.cluster.end_session(s) for s in pending)))
                await self._sessions_ended(lease, pending)
            self._journal(run, database, target)
            await lease.guard(self.cluster.update_database(database, target, lambda p: self._progress(lease, p)))
        except (LeaseLost, Interrupted, asyncio.CancelledError):
            raise
        except Exception as error:  # noqa: BLE001 — the cluster (or a session end) failed: retry or fail
            log.warning("update run %s failed on attempt %s: %s", run.id, run.attempts, _reason(error))
            return await self._failed(lease, error)
        return await self._finish(
            lease, UpdateRunStatus.SUCCEEDED, f"Конфигурация обновлена до версии {target}.", target
        )

    async def _lock(self, lease: _Lease, database: Database, target: str, release: Any) -> None:
        """Lock the database against new sessions; the run's target is what is installed now."""
        actor = SystemActor(ACTOR)
        async with in_transaction():
            await update_runs.begin(
                actor, lease.claim, database.id, target, release.id if release else lease.run.release_id,
                utcnow() + self.lease,
            )
        await actor.announcements.announce(self.broadcast)

    async def _request_terminations(self, lease: _Lease, database: Database, target: str) -> list[Session]:
        """Ask every ACTIVE session of the database to end (TERMINATING, audited); the sessions asked to
        end (by this run or earlier by someone), still to be ended."""
        actor = SystemActor(ACTOR)
        async with in_transaction():
            if not await update_runs.still_held(lease.claim):
                raise LeaseLost
            await sessions.request_termination(
                actor, Q(database_id=database.id), requested_by=None,
                audit_details={"reason": "update", "updateRunId": str(lease.run.id), "targetVersion": target},
            )
            pending = await sessions.terminating_in(database.id)
        await actor.announcements.announce(self.broadcast)
        return pending

    async def _wait_for_the_agent(self, lease: _Lease, database: Database, target: str) -> None:
        """Agent mode: the cluster agent ends TERMINATING sessions (GET /cluster/terminations); wait until the
        database has none left, asking any session that appears meanwhile to end too. Too long: the attempt fails."""
        deadline = utcnow() + dt.timedelta(seconds=self.settings.update_sessions_timeout_seconds)
        while await self._request_terminations(lease, database, target):
            if utcnow() >= deadline:
                raise TimeoutError(
                    f"сеансы базы не завершились за {self.settings.update_sessions_timeout_seconds:g} с "
                    "(агент кластера их не завершил)"
                )
            await asyncio.sleep(AGENT_POLL_SECONDS)

    async def _sessions_ended(self, lease: _Lease, ended: list[Session]) -> None:
        actor = SystemActor(ACTOR)
        async with in_transaction():
            if not await update_runs.still_held(lease.claim):
                raise LeaseLost
            now = utcnow()
            for session in ended:
                await sessions.confirm_terminated(actor, session, now)
        await actor.announcements.announce(self.broadcast)

    async def _progress(self, lease: _Lease, progress: int) -> None:
        """The cluster's report: a higher progress (1-99) is stored and announced; then, if the worker is
        stopping, the run stops here (its step is done)."""
        actor = SystemActor(ACTOR)
        async with in_transaction():
            await update_runs.progressed(actor, lease.claim, progress, utcnow() + self.lease)
        await actor.announcements.announce(self.broadcast)
        if self.stop.is_set():
            raise Interrupted

    async def _finish(self, lease: _Lease, status: UpdateRunStatus, message: str, version: str | None) -> UpdateRunStatus:
        """The end of a run: SUCCEEDED (on `version`, when newer than the database's) or FAILED; then the schedule."""
        actor = SystemActor(ACTOR)
        async with in_transaction():
            database = await Database.filter(id=lease.run.database_id).select_for_update().first()
            now = utcnow()
            if status == UpdateRunStatus.SUCCEEDED:
                newer = version if version and database is not None and version_key(version) > version_key(database.version) else None
                run = await update_runs.succeeded(actor, lease.claim, lease.run.database_id, message, newer, now)
            else:
                run = await update_runs.failed(actor, lease.claim, lease.run.database_id, message, now)
            await update_schedules.follow_up(actor, run, now)
        await actor.announcements.announce(self.broadcast)
        log.info("update run %s %s: %s", run.id, status.value, message)
        return status

    async def _failed(self, lease: _Lease, error: BaseException) -> UpdateRunStatus:
        """A failed attempt: SCHEDULED again after a pause, or FAILED after the last allowed attempt."""
        attempts, reason = lease.run.attempts, _reason(error)
        if attempts >= self.max_attempts:
            return await self._finish(
                lease, UpdateRunStatus.FAILED,
                f"Обновление не удалось ({attempts} попытки из {self.max_attempts}): {reason}", None,
            )
        actor = SystemActor(ACTOR)
        async with in_transaction():
            await update_runs.retry_later(
                actor, lease.claim, lease.run.database_id,
                f"Попытка {attempts} из {self.max_attempts} не удалась: {reason}. Будет повторена.",
                utcnow() + self.retry_delay,
            )
        await actor.announcements.announce(self.broadcast)
        return UpdateRunStatus.SCHEDULED

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
