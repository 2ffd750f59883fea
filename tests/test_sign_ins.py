"""Rights follow changes at once: an ended sign-in (logout, password reset, a reused refresh token)
refuses every access token of it over HTTP and closes its WebSockets; one ended by a process whose
notice cannot reach the server (the CLI on the in-process broker) within seconds; a member removed
or demoted loses the subscriptions and the mutations of the old rights on an open socket (real
sockets, both sub-protocols)."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import time
import uuid

import jwt
import pytest
import websockets

from resolvers.identity.tokens import JWT_ALGORITHM, derived_key
from resolvers.identity.sign_ins import LATE_SECONDS, EndedLogins
from resolvers.identity.tokens import ended_login_memory_seconds
from models.cloud import Session, SessionStatus
from models.identity import RefreshToken
from models.organizations import Membership
from models.outbox import Channel, OutboxMessage
from foundation.ids import to_global_id
from tests import factories
from tests.factories import Role
from tests.live import LEGACY_WS, TRANSPORT_WS, GraphQLSocket
from tests.processes import kabinet_cli
from tests.test_staff import PASSWORD as STAFF_PASSWORD, new_staff

BOTH = pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])

LOGIN = """mutation($l: String!, $p: String!) { login(input: {login: $l, password: $p}) {
  accessToken refreshToken userErrors { code } } }"""
REFRESH = """mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken refreshToken userErrors { code } } }"""
LOGOUT = """mutation($t: String!) { logout(refreshToken: $t) { ok userErrors { code } } }"""
REQUEST_RESET = """mutation($l: String!) { requestPasswordReset(login: $l) { ok } }"""
RESET = """mutation($l: String!, $c: String!, $p: String!) { resetPassword(login: $l, code: $c, newPassword: $p) {
  accessToken userErrors { code } } }"""
CHANGE_ROLE = """mutation($m: ID!, $r: Role!) { changeMemberRole(membershipId: $m, role: $r) { userErrors { code } } }"""
REQUEST_REMOVAL = """mutation($m: ID!) { requestMemberRemoval(membershipId: $m) { requestId userErrors { code } } }"""
CONFIRM_REMOVAL = """mutation($r: ID!, $c: String!) { confirmMemberRemoval(requestId: $r, code: $c) { userErrors { code } } }"""
TERMINATE = """mutation($id: ID!) { terminateSession(sessionId: $id) { session { status } userErrors { code } } }"""
SESSIONS_LIVE = """subscription($org: ID!) { sessions(organizationId: $org) {
  sessions { id userName } event { kind session { id } } } }"""
ME = "{ me { email } }"


# ---------------------------------------------------------------------------------------- helpers


async def post(client, query: str, variables: dict | None = None, token: str | None = None) -> dict:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await client.post("/graphql", json={"query": query, "variables": variables or {}}, headers=headers)
    return response.json()


async def sign_in(client, email: str, password: str = factories.PASSWORD) -> dict:
    payload = (await post(client, LOGIN, {"l": email, "p": password}))["data"]["login"]
    assert payload["userErrors"] == [], payload
    return payload


def same_sign_in(settings, token: str) -> str:
    """Another access token of the same sign-in session (as a refresh a second earlier would have made)."""
    claims = jwt.decode(token, options={"verify_signature": False})
    claims["iat"] -= 1
    other = jwt.encode(claims, derived_key(settings, "jwt"), algorithm=JWT_ALGORITHM)
    assert other != token
    return other


async def me(client, token: str) -> dict:
    return await post(client, ME, token=token)


def works(body: dict) -> bool:
    return "errors" not in body and body["data"]["me"] is not None


def refused(body: dict) -> bool:
    return [e["extensions"]["code"] for e in body.get("errors", [])] == ["UNAUTHENTICATED"]


def login_of(token: str) -> uuid.UUID:
    return uuid.UUID(jwt.decode(token, options={"verify_signature": False})["sid"])


def gid(type_name: str, pk) -> str:
    return to_global_id(type_name, pk)


async def team_with_sessions(*roles: Role):
    """An organization (an owner and `roles`), a database, and a session of the owner's."""
    org, users = await factories.create_team(*roles)
    database = await factories.create_database(org)
    session = await factories.create_session(database, user=users[Role.OWNER], user_name="Директор")
    return org, users, session


