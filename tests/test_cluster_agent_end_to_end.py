"""The whole loop with no 1C: kabinet on PostgreSQL + Redis as its own process (KABINET_CLUSTER=agent), the
agent (`python -m cluster_agent`) as its own process driving the stand-in rac and 1cv8 (tests/standins),
and a WebSocket subscriber (graphql-transport-ws) on the owner's dashboard.

A session started in the stand-in cluster appears live; the owner's terminateSession reaches the
stand-in as `session terminate` and the session leaves the list; a scheduled update walks lock → end
sessions → /UpdateCfg → /UpdateDBCfg → version read back → unlock. Waits are deadlines, not measures.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from foundation.ids import to_global_id
from models.cloud import Cluster, Session, SessionStatus
from models.updates import Release, UpdateRun, UpdateRunStatus
from resolvers.cloud import agent_tokens
from tests import agents, factories
from tests.factories import Role
from tests.live import TRANSPORT_WS, GraphQLSocket
from tests.processes import free_port, stop, wait_until_serving
from tests.standins.cluster import DESIGNER, RAC, StandinCluster, update_template

ROOT = Path(__file__).resolve().parent.parent
BROKER = os.environ.get("KABINET_TEST_BROKER_URL", "")
pytestmark = pytest.mark.skipif(
    not os.environ.get("KABINET_TEST_DATABASE_URL") or not BROKER.startswith("redis://"),
    reason="the end-to-end agent test runs on PostgreSQL (KABINET_TEST_DATABASE_URL) and Redis (KABINET_TEST_BROKER_URL=redis://…)",
)

SESSIONS = """subscription($org: ID!) { sessions(organizationId: $org) {
  sessions { id status userName } event { kind session { id status userName } } } }"""
TERMINATE = "mutation($id: ID!) { terminateSession(sessionId: $id) { userErrors { code message } } }"
SCHEDULE = "mutation($input: ScheduleUpdateInput!) { scheduleUpdate(input: $input) { userErrors { code field message } } }"
LOGIN, PASSWORD = "Администратор", f"ib-{uuid.uuid4().hex}"
ADMIN = ("cluster-admin", f"adm-{uuid.uuid4().hex}")
INSTALLED, TARGET = "3.0.150.20", "3.0.151.7"


async def graphql(url: str, query: str, variables: dict, token: str | None = None) -> dict:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient() as client:
        response = await client.post(f"http://{url}/graphql", json={"query": query, "variables": variables},
                                     headers=headers, timeout=30)
    return response.json()


async def until(condition, timeout: float, what: str, *logs: Path):
    deadline = time.monotonic() + timeout
    while True:
        value = await condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n" + "\n".join(
                f"--- {log.name}\n{log.read_text(errors='replace')[-4000:]}" for log in logs))
        await asyncio.sleep(0.2)


async def next_event(socket: GraphQLSocket, kind: str, timeout: float = 45) -> dict:
    """The next `sessions` update whose event is `kind` (others pass by)."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"no {kind} event"
        update = (await socket.next_data(timeout=left))["data"]["sessions"]
        if update["event"] and update["event"]["kind"] == kind:
            return update


