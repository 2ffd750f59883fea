"""The snapshot door (issue 18): an agent reports a cluster's sessions per infobase, each list complete;
kabinet starts what it does not know, ends what is missing, refuses what the admission rules refuse,
and changes nothing the second time. A token reaches what it reaches: each attack below is a test."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from foundation.clock import utcnow
from foundation.ids import to_global_id
from models.cloud import Cluster, Database, Session, SessionStatus
from models.events import OrganizationEvent
from models.updates import UpdateRun, UpdateRunStatus
from resolvers.cloud import cluster_snapshot, clusters
from tests import agents
from tests.agents import bearer, subscribed
from tests.test_agent_updates import due_run, updatable_database
from tests.test_update_worker import ON_POSTGRES

SNAPSHOT = "/cluster/sessions/snapshot"


@pytest.fixture(autouse=True)
def agent_mode(settings, monkeypatch):
    monkeypatch.setattr(settings, "cluster", "agent")


def line(csid: str | None = None, *, app: str = "1CV8C", started: dt.datetime | None = None, **fields) -> dict:
    return {
        "clusterSessionId": csid or str(uuid.uuid4()), "userName": "Иванов И.И.", "host": "PC-BUH-01", "appId": app,
        "startedAt": (started or utcnow() - dt.timedelta(minutes=5)).isoformat(), **fields,
    }


def snapshot(cluster: str, *infobases: tuple[str, list], taken_at: dt.datetime | None = None) -> dict:
    return {
        "cluster": cluster, "takenAt": (taken_at or utcnow()).isoformat(),
        "infobases": [{"name": name, "sessions": lines} for name, lines in infobases],
    }


async def on_cluster(org, infobase: str, cluster: Cluster | None = None):
    cluster = cluster or await clusters.add(f"c-{uuid.uuid4().hex[:10]}")
    database = await updatable_database(org)
    await clusters.place(database, cluster, infobase)
    return cluster, database


@pytest.fixture
async def world():
    """Organization A with a database on a cluster (infobase buh_a), organization B with one on the same
    cluster (buh_b); an all-organizations token, A's token, and a token scoped to the cluster."""
    org_a, *_ = await subscribed(sessions_limit=3)
    org_b, *_ = await subscribed(sessions_limit=3)
    cluster, database_a = await on_cluster(org_a, "buh_a")
    _, database_b = await on_cluster(org_b, "buh_b", cluster)
    return {
        "cluster": cluster, "a": (org_a, database_a), "b": (org_b, database_b),
        "all": bearer(await agents.issue()), "agent_a": bearer(await agents.issue([org_a])),
        "cluster_agent": bearer(await cluster_token([cluster.name])),
    }


async def cluster_token(names: list[str]) -> str:
    from resolvers.cloud import agent_tokens

    _, token = await agent_tokens.create(
        f"cl-{uuid.uuid4().hex[:10]}", None, all_organizations=False, cluster_names=names, by=agents.OPERATOR
    )
    return token


async def live(database) -> dict[str, SessionStatus]:
    return {s.cluster_session_id: s.status for s in await Session.filter(database_id=database.id)}


async def test_a_snapshot_starts_the_unknown_ends_the_missing_and_changes_nothing_twice(client, world):
    cluster, (_, database), token = world["cluster"], world["a"], world["all"]
    one, two = line(), line()
    body = snapshot(cluster.name, ("buh_a", [one, two]))
    first = await client.post(SNAPSHOT, json=body, headers=token)
    assert first.status_code == 200, first.text
    answer = first.json()
    assert (answer["started"], answer["ended"], answer["refused"], answer["unknownInfobases"], answer["rejected"]) == (2, 0, [], [], [])
    assert answer["cluster"]["name"] == cluster.name and answer["cluster"]["connected"] is True
    assert await live(database) == {one["clusterSessionId"]: SessionStatus.ACTIVE, two["clusterSessionId"]: SessionStatus.ACTIVE}
    events = await OrganizationEvent.filter(organization_id=database.organization_id, topic="sessions").count()

    again = (await client.post(SNAPSHOT, json=body, headers=token)).json()
    assert (again["started"], again["ended"]) == (0, 0), "the same snapshot twice changes nothing"
    assert await OrganizationEvent.filter(organization_id=database.organization_id, topic="sessions").count() == events

    later = (await client.post(SNAPSHOT, json=snapshot(cluster.name, ("buh_a", [two])), headers=token)).json()
    assert (later["started"], later["ended"]) == (0, 1)
    assert await live(database) == {one["clusterSessionId"]: SessionStatus.ENDED, two["clusterSessionId"]: SessionStatus.ACTIVE}


