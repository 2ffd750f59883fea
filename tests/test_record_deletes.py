"""Provider records that take things back (`deleted`): each entity as its user would expect it —
removed, withdrawn, recalled, or refused naming the line and the field `deleted` — and sent twice,
the second time UNCHANGED with no second event. Also: 1C date-times, and a known contact sent after
a customer's claim approving it."""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from decimal import Decimal

import pytest

from foundation.clock import utcnow
from models.billing import BalanceTransaction, Charge, Document, PrepaidService
from models.cloud import CloudSubscription, Database, Session, SessionStatus
from models.organizations import DatabaseGrant, KnownContact, Membership, ModerationStatus, Organization, Role
from models.products import Contract, Product
from models.provider import PrepaidServiceUse
from models.updates import Release, UpdateMode, UpdateRun, UpdateRunStatus, UpdateSchedule
from resolvers.provider import records
from resolvers.provider.records import SCOPES, Outcome, ProviderActor, Record, RecordRefused
from tests import factories
from tests.test_provider_records import catalog, data_events, ext, new_inn

pytestmark = pytest.mark.usefixtures("app")


def actor() -> ProviderActor:
    return ProviderActor(kind="CLI", name="test", scopes=frozenset(SCOPES))


async def send(entity: str, *values: dict) -> list[records.LineResult]:
    return await records.apply(actor(), entity, [Record(line, v) for line, v in enumerate(values, start=1)])


def gone(external_id: str, flag: object = True) -> dict:
    return {"external_id": external_id, "deleted": flag}


async def deleted_once(entity: str, external_id: str, organization_id: uuid.UUID | None) -> None:
    """Deleting is DELETED with one DATA event (when the entity has an area); sent again it is
    UNCHANGED, no second event."""
    before = len(await data_events(organization_id)) if organization_id else 0
    assert [r.outcome for r in await send(entity, gone(external_id))] == [Outcome.DELETED], entity
    after = len(await data_events(organization_id)) if organization_id else 0
    assert after == before + (1 if organization_id else 0), entity
    assert [r.outcome for r in await send(entity, gone(external_id, "да"))] == [Outcome.UNCHANGED], entity
    assert (len(await data_events(organization_id)) if organization_id else 0) == after, entity


async def customer(configuration: str | None = None) -> tuple[dict[str, dict], Organization]:
    sent = catalog(ext("org"), new_inn())
    if configuration:
        sent["database"]["configuration"] = configuration
    for entity in ("organization", "contract", "product", "cloud_subscription", "database", "known_contact"):
        assert [r.outcome for r in await send(entity, sent[entity])] == [Outcome.CREATED], entity
    return sent, await Organization.get(external_id=sent["organization"]["external_id"])


# ---------------------------------------------------------------------------------------- catalog


async def test_a_contract_product_and_known_contact_are_removed_once():
    sent, org = await customer()
    product = await Product.get(external_id=sent["product"]["external_id"])
    assert product.contract_id is not None
    await deleted_once("contract", sent["contract"]["external_id"], org.id)
    assert not await Contract.exists(external_id=sent["contract"]["external_id"])
    assert (await Product.get(id=product.id)).contract_id is None  # the product stays, without it
    await deleted_once("product", sent["product"]["external_id"], org.id)
    assert not await Product.exists(id=product.id)
    await deleted_once("known_contact", sent["known_contact"]["external_id"], None)  # nobody's dashboard: no event
    assert not await KnownContact.exists(external_id=sent["known_contact"]["external_id"])
    # Never sent at all: nothing to delete.
    assert [r.outcome for r in await send("product", gone(ext("product")))] == [Outcome.UNCHANGED]
    # Sent again without `deleted`, it is back.
    assert [r.outcome for r in await send("contract", sent["contract"])] == [Outcome.CREATED]


