"""Session changes made through the API reach live subscribers over real WebSockets (both sub-protocols):
in order, each once, only to those who may see them; slow, expired and removed subscribers are cut off."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import socket
import uuid

import jwt
import pytest
import websockets
from tortoise.transactions import in_transaction

from resolvers.identity.tokens import JWT_ALGORITHM, derived_key
from events.log import ACCESS, SESSIONS, PendingAnnouncements, record_event, session_payload
from models.cloud import ClientKind, Session, SessionStatus
from foundation.ids import to_global_id
from tests import factories
from tests.factories import Role
from tests.live import LEGACY_WS, OPEN_TIMEOUT, TRANSPORT_WS, GraphQLSocket
from workers.cluster import SimulatedCluster, carry_out_terminations

BOTH = pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])

SESSIONS_LIVE = """subscription($org: ID!, $db: ID) { sessions(organizationId: $org, databaseId: $db) {
  sessions { id status userName } event { kind session { id status userName } } } }"""
SESSION_EVENTS = """subscription($org: ID!, $db: ID) { sessionEvents(organizationId: $org, databaseId: $db) {
  kind at session { id status userName } } }"""
TERMINATE = """mutation($id: ID!) { terminateSession(sessionId: $id) { session { id status } userErrors { code } } }"""


def gid(type_name: str, pk: uuid.UUID) -> str:
    return to_global_id(type_name, pk)


async def watch(gql, live_server: str, protocol: str, email: str, query: str, variables: dict) -> GraphQLSocket:
    await as_member(gql, email)
    token = gql.tokens[email]
    sock = GraphQLSocket(live_server, protocol)
    assert (await sock.connect(token))["type"] == "connection_ack"
    await sock.subscribe(query, variables)
    return sock


async def as_member(gql, email: str) -> str:
    """Signs the factory user in (once); `gql.execute(..., as_user=email)` then uses their token."""
    if email not in gql.tokens:
        await gql.token_for_password(email, factories.PASSWORD)
    return email


async def terminate(gql, email: str, session: Session) -> None:
    await as_member(gql, email)
    body = await gql.execute(TERMINATE, {"id": gid("Session", session.id)}, as_user=email)
    assert body["data"]["terminateSession"]["userErrors"] == [], body


async def cluster_ends(app, *sessions: Session) -> None:
    """The (simulated) cluster carries out terminations until these sessions are TERMINATED."""
    for _ in range(20):
        await carry_out_terminations(SimulatedCluster(step_seconds=0), app.state.broadcast)
        if await Session.filter(id__in=[s.id for s in sessions], status=SessionStatus.TERMINATED).count() == len(sessions):
            return
    raise AssertionError("the cluster did not end the sessions")


async def start_session(app, database, *, user=None, user_name: str = "Кладовщик") -> Session:
    """A session the cluster reports: created and its STARTED event recorded in one transaction, then announced."""
    announcements = PendingAnnouncements()
    async with in_transaction():
        session = await Session.create(
            organization_id=database.organization_id, database_id=database.id, user=user, user_name=user_name,
            client_kind=ClientKind.RDP, host="PC-01", started_at=dt.datetime.now(dt.timezone.utc),
            status=SessionStatus.ACTIVE,
        )
        await announcements.record(database.organization_id, SESSIONS, "STARTED", session_payload(session))
    await announcements.announce(app.state.broadcast)
    return session


async def end_session(app, session: Session) -> None:
    """The user logs off: ENDED, as the cluster reports it."""
    announcements = PendingAnnouncements()
    async with in_transaction():
        session.status, session.ended_at = SessionStatus.ENDED, dt.datetime.now(dt.timezone.utc)
        await session.save(update_fields=["status", "ended_at"])
        await announcements.record(session.organization_id, SESSIONS, "ENDED", session_payload(session))
    await announcements.announce(app.state.broadcast)


def errors_of(message: dict) -> list[dict] | None:
    if message["type"] in ("error",):
        return message["payload"]
    if message["type"] in ("next", "data"):
        return message["payload"].get("errors")
    return None


async def next_error(sock: GraphQLSocket, timeout: float = 10) -> dict:
    """Skip data messages until one carrying errors: its first error."""
    while True:
        message = await sock.receive(timeout)
        errors = errors_of(message)
        if errors:
            return errors[0]
        assert message["type"] in ("next", "data"), message


# --------------------------------------------------------------------------------- termination


@BOTH
async def test_an_admins_termination_reaches_the_live_list_as_terminating_then_terminated(gql, app, live_server, protocol):
    org, users = await factories.create_team(Role.ADMIN)
    database = await factories.create_database(org)
    staying = await factories.create_session(database, user_name="Бухгалтер")
    leaving = await factories.create_session(database, user_name="Кладовщик")
    sock = await watch(gql, live_server, protocol, users[Role.OWNER].email, SESSIONS_LIVE, {"org": gid("Organization", org.id)})
    try:
        first = (await sock.next_data())["data"]["sessions"]
        assert first["event"] is None and len(first["sessions"]) == 2

        await terminate(gql, users[Role.ADMIN].email, leaving)
        update = (await sock.next_data())["data"]["sessions"]
        assert update["event"]["kind"] == "TERMINATING"
        assert update["event"]["session"] == {"id": gid("Session", leaving.id), "status": "TERMINATING", "userName": "Кладовщик"}
        assert {s["id"]: s["status"] for s in update["sessions"]} == {
            gid("Session", staying.id): "ACTIVE", gid("Session", leaving.id): "TERMINATING",
        }

        await cluster_ends(app, leaving)
        done = (await sock.next_data())["data"]["sessions"]
        assert done["event"]["kind"] == "TERMINATED" and done["event"]["session"]["status"] == "TERMINATED"
        assert [s["id"] for s in done["sessions"]] == [gid("Session", staying.id)]
    finally:
        await sock.close()


@BOTH
async def test_session_events_carry_terminating_then_terminated_in_order(gql, app, live_server, protocol):
    org, users = await factories.create_team()
    database = await factories.create_database(org)
    session = await factories.create_session(database)
    sock = await watch(gql, live_server, protocol, users[Role.OWNER].email, SESSION_EVENTS, {"org": gid("Organization", org.id)})
    try:
        await asyncio.sleep(0.2)  # sessionEvents sends nothing first: let it join the hub
        await terminate(gql, users[Role.OWNER].email, session)
        await cluster_ends(app, session)
        first = (await sock.next_data())["data"]["sessionEvents"]
        second = (await sock.next_data())["data"]["sessionEvents"]
        assert [first["kind"], second["kind"]] == ["TERMINATING", "TERMINATED"]
        assert first["session"]["id"] == second["session"]["id"] == gid("Session", session.id)
        assert first["at"] <= second["at"]
    finally:
        await sock.close()


async def test_terminate_all_announces_one_terminating_event_per_session(gql, live_server):
    org, users = await factories.create_team()
    database = await factories.create_database(org)
    sessions = [await factories.create_session(database, user_name=f"Оператор {i}") for i in range(3)]
    sock = await watch(gql, live_server, TRANSPORT_WS, users[Role.OWNER].email, SESSION_EVENTS, {"org": gid("Organization", org.id)})
    try:
        await asyncio.sleep(0.2)
        body = await gql.execute(
            "mutation($org: ID!) { terminateAllSessions(organizationId: $org) { sessions { id } userErrors { code } } }",
            {"org": gid("Organization", org.id)}, as_user=await as_member(gql, users[Role.OWNER].email),
        )
        assert len(body["data"]["terminateAllSessions"]["sessions"]) == 3
        events = [(await sock.next_data())["data"]["sessionEvents"] for _ in sessions]
        assert {e["kind"] for e in events} == {"TERMINATING"}
        assert {e["session"]["id"] for e in events} == {gid("Session", s.id) for s in sessions}
    finally:
        await sock.close()


async def test_a_refused_termination_announces_nothing(gql, live_server):
    org, users = await factories.create_team(Role.USER)
    database = await factories.create_database(org)
    owners = await factories.create_session(database, user=users[Role.OWNER], user_name="Директор")
    sock = await watch(gql, live_server, TRANSPORT_WS, users[Role.OWNER].email, SESSION_EVENTS, {"org": gid("Organization", org.id)})
    try:
        await asyncio.sleep(0.2)
        body = await gql.execute(TERMINATE, {"id": gid("Session", owners.id)}, as_user=await as_member(gql, users[Role.USER].email))
        assert body["data"]["terminateSession"]["userErrors"][0]["code"] == "FORBIDDEN"
        with pytest.raises(asyncio.TimeoutError):
            await sock.next_data(timeout=1.5)
    finally:
        await sock.close()


# --------------------------------------------------------------------------------- who sees what


@BOTH
async def test_a_user_sees_only_their_own_sessions_events(gql, app, live_server, protocol):
    org, users = await factories.create_team(Role.USER)
    database = await factories.create_database(org)
    others = await factories.create_session(database, user=users[Role.OWNER], user_name="Директор")
    own = await factories.create_session(database, user=users[Role.USER], user_name="Пользователь")
    org_id = gid("Organization", org.id)
    live = await watch(gql, live_server, protocol, users[Role.USER].email, SESSIONS_LIVE, {"org": org_id})
    events = await watch(gql, live_server, protocol, users[Role.USER].email, SESSION_EVENTS, {"org": org_id})
    try:
        first = (await live.next_data())["data"]["sessions"]
        assert [s["id"] for s in first["sessions"]] == [gid("Session", own.id)]
        await asyncio.sleep(0.2)

        await terminate(gql, users[Role.OWNER].email, others)  # not theirs: they must not hear of it
        await start_session(app, database, user=users[Role.OWNER], user_name="Директор")
        await terminate(gql, users[Role.OWNER].email, own)

        update = (await live.next_data())["data"]["sessions"]
        assert update["event"]["session"]["id"] == gid("Session", own.id) and update["event"]["kind"] == "TERMINATING"
        assert [s["id"] for s in update["sessions"]] == [gid("Session", own.id)]
        event = (await events.next_data())["data"]["sessionEvents"]
        assert (event["kind"], event["session"]["id"]) == ("TERMINATING", gid("Session", own.id))
    finally:
        await live.close()
        await events.close()


@BOTH
async def test_a_subscriber_of_one_database_sees_only_that_database(gql, app, live_server, protocol):
    org, users = await factories.create_team()
    accounting = await factories.create_database(org, name="Бухгалтерия")
    trade = await factories.create_database(org, name="Торговля")
    in_accounting = await factories.create_session(accounting, user_name="Бухгалтер")
    in_trade = await factories.create_session(trade, user_name="Продавец")
    variables = {"org": gid("Organization", org.id), "db": gid("Database", accounting.id)}
    live = await watch(gql, live_server, protocol, users[Role.OWNER].email, SESSIONS_LIVE, variables)
    events = await watch(gql, live_server, protocol, users[Role.OWNER].email, SESSION_EVENTS, variables)
    try:
        first = (await live.next_data())["data"]["sessions"]
        assert [s["id"] for s in first["sessions"]] == [gid("Session", in_accounting.id)]
        await asyncio.sleep(0.2)

        await terminate(gql, users[Role.OWNER].email, in_trade)
        await start_session(app, trade, user_name="Кладовщик")
        started = await start_session(app, accounting, user_name="Экономист")

        update = (await live.next_data())["data"]["sessions"]
        assert (update["event"]["kind"], update["event"]["session"]["id"]) == ("STARTED", gid("Session", started.id))
        assert {s["id"] for s in update["sessions"]} == {gid("Session", in_accounting.id), gid("Session", started.id)}
        event = (await events.next_data())["data"]["sessionEvents"]
        assert (event["kind"], event["session"]["id"]) == ("STARTED", gid("Session", started.id))
    finally:
        await live.close()
        await events.close()


# --------------------------------------------------------------------------------- consistency


async def test_between_the_first_snapshot_and_the_stream_nothing_is_missed_or_doubled(gql, app, live_server):
    org, users = await factories.create_team(Role.ADMIN)
    database = await factories.create_database(org)
    for i in range(2):
        await factories.create_session(database, user_name=f"Ранний {i}")
    org_id = gid("Organization", org.id)
    writer_done = asyncio.Event()

    async def writer() -> None:
        """50 sessions start while subscribers connect; every fifth is terminated through the API."""
        for i in range(50):
            session = await start_session(app, database, user_name=f"Сеанс {i}")
            if i % 5 == 4:
                await terminate(gql, users[Role.ADMIN].email, session)
            await asyncio.sleep(random.uniform(0, 0.02))
        writer_done.set()

    async def subscriber(n: int) -> tuple[list[dict], list[dict], dict[str, str], GraphQLSocket]:
        await asyncio.sleep(random.uniform(0, 0.4))
        protocol = TRANSPORT_WS if n % 2 else LEGACY_WS
        sock = await watch(gql, live_server, protocol, users[Role.OWNER].email, SESSIONS_LIVE, {"org": org_id})
        first = (await sock.next_data())["data"]["sessions"]
        snapshot, events = first["sessions"], []
        current = {s["id"]: s["status"] for s in snapshot}
        while True:
            if writer_done.is_set() and current == await expected():
                return snapshot, events, current, sock
            try:
                update = (await sock.next_data(timeout=0.5))["data"]["sessions"]
            except asyncio.TimeoutError:
                if writer_done.is_set() and current != await expected():
                    raise AssertionError(f"subscriber {n} is stuck with {len(current)} sessions") from None
                continue
            events.append(update["event"])
            current = {s["id"]: s["status"] for s in update["sessions"]}

    async def expected() -> dict[str, str]:
        live = await Session.filter(organization_id=org.id, status__in=[SessionStatus.ACTIVE, SessionStatus.TERMINATING])
        return {gid("Session", s.id): s.status.value for s in live}

    writing = asyncio.create_task(writer())
    results = await asyncio.wait_for(asyncio.gather(*(subscriber(n) for n in range(5))), timeout=60)
    await writing
    final = await expected()
    assert len(final) == 52
    try:
        for snapshot, events, current, sock in results:
            assert current == final
            keys = [(e["kind"], e["session"]["id"]) for e in events]
            assert len(keys) == len(set(keys)), "an event was delivered twice"
            in_snapshot = {s["id"] for s in snapshot}
            started = {sid for kind, sid in keys if kind == "STARTED"}
            assert not in_snapshot & started, "a session of the snapshot was announced again"
            assert in_snapshot | started >= set(final), "a session started after the snapshot was missed"
            with pytest.raises(asyncio.TimeoutError):  # and nothing more is on its way
                await sock.next_data(timeout=0.3)
    finally:
        for *_, sock in results:
            await sock.close()


# --------------------------------------------------------------------------------- cut off


async def slow_socket(url: str, token: str) -> GraphQLSocket:
    """A client that reads into tiny buffers, so that a server sending to it soon has to wait."""
    host, port = url.split(":")
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.setblocking(False)
    await asyncio.get_running_loop().sock_connect(raw, (host, int(port)))
    sock = GraphQLSocket(url, TRANSPORT_WS)
    sock.socket = await websockets.connect(
        f"ws://{url}/graphql", sock=raw, subprotocols=[TRANSPORT_WS], max_queue=1, max_size=None, open_timeout=OPEN_TIMEOUT,
        compression=None,  # compressed, repetitive JSON would take forever to fill a buffer
        close_timeout=1,  # it reads so little that it may not see the server's closing reply
    )
    await sock.send({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}})
    assert (await sock.receive())["type"] == "connection_ack"
    return sock


async def test_a_subscriber_that_stops_reading_is_cut_off_with_slow_consumer_and_others_get_everything(
    gql, app, live_server, monkeypatch
):
    hub = app.state.event_hub
    monkeypatch.setattr(hub, "queue_size", 8)
    org, users = await factories.create_team()
    database = await factories.create_database(org)
    long_name = "Пользователь с очень длинным именем, " * 5
    for i in range(40):
        await factories.create_session(database, user_name=f"{long_name}{i}")
    token = gql.tokens[await as_member(gql, users[Role.OWNER].email)]
    variables = {"org": gid("Organization", org.id)}
    # About 100 kB a message, so that the slow reader's buffers fill after a few dozen.
    big_list = SESSIONS_LIVE.replace("sessions { id status userName }", "sessions { id status userName a: userName b: userName }")
    slow = await slow_socket(live_server, token)
    await slow.subscribe(big_list, variables)
    assert len((await slow.next_data())["data"]["sessions"]["sessions"]) == 40
    fast = await watch(gql, live_server, TRANSPORT_WS, users[Role.OWNER].email, big_list, variables)
    assert len((await fast.next_data())["data"]["sessions"]["sessions"]) == 40
    received: list[dict] = []
    sent = 0

    def slow_one_cut_off() -> bool:
        return any(hub.subscribers[k].overflowed for k in hub.feeds[org.id].subscribers if k in hub.subscribers)

    async def read_fast() -> None:
        while True:
            received.append((await fast.next_data())["data"]["sessions"])

    reading = asyncio.create_task(read_fast())
    try:
        while not slow_one_cut_off():  # the slow one reads nothing meanwhile
            assert sent < 400, "the slow subscriber was never cut off"
            session = await start_session(app, database, user_name=f"{long_name}новый {sent}")
            await end_session(app, session)
            sent += 2
            await asyncio.sleep(0.01)
        last = await start_session(app, database, user_name="После отключения")
        sent += 1
        for _ in range(100):
            if received and received[-1]["event"]["session"]["id"] == gid("Session", last.id):
                break
            await asyncio.sleep(0.1)
        assert len(received) == sent, "the other subscriber missed events"
        assert [u["event"]["kind"] for u in received] == ["STARTED", "ENDED"] * (sent // 2) + ["STARTED"]
        feed = [hub.subscribers[key] for key in hub.feeds[org.id].subscribers]
        assert max(s.queue.qsize() for s in feed if s.overflowed) <= 1, "events are still buffered for the slow one"

        error = await next_error(slow, timeout=10)  # what it had in flight, then the error
        assert error["extensions"]["code"] == "SLOW_CONSUMER"
    finally:
        reading.cancel()
        await slow.close()
        await fast.close()


@BOTH
async def test_a_subscription_ends_when_its_access_token_expires(gql, live_server, settings, protocol):
    org, users = await factories.create_team()
    owner = users[Role.OWNER]
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    claims = {
        "sub": str(owner.id), "sid": str(uuid.uuid4()), "iss": settings.jwt_issuer, "aud": settings.jwt_audience,
        "iat": now, "exp": now + dt.timedelta(seconds=2),
    }
    token = jwt.encode(claims, derived_key(settings, "jwt"), algorithm=JWT_ALGORITHM)
    sock = GraphQLSocket(live_server, protocol)
    try:
        assert (await sock.connect(token))["type"] == "connection_ack"
        await sock.subscribe(SESSIONS_LIVE, {"org": gid("Organization", org.id)})
        assert (await sock.next_data())["data"]["sessions"]["event"] is None
        error = await next_error(sock, timeout=5)
        assert error["extensions"]["code"] == "UNAUTHENTICATED"
    finally:
        await sock.close()


async def test_a_socket_whose_token_has_expired_gets_no_new_snapshot(gql, live_server, settings):
    org, users = await factories.create_team()
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    claims = {
        "sub": str(users[Role.OWNER].id), "sid": str(uuid.uuid4()), "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience, "iat": now, "exp": now + dt.timedelta(seconds=1),
    }
    token = jwt.encode(claims, derived_key(settings, "jwt"), algorithm=JWT_ALGORITHM)
    sock = GraphQLSocket(live_server, TRANSPORT_WS)
    try:
        assert (await sock.connect(token))["type"] == "connection_ack"
        await asyncio.sleep(2.1)
        await sock.subscribe(SESSIONS_LIVE, {"org": gid("Organization", org.id)})
        error = await next_error(sock, timeout=5)
        assert error["extensions"]["code"] == "UNAUTHENTICATED"
    finally:
        await sock.close()


@BOTH
async def test_a_member_who_leaves_the_organization_stops_receiving_its_sessions(gql, live_server, protocol):
    org, users = await factories.create_team(Role.USER)
    database = await factories.create_database(org)
    await factories.create_session(database, user=users[Role.USER], user_name="Пользователь")
    member = users[Role.USER].email
    sock = await watch(gql, live_server, protocol, member, SESSIONS_LIVE, {"org": gid("Organization", org.id)})
    try:
        assert len((await sock.next_data())["data"]["sessions"]["sessions"]) == 1
        body = await gql.execute(
            "mutation($org: ID!) { leaveOrganization(organizationId: $org) { userErrors { code } } }",
            {"org": gid("Organization", org.id)}, as_user=await as_member(gql, member),
        )
        assert body["data"]["leaveOrganization"]["userErrors"] == []
        error = await next_error(sock)  # their own session's TERMINATING may come first
        assert error["extensions"]["code"] == "FORBIDDEN"
    finally:
        await sock.close()


async def test_another_members_revoked_access_does_not_end_my_subscription(gql, app, live_server):
    org, users = await factories.create_team(Role.USER)
    database = await factories.create_database(org)
    sock = await watch(gql, live_server, TRANSPORT_WS, users[Role.OWNER].email, SESSIONS_LIVE, {"org": gid("Organization", org.id)})
    try:
        await sock.next_data()
        announcements = PendingAnnouncements()
        async with in_transaction():
            await announcements.record(org.id, ACCESS, "REVOKED", {"user_id": str(users[Role.USER].id)})
        await announcements.announce(app.state.broadcast)
        started = await start_session(app, database)
        update = (await sock.next_data())["data"]["sessions"]
        assert update["event"]["session"]["id"] == gid("Session", started.id)
    finally:
        await sock.close()


async def test_a_revoked_access_event_ends_that_members_subscription(gql, app, live_server):
    org, users = await factories.create_team(Role.ADMIN)
    sock = await watch(gql, live_server, LEGACY_WS, users[Role.ADMIN].email, SESSION_EVENTS, {"org": gid("Organization", org.id)})
    try:
        await asyncio.sleep(0.2)
        async with in_transaction():
            seq = await record_event(org.id, ACCESS, "REVOKED", {"user_id": str(users[Role.ADMIN].id)})
        assert seq > 0
        # Not announced on purpose: the hub's polling finds it anyway.
        error = await next_error(sock, timeout=8)
        assert error["extensions"]["code"] == "FORBIDDEN"
    finally:
        await sock.close()


async def test_a_group_of_identical_subscribers_is_sent_one_encoding_of_each_change(gql, live_server, monkeypatch):
    """Five owners' sockets with the same query (both sub-protocols): the first list and the change
    are executed, completed and encoded to JSON once for the group, and every socket gets exactly
    what it would have alone."""
    from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

    from schema.execution import SharedCompletion

    encodings = []
    original = SharedCompletion.json

    def counted(self):
        if not hasattr(self, "_json"):
            encodings.append(1)
        return original(self)

    monkeypatch.setattr(SharedCompletion, "json", counted)
    executed = []
    original_execute = StrawberryGraphQLCoreExecutionContext.execute_operation

    def counted_execution(self, *args, **kwargs):
        if getattr(self.root_value, "__dict__", None) is not None:  # an event of a subscription
            executed.append(1)
        return original_execute(self, *args, **kwargs)

    monkeypatch.setattr(StrawberryGraphQLCoreExecutionContext, "execute_operation", counted_execution)
    org, users = await factories.create_team(Role.ADMIN)
    database = await factories.create_database(org)
    session = await factories.create_session(database, user_name="Бухгалтер")
    variables = {"org": gid("Organization", org.id)}
    socks = [
        await watch(gql, live_server, protocol, users[Role.OWNER].email, SESSIONS_LIVE, variables)
        for protocol in (TRANSPORT_WS, LEGACY_WS, TRANSPORT_WS, LEGACY_WS, TRANSPORT_WS)
    ]
    try:
        firsts = [(await sock.next_data())["data"]["sessions"] for sock in socks]
        assert all(f == firsts[0] for f in firsts) and firsts[0]["sessions"]
        assert len(encodings) == 1, "subscribers at the same event number share their first message too"
        encodings.clear()
        executed.clear()
        await terminate(gql, users[Role.ADMIN].email, session)
        updates = [(await sock.next_data())["data"]["sessions"] for sock in socks]
        assert all(u == updates[0] for u in updates)
        assert updates[0]["event"]["session"] == {"id": gid("Session", session.id), "status": "TERMINATING", "userName": "Бухгалтер"}
        assert len(encodings) == 1
        assert len(executed) == 1, "the group's first member executes the event; the others get its result"
    finally:
        for sock in socks:
            await sock.close()


def test_a_shared_completion_is_spliced_into_the_message_as_plain_json_would_be():
    import orjson

    from kabinet.graphql_view import encode_message
    from schema.execution import SharedCompletion

    value = {"sessions": [{"id": "U2Vzc2lvbjox", "userName": "Иванова «М»", "status": "ACTIVE"}], "event": None}
    for message in ({"id": "7", "type": "next"}, {"type": "data", "id": "op-1"}):
        shared = {**message, "payload": {"data": {"sessions": SharedCompletion(value)}}}
        plain = {**message, "payload": {"data": {"sessions": value}}}
        assert orjson.loads(encode_message(shared)) == orjson.loads(encode_message(plain)) == plain