async def test_a_terminating_session_missing_is_terminated_and_unlisted_infobases_are_untouched(client, world):
    cluster, (_, database_a), (_, database_b), token = world["cluster"], world["a"], world["b"], world["all"]
    s_a, s_b = line(), line()
    await client.post(SNAPSHOT, json=snapshot(cluster.name, ("buh_a", [s_a]), ("buh_b", [s_b])), headers=token)
    await Session.filter(cluster_session_id=s_a["clusterSessionId"]).update(status=SessionStatus.TERMINATING)
    answer = (await client.post(SNAPSHOT, json=snapshot(cluster.name, ("buh_a", [])), headers=token)).json()
    assert answer["ended"] == 1
    assert await live(database_a) == {s_a["clusterSessionId"]: SessionStatus.TERMINATED}
    assert await live(database_b) == {s_b["clusterSessionId"]: SessionStatus.ACTIVE}, "buh_b was not listed"


async def test_sessions_beyond_the_limit_are_refused_and_answered(client, world):
    cluster, (_, database), token = world["cluster"], world["a"], world["all"]
    lines = [line(started=utcnow() - dt.timedelta(minutes=10 - i)) for i in range(4)]  # the limit is 3
    answer = (await client.post(SNAPSHOT, json=snapshot(cluster.name, ("buh_a", lines)), headers=token)).json()
    assert answer["started"] == 3
    assert [r["clusterSessionId"] for r in answer["refused"]] == [lines[3]["clusterSessionId"]], "the latest is the one turned away"
    assert answer["refused"][0]["infobase"] == "buh_a" and "3" in answer["refused"][0]["reason"]
    assert (await live(database))[lines[3]["clusterSessionId"]] == SessionStatus.REFUSED
    again = (await client.post(SNAPSHOT, json=snapshot(cluster.name, ("buh_a", lines)), headers=token)).json()
    assert (again["started"], again["refused"]) == (0, []), "a refused session still listed is known: not refused again"


async def test_a_place_freed_in_the_same_snapshot_admits_the_newcomer(client, world):
    """At the limit (3), one user logs off and another logs in between two polls: the newcomer is admitted."""
    cluster, (_, database), token = world["cluster"], world["a"], world["all"]
    lines = [line() for _ in range(3)]
    await client.post(SNAPSHOT, json=snapshot(cluster.name, ("buh_a", lines)), headers=token)
    newcomer = line(started=utcnow() - dt.timedelta(seconds=30))
    answer = (await client.post(SNAPSHOT, json=snapshot(cluster.name, ("buh_a", [*lines[1:], newcomer])), headers=token)).json()
    assert (answer["started"], answer["ended"], answer["refused"]) == (1, 1, [])
    assert (await live(database))[newcomer["clusterSessionId"]] == SessionStatus.ACTIVE


async def test_a_bad_line_is_refused_alone_and_its_session_left_as_it_was(client, world):
    cluster, (_, database), token = world["cluster"], world["a"], world["all"]
    kept = line()
    await client.post(SNAPSHOT, json=snapshot(cluster.name, ("buh_a", [kept])), headers=token)
    bad_kept = {**kept, "startedAt": "yesterday"}
    fresh, background = line(), line(app="BackgroundJob")
    body = snapshot(cluster.name, ("buh_a", [bad_kept, line(userName="x" * 201), fresh, background, "text"]), ("tmp_copy", []))
    answer = (await client.post(SNAPSHOT, json=body, headers=token)).json()
    assert answer["rejected"] == [
        {"path": "infobases[0].sessions[0]", "field": "startedAt", "reason": "not an ISO 8601 date-time"},
        {"path": "infobases[0].sessions[1]", "field": "userName", "reason": "longer than 200 characters"},
        {"path": "infobases[0].sessions[4]", "field": None, "reason": "a session is an object"},
    ]
    assert answer["unknownInfobases"] == ["tmp_copy"]
    assert (answer["started"], answer["ended"]) == (1, 0), "the rest applies; a background job is no user's session"
    assert await live(database) == {kept["clusterSessionId"]: SessionStatus.ACTIVE, fresh["clusterSessionId"]: SessionStatus.ACTIVE}