async def test_an_organization_and_a_ledger_entry_refuse_deletion_naming_line_and_field():
    sent, org = await customer()
    results = await send("organization", {**sent["organization"], "deleted": "false"}, gone(sent["organization"]["external_id"]))
    assert [(r.line, r.outcome, r.field) for r in results] == [(1, Outcome.UNCHANGED, None), (2, Outcome.REFUSED, "deleted")]
    assert "moderation" in results[1].reason and await Organization.exists(id=org.id)
    entry = {"external_id": ext("le"), "organization": org.external_id, "kind": "TOP_UP", "amount": "100", "occurred_at": "2026-01-01"}
    results = await send("ledger_entry", entry, {**entry, "deleted": "истина"})
    assert [(r.line, r.outcome, r.field) for r in results] == [(1, Outcome.CREATED, None), (2, Outcome.REFUSED, "deleted")]
    assert "correcting entry" in results[1].reason
    assert await BalanceTransaction.filter(external_id=entry["external_id"]).count() == 1
    [unreadable] = await send("product", gone(sent["product"]["external_id"], "может быть"))
    assert (unreadable.outcome, unreadable.field) == (Outcome.REFUSED, "deleted")


async def test_a_deleted_release_is_recalled_and_its_planned_runs_cancelled():
    configuration = f"Конфигурация {uuid.uuid4().hex[:8]}"
    sent, org = await customer(configuration)
    database = await Database.get(external_id=sent["database"]["external_id"])
    await UpdateSchedule.create(database=database, mode=UpdateMode.ON_RELEASE)
    release = {"external_id": ext("release"), "configuration": configuration, "version": "3.0.152.15"}
    assert [r.outcome for r in await send("release", release)] == [Outcome.CREATED]
    [run] = await UpdateRun.filter(database_id=database.id)
    assert run.status is UpdateRunStatus.QUARANTINE
    await deleted_once("release", release["external_id"], org.id)
    stored = await Release.get(external_id=release["external_id"])
    assert stored.recalled_at is not None
    run = await UpdateRun.get(id=run.id)
    assert run.status is UpdateRunStatus.CANCELLED and "отозван" in run.message
    # Sent again as it was, the recalled release stays recalled.
    assert [r.outcome for r in await send("release", release)] == [Outcome.UNCHANGED]
    assert (await Release.get(id=stored.id)).recalled_at == stored.recalled_at


# ---------------------------------------------------------------------------------------- cloud


async def test_a_database_is_refused_while_used_then_removed_with_what_hangs_on_it():
    sent, org = await customer()
    database = await Database.get(external_id=sent["database"]["external_id"])
    owner = await factories.create_user()
    membership = await factories.add_member(org, owner, Role.USER)
    await DatabaseGrant.create(membership=membership, database=database)
    await UpdateSchedule.create(database=database, mode=UpdateMode.DISABLED)
    session = await factories.create_session(database, user=owner)
    ended = await factories.create_session(database, user=owner)
    await Session.filter(id=ended.id).update(status=SessionStatus.ENDED, ended_at=utcnow())
    db_ext = sent["database"]["external_id"]

    [busy] = await send("database", gone(db_ext))
    assert (busy.line, busy.outcome, busy.field) == (1, Outcome.REFUSED, "deleted") and "live session" in busy.reason
    await Session.filter(id=session.id).update(status=SessionStatus.ENDED, ended_at=utcnow())
    run = await UpdateRun.create(organization_id=org.id, database=database, status=UpdateRunStatus.RUNNING, scheduled_for=utcnow())
    [updating] = await send("database", gone(db_ext))
    assert (updating.outcome, updating.field) == (Outcome.REFUSED, "deleted") and "update" in updating.reason
    await UpdateRun.filter(id=run.id).update(status=UpdateRunStatus.SUCCEEDED)

    [subscription] = await send("cloud_subscription", gone(sent["cloud_subscription"]["external_id"]))
    assert (subscription.outcome, subscription.field) == (Outcome.REFUSED, "deleted") and "database" in subscription.reason

    await deleted_once("database", db_ext, org.id)
    assert not await Database.exists(id=database.id)
    assert not await UpdateSchedule.exists(database_id=database.id)
    assert not await UpdateRun.exists(database_id=database.id)
    assert not await DatabaseGrant.exists(database_id=database.id)
    assert {s.database_id for s in await Session.filter(id__in=[session.id, ended.id])} == {None}  # history kept

    await deleted_once("cloud_subscription", sent["cloud_subscription"]["external_id"], org.id)
    assert not await CloudSubscription.exists(organization_id=org.id)
    # Back within the limit: a new database needs a subscription again.
    [refused] = await send("database", sent["database"])
    assert refused.field == "organization"


