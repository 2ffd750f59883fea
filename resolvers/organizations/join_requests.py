"""Join requests: adding an INN that is already in the cabinet asks its owner and administrators to
let the caller in; they approve (with a role) or reject, and the requester is told by e-mail."""

from __future__ import annotations

import uuid
from typing import Any

from tortoise.expressions import Q

from foundation.clock import utcnow
from models.identity import User
from models.organizations import JoinRequest, JoinRequestStatus, Membership, Organization, Role
from resolvers import messages
from resolvers.common import audit
from resolvers.common import outbox
from resolvers.common import validation
from resolvers.common.gates import related_one, check_permission, check_approved
from resolvers.common.context import RequestContext
from resolvers.common.errors import ErrorCode, UserFacingError, forbidden, not_found
from resolvers.common.pagination import Ordering, Page, PageRequest, load_pages
from resolvers.common.permissions import Permission

JOIN_REQUEST_ORDER = Ordering(("created_at",))
MY_JOIN_REQUEST_ORDER = Ordering(("-created_at",))


async def ask_to_join(ctx: RequestContext, requester: User, organization: Organization, position: str) -> JoinRequest:
    """A PENDING request of `requester` (with the position they gave); the approvers get an e-mail."""
    request = await JoinRequest.create(organization=organization, user=requester, position=position)
    await _notify_approvers(organization, requester, position)
    await audit.record(
        ctx, "join_request.created", organization_id=organization.id, object_type="JoinRequest", object_id=request.id,
    )
    return request


async def close_pending(organization_id: uuid.UUID) -> None:
    """The organization's PENDING requests end REJECTED, with no one told: its claim was taken over
    (organization_claims.py), so whom they asked is no longer there."""
    await JoinRequest.filter(organization_id=organization_id, status=JoinRequestStatus.PENDING).update(
        status=JoinRequestStatus.REJECTED, decided_at=utcnow()
    )


async def _approver_emails(organization_id: uuid.UUID) -> list[str]:
    approvers = await Membership.filter(
        organization_id=organization_id, role__in=[Role.OWNER, Role.ADMIN]
    ).values_list("user_id", flat=True)
    return await User.filter(id__in=list(approvers), email__not_isnull=True).order_by("email").values_list("email", flat=True)


async def _notify_approvers(organization: Organization, requester: User, position: str) -> None:
    contacts = ", ".join(v for v in (requester.email, requester.phone) if v)
    for email in await _approver_emails(organization.id):
        await outbox.email(
            email, "join_request_to_approvers", requester_name=requester.full_name, contacts=contacts,
            organization_name=organization.name, inn=organization.inn, organization_code=organization.code,
            position=position,
        )


async def _join_request_to_decide(ctx: RequestContext, request_id: uuid.UUID) -> JoinRequest:
    """The PENDING request, locked, of an organization where the caller decides; NOT_FOUND for one of
    an organization the caller is not in (nothing revealed)."""
    memberships = await ctx.memberships()
    row = await JoinRequest.filter(id=request_id).select_for_update().first()
    if row is None or row.organization_id not in memberships:
        raise not_found("join request", "request_id")
    check_permission(ctx, row.organization_id, Permission.MANAGE_MEMBERS, "Only the owner or an administrator decides on join requests.")
    if row.status != JoinRequestStatus.PENDING:
        raise UserFacingError(ErrorCode.CONFLICT, "This request has already been decided.", "request_id")
    return row


async def approve_join_request(ctx: RequestContext, request_id: uuid.UUID, role: Role) -> tuple[JoinRequest, Membership]:
    """The requester becomes a member with `role` (never OWNER) and the position they gave."""
    viewer = ctx.require_viewer()
    if role == Role.OWNER:
        raise validation.invalid("role", "An organization has exactly one owner: choose another role.")
    row = await _join_request_to_decide(ctx, request_id)
    organization = await Organization.get(id=row.organization_id)
    check_approved(organization, "request_id", "let people in once it is approved (the request waits)")
    if await Membership.exists(organization_id=row.organization_id, user_id=row.user_id):
        raise UserFacingError(ErrorCode.CONFLICT, "This person is already a member: reject the request.", "request_id")
    membership = await Membership.create(
        organization_id=row.organization_id, user_id=row.user_id, role=role, position=row.position
    )
    row.status, row.decided_by_id, row.decided_at = JoinRequestStatus.APPROVED, viewer.user_id, utcnow()
    await row.save(update_fields=["status", "decided_by_id", "decided_at"])
    requester = await User.get(id=row.user_id)
    if requester.email:
        await outbox.email(
            requester.email, "join_request_approved", organization_name=organization.name,
            organization_code=organization.code, role=messages.QUOTED_ROLE_NAMES[role],
        )
    await audit.record(
        ctx, "join_request.approved", organization_id=row.organization_id, object_type="JoinRequest", object_id=row.id,
        details={"user_id": str(row.user_id), "role": role.value},
    )
    return row, membership


async def reject_join_request(ctx: RequestContext, request_id: uuid.UUID) -> JoinRequest:
    viewer = ctx.require_viewer()
    row = await _join_request_to_decide(ctx, request_id)
    row.status, row.decided_by_id, row.decided_at = JoinRequestStatus.REJECTED, viewer.user_id, utcnow()
    await row.save(update_fields=["status", "decided_by_id", "decided_at"])
    requester = await User.get(id=row.user_id)
    if requester.email:
        organization = await Organization.get(id=row.organization_id)
        await outbox.email(requester.email, "join_request_rejected", inn=organization.inn)
    await audit.record(
        ctx, "join_request.rejected", organization_id=row.organization_id, object_type="JoinRequest", object_id=row.id,
        details={"user_id": str(row.user_id)},
    )
    return row


async def join_requests_of(
    ctx: RequestContext, organization_id: uuid.UUID, status: JoinRequestStatus | None, page: PageRequest,
    *, with_total: bool = False,
) -> Page | None:
    """An organization's join requests for its OWNER/ADMIN; None for an organization not the caller's."""
    if organization_id not in await ctx.memberships():
        return None
    if not ctx.may(organization_id, Permission.MANAGE_MEMBERS):
        raise forbidden("join requests")
    pages = await load_pages(
        JoinRequest, "organization_id", [organization_id], JOIN_REQUEST_ORDER, page,
        filters=Q(status=status) if status else None, with_total=with_total,
    )
    return pages[organization_id]


async def viewer_join_requests(ctx: RequestContext, page: PageRequest, *, with_total: bool = False) -> Page:
    viewer = ctx.require_viewer()
    pages = await load_pages(JoinRequest, "user_id", [viewer.user_id], MY_JOIN_REQUEST_ORDER, page, with_total=with_total)
    return pages[viewer.user_id]


async def users_of(ctx: RequestContext, rows: list[Any], args: dict[str, Any]) -> list:
    return await related_one(User, rows, "user_id")


async def visible_organization_of(ctx: RequestContext, rows: list[Any], args: dict[str, Any]) -> list:
    """The organization of each row (the Organization rule shows it to its members only: a requester
    is not one yet)."""
    return await related_one(Organization, rows, "organization_id")


async def inns_of(ctx: RequestContext, rows: list[Any], args: dict[str, Any]) -> list:
    organizations = await related_one(Organization, rows, "organization_id")
    return [o.inn if o else "" for o in organizations]
