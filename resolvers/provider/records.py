"""Provider records: one upsert per entity, found by the provider's external id, answered per line.

A record is a flat mapping (a JSON object of an NDJSON line, or a CSV row) of one entity. Each
entity module registers an `EntityKind` with `@entity(...)`: the scope a service token needs, its
columns (documented, and a CSV header's order), and `upsert(actor, records)`, which applies a
batch in the caller's transaction and answers one `LineResult` per record, in order. Re-sending a
record changes nothing (UNCHANGED, no event); a refusal names the line, the field and why.

A record with `deleted` true takes its row back (DELETED) as that entity understands it — removed,
withdrawn, recalled, or refused where the entity never goes away; deleting what is absent or
deleted already is UNCHANGED, with no event. Only `external_id` and `deleted` are read then.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from tortoise.exceptions import DBConnectionError
from tortoise.transactions import in_transaction

from models.bulk import insert_rows
from models.organizations import ModerationStatus, Organization
from models.provider import EXTERNAL_ID_LENGTH, RefusedRecord
from events.log import DATA, PendingAnnouncements
from resolvers.common.unit_of_work import announce_committed

log = logging.getLogger("kabinet.provider")


class Outcome(str, Enum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    DELETED = "deleted"
    REFUSED = "refused"


@dataclass
class LineResult:
    line: int
    entity: str
    external_id: str | None
    outcome: Outcome
    field: str | None = None  # the record's field at fault (REFUSED)
    reason: str | None = None
    kept: bool = True  # a REFUSED line past its request's RefusalBudget is answered, not kept for the staff desk

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"line": self.line, "entity": self.entity, "externalId": self.external_id, "result": self.outcome.value}
        if self.outcome is Outcome.REFUSED:
            out.update(field=self.field, reason=self.reason)
            if not self.kept:
                out["kept"] = False
        return out


class RecordRefused(Exception):
    """A record that cannot be applied: its `field` and the reason, for the sender to correct."""

    def __init__(self, field: str | None, reason: str):
        super().__init__(reason)
        self.field = field
        self.reason = reason


@dataclass
class Record:
    line: int  # 1-based line (NDJSON) or data row (CSV, the header not counted) of the source
    values: Mapping[str, Any]

    @property
    def external_id(self) -> str | None:
        value = self.values.get("external_id")
        return str(value).strip() if value not in (None, "") else None


# JSON punctuation (`,` `:` `{` `[`, inside strings too) a line may hold to be read at all: far above a real
# record (a flat object of a few dozen fields, texts of at most a few hundred characters, a PDF in base64 has
# none), and what bounds the memory parsing one line takes (nested arrays cost ~30 times their bytes).
RECORD_PUNCTUATION = 2_000


def punctuation(raw: bytes | str) -> int:
    if isinstance(raw, str):
        return raw.count(",") + raw.count(":") + raw.count("{") + raw.count("[")
    return raw.count(b",") + raw.count(b":") + raw.count(b"{") + raw.count(b"[")


def record_of_line(line: int, raw: bytes | str) -> Mapping[str, Any] | LineResult:
    """The values of one NDJSON line (the API's body or an imported file), or its refusal: not JSON,
    not in UTF-8, not an object, or more punctuation than any record has (refused unread)."""
    if punctuation(raw) > RECORD_PUNCTUATION:
        return LineResult(line, "", None, Outcome.REFUSED, None, (
            f"Not read: more than {RECORD_PUNCTUATION} commas, colons and brackets, which no record has "
            "(a record is one flat JSON object)."))
    try:
        values = orjson.loads(raw)  # a number's float prints back as written (1234.56): decimal() reads str(value)
    except orjson.JSONDecodeError as error:
        reason = f"Not valid JSON: {error}." if _is_utf8(raw) else "Not UTF-8 (windows-1251?): send the text in UTF-8."
        return LineResult(line, "", None, Outcome.REFUSED, None, reason)
    if not isinstance(values, dict):
        return LineResult(line, "", None, Outcome.REFUSED, None, "Not a JSON object: each line is one record, {\"external_id\": …, …}.")
    return binary_refused(line, values) or values


def binary_refused(line: int, values: Mapping[str, Any]) -> LineResult | None:
    """A record holding a NUL character (binary data, not text), refused naming its field: no text
    column holds one (PostgreSQL refuses it outright, and with it the whole batch)."""
    for name, value in values.items():
        if "\x00" in name or (isinstance(value, str) and "\x00" in value):
            return LineResult(line, "", None, Outcome.REFUSED, name.replace("\x00", "") or None,
                              "A NUL character: binary data, not text.")
    return None


def _is_utf8(raw: bytes | str) -> bool:
    if isinstance(raw, str):
        return True
    try:
        raw.decode()
    except UnicodeDecodeError:
        return False
    return True


DEFAULT_PROVIDER_TIMEZONE = "Europe/Moscow"


@dataclass
class ProviderActor:
    """Who writes provider data: a service account (by its token), a staff member, or the CLI run by
    the provider's operator. Events its writes record are announced after the batch commits."""

    kind: str  # SERVICE, STAFF, CLI
    name: str
    scopes: frozenset[str]
    timezone: str = DEFAULT_PROVIDER_TIMEZONE  # where a 1C date-time without an offset was written (settings)
    announcements: PendingAnnouncements = field(default_factory=PendingAnnouncements)
    viewer: None = None
    client_address: str | None = None
    changed: dict[uuid.UUID, set[str]] = field(default_factory=dict)  # organization → areas, this batch

    def may(self, scope: str) -> bool:
        return scope in self.scopes

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def touched(self, organization_id: uuid.UUID, area: Area | str) -> None:
        """Note that this batch changed the organization's `area`: one event per organization and
        batch says so, however many records it held."""
        self.changed.setdefault(organization_id, set()).add(Area(area).value)

    async def record_changes(self) -> None:
        """The batch's DATA events, one per organization it changed, in two statements for them all."""
        changed, self.changed = self.changed, {}
        await self.announcements.record_many(
            {organization_id: (DATA, "CHANGED", {"areas": sorted(areas)}) for organization_id, areas in changed.items()}
        )

    async def record_event(self, organization_id: uuid.UUID, topic: str, kind: str, payload: dict[str, Any]) -> int:
        return await self.announcements.record(organization_id, topic, kind, payload)


class Area(str, Enum):
    """What a change of the provider's data touched, as the DATA event names it: a dashboard re-reads
    just those parts of the organization (`organizationData` subscription)."""

    ORGANIZATION = "organization"  # name, requisites
    PRODUCTS = "products"  # products and contracts
    BALANCE = "balance"  # ledger entries, prepaid services
    CHARGES = "charges"
    DOCUMENTS = "documents"
    CLOUD = "cloud"  # the cloud subscription, databases
    RELEASES = "releases"  # a new release of a configuration its databases run: their update plans


AREAS = tuple(area.value for area in Area)

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
            results.append(LineResult(record.line, name, record.external_id, Outcome.REFUSED, refused.field, refused.reason))
    return results


async def save_changes(row: Any, values: Mapping[str, Any]) -> Outcome:
    """Set `values` on an existing row; UPDATED when any differed (and saved), else UNCHANGED."""
    changed = [name for name, value in values.items() if getattr(row, name) != value]
    if not changed:
        return Outcome.UNCHANGED
    for name in changed:
        setattr(row, name, values[name])
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


# ---------------------------------------------------------------- reading fields of a record
#
# Every field is read by one of these readers, and what they accept is what the stores hold and every
# GraphQL path reads back: a text within its column's length, without a character no store keeps; a
# number within its column's digits or range (and a GraphQL Int's); a date or moment between EARLIEST
# and LATEST once in UTC. The column's limits are read from the model (`of=`) where the field is one.

EARLIEST = dt.date(1900, 1, 1)  # the dates kabinet keeps: far from what Python, SQLite and PostgreSQL
LATEST = dt.date(2999, 12, 31)  # hold after a zone's shift or a month's arithmetic
EMPTY_1C_DATE = dt.datetime(1, 1, 1)  # `01.01.0001 0:00:00`: how 1C writes an empty date — no date at all
GRAPHQL_INT = (-(2**31), 2**31 - 1)  # what GraphQL's Int shows (and PostgreSQL's integer holds)
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")  # NUL (PostgreSQL's text refuses it), unpaired surrogates (no UTF-8)


def column(model: type, attribute: str) -> Any:
    """The model's field `attribute` (its limits: max_length, max_digits, decimal_places, constraints)."""
    return model._meta.fields_map[attribute]


def scalar(record: Record, name: str) -> Any:
    """The field's raw value, if it is one a store could keep at all: a text, a number or a flag — not a
    list or an object, nor a text with NUL or an unpaired surrogate. `apply` checks every column of a
    record so, before the entity's upsert reads anything of it."""
    value = record.values.get(name)
    if isinstance(value, (list, dict)):
        raise RecordRefused(name, f"A single value, not {'a list' if isinstance(value, list) else 'an object'}.")
    if isinstance(value, str) and _UNSTORABLE.search(value):
        raise RecordRefused(name, "Holds a character no text may hold (NUL, or half of a UTF-16 surrogate pair).")
    return value


def text(
    record: Record, name: str, *, required: bool = True, max_length: int | None = None, of: type | None = None,
) -> str | None:
    """A text (a number is taken as written), trimmed; at most `max_length` characters, or the model `of`'s
    column's (the field's own name), or 500."""
    value = scalar(record, name)
    if isinstance(value, bool):
        raise RecordRefused(name, "A text, not true or false.")
    if value is None or str(value).strip() == "":
        if required:
            raise RecordRefused(name, "Required.")
        return None
    value = str(value).strip()
    limit = max_length or (column(of, name).max_length if of is not None else 500)
    if len(value) > limit:
        raise RecordRefused(name, f"At most {limit} characters.")
    return value


def external_id_of(record: Record) -> str:
    """The record's `external_id`: required, and at most as long as the column every entity keeps it in."""
    text(record, "external_id", max_length=EXTERNAL_ID_LENGTH)
    if record.external_id is None:
        raise RecordRefused("external_id", "Every record needs the provider's own id (external_id).")
    return record.external_id


def within_digits(value: Decimal, name: str, max_digits: int, places: int, what: str = "") -> Decimal:
    """`value` if a column of `max_digits` digits, `places` of them decimal, holds it; else refused on `name`."""
    bound = Decimal(10) ** (max_digits - places)
    if not -bound < value < bound:
        raise RecordRefused(name, f"{what or 'A number'} must be under {bound:,} in absolute value, not {value}.".replace(",", " "))
    return value


def decimal(
    record: Record, name: str, *, required: bool = True, places: int = 2, max_digits: int = 14, of: type | None = None,
) -> Decimal | None:
    """A number with at most `places` decimal places and `max_digits` digits in all (the model `of`'s column's,
    by default money's: 14 and 2); a decimal comma and spaces between thousands are read as 1C writes them."""
    raw = text(record, name, required=required, max_length=40)
    if raw is None:
        return None
    if of is not None:
        max_digits, places = column(of, name).max_digits, column(of, name).decimal_places
    try:
        value = Decimal(raw.replace(",", ".").replace(" ", "").replace("\u00a0", ""))
    except InvalidOperation:
        raise RecordRefused(name, f"Not a number: {raw!r}.") from None
    if not value.is_finite():
        raise RecordRefused(name, f"Not a number: {raw!r}.")
    within_digits(value, name, max_digits, places)
    if value != value.quantize(Decimal(1).scaleb(-places)):
        raise RecordRefused(name, f"A number with at most {places} decimal places.")
    return value


def integer(
    record: Record, name: str, *, required: bool = True, minimum: int = 0, maximum: int | None = None,
    of: type | None = None,
) -> int | None:
    """A whole number from `minimum` to `maximum`, and within the model `of`'s column's range and a GraphQL Int's."""
    raw = text(record, name, required=required, max_length=20)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise RecordRefused(name, f"Not a whole number: {raw!r}.") from None
    constraints = column(of, name).constraints if of is not None else {}
    low = max(minimum, constraints.get("ge", GRAPHQL_INT[0]), GRAPHQL_INT[0])
    high = min(maximum if maximum is not None else GRAPHQL_INT[1], constraints.get("le", GRAPHQL_INT[1]), GRAPHQL_INT[1])
    if value < low:
        raise RecordRefused(name, f"At least {low}.")
    if value > high:
        raise RecordRefused(name, f"At most {high}.")
    return value


_RUSSIAN_DATE = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})$")
# 1C's own spelling of a date-time, `ДД.ММ.ГГГГ ЧЧ:ММ:СС` (the hour may have one digit: `1.02.2026 9:05:00`)
_RUSSIAN_DATE_TIME = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})[ T](\d{1,2}):(\d{2})(?::(\d{2}))?$")
_DATE_FORMS = "YYYY-MM-DD or DD.MM.YYYY"
_MOMENT_FORMS = "DD.MM.YYYY HH:MM:SS, ISO YYYY-MM-DDTHH:MM:SS with or without an offset, or a date"
_KEPT = f"kabinet keeps dates from {EARLIEST:%d.%m.%Y} to {LATEST:%d.%m.%Y}"


