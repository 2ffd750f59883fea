"""The provider's own audit: what its staff, its service accounts and its operator at the CLI did.

Apart from the organizations' audit log (resolvers/common/audit.py), which customers read: this one is the
provider's alone. One function writes it, in the caller's transaction, so an entry exists exactly
when the change it names does.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from models.provider import ProviderAction


class ActorKind(str, Enum):
    STAFF = "STAFF"  # a staff member, by e-mail, signed in to the API
    SERVICE = "SERVICE"  # a service account, by name, with its token
    CLI = "CLI"  # the provider's operator running `kabinet …` on the server


async def record_action(
    actor_kind: ActorKind | str, actor: str, action: str, target: str | None = None, details: dict[str, Any] | None = None
) -> ProviderAction:
    """Append one entry: who (`actor_kind`, `actor`), did what (`action`, dotted: `organization.approve`,
    `records.organization`), to what (`target`), with what (`details`)."""
    return await ProviderAction.create(
        actor_kind=ActorKind(actor_kind).value, actor=actor[:200], action=action[:60],
        target=target[:200] if target is not None else None, details=details or {},
    )
