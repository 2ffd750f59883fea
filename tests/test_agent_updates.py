"""Updates through the cluster agent: the reference agent (`python -m cluster_agent`, a process of its
own) claims a due run over HTTP, keeps its lease, walks warn_users → lock → end_sessions → update →
unlock, and reports the result; kabinet keeps the run's lifecycle and subscribers see every step.
The database's credentials reach the agent in the claim's answer only."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from cluster_agent.agent import MESSAGES
from foundation.clock import utcnow
from foundation.ids import to_global_id
from models.cloud import Database, Session, SessionStatus
from models.events import OrganizationEvent
from models.updates import Release, UpdateMode, UpdateRun, UpdateRunStatus, UpdateSchedule
from events.log import UPDATES
from tests import agents, factories
from tests.factories import Role
from tests.live import TRANSPORT_WS, GraphQLSocket
from tests.processes import stop
from workers.updates import UpdateWorker

ROOT = Path(__file__).resolve().parent.parent
AGENT: dict[str, str] = {}  # an agent token for every organization, issued once
LOGIN, PASSWORD = "Администратор", f"pw-{uuid.uuid4().hex}"
TARGET = "3.0.151.7"
UPDATE_RUNS = """subscription($org: ID!, $db: ID) { updateRuns(organizationId: $org, databaseId: $db) {
  id status progress message targetVersion } }"""
SCHEDULE = """mutation($input: ScheduleUpdateInput!) { scheduleUpdate(input: $input) { userErrors { code field message } } }"""


@pytest.fixture(autouse=True)
async def agent_mode(app, settings, monkeypatch):
    """The deployment has agents (agent mode), with short leases and no pause before a retry."""
    if not AGENT:
        AGENT.update(agents.bearer(await agents.issue()))
    monkeypatch.setattr(settings, "cluster", "agent")
    monkeypatch.setattr(settings, "update_lease_seconds", 1.5)
    monkeypatch.setattr(settings, "update_retry_seconds", 0.0)
    monkeypatch.setattr(settings, "update_max_attempts", 3)


class AgentProcess:
    """`python -m cluster_agent` in a process of its own with a token of its own for one organization
    (`token_name`: its name, the owner of its leases), its output in a file."""

    def __init__(self, url: str, directory: Path, token_name: str, token: str, *extra: str) -> None:
        self.token_name, self.log = token_name, directory / f"{token_name}.log"
        with self.log.open("wb") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "cluster_agent", "--simulate", "--url", f"http://{url}", "--poll-seconds", "0.2", *extra],
                cwd=ROOT, env={**os.environ, "KABINET_AGENT_TOKEN": token}, stdout=output, stderr=subprocess.STDOUT,
            )

    @classmethod
    async def start(cls, url: str, directory: Path, name: str, organization, *extra: str) -> AgentProcess:
        token_name = f"{name}-{uuid.uuid4().hex[:6]}"
        return cls(url, directory, token_name, await agents.issue([organization], name=token_name), *extra)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        stop(self.process)


async def until(condition, timeout: float = 30, what: str = "the condition", agent: AgentProcess | None = None):
    deadline = time.monotonic() + timeout
    while True:
        value = await condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}" + (f"\n{agent.output()}" if agent else ""))
        await asyncio.sleep(0.1)


async def updatable_database(org) -> Database:
    database = await factories.create_database(org)
    database.configuration, database.version = f"Конфигурация агента {uuid.uuid4().hex[:8]}", "3.0.150.20"
    await database.save()
    await Release.create(configuration=database.configuration, version=TARGET, published_at=utcnow() - dt.timedelta(days=2))
    return database


async def due_run(database) -> UpdateRun:
    return await UpdateRun.create(
        organization_id=database.organization_id, database=database, status=UpdateRunStatus.SCHEDULED,
        target_version=TARGET, scheduled_for=utcnow() - dt.timedelta(seconds=1),
    )


async def with_credentials(gql, org, team, database, run_at: dt.datetime | None = None) -> None:
    """scheduleUpdate, once, by the owner: ONCE at `run_at` with the database's 1C login and password."""
    email = team[Role.OWNER].email
    await gql.token_for_password(email, factories.PASSWORD)
    variables = {"input": {
        "databaseId": to_global_id("Database", database.id), "mode": "ONCE",
        "runAt": (run_at or utcnow() + dt.timedelta(days=1)).isoformat(), "baseLogin": LOGIN, "basePassword": PASSWORD,
    }}
    body = await gql.execute(SCHEDULE, variables, as_user=email)
    assert body["data"]["scheduleUpdate"]["userErrors"] == [], body


