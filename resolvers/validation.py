"""Input checks with messages a person understands; each failure is INVALID on its field."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import available_timezones

from resolvers.errors import ErrorCode, UserFacingError

EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
PHONE_PATTERN = re.compile(r"^\+7\d{10}$")
TIME_PATTERN = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_INN10_WEIGHTS = (2, 4, 10, 3, 5, 9, 4, 6, 8)
_INN12_WEIGHTS_11 = (7, 2, 4, 10, 3, 5, 9, 4, 6, 8)
_INN12_WEIGHTS_12 = (3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8)
_ZONES = frozenset(available_timezones())


def invalid(field: str | None, message: str) -> UserFacingError:
    return UserFacingError(ErrorCode.INVALID, message, field)


def email(value: str, field: str | None) -> str:
    value = value.strip().lower()
    if len(value) > 254 or not EMAIL_PATTERN.match(value):
        raise invalid(field, f"«{value}» is not an e-mail address.")
    return value


def phone(value: str, field: str | None) -> str:
    """+7XXXXXXXXXX; spaces, dashes, brackets and a leading 8 are forgiven."""
    digits = re.sub(r"[\s\-()]", "", value)
    if re.fullmatch(r"8\d{10}", digits):
        digits = "+7" + digits[1:]
    if not PHONE_PATTERN.match(digits):
        raise invalid(field, "A phone number is +7 and 10 digits, e.g. +79161234567.")
    return digits


def _check_digit(digits: str, weights: tuple[int, ...]) -> int:
    return sum(int(d) * w for d, w in zip(digits, weights)) % 11 % 10


def inn_is_valid(inn: str) -> bool:
    if not inn.isdigit():
        return False
    if len(inn) == 10:
        return _check_digit(inn, _INN10_WEIGHTS) == int(inn[9])
    if len(inn) == 12:
        return _check_digit(inn, _INN12_WEIGHTS_11) == int(inn[10]) and _check_digit(inn, _INN12_WEIGHTS_12) == int(inn[11])
    return False


def inn(value: str, field: str | None, *, legal_entity: bool | None = None) -> str:
    """10 digits for a legal entity, 12 for a sole proprietor or individual, check digits right."""
    value = value.strip()
    if legal_entity is True and len(value) != 10:
        raise invalid(field, "A legal entity's INN has 10 digits.")
    if legal_entity is False and len(value) != 12:
        raise invalid(field, "A sole proprietor's or individual's INN has 12 digits.")
    if not inn_is_valid(value):
        raise invalid(field, f"«{value}» is not a valid INN: check the digits.")
    return value


def time_of_day(value: str, field: str | None) -> str:
    if not TIME_PATTERN.match(value):
        raise invalid(field, "Time of day is HH:MM, from 00:00 to 23:59.")
    return value


def timezone(value: str, field: str | None) -> str:
    if value not in _ZONES:
        raise invalid(field, f"«{value}» is not an IANA time zone (e.g. Europe/Moscow).")
    return value


def future(value: dt.datetime, field: str | None, now: dt.datetime) -> dt.datetime:
    if value <= now:
        raise invalid(field, "This moment has passed: choose one in the future.")
    return value


def password(value: str, field: str | None) -> str:
    if len(value) < 8:
        raise invalid(field, "A password has at least 8 characters.")
    if len(value) > 200:
        raise invalid(field, "A password has at most 200 characters.")
    return value


def non_empty(value: str | None, field: str | None, what: str, max_length: int = 200) -> str:
    value = (value or "").strip()
    if not value:
        raise invalid(field, f"{what} is required.")
    if "\x00" in value:  # no text column takes it (PostgreSQL refuses it outright)
        raise invalid(field, f"{what} contains a NUL character.")
    if len(value) > max_length:
        raise invalid(field, f"{what} is at most {max_length} characters.")
    return value
