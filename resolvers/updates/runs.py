"""The lifecycle of an update run: every change of its status is one function here.

QUARANTINE (after a release) or SCHEDULED → RUNNING (claimed by a worker under a lease) → progress →
SUCCEEDED or FAILED, or SCHEDULED again to retry; a planned run may be CANCELLED or SKIPPED instead.
Each function writes the row and records the run's updateRuns event through the actor, in the
caller's transaction: a mutation's RequestContext announces it on commit, a worker's (or the cluster
agent API's) SystemActor when it announces after its commit. Schedules (resolvers/updates/schedules.py),
releases (resolvers/updates/releases.py) and the executors — the update worker and the cluster agent, through
resolvers/updates/jobs.py — decide *when*; this says *how*.

An executor's writes are fenced by its `Claim`: (status RUNNING, lease owner, attempts, fence) as
claimed. The fence is random per claim (`leased`), so an executor that lost its lease changes nothing
(`LeaseLost`), and nobody acts on a claim whose fence they were not given.
"""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tortoise.expressions import F, Q

from models.cloud import Database
from models.updates import PLANNED_RUN_STATUSES, Release, UpdateRun, UpdateRunStatus
from resolvers.common.gates import page_request, wants_total
from resolvers.common.context import Actor, RequestContext
from events.log import UPDATES, run_payload
from resolvers.common.pagination import Ordering, load_pages
from resolvers.common import notifications
from models.updates import SCHEDULE_ORIGINS, UpdateRunOrigin

RUN_ORDER = Ordering(("-scheduled_for",))
MESSAGE_LENGTH = 500


class LeaseLost(Exception):
    """Another worker owns the run now (or it changed under us): nothing was written."""


@dataclass(frozen=True)
class Claim:
    """A worker's hold on a RUNNING run, as it claimed it."""

    run_id: uuid.UUID
    owner: str
    attempts: int
    fence: str | None  # the fencing token `leased` drew (None: a run leased before fences were drawn)

    @classmethod
    def of(cls, run: UpdateRun) -> Claim:
        return cls(run.id, run.lease_owner, run.attempts, run.lease_fence)

    def fenced(self):
        """The run, only while it is still this claim's."""
        fence = {"lease_fence": self.fence} if self.fence is not None else {"lease_fence__isnull": True}
        return UpdateRun.filter(
            id=self.run_id, status=UpdateRunStatus.RUNNING, lease_owner=self.owner, attempts=self.attempts, **fence
        )


def new_fence() -> str:
    """A claim's fencing token: 192 random bits, never guessed from the run or the attempt."""
    return secrets.token_urlsafe(24)


def message(text: str) -> str:
    """A run's message, cut to what the column holds."""
    return text if len(text) <= MESSAGE_LENGTH else text[: MESSAGE_LENGTH - 1] + "…"


async def runs_of(ctx: RequestContext, databases: list[Database], args: dict[str, Any]) -> list:
    pages = await load_pages(
        UpdateRun, "database_id", [d.id for d in databases], RUN_ORDER, page_request(ctx, args),
        with_total=wants_total(args),
    )
    return [pages[d.id] for d in databases]


# ---------------------------------------------------------------------------------------- events


async def by_id(run_id: uuid.UUID | None) -> UpdateRun | None:
    return await UpdateRun.get_or_none(id=run_id) if run_id else None


async def _recorded(actor: Actor, runs: Iterable[UpdateRun]) -> list[UpdateRun]:
    """One updateRuns event per run, with the run as it is now, in the run's organization."""
    runs = list(runs)
    for run in runs:
        await actor.record_event(run.organization_id, UPDATES, "CHANGED", run_payload(run))
    return runs


async def _reread(actor: Actor, ids: Iterable[uuid.UUID]) -> list[UpdateRun]:
    """The runs as they are after a bulk change, their events recorded."""
    ids = list(ids)
    return await _recorded(actor, await UpdateRun.filter(id__in=ids).order_by("scheduled_for", "id")) if ids else []


# ---------------------------------------------------------------------------------------- planned runs


async def seed(**fields: Any) -> UpdateRun:
    """A run as it stands (demo history), with no event: nobody is subscribed before the data exists."""
    return await UpdateRun.create(**fields)