def step_of(message: str | None) -> str | None:
    """Which of the reference agent's steps a run's message tells of."""
    for step, text in MESSAGES.items():
        if message and (message == text.format(target=TARGET) or (step == "update" and message.startswith("Обновление конфигурации"))):
            return step
    return None


# ---------------------------------------------------------------------------------------- a whole update


async def test_the_reference_agent_carries_out_an_update_that_subscribers_follow_step_by_step(
    gql, client, live_server, tmp_path, caplog
):
    caplog.set_level(logging.DEBUG)
    org, team = await factories.create_team()
    database = await updatable_database(org)
    started = await client.post("/cluster/sessions/started", headers=AGENT, json={
        "databaseId": to_global_id("Database", database.id), "clusterSessionId": f"cl-{uuid.uuid4()}",
        "userName": "Бухгалтер", "clientKind": "THIN_CLIENT", "startedAt": utcnow().isoformat(),
    })
    assert started.status_code == 201, started.text
    email = team[Role.OWNER].email
    socket = GraphQLSocket(live_server, TRANSPORT_WS)
    agent = None
    try:
        assert (await socket.connect(await gql.token_for_password(email, factories.PASSWORD)))["type"] == "connection_ack"
        await socket.subscribe(UPDATE_RUNS, {"org": to_global_id("Organization", org.id), "db": to_global_id("Database", database.id)})
        await asyncio.sleep(0.3)  # the subscription joins the event hub
        # a few seconds ahead: a loaded machine may take one between reading the clock and the mutation
        await with_credentials(gql, org, team, database, run_at=utcnow() + dt.timedelta(seconds=4))
        scheduled = (await socket.next_data())["data"]["updateRuns"]
        assert scheduled["status"] == "SCHEDULED"

        agent = await AgentProcess.start(live_server, tmp_path, "agent-a", org, "--simulate-step-seconds", "0.05")
        seen = []
        while not seen or seen[-1]["status"] not in ("SUCCEEDED", "FAILED"):
            seen.append((await socket.next_data(timeout=30))["data"]["updateRuns"])
    finally:
        await socket.close()
        if agent:
            agent.stop()
    assert {s["id"] for s in seen} == {scheduled["id"]}
    assert seen[0]["status"] == "RUNNING" and seen[-1]["status"] == "SUCCEEDED", seen
    steps = [step_of(s["message"]) for s in seen[:-1] if step_of(s["message"])]
    walked = [step for i, step in enumerate(steps) if i == 0 or steps[i - 1] != step]
    assert walked == ["warn_users", "lock", "end_sessions", "update", "unlock"], [s["message"] for s in seen]
    progress = [s["progress"] for s in seen]
    assert progress == sorted(progress) and progress[-1] == 100
    assert f"Конфигурация обновлена до версии {TARGET}." == seen[-1]["message"]

    await database.refresh_from_db()
    assert (database.version, database.locked_for_update) == (TARGET, False)
    run = await UpdateRun.get(database_id=database.id, status=UpdateRunStatus.SUCCEEDED)
    assert (run.attempts, run.lease_owner) == (1, f"agent:{agent.token_name}")
    session = await Session.get(cluster_session_id=started.json()["session"]["clusterSessionId"])
    assert session.status == SessionStatus.TERMINATED, "the agent ended the session it was asked to end"
    assert (await UpdateSchedule.get(database_id=database.id)).mode == UpdateMode.DISABLED
    assert PASSWORD not in agent.output() and PASSWORD not in caplog.text, "credentials are never logged"


# ---------------------------------------------------------------------------------------- the protocol, call by call