async def test_app_ids_map_to_client_kinds(client, world):
    cluster, (_, database), token = world["cluster"], world["a"], world["all"]
    lines = [line(app=app) for app in ("1CV8C", "WebClient", "MobileClient")]
    await client.post(SNAPSHOT, json=snapshot(cluster.name, ("buh_a", lines)), headers=token)
    kinds = {s.cluster_session_id: s.client_kind.value for s in await Session.filter(database_id=database.id)}
    assert [kinds[x["clusterSessionId"]] for x in lines] == ["THIN_CLIENT", "WEB_CLIENT", "MOBILE"]
    assert cluster_snapshot.APP_CLIENT_KINDS["1CV8"].value == "RDP"


async def test_the_bounds_and_the_whole_snapshot_refusals(client, world, settings):
    cluster, token = world["cluster"], world["all"]
    too_many = {"cluster": cluster.name, "takenAt": utcnow().isoformat(), "infobases": [{"name": f"i{i}", "sessions": []} for i in range(2001)]}
    answer = await client.post(SNAPSHOT, json=too_many, headers=token)
    assert (answer.status_code, answer.json()["error"]["field"]) == (400, "infobases")
    sessions = snapshot(cluster.name, ("buh_a", [{} for _ in range(20_001)]))
    answer = await client.post(SNAPSHOT, json=sessions, headers=token)
    assert (answer.status_code, answer.json()["error"]["field"]) == (400, "infobases")
    future = snapshot(cluster.name, ("buh_a", []), taken_at=utcnow() + dt.timedelta(hours=1))
    assert (await client.post(SNAPSHOT, json=future, headers=token)).json()["error"]["field"] == "takenAt"
    unknown = await client.post(SNAPSHOT, json=snapshot("no-such", ("buh_a", [])), headers=token)
    assert (unknown.status_code, unknown.json()["error"]) == (404, {"code": "NOT_FOUND", "message": "No such cluster.", "field": "cluster"})
    big = b'{"cluster": "' + b"x" * settings.agent_snapshot_max_body_bytes + b'"}'
    assert (await client.post(SNAPSHOT, content=big, headers={**token, "Content-Type": "application/json"})).status_code == 413


async def test_an_older_snapshot_than_the_last_changes_nothing(client, world):
    cluster, (_, database), token = world["cluster"], world["a"], world["all"]
    now = utcnow()
    await client.post(SNAPSHOT, json=snapshot(cluster.name, ("buh_a", [line()]), taken_at=now), headers=token)
    stale = await client.post(SNAPSHOT, json=snapshot(cluster.name, ("buh_a", []), taken_at=now - dt.timedelta(seconds=10)), headers=token)
    assert (stale.status_code, stale.json()["error"]["field"]) == (409, "takenAt")
    assert set((await live(database)).values()) == {SessionStatus.ACTIVE}


async def test_an_agent_whose_clock_ran_ahead_and_was_set_right_is_not_refused(client, world):
    cluster, token = world["cluster"], world["all"]
    ahead = await client.post(SNAPSHOT, json=snapshot(cluster.name, ("buh_a", []), taken_at=utcnow() + dt.timedelta(minutes=4)), headers=token)
    assert ahead.status_code == 200 and dt.datetime.fromisoformat(ahead.json()["cluster"]["lastReportAt"]) <= utcnow()
    on_time = await client.post(SNAPSHOT, json=snapshot(cluster.name, ("buh_a", [])), headers=token)
    assert on_time.status_code == 200, on_time.text