async def test_the_agent_keeps_the_dashboard_live_ends_sessions_and_updates(app, settings, tmp_path):
    # kabinet's data: a cluster, an organization whose database is its infobase, a release to install
    org, team = await factories.create_team()
    owner = team[Role.OWNER].email
    cluster = await Cluster.create(name=f"e2e-{uuid.uuid4().hex[:8]}", time_zone="Europe/Moscow")
    database = await factories.create_database(org)
    database.cluster, database.infobase = cluster, f"buh_{uuid.uuid4().hex[:6]}"
    database.configuration, database.version = f"Бухгалтерия {uuid.uuid4().hex[:6]}", INSTALLED
    await database.save()
    await Release.create(configuration=database.configuration, version=TARGET,
                         published_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1))
    # the token's way in docs/cluster-agent.md: `kabinet agent token create --name … --clusters <cluster>`
    _, token = await agent_tokens.create(f"agent-{cluster.name}", None, all_organizations=False, by=agents.OPERATOR,
                                         cluster_names=[cluster.name])

    # the stand-in cluster with that infobase, and the release's update template
    folder = tmp_path / "cluster"
    folder.mkdir()
    standin = StandinCluster(folder, admin=ADMIN, encoding="cp866")
    standin.add_infobase(database.infobase, user=LOGIN, password=PASSWORD, configuration=database.configuration, version=INSTALLED)
    templates = tmp_path / "templates"
    update_template(templates, database.configuration, TARGET, [INSTALLED])

    port = free_port()
    url = f"127.0.0.1:{port}"
    api_log, agent_log = tmp_path / "kabinet.log", tmp_path / "agent.log"
    common = {**os.environ, "PYTHONPATH": str(ROOT)}
    api = subprocess.Popen(
        [sys.executable, "-m", "kabinet.cli", "serve", "--port", str(port)], cwd=ROOT, stdout=api_log.open("w"),
        stderr=subprocess.STDOUT, env={
            **common, "KABINET_DATABASE_URL": settings.database_url, "KABINET_BROKER_URL": BROKER,
            "KABINET_SECRET_KEY": settings.secret_key, "KABINET_CLUSTER": "agent", "KABINET_RUN_WORKERS": "false",
            "KABINET_MIGRATE_ON_START": "false", "KABINET_SEED_DEMO": "false", "KABINET_DATA_DIR": str(tmp_path / "data"),
        },
    )
    agent = None
    socket = GraphQLSocket(url, TRANSPORT_WS)
    try:
        await wait_until_serving(api, url, api_log, path="/healthz", timeout=60)
        agent = subprocess.Popen(
            [sys.executable, "-m", "cluster_agent", "--verbose"], cwd=ROOT, stdout=agent_log.open("w"),
            stderr=subprocess.STDOUT, env={
                **common, **standin.environment(),
                "KABINET_AGENT_URL": f"http://{url}", "KABINET_AGENT_TOKEN": token, "KABINET_AGENT_CLUSTER": cluster.name,
                "KABINET_AGENT_TIME_ZONE": "Europe/Moscow", "KABINET_AGENT_RAC": str(RAC), "KABINET_AGENT_RAS": "localhost:1545",
                "KABINET_CLUSTER_ADMIN_USER": ADMIN[0], "KABINET_CLUSTER_ADMIN_PASSWORD": ADMIN[1],
                "KABINET_AGENT_POLL_SECONDS": "0.3", "KABINET_AGENT_DESIGNER": str(DESIGNER),
                "KABINET_AGENT_SERVER": "srv1c", "KABINET_AGENT_TEMPLATES": str(templates),
            },
        )
        logs = (agent_log, api_log)
        login = await graphql(url, "mutation($l: String!, $p: String!) { login(input: {login: $l, password: $p}) "
                                   "{ accessToken } }", {"l": owner, "p": factories.PASSWORD})
        access = login["data"]["login"]["accessToken"]
        assert (await socket.connect(access))["type"] == "connection_ack"
        await socket.subscribe(SESSIONS, {"org": to_global_id("Organization", org.id)})
        assert (await socket.next_data(timeout=30))["data"]["sessions"]["sessions"] == []

        # 1. a session started in the cluster appears on the dashboard
        cluster_session = standin.start_session(database.infobase, "Иванов И.И.", host="PC-BUH-01")
        started = await next_event(socket, "STARTED")
        assert started["event"]["session"]["userName"] == "Иванов И.И." and len(started["sessions"]) == 1
        session_id = started["event"]["session"]["id"]
        await cluster.refresh_from_db()
        assert cluster.connected and cluster.last_report_at is not None, "the cluster's agent reports"

        # 2. the owner ends it: `session terminate` reaches the cluster, the session leaves the list
        body = await graphql(url, TERMINATE, {"id": session_id}, access)
        assert body["data"]["terminateSession"]["userErrors"] == [], body
        ended = await next_event(socket, "TERMINATED")
        assert ended["sessions"] == [], "the session left the live list"
        assert [argv for argv in standin.calls("session", "terminate") if f"--session={cluster_session}" in argv]
        assert cluster_session not in standin.session_ids()

        # 3. a scheduled update: lock → end sessions → update → unlock, the version read back
        late = standin.start_session(database.infobase, "Кладовщик")
        await next_event(socket, "STARTED")
        variables = {"input": {
            "databaseId": to_global_id("Database", database.id), "mode": "ONCE", "baseLogin": LOGIN, "basePassword": PASSWORD,
            "runAt": (dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=3)).isoformat(),
        }}
        scheduled = await graphql(url, SCHEDULE, variables, access)
        assert scheduled["data"]["scheduleUpdate"]["userErrors"] == [], scheduled

        async def finished():
            run = await UpdateRun.filter(database_id=database.id).exclude(status=UpdateRunStatus.SCHEDULED).first()
            return run if run and run.status in (UpdateRunStatus.SUCCEEDED, UpdateRunStatus.FAILED) else None

        run = await until(finished, 50, "the update run to end", *logs)
        assert run.status == UpdateRunStatus.SUCCEEDED, (run.message, agent_log.read_text()[-4000:])
        infobase = standin.infobase(database.infobase)
        assert (infobase["version"], infobase["sessions_deny"], infobase["scheduled_jobs_deny"]) == (TARGET, "off", "off")
        walked = _in_order(standin)
        assert walked == ["lock", "terminate", "/UpdateCfg", "/UpdateDBCfg", "/DumpConfigToFiles", "unlock"], walked
        assert late not in standin.session_ids()
        await database.refresh_from_db()
        assert (database.version, database.locked_for_update) == (TARGET, False)
        assert (await Session.get(database_id=database.id, cluster_session_id=late)).status in (
            SessionStatus.ENDED, SessionStatus.TERMINATED)
    finally:
        await socket.close()
        if agent is not None:
            stop(agent)
        stop(api)
    said = agent_log.read_text(errors="replace")
    for secret in (PASSWORD, ADMIN[1], token):
        assert secret not in said, "no credential in the agent's output"


def _in_order(standin: StandinCluster) -> list[str]:
    """The update's cluster commands in the order given (both stand-ins append to one log), polls left out."""
    walked = []
    for entry in map(json.loads, standin.log.read_text(encoding="utf-8").splitlines()):
        argv = entry["argv"]
        if entry["program"] == "1cv8":
            walked.append(next(a for a in argv if a in ("/UpdateCfg", "/UpdateDBCfg", "/DumpConfigToFiles")))
        elif "update" in argv and "infobase" in argv:
            walked.append("lock" if "--sessions-deny=on" in argv else "unlock")
        elif "terminate" in argv and walked and walked[-1] in ("lock", "terminate"):
            walked.append("terminate")
    return [step for i, step in enumerate(walked) if i == 0 or walked[i - 1] != step]
