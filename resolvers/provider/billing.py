"""The provider's billing records: ledger entries, charges, documents, prepaid services and their uses.

Every upsert reads what a batch refers to once (the rows of its external ids, the organizations,
documents, databases or packages it names) and writes new rows in bulk: 100,000 ledger entries
import in seconds. The ledger is append-only: kabinet numbers each organization's entries (`seq`)
in order of `occurred_at`, then arrival, and keeps `balance_after` a running sum along that order;
an entry older than the organization's latest is placed where it belongs and the entries after it
are renumbered and their balances recomputed in one pass.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import re
import uuid
from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from tortoise.expressions import F
from tortoise.functions import Sum

from models.billing import BalanceTransaction, Charge, ChargeKind, Document, DocumentKind, PrepaidService, TransactionKind
from models.bulk import insert_rows
from models.cloud import Database
from models.organizations import Organization
from models.provider import PrepaidServiceUse
from foundation.clock import today
from resolvers.billing import supplier as suppliers
from resolvers.billing.publication import charge_lines, publish_document, render, revise_document, withdraw_document
from resolvers.billing.documents import PERIOD_PATTERN, document_visible_from
from resolvers.provider.imports import ImportedRecord
from resolvers.provider.records import (
    DELETED_FIELD, EARLIEST, LATEST, LineResult, Outcome, ProviderActor, Record, RecordRefused, choice, column, date,
    decimal, deleted, entity, external_id_of, looked_up, moment, never_deleted, organization_of, organizations_referenced,
    same_organization, text, within_digits,
)

KOPECK = Decimal("0.01")
SCOPE = "billing:write"


async def _plan_each_statement() -> None:
    """PostgreSQL: plan this transaction's statements for their values. asyncpg prepares each
    statement once per connection, and after five runs PostgreSQL may keep a generic plan made while
    the table was small: the lookup of a batch's external ids then scans the whole ledger (a batch
    of 250 took 0.4 s instead of 2 ms once it held 20,000 entries)."""
    client = BalanceTransaction._meta.db
    if client.capabilities.dialect == "postgres":
        await client.execute_script("SET LOCAL plan_cache_mode = force_custom_plan")


def _references(records: Sequence[Record], column: str) -> list[str]:
    """The external ids the batch's records name in `column` (of documents, databases, packages…)."""
    return looked_up(records, column, Document, "external_id")


def _reference(record: Record, column: str) -> str | None:
    value = record.values.get(column)
    return None if value in (None, "") else str(value).strip()


def _period(record: Record, name: str = "period", *, required: bool = True) -> str | None:
    value = text(record, name, required=required, max_length=7)
    if value is not None and not PERIOD_PATTERN.match(value):
        raise RecordRefused(name, f"A month as YYYY-MM: {value!r}.")
    if value is not None and not EARLIEST.year <= int(value[:4]) <= LATEST.year:
        raise RecordRefused(name, f"A month from {EARLIEST.year} to {LATEST.year}: {value!r}.")
    return value


def _fits(value: Decimal, model: type, attribute: str, what: str, field: str = "amount") -> Decimal:
    """A sum kabinet works out (a charge's amount, a running balance, a package's use) within its
    column: refused on the record's `field` when it is not."""
    limits = column(model, attribute)
    return within_digits(value, field, limits.max_digits, limits.decimal_places, what)


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def _refused(record: Record, name: str, refused: RecordRefused) -> LineResult:
    return LineResult(record.line, name, record.external_id, Outcome.REFUSED, refused.field, refused.reason)


def _what(model: type) -> str:
    """A model's name as a refusal says it: PrepaidService → prepaid service."""
    return re.sub(r"(?<!^)(?=[A-Z])", " ", model.__name__).lower()


