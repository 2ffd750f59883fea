"""The event broker: broadcaster over `KABINET_BROKER_URL` (memory://, redis://, postgres://)."""

from __future__ import annotations

from broadcaster import Broadcast

HEALTH_CHANNEL = "kabinet.health"


def create_broadcast(broker_url: str) -> Broadcast:
    return Broadcast(broker_url)


async def broker_reachable(broadcast: Broadcast) -> bool:
    """True when a message can be published (for /readyz)."""
    try:
        await broadcast.publish(HEALTH_CHANNEL, "ping")
        return True
    except Exception:  # noqa: BLE001 — any failure means "not ready"
        return False