async def test_credentials_are_in_the_claim_answer_only_and_a_second_agent_gets_nothing(gql, client, caplog):
    caplog.set_level(logging.DEBUG)
    org, team = await factories.create_team()
    database = await updatable_database(org)
    await with_credentials(gql, org, team, database)
    run = await due_run(database)
    codes = {"organizationCodes": [org.code]}
    first, second = agents.bearer(await agents.issue([org])), agents.bearer(await agents.issue([org]))

    claimed = await client.post("/cluster/updates/claim", headers=first, json=codes)
    assert claimed.status_code == 200, claimed.text
    job = claimed.json()["run"]
    assert job["id"] == to_global_id("UpdateRun", run.id) and job["attempt"] == 1 and len(job["fencingToken"]) >= 32
    assert job["credentials"] == {"login": LOGIN, "password": PASSWORD}
    assert (job["targetVersion"], job["database"]["version"], job["release"]["version"]) == (TARGET, "3.0.150.20", TARGET)
    assert job["status"] == "RUNNING" and job["steps"] == ["warn_users", "lock", "end_sessions", "update", "unlock"]

    assert (await client.post("/cluster/updates/claim", headers=second, json=codes)).json() == {"run": None}, "one run, one agent"
    path, claim = f"/cluster/updates/{job['id']}", {"fencingToken": job["fencingToken"]}
    for call, body in (("heartbeat", {}), ("step", {"step": "warn_users", "progress": 5, "message": "Скоро обновление."})):
        stolen = await client.post(f"{path}/{call}", headers=second, json={**claim, **body})
        assert (stolen.status_code, stolen.json()["error"]["code"]) == (409, "LEASE_LOST"), "the fence counts from its claimer only"

    answers = [
        await client.post(f"{path}/heartbeat", headers=first, json=claim),
        await client.post(f"{path}/step", headers=first, json={**claim, "step": "warn_users", "progress": 5}),
        await client.post(f"{path}/step", headers=first, json={**claim, "step": "lock", "progress": 10}),
        await client.post(f"{path}/result", headers=first, json={**claim, "outcome": "succeeded", "version": TARGET}),
    ]
    assert [a.status_code for a in answers] == [200, 200, 200, 200], [a.text for a in answers]
    assert all(PASSWORD not in a.text and LOGIN not in a.text and job["fencingToken"] not in a.text for a in answers)
    assert answers[-1].json()["run"]["status"] == "SUCCEEDED"
    again = await client.post(f"{path}/result", headers=first, json={**claim, "outcome": "succeeded", "version": TARGET})
    assert (again.status_code, again.json()["changed"]) == (200, False), "a repeated result changes nothing"
    assert PASSWORD not in caplog.text


async def test_steps_keep_their_order_and_the_lock_turns_new_sessions_away(client):
    org, _ = await factories.create_team()
    database = await updatable_database(org)
    session = await client.post("/cluster/sessions/started", headers=AGENT, json={
        "databaseId": to_global_id("Database", database.id), "clusterSessionId": f"cl-{uuid.uuid4()}",
        "userName": "Кассир", "clientKind": "THIN_CLIENT", "startedAt": utcnow().isoformat(),
    })
    await due_run(database)
    job = (await client.post("/cluster/updates/claim", headers=AGENT, json={"organizationCodes": [org.code]})).json()["run"]
    path, claim = f"/cluster/updates/{job['id']}", {"fencingToken": job["fencingToken"]}

    async def step(name: str, progress: int = 10):
        return await client.post(f"{path}/step", headers=AGENT, json={**claim, "step": name, "progress": progress})

    early = await step("update")
    assert (early.status_code, early.json()["error"]["code"]) == (409, "CONFLICT"), "no update before the lock"
    assert (await step("lock")).status_code == 200
    assert (await Database.get(id=database.id)).locked_for_update
    refused = await client.post("/cluster/sessions/started", headers=AGENT, json={
        "databaseId": to_global_id("Database", database.id), "clusterSessionId": f"cl-{uuid.uuid4()}",
        "userName": "Кладовщик", "clientKind": "THIN_CLIENT", "startedAt": utcnow().isoformat(),
    })
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "REFUSED"), "locked for the update"
    open_session = await step("update", 20)
    assert open_session.status_code == 409 and len(open_session.json()["sessions"]) == 1, "sessions first"
    ending = await step("end_sessions", 15)
    [pending] = ending.json()["sessions"]
    assert pending["clusterSessionId"] == session.json()["session"]["clusterSessionId"]
    assert (await client.post(f"/cluster/terminations/{pending['sessionId']}/done", headers=AGENT)).status_code == 200
    assert (await step("end_sessions", 15)).json()["sessions"] == []
    assert (await step("update", 60)).json()["run"]["progress"] == 60
    assert (await step("update", 40)).json()["run"]["progress"] == 60, "progress never goes down"
    assert (await step("unlock", 95)).status_code == 200
    assert not (await Database.get(id=database.id)).locked_for_update
    bad = await client.post(f"{path}/step", headers=AGENT, json={**claim, "step": "reboot"})
    assert (bad.status_code, bad.json()["error"]["field"]) == (400, "step")