class _Batch:
    """The rows of one entity a batch names by external id, read in one query; new rows are made in
    memory and written in bulk by `flush`. A record re-sent within the batch finds the row it made."""

    def __init__(self, model: type, rows: Mapping[str, Any]) -> None:
        self.model = model
        self.rows = dict(rows)
        self.new: dict[str, Any] = {}

    @classmethod
    async def read(cls, model: type, records: Sequence[Record]) -> _Batch:
        await _plan_each_statement()
        ids = list({r.external_id for r in records if r.external_id})
        return cls(model, {row.external_id: row for row in await model.filter(external_id__in=ids)} if ids else {})

    async def put(self, external_id: str, values: Mapping[str, Any], record: Record | None = None) -> Outcome:
        row = self.rows.get(external_id)
        if row is not None and "organization_id" in values:
            same_organization(row, values["organization_id"], _what(self.model), record)
        if row is None:
            row = self.rows[external_id] = self.new[external_id] = self.model(external_id=external_id, **values)
            return Outcome.CREATED
        changed = [name for name, value in values.items() if getattr(row, name) != value]
        for name in changed:
            setattr(row, name, values[name])
        if not changed:
            return Outcome.UNCHANGED
        if external_id not in self.new:
            await row.save(update_fields=changed)
        return Outcome.UPDATED

    async def remove(self, external_id: str) -> Any | None:
        """The row of `external_id` deleted (or, made in this batch, never written); None when there is none."""
        row = self.rows.pop(external_id, None)
        if row is not None and self.new.pop(external_id, None) is None:
            await row.delete()
        return row

    async def flush(self) -> None:
        if self.new:
            await self.model.bulk_create(list(self.new.values()), batch_size=1000)
            self.new = {}


# ------------------------------------------------------------------------------------ ledger entries

LEDGER_FIELDS = {  # the entry's attribute → the record's field that sets it
    "organization_id": "organization", "kind": "kind", "amount": "amount", "description": "description",
    "occurred_at": "occurred_at", "document_id": "document",
}


@entity(
    "ledger_entry", SCOPE,
    ("external_id", "organization", "organization_inn", "kind", "amount", "description", "occurred_at", "document", "deleted"),
    "An entry of an organization's deposit ledger (append-only: a correction is a new entry; never deleted).",
)
async def upsert_ledger_entries(actor: ProviderActor, records: list[Record]) -> list[LineResult]:
    name = "ledger_entry"
    await _plan_each_statement()
    results: list[LineResult | None] = [None] * len(records)
    referenced = await organizations_referenced(records)
    documents = await _documents_referenced(_references(records, "document"))
    ids = list({r.external_id for r in records if r.external_id})
    known: dict[str, dict[str, Any]] = {}
    if ids:
        for row in await BalanceTransaction.filter(external_id__in=ids).values("external_id", *LEDGER_FIELDS):
            row["occurred_at"] = _aware(row["occurred_at"])
            row["kind"] = TransactionKind(row["kind"])
            known[row.pop("external_id")] = row
    new: list[tuple[int, str, dict[str, Any]]] = []  # (index in the batch, external id, values)
    for index, record in enumerate(records):
        try:
            external_id = external_id_of(record)
            never_deleted(
                record, "Ledger entries are never deleted: send a correcting entry (a new external_id, e.g. an "
                "ADJUSTMENT or a REFUND of the opposite amount).",
            )
            organization_id = organization_of(record, referenced)
            values = {
                "organization_id": organization_id,
                "kind": choice(record, "kind", TransactionKind),
                "amount": decimal(record, "amount", of=BalanceTransaction),
                "description": text(record, "description", required=False, of=BalanceTransaction) or "",
                "occurred_at": moment(record, "occurred_at", actor.zone),
                "document_id": _document_of(record, documents, organization_id),
            }
            before = known.get(external_id)
            if before is not None:
                same_organization(before["organization_id"], organization_id, "ledger entry", record)
            if before is None:
                known[external_id] = values
                new.append((index, external_id, values))
                results[index] = LineResult(record.line, name, external_id, Outcome.CREATED)
                continue
            differing = [field for field, value in values.items() if before[field] != value]
            if differing:
                raise RecordRefused(
                    LEDGER_FIELDS[differing[0]],
                    "Ledger entries are never changed: send a correcting entry (a new external_id).",
                )
            results[index] = LineResult(record.line, name, external_id, Outcome.UNCHANGED)
        except RecordRefused as refused:
            results[index] = _refused(record, name, refused)
    if new:
        await _append_entries(new)
        for organization_id in {values["organization_id"] for _, _, values in new}:
            actor.touched(organization_id, "balance")
    return results  # type: ignore[return-value]


async def _documents_referenced(external_ids: list[str]) -> dict[str, tuple[uuid.UUID, uuid.UUID]]:
    """{document's external id: (its id, its organization)}, in one query."""
    if not external_ids:
        return {}
    rows = await Document.filter(external_id__in=external_ids).values("id", "external_id", "organization_id")
    return {row["external_id"]: (row["id"], row["organization_id"]) for row in rows}


