"""The update worker: due runs are claimed with a lease, sessions end, progress streams, the version changes;
failures are retried a bounded number of times; a dead worker's run is taken over. And every change of a
run is an updateRuns event, from the mutations as from the worker."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import time
import uuid

import pytest
from tortoise.transactions import in_transaction

from foundation.clock import utcnow
from events.log import UPDATES
from models.audit import AuditEntry
from models.cloud import Database, Session, SessionStatus
from models.events import OrganizationEvent
from models.organizations import Role
from models.updates import Release, UpdateMode, UpdateRun, UpdateRunStatus, UpdateSchedule
from foundation.ids import to_global_id
from tests import factories
from tests.live import TRANSPORT_WS, GraphQLSocket
from workers.cluster import SimulatedCluster
from workers.updates import UpdateWorker

ON_POSTGRES = bool(os.environ.get("KABINET_TEST_DATABASE_URL"))
UPDATE_RUNS = """subscription($org: ID!, $db: ID) { updateRuns(organizationId: $org, databaseId: $db) {
  id status progress targetVersion message database { id } } }"""
SCHEDULE = """mutation($input: ScheduleUpdateInput!) { scheduleUpdate(input: $input) {
  database { id updateSchedule { mode nextRunAt } } userErrors { code field message } } }"""
DATABASE = """query($id: ID!) { node(id: $id) { ... on Database { version updateSchedule { mode runAt } } } }"""


class FailingCluster(SimulatedCluster):
    """A cluster that cannot update: each attempt gets as far as 30 % and breaks."""

    def __init__(self, reason: str = "Кластер 1С недоступен: соединение отклонено") -> None:
        super().__init__(step_seconds=0)
        self.reason, self.calls = reason, 0

    async def update_database(self, database, target_version, report) -> None:
        self.calls += 1
        await report(30)
        raise RuntimeError(self.reason)


class WatchingCluster(SimulatedCluster):
    """Notes how the database looked while it was being updated."""

    def __init__(self) -> None:
        super().__init__(step_seconds=0)
        self.seen: list[tuple[bool, int]] = []
        self.ended: list[uuid.UUID] = []

    async def end_session(self, session) -> None:
        self.ended.append(session.id)

    async def update_database(self, database, target_version, report) -> None:
        row = await Database.get(id=database.id)
        live = await Session.filter(database_id=database.id, status__in=[SessionStatus.ACTIVE, SessionStatus.TERMINATING]).count()
        self.seen.append((row.locked_for_update, live))
        await report(50)


class StallingCluster(SimulatedCluster):
    """Reports 20 %, then takes its time (the test decides what happens meanwhile)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(step_seconds=0)
        self.seconds = seconds

    async def update_database(self, database, target_version, report) -> None:
        await report(20)
        await asyncio.sleep(self.seconds)
        await report(60)


def configuration() -> str:
    return f"Конфигурация воркера {uuid.uuid4().hex[:8]}"


async def updatable_database(org, *, version: str = "3.0.150.20", newest: str | None = "3.0.151.7"):
    """A typical database of a configuration of its own, with a newer release of it out."""
    database = await factories.create_database(org)
    database.configuration, database.version = configuration(), version
    await database.save()
    if newest:
        await Release.create(configuration=database.configuration, version=newest, published_at=utcnow() - dt.timedelta(days=2))
    return database


async def due_run(database, *, target: str | None = "3.0.151.7", status=UpdateRunStatus.SCHEDULED, ago: int = 1, **fields):
    return await UpdateRun.create(
        organization_id=database.organization_id, database=database, status=status, target_version=target,
        scheduled_for=utcnow() - dt.timedelta(seconds=ago), **fields,
    )


