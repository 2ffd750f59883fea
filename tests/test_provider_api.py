"""The provider HTTP API and its service accounts: tokens shown once, scoped, revocable; records
in as NDJSON (or a JSON array), answered per line and in order; each request in the provider's audit."""

from __future__ import annotations

import datetime as dt
import uuid

import orjson
import pytest
from tortoise.transactions import in_transaction

from foundation.clock import utcnow
from models.events import OrganizationEvent
from models.program_tokens import ProgramToken
from models.provider import ProviderAction
from resolvers.common.errors import UserFacingError
from resolvers.provider import records, service_accounts
from resolvers.provider.audit import ActorKind
from resolvers.provider.records import Outcome, Record, RecordRefused, entity, text
from resolvers.identity.tokens import hash_opaque_token
from tests import factories
from tests.processes import kabinet_cli

OPERATOR = (ActorKind.CLI, "tests")
NOTES: dict[str, dict] = {}  # the test entity's rows: external_id → values


@pytest.fixture(autouse=True, scope="module")
def test_entity(app):
    """A tiny entity of the test's own (the real ones live in their modules): a note, optionally about
    an organization (named by external_id or INN), held in NOTES."""

    @entity("test_note", "catalog:write", ["organization", "organization_inn", "text"], "A test's note.")
    async def upsert(actor, batch: list[Record]):
        referenced = await records.organizations_referenced(batch)

        async def one(record: Record) -> Outcome:
            values = {"text": text(record, "text")}
            if values["text"] == "boom":
                raise RuntimeError("the test entity fails this batch")
            if values["text"] == "no":
                raise RecordRefused("text", "The test refuses «no».")
            organization = None
            if record.values.get("organization") or record.values.get("organization_inn"):
                organization = records.organization_of(record, referenced)
            known = NOTES.get(record.external_id)
            if known == values:
                return Outcome.UNCHANGED
            NOTES[record.external_id] = values
            if organization is not None:
                actor.touched(organization, "organization")
            return Outcome.CREATED if known is None else Outcome.UPDATED

        return await records.each_record("test_note", batch, one)

    yield
    records.ENTITIES.pop("test_note", None)


async def new_token(*scopes: str, name: str | None = None) -> str:
    async with in_transaction():
        _, token = await service_accounts.create(name or f"test-{uuid.uuid4().hex[:8]}", ",".join(scopes), by=OPERATOR)
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def answers(response) -> list[dict]:
    assert response.headers["content-type"].startswith("application/x-ndjson"), response.text
    return [orjson.loads(line) for line in response.content.splitlines()]


def external() -> str:
    return f"note-{uuid.uuid4().hex[:10]}"


# ------------------------------------------------------------------------------ service accounts


async def test_a_token_is_recognisable_shown_once_and_only_its_hash_kept():
    name = f"1c-{uuid.uuid4().hex[:6]}"
    async with in_transaction():
        account, token = await service_accounts.create(name, "billing:write, catalog:write", by=OPERATOR)
    assert token.startswith("kps_") and len(token) > 40
    stored = await ProgramToken.get(name=name)
    assert stored.token_hash == hash_opaque_token(token) and token not in str(stored.__dict__)
    assert stored.scopes == ["catalog:write", "billing:write"]  # in SCOPES' order
    action = await ProviderAction.get(action="token.create", target=name)
    assert (action.actor_kind, action.actor, action.details) == ("CLI", "tests", {"scopes": ["catalog:write", "billing:write"]})


@pytest.mark.parametrize("scopes, message", [("billing:write,admin", "Unknown scope admin"), (" , ", "at least one scope")])
async def test_a_token_needs_known_scopes(scopes, message):
    with pytest.raises(UserFacingError) as refused:
        await service_accounts.create(f"x-{uuid.uuid4().hex[:6]}", scopes, by=OPERATOR)
    assert message in refused.value.message and refused.value.field == "scopes"


async def test_a_name_is_taken_once():
    name = f"dup-{uuid.uuid4().hex[:6]}"
    await new_token("staff", name=name)
    with pytest.raises(UserFacingError) as refused:
        await service_accounts.create(name, "staff", by=OPERATOR)
    assert refused.value.code == "CONFLICT"


