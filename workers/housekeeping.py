"""The retention loop: every hour (and at start), one pass of resolvers/housekeeping.py.

Safe in several worker processes at once: a pass only deletes rows that are dead, each batch
re-checking its condition, so two passes side by side delete each row once between them.
"""

from __future__ import annotations

import asyncio
import logging

from kabinet.settings import Settings
from resolvers.housekeeping import PRUNERS

log = logging.getLogger("kabinet.housekeeping")

HOUSEKEEPING_CHECK_SECONDS = 3600.0


async def housekeeping_pass(settings: Settings) -> dict[str, int]:
    """Every kind in turn, a failing one logged and the others still pruned: {kind: rows deleted}."""
    counts = {}
    for kind, prune in PRUNERS.items():
        try:
            counts[kind] = await prune(settings)
        except Exception:  # noqa: BLE001 — a worker loop outlives one bad pass; the next pass tries again
            log.exception("pruning %s failed", kind)
    if any(counts.values()):
        log.info("housekeeping deleted %s", ", ".join(f"{n} {kind}" for kind, n in counts.items() if n))
    return counts


async def run_housekeeping(settings: Settings, stop: asyncio.Event) -> None:
    """Every hour (and at start), delete what is surely dead; until `stop`."""
    while not stop.is_set():
        await housekeeping_pass(settings)
        try:
            await asyncio.wait_for(stop.wait(), timeout=HOUSEKEEPING_CHECK_SECONDS)
        except asyncio.TimeoutError:
            pass