def worker_for(app, settings, *databases, cluster=None, stop=None, worker_id=None, **overrides) -> UpdateWorker:
    """A worker of this test's databases only (other tests' runs are not its business); `overrides` of
    the settings (`mode="agent"`: KABINET_CLUSTER=agent)."""
    if "mode" in overrides:
        overrides["cluster"] = overrides.pop("mode")
    tuned = settings.model_copy(update={"update_retry_seconds": 0, "update_lease_seconds": 30, **overrides})
    return UpdateWorker(
        tuned, app.state.broadcast, stop, cluster=cluster or SimulatedCluster(step_seconds=0.01),
        worker_id=worker_id, database_ids=[d.id for d in databases],
    )


async def run_events(org) -> list[dict]:
    events = await OrganizationEvent.filter(organization_id=org.id, topic=UPDATES).order_by("seq")
    return [e.payload for e in events]


async def statuses_of(org, run) -> list[tuple[str, int]]:
    return [(p["status"], p["progress"]) for p in await run_events(org) if p["id"] == str(run.id)]


# ---------------------------------------------------------------------------------------- the whole flow, live


async def test_an_owner_watches_a_one_time_update_run_from_scheduled_to_succeeded(gql, app, settings, live_server):
    org, team = await factories.create_team()
    database = await updatable_database(org)
    email = team[Role.OWNER].email
    token = await gql.token_for_password(email, factories.PASSWORD)
    database_id = to_global_id("Database", database.id)
    socket = GraphQLSocket(live_server, TRANSPORT_WS)
    try:
        assert (await socket.connect(token))["type"] == "connection_ack"
        await socket.subscribe(UPDATE_RUNS, {"org": to_global_id("Organization", org.id), "db": database_id})
        await asyncio.sleep(0.3)  # the subscription joins the event hub
        run_at = (utcnow() + dt.timedelta(seconds=2)).isoformat()
        body = await gql.execute(SCHEDULE, {"input": {"databaseId": database_id, "mode": "ONCE", "runAt": run_at}}, as_user=email)
        assert body["data"]["scheduleUpdate"]["userErrors"] == [], body
        scheduled = (await socket.next_data())["data"]["updateRuns"]
        assert (scheduled["status"], scheduled["progress"], scheduled["targetVersion"]) == ("SCHEDULED", 0, "3.0.151.7")
        assert scheduled["database"]["id"] == database_id

        worker = worker_for(app, settings, database, cluster=SimulatedCluster(step_seconds=0.05))
        assert await worker.step() == 0, "not due yet"
        deadline = time.monotonic() + 10
        while not await worker.step():
            assert time.monotonic() < deadline, "the run never became due"
            await asyncio.sleep(0.2)

        seen = []
        while not seen or seen[-1]["status"] == "RUNNING":
            seen.append((await socket.next_data())["data"]["updateRuns"])
        assert all(s["id"] == scheduled["id"] for s in seen)
        assert [s["status"] for s in seen[:-1]] == ["RUNNING"] * (len(seen) - 1)
        progress = [s["progress"] for s in seen]
        assert progress == sorted(progress) and len(set(progress[:-1])) >= 4, progress
        assert seen[-1]["status"] == "SUCCEEDED" and seen[-1]["progress"] == 100
        assert "3.0.151.7" in seen[-1]["message"]
    finally:
        await socket.close()
    node = (await gql.execute(DATABASE, {"id": database_id}, as_user=email))["data"]["node"]
    assert node["version"] == "3.0.151.7"
    assert node["updateSchedule"] == {"mode": "DISABLED", "runAt": None}


# ---------------------------------------------------------------------------------------- execution


