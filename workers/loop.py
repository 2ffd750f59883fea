"""The shape every periodic worker shares: a round now, then one every so often, until `stop`.

A round that raises is logged and the loop goes on (the database may be away for a moment; the next
round tries again). Stopping waits for the round under way, never interrupts it: whatever it leased
is marked or given back by the round itself (each worker's claims keep two workers off one job).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

Result = TypeVar("Result")


async def rest(stop: asyncio.Event, seconds: float) -> None:
    """Sleep `seconds`, woken at once by `stop`."""
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


async def every(
    seconds: float, do_round: Callable[[], Awaitable[Result]], stop: asyncio.Event, *, log: logging.Logger, failed: str,
    pause: Callable[[Result], float] | None = None,
) -> None:
    """Run `do_round` now and every `seconds` until `stop`; a round that raises is logged as `failed`.

    `pause`, when given, says from a round's result how long to rest this time (0: go on at once, e.g.
    after a full batch); after a failed round the loop rests `seconds`."""
    while not stop.is_set():
        wait: Any = seconds
        try:
            result = await do_round()
        except Exception:  # noqa: BLE001 — a worker loop outlives one bad round
            log.exception(failed)
        else:
            if pause is not None:
                wait = pause(result)
        if wait > 0:
            await rest(stop, wait)