async def test_the_token_cli_prints_only_the_token_lists_and_revokes(client, settings):
    name = f"cli-{uuid.uuid4().hex[:6]}"
    created = await kabinet_cli(settings, "provider", "token", "create", "--name", name, "--scope", "cloud:write,billing:write")
    token = created.strip()
    assert token.startswith("kps_") and "\n" not in token  # nothing else on stdout: a script captures it
    assert (await client.get("/provider/v1/entities", headers=bearer(token))).status_code == 200
    listed = [line for line in (await kabinet_cli(settings, "provider", "token", "list")).splitlines() if line.startswith(name + "\t")]
    assert len(listed) == 1 and "billing:write,cloud:write" in listed[0] and "last used 20" in listed[0] and "active" in listed[0]
    await kabinet_cli(settings, "provider", "token", "revoke", "--name", name)
    assert (await client.get("/provider/v1/entities", headers=bearer(token))).status_code == 401
    listed = [line for line in (await kabinet_cli(settings, "provider", "token", "list")).splitlines() if line.startswith(name + "\t")]
    assert "revoked 20" in listed[0]
    assert await kabinet_cli(settings, "provider", "token", "revoke", "--name", name, status=1) == ""


# ------------------------------------------------------------------------------ who may send what


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer kps_not-a-token"}, {"Authorization": "Bearer wrong"}])
async def test_without_a_valid_token_the_api_answers_401(client, headers):
    for response in (
        await client.post("/provider/v1/records/test_note", content=b'{"external_id": "a", "text": "x"}\n', headers=headers),
        await client.get("/provider/v1/entities", headers=headers),
    ):
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["error"]["code"] == "UNAUTHENTICATED"


async def test_a_token_without_the_entitys_scope_is_refused_403_and_the_attempt_audited(client):
    token = await new_token("billing:write")
    response = await client.post("/provider/v1/records/test_note", content=b'{"external_id": "a", "text": "x"}\n', headers=bearer(token))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "FORBIDDEN" and "catalog:write" in response.json()["error"]["message"]
    account = await ProgramToken.get(token_hash=hash_opaque_token(token))
    assert await ProviderAction.exists(actor_kind="SERVICE", actor=account.name, action="records.test_note", details={"denied": "needs catalog:write"})


async def test_an_unknown_entity_is_404(client):
    response = await client.post("/provider/v1/records/no_such_thing", content=b"{}", headers=bearer(await new_token("staff")))
    assert response.status_code == 404 and response.json()["error"]["code"] == "NOT_FOUND"
    assert "test_note" in response.json()["error"]["message"]


async def test_a_revoked_token_is_refused_at_once(client):
    token = await new_token("catalog:write")
    line = orjson.dumps({"external_id": external(), "text": "до отзыва"})
    assert (await client.post("/provider/v1/records/test_note", content=line, headers=bearer(token))).status_code == 200
    account = await ProgramToken.get(token_hash=hash_opaque_token(token))
    async with in_transaction():
        await service_accounts.revoke(account.name, by=OPERATOR)
    assert (await client.post("/provider/v1/records/test_note", content=line, headers=bearer(token))).status_code == 401


async def test_last_use_is_kept_at_most_once_a_minute(client):
    token = await new_token("catalog:write")
    account = await ProgramToken.get(token_hash=hash_opaque_token(token))
    assert account.last_used_at is None
    await client.get("/provider/v1/entities", headers=bearer(token))
    await account.refresh_from_db()
    first = account.last_used_at
    assert first is not None and utcnow() - first < dt.timedelta(seconds=30)
    half_a_minute_ago = utcnow() - dt.timedelta(seconds=30)
    await ProgramToken.filter(id=account.id).update(last_used_at=half_a_minute_ago)
    await client.get("/provider/v1/entities", headers=bearer(token))
    await account.refresh_from_db()
    assert account.last_used_at == half_a_minute_ago  # not written again within the minute
    await ProgramToken.filter(id=account.id).update(last_used_at=utcnow() - dt.timedelta(minutes=2))
    await client.get("/provider/v1/entities", headers=bearer(token))
    await account.refresh_from_db()
    assert utcnow() - account.last_used_at < dt.timedelta(seconds=30)


