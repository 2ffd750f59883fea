"""The retention loop: every hour (and at start), one pass of resolvers/common/housekeeping.py; and the
clusters' liveness: every few seconds, a cluster whose agent stopped reporting is shown disconnected.

Safe in several worker processes at once: a pass only deletes rows that are dead, each batch
re-checking its condition, so two passes side by side delete each row once between them; a
cluster's flip is conditional (resolvers/cloud/clusters.py `set_connected`), so one process makes it.
"""

from __future__ import annotations

import asyncio
import logging

from broadcaster import Broadcast

from foundation.clock import utcnow
from foundation.settings import Settings
from resolvers.cloud import clusters
from resolvers.common.context import SystemActor
from resolvers.common.unit_of_work import change
from resolvers.common.housekeeping import PRUNERS
from workers.loop import every

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
    await every(HOUSEKEEPING_CHECK_SECONDS, lambda: housekeeping_pass(settings), stop, log=log, failed="housekeeping failed")


async def clusters_liveness_pass(settings: Settings, broadcast: Broadcast) -> list[str]:
    """Clusters no report came from for `cluster_stale_seconds`: disconnected, their organizations'
    data events announced. The names flipped."""
    actor = SystemActor("housekeeping worker")
    async with change(actor, broadcast):
        flipped = await clusters.mark_stale(actor, utcnow(), settings.cluster_stale_seconds)
    for cluster in flipped:
        log.warning("cluster %s: no report from its agent for %ss, shown disconnected", cluster.name, settings.cluster_stale_seconds)
    return [c.name for c in flipped]


async def run_clusters_liveness(settings: Settings, broadcast: Broadcast, stop: asyncio.Event) -> None:
    """A quarter of the staleness allowance apart (at least a second), until `stop`."""
    await every(
        max(1.0, settings.cluster_stale_seconds / 4), lambda: clusters_liveness_pass(settings, broadcast), stop,
        log=log, failed="the clusters' liveness pass failed",
    )
