"""The one way a state change is written: `async with change(actor, broadcast) as connection:`.

It opens the transaction, lets the change record its events through `actor` (a RequestContext, a
SystemActor or a ProviderActor, whose `announcements` collect them), commits, and only after the
commit announces them through the broker. When the block raises, the transaction rolls back and
nothing is announced. A mutation runs in it too (schema/errors.py `transactional`: a refusal that
keeps its changes leaves the block normally, so they commit and are announced). `announce_committed`
is for the few callers whose change spans several transactions (tests/test_unit_of_work.py lists
them, and holds every `.announce(` to this module).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from tortoise.transactions import in_transaction

from events.log import PendingAnnouncements


@asynccontextmanager
async def change(actor: Any, broadcast: Any, *, connection_name: str | None = None) -> AsyncIterator[Any]:
    """A transaction whose events (`actor.announcements`) are announced once it has committed."""
    announcements: PendingAnnouncements = actor.announcements
    try:
        async with in_transaction(connection_name) as connection:
            yield connection
    except BaseException:
        announcements.latest.clear()  # rolled back: the events never happened
        raise
    await announcements.announce(broadcast)


async def announce_committed(announcements: PendingAnnouncements, broadcast: Any) -> None:
    """Announce events whose transactions the caller committed itself, one or several (the callers
    tests/test_unit_of_work.py lists, each with its reason)."""
    await announcements.announce(broadcast)