# ------------------------------------------------------------------------------ records


async def test_ndjson_is_answered_line_by_line_in_order_a_bad_line_refused_the_rest_applied(client):
    token = await new_token("catalog:write")
    first, second = external(), external()
    body = b"\n".join([
        b"\xef\xbb\xbf" + orjson.dumps({"external_id": first, "text": "one"}),  # 1C writes a BOM first
        b'{"external_id": "broken", "text": ',  # not JSON
        orjson.dumps({"external_id": second, "text": "two"}) + b"\r",  # a CRLF line
        b"",  # a blank line: skipped, answered nothing
        b"[1, 2]",  # JSON, not an object
        orjson.dumps({"external_id": first, "text": "one"}),  # the same again: unchanged
        orjson.dumps({"text": "no id"}),
        orjson.dumps({"external_id": second, "text": "no"}),  # refused by the entity, with its field
        orjson.dumps({"external_id": second, "text": "two, corrected"}),
    ]) + b"\n"
    response = await client.post(
        "/provider/v1/records/test_note", content=body, headers={**bearer(token), "Content-Type": "application/x-ndjson"}
    )
    assert response.status_code == 200
    got = answers(response)
    assert [(a["line"], a["result"], a["externalId"]) for a in got] == [
        (1, "created", first), (2, "refused", None), (3, "created", second), (5, "refused", None),
        (6, "unchanged", first), (7, "refused", None), (8, "refused", second), (9, "updated", second),
    ]
    assert got[0] == {"line": 1, "entity": "test_note", "externalId": first, "result": "created"}
    assert got[1]["field"] is None and got[1]["reason"].startswith("Not valid JSON")
    assert got[3]["field"] is None and "Not a JSON object" in got[3]["reason"]
    assert got[5]["field"] == "external_id"
    assert (got[6]["field"], got[6]["reason"]) == ("text", "The test refuses «no».")
    assert NOTES[second] == {"text": "two, corrected"}
    account = await ProgramToken.get(token_hash=hash_opaque_token(token))
    action = await ProviderAction.get(actor_kind="SERVICE", actor=account.name, action="records.test_note")
    assert action.details == {"lines": 8, "created": 2, "updated": 1, "unchanged": 1, "deleted": 0, "refused": 4}


async def test_a_json_array_is_taken_too(client):
    token = await new_token("catalog:write")
    note = external()
    response = await client.post(
        "/provider/v1/records/test_note", json=[{"external_id": note, "text": "a"}, "nope", {"external_id": note, "text": "a"}],
        headers=bearer(token),
    )
    assert [(a["line"], a["result"]) for a in answers(response)] == [(1, "created"), (2, "refused"), (3, "unchanged")]


async def test_a_line_not_in_utf8_is_refused_saying_so_and_a_broken_array_is_400(client):
    token = await new_token("catalog:write")
    body = b"\n".join([orjson.dumps({"external_id": external(), "text": "ok"}), '{"external_id": "x", "text": "Лютик"}'.encode("cp1251")])
    got = answers(await client.post("/provider/v1/records/test_note", content=body, headers=bearer(token)))
    assert [a["result"] for a in got] == ["created", "refused"] and "UTF-8" in got[1]["reason"]
    response = await client.post("/provider/v1/records/test_note", content=b'[{"external_id": "x"', headers=bearer(token))
    assert response.status_code == 400 and response.json()["error"]["code"] == "INVALID"


async def test_records_are_applied_in_batches_and_a_failed_line_is_answered_refused(client, monkeypatch):
    from kabinet import provider_api

    monkeypatch.setattr(provider_api, "BATCH", 2)
    token = await new_token("catalog:write")
    notes = [external() for _ in range(5)]
    lines = [{"external_id": notes[0], "text": "a"}, {"external_id": notes[1], "text": "b"},
             {"external_id": notes[2], "text": "boom"}, {"external_id": notes[3], "text": "d"},
             {"external_id": notes[4], "text": "e"}]
    response = await client.post(
        "/provider/v1/records/test_note", content=b"\n".join(orjson.dumps(line) for line in lines), headers=bearer(token)
    )
    got = answers(response)
    # the failed batch is applied again line by line: only the line that fails is refused (issue 17)
    assert [a["result"] for a in got] == ["created", "created", "refused", "created", "created"]
    assert got[2]["reason"] == records.NOT_STORED and "boom" not in got[2]["reason"]


