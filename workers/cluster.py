"""The 1C cluster: an interface, a simulated cluster for the embedded default, and the loop that
carries out terminations and (when simulated) makes sessions come and go over the day.

The simulated cluster runs only in the simulated mode (resolvers/cloud/cluster_mode.py: asked for, or the
embedded default's demo), and even then never in a database the provider sent: those databases'
sessions and terminations wait for a real cluster's agent."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Protocol

from broadcaster import Broadcast

from foundation.clock import utcnow
from foundation.settings import Settings
from resolvers.common.context import SystemActor
from resolvers.common.unit_of_work import change
from models.cloud import ClientKind, Database, Session, SessionStatus
from resolvers.cloud import cluster_mode
from resolvers.cloud import sessions
from workers.loop import every

log = logging.getLogger("kabinet.cluster")

MIN_ACTIVE_PER_ORGANIZATION = 3
MAX_ACTIVE_PER_ORGANIZATION = 14
SIMULATED_USERS = ("Кассир", "Оператор склада", "Менеджер", "Бухгалтер-кассир", "Кладовщик", "Экономист", "Юрист")
SIMULATED_HOSTS = ("PC-01", "PC-02", "PC-SKLAD-03", "NB-MANAGER", "PC-KASSA-02", "PC-OFFICE-07")

ProgressReport = Callable[[int], Awaitable[None]]


class Cluster(Protocol):
    """What kabinet asks of a 1C cluster."""

    async def end_session(self, session: Session) -> None: ...

    async def update_database(self, database: Database, target_version: str, report: ProgressReport) -> None: ...


class SimulatedCluster:
    """Ends sessions and updates databases after a believable pause; nothing real happens."""

    def __init__(self, step_seconds: float = 0.3) -> None:
        self.step_seconds = step_seconds

    async def end_session(self, session: Session) -> None:
        await asyncio.sleep(self.step_seconds)

    async def update_database(self, database: Database, target_version: str, report: ProgressReport) -> None:
        for progress in (10, 30, 55, 80, 95):
            await asyncio.sleep(self.step_seconds)
            await report(progress)


async def carry_out_terminations(cluster: Cluster, broadcast: Broadcast, limit: int = 50) -> int:
    """End every session asked to end (TERMINATING) in a database the simulated cluster may act in, and
    mark it TERMINATED: once, even with several workers."""
    done = 0
    for session in await sessions.awaiting_the_cluster(limit, within=cluster_mode.in_simulated_databases()):
        await cluster.end_session(session)
        actor = SystemActor("cluster worker")
        async with change(actor, broadcast):
            claimed = await sessions.confirm_terminated(actor, session, utcnow())
        done += claimed
    return done


async def simulate_churn(broadcast: Broadcast, rng: random.Random) -> None:
    """One step of people logging in and off, in a database picked at random among the simulated
    cluster's own (never one the provider sent)."""
    databases = await cluster_mode.simulated_databases().filter(locked_for_update=False)  # an update holds the rest
    if databases:
        await churn_in(rng.choice(databases), broadcast, rng)


async def churn_in(database: Database, broadcast: Broadcast, rng: random.Random) -> None:
    """A session starts in `database` or one of its organization's ends, never leaving the organization
    with fewer than three active sessions unless its limit holds it there. A start obeys the agent's admission rule (the subscription's
    sessions limit, the database's lock of new sessions: `sessions.start_if_admitted`); one it would
    refuse is not tried (someone logs off instead), rather than recorded REFUSED: these users are made up, and a REFUSED row each
    few seconds for a full subscription would bury the organization's real sessions on the dashboard."""
    org_id = database.organization_id
    active = await Session.filter(organization_id=org_id, status=SessionStatus.ACTIVE).order_by("started_at")
    starting = len(active) <= MIN_ACTIVE_PER_ORGANIZATION or (len(active) < MAX_ACTIVE_PER_ORGANIZATION and rng.random() < 0.5)
    actor = SystemActor("cluster worker")
    async with change(actor, broadcast):
        started = starting and await sessions.start_if_admitted(
            actor, database=database, now=utcnow(), organization_id=org_id, user_id=None,
            user_name=rng.choice(SIMULATED_USERS), client_kind=rng.choice(list(ClientKind)),
            host=rng.choice(SIMULATED_HOSTS), started_at=utcnow(),
        )
        if not started and active:
            # someone logs off instead, so a subscription at its limit keeps moving rather than freezing
            candidates = [s for s in active if s.user_id is None] or active
            await sessions.ended(actor, rng.choice(candidates), utcnow())


STEP_SECONDS = 0.5
MODE_READ_SECONDS = 5.0  # how soon this loop notices the deployment turned to agent mode (a first agent token)


async def run_cluster_worker(
    broadcast: Broadcast, stop: asyncio.Event, *, churn: float, cluster: Cluster | None = None, mode: str | None = None,
    settings: Settings | None = None,
) -> None:
    """Terminations every half second; with churn > 0, a login or logoff every ~8/churn seconds.

    In `agent` mode a real cluster agent reports sessions and carries out terminations over /cluster/…
    (kabinet/agent_api/): this loop does nothing. The mode is `mode`, or the deployment's
    (resolvers/cloud/cluster_mode.py) read every MODE_READ_SECONDS; a change is logged with its reason
    (start-up logs the first: kabinet/app.py, `kabinet worker`).
    """
    cluster = cluster or SimulatedCluster()
    rng = random.Random()
    next_churn = next_mode_read = utcnow()
    current = mode

    async def step() -> str | None:
        """Terminations and churn, unless the deployment is in agent mode; the mode it is in."""
        nonlocal next_churn, next_mode_read, current
        if mode is None and utcnow() >= next_mode_read:
            next_mode_read = utcnow() + dt.timedelta(seconds=MODE_READ_SECONDS)
            read = await cluster_mode.read(settings)
            if current is not None and read.mode != current:
                log.info(read.line())
            current = read.mode
        if current == "agent":
            return current
        await carry_out_terminations(cluster, broadcast)
        if churn > 0 and utcnow() >= next_churn:
            await simulate_churn(broadcast, rng)
            next_churn = utcnow() + dt.timedelta(seconds=rng.expovariate(churn / 8.0))
        return current

    await every(
        STEP_SECONDS, step, stop, log=log, failed="cluster step failed",
        pause=lambda current: MODE_READ_SECONDS if current == "agent" else STEP_SECONDS,
    )