def _calendar(raw: str) -> dt.date | dt.datetime | None:
    """A date (`2026-11-30`, `30.11.2026`) or a naive or aware date-time (ISO, or 1C's
    `30.11.2026 14:05:00`), as written; None when it is neither (or no such day)."""
    try:
        if russian := _RUSSIAN_DATE.match(raw):
            return dt.date(int(russian[3]), int(russian[2]), int(russian[1]))
        if russian := _RUSSIAN_DATE_TIME.match(raw):
            day, month, year, hour, minute, second = (int(part or 0) for part in russian.groups())
            return dt.datetime(year, month, day, hour, minute, second)
        if len(raw) == 10:
            return dt.date.fromisoformat(raw)
        return dt.datetime.fromisoformat(raw.replace("Z", "+00:00")) if raw[4:5] == "-" else None
    except ValueError:
        return None


def _written(record: Record, name: str, required: bool) -> tuple[str, dt.date | dt.datetime | None] | None:
    """The field as written and as read by `_calendar`; None when absent, or 1C's empty date
    (`01.01.0001`, `01.01.0001 0:00:00`, `0001-01-01`): no date, refused where one is required."""
    raw = text(record, name, required=required, max_length=40)
    if raw is None:
        return None
    value = _calendar(raw)
    if value is not None and not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day) if value == EMPTY_1C_DATE.date() else value
    if value == EMPTY_1C_DATE:  # naive: an ISO one with an offset is a moment, out of range below
        if required:
            raise RecordRefused(name, f"Required: {raw} is 1C's empty date.")
        return None
    return raw, value