async def watching(live_server: str, protocol: str, token: str, org) -> GraphQLSocket:
    """A socket with the organization's live session list running (its first message read)."""
    sock = GraphQLSocket(live_server, protocol)
    assert (await sock.connect(token))["type"] == "connection_ack"
    await sock.subscribe(SESSIONS_LIVE, {"org": gid("Organization", org.id)})
    assert (await sock.next_data())["data"]["sessions"]["event"] is None
    return sock


async def assert_closed_as_signed_out(sock: GraphQLSocket) -> None:
    """graphql-transport-ws: closed with 4403; the legacy protocol is told (connection_error) first."""
    if sock.protocol == LEGACY_WS:
        message = await sock.receive()
        assert message["type"] == "connection_error", message
        assert message["payload"]["extensions"]["code"] == "UNAUTHENTICATED"
    with pytest.raises(websockets.ConnectionClosed) as closed:
        while True:
            message = await sock.receive()
            assert message["type"] not in ("next", "data"), f"a message after the sign-in ended: {message}"
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403


async def assert_refused_at_connect(live_server: str, protocol: str, token: str) -> None:
    sock = GraphQLSocket(live_server, protocol)
    try:
        if protocol == TRANSPORT_WS:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await sock.connect(token)
                await sock.receive()
            assert closed.value.rcvd.code == 4403
        else:
            assert (await sock.connect(token))["type"] == "connection_error"
    finally:
        await sock.close()


async def terminate_over(sock: GraphQLSocket, session: Session) -> dict:
    """terminateSession run as an operation on the socket (graphql-transport-ws): its one result."""
    operation_id = await sock.subscribe(TERMINATE, {"id": gid("Session", session.id)})
    result = None
    while True:
        message = await sock.receive()
        if message.get("id") != operation_id:
            continue  # the end of the subscription before it
        if message["type"] == "complete":
            return result
        assert message["type"] == "next", message
        result = message["payload"]


async def next_error(sock: GraphQLSocket) -> dict:
    while True:
        message = await sock.receive()
        errors = message["payload"] if message["type"] == "error" else message["payload"].get("errors")
        if errors:
            return errors[0]
        assert message["type"] in ("next", "data"), message


async def last_code(recipient: str) -> str:
    message = await OutboxMessage.filter(recipient=recipient, channel=Channel.EMAIL).order_by("-created_at").first()
    return re.search(r"Код подтверждения: (\d{6})", message.body).group(1)


# ---------------------------------------------------------------------------------------- HTTP


async def test_logout_refuses_every_access_token_of_that_sign_in_and_no_other(client, settings):
    user = await factories.create_user()
    first = await sign_in(client, user.email)
    second = await sign_in(client, user.email)  # another sign-in of the same account
    also_first = same_sign_in(settings, first["accessToken"])
    for token in (first["accessToken"], also_first, second["accessToken"]):
        assert works(await me(client, token))  # each verified once: the verified-token cache holds it now

    assert (await post(client, LOGOUT, {"t": first["refreshToken"]}))["data"]["logout"]["ok"] is True

    assert refused(await me(client, first["accessToken"]))
    assert refused(await me(client, also_first))
    assert works(await me(client, second["accessToken"]))


async def test_a_mutation_with_an_ended_sign_ins_token_is_refused(client):
    org, users, session = await team_with_sessions()
    signed = await sign_in(client, users[Role.OWNER].email)
    await post(client, LOGOUT, {"t": signed["refreshToken"]})
    body = await post(client, TERMINATE, {"id": gid("Session", session.id)}, signed["accessToken"])
    assert body["data"] is None or body["data"]["terminateSession"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]
    assert (await Session.get(id=session.id)).status == SessionStatus.ACTIVE