def of_schedule() -> Q:
    """The runs a schedule planned (not a member's one-off beside it): a change of mode, a release and
    the next month's run look at these only."""
    return Q(origin__isnull=True) | Q(origin__in=list(SCHEDULE_ORIGINS))


async def plan(
    actor: Actor, database: Database, scheduled_for: dt.datetime, target_version: str | None, origin: UpdateRunOrigin,
) -> UpdateRun:
    """A new SCHEDULED run of the database at `scheduled_for`, planned by `origin` (the schedule's mode,
    or ONE_OFF: a member's one-off update beside the schedule)."""
    run = await UpdateRun.create(
        organization_id=database.organization_id, database=database, status=UpdateRunStatus.SCHEDULED,
        scheduled_for=scheduled_for, target_version=target_version, origin=origin,
    )
    await notifications.update_scheduled(actor, run)
    return (await _recorded(actor, [run]))[0]


async def quarantine(actor: Actor, release: Release, databases: Iterable[Database], until: dt.datetime) -> list[UpdateRun]:
    """New runs to `release`, one per database, held in QUARANTINE until `until` (one statement)."""
    runs = [
        UpdateRun(
            organization_id=database.organization_id, database_id=database.id, release=release,
            target_version=release.version, status=UpdateRunStatus.QUARANTINE, scheduled_for=until,
            origin=UpdateRunOrigin.ON_RELEASE,
        )
        for database in databases
    ]
    if runs:
        await UpdateRun.bulk_create(runs)
    return await _recorded(actor, runs)


async def cancel(actor: Actor, run_ids: Iterable[uuid.UUID], reason: str) -> list[UpdateRun]:
    """Planned runs → CANCELLED with `reason`; a run that is no longer planned is left as it is.
    The runs, as they are now."""
    ids = list(run_ids)
    if ids:
        await UpdateRun.filter(id__in=ids, status__in=list(PLANNED_RUN_STATUSES)).update(
            status=UpdateRunStatus.CANCELLED, message=reason
        )
    return await _reread(actor, ids)


async def cancel_planned(actor: Actor, database_id: uuid.UUID, reason: str) -> list[UpdateRun]:
    """Cancel every run the database's schedule planned (a one-off beside it stays)."""
    ids = await UpdateRun.filter(
        of_schedule(), database_id=database_id, status__in=list(PLANNED_RUN_STATUSES)
    ).values_list("id", flat=True)
    return await cancel(actor, ids, reason)


async def skip(actor: Actor, run: UpdateRun, reason: str) -> bool:
    """A planned run → SKIPPED; False (nothing changed) when it is no longer planned. `run` is re-read."""
    changed = await UpdateRun.filter(id=run.id, status__in=list(PLANNED_RUN_STATUSES)).update(
        status=UpdateRunStatus.SKIPPED, message=reason
    )
    await run.refresh_from_db()
    if changed:
        await _recorded(actor, [run])
    return bool(changed)


async def schedule_at(actor: Actor, run: UpdateRun, moment: dt.datetime) -> UpdateRun | None:
    """A planned run (e.g. out of quarantine) → SCHEDULED at `moment`; None when it is no longer planned."""
    changed = await UpdateRun.filter(id=run.id, status__in=list(PLANNED_RUN_STATUSES)).update(
        status=UpdateRunStatus.SCHEDULED, scheduled_for=moment
    )
    if not changed:
        return None
    run.status, run.scheduled_for = UpdateRunStatus.SCHEDULED, moment
    await notifications.update_scheduled(actor, run)
    return (await _recorded(actor, [run]))[0]


async def retarget(actor: Actor, run: UpdateRun, target_version: str | None) -> UpdateRun:
    """A planned run now updates to `target_version` (its release was recalled)."""
    run.target_version = target_version
    await run.save(update_fields=["target_version"])
    return (await _recorded(actor, [run]))[0]


# ---------------------------------------------------------------------------------------- a worker's runs


