"""The real agent (cluster_agent: rac and the designer) against a real kabinet (the app in-process over
httpx's ASGI transport) and a stand-in cluster (tests/standins: rac and 1cv8 as processes, the
cluster's state in a JSON file, a log of every command they were given)."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from pathlib import Path

import httpx
import pytest

from cluster_agent.agent import Kabinet, carry_out
from cluster_agent.designer import Designer
from cluster_agent.onec import RacOneCCluster
from cluster_agent.rac import ClusterAdmin, Rac
from cluster_agent.sessions import RacCluster, SessionSync
from foundation.clock import utcnow
from models.cloud import Cluster, Database
from models.updates import Release, UpdateRun, UpdateRunStatus
from tests import agents, factories
from tests.standins.cluster import DESIGNER, MOSCOW, RAC, StandinCluster, update_template
from tests.test_agent_updates import LOGIN, PASSWORD, with_credentials

TARGET, INSTALLED = "3.0.151.7", "3.0.150.20"
ADMIN = ("cluster-admin", f"adm-{uuid.uuid4().hex}")


MADE: list[Database] = []  # this module's databases: no due run of theirs outlives its test


@pytest.fixture(autouse=True)
async def agent_mode(app, settings, monkeypatch):
    monkeypatch.setattr(settings, "cluster", "agent")
    monkeypatch.setattr(settings, "update_lease_seconds", 30)
    monkeypatch.setattr(settings, "update_retry_seconds", 0.0)
    monkeypatch.setattr(settings, "update_max_attempts", 2)
    yield
    # a failed attempt leaves its run SCHEDULED (due at once): another module's agent must not meet it
    await UpdateRun.filter(database_id__in=[d.id for d in MADE], status=UpdateRunStatus.SCHEDULED).delete()
    MADE.clear()


@pytest.fixture
def standin(tmp_path, monkeypatch) -> StandinCluster:
    cluster = StandinCluster(tmp_path / "cluster", admin=ADMIN) if (tmp_path / "cluster").mkdir() is None else None
    for key, value in cluster.environment().items():
        monkeypatch.setenv(key, value)
    return cluster


class Agent:
    """The agent's parts as `kabinet-agent` wires them, on the in-process kabinet and the stand-ins."""

    def __init__(self, app, token: str, standin: StandinCluster, name: str, templates: Path) -> None:
        self.kabinet = Kabinet("http://kabinet.test", token, transport=httpx.ASGITransport(app=app))
        self.rac = Rac(str(RAC), "localhost:1545", ClusterAdmin(*ADMIN))
        self.cluster = RacCluster(self.rac, MOSCOW)
        self.sync = SessionSync(self.kabinet, self.cluster, name)
        self.onec = RacOneCCluster(self.cluster, Designer(str(DESIGNER), "srv1c"), templates, self.sync)

    async def close(self) -> None:
        await self.kabinet.close()


async def updatable(org, standin: StandinCluster, templates: Path) -> Database:
    """A database on a cluster kabinet knows, its infobase in the stand-in cluster, its release's template."""
    database = await factories.create_database(org)
    database.configuration, database.version = f"Бухгалтерия {uuid.uuid4().hex[:6]}", INSTALLED
    database.cluster = await Cluster.create(name=f"c-{uuid.uuid4().hex[:8]}", time_zone="Europe/Moscow")
    database.infobase = f"buh_{uuid.uuid4().hex[:8]}"
    await database.save()
    MADE.append(database)
    await Release.create(configuration=database.configuration, version=TARGET, published_at=utcnow() - dt.timedelta(days=1))
    standin.add_infobase(database.infobase, user=LOGIN, password=PASSWORD,
                         configuration=database.configuration, version=INSTALLED)
    update_template(templates, database.configuration, TARGET, [INSTALLED])
    return database


async def claimed_run(agent: Agent, database: Database, org) -> tuple[dict, UpdateRun]:
    """A due run claimed by the agent (the schedule's own run, set for tomorrow, stays aside)."""
    await UpdateRun.filter(database_id=database.id).delete()
    row = await UpdateRun.create(organization_id=org.id, database=database, status=UpdateRunStatus.SCHEDULED,
                                 target_version=TARGET, scheduled_for=utcnow() - dt.timedelta(seconds=1))
    run = await agent.kabinet.claim(None, cluster=database.cluster.name)
    assert run is not None and run["database"]["infobase"] == database.infobase and run["credentials"] == {"login": LOGIN, "password": PASSWORD}
    return run, row


def option(argv: list[str], name: str) -> str | None:
    return next((a.split("=", 1)[1] for a in argv if a.startswith(f"--{name}=")), None)


# ---------------------------------------------------------------------------------------- the update walk


