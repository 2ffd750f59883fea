"""The cluster agent API: a real 1C cluster's agent reports sessions and carries out terminations."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import pytest
from click.testing import CliRunner

from resolvers.identity.tokens import hash_opaque_token, new_opaque_token
from kabinet.cli import main as cli
from foundation.settings import Settings
from models.cloud import Session, SessionStatus
from models.events import OrganizationEvent
from foundation.ids import to_global_id
from tests import agents, factories
from tests.factories import Role
from tests.live import TRANSPORT_WS, GraphQLSocket
from workers.cluster import run_cluster_worker

AGENT: dict[str, str] = {}  # an agent token for every organization, issued once


@pytest.fixture(autouse=True)
async def agent_token(app):
    if not AGENT:
        AGENT.update(agents.bearer(await agents.issue()))


def cluster_id() -> str:
    return f"cluster-{uuid.uuid4()}"


def started_body(organization, database=None, **fields) -> dict:
    body = {
        "organizationCode": organization.code, "clusterSessionId": cluster_id(), "userName": "Кладовщик",
        "clientKind": "THIN_CLIENT", "host": "PC-SKLAD-03", "startedAt": "2026-11-20T09:30:00+03:00",
    }
    if database is not None:
        body["databaseId"] = to_global_id("Database", database.id)
    body.update(fields)
    return body


async def events_of(organization) -> list[OrganizationEvent]:
    return list(await OrganizationEvent.filter(organization_id=organization.id).order_by("seq"))


async def terminating_session(gql, client, organization, database, users) -> tuple[Session, str]:
    """A session the agent reported, then terminated by the owner through the API."""
    reported = (await client.post("/cluster/sessions/started", json=started_body(organization, database), headers=AGENT)).json()
    await gql.token_for_password(users[Role.OWNER].email, factories.PASSWORD)
    body = await gql.execute(
        "mutation($id: ID!) { terminateSession(sessionId: $id) { userErrors { code } } }",
        {"id": reported["session"]["id"]}, as_user=users[Role.OWNER].email,
    )
    assert body["data"]["terminateSession"]["userErrors"] == []
    session = await Session.get(cluster_session_id=reported["session"]["clusterSessionId"])
    return session, reported["session"]["id"]


# ------------------------------------------------------------------------------ authentication


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-token"}, {"Authorization": "Basic kca_not-bearer"}])
async def test_the_agent_api_refuses_a_missing_or_wrong_token(client, headers):
    response = await client.get("/cluster/terminations", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["error"]["code"] == "UNAUTHENTICATED"


async def test_a_token_in_kabinet_cluster_agent_tokens_still_works_for_every_organization(client, settings, monkeypatch):
    """Deprecated: a hash in the setting is an agent for every organization, never a scoped one."""
    token, token_hash = new_opaque_token()
    monkeypatch.setattr(settings, "cluster_agent_tokens", f"{hash_opaque_token('another-agent')}, {token_hash}")
    org, *_ = await agents.subscribed()
    answer = await client.get("/cluster/limits", params={"organizationCode": org.code}, headers=agents.bearer(token))
    assert answer.status_code == 200 and [o["organizationCode"] for o in answer.json()["organizations"]] == [org.code]
    monkeypatch.setattr(settings, "cluster_agent_tokens", "")
    assert (await client.get("/cluster/limits", headers=agents.bearer(token))).status_code == 401


def test_plain_kabinet_agent_token_says_what_replaced_it():
    result = CliRunner().invoke(cli, ["agent", "token"])
    assert result.exit_code == 2
    assert "kabinet agent token create --name NAME --organizations CODE,CODE" in result.output
    assert "--all-organizations" in result.output


async def test_an_agent_token_puts_a_deployment_without_kabinet_cluster_in_agent_mode_for_good(settings):
    """(The other rules of the mode: tests/test_cluster_mode.py.) Revoking the agent's token hands nothing
    back to the simulator."""
    from models.program_tokens import ProgramToken
    from resolvers.cloud.agent_tokens import cluster_mode

    unset = Settings(_env_file=None, database_url=settings.database_url, cluster=None)  # KABINET_CLUSTER unset
    assert await cluster_mode(unset.model_copy(update={"cluster_agent_tokens": hash_opaque_token("t")})) == "agent"
    assert await cluster_mode(unset.model_copy(update={"cluster_agent_tokens": hash_opaque_token("t"), "cluster": "simulated"})) == "simulated"
    token = await agents.issue(name=f"mode-{uuid.uuid4().hex[:6]}")
    assert await cluster_mode(unset) == "agent"
    await ProgramToken.filter(token_hash=hash_opaque_token(token)).update(revoked_at=dt.datetime.now(dt.timezone.utc))
    assert await cluster_mode(unset) == "agent", "revoking an agent's token hands nothing to the simulator"


# ------------------------------------------------------------------------------ sessions started


async def test_the_agent_reports_a_session_that_started(client):
    org, users = await factories.create_team(Role.USER)
    database = await factories.create_database(org)
    body = started_body(org, database, userEmail=users[Role.USER].email.upper())
    response = await client.post("/cluster/sessions/started", json=body, headers=AGENT)
    assert response.status_code == 201, response.text
    reported = response.json()
    assert reported["created"] is True
    assert reported["session"]["status"] == "ACTIVE"
    assert reported["session"]["databaseId"] == to_global_id("Database", database.id)
    session = await Session.get(cluster_session_id=body["clusterSessionId"])
    assert (session.organization_id, session.database_id, session.user_id) == (org.id, database.id, users[Role.USER].id)
    assert session.started_at == dt.datetime(2026, 11, 20, 6, 30, tzinfo=dt.timezone.utc)
    assert [(e.topic, e.kind, e.payload["id"]) for e in await events_of(org)] == [("sessions", "STARTED", str(session.id))]


async def test_a_session_reported_twice_is_recorded_once(client):
    org, _ = await factories.create_team()
    database = await factories.create_database(org)
    body = started_body(org, database)
    first = await client.post("/cluster/sessions/started", json=body, headers=AGENT)
    again = await client.post("/cluster/sessions/started", json=body, headers=AGENT)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["created"] is False and again.json()["session"]["id"] == first.json()["session"]["id"]
    assert await Session.filter(cluster_session_id=body["clusterSessionId"]).count() == 1
    assert len(await events_of(org)) == 1


async def test_a_session_named_by_its_database_alone_belongs_to_the_databases_organization(client):
    org, _ = await factories.create_team()
    database = await factories.create_database(org)
    body = started_body(org, database)
    del body["organizationCode"]
    response = await client.post("/cluster/sessions/started", json=body, headers=AGENT)
    assert response.status_code == 201
    assert (await Session.get(cluster_session_id=body["clusterSessionId"])).organization_id == org.id


async def test_a_session_of_someone_outside_the_organization_is_nobodys(client):
    org, _ = await factories.create_team()
    stranger = await factories.create_user()
    body = started_body(org, userEmail=stranger.email)
    assert (await client.post("/cluster/sessions/started", json=body, headers=AGENT)).status_code == 201
    session = await Session.get(cluster_session_id=body["clusterSessionId"])
    assert session.user_id is None and session.database_id is None


async def test_a_session_the_agent_reports_appears_in_the_live_list(gql, client, live_server):
    org, users = await factories.create_team()
    database = await factories.create_database(org)
    token = await gql.token_for_password(users[Role.OWNER].email, factories.PASSWORD)
    sock = GraphQLSocket(live_server, TRANSPORT_WS)
    try:
        await sock.connect(token)
        await sock.subscribe(
            "subscription($org: ID!) { sessions(organizationId: $org) { sessions { id } event { kind session { userName } } } }",
            {"org": to_global_id("Organization", org.id)},
        )
        assert (await sock.next_data())["data"]["sessions"]["sessions"] == []
        await client.post("/cluster/sessions/started", json=started_body(org, database, userName="Оператор"), headers=AGENT)
        update = (await sock.next_data())["data"]["sessions"]
        assert update["event"] == {"kind": "STARTED", "session": {"userName": "Оператор"}}
        assert len(update["sessions"]) == 1
    finally:
        await sock.close()


async def test_the_same_cluster_session_id_in_another_organization_is_a_conflict(client):
    org, _ = await factories.create_team()
    other, _ = await factories.create_team()
    body = started_body(org)
    await client.post("/cluster/sessions/started", json=body, headers=AGENT)
    response = await client.post("/cluster/sessions/started", json={**body, "organizationCode": other.code}, headers=AGENT)
    assert response.status_code == 409
    assert response.json()["error"] == {
        "code": "CONFLICT", "field": "clusterSessionId", "message": response.json()["error"]["message"],
    }


@pytest.mark.parametrize(
    ("change", "field", "code"),
    [
        ({"clusterSessionId": None}, "clusterSessionId", "INVALID"),
        ({"clusterSessionId": "x" * 101}, "clusterSessionId", "INVALID"),
        ({"userName": ""}, "userName", "INVALID"),
        ({"clientKind": "TELNET"}, "clientKind", "INVALID"),
        ({"startedAt": "2026-11-20T09:30:00"}, "startedAt", "INVALID"),
        ({"startedAt": "yesterday"}, "startedAt", "INVALID"),
        ({"startedAt": None}, "startedAt", "INVALID"),
        ({"organizationCode": "NO-SUCH-CODE"}, "organizationCode", "NOT_FOUND"),
        ({"organizationCode": None}, "organizationCode", "INVALID"),
        ({"databaseId": to_global_id("Database", uuid.uuid4())}, "databaseId", "NOT_FOUND"),
        ({"databaseId": "not-an-id"}, "databaseId", "NOT_FOUND"),
    ],
)
async def test_a_bad_session_report_is_refused_with_the_field_at_fault(client, change, field, code):
    org, _ = await factories.create_team()
    body = {k: v for k, v in {**started_body(org), **change}.items() if v is not None}
    response = await client.post("/cluster/sessions/started", json=body, headers=AGENT)
    assert response.status_code == 400, response.text
    assert (response.json()["error"]["field"], response.json()["error"]["code"]) == (field, code)
    assert len(await events_of(org)) == 0


async def test_a_database_of_another_organization_is_refused(client):
    org, _ = await factories.create_team()
    other, _ = await factories.create_team()
    foreign = await factories.create_database(other)
    response = await client.post("/cluster/sessions/started", json=started_body(org, foreign), headers=AGENT)
    assert response.status_code == 400 and response.json()["error"]["field"] == "databaseId"


@pytest.mark.parametrize("content", [b"not json", b"[1, 2]", b'"text"'])
async def test_a_body_that_is_not_a_json_object_is_refused(client, content):
    response = await client.post(
        "/cluster/sessions/started", content=content, headers={**AGENT, "Content-Type": "application/json"}
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "INVALID"


# ------------------------------------------------------------------------------ sessions ended


async def test_a_user_who_logs_off_ends_the_session(client):
    org, _ = await factories.create_team()
    body = started_body(org)
    await client.post("/cluster/sessions/started", json=body, headers=AGENT)
    ended = {"clusterSessionId": body["clusterSessionId"], "endedAt": "2026-11-20T18:00:00+03:00"}
    response = await client.post("/cluster/sessions/ended", json=ended, headers=AGENT)
    assert response.status_code == 200 and response.json()["changed"] is True
    session = await Session.get(cluster_session_id=body["clusterSessionId"])
    assert session.status == SessionStatus.ENDED
    assert session.ended_at == dt.datetime(2026, 11, 20, 15, 0, tzinfo=dt.timezone.utc)
    assert [e.kind for e in await events_of(org)] == ["STARTED", "ENDED"]

    again = await client.post("/cluster/sessions/ended", json=ended, headers=AGENT)
    assert again.status_code == 200 and again.json()["changed"] is False
    assert again.json()["session"]["status"] == "ENDED"
    assert len(await events_of(org)) == 2


async def test_a_session_that_ends_while_being_terminated_is_terminated(gql, client):
    org, users = await factories.create_team()
    database = await factories.create_database(org)
    session, _ = await terminating_session(gql, client, org, database, users)
    response = await client.post("/cluster/sessions/ended", json={"clusterSessionId": session.cluster_session_id}, headers=AGENT)
    assert response.status_code == 200 and response.json()["session"]["status"] == "TERMINATED"
    assert [e.kind for e in await events_of(org)] == ["STARTED", "TERMINATING", "TERMINATED"]


async def test_the_end_of_an_unknown_session_is_not_found(client):
    response = await client.post("/cluster/sessions/ended", json={"clusterSessionId": cluster_id()}, headers=AGENT)
    assert response.status_code == 404 and response.json()["error"]["code"] == "NOT_FOUND"


async def test_a_session_cannot_end_before_it_started(client):
    org, _ = await factories.create_team()
    body = started_body(org)
    await client.post("/cluster/sessions/started", json=body, headers=AGENT)
    ended = {"clusterSessionId": body["clusterSessionId"], "endedAt": "2026-11-19T18:00:00+03:00"}
    response = await client.post("/cluster/sessions/ended", json=ended, headers=AGENT)
    assert response.status_code == 400 and response.json()["error"]["field"] == "endedAt"


# ------------------------------------------------------------------------------ terminations


async def test_the_agent_lists_the_sessions_asked_to_end_and_reports_them_done(gql, client):
    org, users = await factories.create_team()
    database = await factories.create_database(org)
    session, session_id = await terminating_session(gql, client, org, database, users)

    listed = await client.get("/cluster/terminations", params={"organizationCode": org.code}, headers=AGENT)
    assert listed.status_code == 200
    [termination] = listed.json()["terminations"]
    assert termination["sessionId"] == session_id
    assert termination["clusterSessionId"] == session.cluster_session_id
    assert termination["databaseId"] == to_global_id("Database", database.id)
    assert termination["organizationCode"] == org.code and termination["requestedAt"]

    done = await client.post(f"/cluster/terminations/{session_id}/done", headers=AGENT)
    assert done.status_code == 200 and done.json()["changed"] is True
    assert done.json()["session"]["status"] == "TERMINATED"
    assert (await Session.get(id=session.id)).status == SessionStatus.TERMINATED
    assert [e.kind for e in await events_of(org)] == ["STARTED", "TERMINATING", "TERMINATED"]
    again = await client.get("/cluster/terminations", params={"organizationCode": org.code}, headers=AGENT)
    assert again.json()["terminations"] == []


async def test_a_termination_reported_twice_is_recorded_once(gql, client):
    org, users = await factories.create_team()
    database = await factories.create_database(org)
    _, session_id = await terminating_session(gql, client, org, database, users)
    await client.post(f"/cluster/terminations/{session_id}/done", headers=AGENT)
    again = await client.post(f"/cluster/terminations/{session_id}/done", headers=AGENT)
    assert again.status_code == 200 and again.json()["changed"] is False
    assert [e.kind for e in await events_of(org)] == ["STARTED", "TERMINATING", "TERMINATED"]


async def test_a_session_nobody_asked_to_end_cannot_be_reported_terminated(client):
    org, _ = await factories.create_team()
    reported = (await client.post("/cluster/sessions/started", json=started_body(org), headers=AGENT)).json()
    response = await client.post(f"/cluster/terminations/{reported['session']['id']}/done", headers=AGENT)
    assert response.status_code == 409 and response.json()["error"]["code"] == "CONFLICT"
    assert (await Session.get(cluster_session_id=reported["session"]["clusterSessionId"])).status == SessionStatus.ACTIVE


async def test_a_termination_done_after_the_user_logged_off_changes_nothing(gql, client):
    org, users = await factories.create_team()
    database = await factories.create_database(org)
    session, session_id = await terminating_session(gql, client, org, database, users)
    await Session.filter(id=session.id).update(status=SessionStatus.ENDED, ended_at=dt.datetime.now(dt.timezone.utc))
    response = await client.post(f"/cluster/terminations/{session_id}/done", headers=AGENT)
    assert response.status_code == 200 and response.json()["changed"] is False
    assert response.json()["session"]["status"] == "ENDED"


@pytest.mark.parametrize(
    "session_id",
    ["not-an-id", to_global_id("Session", uuid.uuid4()), to_global_id("Database", uuid.uuid4())],
    ids=["not-an-id", "unknown-session", "a-database"],
)
async def test_the_termination_of_an_unknown_session_is_not_found(client, session_id):
    response = await client.post(f"/cluster/terminations/{session_id}/done", headers=AGENT)
    assert response.status_code == 404


@pytest.mark.parametrize("limit", ["0", "501", "many"])
async def test_a_bad_termination_limit_is_refused(client, limit):
    response = await client.get("/cluster/terminations", params={"limit": limit}, headers=AGENT)
    assert response.status_code == 400 and response.json()["error"]["field"] == "limit"


async def test_in_agent_mode_the_simulated_cluster_leaves_terminations_to_the_agent(app):
    org, _ = await factories.create_team()
    database = await factories.create_database(org)
    session = await factories.create_session(database)
    await Session.filter(id=session.id).update(status=SessionStatus.TERMINATING)
    stop = asyncio.Event()
    worker = asyncio.create_task(run_cluster_worker(app.state.broadcast, stop, churn=5.0, mode="agent"))
    await asyncio.sleep(1.0)
    stop.set()
    await asyncio.wait_for(worker, timeout=5)
    assert (await Session.get(id=session.id)).status == SessionStatus.TERMINATING
    assert await Session.filter(organization_id=org.id).count() == 1  # and no simulated logins either