async def leased(
    actor: Actor, run_id: uuid.UUID, owner: str, now: dt.datetime, lease_until: dt.datetime, max_attempts: int
) -> UpdateRun | None:
    """A due SCHEDULED run → RUNNING under `owner`'s lease (a new attempt), or a RUNNING run whose lease
    ran out taken over (its progress kept: it never goes down), with a new fence. None when neither
    applies any more."""
    lease = {"lease_owner": owner, "lease_expires_at": lease_until, "attempts": F("attempts") + 1, "lease_fence": new_fence()}
    changed = await UpdateRun.filter(id=run_id, status=UpdateRunStatus.SCHEDULED, scheduled_for__lte=now).update(
        status=UpdateRunStatus.RUNNING, started_at=now, finished_at=None, progress=0, **lease
    )
    if not changed:
        changed = await UpdateRun.filter(
            id=run_id, status=UpdateRunStatus.RUNNING, lease_expires_at__lt=now, attempts__lt=max_attempts,
        ).update(**lease)
    if not changed:
        return None
    return (await _recorded(actor, [await UpdateRun.get(id=run_id)]))[0]


async def renew_lease(claim: Claim, until: dt.datetime) -> bool:
    """The heartbeat: the lease lasts until `until`; False when the claim is lost."""
    return bool(await claim.fenced().update(lease_expires_at=until))


async def still_held(claim: Claim) -> bool:
    return await claim.fenced().exists()


async def _lock_database(database_id: uuid.UUID) -> Database | None:
    """The run's database row, locked (FOR UPDATE on PostgreSQL) as every change of its runs does."""
    return await Database.filter(id=database_id).select_for_update().first()


async def targeted(
    actor: Actor, claim: Claim, target: str, release_id: uuid.UUID | None, lease_until: dt.datetime
) -> UpdateRun:
    """The claimed run installs `target` (of `release_id`), decided as it starts; its event when that changed."""
    before = await claim.fenced().first()
    if before is None or not await claim.fenced().update(
        target_version=target, release_id=release_id, lease_expires_at=lease_until
    ):
        raise LeaseLost
    run = await UpdateRun.get(id=claim.run_id)
    if before.target_version != target:
        await _recorded(actor, [run])
    return run


async def hold_database(claim: Claim, database_id: uuid.UUID, held: bool) -> None:
    """While the claim holds: the run's database locked against new sessions (`held`) or admitting them again."""
    await _lock_database(database_id)
    if not await claim.fenced().exists():
        raise LeaseLost
    await Database.filter(id=database_id).update(locked_for_update=held)


async def begin(
    actor: Actor, claim: Claim, database_id: uuid.UUID, target: str, release_id: uuid.UUID | None, lease_until: dt.datetime
) -> None:
    """The run starts installing `target` (of `release_id`): its database is locked against new sessions."""
    await _lock_database(database_id)
    await targeted(actor, claim, target, release_id, lease_until)
    await hold_database(claim, database_id, True)


async def progressed(actor: Actor, claim: Claim, progress: int, lease_until: dt.datetime) -> bool:
    """A higher progress (clamped to 0-99) reported by the cluster; whether it was higher."""
    progress = max(0, min(99, int(progress)))
    changed = await claim.fenced().filter(progress__lt=progress).update(progress=progress, lease_expires_at=lease_until)
    if not changed:
        if not await claim.fenced().exists():
            raise LeaseLost
        return False
    await _recorded(actor, [await UpdateRun.get(id=claim.run_id)])
    return True


async def stepped(actor: Actor, claim: Claim, progress: int, text: str, lease_until: dt.datetime) -> UpdateRun:
    """A step the cluster agent reports: its message, and its progress when higher (0-99; 100 is the
    result's); the lease renewed. Always an event: subscribers follow the steps."""
    before = await claim.fenced().first()
    if before is None:
        raise LeaseLost
    progress = max(before.progress, max(0, min(99, int(progress))))
    if not await claim.fenced().update(progress=progress, message=message(text), lease_expires_at=lease_until):
        raise LeaseLost
    return (await _recorded(actor, [await UpdateRun.get(id=claim.run_id)]))[0]


async def _ended(actor: Actor, run_id: uuid.UUID, database_id: uuid.UUID, new_version: str | None = None) -> UpdateRun:
    """The run's database unlocked (and on `new_version`, when given); the run's event."""
    await Database.filter(id=database_id).update(
        locked_for_update=False, **({"version": new_version} if new_version else {})
    )
    return (await _recorded(actor, [await UpdateRun.get(id=run_id)]))[0]