async def test_a_session_started_after_the_snapshot_was_taken_is_not_ended_by_it(client, world):
    cluster, (org, database), token = world["cluster"], world["a"], world["all"]
    taken = utcnow() - dt.timedelta(seconds=5)
    started = await client.post("/cluster/sessions/started", json={
        "databaseId": to_global_id("Database", database.id), "clusterSessionId": "late", "userName": "Петров",
        "clientKind": "THIN_CLIENT", "startedAt": utcnow().isoformat(),
    }, headers=token)
    assert started.status_code == 201
    answer = (await client.post(SNAPSHOT, json=snapshot(cluster.name, ("buh_a", []), taken_at=taken), headers=token)).json()
    assert answer["ended"] == 0 and (await live(database))["late"] == SessionStatus.ACTIVE


# ------------------------------------------------------------------------------ reach: the attacker's read


async def test_an_organizations_token_applies_only_its_infobases_and_does_not_mark_the_cluster_live(client, world):
    """Organization A's agent names B's infobase: answered unknown, B's sessions untouched; and since the
    cluster holds B's database too, A's report does not make B's list look live."""
    cluster, (_, database_b) = world["cluster"], world["b"]
    b_session = line()
    await client.post(SNAPSHOT, json=snapshot(cluster.name, ("buh_b", [b_session])), headers=world["cluster_agent"])
    await Cluster.filter(id=cluster.id).update(connected=False)
    forged = snapshot(cluster.name, ("buh_a", [line()]), ("buh_b", [line()]))
    answer = (await client.post(SNAPSHOT, json=forged, headers=world["agent_a"])).json()
    assert answer["unknownInfobases"] == ["buh_b"] and answer["started"] == 1
    assert await live(database_b) == {b_session["clusterSessionId"]: SessionStatus.ACTIVE}, "B's session neither ended nor added to"
    assert answer["cluster"]["connected"] is False and not (await Cluster.get(id=cluster.id)).connected


async def test_an_organizations_token_learns_no_cluster_it_has_no_database_on(client, world):
    org_c, *_ = await subscribed()
    other, _ = await on_cluster(org_c, "buh_c")
    away = await client.post(SNAPSHOT, json=snapshot(other.name, ("buh_c", [])), headers=world["agent_a"])
    none = await client.post(SNAPSHOT, json=snapshot("no-such", ("buh_c", [])), headers=world["agent_a"])
    assert (away.status_code, away.json()) == (none.status_code, none.json()) == (404, away.json())


async def test_a_cluster_token_reaches_its_clusters_only(client, world):
    org_c, *_ = await subscribed()
    other, database_c = await on_cluster(org_c, "buh_c")
    away = await client.post(SNAPSHOT, json=snapshot(other.name, ("buh_c", [line()])), headers=world["cluster_agent"])
    assert (away.status_code, away.json()["error"]["field"]) == (404, "cluster"), "answered as a cluster that does not exist"
    assert await live(database_c) == {}
    # nor through the legacy doors: a session of C's database, by cluster session id or by id
    session = await Session.create(
        organization=org_c, database=database_c, user_name="Чужой", client_kind="THIN_CLIENT", started_at=utcnow(),
        status=SessionStatus.TERMINATING, cluster_session_id="c-1",
    )
    token = world["cluster_agent"]
    ended = await client.post("/cluster/sessions/ended", json={"clusterSessionId": "c-1"}, headers=token)
    done = await client.post(f"/cluster/terminations/{to_global_id('Session', session.id)}/done", headers=token)
    refused = await client.post(f"/cluster/terminations/{to_global_id('Session', session.id)}/refused", json={"reason": "x"}, headers=token)
    assert (ended.status_code, done.status_code, refused.status_code) == (404, 404, 404)
    listed = (await client.get("/cluster/terminations", params={"limit": 500}, headers=token)).json()["terminations"]
    assert to_global_id("Session", session.id) not in {t["sessionId"] for t in listed}
    started = await client.post("/cluster/sessions/started", json={
        "organizationCode": org_c.code, "clusterSessionId": "c-2", "userName": "x", "clientKind": "THIN_CLIENT",
        "startedAt": utcnow().isoformat(),
    }, headers=token)
    assert started.json()["error"]["code"] == "NOT_FOUND", "an organization is not a cluster token's to report into"
    limits = await client.get("/cluster/limits", params={"organizationCode": org_c.code}, headers=token)
    assert limits.json() == {"organizations": []}
    assert (await client.get("/cluster/limits", headers=token)).json() == {"organizations": []}
    assert (await Session.get(id=session.id)).status == SessionStatus.TERMINATING


