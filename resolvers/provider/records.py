"""Provider records: one upsert per entity, found by the provider's external id, answered per line.

A record is a flat mapping (a JSON object of an NDJSON line, or a CSV row) of one entity. Each
entity module registers an `EntityKind` with `@entity(...)`: the scope a service token needs, its
columns (documented, and a CSV header's order), and `upsert(actor, records)`, which applies a
batch in the caller's transaction and answers one `LineResult` per record, in order. Re-sending a
record changes nothing (UNCHANGED, no event); a refusal names the line, the field and why.

A record with `deleted` true takes its row back (DELETED) as that entity understands it — removed,
withdrawn, recalled, or refused where the entity never goes away; deleting what is absent or
deleted already is UNCHANGED, with no event. Only `external_id` and `deleted` are read then.

The contract's parts, each in its module and all importable from here for an entity module:
lines.py (a line: `Record`, `LineResult`, `Outcome`, `RecordRefused`), actor.py (`ProviderActor`,
`Area`), fields.py (the readers of a record's fields), upserts.py (the engine an upsert is made of:
`each_record`, `put_owned`, `BatchRows`, references to organizations). This module keeps the
registry (`@entity`, `ENTITIES`) and `apply`, every door's one way in: a batch in one transaction,
answered per line, its refusals kept for the staff desk.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tortoise.exceptions import DBConnectionError
from tortoise.transactions import in_transaction

from models.bulk import insert_rows
from models.provider import RefusedRecord
from events.log import PendingAnnouncements
from resolvers.common.unit_of_work import announce_committed
from resolvers.provider.actor import AREAS, DEFAULT_PROVIDER_TIMEZONE, Area, ProviderActor
from resolvers.provider.fields import (
    EARLIEST, EMPTY_1C_DATE, GRAPHQL_INT, LATEST, choice, column, date, decimal, external_id_of, flag, integer, moment,
    reference, scalar, text, within_column, within_digits,
)
from resolvers.provider.lines import (
    RECORD_PUNCTUATION, LineResult, Outcome, Record, RecordRefused, binary_refused, punctuation, record_of_line,
)
from resolvers.provider.upserts import (
    DELETED_FIELD, BatchRows, Referenced, deleted, each_record, looked_up, never_deleted, organization_of,
    organizations_referenced, plan_each_statement, put_owned, refused_line, remove_owned, same_organization, save_changes,
)

__all__ = [  # the contract an entity module imports from here
    "AREAS", "DEFAULT_PROVIDER_TIMEZONE", "Area", "ProviderActor",
    "EARLIEST", "EMPTY_1C_DATE", "GRAPHQL_INT", "LATEST", "choice", "column", "date", "decimal", "external_id_of", "flag",
    "integer", "moment", "reference", "scalar", "text", "within_column", "within_digits",
    "RECORD_PUNCTUATION", "LineResult", "Outcome", "Record", "RecordRefused", "binary_refused", "punctuation",
    "record_of_line",
    "DELETED_FIELD", "BatchRows", "Referenced", "deleted", "each_record", "looked_up", "never_deleted", "organization_of",
    "organizations_referenced", "plan_each_statement", "put_owned", "refused_line", "remove_owned", "same_organization",
    "save_changes",
    "API", "ENTITIES", "NOT_APPLIED", "NOT_STORED", "SCOPES", "UNAVAILABLE", "EntityKind", "EntityRefused", "RefusalBudget",
    "Source", "Upsert", "apply", "entity", "keep_refusals", "kind_of", "screened",
]

log = logging.getLogger("kabinet.provider")


Upsert = Callable[[ProviderActor, list[Record]], Awaitable[list[LineResult]]]

SCOPES = {
    "catalog:write": "organizations and their requisites, contracts, products, known contacts, releases",
    "billing:write": "ledger entries, charges, documents, prepaid services and their uses",
    "cloud:write": "cloud subscriptions and databases",
    "staff": "moderation and everything staff may do",
}


@dataclass(frozen=True)
class EntityKind:
    name: str  # as records and files name it: "organization", "ledger_entry", …
    scope: str
    columns: tuple[str, ...]  # every field a record may carry, `external_id` first
    upsert: Upsert
    description: str = ""


ENTITIES: dict[str, EntityKind] = {}


def entity(name: str, scope: str, columns: Sequence[str], description: str = "") -> Callable[[Upsert], Upsert]:
    """Register `upsert` as the way records of `name` are applied."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope}")

    def register(upsert: Upsert) -> Upsert:
        ENTITIES[name] = EntityKind(name, scope, ("external_id", *[c for c in columns if c != "external_id"]), upsert, description)
        return upsert

    return register


