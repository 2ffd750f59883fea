"""What a member may do in an organization: their role, the databases granted to them, and the one
owner; and the pieces every change of members goes through (the organization's lock, the managed
membership, the owner's guard, ending live subscriptions).

Rules (contract README "Roles"):
- the owner and admins manage members; an admin never touches the owner (FORBIDDEN); the owner
  cannot be demoted (INVALID: transfer ownership first); among members nobody becomes OWNER
  except by `transferOwnership`, so an organization has at most one owner; one that has none gets
  one only by `moderation.make_owner` (a proven claim, a known contact, staff promoting a member or
  an OWNER invitation they sent being accepted);
- member-changing mutations lock the organization row first (PostgreSQL), so concurrent changes
  of one organization's members run one after another;
- a change of rights ends the member's live subscriptions of the organization (they were opened
  with the old rights); databases taken away end the member's sessions in them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from models.cloud import Database, Session
from models.organizations import DatabaseGrant, Membership, Organization, Role
from resolvers import messages
from resolvers.common import audit
from events import log as events
from resolvers.common import validation
from resolvers.cloud import sessions as session_lifecycle
from resolvers.common.gates import check_member_of, check_organization_row, check_permission
from resolvers.common.context import RequestContext
from resolvers.common.errors import ErrorCode, UserFacingError, not_found
from resolvers.common.permissions import Permission


async def change_member_role(ctx: RequestContext, membership_id: uuid.UUID, role: Role) -> Membership:
    """Give a member another role. Never OWNER (that is `transferOwnership`); never the owner's."""
    target = await managed_membership(ctx, membership_id, "membership_id")
    if role == Role.OWNER:
        raise validation.invalid("role", "Nobody becomes the owner by a role change: use transferOwnership.")
    guard_owner(ctx, target, "The owner cannot be demoted: transfer ownership to another member first.")
    if target.role == role:
        return target
    previous = target.role
    target.role = role
    await target.save(update_fields=["role"])
    await audit.record(
        ctx, "member.role_change", organization_id=target.organization_id, object_type="Membership",
        object_id=target.id, details={"userId": str(target.user_id), "from": previous.value, "to": role.value},
    )
    await end_subscriptions(ctx, target)  # live lists were filtered by the old role
    return target


async def update_member_databases(
    ctx: RequestContext, membership_id: uuid.UUID, database_ids: Sequence[uuid.UUID]
) -> Membership:
    """Set the databases a USER may open; their sessions in databases taken away are terminated."""
    target = await managed_membership(ctx, membership_id, "membership_id")
    if target.role != Role.USER:
        raise validation.invalid(
            "membership_id", f"Only a user's databases are chosen; {messages.ROLE_NAMES[target.role].lower()} sees every database."
        )
    databases = await organization_databases(target.organization_id, database_ids, "database_ids")
    wanted = {d.id for d in databases}
    current = set(await DatabaseGrant.filter(membership_id=target.id).values_list("database_id", flat=True))
    added, removed = wanted - current, current - wanted
    if removed:
        await DatabaseGrant.filter(membership_id=target.id, database_id__in=list(removed)).delete()
    for database_id in sorted(added, key=str):
        await DatabaseGrant.create(membership_id=target.id, database_id=database_id)
    sessions: list[Session] = []
    if removed:
        sessions = await session_lifecycle.access_ended(ctx, target.organization_id, target.user_id, list(removed))
        await end_subscriptions(ctx, target)
    if added or removed:
        await audit.record(
            ctx, "member.databases_change", organization_id=target.organization_id, object_type="Membership",
            object_id=target.id,
            details={
                "userId": str(target.user_id), "added": sorted(map(str, added)), "removed": sorted(map(str, removed)),
                "terminatedSessions": len(sessions),
            },
        )
    return target


async def transfer_ownership(
    ctx: RequestContext, organization_id: uuid.UUID, membership_id: uuid.UUID
) -> tuple[Membership, Membership]:
    """The owner hands the organization to another member and becomes an admin: (new, previous owner)."""
    org_id = await check_member_of(ctx, organization_id, "organization_id")
    check_permission(ctx, org_id, Permission.TRANSFER_OWNERSHIP, "Only the owner may hand the organization over.")
    await lock_organization(org_id)
    target = await Membership.get_or_none(id=membership_id, organization_id=org_id)
    if target is None:
        raise not_found("member", "membership_id")
    if target.user_id == ctx.require_viewer().user_id:
        raise validation.invalid("membership_id", "You already own this organization.")
    previous = await Membership.get(organization_id=org_id, role=Role.OWNER)
    if previous.user_id != ctx.require_viewer().user_id:  # ownership moved while this request waited
        raise UserFacingError(ErrorCode.FORBIDDEN, "Only the owner may hand the organization over.")
    target_role = target.role
    previous.role, target.role = Role.ADMIN, Role.OWNER
    await previous.save(update_fields=["role"])
    await target.save(update_fields=["role"])
    await audit.record(
        ctx, "organization.transfer_ownership", organization_id=org_id, object_type="Membership", object_id=target.id,
        details={
            "fromUserId": str(previous.user_id), "toUserId": str(target.user_id), "toPreviousRole": target_role.value,
        },
    )
    ctx.forget_memberships()  # the payload's fields see the caller as the admin they now are
    for membership in (target, previous):
        await end_subscriptions(ctx, membership)
    return target, previous


# ---------------------------------------------------------------------------------------- shared by member changes


async def lock_organization(org_id: uuid.UUID) -> Organization:
    """Serialize changes of one organization's members (a row lock on PostgreSQL)."""
    return await Organization.filter(id=org_id).select_for_update().get()


async def managed_membership(ctx: RequestContext, membership_id: uuid.UUID, field: str) -> Membership:
    """A membership in an organization of the viewer's, who must manage members there; the
    organization locked. NOT_FOUND on `field` for any other (nothing revealed)."""
    target = await check_organization_row(ctx, Membership, membership_id, field, "member")
    check_permission(ctx, target.organization_id, Permission.MANAGE_MEMBERS, "Only the owner or an admin may manage members.")
    await lock_organization(target.organization_id)
    target = await Membership.get_or_none(id=target.id)
    if target is None:
        raise not_found("member", field)
    return target


def guard_owner(ctx: RequestContext, target: Membership, message_for_owner: str) -> None:
    """The owner's membership is out of anyone's reach: an admin is FORBIDDEN, the owner INVALID."""
    if target.role != Role.OWNER:
        return
    if target.user_id == ctx.require_viewer().user_id:
        raise validation.invalid("membership_id", message_for_owner)
    raise UserFacingError(ErrorCode.FORBIDDEN, "An admin cannot change or remove the owner.")


async def organization_databases(org_id: uuid.UUID, database_ids: Sequence[uuid.UUID], field: str) -> list[Database]:
    """The organization's databases by id, in the order given; NOT_FOUND on `field` for any other id."""
    wanted = list(dict.fromkeys(database_ids))
    if not wanted:
        return []
    found = {d.id: d for d in await Database.filter(id__in=wanted, organization_id=org_id)}
    if len(found) != len(wanted):
        raise not_found("database", field)
    return [found[pk] for pk in wanted]


async def end_subscriptions(ctx: RequestContext, membership: Membership) -> None:
    """The member's live subscriptions of this organization end (they were opened with other rights)."""
    await ctx.record_event(membership.organization_id, events.ACCESS, "REVOKED", {"user_id": str(membership.user_id)})
