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


def _parse_datetime(value: object) -> dt.datetime:
    if not isinstance(value, str):
        raise GraphQLError("DateTime must be an ISO 8601 string with an offset.")
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    except ValueError:
        raise GraphQLError(f"{value!r} is not an ISO 8601 date and time.") from None
    if parsed.tzinfo is None:
        raise GraphQLError(f"{value!r} has no offset: give one, e.g. 2026-01-31T09:00:00+03:00.")
    return parsed.astimezone(dt.timezone.utc)


def _parse_decimal(value: object) -> Decimal:
    try:
        parsed = Decimal(str(value))
    except InvalidOperation:
        raise GraphQLError(f"{value!r} is not a decimal number.") from None
    if not parsed.is_finite():
        raise GraphQLError("A decimal number must be finite.")
    return parsed


def _parse_date(value: object) -> dt.date:
    if not isinstance(value, str):
        raise GraphQLError("Date must be a YYYY-MM-DD string.")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise GraphQLError(f"{value!r} is not a date (YYYY-MM-DD).") from None


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
