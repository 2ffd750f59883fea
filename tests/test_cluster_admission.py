"""Limits and locks that hold: the agent is told each organization's sessions limit and each
database's lock, and a session reported beyond them is REFUSED (recorded, shown, and answered 409 so
the agent ends it in the cluster)."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from foundation.clock import utcnow
from foundation.ids import to_global_id
from models.cloud import Database, Session, SessionStatus, SubscriptionExtension
from models.events import OrganizationEvent
from resolvers.cloud import sessions
from resolvers.common.context import SystemActor
from tests import factories
from tests.agents import subscribed
from tests.factories import Role
from tests.test_cluster_agent import AGENT, agent_token, started_body  # noqa: F401 (agent_token: a fixture)
from workers.cluster import churn_in

LOCK = """mutation($input: SetDatabaseLockInput!) { setDatabaseLock(input: $input) {
  database { lock { message inForce endsAt } } userErrors { code field message } } }"""
UNLOCK = """mutation($id: ID!) { clearDatabaseLock(databaseId: $id) { database { lock { message } } userErrors { code } } }"""


async def test_a_session_beyond_the_limit_is_refused_recorded_and_shown(gql, client):
    org, team, _, database = await subscribed(sessions_limit=2)
    for _ in range(2):
        assert (await client.post("/cluster/sessions/started", json=started_body(org, database), headers=AGENT)).status_code == 201
    third = await client.post("/cluster/sessions/started", json=started_body(org, database, userName="Третий"), headers=AGENT)
    assert third.status_code == 409
    body = third.json()
    assert body["error"]["code"] == "REFUSED" and "2 concurrent sessions" in body["error"]["message"]
    assert body["session"]["status"] == "REFUSED" and body["session"]["refusalReason"] == body["error"]["message"]
    refused = await Session.get(cluster_session_id=body["session"]["clusterSessionId"])
    assert refused.status == SessionStatus.REFUSED and refused.ended_at == refused.started_at
    assert [e.kind for e in await OrganizationEvent.filter(organization_id=org.id).order_by("seq")][-1] == "REFUSED"

    owner = team[Role.OWNER].email
    await gql.token_for_password(owner, factories.PASSWORD)
    shown = await gql.execute(
        """query($org: ID!) { organization(id: $org) { sessions(status: REFUSED) { edges { node { userName status refusalReason } } } } }""",
        {"org": to_global_id("Organization", org.id)}, as_user=owner,
    )
    [edge] = shown["data"]["organization"]["sessions"]["edges"]
    assert edge["node"]["userName"] == "Третий" and "concurrent sessions" in edge["node"]["refusalReason"]

    # The same report again is the same (refused) session, not a second one.
    again = await client.post("/cluster/sessions/started", json={**started_body(org, database), "clusterSessionId": refused.cluster_session_id}, headers=AGENT)
    assert again.json()["created"] is False and await Session.filter(organization_id=org.id, status=SessionStatus.REFUSED).count() == 1


async def test_the_extension_in_force_raises_the_limit_the_agent_is_told(client):
    org, _, subscription, database = await subscribed(sessions_limit=1)
    limits = (await client.get("/cluster/limits", params={"organizationCode": org.code}, headers=AGENT)).json()
    [told] = limits["organizations"]
    assert (told["sessionsLimit"], told["runningSessions"], told["databasesLimit"]) == (1, 0, 3)
    assert told["databases"][0]["admitsNewSessions"] is True and told["databases"][0]["lock"] is None
    await SubscriptionExtension.create(
        subscription=subscription, period_starts_on=subscription.starts_on, extra_sessions=2, extra_databases=8,
        starts_at=utcnow() - dt.timedelta(hours=1), ends_at=utcnow() + dt.timedelta(days=6),
    )
    for _ in range(3):
        assert (await client.post("/cluster/sessions/started", json=started_body(org, database), headers=AGENT)).status_code == 201
    [told] = (await client.get("/cluster/limits", params={"organizationCode": org.code}, headers=AGENT)).json()["organizations"]
    assert (told["sessionsLimit"], told["runningSessions"]) == (3, 3)
    assert (await client.post("/cluster/sessions/started", json=started_body(org, database), headers=AGENT)).status_code == 409


async def test_an_admin_locks_new_sessions_for_a_window_and_the_agent_honours_it(gql, client):
    org, team, _, database = await subscribed(sessions_limit=10)
    admin = team[Role.ADMIN].email
    await gql.token_for_password(admin, factories.PASSWORD)
    until = utcnow() + dt.timedelta(hours=2)
    body = await gql.execute(LOCK, {"input": {
        "databaseId": to_global_id("Database", database.id), "message": "Регламентные работы: закрытие месяца", "endsAt": until.isoformat(),
    }}, as_user=admin)
    payload = body["data"]["setDatabaseLock"]
    assert payload["userErrors"] == [] and payload["database"]["lock"]["inForce"] is True

    [told] = (await client.get("/cluster/limits", params={"organizationCode": org.code}, headers=AGENT)).json()["organizations"]
    assert told["databases"][0]["admitsNewSessions"] is False
    assert told["databases"][0]["lock"]["message"] == "Регламентные работы: закрытие месяца"
    refused = await client.post("/cluster/sessions/started", json=started_body(org, database), headers=AGENT)
    assert refused.status_code == 409 and "закрытие месяца" in refused.json()["error"]["message"]

    body = await gql.execute(UNLOCK, {"id": to_global_id("Database", database.id)}, as_user=admin)
    assert body["data"]["clearDatabaseLock"] == {"database": {"lock": None}, "userErrors": []}
    assert (await client.post("/cluster/sessions/started", json=started_body(org, database), headers=AGENT)).status_code == 201


@pytest.mark.parametrize("role", [Role.USER])
async def test_a_user_may_not_lock_a_database(gql, role):
    org, team, _, database = await subscribed()
    email = team[role].email
    await gql.token_for_password(email, factories.PASSWORD)
    body = await gql.execute(LOCK, {"input": {
        "databaseId": to_global_id("Database", database.id), "message": "x", "endsAt": (utcnow() + dt.timedelta(hours=1)).isoformat(),
    }}, as_user=email)
    assert [e["code"] for e in body["data"]["setDatabaseLock"]["userErrors"]] in (["FORBIDDEN"], ["NOT_FOUND"])


async def test_a_lock_must_end_in_the_future_and_say_why(gql):
    org, team, _, database = await subscribed()
    owner = team[Role.OWNER].email
    await gql.token_for_password(owner, factories.PASSWORD)
    db_id = to_global_id("Database", database.id)
    past = await gql.execute(LOCK, {"input": {"databaseId": db_id, "message": "x", "endsAt": (utcnow() - dt.timedelta(hours=1)).isoformat()}}, as_user=owner)
    assert [(e["code"], e["field"]) for e in past["data"]["setDatabaseLock"]["userErrors"]] == [("INVALID", ["input", "endsAt"])]
    blank = await gql.execute(LOCK, {"input": {"databaseId": db_id, "message": " ", "endsAt": (utcnow() + dt.timedelta(hours=1)).isoformat()}}, as_user=owner)
    assert [(e["code"], e["field"]) for e in blank["data"]["setDatabaseLock"]["userErrors"]] == [("INVALID", ["input", "message"])]
    nul = await gql.execute(LOCK, {"input": {"databaseId": db_id, "message": "a\x00b", "endsAt": (utcnow() + dt.timedelta(hours=1)).isoformat()}}, as_user=owner)
    assert [(e["code"], e["field"]) for e in nul["data"]["setDatabaseLock"]["userErrors"]] == [("INVALID", ["input", "message"])]


def test_a_database_s_lock_is_worked_out_when_read_not_when_the_database_is_built():
    """Building a Database reads no clock (most selections never ask for `lock`): the lock is judged
    at the moment its field is resolved, so a window that passed in between shows as none."""
    from foundation import clock
    from models.cloud import Database as DatabaseModel
    from schema.cloud import Database

    start = dt.datetime(2030, 5, 1, 9, tzinfo=dt.timezone.utc)
    model = DatabaseModel(
        name="Бухгалтерия", configuration="БП", version="3.0", is_typical=True,
        lock_message="Обновление", locked_from=start, locked_until=start + dt.timedelta(hours=1),
    )
    with clock.frozen_at(start + dt.timedelta(minutes=10)):
        database = Database.from_model(model)
        assert database.lock() is not None and database.lock().in_force
    with clock.frozen_at(start + dt.timedelta(hours=2)):
        assert database.lock() is None


async def test_the_simulated_cluster_starts_no_session_the_agent_s_admission_would_refuse(app):
    """The embedded default's churn admits by the same rule as the agent (sessions.admission_refusal):
    past the sessions limit or into a locked database it starts nothing and records no REFUSED row;
    someone logs off instead, so a full subscription keeps moving."""
    org, _, _, database = await subscribed(sessions_limit=2)
    rng = random.Random(12)

    async def active() -> int:
        return await Session.filter(organization_id=org.id, status=SessionStatus.ACTIVE).count()

    seen = []
    for _ in range(8):  # fewer than three active: the churn wants a start every step
        await churn_in(database, app.state.broadcast, rng)
        seen.append(await active())
    assert max(seen) == 2 and seen[:2] == [1, 2], seen
    assert min(seen[2:]) < 2, f"at its limit the organization still moves: {seen}"
    assert not await Session.filter(organization_id=org.id, status=SessionStatus.REFUSED).exists()

    now = utcnow()
    await Database.filter(id=database.id).update(
        lock_message="Регламентные работы", locked_from=now - dt.timedelta(minutes=5), locked_until=now + dt.timedelta(hours=1),
    )
    await database.refresh_from_db()
    before = await active()
    for _ in range(4):
        await churn_in(database, app.state.broadcast, rng)
        assert await active() <= before, "nobody starts a session in a locked database"
        before = await active()
    assert not await Session.filter(organization_id=org.id, status=SessionStatus.REFUSED).exists()
