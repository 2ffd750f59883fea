"""Fuzzing every field of every agent API endpoint (issue 17, finding 9): whatever an agent sends, a
clear answer in the API's error shape, never a 500.

The endpoints and their fields are read from the code (kabinet/agent_api/ `ENDPOINTS`, which each
endpoint's declaration fills, and whose fields are all a handler can read): a new endpoint without a
valid request below fails `test_every_endpoint_has_a_valid_request`, and a new field is fuzzed
without being listed. Each example sends the endpoint's valid request with one field replaced by a
hostile value (wrong types, huge numbers, 5,000-character and NUL strings, dates in year 1 and 9999
in zones from -14:00 to +14:00, ids of other types, lists and objects): the answer is 2xx, or a 4xx
`{"error": {"code", "message", "field"}}` whose 400 names the fuzzed field (or none, for a body that
is no JSON), never implementation text. Fixed examples (derandomized), so CI stays repeatable.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kabinet import agent_api
from foundation.clock import utcnow
from foundation.ids import to_global_id
from models.cloud import Session, SessionStatus
from resolvers.cloud import clusters
from tests import agents
from tests.test_agent_updates import due_run, updatable_database

EXAMPLES = int(os.environ.get("KABINET_FUZZ_EXAMPLES", 12))  # per field
FIELDS = sorted(
    (method, path, place, name)
    for (method, path), fields in agent_api.ENDPOINTS.items()
    for place, names in (("body", fields.body), ("query", fields.query), ("path", fields.path))
    for name in names
)
LEAKS = re.compile(r"Traceback|File \"|sqlite|asyncpg|tortoise|Error\b|NoneType|object has no attribute|SELECT|INSERT")
ZONES = [dt.timezone(dt.timedelta(hours=h)) for h in (-14, -12, -3, 0, 3, 5.5, 12, 14)]

hostile_text = st.sampled_from([
    "", " ", "x" * 5000, "9" * 5000, "\x00", "a\x00b", "é" * 300, "😀" * 60, "' OR 1=1 --", "../../etc/passwd",
    "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "9999-12-31T23:59:59+00:00", "1999-12-31T23:59:59Z",
    "2026-02-30T10:00:00+03:00", "01.01.0001 0:00:00", "2026-11-20T09:30:00", "2026-11-20", "NaN", "-1", "0", "501",
    "succeeded", "failed", "lock", "THIN_CLIENT",
])
hostile_ids = st.builds(
    lambda kind, pk: to_global_id(kind, pk), st.sampled_from(["Session", "Database", "UpdateRun", "Organization", "User"]),
    st.uuids(),
)
hostile_moments = st.builds(
    lambda moment, zone: moment.replace(tzinfo=zone).isoformat(),
    st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31, 23, 59, 59)), st.sampled_from(ZONES),
)
hostile_values = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40), hostile_text, hostile_ids, hostile_moments,
    st.lists(st.one_of(st.text(max_size=25), st.integers(), hostile_text), max_size=4),
    st.dictionaries(st.text(max_size=10), st.text(max_size=10), max_size=3),
)


@pytest.fixture(scope="module")
async def arena(app, settings):
    """An organization with a cloud subscription and a database, and an agent token for it alone."""
    org, *_ = await agents.subscribed(sessions_limit=1000)
    return {"org": org, "agent": agents.bearer(await agents.issue([org]))}


@pytest.fixture(autouse=True)
def agent_mode(settings, monkeypatch):
    monkeypatch.setattr(settings, "cluster", "agent")


async def _session(arena, status: SessionStatus) -> Session:
    database = await updatable_database(arena["org"])
    return await Session.create(
        organization=arena["org"], database=database, user_name="Кассир", client_kind="THIN_CLIENT", started_at=utcnow(),
        status=status, cluster_session_id=f"cl-{uuid.uuid4()}",
    )


async def _claimed(client, arena) -> dict:
    """A due run of a database of its own, claimed by the arena's agent: its id and fencing token."""
    await due_run(await updatable_database(arena["org"]))
    run = (await client.post("/cluster/updates/claim", json={}, headers=arena["agent"])).json()["run"]
    assert run is not None
    return run


Request = tuple[dict[str, str], dict[str, Any], dict[str, str]]  # path params, body, query


async def _started(client, arena, field) -> Request:
    return {}, {
        "clusterSessionId": f"cl-{uuid.uuid4()}", "userName": "Кладовщик", "clientKind": "THIN_CLIENT", "host": "PC-1",
        "startedAt": utcnow().isoformat(), "userEmail": "nobody@example.com", "organizationCode": arena["org"].code,
    }, {}


