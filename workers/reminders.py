"""The reminders loop: every hour (and at start), contracts ending and balances running out get their
30/7/1-day reminders (resolvers/common/reminders.py `remind_contracts`, `remind_balances`).

Safe in several worker processes at once: what was sent is remembered in rows unique per threshold,
so a second process's pass finds them (or its insert fails and its transaction, letters included,
rolls back)."""

from __future__ import annotations

import asyncio
import logging

from broadcaster import Broadcast

from foundation.clock import today, utcnow
from resolvers.common import reminders
from resolvers.common.context import SystemActor
from resolvers.common.unit_of_work import change
from workers.loop import every

log = logging.getLogger("kabinet.reminders")

REMINDERS_CHECK_SECONDS = 3600.0


async def reminders_pass(broadcast: Broadcast) -> dict[str, int]:
    """One pass of each kind, each in its own transaction: {kind: letters queued}."""
    actor = SystemActor("reminders worker")
    counts = {}
    for kind, remind in (
        ("contracts", lambda: reminders.remind_contracts(actor, today())),
        ("balances", lambda: reminders.remind_balances(actor, utcnow())),
    ):
        try:
            async with change(actor, broadcast):
                counts[kind] = await remind()
        except Exception:  # noqa: BLE001 — a worker loop outlives one bad pass; the next pass tries again
            log.exception("reminders of %s failed", kind)
    if any(counts.values()):
        log.info("reminders queued: %s", ", ".join(f"{n} {kind}" for kind, n in counts.items() if n))
    return counts


async def run_reminders(broadcast: Broadcast, stop: asyncio.Event) -> None:
    """Every hour (and at start), until `stop`."""
    await every(REMINDERS_CHECK_SECONDS, lambda: reminders_pass(broadcast), stop, log=log, failed="reminders pass failed")