async def test_the_same_cluster_session_id_in_two_databases_is_two_sessions(client, world):
    """A cluster names a session within its infobase: identity is (database, clusterSessionId)."""
    cluster, (_, a), (_, b), token = world["cluster"], world["a"], world["b"], world["all"]
    same = line("00000000-0000-0000-0000-000000000001")
    answer = (await client.post(SNAPSHOT, json=snapshot(cluster.name, ("buh_a", [same]), ("buh_b", [same])), headers=token)).json()
    assert answer["started"] == 2
    assert await live(a) == await live(b) == {same["clusterSessionId"]: SessionStatus.ACTIVE}


# ------------------------------------------------------------------------------ terminations, claims


async def test_terminations_name_cluster_and_infobase_and_a_refusal_makes_it_active_again(client, world):
    cluster, (_, database), token = world["cluster"], world["a"], world["agent_a"]
    s = line()
    await client.post(SNAPSHOT, json=snapshot(cluster.name, ("buh_a", [s])), headers=token)
    session = await Session.get(cluster_session_id=s["clusterSessionId"])
    await Session.filter(id=session.id).update(status=SessionStatus.TERMINATING, termination_requested_at=utcnow())
    listed = (await client.get("/cluster/terminations", params={"cluster": cluster.name}, headers=token)).json()["terminations"]
    assert [(t["cluster"], t["infobase"], t["clusterSessionId"]) for t in listed] == [(cluster.name, "buh_a", s["clusterSessionId"])]
    assert (await client.get("/cluster/terminations", params={"cluster": "no-such"}, headers=token)).json() == {"terminations": []}

    path = f"/cluster/terminations/{to_global_id('Session', session.id)}/refused"
    refused = await client.post(path, json={"reason": "Сеанс защищён от завершения"}, headers=token)
    assert refused.status_code == 200 and refused.json()["changed"] is True
    assert refused.json()["session"]["status"] == "ACTIVE"
    assert refused.json()["session"]["refusalReason"] == "Сеанс защищён от завершения"
    assert (await client.post(path, json={"reason": "again"}, headers=token)).json()["changed"] is False
    event = await OrganizationEvent.filter(organization_id=database.organization_id, topic="sessions").order_by("-seq").first()
    assert event.kind == "TERMINATION_REFUSED"


async def test_a_claim_narrows_to_a_cluster_and_a_cluster_token_claims_only_its_clusters_runs(client, world):
    cluster, (org_a, database_a) = world["cluster"], world["a"]
    org_c, *_ = await subscribed()
    _, database_c = await on_cluster(org_c, "buh_c")
    run_a, run_c = await due_run(database_a), await due_run(database_c)
    token = world["cluster_agent"]
    claimed = (await client.post("/cluster/updates/claim", json={}, headers=token)).json()["run"]
    assert claimed["id"] == to_global_id("UpdateRun", run_a.id)
    assert (claimed["database"]["cluster"], claimed["database"]["infobase"]) == (cluster.name, "buh_a")
    assert (await client.post("/cluster/updates/claim", json={}, headers=token)).json() == {"run": None}
    assert (await UpdateRun.get(id=run_c.id)).status == UpdateRunStatus.SCHEDULED, "C's run is not on its cluster"
    wrong = await client.post("/cluster/updates/claim", json={"cluster": cluster.name}, headers=world["all"])
    assert wrong.json() == {"run": None}, "the all-organizations agent narrowed to the cluster: C's run is elsewhere"
    claimed_c = await client.post("/cluster/updates/claim", json={"organizationCodes": [org_c.code]}, headers=world["all"])
    assert claimed_c.json()["run"]["id"] == to_global_id("UpdateRun", run_c.id)


# ------------------------------------------------------------------------------ the operator's CLI, the provider's record