# ---------------------------------------------------------------------------------------- billing


async def provider_org() -> tuple[Organization, dict]:
    org, team = await factories.create_team(Role.ACCOUNTANT)
    org.external_id = ext("org")
    await org.save(update_fields=["external_id"])
    return org, team


def charge(org: Organization, period: str, **more) -> dict:
    return {"external_id": ext("ch"), "organization": org.external_id, "kind": "SUPPORT_SERVICE", "period": period,
            "description": "Консультации", "quantity": "1", "unit_price": "1000", **more}


async def test_a_charge_is_removed_until_the_customer_has_a_document_of_its_month():
    org, _ = await provider_org()
    early, shown = charge(org, "2024-03"), charge(org, "2024-04")
    assert [r.outcome for r in await send("charge", early, shown)] == [Outcome.CREATED] * 2
    await deleted_once("charge", early["external_id"], org.id)
    assert not await Charge.exists(external_id=early["external_id"])
    invoice = {"external_id": ext("doc"), "organization": org.external_id, "kind": "INVOICE", "number": ext("С"),
               "issued_on": "30.04.2024", "period": "2024-04"}
    assert [r.outcome for r in await send("document", invoice)] == [Outcome.CREATED]
    results = await send("charge", charge(org, "2024-05"), gone(shown["external_id"]))
    assert [(r.line, r.outcome, r.field) for r in results] == [(1, Outcome.CREATED, None), (2, Outcome.REFUSED, "deleted")]
    assert invoice["number"] in results[1].reason
    await deleted_once("document", invoice["external_id"], org.id)  # withdrawn: now the charge may go
    await deleted_once("charge", shown["external_id"], org.id)


async def test_a_withdrawn_document_is_hidden_everywhere_and_back_when_sent_again(gql, client):
    org, team = await provider_org()
    pdf = b"%PDF-1.4\n% withdrawn\n%%EOF\n"
    document = {"external_id": ext("doc"), "organization": org.external_id, "kind": "CONTRACT", "number": ext("Д"),
                "issued_on": "01.02.2026", "amount": "100.00", "file_base64": base64.b64encode(pdf).decode()}
    assert [r.outcome for r in await send("document", document)] == [Outcome.CREATED]
    entry = {"external_id": ext("le"), "organization": org.external_id, "kind": "TOP_UP", "amount": "100",
             "occurred_at": "2026-02-01", "document": document["external_id"]}
    await send("ledger_entry", entry)
    query = """{ organizations { edges { node { documents(first: 5) { edges { node { number downloadUrl } } }
      balanceTransactions(first: 5) { edges { node { document { number } } } } } } } }"""
    email = team[Role.OWNER].email
    await gql.token_for_password(email, factories.PASSWORD)

    async def shown() -> tuple[list[str], list, str]:
        body = await gql.execute(query, as_user=email)
        node = body["data"]["organizations"]["edges"][0]["node"]
        documents = [e["node"] for e in node["documents"]["edges"]]
        links = [e["node"]["document"] for e in node["balanceTransactions"]["edges"]]
        return [d["number"] for d in documents], links, documents[0]["downloadUrl"] if documents else ""

    numbers, links, url = await shown()
    assert numbers == [document["number"]] and links == [{"number": document["number"]}]
    await deleted_once("document", document["external_id"], org.id)
    numbers, links, _ = await shown()
    assert numbers == [] and links == [None]
    assert (await client.get(url)).status_code == 404  # a link given before stops working
    assert await Document.exists(external_id=document["external_id"])  # kept: its number stays taken
    assert [r.outcome for r in await send("document", document)] == [Outcome.UPDATED]
    numbers, _, url = await shown()
    assert numbers == [document["number"]] and (await client.get(url)).content == pdf


