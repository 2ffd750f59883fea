"""The upsert engine every entity's upsert is made of: rows found by the provider's external id.

An upsert reads what its batch names once (`BatchRows.read`, `organizations_referenced`, `looked_up`),
then applies each record in turn (`each_record`): a row created, changed in place (`save_changes`,
`put_owned`, `BatchRows.put`), or taken back (`remove_owned`, `BatchRows.remove`), never moved to
another organization (`same_organization`). `put_owned` creates a row at once; `BatchRows` keeps a
batch's new rows in memory and writes them in bulk (`flush`), for entities sent by the thousand.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

from models.organizations import ModerationStatus, Organization
from resolvers.provider.actor import Area, ProviderActor
from resolvers.provider.fields import column, external_id_of, flag
from resolvers.provider.lines import LineResult, Outcome, Record, RecordRefused


async def each_record(
    name: str, records: Iterable[Record], apply_one: Callable[[Record], Awaitable[Outcome]]
) -> list[LineResult]:
    """The simple upsert loop: one record at a time, a refusal answered and the rest applied. (A
    refusal raised before anything was written leaves the transaction intact.)"""
    results = []
    for record in records:
        try:
            external_id_of(record)
            outcome = await apply_one(record)
            results.append(LineResult(record.line, name, record.external_id, outcome))
        except RecordRefused as refused:
            results.append(refused_line(record, name, refused))
    return results


def refused_line(record: Record, name: str, refused: RecordRefused) -> LineResult:
    """The answer to a record its upsert refused: its line, the field and why."""
    return LineResult(record.line, name, record.external_id, Outcome.REFUSED, refused.field, refused.reason)


def _set_changed(row: Any, values: Mapping[str, Any]) -> list[str]:
    """Set on `row` the `values` that differ from its own; their names."""
    changed = [name for name, value in values.items() if getattr(row, name) != value]
    for name in changed:
        setattr(row, name, values[name])
    return changed


async def save_changes(row: Any, values: Mapping[str, Any]) -> Outcome:
    """Set `values` on an existing row; UPDATED when any differed (and saved), else UNCHANGED."""
    changed = _set_changed(row, values)
    if not changed:
        return Outcome.UNCHANGED
    await row.save(update_fields=changed)
    return Outcome.UPDATED


def same_organization(
    row: Any, organization_id: uuid.UUID, what: str, record: Record | None = None, column: str = "organization"
) -> None:
    """The one rule for every entity: a row found by its external id stays with the organization it
    belongs to (`row`: the row, or its organization's id). A record naming another is refused on the
    field that named it, so no row (nor a document's PDF) reaches another customer unseen by the first."""
    current = row if isinstance(row, uuid.UUID) else row.organization_id
    if current != organization_id:
        field = f"{column}_inn" if record is not None and record.values.get(column) in (None, "") else column
        raise RecordRefused(field, f"This {what} belongs to another organization; it does not move.")


async def put_owned(
    actor: ProviderActor, model: type, rows: dict[str, Any], record: Record, organization_id: uuid.UUID,
    values: Mapping[str, Any], what: str, area: Area | str,
) -> Outcome:
    """The common upsert of an organization's row by its external id: created, or updated in place
    (never moved to another organization); a change noted in the organization's `area`. `rows` holds
    the batch's rows by external id and learns a new one."""
    row = rows.get(record.external_id)
    if row is None:
        rows[record.external_id] = await model.create(organization_id=organization_id, external_id=record.external_id, **values)
        outcome = Outcome.CREATED
    else:
        same_organization(row, organization_id, what, record)
        outcome = await save_changes(row, values)
    if outcome is not Outcome.UNCHANGED:
        actor.touched(organization_id, area)
    return outcome


DELETED_FIELD = "deleted"


def deleted(record: Record) -> bool:
    """Whether the record takes its row back (`deleted`: a flag, empty is false)."""
    return flag(record, DELETED_FIELD)


def never_deleted(record: Record, why: str) -> None:
    """An entity that is never taken back by a record: refused on `deleted`, saying what to do instead."""
    if deleted(record):
        raise RecordRefused(DELETED_FIELD, why)


async def remove_owned(actor: ProviderActor | None, rows: dict[str, Any], record: Record, area: Area | str | None) -> Outcome:
    """The plain deletion of an organization's row the batch read by external id: DELETED, its
    `area` noted (None: nothing a dashboard shows); UNCHANGED when there is none (absent, or deleted
    already). Rows that hang on it go by their foreign keys (CASCADE / SET NULL)."""
    row = rows.pop(record.external_id, None)
    if row is None:
        return Outcome.UNCHANGED
    await row.delete()
    if area is not None and actor is not None:
        actor.touched(row.organization_id, area)
    return Outcome.DELETED


async def plan_each_statement(model: type) -> None:
    """PostgreSQL: plan this transaction's statements for their values. asyncpg prepares each
    statement once per connection, and after five runs PostgreSQL may keep a generic plan made while
    the table was small: the lookup of a batch's external ids then scans the whole table (a ledger
    batch of 250 took 0.4 s instead of 2 ms once it held 20,000 entries)."""
    client = model._meta.db
    if client.capabilities.dialect == "postgres":
        await client.execute_script("SET LOCAL plan_cache_mode = force_custom_plan")


def _what(model: type) -> str:
    """A model's name as a refusal says it: PrepaidService → prepaid service."""
    return re.sub(r"(?<!^)(?=[A-Z])", " ", model.__name__).lower()


class BatchRows:
    """The rows of one entity a batch names by external id, read in one query; new rows are made in
    memory and written in bulk by `flush`. A record re-sent within the batch finds the row it made."""

    def __init__(self, model: type, rows: Mapping[str, Any]) -> None:
        self.model = model
        self.rows = dict(rows)
        self.new: dict[str, Any] = {}

    @classmethod
    async def read(cls, model: type, records: Sequence[Record]) -> BatchRows:
        await plan_each_statement(model)
        ids = list({r.external_id for r in records if r.external_id})
        return cls(model, {row.external_id: row for row in await model.filter(external_id__in=ids)} if ids else {})

    async def put(self, external_id: str, values: Mapping[str, Any], record: Record | None = None) -> Outcome:
        """Created (in memory, until `flush`), or changed in place (saved now) and never moved to another organization."""
        row = self.rows.get(external_id)
        if row is not None and "organization_id" in values:
            same_organization(row, values["organization_id"], _what(self.model), record)
        if row is None:
            row = self.rows[external_id] = self.new[external_id] = self.model(external_id=external_id, **values)
            return Outcome.CREATED
        changed = _set_changed(row, values)
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


# ---------------------------------------------------------------- references to other records

def looked_up(records: Sequence[Record], name: str, model: type, attribute: str) -> list[str]:
    """The values the batch's records give in `name`, to read the rows of `model` whose `attribute`
    holds them in one query: only those that could be there (a longer value is no row's, and Tortoise
    refuses to compare a column with it); a record's reader answers for the others."""
    limit = column(model, attribute).max_length
    values = (str(r.values[name]).strip() for r in records if r.values.get(name) not in (None, ""))
    return list({value for value in values if len(value) <= limit})


class Referenced(dict):
    """The organizations a batch's records name (reference → id), and the INNs among them that only
    a claim nobody approved holds (`unproven`): those reach no organization."""

    unproven: set[str]

    def __init__(self) -> None:
        super().__init__()
        self.unproven = set()


async def organizations_referenced(records: Sequence[Record], column: str = "organization") -> Referenced:
    """The organizations a batch's records name in `column` (the organization's external id, or its
    INN when the record names `organization_inn` instead), read in one query each: reference → id.
    Only customers are found — organizations the provider sent or approved (APPROVED): an INN that
    only a tenant's unapproved claim holds reaches nothing (resolvers/organizations/moderation.py)."""
    by_external = set(looked_up(records, column, Organization, "external_id"))
    by_inn = set(looked_up(records, f"{column}_inn", Organization, "inn"))
    found = Referenced()
    if by_external:
        for row in await Organization.filter(
            external_id__in=list(by_external), moderation_status=ModerationStatus.APPROVED,
        ).values("id", "external_id"):
            found[row["external_id"]] = row["id"]
    if by_inn:
        for row in await Organization.filter(inn__in=list(by_inn)).values("id", "inn", "moderation_status"):
            if ModerationStatus(row["moderation_status"]) == ModerationStatus.APPROVED:
                found[f"inn:{row['inn']}"] = row["id"]
            else:
                found.unproven.add(row["inn"])
    return found


def organization_of(record: Record, referenced: Mapping[str, uuid.UUID], column: str = "organization") -> uuid.UUID:
    """The organization a record belongs to, from `organizations_referenced`; refused when unknown,
    or when its INN is only an unapproved claim's."""
    reference = record.values.get(column)
    if reference not in (None, ""):
        found = referenced.get(str(reference).strip())
        if found is None:
            raise RecordRefused(column, f"No organization with external_id {reference!r}: send the organization first.")
        return found
    inn = record.values.get(f"{column}_inn")
    if inn not in (None, ""):
        inn = str(inn).strip()
        found = referenced.get(f"inn:{inn}")
        if found is None and inn in getattr(referenced, "unproven", ()):
            raise RecordRefused(
                f"{column}_inn", f"INN {inn} is only claimed in the cabinet, not approved: a claim receives no data. "
                "Send the organization first; the claim becomes your customer once your staff approve it or its owner "
                "proves a phone you list as a known contact of the INN.",
            )
        if found is None:
            raise RecordRefused(f"{column}_inn", f"No organization with INN {inn}: send the organization first.")
        return found
    raise RecordRefused(column, f"Name the organization: {column} (its external_id) or {column}_inn.")
