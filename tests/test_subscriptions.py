"""Live session lists over real WebSockets, with both sub-protocols."""

from __future__ import annotations

import asyncio

import pytest

from events.log import SESSIONS, PendingAnnouncements, session_payload
from models.cloud import SessionStatus
from tests import factories
from tests.live import LEGACY_WS, TRANSPORT_WS, GraphQLSocket
from foundation.clock import utcnow
from tests.test_live_sessions import cluster_ends

SESSIONS_SUBSCRIPTION = """subscription($org: ID!) { sessions(organizationId: $org) {
  sessions { id userName status } event { kind at session { id status userName } } } }"""


async def organization_id(gql, email: str) -> str:
    body = await gql.execute("{ organizations { edges { node { id } } } }", as_user=email)
    return body["data"]["organizations"]["edges"][0]["node"]["id"]


async def start_session(app, database, user_name: str):
    """A session the cluster reports, committed and announced as the cluster worker does."""
    announcements = PendingAnnouncements()
    session = await factories.create_session(database, user_name=user_name)
    await announcements.record(database.organization_id, SESSIONS, "STARTED", session_payload(session))
    await announcements.announce(app.state.broadcast)
    return session


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_an_owner_watches_the_live_session_list_change(gql, app, live_server, protocol):
    org, users = await factories.create_team()
    database = await factories.create_database(org)
    await factories.create_session(database, user_name="Бухгалтер")
    email = users[factories.Role.OWNER].email
    token = await gql.token_for_password(email, factories.PASSWORD)
    socket = GraphQLSocket(live_server, protocol)
    try:
        assert (await socket.connect(token))["type"] == "connection_ack"
        from foundation.ids import to_global_id

        await socket.subscribe(SESSIONS_SUBSCRIPTION, {"org": to_global_id("Organization", org.id)})
        first = (await socket.next_data())["data"]["sessions"]
        assert first["event"] is None and [s["userName"] for s in first["sessions"]] == ["Бухгалтер"]

        started = await start_session(app, database, "Кладовщик")
        update = (await socket.next_data())["data"]["sessions"]
        assert update["event"]["kind"] == "STARTED" and update["event"]["session"]["userName"] == "Кладовщик"
        assert {s["userName"] for s in update["sessions"]} == {"Бухгалтер", "Кладовщик"}

        await started.__class__.filter(id=started.id).update(status=SessionStatus.TERMINATING, termination_requested_at=utcnow())
        # rounds until it is this one's turn: other tests' terminations may wait in the same database
        await cluster_ends(app, started)
        done = (await socket.next_data())["data"]["sessions"]
        assert done["event"]["kind"] == "TERMINATED" and done["event"]["session"]["status"] == "TERMINATED"
        assert [s["userName"] for s in done["sessions"]] == ["Бухгалтер"]
    finally:
        await socket.close()


async def test_a_socket_without_a_valid_token_is_closed_with_4403(live_server):
    socket = GraphQLSocket(live_server, TRANSPORT_WS)
    import websockets

    with pytest.raises(websockets.ConnectionClosed) as closed:
        await socket.connect("not-a-token")
        await socket.receive(timeout=5)
    assert closed.value.rcvd.code == 4403


async def test_legacy_clients_get_connection_error_for_a_bad_token(live_server):
    socket = GraphQLSocket(live_server, LEGACY_WS)
    try:
        message = await socket.connect(None)
        assert message["type"] == "connection_error"
    finally:
        await socket.close()


async def test_an_accountant_may_not_watch_sessions(gql, live_server):
    org, users = await factories.create_team(factories.Role.ACCOUNTANT)
    token = await gql.token_for_password(users[factories.Role.ACCOUNTANT].email, factories.PASSWORD)
    socket = GraphQLSocket(live_server, TRANSPORT_WS)
    try:
        await socket.connect(token)
        from foundation.ids import to_global_id

        await socket.subscribe(SESSIONS_SUBSCRIPTION, {"org": to_global_id("Organization", org.id)})
        message = await socket.receive()
        errors = message["payload"] if message["type"] == "error" else message["payload"].get("errors")
        assert errors[0]["extensions"]["code"] == "FORBIDDEN"
    finally:
        await socket.close()
    await asyncio.sleep(0)


async def test_identical_subscribers_share_one_expanded_result_per_event():
    from schema.subscription import SharedResults

    shared, builds = SharedResults(size=8), []

    async def build():
        builds.append(1)
        await asyncio.sleep(0.01)
        return object()

    results = await asyncio.gather(*(shared.get(("q", 1), build) for _ in range(50)))
    assert len(builds) == 1 and len({id(r) for r in results}) == 1
    assert await shared.get(("q", 2), build) is not results[0] and len(builds) == 2


async def test_a_failed_shared_build_leaves_the_others_to_build_it_themselves():
    from schema.subscription import SharedResults

    shared, calls = SharedResults(), []

    async def flaky():
        calls.append(1)
        await asyncio.sleep(0.01)
        if len(calls) == 1:
            raise RuntimeError("the first builder fails")
        return "ok"

    first, second = await asyncio.gather(shared.get("k", flaky), shared.get("k", flaky), return_exceptions=True)
    assert isinstance(first, RuntimeError) and second == "ok"
