"""What the `tickets` subscription reads: which ticket events a subscriber may receive (the Ticket rule
as it stood when they subscribed) and the ticket an event names."""

from __future__ import annotations

import uuid
from typing import Any

from models.tickets import SupportTicket, TicketStatus
from resolvers.common.context import RequestContext
from resolvers.common.errors import Refusal
from resolvers.common.permissions import TICKETS_IN_ORGANIZATION, Sight


async def ticket_for_event(ticket_id: uuid.UUID) -> SupportTicket | None:
    """The ticket an event names, as it is now (a subscription's message)."""
    return await SupportTicket.get_or_none(id=ticket_id)


def event_ticket(organization_id: uuid.UUID, payload: dict[str, Any]) -> SupportTicket:
    """The ticket an event carries, enough for the role table to say who may receive it."""
    return SupportTicket(
        id=uuid.UUID(payload["ticket_id"]), organization_id=organization_id,
        author_id=uuid.UUID(payload["author_id"]) if payload.get("author_id") else None,
        status=TicketStatus(payload["status"]),
    )


class TicketFilter:
    """Which ticket events a subscriber may receive: the Ticket rule as it stood when they subscribed."""

    def __init__(self, ctx: RequestContext, organization_id: uuid.UUID) -> None:
        seen = TICKETS_IN_ORGANIZATION.scope(ctx, organization_id)
        if seen.sight is not Sight.SEE:
            raise Refusal("FORBIDDEN", "Your role may not see this organization's tickets.")
        self.rights = ctx.narrowed_to(organization_id, as_viewer=True)
        self.only_user = ctx.require_viewer().user_id if seen.narrowing is not None else None

    def admits(self, organization_id: uuid.UUID, payload: dict[str, Any]) -> bool:
        return TICKETS_IN_ORGANIZATION(self.rights, event_ticket(organization_id, payload)) is Sight.SEE
