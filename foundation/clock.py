"""The one reading of "now" (UTC): every rule that depends on the time asks here, so a test can move
time for all of them at once (`frozen_at`, `advanced`) instead of patching each module.

The wall clock is read nowhere else in application code (tests/test_layers.py holds that). Moving
time is process-wide — the app under a live server sees it too — and undone when the block ends.
Elapsed-time measurements (`time.monotonic()`: timeouts, durations) are not "now" and stay as they are.

A test that needs a signed-in caller on both sides of a moment moves the clock back, not ahead:
PyJWT refuses a token whose `iat` lies ahead of the real time, so one issued while the clock runs
ahead is refused once the block ends (a token's expiry, though, is judged by this clock).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

_frozen: dt.datetime | None = None
_offset = dt.timedelta(0)


def utcnow() -> dt.datetime:
    """The current moment, timezone-aware (UTC)."""
    if _frozen is not None:
        return _frozen
    return dt.datetime.now(dt.timezone.utc) + _offset


def today() -> dt.date:
    """Today's date in UTC (documents, contracts and charges count days in UTC)."""
    return utcnow().date()


def timestamp() -> float:
    """Now as a Unix time (signed links, the in-memory list of ended sign-ins)."""
    return utcnow().timestamp()


@contextmanager
def frozen_at(moment: dt.datetime) -> Iterator[dt.datetime]:
    """Time stands still at `moment` (a naive one is taken as UTC) until the block ends."""
    global _frozen
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    before = _frozen
    _frozen = moment
    try:
        yield moment
    finally:
        _frozen = before


@contextmanager
def advanced(by: dt.timedelta) -> Iterator[None]:
    """Time runs `by` ahead (a frozen time moves too) until the block ends."""
    global _frozen, _offset
    before = _frozen, _offset
    _offset += by
    if _frozen is not None:
        _frozen += by
    try:
        yield
    finally:
        _frozen, _offset = before
