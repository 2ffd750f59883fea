"""Issue 17, finding 7: what one provider API request may cost is bounded. Many tiny bad lines keep
at most KABINET_PROVIDER_MAX_REFUSALS_KEPT rows (and one saying so) and an answer of a bounded size;
more lines than KABINET_PROVIDER_MAX_LINES is a 413 before any is applied; a line that no record
could be is refused unread; the answer is streamed a batch at a time (read over a real socket while
the next batch is still held), valid and complete."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import orjson
import pytest
from tortoise.transactions import in_transaction

from kabinet import provider_api
from models.provider import ProviderAction, RefusedRecord
from resolvers.provider import records, service_accounts
from resolvers.provider.audit import ActorKind
from resolvers.provider.records import RECORD_PUNCTUATION, Outcome, Record, entity, text

HELD: dict[str, asyncio.Event] = {}  # a note's text → the event its batch waits for (the streaming test)
SEEN: list[str] = []  # the flood notes' texts, in the order their batches were applied


@pytest.fixture(autouse=True, scope="module")
def flood_note(app):
    """An entity of the test's own: a note that is applied at once, or waits for its event."""

    @entity("flood_note", "catalog:write", ["text"], "A flood test's note.")
    async def upsert(actor, batch: list[Record]):
        async def one(record: Record) -> Outcome:
            value = text(record, "text")
            SEEN.append(value)
            if value in HELD:
                await HELD[value].wait()
            return Outcome.CREATED

        return await records.each_record("flood_note", batch, one)

    yield
    records.ENTITIES.pop("flood_note", None)


async def new_token() -> tuple[str, str]:
    name = f"flood-{uuid.uuid4().hex[:8]}"
    async with in_transaction():
        _, token = await service_accounts.create(name, "catalog:write", by=(ActorKind.CLI, "tests"))
    return name, token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def lines_of(content: bytes) -> list[dict]:
    return [orjson.loads(line) for line in content.splitlines()]


async def test_many_tiny_bad_lines_keep_a_bounded_number_of_rows_and_answer_a_bounded_size(client, settings):
    """The reproduction: `1\\n` a line was a stored row and ~170 answer bytes each, without end."""
    name, token = await new_token()
    lines, kept = settings.provider_max_lines, settings.provider_max_refusals_kept
    assert (lines, kept) == (10_000, 1_000)  # the documented defaults
    response = await client.post("/provider/v1/records/flood_note", content=b"1\n" * lines, headers=bearer(token))
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/x-ndjson")
    answered = lines_of(response.content)
    assert [a["line"] for a in answered] == list(range(1, lines + 1))  # every line answered, in order
    assert {a["result"] for a in answered} == {"refused"}
    assert len(response.content) <= lines * 200  # a bounded answer: ~170 bytes a line, no more lines than the limit
    assert all("kept" not in a for a in answered[:kept]) and all(a["kept"] is False for a in answered[kept:])
    rows = await RefusedRecord.filter(actor=name).order_by("line")
    assert len(rows) == kept + 1
    summary = rows[-1]
    assert summary.line == kept + 1 and summary.field is None and f"More than {kept} lines of this request" in summary.reason
    action = await ProviderAction.get(actor=name, action="records.flood_note")
    assert action.details["refused"] == lines and action.details["refusedNotKept"] == lines - kept


async def test_a_second_flood_request_keeps_its_own_bounded_rows(client, settings, monkeypatch):
    """The bound is per request: each keeps at most its limit + 1, and a request under the limit keeps every line."""
    monkeypatch.setattr(settings, "provider_max_refusals_kept", 3)
    name, token = await new_token()
    for body in (b"x\n" * 10, b"x\n" * 10, b"x\n" * 2):
        answered = lines_of((await client.post("/provider/v1/records/flood_note", content=body, headers=bearer(token))).content)
        assert len(answered) == body.count(b"\n")
    assert await RefusedRecord.filter(actor=name).count() == 4 + 4 + 2