async def test_a_reused_refresh_token_refuses_the_access_tokens_of_its_sign_in(client):
    user = await factories.create_user()
    signed = await sign_in(client, user.email)
    rotated = (await post(client, REFRESH, {"t": signed["refreshToken"]}))["data"]["refreshToken"]
    assert rotated["userErrors"] == [] and works(await me(client, rotated["accessToken"]))

    reused = (await post(client, REFRESH, {"t": signed["refreshToken"]}))["data"]["refreshToken"]
    assert [e["code"] for e in reused["userErrors"]] == ["INVALID"]

    assert refused(await me(client, signed["accessToken"]))
    assert refused(await me(client, rotated["accessToken"]))


async def test_a_password_reset_refuses_every_sign_in_of_the_account_but_the_new_one(client):
    user = await factories.create_user()
    tokens = [(await sign_in(client, user.email))["accessToken"] for _ in range(2)]
    assert [works(await me(client, t)) for t in tokens] == [True, True]
    await post(client, REQUEST_RESET, {"l": user.email})
    reset = (await post(client, RESET, {"l": user.email, "c": await last_code(user.email), "p": "a-new-password-1"}))
    payload = reset["data"]["resetPassword"]
    assert payload["userErrors"] == []
    assert [refused(await me(client, t)) for t in tokens] == [True, True]
    assert works(await me(client, payload["accessToken"]))


async def test_a_process_starting_reads_the_sign_ins_ended_within_the_token_lifetime(client, settings):
    """What a freshly started process knows before any notice reaches it: from the database."""
    user = await factories.create_user()
    recent, old = await sign_in(client, user.email), await sign_in(client, user.email)
    for signed in (recent, old):
        await post(client, LOGOUT, {"t": signed["refreshToken"]})
    recent_login, old_login = (login_of(s["accessToken"]) for s in (recent, old))
    # the old sign-in ended before its last access token could have been issued: irrelevant now
    await RefreshToken.filter(login_id=old_login).update(revoked_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1))

    fresh = EndedLogins(keep_seconds=ended_login_memory_seconds(settings))
    await fresh.load()
    assert recent_login in fresh and old_login not in fresh
    assert min(fresh.ended.values()) > time.time()


async def test_a_poll_reads_the_sign_ins_ended_since_the_last_read_and_tells_the_listeners_once(client, settings):
    """What a process that hears no notice learns from the database, every poll: a login ended since
    its last read, or committed late (revoked_at up to LATE_SECONDS before that read), once."""
    user = await factories.create_user()
    polling = EndedLogins(keep_seconds=ended_login_memory_seconds(settings))  # listens on no broker
    told: list[uuid.UUID] = []
    polling.listeners.append(told.append)
    await polling.catch_up()  # the first read: the whole token lifetime
    notified, unnoticed, late, too_late = [await sign_in(client, user.email) for _ in range(4)]
    polling.end([login_of(notified["accessToken"])])  # as a broker notice would
    for signed in (notified, unnoticed):
        assert (await post(client, LOGOUT, {"t": signed["refreshToken"]}))["data"]["logout"]["ok"] is True
    before_the_read = dt.datetime.now(dt.timezone.utc)
    await polling.catch_up()
    # two revocations that become visible after that read, though taken before it (a late commit)
    for signed, before in ((late, LATE_SECONDS - 30), (too_late, LATE_SECONDS + 30)):
        assert (await post(client, LOGOUT, {"t": signed["refreshToken"]}))["data"]["logout"]["ok"] is True
        revoked_at = before_the_read - dt.timedelta(seconds=before)
        await RefreshToken.filter(login_id=login_of(signed["accessToken"])).update(revoked_at=revoked_at)
    await polling.catch_up()
    await polling.catch_up()

    assert login_of(notified["accessToken"]) in polling and login_of(unnoticed["accessToken"]) in polling
    assert login_of(late["accessToken"]) in polling
    assert login_of(too_late["accessToken"]) not in polling  # a poll reads from just before its last read on...
    await polling.load()
    assert login_of(too_late["accessToken"]) in polling  # ...a full read (start, broker back) finds it
    mine = [login_of(s["accessToken"]) for s in (notified, unnoticed, late, too_late)]
    assert sorted(login for login in told if login in mine) == sorted(mine)  # each once, though read many times