async def test_an_update_locks_the_database_and_ends_its_sessions_first(app, settings):
    org, _ = await factories.create_team()
    database = await updatable_database(org)
    other = await updatable_database(org)
    sessions = [await factories.create_session(database, user_name=name) for name in ("Бухгалтер", "Кассир")]
    bystander = await factories.create_session(other, user_name="Кладовщик")
    run = await due_run(database)
    cluster = WatchingCluster()
    await worker_for(app, settings, database, cluster=cluster).step()

    assert cluster.seen == [(True, 0)], "locked, and no session left, while the cluster updated"
    assert sorted(cluster.ended, key=str) == sorted((s.id for s in sessions), key=str)
    assert {s.status for s in await Session.filter(database_id=database.id)} == {SessionStatus.TERMINATED}
    assert (await Session.get(id=bystander.id)).status == SessionStatus.ACTIVE
    await database.refresh_from_db()
    assert (database.locked_for_update, database.version) == (False, "3.0.151.7")
    kinds = [e.kind for e in await OrganizationEvent.filter(organization_id=org.id, topic="sessions").order_by("seq")]
    assert kinds == ["TERMINATING", "TERMINATING", "TERMINATED", "TERMINATED"]
    audit = await AuditEntry.filter(organization_id=org.id, action="session.terminate")
    assert len(audit) == 2 and all(a.details["reason"] == "update" and a.details["updateRunId"] == str(run.id) for a in audit)


async def test_a_run_installs_the_newest_release_that_is_not_recalled_when_it_starts(app, settings):
    org, _ = await factories.create_team()
    database = await updatable_database(org, newest="3.0.151.7")
    run = await due_run(database, target="3.0.151.7")
    await Release.create(configuration=database.configuration, version="3.0.152.1", published_at=utcnow())
    await Release.create(configuration=database.configuration, version="3.0.153.1", published_at=utcnow(), recalled_at=utcnow())
    await worker_for(app, settings, database).step()
    await run.refresh_from_db()
    await database.refresh_from_db()
    assert (run.status, run.target_version, database.version) == (UpdateRunStatus.SUCCEEDED, "3.0.152.1", "3.0.152.1")


async def test_a_run_with_nothing_newer_to_install_succeeds_and_leaves_the_sessions(app, settings):
    org, _ = await factories.create_team()
    database = await updatable_database(org, version="3.0.151.7", newest="3.0.151.7")
    session = await factories.create_session(database)
    run = await due_run(database, target="3.0.151.7")
    cluster = WatchingCluster()
    await worker_for(app, settings, database, cluster=cluster).step()
    await run.refresh_from_db()
    assert (run.status, run.progress) == (UpdateRunStatus.SUCCEEDED, 100)
    assert "3.0.151.7" in run.message and cluster.seen == []
    assert (await Session.get(id=session.id)).status == SessionStatus.ACTIVE


async def test_every_change_of_a_run_is_an_update_runs_event_in_order(app, settings):
    org, _ = await factories.create_team()
    database = await updatable_database(org)
    run = await due_run(database)
    await worker_for(app, settings, database).step()
    changes = await statuses_of(org, run)
    assert changes[0] == ("RUNNING", 0) and changes[-1] == ("SUCCEEDED", 100)
    assert [p for _, p in changes] == sorted(p for _, p in changes)
    assert [s for s, _ in changes[1:-1]] == ["RUNNING"] * (len(changes) - 2) and len(changes) >= 6


async def test_a_monthly_run_plans_the_next_months_run_when_it_is_done(app, settings):
    org, _ = await factories.create_team()
    database = await updatable_database(org)
    await UpdateSchedule.filter(database_id=database.id).update(mode=UpdateMode.MONTHLY, day_of_month=5, time_of_day="02:00")
    run = await due_run(database)
    await worker_for(app, settings, database).step()
    planned = await UpdateRun.filter(database_id=database.id, status=UpdateRunStatus.SCHEDULED)
    assert len(planned) == 1 and planned[0].scheduled_for > utcnow()
    assert planned[0].scheduled_for.astimezone(dt.timezone(dt.timedelta(hours=3))).day == 5
    assert (await UpdateSchedule.get(database_id=database.id)).mode == UpdateMode.MONTHLY
    assert ("SCHEDULED", 0) in [(p["status"], p["progress"]) for p in await run_events(org) if p["id"] == str(planned[0].id)]
    assert (await UpdateRun.get(id=run.id)).status == UpdateRunStatus.SUCCEEDED