async def test_more_lines_than_the_limit_are_refused_413_before_any_is_applied(client, settings, monkeypatch):
    monkeypatch.setattr(settings, "provider_max_lines", 5)
    name, token = await new_token()
    note = f"over-{uuid.uuid4().hex[:6]}"
    ndjson = b"".join(orjson.dumps({"external_id": f"{note}-{i}", "text": note}) + b"\n" for i in range(6))
    for body in (ndjson, b"1\n" * 6, b"\n" * 6, orjson.dumps([{"external_id": "a", "text": note}] * 6), b"[" + b"1," * 5 + b"1]"):
        response = await client.post("/provider/v1/records/flood_note", content=body, headers=bearer(token))
        assert response.status_code == 413, body[:40]
        error = response.json()["error"]
        assert error["code"] == "TOO_MANY_LINES" and "at most 5 records per request" in error["message"]
    assert note not in SEEN and await RefusedRecord.filter(actor=name).count() == 0
    exactly = await client.post("/provider/v1/records/flood_note", content=ndjson.rsplit(b"\n", 2)[0], headers=bearer(token))
    assert [a["result"] for a in lines_of(exactly.content)] == ["created"] * 5  # the limit itself is taken


async def test_an_array_with_more_values_than_its_records_could_hold_is_refused_unread(client, settings, monkeypatch):
    """A JSON array is parsed whole: one holding more punctuation than max_lines records would is refused
    before it is parsed (`[[[], [], …]]` would cost ~30 times its bytes)."""
    monkeypatch.setattr(settings, "provider_max_lines", 10)
    _, token = await new_token()
    body = b"[[" + b"[]," * (provider_api.ARRAY_PUNCTUATION_PER_RECORD * 10) + b"[]]]"
    response = await client.post("/provider/v1/records/flood_note", content=body, headers=bearer(token))
    assert response.status_code == 413 and response.json()["error"]["code"] == "TOO_MANY_LINES"


async def test_a_line_no_record_could_be_is_refused_unread_and_the_next_line_applies(client):
    """A nested line (`{"a": [{}, {}, …]}`) would take ~30 times its bytes to parse: refused by its
    punctuation, before it is parsed; a long flat line (a PDF in base64) is read."""
    _, token = await new_token()
    note = f"after-{uuid.uuid4().hex[:6]}"
    body = b"\n".join([
        b'{"external_id": "n", "text": [' + b"{}," * RECORD_PUNCTUATION + b"{}]}",
        b"[" * 100_000,  # deeper than any parser goes
        orjson.dumps({"external_id": note, "text": note, "file_base64": "QUJD" * 500_000}),
    ])
    answered = lines_of((await client.post("/provider/v1/records/flood_note", content=body, headers=bearer(token))).content)
    assert [(a["line"], a["result"]) for a in answered] == [(1, "refused"), (2, "refused"), (3, "created")]
    assert answered[0]["reason"].startswith("Not read: more than") and answered[1]["reason"].startswith("Not read: more than")


async def test_lines_are_parsed_and_applied_a_batch_at_a_time(client, monkeypatch):
    """Batches end at BATCH lines or once their lines reach BATCH_BYTES: a batch of long lines holds few."""
    monkeypatch.setattr(provider_api, "BATCH_BYTES", 1000)
    batches = [len(batch) for batch in provider_api.batches(provider_api.parse("flood_note", b"".join(
        orjson.dumps({"external_id": str(i), "text": "x" * 400}) + b"\n" for i in range(10)), 100))]
    assert batches == [3, 3, 3, 1]
    monkeypatch.setattr(provider_api, "BATCH_BYTES", 10**9)
    small = provider_api.parse("flood_note", b"1\n" * (provider_api.BATCH * 2 + 1), 10_000)
    assert [len(batch) for batch in provider_api.batches(small)] == [provider_api.BATCH, provider_api.BATCH, 1]


