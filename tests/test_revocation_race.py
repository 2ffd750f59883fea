"""A logout racing a token refresh leaves no live token (finding 9 of issue 17).

Before, on PostgreSQL under READ COMMITTED, the logout's UPDATE could run while the refresh had
claimed the old token but not yet committed the new one: the UPDATE waited for the old row, then
revoked it, but could not see the new row, which stayed alive. Every change of a login's chain
now holds the chain first (`resolvers/identity/logins.py` `_hold_chains`). On SQLite the two run one after
another; the test holds there too.
"""

from __future__ import annotations

import asyncio
import uuid

import jwt

from models.identity import RefreshToken
from tests import factories
from tests.test_auth import LOGIN, LOGOUT, REFRESH, me_with

ROUNDS = 50


def login_of(access_token: str) -> uuid.UUID:
    return uuid.UUID(jwt.decode(access_token, options={"verify_signature": False})["sid"])


async def test_a_logout_racing_a_refresh_leaves_no_live_token(gql, client):
    user = await factories.create_user()
    outcomes = set()
    for _ in range(ROUNDS):
        signed_in = (await gql.execute(LOGIN, {"l": user.email, "p": factories.PASSWORD}))["data"]["login"]
        refreshed, logged_out = await asyncio.gather(
            gql.execute(REFRESH, {"t": signed_in["refreshToken"]}), gql.execute(LOGOUT, {"t": signed_in["refreshToken"]})
        )
        refreshed, logged_out = refreshed["data"]["refreshToken"], logged_out["data"]["logout"]
        assert logged_out == {"ok": True, "userErrors": []}
        login_id = login_of(signed_in["accessToken"])
        assert await RefreshToken.filter(login_id=login_id).exists()
        assert not await RefreshToken.filter(login_id=login_id, revoked_at=None).exists(), "a live token survived"
        for access in (signed_in["accessToken"], refreshed["accessToken"]):
            if access is not None:
                assert (await me_with(client, access))["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        if refreshed["refreshToken"] is not None:
            again = (await gql.execute(REFRESH, {"t": refreshed["refreshToken"]}))["data"]["refreshToken"]
            assert again["userErrors"] == [{"code": "INVALID"}]
        outcomes.add("refreshed first" if refreshed["userErrors"] == [] else "logged out first")
    print(f"{ROUNDS} rounds: {sorted(outcomes)}")
