"""Signing in: tokens, rotation, reuse detection, lockout, and tokens that must not pass."""

from __future__ import annotations

import base64
import json
import time
import uuid

import jwt

from resolvers.identity.tokens import derived_key

LOGIN = """mutation($l: String!, $p: String!) { login(input: {login: $l, password: $p}) {
  accessToken refreshToken accessTokenExpiresAt user { email } userErrors { code field message } } }"""
REFRESH = """mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken refreshToken userErrors { code } } }"""
LOGOUT = """mutation($t: String!) { logout(refreshToken: $t) { ok userErrors { code } } }"""
ME = "{ me { email } }"


async def me_with(client, token: str) -> dict:
    response = await client.post("/graphql", json={"query": ME}, headers={"Authorization": f"Bearer {token}"})
    return response.json()


async def test_login_gives_tokens_that_open_the_api(gql, client):
    body = await gql.execute(LOGIN, {"l": "Owner@Romashka.Example", "p": "kabinet-demo"})
    payload = body["data"]["login"]
    assert payload["userErrors"] == [] and payload["user"]["email"] == "owner@romashka.example"
    assert (await me_with(client, payload["accessToken"]))["data"]["me"]["email"] == "owner@romashka.example"


async def test_login_by_phone_works_too(gql):
    me = await gql.execute("{ me { phone } }", as_user="admin@romashka.example")
    body = await gql.execute(LOGIN, {"l": me["data"]["me"]["phone"], "p": "kabinet-demo"})
    assert body["data"]["login"]["user"]["email"] == "admin@romashka.example"


async def test_a_wrong_password_is_invalid_and_says_nothing_more(gql):
    body = await gql.execute(LOGIN, {"l": "buh@romashka.example", "p": "wrong"})
    assert body["data"]["login"]["userErrors"][0]["code"] == "INVALID"
    assert body["data"]["login"]["accessToken"] is None


async def test_five_wrong_passwords_lock_the_login_even_for_the_right_one(gql, app):
    from models.identity import LoginThrottle

    login = "admin@romashka.example"
    try:
        codes = [
            (await gql.execute(LOGIN, {"l": login, "p": f"wrong-{i}"}))["data"]["login"]["userErrors"][0]["code"]
            for i in range(5)
        ]
        assert codes == ["INVALID"] * 5
        right = await gql.execute(LOGIN, {"l": login, "p": "kabinet-demo"})
        assert right["data"]["login"]["userErrors"][0]["code"] == "RATE_LIMITED"
    finally:
        await LoginThrottle.filter(login=login).delete()


async def test_an_unknown_login_locks_exactly_like_a_known_one(gql):
    login = f"nobody-{uuid.uuid4().hex[:6]}@example.com"
    codes = [(await gql.execute(LOGIN, {"l": login, "p": "x"}))["data"]["login"]["userErrors"][0]["code"] for _ in range(6)]
    assert codes == ["INVALID"] * 5 + ["RATE_LIMITED"]


async def test_refresh_rotates_and_a_reused_refresh_token_revokes_the_whole_login(gql):
    first = (await gql.execute(LOGIN, {"l": "owner@vasilek.example", "p": "kabinet-demo"}))["data"]["login"]
    second = (await gql.execute(REFRESH, {"t": first["refreshToken"]}))["data"]["refreshToken"]
    assert second["userErrors"] == [] and second["refreshToken"] != first["refreshToken"]
    reused = (await gql.execute(REFRESH, {"t": first["refreshToken"]}))["data"]["refreshToken"]
    assert reused["userErrors"][0]["code"] == "INVALID"
    after_reuse = (await gql.execute(REFRESH, {"t": second["refreshToken"]}))["data"]["refreshToken"]
    assert after_reuse["userErrors"][0]["code"] == "INVALID", "the rotated token died with its login"


async def test_logout_revokes_the_refresh_token(gql):
    tokens = (await gql.execute(LOGIN, {"l": "owner@vasilek.example", "p": "kabinet-demo"}))["data"]["login"]
    assert (await gql.execute(LOGOUT, {"t": tokens["refreshToken"]}))["data"]["logout"]["ok"] is True
    refused = (await gql.execute(REFRESH, {"t": tokens["refreshToken"]}))["data"]["refreshToken"]
    assert refused["userErrors"][0]["code"] == "INVALID"


async def test_without_a_token_only_login_and_introspection_answer(client):
    body = (await client.post("/graphql", json={"query": "{ me { email } }"})).json()
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    intro = (await client.post("/graphql", json={"query": "{ __schema { queryType { name } } }"})).json()
    assert intro["data"]["__schema"]["queryType"]["name"] == "Query"


def _claims(settings, **overrides) -> dict:
    now = int(time.time())
    return {"sub": str(uuid.uuid4()), "sid": str(uuid.uuid4()), "iss": settings.jwt_issuer,
            "aud": settings.jwt_audience, "iat": now, "exp": now + 600, **overrides}


async def test_tampered_expired_foreign_and_alg_none_tokens_are_unauthenticated(gql, client, settings):
    good = await gql.token_for("owner@romashka.example")
    header, payload, signature = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["sub"] = str(uuid.uuid4())
    tampered = ".".join([header, base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("="), signature])
    key = derived_key(settings, "jwt")
    expired = jwt.encode(_claims(settings, exp=int(time.time()) - 5), key, algorithm="HS256")
    wrong_audience = jwt.encode(_claims(settings, aud="someone-else"), key, algorithm="HS256")
    other_key = jwt.encode(_claims(settings), "another-secret-that-is-long-enough-for-hs256", algorithm="HS256")
    none_header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').decode().rstrip("=")
    alg_none = f"{none_header}.{payload}."
    for token in (tampered, expired, wrong_audience, other_key, alg_none, "garbage"):
        body = await me_with(client, token)
        assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED", token


async def test_the_login_payload_answers_nested_fields_too(gql):
    body = await gql.execute(
        "mutation { login(input: {login: \"buh@romashka.example\", password: \"kabinet-demo\"}) "
        "{ user { fullName memberships { role organization { name } } } } }"
    )
    memberships = body["data"]["login"]["user"]["memberships"]
    assert [(m["role"], m["organization"]["name"]) for m in memberships] == [("ACCOUNTANT", "ООО «Ромашка»")]


def test_a_token_checked_once_is_still_refused_once_it_expires(settings):
    """Verified tokens are remembered (resolvers.identity.tokens.VERIFIED_TOKENS); their expiry is not."""
    from datetime import timedelta

    from foundation import clock
    from resolvers.identity import tokens

    token = jwt.encode(_claims(settings, exp=int(time.time()) + 60), derived_key(settings, "jwt"), algorithm="HS256")
    assert tokens.decode_access_token(settings, token) is not None

    with clock.advanced(timedelta(seconds=61)):
        assert tokens.decode_access_token(settings, token) is None
        assert tokens.decode_access_token(settings, token + "x") is None  # another text is checked anew