class EntityRefused(Exception):
    """The whole batch is refused: an unknown entity, or a token without its scope."""


def kind_of(actor: ProviderActor, name: str) -> EntityKind:
    kind = ENTITIES.get(name)
    if kind is None:
        raise EntityRefused(f"Unknown entity {name!r}; known: {', '.join(sorted(ENTITIES))}.")
    if not actor.may(kind.scope):
        raise EntityRefused(f"Writing {name} needs the scope {kind.scope}.")
    return kind


@dataclass(frozen=True)
class Source:
    """Where a batch came from, as its kept refusals name it: a file `kabinet import` read (its name
    and the ImportRun), or the HTTP API."""

    name: str
    import_run_id: uuid.UUID | None = None


API = Source("api")


@dataclass
class RefusalBudget:
    """How many refused lines of one request (or one import run) are kept one by one for the staff
    desk: past `limit`, one more row says that the later ones are not (each is still answered, marked
    `kept: false`, and counted in the provider's audit). A flood of bad lines costs limit + 1 rows."""

    limit: int
    refused: int = 0  # refused lines counted so far, kept or not

    def take(self, refused: list[LineResult]) -> tuple[list[LineResult], LineResult | None]:
        """The ones to keep, and the first line past the limit when this batch crosses it (its summary row)."""
        room = max(0, self.limit - self.refused)
        first_past = refused[room] if len(refused) > room and self.refused <= self.limit else None
        self.refused += len(refused)
        for number, result in enumerate(refused):
            result.kept = number < room
        return refused[:room], first_past


NOT_APPLIED = "Not applied: kabinet failed on this batch (logged for the provider); send these lines again."


async def apply(
    actor: ProviderActor, name: str, items: Sequence[Record | LineResult], broadcast: Any = None, *,
    source: Source = API, within: Callable[[list[LineResult]], Awaitable[None]] | None = None,
    answer_failure: bool = False, refusals: RefusalBudget | None = None,
) -> list[LineResult]:
    """Apply one batch of one entity in one transaction, then announce its events: every door's one
    way in. `items` are the batch's records and, in their place, lines refused before they were
    records at all (not JSON); each REFUSED answer is kept (`RefusedRecord`) in the same transaction,
    for staff to see. `within(results)` runs in that transaction too (an import's progress).

    A record with a value no column can hold (`screened`) is refused before the upsert sees it. A
    batch that fails all the same (a value the database refused, a bug) rolls back and is applied
    again line by line (`_line_by_line`): only the line that fails is refused. Should that fail too,
    it raises; with `answer_failure` (the HTTP API, which answers each line whatever happens) its
    lines are answered, and kept, as refused instead. `refusals`: the request's budget of refused
    lines kept one by one (None: all are)."""
    kind = kind_of(actor, name)
    items = [screened(kind, item) for item in items]
    records = [item for item in items if isinstance(item, Record)]
    refused_before = refusals.refused if refusals is not None else 0
    try:
        try:
            async with in_transaction():
                applied = iter(await kind.upsert(actor, records) if records else [])
                results = [next(applied) if isinstance(item, Record) else _of_entity(item, name) for item in items]
                await actor.record_changes()
                await keep_refusals(actor, source, results, refusals)
                if within is not None:
                    await within(results)
        except Exception as error:
            if isinstance(error, UNAVAILABLE):
                raise
            if not isinstance(error, RecordRefused):
                log.exception("provider records: a batch of %d %s records failed (lines %d–%d); applied again line by line",
                              len(items), name, items[0].line if items else 0, items[-1].line if items else 0)
            actor.changed, actor.announcements = {}, PendingAnnouncements()  # the events of the rolled back batch
            if refusals is not None:
                refusals.refused = refused_before  # its kept refusals were rolled back too
            results = await _line_by_line(actor, kind, items, source, within, refusals)
    except Exception:
        if not answer_failure:
            raise
        log.exception("provider records: a batch of %d %s records failed (lines %d–%d)", len(items), name,
                      items[0].line if items else 0, items[-1].line if items else 0)
        actor.changed, actor.announcements = {}, PendingAnnouncements()  # the events of the rolled back batch
        if refusals is not None:
            refusals.refused = refused_before  # its kept refusals were rolled back too
        results = [
            _of_entity(item, name) if isinstance(item, LineResult)
            else LineResult(item.line, name, item.external_id, Outcome.REFUSED, None, NOT_APPLIED)
            for item in items
        ]
        async with in_transaction():
            await keep_refusals(actor, source, results, refusals)
    if broadcast is not None:
        await announce_committed(actor.announcements, broadcast)
    else:
        actor.announcements.latest.clear()  # the hubs' polling finds the events
    return results