async def test_a_change_to_an_organization_is_one_event_per_batch(client):
    organization = await factories.create_organization()
    token = await new_token("catalog:write")
    before = await OrganizationEvent.filter(organization_id=organization.id).count()
    body = b"\n".join(
        orjson.dumps({"external_id": external(), "organization_inn": organization.inn, "text": f"note {i}"}) for i in range(3)
    )
    got = answers(await client.post("/provider/v1/records/test_note", content=body, headers=bearer(token)))
    assert [a["result"] for a in got] == ["created"] * 3
    events = await OrganizationEvent.filter(organization_id=organization.id).order_by("seq")
    assert len(events) == before + 1
    assert (events[-1].topic, events[-1].kind, events[-1].payload) == ("data", "CHANGED", {"areas": ["organization"]})
    unknown = orjson.dumps({"external_id": external(), "organization": "no-such-org", "text": "x"})
    (refused,) = answers(await client.post("/provider/v1/records/test_note", content=unknown, headers=bearer(token)))
    assert refused["field"] == "organization" and "send the organization first" in refused["reason"]


async def test_a_body_beyond_the_limit_is_refused_413(client, settings, monkeypatch):
    monkeypatch.setattr(settings, "provider_max_body_bytes", 1000)
    token = await new_token("catalog:write")
    body = b"\n".join(orjson.dumps({"external_id": external(), "text": "x" * 50}) for _ in range(30))
    response = await client.post("/provider/v1/records/test_note", content=body, headers=bearer(token))
    assert response.status_code == 413 and response.json()["error"]["code"] == "TOO_LARGE"


async def test_the_provider_api_takes_more_than_the_graphql_body_limit(client, settings):
    token = await new_token("catalog:write")
    body = b"\n".join(orjson.dumps({"external_id": external(), "text": "x" * 400}) for _ in range(settings.max_body_bytes // 400 + 100))
    assert len(body) > settings.max_body_bytes
    response = await client.post("/provider/v1/records/test_note", content=body, headers=bearer(token))
    assert response.status_code == 200 and {a["result"] for a in answers(response)} == {"created"}


async def test_the_entities_are_listed_with_scopes_and_columns(client):
    token = await new_token("billing:write")
    body = (await client.get("/provider/v1/entities", headers=bearer(token))).json()
    (note,) = [e for e in body["entities"] if e["name"] == "test_note"]
    assert note == {
        "name": "test_note", "scope": "catalog:write", "columns": ["external_id", "organization", "organization_inn", "text"],
        "description": "A test's note.",
    }
    assert set(body["scopes"]) == {"catalog:write", "billing:write", "cloud:write", "staff"} and body["yourScopes"] == ["billing:write"]


async def test_a_wrong_method_or_path_answers_in_the_apis_json_error_shape(client):
    """Starlette's own 405 and 404 under /provider/ and /cluster/ are JSON like every other answer
    there (an integrator's program reads one shape of error); elsewhere they stay plain text."""
    for method, path, status, code in [
        ("GET", "/provider/v1/records/ledger_entry", 405, "METHOD_NOT_ALLOWED"),
        ("GET", "/provider/v1/no-such-thing", 404, "NOT_FOUND"),
        ("DELETE", "/cluster/limits", 405, "METHOD_NOT_ALLOWED"),
    ]:
        response = await client.request(method, path)
        assert response.status_code == status, (method, path, response.text)
        assert response.json()["error"]["code"] == code, (method, path, response.text)
    elsewhere = await client.get("/no-such-page")
    assert elsewhere.status_code == 404 and elsewhere.headers["content-type"].startswith("text/plain")