async def _ended(client, arena, field) -> Request:
    session = await _session(arena, SessionStatus.ACTIVE)
    return {}, {"clusterSessionId": session.cluster_session_id, "endedAt": utcnow().isoformat()}, {}


async def _terminations(client, arena, field) -> Request:
    return {}, {}, {"limit": "10", "organizationCode": arena["org"].code, "cluster": "main"}


async def _done(client, arena, field) -> Request:
    session = await _session(arena, SessionStatus.TERMINATING)
    return {"sessionId": to_global_id("Session", session.id)}, {"endedAt": utcnow().isoformat()}, {}


async def _snapshot(client, arena, field) -> Request:
    """A cluster of its own with one of the arena's databases on it, and a session there."""
    cluster = await clusters.add(f"fz-{uuid.uuid4().hex[:12]}")
    await clusters.place(await updatable_database(arena["org"]), cluster, "buh")
    line = {"clusterSessionId": f"cl-{uuid.uuid4()}", "userName": "Иванов И.И.", "host": "PC-BUH-01", "appId": "1CV8C",
            "startedAt": utcnow().isoformat()}
    return {}, {"cluster": cluster.name, "takenAt": utcnow().isoformat(), "infobases": [{"name": "buh", "sessions": [line]}]}, {}


async def _refused(client, arena, field) -> Request:
    session = await _session(arena, SessionStatus.TERMINATING)
    return {"sessionId": to_global_id("Session", session.id)}, {"reason": "Недостаточно прав"}, {}


async def _limits(client, arena, field) -> Request:
    return {}, {}, {"organizationCode": arena["org"].code}


async def _claim(client, arena, field) -> Request:
    return {}, {"organizationCodes": [arena["org"].code]}, {}


async def _heartbeat(client, arena, field) -> Request:
    run = await _claimed(client, arena)
    return {"runId": run["id"]}, {"fencingToken": run["fencingToken"]}, {}


async def _step(client, arena, field) -> Request:
    run = await _claimed(client, arena)
    return {"runId": run["id"]}, {"fencingToken": run["fencingToken"], "step": "warn_users", "progress": 5, "message": "Скоро."}, {}


async def _result(client, arena, field) -> Request:
    run = await _claimed(client, arena)
    outcome = "failed" if field == "reason" else "succeeded"  # the outcome that reads the fuzzed field
    ending = {"outcome": outcome, "version": "3.0.151.7", "reason": "сбой", "message": "Готово."}
    return {"runId": run["id"]}, {"fencingToken": run["fencingToken"], **ending}, {}


VALID: dict[tuple[str, str], Callable] = {
    ("POST", "/cluster/sessions/started"): _started,
    ("POST", "/cluster/sessions/ended"): _ended,
    ("GET", "/cluster/terminations"): _terminations,
    ("POST", "/cluster/terminations/{sessionId}/done"): _done,
    ("POST", "/cluster/terminations/{sessionId}/refused"): _refused,
    ("POST", "/cluster/sessions/snapshot"): _snapshot,
    ("GET", "/cluster/limits"): _limits,
    ("POST", "/cluster/updates/claim"): _claim,
    ("POST", "/cluster/updates/{runId}/heartbeat"): _heartbeat,
    ("POST", "/cluster/updates/{runId}/step"): _step,
    ("POST", "/cluster/updates/{runId}/result"): _result,
}


def test_every_endpoint_has_a_valid_request():
    assert set(VALID) == set(agent_api.ENDPOINTS)
    assert {(method, path) for method, path, _, _ in FIELDS} == set(agent_api.ENDPOINTS), "every endpoint reads a field"


async def send(client, arena, method: str, path: str, params: dict[str, str], body: Any, query: dict[str, str]):
    url = path.format(**{k: quote(v, safe="") for k, v in params.items()})
    if method == "GET":
        return await client.get(url, params=query, headers=arena["agent"])
    content = body if isinstance(body, (bytes, str)) else json.dumps(body, ensure_ascii=False, allow_nan=True)
    return await client.post(url, content=content, headers={**arena["agent"], "Content-Type": "application/json"})


def check(response, field: str | None) -> None:
    """2xx, or the API's error shape; a 400 names `field` (or no field, for a body that is no JSON)."""
    assert response.status_code in (200, 201, 400, 404, 409), (response.status_code, response.text[:500])
    answer = response.json()
    assert not LEAKS.search(response.text), response.text[:500]
    if response.status_code >= 400:
        error = answer["error"]
        assert set(error) == {"code", "message", "field"} and error["code"] and error["message"], answer
        if response.status_code == 400:
            assert error["field"] in (field, None), (field, answer)