# The store failing rather than a line: no use applying the lines one by one (an import stops, to resume).
UNAVAILABLE = (ConnectionError, OSError, TimeoutError, DBConnectionError)
NOT_STORED = "Not applied: kabinet could not store this line (logged for the provider); the other lines were applied."


async def _line_by_line(
    actor: ProviderActor, kind: EntityKind, items: Sequence[Record | LineResult], source: Source,
    within: Callable[[list[LineResult]], Awaitable[None]] | None, refusals: RefusalBudget | None = None,
) -> list[LineResult]:
    """A batch that failed as a whole, applied one record at a time, each in a savepoint of one
    transaction: a line that fails rolls back alone and is refused — with its field and reason when
    the upsert refused it as a whole (a running balance it would overflow), else NOT_STORED (the
    cause is logged, not answered: it may quote SQL)."""
    results: list[LineResult] = []
    async with in_transaction():
        for item in items:
            if not isinstance(item, Record):
                results.append(_of_entity(item, kind.name))
                continue
            changed = {organization_id: set(areas) for organization_id, areas in actor.changed.items()}
            latest = dict(actor.announcements.latest)
            try:
                async with in_transaction():  # a savepoint
                    [result] = await kind.upsert(actor, [item])
            except Exception as error:
                if isinstance(error, UNAVAILABLE):
                    raise
                actor.changed, actor.announcements.latest = changed, latest
                if isinstance(error, RecordRefused):
                    result = LineResult(item.line, kind.name, item.external_id, Outcome.REFUSED, error.field, error.reason)
                else:
                    log.exception("provider records: %s line %d failed on its own", kind.name, item.line)
                    result = LineResult(item.line, kind.name, item.external_id, Outcome.REFUSED, None, NOT_STORED)
            results.append(result)
        await actor.record_changes()
        await keep_refusals(actor, source, results, refusals)
        if within is not None:
            await within(results)
    return results


def screened(kind: EntityKind, item: Record | LineResult) -> Record | LineResult:
    """The record, or its refusal when a column holds what no column of a store can (`scalar`), or an
    external id longer than its column: no upsert reads such a value, not even to look rows up by it."""
    if not isinstance(item, Record):
        return item
    try:
        for name in kind.columns:
            scalar(item, name)
        if item.values.get("external_id") not in (None, ""):
            external_id_of(item)
    except RecordRefused as refused:
        external_id = item.external_id if refused.field != "external_id" else None
        return LineResult(item.line, kind.name, external_id, Outcome.REFUSED, refused.field, refused.reason)
    return item


def _of_entity(result: LineResult, name: str) -> LineResult:
    result.entity = name
    return result


async def keep_refusals(
    actor: ProviderActor, source: Source, results: Sequence[LineResult], refusals: RefusalBudget | None = None
) -> None:
    """Keep the batch's refused lines, in one statement (a batch can hold hundreds); past the
    request's budget, one row saying so in place of the rest."""
    refused = [result for result in results if result.outcome is Outcome.REFUSED]
    first_past = None
    if refusals is not None:
        refused, first_past = refusals.take(refused)
    if first_past is not None:
        door, answer = ("import run", "import's report") if source.import_run_id else ("request", "answer to the sender")
        refused.append(LineResult(first_past.line, first_past.entity, None, Outcome.REFUSED, None, (
            f"More than {refusals.limit} lines of this {door} were refused: from line {first_past.line} on they are "
            f"not kept here one by one (the {answer} has each, marked kept: false; their count is in the provider's audit)."
        )))
    await insert_rows(RefusedRecord, [
        {
            "actor_kind": actor.kind, "actor": actor.name[:200], "source": source.name[:300],
            "import_run_id": source.import_run_id, "entity": result.entity[:40], "line": result.line,
            "external_id": result.external_id[:100] if result.external_id else None,
            "field": result.field[:100] if result.field else None, "reason": (result.reason or "")[:1000],
        }
        for result in refused
    ])
