"""The provider's billing records (scope billing:write): charges, documents, prepaid services and their uses.

Every upsert reads what a batch refers to once (the rows of its external ids, the organizations,
documents, databases or packages it names) and writes new rows in bulk (upserts.py `BatchRows`).
The ledger's entries are ledger.py's; a document's PDF, sent or named by path, is read by
document_files.py.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from tortoise.functions import Sum

from models.billing import Charge, ChargeKind, Document, DocumentKind, PrepaidService
from models.cloud import Database
from models.organizations import Organization
from models.provider import PrepaidServiceUse
from foundation.clock import today
from resolvers.billing import supplier as suppliers
from resolvers.billing.publication import charge_lines, publish_document, render, revise_document, withdraw_document
from resolvers.billing.documents import PERIOD_PATTERN, document_visible_from
from resolvers.provider.document_files import provided_pdf
from resolvers.provider.records import (
    DELETED_FIELD, EARLIEST, LATEST, BatchRows, LineResult, Outcome, ProviderActor, Record, RecordRefused, choice, date,
    decimal, deleted, each_record, entity, external_id_of, looked_up, organization_of, organizations_referenced, reference,
    refused_line, same_organization, text, within_column,
)

KOPECK = Decimal("0.01")
SCOPE = "billing:write"


def _period(record: Record, name: str = "period", *, required: bool = True) -> str | None:
    value = text(record, name, required=required, max_length=7)
    if value is not None and not PERIOD_PATTERN.match(value):
        raise RecordRefused(name, f"A month as YYYY-MM: {value!r}.")
    if value is not None and not EARLIEST.year <= int(value[:4]) <= LATEST.year:
        raise RecordRefused(name, f"A month from {EARLIEST.year} to {LATEST.year}: {value!r}.")
    return value


# ------------------------------------------------------------------------------------------- charges

@entity(
    "charge", SCOPE,
    ("external_id", "organization", "organization_inn", "kind", "period", "description", "quantity", "unit_price",
     "amount", "database", "deleted"),
    "A charge of a month (cloud rental, a support service): the lines of that month's invoice and act. "
    "Deleted: refused once the customer has a document of that month.",
)
async def upsert_charges(actor: ProviderActor, records: list[Record]) -> list[LineResult]:
    referenced = await organizations_referenced(records)
    databases: dict[str, tuple[uuid.UUID, uuid.UUID]] = {}
    if wanted := looked_up(records, "database", Database, "external_id"):
        for row in await Database.filter(external_id__in=wanted).values("id", "external_id", "organization_id"):
            databases[row["external_id"]] = (row["id"], row["organization_id"])
    batch = await BatchRows.read(Charge, records)

    async def apply_one(record: Record) -> Outcome:
        if deleted(record):
            return await _remove_charge(actor, batch, record.external_id)
        organization_id = organization_of(record, referenced)
        quantity = decimal(record, "quantity", of=Charge)
        unit_price = decimal(record, "unit_price", of=Charge)
        expected = (quantity * unit_price).quantize(KOPECK, ROUND_HALF_UP)
        amount = decimal(record, "amount", required=False, of=Charge)
        within_column(expected, Charge, "amount", "quantity × unit_price")
        if amount is not None and amount != expected:
            raise RecordRefused("amount", f"quantity × unit_price = {expected}, not {amount}.")
        database_id = None
        if (named := reference(record, "database")) is not None:
            found = databases.get(named)
            if found is None:
                raise RecordRefused("database", f"No database with external_id {named!r}: send the database first.")
            if found[1] != organization_id:
                raise RecordRefused("database", f"The database {named!r} is another organization's.")
            database_id = found[0]
        values = {
            "organization_id": organization_id, "kind": choice(record, "kind", ChargeKind),
            "period": _period(record), "description": text(record, "description", of=Charge),
            "quantity": quantity, "unit_price": unit_price, "amount": expected, "database_id": database_id,
        }
        outcome = await batch.put(record.external_id, values, record)
        if outcome is not Outcome.UNCHANGED:
            actor.touched(organization_id, "charges")
        return outcome

    results = await each_record("charge", records, apply_one)
    await batch.flush()
    return results


async def _remove_charge(actor: ProviderActor, batch: BatchRows, external_id: str) -> Outcome:
    """A charge record deleted: refused once it is on a document the customer has (an invoice or act
    of its month they see: withdraw that first, or charge a correction), else removed."""
    row = batch.rows.get(external_id)
    if row is None:
        return Outcome.UNCHANGED
    shown = await Document.filter(
        organization_id=row.organization_id, period=row.period, withdrawn_at__isnull=True, visible_from__lte=today()
    ).order_by("issued_on").first()
    if shown is not None:
        raise RecordRefused(
            DELETED_FIELD, f"The charge is on {shown.kind.value} {shown.number} of {row.period}, which the customer has: "
            "withdraw that document first, or send a correcting charge.",
        )
    await batch.remove(external_id)
    actor.touched(row.organization_id, "charges")
    return Outcome.DELETED


# ----------------------------------------------------------------------------------------- documents

@entity(
    "document", SCOPE,
    ("external_id", "organization", "organization_inn", "kind", "number", "issued_on", "period", "amount", "currency",
     "visible_from", "file_base64", "file_path", "deleted"),
    "An invoice, act or contract with its PDF: the provider's own (file_base64, or file_path in an import), "
    "or generated by kabinet from the organization's charges of the period. Deleted: withdrawn, the customer "
    "no longer sees it (sent again, it is back).",
)
async def upsert_documents(actor: ProviderActor, records: list[Record]) -> list[LineResult]:
    name = "document"
    referenced = await organizations_referenced(records)
    existing = {d.external_id: d for d in await Document.filter(external_id__in=looked_up(records, "external_id", Document, "external_id"))}
    organizations = {o.id: o for o in await Organization.filter(id__in=list(set(referenced.values())))}
    parsed: list[tuple[Record, dict[str, Any] | None, bytes | None] | LineResult] = []
    for record in records:
        try:
            external_id = external_id_of(record)
            if deleted(record):
                parsed.append((record, None, None))  # withdrawn in its turn below
                continue
            organization_id = organization_of(record, referenced)
            kind = choice(record, "kind", DocumentKind)
            issued_on = date(record, "issued_on")
            period = _period(record, required=False)
            content = provided_pdf(record)
            amount = decimal(record, "amount", required=content is not None, of=Document)
            currency = (text(record, "currency", required=False, of=Document) or "RUB").upper()
            values = {
                "organization_id": organization_id, "kind": kind, "number": text(record, "number", of=Document),
                "issued_on": issued_on, "period": period, "amount": amount, "currency": currency,
                "visible_from": date(record, "visible_from", required=False) or document_visible_from(kind, period, issued_on),
            }
            if content is None and period is None:
                raise RecordRefused("period", "Send the PDF (file_base64) or the period whose charges kabinet lists in it.")
            parsed.append((record, values, content))
        except RecordRefused as refused:
            parsed.append(refused_line(record, name, refused))
    to_generate = list({(v["organization_id"], v["period"]) for item in parsed if not isinstance(item, LineResult)
                        for _, v, content in [item] if v is not None and content is None})
    lines = await charge_lines(to_generate)
    supplier = await suppliers.current() if to_generate else None
    numbers = await _numbers_taken(parsed)
    results = []
    for item in parsed:
        if isinstance(item, LineResult):
            results.append(item)
            continue
        record, values, content = item
        try:
            external_id = record.external_id
            if values is None:
                results.append(LineResult(record.line, name, external_id, await _withdraw(actor, existing.get(external_id))))
                continue
            if (document := existing.get(external_id)) is not None:  # before its PDF is made for another
                same_organization(document, values["organization_id"], "document", record)
            holder = numbers.get((values["organization_id"], values["kind"], values["number"]))
            if holder is not None and holder != external_id:
                raise RecordRefused("number", f"The organization has a {values['kind'].value} numbered {values['number']} already.")
            if content is None:
                listed = lines.get((values["organization_id"], values["period"]))
                if listed is None:
                    raise RecordRefused("file_base64", f"Send the PDF: the organization has no charges in {values['period']} to list in it.")
                if supplier is None:
                    raise RecordRefused("file_base64", f"Send the PDF: kabinet prints no document without the supplier's requisites. {suppliers.NOT_CONFIGURED}")
                if values["amount"] is None:
                    values["amount"] = listed[1]
                organization = organizations[values["organization_id"]]
                content = await asyncio.to_thread(
                    render, supplier, organization, values["kind"], values["number"], values["issued_on"], values["period"],
                    listed[0], values["amount"], values["currency"],
                )
            document = existing.get(external_id)
            if document is None:
                document = await publish_document(
                    values["organization_id"], values["kind"], values["number"], values["issued_on"], values["period"],
                    values["amount"], content, values["currency"], visible_from=values["visible_from"], external_id=external_id,
                )
                existing[external_id] = document
                outcome = Outcome.CREATED
            else:
                revised = await revise_document(document, {**values, "withdrawn_at": None}, content)  # a withdrawn one is back
                outcome = Outcome.UPDATED if revised else Outcome.UNCHANGED
            numbers[(values["organization_id"], values["kind"], values["number"])] = external_id
            if outcome is not Outcome.UNCHANGED:
                actor.touched(values["organization_id"], "documents")
            results.append(LineResult(record.line, name, external_id, outcome))
        except RecordRefused as refused:
            results.append(refused_line(record, name, refused))
    return results


async def _withdraw(actor: ProviderActor, document: Document | None) -> Outcome:
    """A document record deleted: the document withdrawn (resolvers/billing/publication.py); UNCHANGED
    when there is none or it is withdrawn already."""
    if document is None or not await withdraw_document(document):
        return Outcome.UNCHANGED
    actor.touched(document.organization_id, "documents")
    return Outcome.DELETED


async def _numbers_taken(parsed: list) -> dict[tuple[uuid.UUID, DocumentKind, str], str | None]:
    """(organization, kind, number) → the external id of the document holding it (None: one kabinet
    published), for the numbers the batch's documents name, in one query."""
    wanted = {(v["organization_id"], v["kind"], v["number"]) for item in parsed if not isinstance(item, LineResult)
              for v in [item[1]] if v is not None}
    if not wanted:
        return {}
    rows = await Document.filter(
        organization_id__in=list({w[0] for w in wanted}), number__in=list({w[2] for w in wanted})
    ).values("organization_id", "kind", "number", "external_id")
    return {(r["organization_id"], DocumentKind(r["kind"]), r["number"]): r["external_id"] for r in rows}