def date(record: Record, name: str, *, required: bool = True) -> dt.date | None:
    """ISO `2026-11-30`, or `30.11.2026` as 1C writes it; a date-time at midnight (1C exports a date
    as `30.11.2026 0:00:00`) is its date, one at any other time is refused. 1C's empty date is none."""
    written = _written(record, name, required)
    if written is None:
        return None
    raw, value = written
    if isinstance(value, dt.datetime):
        if value.time() != dt.time(0):
            raise RecordRefused(name, f"A date, not a moment of the day ({_DATE_FORMS}; a time only as 00:00:00): {raw!r}.")
        value = value.date()
    if value is None:
        raise RecordRefused(name, f"Not a date ({_DATE_FORMS}): {raw!r}.")
    if not EARLIEST <= value <= LATEST:
        raise RecordRefused(name, f"{raw} is out of range: {_KEPT}.")
    return value


def moment(record: Record, name: str, zone: dt.tzinfo, *, required: bool = True) -> dt.datetime | None:
    """A date-time, answered in UTC. With an offset (ISO `…+03:00`, `…Z`) as it says. Without one: 1C's
    `30.11.2026 14:05:00` is the provider's local time (`zone`, settings.provider_timezone), an ISO
    one UTC (as this API has always read it: re-sent records stay unchanged). A bare date: its
    midnight, UTC. 1C's empty date is none."""
    written = _written(record, name, required)
    if written is None:
        return None
    raw, value = written
    if value is None:
        raise RecordRefused(name, f"Not a date-time ({_MOMENT_FORMS}): {raw!r}.")
    if not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day, tzinfo=dt.timezone.utc)
    elif value.tzinfo is None:
        value = value.replace(tzinfo=zone if _RUSSIAN_DATE_TIME.match(raw) else dt.timezone.utc)
    try:
        value = value.astimezone(dt.timezone.utc)
    except (OverflowError, ValueError):  # year 1 at +14:00 is year 0 in UTC, 9999 at -12:00 year 10000
        raise RecordRefused(name, f"{raw} is out of range: {_KEPT} (UTC).") from None
    if not EARLIEST <= value.date() <= LATEST:
        raise RecordRefused(name, f"{raw} is out of range: {_KEPT} (UTC).")
    return value


def choice(record: Record, name: str, enum: type[Enum], *, required: bool = True) -> Any:
    raw = text(record, name, required=required, max_length=40)
    if raw is None:
        return None
    try:
        return enum(raw.upper())
    except ValueError:
        raise RecordRefused(name, f"One of {', '.join(e.value for e in enum)}.") from None


def flag(record: Record, name: str, *, default: bool = False) -> bool:
    raw = scalar(record, name)
    if raw is None or raw == "":
        return default
    if isinstance(raw, bool):
        return raw
    lowered = str(raw).strip().lower()
    if lowered in {"true", "1", "yes", "да", "истина"}:
        return True
    if lowered in {"false", "0", "no", "нет", "ложь"}:
        return False
    raise RecordRefused(name, "true or false.")


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
