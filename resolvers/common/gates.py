"""Helpers every domain's resolvers share: paging arguments, permission gates, loading by id."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, TypeVar

from tortoise.models import Model

from resolvers.common.context import RequestContext
from resolvers.common.errors import ErrorCode, UserFacingError, not_found
from resolvers.common.permissions import Permission
from models.organizations import ModerationStatus, Organization
from models.select import select_by_ids
from resolvers.common.pagination import PageRequest

M = TypeVar("M", bound=Model)
SELECTED = "__selected__"  # set by the schema's batch planner: fields selected on the result


def page_request(ctx: RequestContext, args: dict[str, Any]) -> PageRequest:
    return PageRequest.from_args(args, ctx.settings.max_page_size)


def wants_total(args: dict[str, Any]) -> bool:
    return "total_count" in args.get(SELECTED, ())


async def related_one(model: type[M], parents: Sequence[Any], attribute: str) -> list[M | None]:
    """For each parent, the `model` row its `attribute` (a foreign key id) points to."""
    rows = await select_by_ids(model, (getattr(p, attribute) for p in parents))
    return [rows.get(getattr(p, attribute)) for p in parents]


async def check_member_of(ctx: RequestContext, organization_id: uuid.UUID, field: str | None) -> uuid.UUID:
    """`organization_id` when the viewer belongs to it; NOT_FOUND for any other (nothing revealed)."""
    if organization_id not in await ctx.memberships():
        raise not_found("organization", field)
    return organization_id


def check_permission(ctx: RequestContext, organization_id: uuid.UUID, permission: Permission, message: str) -> None:
    """FORBIDDEN unless the viewer's role in the organization allows it (memberships loaded)."""
    if not ctx.may(organization_id, permission):
        raise UserFacingError(ErrorCode.FORBIDDEN, message)


def check_approved(organization: Organization, field: str | None, then: str) -> None:
    """INVALID unless the provider approved the organization: a PENDING (or REJECTED) one is an
    unchecked claim to an INN that anybody may make, so it brings nobody in (invites, join requests)."""
    if organization.moderation_status != ModerationStatus.APPROVED:
        state = (
            "is awaiting the provider's moderation" if organization.moderation_status == ModerationStatus.PENDING
            else "was rejected by the provider"
        )
        raise UserFacingError(ErrorCode.INVALID, f"This organization {state}: {then}.", field)



async def check_organization_row(
    ctx: RequestContext, model: type[M], pk: uuid.UUID, field: str | None, what: str, *, lock: bool = False
) -> M:
    """The `model` row with this primary key, in one of the viewer's organizations; NOT_FOUND for
    anything else, as if it did not exist. `lock`: FOR UPDATE."""
    memberships = await ctx.memberships()
    query = model.filter(id=pk).select_for_update() if lock else model.filter(id=pk)
    row = await query.first()
    if row is None or row.organization_id not in memberships:
        raise not_found(what, field)
    return row
