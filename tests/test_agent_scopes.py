"""Agents are scoped (issue 17, finding 3): an agent token acts for its organizations only. It sees,
claims, steps and reports nothing of another organization's sessions, terminations, update runs or
limits, whatever the client sends; it acts on a run only with the fencing token of its own claim;
a revoked token is refused at once; the deprecated KABINET_CLUSTER_AGENT_TOKENS acts for every
organization and is said at start-up. Each test below is an attack that worked before."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from foundation.clock import utcnow
from foundation.ids import to_global_id
from models.cloud import Session, SessionStatus
from models.program_tokens import ProgramToken
from models.updates import UpdateRun, UpdateRunStatus
from resolvers.cloud import agent_tokens
from resolvers.identity.tokens import hash_opaque_token, new_opaque_token
from tests import agents
from tests.agents import OPERATOR, bearer, subscribed
from tests.processes import free_port, kabinet_cli, stop, wait_until_serving
from tests.test_agent_updates import LOGIN, PASSWORD, due_run, updatable_database, with_credentials

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def agent_mode(settings, monkeypatch):
    monkeypatch.setattr(settings, "cluster", "agent")


async def organization_with_work(gql):
    """An organization with a subscription, a TERMINATING session of the cluster, and a due update run
    whose database has 1C credentials stored."""
    org, team, _, _ = await subscribed()
    database = await updatable_database(org)
    session = await Session.create(
        organization=org, database=database, user_name="Кассир", client_kind="THIN_CLIENT",
        started_at=utcnow(), status=SessionStatus.TERMINATING,
        cluster_session_id=f"cl-{uuid.uuid4()}",
    )
    await with_credentials(gql, org, team, database)
    return org, database, session, await due_run(database)


@pytest.fixture
async def two(gql):
    """Organizations A and B, each with its own agent token."""
    a, b = await organization_with_work(gql), await organization_with_work(gql)
    return a, b, bearer(await agents.issue([a[0]])), bearer(await agents.issue([b[0]]))


async def test_an_agent_sees_only_its_organizations_terminations_and_limits(client, two):
    (org_a, _, session_a, _), (org_b, _, session_b, _), agent_a, _ = two
    listed = (await client.get("/cluster/terminations", params={"limit": 500}, headers=agent_a)).json()["terminations"]
    assert {t["organizationCode"] for t in listed} == {org_a.code}
    assert to_global_id("Session", session_a.id) in {t["sessionId"] for t in listed}
    asked = await client.get("/cluster/terminations", params={"organizationCode": org_b.code}, headers=agent_a)
    assert asked.status_code == 200 and asked.json()["terminations"] == [], "the filter narrows the scope, never widens it"

    limits = (await client.get("/cluster/limits", headers=agent_a)).json()["organizations"]
    assert [o["organizationCode"] for o in limits] == [org_a.code]
    assert (await client.get("/cluster/limits", params={"organizationCode": org_b.code}, headers=agent_a)).json() == {"organizations": []}


async def test_an_agent_cannot_report_or_end_another_organizations_sessions(client, two):
    (org_a, _, _, _), (org_b, database_b, session_b, _), agent_a, _ = two
    started = {
        "clusterSessionId": f"cl-{uuid.uuid4()}", "userName": "Чужой", "clientKind": "THIN_CLIENT",
        "startedAt": "2026-11-20T09:30:00+03:00",
    }

    async def answer(**named):
        response = await client.post("/cluster/sessions/started", json={**started, **named}, headers=agent_a)
        return response.status_code, response.json()["error"]["code"], response.json()["error"]["field"]

    # Another organization's is answered exactly as one that does not exist.
    assert await answer(organizationCode=org_b.code) == await answer(organizationCode="NO-SUCH") == (400, "NOT_FOUND", "organizationCode")
    assert await answer(databaseId=to_global_id("Database", database_b.id)) == await answer(
        databaseId=to_global_id("Database", uuid.uuid4())
    ) == (400, "NOT_FOUND", "databaseId")
    assert await Session.filter(organization_id=org_b.id).count() == 1

    ended = await client.post("/cluster/sessions/ended", json={"clusterSessionId": session_b.cluster_session_id}, headers=agent_a)
    done = await client.post(f"/cluster/terminations/{to_global_id('Session', session_b.id)}/done", headers=agent_a)
    refused = await client.post(
        f"/cluster/terminations/{to_global_id('Session', session_b.id)}/refused", json={"reason": "нет"}, headers=agent_a
    )
    assert (ended.status_code, done.status_code, refused.status_code) == (404, 404, 404)
    assert "organizationCode" not in ended.text + done.text + refused.text
    assert (await Session.get(id=session_b.id)).status == SessionStatus.TERMINATING


async def test_an_agent_claims_only_its_organizations_runs(client, two):
    (org_a, _, _, run_a), (org_b, _, _, run_b), agent_a, _ = two
    asked_for_b = await client.post("/cluster/updates/claim", json={"organizationCodes": [org_b.code]}, headers=agent_a)
    assert asked_for_b.json() == {"run": None}
    claimed = (await client.post("/cluster/updates/claim", json={}, headers=agent_a)).json()["run"]
    assert claimed["id"] == to_global_id("UpdateRun", run_a.id) and claimed["database"]["organizationCode"] == org_a.code
    assert (await client.post("/cluster/updates/claim", json={}, headers=agent_a)).json() == {"run": None}
    assert (await UpdateRun.get(id=run_b.id)).status == UpdateRunStatus.SCHEDULED, "B's run and its credentials stay B's agent's"


async def test_an_agent_cannot_heartbeat_step_or_end_another_organizations_run_even_with_its_fencing_token(client, two):
    _, (_, _, _, run_b), agent_a, agent_b = two
    job = (await client.post("/cluster/updates/claim", json={}, headers=agent_b)).json()["run"]
    assert job["id"] == to_global_id("UpdateRun", run_b.id) and job["credentials"] == {"login": LOGIN, "password": PASSWORD}
    path, claim = f"/cluster/updates/{job['id']}", {"fencingToken": job["fencingToken"]}
    for call, body in (
        ("heartbeat", {}), ("step", {"step": "lock", "progress": 10}),
        ("result", {"outcome": "failed", "reason": "чужой"}), ("result", {"outcome": "succeeded", "version": "9.9.9.9"}),
    ):
        stolen = await client.post(f"{path}/{call}", json={**claim, **body}, headers=agent_a)
        assert (stolen.status_code, stolen.json()["error"]["field"]) == (404, "runId"), (call, stolen.text)
    run = await UpdateRun.get(id=run_b.id)
    assert (run.status, run.progress, run.attempts, run.lease_fence) == (UpdateRunStatus.RUNNING, 0, 1, job["fencingToken"])
    assert (await client.post(f"{path}/heartbeat", json=claim, headers=agent_b)).status_code == 200


async def test_a_guessed_fencing_token_is_refused_and_changes_nothing(client, two):
    (org_a, _, _, run_a), *_ = two
    first, second = bearer(await agents.issue([org_a])), bearer(await agents.issue([org_a]))
    job = (await client.post("/cluster/updates/claim", json={}, headers=first)).json()["run"]
    path = f"/cluster/updates/{job['id']}"
    guesses = ["1", str(job["attempt"]), secrets.token_urlsafe(24), job["fencingToken"][:-1] + ("y" if job["fencingToken"].endswith("x") else "x"), run_a.id.hex]
    for headers in (first, second):
        for guess in guesses:
            for call, body in (("heartbeat", {}), ("step", {"step": "lock"}), ("result", {"outcome": "failed", "reason": "x"})):
                answer = await client.post(f"{path}/{call}", json={"fencingToken": guess, **body}, headers=headers)
                assert (answer.status_code, answer.json()["error"]["code"]) == (409, "LEASE_LOST"), answer.text
    # The claim's own fencing token from another token of the same organization: not its claim either.
    stolen = await client.post(f"{path}/step", json={"fencingToken": job["fencingToken"], "step": "lock"}, headers=second)
    assert (stolen.status_code, stolen.json()["error"]["code"]) == (409, "LEASE_LOST")
    run = await UpdateRun.get(id=run_a.id)
    assert (run.status, run.progress, run.attempts) == (UpdateRunStatus.RUNNING, 0, 1)
    assert (await client.post(f"{path}/step", json={"fencingToken": job["fencingToken"], "step": "lock"}, headers=first)).status_code == 200


async def test_every_claim_draws_a_new_fencing_token(client, settings, monkeypatch, gql):
    org, _, _, run = await organization_with_work(gql)
    agent = bearer(await agents.issue([org]))
    first = (await client.post("/cluster/updates/claim", json={}, headers=agent)).json()["run"]
    failed = await client.post(f"/cluster/updates/{first['id']}/result", json={"fencingToken": first["fencingToken"], "outcome": "failed", "reason": "сбой"}, headers=agent)
    assert failed.json()["run"]["status"] == "SCHEDULED"
    monkeypatch.setattr(settings, "update_retry_seconds", 0.0)
    await UpdateRun.filter(id=run.id).update(scheduled_for=run.scheduled_for)
    second = (await client.post("/cluster/updates/claim", json={}, headers=agent)).json()["run"]
    assert second["id"] == first["id"] and second["attempt"] == 2 and second["fencingToken"] != first["fencingToken"]
    stale = await client.post(f"/cluster/updates/{first['id']}/heartbeat", json={"fencingToken": first["fencingToken"]}, headers=agent)
    assert stale.json()["error"]["code"] == "LEASE_LOST", "the first claim's fence is dead"


async def test_a_revoked_agent_token_is_refused_at_once(client):
    org, *_ = await subscribed()
    name = f"revoked-{uuid.uuid4().hex[:6]}"
    token = await agents.issue([org], name=name)
    assert (await client.get("/cluster/limits", headers=bearer(token))).status_code == 200
    await agent_tokens.revoke(name, by=OPERATOR)
    refused = await client.get("/cluster/limits", headers=bearer(token))
    assert (refused.status_code, refused.json()["error"]["code"]) == (401, "UNAUTHENTICATED")


async def test_an_agent_token_of_another_kind_or_expired_is_refused(client):
    from resolvers.provider import service_accounts

    _, service_token = await service_accounts.create(f"svc-{uuid.uuid4().hex[:6]}", "staff", by=OPERATOR)
    assert (await client.get("/cluster/limits", headers=bearer(service_token))).status_code == 401, "a provider token is no agent"
    token = await agents.issue()
    assert (await client.get("/provider/v1/entities", headers=bearer(token))).status_code == 401, "an agent token is no provider program"
    await ProgramToken.filter(token_hash=hash_opaque_token(token)).update(expires_at=utcnow())
    assert (await client.get("/cluster/limits", headers=bearer(token))).status_code == 401


async def test_the_agent_token_cli_issues_lists_and_revokes_scoped_tokens(client, settings):
    org, *_ = await subscribed()
    other, *_ = await subscribed()
    name = f"cli-{uuid.uuid4().hex[:6]}"
    token = (await kabinet_cli(settings, "agent", "token", "create", "--name", name, "--organizations", f"{org.code}, {other.code}")).strip()
    assert token.startswith("kca_") and "\n" not in token
    limits = (await client.get("/cluster/limits", headers=bearer(token))).json()["organizations"]
    assert sorted(o["organizationCode"] for o in limits) == sorted([org.code, other.code])
    [line] = [row for row in (await kabinet_cli(settings, "agent", "token", "list")).splitlines() if row.startswith(name + "\t")]
    assert ",".join(sorted([org.code, other.code])) in line and "last used 20" in line and line.endswith("active")
    await kabinet_cli(settings, "agent", "token", "revoke", name)
    assert (await client.get("/cluster/limits", headers=bearer(token))).status_code == 401
    [line] = [row for row in (await kabinet_cli(settings, "agent", "token", "list")).splitlines() if row.startswith(name + "\t")]
    assert "revoked 20" in line
    every = (await kabinet_cli(settings, "agent", "token", "create", "--name", f"all-{name}", "--all-organizations")).strip()
    assert (await client.get("/cluster/limits", headers=bearer(every))).status_code == 200
    # neither, both, an unknown code, a name taken: refused, nothing issued
    await kabinet_cli(settings, "agent", "token", "create", "--name", f"x-{name}", status=1)
    await kabinet_cli(settings, "agent", "token", "create", "--name", f"x-{name}", "--organizations", org.code, "--all-organizations", status=1)
    await kabinet_cli(settings, "agent", "token", "create", "--name", f"x-{name}", "--organizations", "NO-SUCH", status=1)
    await kabinet_cli(settings, "agent", "token", "create", "--name", name, "--all-organizations", status=1)
    assert not await ProgramToken.exists(name=f"x-{name}")


async def test_legacy_setting_tokens_act_for_every_organization_and_are_warned_of_at_start_up(settings, tmp_path):
    """A real `kabinet serve` with KABINET_CLUSTER_AGENT_TOKENS: a WARNING naming the setting and what
    replaces it, and the token is an agent for every organization."""
    org, *_ = await subscribed()
    other, *_ = await subscribed()
    token, token_hash = new_opaque_token()
    port, log = free_port(), tmp_path / "serve.log"
    env = {
        **os.environ, "KABINET_DATABASE_URL": settings.resolved_database_url, "KABINET_BROKER_URL": "memory://",
        "KABINET_SECRET_KEY": settings.secret_key, "KABINET_RUN_WORKERS": "false", "KABINET_MIGRATE_ON_START": "false",
        "KABINET_SEED_DEMO": "false", "KABINET_DATA_DIR": str(tmp_path / "data"), "KABINET_CLUSTER_AGENT_TOKENS": token_hash,
    }
    process = subprocess.Popen([sys.executable, "-m", "kabinet.cli", "serve", "--port", str(port)],
                               cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    try:
        await wait_until_serving(process, f"127.0.0.1:{port}", log, path="/healthz")
        async with httpx.AsyncClient() as http:
            limits = (await http.get(f"http://127.0.0.1:{port}/cluster/limits", headers=bearer(token))).json()["organizations"]
    finally:
        stop(process)
    assert {org.code, other.code} <= {o["organizationCode"] for o in limits}
    [warning] = [line for line in log.read_text().splitlines() if "KABINET_CLUSTER_AGENT_TOKENS" in line]
    assert "WARNING" in warning and "EVERY organization" in warning and "kabinet agent token create" in warning
