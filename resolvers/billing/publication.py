"""Publishing accounting documents: which documents a month gets, and the one way a document is published.

`publish_document` is the only writer of a document (its row and its PDF file), in the caller's
transaction: the monthly publisher (`publish_month`, `publish_due`, looped by workers/documents.py),
the provider's documents (resolvers/provider/billing.py) and the demo data (kabinet/demo/) all
call it; `revise_document` is the one way a published document changes (the provider corrects it), and
`withdraw_document` the one way it is taken back (the customer no longer sees it).
No event and no audit entry here: a document stays out of sight until its `visible_from`, and the
audit log is read by clients (the provider's upserts announce their own change of `documents`).

Monthly: for each organization with charges in a month, an invoice and an act summing them,
numbered, dated and rendered by resolvers/billing/documents.py with the supplier's requisites
(resolvers/billing/supplier.py); without them none is rendered, and they wait. Idempotent: a document that exists (same
organization, kind and number) is left as it is, so running it twice, or in two worker processes at
once, creates each document once.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from foundation.clock import utcnow
from models.billing import Charge, Document, DocumentFile, DocumentKind
from models.organizations import Organization
from resolvers.billing import supplier as suppliers
from resolvers.common import notifications
from resolvers.common.context import SystemActor
from resolvers.billing.documents import (
    PUBLICATION_DAY, TITLES, Party, document_filename, document_number, document_visible_from, last_day_of, period_before,
    render_document_pdf,
)
from resolvers.billing.supplier import Supplier

log = logging.getLogger("kabinet.documents")

CURRENCY = "RUB"
ANNOUNCED_FOR = timedelta(days=7)  # a document that became visible longer ago is history, not news


def render(
    supplier: Supplier, organization: Organization, kind: DocumentKind, number: str, issued_on: date,
    period: str | None, lines: list[tuple[str, Decimal, Decimal]], total: Decimal, currency: str = CURRENCY,
) -> bytes:
    """The document's PDF, the supplier's requisites on it (CPU work: the publisher runs it in a
    thread, outside its transaction)."""
    customer = Party(organization.name, organization.inn, organization.kpp, organization.legal_address)
    return render_document_pdf(
        kind=kind.value, number=number, supplier=supplier, customer=customer, issued_on=issued_on, period=period,
        lines=lines, total=total, currency=currency,
    )


async def publish_document(
    organization_id: uuid.UUID, kind: DocumentKind, number: str, issued_on: date, period: str | None,
    total: Decimal, content: bytes, currency: str = CURRENCY, *,
    visible_from: date | None = None, external_id: str | None = None, announce: bool = True,
) -> Document:
    """A document is published: its row, visible from the day the publication rule says (unless the
    provider names the day), and its PDF (`render`, or the provider's own). In the caller's
    transaction; IntegrityError when the same number exists already."""
    document = await Document.create(
        organization_id=organization_id, kind=kind, number=number, issued_on=issued_on, period=period,
        amount=total, currency=currency, external_id=external_id,
        visible_from=visible_from or document_visible_from(kind, period, issued_on),
    )
    await DocumentFile.create(
        document=document, filename=document_filename(kind, number), content_type="application/pdf", content=content,
    )
    today = utcnow().date()
    if announce and today - ANNOUNCED_FOR <= document.visible_from <= today:
        await _announce(document)
    return document


async def _announce(document: Document) -> None:
    """NEW_DOCUMENT for a document visible now: neither one published for later, nor the provider's
    history (visible for more than ANNOUNCED_FOR already); the demo's is seeded with `announce=False`."""
    organization = await Organization.get(id=document.organization_id)
    title = TITLES.get(document.kind.value, document.kind.value)
    await notifications.new_document(SystemActor("document publisher"), organization, document, title)


async def revise_document(document: Document, values: dict, content: bytes | None) -> bool:
    """The provider corrected a published document: the row's `values` that differ and, when `content`
    differs from the stored PDF, the file. In the caller's transaction; True when anything changed.
    (IntegrityError when the new number is another document's.)"""
    changed = [name for name, value in values.items() if getattr(document, name) != value]
    for name in changed:
        setattr(document, name, values[name])
    if changed:
        await document.save(update_fields=changed)
    stored = await DocumentFile.get_or_none(document_id=document.id)
    filename = document_filename(document.kind, document.number)
    if stored is None:
        if content is not None:
            await DocumentFile.create(document_id=document.id, filename=filename, content_type="application/pdf", content=content)
            return True
        return bool(changed)
    file_changes = {}
    if content is not None and bytes(stored.content) != content:
        file_changes["content"] = content
    if stored.filename != filename:
        file_changes["filename"] = filename
    for name, value in file_changes.items():
        setattr(stored, name, value)
    if file_changes:
        await stored.save(update_fields=list(file_changes))
    return bool(changed or "content" in file_changes)


async def withdraw_document(document: Document) -> bool:
    """The provider withdrew a published document: hidden from the customer from now on (lists, links,
    downloads), its row and number kept. In the caller's transaction; False when it was withdrawn
    already. (`revise_document` with `withdrawn_at` None brings it back.)"""
    now = utcnow()
    if not await Document.filter(id=document.id, withdrawn_at__isnull=True).update(withdrawn_at=now):
        return False
    document.withdrawn_at = now
    return True


async def charge_lines(
    pairs: list[tuple[uuid.UUID, str]],
) -> dict[tuple[uuid.UUID, str], tuple[list[tuple[str, Decimal, Decimal]], Decimal]]:
    """What a document of an organization and period lists: one line per charge (description,
    quantity, unit price) and their total, for each (organization, period) of `pairs`, in one query.
    Pairs without charges are left out."""
    if not pairs:
        return {}
    charges = await Charge.filter(
        organization_id__in=list({o for o, _ in pairs}), period__in=list({p for _, p in pairs})
    ).order_by("created_at", "kind", "description")
    wanted = set(pairs)
    out: dict[tuple[uuid.UUID, str], tuple[list, Decimal]] = {}
    for c in charges:
        key = (c.organization_id, c.period)
        if key in wanted:
            lines, total = out.get(key, ([], Decimal("0")))
            lines.append((c.description, Decimal(c.quantity), Decimal(c.unit_price)))
            out[key] = (lines, total + Decimal(c.amount))
    return {key: (lines, total.quantize(Decimal("0.01"), ROUND_HALF_UP)) for key, (lines, total) in out.items()}


async def missing_documents(period: str, today: date) -> dict[uuid.UUID, list[DocumentKind]]:
    """The month's invoices and acts due and not yet published, by organization: one of each for an
    organization with charges in the month, unless the provider's records sent that organization's
    documents for the month (then they are its accounting's to issue, and kabinet adds none). Empty
    for a month that is not over on `today` (its charges are not final). Two queries."""
    if today <= last_day_of(period):
        return {}
    with_charges = set(await Charge.filter(period=period).distinct().values_list("organization_id", flat=True))
    if not with_charges:
        return {}
    existing = await Document.filter(
        period=period, kind__in=[DocumentKind.INVOICE, DocumentKind.ACT], organization_id__in=list(with_charges)
    ).values_list("organization_id", "kind", "external_id")
    have = {(organization_id, DocumentKind(kind)) for organization_id, kind, _ in existing}
    # The provider's accounting issues this organization's documents for the month: it alone does.
    from_the_provider = {organization_id for organization_id, _, external_id in existing if external_id}
    missing = {}
    for organization_id in sorted(with_charges - from_the_provider, key=str):
        kinds = [k for k in (DocumentKind.INVOICE, DocumentKind.ACT) if (organization_id, k) not in have]
        if kinds:
            missing[organization_id] = kinds
    return missing


async def publish_month(period: str, today: date) -> list[Document]:
    """Create the month's missing invoices and acts (`missing_documents`), each summing the
    organization's charges of the month (one line per charge), with its PDF.

    Without the supplier's requisites nothing is published: the documents wait (the staff desk's
    `waiting_documents` says which and why) and are published on the first pass after the operator
    configured them. Returns the documents created: none when everything is published already.
    """
    missing = await missing_documents(period, today)
    if not missing:
        return []
    supplier = await suppliers.current()
    if supplier is None:
        log.warning("the documents of %s organizations for %s wait: %s", len(missing), period, suppliers.NOT_CONFIGURED)
        return []
    issued_on = last_day_of(period)
    created = []
    for organization_id, kinds in missing.items():
        try:
            created += await _publish_organization(supplier, organization_id, period, issued_on, kinds)
        except Exception:  # noqa: BLE001 — one organization's trouble does not hold up the others
            log.exception("could not publish the documents of %s for %s", organization_id, period)
    if created:
        log.info("published %s documents for %s", len(created), period)
    return created


async def _publish_organization(
    supplier: Supplier, organization_id: uuid.UUID, period: str, issued_on: date, kinds: list[DocumentKind]
) -> list[Document]:
    organization = await Organization.get(id=organization_id)
    lines, total = (await charge_lines([(organization_id, period)])).get((organization_id, period), ([], Decimal("0.00")))
    created = []
    for kind in kinds:
        number = document_number(kind, period, organization.code)
        if await Document.exists(organization_id=organization_id, kind=kind, number=number):
            continue
        content = await asyncio.to_thread(render, supplier, organization, kind, number, issued_on, period, lines, total)
        try:
            async with in_transaction():
                document = await publish_document(organization_id, kind, number, issued_on, period, total, content)
        except IntegrityError:
            continue  # another publisher made it a moment ago
        created.append(document)
    return created


def due_periods(today: date) -> list[str]:
    """The months due on `today`: from the 10th on the previous month, and always the month before it
    (in case the publisher was down from one 10th to the end of that month)."""
    return [period_before(today, 2)] + ([period_before(today, 1)] if today.day >= PUBLICATION_DAY else [])


async def publish_due(today: date) -> list[Document]:
    """Publish the months due on `today` (`due_periods`)."""
    created = []
    for period in due_periods(today):
        created += await publish_month(period, today)
    return created
