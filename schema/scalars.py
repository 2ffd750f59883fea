"""Wire formats of the contract: DateTime with an offset (UTC out), Date, Decimal as a string."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation

import strawberry
from graphql import GraphQLError


def _serialize_datetime(value: dt.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


MAX_LITERAL_CHARS = 64  # longer than any date, time or amount: quoted back in a refusal, at most this much
# A DateTime in UTC lies a day inside what Python holds, so that a day's arithmetic never overflows.
EARLIEST = dt.datetime.min.replace(tzinfo=dt.timezone.utc) + dt.timedelta(days=1)
LATEST = dt.datetime.max.replace(tzinfo=dt.timezone.utc) - dt.timedelta(days=1)
DECIMAL_DIGITS, DECIMAL_EXPONENT = 40, 40  # far beyond any amount; beyond them a number is refused


def _quoted(value: object) -> str:
    text = repr(value)
    return text if len(text) <= MAX_LITERAL_CHARS else text[:MAX_LITERAL_CHARS] + "…"


def _parse_datetime(value: object) -> dt.datetime:
    if not isinstance(value, str):
        raise GraphQLError("DateTime must be an ISO 8601 string with an offset.")
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    except ValueError:
        raise GraphQLError(f"{_quoted(value)} is not an ISO 8601 date and time.") from None
    if parsed.tzinfo is None:
        raise GraphQLError(f"{_quoted(value)} has no offset: give one, e.g. 2026-01-31T09:00:00+03:00.")
    try:
        in_utc = parsed.astimezone(dt.timezone.utc)
    except (OverflowError, ValueError):
        in_utc = None
    if in_utc is None or not EARLIEST <= in_utc <= LATEST:
        raise GraphQLError(f"{_quoted(value)} is out of range: a DateTime lies between years 1 and 9999 in UTC.")
    return in_utc


def _parse_decimal(value: object) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise GraphQLError('Decimal must be a number or a string, e.g. "1234.50".')
    text = str(value)
    try:
        parsed = Decimal(text) if len(text) <= 2 * DECIMAL_DIGITS else None
    except InvalidOperation:
        raise GraphQLError(f"{_quoted(value)} is not a decimal number.") from None
    if parsed is not None and not parsed.is_finite():
        raise GraphQLError("A decimal number must be finite.")
    if parsed is None or len(parsed.as_tuple().digits) > DECIMAL_DIGITS or abs(parsed.adjusted()) > DECIMAL_EXPONENT:
        raise GraphQLError(f"{_quoted(value)} is out of range for a decimal number.")
    return parsed


def _parse_date(value: object) -> dt.date:
    if not isinstance(value, str):
        raise GraphQLError("Date must be a YYYY-MM-DD string.")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise GraphQLError(f"{_quoted(value)} is not a date (YYYY-MM-DD).") from None


DateTimeScalar = strawberry.scalar(
    name="DateTime",
    description="ISO 8601 date and time with an offset; always UTC on output. A value without an offset is refused.",
    serialize=_serialize_datetime,
    parse_value=_parse_datetime,
)
DateScalar = strawberry.scalar(
    name="Date",
    description="A calendar date, YYYY-MM-DD.",
    serialize=lambda value: value.isoformat(),
    parse_value=_parse_date,
)
DecimalScalar = strawberry.scalar(
    name="Decimal",
    description='An exact decimal number as a string, e.g. "1234.50".',
    serialize=str,
    parse_value=_parse_decimal,
)

SCALAR_OVERRIDES = {dt.datetime: DateTimeScalar, dt.date: DateScalar, Decimal: DecimalScalar}
