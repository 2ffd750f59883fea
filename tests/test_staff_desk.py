"""The staff desk: refused provider records are kept whatever the door, failed deliveries are seen
and retried, and a service token with the `staff` scope moderates; staff only, in GraphQL and in the
provider HTTP API (one rule: resolvers/common/permissions.py has_staff_rights)."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import orjson
import pytest

from foundation.ids import to_global_id
from models.organizations import ModerationStatus, Organization, Role
from models.outbox import DeliveryStatus, OutboxMessage
from models.provider import ImportRun, ProviderAction, RefusedRecord
from resolvers.common import outbox
from resolvers.provider.imports import import_file
from resolvers.provider.records import SCOPES, ProviderActor
from tests import factories
from tests.processes import kabinet_cli
from tests.test_add_organization import signed_in, staff
from tests.test_provider_api import answers, bearer, new_token
from tests.test_provider_billing import provider_org, uid
from tests.test_sms_gateway import ALL, TOKEN, Gateway, sms_ru, sms_ru_answer
from workers import mail

REFUSED = """query($entity: String) { refusedRecords(first: 100, entity: $entity) { edges { node {
  id actorKind actor door source entity line externalId field reason refusedAt } } } }"""
FAILURES = """{ deliveryFailures(first: 100) { totalCount edges { node {
  id channel recipient subject template status attempts lastError failedAt createdAt } } } }"""
RETRY = """mutation($id: ID!) { retryDelivery(deliveryId: $id) {
  delivery { id status attempts failedAt } userErrors { code field message } } }"""
STAFF_ENDPOINTS = [
    ("GET", "/provider/v1/staff/delivery-failures"),
    ("POST", "/provider/v1/staff/delivery-failures/x/retry"),
    ("GET", "/provider/v1/staff/refused-records"),
    ("GET", "/provider/v1/staff/waiting-documents"),
    ("GET", "/provider/v1/staff/organizations"),
    ("POST", "/provider/v1/staff/organizations/approve"),
    ("POST", "/provider/v1/staff/organizations/reject"),
    ("POST", "/provider/v1/staff/organizations/invite"),
    ("POST", "/provider/v1/staff/organizations/make-owner"),
]


@pytest.fixture
def gateway():
    """The stand-in SMS gateway of tests/test_sms_gateway.py."""
    server = Gateway()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


async def owner(gql) -> str:
    _, team = await factories.create_team(Role.OWNER)
    return await signed_in(gql, team[Role.OWNER])


def nodes(body: dict, field: str) -> list[dict]:
    assert "errors" not in body, body
    return [edge["node"] for edge in body["data"][field]["edges"]]


def refused_code(body: dict) -> str:
    return body["errors"][0]["extensions"]["code"]


async def failed_sms(settings, gateway, text: str = "Код 715302: вход в кабинет") -> OutboxMessage:
    """An SMS the gateway refused until the outbox gave it up, through the mail worker's own path."""
    phone = factories.unique_phone()
    message = await outbox.enqueue_sms(phone, text, template="sign_up_code_sms")
    gateway.answer = lambda request: (500, "gateway down") if request.query.get("to") == phone[1:] else sms_ru_answer()(request)
    await OutboxMessage.filter(id=message.id).update(attempts=mail.MAX_ATTEMPTS - 1)
    await mail.deliver_due(sms_ru(settings, gateway), "test-staff-desk", batch=ALL)
    await message.refresh_from_db()
    assert message.status == DeliveryStatus.FAILED and message.failed_at is not None
    return message


# ---------------------------------------------------------------- refused records


async def import_with_refusals(tmp_path):
    """A ledger file of three lines imported by the operator: one good, one with a bad amount, one not
    JSON. (The organization, the bad line's external id, the file, the import's summary.)"""
    org, _ = await provider_org()
    bad_amount = uid("le")
    lines = [
        {"external_id": uid("le"), "organization": org.external_id, "kind": "TOP_UP", "amount": 10, "occurred_at": "2026-01-01"},
        {"external_id": bad_amount, "organization": org.external_id, "kind": "TOP_UP", "amount": "ten", "occurred_at": "2026-01-02"},
        "not json",
    ]
    path = tmp_path / f"ledger-{uuid.uuid4().hex[:6]}.ndjson"
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n", encoding="utf-8")
    summary = await import_file(path, ProviderActor("CLI", "operator", frozenset(SCOPES)), entity="ledger_entry", batch=2)
    return org, bad_amount, path, summary