async def test_a_prepaid_package_goes_with_its_uses_and_a_use_no_longer_counts():
    org, _ = await provider_org()
    package = ext("pp")
    await send("prepaid_service", {"external_id": package, "organization": org.external_id, "name": "Консультации",
                                   "unit": "час", "total": "10"})
    uses = [{"external_id": ext("use"), "prepaid_service": package, "quantity": q, "used_on": "2026-05-01"} for q in ("1.5", "2")]
    await send("prepaid_service_use", *uses)
    assert (await PrepaidService.get(external_id=package)).used == Decimal("3.50")
    await deleted_once("prepaid_service_use", uses[0]["external_id"], org.id)
    assert (await PrepaidService.get(external_id=package)).used == Decimal("2.00")
    await deleted_once("prepaid_service", package, org.id)
    assert not await PrepaidServiceUse.exists(external_id=uses[1]["external_id"])
    # A use made and deleted in one batch is never written.
    await send("prepaid_service", {"external_id": package, "organization": org.external_id, "name": "Консультации",
                                   "unit": "час", "total": "10"})
    late = {"external_id": ext("use"), "prepaid_service": package, "quantity": "1", "used_on": "2026-05-02"}
    results = await send("prepaid_service_use", late, gone(late["external_id"]))
    assert [r.outcome for r in results] == [Outcome.CREATED, Outcome.DELETED]
    assert not await PrepaidServiceUse.exists(external_id=late["external_id"])
    assert (await PrepaidService.get(external_id=package)).used == Decimal("0.00")


# ---------------------------------------------------------------------------------------- 1C date-times


def read(reader, raw: str, **options):
    return reader(Record(1, {"at": raw}), "at", **options)


def test_1c_date_times_are_the_providers_local_time_and_iso_keeps_its_meaning():
    moscow = ProviderActor("CLI", "test", frozenset()).zone
    utc = dt.timezone.utc
    expected = dt.datetime(2026, 11, 30, 11, 5, tzinfo=utc)
    assert read(records.moment, "30.11.2026 14:05:00", zone=moscow) == expected
    assert read(records.moment, "30.11.2026 9:05:00", zone=moscow) == dt.datetime(2026, 11, 30, 6, 5, tzinfo=utc)
    assert read(records.moment, "1.02.2026 9:05:00", zone=moscow) == dt.datetime(2026, 2, 1, 6, 5, tzinfo=utc)
    assert read(records.moment, "2026-11-30T14:05:00+03:00", zone=moscow) == expected
    assert read(records.moment, "2026-11-30T11:05:00Z", zone=moscow) == expected
    assert read(records.moment, "2026-11-30T11:05:00", zone=moscow) == expected  # naive ISO: UTC, as always
    assert read(records.moment, "30.11.2026", zone=moscow) == dt.datetime(2026, 11, 30, tzinfo=utc)
    novosibirsk = ProviderActor("CLI", "test", frozenset(), timezone="Asia/Novosibirsk").zone
    assert read(records.moment, "30.11.2026 18:05:00", zone=novosibirsk) == expected
    for wrong in ("31.11.2026 10:00:00", "30.11.2026 25:00:00", "вчера", "2026-13-01T00:00:00"):
        with pytest.raises(RecordRefused) as refused:
            read(records.moment, wrong, zone=moscow)
        assert refused.value.field == "at" and "date-time" in refused.value.reason


def test_a_date_field_takes_1cs_midnight_and_refuses_another_time():
    for raw in ("30.11.2026", "2026-11-30", "30.11.2026 0:00:00", "30.11.2026 00:00:00", "2026-11-30T00:00:00"):
        assert read(records.date, raw) == dt.date(2026, 11, 30), raw
    for raw in ("30.11.2026 14:05:00", "2026-11-30T10:00:00", "31.11.2026", "30/11/2026"):
        with pytest.raises(RecordRefused) as refused:
            read(records.date, raw)
        assert refused.value.field == "at", raw