async def test_a_monthly_schedule_without_a_planned_run_gets_one(app, settings):
    org, _ = await factories.create_team()
    database = await updatable_database(org)
    await UpdateSchedule.filter(database_id=database.id).update(mode=UpdateMode.MONTHLY, day_of_month=20, time_of_day="04:00")
    worker = worker_for(app, settings, database)
    assert await worker.plan_missing_monthly_runs() == 1
    assert await worker.plan_missing_monthly_runs() == 0
    assert await UpdateRun.filter(database_id=database.id, status=UpdateRunStatus.SCHEDULED).count() == 1


async def test_in_agent_mode_the_worker_leaves_due_runs_to_the_cluster_agent(app, settings):
    org, _ = await factories.create_team()
    database = await updatable_database(org)
    session = await factories.create_session(database)
    run = await due_run(database)
    cluster = WatchingCluster()
    worker = worker_for(app, settings, database, cluster=cluster, mode="agent")
    assert await worker.step() == 0
    await run.refresh_from_db()
    assert (run.status, run.attempts, run.lease_owner) == (UpdateRunStatus.SCHEDULED, 0, None)
    assert cluster.seen == [] and (await Session.get(id=session.id)).status == SessionStatus.ACTIVE


async def test_in_agent_mode_a_run_whose_agent_went_silent_is_taken_back_then_failed(app, settings):
    org, _ = await factories.create_team()
    database = await updatable_database(org)
    expired = utcnow() - dt.timedelta(seconds=5)
    run = await due_run(
        database, status=UpdateRunStatus.RUNNING, attempts=1, lease_owner="agent:gone", lease_expires_at=expired,
        started_at=utcnow() - dt.timedelta(minutes=1), progress=40,
    )
    await Database.filter(id=database.id).update(locked_for_update=True)
    worker = worker_for(app, settings, database, mode="agent", update_max_attempts=2)
    assert await worker.step() == 0 and await worker.fail_abandoned() == 0, "taken back in the step's pass"
    await run.refresh_from_db()
    await database.refresh_from_db()
    assert (run.status, run.progress, run.lease_owner, run.attempts) == (UpdateRunStatus.SCHEDULED, 0, None, 1)
    assert run.scheduled_for <= utcnow() and "Агент кластера перестал отвечать" in run.message
    assert not database.locked_for_update

    await UpdateRun.filter(id=run.id).update(
        status=UpdateRunStatus.RUNNING, attempts=2, lease_owner="agent:gone", lease_expires_at=expired
    )  # claimed again by an agent that went silent too, on the last attempt
    assert await worker.fail_abandoned() == 1
    await run.refresh_from_db()
    assert run.status == UpdateRunStatus.FAILED
    assert [s for s, _ in await statuses_of(org, run)] == ["SCHEDULED", "FAILED"]


# ---------------------------------------------------------------------------------------- failures and retries


async def test_a_failing_update_is_retried_then_failed_with_the_reason(app, settings):
    org, _ = await factories.create_team()
    database = await updatable_database(org)
    await UpdateSchedule.filter(database_id=database.id).update(mode=UpdateMode.ONCE, run_at=utcnow())
    run = await due_run(database)
    cluster = FailingCluster()
    worker = worker_for(app, settings, database, cluster=cluster, update_max_attempts=3)
    for _ in range(3):
        assert await worker.step() == 1
    assert await worker.step() == 0, "no fourth attempt"
    await run.refresh_from_db()
    await database.refresh_from_db()
    assert cluster.calls == 3 and run.attempts == 3
    assert run.status == UpdateRunStatus.FAILED and run.finished_at is not None
    assert "Кластер 1С недоступен" in run.message and "3" in run.message
    assert (database.locked_for_update, database.version) == (False, "3.0.150.20")
    assert (await UpdateSchedule.get(database_id=database.id)).mode == UpdateMode.DISABLED
    statuses = [s for s, _ in await statuses_of(org, run)]
    assert statuses.count("SCHEDULED") == 2 and statuses[-1] == "FAILED"


