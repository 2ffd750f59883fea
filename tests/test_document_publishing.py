"""The monthly publisher: on the 10th, the previous month's invoices and acts, generated from the charges as
real PDF files; running it twice creates nothing more. Each test bills months of its own, long past, so
that nobody else's documents are touched."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
from decimal import Decimal

from pypdf import PdfReader

from foundation.clock import utcnow
from models.billing import Charge, ChargeKind, Document, DocumentFile, DocumentKind
from models.organizations import Role
from tests import factories
from resolvers.billing.documents import period_before
from resolvers.billing.publication import publish_due, publish_month
from workers.documents import run_document_publisher

DOCUMENTS = """{ organizations { edges { node { id
  documents(first: 50) { edges { node { id kind number period amount downloadUrl } } } } } } }"""


async def billed(period: str, *lines: tuple[str, str, str]):
    """An organization of its own with charges in `period`: (description, quantity, unit price)."""
    org, team = await factories.create_team(Role.ACCOUNTANT)
    for description, quantity, price in lines:
        await Charge.create(
            organization=org, kind=ChargeKind.CLOUD_RENTAL, period=period, description=description,
            quantity=Decimal(quantity), unit_price=Decimal(price), amount=Decimal(quantity) * Decimal(price),
        )
    return org, team


RENTAL = ("Аренда 1С в облаке: база «Бухгалтерия», рабочие места", "3", "1500.00")
DISK = ("Дисковое пространство сверх тарифа, ГБ", "2", "95.00")
CONSULTING = ("Консультации по 1С сверх пакета, часы", "1.5", "2500.00")


def pdf_text(content: bytes) -> str:
    return " ".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


async def test_publishing_a_month_makes_an_invoice_and_an_act_that_sum_its_charges(app):
    org, _ = await billed("2023-03", RENTAL, DISK, CONSULTING)
    created = await publish_month("2023-03", dt.date(2023, 4, 10))
    mine = sorted((d for d in created if d.organization_id == org.id), key=lambda d: d.kind.value)
    assert [d.kind for d in mine] == [DocumentKind.ACT, DocumentKind.INVOICE]
    suffix = org.code[-4:]
    assert {d.number for d in mine} == {f"СЧ-2023-03-{suffix}", f"АКТ-2023-03-{suffix}"}
    for document in mine:
        assert document.amount == Decimal("8440.00")  # 4500 + 190 + 3750
        assert (document.period, document.issued_on, document.visible_from) == (
            "2023-03", dt.date(2023, 3, 31), dt.date(2023, 4, 10),
        )


async def test_the_published_files_are_real_pdfs_with_the_organization_lines_and_total(app):
    org, _ = await billed("2023-04", RENTAL, CONSULTING)
    await publish_month("2023-04", dt.date(2023, 5, 10))
    for kind, title in ((DocumentKind.INVOICE, "Счёт на оплату"), (DocumentKind.ACT, "Акт оказанных услуг")):
        document = await Document.get(organization_id=org.id, kind=kind, period="2023-04")
        stored = await DocumentFile.get(document_id=document.id)
        assert stored.content.startswith(b"%PDF") and stored.content_type == "application/pdf"
        assert stored.filename == f"{kind.value.lower()}-{document.number}.pdf"
        text = pdf_text(stored.content).replace("\u00a0", " ")
        for expected in (title, document.number, org.name, org.inn, "Аренда 1С в облаке", "Консультации по 1С",
                         "апрель 2023", "8 250,00"):  # money as Russian documents print it
            assert expected in text, (expected, text)


async def test_publishing_a_month_twice_creates_nothing_more(app):
    org, _ = await billed("2023-05", RENTAL)
    first = await publish_month("2023-05", dt.date(2023, 6, 10))
    assert len([d for d in first if d.organization_id == org.id]) == 2
    assert await publish_month("2023-05", dt.date(2023, 6, 11)) == []
    assert await Document.filter(organization_id=org.id).count() == 2
    assert await DocumentFile.filter(document__organization_id=org.id).count() == 2


async def test_two_publishers_at_once_create_each_document_once(app):
    org, _ = await billed("2023-06", RENTAL, DISK)
    await asyncio.gather(*(publish_month("2023-06", dt.date(2023, 7, 10)) for _ in range(3)))
    assert await Document.filter(organization_id=org.id).count() == 2


async def test_a_missing_act_is_added_beside_the_invoice_already_published(app):
    org, _ = await billed("2023-07", RENTAL)
    await publish_month("2023-07", dt.date(2023, 8, 10))
    await Document.filter(organization_id=org.id, kind=DocumentKind.ACT).delete()
    created = await publish_month("2023-07", dt.date(2023, 8, 12))
    assert [(d.organization_id, d.kind) for d in created] == [(org.id, DocumentKind.ACT)]


async def test_an_organization_without_charges_in_the_month_gets_no_documents(app):
    org, _ = await billed("2023-08", RENTAL)
    quiet, _ = await factories.create_team()
    await publish_month("2023-08", dt.date(2023, 9, 10))
    assert await Document.filter(organization_id=quiet.id).count() == 0
    assert await Document.filter(organization_id=org.id).count() == 2


async def test_a_month_that_is_not_over_is_not_published(app):
    org, _ = await billed("2023-09", RENTAL)
    assert await publish_month("2023-09", dt.date(2023, 9, 30)) == []
    assert await Document.filter(organization_id=org.id).count() == 0


async def test_the_previous_month_is_published_from_the_tenth_of_the_next(app):
    org, _ = await billed("2023-10", RENTAL)
    before, _ = await billed("2023-09", DISK)
    await publish_due(dt.date(2023, 11, 9))
    assert await Document.filter(organization_id=org.id).count() == 0, "not before the 10th"
    assert await Document.filter(organization_id=before.id).count() == 2, "the month before is due anyway"
    await publish_due(dt.date(2023, 11, 10))
    assert {d.visible_from for d in await Document.filter(organization_id=org.id)} == {dt.date(2023, 11, 10)}


async def test_the_owner_and_the_accountant_see_and_download_the_published_documents(gql, client, app):
    org, team = await billed("2023-11", RENTAL)
    await publish_month("2023-11", dt.date(2023, 12, 10))
    for role in (Role.OWNER, Role.ACCOUNTANT):
        email = team[role].email
        await gql.token_for_password(email, factories.PASSWORD)
        body = await gql.execute(DOCUMENTS, as_user=email)
        documents = [e["node"] for e in body["data"]["organizations"]["edges"][0]["node"]["documents"]["edges"]]
        assert sorted(d["kind"] for d in documents) == ["ACT", "INVOICE"]
        assert {(d["period"], d["amount"]) for d in documents} == {("2023-11", "4500.00")}
        response = await client.get(documents[0]["downloadUrl"])
        assert response.status_code == 200 and documents[0]["number"] in pdf_text(response.content)


async def test_the_publisher_loop_publishes_what_is_due_and_stops_when_asked(app, settings):
    period = period_before(utcnow().date(), 2)  # due whatever today is
    org, _ = await billed(period, RENTAL)
    stop = asyncio.Event()
    loop = asyncio.create_task(run_document_publisher(settings, stop))
    try:
        for _ in range(100):
            if await Document.filter(organization_id=org.id).count() == 2:
                break
            await asyncio.sleep(0.1)
        assert await Document.filter(organization_id=org.id, period=period).count() == 2
    finally:
        stop.set()
        await asyncio.wait_for(loop, timeout=5)