async def test_the_operator_adds_lists_attaches_and_detaches_clusters_and_scopes_a_token_to_them(client, settings):
    from tests.processes import kabinet_cli

    org, *_ = await subscribed()
    database = await updatable_database(org)
    name = f"cli-{uuid.uuid4().hex[:8]}"
    await kabinet_cli(settings, "cluster", "add", name, "--description", "Москва", "--time-zone", "Europe/Moscow")
    await kabinet_cli(settings, "cluster", "add", name, status=1)  # taken
    await kabinet_cli(settings, "cluster", "add", "Main Cluster", status=1)  # not a name
    await kabinet_cli(settings, "cluster", "add", f"{name}-tz", "--time-zone", "Mars/Olympus", status=1)
    await kabinet_cli(settings, "cluster", "attach", "--cluster", name, "--database", to_global_id("Database", database.id), "--infobase", "buh")
    [row] = [r for r in (await kabinet_cli(settings, "cluster", "list")).splitlines() if r.startswith(name + "\t")]
    assert row.split("\t")[1:3] == ["1 databases", "disconnected"]
    other = await updatable_database(org)
    await kabinet_cli(settings, "cluster", "attach", "--cluster", name, "--database", to_global_id("Database", other.id), "--infobase", "buh", status=1)
    await kabinet_cli(settings, "cluster", "attach", "--cluster", "no-such", "--database", to_global_id("Database", other.id), "--infobase", "x", status=1)

    token = (await kabinet_cli(settings, "agent", "token", "create", "--name", name, "--clusters", name)).strip()
    await kabinet_cli(settings, "agent", "token", "create", "--name", f"{name}-2", "--clusters", name, "--all-organizations", status=1)
    await kabinet_cli(settings, "agent", "token", "create", "--name", f"{name}-3", "--clusters", "no-such", status=1)
    [listed] = [r for r in (await kabinet_cli(settings, "agent", "token", "list")).splitlines() if r.startswith(name + "\t")]
    assert f"clusters {name}" in listed
    answer = await client.post(SNAPSHOT, json=snapshot(name, ("buh", [line()])), headers=bearer(token))
    assert answer.json()["started"] == 1 and answer.json()["cluster"]["connected"] is True

    await Database.filter(id=database.id).update(external_id=f"IB-{name}")
    await kabinet_cli(settings, "cluster", "detach", "--database", f"IB-{name}")  # the provider's external id names it too
    await kabinet_cli(settings, "cluster", "detach", "--database", "IB-NO-SUCH", status=1)
    assert (await client.post(SNAPSHOT, json=snapshot(name, ("buh", [])), headers=bearer(token))).json()["unknownInfobases"] == ["buh"]


async def test_the_providers_database_record_places_it_on_a_cluster():
    from resolvers.provider import records
    from resolvers.provider.records import Outcome, Record
    from tests.test_provider_records import actor

    cluster = await clusters.add(f"pr-{uuid.uuid4().hex[:8]}")
    org, *_ = await subscribed()
    base = {"external_id": f"db-{uuid.uuid4().hex}", "organization": org.code, "name": "Бухгалтерия",
            "configuration": "Бухгалтерия предприятия", "version": "3.0.150.20", "is_typical": "да"}

    async def send(*values):
        return await records.apply(actor(), "database", [Record(i, v) for i, v in enumerate(values, start=1)])

    org.external_id = org.external_id or f"org-{uuid.uuid4().hex}"
    await org.save()
    base["organization"] = org.external_id
    [created] = await send({**base, "cluster": cluster.name, "infobase": "buh"})
    assert created.outcome is Outcome.CREATED, created
    database = await Database.get(external_id=base["external_id"])
    assert (database.cluster_id, database.infobase) == (cluster.id, "buh")
    [unchanged] = await send(base)
    assert unchanged.outcome is Outcome.UNCHANGED, "a record without cluster or infobase leaves them as they were"
    refused = await send(
        {**base, "cluster": "no-such", "infobase": "buh"}, {**base, "cluster": cluster.name},
        {**base, "external_id": f"db-{uuid.uuid4().hex}", "cluster": cluster.name, "infobase": "buh"},
    )
    assert [(r.outcome, r.field) for r in refused] == [(Outcome.REFUSED, "cluster"), (Outcome.REFUSED, "infobase"), (Outcome.REFUSED, "infobase")]
    [moved] = await send({**base, "cluster": None, "infobase": None})
    assert moved.outcome is Outcome.UPDATED
    await database.refresh_from_db()
    assert (database.cluster_id, database.infobase) == (None, None)


