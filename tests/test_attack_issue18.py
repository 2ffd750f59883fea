"""Issue 18's new doors read by an attacker (the snapshot, terminations refused, claims by cluster, the
staff putting people in, Database.cluster): each hole found is a test here, with its fix; what held and
no other test covered is here too."""

from __future__ import annotations

import uuid

import pytest

from foundation.clock import utcnow
from foundation.ids import to_global_id
from models.cloud import Session, SessionStatus
from models.events import OrganizationEvent
from resolvers.cloud import clusters
from resolvers.common.context import SystemActor
from tests.test_cluster_snapshot import SNAPSHOT, agent_mode, line, live, snapshot, world  # noqa: F401 (fixtures)


@pytest.mark.parametrize("token", ["all", "agent_a", "cluster_agent"])
@pytest.mark.parametrize("name", ["\x00", "main\x00", "{cluster}\x00", "MAIN", " {cluster}"])
async def test_a_snapshot_naming_no_clusters_name_is_a_404_not_a_500(client, world, token, name):
    """Was: a NUL in `cluster` reached PostgreSQL's WHERE name = $1 and failed there (500); a text
    that is no cluster's name is now answered as an unknown cluster, with nothing asked of the database."""
    body = {"cluster": name.format(cluster=world["cluster"].name), "takenAt": utcnow().isoformat(), "infobases": []}
    answer = await client.post(SNAPSHOT, json=body, headers=world[token])
    assert (answer.status_code, answer.json()["error"]["field"]) == (404, "cluster"), answer.text


@pytest.mark.parametrize("status", [SessionStatus.REFUSED, SessionStatus.ENDED, SessionStatus.TERMINATED])
async def test_a_refusal_reported_for_a_session_that_is_over_never_brings_it_back(client, world, status):
    """Held: `…/refused` moves only TERMINATING → ACTIVE. A session never admitted (REFUSED, which carries a
    refusal reason too), or over, stays as it is: the agent cannot revive a place beyond the limit."""
    (org, database), token = world["a"], world["agent_a"]
    session = await Session.create(
        organization=org, database=database, user_name="Иванов", client_kind="THIN_CLIENT", started_at=utcnow(),
        ended_at=utcnow(), status=status, cluster_session_id=f"over-{uuid.uuid4()}",
        refusal_reason="The subscription allows 3 concurrent sessions and all are in use." if status is SessionStatus.REFUSED else None,
    )
    answer = await client.post(
        f"/cluster/terminations/{to_global_id('Session', session.id)}/refused", json={"reason": "Сеанс защищён"}, headers=token,
    )
    assert answer.status_code in (200, 409), answer.text
    assert answer.status_code == 409 or answer.json()["changed"] is False
    assert (await Session.get(id=session.id)).status == status


async def _three_live_sessions(client, world) -> list[str]:
    cluster = world["cluster"]
    lines = [line(), line(), line()]  # organization A's limit is 3: all its places taken
    answer = await client.post(SNAPSHOT, json=snapshot(cluster.name, ("buh_a", lines)), headers=world["cluster_agent"])
    assert answer.json()["started"] == 3, answer.text
    first = await Session.get(cluster_session_id=lines[0]["clusterSessionId"])
    await Session.filter(id=first.id).update(status=SessionStatus.TERMINATING, termination_requested_at=utcnow())
    return [entry["clusterSessionId"] for entry in lines]


async def _admits_a_new_session(client, world) -> bool:
    (_, database), new = world["a"], line()
    answer = await client.post("/cluster/sessions/started", headers=world["agent_a"], json={
        "databaseId": to_global_id("Database", database.id), "clusterSessionId": new["clusterSessionId"], "userName": "Петров",
        "clientKind": "THIN_CLIENT", "startedAt": new["startedAt"],
    })
    return answer.status_code == 201


async def test_a_database_taken_off_its_cluster_leaves_no_session_live_for_ever(client, world):
    """Was: the operator detached a database (kabinet cluster detach) and its sessions stayed ACTIVE
    (TERMINATING) for ever: its cluster's agent no longer reached them (404), no snapshot listed them,
    and they held the organization's places, so every new session was REFUSED. Leaving a cluster now
    ends its sessions there (ENDED, TERMINATED), with their events."""
    (org, database) = world["a"]
    first, *others = await _three_live_sessions(client, world)
    assert not await _admits_a_new_session(client, world), "the places are taken"
    events = await OrganizationEvent.filter(organization_id=org.id, topic="sessions").count()

    assert await clusters.attach(SystemActor("operator"), database, None, None)

    statuses = await live(database)
    assert statuses[first] == SessionStatus.TERMINATED and {statuses[csid] for csid in others} == {SessionStatus.ENDED}
    assert await OrganizationEvent.filter(organization_id=org.id, topic="sessions").count() == events + 3
    assert await _admits_a_new_session(client, world), "the places are free again"