# ---------------------------------------------------------------------------------------- WebSockets


@BOTH
async def test_logout_closes_the_sockets_of_that_sign_in_and_no_other(client, settings, live_server, protocol):
    org, users, session = await team_with_sessions()
    owner = users[Role.OWNER].email
    first, second = await sign_in(client, owner), await sign_in(client, owner)
    ended = await watching(live_server, protocol, same_sign_in(settings, first["accessToken"]), org)
    other = await watching(live_server, protocol, second["accessToken"], org)
    try:
        assert (await post(client, LOGOUT, {"t": first["refreshToken"]}))["data"]["logout"]["ok"] is True
        await assert_closed_as_signed_out(ended)
        await assert_refused_at_connect(live_server, protocol, first["accessToken"])

        # the other sign-in's socket lives on and still sees changes
        body = await post(client, TERMINATE, {"id": gid("Session", session.id)}, second["accessToken"])
        assert body["data"]["terminateSession"]["userErrors"] == []
        update = (await other.next_data())["data"]["sessions"]
        assert update["event"] == {"kind": "TERMINATING", "session": {"id": gid("Session", session.id)}}
    finally:
        await ended.close()
        await other.close()


@BOTH
async def test_a_password_reset_closes_the_accounts_sockets(client, live_server, protocol):
    org, users, _ = await team_with_sessions()
    owner = users[Role.OWNER].email
    sock = await watching(live_server, protocol, (await sign_in(client, owner))["accessToken"], org)
    try:
        await post(client, REQUEST_RESET, {"l": owner})
        reset = await post(client, RESET, {"l": owner, "c": await last_code(owner), "p": "a-new-password-2"})
        assert reset["data"]["resetPassword"]["userErrors"] == []
        await assert_closed_as_signed_out(sock)
    finally:
        await sock.close()


async def test_a_reused_refresh_token_closes_the_sockets_of_its_sign_in(client, live_server):
    org, users, _ = await team_with_sessions()
    signed = await sign_in(client, users[Role.OWNER].email)
    rotated = (await post(client, REFRESH, {"t": signed["refreshToken"]}))["data"]["refreshToken"]
    sock = await watching(live_server, TRANSPORT_WS, rotated["accessToken"], org)
    try:
        await post(client, REFRESH, {"t": signed["refreshToken"]})  # the thief, or the victim, comes second
        await assert_closed_as_signed_out(sock)
    finally:
        await sock.close()


@BOTH
async def test_a_demoted_admins_sessions_subscription_ends_and_their_socket_acts_as_a_user(client, live_server, protocol):
    org, users, owners_session = await team_with_sessions(Role.ADMIN)
    owner = (await sign_in(client, users[Role.OWNER].email))["accessToken"]
    sock = await watching(live_server, protocol, (await sign_in(client, users[Role.ADMIN].email))["accessToken"], org)
    try:
        membership = await Membership.get(organization_id=org.id, user_id=users[Role.ADMIN].id)
        body = await post(client, CHANGE_ROLE, {"m": gid("Membership", membership.id), "r": "USER"}, owner)
        assert body["data"]["changeMemberRole"]["userErrors"] == []

        error = await next_error(sock)
        assert error["extensions"]["code"] == "FORBIDDEN" and "subscribe again" in error["message"]
        if protocol == TRANSPORT_WS:  # the legacy protocol runs subscriptions only
            # the socket's earlier operations read the member as an ADMIN, who may end anyone's session
            payload = (await terminate_over(sock, owners_session))["data"]["terminateSession"]
            assert [e["code"] for e in payload["userErrors"]] == ["FORBIDDEN"]
            assert (await Session.get(id=owners_session.id)).status == SessionStatus.ACTIVE
        # subscribing again shows what a USER sees: their own sessions, none
        again = await sock.subscribe(SESSIONS_LIVE, {"org": gid("Organization", org.id)})
        while (message := await sock.receive())["id"] != again:
            assert message["type"] == "complete", message  # of the subscription that ended
        assert message["payload"]["data"]["sessions"]["sessions"] == []
    finally:
        await sock.close()


