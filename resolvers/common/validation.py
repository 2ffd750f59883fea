"""Input checks with messages a person understands; each failure is INVALID on its field."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import available_timezones

from resolvers.common.errors import ErrorCode, UserFacingError

# no control character (a NUL is no address, and PostgreSQL refuses it in a text)
EMAIL_PATTERN = re.compile(r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+$")
PHONE_PATTERN = re.compile(r"^\+7\d{10}$")
TIME_PATTERN = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_INN10_WEIGHTS = (2, 4, 10, 3, 5, 9, 4, 6, 8)
_INN12_WEIGHTS_11 = (7, 2, 4, 10, 3, 5, 9, 4, 6, 8)
_INN12_WEIGHTS_12 = (3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8)
_ZONES = frozenset(available_timezones())
KPP_PATTERN = re.compile(r"^\d{4}[\dA-Z]{2}\d{3}$")  # tax office (4), reason (2: digits or A–Z), number (3)
_ACCOUNT_WEIGHTS = (7, 1, 3) * 8  # the Bank of Russia's control key: 3 digits of the BIC and the 20 of the account


def invalid(field: str | None, message: str) -> UserFacingError:
    return UserFacingError(ErrorCode.INVALID, message, field)


def email(value: str, field: str | None) -> str:
    value = value.strip().lower()
    if len(value) > 254:
        raise invalid(field, "An e-mail address has at most 254 characters.")  # not echoed: the answer stays small
    if not EMAIL_PATTERN.match(value):
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


def ogrn_is_valid(ogrn: str) -> bool:
    """OGRN (13 digits) and OGRNIP (15): the last digit is the rest of the number mod 11 (13) mod 10."""
    if not (ogrn.isdigit() and len(ogrn) in (13, 15)):
        return False
    body, check = int(ogrn[:-1]), int(ogrn[-1])
    return (body % (11 if len(ogrn) == 13 else 13)) % 10 == check


def ogrn(value: str, field: str | None, *, sole_proprietor: bool) -> str:
    """A legal entity's OGRN (13 digits) or a sole proprietor's OGRNIP (15), check digit right."""
    value = value.strip()
    digits = 15 if sole_proprietor else 13
    if not (value.isdigit() and len(value) == digits):
        raise invalid(field, f"{'An OGRNIP' if sole_proprietor else 'An OGRN'} has {digits} digits.")
    if not ogrn_is_valid(value):
        raise invalid(field, f"«{value}» is not a valid {'OGRNIP' if sole_proprietor else 'OGRN'}: check the digits.")
    return value


def kpp(value: str, field: str | None) -> str:
    """9 characters: the tax office's 4 digits, the reason's 2 (digits or capital Latin letters), 3 digits."""
    value = value.strip()
    if not KPP_PATTERN.match(value):
        raise invalid(field, f"«{value}» is not a KPP: 4 digits, 2 digits or capital Latin letters, 3 digits.")
    return value


def bic(value: str, field: str | None) -> str:
    """A Russian bank's BIC: 9 digits, beginning with 04 (the country's code; the Treasury's 01–03
    BICs hold no company's account)."""
    value = value.strip()
    if not (value.isdigit() and len(value) == 9 and value.startswith("04")):
        raise invalid(field, f"«{value}» is not a bank's BIC: 9 digits beginning with 04.")
    return value


def account_key_is_valid(account: str, bic_digits: str, *, correspondent: bool) -> bool:
    """The Bank of Russia's control key of a 20-digit account: the 3 digits that stand before it
    (a correspondent account: 0 and the BIC's 5th and 6th digits; an account in a bank: the BIC's last
    three, or 0 and the 5th and 6th when those are 000–002, an account at a Bank of Russia office)
    and the account, weighted 7 1 3…, sum to a multiple of 10."""
    if not (account.isdigit() and len(account) == 20 and bic_digits.isdigit() and len(bic_digits) == 9):
        return False
    at_the_bank_of_russia = bic_digits[6:] in ("000", "001", "002")
    prefix = "0" + bic_digits[4:6] if correspondent or at_the_bank_of_russia else bic_digits[6:]
    return sum(int(d) * w % 10 for d, w in zip(prefix + account, _ACCOUNT_WEIGHTS)) % 10 == 0


def bank_account(value: str, field: str | None, bic_digits: str, *, correspondent: bool) -> str:
    """A settlement (or correspondent) account of 20 digits whose control key agrees with the bank's BIC."""
    value = re.sub(r"\s", "", value)
    what = "A correspondent account" if correspondent else "An account"
    if not (value.isdigit() and len(value) == 20):
        raise invalid(field, f"{what} has 20 digits.")
    if correspondent and not value.startswith("301"):
        raise invalid(field, "A correspondent account begins with 301.")
    if correspondent and value[-3:] != bic_digits[-3:]:
        raise invalid(field, f"The correspondent account ends with the BIC's last three digits ({bic_digits[-3:]}).")
    if not account_key_is_valid(value, bic_digits, correspondent=correspondent):
        raise invalid(field, f"«{value}» does not match the BIC {bic_digits}: check the account and the BIC.")
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


def optional_text(value: str | None, field: str | None, what: str, max_length: int) -> str:
    """Free text that may be left out ("" then): no NUL (PostgreSQL refuses it), at most `max_length`."""
    value = (value or "").strip()
    if "\x00" in value:
        raise invalid(field, f"{what} contains a NUL character.")
    if len(value) > max_length:
        raise invalid(field, f"{what} is at most {max_length} characters.")
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
