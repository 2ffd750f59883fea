"""The real agent's session loop and terminations against a real kabinet (in-process over httpx's ASGI
transport, on the tests' database) and the stand-in cluster (tests/standins): sessions reported as
complete snapshots by rac's `session` UUID, a cluster or kabinet that goes away and comes back, and
terminations done, already gone or refused."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
import uuid

import httpx
import pytest

from cluster_agent.agent import Kabinet
from cluster_agent.rac import ClusterAdmin, Rac
from cluster_agent.sessions import RacCluster, SessionSync, every
from cluster_agent.terminations import Terminations
from foundation.ids import to_global_id
from models.cloud import Cluster, Database, Session, SessionStatus
from tests import agents, factories
from tests.factories import Role
from tests.standins.cluster import MOSCOW, RAC, StandinCluster

ADMIN = ("cluster-admin", f"adm-{uuid.uuid4().hex}")
TERMINATE = "mutation($id: ID!) { terminateSession(sessionId: $id) { userErrors { code message } } }"


class Switchable(httpx.AsyncBaseTransport):
    """kabinet's app, or, while `down`, a refused connection (kabinet's process gone)."""

    def __init__(self, app) -> None:
        self.inner, self.down = httpx.ASGITransport(app=app), False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("Connection refused", request=request)
        return await self.inner.handle_async_request(request)


@pytest.fixture
async def world(app, tmp_path, monkeypatch):
    """A cluster kabinet knows, an organization's database on it (infobase `buh_…`), the stand-in
    cluster with that infobase and one kabinet does not map, and the agent's parts wired to both."""
    folder = tmp_path / "cluster"
    folder.mkdir()
    standin = StandinCluster(folder, admin=ADMIN)
    for key, value in standin.environment().items():
        monkeypatch.setenv(key, value)
    name = f"c-{uuid.uuid4().hex[:8]}"
    cluster = await Cluster.create(name=name, time_zone="Europe/Moscow")
    org, team = await factories.create_team()
    database = await factories.create_database(org)
    database.cluster, database.infobase = cluster, f"buh_{uuid.uuid4().hex[:6]}"
    await database.save()
    standin.add_infobase(database.infobase)
    standin.add_infobase("tmp_copy")
    transport = Switchable(app)
    kabinet = Kabinet("http://kabinet.test", await agents.issue([org]), transport=transport)
    rac_cluster = RacCluster(Rac(str(RAC), "localhost:1545", ClusterAdmin(*ADMIN)), MOSCOW)
    parts = World(standin, cluster, org, team, database, transport, kabinet, rac_cluster, name)
    yield parts
    await kabinet.close()


class World:
    def __init__(self, standin, cluster, org, team, database, transport, kabinet, rac_cluster, name) -> None:
        self.standin, self.cluster, self.org, self.team, self.database = standin, cluster, org, team, database
        self.transport, self.kabinet, self.rac_cluster, self.name = transport, kabinet, rac_cluster, name
        self.sync = SessionSync(kabinet, rac_cluster, name)
        self.terminations = Terminations(kabinet, rac_cluster, name)

    async def session(self, cluster_session_id: str) -> Session | None:
        return await Session.get_or_none(database_id=self.database.id, cluster_session_id=cluster_session_id)

    async def status(self, cluster_session_id: str) -> SessionStatus | None:
        session = await self.session(cluster_session_id)
        return session.status if session else None