async def test_a_ledger_entry_with_a_1c_date_time_is_placed_by_the_providers_clock():
    org, _ = await provider_org()
    entry = {"external_id": ext("le"), "organization": org.external_id, "kind": "TOP_UP", "amount": "5",
             "occurred_at": "02.09.2026 10:15:00"}
    assert [r.outcome for r in await send("ledger_entry", entry)] == [Outcome.CREATED]
    stored = await BalanceTransaction.get(external_id=entry["external_id"])
    assert stored.occurred_at == dt.datetime(2026, 9, 2, 7, 15, tzinfo=dt.timezone.utc)
    assert [r.outcome for r in await send("ledger_entry", entry)] == [Outcome.UNCHANGED]
    assert [r.outcome for r in await send("ledger_entry", {**entry, "occurred_at": "2026-09-02T10:15:00+03:00"})] == [Outcome.UNCHANGED]
    [wrong] = await send("contract", {"external_id": ext("c"), "organization": org.external_id, "kind": "ITS",
                                      "number": "1", "starts_on": "01.09.2026 10:15:00"})
    assert (wrong.line, wrong.outcome, wrong.field) == (1, Outcome.REFUSED, "starts_on")


# ---------------------------------------------------------------------------------------- a known contact after a claim


async def claimed(inn: str, phone: str, *, verified: bool = True) -> Organization:
    """A customer's claim of `inn` waiting for moderation, its OWNER's phone `phone`."""
    organization = await factories.create_organization(inn=inn)
    await Organization.filter(id=organization.id).update(moderation_status=ModerationStatus.PENDING)
    owner = await factories.create_user(phone=phone)
    owner.phone_verified = verified
    await owner.save(update_fields=["phone_verified"])
    await factories.add_member(organization, owner, Role.OWNER)
    return organization


async def test_a_known_contact_sent_after_the_claim_approves_it():
    phones = [factories.unique_phone() for _ in range(3)]
    waiting = await claimed(new_inn(), phones[0])
    unverified = await claimed(new_inn(), phones[1], verified=False)
    other_phone = await claimed(new_inn(), phones[2])
    contacts = [{"external_id": ext("contact"), "inn": org.inn, "phone": phone}
                for org, phone in ((waiting, phones[0]), (unverified, phones[1]), (other_phone, factories.unique_phone()))]
    assert [r.outcome for r in await send("known_contact", *contacts)] == [Outcome.CREATED] * 3
    statuses = {o.id: o.moderation_status for o in await Organization.filter(id__in=[waiting.id, unverified.id, other_phone.id])}
    assert statuses == {waiting.id: ModerationStatus.APPROVED, unverified.id: ModerationStatus.PENDING,
                        other_phone.id: ModerationStatus.PENDING}
    assert len(await data_events(waiting.id)) == 1 and await data_events(unverified.id) == []
    # A contact changed to the phone of a waiting owner approves too; re-sent, nothing more happens.
    corrected = {**contacts[2], "phone": phones[2]}
    assert [r.outcome for r in await send("known_contact", corrected)] == [Outcome.UPDATED]
    assert (await Organization.get(id=other_phone.id)).moderation_status is ModerationStatus.APPROVED
    assert [r.outcome for r in await send("known_contact", corrected)] == [Outcome.UNCHANGED]
    assert len(await data_events(other_phone.id)) == 1
    # Its INN does not change (issue 17): what it proves for one taxpayer it does not prove for another.
    later = await claimed(new_inn(), factories.unique_phone())
    owner = await Membership.get(organization_id=later.id, role=Role.OWNER).prefetch_related("user")
    [moved] = await send("known_contact", {**contacts[2], "inn": later.inn, "phone": owner.user.phone})
    assert (moved.outcome, moved.field) == (Outcome.REFUSED, "inn")
    assert (await Organization.get(id=later.id)).moderation_status is ModerationStatus.PENDING