async def test_a_refused_line_by_import_and_by_the_api_is_kept_and_shown_to_staff_only(app, gql, client, tmp_path):
    org, bad_amount, path, summary = await import_with_refusals(tmp_path)
    assert (summary.created, summary.refused) == (1, 2)
    run = await ImportRun.get(file_name=path.name)
    kept = await RefusedRecord.filter(import_run_id=run.id).order_by("line")
    assert [(r.line, r.entity, r.field, r.external_id, r.source, r.actor_kind, r.actor) for r in kept] == [
        (2, "ledger_entry", "amount", bad_amount, path.name, "CLI", "operator"),
        (3, "ledger_entry", None, None, path.name, "CLI", "operator"),
    ]

    token_name = f"accounting-{uuid.uuid4().hex[:6]}"
    token = await new_token("catalog:write", name=token_name)
    no_inn = uid("org")
    body = b"\n".join([orjson.dumps({"external_id": no_inn, "name": "ООО Без ИНН"}), b"[1, 2"])
    got = answers(await client.post("/provider/v1/records/organization", content=body, headers=bearer(token)))
    assert [a["result"] for a in got] == ["refused", "refused"]

    as_staff = await staff(gql)
    ledger = [n for n in nodes(await gql.execute(REFUSED, {"entity": "ledger_entry"}, as_user=as_staff), "refusedRecords")
              if n["source"] == path.name]
    assert sorted((n["line"], n["field"], n["externalId"], n["door"], n["actorKind"], n["actor"]) for n in ledger) == [
        (2, "amount", bad_amount, "IMPORT", "CLI", "operator"), (3, None, None, "IMPORT", "CLI", "operator"),
    ]
    assert "Not a number" in next(n for n in ledger if n["line"] == 2)["reason"]
    by_api = [n for n in nodes(await gql.execute(REFUSED, {"entity": "organization"}, as_user=as_staff), "refusedRecords")
              if n["actor"] == token_name]
    assert sorted((n["line"], n["externalId"], n["door"], n["source"], n["actorKind"]) for n in by_api) == [
        (1, no_inn, "API", "api", "SERVICE"), (2, None, "API", "api", "SERVICE"),
    ]
    assert next(n for n in by_api if n["line"] == 1)["field"] == "inn"
    assert {n["id"] for n in by_api} == {to_global_id("RefusedRecord", r.id) for r in await RefusedRecord.filter(actor=token_name)}

    refused = await gql.execute(REFUSED, {"entity": "organization"}, as_user=await owner(gql))
    assert refused_code(refused) == "FORBIDDEN" and refused["data"] is None


# ---------------------------------------------------------------- failed deliveries


async def test_a_failed_sms_is_shown_to_staff_and_retried_until_it_goes(app, gql, settings, gateway):
    message = await failed_sms(settings, gateway)
    delivery_id = to_global_id("DeliveryFailure", message.id)
    as_staff = await staff(gql)
    shown = [n for n in nodes(await gql.execute(FAILURES, as_user=as_staff), "deliveryFailures") if n["id"] == delivery_id]
    assert len(shown) == 1
    (failure,) = shown
    assert (failure["channel"], failure["recipient"], failure["subject"], failure["template"], failure["status"], failure["attempts"]) == (
        "SMS", message.recipient, None, "sign_up_code_sms", "FAILED", mail.MAX_ATTEMPTS,
    )
    assert failure["lastError"].startswith("SmsGatewayError: HTTP 500") and failure["failedAt"]
    answered = json.dumps(shown)
    assert TOKEN not in answered and "715302" not in answered, "neither the gateway's credentials nor the text"

    retried = (await gql.execute(RETRY, {"id": delivery_id}, as_user=as_staff))["data"]["retryDelivery"]
    assert retried["userErrors"] == [] and retried["delivery"] == {"id": delivery_id, "status": "PENDING", "attempts": 0, "failedAt": None}
    assert await ProviderAction.exists(action="delivery.retry", actor_kind="STAFF", target=f"SMS {message.recipient}")
    again = (await gql.execute(RETRY, {"id": delivery_id}, as_user=as_staff))["data"]["retryDelivery"]
    assert [e["code"] for e in again["userErrors"]] == ["CONFLICT"], "only a FAILED message is retried"

    gateway.answer = sms_ru_answer()
    await mail.deliver_due(sms_ru(settings, gateway), "test-staff-desk", batch=ALL)
    await message.refresh_from_db()
    assert message.status == DeliveryStatus.SENT and message.attempts == 1
    sent = [r for r in gateway.received if r.query.get("to") == message.recipient[1:]]
    assert len(sent) == 2, "the failed try, then the retried one"
    assert delivery_id not in {n["id"] for n in nodes(await gql.execute(FAILURES, as_user=as_staff), "deliveryFailures")}


