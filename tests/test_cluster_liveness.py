"""A dashboard never shows a stale list as live (issue 18): `Database.cluster { connected lastReportAt }`
and `Database.sessionsAsOf`, seen by whoever sees the database; the connected flip (a snapshot one
way, the housekeeping worker the other) is an organizationData event of every organization on the
cluster, seen over a real WebSocket."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import pytest

from foundation.clock import utcnow
from foundation.ids import to_global_id
from models.cloud import Cluster
from models.events import OrganizationEvent
from models.organizations import DatabaseGrant, Membership
from resolvers.cloud import clusters
from events.log import DATA
from tests import agents, factories
from tests.factories import Role
from tests.live import TRANSPORT_WS, GraphQLSocket
from workers.housekeeping import clusters_liveness_pass

DATABASES = """query($org: ID!) { node(id: $org) { ... on Organization { databases(first: 10) { edges { node {
  name sessionsAsOf cluster { name connected lastReportAt } } } } } } }"""


@pytest.fixture(autouse=True)
def agent_mode(settings, monkeypatch):
    monkeypatch.setattr(settings, "cluster", "agent")


async def team_on_a_cluster():
    org, users = await factories.create_team(Role.OWNER, Role.ACCOUNTANT, Role.USER)
    cluster = await clusters.add(f"lv-{uuid.uuid4().hex[:10]}")
    on, off = await factories.create_database(org, name="На кластере"), await factories.create_database(org, name="Своя")
    await clusters.place(on, cluster, "buh")
    return org, users, cluster, on, off


async def databases_seen(gql, org, user) -> dict | list:
    await gql.token_for_password(user.email, factories.PASSWORD)
    body = await gql.execute(DATABASES, {"org": to_global_id("Organization", org.id)}, as_user=user.email)
    if body.get("errors"):
        return [e["extensions"]["code"] for e in body["errors"]]
    return {e["node"]["name"]: e["node"] for e in body["data"]["node"]["databases"]["edges"]}


async def snapshot(client, cluster, token, taken_at=None):
    body = {"cluster": cluster.name, "takenAt": (taken_at or utcnow()).isoformat(), "infobases": [{"name": "buh", "sessions": []}]}
    answer = await client.post("/cluster/sessions/snapshot", json=body, headers=agents.bearer(token))
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_the_cluster_and_sessions_as_of_as_each_role_sees_them(gql, client, settings):
    org, users, cluster, on, off = await team_on_a_cluster()
    seen = await databases_seen(gql, org, users[Role.OWNER])
    assert seen["На кластере"]["cluster"] == {"name": cluster.name, "connected": False, "lastReportAt": None}
    assert seen["На кластере"]["sessionsAsOf"] is None, "no agent ever reported"
    assert seen["Своя"]["cluster"] is None and seen["Своя"]["sessionsAsOf"] is None

    taken = utcnow().replace(microsecond=0)
    await snapshot(client, cluster, await agents.issue(), taken)
    seen = await databases_seen(gql, org, users[Role.OWNER])
    assert seen["На кластере"]["cluster"]["connected"] is True
    assert dt.datetime.fromisoformat(seen["На кластере"]["sessionsAsOf"]) == taken
    assert seen["На кластере"]["cluster"]["lastReportAt"] == seen["На кластере"]["sessionsAsOf"]

    assert await databases_seen(gql, org, users[Role.ACCOUNTANT]) == ["FORBIDDEN"], "a role that sees no database sees no cluster"
    assert await databases_seen(gql, org, users[Role.USER]) == {}, "a USER sees the databases granted to them only"
    membership = await Membership.get(user_id=users[Role.USER].id, organization_id=org.id)
    await DatabaseGrant.create(membership=membership, database=on)
    assert (await databases_seen(gql, org, users[Role.USER]))["На кластере"]["cluster"]["name"] == cluster.name
    _, others = await factories.create_team(Role.OWNER)
    await gql.token_for_password(others[Role.OWNER].email, factories.PASSWORD)
    body = await gql.execute(DATABASES, {"org": to_global_id("Organization", org.id)}, as_user=others[Role.OWNER].email)
    assert body["data"]["node"] is None


async def test_the_simulated_cluster_confirms_its_own_databases_now(gql, settings, monkeypatch):
    monkeypatch.setattr(settings, "cluster", "simulated")
    org, users, _, _, off = await team_on_a_cluster()
    before = utcnow()
    seen = await databases_seen(gql, org, users[Role.OWNER])
    assert dt.datetime.fromisoformat(seen["Своя"]["sessionsAsOf"]) >= before
    assert seen["На кластере"]["sessionsAsOf"] is None, "a database on a real cluster is confirmed by its agent only"
    await off.__class__.filter(id=off.id).update(external_id=f"ext-{uuid.uuid4().hex}")
    assert (await databases_seen(gql, org, users[Role.OWNER]))["Своя"]["sessionsAsOf"] is None, "nor one the provider sent"


async def version_of(org) -> int:
    from models.versions import DataVersion

    row = await DataVersion.get_or_none(scope=org.id)
    return row.version if row else 0


async def data_events(org) -> list[OrganizationEvent]:
    return list(await OrganizationEvent.filter(organization_id=org.id, topic=DATA).order_by("seq"))


async def test_a_stale_cluster_flips_disconnected_and_back_with_each_organizations_event(client, settings, app, monkeypatch):
    org, _, cluster, _, _ = await team_on_a_cluster()
    neighbour, _ = await factories.create_team(Role.OWNER)
    await clusters.place(await factories.create_database(neighbour), cluster, "other")
    elsewhere, _ = await factories.create_team(Role.OWNER)
    token = await agents.issue()
    before = {o.id: len(await data_events(o)) for o in (org, neighbour, elsewhere)}

    await snapshot(client, cluster, token)
    counts = {o.id: len(await data_events(o)) for o in (org, neighbour, elsewhere)}
    assert counts == {org.id: before[org.id] + 1, neighbour.id: before[neighbour.id] + 1, elsewhere.id: before[elsewhere.id]}
    await snapshot(client, cluster, token)
    assert len(await data_events(org)) == counts[org.id], "a report while connected is no change"

    assert cluster.name not in await clusters_liveness_pass(settings, app.state.broadcast), "not stale yet"
    version_before_flip = await version_of(org)
    monkeypatch.setattr(settings, "cluster_stale_seconds", 0.001)
    await asyncio.sleep(0.01)
    flipped = await clusters_liveness_pass(settings, app.state.broadcast)
    assert cluster.name in flipped and not (await Cluster.get(id=cluster.id)).connected
    assert len(await data_events(org)) == counts[org.id] + 1 and len(await data_events(neighbour)) == counts[neighbour.id] + 1
    assert (await data_events(org))[-1].payload == {"areas": ["cloud"]}
    assert version_before_flip < await version_of(org), "the cluster's row moves its organizations' data versions (cached answers)"
    assert cluster.name not in await clusters_liveness_pass(settings, app.state.broadcast), "flipped once"


async def test_an_open_dashboard_sees_the_cluster_go_silent(gql, app, live_server, settings, monkeypatch):
    org, users, cluster, _, _ = await team_on_a_cluster()
    await Cluster.filter(id=cluster.id).update(connected=True, last_report_at=utcnow() - dt.timedelta(minutes=5))
    socket = GraphQLSocket(live_server, TRANSPORT_WS)
    try:
        token = await gql.token_for_password(users[Role.OWNER].email, factories.PASSWORD)
        assert (await socket.connect(token))["type"] == "connection_ack"
        await socket.subscribe(
            """subscription($org: ID!) { organizationData(organizationId: $org) { areas organization {
              databases(first: 5) { edges { node { name cluster { connected } } } } } } }""",
            {"org": to_global_id("Organization", org.id)},
        )
        hub = app.state.event_hub
        for _ in range(200):
            if org.id in hub.feeds and hub.feeds[org.id].subscribers:
                break
            await asyncio.sleep(0.05)
        await clusters_liveness_pass(settings, app.state.broadcast)
        message = (await socket.next_data())["data"]["organizationData"]
        assert message["areas"] == ["CLOUD"]
        databases = {e["node"]["name"]: e["node"]["cluster"] for e in message["organization"]["databases"]["edges"]}
        assert databases["На кластере"] == {"connected": False}
    finally:
        await socket.close()
