"""An ended sign-in is refused by every API process: told through the broker to those running,
read from the database by one that starts later. Real `kabinet serve` processes on one
PostgreSQL and one Redis (as in test_scale_out); skipped on the in-process broker."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests import factories
from tests.factories import Role
from tests.live import LEGACY_WS, TRANSPORT_WS
from tests.test_scale_out import BROKER, Api, private_redis, started  # noqa: F401 (private_redis: a fixture)
from tests.test_sign_ins import LOGIN, LOGOUT, ME, assert_closed_as_signed_out, watching

pytestmark = pytest.mark.skipif(
    not BROKER.startswith("redis://"),
    reason="needs PostgreSQL (KABINET_TEST_DATABASE_URL) and Redis (KABINET_TEST_BROKER_URL=redis://…)",
)


def me_works(body: dict) -> bool:
    return "errors" not in body and body["data"]["me"] is not None


def me_refused(body: dict) -> bool:
    return [e["extensions"]["code"] for e in body.get("errors", [])] == ["UNAUTHENTICATED"]


async def test_a_logout_through_one_process_ends_the_sign_in_on_the_others(app, settings, tmp_path: Path):
    a, b = await started([Api(settings, BROKER, tmp_path, "a"), Api(settings, BROKER, tmp_path, "b")])
    later = None
    sockets = []
    try:
        org, users = await factories.create_team()
        signed = (await a.post(LOGIN, {"l": users[Role.OWNER].email, "p": factories.PASSWORD}))["data"]["login"]
        token = signed["accessToken"]
        assert me_works(await b.post(ME, {}, token))  # B has verified the token: its cache holds it
        sockets = [await watching(b.url, protocol, token, org) for protocol in (TRANSPORT_WS, LEGACY_WS)]

        assert (await a.post(LOGOUT, {"t": signed["refreshToken"]}))["data"]["logout"]["ok"] is True

        for sock in sockets:  # B learnt it from the broker...
            await assert_closed_as_signed_out(sock)
        assert me_refused(await b.post(ME, {}, token))
        assert me_refused(await a.post(ME, {}, token))
        # ...and a process started afterwards, from the database
        later = (await started([Api(settings, BROKER, tmp_path, "later")]))[0]
        assert me_refused(await later.post(ME, {}, token))
    finally:
        for sock in sockets:
            await sock.close()
        for api in (a, b, later):
            if api is not None:
                api.stop()


async def test_a_logout_while_the_broker_is_down_reaches_the_other_process_when_it_is_back(app, settings, tmp_path, private_redis):
    # B's poll of the database (every few seconds) would tell it too: slowed down, so this is the reconnection
    rare_polls = {"KABINET_ENDED_LOGINS_POLL_SECONDS": "3600"}
    a, b = await started([
        Api(settings, private_redis.url, tmp_path, "a", **rare_polls), Api(settings, private_redis.url, tmp_path, "b", **rare_polls),
    ])
    try:
        org, users = await factories.create_team()
        signed = (await a.post(LOGIN, {"l": users[Role.OWNER].email, "p": factories.PASSWORD}))["data"]["login"]
        token = signed["accessToken"]
        assert me_works(await b.post(ME, {}, token))

        private_redis.kill()
        assert (await a.post(LOGOUT, {"t": signed["refreshToken"]}))["data"]["logout"]["ok"] is True
        assert me_refused(await a.post(ME, {}, token))
        assert me_works(await b.post(ME, {}, token))  # the notice is lost: B cannot know yet

        private_redis.start()  # B's broker connection comes back, and B reads the database again
        for _ in range(200):
            if me_refused(await b.post(ME, {}, token)):
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("B never learnt of the logout made while the broker was down")
    finally:
        a.stop()
        b.stop()
