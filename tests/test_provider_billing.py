"""The provider's billing records: ledger entries numbered and balanced by kabinet (append-only),
charges that add up, documents with the provider's PDF or one generated from the charges, prepaid
packages whose use is the sum of their uses."""

from __future__ import annotations

import base64
import datetime as dt
import io
import uuid
from decimal import Decimal

import pytest
from pypdf import PdfReader

from models.billing import BalanceTransaction, Charge, Document, DocumentFile, PrepaidService
from models.events import OrganizationEvent
from models.organizations import Role
from models.provider import PrepaidServiceUse
from resolvers.provider.records import SCOPES, Outcome, ProviderActor, Record, apply
from tests import factories

ACTOR_SCOPES = frozenset(SCOPES)


@pytest.fixture(autouse=True)
def _database(app):
    """Every test here writes through the models: the app's database is connected."""


def actor() -> ProviderActor:
    return ProviderActor(kind="CLI", name="test", scopes=ACTOR_SCOPES)


def records(*values: dict) -> list[Record]:
    return [Record(line, v) for line, v in enumerate(values, start=1)]


async def send(entity: str, *values: dict):
    return await apply(actor(), entity, records(*values))


async def provider_org():
    org, team = await factories.create_team(Role.ACCOUNTANT)
    org.external_id = f"org-{uuid.uuid4().hex[:8]}"
    await org.save(update_fields=["external_id"])
    return org, team


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def entry(org, external_id: str, amount: str, occurred_at: str, **more) -> dict:
    return {"external_id": external_id, "organization": org.external_id, "kind": "TOP_UP" if not amount.startswith("-") else "CHARGE",
            "amount": amount, "description": f"Операция {external_id}", "occurred_at": occurred_at, **more}


async def ledger(org) -> list[tuple[int, Decimal, Decimal, str]]:
    rows = await BalanceTransaction.filter(organization_id=org.id).order_by("seq")
    return [(r.seq, r.amount, r.balance_after, r.external_id) for r in rows]


async def events_of(org) -> int:
    return await OrganizationEvent.filter(organization_id=org.id).count()


async def as_owner(gql, team, query: str) -> dict:
    email = team[Role.OWNER].email
    if email not in gql.tokens:
        await gql.token_for_password(email, factories.PASSWORD)
    return await gql.execute(query, as_user=email)


BALANCE = "{ organizations { edges { node { id balance { amount prepaidServices { name total used } } } } } }"


async def test_a_ledger_in_order_gets_running_balances_and_the_dashboard_shows_the_last(gql):
    org, team = await provider_org()
    a, b, c = uid("le"), uid("le"), uid("le")
    results = await send("ledger_entry", entry(org, a, "1000,00", "2026-01-05T10:00:00"),
                         entry(org, b, "-250.50", "2026-01-06T10:00:00"), entry(org, c, "100", "2026-01-07"))
    assert [r.outcome for r in results] == [Outcome.CREATED] * 3
    assert await ledger(org) == [(1, Decimal("1000.00"), Decimal("1000.00"), a), (2, Decimal("-250.50"), Decimal("749.50"), b),
                                 (3, Decimal("100.00"), Decimal("849.50"), c)]
    body = await as_owner(gql, team, BALANCE)
    assert body["data"]["organizations"]["edges"][0]["node"]["balance"]["amount"] == "849.50"


async def test_a_resent_entry_is_unchanged_one_row_no_second_event():
    org, _ = await provider_org()
    e = entry(org, uid("le"), "500.00", "2026-02-01T09:00:00Z")
    assert [r.outcome for r in await send("ledger_entry", e)] == [Outcome.CREATED]
    events = await events_of(org)
    assert events == 1
    results = await send("ledger_entry", dict(e, amount="500"))
    assert [r.outcome for r in results] == [Outcome.UNCHANGED]
    assert await BalanceTransaction.filter(external_id=e["external_id"]).count() == 1
    assert await events_of(org) == events


async def test_a_batch_takes_as_many_statements_for_many_organizations_as_for_one():
    """Statements per batch do not grow with its rows or the organizations they belong to: each
    organization still gets its one event, with its own next number."""
    from kabinet.db import count_sql

    async def statements_for(organizations: list, month: int) -> int:
        """Two new entries of each organization, later than its others (appended: no renumbering)."""
        values = [entry(org, uid("le"), "10.00", f"2026-0{month}-0{day}T09:00:00Z") for day in (1, 2) for org in organizations]
        with count_sql() as counter:
            results = await send("ledger_entry", *values)
        assert [r.outcome for r in results] == [Outcome.CREATED] * len(values)
        return len(counter.statements)

    one = [(await provider_org())[0]]
    many = [(await provider_org())[0] for _ in range(5)]
    await statements_for(one + many, 3)  # every organization has an entry and an event counter now
    assert await statements_for(one, 4) == await statements_for(many, 5)
    for org in one + many:
        seqs = await OrganizationEvent.filter(organization_id=org.id).order_by("seq").values_list("seq", flat=True)
        assert seqs == [1, 2]