async def test_a_non_staff_user_is_forbidden_each_desk_query_and_mutation(app, gql):
    failed = await OutboxMessage.create(
        channel="EMAIL", recipient=factories.unique_email(), subject="Тема", body="Текст", next_attempt_at=dt.datetime.now(dt.timezone.utc),
    )
    await OutboxMessage.filter(id=failed.id).update(status=DeliveryStatus.FAILED, attempts=mail.MAX_ATTEMPTS)
    as_owner = await owner(gql)
    assert refused_code(await gql.execute(FAILURES, as_user=as_owner)) == "FORBIDDEN"
    assert refused_code(await gql.execute(REFUSED, as_user=as_owner)) == "FORBIDDEN"
    retried = (await gql.execute(RETRY, {"id": to_global_id("DeliveryFailure", failed.id)}, as_user=as_owner))["data"]["retryDelivery"]
    assert [e["code"] for e in retried["userErrors"]] == ["FORBIDDEN"] and retried["delivery"] is None
    assert (await OutboxMessage.get(id=failed.id)).status == DeliveryStatus.FAILED


# ---------------------------------------------------------------- the staff scope of a service token


async def pending_organization() -> Organization:
    organization = await factories.create_organization()
    await Organization.filter(id=organization.id).update(moderation_status=ModerationStatus.PENDING)
    return await Organization.get(id=organization.id)


async def test_a_staff_token_moderates_by_inn_and_works_the_desk(app, client, settings, gateway):
    name = f"service-manager-{uuid.uuid4().hex[:6]}"
    token = await new_token("staff", name=name)
    to_approve, to_reject = await pending_organization(), await pending_organization()

    listed = await client.get("/provider/v1/staff/organizations", params={"first": "100"}, headers=bearer(token))
    assert listed.status_code == 200, listed.text
    assert listed.json()["items"] and all(item["moderationStatus"] == "PENDING" for item in listed.json()["items"])

    approved = await client.post("/provider/v1/staff/organizations/approve", json={"inn": to_approve.inn}, headers=bearer(token))
    assert approved.status_code == 200, approved.text
    assert approved.json()["organization"]["moderationStatus"] == "APPROVED"
    assert (await Organization.get(id=to_approve.id)).moderation_status == ModerationStatus.APPROVED
    assert await ProviderAction.exists(actor_kind="SERVICE", actor=name, action="organization.approve", target=f"INN {to_approve.inn}")

    no_reason = await client.post("/provider/v1/staff/organizations/reject", json={"inn": to_reject.inn}, headers=bearer(token))
    assert no_reason.status_code == 400 and no_reason.json()["error"]["field"] == "reason"
    rejected = await client.post(
        "/provider/v1/staff/organizations/reject", json={"inn": to_reject.inn, "reason": "ИНН не наш клиент"}, headers=bearer(token)
    )
    assert rejected.status_code == 200, rejected.text
    assert (rejected.json()["organization"]["moderationStatus"], rejected.json()["organization"]["moderationNote"]) == ("REJECTED", "ИНН не наш клиент")
    assert await ProviderAction.exists(actor_kind="SERVICE", actor=name, action="organization.reject")
    wrong_kpp = await client.post(
        "/provider/v1/staff/organizations/approve", json={"inn": to_reject.inn, "kpp": "999999999"}, headers=bearer(token)
    )
    assert wrong_kpp.status_code == 404 and wrong_kpp.json()["error"]["code"] == "NOT_FOUND"
    twice = await client.post("/provider/v1/staff/organizations/approve", json={"inn": to_approve.inn}, headers=bearer(token))
    assert twice.status_code == 409 and twice.json()["error"]["field"] == "inn", "the request's own field, not the domain's"

    message = await failed_sms(settings, gateway, "Код 482913")
    failures = await client.get("/provider/v1/staff/delivery-failures", headers=bearer(token))
    assert failures.status_code == 200
    (shown,) = [item for item in failures.json()["items"] if item["id"] == to_global_id("DeliveryFailure", message.id)]
    assert shown["status"] == "FAILED" and shown["recipient"] == message.recipient and TOKEN not in json.dumps(shown)
    retried = await client.post(f"/provider/v1/staff/delivery-failures/{shown['id']}/retry", headers=bearer(token))
    assert retried.status_code == 200 and retried.json()["delivery"]["status"] == "PENDING"
    assert await ProviderAction.exists(actor_kind="SERVICE", actor=name, action="delivery.retry")
    again = await client.post(f"/provider/v1/staff/delivery-failures/{shown['id']}/retry", headers=bearer(token))
    assert again.status_code == 409 and again.json()["error"]["field"] == "id"

    refused = await client.get("/provider/v1/staff/refused-records", params={"entity": "organization", "first": "5"}, headers=bearer(token))
    assert refused.status_code == 200 and len(refused.json()["items"]) <= 5
    assert await ProviderAction.exists(actor=name, action="staff.refused_records")


