"""Signing in under load and abuse: password hashing off the event loop, the lockout counted
atomically, the per-client-address limit, unknown logins treated like known ones."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from resolvers.identity import passwords
from tests import factories

LOGIN = """mutation($l: String!, $p: String!) { login(input: {login: $l, password: $p}) {
  accessToken userErrors { code field message } } }"""


def _address() -> str:
    return f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250 + 1}"


def _client_of_its_own(app) -> httpx.AsyncClient:
    """A client of its own address, so that the per-address counts of other tests do not mix in."""
    transport = httpx.ASGITransport(app=app, client=(_address(), 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://kabinet.test")


@pytest_asyncio.fixture
async def from_address(app) -> AsyncIterator[httpx.AsyncClient]:
    async with _client_of_its_own(app) as http_client:
        yield http_client


async def _login(client: httpx.AsyncClient, login: str, password: str) -> dict:
    response = await client.post("/graphql", json={"query": LOGIN, "variables": {"l": login, "p": password}})
    return response.json()["data"]["login"]


def _code(payload: dict) -> str | None:
    return payload["userErrors"][0]["code"] if payload["userErrors"] else None


@pytest.fixture
def counted_checks(monkeypatch) -> list[bool]:
    """Every password check the pool runs (the real check, counted)."""
    checks: list[bool] = []
    real = passwords.verify_password

    def counting(password_hash, password):
        checks.append(True)
        return real(password_hash, password)

    monkeypatch.setattr(passwords, "verify_password", counting)
    return checks


async def test_a_request_of_50_logins_does_not_stop_a_concurrent_request(from_address, client, monkeypatch):
    """While a password is being checked (held in the pool here until the light request is
    answered), the event loop serves others. A check on the event loop would hold the loop: the
    light request could only be answered after that check had finished."""
    user = await factories.create_user()
    started, release, first_finished = threading.Event(), threading.Event(), threading.Event()
    real = passwords.verify_password

    def held(password_hash, password):
        started.set()
        release.wait(timeout=20)  # a safeguard only: the test releases it as soon as it has its answer
        try:
            return real(password_hash, password)
        finally:
            first_finished.set()

    monkeypatch.setattr(passwords, "verify_password", held)
    aliased = "mutation($l: String!, $p: String!) { " + " ".join(
        f"l{i}: login(input: {{login: $l, password: $p}}) {{ accessToken userErrors {{ code }} }}" for i in range(50)
    ) + " }"
    logins = asyncio.create_task(
        from_address.post("/graphql", json={"query": aliased, "variables": {"l": user.email, "p": factories.PASSWORD}})
    )
    try:
        assert await asyncio.to_thread(started.wait, 20)
        light = await client.post("/graphql", json={"query": "{ __typename }"})
        assert light.json() == {"data": {"__typename": "Query"}}
        assert not first_finished.is_set(), "the light request waited for a password check"
        assert not logins.done()
    finally:
        release.set()
    body = (await logins).json()
    assert len(body["data"]) == 50 and all(p["userErrors"] == [] and p["accessToken"] for p in body["data"].values())


@pytest.mark.parametrize("known", [True, False], ids=["known login", "unknown login"])
async def test_twenty_concurrent_wrong_passwords_lock_after_five_checks(from_address, counted_checks, known):
    login = (await factories.create_user()).email if known else factories.unique_email("nobody")
    answers = await asyncio.gather(*(_login(from_address, login, f"wrong-{i}") for i in range(20)))
    codes = sorted(_code(a) for a in answers)
    assert codes == ["INVALID"] * 5 + ["RATE_LIMITED"] * 15
    assert len(counted_checks) == 5, "only the claimed attempts are checked as passwords"
    after = await _login(from_address, login, factories.PASSWORD)
    assert _code(after) == "RATE_LIMITED" and after["accessToken"] is None


async def test_the_right_password_resets_the_count_of_a_login(from_address):
    user = await factories.create_user()
    for _ in range(4):
        assert _code(await _login(from_address, user.email, "wrong")) == "INVALID"
    assert _code(await _login(from_address, user.email, factories.PASSWORD)) is None
    codes = [_code(await _login(from_address, user.email, "wrong")) for _ in range(5)]
    assert codes == ["INVALID"] * 5, "four failures before a success do not count any more"


async def test_many_logins_from_one_address_are_limited_per_address(from_address, app, settings, monkeypatch):
    monkeypatch.setattr(settings, "login_address_max_failures", 6)
    user = await factories.create_user()
    # a spray: one wrong password for each of many logins, known or not
    codes = [_code(await _login(from_address, factories.unique_email("spray"), "123456")) for _ in range(6)]
    assert codes == ["INVALID"] * 6
    assert _code(await _login(from_address, factories.unique_email("spray"), "123456")) == "RATE_LIMITED"
    assert _code(await _login(from_address, user.email, factories.PASSWORD)) == "RATE_LIMITED"
    # another address is not limited by it, and the login itself is not locked
    async with _client_of_its_own(app) as elsewhere:
        assert _code(await _login(elsewhere, user.email, factories.PASSWORD)) is None


async def test_the_address_limit_counts_atomically_too(from_address, settings, monkeypatch, counted_checks):
    monkeypatch.setattr(settings, "login_address_max_failures", 3)
    answers = await asyncio.gather(*(_login(from_address, factories.unique_email("spray"), "x") for _ in range(12)))
    assert sorted(_code(a) for a in answers) == ["INVALID"] * 3 + ["RATE_LIMITED"] * 9
    assert len(counted_checks) == 3


async def test_the_right_password_gives_its_attempt_back_to_the_address(from_address, settings, monkeypatch):
    monkeypatch.setattr(settings, "login_address_max_failures", 2)
    user = await factories.create_user()
    for _ in range(5):
        assert _code(await _login(from_address, user.email, factories.PASSWORD)) is None
    assert _code(await _login(from_address, factories.unique_email("x"), "x")) == "INVALID"