async def succeeded(
    actor: Actor, claim: Claim, database_id: uuid.UUID, text: str, new_version: str | None, now: dt.datetime
) -> UpdateRun:
    """RUNNING → SUCCEEDED (progress 100); the database unlocked, on `new_version` when one was installed
    (the caller compares versions: resolvers/updates/releases.py)."""
    await _lock_database(database_id)
    if not await claim.fenced().update(
        status=UpdateRunStatus.SUCCEEDED, finished_at=now, message=message(text), lease_expires_at=None, progress=100,
    ):
        raise LeaseLost
    run = await _ended(actor, claim.run_id, database_id, new_version)
    await notifications.update_done(actor, run)
    return run


async def failed(actor: Actor, claim: Claim, database_id: uuid.UUID, text: str, now: dt.datetime) -> UpdateRun:
    """RUNNING → FAILED after its last allowed attempt; the database unlocked."""
    await _lock_database(database_id)
    if not await claim.fenced().update(
        status=UpdateRunStatus.FAILED, finished_at=now, message=message(text), lease_expires_at=None,
    ):
        raise LeaseLost
    run = await _ended(actor, claim.run_id, database_id)
    await notifications.update_failed(actor, run)
    return run


async def retry_later(actor: Actor, claim: Claim, database_id: uuid.UUID, text: str, retry_at: dt.datetime) -> UpdateRun:
    """A failed attempt: RUNNING → SCHEDULED again at `retry_at`, lease dropped, the database unlocked."""
    await _lock_database(database_id)
    if not await claim.fenced().update(
        status=UpdateRunStatus.SCHEDULED, scheduled_for=retry_at, progress=0, lease_owner=None, lease_expires_at=None,
        message=message(text),
    ):
        raise LeaseLost
    return await _ended(actor, claim.run_id, database_id)


async def interrupted(claim: Claim, now: dt.datetime) -> bool:
    """The worker stops: the run stays RUNNING (its database locked), its lease given back for another
    worker to go on at once; the attempt does not count. No event: nothing a client sees changed."""
    return bool(await claim.fenced().update(lease_expires_at=now, lease_owner=None, attempts=F("attempts") - 1))


async def abandoned(actor: Actor, run_id: uuid.UUID, now: dt.datetime) -> UpdateRun | None:
    """A RUNNING run whose lease ran out on its last attempt (its worker died) → FAILED, the database
    unlocked. None when it is not such a run any more, or another worker is deciding it (row locked)."""
    run = await UpdateRun.filter(
        id=run_id, status=UpdateRunStatus.RUNNING, lease_expires_at__lt=now
    ).select_for_update(skip_locked=True).first()
    if run is None:
        return None
    await UpdateRun.filter(id=run.id).update(
        status=UpdateRunStatus.FAILED, finished_at=now, lease_expires_at=None,
        message=message(
            f"Обновление прервано: исполнитель остановился {run.attempts} раз(а) подряд, "
            "не завершив обновление. Обратитесь к вашему менеджеру."
        ),
    )
    ended = await _ended(actor, run.id, run.database_id)
    await notifications.update_failed(actor, ended)
    return ended


async def taken_back(actor: Actor, run_id: uuid.UUID, now: dt.datetime, max_attempts: int, text: str) -> UpdateRun | None:
    """A RUNNING run whose cluster agent's lease ran out before its last attempt → SCHEDULED again at once
    (the attempt counted), its database unlocked, for an agent to claim anew. None when it is not such a
    run any more, or another process is deciding it (row locked)."""
    run = await UpdateRun.filter(
        id=run_id, status=UpdateRunStatus.RUNNING, lease_expires_at__lt=now, attempts__lt=max_attempts
    ).select_for_update(skip_locked=True).first()
    if run is None:
        return None
    await UpdateRun.filter(id=run.id).update(
        status=UpdateRunStatus.SCHEDULED, scheduled_for=now, progress=0, lease_owner=None, lease_expires_at=None,
        message=message(text),
    )
    return await _ended(actor, run.id, run.database_id)
