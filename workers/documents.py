"""The monthly publisher's loop: every hour (and at start), the months due are published.

What a month gets and how a document is published is the domain's (resolvers/billing/publication.py):
from the 10th on the previous month's invoices and acts, each created once, none while the supplier's
requisites are not configured (said at start and on every pass that leaves documents waiting).
"""

from __future__ import annotations

import asyncio
import logging

from foundation.clock import utcnow
from foundation.settings import Settings
from resolvers.billing import supplier as suppliers
from resolvers.billing.publication import publish_due
from workers.loop import every

log = logging.getLogger("kabinet.documents")

PUBLISHER_CHECK_SECONDS = 3600.0


async def run_document_publisher(settings: Settings, stop: asyncio.Event) -> None:
    """Every hour (and at start), make sure the months due are published; until `stop`."""
    try:
        if await suppliers.current() is None:
            log.warning("documents: %s", suppliers.NOT_CONFIGURED)
    except Exception:  # noqa: BLE001 — the loop below says what is wrong, pass after pass
        log.exception("documents: could not read the supplier's requisites")
    await every(PUBLISHER_CHECK_SECONDS, lambda: publish_due(utcnow().date()), stop, log=log, failed="document publishing failed")