async def test_a_bad_query_parameter_is_400_invalid_naming_it(app, client):
    token = await new_token("staff", name=f"service-manager-{uuid.uuid4().hex[:6]}")
    for path, params, field in [
        ("/provider/v1/staff/refused-records", {"first": "1000"}, "first"),
        ("/provider/v1/staff/delivery-failures", {"first": "ten"}, "first"),
        ("/provider/v1/staff/refused-records", {"after": "not-a-cursor"}, "after"),
        ("/provider/v1/staff/organizations", {"status": "bogus"}, "status"),
    ]:
        response = await client.get(path, params=params, headers=bearer(token))
        assert response.status_code == 400, (path, response.text)
        assert (response.json()["error"]["code"], response.json()["error"]["field"]) == ("INVALID", field), (path, response.text)


async def test_a_token_without_the_staff_scope_gets_403_on_every_staff_endpoint(app, client):
    name = f"accounting-{uuid.uuid4().hex[:6]}"
    token = await new_token("catalog:write", "billing:write", "cloud:write", name=name)
    organization = await pending_organization()
    for method, path in STAFF_ENDPOINTS:
        body = {"inn": organization.inn, "reason": "нет", "email": factories.unique_email(), "role": "USER"} if method == "POST" else None
        response = await client.request(method, path, json=body, headers=bearer(token))
        assert response.status_code == 403, (path, response.text)
        error = response.json()["error"]
        assert error["code"] == "FORBIDDEN" and "staff" in error["message"], (path, error)
    assert (await Organization.get(id=organization.id)).moderation_status == ModerationStatus.PENDING
    denials = await ProviderAction.filter(actor=name, action__startswith="staff.")
    assert len(denials) == len(STAFF_ENDPOINTS) and all(d.details == {"denied": "needs the scope staff"} for d in denials)
    assert (await client.get("/provider/v1/staff/organizations")).status_code == 401


# ---------------------------------------------------------------- the operator at the server's CLI


async def test_the_operator_retries_a_failed_message_by_the_id_kabinet_outbox_failed_prints(app, settings, gateway):
    message = await failed_sms(settings, gateway, "Код 306118")
    (line,) = [line for line in (await kabinet_cli(settings, "outbox", "failed", "--limit", "1000")).splitlines() if str(message.id) in line]
    (printed_id,) = [word.rstrip(":") for word in line.split() if word.startswith("id=")]

    out = await kabinet_cli(settings, "outbox", "retry", printed_id)
    assert message.recipient in out and "PENDING" in out
    await message.refresh_from_db()
    assert (message.status, message.attempts, message.failed_at) == (DeliveryStatus.PENDING, 0, None)
    (audited,) = await ProviderAction.filter(action="delivery.retry", target=f"SMS {message.recipient}")
    assert audited.actor_kind == "CLI" and audited.actor and audited.details["messageId"] == str(message.id)

    assert await kabinet_cli(settings, "outbox", "retry", str(message.id), status=1) == "", "only a FAILED message is retried"
    assert await kabinet_cli(settings, "outbox", "retry", str(uuid.uuid4()), status=1) == ""
    assert await kabinet_cli(settings, "outbox", "retry", "not-an-id", status=2) == ""
    assert await ProviderAction.filter(action="delivery.retry", target=f"SMS {message.recipient}").count() == 1

    gateway.answer = sms_ru_answer()
    await mail.deliver_due(sms_ru(settings, gateway), "test-staff-desk", batch=ALL)
    assert (await OutboxMessage.get(id=message.id)).status == DeliveryStatus.SENT


async def test_the_operator_lists_refused_records_by_entity_and_file_with_kabinet_provider_refused(app, settings, tmp_path):
    org, bad_amount, path, summary = await import_with_refusals(tmp_path)
    assert summary.refused == 2

    listed = (await kabinet_cli(settings, "provider", "refused", "--entity", "ledger_entry", "--source", str(path))).splitlines()
    rows = [line.split("\t") for line in listed]
    assert sorted((source, line_no, entity, external_id, field) for _, source, line_no, entity, external_id, field, _ in rows) == [
        (path.name, "line 2", "ledger_entry", bad_amount, "amount"), (path.name, "line 3", "ledger_entry", "-", "-"),
    ]
    assert "Not a number" in next(row for row in rows if row[2] == "line 2")[6]
    newest = await RefusedRecord.filter(source=path.name).order_by("-created_at", "-id").first()
    (only,) = (await kabinet_cli(settings, "provider", "refused", "--source", path.name, "--limit", "1")).splitlines()
    assert only.split("\t")[2] == f"line {newest.line}", "newest first"
    assert await kabinet_cli(settings, "provider", "refused", "--entity", "organization", "--source", path.name) == ""