# In the simulated mode an agent claims only what the simulator may not: tests/test_cluster_mode.py.


# ---------------------------------------------------------------------------------------- agents that die or fail


async def test_a_killed_agents_run_is_taken_back_when_its_lease_runs_out_and_finished_by_another(
    app, settings, live_server, tmp_path
):
    org, _ = await factories.create_team()
    database = await updatable_database(org)
    run = await due_run(database)
    slow = await AgentProcess.start(live_server, tmp_path, "agent-slow", org, "--simulate-step-seconds", "0.6")
    try:
        async def updating():
            await run.refresh_from_db()
            return run.status == UpdateRunStatus.RUNNING and step_of(run.message) == "update"
        await until(updating, what="the update step", agent=slow)
        slow.kill()
    finally:
        slow.stop()
    await database.refresh_from_db()
    assert database.locked_for_update, "killed mid-update: the database stays locked until the lease runs out"
    worker = UpdateWorker(settings, app.state.broadcast, database_ids=[database.id])
    await asyncio.sleep(settings.update_lease_seconds + 0.2)
    assert await worker.fail_abandoned() == 1
    await run.refresh_from_db()
    await database.refresh_from_db()
    assert (run.status, run.attempts, database.locked_for_update) == (UpdateRunStatus.SCHEDULED, 1, False)

    other = await AgentProcess.start(live_server, tmp_path, "agent-other", org, "--simulate-step-seconds", "0.05")
    try:
        async def done():
            await run.refresh_from_db()
            return run.status in (UpdateRunStatus.SUCCEEDED, UpdateRunStatus.FAILED)
        await until(done, what="the run to end", agent=other)
    finally:
        other.stop()
    await database.refresh_from_db()
    assert (run.status, run.attempts, run.lease_owner) == (UpdateRunStatus.SUCCEEDED, 2, f"agent:{other.token_name}")
    assert (database.version, database.locked_for_update) == (TARGET, False)


async def test_a_failed_update_is_retried_then_failed_with_the_agents_reason(settings, live_server, tmp_path, monkeypatch):
    monkeypatch.setattr(settings, "update_max_attempts", 2)
    org, _ = await factories.create_team()
    database = await updatable_database(org)
    run = await due_run(database)
    agent = await AgentProcess.start(live_server, tmp_path, "agent-failing", org, "--simulate-step-seconds", "0.05",
        "--simulate-failure", "нет места на диске",
    )
    try:
        async def failed():
            await run.refresh_from_db()
            return run.status == UpdateRunStatus.FAILED
        await until(failed, what="the run to fail", agent=agent)
    finally:
        agent.stop()
    await database.refresh_from_db()
    assert run.attempts == 2 and "нет места на диске" in run.message and "2" in run.message
    assert (database.version, database.locked_for_update) == ("3.0.150.20", False)
    messages = await run_messages(run)
    assert any(m and m.startswith("Попытка 1 из 2 не удалась: нет места на диске") for m in messages), messages


async def run_messages(run) -> list[str | None]:
    events = await OrganizationEvent.filter(organization_id=run.organization_id, topic=UPDATES).order_by("seq")
    return [e.payload["message"] for e in events if e.payload["id"] == str(run.id)]


def test_the_reference_agent_imports_nothing_of_kabinet():
    """A provider copies cluster_agent/ as it is: it talks HTTP only."""
    for path in (ROOT / "cluster_agent").glob("*.py"):
        source = path.read_text(encoding="utf-8")
        for package in ("kabinet", "resolvers", "models", "schema", "workers"):
            assert f"from {package}" not in source and f"import {package}" not in source, (path.name, package)