def _document_of(record: Record, documents: Mapping[str, tuple[uuid.UUID, uuid.UUID]], organization_id: uuid.UUID) -> uuid.UUID | None:
    reference = _reference(record, "document")
    if reference is None:
        return None
    found = documents.get(reference)
    if found is None:
        raise RecordRefused("document", f"No document with external_id {reference!r}: send the document first.")
    if found[1] != organization_id:
        raise RecordRefused("document", f"The document {reference!r} is another organization's.")
    return found[0]


async def _append_entries(new: list[tuple[int, str, dict[str, Any]]]) -> None:
    """Number the new entries into their organizations' ledgers and write them: appended after the
    latest entry when none is older than it (one query for every organization's latest, one bulk
    insert), else merged in by `occurred_at`, the entries after them renumbered and rebalanced."""
    by_organization: dict[uuid.UUID, list[tuple[int, str, dict[str, Any]]]] = {}
    for item in new:
        by_organization.setdefault(item[2]["organization_id"], []).append(item)
    organization_ids = sorted(by_organization, key=str)
    # one ledger writer per organization at a time (PostgreSQL; SQLite serialises writers anyway)
    await Organization.filter(id__in=organization_ids).select_for_update().values_list("id", flat=True)
    latest = await _latest_entries(organization_ids)
    rows: list[dict[str, Any]] = []
    for organization_id in organization_ids:
        entries = sorted(by_organization[organization_id], key=lambda item: (item[2]["occurred_at"], item[0]))
        last = latest.get(organization_id)
        if last is None or entries[0][2]["occurred_at"] >= _aware(last.occurred_at):
            rows += _appended(entries, last)
        else:
            rows += await _merge_entries(organization_id, entries)
    await insert_rows(BalanceTransaction, rows)


def _appended(entries: list[tuple[int, str, dict[str, Any]]], last: BalanceTransaction | None) -> list[dict[str, Any]]:
    """The rows of `entries` (in order) after `last`: the next places, the running balance."""
    seq, balance = (last.seq, Decimal(last.balance_after)) if last else (0, Decimal("0.00"))
    rows = []
    for _, external_id, values in entries:
        seq += 1
        balance = _balance(balance + values["amount"])
        rows.append({"external_id": external_id, "seq": seq, "balance_after": balance, **values})
    return rows


def _balance(balance: Decimal) -> Decimal:
    """A running balance a ledger can hold. Beyond it the batch is refused as a whole, and applied again
    line by line (records.py `apply`): the entry that takes a balance beyond it is refused on its amount."""
    return _fits(balance, BalanceTransaction, "balance_after", "The balance after this entry")


async def _latest_entries(organization_ids: list[uuid.UUID]) -> dict[uuid.UUID, BalanceTransaction]:
    """Each organization's latest entry, in one statement: a LIMIT 1 by the (organization, seq) index
    per organization (a window or GROUP BY would read every entry of the ledger)."""
    if not organization_ids:
        return {}
    meta = BalanceTransaction._meta
    table = meta.db_table
    parts = [
        f"SELECT * FROM (SELECT * FROM {table} WHERE organization_id='{uuid.UUID(str(o))}' ORDER BY seq DESC LIMIT 1) AS l{i}"
        for i, o in enumerate(organization_ids)
    ]
    rows = await meta.db.execute_query_dict(" UNION ALL ".join(parts))
    entries = [BalanceTransaction.from_row(row) for row in rows]
    return {entry.organization_id: entry for entry in entries}