@pytest.mark.parametrize("method, path, place, name", FIELDS)
@settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(data=st.data())
async def test_every_field_of_every_endpoint_answers_any_value_clearly(client, arena, method, path, place, name, data):
    params, body, query = await VALID[(method, path)](client, arena, name)
    if place == "path":
        params[name] = data.draw(st.one_of(hostile_text, hostile_ids, st.text(max_size=60)).filter(lambda v: v), label=name)
    elif place == "query":
        query[name] = data.draw(st.one_of(hostile_text, st.text(max_size=60)), label=name)
    else:
        body[name] = data.draw(hostile_values, label=name)
    check(await send(client, arena, method, path, params, body, query), name)


@pytest.mark.parametrize("endpoint", sorted(path for method, path in agent_api.ENDPOINTS if method == "POST"))
@pytest.mark.parametrize("content", [b"not json", b"[1, 2]", b'"text"', b"1e999999", b"{" * 5000, b'{"a": 1' , "ы".encode("cp1251")])
async def test_a_body_that_is_no_json_object_is_a_400_naming_no_field(client, arena, endpoint, content):
    url = endpoint.format(sessionId=to_global_id("Session", uuid.uuid4()), runId=to_global_id("UpdateRun", uuid.uuid4()))
    response = await client.post(url, content=content, headers={**arena["agent"], "Content-Type": "application/json"})
    assert response.status_code == 400 and response.json()["error"]["field"] is None, response.text


# ------------------------------------------------------------------------------ the findings, as reproduced


@pytest.mark.parametrize("change, field", [
    ({"organizationCode": "Ж" * 5000}, "organizationCode"),
    ({"startedAt": "0001-01-01T00:00:00+14:00"}, "startedAt"),
    ({"startedAt": "9999-12-31T23:59:59+00:00"}, "startedAt"),
    ({"startedAt": "9999-12-31T23:59:59-14:00"}, "startedAt"),
    ({"startedAt": "1999-12-31T23:59:59+00:00"}, "startedAt"),
    ({"clusterSessionId": 5}, "clusterSessionId"),
    ({"userName": None}, "userName"),
    ({"clientKind": ["THIN_CLIENT"]}, "clientKind"),
    ({"databaseId": 7}, "databaseId"),
])
async def test_the_reported_500s_are_400s_naming_the_field(client, arena, change, field):
    _, body, _ = await _started(client, arena, field)
    response = await client.post("/cluster/sessions/started", json={**body, **change}, headers=arena["agent"])
    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] == field and response.json()["error"]["code"] in ("INVALID", "NOT_FOUND")


async def test_a_session_started_in_the_future_is_refused_within_the_skew_it_is_taken(client, arena, settings):
    """A session "started" in year 9999 could never end and would hold a slot of the limit for good."""
    _, body, _ = await _started(client, arena, "startedAt")
    skew = dt.timedelta(seconds=settings.agent_clock_skew_seconds)
    late = await client.post("/cluster/sessions/started", json={**body, "startedAt": (utcnow() + skew + dt.timedelta(minutes=1)).isoformat()}, headers=arena["agent"])
    assert (late.status_code, late.json()["error"]["field"]) == (400, "startedAt")
    assert not await Session.exists(cluster_session_id=body["clusterSessionId"])
    ahead = await client.post("/cluster/sessions/started", json={**body, "startedAt": (utcnow() + skew / 2).isoformat()}, headers=arena["agent"])
    assert ahead.status_code == 201, "a clock a little ahead is no attack"
    ended = await client.post("/cluster/sessions/ended", json={"clusterSessionId": body["clusterSessionId"], "endedAt": "9999-01-01T00:00:00Z"}, headers=arena["agent"])
    assert (ended.status_code, ended.json()["error"]["field"]) == (400, "endedAt")


async def test_a_body_over_the_limit_is_a_413_in_the_agent_apis_shape(client, arena, settings):
    """Found by the attacker's read: the body limit answered /cluster/ in GraphQL's error shape."""
    body = b'{"organizationCodes": ["' + b"x" * settings.max_body_bytes + b'"]}'
    response = await client.post("/cluster/updates/claim", content=body, headers={**arena["agent"], "Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json() == {"error": {"code": "TOO_LARGE", "message": f"The body exceeds {settings.max_body_bytes} bytes.", "field": None}}