async def test_a_database_the_provider_moves_to_another_cluster_leaves_no_session_live_for_ever(client, world):
    """The same through the provider's database record (cluster and infobase): its sessions on the
    cluster it left end; a record that leaves the database where it was ends nothing."""
    from resolvers.provider import records
    from resolvers.provider.records import Outcome, Record
    from tests.test_provider_records import actor

    (org, database) = world["a"]
    org.external_id = org.external_id or f"org-{uuid.uuid4().hex}"
    await org.save(update_fields=["external_id"])
    database.external_id = f"db-{uuid.uuid4().hex}"
    await database.save(update_fields=["external_id"])
    base = {"external_id": database.external_id, "organization": org.external_id, "name": database.name,
            "configuration": database.configuration, "version": database.version, "is_typical": "да",
            "size_mb": database.size_mb}
    await _three_live_sessions(client, world)
    [same] = await records.apply(actor(), "database", [Record(1, {**base, "cluster": world["cluster"].name, "infobase": "buh_a"})])
    assert same.outcome is Outcome.UNCHANGED and set((await live(database)).values()) == {SessionStatus.ACTIVE, SessionStatus.TERMINATING}

    other = await clusters.add(f"other-{uuid.uuid4().hex[:8]}")
    [moved] = await records.apply(actor(), "database", [Record(1, {**base, "cluster": other.name, "infobase": "buh_a"})])
    assert moved.outcome is Outcome.UPDATED, moved
    assert set((await live(database)).values()) == {SessionStatus.ENDED, SessionStatus.TERMINATED}


async def test_a_cluster_token_naming_another_cluster_gets_what_an_unknown_name_gets(client, world):
    """Held: `?cluster=` and a claim's `cluster` narrow within the token's reach, never beyond: another
    cluster's termination and due run are answered exactly as a cluster that does not exist."""
    from models.updates import UpdateRun, UpdateRunStatus
    from tests.agents import subscribed
    from tests.test_agent_updates import due_run
    from tests.test_cluster_snapshot import on_cluster

    org_c, *_ = await subscribed()
    other, database_c = await on_cluster(org_c, "buh_c")
    session = await Session.create(
        organization=org_c, database=database_c, user_name="Чужой", client_kind="THIN_CLIENT", started_at=utcnow(),
        status=SessionStatus.TERMINATING, termination_requested_at=utcnow(), cluster_session_id=f"c-{uuid.uuid4()}",
    )
    run = await due_run(database_c)
    token = world["cluster_agent"]
    for name in (other.name, "no-such"):
        listed = await client.get("/cluster/terminations", params={"cluster": name}, headers=token)
        assert listed.json() == {"terminations": []}, listed.text
        claimed = await client.post("/cluster/updates/claim", json={"cluster": name}, headers=token)
        assert claimed.json() == {"run": None}, claimed.text
    assert (await Session.get(id=session.id)).status == SessionStatus.TERMINATING
    assert (await UpdateRun.get(id=run.id)).status == UpdateRunStatus.SCHEDULED


def test_a_long_address_is_refused_without_being_echoed():
    """Staff's and owners' invitations name an address someone typed: a 60 KB one is refused by a
    short message, not sent back whole."""
    from resolvers.common.errors import UserFacingError
    from resolvers.common.validation import email

    with pytest.raises(UserFacingError) as refused:
        email("a" * 60_000 + "@example.com", "email")
    assert len(str(refused.value)) < 200 and refused.value.field == "email"


async def test_snapshots_are_read_one_at_a_time_per_process(app, client, world):
    """A snapshot's body (up to 8 MiB, many times that once parsed) is read only with the process's one
    snapshot slot: agents sending many at once make a process hold one body, not many."""
    import asyncio

    from kabinet.agent_api import snapshot_slot
    from tests.test_cluster_snapshot import SNAPSHOT, snapshot

    body = snapshot(world["cluster"].name, ("buh_a", []))
    async with snapshot_slot(app):
        waiting = asyncio.create_task(client.post(SNAPSHOT, json=body, headers=world["all"]))
        await asyncio.sleep(0.3)
        assert not waiting.done(), "served while another snapshot held the slot"
    assert (await waiting).status_code == 200