async def test_a_failed_attempt_is_scheduled_again_a_few_minutes_later(app, settings):
    org, _ = await factories.create_team()
    database = await updatable_database(org)
    run = await due_run(database)
    await worker_for(app, settings, database, cluster=FailingCluster("нет места на диске"), update_retry_seconds=300).step()
    await run.refresh_from_db()
    await database.refresh_from_db()
    assert (run.status, run.attempts, run.progress) == (UpdateRunStatus.SCHEDULED, 1, 0)
    assert dt.timedelta(minutes=4) < run.scheduled_for - utcnow() <= dt.timedelta(minutes=5)
    assert "нет места на диске" in run.message and not database.locked_for_update


# ---------------------------------------------------------------------------------------- leases


async def test_a_run_whose_worker_died_is_taken_over_once_its_lease_runs_out(app, settings):
    org, _ = await factories.create_team()
    database = await updatable_database(org)
    run = await due_run(database)
    dead = worker_for(app, settings, database, worker_id="dead-worker", update_lease_seconds=0.5)
    assert [r.id for r in await dead.claim(1)] == [run.id]  # … and it dies before carrying it out
    survivor = worker_for(app, settings, database, worker_id="survivor")
    assert await survivor.claim(1) == [], "the lease still holds"
    await asyncio.sleep(0.6)
    assert await survivor.step() == 1
    await run.refresh_from_db()
    assert (run.status, run.lease_owner, run.attempts) == (UpdateRunStatus.SUCCEEDED, "survivor", 2)


async def test_a_worker_that_lost_its_lease_stops_without_writing(app, settings):
    org, _ = await factories.create_team()
    database = await updatable_database(org)
    run = await due_run(database)
    stalled = worker_for(app, settings, database, worker_id="stalled", cluster=StallingCluster(1.5), update_lease_seconds=0.6)
    [claimed] = await stalled.claim(1)
    execution = asyncio.create_task(stalled.execute(claimed))
    await asyncio.sleep(0.3)
    await UpdateRun.filter(id=run.id).update(lease_expires_at=utcnow() - dt.timedelta(seconds=1))  # it stalled
    other = worker_for(app, settings, database, worker_id="other")
    [taken] = await other.claim(1)
    assert taken.attempts == 2
    assert await asyncio.wait_for(execution, timeout=5) is None, "the stalled worker noticed and stopped"
    await run.refresh_from_db()
    assert (run.status, run.lease_owner, run.progress) == (UpdateRunStatus.RUNNING, "other", 20)
    assert await other.execute(taken) == UpdateRunStatus.SUCCEEDED


async def test_a_stopping_worker_finishes_its_step_and_gives_the_run_back(app, settings):
    org, _ = await factories.create_team()
    database = await updatable_database(org)
    run = await due_run(database)
    stop = asyncio.Event()
    leaving = worker_for(app, settings, database, worker_id="leaving", cluster=SimulatedCluster(step_seconds=0.2), stop=stop)
    [claimed] = await leaving.claim(1)
    execution = asyncio.create_task(leaving.execute(claimed))
    await asyncio.sleep(0.3)
    stop.set()
    assert await asyncio.wait_for(execution, timeout=5) is None
    await run.refresh_from_db()
    await database.refresh_from_db()
    assert run.status == UpdateRunStatus.RUNNING and 0 < run.progress < 100
    assert run.lease_expires_at <= utcnow() and run.attempts == 0, "given back, the attempt not counted"
    assert database.locked_for_update, "half updated: no sessions until another worker finishes"
    assert await worker_for(app, settings, database, worker_id="next").step() == 1
    await run.refresh_from_db()
    assert (run.status, run.attempts, run.lease_owner) == (UpdateRunStatus.SUCCEEDED, 1, "next")