# ---------------------------------------------------------------------------------- prepaid services

@entity(
    "prepaid_service", SCOPE,
    ("external_id", "organization", "organization_inn", "name", "unit", "total", "valid_until", "deleted"),
    "A prepaid package of services (hours of consultations, visits): its use is the sum of its uses. "
    "Deleted: removed with its uses.",
)
async def upsert_prepaid_services(actor: ProviderActor, records: list[Record]) -> list[LineResult]:
    referenced = await organizations_referenced(records)
    batch = await BatchRows.read(PrepaidService, records)

    async def apply_one(record: Record) -> Outcome:
        if deleted(record):
            removed = await batch.remove(record.external_id)  # its uses go with it (CASCADE)
            if removed is None:
                return Outcome.UNCHANGED
            actor.touched(removed.organization_id, "balance")
            return Outcome.DELETED
        values = {
            "organization_id": organization_of(record, referenced), "name": text(record, "name", of=PrepaidService),
            "unit": text(record, "unit", of=PrepaidService), "total": decimal(record, "total", of=PrepaidService),
            "valid_until": date(record, "valid_until", required=False),
        }
        created = record.external_id not in batch.rows
        outcome = await batch.put(record.external_id, {**values, "used": Decimal("0.00")} if created else values, record)
        if outcome is not Outcome.UNCHANGED:
            actor.touched(values["organization_id"], "balance")
        return outcome

    results = await each_record("prepaid_service", records, apply_one)
    await batch.flush()
    return results