async def until(condition, timeout: float = 30, what: str = "the condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = await condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


# ---------------------------------------------------------------------------------------- snapshots


async def test_a_session_that_starts_and_ends_in_the_cluster_starts_and_ends_in_kabinet(world, caplog):
    caplog.set_level(logging.DEBUG, logger="cluster_agent")
    started = dt.datetime(2026, 12, 6, 23, 55, 1, tzinfo=MOSCOW)  # Moscow's date is a day ahead of UTC's here
    worker = world.standin.start_session(world.database.infobase, "Иванов И.И.", host="PC-BUH-01", started_at=started)
    background = world.standin.start_session(world.database.infobase, "", host="", app_id="BackgroundJob")
    world.standin.start_session("tmp_copy", "Петров")
    answer = await world.sync.report()
    assert answer["cluster"]["name"] == world.name and answer["cluster"]["connected"] is True
    assert answer["unknownInfobases"] == ["tmp_copy"] and answer["rejected"] == [] and answer["started"] == 1

    session = await world.session(worker)
    assert (session.status, session.user_name, session.host) == (SessionStatus.ACTIVE, "Иванов И.И.", "PC-BUH-01")
    assert session.started_at == dt.datetime(2026, 12, 6, 20, 55, 1, tzinfo=dt.timezone.utc), "the cluster's local time, converted"
    assert await world.session(background) is None, "a background job is not a user's session"

    again = await world.sync.report()
    assert (again["started"], again["ended"]) == (0, 0), "the same list twice changes nothing"

    world.standin.end_session(worker)
    assert (await world.sync.report())["ended"] == 1
    assert await world.status(worker) == SessionStatus.ENDED
    assert ADMIN[1] not in caplog.text
    listed = world.standin.calls("session", "list")
    assert listed and all(f"--cluster-pwd={ADMIN[1]}" in argv for argv in listed), "the cluster's administrator is named"


async def test_when_rac_or_kabinet_is_down_the_agent_backs_off_then_catches_up(world, caplog):
    caplog.set_level(logging.INFO, logger="cluster_agent")
    stop = asyncio.Event()
    first = world.standin.start_session(world.database.infobase, "Кассир")
    loop = asyncio.create_task(every(0.1, world.sync.report, stop, what="session snapshot", max_backoff=0.4,
                                     on_failure=world.rac_cluster.forget))
    try:
        await until(lambda: _is(world, first, SessionStatus.ACTIVE), what="the first session")

        world.standin.set(down=True)  # ras unreachable
        world.standin.end_session(first)
        second = world.standin.start_session(world.database.infobase, "Кладовщик")
        await until(lambda: _logged(caplog, "session snapshot failed (2 in a row)"), what="two failed passes")
        assert await world.status(first) == SessionStatus.ACTIVE, "nothing is reported while rac fails"
        world.standin.set(down=False)
        await until(lambda: _is(world, first, SessionStatus.ENDED), what="the ended session caught up")
        assert await world.status(second) == SessionStatus.ACTIVE

        assert "Ошибка соединения" in caplog.text, "rac's own words are logged"
        caplog.clear()
        world.transport.down = True  # kabinet unreachable
        world.standin.end_session(second)
        await until(lambda: _logged(caplog, "session snapshot failed (2 in a row)"), what="kabinet refusing connections")
        assert await world.status(second) == SessionStatus.ACTIVE
        world.transport.down = False
        await until(lambda: _is(world, second, SessionStatus.ENDED), what="caught up after kabinet came back")
    finally:
        stop.set()
        await asyncio.wait_for(loop, timeout=10)
    assert "going again after" in caplog.text and "Connection refused" in caplog.text
    assert ADMIN[1] not in caplog.text


async def _is(world, cluster_session_id, status) -> bool:
    return await world.status(cluster_session_id) == status


async def _logged(caplog, text) -> bool:
    return text in caplog.text


# ---------------------------------------------------------------------------------------- terminations


async def terminating(world, gql, cluster_session_id: str) -> Session:
    """The session reported, then ended by its organization's owner (terminateSession)."""
    await world.sync.report()
    session = await world.session(cluster_session_id)
    email = world.team[Role.OWNER].email
    await gql.token_for_password(email, factories.PASSWORD)
    body = await gql.execute(TERMINATE, {"id": to_global_id("Session", session.id)}, as_user=email)
    assert body["data"]["terminateSession"]["userErrors"] == [], body
    await session.refresh_from_db()
    assert session.status == SessionStatus.TERMINATING
    return session


async def test_an_owners_termination_ends_the_session_in_the_cluster(world, gql):
    doomed = world.standin.start_session(world.database.infobase, "Оператор")
    await terminating(world, gql, doomed)
    assert await world.terminations.once() == 1
    assert [argv for argv in world.standin.calls("session", "terminate") if f"--session={doomed}" in argv]
    assert doomed not in world.standin.session_ids()
    assert await world.status(doomed) == SessionStatus.TERMINATED
    assert await world.terminations.once() == 0, "nothing left to do"
    await world.sync.report()
    assert await world.status(doomed) == SessionStatus.TERMINATED


async def test_a_session_already_gone_from_the_cluster_is_terminated_all_the_same(world, gql):
    gone = world.standin.start_session(world.database.infobase, "Оператор")
    await terminating(world, gql, gone)
    world.standin.end_session(gone)  # the user logged off before the agent came round
    assert await world.terminations.once() == 1
    assert await world.status(gone) == SessionStatus.TERMINATED


async def test_a_termination_the_cluster_refuses_is_reported_refused_with_its_reason(world, gql):
    kept = world.standin.start_session(world.database.infobase, "Главбух")
    session = await terminating(world, gql, kept)
    world.standin.set(refuse_terminate=[kept])
    assert await world.terminations.once() == 1
    await session.refresh_from_db()
    assert session.status == SessionStatus.ACTIVE, "the cluster kept it: ACTIVE again"
    assert kept in world.standin.session_ids()
    assert await world.kabinet.terminations(world.name) == []


async def test_while_the_cluster_is_unreachable_a_termination_stays_pending(world, gql):
    pending = world.standin.start_session(world.database.infobase, "Оператор")
    await terminating(world, gql, pending)
    world.standin.set(down=True)
    with pytest.raises(Exception):
        await world.terminations.once()
    assert await world.status(pending) == SessionStatus.TERMINATING
    world.standin.set(down=False)
    assert await world.terminations.once() == 1
    assert await world.status(pending) == SessionStatus.TERMINATED


async def test_a_session_kabinet_refuses_is_ended_in_the_cluster(world, settings):
    from models.cloud import Database as Db

    await Db.filter(id=world.database.id).update(locked_for_update=True)  # an update holds the database
    try:
        refused = world.standin.start_session(world.database.infobase, "Опоздавший")
        answer = await world.sync.report()
        assert [r["clusterSessionId"] for r in answer["refused"]] == [refused]
        assert refused not in world.standin.session_ids(), "the agent ended it in the cluster"
        [call] = [argv for argv in world.standin.calls("session", "terminate") if f"--session={refused}" in argv]
        assert any(a.startswith("--error-message=Сеанс не допущен") for a in call)
    finally:
        await Database.filter(id=world.database.id).update(locked_for_update=False)