async def test_a_run_abandoned_on_its_last_attempt_fails(app, settings):
    org, _ = await factories.create_team()
    database = await updatable_database(org)
    run = await due_run(
        database, status=UpdateRunStatus.RUNNING, attempts=3, lease_owner="gone",
        lease_expires_at=utcnow() - dt.timedelta(seconds=5), started_at=utcnow() - dt.timedelta(minutes=2),
    )
    await Database.filter(id=database.id).update(locked_for_update=True)
    worker = worker_for(app, settings, database, update_max_attempts=3)
    assert await worker.claim(5) == []
    assert await worker.fail_abandoned() == 1
    await run.refresh_from_db()
    await database.refresh_from_db()
    assert run.status == UpdateRunStatus.FAILED and "3" in run.message and not database.locked_for_update


async def test_one_database_never_has_two_runs_at_once(app, settings):
    org, _ = await factories.create_team()
    database = await updatable_database(org)
    first, second = await due_run(database, ago=20), await due_run(database, ago=10)
    worker = worker_for(app, settings, database)
    assert [r.id for r in await worker.claim(5)] == [first.id]
    assert await worker.claim(5) == []
    await UpdateRun.filter(id=first.id).update(status=UpdateRunStatus.SUCCEEDED)
    assert [r.id for r in await worker.claim(5)] == [second.id]


@pytest.mark.skipif(not ON_POSTGRES, reason="SKIP LOCKED is PostgreSQL's; SQLite has one writer")
async def test_concurrent_claimers_skip_the_runs_another_has_locked(app, settings):
    org, _ = await factories.create_team()
    databases = [await updatable_database(org) for _ in range(12)]
    runs = [await due_run(database) for database in databases]
    held = {r.id for r in runs[:4]}
    locked, release = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with in_transaction():
            await UpdateRun.filter(id__in=list(held)).select_for_update()
            locked.set()
            await release.wait()

    holder = asyncio.create_task(hold())
    await locked.wait()
    try:
        a = worker_for(app, settings, *databases, worker_id="a")
        b = worker_for(app, settings, *databases, worker_id="b")
        # The locks are held until `finally`: claimers that waited for them would never return.
        got_a, got_b = await asyncio.wait_for(asyncio.gather(a.claim(4), b.claim(4)), timeout=10)
    finally:
        release.set()
        await holder
    ids_a, ids_b = {r.id for r in got_a}, {r.id for r in got_b}
    assert len(ids_a) == 4 and len(ids_b) == 4 and not ids_a & ids_b
    assert not (ids_a | ids_b) & held
    owners = {r.id: r.lease_owner for r in await UpdateRun.filter(id__in=[r.id for r in runs])}
    assert all(owners[i] == "a" for i in ids_a) and all(owners[i] == "b" for i in ids_b)


# ---------------------------------------------------------------------------------------- quarantine


async def test_the_quarantine_ends_with_the_run_scheduled_at_the_schedules_time(app, settings):
    org, _ = await factories.create_team()
    database = await updatable_database(org, newest=None)
    await UpdateSchedule.filter(database_id=database.id).update(mode=UpdateMode.ON_RELEASE, time_of_day="03:00")
    release = await Release.create(configuration=database.configuration, version="3.0.160.1", published_at=utcnow() - dt.timedelta(hours=25))
    run = await UpdateRun.create(
        organization_id=org.id, database=database, release=release, target_version="3.0.160.1",
        status=UpdateRunStatus.QUARANTINE, scheduled_for=release.published_at + dt.timedelta(hours=24),
    )
    waiting = await UpdateRun.create(
        organization_id=org.id, database=database, release=release, target_version="3.0.160.1",
        status=UpdateRunStatus.QUARANTINE, scheduled_for=utcnow() + dt.timedelta(hours=1),
    )
    worker = worker_for(app, settings, database)
    assert await worker.release_quarantine() == 1
    await run.refresh_from_db()
    assert run.status == UpdateRunStatus.SCHEDULED and run.scheduled_for > utcnow()
    local = run.scheduled_for.astimezone(dt.timezone(dt.timedelta(hours=3)))
    assert (local.hour, local.minute) == (3, 0) and run.scheduled_for <= release.published_at + dt.timedelta(days=7)
    assert (await UpdateRun.get(id=waiting.id)).status == UpdateRunStatus.QUARANTINE
    assert ("SCHEDULED", 0) in await statuses_of(org, run)