async def test_an_update_walks_lock_end_sessions_update_unlock_and_reads_the_version_back(
    app, gql, standin, tmp_path, caplog
):
    caplog.set_level(logging.DEBUG, logger="cluster_agent")
    org, team = await factories.create_team()
    templates = tmp_path / "templates"
    database = await updatable(org, standin, templates)
    await with_credentials(gql, org, team, database)
    working = standin.start_session(database.infobase, "Бухгалтер")
    agent = Agent(app, await agents.issue([org]), standin, database.cluster.name, templates)
    try:
        run, run_row = await claimed_run(agent, database, org)
        status = await carry_out(agent.kabinet, agent.onec, run)
    finally:
        await agent.close()
    assert status == "SUCCEEDED", caplog.text[-3000:]

    infobase = standin.infobase(database.infobase)
    assert (infobase["version"], infobase["sessions_deny"], infobase["scheduled_jobs_deny"]) == (TARGET, "off", "off")
    assert working not in standin.session_ids(), "the session was ended in the cluster"
    lock, unlock = standin.calls("infobase", "update")
    assert (option(lock, "sessions-deny"), option(lock, "scheduled-jobs-deny")) == ("on", "on")
    assert option(lock, "denied-message") and len(option(lock, "permission-code") or "") >= 16
    assert (option(lock, "infobase-user"), option(lock, "infobase-pwd")) == (LOGIN, PASSWORD)
    assert (option(unlock, "sessions-deny"), option(unlock, "permission-code")) == ("off", "")
    assert [option(c, "session") for c in standin.calls("session", "terminate")][:1] == [working]
    designer = standin.commands("1cv8")
    assert [next(a for a in argv if a in ("/UpdateCfg", "/UpdateDBCfg", "/DumpConfigToFiles")) for argv in designer] == [
        "/UpdateCfg", "/UpdateDBCfg", "/DumpConfigToFiles"]
    assert all(argv[argv.index("/UC") + 1] == option(lock, "permission-code") for argv in designer), "the lock's code lets it in"

    await database.refresh_from_db()
    assert (database.version, database.locked_for_update) == (TARGET, False)
    await run_row.refresh_from_db()
    assert run_row.status == UpdateRunStatus.SUCCEEDED
    messages = await run_messages(run_row)
    assert "Обновление конфигурации успешно завершено" in messages, "the designer's log at the step boundary"
    assert "Обновление конфигурации базы данных успешно завершено" in messages
    assert f"Установлена версия {TARGET}." in messages
    for secret in (PASSWORD, ADMIN[1], option(lock, "permission-code")):
        assert secret not in caplog.text, "no credential in the agent's log"


async def test_a_failing_designer_fails_the_attempt_with_its_messages_and_unlocks(app, gql, standin, tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="cluster_agent")
    org, team = await factories.create_team()
    templates = tmp_path / "templates"
    database = await updatable(org, standin, templates)
    await with_credentials(gql, org, team, database)
    standin.set(designer_failure=f"Недостаточно места на диске (пароль {PASSWORD} не помог)")
    agent = Agent(app, await agents.issue([org]), standin, "main", templates)
    try:
        run, run_row = await claimed_run(agent, database, org)
        status = await carry_out(agent.kabinet, agent.onec, run)
    finally:
        await agent.close()
    assert status == "SCHEDULED", "a retry comes"
    await run_row.refresh_from_db()
    assert "Недостаточно места на диске" in run_row.message and PASSWORD not in run_row.message
    infobase = standin.infobase(database.infobase)
    assert (infobase["version"], infobase["sessions_deny"]) == (INSTALLED, "off"), "unlocked after the failure"
    assert PASSWORD not in caplog.text


async def test_an_update_with_no_template_for_the_release_fails_before_touching_the_configuration(app, gql, standin, tmp_path):
    org, team = await factories.create_team()
    database = await updatable(org, standin, tmp_path / "templates")
    await with_credentials(gql, org, team, database)
    agent = Agent(app, await agents.issue([org]), standin, "main", tmp_path / "elsewhere")
    try:
        run, run_row = await claimed_run(agent, database, org)
        await carry_out(agent.kabinet, agent.onec, run)
    finally:
        await agent.close()
    await run_row.refresh_from_db()
    assert "нет файла обновления" in run_row.message and standin.commands("1cv8") == []
    assert standin.infobase(database.infobase)["sessions_deny"] == "off"


async def run_messages(run) -> list[str]:
    from models.events import OrganizationEvent
    from events.log import UPDATES

    events = await OrganizationEvent.filter(organization_id=run.organization_id, topic=UPDATES).order_by("seq")
    return [e.payload["message"] for e in events if e.payload["id"] == str(run.id)]


async def test_a_database_not_attached_to_an_infobase_is_not_guessed(app, gql, standin, tmp_path):
    org, team = await factories.create_team()
    database = await updatable(org, standin, tmp_path / "templates")
    await with_credentials(gql, org, team, database)
    agent = Agent(app, await agents.issue([org]), standin, database.cluster.name, tmp_path / "templates")
    try:
        run, run_row = await claimed_run(agent, database, org)
        run["database"]["infobase"] = None  # as kabinet answers for a database with no infobase named
        await carry_out(agent.kabinet, agent.onec, run)
    finally:
        await agent.close()
    await run_row.refresh_from_db()
    assert "kabinet cluster attach" in run_row.message
    assert standin.calls("infobase", "update") == [] and standin.commands("1cv8") == []