async def test_a_changed_entry_is_refused_on_the_field_that_differs():
    org, _ = await provider_org()
    e = entry(org, uid("le"), "500.00", "2026-02-01T09:00:00Z")
    await send("ledger_entry", e)
    [result] = await send("ledger_entry", dict(e, amount="600.00"))
    assert (result.outcome, result.field) == (Outcome.REFUSED, "amount")
    assert "correcting entry" in result.reason
    assert (await BalanceTransaction.get(external_id=e["external_id"])).amount == Decimal("500.00")


async def test_an_older_entry_is_placed_in_order_and_the_later_balances_recomputed(gql):
    org, team = await provider_org()
    a, b, c, late = uid("a"), uid("b"), uid("c"), uid("late")
    await send("ledger_entry", entry(org, a, "100.00", "2026-03-01"), entry(org, b, "200.00", "2026-03-03"),
               entry(org, c, "-50.00", "2026-03-05"))
    [result] = await send("ledger_entry", entry(org, late, "1000.00", "2026-03-02"))
    assert result.outcome is Outcome.CREATED
    assert await ledger(org) == [
        (1, Decimal("100.00"), Decimal("100.00"), a), (2, Decimal("1000.00"), Decimal("1100.00"), late),
        (3, Decimal("200.00"), Decimal("1300.00"), b), (4, Decimal("-50.00"), Decimal("1250.00"), c),
    ]
    # a new one of the same moment as an existing one comes after it
    same = uid("same")
    await send("ledger_entry", entry(org, same, "1.00", "2026-03-03"))
    assert [row[3] for row in await ledger(org)] == [a, late, b, same, c]
    assert (await ledger(org))[-1][2] == Decimal("1251.00")
    body = await as_owner(gql, team, BALANCE)
    assert body["data"]["organizations"]["edges"][0]["node"]["balance"]["amount"] == "1251.00"


async def test_ledger_refusals_name_the_field():
    org, _ = await provider_org()
    results = await send(
        "ledger_entry",
        {"organization": org.external_id, "kind": "TOP_UP", "amount": "1", "occurred_at": "2026-01-01"},
        entry(org, uid("le"), "1.00", "2026-01-01", organization="nobody"),
        entry(org, uid("le"), "1.001", "2026-01-01"),
        entry(org, uid("le"), "1.00", "2026-01-01", kind="GIFT"),
        entry(org, uid("le"), "1.00", "yesterday"),
        entry(org, uid("le"), "1.00", "2026-01-01", document="no-such-document"),
    )
    assert [(r.line, r.field) for r in results] == [
        (1, "external_id"), (2, "organization"), (3, "amount"), (4, "kind"), (5, "occurred_at"), (6, "document"),
    ]
    assert "send the organization first" in results[1].reason
    assert await BalanceTransaction.filter(organization_id=org.id).count() == 0


async def test_an_entry_may_name_its_organization_by_inn():
    org, _ = await provider_org()
    e = entry(org, uid("le"), "10.00", "2026-01-01")
    del e["organization"]
    [result] = await send("ledger_entry", dict(e, organization_inn=org.inn))
    assert result.outcome is Outcome.CREATED


async def test_a_charge_amount_must_be_quantity_times_price():
    org, _ = await provider_org()
    good, bad = uid("ch"), uid("ch")
    base = {"organization": org.external_id, "kind": "CLOUD_RENTAL", "period": "2026-04", "description": "Аренда",
            "quantity": "1,5", "unit_price": "1000,33"}
    results = await send("charge", dict(base, external_id=good, amount="1500.50"), dict(base, external_id=bad, amount="1500.00"))
    assert [r.outcome for r in results] == [Outcome.CREATED, Outcome.REFUSED]
    assert results[1].field == "amount" and "1500.50" in results[1].reason
    charge = await Charge.get(external_id=good)
    assert charge.amount == Decimal("1500.50") and charge.quantity == Decimal("1.5")
    assert [r.outcome for r in await send("charge", dict(base, external_id=good, amount="1500.50"))] == [Outcome.UNCHANGED]
    assert [r.outcome for r in await send("charge", dict(base, external_id=good, description="Аренда 1С"))] == [Outcome.UPDATED]
    [wrong_period] = await send("charge", dict(base, external_id=uid("ch"), period="2026-13"))
    assert wrong_period.field == "period"


