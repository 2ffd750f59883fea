"""Wrong-password limits, per login and per client address, counted atomically.

A password check must first claim an attempt with one conditional UPDATE (`failures < max AND not
locked`); only a claimed attempt is checked. Concurrent requests cannot all read "4 failures" and
all go on: PostgreSQL re-checks the condition on the row the UPDATE waited for, SQLite runs one
statement at a time. So of 20 concurrent wrong passwords for one login, 5 are checked and the
rest answer RATE_LIMITED. These statements run outside any transaction (each commits at once),
and no transaction is open while the password is hashed.

Per login: 5 wrong passwords in a row lock it for 10 minutes (the right one resets the count).
Per client address: `login_address_max_failures` wrong passwords in a window of
`login_address_window_minutes`, whatever the logins (a right password gives its attempt back).
Unknown logins count exactly like known ones.

A row that says nothing (no failure, no lock in force; a window ended) may be deleted at any moment
(resolvers/common/housekeeping.py, a password reset): a claim whose row vanished between its statements
creates it again rather than answer RATE_LIMITED.
"""

from __future__ import annotations

from datetime import timedelta

from tortoise.expressions import F, Q

from foundation.clock import utcnow
from foundation.settings import Settings
from models.identity import ClientThrottle, LoginThrottle

RECREATE_TRIES = 3  # a row deleted under a claim this many times in a row: refused, as if locked


async def claim_login(settings: Settings, login: str) -> bool:
    """Take one of the login's attempts; False while it is locked or its attempts are taken."""
    now = utcnow()
    for _ in range(RECREATE_TRIES):
        await LoginThrottle.get_or_create(login=login)
        claimed = await LoginThrottle.filter(
            Q(locked_until=None) | Q(locked_until__lte=now), login=login, failures__lt=settings.login_max_failures
        ).update(failures=F("failures") + 1)
        if claimed or await LoginThrottle.exists(login=login):
            return claimed == 1
    return False


async def login_failed(settings: Settings, login: str) -> None:
    """The claimed attempt was wrong: at the limit, lock the login (and start counting anew after)."""
    await LoginThrottle.filter(login=login, failures__gte=settings.login_max_failures).update(
        failures=0, locked_until=utcnow() + timedelta(minutes=settings.login_lock_minutes)
    )


async def login_succeeded(login: str) -> None:
    await LoginThrottle.filter(login=login).update(failures=0)


async def claim_address(settings: Settings, address: str | None) -> bool:
    """Take one of the client address's attempts of this window; False when they are used up."""
    if not address:
        return True
    now = utcnow()
    address = address[:64]
    for _ in range(RECREATE_TRIES):
        await ClientThrottle.get_or_create(address=address)
        await ClientThrottle.filter(Q(window_ends=None) | Q(window_ends__lte=now), address=address).update(
            failures=0, window_ends=now + timedelta(minutes=settings.login_address_window_minutes)
        )
        claimed = await ClientThrottle.filter(
            address=address, failures__lt=settings.login_address_max_failures
        ).update(failures=F("failures") + 1)
        if claimed or await ClientThrottle.exists(address=address):
            return claimed == 1
    return False


async def give_back_address(address: str | None) -> None:
    """An attempt that was not a wrong password does not count against the address."""
    if address:
        await ClientThrottle.filter(address=address[:64], failures__gt=0).update(failures=F("failures") - 1)
