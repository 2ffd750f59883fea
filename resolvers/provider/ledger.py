"""The provider's ledger entries (scope billing:write): each organization's deposit ledger, append-only.

kabinet numbers each organization's entries (`seq`) in order of `occurred_at`, then arrival, and
keeps `balance_after` a running sum along that order; an entry older than the organization's latest
is placed where it belongs and the entries after it are renumbered and their balances recomputed in
one pass. A batch's new entries are written in bulk: 100,000 entries import in seconds
(bench/import_rate.py).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from tortoise.expressions import F

from models.billing import BalanceTransaction, Document, TransactionKind
from models.bulk import insert_rows
from models.organizations import Organization
from resolvers.provider.records import (
    LineResult, Outcome, ProviderActor, Record, RecordRefused, choice, decimal, each_record, entity, looked_up, moment,
    never_deleted, organization_of, organizations_referenced, plan_each_statement, reference, same_organization, text,
    within_column,
)

SCOPE = "billing:write"


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


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
    await plan_each_statement(BalanceTransaction)
    referenced = await organizations_referenced(records)
    documents = await _documents_referenced(looked_up(records, "document", Document, "external_id"))
    ids = list({r.external_id for r in records if r.external_id})
    known: dict[str, dict[str, Any]] = {}
    if ids:
        for row in await BalanceTransaction.filter(external_id__in=ids).values("external_id", *LEDGER_FIELDS):
            row["occurred_at"] = _aware(row["occurred_at"])
            row["kind"] = TransactionKind(row["kind"])
            known[row.pop("external_id")] = row
    new: list[tuple[int, str, dict[str, Any]]] = []  # (place in the batch, external id, values)

    async def apply_one(record: Record) -> Outcome:
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
        before = known.get(record.external_id)
        if before is None:
            known[record.external_id] = values
            new.append((len(new), record.external_id, values))
            return Outcome.CREATED
        same_organization(before["organization_id"], organization_id, "ledger entry", record)
        differing = [field for field, value in values.items() if before[field] != value]
        if differing:
            raise RecordRefused(
                LEDGER_FIELDS[differing[0]], "Ledger entries are never changed: send a correcting entry (a new external_id).",
            )
        return Outcome.UNCHANGED

    results = await each_record("ledger_entry", records, apply_one)
    if new:
        await _append_entries(new)
        for organization_id in {values["organization_id"] for _, _, values in new}:
            actor.touched(organization_id, "balance")
    return results


async def _documents_referenced(external_ids: list[str]) -> dict[str, tuple[uuid.UUID, uuid.UUID]]:
    """{document's external id: (its id, its organization)}, in one query."""
    if not external_ids:
        return {}
    rows = await Document.filter(external_id__in=external_ids).values("id", "external_id", "organization_id")
    return {row["external_id"]: (row["id"], row["organization_id"]) for row in rows}


def _document_of(record: Record, documents: Mapping[str, tuple[uuid.UUID, uuid.UUID]], organization_id: uuid.UUID) -> uuid.UUID | None:
    named = reference(record, "document")
    if named is None:
        return None
    found = documents.get(named)
    if found is None:
        raise RecordRefused("document", f"No document with external_id {named!r}: send the document first.")
    if found[1] != organization_id:
        raise RecordRefused("document", f"The document {named!r} is another organization's.")
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
    return within_column(balance, BalanceTransaction, "balance_after", "The balance after this entry")


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
