"""The subscription periods' loop: every hour (and at start), periods that have passed roll over.

What a period is and how it rolls over is the domain's (resolvers/cloud/subscriptions.py): the
provider's own period when its records send one, otherwise month after month by itself.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from foundation.clock import utcnow
from resolvers.cloud.subscriptions import roll_over_due
from resolvers.common.context import SystemActor
from resolvers.common.unit_of_work import announce_committed
from workers.loop import every

log = logging.getLogger("kabinet.periods")

PERIODS_CHECK_SECONDS = 3600.0


async def roll_over_periods(broadcast: Any) -> int:
    """One pass: every passed period rolled over, then the organizations' dashboards told."""
    actor = SystemActor("period worker")
    rolled = await roll_over_due(actor, utcnow().date())
    await announce_committed(actor.announcements, broadcast)
    if rolled:
        log.info("rolled over %d subscription period(s)", rolled)
    return rolled


async def run_period_roller(broadcast: Any, stop: asyncio.Event) -> None:
    """Every hour (and at start), until `stop`."""
    await every(PERIODS_CHECK_SECONDS, lambda: roll_over_periods(broadcast), stop, log=log, failed="rolling subscription periods over failed")
