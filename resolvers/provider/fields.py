"""Reading the fields of a record: every field is read by one of these readers.

What they accept is what the stores hold and every GraphQL path reads back: a text within its
column's length, without a character no store keeps; a number within its column's digits or range
(and a GraphQL Int's); a date or moment between EARLIEST and LATEST once in UTC. The column's limits
are read from the model (`of=`) where the field is one.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any

from models.provider import EXTERNAL_ID_LENGTH
from resolvers.provider.lines import Record, RecordRefused

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



def within_column(value: Decimal, model: type, attribute: str, what: str, field: str = "amount") -> Decimal:
    """A sum kabinet works out (a charge's amount, a running balance, a package's use) within its
    column: refused on the record's `field` when it is not."""
    limits = column(model, attribute)
    return within_digits(value, field, limits.max_digits, limits.decimal_places, what)

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


def reference(record: Record, name: str) -> str | None:
    """The external id by which the record names another record in `name`, as written; None when absent."""
    value = record.values.get(name)
    return None if value in (None, "") else str(value).strip()