def pdf_text(content: bytes) -> str:
    return " ".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


async def test_a_document_with_the_providers_pdf_is_downloadable(gql, client):
    org, team = await provider_org()
    pdf = b"%PDF-1.4\n% the provider's own\n%%EOF\n"
    document = {"external_id": uid("doc"), "organization": org.external_id, "kind": "CONTRACT", "number": "Д-17",
                "issued_on": "01.02.2026", "amount": "12000.00", "file_base64": base64.b64encode(pdf).decode()}
    assert [r.outcome for r in await send("document", document)] == [Outcome.CREATED]
    assert [r.outcome for r in await send("document", document)] == [Outcome.UNCHANGED]
    row = await Document.get(external_id=document["external_id"])
    assert row.visible_from == dt.date(2026, 2, 1)
    body = await as_owner(gql, team, "{ organizations { edges { node { documents(first: 5) { edges { node { number downloadUrl } } } } } } }")
    [node] = [e["node"] for e in body["data"]["organizations"]["edges"][0]["node"]["documents"]["edges"]]
    response = await client.get(node["downloadUrl"])
    assert response.status_code == 200 and response.content == pdf
    [not_pdf] = await send("document", dict(document, external_id=uid("doc"), number="Д-18",
                                            file_base64=base64.b64encode(b"hello").decode()))
    assert (not_pdf.outcome, not_pdf.field) == (Outcome.REFUSED, "file_base64")
    [taken] = await send("document", dict(document, external_id=uid("doc")))
    assert (taken.outcome, taken.field) == (Outcome.REFUSED, "number")
    [path] = await send("document", dict(document, external_id=uid("doc"), file_base64=None, file_path="a.pdf"))
    assert (path.outcome, path.field) == (Outcome.REFUSED, "file_path")


async def test_a_document_without_a_file_is_generated_from_the_charges():
    org, _ = await provider_org()
    await send("charge", {"external_id": uid("ch"), "organization": org.external_id, "kind": "SUPPORT_SERVICE",
                          "period": "2024-05", "description": "Консультации по 1С", "quantity": "2", "unit_price": "2500"})
    document = {"external_id": uid("doc"), "organization": org.external_id, "kind": "INVOICE", "number": "П-0001",
                "issued_on": "2024-05-31", "period": "2024-05"}
    assert [r.outcome for r in await send("document", document)] == [Outcome.CREATED]
    row = await Document.get(external_id=document["external_id"])
    assert (row.amount, row.visible_from) == (Decimal("5000.00"), dt.date(2024, 6, 10))
    text = pdf_text(bytes((await DocumentFile.get(document_id=row.id)).content))
    assert "П-0001" in text and "Консультации по 1С" in text
    assert [r.outcome for r in await send("document", document)] == [Outcome.UNCHANGED]
    [empty] = await send("document", dict(document, external_id=uid("doc"), number="П-0002", period="2024-06"))
    assert (empty.outcome, empty.field) == (Outcome.REFUSED, "file_base64")


async def test_prepaid_used_is_the_sum_of_its_uses(gql):
    org, team = await provider_org()
    package = uid("pp")
    await send("prepaid_service", {"external_id": package, "organization": org.external_id, "name": "Консультации",
                                   "unit": "час", "total": "10", "valid_until": "2027-01-01"})
    uses = [{"external_id": uid("use"), "prepaid_service": package, "quantity": q, "used_on": "2026-05-0" + str(i + 1),
             "description": "Консультация"} for i, q in enumerate(["1.5", "2", "8"])]
    results = await send("prepaid_service_use", *uses)
    assert [r.outcome for r in results] == [Outcome.CREATED] * 3
    service = await PrepaidService.get(external_id=package)
    assert service.used == Decimal("11.50")  # beyond the total: the provider's accounting decides
    await send("prepaid_service_use", dict(uses[2], quantity="0.5"))
    assert (await PrepaidService.get(external_id=package)).used == Decimal("4.00")
    assert await PrepaidServiceUse.filter(prepaid_service_id=service.id).count() == 3
    assert [r.outcome for r in await send("prepaid_service", {"external_id": package, "organization": org.external_id,
                                                                "name": "Консультации", "unit": "час", "total": "10",
                                                                "valid_until": "2027-01-01"})] == [Outcome.UNCHANGED]
    [unknown] = await send("prepaid_service_use", dict(uses[0], external_id=uid("use"), prepaid_service="nope"))
    assert unknown.field == "prepaid_service"
    body = await as_owner(gql, team, BALANCE)
    [shown] = body["data"]["organizations"]["edges"][0]["node"]["balance"]["prepaidServices"]
    assert (shown["total"], shown["used"]) == ("10.00", "4.00")