@entity(
    "prepaid_service_use", SCOPE,
    ("external_id", "prepaid_service", "quantity", "used_on", "description", "deleted"),
    "One use of a prepaid package (a consultation, a visit); the package's `used` is the sum of its uses "
    "(a use deleted no longer counts).",
)
async def upsert_prepaid_service_uses(actor: ProviderActor, records: list[Record]) -> list[LineResult]:
    services = {
        row["external_id"]: (row["id"], row["organization_id"])
        for row in await PrepaidService.filter(external_id__in=looked_up(records, "prepaid_service", PrepaidService, "external_id"))
        .values("id", "external_id", "organization_id")
    }
    batch = await BatchRows.read(PrepaidServiceUse, records)
    recount: dict[uuid.UUID, uuid.UUID | None] = {}  # packages whose `used` is summed again (→ their organization)
    owners = {service_id: organization_id for service_id, organization_id in services.values()}
    if unread := list({row.prepaid_service_id for row in batch.rows.values()} - set(owners)):  # the packages uses are of now
        owners.update(await PrepaidService.filter(id__in=unread).values_list("id", "organization_id"))

    async def apply_one(record: Record) -> Outcome:
        if deleted(record):
            removed = await batch.remove(record.external_id)
            if removed is None:
                return Outcome.UNCHANGED
            recount[removed.prepaid_service_id] = owners.get(removed.prepaid_service_id)
            return Outcome.DELETED
        named = text(record, "prepaid_service", max_length=100)
        if named not in services:
            raise RecordRefused("prepaid_service", f"No prepaid service with external_id {named!r}: send it first.")
        service_id, organization_id = services[named]
        before = batch.rows.get(record.external_id)
        previous = before.prepaid_service_id if before is not None else None
        if previous is not None:  # to another package of its organization, not another organization's
            same_organization(owners[previous], organization_id, "prepaid service use", record, "prepaid_service")
        values = {
            "prepaid_service_id": service_id, "quantity": decimal(record, "quantity", of=PrepaidServiceUse),
            "used_on": date(record, "used_on"), "description": text(record, "description", required=False, of=PrepaidServiceUse) or "",
        }
        outcome = await batch.put(record.external_id, values)
        if outcome is not Outcome.UNCHANGED:
            recount[service_id] = organization_id
            if previous is not None and previous != service_id:
                recount[previous] = owners.get(previous) or organization_id
        return outcome

    results = await each_record("prepaid_service_use", records, apply_one)
    await batch.flush()
    await _recount_used(actor, recount)
    return results


async def _recount_used(actor: ProviderActor, packages: Mapping[uuid.UUID, uuid.UUID | None]) -> None:
    """`used` of each package = the sum of its uses (one aggregate query, an UPDATE per package that changed)."""
    if not packages:
        return
    sums = {
        row["prepaid_service_id"]: Decimal(str(row["total"] or 0))
        for row in await PrepaidServiceUse.filter(prepaid_service_id__in=list(packages))
        .annotate(total=Sum("quantity")).group_by("prepaid_service_id").values("prepaid_service_id", "total")
    }
    for package in await PrepaidService.filter(id__in=list(packages)):
        used = within_column(sums.get(package.id, Decimal("0")), PrepaidService, "used", "The package's use", "quantity")
        used = used.quantize(KOPECK, ROUND_HALF_UP)
        if Decimal(package.used) != used:
            await PrepaidService.filter(id=package.id).update(used=used)
        actor.touched(package.organization_id, "balance")