async def test_a_removed_members_subscription_ends_and_their_socket_cannot_act(client, live_server):
    org, users, owners_session = await team_with_sessions(Role.ADMIN)
    owner_email = users[Role.OWNER].email
    owner = (await sign_in(client, owner_email))["accessToken"]
    sock = await watching(live_server, TRANSPORT_WS, (await sign_in(client, users[Role.ADMIN].email))["accessToken"], org)
    try:
        membership = await Membership.get(organization_id=org.id, user_id=users[Role.ADMIN].id)
        request = (await post(client, REQUEST_REMOVAL, {"m": gid("Membership", membership.id)}, owner))["data"]
        request_id = request["requestMemberRemoval"]["requestId"]
        confirmed = await post(client, CONFIRM_REMOVAL, {"r": request_id, "c": await last_code(owner_email)}, owner)
        assert confirmed["data"]["confirmMemberRemoval"]["userErrors"] == []

        error = await next_error(sock)
        assert error["extensions"]["code"] == "FORBIDDEN"
        payload = (await terminate_over(sock, owners_session))["data"]["terminateSession"]
        assert [e["code"] for e in payload["userErrors"]] == ["NOT_FOUND"]
        assert (await Session.get(id=owners_session.id)).status == SessionStatus.ACTIVE
    finally:
        await sock.close()


async def test_a_sign_in_ended_by_a_process_that_tells_no_server_is_refused_and_its_socket_closed(client, settings, live_server):
    """`kabinet staff disable` in a process of its own, on a broker of its own (as the CLI on the
    embedded default's in-process broker): no notice reaches the server; its poll of the database does."""
    staff = await new_staff(settings)
    token = (await sign_in(client, staff.email, STAFF_PASSWORD))["accessToken"]
    assert works(await me(client, token))  # verified once: the verified-token cache holds it
    sock = GraphQLSocket(live_server, TRANSPORT_WS)
    try:
        assert (await sock.connect(token))["type"] == "connection_ack"
        unheard = settings.model_copy(update={"broker_url": "memory://"})
        out = await kabinet_cli(unheard, "staff", "disable", "--email", staff.email)
        assert "1 sign-in token(s) revoked" in out and "within a few seconds" in out

        deadline = time.monotonic() + 60
        while not refused(body := await me(client, token)):
            assert works(body), body
            assert time.monotonic() < deadline, "the server never refused the access token of the ended sign-in"
            await asyncio.sleep(0.1)
        await assert_closed_as_signed_out(sock)
    finally:
        await sock.close()


async def test_an_operation_on_a_socket_whose_sign_in_ended_is_refused(app, client, live_server):
    """Were the socket not closed yet (its close on its way), its next operation is refused anyway."""
    org, users, session = await team_with_sessions()
    signed = await sign_in(client, users[Role.OWNER].email)
    sock = GraphQLSocket(live_server, TRANSPORT_WS)
    graphql = app.state.graphql
    try:
        assert (await sock.connect(signed["accessToken"]))["type"] == "connection_ack"
        login_id = login_of(signed["accessToken"])
        graphql.sockets_by_login.pop(login_id)  # as if the close had not reached this socket yet
        app.state.ended_logins.end([login_id])
        payload = await terminate_over(sock, session)
        assert [e["extensions"]["code"] for e in payload["errors"]] == ["UNAUTHENTICATED"]
        assert (await Session.get(id=session.id)).status == SessionStatus.ACTIVE
    finally:
        await sock.close()