async def test_the_answer_is_streamed_a_batch_at_a_time_valid_and_complete(live_server):
    """Over a real socket: the first batch's answer arrives while the second batch is still held (so
    the answer is not built whole before it is sent), and once it is let go the answer is every line,
    in order, each valid JSON, as a legitimate sender reads it."""
    _, token = await new_token()
    run = uuid.uuid4().hex[:6]
    count = provider_api.BATCH * 2 + 7
    texts = [f"{run}-{i}" for i in range(count)]
    HELD[texts[provider_api.BATCH]] = release = asyncio.Event()  # the second batch's first record waits
    body = b"".join(orjson.dumps({"external_id": t, "text": t}) + b"\n" for t in texts)
    try:
        async with httpx.AsyncClient(base_url=f"http://{live_server}", timeout=30) as http:
            async with http.stream("POST", "/provider/v1/records/flood_note", content=body, headers=bearer(token)) as response:
                assert response.status_code == 200 and response.headers["content-type"].startswith("application/x-ndjson")
                assert "content-length" not in response.headers  # streamed (chunked), not a body built whole
                lines = response.aiter_lines()
                first = [orjson.loads(await anext(lines)) for _ in range(provider_api.BATCH)]
                assert [a["line"] for a in first] == list(range(1, provider_api.BATCH + 1))
                assert not release.is_set() and texts[provider_api.BATCH + 1] not in SEEN  # the second batch is still held
                release.set()
                rest = [orjson.loads(line) async for line in lines if line]
    finally:
        release.set()  # never leave the server's batch held
    answered = first + rest
    assert [(a["line"], a["externalId"], a["result"]) for a in answered] == [(i + 1, t, "created") for i, t in enumerate(texts)]
    assert answered[0] == {"line": 1, "entity": "flood_note", "externalId": texts[0], "result": "created"}
    HELD.clear()


async def test_a_nul_character_is_a_refused_line_not_a_failed_batch(client):
    """Found by the attacker's read: PostgreSQL refuses a NUL in text, and with it the whole batch (every
    line answered "not applied"); now it is the one line refused, naming its field."""
    _, token = await new_token()
    note = f"nul-{uuid.uuid4().hex[:6]}"
    body = b"\n".join([
        orjson.dumps({"external_id": "a\u0000b", "text": "x"}),
        orjson.dumps({"external_id": "c", "text": "\u0000"}),
        orjson.dumps({"external_id": note, "text": note}),
    ])
    answered = lines_of((await client.post("/provider/v1/records/flood_note", content=body, headers=bearer(token))).content)
    assert [(a["result"], a.get("field")) for a in answered] == [("refused", "external_id"), ("refused", "text"), ("created", None)]
    assert answered[0]["reason"] == "A NUL character: binary data, not text."
    as_array = await client.post("/provider/v1/records/flood_note", json=[{"external_id": "\u0000"}, {"external_id": note, "text": note}],
                                 headers=bearer(token))
    assert [(a["result"], a.get("field")) for a in lines_of(as_array.content)] == [("refused", "external_id"), ("created", None)]


async def test_a_staff_request_body_is_small(client):
    """Found by the attacker's read: the staff desk's JSON body was read up to the records' 20 MiB and
    parsed whole (a nested one ~30 times its bytes) before the token's rights were looked at."""
    _, token = await new_token()
    body = b'{"inn": [' + b"{}," * 30_000 + b"{}]}"
    response = await client.post("/provider/v1/staff/organizations/approve", content=body, headers=bearer(token))
    assert response.status_code == 413 and response.json()["error"]["code"] == "TOO_LARGE"
    response = await client.post("/provider/v1/staff/organizations/approve", json={"inn": "7736207543"}, headers=bearer(token))
    assert response.status_code == 403  # a small one reaches the rights as before


async def test_a_client_gone_midway_leaves_the_request_in_the_audit(live_server):
    """The audit is written when the answer ends, however it ends: a sender that hangs up while a
    batch is held still leaves its request's counts (and `cut` when the rest was not applied)."""
    name, token = await new_token()
    run = uuid.uuid4().hex[:6]
    texts = [f"{run}-{i}" for i in range(provider_api.BATCH + 3)]
    HELD[texts[provider_api.BATCH]] = release = asyncio.Event()
    body = b"".join(orjson.dumps({"external_id": t, "text": t}) + b"\n" for t in texts)
    try:
        async with httpx.AsyncClient(base_url=f"http://{live_server}", timeout=30) as http:
            async with http.stream("POST", "/provider/v1/records/flood_note", content=body, headers=bearer(token)) as response:
                lines = response.aiter_lines()
                for _ in range(provider_api.BATCH):
                    await anext(lines)
    finally:
        release.set()
    for _ in range(500):
        action = await ProviderAction.get_or_none(actor=name, action="records.flood_note")
        if action is not None:
            break
        await asyncio.sleep(0.02)
    assert action is not None and action.details["created"] >= provider_api.BATCH
    assert action.details.get("cut") or action.details["lines"] == len(texts)
    HELD.clear()