async def test_the_owner_watching_sees_a_termination_refused_and_asks_again(gql, client, live_server, world):
    """terminateSession → TERMINATING; the cluster refuses → TERMINATION_REFUSED, ACTIVE with the reason;
    asking again clears it. Over a real WebSocket."""
    from tests import factories
    from tests.factories import Role
    from tests.live import TRANSPORT_WS, GraphQLSocket

    org, users = await factories.create_team(Role.OWNER)
    await subscribed_limit(org)
    _, database = await on_cluster(org, "buh", world["cluster"])
    s = line()
    await client.post(SNAPSHOT, json=snapshot(world["cluster"].name, ("buh", [s])), headers=world["all"])
    session = await Session.get(database_id=database.id, cluster_session_id=s["clusterSessionId"])
    session_id = to_global_id("Session", session.id)
    owner = users[Role.OWNER].email
    socket = GraphQLSocket(live_server, TRANSPORT_WS)
    terminate = "mutation($id: ID!) { terminateSession(sessionId: $id) { session { status refusalReason } userErrors { code } } }"
    try:
        await socket.connect(await gql.token_for_password(owner, factories.PASSWORD))
        await socket.subscribe(
            "subscription($org: ID!) { sessions(organizationId: $org) { sessions { status } event { kind session { status refusalReason } } } }",
            {"org": to_global_id("Organization", org.id)},
        )
        assert len((await socket.next_data())["data"]["sessions"]["sessions"]) == 1
        assert (await gql.execute(terminate, {"id": session_id}, as_user=owner))["data"]["terminateSession"]["userErrors"] == []
        assert (await socket.next_data())["data"]["sessions"]["event"]["kind"] == "TERMINATING"
        await client.post(f"/cluster/terminations/{session_id}/refused", json={"reason": "Сеанс занят"}, headers=world["all"])
        update = (await socket.next_data())["data"]["sessions"]
        assert update["event"] == {"kind": "TERMINATION_REFUSED", "session": {"status": "ACTIVE", "refusalReason": "Сеанс занят"}}
        assert update["sessions"] == [{"status": "ACTIVE"}]
        again = (await gql.execute(terminate, {"id": session_id}, as_user=owner))["data"]["terminateSession"]
        assert again["session"] == {"status": "TERMINATING", "refusalReason": None}
    finally:
        await socket.close()


async def subscribed_limit(org) -> None:
    from models.cloud import CloudSubscription

    today = utcnow().date()
    await CloudSubscription.create(organization=org, tariff="Облако", sessions_limit=5, databases_limit=5,
                                   starts_on=today.replace(day=1), ends_on=today + dt.timedelta(days=30))


@pytest.mark.skipif(not ON_POSTGRES, reason="two writers at once are PostgreSQL's; SQLite has one writer")
async def test_a_session_the_one_session_door_reports_meanwhile_is_known_to_the_snapshot_not_inserted_twice(client, world):
    """The snapshot holds the organization's admissions before it reads what kabinet knows: a session
    reported by the one-session door while the snapshot waits is found, not inserted again (was a 500
    on the unique (database, cluster session id))."""
    import asyncio

    from tortoise.transactions import in_transaction

    from models.cloud import ClientKind
    from models.organizations import Organization

    cluster, (org, database), token = world["cluster"], world["a"], world["all"]
    csid, locked = str(uuid.uuid4()), asyncio.Event()

    async def the_one_session_door():
        async with in_transaction() as connection:
            await Organization.filter(id=org.id).using_db(connection).select_for_update().get()
            locked.set()
            await asyncio.sleep(0.5)  # the snapshot arrives and waits for the organization
            await Session.create(
                organization_id=org.id, database_id=database.id, user_name="Иванов И.И.", client_kind=ClientKind.THIN_CLIENT,
                started_at=utcnow() - dt.timedelta(minutes=5), cluster_session_id=csid, using_db=connection,
            )

    door = asyncio.create_task(the_one_session_door())
    await locked.wait()
    answer = await client.post(SNAPSHOT, json=snapshot(cluster.name, ("buh_a", [line(csid)])), headers=token)
    await door
    assert answer.status_code == 200, answer.text
    assert (answer.json()["started"], await live(database)) == (0, {csid: SessionStatus.ACTIVE})
