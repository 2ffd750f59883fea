"""Start and stop the background workers: inside the API process (embedded default) or alone
(`kabinet worker`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from broadcaster import Broadcast

from foundation.settings import Settings
from workers.cluster import run_cluster_worker
from workers.documents import run_document_publisher
from workers.housekeeping import run_clusters_liveness, run_housekeeping
from workers.mail import run_mail_worker
from workers.reminders import run_reminders
from workers.periods import run_period_roller
from workers.updates import run_update_worker

log = logging.getLogger("kabinet.workers")


class Workers:
    def __init__(self, settings: Settings, broadcast: Broadcast) -> None:
        self.settings = settings
        self.broadcast = broadcast
        self.stop_event = asyncio.Event()
        self.tasks: list[asyncio.Task] = []

    def loops(self) -> dict[str, Callable[[], Awaitable[None]]]:
        stop, broadcast, settings = self.stop_event, self.broadcast, self.settings
        return {
            "cluster": lambda: run_cluster_worker(broadcast, stop, churn=settings.cluster_churn, settings=settings),
            "updates": lambda: run_update_worker(settings, broadcast, stop),
            "documents": lambda: run_document_publisher(settings, stop),
            "mail": lambda: run_mail_worker(settings, stop),
            "periods": lambda: run_period_roller(broadcast, stop),
            "housekeeping": lambda: run_housekeeping(settings, stop),
            "clusters-liveness": lambda: run_clusters_liveness(settings, broadcast, stop),
            "reminders": lambda: run_reminders(broadcast, stop),
        }

    def start(self) -> None:
        for name, loop in self.loops().items():
            self.tasks.append(asyncio.create_task(loop(), name=f"kabinet-worker-{name}"))
        log.info("workers started: %s", ", ".join(self.loops()))

    async def stop(self, timeout: float = 10.0) -> None:
        """Ask every loop to finish its step (leases are released or expire), then wait."""
        self.stop_event.set()
        done, pending = await asyncio.wait(self.tasks, timeout=timeout) if self.tasks else (set(), set())
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
