"""The audit log: who changed access, sessions, schedules or the subscription, and from where."""

from __future__ import annotations

import uuid
from typing import Any

from resolvers.common.context import Actor
from models.audit import AuditEntry


async def record(
    ctx: Actor,
    action: str,
    *,
    organization_id: uuid.UUID | None,
    object_type: str,
    object_id: Any = None,
    details: dict[str, Any] | None = None,
    actor_id: uuid.UUID | None = None,
) -> AuditEntry:
    """Append one entry, in the caller's transaction (so it exists exactly when the change does).

    The actor is the signed-in viewer, or `actor_id` for a change made before anyone is signed in
    (an invitee accepting); none for a change the system makes (a SystemActor: a worker)."""
    return await AuditEntry.create(
        organization_id=organization_id,
        actor_id=actor_id or (ctx.viewer.user_id if ctx.viewer else None),
        action=action,
        object_type=object_type,
        object_id=str(object_id) if object_id is not None else None,
        details=details or {},
        ip_address=ctx.client_address,
    )