async def _merge_entries(organization_id: uuid.UUID, entries: list[tuple[int, str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """New entries of which some are older than the latest: the entries after the oldest new one are
    read, the new ones merged in (an entry already there comes before a new one of the same moment),
    and from that point each gets its place (`seq`) and running `balance_after`, in one UPDATE pass.
    Returns the new rows to insert."""
    oldest = entries[0][2]["occurred_at"]
    first = await BalanceTransaction.filter(organization_id=organization_id, occurred_at__gt=oldest).order_by("seq").first()
    if first is None:  # nothing is later after all (times stored coarser than sent): appended
        return _appended(entries, await BalanceTransaction.filter(organization_id=organization_id).order_by("-seq").first())
    later = await BalanceTransaction.filter(organization_id=organization_id, seq__gte=first.seq).order_by("seq")
    start, balance = first.seq, Decimal(first.balance_after) - Decimal(first.amount)
    merged: list[tuple[tuple, Any]] = [((_aware(row.occurred_at), 0, row.seq), row) for row in later]
    merged += [((values["occurred_at"], 1, index), (external_id, values)) for index, external_id, values in entries]
    merged.sort(key=lambda pair: pair[0])
    new_rows, moved = [], []
    for offset, (_, item) in enumerate(merged):
        seq = start + offset
        if isinstance(item, BalanceTransaction):
            balance = _balance(balance + Decimal(item.amount))
            item.seq, item.balance_after = seq, balance
            moved.append(item)
        else:
            external_id, values = item
            balance = _balance(balance + values["amount"])
            new_rows.append({"external_id": external_id, "seq": seq, "balance_after": balance, **values})
    # out of the way of the unique (organization, seq) first: every moved entry's place changes
    await BalanceTransaction.filter(organization_id=organization_id, seq__gte=start).update(seq=F("seq") * -1)
    await BalanceTransaction.bulk_update(moved, fields=["seq", "balance_after"], batch_size=500)
    return new_rows


# ------------------------------------------------------------------------------------------- charges

@entity(
    "charge", SCOPE,
    ("external_id", "organization", "organization_inn", "kind", "period", "description", "quantity", "unit_price",
     "amount", "database", "deleted"),
    "A charge of a month (cloud rental, a support service): the lines of that month's invoice and act. "
    "Deleted: refused once the customer has a document of that month.",
)
async def upsert_charges(actor: ProviderActor, records: list[Record]) -> list[LineResult]:
    name = "charge"
    referenced = await organizations_referenced(records)
    databases: dict[str, tuple[uuid.UUID, uuid.UUID]] = {}
    if wanted := _references(records, "database"):
        for row in await Database.filter(external_id__in=wanted).values("id", "external_id", "organization_id"):
            databases[row["external_id"]] = (row["id"], row["organization_id"])
    batch = await _Batch.read(Charge, records)
    results = []
    for record in records:
        try:
            external_id = external_id_of(record)
            if deleted(record):
                results.append(LineResult(record.line, name, external_id, await _remove_charge(actor, batch, external_id)))
                continue
            organization_id = organization_of(record, referenced)
            quantity = decimal(record, "quantity", of=Charge)
            unit_price = decimal(record, "unit_price", of=Charge)
            expected = (quantity * unit_price).quantize(KOPECK, ROUND_HALF_UP)
            amount = decimal(record, "amount", required=False, of=Charge)
            _fits(expected, Charge, "amount", "quantity × unit_price")
            if amount is not None and amount != expected:
                raise RecordRefused("amount", f"quantity × unit_price = {expected}, not {amount}.")
            database_id = None
            if (reference := _reference(record, "database")) is not None:
                found = databases.get(reference)
                if found is None:
                    raise RecordRefused("database", f"No database with external_id {reference!r}: send the database first.")
                if found[1] != organization_id:
                    raise RecordRefused("database", f"The database {reference!r} is another organization's.")
                database_id = found[0]
            values = {
                "organization_id": organization_id, "kind": choice(record, "kind", ChargeKind),
                "period": _period(record), "description": text(record, "description", of=Charge),
                "quantity": quantity, "unit_price": unit_price, "amount": expected, "database_id": database_id,
            }
            outcome = await batch.put(external_id, values, record)
            if outcome is not Outcome.UNCHANGED:
                actor.touched(organization_id, "charges")
            results.append(LineResult(record.line, name, external_id, outcome))
        except RecordRefused as refused:
            results.append(_refused(record, name, refused))
    await batch.flush()
    return results


async def _remove_charge(actor: ProviderActor, batch: _Batch, external_id: str) -> Outcome:
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

PDF_MAGIC = b"%PDF"


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
    existing = {d.external_id: d for d in await Document.filter(external_id__in=_references(records, "external_id"))}
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
            content = _provided_file(record)
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
            parsed.append(_refused(record, name, refused))
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
            results.append(_refused(record, name, refused))
    return results


async def _withdraw(actor: ProviderActor, document: Document | None) -> Outcome:
    """A document record deleted: the document withdrawn (resolvers/billing/publication.py); UNCHANGED
    when there is none or it is withdrawn already."""
    if document is None or not await withdraw_document(document):
        return Outcome.UNCHANGED
    actor.touched(document.organization_id, "documents")
    return Outcome.DELETED


def _provided_file(record: Record) -> bytes | None:
    """The provider's PDF: `file_base64`, or `file_path` relative to the imported file (and under its folder)."""
    encoded = _reference(record, "file_base64")
    path = _reference(record, "file_path")
    if encoded is not None:
        try:
            content = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise RecordRefused("file_base64", "Not base64.") from None
        field = "file_base64"
    elif path is not None:
        files = record.files if isinstance(record, ImportedRecord) else None
        if files is None:
            raise RecordRefused("file_path", "A file path is read by `kabinet import` only: send the PDF as file_base64.")
        content = files.read(path)  # only under the import's folder (resolvers/provider/imports.py)
        field = "file_path"
    else:
        return None
    if not content.startswith(PDF_MAGIC):
        raise RecordRefused(field, "Not a PDF (it must start with %PDF).")
    return content


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
    name = "prepaid_service"
    referenced = await organizations_referenced(records)
    batch = await _Batch.read(PrepaidService, records)
    results = []
    for record in records:
        try:
            external_id = external_id_of(record)
            if deleted(record):
                removed = await batch.remove(external_id)  # its uses go with it (CASCADE)
                if removed is not None:
                    actor.touched(removed.organization_id, "balance")
                results.append(LineResult(record.line, name, external_id, Outcome.UNCHANGED if removed is None else Outcome.DELETED))
                continue
            values = {
                "organization_id": organization_of(record, referenced), "name": text(record, "name", of=PrepaidService),
                "unit": text(record, "unit", of=PrepaidService), "total": decimal(record, "total", of=PrepaidService),
                "valid_until": date(record, "valid_until", required=False),
            }
            created = external_id not in batch.rows
            outcome = await batch.put(external_id, {**values, "used": Decimal("0.00")} if created else values, record)
            if outcome is not Outcome.UNCHANGED:
                actor.touched(values["organization_id"], "balance")
            results.append(LineResult(record.line, name, external_id, outcome))
        except RecordRefused as refused:
            results.append(_refused(record, name, refused))
    await batch.flush()
    return results


@entity(
    "prepaid_service_use", SCOPE,
    ("external_id", "prepaid_service", "quantity", "used_on", "description", "deleted"),
    "One use of a prepaid package (a consultation, a visit); the package's `used` is the sum of its uses "
    "(a use deleted no longer counts).",
)
async def upsert_prepaid_service_uses(actor: ProviderActor, records: list[Record]) -> list[LineResult]:
    name = "prepaid_service_use"
    services = {
        row["external_id"]: (row["id"], row["organization_id"])
        for row in await PrepaidService.filter(external_id__in=_references(records, "prepaid_service")).values(
            "id", "external_id", "organization_id")
    }
    batch = await _Batch.read(PrepaidServiceUse, records)
    recount: dict[uuid.UUID, uuid.UUID | None] = {}  # packages whose `used` is summed again (→ their organization)
    owners = {service_id: organization_id for service_id, organization_id in services.values()}
    if unread := list({row.prepaid_service_id for row in batch.rows.values()} - set(owners)):  # the packages uses are of now
        owners.update(await PrepaidService.filter(id__in=unread).values_list("id", "organization_id"))
    results = []
    for record in records:
        try:
            external_id = external_id_of(record)
            if deleted(record):
                removed = await batch.remove(external_id)
                if removed is not None:
                    recount[removed.prepaid_service_id] = owners.get(removed.prepaid_service_id)
                results.append(LineResult(record.line, name, external_id, Outcome.UNCHANGED if removed is None else Outcome.DELETED))
                continue
            reference = text(record, "prepaid_service", max_length=100)
            if reference not in services:
                raise RecordRefused("prepaid_service", f"No prepaid service with external_id {reference!r}: send it first.")
            service_id, organization_id = services[reference]
            before = batch.rows.get(external_id)
            previous = before.prepaid_service_id if before is not None else None
            if previous is not None:  # to another package of its organization, not another organization's
                same_organization(owners[previous], organization_id, "prepaid service use", record, "prepaid_service")
            values = {
                "prepaid_service_id": service_id, "quantity": decimal(record, "quantity", of=PrepaidServiceUse),
                "used_on": date(record, "used_on"), "description": text(record, "description", required=False, of=PrepaidServiceUse) or "",
            }
            outcome = await batch.put(external_id, values)
            if outcome is not Outcome.UNCHANGED:
                recount[service_id] = organization_id
                if previous is not None and previous != service_id:
                    recount[previous] = owners.get(previous) or organization_id
            results.append(LineResult(record.line, name, external_id, outcome))
        except RecordRefused as refused:
            results.append(_refused(record, name, refused))
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
        used = _fits(sums.get(package.id, Decimal("0")), PrepaidService, "used", "The package's use", "quantity")
        used = used.quantize(KOPECK, ROUND_HALF_UP)
        if Decimal(package.used) != used:
            await PrepaidService.filter(id=package.id).update(used=used)
        actor.touched(package.organization_id, "balance")
