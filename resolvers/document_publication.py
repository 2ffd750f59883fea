"""Publishing accounting documents: which documents a month gets, and the one way a document is published.

`publish_document` is the only writer of a document (its row and its PDF file), in the caller's
transaction: the monthly publisher (`publish_month`, `publish_due`, looped by workers/documents.py)
and the demo data (kabinet/demo.py) both call it. No event and no audit entry: a document stays out
of sight until its `visible_from`, and the audit log is read by clients.

Monthly: for each organization with charges in a month, an invoice and an act summing them,
numbered, dated and rendered by resolvers/documents.py. Idempotent: a document that exists (same
organization, kind and number) is left as it is, so running it twice, or in two worker processes at
once, creates each document once.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from models.billing import Charge, Document, DocumentFile, DocumentKind
from models.organizations import Organization
from resolvers.documents import (
    PUBLICATION_DAY, document_filename, document_number, document_visible_from, last_day_of, period_before,
    render_document_pdf,
)

log = logging.getLogger("kabinet.documents")

CURRENCY = "RUB"


def render(
    organization: Organization, kind: DocumentKind, number: str, issued_on: date, period: str | None,
    lines: list[tuple[str, Decimal, Decimal]], total: Decimal, currency: str = CURRENCY,
) -> bytes:
    """The document's PDF (CPU work: the publisher runs it in a thread, outside its transaction)."""
    return render_document_pdf(
        kind=kind.value, number=number, organization_name=organization.name, inn=organization.inn,
        issued_on=issued_on, period=period, lines=lines, total=total, currency=currency,
    )


async def publish_document(
    organization_id: uuid.UUID, kind: DocumentKind, number: str, issued_on: date, period: str | None,
    total: Decimal, content: bytes, currency: str = CURRENCY,
) -> Document:
    """A document is published: its row, visible from the day the publication rule says, and its PDF
    (`render`). In the caller's transaction; IntegrityError when the same number exists already."""
    document = await Document.create(
        organization_id=organization_id, kind=kind, number=number, issued_on=issued_on, period=period,
        amount=total, currency=currency, visible_from=document_visible_from(kind, period, issued_on),
    )
    await DocumentFile.create(
        document=document, filename=document_filename(kind, number), content_type="application/pdf", content=content,
    )
    return document


async def publish_month(period: str, today: date) -> list[Document]:
    """Create the month's missing invoices and acts, one of each per organization with charges in it.

    Each sums the organization's charges of the month (one line per charge) and gets its PDF. A month
    that is not over on `today` is left alone (its charges are not final). Returns the documents
    created: none when everything is published already (the check is two queries).
    """
    issued_on = last_day_of(period)
    if today <= issued_on:
        return []
    with_charges = set(await Charge.filter(period=period).distinct().values_list("organization_id", flat=True))
    if not with_charges:
        return []
    existing = await Document.filter(
        period=period, kind__in=[DocumentKind.INVOICE, DocumentKind.ACT], organization_id__in=list(with_charges)
    ).values_list("organization_id", "kind")
    have = {(organization_id, DocumentKind(kind)) for organization_id, kind in existing}
    created = []
    for organization_id in sorted(with_charges, key=str):
        kinds = [k for k in (DocumentKind.INVOICE, DocumentKind.ACT) if (organization_id, k) not in have]
        if not kinds:
            continue
        try:
            created += await _publish_organization(organization_id, period, issued_on, kinds)
        except Exception:  # noqa: BLE001 — one organization's trouble does not hold up the others
            log.exception("could not publish the documents of %s for %s", organization_id, period)
    if created:
        log.info("published %s documents for %s", len(created), period)
    return created


async def _publish_organization(
    organization_id: uuid.UUID, period: str, issued_on: date, kinds: list[DocumentKind]
) -> list[Document]:
    organization = await Organization.get(id=organization_id)
    charges = await Charge.filter(organization_id=organization_id, period=period).order_by("created_at", "kind", "description")
    total = sum((Decimal(c.amount) for c in charges), Decimal("0")).quantize(Decimal("0.01"), ROUND_HALF_UP)
    lines = [(c.description, Decimal(c.quantity), Decimal(c.unit_price)) for c in charges]
    created = []
    for kind in kinds:
        number = document_number(kind, period, organization.code)
        if await Document.exists(organization_id=organization_id, kind=kind, number=number):
            continue
        content = await asyncio.to_thread(render, organization, kind, number, issued_on, period, lines, total)
        try:
            async with in_transaction():
                document = await publish_document(organization_id, kind, number, issued_on, period, total, content)
        except IntegrityError:
            continue  # another publisher made it a moment ago
        created.append(document)
    return created


async def publish_due(today: date) -> list[Document]:
    """What is due on `today`: from the 10th on the previous month, and always the month before it (in
    case the publisher was down from one 10th to the end of that month)."""
    periods = [period_before(today, 2)] + ([period_before(today, 1)] if today.day >= PUBLICATION_DAY else [])
    created = []
    for period in periods:
        created += await publish_month(period, today)
    return created