# ---------------------------------------------------------------------------------------- events of the mutations


STAFF_PUBLISH = """mutation($c: String!, $v: String!) { publishRelease(configuration: $c, version: $v) {
  release { id } userErrors { code } } }"""
RECALL = """mutation($id: ID!) { recallRelease(releaseId: $id) { release { id } userErrors { code } } }"""
SKIP = """mutation($id: ID!) { skipUpdateRun(updateRunId: $id) { updateRun { id status } userErrors { code } } }"""


async def staff(gql) -> str:
    user = await factories.create_user(factories.unique_email("staff"))
    user.is_staff = True
    await user.save()
    await gql.token_for_password(user.email, factories.PASSWORD)
    return user.email


async def test_publishing_and_recalling_a_release_records_one_event_per_run_in_its_organization(gql):
    config = configuration()
    orgs = [(await factories.create_team())[0] for _ in range(2)]
    for org in orgs:
        database = await factories.create_database(org)
        await Database.filter(id=database.id).update(configuration=config)
        await UpdateSchedule.filter(database_id=database.id).update(mode=UpdateMode.ON_RELEASE, time_of_day="03:00")
    email = await staff(gql)
    published = (await gql.execute(STAFF_PUBLISH, {"c": config, "v": "3.0.170.1"}, as_user=email))["data"]["publishRelease"]
    assert published["userErrors"] == []
    for org in orgs:
        assert [(p["status"], p["target_version"]) for p in await run_events(org)] == [("QUARANTINE", "3.0.170.1")]
    recalled = (await gql.execute(RECALL, {"id": published["release"]["id"]}, as_user=email))["data"]["recallRelease"]
    assert recalled["userErrors"] == []
    for org in orgs:
        events = await run_events(org)
        assert [p["status"] for p in events] == ["QUARANTINE", "CANCELLED"] and events[0]["id"] == events[1]["id"]
        assert "отозван" in events[1]["message"]


async def test_changing_a_schedule_records_the_cancelled_and_the_planned_runs(gql):
    org, team = await factories.create_team()
    database = await factories.create_database(org)
    email = team[Role.OWNER].email
    await gql.token_for_password(email, factories.PASSWORD)
    database_id = to_global_id("Database", database.id)
    for mode, extra in (("MONTHLY", {"dayOfMonth": 3, "timeOfDay": "01:00"}), ("DISABLED", {})):
        body = await gql.execute(SCHEDULE, {"input": {"databaseId": database_id, "mode": mode, **extra}}, as_user=email)
        assert body["data"]["scheduleUpdate"]["userErrors"] == []
    events = await run_events(org)
    assert [p["status"] for p in events] == ["SCHEDULED", "CANCELLED"] and events[0]["id"] == events[1]["id"]


async def test_skipping_a_run_records_the_skipped_run_and_the_next_one(gql):
    org, team = await factories.create_team()
    database = await factories.create_database(org)
    email = team[Role.OWNER].email
    await gql.token_for_password(email, factories.PASSWORD)
    body = await gql.execute(SCHEDULE, {"input": {
        "databaseId": to_global_id("Database", database.id), "mode": "MONTHLY", "dayOfMonth": 7, "timeOfDay": "02:30",
    }}, as_user=email)
    assert body["data"]["scheduleUpdate"]["userErrors"] == []
    run = await UpdateRun.get(database_id=database.id, status=UpdateRunStatus.SCHEDULED)
    skipped = (await gql.execute(SKIP, {"id": to_global_id("UpdateRun", run.id)}, as_user=email))["data"]["skipUpdateRun"]
    assert skipped["userErrors"] == []
    events = await run_events(org)
    assert [p["status"] for p in events] == ["SCHEDULED", "SKIPPED", "SCHEDULED"]
    assert events[1]["id"] == str(run.id) and events[2]["id"] != str(run.id)
